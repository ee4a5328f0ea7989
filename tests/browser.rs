//! In the browser (SPEC §10, issue 19): GraphiQL is served whole by the binary, so it works
//! with no internet. Over HTTP: the page names only files under /assets/, each is the vendored
//! file byte for byte, and a Content-Security-Policy keeps the browser on this origin. In a
//! real browser (Debian's `chromium`, headless, with every other host unresolvable): GraphiQL
//! renders, and the managers' dashboard at `/` shows, for each role signed in on the demo
//! company, the figures the API gives that role, with every request the page makes going to
//! this server. Without a browser on the machine those tests say they were skipped, loudly; CI
//! installs one (`.ci/run`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use funnelgraph::auth::Role;
use serde_json::{json, Value};

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

    fn the_dashboard_is_a_page_of_this_server(app) {
        let resp = ureq::get(format!("{}/", app.base)).call().expect("GET /");
        let policy = resp.headers().get("content-security-policy").unwrap().to_str().unwrap().to_string();
        assert!(policy.contains("default-src 'self'"), "{policy}");
        let html = resp.into_body().read_to_string().unwrap();
        assert!(!html.contains("http://") && !html.contains("https://"), "{html}");
        let refs = references(&html);
        assert!(refs.iter().all(|r| r.starts_with("/assets/dashboard/") || r == "/graphql"), "{refs:?}");
        for r in refs.iter().filter(|r| r.starts_with("/assets/")) {
            assert_eq!(app.get(r).0, 200, "{r}");
        }
        // Dev tokens only under `serve --dev`.
        assert_eq!(app.get("/dev/tokens").0, 404);
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

/// A page as headless chromium leaves it once its scripts are done, with every other host
/// unresolvable (what "no internet" looks like to a page), and the URLs of the requests the
/// page itself made (from chromium's net log: those whose initiator is the page's origin).
fn render(browser: &str, url: &str, origin: &str) -> (String, Vec<String>) {
    let profile = tempfile_dir();
    let log = profile.join("net.json");
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            &format!("--user-data-dir={}", profile.display()),
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            &format!("--log-net-log={}", log.display()),
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ])
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    let net: Value = serde_json::from_str(&std::fs::read_to_string(&log).unwrap_or_default())
        .unwrap_or(Value::Null);
    let _ = std::fs::remove_dir_all(&profile);
    let mut requests: Vec<String> = net["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter(|e| e["params"]["initiator"].as_str() == Some(origin))
                .filter_map(|e| e["params"]["url"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    requests.sort();
    requests.dedup();
    (dom, requests)
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
    let (dom, requests) = render(&browser, &format!("{}/graphql", app.base), &app.base);
    assert!(
        requests.iter().all(|u| u.starts_with(&app.base)),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|u| u.ends_with("/graphiql.min.js")),
        "{requests:?}"
    );
    // GraphiQL replaced the loading line with its editor and its run button.
    assert!(
        dom.contains("graphiql-container"),
        "GraphiQL did not render: {dom}"
    );
    assert!(dom.contains("graphiql-execute-button"), "{dom}");
    assert!(!dom.contains("Loading GraphiQL"), "{dom}");
}

fn tempfile_dir() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("funnelgraph-chromium-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The attribute values `name="…"` of the elements carrying `marker`, in order.
fn attrs(dom: &str, marker: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find(marker) {
        let tail = &rest[i..];
        let end = tail.find('>').unwrap_or(tail.len());
        let tag = &tail[..end];
        let key = format!("{name}=\"");
        if let Some(j) = tag.find(&key) {
            let v = &tag[j + key.len()..];
            out.push(v[..v.find('"').unwrap()].to_string());
        }
        rest = &tail[marker.len()..];
    }
    out
}

/// The text of the first element carrying `marker`.
fn text(dom: &str, marker: &str) -> String {
    let i = dom
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not on the page: {dom}"));
    let tail = &dom[i..];
    let start = tail.find('>').unwrap() + 1;
    tail[start..start + tail[start..].find('<').unwrap()].to_string()
}

#[test]
fn the_dashboard_shows_each_role_what_the_api_gives_it() {
    let Some(browser) = chromium() else {
        eprintln!(
            "*** SKIPPED: browser test, no chromium (apt install chromium, or set CHROMIUM) ***"
        );
        return;
    };
    let app = TestApp::sqlite();
    actix_web::rt::System::new()
        .block_on(funnelgraph::demo::load(&app.db, "USD"))
        .map_err(|e| e.message())
        .unwrap();
    // The page's default period: the year to date (through the end of this month), UTC.
    use chrono::Datelike;
    let now = chrono::Utc::now().date_naive();
    let next = if now.month() == 12 {
        chrono::NaiveDate::from_ymd_opt(now.year() + 1, 1, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(now.year(), now.month() + 1, 1)
    }
    .unwrap();
    let period = json!({ "from": format!("{}-01-01", now.year()), "to": next.to_string() });
    let ask = |token: &str, query: &str| -> Value {
        let body = json!({ "query": query, "variables": { "p": period } }).to_string();
        let resp = ureq::post(format!("{}/graphql", app.base))
            .header("Content-Type", "application/json")
            .header("Authorization", &format!("Bearer {token}"))
            .send(body)
            .unwrap();
        serde_json::from_str(&resp.into_body().read_to_string().unwrap()).unwrap()
    };
    for (sub, role) in funnelgraph::demo::TOKEN_USERS {
        let token = app.token(sub, role);
        let (dom, requests) = render(&browser, &format!("{}/#token={token}", app.base), &app.base);
        assert!(
            dom.contains("data-ready=\"true\""),
            "{role:?}: the page did not finish: {dom}"
        );
        assert!(
            requests.iter().all(|u| u.starts_with(&app.base)),
            "{role:?}: {requests:?}"
        );
        assert!(
            requests.iter().any(|u| u.ends_with("/graphql")),
            "{role:?}: {requests:?}"
        );
        // Who is signed in, as the API says.
        let me = ask(&token, "{ me { name role } }");
        assert!(
            text(&dom, "id=\"who\"").starts_with(me["data"]["me"]["name"].as_str().unwrap()),
            "{role:?}"
        );
        // Campaign ROI under the default model: the same campaigns, the same cents.
        let roi = ask(&token, "query($p: PeriodInput!) { campaignRoi(model: W_SHAPED, period: $p) { campaign { externalId } cost { amount } attributedRevenue { amount } } }");
        let api_rows = roi["data"]["campaignRoi"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let shown = attrs(&dom, "data-campaign=", "data-campaign");
        let expected: Vec<String> = api_rows
            .iter()
            .map(|r| r["campaign"]["externalId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(shown, expected, "{role:?}: ROI campaigns");
        let amounts = attrs(
            &dom[dom.find("id=\"roi\"").unwrap()..dom.find("id=\"leakage\"").unwrap()],
            "data-amount=",
            "data-amount",
        );
        let api_amounts: Vec<String> = api_rows
            .iter()
            .flat_map(|r| {
                [
                    r["cost"]["amount"].as_str().unwrap().to_string(),
                    r["attributedRevenue"]["amount"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                ]
            })
            .collect();
        assert_eq!(amounts, api_amounts, "{role:?}: ROI money");
        if role == Role::Marketer {
            let all = ask(&app.token("admin", Role::Admin), "query($p: PeriodInput!) { campaignRoi(model: W_SHAPED, period: $p) { campaign { externalId } } }");
            let all = all["data"]["campaignRoi"].as_array().unwrap().len();
            assert!(
                !shown.is_empty() && shown.len() < all,
                "a marketer sees only own campaigns: {shown:?} of {all}"
            );
        }
        // Funnel and leakage, where the role may read them.
        let funnel = ask(
            &token,
            "query($p: PeriodInput!) { funnel(period: $p) { cohortSize } }",
        );
        if let Some(n) = funnel["data"]["funnel"]["cohortSize"].as_i64() {
            assert_eq!(
                text(&dom, "data-test=\"cohort\""),
                n.to_string(),
                "{role:?}"
            );
        }
        let leakage = ask(&token, "query($p: PeriodInput!) { leakage(period: $p) { mqls leaked wastedSpend { amount } } }");
        if let Some(l) = leakage["data"]["leakage"].as_object() {
            assert_eq!(
                text(&dom, "data-test=\"mqls\""),
                l["mqls"].to_string(),
                "{role:?}"
            );
            assert_eq!(
                text(&dom, "data-test=\"leaked\""),
                l["leaked"].to_string(),
                "{role:?}"
            );
            assert_eq!(
                attrs(&dom, "data-test=\"wasted\"", "data-amount"),
                vec![l["wastedSpend"]["amount"].as_str().unwrap().to_string()],
                "{role:?}"
            );
        }
        // Statements: FINANCE and ADMIN only, each marketer's pay as the API computes it.
        let statements_shown = !dom.contains("<article id=\"statements\" hidden");
        assert_eq!(
            statements_shown,
            matches!(role, Role::Admin | Role::Finance),
            "{role:?}"
        );
        if statements_shown {
            let users = attrs(&dom, "data-user=", "data-user");
            assert!(!users.is_empty(), "{role:?}: no statements");
            for user in users {
                let s = ask(&token, &format!("query($p: PeriodInput!) {{ compensationStatement(userExternalId: \"{user}\", period: $p) {{ status total {{ amount }} }} }}"));
                let row = &dom[dom.find(&format!("data-user=\"{user}\"")).unwrap()..];
                let row = &row[..row.find("</tr>").unwrap()];
                let pay = attrs(row, "data-amount=", "data-amount");
                assert_eq!(
                    pay.last().unwrap(),
                    s["data"]["compensationStatement"]["total"]["amount"]
                        .as_str()
                        .unwrap(),
                    "{role:?} {user}"
                );
                assert!(
                    row.contains(
                        s["data"]["compensationStatement"]["status"]
                            .as_str()
                            .unwrap()
                    ),
                    "{role:?} {user}"
                );
            }
        }
    }
}

/// The dashboard sends trusted documents only: on a server that runs nothing else it shows the
/// same board (SPEC §11).
#[test]
fn the_dashboard_runs_where_only_trusted_documents_may() {
    let Some(browser) = chromium() else {
        eprintln!(
            "*** SKIPPED: browser test, no chromium (apt install chromium, or set CHROMIUM) ***"
        );
        return;
    };
    let app = TestApp::sqlite_with(&[("FUNNELGRAPH_TRUSTED_ONLY", "true")]);
    actix_web::rt::System::new()
        .block_on(funnelgraph::demo::load(&app.db, "USD"))
        .map_err(|e| e.message())
        .unwrap();
    let token = app.token("fin", Role::Finance);
    // Free text is refused on this server.
    let (status, _) = app.post_raw(
        Some(&format!("Bearer {token}")),
        "application/json",
        &json!({ "query": "{ me { name } }" }).to_string(),
    );
    assert_eq!(status, 400);
    let (dom, requests) = render(&browser, &format!("{}/#token={token}", app.base), &app.base);
    assert!(
        dom.contains("data-ready=\"true\""),
        "the page did not finish: {dom}"
    );
    assert!(
        requests.iter().all(|u| u.starts_with(&app.base)),
        "{requests:?}"
    );
    assert!(
        !dom.contains("class=\"error\">"),
        "an error on the page: {dom}"
    );
    assert!(
        !attrs(&dom, "data-campaign=", "data-campaign").is_empty(),
        "no ROI rows"
    );
    assert!(
        !attrs(&dom, "data-user=", "data-user").is_empty(),
        "no statements"
    );
    assert!(
        !attrs(&dom, "data-stage=", "data-stage").is_empty(),
        "no funnel"
    );
}
