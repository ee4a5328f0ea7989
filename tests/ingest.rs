//! The CRM sync's upserts over HTTP: idempotent replays, updates, exact money, and bad input
//! that is refused with a code and writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};

fn counts(app: &TestApp) -> Value {
    app.ok(
        "{ campaigns { totalCount } leads { totalCount } opportunities { totalCount } }",
        json!({}),
    )
}

both_databases! {
    fn an_upsert_replayed_leaves_one_row_and_a_changed_payload_updates_it(app) {
        user(app, "m1", "MARKETER");
        campaign(app, "c1", "email", Some("m1"));
        campaign(app, "c1", "email", Some("m1"));
        let v = app.ok(r#"{ campaigns { totalCount nodes { name channel } } }"#, json!({}));
        assert_eq!(v["campaigns"]["totalCount"], 1);
        campaign(app, "c1", "webinar", Some("m1"));
        let v = app.ok(r#"{ campaign(externalId: "c1") { channel owner { externalId } } }"#, json!({}));
        assert_eq!(v["campaign"]["channel"], "webinar");
        assert_eq!(v["campaign"]["owner"]["externalId"], "m1");
    }

    fn lead_attributes_are_replaced_by_a_new_payload(app) {
        let upsert = "mutation($i: LeadInput!) { upsertLead(input: $i) { attributes { key value } } }";
        let v = app.ok(upsert, json!({ "i": { "externalId": "L1", "createdAt": "2026-01-01T00:00:00Z",
            "attributes": [ { "key": "industry", "value": "retail" }, { "key": "company_size", "value": "50" } ] } }));
        assert_eq!(v["upsertLead"]["attributes"], json!([{ "key": "company_size", "value": "50" }, { "key": "industry", "value": "retail" }]));
        let v = app.ok(upsert, json!({ "i": { "externalId": "L1", "createdAt": "2026-01-01T00:00:00Z",
            "attributes": [ { "key": "industry", "value": "software" } ] } }));
        assert_eq!(v["upsertLead"]["attributes"], json!([{ "key": "industry", "value": "software" }]));
    }

    fn money_round_trips_large_and_odd_cent_amounts_exactly(app) {
        campaign(app, "c1", "email", None);
        for (i, amount) in ["0.01", "1250.07", "92233720368547758.07", "19.9"].iter().enumerate() {
            cost(app, &format!("k{i}"), "c1", amount, "2026-01-15");
        }
        let v = app.ok(r#"{ campaign(externalId: "c1") { cost(period: { from: "2026-01-01", to: "2026-01-15" }) { amount } } }"#, json!({}));
        assert_eq!(v["campaign"]["cost"]["amount"], "0.00", "to is exclusive");
        // The total of the four overflows i64 cents: the sum must fail loudly, never wrap.
        let v = app.admin(r#"{ campaign(externalId: "c1") { cost { amount currency } } }"#, json!({}));
        assert_eq!(code(&v), "BAD_USER_INPUT");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains("largest amount"), "{v}");
        // Bring it back to a sum that fits, through an update of the same cost row.
        cost(app, "k2", "c1", "100000000000.00", "2026-01-15");
        let v = app.ok(r#"{ campaign(externalId: "c1") { cost { amount currency } } }"#, json!({}));
        assert_eq!(v["campaign"]["cost"], json!({ "amount": "100000001269.98", "currency": "USD" }));
        lead(app, "L1", "2026-01-01T00:00:00Z");
        opportunity(app, "O1", "L1", &[], None, "92233720368547758.07", "2026-01-02T00:00:00Z");
        let v = app.ok(r#"{ opportunity(externalId: "O1") { amount { amount } } }"#, json!({}));
        assert_eq!(v["opportunity"]["amount"]["amount"], "92233720368547758.07");
    }

    fn bad_money_is_refused_and_writes_nothing(app) {
        campaign(app, "c1", "email", None);
        let mutation = "mutation($i: CampaignCostInput!) { recordCampaignCost(input: $i) { id } }";
        for (amount, currency, why) in [
            ("10.001", "USD", "more fraction digits than the currency"),
            ("10.00", "EUR", "another currency"),
            ("ten", "USD", "not a number"),
            ("1e3", "USD", "an exponent"),
            ("-5.00", "USD", "a negative cost"),
            ("92233720368547758.08", "USD", "beyond i64 cents"),
        ] {
            let v = app.admin(mutation, json!({ "i": { "externalId": "k1", "campaignExternalId": "c1", "amount": { "amount": amount, "currency": currency }, "incurredOn": "2026-01-01" } }));
            assert_eq!(code(&v), "BAD_USER_INPUT", "{why}: {v}");
        }
        let v = app.ok(r#"{ campaign(externalId: "c1") { cost { amount } } }"#, json!({}));
        assert_eq!(v["campaign"]["cost"]["amount"], "0.00");
    }

    fn bad_dates_times_and_ids_are_refused(app) {
        let upsert = "mutation($i: LeadInput!) { upsertLead(input: $i) { id } }";
        for created in ["2026-13-01T00:00:00Z", "yesterday", "2026-01-01", "2026-01-01 10:00:00"] {
            let v = app.admin(upsert, json!({ "i": { "externalId": "L1", "createdAt": created } }));
            assert_eq!(code(&v), "BAD_USER_INPUT", "{created}: {v}");
        }
        let v = app.admin(upsert, json!({ "i": { "externalId": " ", "createdAt": "2026-01-01T00:00:00Z" } }));
        assert_eq!(code(&v), "BAD_USER_INPUT");
        let v = app.admin(upsert, json!({ "i": { "externalId": "L1", "email": "not-an-email", "createdAt": "2026-01-01T00:00:00Z" } }));
        assert_eq!(code(&v), "BAD_USER_INPUT");
        let cost = "mutation($i: CampaignCostInput!) { recordCampaignCost(input: $i) { id } }";
        let v = app.admin(cost, json!({ "i": { "externalId": "k1", "campaignExternalId": "c1", "amount": { "amount": "1.00", "currency": "USD" }, "incurredOn": "2026-02-30" } }));
        assert_eq!(code(&v), "BAD_USER_INPUT");
        assert_eq!(counts(app)["leads"]["totalCount"], 0);
    }

    fn a_reference_to_an_unknown_entity_is_not_found_and_writes_nothing(app) {
        lead(app, "L1", "2026-01-01T00:00:00Z");
        let v = app.admin(
            "mutation($i: TouchpointInput!) { recordTouchpoint(input: $i) { id } }",
            json!({ "i": { "externalId": "t1", "leadExternalId": "L1", "campaignExternalId": "nope", "kind": "ad_click", "occurredAt": "2026-01-01T00:00:00Z" } }),
        );
        assert_eq!(code(&v), "NOT_FOUND");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains("nope"));
        let v = app.admin(
            "mutation($i: OpportunityInput!) { upsertOpportunity(input: $i) { id } }",
            json!({ "i": { "externalId": "O1", "name": "x", "primaryContactExternalId": "L1", "contactExternalIds": ["ghost"], "amount": { "amount": "1.00", "currency": "USD" }, "createdAt": "2026-01-01T00:00:00Z" } }),
        );
        assert_eq!(code(&v), "NOT_FOUND");
        assert_eq!(counts(app)["opportunities"]["totalCount"], 0);
        assert_eq!(stage_of(app, "L1"), "INQUIRY", "the failed deal did not move its contact");
    }

    fn pages_follow_cursors_in_external_id_order(app) {
        for i in (1..=7).rev() {
            lead(app, &format!("L{i}"), "2026-01-01T00:00:00Z");
        }
        let page = "query($a: String) { leads(first: 3, after: $a) { totalCount edges { cursor node { externalId } } pageInfo { hasNextPage endCursor } } }";
        let mut after = Value::Null;
        let mut seen = Vec::new();
        loop {
            let v = app.ok(page, json!({ "a": after }));
            let leads = &v["leads"];
            assert_eq!(leads["totalCount"], 7);
            for e in leads["edges"].as_array().unwrap() {
                seen.push(e["node"]["externalId"].as_str().unwrap().to_string());
            }
            if !leads["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                break;
            }
            after = leads["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(seen, vec!["L1", "L2", "L3", "L4", "L5", "L6", "L7"]);
        let v = app.admin("{ leads(first: 501) { totalCount } }", json!({}));
        assert_eq!(code(&v), "QUERY_TOO_COMPLEX");
        let v = app.admin(r#"{ leads(after: "%%%") { totalCount } }"#, json!({}));
        assert_eq!(code(&v), "BAD_USER_INPUT");
    }

    fn leads_filter_on_their_current_stage(app) {
        lead(app, "L1", "2026-01-01T00:00:00Z");
        lead(app, "L2", "2026-01-01T00:00:00Z");
        move_lead(app, "L2", "MQL", "2026-01-02T00:00:00Z");
        let v = app.ok("{ leads(stage: MQL) { totalCount nodes { externalId } } }", json!({}));
        assert_eq!(v["leads"]["nodes"], json!([{ "externalId": "L2" }]));
    }

    fn any_object_is_found_again_by_its_id(app) {
        user(app, "m1", "MARKETER");
        campaign(app, "c1", "email", Some("m1"));
        lead(app, "L1", "2026-01-01T00:00:00Z");
        touch(app, "t1", "L1", "c1", "2026-01-01T00:00:00Z");
        let v = app.ok(r#"{ lead(externalId: "L1") { id touchpoints { id campaign { id } } } }"#, json!({}));
        for id in [&v["lead"]["id"], &v["lead"]["touchpoints"][0]["id"], &v["lead"]["touchpoints"][0]["campaign"]["id"]] {
            let n = app.ok("query($id: ID!) { node(id: $id) { id ... on Lead { externalId } ... on Touchpoint { externalId } ... on Campaign { externalId } } }", json!({ "id": id }));
            assert_eq!(&n["node"]["id"], id);
        }
        let v = app.ok(r#"{ campaign(externalId: "c1") { leads { totalCount nodes { externalId } } } }"#, json!({}));
        assert_eq!(v["campaign"]["leads"]["nodes"], json!([{ "externalId": "L1" }]));
    }

    fn nested_reads_cost_the_same_number_of_queries_for_any_page_size(app) {
        for u in ["m1", "m2"] {
            user(app, u, "MARKETER");
        }
        user(app, "s1", "SALES_REP");
        for c in 0..4 {
            campaign(app, &format!("c{c}"), "email", Some(if c % 2 == 0 { "m1" } else { "m2" }));
        }
        for i in 0..120 {
            let l = format!("L{i:03}");
            lead(app, &l, "2026-01-01T00:00:00Z");
            for k in 0..2 {
                touch(app, &format!("t{i}-{k}"), &l, &format!("c{}", (i + k) % 4), "2026-01-02T00:00:00Z");
            }
            if i % 10 == 0 {
                opportunity(app, &format!("O{i}"), &l, &[], Some("s1"), "10.00", "2026-01-03T00:00:00Z");
            }
        }
        let query = "query($n: Int) { leads(first: $n) { totalCount nodes { externalId email owner { name } attributes { key } stageHistory { to } touchpoints { kind campaign { name owner { name email } } } } } }";
        let mut statements = Vec::new();
        // The fewest of three runs: the caller's user row is re-read when its cache (1 s) has
        // expired, which a slow debug run may hit in one page and not the other.
        for n in [10, 100] {
            let mut fewest = u64::MAX;
            for _ in 0..3 {
                let before = app.db.statements_run();
                let v = app.ok(query, json!({ "n": n }));
                fewest = fewest.min(app.db.statements_run() - before);
                assert_eq!(v["leads"]["nodes"].as_array().unwrap().len(), n as usize);
            }
            statements.push(fewest);
        }
        assert_eq!(statements[0], statements[1], "statements for 10 vs 100 leads: {statements:?}");
        assert!(statements[1] <= 20, "a page of leads took {} statements", statements[1]);
    }
}
