//! Marketer pay over HTTP: hand-worked statements, period close and reopen, every rejection,
//! the CSV exports, and who may do what.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use funnelgraph::auth::Role;
use serde_json::{json, Value};

const H1: &str = r#"{ from: "2026-01-01", to: "2026-07-01" }"#;

fn plan(app: &TestApp, input: Value) -> Value {
    app.admin(
        "mutation($i: CompensationPlanInput!) { upsertCompensationPlan(input: $i) { externalId revenueRate clawbackDays } }",
        json!({ "i": input }),
    )
}

fn assign(app: &TestApp, user: &str, plan: &str) {
    app.ok(
        "mutation($i: PlanAssignmentInput!) { assignCompensationPlan(input: $i) { externalId } }",
        json!({ "i": { "userExternalId": user, "planExternalId": plan, "effectiveFrom": "2026-01-01" } }),
    );
}

/// m1 owns c1; one lead touched only by c1 wins deal O1 on 2026-03-01.
fn company(app: &TestApp, terms: Value) {
    user(app, "m1", "MARKETER");
    user(app, "m2", "MARKETER");
    campaign(app, "c1", "email", Some("m1"));
    lead(app, "L1", "2026-02-01T00:00:00Z");
    touch(app, "t1", "L1", "c1", "2026-02-01T00:00:00Z");
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
    let mut input = json!({ "externalId": "p1", "name": "Plan", "model": "LINEAR", "revenueRate": "0.02",
        "qualifiedLeadBonus": { "amount": "0.00", "currency": "USD" }, "clawbackDays": 10 });
    for (k, v) in terms.as_object().unwrap() {
        input[k] = v.clone();
    }
    assert!(plan(app, input).get("errors").is_none());
    assign(app, "m1", "p1");
}

const STATEMENT: &str = "query($u: String!) { compensationStatement(userExternalId: $u, period: { from: \"2026-01-01\", to: \"2026-07-01\" }) {
    status user { externalId } plan { externalId revenueRate } period { from to } attributedRevenue { amount } qualifiedLeads total { amount }
    lines { kind campaign { externalId } opportunity { externalId } basis { amount } rate amount { amount } description } } }";

fn statement(app: &TestApp) -> Value {
    app.ok(STATEMENT, json!({ "u": "m1" }))["compensationStatement"].clone()
}

fn amounts(s: &Value) -> Vec<(String, String)> {
    s["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap().to_string(),
                l["amount"]["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pair(kind: &str, amount: &str) -> (String, String) {
    (kind.to_string(), amount.to_string())
}

both_databases! {
    fn commission_lines_round_half_to_even_both_ways(app) {
        company(app, json!({}));
        // 2% of 1.25 = 0.025 → 0.02 (even); 2% of 1.75 = 0.035 → 0.04 (even).
        revenue(app, "R1", "O1", "1.25", "2026-03-01");
        revenue(app, "R2", "O1", "1.75", "2026-03-02");
        let s = statement(app);
        assert_eq!(amounts(&s), vec![pair("COMMISSION", "0.02"), pair("COMMISSION", "0.04")]);
        assert_eq!(s["total"]["amount"], "0.06");
        assert_eq!(s["attributedRevenue"]["amount"], "3.00");
        assert_eq!(s["status"], "OPEN");
        let line = &s["lines"][0];
        assert_eq!(line["campaign"]["externalId"], "c1");
        assert_eq!(line["opportunity"]["externalId"], "O1");
        assert_eq!(line["basis"]["amount"], "1.25");
        assert_eq!(line["rate"], "0.02");
        assert!(line["description"].as_str().unwrap().contains("R1"));
        // What statements share is kept per data version: new revenue shows at once, in one
        // marketer's statement and in the export of all of them.
        revenue(app, "R3", "O1", "2.00", "2026-03-03");
        let s = statement(app);
        assert_eq!(s["attributedRevenue"]["amount"], "5.00");
        assert_eq!(s["total"]["amount"], "0.10");
        let (status, csv) = app.get_with_auth("/export/statements.csv?from=2026-01-01&to=2026-07-01", &app.token("fin", Role::Finance));
        assert_eq!(status, 200, "{csv}");
        assert_eq!(csv.lines().count(), 4, "three commission lines: {csv}");
        revenue(app, "R4", "O1", "4.00", "2026-03-04");
        let (_, csv) = app.get_with_auth("/export/statements.csv?from=2026-01-01&to=2026-07-01", &app.token("fin", Role::Finance));
        assert!(csv.lines().any(|l| l.contains(",COMMISSION,c1,O1,4.00,0.02,0.08,USD,")), "{csv}");
    }

    fn the_accelerator_pays_above_a_quota_crossed_inside_the_period(app) {
        company(app, json!({ "quota": { "amount": "10.00", "currency": "USD" }, "acceleratorRate": "0.05" }));
        revenue(app, "R1", "O1", "6.00", "2026-03-01");
        revenue(app, "R2", "O1", "7.00", "2026-04-01");
        let s = statement(app);
        // 0.12 + 0.14 commission; 3.00 above quota × (0.05 − 0.02) = 0.09.
        assert_eq!(amounts(&s), vec![pair("COMMISSION", "0.12"), pair("COMMISSION", "0.14"), pair("ACCELERATOR", "0.09")]);
        assert_eq!(s["lines"][2]["rate"], "0.03");
        assert_eq!(s["total"]["amount"], "0.35");
    }

    fn a_cap_bites_and_clawbacks_count_inside_their_window_only(app) {
        company(app, json!({ "cap": { "amount": "15.00", "currency": "USD" } }));
        revenue(app, "R1", "O1", "1000.00", "2026-03-01");
        revenue(app, "R2", "O1", "-100.00", "2026-03-11"); // 10 days after: inside
        revenue(app, "R3", "O1", "-50.00", "2026-03-12"); // 11 days after: outside
        let s = statement(app);
        assert_eq!(
            amounts(&s),
            vec![pair("COMMISSION", "20.00"), pair("CAP", "-5.00"), pair("CLAWBACK", "-2.00")]
        );
        assert_eq!(s["total"]["amount"], "13.00");
    }

    fn a_marketer_without_a_plan_has_no_statement(app) {
        company(app, json!({}));
        let v = app.admin(STATEMENT, json!({ "u": "m2" }));
        assert_eq!(code(&v), "NOT_FOUND");
        let v = app.admin(STATEMENT, json!({ "u": "nobody" }));
        assert_eq!(code(&v), "NOT_FOUND");
    }

    fn bad_plans_are_refused(app) {
        let base = json!({ "externalId": "p", "name": "P", "model": "LINEAR", "revenueRate": "0.02",
            "qualifiedLeadBonus": { "amount": "1.00", "currency": "USD" } });
        let with = |k: &str, v: Value| { let mut i = base.clone(); i[k] = v; i };
        for (why, input) in [
            ("negative rate", with("revenueRate", json!("-0.01"))),
            ("negative bonus", with("qualifiedLeadBonus", json!({ "amount": "-1.00", "currency": "USD" }))),
            ("accelerator without quota", with("acceleratorRate", json!("0.05"))),
            ("another currency", with("cap", json!({ "amount": "1.00", "currency": "EUR" }))),
            ("sub-cent bonus", with("qualifiedLeadBonus", json!({ "amount": "1.001", "currency": "USD" }))),
            ("negative clawback window", with("clawbackDays", json!(-1))),
        ] {
            assert_eq!(code(&plan(app, input)), "BAD_USER_INPUT", "{why}");
        }
        let v = app.ok("{ auditLog(first: 50) { totalCount } }", json!({}));
        assert_eq!(v["auditLog"]["totalCount"], 0, "nothing was written");
    }

    fn a_closed_period_is_frozen_until_reopened(app) {
        company(app, json!({}));
        revenue(app, "R1", "O1", "100.00", "2026-03-01");
        let before = statement(app);
        let close_q = format!("mutation {{ closePeriod(period: {H1}) {{ period {{ from to }} closedBy statements }} }}");
        let v = app.gql_with(&app.token("fin", Role::Finance), &close_q, json!({}));
        assert_eq!(v["data"]["closePeriod"], json!({ "period": { "from": "2026-01-01", "to": "2026-07-01" }, "closedBy": "fin", "statements": 1 }));
        let frozen = statement(app);
        assert_eq!(frozen["status"], "CLOSED");
        assert_eq!(frozen["total"], before["total"]);
        // Late data and a plan edit change nothing in the frozen statement.
        assert!(plan(app, json!({ "externalId": "p1", "name": "Richer", "model": "FIRST_TOUCH", "revenueRate": "0.5",
            "qualifiedLeadBonus": { "amount": "9.00", "currency": "USD" } })).get("errors").is_none());
        touch(app, "t2", "L1", "c1", "2026-02-15T00:00:00Z");
        assert_eq!(statement(app), frozen, "byte-identical after the plan was edited");
        // Money inside the closed period is refused, new or updated; a replay is fine.
        assert_eq!(code(&revenue(app, "R2", "O1", "5.00", "2026-06-30")), "PERIOD_CLOSED");
        assert_eq!(code(&revenue(app, "R1", "O1", "101.00", "2026-03-01")), "PERIOD_CLOSED");
        assert_eq!(code(&revenue(app, "R1", "O1", "100.00", "2026-07-15")), "PERIOD_CLOSED", "moving it out is a change too");
        assert!(revenue(app, "R1", "O1", "100.00", "2026-03-01").get("errors").is_none());
        let v = app.admin("mutation($i: CampaignCostInput!) { recordCampaignCost(input: $i) { id } }",
            json!({ "i": { "externalId": "k1", "campaignExternalId": "c1", "amount": { "amount": "1.00", "currency": "USD" }, "incurredOn": "2026-01-01" } }));
        assert_eq!(code(&v), "PERIOD_CLOSED");
        assert!(revenue(app, "R3", "O1", "5.00", "2026-07-01").get("errors").is_none(), "the day after is open");
        // Overlapping closes conflict; only exactly the closed period reopens.
        let v = app.admin("mutation { closePeriod(period: { from: \"2026-06-01\", to: \"2026-08-01\" }) { statements } }", json!({}));
        assert_eq!(code(&v), "CONFLICT");
        let v = app.admin("mutation { reopenPeriod(period: { from: \"2026-01-01\", to: \"2026-06-01\" }) }", json!({}));
        assert_eq!(code(&v), "NOT_FOUND");
        let v = app.gql_with(&app.token("fin", Role::Finance), &format!("mutation {{ reopenPeriod(period: {H1}) }}"), json!({}));
        assert_eq!(v["data"]["reopenPeriod"], true);
        let live = statement(app);
        assert_eq!(live["status"], "OPEN");
        assert_eq!(live["plan"]["revenueRate"], "0.5", "live again, with the edited plan");
        let log = app.ok("{ auditLog(first: 100) { nodes { operation externalId actor } } }", json!({}));
        let ops: Vec<&str> = log["auditLog"]["nodes"].as_array().unwrap().iter().map(|n| n["operation"].as_str().unwrap()).collect();
        assert!(ops.contains(&"closePeriod") && ops.contains(&"reopenPeriod"), "{ops:?}");
    }

    fn statements_and_closing_follow_the_role_table(app) {
        company(app, json!({}));
        let me = app.gql_with(&app.token("m1", Role::Marketer), STATEMENT, json!({ "u": "m1" }));
        assert!(me.get("errors").is_none(), "{me}");
        assert_eq!(code(&app.gql_with(&app.token("m2", Role::Marketer), STATEMENT, json!({ "u": "m1" }))), "FORBIDDEN");
        assert!(app.gql_with(&app.token("x", Role::MarketingManager), STATEMENT, json!({ "u": "m1" })).get("errors").is_none());
        for role in [Role::SalesRep, Role::Analyst, Role::Integration] {
            assert_eq!(code(&app.gql_with(&app.token("x", role), STATEMENT, json!({ "u": "m1" }))), "FORBIDDEN", "{role:?}");
        }
        let close_q = format!("mutation {{ closePeriod(period: {H1}) {{ statements }} }}");
        for role in [Role::MarketingManager, Role::Marketer, Role::SalesRep, Role::Analyst, Role::Integration] {
            assert_eq!(code(&app.gql_with(&app.token("m1", role), &close_q, json!({}))), "FORBIDDEN", "{role:?}");
        }
        assert_eq!(code(&app.gql_with(&app.token("x", Role::Analyst), "{ auditLog { totalCount } }", json!({}))), "FORBIDDEN");
        assert_eq!(statement(app)["status"], "OPEN", "nothing was closed");
    }

    fn finance_exports_statements_and_attribution_as_csv(app) {
        company(app, json!({}));
        revenue(app, "R1", "O1", "1234.57", "2026-03-01");
        let fin = app.token("fin", Role::Finance);
        let (status, csv) = app.get_with_auth("/export/statements.csv?from=2026-01-01&to=2026-07-01", &fin);
        assert_eq!(status, 200, "{csv}");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "marketer,period_from,period_to,status,kind,campaign,opportunity,basis,rate,amount,currency,description");
        assert!(lines[1].starts_with("m1,2026-01-01,2026-07-01,OPEN,COMMISSION,c1,O1,1234.57,0.02,24.69,USD,"), "{}", lines[1]);
        let (status, csv) = app.get_with_auth("/export/attribution.csv?model=LINEAR&from=2026-01-01&to=2026-07-01&stage=WON&groupBy=CAMPAIGN", &fin);
        assert_eq!(status, 200, "{csv}");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines, vec!["key,campaign,conversions,revenue,currency", "c1,Campaign c1,1,1234.57,USD", "(unattributed),,0,0.00,USD"]);
        let (status, _) = app.get("/export/statements.csv?from=2026-01-01&to=2026-07-01");
        assert_eq!(status, 401);
        let (status, _) = app.get_with_auth("/export/statements.csv?from=2026-01-01&to=2026-07-01", &app.token("s", Role::SalesRep));
        assert_eq!(status, 403);
        let (status, _) = app.get_with_auth("/export/statements.csv?from=2026-07-01&to=2026-01-01", &fin);
        assert_eq!(status, 400);
        let (status, body) = app.get_with_auth("/export/statements.csv?from=2026-01-01&to=2026-07-01", &app.token("m2", Role::Marketer));
        assert_eq!((status, body.lines().count()), (200, 1), "m2 sees only their own (none)");
    }
}
