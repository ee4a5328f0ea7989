//! Recording lead moves: what the lifecycle decided (`domain::stage`) written as history rows,
//! the lead's current stage and first-reach times. Shared by every use case that moves a lead
//! (transitions, deals, automatic MQLs from scoring), below all of them.

use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::{naive, AppError, AppResult};
use crate::db::AnyConnection;
use crate::domain::stage::{LeadStage, Step};
use crate::repo::leads::{self as repo, LeadRow, NewTransition};

/// A lead's current stage, as a typed state.
pub fn stage_of(lead: &LeadRow) -> AppResult<LeadStage> {
    LeadStage::from_str(&lead.stage).map_err(AppError::Internal)
}

/// Writes the steps of a move and sets the lead's current stage.
pub(crate) fn apply_steps(
    conn: &mut AnyConnection,
    lead_id: i64,
    steps: &[Step],
    at: DateTime<Utc>,
    actor: &str,
    reason: Option<&str>,
    external_id: Option<&str>,
) -> AppResult<()> {
    for step in steps {
        repo::insert_transition(
            conn,
            &NewTransition {
                lead_id,
                external_id,
                from_stage: Some(step.from.as_str()),
                to_stage: step.to.as_str(),
                occurred_at: naive(at),
                actor,
                reason,
            },
        )?;
    }
    if let Some(last) = steps.last() {
        repo::set_stage(conn, lead_id, last.to.as_str())?;
    }
    if let Some(rank) = steps.iter().filter_map(|s| s.to.funnel_rank()).max() {
        repo::record_reach(conn, lead_id, rank, naive(at))?;
    }
    Ok(())
}
