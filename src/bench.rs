//! `funnelgraph bench`: times every report on the configured database, cold (facts read from
//! the database) and warm (facts shared from the cache), and prints p50/p99 per report.

use std::sync::Arc;
use std::time::Instant;

use crate::auth::{Caller, Role};
use crate::db::Db;
use crate::domain::attribution::MODELS;
use crate::domain::period::Period;
use crate::domain::report::Grouping;
use crate::domain::stage::LeadStage;
use crate::service::attribution::{self, ReportQuery};
use crate::service::cache::ReportCache;
use crate::service::{AppResult, Ctx};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

fn line(name: &str, mut warm: Vec<f64>) -> String {
    warm.sort_by(f64::total_cmp);
    format!(
        "{name:<34} warm p50 {:>8.1} ms   p99 {:>8.1} ms",
        percentile(&warm, 0.5),
        percentile(&warm, 0.99)
    )
}

fn cold_line(name: &str, started: Instant) -> String {
    format!(
        "{name:<34} cold {:>9.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    )
}

/// Runs the benchmark and returns its report, one line per report.
/// The report families `--only` can pick: attribution, roi, handoff (funnel and leakage),
/// statements. None picked: all.
pub const SECTIONS: [&str; 4] = ["attribution", "roi", "handoff", "statements"];

pub async fn run(
    db: &Db,
    currency: &str,
    period: Period,
    iterations: usize,
    only: &[String],
) -> AppResult<Vec<String>> {
    let wants = |section: &str| only.is_empty() || only.iter().any(|o| o == section);
    let caller = Caller {
        sub: "bench".into(),
        role: Role::Admin,
    };
    let mut out = vec![format!(
        "period {} .. {}, {} warm iterations, backend {:?}",
        period.from,
        period.to,
        iterations,
        db.backend()
    )];
    let stages = [
        LeadStage::Inquiry,
        LeadStage::Mql,
        LeadStage::Sal,
        LeadStage::Sql,
        LeadStage::Opportunity,
        LeadStage::Won,
    ];
    for stage in stages.into_iter().filter(|_| wants("attribution")) {
        // Cold: a fresh cache, so the stage's facts are read from the database once; every
        // model then shares them (a dashboard asking for all eight pays the read once).
        let ctx = Ctx::for_caller(
            db.clone(),
            caller.clone(),
            currency.into(),
            Arc::new(ReportCache::default()),
        )
        .await?;
        let first = ReportQuery {
            model: MODELS[0],
            stage,
            period,
            grouping: Grouping::Campaign,
            half_life_days: 7.0,
            lookback_days: 365,
            mapping: crate::domain::account::Mapping::ContactRoles,
            segment: None,
        };
        let t = Instant::now();
        attribution::report(&ctx, first.clone()).await?;
        let cold = t.elapsed().as_secs_f64() * 1000.0;
        out.push(format!(
            "{:<34} cold {cold:>9.1} ms  (reads the facts of the stage)",
            format!("attribution {}", stage.as_str())
        ));
        for model in MODELS {
            let query = ReportQuery {
                model,
                ..first.clone()
            };
            // The model's first run builds its report from the cached facts (MARKOV's also
            // solves the chain); repeats at the same data version reuse the built report.
            let t = Instant::now();
            attribution::report(&ctx, query.clone()).await?;
            let built = t.elapsed().as_secs_f64() * 1000.0;
            let mut warm = Vec::new();
            for _ in 0..iterations {
                let t = Instant::now();
                attribution::report(&ctx, query.clone()).await?;
                warm.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            out.push(format!(
                "{}   built {built:>8.1} ms",
                line(&format!("  {} {}", model.as_str(), stage.as_str()), warm)
            ));
        }
    }
    for model in [
        crate::domain::attribution::Model::WShaped,
        crate::domain::attribution::Model::Markov(1),
    ]
    .into_iter()
    .filter(|_| wants("roi"))
    {
        let ctx = Ctx::for_caller(
            db.clone(),
            caller.clone(),
            currency.into(),
            Arc::new(ReportCache::default()),
        )
        .await?;
        let t = Instant::now();
        attribution::campaign_roi(&ctx, model, period, None, Default::default()).await?;
        let cold = t.elapsed().as_secs_f64() * 1000.0;
        out.push(format!(
            "{:<34} cold {cold:>9.1} ms",
            format!("campaignRoi {}", model.as_str())
        ));
        let mut warm = Vec::new();
        for _ in 0..iterations {
            let t = Instant::now();
            attribution::campaign_roi(&ctx, model, period, None, Default::default()).await?;
            warm.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        out.push(line(&format!("  campaignRoi {}", model.as_str()), warm));
    }
    if wants("handoff") {
        handoff(db, currency, period, iterations, &caller, &mut out).await?;
    }
    if wants("statements") {
        statements(db, currency, period, iterations, &caller, &mut out).await?;
    }
    Ok(out)
}

/// Funnel and leakage, the hand-off reports.
async fn handoff(
    db: &Db,
    currency: &str,
    period: Period,
    iterations: usize,
    caller: &Caller,
    out: &mut Vec<String>,
) -> AppResult<()> {
    let ctx = Ctx::for_caller(
        db.clone(),
        caller.clone(),
        currency.into(),
        Arc::new(ReportCache::default()),
    )
    .await?;
    // Cold: the first run reads the period's cohort (or MQLs); warm runs share what it read.
    let t = Instant::now();
    crate::service::funnel::funnel(&ctx, period, None, None).await?;
    out.push(cold_line("funnel", t));
    let mut timed = Vec::new();
    for _ in 0..iterations.max(1) {
        let t = Instant::now();
        crate::service::funnel::funnel(&ctx, period, None, None).await?;
        timed.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.push(line("  funnel", timed));
    let as_of = Some(period.end());
    let t = Instant::now();
    crate::service::funnel::leakage(&ctx, period, 48, as_of).await?;
    out.push(cold_line("leakage", t));
    let mut timed = Vec::new();
    for _ in 0..iterations.max(1) {
        let t = Instant::now();
        crate::service::funnel::leakage(&ctx, period, 48, as_of).await?;
        timed.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.push(line("  leakage", timed));
    Ok(())
}

/// Finance's report: every marketer's statement for the period (attribution of their
/// campaigns under their plan's model, qualified leads, bonuses, cap, clawbacks).
async fn statements(
    db: &Db,
    currency: &str,
    period: Period,
    iterations: usize,
    caller: &Caller,
    out: &mut Vec<String>,
) -> AppResult<()> {
    let ctx = Ctx::for_caller(
        db.clone(),
        caller.clone(),
        currency.into(),
        Arc::new(ReportCache::default()),
    )
    .await?;
    let t = Instant::now();
    let statements = crate::service::compensation::statements(&ctx, period).await?;
    let cold = t.elapsed().as_secs_f64() * 1000.0;
    out.push(format!(
        "{:<34} cold {cold:>9.1} ms",
        format!("statements ({} marketers)", statements.len())
    ));
    let mut timed = Vec::new();
    for _ in 0..iterations.max(1) {
        let t = Instant::now();
        crate::service::compensation::statements(&ctx, period).await?;
        timed.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.push(line("  statements", timed));
    Ok(())
}

/// Times a scoring-rule change, which re-scores every lead in one pass. It writes: run it on
/// a throwaway data set.
pub async fn rescore(db: &Db, currency: &str) -> AppResult<String> {
    let caller = Caller {
        sub: "bench".into(),
        role: Role::Admin,
    };
    let ctx = Ctx::for_caller(
        db.clone(),
        caller,
        currency.into(),
        Arc::new(ReportCache::default()),
    )
    .await?;
    let t = Instant::now();
    crate::service::scoring::upsert_rule(
        &ctx,
        crate::service::scoring::RuleInput {
            external_id: format!("bench-{}", chrono::Utc::now().timestamp()),
            name: "bench: webinars".into(),
            kind: crate::domain::scoring::Kind::Behavior,
            field: None,
            operator: None,
            value: None,
            touch_kind: Some("webinar_attended".into()),
            points: 5,
            max_points: Some(20),
            active: true,
        },
    )
    .await?;
    Ok(format!(
        "rule change re-scoring every lead: {:.1} s",
        t.elapsed().as_secs_f64()
    ))
}
