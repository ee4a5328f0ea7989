//! Bulk import for the CRM sync (`POST /import`, `funnelgraph import FILE`): records in
//! batches, each batch one write transaction, each record inside it a savepoint, so a bad
//! record rejects nothing but itself. Every record goes through the same use case as its
//! mutation (same validation, same role rules, same audit row, idempotent by externalId).

use diesel::Connection;
use serde::Serialize;

use super::{campaigns, leads, opportunities, users, AppError, AppResult, Ctx};
use crate::db::{AnyConnection, RetryableError};

/// Records per write transaction.
pub const BATCH: usize = 1_000;

/// One record of the import, typed like the mutation input it stands for.
#[derive(Debug, Clone)]
pub enum Record {
    User(users::UserInput),
    Campaign(campaigns::CampaignInput),
    CampaignCost(campaigns::CostInput),
    Lead(leads::LeadInput),
    Touchpoint(leads::TouchpointInput),
    Transition(leads::TransitionInput),
    Opportunity(opportunities::OpportunityInput),
    CloseOpportunity(opportunities::CloseInput),
    Revenue(opportunities::RevenueInput),
}

/// The `type` values a line may carry, in the order a sync usually sends them.
pub const TYPES: [&str; 9] = [
    "user",
    "campaign",
    "campaignCost",
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
    pub fn refuse(&mut self, error: LineError) {
        self.failed += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(error);
        }
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
    }
}

/// Writes one batch in one transaction, each record in a savepoint. Returns the lines that
/// were refused. A conflict with a concurrent writer retries the whole batch.
pub async fn apply_batch(ctx: &Ctx, batch: Vec<(u64, Record)>) -> AppResult<Vec<LineError>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let ctx2 = ctx.clone();
    ctx.db
        .write(move |conn| {
            let mut refused = Vec::new();
            for (line, record) in &batch {
                let result = conn.transaction(|savepoint| apply(&ctx2, savepoint, record));
                match result {
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
            Ok(refused)
        })
        .await
}
