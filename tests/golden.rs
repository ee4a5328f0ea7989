//! The golden small company (`tests/fixtures/small-company.json`, from ../shared/golden):
//! every mutation applied over HTTP with a token of its role, replayed to prove idempotency,
//! and the stages the SPEC's answers imply checked against what the API recorded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashSet};

use common::*;
use funnelgraph::auth::Role;
use serde_json::{json, Value};

fn golden() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/small-company.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The GraphQL input type of each mutation the golden file uses.
fn input_type(field: &str) -> Option<&'static str> {
    Some(match field {
        "upsertUser" => "UserInput",
        "upsertCampaign" => "CampaignInput",
        "recordCampaignCost" => "CampaignCostInput",
        "upsertLead" => "LeadInput",
        "recordTouchpoint" => "TouchpointInput",
        "transitionLead" => "TransitionInput",
        "upsertOpportunity" => "OpportunityInput",
        "closeOpportunity" => "CloseOpportunityInput",
        "recordRevenue" => "RevenueInput",
        "upsertCompensationPlan" => "CompensationPlanInput",
        "assignCompensationPlan" => "PlanAssignmentInput",
        _ => return None,
    })
}

fn apply_all(app: &TestApp, golden: &Value) -> usize {
    let mut applied = 0;
    for m in golden["mutations"].as_array().unwrap() {
        let field = m["field"].as_str().unwrap();
        let Some(ty) = input_type(field) else {
            continue;
        };
        let role: Role = m["role"].as_str().unwrap().parse().unwrap();
        let token = app.token(&format!("golden-{}", role.as_str().to_lowercase()), role);
        let query = format!("mutation($i: {ty}!) {{ {field}(input: $i) {{ __typename }} }}");
        let v = app.gql_with(&token, &query, json!({ "i": m["input"] }));
        assert!(v.get("errors").is_none(), "{field} {}: {v}", m["input"]);
        applied += 1;
    }
    applied
}

/// Everything the API says about the company, for before/after comparisons.
fn snapshot(app: &TestApp) -> Value {
    let mut leads = Vec::new();
    let mut after = Value::Null;
    loop {
        let v = app.ok(
            "query($a: String) { leads(first: 500, after: $a) { pageInfo { hasNextPage endCursor } nodes { externalId email fullName company title stage score createdAt owner { externalId } attributes { key value } touchpoints { externalId kind occurredAt campaign { externalId } } stageHistory { from to occurredAt actor reason } } } }",
            json!({ "a": after }),
        );
        leads.extend(v["leads"]["nodes"].as_array().unwrap().iter().cloned());
        if !v["leads"]["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = v["leads"]["pageInfo"]["endCursor"].clone();
    }
    let rest = app.ok(
        "{ campaigns(first: 500) { nodes { externalId name channel owner { externalId } cost { amount } budget { amount } } } opportunities(first: 500) { nodes { externalId status amount { amount } createdAt closedAt owner { externalId } contacts { externalId } revenue { externalId amount { amount } bookedOn } } } }",
        json!({}),
    );
    json!({ "leads": leads, "rest": rest })
}

fn close_enough(got: &Value, want: &Value) -> bool {
    match (got.as_f64(), want.as_f64()) {
        (Some(g), Some(w)) => (g - w).abs() <= 1e-9 * w.abs().max(1.0),
        _ => got == want,
    }
}

/// Compares one report with the golden answer; returns what differs.
fn attribution_mismatches(app: &TestApp, expected: &Value) -> Vec<String> {
    let query = "query($m: AttributionModel!, $p: PeriodInput!, $s: LeadStage, $g: AttributionGrouping) {
        attribution(model: $m, period: $p, stage: $s, groupBy: $g) {
            rows { key conversions revenue { amount } }
            totalConversions totalRevenue { amount } unattributedConversions unattributedRevenue { amount }
            removalEffects { campaign { externalId } removalEffect share } } }";
    let v = app.ok(
        query,
        json!({ "m": expected["model"], "p": expected["period"], "s": expected["stage"], "g": expected["groupBy"] }),
    );
    let got = &v["attribution"];
    let label = format!(
        "{} {} {} {}",
        expected["model"], expected["stage"], expected["groupBy"], expected["period"]["from"]
    );
    let mut out = Vec::new();
    let got_rows: BTreeMap<String, (Value, Value)> = got["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                (r["conversions"].clone(), r["revenue"]["amount"].clone()),
            )
        })
        .collect();
    let want_rows: BTreeMap<String, (Value, Value)> = expected["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                (r["conversions"].clone(), r["revenue"].clone()),
            )
        })
        .collect();
    for (key, (wc, wr)) in &want_rows {
        match got_rows.get(key) {
            None => out.push(format!("{label}: row {key} missing")),
            Some((gc, gr)) => {
                if !close_enough(gc, wc) {
                    out.push(format!("{label}: {key} conversions {gc} != {wc}"));
                }
                if gr != wr {
                    out.push(format!("{label}: {key} revenue {gr} != {wr}"));
                }
            }
        }
    }
    for key in got_rows.keys().filter(|k| !want_rows.contains_key(*k)) {
        out.push(format!("{label}: extra row {key} {:?}", got_rows[key]));
    }
    for (g, w) in [
        (&got["totalConversions"], &expected["totalConversions"]),
        (
            &got["unattributedConversions"],
            &expected["unattributedConversions"],
        ),
        (&got["totalRevenue"]["amount"], &expected["totalRevenue"]),
        (
            &got["unattributedRevenue"]["amount"],
            &expected["unattributedRevenue"],
        ),
    ] {
        if !close_enough(g, w) {
            out.push(format!("{label}: total {g} != {w}"));
        }
    }
    if let Some(effects) = expected.get("removalEffects").and_then(Value::as_object) {
        let got_effects: BTreeMap<String, Value> = got["removalEffects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["campaign"]["externalId"].as_str().unwrap().to_string(),
                    e["removalEffect"].clone(),
                )
            })
            .collect();
        for (c, w) in effects {
            match got_effects.get(c) {
                Some(g) if close_enough(g, w) => {}
                other => out.push(format!("{label}: removal effect {c} {other:?} != {w}")),
            }
        }
    }
    out
}

both_databases! {
    fn the_golden_company_ingests_and_a_replay_changes_nothing(app) {
        let golden = golden();
        let applied = apply_all(app, &golden);
        assert_eq!(applied, 447);
        let first = snapshot(app);
        assert_eq!(first["leads"].as_array().unwrap().len(), 60);
        assert_eq!(first["rest"]["campaigns"]["nodes"].as_array().unwrap().len(), 5);
        let opportunities = first["rest"]["opportunities"]["nodes"].as_array().unwrap();
        assert_eq!(opportunities.len(), 18);
        let won = opportunities.iter().filter(|o| o["status"] == "WON").count();
        let revenue: usize = opportunities.iter().map(|o| o["revenue"].as_array().unwrap().len()).sum();
        assert_eq!(revenue, 14);
        assert!(won > 0);
        let touchpoints: usize = first["leads"].as_array().unwrap().iter().map(|l| l["touchpoints"].as_array().unwrap().len()).sum();
        assert_eq!(touchpoints, 201);
        apply_all(app, &golden);
        assert_eq!(snapshot(app), first, "replaying the whole ingest changed something");
    }

    fn the_recorded_stages_agree_with_the_golden_funnel(app) {
        let golden = golden();
        apply_all(app, &golden);
        let snapshot = snapshot(app);
        for expected in golden["expected"]["funnel"].as_array().unwrap() {
            let from = expected["period"]["from"].as_str().unwrap();
            let to = expected["period"]["to"].as_str().unwrap();
            let cohort: Vec<&Value> = snapshot["leads"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| {
                    let day = &l["createdAt"].as_str().unwrap()[..10];
                    from <= day && day < to
                })
                .collect();
            assert_eq!(cohort.len() as u64, expected["cohortSize"].as_u64().unwrap());
            let funnel = ["INQUIRY", "MQL", "SAL", "SQL", "OPPORTUNITY", "WON"];
            let rank = |s: &str| match s {
                "LOST" => Some(4),
                other => funnel.iter().position(|f| *f == other),
            };
            let mut entered: BTreeMap<usize, u64> = BTreeMap::new();
            let (mut recycled, mut disqualified, mut lost) = (0, 0, 0);
            for lead in &cohort {
                let tos: HashSet<&str> = lead["stageHistory"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap()).collect();
                let best = tos.iter().filter_map(|s| rank(s)).max().unwrap_or(0);
                for r in 0..=best {
                    *entered.entry(r).or_default() += 1;
                }
                recycled += u64::from(tos.contains("RECYCLED"));
                disqualified += u64::from(tos.contains("DISQUALIFIED"));
                lost += u64::from(tos.contains("LOST"));
            }
            for (r, stage) in expected["stages"].as_array().unwrap().iter().enumerate() {
                assert_eq!(
                    entered.get(&r).copied().unwrap_or(0),
                    stage["entered"].as_u64().unwrap(),
                    "{} entered in {from}..{to}",
                    stage["stage"]
                );
            }
            assert_eq!(recycled, expected["recycled"].as_u64().unwrap());
            assert_eq!(disqualified, expected["disqualified"].as_u64().unwrap());
            assert_eq!(lost, expected["lost"].as_u64().unwrap());
        }
    }

    fn every_golden_attribution_report_matches(app) {
        let golden = golden();
        apply_all(app, &golden);
        let mut mismatches = Vec::new();
        for expected in golden["expected"]["attribution"].as_array().unwrap() {
            mismatches.extend(attribution_mismatches(app, expected));
        }
        assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    }

    fn golden_campaign_roi_matches(app) {
        let golden = golden();
        apply_all(app, &golden);
        let mut mismatches = Vec::new();
        for expected in golden["expected"]["campaignRoi"].as_array().unwrap() {
            let v = app.ok(
                "query($m: AttributionModel!, $p: PeriodInput!) { campaignRoi(model: $m, period: $p) {
                    campaign { externalId } cost { amount } attributedRevenue { amount } attributedPipeline { amount }
                    roi roas inquiries mqls sals sqls opportunities wins } }",
                json!({ "m": expected["model"], "p": expected["period"] }),
            );
            let rows = v["campaignRoi"].as_array().unwrap();
            for want in expected["rows"].as_array().unwrap() {
                let Some(got) = rows.iter().find(|r| r["campaign"]["externalId"] == want["campaign"]) else {
                    mismatches.push(format!("{} missing", want["campaign"]));
                    continue;
                };
                for field in ["roi", "roas", "inquiries", "mqls", "sals", "sqls", "opportunities", "wins"] {
                    if !close_enough(&got[field], &want[field]) {
                        mismatches.push(format!("{} {} {}: {} != {}", expected["model"], want["campaign"], field, got[field], want[field]));
                    }
                }
                for (field, key) in [("cost", "cost"), ("attributedRevenue", "attributedRevenue"), ("attributedPipeline", "attributedPipeline")] {
                    if got[field]["amount"] != want[key] {
                        mismatches.push(format!("{} {} {}: {} != {}", expected["model"], want["campaign"], field, got[field]["amount"], want[key]));
                    }
                }
            }
        }
        assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    }

    fn golden_compensation_statements_match(app) {
        let golden = golden();
        apply_all(app, &golden);
        let mut mismatches = Vec::new();
        for expected in golden["expected"]["compensationStatements"].as_array().unwrap() {
            let v = app.ok(
                "query($u: String!, $p: PeriodInput!) { compensationStatement(userExternalId: $u, period: $p) {
                    status attributedRevenue { amount } qualifiedLeads total { amount }
                    lines { kind campaign { externalId } opportunity { externalId } amount { amount } } } }",
                json!({ "u": expected["userExternalId"], "p": expected["period"] }),
            );
            let got = &v["compensationStatement"];
            let label = format!("{} {}", expected["userExternalId"], expected["period"]["from"]);
            if got["attributedRevenue"]["amount"] != expected["attributedRevenue"] {
                mismatches.push(format!("{label}: attributedRevenue {} != {}", got["attributedRevenue"]["amount"], expected["attributedRevenue"]));
            }
            if !close_enough(&got["qualifiedLeads"], &expected["qualifiedLeads"]) {
                mismatches.push(format!("{label}: qualifiedLeads {} != {}", got["qualifiedLeads"], expected["qualifiedLeads"]));
            }
            if got["total"]["amount"] != expected["total"] {
                mismatches.push(format!("{label}: total {} != {}", got["total"]["amount"], expected["total"]));
            }
            let got_lines: Vec<Value> = got["lines"].as_array().unwrap().iter().map(|l| json!({
                "kind": l["kind"], "campaign": l["campaign"]["externalId"], "opportunity": l["opportunity"]["externalId"], "amount": l["amount"]["amount"]
            })).collect();
            let want_lines: Vec<Value> = expected["lines"].as_array().unwrap().iter().map(|l| json!({
                "kind": l["kind"], "campaign": l.get("campaign").cloned().unwrap_or(Value::Null), "opportunity": l.get("opportunity").cloned().unwrap_or(Value::Null), "amount": l["amount"]
            })).collect();
            if got_lines != want_lines {
                mismatches.push(format!("{label}: lines\n  got  {got_lines:?}\n  want {want_lines:?}"));
            }
        }
        assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    }

    fn golden_funnels_match(app) {
        let golden = golden();
        apply_all(app, &golden);
        let mut mismatches = Vec::new();
        for expected in golden["expected"]["funnel"].as_array().unwrap() {
            let v = app.ok(
                "query($p: PeriodInput!) { funnel(period: $p) { cohortSize recycled disqualified lost
                    stages { stage entered convertedToNext conversionRate medianDaysToNext }
                    marketingTime { count medianDays p90Days meanDays } salesCycle { count medianDays p90Days meanDays }
                    handoffTime { count medianDays p90Days meanDays } } }",
                json!({ "p": expected["period"] }),
            );
            let got = &v["funnel"];
            let label = expected["period"]["from"].to_string();
            for field in ["cohortSize", "recycled", "disqualified", "lost"] {
                if got[field] != expected[field] {
                    mismatches.push(format!("{label} {field}: {} != {}", got[field], expected[field]));
                }
            }
            let (got_stages, want_stages) = (got["stages"].as_array().unwrap(), expected["stages"].as_array().unwrap());
            if got_stages.len() != want_stages.len() {
                mismatches.push(format!("{label} stages: {} != {}", got_stages.len(), want_stages.len()));
            }
            for (g, w) in got_stages.iter().zip(want_stages) {
                for field in ["stage", "entered", "convertedToNext", "conversionRate", "medianDaysToNext"] {
                    if !close_enough(&g[field], &w[field]) {
                        mismatches.push(format!("{label} {} {field}: {} != {}", w["stage"], g[field], w[field]));
                    }
                }
            }
            for timeframe in ["marketingTime", "salesCycle", "handoffTime"] {
                for (mine, theirs) in [("count", "count"), ("medianDays", "median"), ("p90Days", "p90"), ("meanDays", "mean")] {
                    if !close_enough(&got[timeframe][mine], &expected[timeframe][theirs]) {
                        mismatches.push(format!("{label} {timeframe}.{mine}: {} != {}", got[timeframe][mine], expected[timeframe][theirs]));
                    }
                }
            }
        }
        assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    }

    fn golden_leakage_matches(app) {
        let golden = golden();
        apply_all(app, &golden);
        let mut mismatches = Vec::new();
        for expected in golden["expected"]["leakage"].as_array().unwrap() {
            let v = app.ok(
                "query($p: PeriodInput!, $s: Int, $a: DateTime) { leakage(period: $p, slaHours: $s, asOf: $a) {
                    slaHours asOf mqls decidedWithinSla decidedLate undecided leaked leakageRate recycledBySales
                    disqualifiedBySales wastedSpend { amount } leakedLeads(first: 500) { totalCount nodes { externalId } } } }",
                json!({ "p": expected["period"], "s": expected["slaHours"], "a": expected["asOf"] }),
            );
            let got = &v["leakage"];
            let label = expected["period"]["from"].to_string();
            for field in ["slaHours", "asOf", "mqls", "decidedWithinSla", "decidedLate", "undecided", "leaked", "leakageRate", "recycledBySales", "disqualifiedBySales"] {
                if !close_enough(&got[field], &expected[field]) {
                    mismatches.push(format!("{label} {field}: {} != {}", got[field], expected[field]));
                }
            }
            if got["wastedSpend"]["amount"] != expected["wastedSpend"] {
                mismatches.push(format!("{label} wastedSpend: {} != {}", got["wastedSpend"]["amount"], expected["wastedSpend"]));
            }
            let leads: Vec<Value> = got["leakedLeads"]["nodes"].as_array().unwrap().iter().map(|n| n["externalId"].clone()).collect();
            if json!(leads) != expected["leakedLeads"] {
                mismatches.push(format!("{label} leakedLeads: {leads:?} != {}", expected["leakedLeads"]));
            }
        }
        assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    }
}
