//! Authentication and the role matrix of SPEC §6 over HTTP: who may read which fields, who
//! may write what, and that a refused write changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use funnelgraph::auth::{Role, ROLES};
use serde_json::{json, Value};

/// A small company: two marketers with a campaign each, a rep who owns one deal, two leads.
fn company(app: &TestApp) {
    user(app, "m1", "MARKETER");
    user(app, "m2", "MARKETER");
    user(app, "s1", "SALES_REP");
    user(app, "s2", "SALES_REP");
    user(app, "a1", "ANALYST");
    campaign(app, "c1", "email", Some("m1"));
    campaign(app, "c2", "event", Some("m2"));
    lead(app, "L1", "2026-01-01T00:00:00Z");
    lead(app, "L2", "2026-01-01T00:00:00Z");
    touch(app, "t1", "L1", "c1", "2026-01-01T00:00:00Z");
    touch(app, "t2", "L2", "c2", "2026-01-01T00:00:00Z");
    opportunity(
        app,
        "O1",
        "L1",
        &[],
        Some("s1"),
        "100.00",
        "2026-01-05T00:00:00Z",
    );
}

fn as_user(app: &TestApp, sub: &str, role: Role, query: &str) -> Value {
    app.gql_with(&app.token(sub, role), query, json!({}))
}

fn forbidden_paths(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .map(|errs| {
            errs.iter()
                .filter(|e| e["extensions"]["code"] == "FORBIDDEN")
                .map(|e| {
                    e["path"]
                        .as_array()
                        .map(|p| {
                            p.iter()
                                .map(|s| s.to_string().replace('"', ""))
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

both_databases! {
    fn lead_personal_data_follows_the_role_table(app) {
        company(app);
        let q = r#"{ lead(externalId: "L1") { externalId stage email fullName } }"#;
        // (sub, role, sees L1's email)
        for (sub, role, sees) in [
            ("x", Role::Admin, true),
            ("x", Role::MarketingManager, true),
            ("x", Role::Integration, true),
            ("x", Role::Finance, false),
            ("a1", Role::Analyst, false),
            ("m1", Role::Marketer, true),   // L1 was touched by m1's campaign
            ("m2", Role::Marketer, false),
            ("s1", Role::SalesRep, true),   // L1 is the contact of s1's deal
            ("s2", Role::SalesRep, false),
        ] {
            let v = as_user(app, sub, role, q);
            assert_eq!(v["data"]["lead"]["stage"], "OPPORTUNITY", "{role:?} reads the non-personal fields");
            if sees {
                assert_eq!(v["data"]["lead"]["email"], "l1@example.com", "{role:?} {sub}");
                assert!(v.get("errors").is_none(), "{v}");
            } else {
                assert!(v["data"]["lead"]["email"].is_null(), "{role:?} {sub}");
                assert!(v["data"]["lead"]["fullName"].is_null());
                assert_eq!(forbidden_paths(&v), vec!["lead.email", "lead.fullName"], "{role:?} {sub}");
            }
        }
    }

    fn campaign_lists_hold_what_the_role_may_see(app) {
        company(app);
        let q = "{ campaigns { totalCount nodes { externalId } } }";
        for (sub, role, expected) in [
            ("x", Role::Admin, json!(["c1", "c2"])),
            ("x", Role::Finance, json!(["c1", "c2"])),
            ("x", Role::MarketingManager, json!(["c1", "c2"])),
            ("a1", Role::Analyst, json!(["c1", "c2"])),
            ("m1", Role::Marketer, json!(["c1"])),
            ("m2", Role::Marketer, json!(["c2"])),
        ] {
            let v = as_user(app, sub, role, q);
            let got: Vec<Value> = v["data"]["campaigns"]["nodes"].as_array().unwrap().iter().map(|n| n["externalId"].clone()).collect();
            assert_eq!(json!(got), expected, "{role:?} {sub}");
            assert_eq!(v["data"]["campaigns"]["totalCount"], expected.as_array().unwrap().len());
        }
        for role in [Role::SalesRep, Role::Integration] {
            let v = as_user(app, "s1", role, q);
            assert_eq!(code(&v), "FORBIDDEN", "{role:?}");
        }
        let v = as_user(app, "m1", Role::Marketer, r#"{ campaign(externalId: "c2") { name } }"#);
        assert_eq!(code(&v), "FORBIDDEN");
        assert!(v["data"]["campaign"].is_null());
    }

    fn opportunity_lists_hold_what_the_role_may_see(app) {
        company(app);
        let q = "{ opportunities { totalCount nodes { externalId amount { amount } } } }";
        for role in [Role::Admin, Role::Finance, Role::MarketingManager, Role::Analyst, Role::Integration] {
            let v = as_user(app, "x", role, q);
            assert_eq!(v["data"]["opportunities"]["totalCount"], 1, "{role:?}");
        }
        assert_eq!(as_user(app, "s1", Role::SalesRep, q)["data"]["opportunities"]["totalCount"], 1);
        assert_eq!(as_user(app, "s2", Role::SalesRep, q)["data"]["opportunities"]["totalCount"], 0);
        assert_eq!(code(&as_user(app, "m1", Role::Marketer, q)), "FORBIDDEN");
        assert_eq!(code(&as_user(app, "s2", Role::SalesRep, r#"{ opportunity(externalId: "O1") { name } }"#)), "FORBIDDEN");
    }

    fn users_are_visible_as_the_table_says(app) {
        company(app);
        let q = r#"{ campaign(externalId: "c1") { owner { externalId name email } } }"#;
        let v = as_user(app, "a1", Role::Analyst, q);
        assert_eq!(v["data"]["campaign"]["owner"]["name"], "User m1", "analysts see names");
        assert_eq!(forbidden_paths(&v), vec!["campaign.owner.email"], "but not emails");
        let v = as_user(app, "m1", Role::Marketer, q);
        assert_eq!(v["data"]["campaign"]["owner"]["email"], "m1@corp.test", "a marketer sees themselves");
        let v = as_user(app, "s2", Role::SalesRep, r#"{ opportunities { nodes { owner { name } } } }"#);
        assert_eq!(v["data"]["opportunities"]["nodes"], json!([]));
        let v = as_user(app, "s1", Role::SalesRep, r#"{ lead(externalId: "L1") { owner { externalId } } }"#);
        assert_eq!(v["data"]["lead"]["owner"]["externalId"], "s1");
        let v = as_user(app, "s2", Role::SalesRep, r#"{ lead(externalId: "L1") { owner { externalId } } }"#);
        assert_eq!(forbidden_paths(&v), vec!["lead.owner"]);
        let v = as_user(app, "newcomer", Role::Finance, "{ me { externalId name role email } }");
        assert_eq!(v["data"]["me"], json!({ "externalId": "newcomer", "name": "newcomer", "role": "FINANCE", "email": null }));
        // The caller's row is reused between requests for a moment, but a change made through
        // this server shows at once, and a newcomer who gets a row is known from then on.
        let me = "{ me { externalId name email } }";
        assert_eq!(as_user(app, "m1", Role::Marketer, me)["data"]["me"]["name"], "User m1");
        app.ok(
            "mutation($i: UserInput!) { upsertUser(input: $i) { id } }",
            json!({ "i": { "externalId": "m1", "name": "Mara", "email": "mara@corp.test", "role": "MARKETER" } }),
        );
        assert_eq!(as_user(app, "m1", Role::Marketer, me)["data"]["me"], json!({ "externalId": "m1", "name": "Mara", "email": "mara@corp.test" }));
        user(app, "newcomer", "FINANCE");
        assert_eq!(as_user(app, "newcomer", Role::Finance, me)["data"]["me"]["name"], "User newcomer");
    }

    fn each_mutation_is_refused_to_the_roles_the_table_does_not_name(app) {
        company(app);
        // (mutation, variables, roles allowed)
        let cases: Vec<(&str, Value, Vec<Role>)> = vec![
            ("mutation($i: UserInput!) { upsertUser(input: $i) { id } }",
             json!({ "i": { "externalId": "u9", "name": "U", "role": "ANALYST" } }),
             vec![Role::Admin, Role::Integration]),
            ("mutation($i: LeadInput!) { upsertLead(input: $i) { id } }",
             json!({ "i": { "externalId": "L9", "createdAt": "2026-01-01T00:00:00Z" } }),
             vec![Role::Admin, Role::Integration]),
            ("mutation($i: TouchpointInput!) { recordTouchpoint(input: $i) { id } }",
             json!({ "i": { "externalId": "t9", "leadExternalId": "L2", "campaignExternalId": "c1", "kind": "ad_click", "occurredAt": "2026-01-01T00:00:00Z" } }),
             vec![Role::Admin, Role::Integration]),
            ("mutation($i: OpportunityInput!) { upsertOpportunity(input: $i) { id } }",
             json!({ "i": { "externalId": "O9", "name": "x", "primaryContactExternalId": "L2", "amount": { "amount": "1.00", "currency": "USD" }, "createdAt": "2026-01-01T00:00:00Z" } }),
             vec![Role::Admin, Role::Integration]),
            ("mutation($i: CampaignInput!) { upsertCampaign(input: $i) { id } }",
             json!({ "i": { "externalId": "c9", "name": "n", "channel": "email", "ownerExternalId": "m1" } }),
             vec![Role::Admin, Role::Integration, Role::MarketingManager]),
            (
                "mutation($i: CampaignCostInput!) { recordCampaignCost(input: $i) { id } }",
                json!({ "i": { "externalId": "k9", "campaignExternalId": "c1", "amount": { "amount": "1.00", "currency": "USD" }, "incurredOn": "2026-01-01" } }),
                vec![Role::Admin, Role::Integration, Role::MarketingManager],
            ),
            (
                "mutation($i: CloseOpportunityInput!) { closeOpportunity(input: $i) { id } }",
                json!({ "i": { "externalId": "O1", "won": true, "closedAt": "2026-02-01T00:00:00Z" } }),
                vec![Role::Admin, Role::Integration],
            ),
            (
                "mutation($i: RevenueInput!) { recordRevenue(input: $i) { id } }",
                json!({ "i": { "externalId": "r9", "opportunityExternalId": "O1", "amount": { "amount": "1.00", "currency": "USD" }, "bookedOn": "2026-02-01" } }),
                vec![Role::Admin, Role::Integration],
            ),
        ];
        for (mutation, vars, allowed) in cases {
            for role in ROLES {
                if allowed.contains(&role) {
                    continue;
                }
                let sub = if role == Role::Marketer { "m2" } else { "x" };
                let v = app.gql_with(&app.token(sub, role), mutation, vars.clone());
                assert_eq!(code(&v), "FORBIDDEN", "{role:?} {mutation}: {v}");
            }
        }
        let totals = app.ok("{ campaigns { totalCount } leads { totalCount } opportunities { totalCount } }", json!({}));
        assert_eq!(totals, json!({ "campaigns": { "totalCount": 2 }, "leads": { "totalCount": 2 }, "opportunities": { "totalCount": 1 } }), "refused writes wrote nothing");
        let v = app.ok(r#"{ opportunity(externalId: "O1") { status revenue { id } } campaign(externalId: "c1") { cost { amount } } }"#, json!({}));
        assert_eq!(v, json!({ "opportunity": { "status": "OPEN", "revenue": [] }, "campaign": { "cost": { "amount": "0.00" } } }));
    }

    fn a_marketer_writes_only_their_own_campaigns(app) {
        company(app);
        let m1 = app.token("m1", Role::Marketer);
        let upsert = "mutation($i: CampaignInput!) { upsertCampaign(input: $i) { externalId owner { externalId } } }";
        let v = app.gql_with(&m1, upsert, json!({ "i": { "externalId": "c3", "name": "Mine", "channel": "webinar" } }));
        assert_eq!(v["data"]["upsertCampaign"]["owner"]["externalId"], "m1", "what a marketer creates is theirs");
        let v = app.gql_with(&m1, upsert, json!({ "i": { "externalId": "c2", "name": "Taken", "channel": "event", "ownerExternalId": "m1" } }));
        assert_eq!(code(&v), "FORBIDDEN");
        let v = app.gql_with(&m1, upsert, json!({ "i": { "externalId": "c2", "name": "Taken", "channel": "event", "ownerExternalId": "m2" } }));
        assert_eq!(code(&v), "FORBIDDEN");
        let v = app.gql_with(&m1, "mutation($i: CampaignCostInput!) { recordCampaignCost(input: $i) { id } }",
            json!({ "i": { "externalId": "k1", "campaignExternalId": "c2", "amount": { "amount": "5.00", "currency": "USD" }, "incurredOn": "2026-01-01" } }));
        assert_eq!(code(&v), "FORBIDDEN");
        let v = app.ok(r#"{ campaign(externalId: "c2") { name cost { amount } } }"#, json!({}));
        assert_eq!(v["campaign"], json!({ "name": "Campaign c2", "cost": { "amount": "0.00" } }));
    }

    fn lead_moves_follow_the_role_table(app) {
        company(app);
        lead(app, "L3", "2026-01-01T00:00:00Z");
        lead(app, "L4", "2026-01-01T00:00:00Z");
        let mv = |sub: &str, role: Role, lead: &str, to: &str| {
            app.gql_with(&app.token(sub, role), MOVE, json!({ "i": { "leadExternalId": lead, "to": to, "occurredAt": "2026-01-03T00:00:00Z" } }))
        };
        for role in [Role::Finance, Role::Marketer, Role::Analyst] {
            assert_eq!(code(&mv("m1", role, "L3", "MQL")), "FORBIDDEN", "{role:?}");
        }
        // Marketing may qualify, recycle and disqualify, not accept for sales.
        assert_eq!(code(&mv("x", Role::MarketingManager, "L3", "SAL")), "FORBIDDEN");
        assert_eq!(mv("x", Role::MarketingManager, "L3", "MQL")["data"]["transitionLead"]["stage"], "MQL");
        // A sales rep may not touch an INQUIRY that is not theirs; accepting an unowned MQL assigns it.
        assert_eq!(code(&mv("s2", Role::SalesRep, "L4", "MQL")), "FORBIDDEN");
        assert_eq!(mv("s2", Role::SalesRep, "L3", "SAL")["data"]["transitionLead"]["stage"], "SAL");
        let v = app.ok(r#"{ lead(externalId: "L3") { owner { externalId } } }"#, json!({}));
        assert_eq!(v["lead"]["owner"]["externalId"], "s2");
        // Now it is s2's: s1 may not move it, s2 may.
        assert_eq!(code(&mv("s1", Role::SalesRep, "L3", "SQL")), "FORBIDDEN");
        assert_eq!(mv("s2", Role::SalesRep, "L3", "SQL")["data"]["transitionLead"]["stage"], "SQL");
        // The contact of s1's own deal is s1's to close out.
        assert_eq!(mv("s1", Role::SalesRep, "L1", "LOST")["data"]["transitionLead"]["stage"], "LOST");
    }

    fn requests_without_a_valid_token_get_401_before_anything_runs(app) {
        company(app);
        let body = json!({ "query": "mutation { upsertUser(input: { externalId: \"evil\", name: \"E\", role: ADMIN }) { id } }" }).to_string();
        let expired = funnelgraph::auth::mint_hs256(SECRET.as_bytes(), "x", Role::Admin, -3600, None, None).unwrap();
        let wrong_key = funnelgraph::auth::mint_hs256(b"another-secret-another-secret-xx", "x", Role::Admin, 3600, None, None).unwrap();
        let good = app.token("x", Role::Admin);
        let mut parts = good.split('.');
        let (header, _, sig) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let tampered_payload = b64.encode(br#"{"sub":"x","role":"ADMIN","exp":9999999999,"extra":1}"#);
        let tampered = format!("{header}.{tampered_payload}.{sig}");
        let none_header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let alg_none = format!("{none_header}.{tampered_payload}.");
        let unknown_role_payload = b64.encode(br#"{"sub":"x","role":"ROOT","exp":9999999999}"#);
        let no_exp_payload = b64.encode(br#"{"sub":"x","role":"ADMIN"}"#);
        use hmac_sign::sign;
        let unknown_role = sign(&format!("{header}.{unknown_role_payload}"));
        let no_exp = sign(&format!("{header}.{no_exp_payload}"));
        for (what, auth) in [
            ("no header", None),
            ("not bearer", Some(format!("Basic {good}"))),
            ("garbage", Some("Bearer not.a.token".to_string())),
            ("expired", Some(format!("Bearer {expired}"))),
            ("wrong key", Some(format!("Bearer {wrong_key}"))),
            ("tampered payload", Some(format!("Bearer {tampered}"))),
            ("alg none", Some(format!("Bearer {alg_none}"))),
            ("unknown role", Some(format!("Bearer {unknown_role}"))),
            ("missing exp", Some(format!("Bearer {no_exp}"))),
        ] {
            let (status, v) = app.post_raw(auth.as_deref(), "application/json", &body);
            assert_eq!(status, 401, "{what}: {v}");
            assert_eq!(code(&v), "UNAUTHENTICATED", "{what}");
        }
        let v = app.ok(r#"{ users: leads { totalCount } }"#, json!({}));
        assert_eq!(v["users"]["totalCount"], 2);
        let v = app.ok(r#"{ campaign(externalId: "c1") { owner { externalId } } }"#, json!({}));
        assert_eq!(v["campaign"]["owner"]["externalId"], "m1", "nothing was written by the refused requests");
    }
}

/// Signs a JWT signing input with the test secret, for hand-built payloads.
mod hmac_sign {
    pub fn sign(signing_input: &str) -> String {
        // HS256 by hand: HMAC-SHA256 over the signing input (RFC 7515), via jsonwebtoken's
        // own primitive so the test does not need another crypto crate.
        let key = jsonwebtoken::EncodingKey::from_secret(super::SECRET.as_bytes());
        let sig = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            &key,
            jsonwebtoken::Algorithm::HS256,
        )
        .unwrap();
        format!("{signing_input}.{sig}")
    }
}
