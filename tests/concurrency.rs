//! Fifty clients upserting and moving the same leads at once (issue 6, item 7): no client
//! ever sees a busy database or a serialization failure (the server retries what the
//! database asks it to), and the final state equals a serial replay of the same requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Barrier};

use common::*;
use funnelgraph::auth::Role;
use serde_json::{json, Value};

const CLIENTS: usize = 50;
const LEADS: usize = 5;

/// The requests client `i` sends, in its order. Every client upserts every lead with the
/// same data, records its own touchpoints, and makes the same moves with the same
/// externalIds (a retrying sync job), so any interleaving must end in one state.
fn script(i: usize) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for k in 0..LEADS {
        let lead = (i + k) % LEADS;
        out.push((
            "mutation($i: LeadInput!) { upsertLead(input: $i) { id } }",
            json!({ "i": { "externalId": format!("L{lead}"), "email": format!("l{lead}@example.com"), "fullName": format!("Person {lead}"), "company": "Acme", "createdAt": "2026-01-01T00:00:00Z" } }),
        ));
    }
    for t in 0..2 {
        out.push((
            "mutation($i: TouchpointInput!) { recordTouchpoint(input: $i) { id } }",
            json!({ "i": { "externalId": format!("t{i}-{t}"), "leadExternalId": format!("L{}", (i + t) % LEADS), "campaignExternalId": if t == 0 { "c1" } else { "c2" }, "kind": "visit", "occurredAt": format!("2026-01-02T{:02}:{:02}:00Z", i % 24, t) } }),
        ));
    }
    for k in 0..LEADS {
        let lead = (i + k) % LEADS;
        for (to, hour) in [("MQL", 10), ("SAL", 11), ("SQL", 12)] {
            out.push((
                "mutation($i: TransitionInput!) { transitionLead(input: $i) { stage } }",
                json!({ "i": { "leadExternalId": format!("L{lead}"), "to": to, "occurredAt": format!("2026-01-03T{hour}:00:00Z"), "externalId": format!("L{lead}-{to}") } }),
            ));
        }
    }
    out
}

fn setup(app: &TestApp) {
    campaign(app, "c1", "email", None);
    campaign(app, "c2", "event", None);
}

/// Everything a client could observe about the leads, in a stable order.
fn state(app: &TestApp) -> Value {
    let v = app.ok(
        "{ leads(first: 100) { totalCount nodes { externalId stage score email createdAt
            touchpoints { externalId occurredAt campaign { externalId } }
            stageHistory { from to occurredAt externalId } } } }",
        json!({}),
    );
    let mut state = v["leads"].clone();
    let report = app.ok(
        r#"{ attribution(model: LINEAR, period: { from: "2026-01-01", to: "2026-02-01" }, stage: SQL) {
            totalConversions rows { key conversions } } }"#,
        json!({}),
    );
    state["attribution"] = report["attribution"].clone();
    state
}

fn is_database_trouble(v: &Value) -> bool {
    let text = v.to_string().to_lowercase();
    ["busy", "locked", "serializ", "deadlock", "internal"]
        .iter()
        .any(|w| text.contains(w))
}

both_databases! {
    fn fifty_clients_on_the_same_leads_end_where_a_serial_replay_ends(app) {
        setup(app);
        let token = app.token("sync", Role::Integration);
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let base = app.base.clone();
        let started = std::time::Instant::now();
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let barrier = barrier.clone();
                let token = token.clone();
                let base = base.clone();
                std::thread::spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    barrier.wait();
                    let mut failures = Vec::new();
                    for (query, variables) in script(i) {
                        let mut resp = agent
                            .post(format!("{base}/graphql"))
                            .header("Content-Type", "application/json")
                            .header("Authorization", &format!("Bearer {token}"))
                            .send(json!({ "query": query, "variables": variables }).to_string())
                            .unwrap();
                        let status = resp.status().as_u16();
                        let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
                        if status != 200 || body.get("errors").is_some() {
                            failures.push((status, body));
                        }
                    }
                    failures
                })
            })
            .collect();
        let failures: Vec<(u16, Value)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let requests = CLIENTS * script(0).len();
        eprintln!("[figure] {} concurrency: {requests} requests from {CLIENTS} clients in {:?}", app.backend, started.elapsed());
        assert!(failures.iter().all(|(_, v)| !is_database_trouble(v)), "database trouble reached a client: {failures:?}");
        assert!(failures.is_empty(), "every request succeeds: {failures:?}");
        let concurrent = state(app);

        // The same requests, one after another, on a fresh database of the same kind.
        let serial_app = if app.backend == "sqlite" { TestApp::sqlite() } else { TestApp::postgres().unwrap() };
        setup(&serial_app);
        let serial_token = serial_app.token("sync", Role::Integration);
        for i in 0..CLIENTS {
            for (query, variables) in script(i) {
                let v = serial_app.gql_with(&serial_token, query, variables);
                assert!(v.get("errors").is_none(), "{v}");
            }
        }
        let serial = state(&serial_app);
        assert_eq!(concurrent["totalCount"], LEADS);
        assert_eq!(concurrent, serial);
        for lead in concurrent["nodes"].as_array().unwrap() {
            assert_eq!(lead["stage"], "SQL");
            assert_eq!(lead["stageHistory"].as_array().unwrap().len(), 4, "created + three moves, each once: {lead}");
        }
    }
}
