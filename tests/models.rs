//! More attribution models (SPEC §4b, issue 18): J_SHAPED and INVERSE_J worked by hand, and
//! `attributionComparison` (GraphQL and CSV) with every column summing like `attribution`, on
//! both databases through HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use funnelgraph::auth::Role;
use serde_json::{json, Value};

/// L1 touches C1, C2, C3 (01-05, 01-10, 01-15), its deal D1 (1000.00) wins 02-01 and books
/// 1000.00; L2 touches C2, C3 (01-06, 01-07), its deal D2 wins 02-02 and books 100.01.
fn company(app: &TestApp) {
    for c in ["C1", "C2", "C3"] {
        campaign(app, c, "email", None);
    }
    lead(app, "L1", "2026-01-01T00:00:00Z");
    lead(app, "L2", "2026-01-01T00:00:00Z");
    touch(app, "T1", "L1", "C1", "2026-01-05T00:00:00Z");
    touch(app, "T2", "L1", "C2", "2026-01-10T00:00:00Z");
    touch(app, "T3", "L1", "C3", "2026-01-15T00:00:00Z");
    touch(app, "U1", "L2", "C2", "2026-01-06T00:00:00Z");
    touch(app, "U2", "L2", "C3", "2026-01-07T00:00:00Z");
    opportunity(
        app,
        "D1",
        "L1",
        &[],
        None,
        "1000.00",
        "2026-01-20T00:00:00Z",
    );
    opportunity(app, "D2", "L2", &[], None, "100.00", "2026-01-20T00:00:00Z");
    assert!(close(app, "D1", true, "2026-02-01T00:00:00Z")
        .get("errors")
        .is_none());
    assert!(close(app, "D2", true, "2026-02-02T00:00:00Z")
        .get("errors")
        .is_none());
    assert!(revenue(app, "R1", "D1", "1000.00", "2026-02-01")
        .get("errors")
        .is_none());
    assert!(revenue(app, "R2", "D2", "100.01", "2026-02-02")
        .get("errors")
        .is_none());
}

fn rows_of(app: &TestApp, model: &str) -> Vec<(String, f64, String)> {
    rows(app, model)
}

fn rows(app: &TestApp, model: &str) -> Vec<(String, f64, String)> {
    let v = app.ok(
        "query($m: AttributionModel!) { attribution(model: $m, period: { from: \"2026-02-01\", to: \"2026-03-01\" }) { rows { key conversions revenue { amount } } totalRevenue { amount } } }",
        json!({ "m": model }),
    );
    assert_eq!(v["attribution"]["totalRevenue"]["amount"], "1100.01");
    v["attribution"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                (r["conversions"].as_f64().unwrap() * 1e9).round() / 1e9,
                r["revenue"]["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn row(key: &str, conversions: f64, revenue: &str) -> (String, f64, String) {
    (key.to_string(), conversions, revenue.to_string())
}

const COMPARE: &str = "query($m: [AttributionModel!]!) { attributionComparison(period: { from: \"2026-02-01\", to: \"2026-03-01\" }, models: $m) {
    stage period { from to }
    rows { key campaign { name } models { model conversions revenue { amount } } }
    reports { model totalRevenue { amount } unattributedRevenue { amount } otherRevenue { amount } rows { key } } } }";

const MODEL: &str = "mutation($k: String!, $n: String!, $f: Decimal!, $l: Decimal!, $m: Decimal!, $o: Decimal!, $c: Decimal!, $x: Decimal!) {
    upsertAttributionModel(key: $k, name: $n, first: $f, last: $l, mql: $m, opportunity: $o, close: $c, middle: $x) {
        key name current { version first last mql opportunity close middle createdBy } versions { version } } }";

/// Leads with their touches on `campaigns` (02-02, 02-03, …), each converting one a deal of
/// `amount` won 02-15 with that revenue booked, for the data-driven models' hand-worked paths.
fn record_journeys(app: &TestApp, journeys: &[(&str, &[&str], bool)], amount: &str) {
    for (lead_id, campaigns, converts) in journeys {
        lead(app, lead_id, "2026-01-01T00:00:00Z");
        for (i, c) in campaigns.iter().enumerate() {
            touch(
                app,
                &format!("{lead_id}-{i}"),
                lead_id,
                c,
                &format!("2026-02-0{}T00:00:00Z", i + 2),
            );
        }
        if *converts {
            let deal = format!("D-{lead_id}");
            opportunity(
                app,
                &deal,
                lead_id,
                &[],
                None,
                amount,
                "2026-02-10T00:00:00Z",
            );
            assert!(close(app, &deal, true, "2026-02-15T00:00:00Z")
                .get("errors")
                .is_none());
            assert!(
                revenue(app, &format!("R-{lead_id}"), &deal, amount, "2026-02-15")
                    .get("errors")
                    .is_none()
            );
        }
    }
}

fn define(app: &TestApp, role: Role, key: &str, w: [&str; 6]) -> Value {
    app.gql_with(&app.token("mm", role), MODEL, json!({ "k": key, "n": format!("Model {key}"), "f": w[0], "l": w[1], "m": w[2], "o": w[3], "c": w[4], "x": w[5] }))
}

fn custom_rows(app: &TestApp, key: &str) -> (Vec<(String, f64, String)>, Value) {
    let v = app.ok(
        "query($k: String!) { attribution(model: CUSTOM, customModel: $k, period: { from: \"2026-02-01\", to: \"2026-03-01\" }) { model customModel { key version } rows { key conversions revenue { amount } } totalRevenue { amount } } }",
        json!({ "k": key }),
    );
    let r = &v["attribution"];
    assert_eq!(r["model"], "CUSTOM");
    assert_eq!(r["totalRevenue"]["amount"], "1100.01");
    let rows = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["key"].as_str().unwrap().to_string(),
                (x["conversions"].as_f64().unwrap() * 1e9).round() / 1e9,
                x["revenue"]["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (rows, r["customModel"].clone())
}

both_databases! {
    fn j_shaped_and_inverse_j_split_the_hand_worked_deals(app) {
        company(app);
        // D1 (three touches): 0.2 / 0.2 / 0.6. D2 (two): 0.25 / 0.75 of 100.01 = 25.0025 /
        // 75.0075 → 25.00 / 75.01 (the cent left goes to the larger remainder, .75).
        assert_eq!(rows(app, "J_SHAPED"), [row("C1", 0.2, "200.00"), row("C2", 0.45, "225.00"), row("C3", 1.35, "675.01")]);
        // Mirrored: 0.6 / 0.2 / 0.2 and 0.75 / 0.25 → 75.01 / 25.00.
        assert_eq!(rows(app, "INVERSE_J"), [row("C1", 0.6, "600.00"), row("C2", 0.95, "275.01"), row("C3", 0.45, "225.00")]);
        // A deal's own credits under the new models, and the pipeline stage.
        let v = app.ok(r#"{ opportunity(externalId: "D1") { credits(model: INVERSE_J) { touchpoint { externalId } amount { amount } } } }"#, json!({}));
        let credits: Vec<(&str, &str)> = v["opportunity"]["credits"].as_array().unwrap().iter()
            .map(|c| (c["touchpoint"]["externalId"].as_str().unwrap(), c["amount"]["amount"].as_str().unwrap())).collect();
        assert_eq!(credits, [("T1", "600.00"), ("T2", "200.00"), ("T3", "200.00")]);
        let v = app.ok(r#"{ attribution(model: J_SHAPED, stage: OPPORTUNITY, period: { from: "2026-01-01", to: "2026-02-01" }) { rows { key revenue { amount } } totalRevenue { amount } } }"#, json!({}));
        assert_eq!(v["attribution"]["totalRevenue"]["amount"], "1100.00");
        assert_eq!(v["attribution"]["rows"], json!([
            { "key": "C1", "revenue": { "amount": "200.00" } },
            { "key": "C2", "revenue": { "amount": "225.00" } },
            { "key": "C3", "revenue": { "amount": "675.00" } },
        ]));
        // A single touch takes everything under both.
        lead(app, "L3", "2026-01-01T00:00:00Z");
        touch(app, "V1", "L3", "C1", "2026-01-08T00:00:00Z");
        opportunity(app, "D3", "L3", &[], None, "0.03", "2026-02-10T00:00:00Z");
        let v = app.ok(r#"{ j: opportunity(externalId: "D3") { credits(model: J_SHAPED) { amount { amount } } } }"#, json!({}));
        assert_eq!(v["j"]["credits"], json!([{ "amount": { "amount": "0.03" } }]));
    }

    fn a_comparison_puts_every_model_side_by_side_and_each_column_sums(app) {
        company(app);
        let v = app.ok(COMPARE, json!({ "m": ["J_SHAPED", "INVERSE_J", "LINEAR", "J_SHAPED"] }));
        let c = &v["attributionComparison"];
        assert_eq!(c["stage"], "WON");
        // The duplicate is dropped; the order is the order asked.
        let models: Vec<&str> = c["reports"].as_array().unwrap().iter().map(|r| r["model"].as_str().unwrap()).collect();
        assert_eq!(models, ["J_SHAPED", "INVERSE_J", "LINEAR"]);
        let table: Vec<(String, Vec<String>)> = c["rows"].as_array().unwrap().iter().map(|r| (
            r["key"].as_str().unwrap().to_string(),
            r["models"].as_array().unwrap().iter().map(|m| m["revenue"]["amount"].as_str().unwrap().to_string()).collect(),
        )).collect();
        // LINEAR: D1 thirds, the cent left to the earliest touch (ties); D2 halves of 100.01 → 50.01 / 50.00.
        let s = |x: &[&str]| x.iter().map(|v| v.to_string()).collect::<Vec<_>>();
        assert_eq!(table, [
            ("C1".to_string(), s(&["200.00", "600.00", "333.34"])),
            ("C2".to_string(), s(&["225.00", "275.01", "383.34"])),
            ("C3".to_string(), s(&["675.01", "225.00", "383.33"])),
        ]);
        for (i, report) in c["reports"].as_array().unwrap().iter().enumerate() {
            let column: i64 = table.iter().map(|(_, m)| cents(&m[i])).sum();
            assert_eq!(column + cents(report["unattributedRevenue"]["amount"].as_str().unwrap()) + cents(report["otherRevenue"]["amount"].as_str().unwrap()),
                cents(report["totalRevenue"]["amount"].as_str().unwrap()), "{report}");
        }
        // A marketer sees own campaigns' rows; the rest is each model's "other".
        user(app, "mk", "MARKETER");
        campaign(app, "C2", "email", Some("mk"));
        let v = app.gql_with(&app.token("mk", Role::Marketer), COMPARE, json!({ "m": ["J_SHAPED", "LINEAR"] }));
        let c = &v["data"]["attributionComparison"];
        assert_eq!(c["rows"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(c["rows"][0]["key"], "C2");
        assert_eq!(c["reports"][0]["otherRevenue"]["amount"], "875.01");
        assert_eq!(c["reports"][1]["otherRevenue"]["amount"], "716.67");
        // Bad lists are refused; a sales rep may not ask.
        assert_eq!(code(&app.admin(COMPARE, json!({ "m": [] }))), "BAD_USER_INPUT");
        assert_eq!(code(&app.as_role(Role::SalesRep, COMPARE, json!({ "m": ["LINEAR"] }))), "FORBIDDEN");

        // The same table as CSV.
        let token = app.token("fin", Role::Finance);
        let (status, body) = app.get_with_auth("/export/comparison.csv?models=J_SHAPED,INVERSE_J,LINEAR&from=2026-02-01&to=2026-03-01", &token);
        assert_eq!(status, 200, "{body}");
        let lines: Vec<Vec<&str>> = body.lines().map(|l| l.split(',').collect()).collect();
        assert_eq!(lines[0], ["key", "campaign", "J_SHAPED conversions", "J_SHAPED revenue", "INVERSE_J conversions", "INVERSE_J revenue", "LINEAR conversions", "LINEAR revenue", "currency"]);
        assert_eq!((lines[1][0], lines[1][3], lines[1][5], lines[1][7], lines[1][8]), ("C1", "200.00", "600.00", "333.34", "USD"));
        assert_eq!((lines[3][0], lines[3][3], lines[3][5], lines[3][7]), ("C3", "675.01", "225.00", "383.33"));
        assert_eq!(lines[4][0], "(other campaigns)");
        assert_eq!((lines[5][0], lines[5][3]), ("(unattributed)", "0.00"));
        let (status, body) = app.get_with_auth("/export/comparison.csv?models=LINEAR,NOPE&from=2026-02-01&to=2026-03-01", &token);
        assert_eq!(status, 400, "{body}");
    }

    fn custom_models_are_versioned_data_that_reports_and_plans_use(app) {
        company(app);
        // J_SHAPED as data: first 0.2, last 0.6, middle 0.2, gives J_SHAPED's figures.
        let v = define(app, Role::MarketingManager, "j-data", ["0.2", "0.6", "0", "0", "0", "0.2"]);
        assert!(v.get("errors").is_none(), "{v}");
        assert_eq!(v["data"]["upsertAttributionModel"]["current"], json!({ "version": 1, "first": "0.2", "last": "0.6", "mql": "0", "opportunity": "0", "close": "0", "middle": "0.2", "createdBy": "mm" }));
        let (rows, used) = custom_rows(app, "j-data");
        assert_eq!(rows, rows_of(app, "J_SHAPED"));
        assert_eq!(used, json!({ "key": "j-data", "version": 1 }));
        // An edit makes version 2, used from now on: first 0.5 / last 0.5 (two-role model, no
        // middle): D1 500.00 / 0 / 500.00, D2 50.01 / 50.00 (ties to the earlier touch).
        let v = define(app, Role::Admin, "j-data", ["0.5", "0.5", "0", "0", "0", "0"]);
        assert_eq!(v["data"]["upsertAttributionModel"]["versions"], json!([{ "version": 1 }, { "version": 2 }]));
        let (rows, used) = custom_rows(app, "j-data");
        assert_eq!(rows, [row("C1", 0.5, "500.00"), row("C2", 0.5, "50.01"), row("C3", 1.0, "550.00")]);
        assert_eq!(used["version"], 2);
        // The same weights again (written differently) make no version.
        let v = define(app, Role::Admin, "j-data", ["0.50", "0.500", "0", "0", "0", "0.0"]);
        assert_eq!(v["data"]["upsertAttributionModel"]["versions"].as_array().unwrap().len(), 2, "{v}");
        // CLOSE is tn at WON only: at OPPORTUNITY a close-only model has no role, so equal shares.
        define(app, Role::Admin, "closer", ["0", "0", "0", "0", "1", "0"]);
        let v = app.ok(r#"{ attribution(model: CUSTOM, customModel: "closer", stage: OPPORTUNITY, period: { from: "2026-01-01", to: "2026-02-01" }) { rows { key revenue { amount } } } }"#, json!({}));
        assert_eq!(v["attribution"]["rows"], json!([
            { "key": "C1", "revenue": { "amount": "333.34" } },
            { "key": "C2", "revenue": { "amount": "383.33" } },
            { "key": "C3", "revenue": { "amount": "383.33" } },
        ]));
        let (rows, _) = custom_rows(app, "closer");
        assert_eq!(rows, [row("C1", 0.0, "0.00"), row("C2", 0.0, "0.00"), row("C3", 2.0, "1100.01")]);
        // Bad definitions and bad asks.
        for (w, why) in [
            (["0.5", "0.4", "0", "0", "0", "0"], "sums to 0.9"),
            (["1.5", "-0.5", "0", "0", "0", "0"], "a negative weight"),
            (["0.1234567891", "0.8765432109", "0", "0", "0", "0"], "ten fraction digits"),
        ] {
            assert_eq!(code(&define(app, Role::Admin, "bad", w)), "BAD_USER_INPUT", "{why}");
        }
        assert!(define(app, Role::Admin, "bad", ["0.5", "0.4", "0", "0", "0", "0"])["errors"][0]["message"].as_str().unwrap().contains("sum to 0.9"));
        assert_eq!(code(&define(app, Role::Admin, "bad key!", ["1", "0", "0", "0", "0", "0"])), "BAD_USER_INPUT");
        assert_eq!(code(&define(app, Role::Marketer, "mine", ["1", "0", "0", "0", "0", "0"])), "FORBIDDEN");
        assert_eq!(code(&app.admin(r#"{ attribution(model: CUSTOM, period: { from: "2026-02-01", to: "2026-03-01" }) { rows { key } } }"#, json!({}))), "BAD_USER_INPUT");
        assert_eq!(code(&app.admin(r#"{ attribution(model: LINEAR, customModel: "j-data", period: { from: "2026-02-01", to: "2026-03-01" }) { rows { key } } }"#, json!({}))), "BAD_USER_INPUT");
        assert_eq!(code(&app.admin(r#"{ attribution(model: CUSTOM, customModel: "nope", period: { from: "2026-02-01", to: "2026-03-01" }) { rows { key } } }"#, json!({}))), "NOT_FOUND");
        let v = app.as_role(Role::Analyst, "{ attributionModels { key name current { version } } }", json!({}));
        assert_eq!(v["data"]["attributionModels"], json!([
            { "key": "closer", "name": "Model closer", "current": { "version": 1 } },
            { "key": "j-data", "name": "Model j-data", "current": { "version": 2 } },
        ]));
        // The CSV names custom columns by key and version.
        let (status, body) = app.get_with_auth("/export/comparison.csv?models=LINEAR&customModels=j-data&from=2026-02-01&to=2026-03-01", &app.token("fin", Role::Finance));
        assert_eq!(status, 200, "{body}");
        assert!(body.lines().next().unwrap().contains("CUSTOM:j-data@2 conversions,CUSTOM:j-data@2 revenue"), "{body}");
        assert!(body.lines().nth(1).unwrap().starts_with("C1,Campaign C1,"), "{body}");
        assert!(body.lines().nth(1).unwrap().contains(",500.00,USD"), "{body}");
        // Side by side with named models.
        let v = app.ok("{ attributionComparison(period: { from: \"2026-02-01\", to: \"2026-03-01\" }, models: [LINEAR], customModels: [\"j-data\"]) { reports { model customModel { key version } } rows { key models { model revenue { amount } } } } }", json!({}));
        assert_eq!(v["attributionComparison"]["reports"][1]["customModel"], json!({ "key": "j-data", "version": 2 }));
        assert_eq!(v["attributionComparison"]["rows"][0]["models"][1]["revenue"]["amount"], "500.00");

        // A plan on the custom model pays on its current version; a closed statement keeps the
        // version (and the figures) it used.
        user(app, "mk", "MARKETER");
        campaign(app, "C3", "email", Some("mk"));
        let v = app.admin("mutation { upsertCompensationPlan(input: { externalId: \"p\", name: \"Ten percent\", model: CUSTOM, customModel: \"j-data\", revenueRate: \"0.10\", qualifiedLeadBonus: { amount: \"0.00\", currency: \"USD\" } }) { model customModel } }", json!({}));
        assert_eq!(v["data"]["upsertCompensationPlan"], json!({ "model": "CUSTOM", "customModel": "j-data" }), "{v}");
        assert_eq!(code(&app.admin("mutation { upsertCompensationPlan(input: { externalId: \"q\", name: \"Q\", model: CUSTOM, customModel: \"nope\", revenueRate: \"0.10\", qualifiedLeadBonus: { amount: \"0.00\", currency: \"USD\" } }) { model } }", json!({}))), "NOT_FOUND");
        app.ok("mutation { assignCompensationPlan(input: { userExternalId: \"mk\", planExternalId: \"p\", effectiveFrom: \"2026-01-01\" }) { id } }", json!({}));
        const STATEMENT: &str = "{ compensationStatement(userExternalId: \"mk\", period: { from: \"2026-02-01\", to: \"2026-03-01\" }) { status attributedRevenue { amount } plan { customModel customModelVersion } } }";
        let v = app.ok(STATEMENT, json!({}));
        assert_eq!(v["compensationStatement"], json!({ "status": "OPEN", "attributedRevenue": { "amount": "550.00" }, "plan": { "customModel": "j-data", "customModelVersion": 2 } }));
        app.ok("mutation { closePeriod(period: { from: \"2026-02-01\", to: \"2026-03-01\" }) { statements } }", json!({}));
        define(app, Role::Admin, "j-data", ["0.2", "0.6", "0", "0", "0", "0.2"]);
        let v = app.ok(STATEMENT, json!({}));
        assert_eq!(v["compensationStatement"], json!({ "status": "CLOSED", "attributedRevenue": { "amount": "550.00" }, "plan": { "customModel": "j-data", "customModelVersion": 2 } }));
        // A live statement of another period uses version 3 (J_SHAPED: C3 gets 675.01 of Feb).
        let v = app.ok("{ compensationStatement(userExternalId: \"mk\", period: { from: \"2026-02-01\", to: \"2026-02-28\" }) { attributedRevenue { amount } plan { customModelVersion } } }", json!({}));
        assert_eq!(v["compensationStatement"], json!({ "attributedRevenue": { "amount": "675.01" }, "plan": { "customModelVersion": 3 } }));
    }


    fn shapley_credits_channels_by_the_hand_worked_game(app) {
        // Channels a, b, c (one campaign each). Paths of the WON game in February: P1 {a}
        // converts, P2 {a} not, P3 {b} not, P4 {a, b} converts, P5 {b, c} converts, P6 {c} not.
        // φ(a) = 13/36, φ(b) = 4/36, φ(c) = 1/36 (worked in domain::shapley's test; Σ = 1/2).
        for (c, channel) in [("CA", "a"), ("CB", "b"), ("CC", "c")] {
            campaign(app, c, channel, None);
        }
        let journeys: [(&str, &[&str], bool); 6] = [
            ("P1", &["CA"], true),
            ("P2", &["CA"], false),
            ("P3", &["CB"], false),
            ("P4", &["CA", "CB"], true),
            ("P5", &["CB", "CC"], true),
            ("P6", &["CC"], false),
        ];
        record_journeys(app, &journeys, "100.00");
        let v = app.ok(r#"{ attribution(model: SHAPLEY, period: { from: "2026-02-01", to: "2026-03-01" }) {
            totalRevenue { amount } rows { key conversions revenue { amount } } shapleyValues { channel value } } }"#, json!({}));
        let r = &v["attribution"];
        let phi: Vec<(String, f64)> = r["shapleyValues"].as_array().unwrap().iter()
            .map(|x| (x["channel"].as_str().unwrap().to_string(), x["value"].as_f64().unwrap())).collect();
        assert_eq!(phi.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
        for ((_, got), want) in phi.iter().zip([13.0 / 36.0, 4.0 / 36.0, 1.0 / 36.0]) {
            assert!((got - want).abs() < 1e-12, "{phi:?}");
        }
        // P1: all to a. P4: a 13/17, b 4/17 of 100.00 → 76.47 / 23.53. P5: b 4/5, c 1/5 → 80.00 / 20.00.
        assert_eq!(r["totalRevenue"]["amount"], "300.00");
        let rows: Vec<(String, String)> = r["rows"].as_array().unwrap().iter()
            .map(|x| (x["key"].as_str().unwrap().to_string(), x["revenue"]["amount"].as_str().unwrap().to_string())).collect();
        assert_eq!(rows, [
            ("CA".to_string(), "176.47".to_string()),
            ("CB".to_string(), "103.53".to_string()),
            ("CC".to_string(), "20.00".to_string()),
        ]);
        let conversions: f64 = r["rows"].as_array().unwrap().iter().map(|x| x["conversions"].as_f64().unwrap()).sum();
        assert!((conversions - 3.0).abs() < 1e-9);
        // The same through a deal's credits and the CSV export.
        let v = app.ok(r#"{ opportunity(externalId: "D-P4") { credits(model: SHAPLEY) { amount { amount } } } }"#, json!({}));
        assert_eq!(v["opportunity"]["credits"], json!([{ "amount": { "amount": "76.47" } }, { "amount": { "amount": "23.53" } }]));
        let (status, body) = app.get_with_auth("/export/attribution.csv?model=SHAPLEY&from=2026-02-01&to=2026-03-01", &app.token("fin", Role::Finance));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("CA,Campaign CA,") && body.contains(",176.47,USD"), "{body}");
        // A new converting path {c} after the report: the kept game is brought forward and
        // equals the game made afresh.
        lead(app, "P7", "2026-01-01T00:00:00Z");
        touch(app, "P7-0", "P7", "CC", "2026-02-04T00:00:00Z");
        opportunity(app, "D-P7", "P7", &[], None, "10.00", "2026-02-10T00:00:00Z");
        assert!(close(app, "D-P7", true, "2026-02-16T00:00:00Z").get("errors").is_none());
        let expected = funnelgraph::domain::shapley::shapley_values(
            &[(0b001, true), (0b001, false), (0b010, false), (0b011, true), (0b110, true), (0b100, false), (0b100, true)], 3).unwrap();
        let v = app.ok(r#"{ attribution(model: SHAPLEY, period: { from: "2026-02-01", to: "2026-03-01" }) { shapleyValues { channel value } } }"#, json!({}));
        let got: Vec<f64> = v["attribution"]["shapleyValues"].as_array().unwrap().iter().map(|x| x["value"].as_f64().unwrap()).collect();
        assert_eq!(got.len(), 3);
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-12, "{got:?} vs {expected:?}");
        }
        // Beyond 16 channels on the paths the game is not computed exactly: refused.
        for i in 0..15 {
            campaign(app, &format!("X{i}"), &format!("x{i:02}"), None);
            lead(app, &format!("Q{i}"), "2026-01-01T00:00:00Z");
            touch(app, &format!("Q{i}-t"), &format!("Q{i}"), &format!("X{i}"), "2026-02-03T00:00:00Z");
        }
        let v = app.admin(r#"{ attribution(model: SHAPLEY, period: { from: "2026-02-01", to: "2026-03-01" }) { rows { key } } }"#, json!({}));
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains("at most 16 channels; the period's paths have 18"), "{v}");
    }


    fn markov_matches_the_published_toy_example(app) {
        // Bryl's toy example: C1→C2→C3 converts, C1 and C2→C3 do not. Removal effects 0.5, 1, 1.
        for c in ["C1", "C2", "C3"] {
            campaign(app, c, "email", None);
        }
        let journeys: [(&str, &[&str], bool); 3] = [("A", &["C1", "C2", "C3"], true), ("B", &["C1"], false), ("C", &["C2", "C3"], false)];
        record_journeys(app, &journeys, "90.00");
        let v = app.ok(r#"{ attribution(model: MARKOV, period: { from: "2026-02-01", to: "2026-03-01" }) {
            rows { key revenue { amount } } removalEffects { campaign { externalId } removalEffect share } } }"#, json!({}));
        let effects: Vec<(String, f64, f64)> = v["attribution"]["removalEffects"].as_array().unwrap().iter()
            .map(|e| (e["campaign"]["externalId"].as_str().unwrap().to_string(), e["removalEffect"].as_f64().unwrap(), e["share"].as_f64().unwrap())).collect();
        let expected = [("C1", 0.5, 0.2), ("C2", 1.0, 0.4), ("C3", 1.0, 0.4)];
        assert_eq!(effects.len(), 3, "{v}");
        for ((c, re, share), (ec, ere, eshare)) in effects.iter().zip(expected) {
            assert_eq!(c, ec);
            assert!((re - ere).abs() < 1e-12 && (share - eshare).abs() < 1e-12, "{effects:?}");
        }
        // The converting journey splits 90.00 by 0.5 : 1 : 1 → 18.00 / 36.00 / 36.00.
        assert_eq!(v["attribution"]["rows"], json!([
            { "key": "C1", "revenue": { "amount": "18.00" } },
            { "key": "C2", "revenue": { "amount": "36.00" } },
            { "key": "C3", "revenue": { "amount": "36.00" } },
        ]));
    }


    fn markov_of_order_two_and_three_remembers_where_a_path_came_from(app) {
        // A→B→C converts (twice), D→B→E does not (twice). Order 1: START→A ½, →D ½; A→B, D→B
        // 1; B→C ½, B→E ½; P = ½. Without A: ¼ (RE ½), without D: ¼ (RE ½), B and C: 1, E: 0.
        // Order 2: (A,B)→(B,C) 1 and (D,B)→(B,E) 1: P = ½; without A nothing converts (RE 1),
        // without D the A paths still convert (RE 0); B, C 1; E 0. Order 3 remembers the same.
        for c in ["A", "B", "C", "D", "E"] {
            campaign(app, c, "email", None);
        }
        let journeys: [(&str, &[&str], bool); 4] = [
            ("L1", &["A", "B", "C"], true), ("L2", &["D", "B", "E"], false),
            ("L3", &["A", "B", "C"], true), ("L4", &["D", "B", "E"], false),
        ];
        record_journeys(app, &journeys, "90.00");
        let ask = |order: i32| {
            let v = app.ok(&format!(r#"{{ attribution(model: MARKOV, markovOrder: {order}, period: {{ from: "2026-02-01", to: "2026-03-01" }}) {{
                markovOrder rows {{ key revenue {{ amount }} }} totalRevenue {{ amount }} unattributedRevenue {{ amount }}
                removalEffects {{ campaign {{ externalId }} removalEffect }} }} }}"#), json!({}));
            let effects: Vec<(String, f64)> = v["attribution"]["removalEffects"].as_array().unwrap().iter()
                .map(|e| (e["campaign"]["externalId"].as_str().unwrap().to_string(), e["removalEffect"].as_f64().unwrap())).collect();
            (v, effects)
        };
        let expect = |effects: &[(String, f64)], want: [f64; 5]| {
            for (c, re) in ["A", "B", "C", "D", "E"].iter().zip(want) {
                let got = effects.iter().find(|(k, _)| k == c).map(|e| e.1).unwrap_or(0.0);
                assert!((got - re).abs() < 1e-12, "{c}: {got} vs {re} in {effects:?}");
            }
        };
        let (first, effects) = ask(1);
        assert_eq!(first["attribution"]["markovOrder"], json!(1));
        expect(&effects, [0.5, 1.0, 1.0, 0.5, 0.0]);
        // Each 90.00 by 0.5 : 1 : 1 → 18.00 / 36.00 / 36.00, twice.
        assert_eq!(first["attribution"]["rows"], json!([
            { "key": "A", "revenue": { "amount": "36.00" } },
            { "key": "B", "revenue": { "amount": "72.00" } },
            { "key": "C", "revenue": { "amount": "72.00" } },
        ]));
        for order in [2, 3] {
            let (v, effects) = ask(order);
            assert_eq!(v["attribution"]["markovOrder"], json!(order));
            expect(&effects, [1.0, 1.0, 1.0, 0.0, 0.0]);
            // 1 : 1 : 1 → 30.00 each, twice; the rows sum to the revenue booked.
            assert_eq!(v["attribution"]["rows"], json!([
                { "key": "A", "revenue": { "amount": "60.00" } },
                { "key": "B", "revenue": { "amount": "60.00" } },
                { "key": "C", "revenue": { "amount": "60.00" } },
            ]), "order {order}");
            assert_eq!(v["attribution"]["totalRevenue"]["amount"], "180.00");
            assert_eq!(v["attribution"]["unattributedRevenue"]["amount"], "0.00");
        }
        // Every stage at every order: rows + other + unattributed = total, conversions too.
        for stage in ["INQUIRY", "MQL", "SQL", "OPPORTUNITY", "WON"] {
            for order in 1..=3 {
                let v = app.ok(&format!(r#"{{ attribution(model: MARKOV, markovOrder: {order}, stage: {stage}, period: {{ from: "2026-01-01", to: "2026-03-01" }}) {{
                    rows {{ conversions revenue {{ amount }} }} totalConversions totalRevenue {{ amount }}
                    unattributedConversions unattributedRevenue {{ amount }} otherConversions otherRevenue {{ amount }} }} }}"#), json!({}));
                let r = &v["attribution"];
                let units = |m: &Value| m["amount"].as_str().unwrap().replace('.', "").parse::<i64>().unwrap();
                let rows = r["rows"].as_array().unwrap();
                let cents: i64 = rows.iter().map(|x| units(&x["revenue"])).sum::<i64>()
                    + units(&r["unattributedRevenue"]) + units(&r["otherRevenue"]);
                assert_eq!(cents, units(&r["totalRevenue"]), "{stage} order {order}: {v}");
                let conversions: f64 = rows.iter().map(|x| x["conversions"].as_f64().unwrap()).sum::<f64>()
                    + r["unattributedConversions"].as_f64().unwrap() + r["otherConversions"].as_f64().unwrap();
                assert!((conversions - r["totalConversions"].as_f64().unwrap()).abs() < 1e-9, "{stage} order {order}: {v}");
            }
        }
        // Side by side: MARKOV at orders 1 and 2, a column each, in GraphQL and CSV.
        let v = app.ok(r#"{ attributionComparison(models: [LINEAR, MARKOV], markovOrders: [1, 2], period: { from: "2026-02-01", to: "2026-03-01" }) {
            rows { key models { model markovOrder revenue { amount } } } } }"#, json!({}));
        let a = &v["attributionComparison"]["rows"][0];
        assert_eq!(a["key"], "A");
        assert_eq!(a["models"], json!([
            { "model": "LINEAR", "markovOrder": null, "revenue": { "amount": "60.00" } },
            { "model": "MARKOV", "markovOrder": 1, "revenue": { "amount": "36.00" } },
            { "model": "MARKOV", "markovOrder": 2, "revenue": { "amount": "60.00" } },
        ]));
        let admin = app.token("admin", Role::Admin);
        let (status, csv) = app.get_with_auth("/export/comparison.csv?models=MARKOV&markovOrders=1,2&from=2026-02-01&to=2026-03-01", &admin);
        assert_eq!(status, 200, "{csv}");
        let mut lines = csv.lines();
        assert_eq!(lines.next().unwrap(), "key,campaign,MARKOV conversions,MARKOV revenue,MARKOV:order2 conversions,MARKOV:order2 revenue,currency");
        assert_eq!(lines.next().unwrap(), "A,Campaign A,0.4,36.00,0.666666666667,60.00,USD");
        let (status, csv) = app.get_with_auth("/export/attribution.csv?model=MARKOV&markovOrder=2&from=2026-02-01&to=2026-03-01", &admin);
        assert_eq!(status, 200, "{csv}");
        assert!(csv.lines().any(|l| l.starts_with("A,Campaign A,") && l.ends_with(",60.00,USD")), "{csv}");
        let (status, body) = app.get_with_auth("/export/attribution.csv?model=LINEAR&markovOrder=2&from=2026-02-01&to=2026-03-01", &admin);
        assert_eq!(status, 400, "{body}");
        // Orders out of range, or with another model: BAD_USER_INPUT.
        for q in [
            r#"{ attribution(model: MARKOV, markovOrder: 4, period: { from: "2026-02-01", to: "2026-03-01" }) { totalConversions } }"#,
            r#"{ attribution(model: MARKOV, markovOrder: 0, period: { from: "2026-02-01", to: "2026-03-01" }) { totalConversions } }"#,
            r#"{ attribution(model: LINEAR, markovOrder: 2, period: { from: "2026-02-01", to: "2026-03-01" }) { totalConversions } }"#,
            r#"{ campaignRoi(model: W_SHAPED, markovOrder: 2, period: { from: "2026-02-01", to: "2026-03-01" }) { wins } }"#,
            r#"{ attributionComparison(models: [LINEAR], markovOrders: [2], period: { from: "2026-02-01", to: "2026-03-01" }) { rows { key } } }"#,
            r#"{ attributionComparison(models: [MARKOV], markovOrders: [1, 4], period: { from: "2026-02-01", to: "2026-03-01" }) { rows { key } } }"#,
        ] {
            let v = app.admin(q, json!({}));
            assert_eq!(code(&v), "BAD_USER_INPUT", "{q}: {v}");
        }
        let roi = app.ok(r#"{ campaignRoi(model: MARKOV, markovOrder: 2, period: { from: "2026-02-01", to: "2026-03-01" }) { campaign { externalId } attributedRevenue { amount } } }"#, json!({}));
        let a = roi["campaignRoi"].as_array().unwrap().iter().find(|r| r["campaign"]["externalId"] == "A").unwrap();
        assert_eq!(a["attributedRevenue"]["amount"], "60.00", "{roi}");
    }

}
