//! Attribution and ROI over HTTP: invariants on the golden company for every model and
//! grouping, who may see which rows, and an opportunity's credits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use funnelgraph::auth::Role;
use serde_json::{json, Value};

const MODELS: [&str; 8] = [
    "FIRST_TOUCH",
    "LAST_TOUCH",
    "LINEAR",
    "POSITION_BASED",
    "W_SHAPED",
    "FULL_PATH",
    "TIME_DECAY",
    "MARKOV",
];

fn cents(v: &Value) -> i64 {
    let s = v.as_str().unwrap();
    let negative = s.starts_with('-');
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    let n: i64 = digits.parse().unwrap();
    if negative {
        -n
    } else {
        n
    }
}

/// A small company: m1 owns c1, m2 owns c2; one deal touched by both, won, booked, refunded.
fn company(app: &TestApp) {
    user(app, "m1", "MARKETER");
    user(app, "m2", "MARKETER");
    campaign(app, "c1", "email", Some("m1"));
    campaign(app, "c2", "event", Some("m2"));
    cost(app, "k1", "c1", "100.00", "2026-02-01");
    cost(app, "k2", "c2", "300.01", "2026-02-01");
    lead(app, "L1", "2026-02-01T00:00:00Z");
    touch(app, "t1", "L1", "c1", "2026-02-01T00:00:00Z");
    touch(app, "t2", "L1", "c2", "2026-02-03T00:00:00Z");
    touch(app, "t3", "L1", "c1", "2026-02-05T00:00:00Z");
    opportunity(
        app,
        "O1",
        "L1",
        &[],
        None,
        "1000.00",
        "2026-02-10T00:00:00Z",
    );
    close(app, "O1", true, "2026-03-01T00:00:00Z");
    revenue(app, "R1", "O1", "1000.00", "2026-03-01");
    revenue(app, "R2", "O1", "-0.01", "2026-03-15");
}

const REPORT: &str = "query($m: AttributionModel!, $s: LeadStage, $g: AttributionGrouping) {
    attribution(model: $m, period: { from: \"2026-01-01\", to: \"2026-07-01\" }, stage: $s, groupBy: $g) {
        model stage period { from to }
        rows { key campaign { externalId } conversions revenue { amount currency } }
        totalConversions totalRevenue { amount } unattributedConversions unattributedRevenue { amount }
        removalEffects { campaign { externalId } removalEffect share } } }";

both_databases! {
    fn every_report_sums_exactly_to_the_revenue_booked(app) {
        company(app);
        for model in MODELS {
            for grouping in ["CAMPAIGN", "CHANNEL", "MONTH"] {
                for stage in ["WON", "OPPORTUNITY"] {
                    let v = app.ok(REPORT, json!({ "m": model, "s": stage, "g": grouping }));
                    let r = &v["attribution"];
                    let rows: i64 = r["rows"].as_array().unwrap().iter().map(|row| cents(&row["revenue"]["amount"])).sum();
                    let total = cents(&r["totalRevenue"]["amount"]);
                    assert_eq!(rows + cents(&r["unattributedRevenue"]["amount"]), total, "{model} {grouping} {stage}");
                    assert_eq!(total, if stage == "WON" { 99_999 } else { 100_000 });
                    let conversions: f64 = r["rows"].as_array().unwrap().iter().map(|row| row["conversions"].as_f64().unwrap()).sum();
                    assert!((conversions + r["unattributedConversions"].as_f64().unwrap() - 1.0).abs() < 1e-9);
                }
            }
        }
    }

    fn linear_credits_split_the_refund_to_the_cent(app) {
        company(app);
        let v = app.ok(REPORT, json!({ "m": "LINEAR", "s": "WON", "g": "CAMPAIGN" }));
        let rows = v["attribution"]["rows"].as_array().unwrap();
        // 100000 cents / 3 → 33334, 33333, 33333; the refund of 1 cent goes to the first touch.
        // c1 holds t1 and t3: 33334 − 1 + 33333; c2 holds t2: 33333.
        assert_eq!(rows[0]["key"], "c1");
        assert_eq!(rows[0]["revenue"]["amount"], "666.66");
        assert_eq!(rows[1]["revenue"]["amount"], "333.33");
        assert!((rows[0]["conversions"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(v["attribution"]["period"], json!({ "from": "2026-01-01", "to": "2026-07-01" }));
    }

    fn markov_reports_removal_effects(app) {
        company(app);
        let v = app.ok(REPORT, json!({ "m": "MARKOV", "s": "WON", "g": "CAMPAIGN" }));
        let effects = v["attribution"]["removalEffects"].as_array().unwrap();
        // One converting path c1 → c2 → c1 → CONVERSION. The chain: START→c1 1; c1→c2 ½,
        // c1→CONV ½; c2→c1 1; so P(conv) = 1. Without c1 nothing converts: RE 1. Without c2,
        // START→c1→CONV ½: RE ½. Shares 2/3 and 1/3.
        let got: Vec<(f64, f64)> = effects
            .iter()
            .map(|e| (e["removalEffect"].as_f64().unwrap(), e["share"].as_f64().unwrap()))
            .collect();
        assert_eq!(effects[0]["campaign"]["externalId"], "c1");
        assert!((got[0].0 - 1.0).abs() < 1e-12 && (got[0].1 - 2.0 / 3.0).abs() < 1e-12, "{got:?}");
        assert!((got[1].0 - 0.5).abs() < 1e-12 && (got[1].1 - 1.0 / 3.0).abs() < 1e-12, "{got:?}");
        let v = app.ok(REPORT, json!({ "m": "LINEAR", "s": "WON", "g": "CAMPAIGN" }));
        assert_eq!(v["attribution"]["removalEffects"], json!([]));
    }

    fn side_stages_have_no_attribution(app) {
        for stage in ["LOST", "RECYCLED", "DISQUALIFIED"] {
            let v = app.admin(REPORT, json!({ "m": "LINEAR", "s": stage, "g": "CAMPAIGN" }));
            assert_eq!(code(&v), "BAD_USER_INPUT", "{stage}");
        }
        let v = app.admin("{ attribution(model: LINEAR, period: { from: \"2026-02-01\", to: \"2026-01-01\" }) { totalConversions } }", json!({}));
        assert_eq!(code(&v), "BAD_USER_INPUT");
    }

    fn a_marketer_sees_only_their_rows_and_the_company_totals(app) {
        company(app);
        // Built reports are shared between requests: an admin's, asked first, must not be
        // what a marketer then gets, nor one marketer's what another gets.
        let all = app.ok(REPORT, json!({ "m": "LINEAR", "s": "WON", "g": "CAMPAIGN" }));
        assert!(all["attribution"]["rows"].as_array().unwrap().len() > 1);
        let v = app.gql_with(&app.token("m1", Role::Marketer), REPORT, json!({ "m": "LINEAR", "s": "WON", "g": "CAMPAIGN" }));
        assert!(v["data"]["attribution"]["rows"].as_array().unwrap().iter().all(|r| r["key"] != "c2"));
        let v = app.gql_with(&app.token("m2", Role::Marketer), REPORT, json!({ "m": "LINEAR", "s": "WON", "g": "CAMPAIGN" }));
        let r = &v["data"]["attribution"];
        assert_eq!(r["rows"].as_array().unwrap().len(), 1);
        assert_eq!(r["rows"][0]["key"], "c2");
        assert_eq!(r["totalRevenue"]["amount"], "999.99");
        let v = app.gql_with(&app.token("m2", Role::Marketer), REPORT, json!({ "m": "LINEAR", "s": "WON", "g": "CHANNEL" }));
        let keys: Vec<&str> = v["data"]["attribution"]["rows"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap()).collect();
        assert_eq!(keys, vec!["event"], "another marketer's channel does not leak");
        for role in [Role::SalesRep, Role::Integration] {
            let v = app.gql_with(&app.token("x", role), REPORT, json!({ "m": "LINEAR", "s": "WON", "g": "CAMPAIGN" }));
            assert_eq!(code(&v), "FORBIDDEN", "{role:?}");
        }
        for role in [Role::Analyst, Role::Finance, Role::MarketingManager] {
            let v = app.gql_with(&app.token("x", role), REPORT, json!({ "m": "LINEAR", "s": "WON", "g": "CAMPAIGN" }));
            assert_eq!(v["data"]["attribution"]["rows"].as_array().unwrap().len(), 2, "{role:?}");
        }
    }

    fn campaign_roi_has_a_row_per_campaign_with_costs_per_conversion(app) {
        company(app);
        campaign(app, "c3", "webinar", None);
        let v = app.ok(
            "{ campaignRoi(model: LINEAR, period: { from: \"2026-01-01\", to: \"2026-07-01\" }) {
                campaign { externalId } cost { amount } attributedRevenue { amount } attributedPipeline { amount }
                roi roas inquiries wins costPerInquiry { amount } costPerWin { amount } costPerMql { amount } } }",
            json!({}),
        );
        let rows = v["campaignRoi"].as_array().unwrap();
        assert_eq!(rows.len(), 3, "zeros included");
        assert_eq!(rows[0]["campaign"]["externalId"], "c1");
        assert_eq!(rows[0]["cost"]["amount"], "100.00");
        assert_eq!(rows[0]["attributedRevenue"]["amount"], "666.66");
        assert_eq!(rows[0]["attributedPipeline"]["amount"], "666.67");
        assert!((rows[0]["roi"].as_f64().unwrap() - 5.6666).abs() < 1e-12);
        assert!((rows[0]["wins"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        // 10000 cents / (2/3) win = 15000 cents.
        assert_eq!(rows[0]["costPerWin"]["amount"], "150.00");
        // The lead's only touch at its creation is on c1: one inquiry there, none on c2.
        assert_eq!(rows[0]["inquiries"], 1.0);
        assert_eq!(rows[0]["costPerInquiry"]["amount"], "100.00");
        assert_eq!(rows[1]["inquiries"], 0.0);
        assert!(rows[1]["costPerInquiry"].is_null(), "no inquiries: null");
        assert_eq!(rows[2]["campaign"]["externalId"], "c3");
        assert!(rows[2]["roi"].is_null(), "no cost: null ROI");
        assert_eq!(rows[2]["cost"]["amount"], "0.00");
        let v = app.gql_with(&app.token("m1", Role::Marketer),
            "{ campaignRoi(model: LINEAR, period: { from: \"2026-01-01\", to: \"2026-07-01\" }) { campaign { externalId } } }", json!({}));
        assert_eq!(v["data"]["campaignRoi"], json!([{ "campaign": { "externalId": "c1" } }]));
        let v = app.admin("{ campaignRoi(model: LINEAR, period: { from: \"2026-01-01\", to: \"2026-07-01\" }, campaignExternalIds: [\"c2\"]) { campaign { externalId } } }", json!({}));
        assert_eq!(v["data"]["campaignRoi"], json!([{ "campaign": { "externalId": "c2" } }]));
    }

    fn an_opportunity_lists_its_credits(app) {
        company(app);
        let v = app.ok(
            r#"{ opportunity(externalId: "O1") { credits(model: POSITION_BASED) { touchpoint { externalId } campaign { externalId } weight amount { amount } } } }"#,
            json!({}),
        );
        let credits = v["opportunity"]["credits"].as_array().unwrap();
        let amounts: Vec<&str> = credits.iter().map(|c| c["amount"]["amount"].as_str().unwrap()).collect();
        // Each booking is split on its own: 100000 cents → 40000, 20000, 40000; the refund of
        // 1 cent → 0.4/0.2/0.4 of it floor to 0, the cent goes to the earlier of the tied .4s.
        assert_eq!(amounts, vec!["399.99", "200.00", "400.00"]);
        let weights: Vec<f64> = credits.iter().map(|c| c["weight"].as_f64().unwrap()).collect();
        assert_eq!(weights, vec![0.4, 0.2, 0.4]);
    }
}
