//! Accounts (SPEC §8, issue 16): domain matching, the three contact mappings worked by hand,
//! ACCOUNT and SEGMENT groupings, MQA at the right instant, the account funnel, the role
//! rules, and the import of accounts, on both databases through HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use funnelgraph::auth::Role;
use serde_json::{json, Value};

const UPSERT_ACCOUNT: &str =
    "mutation($i: AccountInput!) { upsertAccount(input: $i) { externalId domain } }";
const UPSERT_LEAD: &str =
    "mutation($i: LeadInput!) { upsertLead(input: $i) { externalId account { externalId } } }";

fn account(app: &TestApp, ext: &str, domain: Option<&str>, owner: Option<&str>, segment: &str) {
    app.ok(
        UPSERT_ACCOUNT,
        json!({ "i": { "externalId": ext, "name": format!("Account {ext}"), "domain": domain, "ownerExternalId": owner,
                       "attributes": [ { "key": "segment", "value": segment }, { "key": "industry", "value": "software" } ] } }),
    );
}

fn lead_with(app: &TestApp, ext: &str, email: &str, created: &str, account: Option<&str>) -> Value {
    app.ok(
        UPSERT_LEAD,
        json!({ "i": { "externalId": ext, "email": email, "fullName": format!("Person {ext}"), "createdAt": created, "accountExternalId": account } }),
    )["upsertLead"]
        .clone()
}

fn account_of(app: &TestApp, lead: &str) -> Value {
    app.ok(
        "query($e: String!) { lead(externalId: $e) { account { externalId } } }",
        json!({ "e": lead }),
    )["lead"]["account"]["externalId"]
        .clone()
}

/// The ACME company of the hand-worked example.
///
/// | lead | email          | account          | touches                          |
/// |------|----------------|------------------|----------------------------------|
/// | P    | p@acme.com     | ACME (domain)    | T1 C1 02-10                      |
/// | Q    | q@ACME.com     | ACME (domain)    | T0 C2 01-05, T2 C2 02-15         |
/// | R    | r@eu.acme.com  | none (subdomain) | T3 C3 02-12                      |
/// | G    | g@gmail.com    | none (free mail) | T4 C4 02-11                      |
/// | Z    | z@acme.com     | ACME, created 04-01 (after D2 closed) | T5 C4 04-02  |
///
/// D1: primary P, created 01-02, LOST 01-20 (so F = 01-20 for D2).
/// D2: primary P, contacts [G], 900.00, created 03-01, WON 03-10, 900.00 booked 03-10.
/// D3: primary G (no account), 100.00, created 03-05, WON 03-06, 100.00 booked 03-06.
fn acme(app: &TestApp) {
    for c in ["C1", "C2", "C3", "C4"] {
        campaign(app, c, "email", None);
    }
    user(app, "sam", "SALES_REP");
    user(app, "sue", "SALES_REP");
    account(app, "ACME", Some("acme.com"), Some("sam"), "ENTERPRISE");
    lead_with(app, "P", "p@acme.com", "2026-01-01T00:00:00Z", None);
    lead_with(app, "Q", "q@ACME.com", "2026-01-01T00:00:00Z", None);
    lead_with(app, "R", "r@eu.acme.com", "2026-01-01T00:00:00Z", None);
    lead_with(app, "G", "g@gmail.com", "2026-01-01T00:00:00Z", None);
    touch(app, "T0", "Q", "C2", "2026-01-05T00:00:00Z");
    touch(app, "T1", "P", "C1", "2026-02-10T00:00:00Z");
    touch(app, "T4", "G", "C4", "2026-02-11T00:00:00Z");
    touch(app, "T3", "R", "C3", "2026-02-12T00:00:00Z");
    touch(app, "T2", "Q", "C2", "2026-02-15T00:00:00Z");
    opportunity(app, "D1", "P", &[], None, "50.00", "2026-01-02T00:00:00Z");
    assert_eq!(
        close(app, "D1", false, "2026-01-20T00:00:00Z")["data"]["closeOpportunity"]["status"],
        "LOST"
    );
    opportunity(
        app,
        "D2",
        "P",
        &["G"],
        None,
        "900.00",
        "2026-03-01T00:00:00Z",
    );
    close(app, "D2", true, "2026-03-10T00:00:00Z");
    revenue(app, "R2", "D2", "900.00", "2026-03-10");
    opportunity(app, "D3", "G", &[], None, "100.00", "2026-03-05T00:00:00Z");
    close(app, "D3", true, "2026-03-06T00:00:00Z");
    revenue(app, "R3", "D3", "100.00", "2026-03-06");
    // Z joins the account after D2 closed.
    lead_with(app, "Z", "z@acme.com", "2026-04-01T00:00:00Z", None);
    touch(app, "T5", "Z", "C4", "2026-04-02T00:00:00Z");
}

const REPORT: &str = "query($m: AttributionModel!, $s: LeadStage, $c: ContactMapping, $g: AttributionGrouping, $seg: String, $from: Date!, $to: Date!) {
    attribution(model: $m, period: { from: $from, to: $to }, stage: $s, contacts: $c, groupBy: $g, segment: $seg) {
        rows { key conversions revenue { amount } }
        totalConversions totalRevenue { amount } unattributedConversions unattributedRevenue { amount } otherConversions otherRevenue { amount } } }";

fn report(app: &TestApp, model: &str, stage: &str, contacts: &str, group: &str) -> Value {
    app.ok(
        REPORT,
        json!({ "m": model, "s": stage, "c": contacts, "g": group, "seg": "segment", "from": "2026-03-01", "to": "2026-04-01" }),
    )["attribution"]
        .clone()
}

/// (key, revenue) of each row.
fn revenue_rows(r: &Value) -> Vec<(String, String)> {
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["key"].as_str().unwrap().to_string(),
                row["revenue"]["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

both_databases! {
    fn leads_match_accounts_by_the_whole_host_and_never_by_free_mail(app) {
        account(app, "ACME", Some("Acme.COM"), None, "SMB");
        assert_eq!(app.ok("{ account(externalId: \"ACME\") { domain } }", json!({}))["account"]["domain"], "acme.com");
        lead_with(app, "P", "p@acme.com", "2026-01-01T00:00:00Z", None);
        lead_with(app, "S", "s@eu.acme.com", "2026-01-01T00:00:00Z", None);
        lead_with(app, "G", "g@gmail.com", "2026-01-01T00:00:00Z", None);
        assert_eq!(account_of(app, "P"), "ACME");
        assert_eq!(account_of(app, "S"), Value::Null, "eu.acme.com is another host");
        assert_eq!(account_of(app, "G"), Value::Null);
        // A free-mail domain is no company's: refused, and nothing changes.
        let v = app.admin(UPSERT_ACCOUNT, json!({ "i": { "externalId": "FREE", "name": "Free", "domain": "gmail.com" } }));
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains("free-mail"));
        assert_eq!(app.ok("{ account(externalId: \"FREE\") { id } }", json!({}))["account"], Value::Null);
        assert_eq!(account_of(app, "G"), Value::Null);
        // A domain another account has is a conflict.
        let v = app.admin(UPSERT_ACCOUNT, json!({ "i": { "externalId": "ACME2", "name": "Copy", "domain": "acme.com" } }));
        assert_eq!(code(&v), "CONFLICT", "{v}");
        // An account upserted later matches the leads already there; a lead naming an account
        // keeps it whatever the domains say.
        account(app, "EU", Some("eu.acme.com"), None, "SMB");
        assert_eq!(account_of(app, "S"), "EU");
        lead_with(app, "X", "x@elsewhere.org", "2026-01-01T00:00:00Z", Some("ACME"));
        assert_eq!(account_of(app, "X"), "ACME");
        // Its domain changes: the leads it had by the old domain leave it, not the named one.
        account(app, "ACME", Some("acme.io"), None, "SMB");
        assert_eq!(account_of(app, "P"), Value::Null);
        assert_eq!(account_of(app, "X"), "ACME");
        account(app, "ACME", Some("acme.com"), None, "SMB");
        assert_eq!(account_of(app, "P"), "ACME");
        let v = app.admin(UPSERT_LEAD, json!({ "i": { "externalId": "Y", "createdAt": "2026-01-01T00:00:00Z", "accountExternalId": "NOPE" } }));
        assert_eq!(code(&v), "NOT_FOUND", "{v}");
        let acme = app.ok("{ account(externalId: \"ACME\") { id leads { externalId } attributes { key value } } }", json!({}));
        let node = app.ok("query($id: ID!) { node(id: $id) { ... on Account { externalId } } }", json!({ "id": acme["account"]["id"] }));
        assert_eq!(node["node"]["externalId"], "ACME");
        assert_eq!(acme["account"]["leads"], json!([{ "externalId": "P" }, { "externalId": "X" }]));
        assert_eq!(acme["account"]["attributes"][1], json!({ "key": "segment", "value": "SMB" }));
    }

    fn each_mapping_credits_the_hand_worked_touches(app) {
        acme(app);
        // CONTACT_ROLES (the default): D2's contacts P and G: T1, T4 → 450.00 each; D3: G's T4.
        let r = report(app, "LINEAR", "WON", "CONTACT_ROLES", "CAMPAIGN");
        assert_eq!(revenue_rows(&r), pairs(&[("C1", "450.00"), ("C4", "550.00")]), "{r}");
        let r = report(app, "LINEAR", "WON", "PRIMARY_CONTACT", "CAMPAIGN");
        assert_eq!(revenue_rows(&r), pairs(&[("C1", "900.00"), ("C4", "100.00")]), "{r}");
        // ACCOUNT: D2 reads P, Q and Z (ACME) and G (a contact); F = 01-20 (D1's loss) drops
        // T0 (01-05), T5 (04-02) is after the win: T1, T4, T2 → 300.00 each. D3 has no account:
        // its contacts, as CONTACT_ROLES.
        let r = report(app, "LINEAR", "WON", "ACCOUNT", "CAMPAIGN");
        assert_eq!(revenue_rows(&r), pairs(&[("C1", "300.00"), ("C2", "300.00"), ("C4", "400.00")]), "{r}");
        assert_eq!(r["totalConversions"], json!(2.0));
        // Conversions are split the same way: D2 ⅓ each, D3 all to C4.
        let conversions: Vec<f64> = r["rows"].as_array().unwrap().iter().map(|x| x["conversions"].as_f64().unwrap()).collect();
        assert!((conversions[0] - 1.0 / 3.0).abs() < 1e-9 && (conversions[2] - 4.0 / 3.0).abs() < 1e-9, "{r}");
        // The opportunity's own credits say the same.
        let credits = |contacts: &str| {
            let v = app.ok(&format!("{{ opportunity(externalId: \"D2\") {{ account {{ externalId }} credits(model: LINEAR, contacts: {contacts}) {{ touchpoint {{ externalId }} amount {{ amount }} }} }} }}"), json!({}));
            assert_eq!(v["opportunity"]["account"]["externalId"], "ACME");
            v["opportunity"]["credits"].as_array().unwrap().iter()
                .map(|c| (c["touchpoint"]["externalId"].as_str().unwrap().to_string(), c["amount"]["amount"].as_str().unwrap().to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(credits("CONTACT_ROLES"), pairs(&[("T1", "450.00"), ("T4", "450.00")]));
        assert_eq!(credits("PRIMARY_CONTACT"), pairs(&[("T1", "900.00")]));
        assert_eq!(credits("ACCOUNT"), pairs(&[("T1", "300.00"), ("T4", "300.00"), ("T2", "300.00")]));
        // Grouped by account: the credited touch's lead's account, "(none)" without one.
        let r = report(app, "LINEAR", "WON", "CONTACT_ROLES", "ACCOUNT");
        assert_eq!(revenue_rows(&r), pairs(&[("(none)", "550.00"), ("ACME", "450.00")]), "{r}");
        let r = report(app, "LINEAR", "WON", "ACCOUNT", "ACCOUNT");
        assert_eq!(revenue_rows(&r), pairs(&[("(none)", "400.00"), ("ACME", "600.00")]), "{r}");
        let r = report(app, "LINEAR", "WON", "ACCOUNT", "SEGMENT");
        assert_eq!(revenue_rows(&r), pairs(&[("(none)", "400.00"), ("ENTERPRISE", "600.00")]), "{r}");
        // A change to the account's attributes shows in the next report.
        account(app, "ACME", Some("acme.com"), Some("sam"), "MID_MARKET");
        let r = report(app, "LINEAR", "WON", "ACCOUNT", "SEGMENT");
        assert_eq!(revenue_rows(&r), pairs(&[("(none)", "400.00"), ("MID_MARKET", "600.00")]), "{r}");
        let v = app.admin(REPORT, json!({ "m": "LINEAR", "g": "SEGMENT", "from": "2026-03-01", "to": "2026-04-01" }));
        assert_eq!(code(&v), "BAD_USER_INPUT", "SEGMENT needs the attribute: {v}");
        // At OPPORTUNITY, D2's pipeline at its creation (03-01): the same three touches.
        let r = report(app, "LINEAR", "OPPORTUNITY", "ACCOUNT", "CAMPAIGN");
        assert_eq!(revenue_rows(&r), pairs(&[("C1", "300.00"), ("C2", "300.00"), ("C4", "400.00")]), "{r}");
        // campaignRoi takes the mapping too.
        let roi = app.ok("{ campaignRoi(model: LINEAR, period: { from: \"2026-03-01\", to: \"2026-04-01\" }, contacts: ACCOUNT) { campaign { externalId } attributedRevenue { amount } } }", json!({}));
        let roi: Vec<(String, String)> = roi["campaignRoi"].as_array().unwrap().iter()
            .map(|r| (r["campaign"]["externalId"].as_str().unwrap().to_string(), r["attributedRevenue"]["amount"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(roi, pairs(&[("C1", "300.00"), ("C2", "300.00"), ("C3", "0.00"), ("C4", "400.00")]));
        // And the CSV export.
        let (status, body) = app.get_with_auth(
            "/export/attribution.csv?model=LINEAR&from=2026-03-01&to=2026-04-01&contacts=ACCOUNT&groupBy=ACCOUNT",
            &app.token("a", Role::Admin),
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("ACME") && body.contains("600.00"), "{body}");
    }

    fn every_model_and_mapping_sums_exactly_to_the_total(app) {
        acme(app);
        // A refund with an odd cent, and a three-way split that leaves a remainder.
        revenue(app, "R2b", "D2", "-0.01", "2026-03-11");
        revenue(app, "R2c", "D2", "100.00", "2026-03-12");
        let models = ["FIRST_TOUCH", "LAST_TOUCH", "LINEAR", "TIME_DECAY", "POSITION_BASED", "W_SHAPED", "FULL_PATH", "MARKOV"];
        for model in models {
            for contacts in ["CONTACT_ROLES", "PRIMARY_CONTACT", "ACCOUNT"] {
                for group in ["CAMPAIGN", "CHANNEL", "MONTH", "ACCOUNT", "SEGMENT"] {
                    for stage in ["OPPORTUNITY", "WON"] {
                        let r = report(app, model, stage, contacts, group);
                        let rows: i64 = r["rows"].as_array().unwrap().iter().map(|x| cents(x["revenue"]["amount"].as_str().unwrap())).sum();
                        let total = cents(r["totalRevenue"]["amount"].as_str().unwrap());
                        let rest = cents(r["unattributedRevenue"]["amount"].as_str().unwrap()) + cents(r["otherRevenue"]["amount"].as_str().unwrap());
                        assert_eq!(rows + rest, total, "{model} {contacts} {group} {stage}: {r}");
                        let conv: f64 = r["rows"].as_array().unwrap().iter().map(|x| x["conversions"].as_f64().unwrap()).sum::<f64>()
                            + r["unattributedConversions"].as_f64().unwrap() + r["otherConversions"].as_f64().unwrap();
                        assert!((conv - r["totalConversions"].as_f64().unwrap()).abs() < 1e-9, "{model} {contacts} {group} {stage}: {r}");
                        if stage == "WON" {
                            assert_eq!(total, 90_000 + 10_000 - 1 + 10_000, "{model} {contacts}");
                        }
                    }
                }
            }
        }
        // A marketer sees own campaigns' rows; the rest is "other", and the sums still hold.
        user(app, "mk", "MARKETER");
        campaign(app, "C2", "email", Some("mk"));
        let v = app.gql_with(&app.token("mk", Role::Marketer), REPORT,
            json!({ "m": "LINEAR", "s": "WON", "c": "ACCOUNT", "g": "CAMPAIGN", "from": "2026-03-01", "to": "2026-04-01" }));
        let r = &v["data"]["attribution"];
        assert_eq!(revenue_rows(r).len(), 1, "{v}");
        assert_eq!(revenue_rows(r)[0].0, "C2");
        let rows: i64 = revenue_rows(r).iter().map(|x| cents(&x.1)).sum();
        assert_eq!(rows + cents(r["otherRevenue"]["amount"].as_str().unwrap()) + cents(r["unattributedRevenue"]["amount"].as_str().unwrap()),
            cents(r["totalRevenue"]["amount"].as_str().unwrap()));
    }

    fn a_plan_pays_under_its_mapping_and_a_closed_statement_keeps_it(app) {
        acme(app);
        user(app, "mk", "MARKETER");
        campaign(app, "C2", "email", Some("mk"));
        const PLAN: &str = "mutation($c: ContactMapping!) { upsertCompensationPlan(input: { externalId: \"p\", name: \"Ten percent\", model: LINEAR, revenueRate: \"0.10\", qualifiedLeadBonus: { amount: \"0.00\", currency: \"USD\" }, contacts: $c }) { contacts } }";
        assert_eq!(app.ok(PLAN, json!({ "c": "ACCOUNT" }))["upsertCompensationPlan"]["contacts"], "ACCOUNT");
        app.ok("mutation { assignCompensationPlan(input: { userExternalId: \"mk\", planExternalId: \"p\", effectiveFrom: \"2026-01-01\" }) { id } }", json!({}));
        const STATEMENT: &str = "{ compensationStatement(userExternalId: \"mk\", period: { from: \"2026-03-01\", to: \"2026-04-01\" }) { status plan { contacts } total { amount } } }";
        // Under ACCOUNT, Q's T2 on C2 earns a third of D2's 900.00: 10% of 300.00.
        let s = app.ok(STATEMENT, json!({}))["compensationStatement"].clone();
        assert_eq!(s, json!({ "status": "OPEN", "plan": { "contacts": "ACCOUNT" }, "total": { "amount": "30.00" } }));
        // Under the deal's contacts, C2 earns nothing.
        app.ok(PLAN, json!({ "c": "CONTACT_ROLES" }));
        assert_eq!(app.ok(STATEMENT, json!({}))["compensationStatement"]["total"]["amount"], "0.00");
        // Closed under ACCOUNT, the statement keeps its mapping whatever the plan says later.
        app.ok(PLAN, json!({ "c": "ACCOUNT" }));
        app.ok("mutation { closePeriod(period: { from: \"2026-03-01\", to: \"2026-04-01\" }) { statements } }", json!({}));
        app.ok(PLAN, json!({ "c": "PRIMARY_CONTACT" }));
        let s = app.ok(STATEMENT, json!({}))["compensationStatement"].clone();
        assert_eq!(s, json!({ "status": "CLOSED", "plan": { "contacts": "ACCOUNT" }, "total": { "amount": "30.00" } }));
    }

    fn an_account_becomes_mqa_when_the_second_contact_qualifies_and_not_before(app) {
        campaign(app, "C1", "email", None);
        // No automatic MQLs here: the moves are explicit.
        app.ok("mutation { setMqlThreshold(points: 1000) }", json!({}));
        app.ok("mutation($i: ScoringRuleInput!) { upsertScoringRule(input: $i) { id } }",
            json!({ "i": { "externalId": "S1", "name": "Forms", "kind": "BEHAVIOR", "touchKind": "form_fill", "points": 60 } }));
        let settings = app.ok("{ mqaSettings { minContacts threshold } }", json!({}));
        assert_eq!(settings["mqaSettings"], json!({ "minContacts": 2, "threshold": 150 }));
        account(app, "BETA", Some("beta.io"), None, "MID_MARKET");
        let mqa = || app.ok("{ account(externalId: \"BETA\") { mqaAt engagement(days: 3650) { contacts score engagedContacts } } }", json!({}))["account"].clone();
        lead_with(app, "B1", "b1@beta.io", "2026-05-01T00:00:00Z", None);
        touch(app, "TB1", "B1", "C1", "2026-05-02T00:00:00Z");
        move_lead(app, "B1", "MQL", "2026-05-03T00:00:00Z");
        assert_eq!(mqa()["mqaAt"], Value::Null, "one contact at MQL");
        lead_with(app, "B2", "b2@beta.io", "2026-05-04T00:00:00Z", None);
        touch(app, "TB2", "B2", "C1", "2026-05-05T00:00:00Z");
        move_lead(app, "B2", "MQL", "2026-05-06T00:00:00Z");
        // Two contacts at MQL, but their scores sum to 120 < 150.
        assert_eq!(mqa()["mqaAt"], Value::Null, "{}", mqa());
        touch(app, "TB3", "B2", "C1", "2026-05-08T00:00:00Z");
        let now = mqa();
        assert_eq!(now["mqaAt"], "2026-05-08T00:00:00Z", "{now}");
        assert_eq!(now["engagement"], json!({ "contacts": 2, "score": 180, "engagedContacts": 2 }));
        // A lower threshold moves the instant to the second MQL (05-06: 60 + 60 ≥ 100).
        let denied = app.as_role(Role::Analyst, "mutation { setMqaSettings(minContacts: 2, threshold: 100) { threshold } }", json!({}));
        assert_eq!(code(&denied), "FORBIDDEN");
        app.as_role(Role::MarketingManager, "mutation { setMqaSettings(minContacts: 2, threshold: 100) { threshold } }", json!({}));
        assert_eq!(mqa()["mqaAt"], "2026-05-06T00:00:00Z");
        // One contact suffices at minContacts 1 and 60 points: B1 at its MQL (05-03).
        app.ok("mutation { setMqaSettings(minContacts: 1, threshold: 60) { threshold } }", json!({}));
        assert_eq!(mqa()["mqaAt"], "2026-05-03T00:00:00Z");
        let list = app.ok("{ yes: accounts(mqa: true) { totalCount nodes { externalId } } no: accounts(mqa: false) { totalCount } seg: accounts(segment: \"MID_MARKET\") { totalCount } }", json!({}));
        assert_eq!(list["yes"]["nodes"], json!([{ "externalId": "BETA" }]));
        assert_eq!(list["no"]["totalCount"], 0);
        assert_eq!(list["seg"]["totalCount"], 1);
    }

    fn the_account_funnel_counts_first_milestones_in_the_period(app) {
        acme(app);
        app.ok("mutation { setMqlThreshold(points: 1000) }", json!({}));
        app.ok("mutation($i: ScoringRuleInput!) { upsertScoringRule(input: $i) { id } }",
            json!({ "i": { "externalId": "S1", "name": "Forms", "kind": "BEHAVIOR", "touchKind": "form_fill", "points": 100 } }));
        account(app, "BETA", Some("beta.io"), None, "MID_MARKET");
        lead_with(app, "B1", "b1@beta.io", "2026-05-01T00:00:00Z", None);
        lead_with(app, "B2", "b2@beta.io", "2026-05-01T00:00:00Z", None);
        touch(app, "TB1", "B1", "C1", "2026-05-02T00:00:00Z");
        touch(app, "TB2", "B2", "C1", "2026-05-02T00:00:00Z");
        move_lead(app, "B1", "MQL", "2026-05-03T00:00:00Z");
        move_lead(app, "B2", "MQL", "2026-05-04T00:00:00Z");
        const FUNNEL: &str = "query($from: Date!, $to: Date!) { accountFunnel(period: { from: $from, to: $to }) {
            mqa opportunity won mqaToOpportunity { count medianDays p90Days } opportunityToWon { count medianDays } } }";
        let year = app.ok(FUNNEL, json!({ "from": "2026-01-01", "to": "2027-01-01" }))["accountFunnel"].clone();
        // ACME: its first deal (01-02) made it MQA then; won first on 03-10 (67 days later).
        // BETA: MQA on 05-04 (two MQLs, 200 points).
        assert_eq!(year["mqa"], 2, "{year}");
        assert_eq!(year["opportunity"], 1);
        assert_eq!(year["won"], 1);
        assert_eq!(year["mqaToOpportunity"], json!({ "count": 1, "medianDays": 0.0, "p90Days": 0.0 }));
        assert_eq!(year["opportunityToWon"], json!({ "count": 1, "medianDays": 67.0 }));
        let may = app.ok(FUNNEL, json!({ "from": "2026-05-01", "to": "2026-06-01" }))["accountFunnel"].clone();
        assert_eq!((may["mqa"].clone(), may["opportunity"].clone(), may["won"].clone()), (json!(1), json!(0), json!(0)), "{may}");
        let beta = app.ok("{ account(externalId: \"BETA\") { mqaAt firstOpportunityAt } acme: account(externalId: \"ACME\") { mqaAt firstWonAt timeline { externalId } opportunities { externalId } } }", json!({}));
        assert_eq!(beta["account"]["mqaAt"], "2026-05-04T00:00:00Z");
        assert_eq!(beta["acme"]["mqaAt"], "2026-01-02T00:00:00Z");
        assert_eq!(beta["acme"]["firstWonAt"], "2026-03-10T00:00:00Z");
        let timeline: Vec<&str> = beta["acme"]["timeline"].as_array().unwrap().iter().map(|t| t["externalId"].as_str().unwrap()).collect();
        assert_eq!(timeline, ["T0", "T1", "T2", "T5"], "every touch of P, Q and Z in time order");
        assert_eq!(beta["acme"]["opportunities"], json!([{ "externalId": "D1" }, { "externalId": "D2" }]));
    }

    fn accounts_follow_the_leads_role_rules(app) {
        acme(app);
        // Sam owns ACME: he sees the personal data of its leads; Sue does not.
        let q = "{ lead(externalId: \"Q\") { email account { externalId owner { externalId } } } }";
        let sam = app.gql_with(&app.token("sam", Role::SalesRep), q, json!({}));
        assert_eq!(sam["data"]["lead"]["email"], "q@ACME.com", "{sam}");
        let sue = app.gql_with(&app.token("sue", Role::SalesRep), "{ lead(externalId: \"Q\") { email } }", json!({}));
        assert_eq!(code(&sue), "FORBIDDEN", "{sue}");
        // Everyone may list accounts (as leads); a marketer may not read their deals.
        let mk = app.as_role(Role::Marketer, "{ accounts { nodes { externalId } } }", json!({}));
        assert_eq!(mk["data"]["accounts"]["nodes"], json!([{ "externalId": "ACME" }]));
        let mk = app.as_role(Role::Marketer, "{ account(externalId: \"ACME\") { opportunities { externalId } } }", json!({}));
        assert_eq!(code(&mk), "FORBIDDEN", "{mk}");
        // Deal milestones follow the deals' rule: not for a marketer, a rep on own accounts.
        let won = "{ account(externalId: \"ACME\") { firstWonAt } }";
        assert_eq!(code(&app.as_role(Role::Marketer, won, json!({}))), "FORBIDDEN");
        let sam = app.gql_with(&app.token("sam", Role::SalesRep), won, json!({}));
        assert_eq!(sam["data"]["account"]["firstWonAt"], "2026-03-10T00:00:00Z", "{sam}");
        assert_eq!(code(&app.gql_with(&app.token("sue", Role::SalesRep), won, json!({}))), "FORBIDDEN");
        // The company's account funnel: not for a marketer who sees only own campaigns.
        let funnel = "{ accountFunnel(period: { from: \"2026-01-01\", to: \"2027-01-01\" }) { won } }";
        assert_eq!(code(&app.as_role(Role::Marketer, funnel, json!({}))), "FORBIDDEN");
        assert_eq!(app.as_role(Role::Analyst, funnel, json!({}))["data"]["accountFunnel"]["won"], 1);
        // Only the CRM sync and ADMIN upsert accounts; a refused upsert changes nothing.
        for role in [Role::Marketer, Role::SalesRep, Role::Analyst, Role::Finance, Role::MarketingManager] {
            let v = app.as_role(role, UPSERT_ACCOUNT, json!({ "i": { "externalId": "ACME", "name": "Taken", "domain": "evil.com" } }));
            assert_eq!(code(&v), "FORBIDDEN", "{role:?}: {v}");
        }
        assert_eq!(app.ok("{ account(externalId: \"ACME\") { name domain } }", json!({}))["account"], json!({ "name": "Account ACME", "domain": "acme.com" }));
        let v = app.as_role(Role::Integration, UPSERT_ACCOUNT, json!({ "i": { "externalId": "NEW", "name": "New", "domain": "new.com" } }));
        assert_eq!(v["data"]["upsertAccount"]["domain"], "new.com", "{v}");
    }

    fn the_import_takes_accounts_in_ndjson_and_csv(app) {
        let ndjson = [
            json!({ "type": "account", "externalId": "ACME", "name": "Acme", "domain": "acme.com", "attributes": [ { "key": "segment", "value": "SMB" } ] }),
            json!({ "type": "lead", "externalId": "L1", "email": "l1@acme.com", "createdAt": "2026-02-01T00:00:00Z" }),
            json!({ "type": "lead", "externalId": "L2", "email": "l2@other.com", "createdAt": "2026-02-01T00:00:00Z", "accountExternalId": "ACME" }),
            json!({ "type": "account", "externalId": "BAD", "name": "Bad", "domain": "gmail.com" }),
            json!({ "type": "lead", "externalId": "L3", "email": "l3@x.com", "createdAt": "2026-02-01T00:00:00Z", "accountExternalId": "MISSING" }),
            json!({ "type": "opportunity", "externalId": "O1", "name": "Deal", "primaryContactExternalId": "L1", "accountExternalId": "ACME", "amount": { "amount": "10.00", "currency": "USD" }, "createdAt": "2026-02-02T00:00:00Z" }),
        ]
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let post = |query: &str, content_type: &str, body: &str| -> Value {
            let mut resp = agent
                .post(format!("{}/import{query}", app.base))
                .header("Content-Type", content_type)
                .header("Authorization", &format!("Bearer {}", app.token("sync", Role::Integration)))
                .send(body)
                .unwrap();
            serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
        };
        let v = post("", "application/x-ndjson", &ndjson);
        let errors: Vec<(u64, String)> = v["errors"].as_array().unwrap().iter()
            .map(|e| (e["line"].as_u64().unwrap(), e["code"].as_str().unwrap().to_string())).collect();
        assert_eq!(errors, vec![(4, "BAD_USER_INPUT".to_string()), (5, "NOT_FOUND".to_string())], "{v}");
        assert_eq!(account_of(app, "L1"), "ACME");
        assert_eq!(account_of(app, "L2"), "ACME");
        let o = app.ok("{ opportunity(externalId: \"O1\") { account { externalId } } }", json!({}));
        assert_eq!(o["opportunity"]["account"]["externalId"], "ACME");
        let csv = "externalId,name,domain,attributes.segment\nBETA,Beta,beta.io,ENTERPRISE\n";
        let v = post("?type=account", "text/csv", csv);
        assert_eq!(v["errors"], json!([]), "{v}");
        let beta = app.ok("{ account(externalId: \"BETA\") { domain attributes { key value } } }", json!({}));
        assert_eq!(beta["account"], json!({ "domain": "beta.io", "attributes": [ { "key": "segment", "value": "ENTERPRISE" } ] }));
    }
}
