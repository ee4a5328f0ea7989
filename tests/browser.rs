//! In the browser (SPEC §10, issue 19): GraphiQL is served whole by the binary, so it works
//! with no internet. Over HTTP: the page names only files under /assets/, each is the vendored
//! file byte for byte, and a Content-Security-Policy keeps the browser on this origin. In a
//! real browser (Debian's `chromium`, headless, with every other host unresolvable): GraphiQL
//! renders. Without a browser on the machine that test says it was skipped, loudly; CI
//! installs one (`.ci/run`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// The `src` and `href` attributes of a page.
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').unwrap();
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    out
}

fn graphiql_page(app: &TestApp) -> (String, String) {
    let resp = ureq::get(format!("{}/graphql", app.base))
        .header("Accept", "text/html")
        .call()
        .expect("GET /graphql");
    let policy = resp
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let html = resp.into_body().read_to_string().unwrap();
    (html, policy)
}

both_databases! {
    fn graphiql_is_served_by_the_binary_and_names_no_other_host(app) {
        let (html, policy) = graphiql_page(app);
        assert!(html.contains("GraphiQL"), "{html}");
        assert!(!html.contains("http://") && !html.contains("https://"), "a URL to another host: {html}");
        assert!(policy.contains("default-src 'self'") && policy.contains("connect-src 'self'"), "{policy}");
        let refs = references(&html);
        assert_eq!(refs.len(), 5, "{refs:?}");
        for r in &refs {
            assert!(r.starts_with("/assets/graphiql/"), "{r}");
            let resp = ureq::get(format!("{}{r}", app.base)).call().expect("asset");
            let kind = resp.headers().get("content-type").unwrap().to_str().unwrap().to_string();
            let body = resp.into_body().read_to_vec().unwrap();
            let file = std::fs::read(format!("assets{}", r.trim_start_matches("/assets"))).unwrap();
            assert!(body == file, "{r} is not the vendored file");
            assert!(kind.starts_with(if r.ends_with(".css") { "text/css" } else { "text/javascript" }), "{r}: {kind}");
        }
        // The licences travel with the files, and the versions are pinned.
        for (path, text) in [("LICENSE.graphiql", "MIT License"), ("LICENSE.react", "MIT License"), ("VERSIONS", "graphiql 3.8.3")] {
            let (status, body) = app.get(&format!("/assets/graphiql/{path}"));
            assert_eq!(status, 200, "{path}");
            assert!(body.contains(text), "{path}: {body}");
        }
        assert_eq!(app.get("/assets/graphiql/nope.js").0, 404);
        assert_eq!(app.get("/assets/../Cargo.toml").0, 404);
    }
}

/// Debian's chromium, or `CHROMIUM`.
fn chromium() -> Option<String> {
    let candidates = [
        std::env::var("CHROMIUM").unwrap_or_default(),
        "/usr/bin/chromium".into(),
        "/usr/bin/chromium-browser".into(),
    ];
    candidates
        .into_iter()
        .find(|c| !c.is_empty() && std::path::Path::new(c).exists())
}

#[test]
fn graphiql_renders_in_a_browser_with_no_other_host_reachable() {
    let Some(browser) = chromium() else {
        eprintln!(
            "*** SKIPPED: browser test, no chromium (apt install chromium, or set CHROMIUM) ***"
        );
        return;
    };
    let app = TestApp::sqlite();
    let profile = tempfile_dir();
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
            // Every host but this one unresolvable: what "no internet" looks like to a page.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=10000",
            "--dump-dom",
            &format!("{}/graphql", app.base),
        ])
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(&profile);
    // GraphiQL replaced the loading line with its editor and its run button.
    assert!(
        dom.contains("graphiql-container"),
        "GraphiQL did not render: {dom}"
    );
    assert!(dom.contains("graphiql-execute-button"), "{dom}");
    assert!(!dom.contains("Loading GraphiQL"), "{dom}");
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("funnelgraph-chromium-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
