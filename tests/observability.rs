//! What operators see (issue 7): `/metrics` in the Prometheus format, a request id on every
//! log line of a request, and slow statements logged without their bind values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use funnelgraph::auth::Role;
use serde_json::json;

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {line_start} in\n{text}"))
}

both_databases! {
    fn metrics_count_requests_by_operation_and_status(app) {
        campaign(app, "c1", "email", None);
        app.admin("query Dashboard { me { id } }", json!({}));
        app.admin("query Dashboard { me { id } }", json!({}));
        app.admin("{ mqlThreshold }", json!({}));
        let _ = app.post_raw(None, "application/json", r#"{"query":"{ me { id } }"}"#);
        let report = r#"{ attribution(model: LINEAR, period: { from: "2026-01-01", to: "2026-02-01" }) { totalConversions } }"#;
        app.admin(report, json!({}));
        app.admin(report, json!({}));
        let (status, text) = app.get("/metrics");
        assert_eq!(status, 200);
        assert_eq!(metric(&text, "funnelgraph_requests_total{operation=\"Dashboard\",status=\"200\"}"), 2.0);
        assert_eq!(metric(&text, "funnelgraph_requests_total{operation=\"mqlThreshold\",status=\"200\"}"), 1.0);
        assert_eq!(metric(&text, "funnelgraph_requests_total{operation=\"/graphql\",status=\"401\"}"), 1.0);
        assert_eq!(metric(&text, "funnelgraph_requests_total{operation=\"upsertCampaign\",status=\"200\"}"), 1.0);
        assert_eq!(metric(&text, "funnelgraph_request_duration_seconds_count{operation=\"Dashboard\",status=\"200\"}"), 2.0);
        assert_eq!(metric(&text, "funnelgraph_request_duration_seconds_bucket{operation=\"Dashboard\",status=\"200\",le=\"+Inf\"}"), 2.0);
        assert!(metric(&text, "funnelgraph_db_pool_max_connections") >= 8.0);
        assert!(metric(&text, "funnelgraph_db_pool_connections") >= 1.0);
        assert!(metric(&text, "funnelgraph_db_statements_total") > 5.0);
        assert!(metric(&text, "funnelgraph_report_cache_misses_total") >= 1.0);
        assert!(metric(&text, "funnelgraph_report_cache_hits_total") >= 1.0, "the second report reused the facts");
        assert!(text.contains("# TYPE funnelgraph_request_duration_seconds histogram"));
    }
}

#[test]
fn every_log_line_of_a_request_carries_its_id_and_slow_statements_are_logged() {
    let (child, base, db) = spawn_server(
        "logs",
        &[("FUNNELGRAPH_SLOW_QUERY_MS", "0"), ("NO_COLOR", "1")],
    );
    let (rid, _) = post_as_admin(
        &base,
        json!({ "query": "mutation { upsertLead(input: { externalId: \"L1\", email: \"secret@example.com\", createdAt: \"2026-01-01T00:00:00Z\" }) { id } }" }),
    );
    let lines = stop_server(child, &db);
    let of_request: Vec<&String> = lines.iter().filter(|l| l.contains(&rid)).collect();
    // Statements only the request runs (startup runs migrations, without a request).
    let slow: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("slow statement") && l.contains("INSERT INTO `leads`"))
        .collect();
    assert!(!slow.is_empty(), "{lines:#?}");
    assert!(
        slow.iter()
            .all(|l| l.contains(&format!("request_id={rid}"))),
        "every slow statement of the request names it: {slow:#?}"
    );
    let audit: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("slow statement") && l.contains("audit_log"))
        .collect();
    assert!(
        audit
            .iter()
            .all(|l| l.contains(&format!("request_id={rid}"))),
        "{audit:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("secret@example.com")),
        "bind values (personal data) never reach the log"
    );
    assert!(
        of_request
            .iter()
            .any(|l| l.contains("operation=upsertLead") && l.contains("status=200")),
        "{of_request:#?}"
    );
}

/// An INTERNAL error says nothing of the SQL, the database or paths; it carries the request
/// id, and the log line with that id has the cause.
#[test]
fn an_internal_error_is_scrubbed_and_its_cause_is_logged_under_its_request_id() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let (child, base, db) = spawn_server("internal", &[]);
    // The database loses a table behind the server's back.
    let mut conn = diesel::SqliteConnection::establish(&db.to_string_lossy()).unwrap();
    conn.batch_execute("ALTER TABLE campaigns RENAME TO campaigns_gone")
        .unwrap();
    let (rid, text) = post_as_admin(
        &base,
        json!({ "query": "{ campaigns(first: 5) { totalCount } }" }),
    );
    let lines = stop_server(child, &db);
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "INTERNAL", "{text}");
    assert_eq!(error["extensions"]["requestId"], rid.as_str(), "{text}");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("internal error"), "{text}");
    for leak in [
        "campaign", "SELECT", "FROM", "sqlite", "SQLite", "no such", "/tmp", ".rs", "diesel",
    ] {
        assert!(!message.contains(leak), "{leak} leaked: {text}");
    }
    for leak in ["SELECT", "sqlite", "no such", "/tmp", "diesel"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
    let logged: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(&rid) && l.contains("internal error"))
        .collect();
    assert!(
        logged.iter().any(|l| l.contains("no such table")),
        "the cause is logged under the request id: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains('\u{1b}')),
        "no colour codes when stderr is not a terminal"
    );
}

/// The real binary serving a fresh SQLite file, its stderr captured: (process, base URL, db).
fn spawn_server(
    name: &str,
    env: &[(&str, &str)],
) -> (std::process::Child, String, std::path::PathBuf) {
    use std::process::{Command, Stdio};
    let db = std::env::temp_dir().join(format!("funnelgraph-{name}-{}.db", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_funnelgraph"));
    command
        .arg("serve")
        .env("FUNNELGRAPH_DATABASE_URL", &db)
        .env("FUNNELGRAPH_JWT_SECRET", SECRET)
        .env("FUNNELGRAPH_BIND", format!("127.0.0.1:{port}"))
        .env("FUNNELGRAPH_LOG", "info");
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ureq::get(format!("{base}/ready")).call().is_err() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (child, base, db)
}

/// Stops the server and returns what it logged; removes its database.
fn stop_server(mut child: std::process::Child, db: &std::path::Path) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map(|l| l.unwrap())
        .collect();
    child.wait().unwrap();
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", db.display())).ok();
    }
    lines
}

/// POSTs a GraphQL request as ADMIN: (the response's request id, its body).
fn post_as_admin(base: &str, body: serde_json::Value) -> (String, String) {
    let token =
        funnelgraph::auth::mint_hs256(SECRET.as_bytes(), "ops", Role::Admin, 600, None, None)
            .unwrap();
    let mut resp = ureq::post(format!("{base}/graphql"))
        .header("Content-Type", "application/json")
        .header("Authorization", &format!("Bearer {token}"))
        .send(body.to_string())
        .unwrap();
    let rid = resp
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    (rid, resp.body_mut().read_to_string().unwrap())
}
