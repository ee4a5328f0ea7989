//! The shared lead definition over HTTP: scoring rules as data, automatic MQL, the funnel and
//! its timeframes, leakage with wasted spend, and calibration, with hand-worked numbers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use funnelgraph::auth::Role;
use serde_json::{json, Value};

const RULE: &str = "mutation($i: ScoringRuleInput!) { upsertScoringRule(input: $i) { externalId kind operator points active } }";

fn rule(app: &TestApp, input: Value) -> Value {
    app.admin(RULE, json!({ "i": input }))
}

fn lead_with(app: &TestApp, ext: &str, created: &str, attrs: Value) {
    app.ok(
        "mutation($i: LeadInput!) { upsertLead(input: $i) { id } }",
        json!({ "i": { "externalId": ext, "email": format!("{ext}@x.test"), "createdAt": created, "attributes": attrs } }),
    );
}

fn touch_kind(app: &TestApp, ext: &str, lead: &str, campaign: &str, kind: &str, at: &str) {
    app.ok(
        "mutation($i: TouchpointInput!) { recordTouchpoint(input: $i) { id } }",
        json!({ "i": { "externalId": ext, "leadExternalId": lead, "campaignExternalId": campaign, "kind": kind, "occurredAt": at } }),
    );
}

fn history(app: &TestApp, lead: &str) -> Vec<(String, String, String)> {
    let v = app.ok(
        "query($e: String!) { lead(externalId: $e) { stageHistory { to occurredAt actor } } }",
        json!({ "e": lead }),
    );
    v["lead"]["stageHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["to"].as_str().unwrap().into(),
                h["occurredAt"].as_str().unwrap().into(),
                h["actor"].as_str().unwrap().into(),
            )
        })
        .collect()
}

both_databases! {
    fn scores_explain_themselves_and_reaching_the_threshold_makes_an_mql(app) {
        campaign(app, "c1", "webinar", None);
        assert!(rule(app, json!({ "externalId": "r-retail", "name": "Retail", "kind": "ATTRIBUTE", "field": "industry", "operator": "EQUALS", "value": "retail", "points": 40 })).get("errors").is_none());
        assert!(rule(app, json!({ "externalId": "r-webinar", "name": "Webinars", "kind": "BEHAVIOR", "touchKind": "webinar_attended", "points": 30, "maxPoints": 60 })).get("errors").is_none());
        lead_with(app, "L1", "2026-03-01T00:00:00Z", json!([{ "key": "industry", "value": "Retail" }]));
        touch_kind(app, "t1", "L1", "c1", "webinar_attended", "2026-03-02T00:00:00Z");
        assert_eq!(stage_of(app, "L1"), "INQUIRY", "40 + 30 = 70 < 100");
        // The second webinar makes 40 + 60 = 100: an MQL at that touch, moved by the system.
        touch_kind(app, "t2", "L1", "c1", "webinar_attended", "2026-03-05T00:00:00Z");
        assert_eq!(history(app, "L1").last().unwrap(), &("MQL".to_string(), "2026-03-05T00:00:00Z".to_string(), "system".to_string()));
        // A third webinar adds nothing: the rule stops at maxPoints 60.
        touch_kind(app, "t2b", "L1", "c1", "webinar_attended", "2026-03-06T00:00:00Z");
        let v = app.ok(r#"{ lead(externalId: "L1") { score scoreBreakdown { rule { externalId } points } } }"#, json!({}));
        assert_eq!(v["lead"]["score"], 100);
        assert_eq!(v["lead"]["scoreBreakdown"], json!([{ "rule": { "externalId": "r-retail" }, "points": 40 }, { "rule": { "externalId": "r-webinar" }, "points": 60 }]));
        // Lowering the threshold re-scores everyone: L3 (retail, no touches) now qualifies at
        // its creation.
        lead_with(app, "L3", "2026-03-10T00:00:00Z", json!([{ "key": "industry", "value": "retail" }]));
        assert_eq!(stage_of(app, "L3"), "INQUIRY");
        app.ok("mutation { setMqlThreshold(points: 40) }", json!({}));
        assert_eq!(history(app, "L3").last().unwrap(), &("MQL".to_string(), "2026-03-10T00:00:00Z".to_string(), "system".to_string()));
        app.ok("mutation { setMqlThreshold(points: 100) }", json!({}));
        // A back-dated import crossing on its second touch moves at that touch's instant.
        lead_with(app, "L2", "2026-04-01T00:00:00Z", json!([{ "key": "industry", "value": "retail" }]));
        touch_kind(app, "t3", "L2", "c1", "webinar_attended", "2026-04-03T00:00:00Z");
        touch_kind(app, "t4", "L2", "c1", "webinar_attended", "2026-04-09T12:00:00Z");
        assert_eq!(history(app, "L2").last().unwrap(), &("MQL".to_string(), "2026-04-09T12:00:00Z".to_string(), "system".to_string()));
        assert_eq!(app.ok("{ mqlThreshold scoringRules { externalId } }", json!({}))["scoringRules"].as_array().unwrap().len(), 2);
    }

    fn a_recycled_lead_is_not_re_qualified_by_a_score_it_already_had(app) {
        campaign(app, "c1", "email", None);
        rule(app, json!({ "externalId": "r", "name": "Clicks", "kind": "BEHAVIOR", "touchKind": "email_click", "points": 100 }));
        lead(app, "L1", "2026-03-01T00:00:00Z");
        touch_kind(app, "t1", "L1", "c1", "email_click", "2026-03-02T00:00:00Z");
        assert_eq!(stage_of(app, "L1"), "MQL");
        move_lead(app, "L1", "RECYCLED", "2026-03-05T00:00:00Z");
        touch_kind(app, "t2", "L1", "c1", "email_click", "2026-03-10T00:00:00Z");
        assert_eq!(stage_of(app, "L1"), "RECYCLED", "the threshold was reached before it was recycled");
    }

    fn rule_changes_follow_the_role_table_and_malformed_rules_are_refused(app) {
        let input = json!({ "externalId": "r", "name": "Size", "kind": "ATTRIBUTE", "field": "company_size", "operator": "GTE", "value": "200", "points": 10 });
        for role in [Role::Finance, Role::Marketer, Role::SalesRep, Role::Analyst, Role::Integration] {
            assert_eq!(code(&app.gql_with(&app.token("x", role), RULE, json!({ "i": input }))), "FORBIDDEN", "{role:?}");
        }
        assert!(app.gql_with(&app.token("x", Role::MarketingManager), RULE, json!({ "i": input })).get("errors").is_none());
        let bad = [
            json!({ "externalId": "b1", "name": "n", "kind": "ATTRIBUTE", "field": "company_size", "operator": "GTE", "points": 1 }),
            json!({ "externalId": "b2", "name": "n", "kind": "ATTRIBUTE", "field": "company_size", "operator": "LTE", "value": "big", "points": 1 }),
            json!({ "externalId": "b3", "name": "n", "kind": "ATTRIBUTE", "field": "x", "value": "y", "points": 1 }),
            json!({ "externalId": "b4", "name": "n", "kind": "BEHAVIOR", "points": 1 }),
        ];
        for input in bad {
            assert_eq!(code(&rule(app, input.clone())), "BAD_USER_INPUT", "{input}");
        }
        assert_eq!(code(&app.admin("mutation { setMqlThreshold(points: 0) }", json!({}))), "BAD_USER_INPUT");
        assert_eq!(code(&app.gql_with(&app.token("x", Role::Analyst), "mutation { setMqlThreshold(points: 50) }", json!({}))), "FORBIDDEN");
        // A numeric rule on a non-numeric attribute never matches and never errors.
        lead_with(app, "L1", "2026-03-01T00:00:00Z", json!([{ "key": "company_size", "value": "large" }]));
        let v = app.ok(r#"{ lead(externalId: "L1") { score scoreBreakdown { points } } }"#, json!({}));
        assert_eq!(v["lead"], json!({ "score": 0, "scoreBreakdown": [] }));
        assert_eq!(app.ok("{ mqlThreshold }", json!({}))["mqlThreshold"], 100);
    }

    fn the_funnel_counts_skips_recycles_and_disqualifications(app) {
        user(app, "m1", "MARKETER");
        campaign(app, "c1", "email", Some("m1"));
        campaign(app, "c2", "event", None);
        for (l, c) in [("A", "c1"), ("B", "c1"), ("C", "c1"), ("D", "c2")] {
            lead(app, l, "2026-01-10T00:00:00Z");
            touch(app, &format!("t{l}"), l, c, "2026-01-10T00:00:00Z");
        }
        // A skips MQL and SAL: INQUIRY → SQL on day 2 (MQL, SAL and SQL reached at once).
        move_lead(app, "A", "SQL", "2026-01-12T00:00:00Z");
        // B is recycled twice and requalified.
        move_lead(app, "B", "MQL", "2026-01-11T00:00:00Z");
        move_lead(app, "B", "RECYCLED", "2026-01-12T00:00:00Z");
        move_lead(app, "B", "MQL", "2026-01-20T00:00:00Z");
        move_lead(app, "B", "RECYCLED", "2026-01-21T00:00:00Z");
        // C is disqualified from INQUIRY; D reaches SAL in 4 days.
        move_lead(app, "C", "DISQUALIFIED", "2026-01-11T00:00:00Z");
        move_lead(app, "D", "MQL", "2026-01-11T00:00:00Z");
        move_lead(app, "D", "SAL", "2026-01-14T00:00:00Z");
        let q = "query($c: String) { funnel(period: { from: \"2026-01-01\", to: \"2026-02-01\" }, campaignExternalId: $c) {
            cohortSize recycled disqualified lost stages { stage entered convertedToNext conversionRate medianDaysToNext }
            marketingTime { count medianDays meanDays } handoffTime { count medianDays p90Days } } }";
        let f = &app.ok(q, json!({}))["funnel"];
        assert_eq!(f["cohortSize"], 4);
        assert_eq!((f["recycled"].clone(), f["disqualified"].clone(), f["lost"].clone()), (json!(1), json!(1), json!(0)), "B counts once");
        let entered: Vec<i64> = f["stages"].as_array().unwrap().iter().map(|s| s["entered"].as_i64().unwrap()).collect();
        assert_eq!(entered, vec![4, 3, 2, 1, 0, 0], "INQUIRY 4; MQL A B D; SAL A D; SQL A");
        // INQUIRY → MQL: A after 2 days, B and D after 1: median 1.
        assert_eq!(f["stages"][0]["medianDaysToNext"], 1.0);
        assert_eq!(f["stages"][0]["conversionRate"], 0.75);
        // MQL → SAL: A at once (0), D after 3 days: median 1.5.
        assert_eq!(f["stages"][1]["medianDaysToNext"], 1.5);
        assert!(f["stages"][5]["conversionRate"].is_null(), "WON has no next stage");
        // Marketing time: A 2 days, D 4 days; handoff: A 0, D 3.
        assert_eq!(f["marketingTime"], json!({ "count": 2, "medianDays": 3.0, "meanDays": 3.0 }));
        assert_eq!(f["handoffTime"]["p90Days"], 2.7);
        let by_campaign = &app.ok(q, json!({ "c": "c2" }))["funnel"];
        assert_eq!(by_campaign["cohortSize"], 1);
        let mine = app.gql_with(&app.token("m1", Role::Marketer), q, json!({}));
        assert_eq!(mine["data"]["funnel"]["cohortSize"], 3, "a marketer's funnel covers the leads their campaigns sourced");
        assert_eq!(code(&app.gql_with(&app.token("s", Role::SalesRep), q, json!({}))), "FORBIDDEN");
        // The cohort is shared between requests per data version: a write shows at once.
        move_lead(app, "D", "SQL", "2026-01-16T00:00:00Z");
        let f = &app.ok(q, json!({}))["funnel"];
        let entered: Vec<i64> = f["stages"].as_array().unwrap().iter().map(|s| s["entered"].as_i64().unwrap()).collect();
        assert_eq!(entered, vec![4, 3, 2, 2, 0, 0], "D reached SQL");
    }

    fn leakage_counts_decisions_against_the_sla_and_prices_the_leak(app) {
        user(app, "s1", "SALES_REP");
        campaign(app, "c1", "paid_search", None);
        campaign(app, "c0", "content", None);
        cost(app, "k1", "c1", "300.00", "2026-01-01");
        cost(app, "k2", "c1", "100.00", "2026-08-01"); // after asOf: not counted
        for (l, c) in [("A", "c1"), ("B", "c1"), ("C", "c1"), ("D", "c0"), ("E", "c1")] {
            lead(app, l, "2026-01-05T00:00:00Z");
            touch(app, &format!("t{l}"), l, c, "2026-01-05T00:00:00Z");
        }
        for l in ["A", "B", "C", "D", "E"] {
            move_lead(app, l, "MQL", "2026-01-10T00:00:00Z");
        }
        // A: accepted exactly 48 h later — within the SLA.
        move_lead(app, "A", "SAL", "2026-01-12T00:00:00Z");
        // B: recycled after 3 days — late.
        move_lead(app, "B", "RECYCLED", "2026-01-13T00:00:00Z");
        // C and D: never decided, older than 48 h at asOf. E became MQL again later, too young.
        move_lead(app, "E", "DISQUALIFIED", "2026-01-11T00:00:00Z");
        let q = "query($a: DateTime) { leakage(period: { from: \"2026-01-01\", to: \"2026-02-01\" }, asOf: $a) {
            mqls decidedWithinSla decidedLate undecided leaked leakageRate recycledBySales disqualifiedBySales
            wastedSpend { amount } leakedLeads { totalCount nodes { externalId email } } } }";
        let l = &app.ok(q, json!({ "a": "2026-07-01T00:00:00Z" }))["leakage"];
        assert_eq!(
            (l["mqls"].clone(), l["decidedWithinSla"].clone(), l["decidedLate"].clone(), l["undecided"].clone(), l["leaked"].clone()),
            (json!(5), json!(2), json!(1), json!(2), json!(3))
        );
        assert_eq!(l["leakageRate"], 0.6);
        assert_eq!((l["recycledBySales"].clone(), l["disqualifiedBySales"].clone()), (json!(1), json!(1)));
        // c1 cost 300.00 up to asOf and sourced 4 leads: 75.00 each; B and C leaked from it,
        // D from c0, which cost nothing: 150.00.
        assert_eq!(l["wastedSpend"]["amount"], "150.00");
        let leaked: Vec<&str> = l["leakedLeads"]["nodes"].as_array().unwrap().iter().map(|n| n["externalId"].as_str().unwrap()).collect();
        assert_eq!(leaked, vec!["B", "C", "D"]);
        // At an asOf 47 hours after the MQLs nothing undecided is old enough to have leaked.
        let early = &app.ok(q, json!({ "a": "2026-01-11T23:00:00Z" }))["leakage"];
        assert_eq!((early["mqls"].clone(), early["undecided"].clone(), early["leaked"].clone()), (json!(5), json!(4), json!(0)));
        // Analysts get the numbers, never the personal data of the leaked leads.
        let v = app.gql_with(&app.token("a", Role::Analyst), q, json!({ "a": "2026-07-01T00:00:00Z" }));
        assert_eq!(v["data"]["leakage"]["leaked"], 3);
        assert!(v["errors"].as_array().unwrap().iter().all(|e| e["extensions"]["code"] == "FORBIDDEN" && e["path"].to_string().contains("email")));
        // A sales rep sees the leakage of their own leads only (none here).
        let v = app.gql_with(&app.token("s1", Role::SalesRep), q, json!({ "a": "2026-07-01T00:00:00Z" }));
        assert_eq!(v["data"]["leakage"]["mqls"], 0);
        // MQLs are shared between requests per data version: a decision shows at once.
        move_lead(app, "C", "SAL", "2026-01-20T00:00:00Z");
        let l = &app.ok(q, json!({ "a": "2026-07-01T00:00:00Z" }))["leakage"];
        assert_eq!((l["decidedLate"].clone(), l["undecided"].clone(), l["leaked"].clone()), (json!(2), json!(1), json!(3)));
    }

    fn calibration_compares_win_rates_of_matched_and_unmatched_leads(app) {
        rule(app, json!({ "externalId": "r", "name": "Retail", "kind": "ATTRIBUTE", "field": "industry", "operator": "EQUALS", "value": "retail", "points": 10 }));
        for (l, industry) in [("A", "retail"), ("B", "retail"), ("C", "software"), ("D", "software")] {
            lead_with(app, l, "2026-01-05T00:00:00Z", json!([{ "key": "industry", "value": industry }]));
        }
        for (l, o) in [("A", "O1"), ("C", "O2")] {
            opportunity(app, o, l, &[], None, "10.00", "2026-01-10T00:00:00Z");
            close(app, o, true, "2026-01-20T00:00:00Z");
        }
        opportunity(app, "O3", "B", &[], None, "10.00", "2026-01-10T00:00:00Z");
        close(app, "O3", true, "2026-01-21T00:00:00Z");
        let v = app.ok("{ scoringCalibration(period: { from: \"2026-01-01\", to: \"2026-02-01\" }) { rule { externalId } matched matchedWon winRateMatched winRateUnmatched lift } }", json!({}));
        // Retail: 2 matched, both won (1.0); the rest: 1 of 2 won (0.5); lift 2.
        assert_eq!(v["scoringCalibration"], json!([{ "rule": { "externalId": "r" }, "matched": 2, "matchedWon": 2, "winRateMatched": 1.0, "winRateUnmatched": 0.5, "lift": 2.0 }]));
    }
}
