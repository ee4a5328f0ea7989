//! Bulk import for the CRM sync (`POST /import`, `funnelgraph import FILE`): records in
//! batches, each batch one write transaction, a bad record rejecting nothing but itself.
//! Leads, touchpoints and moves take the set-based path (`batch`: the same checks and
//! decisions as their mutations, in memory, written in multi-row statements); the other
//! records, and any batch that path cannot write, go through their mutation's own use case
//! one by one (same validation, same role rules, same audit row, idempotent by externalId).

use diesel::Connection;
use serde::Serialize;

use super::{accounts, campaigns, leads, opportunities, users, AppError, AppResult, Ctx};
use crate::db::{AnyConnection, RetryableError};

/// Records per write transaction of the set-based path (a batch of the import).
pub const BATCH: usize = 5_000;

pub use super::record::Record;

/// The `type` values a line may carry, in the order a sync usually sends them.
pub const TYPES: [&str; 11] = [
    "user",
    "exchangeRate",
    "campaign",
    "campaignCost",
    "account",
    "lead",
    "touchpoint",
    "transition",
    "opportunity",
    "closeOpportunity",
    "revenue",
];

/// A line that was refused, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub code: String,
    pub message: String,
}

impl LineError {
    pub fn new(line: u64, e: &AppError) -> LineError {
        LineError {
            line,
            code: e.code().to_string(),
            message: e.message(),
        }
    }
}

/// What an import did, line by line.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Non-empty lines read.
    pub lines: u64,
    /// Records written (created, changed, or an unchanged replay: all idempotent).
    pub applied: u64,
    pub failed: u64,
    /// The first `MAX_REPORTED_ERRORS` refused lines; `failed` counts them all.
    pub errors: Vec<LineError>,
}

pub const MAX_REPORTED_ERRORS: usize = 1_000;

impl Summary {
    /// Counts a refused line; keeps the `MAX_REPORTED_ERRORS` with the lowest line numbers,
    /// whatever order they arrive in (batches report as they are written, parse errors as they
    /// are read).
    pub fn refuse(&mut self, error: LineError) {
        self.failed += 1;
        self.errors.push(error);
        if self.errors.len() >= 2 * MAX_REPORTED_ERRORS {
            self.settle();
        }
    }

    /// Sorts the kept errors by line and drops those past the cap.
    pub fn settle(&mut self) {
        self.errors.sort_by_key(|e| e.line);
        self.errors.truncate(MAX_REPORTED_ERRORS);
    }
}

fn apply(ctx: &Ctx, conn: &mut AnyConnection, record: &Record) -> AppResult<()> {
    match record {
        Record::User(i) => users::upsert_in(ctx, conn, i).map(drop),
        Record::Campaign(i) => campaigns::upsert_in(ctx, conn, i).map(drop),
        Record::CampaignCost(i) => campaigns::record_cost_in(ctx, conn, i).map(drop),
        Record::Lead(i) => leads::upsert_in(ctx, conn, i).map(drop),
        Record::Touchpoint(i) => leads::record_touchpoint_in(ctx, conn, i).map(drop),
        Record::Transition(i) => leads::transition_in(ctx, conn, i).map(drop),
        Record::Opportunity(i) => opportunities::upsert_in(ctx, conn, i).map(drop),
        Record::CloseOpportunity(i) => opportunities::close_in(ctx, conn, i).map(drop),
        Record::Revenue(i) => opportunities::record_revenue_in(ctx, conn, i).map(drop),
        Record::Account(i) => accounts::upsert_in(ctx, conn, i).map(drop),
        Record::ExchangeRate(i) => super::currency::upsert_rate_in(ctx, conn, i).map(drop),
    }
}

/// Why a batch attempt stopped.
enum Stop {
    /// Record `index` of the batch was refused: roll back and go again without it.
    Line(usize, AppError),
    /// Anything else (the database, a conflict to retry whole).
    Other(AppError),
}

impl From<crate::db::DbError> for Stop {
    fn from(e: crate::db::DbError) -> Self {
        Stop::Other(AppError::from(e))
    }
}

impl RetryableError for Stop {
    fn is_retryable(&self) -> bool {
        match self {
            Stop::Line(_, e) | Stop::Other(e) => e.is_retryable(),
        }
    }
}

/// Refusals after which a batch stops being retried line by line and falls back to a
/// savepoint per run and record.
const OPTIMISTIC_REFUSALS: usize = 8;

/// Where the runs of a batch start and end: consecutive records of the set-based kinds
/// (`batch::set_based`), or of the others.
fn runs(batch: &[(u64, Record)]) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for (index, (_, record)) in batch.iter().enumerate() {
        let kind = super::batch::set_based(record);
        match out.last_mut() {
            Some(run) if super::batch::set_based(&batch[run.start].1) == kind => {
                run.end = index + 1
            }
            _ => out.push(index..index + 1),
        }
    }
    out
}

/// Runs the set-based records of a run in one `batch::Batch` inside the caller's
/// transaction; returns the records it refused (their own checks: nothing was written for
/// them). An error is the database's or an internal one and ends the transaction.
fn write_set_based(
    ctx: &Ctx,
    conn: &mut AnyConnection,
    records: &[&(u64, Record)],
) -> AppResult<Vec<LineError>> {
    crate::db::large_cache(conn, true)?;
    let written = (|| {
        let mut batch = super::batch::Batch::load(ctx, conn, records)?;
        let mut refused = Vec::new();
        for (line, record) in records {
            match batch.apply(record) {
                Ok(()) => {}
                Err(e @ (AppError::Db(_) | AppError::Internal(_))) => return Err(e),
                Err(e) => refused.push(LineError::new(*line, &e)),
            }
        }
        batch.flush(conn)?;
        Ok(refused)
    })();
    crate::db::large_cache(conn, false)?;
    written
}

/// Writes one batch in one transaction and returns the lines that were refused. Runs of
/// leads, touchpoints and moves go through the set-based path (`batch`); the other records
/// through their mutations' use cases, one by one, in file order between them.
///
/// The set-based path finds its refusals without writing them. A record of the others that
/// is refused rolls the transaction back and the batch runs again without it (optimistic: a
/// savepoint per record would do it in one pass, but see `apply_batch_with_savepoints`). When
/// that happened too often, or when the set-based path could not write (the database refused
/// what no record's checks foresaw), the batch is written again with savepoints.
pub async fn apply_batch(ctx: &Ctx, batch: Vec<(u64, Record)>) -> AppResult<Vec<LineError>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let batch = std::sync::Arc::new(batch);
    let mut refused: Vec<(usize, LineError)> = Vec::new();
    while refused.len() < OPTIMISTIC_REFUSALS {
        let skip: std::collections::HashSet<usize> = refused.iter().map(|(i, _)| *i).collect();
        let (ctx2, batch2) = (ctx.clone(), batch.clone());
        let attempt = ctx
            .db
            .write(move |conn| {
                let mut own = Vec::new();
                for run in runs(&batch2) {
                    if super::batch::set_based(&batch2[run.start].1) {
                        let records: Vec<&(u64, Record)> = run
                            .filter(|i| !skip.contains(i))
                            .map(|i| &batch2[i])
                            .collect();
                        own.extend(write_set_based(&ctx2, conn, &records).map_err(Stop::Other)?);
                        continue;
                    }
                    for index in run {
                        if skip.contains(&index) {
                            continue;
                        }
                        match apply(&ctx2, conn, &batch2[index].1) {
                            Ok(()) => {}
                            Err(e) if e.is_retryable() => return Err(Stop::Other(e)),
                            Err(e) => return Err(Stop::Line(index, e)),
                        }
                    }
                }
                Ok(own)
            })
            .await;
        match attempt {
            Ok(own) => {
                forget_users(ctx, &batch);
                let mut errors: Vec<LineError> = refused.into_iter().map(|(_, e)| e).collect();
                errors.extend(own);
                errors.sort_by_key(|e| e.line);
                return Ok(errors);
            }
            Err(Stop::Line(index, e)) => {
                if let Some(detail) = e.internal_detail() {
                    tracing::error!(line = batch[index].0, error = %detail, "import line failed");
                }
                refused.push((index, LineError::new(batch[index].0, &e)));
            }
            Err(Stop::Other(e)) if e.is_retryable() => return Err(e),
            Err(Stop::Other(e)) => {
                tracing::warn!(
                    error = %e.internal_detail().unwrap_or_else(|| e.message()),
                    records = batch.len(),
                    "import batch failed; writing it again with a savepoint per run and record"
                );
                break;
            }
        }
    }
    let refused = apply_batch_with_savepoints(ctx, batch.clone()).await;
    forget_users(ctx, &batch);
    refused
}

/// The batch in one transaction, a savepoint per run of set-based records and per other
/// record: for a batch with many refused records of the other kinds, or one the set-based path
/// could not write (a run whose savepoint fails goes again a record at a time, each in its
/// own savepoint, which finds the line to blame). Still a whole batch or nothing.
///
/// On PostgreSQL more than 64 subtransactions in one transaction overflow each backend's
/// subtransaction cache and make every later statement consult pg_subtrans (measured: 241
/// records/s with a savepoint per record), which is why this is the fallback, not the way.
async fn apply_batch_with_savepoints(
    ctx: &Ctx,
    batch: std::sync::Arc<Vec<(u64, Record)>>,
) -> AppResult<Vec<LineError>> {
    let ctx2 = ctx.clone();
    ctx.db
        .write(move |conn| {
            let mut refused = Vec::new();
            for run in runs(&batch) {
                if super::batch::set_based(&batch[run.start].1) {
                    let records: Vec<&(u64, Record)> = batch[run.clone()].iter().collect();
                    match conn.transaction(|sp| write_set_based(&ctx2, sp, &records)) {
                        Ok(own) => {
                            refused.extend(own);
                            continue;
                        }
                        Err(e) if e.is_retryable() => return Err(e),
                        Err(e) => tracing::warn!(
                            error = %e.internal_detail().unwrap_or_else(|| e.message()),
                            records = records.len(),
                            "set-based import run failed; writing it one record at a time"
                        ),
                    }
                }
                for (line, record) in &batch[run] {
                    match conn.transaction(|sp| apply(&ctx2, sp, record)) {
                        Ok(()) => {}
                        // Another writer got in the way: the whole batch is tried again.
                        Err(e) if e.is_retryable() => return Err(e),
                        Err(e) => {
                            if let Some(detail) = e.internal_detail() {
                                tracing::error!(line, error = %detail, "import line failed");
                            }
                            refused.push(LineError::new(*line, &e));
                        }
                    }
                }
            }
            refused.sort_by_key(|e| e.line);
            Ok(refused)
        })
        .await
}

/// Users written by a committed batch are read afresh by later requests (the caller cache).
fn forget_users(ctx: &Ctx, batch: &[(u64, Record)]) {
    if let Some(cache) = &ctx.users {
        for (_, record) in batch {
            if let Record::User(u) = record {
                cache.forget(&u.external_id);
            }
        }
    }
}
