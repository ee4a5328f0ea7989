//! The journey index (issue 14): kept current by the change log, it must equal one rebuilt
//! from the database after any sequence of writes, every report's facts must equal the ones
//! read from the database, a write must show in the next report (read-your-writes), and a
//! second server instance must see it too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::NaiveDate;
use common::*;
use funnelgraph::domain::account::Mapping;
use funnelgraph::domain::attribution::{Model, Params, MODELS};
use funnelgraph::domain::markov::{removal_effects, ChainCounts};
use funnelgraph::domain::period::Period;
use funnelgraph::domain::report::{Buckets, CampaignInfo, Grouping, Rule, Tally};
use funnelgraph::domain::stage::LeadStage;
use funnelgraph::service::index::JourneyIndex;
use funnelgraph::service::{attribution, funnel};
use serde_json::{json, Value};

/// A small deterministic generator (xorshift64*), so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
    fn instant(&mut self) -> String {
        format!(
            "2026-{:02}-{:02}T{:02}:00:00Z",
            1 + self.below(6),
            1 + self.below(28),
            self.below(24)
        )
    }
    fn day(&mut self) -> String {
        format!("2026-{:02}-{:02}", 1 + self.below(6), 1 + self.below(28))
    }
}

const LEADS: [&str; 8] = ["L0", "L1", "L2", "L3", "L4", "L5", "L6", "L7"];
const CAMPAIGNS: [&str; 4] = ["C0", "C1", "C2", "C3"];
const TOUCHES: [&str; 24] = [
    "T0", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "T13", "T14",
    "T15", "T16", "T17", "T18", "T19", "T20", "T21", "T22", "T23",
];
const DEALS: [&str; 4] = ["D0", "D1", "D2", "D3"];
const REVENUE: [&str; 6] = ["R0", "R1", "R2", "R3", "R4", "R5"];
const STAGES: [&str; 8] = [
    "MQL",
    "SAL",
    "SQL",
    "OPPORTUNITY",
    "WON",
    "LOST",
    "RECYCLED",
    "DISQUALIFIED",
];

/// One random write of some kind; it may be refused (a move the lifecycle forbids), which
/// must change nothing.
fn random_write(app: &TestApp, rng: &mut Rng) {
    let admin = |query: &str, input: Value| {
        let v = app.admin(query, json!({ "i": input }));
        if std::env::var("LIVE_DEBUG").is_ok() {
            eprintln!("{query} -> {v}");
        }
    };
    match rng.below(15) {
        // Accounts: a domain taken, changed or dropped matches leads again; leads and deals
        // join accounts by domain or by name.
        12 => admin(
            "mutation($i: AccountInput!) { upsertAccount(input: $i) { id } }",
            json!({ "externalId": rng.pick(&["A0", "A1"]), "name": "Account", "domain": rng.pick(&["a.example", "b.example", "c.example"]) }),
        ),
        13 => {
            let mut input = json!({ "externalId": rng.pick(&LEADS), "createdAt": rng.instant(), "email": format!("x@{}", rng.pick(&["a.example", "b.example", "gmail.com"])) });
            if rng.below(3) == 0 {
                input["accountExternalId"] = json!(rng.pick(&["A0", "A1"]));
            }
            admin(
                "mutation($i: LeadInput!) { upsertLead(input: $i) { id } }",
                input,
            )
        }
        14 => admin(
            "mutation($i: OpportunityInput!) { upsertOpportunity(input: $i) { id } }",
            json!({ "externalId": rng.pick(&DEALS), "name": "Deal", "primaryContactExternalId": rng.pick(&LEADS), "accountExternalId": rng.pick(&["A0", "A1"]), "amount": { "amount": format!("{}.{:02}", rng.below(5000), rng.below(100)), "currency": "USD" }, "createdAt": rng.instant() }),
        ),
        0 => admin(
            "mutation($i: LeadInput!) { upsertLead(input: $i) { id } }",
            json!({ "externalId": rng.pick(&LEADS), "createdAt": rng.instant(), "title": rng.pick(&["CTO", "Intern"]) }),
        ),
        // A touch recorded again under its externalId moves to another lead or campaign.
        1 | 2 => admin(
            "mutation($i: TouchpointInput!) { recordTouchpoint(input: $i) { id } }",
            json!({ "externalId": rng.pick(&TOUCHES), "leadExternalId": rng.pick(&LEADS), "campaignExternalId": rng.pick(&CAMPAIGNS), "kind": rng.pick(&["webinar", "email_click"]), "occurredAt": rng.instant() }),
        ),
        3 | 4 => admin(
            "mutation($i: TransitionInput!) { transitionLead(input: $i) { stage } }",
            json!({ "leadExternalId": rng.pick(&LEADS), "to": rng.pick(&STAGES), "occurredAt": rng.instant() }),
        ),
        // Contacts change when a deal is upserted again.
        5 => {
            let contacts: Vec<&str> = (0..rng.below(3)).map(|_| rng.pick(&LEADS)).collect();
            admin(
                "mutation($i: OpportunityInput!) { upsertOpportunity(input: $i) { id } }",
                json!({ "externalId": rng.pick(&DEALS), "name": "Deal", "primaryContactExternalId": rng.pick(&LEADS), "contactExternalIds": contacts, "amount": { "amount": format!("{}.{:02}", rng.below(5000), rng.below(100)), "currency": "USD" }, "createdAt": rng.instant() }),
            )
        }
        6 => admin(
            "mutation($i: CloseOpportunityInput!) { closeOpportunity(input: $i) { status } }",
            json!({ "externalId": rng.pick(&DEALS), "won": rng.below(3) > 0, "closedAt": rng.instant() }),
        ),
        // Refunds are negative revenue; a revenue event upserted again may move deals.
        7 | 10 | 11 => {
            let sign = if rng.below(4) == 0 { "-" } else { "" };
            admin(
                "mutation($i: RevenueInput!) { recordRevenue(input: $i) { id } }",
                json!({ "externalId": rng.pick(&REVENUE), "opportunityExternalId": rng.pick(&DEALS), "amount": { "amount": format!("{sign}{}.{:02}", rng.below(900), rng.below(100)), "currency": "USD" }, "bookedOn": rng.day() }),
            )
        }
        // Costs move between campaigns under their externalId.
        8 => admin(
            "mutation($i: CampaignCostInput!) { recordCampaignCost(input: $i) { id } }",
            json!({ "externalId": rng.pick(&["K0", "K1", "K2"]), "campaignExternalId": rng.pick(&CAMPAIGNS), "amount": { "amount": format!("{}.00", rng.below(500)), "currency": "USD" }, "incurredOn": rng.day() }),
        ),
        // Re-scoring every lead may promote some to MQL.
        _ => {
            admin(
                "mutation($i: ScoringRuleInput!) { upsertScoringRule(input: $i) { id } }",
                json!({ "externalId": rng.pick(&["S0", "S1"]), "name": "Rule", "kind": "ATTRIBUTE", "field": "title", "operator": "EQUALS", "value": rng.pick(&["CTO", "Intern"]), "points": 10 + rng.below(60) }),
            );
            app.admin(
                "mutation($p: Int!) { setMqlThreshold(points: $p) }",
                json!({ "p": 20 + rng.below(60) }),
            );
        }
    }
}

fn period(from: (i32, u32), to: (i32, u32)) -> Period {
    Period::new(
        NaiveDate::from_ymd_opt(from.0, from.1, 1).unwrap(),
        NaiveDate::from_ymd_opt(to.0, to.1, 1).unwrap(),
    )
    .unwrap()
}

/// Tallies made at an earlier check, by (period, stage, model), MARKOV chains' counts, by
/// (period, stage), and the funnel's cohorts and leakage's inputs, by period, with the version
/// they are of.
#[derive(Default)]
struct Kept {
    tallies: std::collections::HashMap<(usize, LeadStage, Model, bool), (i64, Tally)>,
    /// Tallies under an account mapping or by account, by (period, stage, model, shape).
    mapped: std::collections::HashMap<(usize, LeadStage, Model, usize), (i64, Tally)>,
    chains: std::collections::HashMap<(usize, LeadStage), (i64, ChainCounts)>,
    cohorts: std::collections::HashMap<usize, (i64, funnel::CohortInputs)>,
    mqls: std::collections::HashMap<usize, (i64, funnel::MqlInputs)>,
}

/// The index after catching up equals one rebuilt from the database; every stage's tally made
/// from it, and every tally kept from the last check brought forward by the changes since,
/// give the report the database's facts give; MARKOV paths equal the database's.
fn assert_index_agrees(app: &TestApp, step: usize, kept: &mut Kept) {
    let mut conn = app.db.get().unwrap();
    let index = &app.reports.index;
    assert!(index.is_ready(), "the index loaded");
    index.catch_up(&mut conn).unwrap();
    let rebuilt = JourneyIndex::rebuilt(&mut conn).unwrap();
    index
        .read(|j| assert_eq!(j, &rebuilt, "index vs database after write {step}"))
        .unwrap();
    let no_effects = std::collections::HashMap::new();
    // Every campaign a row of its own (by id), so a credit on the wrong campaign shows.
    let infos: std::collections::HashMap<i64, CampaignInfo> = (0..1_000)
        .map(|id| {
            let info = CampaignInfo {
                external_id: format!("{id:04}"),
                channel: String::new(),
            };
            (id, info)
        })
        .collect();
    let report = |t: &Tally, by_month: bool| {
        let grouping = if by_month {
            Grouping::Month
        } else {
            Grouping::Campaign
        };
        t.report(grouping, &infos, |_| true).unwrap()
    };
    for (n, (p, lookback)) in [
        (period((2026, 1), (2026, 7)), 365),
        (period((2026, 3), (2026, 5)), 30),
    ]
    .into_iter()
    .enumerate()
    {
        // The funnel's cohort and leakage's MQL moves with their decisions.
        // Read whole from the index, and brought forward from the last check.
        let cohort_db = funnel::load_cohort(&mut conn, p).unwrap();
        let (version, cohort_index) = index
            .read(|j| (j.journal.version, funnel::indexed_cohort(j, p)))
            .unwrap();
        assert_eq!(cohort_index, cohort_db, "cohort after write {step}");
        if let Some((since, mut cohort)) = kept.cohorts.remove(&n) {
            let advanced = index
                .read(|j| funnel::advance_cohort(&mut cohort, j, p, since))
                .unwrap();
            assert!(advanced, "the journal reaches back to the last check");
            assert_eq!(
                cohort, cohort_db,
                "cohort brought forward from {since} after write {step}"
            );
        }
        kept.cohorts.insert(n, (version, cohort_index));
        let mqls_db = funnel::load_mqls(&mut conn, p).unwrap();
        let mqls_index = funnel::indexed_mqls(index, &mut conn, p).unwrap();
        assert_eq!(mqls_index, mqls_db, "leakage inputs after write {step}");
        if let Some((since, mut mqls)) = kept.mqls.remove(&n) {
            let advanced = index
                .read(|j| funnel::advance_mqls(&mut mqls, j, p, since))
                .unwrap();
            assert!(advanced, "the journal reaches back to the last check");
            funnel::with_costs(&mut mqls, index, &mut conn).unwrap();
            assert_eq!(
                mqls, mqls_db,
                "leakage inputs brought forward from {since} after write {step}"
            );
        }
        kept.mqls.insert(n, (version, mqls_index));
        for stage in [
            LeadStage::Inquiry,
            LeadStage::Mql,
            LeadStage::Sal,
            LeadStage::Sql,
            LeadStage::Opportunity,
            LeadStage::Won,
        ] {
            let from_db = attribution::load_facts(&mut conn, stage, p, lookback).unwrap();
            let heuristic = MODELS.into_iter().filter(|m| m.markov_order().is_none());
            for (model, by_month) in heuristic.flat_map(|m| [(m, false), (m, true)]) {
                let params = Params::default();
                let buckets = if by_month {
                    Buckets::Month
                } else {
                    Buckets::None
                };
                let expected = report(
                    &Tally::of_facts(&from_db, model, params, buckets).unwrap(),
                    by_month,
                );
                let ask = attribution::Ask {
                    rule: Rule {
                        model,
                        params,
                        removal_effects: &no_effects,
                    },
                    stage,
                    period: p,
                    lookback,
                    mapping: Mapping::ContactRoles,
                };
                let (version, fresh) = index
                    .read(|j| {
                        (
                            j.journal.version,
                            attribution::indexed_tally(j, &ask, buckets),
                        )
                    })
                    .unwrap();
                let fresh = fresh.unwrap();
                assert_eq!(
                    report(&fresh, by_month),
                    expected,
                    "{stage} {model:?} tally after write {step}"
                );
                let key = (n, stage, model, by_month);
                if let Some((since, mut tally)) = kept.tallies.remove(&key) {
                    let advanced = index
                        .read(|j| attribution::advance_tally(&mut tally, j, &ask, since))
                        .unwrap()
                        .unwrap();
                    assert!(advanced, "the journal reaches back to the last check");
                    assert_eq!(
                        report(&tally, by_month),
                        expected,
                        "{stage} {model:?} tally brought forward from version {since} after write {step}"
                    );
                }
                kept.tallies.insert(key, (version, fresh));
            }
            // Under the account mappings and by account: the index's tally equals one made
            // from the rebuilt journeys, and one brought forward equals it too.
            let shapes = [
                (Buckets::None, Mapping::Account),
                (Buckets::None, Mapping::PrimaryContact),
                (Buckets::Account, Mapping::ContactRoles),
                (Buckets::Account, Mapping::Account),
            ];
            for model in [Model::Linear, Model::WShaped] {
                for (shape, (by, mapping)) in shapes.into_iter().enumerate() {
                    let ask = attribution::Ask {
                        rule: Rule {
                            model,
                            params: Params::default(),
                            removal_effects: &no_effects,
                        },
                        stage,
                        period: p,
                        lookback,
                        mapping,
                    };
                    let keyed = |t: &Tally| {
                        let grouping = if by == Buckets::Account {
                            Grouping::Account
                        } else {
                            Grouping::Campaign
                        };
                        t.report_keyed(grouping, &infos, |_| true, &|a| {
                            Some(format!("account {a}"))
                        })
                        .unwrap()
                    };
                    let expected = keyed(&attribution::indexed_tally(&rebuilt, &ask, by).unwrap());
                    let (version, fresh) = index
                        .read(|j| (j.journal.version, attribution::indexed_tally(j, &ask, by)))
                        .unwrap();
                    let fresh = fresh.unwrap();
                    assert_eq!(
                        keyed(&fresh),
                        expected,
                        "{stage} {model:?} {mapping:?} {by:?} after write {step}"
                    );
                    let key = (n, stage, model, shape);
                    if let Some((since, mut tally)) = kept.mapped.remove(&key) {
                        let advanced = index
                            .read(|j| attribution::advance_tally(&mut tally, j, &ask, since))
                            .unwrap()
                            .unwrap();
                        assert!(advanced, "the journal reaches back to the last check");
                        assert_eq!(
                            keyed(&tally),
                            expected,
                            "{stage} {model:?} {mapping:?} {by:?} brought forward from {since} after write {step}"
                        );
                    }
                    kept.mapped.insert(key, (version, fresh));
                }
            }
            let paths_db = attribution::markov_paths(&mut conn, stage, p, lookback).unwrap();
            let paths_index = index
                .read(|j| attribution::indexed_markov_paths(j, stage, p, lookback))
                .unwrap();
            assert_eq!(
                paths_index, paths_db,
                "{stage} MARKOV paths after write {step}"
            );
            // The chain's counts, read from the index or brought forward, give the effects the
            // database's paths give.
            let expected = removal_effects(&paths_db);
            let (version, fresh) = index
                .read(|j| {
                    (
                        j.journal.version,
                        attribution::indexed_chain(j, stage, p, lookback, 1),
                    )
                })
                .unwrap();
            assert_eq!(
                fresh.removal_effects(),
                expected,
                "{stage} MARKOV chain after write {step}"
            );
            if let Some((since, mut counts)) = kept.chains.remove(&(n, stage)) {
                let advanced = index
                    .read(|j| attribution::advance_chain(&mut counts, j, stage, p, lookback, since))
                    .unwrap();
                assert!(advanced, "the journal reaches back to the last check");
                assert_eq!(
                    counts.removal_effects(),
                    expected,
                    "{stage} MARKOV chain brought forward from version {since} after write {step}"
                );
            }
            kept.chains.insert((n, stage), (version, fresh));
        }
    }
}

both_databases! {
    fn the_index_kept_by_the_change_log_equals_the_database_after_any_writes(app) {
        for c in CAMPAIGNS {
            campaign(app, c, if c == "C0" { "email" } else { "events" }, None);
        }
        let mut kept = Kept::default();
        for seed in [7u64, 1_234_567, 99_991] {
            let mut rng = Rng(seed);
            for l in LEADS {
                lead(app, l, &rng.instant());
            }
            for (i, d) in DEALS.iter().enumerate() {
                opportunity(app, d, LEADS[i], &[LEADS[i + 1], LEADS[i + 2]], None, "100.00", &rng.instant());
            }
            assert_index_agrees(app, 0, &mut kept);
            for step in 0..60 {
                random_write(app, &mut rng);
                if step % 15 == 14 {
                    assert_index_agrees(app, step, &mut kept);
                }
            }
        }
        // An account by domain and a deal naming it, then the last comparison.
        app.admin("mutation { upsertAccount(input: { externalId: \"A9\", name: \"Nine\", domain: \"nine.example\" }) { id } }", json!({}));
        app.admin("mutation($i: LeadInput!) { upsertLead(input: $i) { id } }", json!({ "i": { "externalId": "L0", "email": "x@nine.example", "createdAt": "2026-01-02T00:00:00Z" } }));
        app.admin("mutation($i: OpportunityInput!) { upsertOpportunity(input: $i) { id } }", json!({ "i": { "externalId": "D0", "name": "Deal", "primaryContactExternalId": "L1", "accountExternalId": "A9", "amount": { "amount": "10.00", "currency": "USD" }, "createdAt": "2026-03-01T00:00:00Z" } }));
        assert_index_agrees(app, 180, &mut kept);
        // The sequences did write what the comparison is about.
        let mut conn = app.db.get().unwrap();
        let rebuilt = JourneyIndex::rebuilt(&mut conn).unwrap();
        assert!(rebuilt.leads.values().filter(|l| !l.touches.is_empty()).count() >= 4);
        assert!(rebuilt.leads.values().any(|l| l.reach[1].is_some()));
        assert!(rebuilt.leads.values().any(|l| l.account.is_some()), "some lead joined an account");
        assert!(rebuilt.deals.values().any(|d| d.row.account_id.is_some()), "some deal named an account");
        assert!(rebuilt.leads.values().any(|l| l.mqls.iter().any(|m| m.decision.is_some())), "some MQL was decided on");
        assert!(rebuilt.leads.values().any(|l| l.exits.lost || l.exits.recycled || l.exits.disqualified), "some lead left the funnel");
        let deals: Vec<(usize, usize, &str)> = rebuilt.deals.values().map(|d| (d.revenue.len(), d.contacts.len(), d.row.status.as_str())).collect();
        assert!(rebuilt.deals.values().any(|d| d.revenue.len() > 1), "{deals:?}");
    }

    fn every_write_shows_in_the_next_report(app) {
        const REPORT: &str = "query($s: LeadStage) { attribution(model: LINEAR, period: { from: \"2026-01-01\", to: \"2026-07-01\" }, stage: $s) {
            totalConversions totalRevenue { amount } rows { campaign { externalId } conversions revenue { amount } } } }";
        let report = |stage: &str| app.ok(REPORT, json!({ "s": stage }))["attribution"].clone();
        campaign(app, "C", "email", None);
        // Each family of writes, then at once the report that reads it.
        lead(app, "L", "2026-02-01T00:00:00Z");
        assert_eq!(report("INQUIRY")["totalConversions"], json!(1.0));
        touch(app, "T", "L", "C", "2026-01-20T00:00:00Z");
        assert_eq!(report("INQUIRY")["rows"][0]["campaign"]["externalId"], "C");
        const FUNNEL: &str = "{ funnel(period: { from: \"2026-01-01\", to: \"2026-07-01\" }) { cohortSize stages { stage entered } lost } }";
        assert_eq!(app.ok(FUNNEL, json!({}))["funnel"]["cohortSize"], 1);
        move_lead(app, "L", "MQL", "2026-02-02T00:00:00Z");
        assert_eq!(report("MQL")["totalConversions"], json!(1.0));
        assert_eq!(app.ok(FUNNEL, json!({}))["funnel"]["stages"][1]["entered"], 1);
        // Leakage sees the MQL at once, and the decision that follows it.
        const LEAKAGE: &str = "{ leakage(period: { from: \"2026-01-01\", to: \"2026-07-01\" }, slaHours: 24, asOf: \"2026-03-01T00:00:00Z\") {
            mqls leaked decidedWithinSla leakedLeads(first: 5) { totalCount nodes { externalId } } } }";
        let leak = app.ok(LEAKAGE, json!({}))["leakage"].clone();
        assert_eq!((leak["mqls"].clone(), leak["leaked"].clone()), (json!(1), json!(1)), "{leak}");
        assert_eq!(leak["leakedLeads"]["nodes"][0]["externalId"], "L");
        move_lead(app, "L", "SAL", "2026-02-02T12:00:00Z");
        let leak = app.ok(LEAKAGE, json!({}))["leakage"].clone();
        assert_eq!((leak["leaked"].clone(), leak["decidedWithinSla"].clone()), (json!(0), json!(1)), "{leak}");
        opportunity(app, "O", "L", &[], None, "500.00", "2026-02-03T00:00:00Z");
        assert_eq!(report("OPPORTUNITY")["totalRevenue"]["amount"], "500.00");
        close(app, "O", true, "2026-02-04T00:00:00Z");
        assert_eq!(report("WON")["totalConversions"], json!(1.0));
        revenue(app, "R", "O", "120.00", "2026-02-05");
        assert_eq!(report("WON")["totalRevenue"]["amount"], "120.00");
        revenue(app, "R2", "O", "-20.00", "2026-02-06");
        assert_eq!(report("WON")["totalRevenue"]["amount"], "100.00");
        // MARKOV too: its chain and credits follow the write (asked before it, then after).
        const MARKOV: &str = "{ attribution(model: MARKOV, period: { from: \"2026-01-01\", to: \"2026-07-01\" }, stage: WON) {
            totalRevenue { amount } rows { campaign { externalId } revenue { amount } } removalEffects { campaign { externalId } removalEffect } } }";
        let markov = app.ok(MARKOV, json!({}))["attribution"].clone();
        assert_eq!(markov["rows"][0]["revenue"]["amount"], "100.00", "{markov}");
        revenue(app, "R3", "O", "11.00", "2026-02-07");
        let markov = app.ok(MARKOV, json!({}))["attribution"].clone();
        assert_eq!(markov["totalRevenue"]["amount"], "111.00", "{markov}");
        assert_eq!(markov["rows"][0]["revenue"]["amount"], "111.00", "{markov}");
        assert_eq!(markov["removalEffects"][0]["campaign"]["externalId"], "C", "{markov}");
        // A touch moved to another lead leaves the first lead's journey.
        lead(app, "M", "2026-02-01T00:00:00Z");
        touch(app, "T", "M", "C", "2026-01-20T00:00:00Z");
        assert_eq!(report("WON")["rows"].as_array().unwrap().len(), 0);
        cost(app, "K", "C", "50.00", "2026-02-01");
        let roi = app.ok("{ campaignRoi(model: LINEAR, period: { from: \"2026-01-01\", to: \"2026-07-01\" }) { campaign { externalId } cost { amount } } }", json!({}));
        assert_eq!(roi["campaignRoi"][0]["cost"]["amount"], "50.00");
    }
}

/// Two real server processes on one PostgreSQL database: a write through one is in the
/// other's next report, and each answers `/ready` once its index is loaded.
#[test]
fn two_instances_on_one_postgres_see_each_others_writes() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let Ok(mut admin) = diesel::PgConnection::establish(&format!("{}/postgres", pg_base())) else {
        assert!(std::env::var("CI").is_err(), "PostgreSQL is required in CI");
        eprintln!("SKIPPED: PostgreSQL unreachable");
        return;
    };
    let name = format!("funnelgraph_two_{}", std::process::id());
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let url = format!("{}/{name}", pg_base());
    let spawn = || {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_funnelgraph"))
            .arg("serve")
            .env("FUNNELGRAPH_DATABASE_URL", &url)
            .env("FUNNELGRAPH_JWT_SECRET", SECRET)
            .env("FUNNELGRAPH_BIND", format!("127.0.0.1:{port}"))
            .env("FUNNELGRAPH_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let ready = ureq::get(format!("{base}/ready"))
                .call()
                .map(|r| r.status().as_u16() == 200)
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "instance never ready");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        (child, base)
    };
    let (mut a, base_a) = spawn();
    let (mut b, base_b) = spawn();
    let token = funnelgraph::auth::mint_hs256(
        SECRET.as_bytes(),
        "ops",
        funnelgraph::auth::Role::Admin,
        600,
        None,
        None,
    )
    .unwrap();
    let post = |base: &str, query: &str| -> Value {
        let mut resp = ureq::post(format!("{base}/graphql"))
            .header("Content-Type", "application/json")
            .header("Authorization", &format!("Bearer {token}"))
            .send(json!({ "query": query }).to_string())
            .unwrap();
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    };
    const INQUIRIES: &str = "{ attribution(model: LINEAR, stage: INQUIRY, period: { from: \"2026-01-01\", to: \"2026-07-01\" }) { totalConversions rows { campaign { externalId } conversions } } }";
    // B's index is loaded and has nothing.
    assert_eq!(
        post(&base_b, INQUIRIES)["data"]["attribution"]["totalConversions"],
        json!(0.0)
    );
    post(&base_a, "mutation { upsertCampaign(input: { externalId: \"C\", name: \"C\", channel: \"email\" }) { id } }");
    for i in 0..3 {
        post(&base_a, &format!("mutation {{ upsertLead(input: {{ externalId: \"L{i}\", createdAt: \"2026-02-0{}T00:00:00Z\" }}) {{ id }} }}", i + 1));
        post(&base_a, &format!("mutation {{ recordTouchpoint(input: {{ externalId: \"T{i}\", leadExternalId: \"L{i}\", campaignExternalId: \"C\", kind: \"web\", occurredAt: \"2026-01-15T00:00:00Z\" }}) {{ id }} }}"));
    }
    // Written through A, acknowledged: B's next report has it (well within a second).
    let started = std::time::Instant::now();
    let seen = post(&base_b, INQUIRIES);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(
        seen["data"]["attribution"]["totalConversions"],
        json!(3.0),
        "{seen}"
    );
    assert_eq!(
        seen["data"]["attribution"]["rows"][0]["conversions"],
        json!(3.0),
        "{seen}"
    );
    // And the other way round, with a touch moved to another campaign through B.
    post(&base_b, "mutation { upsertCampaign(input: { externalId: \"D\", name: \"D\", channel: \"events\" }) { id } }");
    post(&base_b, "mutation { recordTouchpoint(input: { externalId: \"T0\", leadExternalId: \"L0\", campaignExternalId: \"D\", kind: \"web\", occurredAt: \"2026-01-15T00:00:00Z\" }) { id } }");
    let seen = post(&base_a, INQUIRIES);
    let rows = seen["data"]["attribution"]["rows"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rows.len(), 2, "{seen}");
    for child in [&mut a, &mut b] {
        child.kill().ok();
        child.wait().ok();
    }
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
