//! The lead state machine of SPEC §3 over HTTP: every move from every stage, recorded skips,
//! replay-safe moves, and what deals do to their contacts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

const STAGES: [&str; 9] = [
    "INQUIRY",
    "MQL",
    "SAL",
    "SQL",
    "OPPORTUNITY",
    "WON",
    "LOST",
    "RECYCLED",
    "DISQUALIFIED",
];

/// The moves SPEC §3 allows, written out by hand (not computed by the code under test).
fn allowed(from: &str, to: &str) -> bool {
    let forward = |after: &[&str]| after.contains(&to);
    match from {
        "INQUIRY" => forward(&[
            "MQL",
            "SAL",
            "SQL",
            "OPPORTUNITY",
            "WON",
            "LOST",
            "DISQUALIFIED",
        ]),
        "MQL" => forward(&[
            "SAL",
            "SQL",
            "OPPORTUNITY",
            "WON",
            "LOST",
            "RECYCLED",
            "DISQUALIFIED",
        ]),
        "SAL" => forward(&[
            "SQL",
            "OPPORTUNITY",
            "WON",
            "LOST",
            "RECYCLED",
            "DISQUALIFIED",
        ]),
        "SQL" => forward(&["OPPORTUNITY", "WON", "LOST", "RECYCLED", "DISQUALIFIED"]),
        "OPPORTUNITY" => forward(&["WON", "LOST"]),
        "LOST" => forward(&["RECYCLED"]),
        "RECYCLED" => forward(&[
            "MQL",
            "SAL",
            "SQL",
            "OPPORTUNITY",
            "WON",
            "LOST",
            "DISQUALIFIED",
        ]),
        _ => false,
    }
}

/// Puts a fresh lead into `stage` with explicit moves.
fn lead_at(app: &TestApp, ext: &str, stage: &str) {
    lead(app, ext, "2026-01-01T00:00:00Z");
    let path: &[&str] = match stage {
        "INQUIRY" => &[],
        "RECYCLED" => &["MQL", "RECYCLED"],
        "DISQUALIFIED" => &["DISQUALIFIED"],
        other => std::slice::from_ref(STAGES.iter().find(|s| **s == other).unwrap()),
    };
    for (i, to) in path.iter().enumerate() {
        let v = move_lead(app, ext, to, &format!("2026-01-0{}T00:00:00Z", i + 2));
        assert!(v.get("errors").is_none(), "{v}");
    }
    assert_eq!(stage_of(app, ext), stage);
}

both_databases! {
    fn every_move_from_every_stage_follows_the_lifecycle(app) {
        let mut n = 0;
        for from in STAGES {
            for to in STAGES {
                n += 1;
                let ext = format!("L{n:03}");
                lead_at(app, &ext, from);
                let v = move_lead(app, &ext, to, "2026-02-01T00:00:00Z");
                if allowed(from, to) {
                    assert!(v.get("errors").is_none(), "{from} -> {to} should be allowed: {v}");
                    assert_eq!(v["data"]["transitionLead"]["stage"], to, "{from} -> {to}");
                } else {
                    assert_eq!(code(&v), "BAD_USER_INPUT", "{from} -> {to} should be refused: {v}");
                    let message = v["errors"][0]["message"].as_str().unwrap();
                    assert!(message.contains("allowed from"), "the message names the allowed targets: {message}");
                    assert_eq!(stage_of(app, &ext), from, "a refused move changes nothing");
                }
            }
        }
    }

    fn a_forward_skip_records_each_skipped_stage_at_the_same_instant(app) {
        lead(app, "L1", "2026-01-01T09:00:00Z");
        move_lead(app, "L1", "SQL", "2026-01-05T10:30:00Z");
        let v = app.ok(
            r#"{ lead(externalId: "L1") { stage stageHistory { from to occurredAt actor } } }"#,
            json!({}),
        );
        let history = v["lead"]["stageHistory"].as_array().unwrap();
        let steps: Vec<(String, String, String)> = history
            .iter()
            .map(|h| (
                h["from"].as_str().unwrap_or("-").to_string(),
                h["to"].as_str().unwrap().to_string(),
                h["occurredAt"].as_str().unwrap().to_string(),
            ))
            .collect();
        assert_eq!(
            steps,
            vec![
                ("-".into(), "INQUIRY".into(), "2026-01-01T09:00:00Z".into()),
                ("INQUIRY".into(), "MQL".into(), "2026-01-05T10:30:00Z".into()),
                ("MQL".into(), "SAL".into(), "2026-01-05T10:30:00Z".into()),
                ("SAL".into(), "SQL".into(), "2026-01-05T10:30:00Z".into()),
            ]
        );
        assert_eq!(history[1]["actor"], "test-admin");
    }

    fn a_replayed_transition_with_the_same_external_id_is_a_no_op(app) {
        lead(app, "L1", "2026-01-01T09:00:00Z");
        let input = json!({ "i": { "leadExternalId": "L1", "to": "MQL", "occurredAt": "2026-01-02T00:00:00Z", "externalId": "x1" } });
        for _ in 0..3 {
            let v = app.admin(MOVE, input.clone());
            assert!(v.get("errors").is_none(), "{v}");
        }
        let v = app.ok(r#"{ lead(externalId: "L1") { stage stageHistory { to } } }"#, json!({}));
        assert_eq!(v["lead"]["stage"], "MQL");
        assert_eq!(v["lead"]["stageHistory"].as_array().unwrap().len(), 2);
    }

    fn a_transition_external_id_reused_for_another_lead_is_a_conflict(app) {
        lead(app, "L1", "2026-01-01T09:00:00Z");
        lead(app, "L2", "2026-01-01T09:00:00Z");
        let v = app.admin(MOVE, json!({ "i": { "leadExternalId": "L1", "to": "MQL", "occurredAt": "2026-01-02T00:00:00Z", "externalId": "x1" } }));
        assert!(v.get("errors").is_none());
        let v = app.admin(MOVE, json!({ "i": { "leadExternalId": "L2", "to": "MQL", "occurredAt": "2026-01-02T00:00:00Z", "externalId": "x1" } }));
        assert_eq!(code(&v), "CONFLICT");
        assert_eq!(stage_of(app, "L2"), "INQUIRY");
    }

    fn creating_and_closing_a_deal_moves_its_primary_contact(app) {
        user(app, "s1", "SALES_REP");
        lead(app, "L1", "2026-01-01T09:00:00Z");
        lead(app, "L2", "2026-01-01T09:00:00Z");
        move_lead(app, "L1", "MQL", "2026-01-02T00:00:00Z");
        opportunity(app, "O1", "L1", &["L2"], Some("s1"), "1000.00", "2026-01-10T00:00:00Z");
        assert_eq!(stage_of(app, "L1"), "OPPORTUNITY");
        assert_eq!(stage_of(app, "L2"), "INQUIRY", "further contacts keep their stage");
        let v = app.ok(r#"{ lead(externalId: "L1") { owner { externalId } stageHistory { to occurredAt } } }"#, json!({}));
        assert_eq!(v["lead"]["owner"]["externalId"], "s1");
        let tos: Vec<&str> = v["lead"]["stageHistory"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap()).collect();
        assert_eq!(tos, vec!["INQUIRY", "MQL", "SAL", "SQL", "OPPORTUNITY"]);
        let v = close(app, "O1", true, "2026-02-01T00:00:00Z");
        assert_eq!(v["data"]["closeOpportunity"]["status"], "WON");
        assert_eq!(stage_of(app, "L1"), "WON");
        // Replaying the same close is a no-op; closing it differently is a conflict.
        assert!(close(app, "O1", true, "2026-02-01T00:00:00Z").get("errors").is_none());
        assert_eq!(code(&close(app, "O1", false, "2026-02-02T00:00:00Z")), "CONFLICT");
    }

    fn a_lost_deal_moves_its_contact_to_lost(app) {
        lead(app, "L1", "2026-01-01T09:00:00Z");
        opportunity(app, "O1", "L1", &[], None, "1000.00", "2026-01-10T00:00:00Z");
        close(app, "O1", false, "2026-02-01T00:00:00Z");
        assert_eq!(stage_of(app, "L1"), "LOST");
        assert!(move_lead(app, "L1", "RECYCLED", "2026-03-01T00:00:00Z").get("errors").is_none());
    }

    fn revenue_is_booked_only_on_won_deals(app) {
        lead(app, "L1", "2026-01-01T09:00:00Z");
        opportunity(app, "O1", "L1", &[], None, "1000.00", "2026-01-10T00:00:00Z");
        let v = revenue(app, "R1", "O1", "500.00", "2026-02-01");
        assert_eq!(code(&v), "BAD_USER_INPUT");
        close(app, "O1", true, "2026-02-01T00:00:00Z");
        let v = revenue(app, "R1", "O1", "500.00", "2026-02-01");
        assert_eq!(v["data"]["recordRevenue"]["amount"]["amount"], "500.00");
        let v = revenue(app, "R2", "O1", "-19.99", "2026-02-10");
        assert_eq!(v["data"]["recordRevenue"]["amount"]["amount"], "-19.99", "a refund is a negative amount");
        let v = app.ok(r#"{ opportunity(externalId: "O1") { revenue { externalId amount { amount } } } }"#, json!({}));
        assert_eq!(v["opportunity"]["revenue"].as_array().unwrap().len(), 2);
    }
}
