//! The README's walkthroughs, run against the demo company as a new user would run them
//! (issue 12): the examples, attribution, closing a quarter, a marketer's report, bulk
//! import, and `serve --dev` tokens that survive a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use funnelgraph::auth::Role;
use serde_json::{json, Value};

fn with_demo(app: &TestApp) {
    let summary = actix_web::rt::System::new()
        .block_on(funnelgraph::demo::load(&app.db, "USD"))
        .map_err(|e| e.message())
        .unwrap();
    assert!(
        summary.contains("4 scoring rules, 2 pay plans"),
        "{summary}"
    );
}

fn money(v: &Value) -> i64 {
    let text = v["amount"].as_str().unwrap();
    let (int, frac) = text.split_once('.').unwrap();
    let cents =
        int.trim_start_matches('-').parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap();
    if text.starts_with('-') {
        -cents
    } else {
        cents
    }
}

const Q2: &str = "{from: \"2026-04-01\", to: \"2026-07-01\"}";

both_databases! {
    fn the_readme_walkthroughs_work_on_the_demo(app) {
        with_demo(app);
        let sync = app.token("crm-sync", Role::Integration);
        // Examples: upsert by externalId twice, a move that skips stages, a page of deals.
        let upsert = "mutation { upsertLead(input: {externalId: \"L1\", email: \"ada@example.com\", createdAt: \"2026-03-01T09:00:00Z\"}) { id stage } }";
        let a = app.gql_with(&sync, upsert, json!({}));
        let b = app.gql_with(&sync, upsert, json!({}));
        assert_eq!(a, b);
        assert_eq!(a["data"]["upsertLead"]["stage"], "INQUIRY");
        let v = app.gql_with(&sync, "mutation { transitionLead(input: {leadExternalId: \"L1\", to: SQL, occurredAt: \"2026-03-04T10:00:00Z\", externalId: \"move-1\"}) { stage stageHistory { from to occurredAt } } }", json!({}));
        assert_eq!(v["data"]["transitionLead"]["stageHistory"].as_array().unwrap().len(), 4, "created, then MQL and SAL skipped at one instant, then SQL: {v}");
        let v = app.gql_with(&sync, "{ opportunities(first: 10, status: WON) { totalCount nodes { externalId amount { amount currency } revenue { amount { amount } bookedOn } } } }", json!({}));
        assert!(v["data"]["opportunities"]["totalCount"].as_i64().unwrap() > 0, "{v}");

        // Attribution in one query: rows + unattributed = total, to the cent.
        let admin = app.token("admin", Role::Admin);
        let v = app.gql_with(&admin, &format!("{{ attribution(model: W_SHAPED, period: {Q2}, stage: WON, groupBy: CHANNEL) {{ totalRevenue {{ amount }} unattributedRevenue {{ amount }} rows {{ key conversions revenue {{ amount }} }} }} }}"), json!({}));
        let r = &v["data"]["attribution"];
        let rows: i64 = r["rows"].as_array().unwrap().iter().map(|row| money(&row["revenue"])).sum();
        assert!(money(&r["totalRevenue"]) > 0, "the demo books revenue in Q2: {v}");
        assert_eq!(rows + money(&r["unattributedRevenue"]), money(&r["totalRevenue"]));
        let v = app.gql_with(&admin, &format!("{{ campaignRoi(model: MARKOV, period: {Q2}) {{ campaign {{ externalId }} cost {{ amount }} attributedRevenue {{ amount }} roi costPerWin {{ amount }} }} }}"), json!({}));
        assert_eq!(v["data"]["campaignRoi"].as_array().unwrap().len(), 8, "{v}");

        // A marketer's report adds up for them too.
        let mark = app.token("mark", Role::Marketer);
        let v = app.gql_with(&mark, &format!("{{ attribution(model: LINEAR, period: {Q2}) {{ totalRevenue {{ amount }} unattributedRevenue {{ amount }} otherRevenue {{ amount }} rows {{ revenue {{ amount }} }} }} }}"), json!({}));
        let r = &v["data"]["attribution"];
        let rows: i64 = r["rows"].as_array().unwrap().iter().map(|row| money(&row["revenue"])).sum();
        assert!(money(&r["otherRevenue"]) > 0);
        assert_eq!(rows + money(&r["otherRevenue"]) + money(&r["unattributedRevenue"]), money(&r["totalRevenue"]));

        // Closing a quarter.
        let finance = app.token("finance", Role::Finance);
        let statement = format!("{{ compensationStatement(userExternalId: \"mark\", period: {Q2}) {{ status total {{ amount }} lines {{ kind campaign {{ externalId }} opportunity {{ externalId }} basis {{ amount }} rate amount {{ amount }} description }} }} }}");
        let live = app.gql_with(&finance, &statement, json!({}));
        let s = &live["data"]["compensationStatement"];
        assert_eq!(s["status"], "OPEN", "{live}");
        assert!(money(&s["total"]) > 0, "{live}");
        let kinds: Vec<&str> = s["lines"].as_array().unwrap().iter().map(|l| l["kind"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"COMMISSION") && kinds.contains(&"LEAD_BONUS"), "{kinds:?}");
        let (status, csv) = app.get_with_auth("/export/statements.csv?from=2026-04-01&to=2026-07-01", &finance);
        assert_eq!(status, 200);
        for m in ["mark", "mia", "max"] {
            assert!(csv.lines().any(|l| l.contains(m)), "{m} in the CSV:\n{csv}");
        }
        let v = app.gql_with(&finance, &format!("mutation {{ closePeriod(period: {Q2}) {{ statements closedAt }} }}"), json!({}));
        assert_eq!(v["data"]["closePeriod"]["statements"], 3, "{v}");
        let closed = app.gql_with(&finance, &statement, json!({}));
        assert_eq!(closed["data"]["compensationStatement"]["status"], "CLOSED");
        assert_eq!(closed["data"]["compensationStatement"]["total"], s["total"]);
        let v = app.gql_with(&sync, "mutation { recordRevenue(input: {externalId: \"late\", opportunityExternalId: \"OPP-001\", amount: {amount: \"1.00\", currency: \"USD\"}, bookedOn: \"2026-05-01\"}) { id } }", json!({}));
        assert_eq!(code(&v), "PERIOD_CLOSED", "{v}");
        let v = app.gql_with(&finance, &format!("mutation {{ reopenPeriod(period: {Q2}) }}"), json!({}));
        assert_eq!(v["data"]["reopenPeriod"], true);

        // The lead definition is loaded: calibration has rules to report on.
        let v = app.gql_with(&admin, &format!("{{ scoringCalibration(period: {Q2}) {{ rule {{ externalId }} }} }}"), json!({}));
        assert_eq!(v["data"]["scoringCalibration"].as_array().unwrap().len(), 4, "{v}");

        // Bulk import, the README's four lines.
        let body = "{\"type\":\"campaign\",\"externalId\":\"c1\",\"name\":\"Spring\",\"channel\":\"email\"}\n{\"type\":\"lead\",\"externalId\":\"L9\",\"email\":\"ana@example.com\",\"createdAt\":\"2026-02-01T00:00:00Z\"}\n{\"type\":\"touchpoint\",\"externalId\":\"t9\",\"leadExternalId\":\"L9\",\"campaignExternalId\":\"c1\",\"kind\":\"visit\",\"occurredAt\":\"2026-02-02T00:00:00Z\"}\n{\"type\":\"lead\",\"externalId\":\"L2\",\"createdAt\":\"yesterday\"}\n";
        let mut resp = ureq::post(format!("{}/import", app.base))
            .header("Content-Type", "application/x-ndjson")
            .header("Authorization", &format!("Bearer {sync}"))
            .send(body)
            .unwrap();
        let summary: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!((summary["lines"].as_i64(), summary["applied"].as_i64(), summary["failed"].as_i64()), (Some(4), Some(3), Some(1)), "{summary}");
        assert_eq!(summary["errors"][0]["line"], 4);
    }
}

/// `serve --dev` keeps its secret in the database: a token minted by `funnelgraph token`
/// (no secret exported) verifies against the server, before and after a restart.
#[test]
fn dev_tokens_survive_a_restart_and_token_uses_the_same_secret() {
    use std::process::{Command, Stdio};
    let db = std::env::temp_dir().join(format!("funnelgraph-dev-{}.db", std::process::id()));
    let bin = env!("CARGO_BIN_EXE_funnelgraph");
    let serve = |port: u16| {
        let child = Command::new(bin)
            .args(["serve", "--dev"])
            .env("FUNNELGRAPH_DATABASE_URL", &db)
            .env("FUNNELGRAPH_BIND", format!("127.0.0.1:{port}"))
            .env_remove("FUNNELGRAPH_JWT_SECRET")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while ureq::get(format!("http://127.0.0.1:{port}/ready"))
            .call()
            .is_err()
        {
            assert!(std::time::Instant::now() < deadline, "server did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child
    };
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let me = |port: u16, token: &str| -> Value {
        let mut resp = ureq::post(format!("http://127.0.0.1:{port}/graphql"))
            .header("Content-Type", "application/json")
            .header("Authorization", &format!("Bearer {token}"))
            .config()
            .http_status_as_error(false)
            .build()
            .send(json!({ "query": "{ me { externalId role } }" }).to_string())
            .unwrap();
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    };
    let p1 = port();
    let mut first = serve(p1);
    let out = Command::new(bin)
        .args(["token", "--sub", "admin", "--role", "ADMIN"])
        .env("FUNNELGRAPH_DATABASE_URL", &db)
        .env_remove("FUNNELGRAPH_JWT_SECRET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(me(p1, &token)["data"]["me"]["externalId"], "admin");
    first.kill().unwrap();
    first.wait().unwrap();
    let p2 = port();
    let mut second = serve(p2);
    let v = me(p2, &token);
    second.kill().unwrap();
    second.wait().unwrap();
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", db.display())).ok();
    }
    assert_eq!(v["data"]["me"]["role"], "ADMIN", "{v}");
}
