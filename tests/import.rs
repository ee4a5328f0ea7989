//! Bulk import over HTTP and from the command line (issue 7): NDJSON of mutation inputs plus
//! a `type`, batched, idempotent by externalId, a bad line refusing only itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use funnelgraph::auth::Role;
use serde_json::{json, Value};

fn post_ndjson(app: &TestApp, token: Option<&str>, content_type: &str, body: &str) -> (u16, Value) {
    post_import(app, token, "", content_type, body)
}

/// `POST /import` with a query string (`?type=lead` for CSV).
fn post_import(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent
        .post(format!("{}/import{query}", app.base))
        .header("Content-Type", content_type);
    if let Some(token) = token {
        req = req.header("Authorization", &format!("Bearer {token}"));
    }
    let mut resp = req.send(body).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn company_ndjson() -> String {
    [
        json!({ "type": "user", "externalId": "m1", "name": "Mia", "email": "mia@corp.test", "role": "MARKETER" }),
        json!({ "type": "campaign", "externalId": "c1", "name": "Spring", "channel": "email", "ownerExternalId": "m1" }),
        json!({ "type": "campaignCost", "externalId": "k1", "campaignExternalId": "c1", "amount": { "amount": "120.50", "currency": "USD" }, "incurredOn": "2026-02-01" }),
        json!({ "type": "lead", "externalId": "L1", "email": "l1@example.com", "createdAt": "2026-02-01T00:00:00Z", "attributes": [ { "key": "industry", "value": "retail" } ] }),
        json!({ "type": "touchpoint", "externalId": "t1", "leadExternalId": "L1", "campaignExternalId": "c1", "kind": "form_fill", "occurredAt": "2026-02-02T00:00:00Z" }),
        json!({ "type": "transition", "leadExternalId": "L1", "to": "MQL", "occurredAt": "2026-02-03T00:00:00Z", "externalId": "L1-mql" }),
        json!({ "type": "opportunity", "externalId": "O1", "name": "Deal", "primaryContactExternalId": "L1", "amount": { "amount": "1000.00", "currency": "USD" }, "createdAt": "2026-02-10T00:00:00Z" }),
        json!({ "type": "closeOpportunity", "externalId": "O1", "won": true, "closedAt": "2026-03-01T00:00:00Z" }),
        json!({ "type": "revenue", "externalId": "R1", "opportunityExternalId": "O1", "amount": { "amount": "1000.00", "currency": "USD" }, "bookedOn": "2026-03-01" }),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n")
}

fn errors_by_line(v: &Value) -> Vec<(u64, String)> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

both_databases! {
    fn csv_files_import_each_record_type_with_their_own_headers(app) {
        let token = app.token("sync", Role::Integration);
        let csv = |kind: &str, mapping: Option<&str>, body: &str| {
            let query = match mapping {
                None => format!("?type={kind}"),
                Some(m) => format!("?type={kind}&mapping={}", encode(m)),
            };
            post_import(app, Some(&token), &query, "text/csv; charset=utf-8", body)
        };
        let (status, v) = csv("user", None, "externalId,name,email,role\nm1,Mia,mia@corp.test,MARKETER\n");
        assert_eq!((status, counts(&v)), (200, (Some(1), Some(1), Some(0))), "{v}");
        let (_, v) = csv("campaign", None, "externalId,name,channel,ownerExternalId\r\nc1,\"Spring, \"\"EU\"\"\",email,m1\r\n");
        assert_eq!(counts(&v), (Some(1), Some(1), Some(0)), "{v}");
        // A contacts export with its own headers: mapped, the rest ignored; a bad date refuses
        // its own row (line 3), a row of two physical lines keeps its first line number (4).
        let mapping = r#"{"Record ID": "externalId", "Email": "email", "Create Date": "createdAt", "Industry": "attributes.industry", "Job Title": "title"}"#;
        let leads = "Record ID,First Name,Email,Create Date,Industry,Job Title\n\
                     L1,Ann,l1@example.com,2026-02-01T00:00:00Z,retail,\"VP, Marketing\"\n\
                     L2,Bob,l2@example.com,yesterday,retail,\n\
                     L3,Cy,l3@example.com,2026-02-03T00:00:00Z,\"two\nlines\",\n";
        let (status, v) = csv("lead", Some(mapping), leads);
        assert_eq!((status, counts(&v)), (200, (Some(3), Some(2), Some(1))), "{v}");
        assert_eq!(errors_by_line(&v), vec![(3, "BAD_USER_INPUT".to_string())], "{v}");
        let (_, v) = csv("touchpoint", None, "externalId,leadExternalId,campaignExternalId,kind,occurredAt\nt1,L1,c1,form_fill,2026-02-02T00:00:00Z\n");
        assert_eq!(counts(&v), (Some(1), Some(1), Some(0)), "{v}");
        let (_, v) = csv("opportunity", None, "externalId,name,primaryContactExternalId,contactExternalIds,amount.amount,amount.currency,createdAt\nO1,Deal,L1,L1;L3,1000.00,USD,2026-02-10T00:00:00Z\n");
        assert_eq!(counts(&v), (Some(1), Some(1), Some(0)), "{v}");
        let (_, v) = csv("closeOpportunity", None, "externalId,won,closedAt\nO1,TRUE,2026-03-01T00:00:00Z\n");
        assert_eq!(counts(&v), (Some(1), Some(1), Some(0)), "{v}");
        let (_, v) = csv("revenue", None, "externalId,opportunityExternalId,amount.amount,amount.currency,bookedOn\nR1,O1,1000.00,USD,2026-03-01");
        assert_eq!(counts(&v), (Some(1), Some(1), Some(0)), "{v}");
        let read = r#"{ lead(externalId: "L1") { stage title attributes { key value } touchpoints { externalId } }
            l3: lead(externalId: "L3") { attributes { key value } }
            campaign(externalId: "c1") { name owner { externalId } }
            opportunity(externalId: "O1") { status contacts { externalId } revenue { amount { amount } } } }"#;
        let state = app.ok(read, json!({}));
        assert_eq!(state["lead"]["stage"], "WON", "{state}");
        assert_eq!(state["lead"]["title"], "VP, Marketing");
        assert_eq!(state["lead"]["attributes"], json!([{ "key": "industry", "value": "retail" }]));
        assert_eq!(state["l3"]["attributes"], json!([{ "key": "industry", "value": "two\nlines" }]));
        assert_eq!(state["campaign"]["name"], "Spring, \"EU\"");
        assert_eq!(state["opportunity"]["revenue"][0]["amount"]["amount"], "1000.00");
        // The same file again changes nothing.
        let (_, v) = csv("lead", Some(mapping), leads);
        assert_eq!(counts(&v), (Some(3), Some(2), Some(1)), "{v}");
        assert_eq!(app.ok(read, json!({})), state);
        // A header naming no field refuses the whole file before any row is written; so does
        // a CSV without its type.
        let (status, v) = csv("lead", None, "externalId,emial,createdAt\nL9,x@y.z,2026-02-01T00:00:00Z\n");
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{v}");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains("\"emial\""), "{v}");
        let (status, v) = post_import(app, Some(&token), "", "text/csv", "externalId\nL9\n");
        assert_eq!(status, 400, "{v}");
        assert_eq!(app.ok(r#"{ lead(externalId: "L9") { id } }"#, json!({}))["lead"], Value::Null);
    }

    fn an_import_writes_every_record_type_through_its_use_case(app) {
        let token = app.token("sync", Role::Integration);
        let (status, v) = post_ndjson(app, Some(&token), "application/x-ndjson", &company_ndjson());
        assert_eq!(status, 200, "{v}");
        assert_eq!((v["lines"].as_u64(), v["applied"].as_u64(), v["failed"].as_u64()), (Some(9), Some(9), Some(0)), "{v}");
        let state = app.ok(r#"{ lead(externalId: "L1") { stage email attributes { key value } touchpoints { externalId } }
            campaign(externalId: "c1") { owner { externalId } cost { amount } }
            opportunity(externalId: "O1") { status revenue { amount { amount } } } }"#, json!({}));
        assert_eq!(state["lead"]["stage"], "WON", "{state}");
        assert_eq!(state["lead"]["attributes"], json!([{ "key": "industry", "value": "retail" }]));
        assert_eq!(state["campaign"]["cost"]["amount"], "120.50");
        assert_eq!(state["opportunity"]["revenue"][0]["amount"]["amount"], "1000.00");
        // The same file again: every record is an unchanged replay, nothing doubles.
        let (status, v) = post_ndjson(app, Some(&token), "application/x-ndjson", &company_ndjson());
        assert_eq!((status, v["applied"].as_u64(), v["failed"].as_u64()), (200, Some(9), Some(0)), "{v}");
        let again = app.ok(r#"{ lead(externalId: "L1") { stage email attributes { key value } touchpoints { externalId } }
            campaign(externalId: "c1") { owner { externalId } cost { amount } }
            opportunity(externalId: "O1") { status revenue { amount { amount } } } }"#, json!({}));
        assert_eq!(again, state);
    }

    fn a_bad_line_refuses_only_itself_with_its_line_number(app) {
        let token = app.token("sync", Role::Integration);
        let body = [
            r#"{"type":"campaign","externalId":"c1","name":"C","channel":"email"}"#,
            r#"{ not json"#,
            r#"{"type":"lead","externalId":"L1","createdAt":"2026-02-01T00:00:00Z"}"#,
            r#"{"type":"meeting","externalId":"x"}"#,
            r#"{"type":"lead","externalId":"L2","createdAt":"yesterday"}"#,
            "",
            r#"{"type":"touchpoint","externalId":"t1","leadExternalId":"nobody","campaignExternalId":"c1","kind":"visit","occurredAt":"2026-02-02T00:00:00Z"}"#,
            r#"{"type":"transition","leadExternalId":"L1","to":"HOT","occurredAt":"2026-02-03T00:00:00Z"}"#,
            r#"{"type":"revenue","externalId":"R9","opportunityExternalId":"O1","amount":{"amount":"1.001","currency":"USD"},"bookedOn":"2026-03-01"}"#,
            r#"{"type":"lead","externalId":"L3","createdAt":"2026-02-01T00:00:00Z"}"#,
        ]
        .join("\n");
        let (status, v) = post_ndjson(app, Some(&token), "application/x-ndjson", &body);
        assert_eq!(status, 200, "{v}");
        assert_eq!((v["lines"].as_u64(), v["applied"].as_u64(), v["failed"].as_u64()), (Some(9), Some(3), Some(6)), "{v}");
        let errors = errors_by_line(&v);
        assert_eq!(errors.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![2, 4, 5, 7, 8, 9], "{v}");
        assert!(errors.iter().all(|(_, code)| code == "BAD_USER_INPUT" || code == "NOT_FOUND"), "{v}");
        assert_eq!(errors[3].1, "NOT_FOUND", "{v}");
        let messages = v["errors"].to_string();
        assert!(messages.contains("unknown type \\\"meeting\\\""), "{messages}");
        assert!(messages.contains("yesterday"), "{messages}");
        // The good lines around the bad ones were written.
        let state = app.ok(r#"{ leads(first: 10) { totalCount nodes { externalId stage } } }"#, json!({}));
        assert_eq!(state["leads"]["totalCount"], 2);
        assert_eq!(state["leads"]["nodes"][0]["stage"], "INQUIRY", "the refused move changed nothing");
    }

    fn a_batch_with_many_refused_lines_still_writes_the_rest(app) {
        // Past eight refusals a batch switches from retrying without the bad line to one
        // savepoint per record; both must give the same answer.
        let token = app.token("sync", Role::Integration);
        let mut lines = vec![r#"{"type":"campaign","externalId":"c1","name":"C","channel":"email"}"#.to_string()];
        for i in 0..30 {
            let lead = if i % 3 == 0 { "nobody".to_string() } else { format!("L{i}") };
            lines.push(format!(r#"{{"type":"lead","externalId":"L{i}","createdAt":"2026-02-01T00:00:00Z"}}"#));
            lines.push(format!(r#"{{"type":"touchpoint","externalId":"t{i}","leadExternalId":"{lead}","campaignExternalId":"c1","kind":"visit","occurredAt":"2026-02-02T00:00:00Z"}}"#));
        }
        let (status, v) = post_ndjson(app, Some(&token), "application/x-ndjson", &lines.join("\n"));
        assert_eq!((status, v["applied"].as_u64(), v["failed"].as_u64()), (200, Some(51), Some(10)), "{v}");
        let refused: Vec<u64> = errors_by_line(&v).iter().map(|(l, _)| *l).collect();
        assert_eq!(refused, (0..30).filter(|i| i % 3 == 0).map(|i| 3 + 2 * i as u64).collect::<Vec<_>>(), "{v}");
        let touches = app.ok(r#"{ leads(first: 100) { nodes { touchpoints { externalId } } } }"#, json!({}));
        let count: usize = touches["leads"]["nodes"].as_array().unwrap().iter().map(|l| l["touchpoints"].as_array().unwrap().len()).sum();
        assert_eq!(count, 20);
    }

    fn imports_follow_the_role_rules_of_the_mutations(app) {
        let body = company_ndjson();
        let (status, v) = post_ndjson(app, Some(&app.token("a", Role::Analyst)), "application/x-ndjson", &body);
        assert_eq!((status, code(&v)), (403, "FORBIDDEN".to_string()), "{v}");
        let (status, v) = post_ndjson(app, None, "application/x-ndjson", &body);
        assert_eq!((status, code(&v)), (401, "UNAUTHENTICATED".to_string()), "{v}");
        let (status, _) = post_ndjson(app, Some(&app.token("a", Role::Admin)), "application/json", &body);
        assert_eq!(status, 415);
        // A marketing manager may write campaigns and costs, not the sync's records.
        let body = [
            r#"{"type":"campaign","externalId":"c1","name":"C","channel":"email"}"#,
            r#"{"type":"campaignCost","externalId":"k1","campaignExternalId":"c1","amount":{"amount":"5.00","currency":"USD"},"incurredOn":"2026-02-01"}"#,
            r#"{"type":"lead","externalId":"L1","createdAt":"2026-02-01T00:00:00Z"}"#,
            r#"{"type":"user","externalId":"u1","name":"U","role":"ADMIN"}"#,
        ]
        .join("\n");
        let (status, v) = post_ndjson(app, Some(&app.token("mm", Role::MarketingManager)), "application/x-ndjson", &body);
        assert_eq!((status, v["applied"].as_u64()), (200, Some(2)), "{v}");
        assert_eq!(errors_by_line(&v), vec![(3, "FORBIDDEN".to_string()), (4, "FORBIDDEN".to_string())], "{v}");
        let campaigns = app.ok(r#"{ campaigns { totalCount } leads { totalCount } }"#, json!({}));
        assert_eq!((campaigns["campaigns"]["totalCount"].as_i64(), campaigns["leads"]["totalCount"].as_i64()), (Some(1), Some(0)));
    }

    fn a_large_import_spans_several_batches(app) {
        let token = app.token("sync", Role::Integration);
        let mut body = String::from(r#"{"type":"campaign","externalId":"c1","name":"C","channel":"email"}"#);
        for i in 0..2_500 {
            body.push_str(&format!("\n{{\"type\":\"lead\",\"externalId\":\"L{i}\",\"createdAt\":\"2026-02-01T00:00:00Z\"}}"));
            body.push_str(&format!("\n{{\"type\":\"touchpoint\",\"externalId\":\"t{i}\",\"leadExternalId\":\"L{i}\",\"campaignExternalId\":\"c1\",\"kind\":\"visit\",\"occurredAt\":\"2026-02-02T00:00:00Z\"}}"));
        }
        body.push('\n');
        let started = std::time::Instant::now();
        let (status, v) = post_ndjson(app, Some(&token), "application/x-ndjson", &body);
        eprintln!("[figure] {} import of 5,001 lines over HTTP (debug build): {:?}", app.backend, started.elapsed());
        assert_eq!((status, v["applied"].as_u64(), v["failed"].as_u64()), (200, Some(5_001), Some(0)), "{v}");
        let counts = app.ok(r#"{ leads(first: 1) { totalCount } }"#, json!({}));
        assert_eq!(counts["leads"]["totalCount"], 2_500);
        let report = app.ok(r#"{ attribution(model: FIRST_TOUCH, period: { from: "2026-01-01", to: "2026-03-01" }, stage: INQUIRY) { totalConversions rows { conversions } } }"#, json!({}));
        assert_eq!(report["attribution"]["totalConversions"], 2_500.0);
    }
}

#[test]
fn the_command_line_imports_a_file_with_a_summary() {
    let dir = std::env::temp_dir();
    let db = dir.join(format!("funnelgraph-import-cli-{}.db", std::process::id()));
    let file = dir.join(format!(
        "funnelgraph-import-cli-{}.ndjson",
        std::process::id()
    ));
    std::fs::write(
        &file,
        format!("{}\n{{\"type\":\"lead\"}}\n", company_ndjson()),
    )
    .unwrap();
    let (summary, progress) = import_cli(&db, &[file.as_os_str()]);
    assert_eq!(counts(&summary), (Some(10), Some(9), Some(1)), "{summary}");
    assert_eq!(summary["errors"][0]["line"], 10);
    assert!(progress.contains("import 100%"), "{progress}");
    std::fs::remove_file(file).ok();
}

/// `funnelgraph import ARGS` on a fresh SQLite file `db` (removed after): its summary and
/// its progress output.
fn import_cli(db: &std::path::Path, args: &[&std::ffi::OsStr]) -> (Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_funnelgraph"))
        .arg("import")
        .args(args)
        .env("FUNNELGRAPH_DATABASE_URL", db)
        .output()
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", db.display())).ok();
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    (summary, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// An import summary's (lines, applied, failed).
fn counts(v: &Value) -> (Option<u64>, Option<u64>, Option<u64>) {
    (
        v["lines"].as_u64(),
        v["applied"].as_u64(),
        v["failed"].as_u64(),
    )
}

#[test]
fn the_command_line_imports_a_csv_export_through_a_column_mapping() {
    let dir = std::env::temp_dir();
    let id = std::process::id();
    let db = dir.join(format!("funnelgraph-import-csv-{id}.db"));
    let file = dir.join(format!("funnelgraph-import-csv-{id}.csv"));
    let map = dir.join(format!("funnelgraph-import-csv-{id}.json"));
    std::fs::write(
        &file,
        "Record ID,First Name,Email,Create Date,Industry\r\n\
         C1,Ann,ann@example.com,2026-02-01T00:00:00Z,retail\r\n\
         C2,Bob,bob@example.com,not a date,retail\r\n\
         C3,Cy,cy@example.com,2026-02-03T00:00:00Z,\r\n",
    )
    .unwrap();
    std::fs::write(
        &map,
        r#"{"Record ID": "externalId", "Email": "email", "Create Date": "createdAt", "Industry": "attributes.industry"}"#,
    )
    .unwrap();
    let args = ["--type", "lead", "--map"].map(std::ffi::OsStr::new);
    let (summary, progress) = import_cli(
        &db,
        &[args[0], args[1], args[2], map.as_os_str(), file.as_os_str()],
    );
    assert_eq!(counts(&summary), (Some(3), Some(2), Some(1)), "{summary}");
    assert_eq!(summary["errors"][0]["line"], 3, "{summary}");
    assert!(progress.contains("records/s"), "{progress}");
    std::fs::remove_file(file).ok();
    std::fs::remove_file(map).ok();
}
