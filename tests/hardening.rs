//! Abuse over HTTP (issue 6): documents built to exhaust the server, bodies over the limit,
//! GraphQL-over-HTTP status rules, introspection off, fields a role may not see, sums that
//! would wrap. Timings are printed for BENCHMARKS.md, never asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use funnelgraph::auth::Role;
use serde_json::{json, Value};

fn fragment_bomb() -> String {
    let mut q = String::from("query Bomb { ...F0 }\n");
    for i in 0..24 {
        q.push_str(&format!(
            "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
            i + 1,
            i + 1
        ));
    }
    q.push_str("fragment F24 on Query { me { id } }\n");
    q
}

fn post(app: &TestApp, accept: Option<&str>, body: &str) -> (u16, String, Value) {
    let token = app.token("x", Role::Admin);
    let mut req = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .post(format!("{}/graphql", app.base))
        .header("Content-Type", "application/json")
        .header("Authorization", &format!("Bearer {token}"));
    if let Some(accept) = accept {
        req = req.header("Accept", accept);
    }
    let mut resp = req.send(body).unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Writes raw bytes to the server and returns what it answered first (status line + body).
fn raw_exchange(app: &TestApp, head: &str, body_chunks: &[Vec<u8>]) -> String {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    for chunk in body_chunks {
        // The server may answer and close before it has everything: stop writing then.
        if stream.write_all(chunk).is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&answer).contains("\"errors\"") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&answer).to_string()
}

both_databases! {
    fn a_remembered_document_answers_by_its_operation_name_and_a_refused_one_stays_refused(app) {
        let auth = format!("Bearer {}", app.token("admin", Role::Admin));
        let send = |query: &str, name: Option<&str>| {
            let body = json!({ "query": query, "operationName": name }).to_string();
            app.post_raw(Some(&auth), "application/json", &body).1
        };
        let doc = "query A { __typename } mutation B { setMqlThreshold(points: 41) }";
        for _ in 0..2 {
            assert_eq!(send(doc, Some("A"))["data"], json!({ "__typename": "Query" }));
        }
        assert_eq!(send(doc, Some("B"))["data"], json!({ "setMqlThreshold": 41 }));
        assert_eq!(send(doc, Some("A"))["data"], json!({ "__typename": "Query" }));
        // The same text without a name, or with a name it does not hold, is its own request.
        let v = send(doc, None);
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
        let v = send(doc, Some("C"));
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
        // Refusals are not remembered as acceptances: asked again, refused again.
        let bomb = fragment_bomb();
        for _ in 0..2 {
            assert_eq!(code(&send(&bomb, None)), "QUERY_TOO_COMPLEX");
            assert_eq!(code(&send("{ me { id }", None)), "BAD_USER_INPUT");
        }
        // Variables change per request while the document is remembered.
        let q = "query($n: Int!) { leads(first: $n) { nodes { externalId } } }";
        lead(app, "L1", "2026-01-01T00:00:00Z");
        lead(app, "L2", "2026-01-02T00:00:00Z");
        for n in [1, 2, 1] {
            let body = json!({ "query": q, "variables": { "n": n } }).to_string();
            let v = app.post_raw(Some(&auth), "application/json", &body).1;
            assert_eq!(v["data"]["leads"]["nodes"].as_array().map(Vec::len), Some(n), "{v}");
        }
    }

    fn a_fragment_bomb_is_refused_before_it_is_expanded(app) {
        let bomb = fragment_bomb();
        assert!(bomb.len() < 1500, "about 1 KB: {}", bomb.len());
        let started = Instant::now();
        let v = app.admin(&bomb, json!({}));
        eprintln!("[figure] fragment bomb ({} bytes, 2^24 fields) refused in {:?}", bomb.len(), started.elapsed());
        assert_eq!(code(&v), "QUERY_TOO_COMPLEX", "{v}");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains("fragments are inlined"));
        assert!(v.get("data").is_none(), "a refused document has no data: {v}");
    }

    fn twenty_thousand_aliases_are_refused(app) {
        let mut q = String::from("{");
        for i in 0..20_000 {
            q.push_str(&format!(" a{i}: me {{ id }}"));
        }
        q.push('}');
        let started = Instant::now();
        let v = app.admin(&q, json!({}));
        eprintln!("[figure] 20,000 aliases ({} bytes) refused in {:?}", q.len(), started.elapsed());
        assert_eq!(code(&v), "QUERY_TOO_COMPLEX", "{v}");
    }

    fn ten_thousand_brackets_get_a_clean_error_not_a_stack_overflow(app) {
        let deep_selection = format!("{{{}{}", " me {".repeat(10_000), "}".repeat(10_001));
        let v = app.admin(&deep_selection, json!({}));
        assert_eq!(code(&v), "QUERY_TOO_COMPLEX", "{v}");
        let deep_list = format!("{{ campaignRoi(model: LINEAR, period: {{ from: \"2026-01-01\", to: \"2026-02-01\" }}, campaignExternalIds: {}\"x\"{}) {{ roi }} }}", "[".repeat(10_000), "]".repeat(10_000));
        let v = app.admin(&deep_list, json!({}));
        assert_eq!(code(&v), "QUERY_TOO_COMPLEX", "{v}");
        // In the variables: serde_json stops at 128 levels; the request is bad JSON, 400.
        let body = format!(
            r#"{{"query":"query($i: LeadInput!) {{ upsertLead(input: $i) {{ id }} }}","variables":{{"i":{}1{}}}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let auth = format!("Bearer {}", app.token("x", Role::Admin));
        let (status, v) = app.post_raw(Some(&auth), "application/json", &body);
        assert_eq!(status, 400, "{v}");
        assert_eq!(code(&v), "BAD_USER_INPUT");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains("recursion limit"), "{v}");
        // The server is still up and answering.
        assert_eq!(app.admin("{ me { externalId } }", json!({}))["data"]["me"]["externalId"], "test-admin");
    }

    fn a_body_over_the_limit_is_refused_without_reading_the_rest(app) {
        let token = app.token("x", Role::Admin);
        // Declared 2 MiB, 16 bytes sent, and the client never sends the rest: the answer
        // cannot depend on reading it.
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
            2 * 1024 * 1024
        );
        let started = Instant::now();
        let answer = raw_exchange(app, &head, &[b"{\"query\":\"{ me ".to_vec()]);
        eprintln!("[figure] declared 2 MiB body refused in {:?}", started.elapsed());
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("larger than 1048576 bytes"), "{answer}");
        // Chunked, no length: reading stops at the limit.
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let chunk = {
            let data = vec![b' '; 64 * 1024];
            let mut c = format!("{:x}\r\n", data.len()).into_bytes();
            c.extend_from_slice(&data);
            c.extend_from_slice(b"\r\n");
            c
        };
        let chunks: Vec<Vec<u8>> = std::iter::repeat_n(chunk, 40).collect();
        let answer = raw_exchange(app, &head, &chunks);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        // Under the limit all is well.
        assert_eq!(app.admin("{ me { externalId } }", json!({}))["data"]["me"]["externalId"], "test-admin");
    }

    fn request_errors_follow_the_graphql_over_http_status_rules(app) {
        let media = "application/graphql-response+json";
        // Parse failure, validation failure, variable coercion failure.
        for body in [
            r#"{"query":"{ me { id "}"#,
            r#"{"query":"{ me { shoeSize } }"}"#,
            r#"{"query":"query($n: Int!) { setMqlThreshold }","variables":{"n":"x"}}"#,
            r#"{"query":"query($p: PeriodInput!) { funnel(period: $p) { cohort } }","variables":{"p":{"from":"yesterday"}}}"#,
        ] {
            let (status, content_type, v) = post(app, Some(media), body);
            assert_eq!(status, 400, "{body}: {v}");
            assert!(content_type.starts_with(media), "{content_type}");
            assert!(v.get("data").is_none(), "no data on a request error: {v}");
            assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
            let (status, content_type, v) = post(app, Some("application/json"), body);
            assert_eq!(status, 200, "{body}: {v}");
            assert!(content_type.starts_with("application/json"), "{content_type}");
            assert!(v.get("data").is_none(), "{v}");
        }
        // A field error is not a request error: 200 with data, in both media types.
        let (status, _, v) = post(app, Some(media), r#"{"query":"{ me { externalId } campaign(externalId: \"nope\") { id } }"}"#);
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["data"]["me"]["externalId"], "x");
        // No Accept, or */*: application/json.
        let (status, content_type, _) = post(app, None, r#"{"query":"{ __typename }"}"#);
        assert_eq!((status, content_type.starts_with("application/json")), (200, true));
        // Wrong parameter types are refused with 400.
        for body in [r#"{"query":{"obj":"ect"}}"#, r#"{"query":"{ __typename }","variables":"x"}"#, r#"{"query":"{ __typename }","operationName":0}"#, r#"{"query":"{ __typename }","extensions":[]}"#, r#"{}"#] {
            let (status, _, v) = post(app, Some(media), body);
            assert_eq!(status, 400, "{body}: {v}");
        }
    }

    fn a_field_the_role_may_not_see_is_null_with_its_error(app) {
        user(app, "s1", "SALES_REP");
        campaign(app, "c1", "email", None);
        lead(app, "L1", "2026-01-01T00:00:00Z");
        touch(app, "t1", "L1", "c1", "2026-01-02T00:00:00Z");
        // Touchpoint.campaign is non-null in the schema; a SALES_REP may not read campaigns.
        let v = app.gql_with(
            &app.token("s1", Role::SalesRep),
            r#"{ lead(externalId: "L1") { stage touchpoints { externalId campaign { externalId } } } }"#,
            json!({}),
        );
        let touch = &v["data"]["lead"]["touchpoints"][0];
        assert_eq!(touch["externalId"], "t1", "{v}");
        assert!(touch.as_object().unwrap().contains_key("campaign"), "present, as null: {v}");
        assert_eq!(touch["campaign"], Value::Null);
        assert_eq!(code(&v), "FORBIDDEN");
        assert_eq!(v["errors"][0]["path"], json!(["lead", "touchpoints", 0, "campaign"]));
    }

    fn sums_near_the_largest_amount_fail_with_a_clear_error(app) {
        campaign(app, "c1", "email", None);
        lead(app, "L1", "2026-01-01T00:00:00Z");
        touch(app, "t1", "L1", "c1", "2026-01-02T00:00:00Z");
        opportunity(app, "O1", "L1", &[], None, "1.00", "2026-01-05T00:00:00Z");
        close(app, "O1", true, "2026-01-10T00:00:00Z");
        // One amount past i64::MAX minor units is refused on the way in.
        let v = revenue(app, "R0", "O1", "92233720368547758.08", "2026-01-10");
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
        // Two amounts that each fit but whose sum does not.
        for (ext, amount) in [("R1", "60000000000000000.00"), ("R2", "60000000000000000.00")] {
            let v = revenue(app, ext, "O1", amount, "2026-01-10");
            assert!(v.get("errors").is_none(), "{v}");
        }
        let v = app.admin(
            r#"{ attribution(model: LINEAR, period: { from: "2026-01-01", to: "2026-02-01" }) { totalRevenue { amount } } }"#,
            json!({}),
        );
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
        let message = v["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("largest amount"), "{message}");
        let v = app.admin(
            r#"{ campaignRoi(model: LINEAR, period: { from: "2026-01-01", to: "2026-02-01" }) { revenue { amount } } }"#,
            json!({}),
        );
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
        // Nothing wrapped into a negative or small figure anywhere.
        assert!(!v.to_string().contains("\"-"), "{v}");
    }

    fn a_forged_token_gets_401_before_any_resolver(app) {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let exp = chrono::Utc::now().timestamp() + 600;
        let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&format!(r#"{{"sub":"x","role":"ADMIN","exp":{exp}}}"#)));
        let (status, v) = app.post_raw(Some(&format!("Bearer {none}")), "application/json", r#"{"query":"mutation { setMqlThreshold(points: 1) }"}"#);
        assert_eq!((status, code(&v)), (401, "UNAUTHENTICATED".to_string()), "{v}");
        assert_eq!(app.admin("{ mqlThreshold }", json!({}))["data"]["mqlThreshold"], 100, "unchanged");
    }
}

#[test]
fn introspection_and_suggestions_can_be_switched_off() {
    let app = TestApp::sqlite_with(&[("FUNNELGRAPH_INTROSPECTION", "false")]);
    let v = app.admin(
        "{ __schema { types { name } } __type(name: \"Lead\") { fields { name } } }",
        json!({}),
    );
    assert!(v["data"]["__schema"].is_null(), "{v}");
    assert!(v["data"]["__type"].is_null(), "{v}");
    assert!(!v.to_string().contains("email"), "no field names leak: {v}");
    let v = app.admin("{ me { externalI } }", json!({}));
    let message = v["errors"][0]["message"].as_str().unwrap();
    assert!(!message.contains("Did you mean"), "{message}");
    // On by default, with suggestions.
    let app = TestApp::sqlite();
    let v = app.admin("{ __schema { queryType { name } } }", json!({}));
    assert_eq!(v["data"]["__schema"]["queryType"]["name"], "Query");
    let v = app.admin("{ me { externalI } }", json!({}));
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Did you mean"),
        "{v}"
    );
}

#[test]
fn a_query_over_the_time_bound_is_cut_off() {
    // 1 ms: any report that reads the database is over it; the server answers, and stays up.
    let app = TestApp::sqlite_with(&[("FUNNELGRAPH_REQUEST_TIMEOUT_MS", "1")]);
    campaign(&app, "c1", "email", None);
    lead(&app, "L1", "2026-01-01T00:00:00Z");
    touch(&app, "t1", "L1", "c1", "2026-01-02T00:00:00Z");
    // Each alias asks for another look-back window, so none is answered from the report cache:
    // every one reads the database, and 400 reads overrun 1 ms on any machine (60 did not,
    // once on a fast CI machine).
    let many: String = (1..=400)
        .map(|d| format!(r#" a{d}: attribution(model: MARKOV, period: {{ from: "2026-01-01", to: "2026-02-01" }}, stage: INQUIRY, lookbackDays: {d}) {{ totalConversions }}"#))
        .collect();
    let v = app.admin(&format!("{{{many} }}"), json!({}));
    assert_eq!(code(&v), "QUERY_TOO_COMPLEX", "{v}");
    assert!(v["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("ran longer than 1 ms"));
    // Mutations are never cut off half-way: this one completes.
    let v = app.admin("mutation { setMqlThreshold(points: 40) }", json!({}));
    assert_eq!(v["data"]["setMqlThreshold"], 40, "{v}");
    assert!(funnelgraph::config::Config::from_lookup(|name| {
        (name == "FUNNELGRAPH_REQUEST_TIMEOUT_MS").then(|| "0".to_string())
    })
    .is_err());
}
