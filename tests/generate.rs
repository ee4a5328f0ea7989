//! `funnelgraph generate` (issue 7): the synthetic company is complete, consistent with the
//! rules it was scored by, deterministic for a seed, analysed, and answers reports over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use funnelgraph::generate::{generate, Scale};
use serde_json::{json, Value};

const QUARTER: &str = r#"{ from: "2026-04-01", to: "2026-07-01" }"#;

/// What a user would compare between two data sets: the WON attribution of a quarter, the
/// funnel of its cohort and the scores.
fn fingerprint(app: &TestApp) -> Value {
    let q = format!(
        "{{ attribution(model: LINEAR, stage: WON, period: {QUARTER}) {{ totalConversions totalRevenue {{ amount }} rows {{ key revenue {{ amount }} }} }}
           funnel(period: {QUARTER}) {{ cohortSize stages {{ stage entered }} }}
           leads(first: 5) {{ nodes {{ externalId stage score }} }} }}"
    );
    app.ok(&q, json!({}))
}

both_databases! {
    fn the_small_company_is_whole_scored_by_its_rules_and_answers_reports(app) {
        let summary = generate(&app.db, Scale::Small, 7, |_| {}).unwrap();
        assert_eq!((summary.campaigns, summary.leads, summary.plans, summary.rules), (20, 10_000, 3, 3));
        assert!((10_000..=90_000).contains(&summary.touchpoints), "{summary}");
        assert!(summary.opportunities > 500 && summary.won > 100 && summary.revenue_events > summary.won, "{summary}");
        // A second run refuses to mix two companies.
        let again = generate(&app.db, Scale::Small, 7, |_| {});
        assert!(again.is_err());

        // Every stored score is what the rules say: re-scoring every lead changes none of
        // them and moves no lead to MQL.
        let before = app.ok("{ leads(stage: MQL) { totalCount } }", json!({}));
        let mut conn = app.db.get().unwrap();
        let changed = funnelgraph::service::scoring::rescore_all(&mut conn).unwrap();
        drop(conn);
        assert_eq!(changed, 0);
        assert_eq!(app.ok("{ leads(stage: MQL) { totalCount } }", json!({})), before);
        let rules = app.ok("{ scoringRules { externalId kind touchKind points maxPoints } mqlThreshold }", json!({}));
        assert_eq!(rules["scoringRules"].as_array().unwrap().len(), 3);
        assert_eq!(rules["mqlThreshold"], 100);

        // Reports over HTTP hold real, consistent numbers.
        let f = fingerprint(app);
        let won = &f["attribution"];
        assert!(won["totalConversions"].as_f64().unwrap() > 0.0, "{f}");
        let cents = |v: &Value| (v.as_str().unwrap().parse::<f64>().unwrap() * 100.0).round() as i64;
        let parts: i64 = won["rows"].as_array().unwrap().iter().map(|r| cents(&r["revenue"]["amount"])).sum();
        assert!(parts <= cents(&won["totalRevenue"]["amount"]) && parts > 0, "rows add up within the total: {f}");
        let stages = f["funnel"]["stages"].as_array().unwrap();
        assert!(f["funnel"]["cohortSize"].as_i64().unwrap() > 1_000);
        let entered: Vec<i64> = stages.iter().map(|s| s["entered"].as_i64().unwrap()).collect();
        assert!(entered.windows(2).all(|w| w[0] >= w[1]), "the funnel narrows: {entered:?}");
        let statements = app.get_with_auth("/export/statements.csv?from=2026-04-01&to=2026-07-01", &app.token("fin", funnelgraph::auth::Role::Finance));
        assert_eq!(statements.0, 200);
        assert!(statements.1.lines().count() > 1, "marketers have statements");

        // The running server's journey index saw generate's 'reload' entry: reports read the
        // database meanwhile, and its background thread loads the company.
        let index = &app.reports.index;
        let waited = std::time::Instant::now();
        while !index.is_ready() && waited.elapsed() < std::time::Duration::from_secs(120) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let mut conn = app.db.get().unwrap();
        assert!(index.current(&mut conn).unwrap(), "the index reloaded");
        let rebuilt = funnelgraph::service::index::JourneyIndex::rebuilt(&mut conn).unwrap();
        assert_eq!(rebuilt.leads.len(), 10_000);
        assert!(index.equals(&rebuilt).unwrap(), "the reloaded index is the generated company");
        drop(conn);
        assert_eq!(fingerprint(app), f, "the same answers from the index as from the database");
    }

    fn the_same_seed_makes_the_same_company(app) {
        generate(&app.db, Scale::Small, 11, |_| {}).unwrap();
        let other = TestApp::sqlite();
        generate(&other.db, Scale::Small, 11, |_| {}).unwrap();
        assert_eq!(fingerprint(app), fingerprint(&other), "same seed, same answers, on either database");
        let third = TestApp::sqlite();
        generate(&third.db, Scale::Small, 12, |_| {}).unwrap();
        assert_ne!(fingerprint(app), fingerprint(&third), "another seed, another company");
    }
}
