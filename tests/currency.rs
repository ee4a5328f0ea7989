//! Currencies (SPEC §9, issue 17): amounts in any ISO 4217 currency valued at dated exchange
//! rates, exact to the reporting currency's minor unit, worked by hand; rate changes re-value
//! what they cover and are refused inside closed periods; rates through the import; on both
//! databases through HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use funnelgraph::auth::Role;
use serde_json::{json, Value};

const RATE: &str = "mutation($c: String!, $r: Decimal!, $d: Date!) { upsertExchangeRate(currency: $c, rate: $r, effectiveFrom: $d) { exchangeRate { currency rate effectiveFrom effectiveTo } revalued } }";
const DEAL: &str = "mutation($i: OpportunityInput!) { upsertOpportunity(input: $i) { amount { amount currency } originalAmount { amount currency } } }";
const REVENUE: &str = "mutation($i: RevenueInput!) { recordRevenue(input: $i) { amount { amount currency } originalAmount { amount currency } } }";
const COST: &str = "mutation($i: CampaignCostInput!) { recordCampaignCost(input: $i) { id } }";

fn rate_as(app: &TestApp, role: Role, currency: &str, rate: &str, from: &str) -> Value {
    app.gql_with(
        &app.token("fx", role),
        RATE,
        json!({ "c": currency, "r": rate, "d": from }),
    )
}

/// Upserts a rate as FINANCE; returns (the rate's effectiveTo, amounts re-valued).
fn rate(app: &TestApp, currency: &str, rate: &str, from: &str) -> (Value, i64) {
    let v = rate_as(app, Role::Finance, currency, rate, from);
    assert!(v.get("errors").is_none(), "{v}");
    let change = &v["data"]["upsertExchangeRate"];
    assert_eq!(change["exchangeRate"]["currency"], currency);
    assert_eq!(change["exchangeRate"]["effectiveFrom"], from);
    (
        change["exchangeRate"]["effectiveTo"].clone(),
        change["revalued"].as_i64().unwrap(),
    )
}

fn deal(app: &TestApp, ext: &str, lead: &str, amount: &str, currency: &str, at: &str) -> Value {
    app.admin(
        DEAL,
        json!({ "i": { "externalId": ext, "name": format!("Deal {ext}"), "primaryContactExternalId": lead,
                       "amount": { "amount": amount, "currency": currency }, "createdAt": at } }),
    )
}

fn booked(app: &TestApp, ext: &str, opp: &str, amount: &str, currency: &str, on: &str) -> Value {
    app.admin(
        REVENUE,
        json!({ "i": { "externalId": ext, "opportunityExternalId": opp, "amount": { "amount": amount, "currency": currency }, "bookedOn": on } }),
    )
}

fn spent(
    app: &TestApp,
    ext: &str,
    campaign: &str,
    amount: &str,
    currency: &str,
    on: &str,
) -> Value {
    app.admin(
        COST,
        json!({ "i": { "externalId": ext, "campaignExternalId": campaign, "amount": { "amount": amount, "currency": currency }, "incurredOn": on } }),
    )
}

/// `POST /import` as `token`; the summary.
fn import(app: &TestApp, token: &str, query: &str, content_type: &str, body: &str) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(format!("{}/import{query}", app.base))
        .header("Content-Type", content_type)
        .header("Authorization", &format!("Bearer {token}"))
        .send(body)
        .unwrap();
    serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
}

fn money(amount: &str, currency: &str) -> Value {
    json!({ "amount": amount, "currency": currency })
}

fn amount_of(app: &TestApp, opp: &str) -> Value {
    app.ok(
        "query($e: String!) { opportunity(externalId: $e) { amount { amount } originalAmount { amount currency } revenue { externalId amount { amount } originalAmount { amount currency } } } }",
        json!({ "e": opp }),
    )["opportunity"]
        .clone()
}

const REPORT: &str = "query($m: AttributionModel!, $s: LeadStage, $g: AttributionGrouping, $from: Date!, $to: Date!) { attribution(model: $m, stage: $s, groupBy: $g, period: { from: $from, to: $to }) { totalRevenue { amount currency } unattributedRevenue { amount } otherRevenue { amount } rows { key revenue { amount } } } }";

fn total_revenue(app: &TestApp, stage: &str, from: &str, to: &str) -> String {
    app.ok(
        REPORT,
        json!({ "m": "LINEAR", "s": stage, "g": "CAMPAIGN", "from": from, "to": to }),
    )["attribution"]["totalRevenue"]["amount"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Two leads on C1 and C2, each with a touch in January.
fn two_leads(app: &TestApp) {
    campaign(app, "C1", "email", None);
    campaign(app, "C2", "webinar", None);
    lead(app, "L1", "2026-01-01T00:00:00Z");
    lead(app, "L2", "2026-01-01T00:00:00Z");
    touch(app, "T1", "L1", "C1", "2026-01-10T00:00:00Z");
    touch(app, "T2", "L1", "C2", "2026-01-11T00:00:00Z");
    touch(app, "T3", "L2", "C1", "2026-01-12T00:00:00Z");
}

both_databases! {
    fn yen_and_euro_amounts_convert_exactly_at_their_dates_across_rate_changes(app) {
        two_leads(app);
        // JPY: 0.0067 USD from January, 0.00675 from March; EUR 1.085 from January.
        assert_eq!(rate(app, "JPY", "0.0067", "2026-01-01"), (Value::Null, 0));
        assert_eq!(rate(app, "JPY", "0.00675", "2026-03-01"), (Value::Null, 0));
        assert_eq!(rate(app, "EUR", "1.085", "2026-01-01"), (Value::Null, 0));
        // A deal is valued on the UTC day of its createdAt: 23:30 on Feb 28 is still February.
        let v = deal(app, "D1", "L1", "150000", "JPY", "2026-02-28T23:30:00Z");
        assert_eq!(v["data"]["upsertOpportunity"], json!({ "amount": money("1005.00", "USD"), "originalAmount": money("150000", "JPY") }), "{v}");
        let v = deal(app, "D2", "L2", "150000", "JPY", "2026-03-01T00:00:00Z");
        assert_eq!(v["data"]["upsertOpportunity"]["amount"], money("1012.50", "USD"), "{v}");
        // Revenue on its booking day: 150,001 yen × 0.00675 = 1012.50675 → 1012.51.
        assert!(close(app, "D1", true, "2026-03-02T10:00:00Z").get("errors").is_none());
        let v = booked(app, "R1", "D1", "150001", "JPY", "2026-03-02");
        assert_eq!(v["data"]["recordRevenue"], json!({ "amount": money("1012.51", "USD"), "originalAmount": money("150001", "JPY") }), "{v}");
        // A refund in another currency than its deal: −100.01 EUR × 1.085 = −108.51085 → −108.51.
        let v = booked(app, "R2", "D1", "-100.01", "EUR", "2026-03-05");
        assert_eq!(v["data"]["recordRevenue"], json!({ "amount": money("-108.51", "USD"), "originalAmount": money("-100.01", "EUR") }), "{v}");
        // A reporting-currency amount keeps itself as its original.
        let v = booked(app, "R3", "D1", "10.10", "USD", "2026-03-06");
        assert_eq!(v["data"]["recordRevenue"]["originalAmount"], money("10.10", "USD"), "{v}");
        assert_eq!(total_revenue(app, "WON", "2026-03-01", "2026-04-01"), "914.10");

        // A date with no rate in force: refused, naming the currency and the date; nothing written.
        let v = booked(app, "R4", "D1", "100", "JPY", "2025-12-31");
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
        let message = v["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("JPY") && message.contains("2025-12-31"), "{message}");
        // Bad amounts, each refused before anything is written.
        for (amount, currency, why) in [
            ("750.0", "JPY", "more fraction digits than yen have, as written"),
            ("10.001", "EUR", "sub-cent euros"),
            ("1", "XYZ", "not an ISO 4217 code"),
            ("1", "eur", "codes are upper case"),
            ("1", "XAU", "gold has no minor unit"),
            ("10000000000000.01", "EUR", "beyond 10^15 minor units"),
        ] {
            let v = deal(app, "D9", "L2", amount, currency, "2026-03-10T00:00:00Z");
            assert_eq!(code(&v), "BAD_USER_INPUT", "{why}: {v}");
        }
        assert_eq!(app.ok(r#"{ opportunity(externalId: "D9") { id } }"#, json!({}))["opportunity"], Value::Null);
        assert_eq!(app.ok(r#"{ opportunity(externalId: "D1") { revenue { externalId } } }"#, json!({}))["opportunity"]["revenue"].as_array().unwrap().len(), 3);

        // A rate change re-values what it covers: from March on, D2 and R1 (not D1, created in February).
        assert_eq!(rate(app, "JPY", "0.0068", "2026-03-01"), (Value::Null, 2));
        let d1 = amount_of(app, "D1");
        assert_eq!(d1["amount"]["amount"], "1005.00");
        assert_eq!(d1["revenue"][0]["amount"]["amount"], "1020.01", "150,001 × 0.0068 = 1020.0068: {d1}");
        assert_eq!(amount_of(app, "D2")["amount"]["amount"], "1020.00");
        assert_eq!(total_revenue(app, "WON", "2026-03-01", "2026-04-01"), "921.60");
        // A rate dated between two others holds until the next: 0.007 on [02-15, 03-01) moves D1 only.
        assert_eq!(rate(app, "JPY", "0.007", "2026-02-15"), (json!("2026-03-01"), 1));
        assert_eq!(amount_of(app, "D1")["amount"]["amount"], "1050.00");
        // The same rate again changes nothing, and a new row with the rate already in force neither.
        assert_eq!(rate(app, "JPY", "0.007", "2026-02-15"), (json!("2026-03-01"), 0));
        assert_eq!(rate(app, "JPY", "0.0070000000", "2026-02-20"), (json!("2026-03-01"), 0));
        let v = app.ok(r#"{ exchangeRates(currency: "JPY") { rate effectiveFrom effectiveTo } }"#, json!({}));
        assert_eq!(v["exchangeRates"], json!([
            { "rate": "0.0067", "effectiveFrom": "2026-01-01", "effectiveTo": "2026-02-15" },
            { "rate": "0.007", "effectiveFrom": "2026-02-15", "effectiveTo": "2026-02-20" },
            { "rate": "0.007", "effectiveFrom": "2026-02-20", "effectiveTo": "2026-03-01" },
            { "rate": "0.0068", "effectiveFrom": "2026-03-01", "effectiveTo": null },
        ]));
        // Rates in force on some day of [from, to), every currency.
        let v = app.as_role(Role::Analyst, r#"{ exchangeRates(from: "2026-02-21", to: "2026-03-02") { currency rate effectiveFrom } }"#, json!({}));
        assert_eq!(v["data"]["exchangeRates"], json!([
            { "currency": "EUR", "rate": "1.085", "effectiveFrom": "2026-01-01" },
            { "currency": "JPY", "rate": "0.007", "effectiveFrom": "2026-02-20" },
            { "currency": "JPY", "rate": "0.0068", "effectiveFrom": "2026-03-01" },
        ]), "{v}");

        // Who may set rates, and what a rate may be.
        assert_eq!(code(&rate_as(app, Role::Marketer, "JPY", "0.1", "2026-05-01")), "FORBIDDEN");
        assert_eq!(code(&rate_as(app, Role::SalesRep, "JPY", "0.1", "2026-05-01")), "FORBIDDEN");
        for (currency, value, why) in [
            ("USD", "1", "the reporting currency's rate is always 1"),
            ("JPY", "0", "not > 0"),
            ("JPY", "-0.1", "negative"),
            ("JPY", "0.00000000001", "11 fraction digits"),
            ("JPY", "1000000000.1", "above 10^9"),
            ("QQQ", "1", "unknown code"),
        ] {
            let v = rate_as(app, Role::Admin, currency, value, "2026-05-01");
            assert_eq!(code(&v), "BAD_USER_INPUT", "{why}: {v}");
        }
        assert!(rate_as(app, Role::Integration, "GBP", "1.27", "2026-01-01").get("errors").is_none());
        assert_eq!(app.ok(r#"{ exchangeRates(currency: "JPY") { rate } }"#, json!({}))["exchangeRates"].as_array().unwrap().len(), 4);

        // Every model's parts still sum exactly to its total in the reporting currency.
        for model in ["FIRST_TOUCH", "LAST_TOUCH", "LINEAR", "TIME_DECAY", "POSITION_BASED", "W_SHAPED", "FULL_PATH", "MARKOV"] {
            for stage in ["OPPORTUNITY", "WON"] {
                for group in ["CAMPAIGN", "CHANNEL", "MONTH"] {
                    let r = &app.ok(REPORT, json!({ "m": model, "s": stage, "g": group, "from": "2026-01-01", "to": "2027-01-01" }))["attribution"];
                    let rows: i64 = r["rows"].as_array().unwrap().iter().map(|x| cents(x["revenue"]["amount"].as_str().unwrap())).sum();
                    let rest = cents(r["unattributedRevenue"]["amount"].as_str().unwrap()) + cents(r["otherRevenue"]["amount"].as_str().unwrap());
                    let total = cents(r["totalRevenue"]["amount"].as_str().unwrap());
                    assert_eq!(rows + rest, total, "{model} {stage} {group}: {r}");
                    assert_eq!(r["totalRevenue"]["currency"], "USD");
                    let expected = if stage == "WON" { 102_001 - 10_851 + 1_010 } else { 105_000 + 102_000 };
                    assert_eq!(total, expected, "{model} {stage}: {r}");
                }
            }
        }
    }

    fn half_cent_ties_round_to_the_even_cent_and_costs_keep_their_currency(app) {
        campaign(app, "C1", "email", None);
        rate(app, "EUR", "1.005", "2026-04-01");
        // 1.00 × 1.005 = 1.005 → 1.00; 3.00 → 3.015 → 3.02; 5.00 → 5.025 → 5.02; 0.10 → 0.1005 → 0.10.
        for (ext, amount) in [("K1", "1.00"), ("K2", "3.00"), ("K3", "5.00"), ("K4", "0.1")] {
            let v = spent(app, ext, "C1", amount, "EUR", "2026-04-02");
            assert!(v.get("errors").is_none(), "{v}");
        }
        let v = app.ok(r#"{ campaign(externalId: "C1") { cost { amount currency } costEntries { externalId amount { amount } originalAmount { amount currency } incurredOn } } }"#, json!({}));
        assert_eq!(v["campaign"]["cost"], money("9.14", "USD"));
        let entries: Vec<(String, String, String)> = v["campaign"]["costEntries"].as_array().unwrap().iter()
            .map(|e| (e["externalId"].as_str().unwrap().into(), e["amount"]["amount"].as_str().unwrap().into(), e["originalAmount"]["amount"].as_str().unwrap().into()))
            .collect();
        assert_eq!(entries, [
            ("K1".to_string(), "1.00".to_string(), "1.00".to_string()),
            ("K2".into(), "3.02".into(), "3.00".into()),
            ("K3".into(), "5.02".into(), "5.00".into()),
            ("K4".into(), "0.10".into(), "0.10".into()),
        ]);
        // The ROI report spends the converted figure.
        let v = app.ok(r#"{ campaignRoi(model: LINEAR, period: { from: "2026-04-01", to: "2026-05-01" }) { campaign { externalId } cost { amount currency } } }"#, json!({}));
        assert_eq!(v["campaignRoi"][0]["cost"], money("9.14", "USD"), "{v}");
        // A cost before the first EUR rate is refused; a cost cannot be negative in any currency.
        let v = spent(app, "K5", "C1", "1.00", "EUR", "2026-03-31");
        assert_eq!(code(&v), "BAD_USER_INPUT");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains("EUR is in force on 2026-03-31"), "{v}");
        assert_eq!(code(&spent(app, "K5", "C1", "-0.001", "KWD", "2026-04-02")), "BAD_USER_INPUT");
        rate(app, "KWD", "3.25", "2026-01-01");
        assert_eq!(code(&spent(app, "K5", "C1", "-0.001", "KWD", "2026-04-02")), "BAD_USER_INPUT", "negative even if it rounds to 0");
        // Budgets and plan money are in the reporting currency only, with a message that says so.
        let v = app.admin("mutation { upsertCampaign(input: { externalId: \"C2\", name: \"EU push\", channel: \"event\", budget: { amount: \"100.00\", currency: \"EUR\" } }) { id } }", json!({}));
        assert_eq!(code(&v), "BAD_USER_INPUT");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains("reporting currency USD"), "{v}");
        let v = app.admin(
            "mutation($i: CompensationPlanInput!) { upsertCompensationPlan(input: $i) { externalId } }",
            json!({ "i": { "externalId": "P1", "name": "EU plan", "model": "LINEAR", "revenueRate": "0.05",
                           "quota": { "amount": "1000.00", "currency": "EUR" }, "qualifiedLeadBonus": { "amount": "10.00", "currency": "USD" } } }),
        );
        assert_eq!(code(&v), "BAD_USER_INPUT");
        let message = v["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("compensation plan") && message.contains("reporting currency USD") && message.contains("EUR"), "{message}");
    }

    fn closing_a_period_freezes_its_conversions(app) {
        two_leads(app);
        user(app, "fin", "FINANCE");
        rate(app, "EUR", "1.10", "2026-01-01");
        assert!(deal(app, "D1", "L1", "1000.00", "EUR", "2026-01-05T09:00:00Z").get("errors").is_none());
        assert!(close(app, "D1", true, "2026-01-10T00:00:00Z").get("errors").is_none());
        assert!(booked(app, "R1", "D1", "500.00", "EUR", "2026-01-10").get("errors").is_none());
        assert!(spent(app, "K1", "C1", "200.00", "EUR", "2026-02-10").get("errors").is_none());
        let v = app.gql_with(&app.token("fin", Role::Finance), "mutation { closePeriod(period: { from: \"2026-01-01\", to: \"2026-02-01\" }) { statements } }", json!({}));
        assert!(v.get("errors").is_none(), "{v}");
        let before = amount_of(app, "D1");
        assert_eq!(before["amount"]["amount"], "1100.00");
        assert_eq!(before["revenue"][0]["amount"]["amount"], "550.00");

        // A rate that would move January's amounts is refused and changes nothing.
        let v = rate_as(app, Role::Finance, "EUR", "1.20", "2026-01-01");
        assert_eq!(code(&v), "PERIOD_CLOSED", "{v}");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains("2026-01-01..2026-02-01"), "{v}");
        assert_eq!(amount_of(app, "D1"), before);
        assert_eq!(app.ok(r#"{ exchangeRates(currency: "EUR") { rate effectiveFrom } }"#, json!({}))["exchangeRates"], json!([{ "rate": "1.1", "effectiveFrom": "2026-01-01" }]));
        assert_eq!(app.ok(r#"{ campaign(externalId: "C1") { cost { amount } } }"#, json!({}))["campaign"]["cost"]["amount"], "220.00");
        // An identical replay is accepted; so is a new row with the rate already in force.
        assert_eq!(rate(app, "EUR", "1.1", "2026-01-01"), (Value::Null, 0));
        assert_eq!(rate(app, "EUR", "1.100", "2026-01-20"), (Value::Null, 0));
        // After the period, a change re-values what it covers (the February cost only).
        assert_eq!(rate(app, "EUR", "1.2", "2026-02-01"), (Value::Null, 1));
        assert_eq!(app.ok(r#"{ campaign(externalId: "C1") { cost { amount } } }"#, json!({}))["campaign"]["cost"]["amount"], "240.00");
        assert_eq!(amount_of(app, "D1"), before);
        // Money in the closed period stays refused in any currency.
        assert_eq!(code(&booked(app, "R2", "D1", "5.00", "EUR", "2026-01-15")), "PERIOD_CLOSED");
        // Reopened, the same rate change goes through and re-values January.
        let v = app.gql_with(&app.token("fin", Role::Finance), "mutation { reopenPeriod(period: { from: \"2026-01-01\", to: \"2026-02-01\" }) }", json!({}));
        assert!(v.get("errors").is_none(), "{v}");
        assert_eq!(rate(app, "EUR", "1.2", "2026-01-01"), (json!("2026-01-20"), 2));
        let after = amount_of(app, "D1");
        assert_eq!((after["amount"]["amount"].as_str(), after["revenue"][0]["amount"]["amount"].as_str()), (Some("1200.00"), Some("600.00")));
    }

    fn rates_and_foreign_amounts_come_through_the_import(app) {
        let token = app.token("sync", Role::Integration);
        let lines = [
            json!({ "type": "exchangeRate", "currency": "GBP", "rate": "1.27", "effectiveFrom": "2026-01-01" }),
            json!({ "type": "campaign", "externalId": "c1", "name": "UK", "channel": "event" }),
            json!({ "type": "campaignCost", "externalId": "k1", "campaignExternalId": "c1", "amount": { "amount": "99.99", "currency": "GBP" }, "incurredOn": "2026-02-01" }),
            json!({ "type": "lead", "externalId": "L1", "email": "l1@example.co.uk", "createdAt": "2026-02-01T00:00:00Z" }),
            json!({ "type": "touchpoint", "externalId": "t1", "leadExternalId": "L1", "campaignExternalId": "c1", "kind": "form_fill", "occurredAt": "2026-02-02T00:00:00Z" }),
            json!({ "type": "opportunity", "externalId": "O1", "name": "Deal", "primaryContactExternalId": "L1", "amount": { "amount": "1000.01", "currency": "GBP" }, "createdAt": "2026-02-10T00:00:00Z" }),
            json!({ "type": "closeOpportunity", "externalId": "O1", "won": true, "closedAt": "2026-03-01T00:00:00Z" }),
            json!({ "type": "revenue", "externalId": "R1", "opportunityExternalId": "O1", "amount": { "amount": "1000.01", "currency": "GBP" }, "bookedOn": "2026-03-01" }),
            // No CHF rate: this line alone is refused, naming the currency and the date.
            json!({ "type": "revenue", "externalId": "R2", "opportunityExternalId": "O1", "amount": { "amount": "5.00", "currency": "CHF" }, "bookedOn": "2026-03-02" }),
            // A rate later in the file re-values what came before it.
            json!({ "type": "exchangeRate", "currency": "GBP", "rate": "1.25", "effectiveFrom": "2026-03-01" }),
        ];
        let body = lines.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
        let v = import(app, &token, "", "application/x-ndjson", &body);
        assert_eq!((v["lines"].as_u64(), v["applied"].as_u64(), v["failed"].as_u64()), (Some(10), Some(9), Some(1)), "{v}");
        assert_eq!(v["errors"][0]["line"], 9);
        assert!(v["errors"][0]["message"].as_str().unwrap().contains("CHF is in force on 2026-03-02"), "{v}");
        // 1000.01 GBP × 1.27 = 1270.0127 → 1270.01 (February); revenue at 1.25 → 1250.0125 → 1250.01.
        let o = amount_of(app, "O1");
        assert_eq!(o["amount"]["amount"], "1270.01");
        assert_eq!(o["originalAmount"], money("1000.01", "GBP"));
        assert_eq!(o["revenue"][0]["amount"]["amount"], "1250.01", "{o}");
        assert_eq!(app.ok(r#"{ campaign(externalId: "c1") { cost { amount } } }"#, json!({}))["campaign"]["cost"]["amount"], "126.99", "99.99 × 1.27 = 126.9873");
        // The same rates as CSV, with their own header; a replay changes nothing.
        let v = import(app, &token, "?type=exchangeRate", "text/csv", "currency,rate,effectiveFrom\nGBP,1.27,2026-01-01\nGBP,1.25,2026-03-01\nJPY,0.0067,2026-01-01\n");
        assert_eq!((v["lines"].as_u64(), v["applied"].as_u64(), v["failed"].as_u64()), (Some(3), Some(3), Some(0)), "{v}");
        assert_eq!(app.ok("{ exchangeRates { currency } }", json!({}))["exchangeRates"].as_array().unwrap().len(), 3);
        // FINANCE may import rates, and only rates: a lead line in its file is refused alone.
        let finance = app.token("fin", Role::Finance);
        let body = [
            json!({ "type": "exchangeRate", "currency": "CHF", "rate": "1.13", "effectiveFrom": "2026-01-01" }),
            json!({ "type": "lead", "externalId": "L9", "createdAt": "2026-02-01T00:00:00Z" }),
        ].iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
        let v = import(app, &finance, "", "application/x-ndjson", &body);
        assert_eq!((v["applied"].as_u64(), v["failed"].as_u64()), (Some(1), Some(1)), "{v}");
        assert_eq!(v["errors"][0]["code"], "FORBIDDEN", "{v}");
        assert_eq!(app.ok(r#"{ exchangeRates(currency: "CHF") { rate } }"#, json!({}))["exchangeRates"], json!([{ "rate": "1.13" }]));
        assert_eq!(code(&app.admin(r#"{ exchangeRates(currency: "chf") { rate } }"#, json!({}))), "BAD_USER_INPUT");
        assert_eq!(app.ok(r#"{ exchangeRates(from: "2026-02-01", to: "2026-02-01") { rate } }"#, json!({}))["exchangeRates"], json!([]));
        assert_eq!(amount_of(app, "O1")["revenue"][0]["amount"]["amount"], "1250.01");
    }
}

/// A reporting currency with three digits (KWD): USD amounts across a rate change.
fn kwd_company(app: &TestApp) {
    campaign(app, "C1", "email", None);
    // 1 USD = 0.30712 KWD until June, 0.3069 from June.
    rate(app, "USD", "0.30712", "2026-01-01");
    rate(app, "USD", "0.3069", "2026-06-01");
    // 100.01 USD = 30.7150712 → 30.715 on May 31; = 30.693069 → 30.693 on June 1.
    assert!(spent(app, "K1", "C1", "100.01", "USD", "2026-05-31")
        .get("errors")
        .is_none());
    assert!(spent(app, "K2", "C1", "100.01", "USD", "2026-06-01")
        .get("errors")
        .is_none());
    let v = app.ok(r#"{ campaign(externalId: "C1") { cost { amount currency } costEntries { amount { amount currency } originalAmount { amount currency } } } }"#, json!({}));
    assert_eq!(v["campaign"]["cost"], money("61.408", "KWD"));
    assert_eq!(
        v["campaign"]["costEntries"][0]["amount"],
        money("30.715", "KWD")
    );
    assert_eq!(
        v["campaign"]["costEntries"][1]["amount"],
        money("30.693", "KWD")
    );
    assert_eq!(
        v["campaign"]["costEntries"][1]["originalAmount"],
        money("100.01", "USD")
    );
    // KWD amounts themselves take three digits, and the reporting currency needs no rate.
    assert!(spent(app, "K3", "C1", "0.005", "KWD", "2026-06-02")
        .get("errors")
        .is_none());
    assert_eq!(
        code(&spent(app, "K4", "C1", "0.0005", "KWD", "2026-06-02")),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code(&rate_as(app, Role::Finance, "KWD", "1", "2026-01-01")),
        "BAD_USER_INPUT"
    );
}

#[test]
fn usd_converts_into_a_three_digit_reporting_currency_on_sqlite() {
    kwd_company(&TestApp::sqlite_with(&[("FUNNELGRAPH_CURRENCY", "KWD")]));
}

#[test]
fn usd_converts_into_a_three_digit_reporting_currency_on_postgres() {
    if let Some(app) = TestApp::postgres_with(&[("FUNNELGRAPH_CURRENCY", "KWD")]) {
        kwd_company(&app);
    }
}

/// Every foreign amount `generate` books is its original at the rate in force on its day,
/// checked against the rates the API lists.
#[test]
fn generated_amounts_in_other_currencies_match_their_rates() {
    use funnelgraph::domain::currency::{Rate, Rates};
    use funnelgraph::domain::money::Money;
    let app = TestApp::sqlite();
    funnelgraph::generate::generate(&app.db, funnelgraph::generate::Scale::Small, 7, |_| {})
        .unwrap();
    let listed = app.ok(
        "{ exchangeRates { currency rate effectiveFrom } }",
        json!({}),
    );
    let mut rates = Rates::default();
    let list = listed["exchangeRates"].as_array().unwrap();
    assert_eq!(list.len(), 3 * 48, "EUR, GBP and JPY, monthly 2024–2027");
    for r in list {
        let day =
            chrono::NaiveDate::parse_from_str(r["effectiveFrom"].as_str().unwrap(), "%Y-%m-%d")
                .unwrap();
        rates.insert(
            r["currency"].as_str().unwrap(),
            day,
            Rate::parse(r["rate"].as_str().unwrap()).unwrap(),
        );
    }
    let v = app.ok(
        "{ opportunities(first: 300) { nodes { createdAt amount { amount } originalAmount { amount currency } revenue { bookedOn amount { amount } originalAmount { amount currency } } } } }",
        json!({}),
    );
    let mut foreign = std::collections::BTreeMap::new();
    let mut check = |original: &Value, amount: &Value, day: &str| {
        let currency = original["currency"].as_str().unwrap();
        let day = chrono::NaiveDate::parse_from_str(&day[..10], "%Y-%m-%d").unwrap();
        let priced = rates
            .price(original["amount"].as_str().unwrap(), currency, "USD", day)
            .unwrap();
        assert_eq!(
            Money(cents(amount["amount"].as_str().unwrap())),
            priced.value,
            "{original} on {day}"
        );
        *foreign.entry(currency.to_string()).or_insert(0) += usize::from(currency != "USD");
    };
    for o in v["opportunities"]["nodes"].as_array().unwrap() {
        check(
            &o["originalAmount"],
            &o["amount"],
            o["createdAt"].as_str().unwrap(),
        );
        for r in o["revenue"].as_array().unwrap() {
            check(
                &r["originalAmount"],
                &r["amount"],
                r["bookedOn"].as_str().unwrap(),
            );
        }
    }
    for code in ["EUR", "GBP", "JPY"] {
        assert!(
            foreign.get(code).copied().unwrap_or(0) > 10,
            "{code}: {foreign:?}"
        );
    }
}
