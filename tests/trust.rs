//! Trust (issue 12): every write checks the row as it is and as it will be, splits tie
//! exactly on large amounts, money that depends on fractional credit is exact, and a report
//! never misses a committed write. Through HTTP, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use funnelgraph::auth::policy::{self, Need, Scope, TransitionRights, OPERATIONS};
use funnelgraph::auth::{Role, ROLES};
use serde_json::{json, Value};

/// A small company where every kind of row exists and belongs to someone other than the
/// callers the test uses: campaigns and costs of the MARKETER `bob`, a lead and a deal of the
/// SALES_REP `rex`, a plan, a rule.
fn company(app: &TestApp) {
    for (u, role) in [
        ("alice", "MARKETER"),
        ("bob", "MARKETER"),
        ("rita", "SALES_REP"),
        ("rex", "SALES_REP"),
    ] {
        user(app, u, role);
    }
    campaign(app, "c-alice", "email", Some("alice"));
    campaign(app, "c-bob", "event", Some("bob"));
    campaign(app, "c-nobody", "web", None);
    cost(app, "cost-bob", "c-bob", "9622.83", "2026-01-28");
    cost(app, "cost-nobody", "c-nobody", "10.00", "2026-01-28");
    lead(app, "L-rex", "2026-01-02T00:00:00Z");
    touch(app, "tp-rex", "L-rex", "c-bob", "2026-01-03T00:00:00Z");
    move_lead(app, "L-rex", "MQL", "2026-01-04T00:00:00Z");
    opportunity(
        app,
        "opp-rex",
        "L-rex",
        &[],
        Some("rex"),
        "1000.00",
        "2026-01-05T00:00:00Z",
    );
    // The deal's primary contact is owned by its owner now: at SAL or beyond.
    assert_eq!(
        close(app, "opp-rex", true, "2026-01-10T00:00:00Z")["errors"],
        Value::Null
    );
    assert_eq!(
        revenue(app, "rev-rex", "opp-rex", "1000.00", "2026-01-11")["errors"],
        Value::Null
    );
    lead(app, "L-open", "2026-01-02T00:00:00Z");
    let v = app.admin(
        MOVE,
        json!({ "i": { "leadExternalId": "L-open", "to": "MQL", "occurredAt": "2026-01-04T00:00:00Z", "externalId": "move-open" } }),
    );
    assert_eq!(v["errors"], Value::Null, "{v}");
    opportunity(
        app,
        "opp-open",
        "L-open",
        &[],
        Some("rex"),
        "500.00",
        "2026-01-06T00:00:00Z",
    );
    app.ok(
        "mutation { upsertCompensationPlan(input: { externalId: \"plan\", name: \"Plan\", model: LINEAR, revenueRate: \"0.02\", qualifiedLeadBonus: { amount: \"25.00\", currency: \"USD\" } }) { id } }",
        json!({}),
    );
    app.ok(
        "mutation { assignCompensationPlan(input: { userExternalId: \"bob\", planExternalId: \"plan\", effectiveFrom: \"2026-01-01\" }) { id } }",
        json!({}),
    );
    app.ok(
        "mutation { upsertScoringRule(input: { externalId: \"rule\", name: \"Rule\", kind: ATTRIBUTE, field: \"title\", operator: EQUALS, value: \"CTO\", points: 10 }) { id } }",
        json!({}),
    );
    app.ok(
        "mutation { upsertAccount(input: { externalId: \"acct-rex\", name: \"Rex Corp\", domain: \"rex.example\", ownerExternalId: \"rex\" }) { id } }",
        json!({}),
    );
}

/// Everything the hostile writes could change, read as ADMIN.
const STATE: &str = "{
  campaigns(first: 50) { nodes { externalId name channel owner { externalId } cost { amount } } }
  leads(first: 50) { nodes { externalId fullName stage owner { externalId } touchpoints { externalId campaign { externalId } } } }
  opportunities(first: 50) { nodes { externalId name amount { amount } status owner { externalId } revenue { externalId amount { amount } } } }
  scoringRules { externalId points }
  mqlThreshold
  accounts(first: 50) { nodes { externalId name domain owner { externalId } leads { externalId } } }
  mqaSettings { minContacts threshold }
  compensationStatement(userExternalId: \"bob\", period: { from: \"2026-01-01\", to: \"2026-02-01\" }) { status plan { externalId revenueRate } total { amount } }
  auditLog(first: 1) { totalCount }
}";

/// For each write of the API, hostile attempts on rows owned by someone else (or, for
/// moves, onto them): `(operation, document)`.
fn hostile_writes() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Mutation.upsertUser", "mutation { upsertUser(input: { externalId: \"bob\", name: \"Hijacked\", role: ADMIN }) { id } }"),
        // The campaign as it is (bob's) ...
        ("Mutation.upsertCampaign", "mutation { upsertCampaign(input: { externalId: \"c-bob\", name: \"Hijacked\", channel: \"event\" }) { id } }"),
        // ... and as it will be (handing one's own campaign to someone else).
        ("Mutation.upsertCampaign", "mutation { upsertCampaign(input: { externalId: \"c-alice\", name: \"Campaign c-alice\", channel: \"email\", ownerExternalId: \"bob\" }) { id } }"),
        // Moving bob's cost onto one's own campaign (the demo's $9,622.83) ...
        ("Mutation.recordCampaignCost", "mutation { recordCampaignCost(input: { externalId: \"cost-bob\", campaignExternalId: \"c-alice\", amount: { amount: \"0.01\", currency: \"USD\" }, incurredOn: \"2026-01-28\" }) { id } }"),
        // ... rewriting it where it is ...
        ("Mutation.recordCampaignCost", "mutation { recordCampaignCost(input: { externalId: \"cost-bob\", campaignExternalId: \"c-bob\", amount: { amount: \"0.01\", currency: \"USD\" }, incurredOn: \"2026-01-28\" }) { id } }"),
        // ... recording a new cost on a campaign nobody owns ...
        ("Mutation.recordCampaignCost", "mutation { recordCampaignCost(input: { externalId: \"cost-new\", campaignExternalId: \"c-nobody\", amount: { amount: \"5.00\", currency: \"USD\" }, incurredOn: \"2026-01-28\" }) { id } }"),
        // ... and pulling an unowned campaign's cost onto one's own.
        ("Mutation.recordCampaignCost", "mutation { recordCampaignCost(input: { externalId: \"cost-nobody\", campaignExternalId: \"c-alice\", amount: { amount: \"10.00\", currency: \"USD\" }, incurredOn: \"2026-01-28\" }) { id } }"),
        ("Mutation.upsertLead", "mutation { upsertLead(input: { externalId: \"L-rex\", fullName: \"Hijacked\", createdAt: \"2026-01-02T00:00:00Z\" }) { id } }"),
        ("Mutation.recordTouchpoint", "mutation { recordTouchpoint(input: { externalId: \"tp-rex\", leadExternalId: \"L-rex\", campaignExternalId: \"c-alice\", kind: \"form_fill\", occurredAt: \"2026-01-03T00:00:00Z\" }) { id } }"),
        // rex's open deal's contact, moved by someone who owns neither the lead nor the deal.
        ("Mutation.transitionLead", "mutation { transitionLead(input: { leadExternalId: \"L-open\", to: \"SQL\", occurredAt: \"2026-01-07T00:00:00Z\" }) { stage } }"),
        // Replaying a move someone else made: it would answer (and audit) for a lead the
        // caller may not move.
        ("Mutation.transitionLead", "mutation { transitionLead(input: { leadExternalId: \"L-open\", to: MQL, occurredAt: \"2026-01-04T00:00:00Z\", externalId: \"move-open\" }) { stage } }"),
        ("Mutation.upsertOpportunity", "mutation { upsertOpportunity(input: { externalId: \"opp-open\", name: \"Hijacked\", primaryContactExternalId: \"L-open\", ownerExternalId: \"rita\", amount: { amount: \"1.00\", currency: \"USD\" }, createdAt: \"2026-01-06T00:00:00Z\" }) { id } }"),
        ("Mutation.closeOpportunity", "mutation { closeOpportunity(input: { externalId: \"opp-open\", won: false, closedAt: \"2026-01-08T00:00:00Z\" }) { id } }"),
        ("Mutation.recordRevenue", "mutation { recordRevenue(input: { externalId: \"rev-rex\", opportunityExternalId: \"opp-rex\", amount: { amount: \"1.00\", currency: \"USD\" }, bookedOn: \"2026-01-11\" }) { id } }"),
        ("Mutation.upsertCompensationPlan", "mutation { upsertCompensationPlan(input: { externalId: \"plan\", name: \"Plan\", model: LINEAR, revenueRate: \"0.90\", qualifiedLeadBonus: { amount: \"25.00\", currency: \"USD\" } }) { id } }"),
        ("Mutation.assignCompensationPlan", "mutation { assignCompensationPlan(input: { userExternalId: \"alice\", planExternalId: \"plan\", effectiveFrom: \"2026-01-01\" }) { id } }"),
        ("Mutation.closePeriod", "mutation { closePeriod(period: { from: \"2026-01-01\", to: \"2026-02-01\" }) { statements } }"),
        ("Mutation.reopenPeriod", "mutation { reopenPeriod(period: { from: \"2025-01-01\", to: \"2025-02-01\" }) }"),
        ("Mutation.upsertScoringRule", "mutation { upsertScoringRule(input: { externalId: \"rule\", name: \"Rule\", kind: ATTRIBUTE, field: \"title\", operator: EQUALS, value: \"CTO\", points: 99 }) { id } }"),
        ("Mutation.setMqlThreshold", "mutation { setMqlThreshold(points: 1) }"),
        // Taking over rex's account (its domain would pull every lead of rex.example along).
        ("Mutation.upsertAccount", "mutation { upsertAccount(input: { externalId: \"acct-rex\", name: \"Hijacked\", domain: \"evil.example\", ownerExternalId: \"rita\" }) { id } }"),
        ("Mutation.setMqaSettings", "mutation { setMqaSettings(minContacts: 1, threshold: 0) { threshold } }"),
        // Redefining the company's custom attribution model.
        ("Mutation.upsertAttributionModel", "mutation { upsertAttributionModel(key: \"house\", name: \"Hijacked\", first: \"1\", last: \"0\", mql: \"0\", opportunity: \"0\", close: \"0\", middle: \"0\") { key } }"),
        // Re-valuing every euro amount of January.
        ("Mutation.upsertExchangeRate", "mutation { upsertExchangeRate(currency: \"EUR\", rate: \"9.99\", effectiveFrom: \"2026-01-01\") { revalued } }"),
    ]
}

/// Whether the policy lets `role` write every row this operation can touch (then the
/// hostile write is simply allowed and the test does not send it).
fn writes_everything(role: Role, operation: &str) -> bool {
    let need = OPERATIONS
        .iter()
        .find(|(n, _)| *n == operation)
        .map(|(_, need)| *need)
        .expect("operation in the table");
    match need {
        Need::Write(w) => policy::write(role, w) == Scope::All,
        Need::Transition => policy::transitions(role) == TransitionRights::Any,
        Need::Anyone | Need::Read(_) => true,
    }
}

/// The caller a role is tested as: the marketer and the rep have rows of their own (and own
/// things), the others are whoever their token says.
fn caller(role: Role) -> &'static str {
    match role {
        Role::Marketer => "alice",
        Role::SalesRep => "rita",
        _ => "someone",
    }
}

#[test]
fn every_write_of_the_table_has_a_hostile_case() {
    let covered: std::collections::BTreeSet<&str> =
        hostile_writes().iter().map(|(op, _)| *op).collect();
    for (op, _) in OPERATIONS
        .iter()
        .filter(|(n, _)| n.starts_with("Mutation."))
    {
        assert!(
            covered.contains(op),
            "{op} has no hostile write in tests/trust.rs: add one"
        );
    }
}

both_databases! {
    fn every_write_refuses_a_row_it_may_not_change_and_changes_nothing(app) {
        company(app);
        let before = app.ok(STATE, json!({}));
        let mut refused = 0;
        for (operation, doc) in hostile_writes() {
            for role in ROLES.into_iter().filter(|r| !writes_everything(*r, operation)) {
                let v = app.gql_with(&app.token(caller(role), role), doc, json!({}));
                assert_eq!(code(&v), "FORBIDDEN", "{role:?} {operation}: {doc} -> {v}");
                refused += 1;
            }
        }
        let after = app.ok(STATE, json!({}));
        assert_eq!(after, before, "refused writes changed nothing (read back as ADMIN)");
        eprintln!("[figure] {refused} hostile writes refused");
        assert!(refused > 80, "{refused}");
    }

    fn a_marketer_cannot_move_another_marketers_cost_onto_their_campaign(app) {
        company(app);
        let roi = "{ campaignRoi(model: LINEAR, period: { from: \"2026-01-01\", to: \"2026-02-01\" }) { campaign { externalId } cost { amount } } }";
        let before = app.ok(roi, json!({}));
        let alice = app.token("alice", Role::Marketer);
        let v = app.gql_with(&alice, "mutation { recordCampaignCost(input: { externalId: \"cost-bob\", campaignExternalId: \"c-alice\", amount: { amount: \"0.01\", currency: \"USD\" }, incurredOn: \"2026-01-28\" }) { id } }", json!({}));
        assert_eq!(code(&v), "FORBIDDEN", "{v}");
        assert_eq!(app.ok(roi, json!({})), before);
        // Her own cost on her own campaign is still hers to write.
        let v = app.gql_with(&alice, "mutation { recordCampaignCost(input: { externalId: \"cost-alice\", campaignExternalId: \"c-alice\", amount: { amount: \"12.50\", currency: \"USD\" }, incurredOn: \"2026-01-28\" }) { externalId cost { amount } } }", json!({}));
        assert_eq!(v["data"]["recordCampaignCost"]["cost"]["amount"], "12.50", "{v}");
        // A marketer without a user row owns nothing, not even the unowned campaign.
        let ghost = app.token("ghost", Role::Marketer);
        let v = app.gql_with(&ghost, "mutation { recordCampaignCost(input: { externalId: \"cost-ghost\", campaignExternalId: \"c-nobody\", amount: { amount: \"1.00\", currency: \"USD\" }, incurredOn: \"2026-01-28\" }) { id } }", json!({}));
        assert_eq!(code(&v), "FORBIDDEN", "{v}");
    }

    fn a_split_of_fifty_thousand_over_seven_touches_ties_exactly(app) {
        campaign(app, "c1", "email", None);
        lead(app, "L", "2026-01-01T00:00:00Z");
        for i in 1..=7 {
            touch(app, &format!("t{i}"), "L", "c1", &format!("2026-01-0{}T00:00:00Z", i + 1));
        }
        opportunity(app, "big", "L", &[], None, "50000.00", "2026-01-20T00:00:00Z");
        let credits = |model: &str| -> Vec<String> {
            let v = app.ok(
                &format!("{{ opportunity(externalId: \"big\") {{ credits(model: {model}) {{ touchpoint {{ externalId }} amount {{ amount }} }} }} }}"),
                json!({}),
            );
            v["opportunity"]["credits"].as_array().unwrap().iter().map(|c| c["amount"]["amount"].as_str().unwrap().to_string()).collect()
        };
        // 5,000,000¢ / 7 = 714,285 remainder 5: the five earliest touches get the cents.
        assert_eq!(credits("LINEAR"), ["7142.86", "7142.86", "7142.86", "7142.86", "7142.86", "7142.85", "7142.85"]);
        // 0.4 / 0.04 × 5 / 0.4: ends 20,000.00 each, the middle five 2,000.00 each.
        assert_eq!(credits("POSITION_BASED"), ["20000.00", "2000.00", "2000.00", "2000.00", "2000.00", "2000.00", "20000.00"]);
        // The report at the OPPORTUNITY stage splits the same way and sums to the pipeline.
        let v = app.ok("{ attribution(model: LINEAR, stage: OPPORTUNITY, groupBy: MONTH, period: { from: \"2026-01-01\", to: \"2026-02-01\" }) { rows { key revenue { amount } } totalRevenue { amount } } }", json!({}));
        assert_eq!(v["attribution"]["rows"][0]["revenue"]["amount"], "50000.00");
        // 50,000.03 POSITION_BASED: ends 20,000.012 → .012 ties, the earlier end wins.
        app.ok("mutation { upsertOpportunity(input: { externalId: \"big\", name: \"Deal big\", primaryContactExternalId: \"L\", amount: { amount: \"50000.03\", currency: \"USD\" }, createdAt: \"2026-01-20T00:00:00Z\" }) { id } }", json!({}));
        assert_eq!(credits("POSITION_BASED"), ["20000.02", "2000.00", "2000.00", "2000.00", "2000.00", "2000.00", "20000.01"]);
    }

    fn cost_per_conversion_is_the_exact_quotient_rounded_once(app) {
        // One SAL whose eligible touches are two on c1 and one on c2: c1 is credited 2/3 of
        // a SAL under LINEAR. c1's cost 0.03 / (2/3) = 4.5¢ exactly → 4¢ (half to even; the
        // float quotient 4.500000000000001 rounded to 5¢).
        campaign(app, "c1", "email", None);
        campaign(app, "c2", "web", None);
        cost(app, "k1", "c1", "0.03", "2026-01-15");
        lead(app, "L", "2026-01-01T00:00:00Z");
        touch(app, "t1", "L", "c1", "2026-01-02T00:00:00Z");
        touch(app, "t2", "L", "c1", "2026-01-03T00:00:00Z");
        touch(app, "t3", "L", "c2", "2026-01-04T00:00:00Z");
        move_lead(app, "L", "MQL", "2026-01-05T00:00:00Z");
        move_lead(app, "L", "SAL", "2026-01-06T00:00:00Z");
        let v = app.ok("{ campaignRoi(model: LINEAR, period: { from: \"2026-01-01\", to: \"2026-02-01\" }, campaignExternalIds: [\"c1\"]) { sals costPerSal { amount } } }", json!({}));
        let row = &v["campaignRoi"][0];
        assert_eq!(row["sals"], 0.666666666667, "conversions print rounded to 12 places");
        assert_eq!(row["costPerSal"]["amount"], "0.04");
    }

    fn a_lead_bonus_on_fractional_leads_rounds_half_to_even_once(app) {
        // Three SALs each credited 1/6 to bob's campaign (six touches, one on it) make half a
        // qualified lead; at 0.05 per lead that is 2.5¢ exactly → 0.02.
        user(app, "bob", "MARKETER");
        campaign(app, "c-bob", "event", Some("bob"));
        campaign(app, "c-other", "web", None);
        for l in 1..=3 {
            let lead_id = format!("L{l}");
            lead(app, &lead_id, "2026-01-01T00:00:00Z");
            touch(app, &format!("L{l}-0"), &lead_id, "c-bob", "2026-01-02T00:00:00Z");
            for i in 1..=5 {
                touch(app, &format!("L{l}-{i}"), &lead_id, "c-other", &format!("2026-01-0{}T00:00:00Z", i + 2));
            }
            move_lead(app, &lead_id, "MQL", "2026-01-09T00:00:00Z");
            move_lead(app, &lead_id, "SAL", "2026-01-10T00:00:00Z");
        }
        app.ok("mutation { upsertCompensationPlan(input: { externalId: \"p\", name: \"P\", model: LINEAR, revenueRate: \"0.02\", qualifiedLeadBonus: { amount: \"0.05\", currency: \"USD\" } }) { id } }", json!({}));
        app.ok("mutation { assignCompensationPlan(input: { userExternalId: \"bob\", planExternalId: \"p\", effectiveFrom: \"2026-01-01\" }) { id } }", json!({}));
        let v = app.ok("{ compensationStatement(userExternalId: \"bob\", period: { from: \"2026-01-01\", to: \"2026-02-01\" }) { qualifiedLeads total { amount } lines { kind rate amount { amount } } } }", json!({}));
        let s = &v["compensationStatement"];
        assert_eq!(s["qualifiedLeads"], 0.5);
        assert_eq!(s["lines"][0]["kind"], "LEAD_BONUS");
        assert_eq!(s["lines"][0]["rate"], "0.5");
        assert_eq!(s["lines"][0]["amount"]["amount"], "0.02");
        assert_eq!(s["total"]["amount"], "0.02");
    }

    fn wasted_spend_sums_exact_fractions_before_rounding(app) {
        // c1 cost 0.02 and sourced 3 leads, c2 cost 0.05 and sourced 6; one leaked lead of
        // each: 2/3¢ + 5/6¢ = 1.5¢ exactly → 2¢ (truncating each share first gave 1¢).
        campaign(app, "c1", "email", None);
        campaign(app, "c2", "web", None);
        cost(app, "k1", "c1", "0.02", "2026-01-01");
        cost(app, "k2", "c2", "0.05", "2026-01-01");
        for (c, n) in [("c1", 3), ("c2", 6)] {
            for i in 0..n {
                let l = format!("{c}-L{i}");
                lead(app, &l, "2026-01-02T00:00:00Z");
                touch(app, &format!("{l}-t"), &l, c, "2026-01-02T00:00:00Z");
            }
            move_lead(app, &format!("{c}-L0"), "MQL", "2026-01-03T00:00:00Z");
        }
        let v = app.ok("{ leakage(period: { from: \"2026-01-01\", to: \"2026-02-01\" }, asOf: \"2026-03-01T00:00:00Z\") { leaked wastedSpend { amount } } }", json!({}));
        assert_eq!(v["leakage"]["leaked"], 2);
        assert_eq!(v["leakage"]["wastedSpend"]["amount"], "0.02");
    }

    fn a_marketers_report_adds_up_with_other_campaigns(app) {
        user(app, "mark", "MARKETER");
        campaign(app, "c-mark", "email", Some("mark"));
        campaign(app, "c-else", "web", None);
        lead(app, "L", "2026-01-01T00:00:00Z");
        touch(app, "t1", "L", "c-mark", "2026-01-02T00:00:00Z");
        touch(app, "t2", "L", "c-else", "2026-01-03T00:00:00Z");
        touch(app, "t3", "L", "c-else", "2026-01-04T00:00:00Z");
        opportunity(app, "o", "L", &[], None, "100.00", "2026-01-05T00:00:00Z");
        close(app, "o", true, "2026-01-06T00:00:00Z");
        revenue(app, "r", "o", "100.00", "2026-01-07");
        lead(app, "L2", "2026-01-01T00:00:00Z");
        opportunity(app, "o2", "L2", &[], None, "10.00", "2026-01-05T00:00:00Z");
        close(app, "o2", true, "2026-01-06T00:00:00Z");
        revenue(app, "r2", "o2", "10.00", "2026-01-07");
        let q = "{ attribution(model: LINEAR, period: { from: \"2026-01-01\", to: \"2026-02-01\" }) { rows { key conversions revenue { amount } } totalConversions totalRevenue { amount } unattributedConversions unattributedRevenue { amount } otherConversions otherRevenue { amount } } }";
        let v = app.gql_with(&app.token("mark", Role::Marketer), q, json!({}));
        let r = &v["data"]["attribution"];
        assert_eq!(r["rows"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(r["rows"][0]["revenue"]["amount"], "33.34");
        assert_eq!(r["otherRevenue"]["amount"], "66.66");
        assert_eq!(r["unattributedRevenue"]["amount"], "10.00");
        assert_eq!(r["totalRevenue"]["amount"], "110.00");
        assert_eq!(r["rows"][0]["conversions"], 0.333333333333);
        assert_eq!(r["otherConversions"], 0.666666666667);
        assert_eq!(r["unattributedConversions"], 1.0);
        assert_eq!(r["totalConversions"], 2.0);
        // An admin sees every row and nothing "other".
        let a = app.ok(q, json!({}));
        assert_eq!(a["attribution"]["otherRevenue"]["amount"], "0.00");
        assert_eq!(a["attribution"]["otherConversions"], 0.0);
    }

    fn a_campaign_that_is_not_yours_looks_like_one_that_does_not_exist(app) {
        user(app, "mark", "MARKETER");
        campaign(app, "c-else", "web", None);
        let mark = app.token("mark", Role::Marketer);
        let q = "query($e: String!) { campaign(externalId: $e) { name } }";
        let theirs = app.gql_with(&mark, q, json!({ "e": "c-else" }));
        let missing = app.gql_with(&mark, q, json!({ "e": "c-missing" }));
        assert_eq!(theirs, missing, "same answer for not yours and not there");
        let roi = "query($e: String!) { campaignRoi(model: LINEAR, period: { from: \"2026-01-01\", to: \"2026-02-01\" }, campaignExternalIds: [$e]) { cost { amount } } }";
        let theirs = app.gql_with(&mark, roi, json!({ "e": "c-else" }));
        let missing = app.gql_with(&mark, roi, json!({ "e": "c-missing" }));
        assert_eq!(code(&theirs), code(&missing));
        assert_eq!(theirs["errors"][0]["message"].as_str().map(|m| m.replace("c-else", "X")), missing["errors"][0]["message"].as_str().map(|m| m.replace("c-missing", "X")));
    }
}

/// A write whose transaction began first and commits last (on PostgreSQL, sequence order is
/// not commit order): the report must see both writes once both are committed, even though
/// it was cached in between.
#[test]
fn a_report_sees_a_write_that_committed_after_a_later_one() {
    use diesel::connection::SimpleConnection;
    let Some(app) = TestApp::postgres() else {
        return;
    };
    let app = &app;
    campaign(app, "c1", "email", None);
    cost(app, "k1", "c1", "3.00", "2026-01-01");
    for i in 0..3 {
        let l = format!("L{i}");
        lead(app, &l, "2026-01-02T00:00:00Z");
        touch(app, &format!("{l}-t"), &l, "c1", "2026-01-02T00:00:00Z");
    }
    move_lead(app, "L0", "MQL", "2026-01-03T00:00:00Z");
    let wasted = || -> String {
        let v = app.ok("{ leakage(period: { from: \"2026-01-01\", to: \"2026-02-01\" }, asOf: \"2026-03-01T00:00:00Z\") { wastedSpend { amount } } }", json!({}));
        v["leakage"]["wastedSpend"]["amount"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(wasted(), "1.00");
    // T1: a write that takes its place first (an audit id, as every write does) and is slow
    // to commit. It changes the cost to 6.00, and bumps the version once committed, as the
    // server's writes do.
    let mut t1 = app.db.get().unwrap();
    t1.batch_execute(
        "BEGIN ISOLATION LEVEL SERIALIZABLE;
         INSERT INTO audit_log (occurred_at, actor, role, operation, external_id, detail)
           VALUES (now(), 'sync', 'INTEGRATION', 'recordCampaignCost', 'k1', 'updated');
         UPDATE campaign_costs SET amount_cents = 600 WHERE external_id = 'k1';",
    )
    .unwrap();
    // T2: a later write through the API (a second cost of 3.00), sent while T1 is open.
    let url = format!("{}/graphql", app.base);
    let token = app.token("sync", Role::Integration);
    let t2 = std::thread::spawn(move || {
        let body = json!({ "query": "mutation { recordCampaignCost(input: { externalId: \"k2\", campaignExternalId: \"c1\", amount: { amount: \"3.00\", currency: \"USD\" }, incurredOn: \"2026-01-01\" }) { cost { amount } } }" });
        let mut resp = ureq::post(&url)
            .header("Content-Type", "application/json")
            .header("Authorization", &format!("Bearer {token}"))
            .send(body.to_string())
            .unwrap();
        resp.body_mut().read_to_string().unwrap()
    });
    // T2 commits first (its audit id is after T1's).
    let t2 = t2.join().unwrap();
    assert!(
        t2.contains("\"amount\":\"6.00\""),
        "T2 sees 3.00 + 3.00: {t2}"
    );
    // A report asked in between sees T2 but not T1, and is cached (keyed by the highest audit
    // id, it would now be served until some later write).
    assert_eq!(wasted(), "2.00");
    t1.batch_execute(
        "COMMIT;
         UPDATE data_version SET version = version + 1 WHERE id = 1;",
    )
    .unwrap();
    // Both writes are committed: (6.00 + 3.00) / 3 sourced leads, one leaked.
    assert_eq!(wasted(), "3.00");
}

/// `{ me }` for a token whose `sub` has no user row costs no database read once looked up,
/// and a row created through this server is seen at once.
fn absence_is_remembered(app: &TestApp) {
    let t = app.token("svc-sync", Role::Integration);
    let me =
        || app.gql_with(&t, "{ me { externalId name } }", json!({}))["data"]["me"]["name"].clone();
    assert_eq!(me(), "svc-sync");
    let before = app.db.statements_run();
    for _ in 0..20 {
        assert_eq!(me(), "svc-sync");
    }
    assert_eq!(
        app.db.statements_run() - before,
        0,
        "20 requests read nothing"
    );
    app.ok("mutation { upsertUser(input: { externalId: \"svc-sync\", name: \"Sync Job\", role: INTEGRATION }) { id } }", json!({}));
    assert_eq!(me(), "Sync Job");
}

#[test]
fn sqlite_a_caller_without_a_user_row_costs_no_read() {
    absence_is_remembered(&TestApp::sqlite_with(&[(
        "FUNNELGRAPH_USER_CACHE_MS",
        "60000",
    )]));
}

#[test]
fn postgres_a_caller_without_a_user_row_costs_no_read() {
    if let Some(app) = TestApp::postgres_with(&[("FUNNELGRAPH_USER_CACHE_MS", "60000")]) {
        absence_is_remembered(&app);
    }
}
