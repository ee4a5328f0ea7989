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
        // Past eight refused records of the one-by-one kinds (campaigns owned by nobody), the
        // batch is written again with a savepoint per record and per run of the set-based
        // kinds between them: still one batch, every good line in, every bad one named.
        let mut lines = Vec::new();
        for i in 0..12 {
            lines.push(format!(r#"{{"type":"campaign","externalId":"x{i}","name":"X","channel":"email","ownerExternalId":"nobody"}}"#));
            lines.push(format!(r#"{{"type":"lead","externalId":"M{i}","createdAt":"2026-02-01T00:00:00Z"}}"#));
        }
        let (status, v) = post_ndjson(app, Some(&token), "application/x-ndjson", &lines.join("\n"));
        assert_eq!((status, v["applied"].as_u64(), v["failed"].as_u64()), (200, Some(12), Some(12)), "{v}");
        let refused: Vec<(u64, String)> = errors_by_line(&v);
        assert_eq!(refused, (0..12).map(|i| (1 + 2 * i, "NOT_FOUND".to_string())).collect::<Vec<_>>(), "{v}");
        let leads = app.ok(r#"{ leads(first: 200) { nodes { externalId } } }"#, json!({}));
        let made = leads["leads"]["nodes"].as_array().unwrap().iter().filter(|l| l["externalId"].as_str().unwrap().starts_with('M')).count();
        assert_eq!(made, 12);
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

/// A small deterministic generator for the mixed files below.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn at(&mut self) -> String {
        format!(
            "2026-0{}-{:02}T{:02}:00:00Z",
            2 + self.below(3),
            1 + self.below(28),
            self.below(24)
        )
    }
}

/// A CRM's history as one NDJSON file: leads, touchpoints and moves interleaved and out of
/// time order, records referring to rows earlier in the file, duplicates and changes of
/// earlier records, deals in between, and a sample of every refusal.
fn mixed_history(seed: u64, leads: u64) -> Vec<Value> {
    let mut d = Dice(seed);
    let mut out = vec![
        json!({ "type": "user", "externalId": "m1", "name": "Mia", "email": "mia@corp.test", "role": "MARKETER" }),
        json!({ "type": "user", "externalId": "s1", "name": "Sal", "email": "sal@corp.test", "role": "SALES_REP" }),
    ];
    for c in 0..4 {
        out.push(json!({ "type": "campaign", "externalId": format!("c{c}"), "name": format!("Campaign {c}"), "channel": (["email", "paid", "events", "web"][c]), "ownerExternalId": "m1" }));
    }
    let kinds = ["form_fill", "email_click", "webinar", "page_view"];
    let stages = [
        "MQL",
        "SAL",
        "SQL",
        "RECYCLED",
        "DISQUALIFIED",
        "INQUIRY",
        "OPPORTUNITY",
    ];
    let (mut made, mut touches, mut moves, mut deals) = (0u64, 0u64, 0u64, 0u64);
    // Accounts upserted so far (records name only these: a record refused for naming one that
    // does not exist yet would be written by the resend of each row's last version).
    let mut accounts: Vec<&str> = Vec::new();
    while made < leads {
        let known = |d: &mut Dice, made: u64| format!("L{}", d.below(made.max(1) + 2));
        match d.below(20) {
            0..=4 => {
                let industry = ["retail", "software", "retail", "health"][d.below(4) as usize];
                // Leads of accounts by domain (a.example, b.example), of none, and by name.
                let domain = ["example.com", "a.example", "b.example", "gmail.com"][d.below(4) as usize];
                let mut lead = json!({ "type": "lead", "externalId": format!("L{made}"), "email": format!("l{made}@{domain}"), "createdAt": d.at(), "title": (["CTO", "VP", "Analyst"][d.below(3) as usize]), "attributes": [{ "key": "industry", "value": industry }] });
                if d.below(6) == 0 {
                    lead.as_object_mut().unwrap().remove("attributes");
                }
                if d.below(8) == 0 && !accounts.is_empty() {
                    lead["accountExternalId"] = json!(accounts[d.below(accounts.len() as u64) as usize]);
                }
                out.push(lead);
                made += 1;
            }
            5 => {
                // An earlier lead again: the same, or changed (name, creation time, attributes).
                let n = d.below(made.max(1));
                let mut lead = json!({ "type": "lead", "externalId": format!("L{n}"), "email": format!("l{n}@example.com"), "createdAt": "2026-02-01T00:00:00Z", "fullName": if d.below(2) == 0 { Value::Null } else { json!("Renamed") }, "attributes": [{ "key": "industry", "value": "retail" }, { "key": "size", "value": format!("{}", d.below(3)) }] });
                if d.below(3) == 0 {
                    lead["createdAt"] = json!(d.at());
                }
                out.push(lead);
            }
            6..=12 => {
                let ext = if touches > 0 && d.below(8) == 0 {
                    // An earlier touchpoint again: sent as it was, or changed.
                    format!("t{}", d.below(touches))
                } else {
                    touches += 1;
                    format!("t{}", touches - 1)
                };
                out.push(json!({ "type": "touchpoint", "externalId": ext, "leadExternalId": known(&mut d, made), "campaignExternalId": format!("c{}", d.below(5)), "kind": kinds[d.below(4) as usize], "occurredAt": d.at() }));
            }
            13..=17 => {
                let mut mv = json!({ "type": "transition", "leadExternalId": known(&mut d, made), "to": stages[d.below(7) as usize], "occurredAt": d.at() });
                match d.below(4) {
                    0 => {
                        mv["externalId"] = json!(format!("mv{moves}"));
                        moves += 1;
                    }
                    1 if moves > 0 => mv["externalId"] = json!(format!("mv{}", d.below(moves))),
                    _ => {}
                }
                if d.below(3) == 0 {
                    mv["reason"] = json!("sync");
                }
                out.push(mv);
            }
            18 => {
                let contact = known(&mut d, made);
                let others = [known(&mut d, made), known(&mut d, made)];
                // Mostly a new deal; now and then an earlier one again, changed.
                let ext = if deals > 0 && d.below(5) == 0 {
                    format!("O{}", d.below(deals))
                } else {
                    deals += 1;
                    format!("O{}", deals - 1)
                };
                let mut deal = json!({ "type": "opportunity", "externalId": ext, "name": "Deal", "primaryContactExternalId": contact, "contactExternalIds": (&others[..d.below(3) as usize]), "ownerExternalId": "s1", "amount": { "amount": format!("{}.00", 100 + d.below(900)), "currency": "USD" }, "createdAt": d.at() });
                if d.below(4) == 0 && !accounts.is_empty() {
                    deal["accountExternalId"] = json!(accounts[d.below(accounts.len() as u64) as usize]);
                }
                out.push(deal);
                if d.below(2) == 0 {
                    out.push(json!({ "type": "closeOpportunity", "externalId": ext, "won": d.below(3) != 0, "closedAt": "2026-05-01T00:00:00Z" }));
                }
                // Revenue on this deal or an earlier one (refused unless it is won); now and
                // then an earlier revenue event again, the same or moved.
                let on = format!("O{}", d.below(deals));
                let revenue = if d.below(4) == 0 && deals > 1 { format!("R{}", d.below(deals - 1)) } else { format!("R{}", deals - 1) };
                out.push(json!({ "type": "revenue", "externalId": revenue, "opportunityExternalId": on, "amount": { "amount": format!("{}.50", d.below(500)), "currency": "USD" }, "bookedOn": "2026-05-02" }));
            }
            _ => match d.below(6) {
                // Accounts: taking, changing or clashing on a domain (leads match again), and a
                // free-mail domain (refused).
                // free-mail domain (refused). Each account keeps to its own domains, so no
                // clash refused now would pass on a resend.
                4 | 5 => {
                    let (ext, domain) = match d.below(3) {
                        0 => ("A0", json!(["a.example", "c.example"][d.below(2) as usize])),
                        1 => ("A1", [json!("b.example"), Value::Null][d.below(2) as usize].clone()),
                        _ => ("A2", json!("gmail.com")),
                    };
                    if ext != "A2" && !accounts.contains(&ext) {
                        accounts.push(ext);
                    }
                    out.push(json!({ "type": "account", "externalId": ext, "name": "Account", "domain": domain, "attributes": [{ "key": "segment", "value": "SMB" }] }));
                }
                0 => out.push(json!({ "type": "lead", "externalId": format!("bad{made}"), "email": "no-at-sign", "createdAt": d.at() })),
                1 => out.push(json!({ "type": "touchpoint", "externalId": format!("tx{made}"), "leadExternalId": "L0", "campaignExternalId": "nowhere", "kind": "x", "occurredAt": d.at() })),
                2 => out.push(json!({ "type": "touchpoint", "externalId": "", "leadExternalId": "L0", "campaignExternalId": "c0", "kind": "x", "occurredAt": d.at() })),
                _ => out.push(Value::String("{not json".into())),
            },
        }
    }
    out
}

fn as_ndjson(records: &[Value]) -> String {
    records
        .iter()
        .map(|r| match r {
            Value::String(raw) => raw.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each record of the file sent as its mutation; the refused ones as (line, code).
fn send_one_by_one(app: &TestApp, token: &str, records: &[Value]) -> Vec<(u64, String)> {
    let mut refused = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let line = i as u64 + 1;
        let Value::Object(fields) = record else {
            refused.push((line, "BAD_USER_INPUT".to_string()));
            continue;
        };
        let mut input = fields.clone();
        let kind = input.remove("type").unwrap();
        let (mutation, input_type) = match kind.as_str().unwrap() {
            "user" => ("upsertUser", "UserInput"),
            "campaign" => ("upsertCampaign", "CampaignInput"),
            "lead" => ("upsertLead", "LeadInput"),
            "account" => ("upsertAccount", "AccountInput"),
            "touchpoint" => ("recordTouchpoint", "TouchpointInput"),
            "transition" => ("transitionLead", "TransitionInput"),
            "opportunity" => ("upsertOpportunity", "OpportunityInput"),
            "closeOpportunity" => ("closeOpportunity", "CloseOpportunityInput"),
            "revenue" => ("recordRevenue", "RevenueInput"),
            other => panic!("no mutation for {other}"),
        };
        let v = app.gql_with(
            token,
            &format!("mutation($i: {input_type}!) {{ {mutation}(input: $i) {{ __typename }} }}"),
            json!({ "i": input }),
        );
        if v.get("errors").is_some() {
            refused.push((line, code(&v)));
        }
    }
    refused
}

/// Every table the import writes, as text, with ids replaced by externalIds; stage rows,
/// touchpoints and audit entries in the order they were written.
fn dump(app: &TestApp) -> Vec<(String, Vec<String>)> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text)]
        line: String,
    }
    let t = |col: &str| format!("COALESCE(CAST({col} AS TEXT), '-')");
    let join = |cols: &[&str]| {
        cols.iter()
            .map(|c| t(c))
            .collect::<Vec<_>>()
            .join(" || '|' || ")
    };
    let queries = [
        ("leads", format!("SELECT {} AS line FROM leads l ORDER BY l.external_id", join(&[
            "l.external_id", "l.email", "l.full_name", "l.company", "l.title", "l.stage", "l.score",
            "(SELECT external_id FROM users u WHERE u.id = l.owner_id)", "l.created_at", "l.mql_at", "l.sal_at",
            "l.sql_at", "l.opportunity_at", "l.won_at",
            "(SELECT external_id FROM campaigns c WHERE c.id = l.source_campaign_id)",
            "(SELECT external_id FROM accounts a WHERE a.id = l.account_id)", "l.account_explicit", "l.email_domain",
        ]))),
        ("accounts", format!("SELECT {} AS line FROM accounts a ORDER BY a.id", join(&["a.external_id", "a.name", "a.domain"]))),
        ("lead ids", format!("SELECT {} AS line FROM leads l ORDER BY l.id", join(&["l.external_id"]))),
        ("attributes", format!("SELECT {} AS line FROM lead_attributes a JOIN leads l ON l.id = a.lead_id ORDER BY l.external_id, a.key", join(&["l.external_id", "a.key", "a.value"]))),
        ("touchpoints", format!("SELECT {} AS line FROM touchpoints t JOIN leads l ON l.id = t.lead_id JOIN campaigns c ON c.id = t.campaign_id ORDER BY t.id", join(&["t.external_id", "l.external_id", "c.external_id", "t.kind", "t.occurred_at"]))),
        ("stage rows", format!("SELECT {} AS line FROM stage_transitions s JOIN leads l ON l.id = s.lead_id ORDER BY s.id", join(&["l.external_id", "s.external_id", "s.from_stage", "s.to_stage", "s.occurred_at", "s.actor", "s.reason"]))),
        ("audit", format!("SELECT {} AS line FROM audit_log ORDER BY id", join(&["actor", "role", "operation", "external_id", "detail"]))),
        ("opportunities", format!("SELECT {} AS line FROM opportunities o JOIN leads l ON l.id = o.primary_contact_id ORDER BY o.id", join(&["o.external_id", "o.name", "l.external_id", "(SELECT external_id FROM users u WHERE u.id = o.owner_id)", "o.amount_cents", "o.status", "o.created_at", "o.closed_at", "(SELECT external_id FROM accounts a WHERE a.id = o.account_id)"]))),
        ("contacts", format!("SELECT {} AS line FROM opportunity_contacts c JOIN opportunities o ON o.id = c.opportunity_id JOIN leads l ON l.id = c.lead_id ORDER BY o.external_id, c.position", join(&["o.external_id", "l.external_id", "c.position"]))),
        ("revenue", format!("SELECT {} AS line FROM revenue_events r JOIN opportunities o ON o.id = r.opportunity_id ORDER BY r.id", join(&["r.external_id", "o.external_id", "r.amount_cents", "r.booked_on"]))),
    ];
    let mut conn = app.db.get().unwrap();
    queries
        .iter()
        .map(|(name, sql)| {
            let rows: Vec<Line> = diesel::sql_query(sql.as_str()).load(&mut *conn).unwrap();
            (name.to_string(), rows.into_iter().map(|r| r.line).collect())
        })
        .collect()
}

/// The server's journey index, kept current from the change log, equals one rebuilt from the
/// database: every row the batch wrote reached the analytics engine.
fn index_agrees(app: &TestApp) {
    let mut conn = app.db.get().unwrap();
    let index = &app.reports.index;
    index.catch_up(&mut conn).unwrap();
    let rebuilt = funnelgraph::service::index::JourneyIndex::rebuilt(&mut conn).unwrap();
    index
        .read(|j| assert_eq!(j, &rebuilt, "index vs database"))
        .unwrap();
}

/// The reports a user would check, as answered.
fn answers(app: &TestApp) -> Vec<Value> {
    let period = json!({ "from": "2026-01-01", "to": "2026-12-31" });
    let mut out = vec![app.ok(
        "query($p: PeriodInput!) { funnel(period: $p) { cohortSize stages { stage entered convertedToNext medianDaysToNext } recycled disqualified lost } }",
        json!({ "p": period }),
    )];
    for (model, stage) in [
        ("LINEAR", "MQL"),
        ("W_SHAPED", "SQL"),
        ("FIRST_TOUCH", "OPPORTUNITY"),
        ("MARKOV", "MQL"),
    ] {
        out.push(app.ok(
            "query($m: AttributionModel!, $p: PeriodInput!, $s: LeadStage) { attribution(model: $m, period: $p, stage: $s) { rows { key conversions } totalConversions unattributedConversions } }",
            json!({ "m": model, "p": period, "s": stage }),
        ));
    }
    out.push(app.ok(
        "{ leads(first: 500) { nodes { externalId stage score scoreBreakdown { points } } } }",
        json!({}),
    ));
    out
}

/// Scoring rules that make some leads MQL on their own as facts arrive.
fn scoring_rules(app: &TestApp) {
    for rule in [
        json!({ "externalId": "r-retail", "name": "Retail", "kind": "ATTRIBUTE", "field": "industry", "operator": "EQUALS", "value": "retail", "points": 40 }),
        json!({ "externalId": "r-cto", "name": "CTO", "kind": "ATTRIBUTE", "field": "title", "operator": "EQUALS", "value": "CTO", "points": 30 }),
        json!({ "externalId": "r-forms", "name": "Forms", "kind": "BEHAVIOR", "touchKind": "form_fill", "points": 25, "maxPoints": 50 }),
        json!({ "externalId": "r-webinar", "name": "Webinars", "kind": "BEHAVIOR", "touchKind": "webinar", "points": 20 }),
    ] {
        let v = app.admin(
            "mutation($i: ScoringRuleInput!) { upsertScoringRule(input: $i) { id } }",
            json!({ "i": rule }),
        );
        assert!(v.get("errors").is_none(), "{v}");
    }
}

mod equivalence {
    use super::*;

    both_databases! {
        fn a_batched_import_writes_exactly_what_the_mutations_one_by_one_write(app) {
            let other = match app.backend {
                "sqlite" => TestApp::sqlite(),
                _ => TestApp::postgres().unwrap(),
            };
            let records = mixed_history(0x5eed_cafe, 90);
            assert!(records.len() > 300, "{}", records.len());
            for a in [app, &other] {
                scoring_rules(a);
            }
            let token = app.token("sync", Role::Integration);
            let (status, v) = post_ndjson(app, Some(&token), "application/x-ndjson", &as_ndjson(&records));
            assert_eq!(status, 200, "{v}");
            let batched = errors_by_line(&v);
            let one_by_one = send_one_by_one(&other, &token, &records);
            assert_eq!(batched, one_by_one, "refused lines and codes");
            // Every refusal class appears, and enough was accepted to mean something.
            for code in ["BAD_USER_INPUT", "NOT_FOUND", "CONFLICT"] {
                assert!(batched.iter().any(|(_, c)| c == code), "no {code} in {batched:?}");
            }
            let (imported, expected) = (dump(app), dump(&other));
            for ((name, got), (_, want)) in imported.iter().zip(&expected) {
                assert!(!want.is_empty(), "{name} is empty");
                assert_eq!(got, want, "{name} differ");
            }
            // Leads joined accounts by domain and by name.
            let leads = &expected[0].1;
            assert!(leads.iter().any(|l| l.contains("|A0|") || l.contains("|A1|")), "no lead has an account");
            index_agrees(app);
        let mqls = &expected[0].1.iter().filter(|l| l.contains("|MQL|")).count();
            assert!(*mqls > 0, "no lead became MQL");
            assert_eq!(answers(app), answers(&other));
            // The same file again, now against the rows it wrote (every record read, not created):
            // still the same on both paths.
            let (status, again) = post_ndjson(app, Some(&token), "application/x-ndjson", &as_ndjson(&records));
            assert_eq!(status, 200, "{again}");
            assert_eq!(errors_by_line(&again), send_one_by_one(&other, &token, &records));
            let (imported, expected) = (dump(app), dump(&other));
            for ((name, got), (_, want)) in imported.iter().zip(&expected) {
                assert_eq!(got, want, "{name} differ after a resend");
            }
            assert_eq!(answers(app), answers(&other));
            index_agrees(app);
            // A sync's resend of what it holds now (each row's last version; moves with their
            // externalIds) changes nothing but the audit log.
            let mut latest: Vec<Value> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for r in records.iter().rev() {
                let key = (r["type"].clone(), r["externalId"].clone());
                let keep = match r["type"].as_str() {
                    Some("transition") => r.get("externalId").is_some(),
                    Some(_) => true,
                    None => false,
                };
                if keep && seen.insert(key) {
                    latest.push(r.clone());
                }
            }
            latest.reverse();
            let (status, v) = post_ndjson(app, Some(&token), "application/x-ndjson", &as_ndjson(&latest));
            assert_eq!(status, 200, "{v}");
            for ((name, got), (_, before)) in dump(app).iter().zip(&imported) {
                if name != "audit" {
                    assert_eq!(got, before, "{name} changed on a resend of the current rows");
                }
            }
        }
    }
}

/// A crash mid-file (SIGKILL of `funnelgraph import`) leaves whole batches only: every
/// record of a batch is written, with its audit entry, or none is; the same file again
/// completes the import.
#[test]
fn a_killed_import_leaves_whole_batches_only() {
    use diesel::{Connection, RunQueryDsl};
    let dir = std::env::temp_dir();
    let stamp = std::process::id();
    let db = dir.join(format!("funnelgraph_kill_{stamp}.db"));
    let file = dir.join(format!("funnelgraph_kill_{stamp}.ndjson"));
    let leads = 40_000;
    let mut body =
        String::from(r#"{"type":"campaign","externalId":"c1","name":"C","channel":"email"}"#);
    body.push('\n');
    for i in 0..leads {
        body.push_str(&format!(
            "{{\"type\":\"lead\",\"externalId\":\"L{i}\",\"createdAt\":\"2026-02-01T00:00:00Z\"}}\n\
             {{\"type\":\"touchpoint\",\"externalId\":\"t{i}\",\"leadExternalId\":\"L{i}\",\"campaignExternalId\":\"c1\",\"kind\":\"visit\",\"occurredAt\":\"2026-02-02T00:00:00Z\"}}\n"
        ));
    }
    std::fs::write(&file, &body).unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_funnelgraph"))
            .arg("import")
            .arg(&file)
            .env("FUNNELGRAPH_DATABASE_URL", &db)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let count = |sql: &str| -> i64 {
        let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
        diesel::sql_query("PRAGMA busy_timeout = 5000")
            .execute(&mut conn)
            .unwrap();
        diesel::sql_query(sql)
            .get_result::<Count>(&mut conn)
            .map(|c| c.n)
            .unwrap_or(0)
    };
    let audited =
        "SELECT COUNT(*) AS n FROM audit_log WHERE operation IN ('upsertLead', 'recordTouchpoint')";
    let mut child = run();
    let started = std::time::Instant::now();
    // Killed once the first batch of leads and touchpoints is in, while later ones are not.
    while count(audited) == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "no batch landed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (audit, lead_rows, touch_rows, stage_rows) = (
        count(audited),
        count("SELECT COUNT(*) AS n FROM leads"),
        count("SELECT COUNT(*) AS n FROM touchpoints"),
        count("SELECT COUNT(*) AS n FROM stage_transitions"),
    );
    let batch = funnelgraph::service::import::BATCH as i64;
    assert!(
        audit < 2 * leads,
        "the import ended before the kill ({audit} records)"
    );
    // The campaign is the first line: the first batch holds it and 4,999 records after it.
    assert_eq!((audit + 1) % batch, 0, "{audit} records audited");
    assert_eq!(lead_rows + touch_rows, audit, "rows vs audit entries");
    assert_eq!(stage_rows, lead_rows, "each lead its creation row");
    assert!(
        (0..=1).contains(&(lead_rows - touch_rows)),
        "{lead_rows} leads, {touch_rows} touchpoints"
    );
    // The same file again finishes the job: every record once.
    let status = run().wait().unwrap();
    assert!(status.success());
    assert_eq!(count("SELECT COUNT(*) AS n FROM leads"), leads);
    assert_eq!(count("SELECT COUNT(*) AS n FROM touchpoints"), leads);
    assert_eq!(count("SELECT COUNT(*) AS n FROM stage_transitions"), leads);
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", db.display())).ok();
    }
    std::fs::remove_file(&file).ok();
}

/// Issue 17: a database records the currency its amounts are in; a command started with
/// another `FUNNELGRAPH_CURRENCY` is refused before it writes anything.
#[test]
fn a_database_refuses_a_command_in_another_currency() {
    let dir = std::env::temp_dir();
    let db = dir.join(format!("funnelgraph-currency-{}.db", std::process::id()));
    let file = dir.join(format!(
        "funnelgraph-currency-{}.ndjson",
        std::process::id()
    ));
    std::fs::write(&file, format!("{}\n", company_ndjson())).unwrap();
    let run = |currency: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_funnelgraph"))
            .arg("import")
            .arg(&file)
            .env("FUNNELGRAPH_DATABASE_URL", &db)
            .env("FUNNELGRAPH_CURRENCY", currency)
            .output()
            .unwrap()
    };
    let first = run("USD");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let other = run("EUR");
    let message = String::from_utf8_lossy(&other.stderr).to_string();
    assert!(!other.status.success());
    assert!(
        message.contains("amounts are in USD") && message.contains("FUNNELGRAPH_CURRENCY=USD"),
        "{message}"
    );
    // The same currency again is fine.
    assert!(run("USD").status.success());
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", db.display())).ok();
    }
    std::fs::remove_file(file).ok();
}
