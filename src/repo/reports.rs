//! Reads for the reports: the facts of a period, fetched in a few set-based queries.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::min;
use diesel::prelude::*;

use crate::db::schema::{leads, opportunities, revenue_events, stage_transitions, touchpoints};
use crate::db::AnyConnection;
use crate::repo::leads::TouchpointRow;
use crate::repo::opportunities::{OpportunityRow, RevenueRow};

/// (lead id, first time of a move into one of `stages`), for the leads whose first such
/// move lies in `[from, to)` when a window is given, or for `lead_ids` when given.
pub fn first_reach(
    conn: &mut AnyConnection,
    stages: &[&str],
    window: Option<(NaiveDateTime, NaiveDateTime)>,
    lead_ids: Option<&[i64]>,
) -> QueryResult<Vec<(i64, NaiveDateTime)>> {
    let stages: Vec<String> = stages.iter().map(|s| s.to_string()).collect();
    let run = |conn: &mut AnyConnection,
               ids: Option<&[i64]>|
     -> QueryResult<Vec<(i64, Option<NaiveDateTime>)>> {
        let mut query = stage_transitions::table
            .filter(stage_transitions::to_stage.eq_any(stages.clone()))
            .group_by(stage_transitions::lead_id)
            .select((
                stage_transitions::lead_id,
                min(stage_transitions::occurred_at),
            ))
            .into_boxed();
        if let Some(ids) = ids {
            query = query.filter(stage_transitions::lead_id.eq_any(ids.to_vec()));
        }
        if let Some((from, to)) = window {
            query = query
                .filter(stage_transitions::occurred_at.lt(to))
                .having(min(stage_transitions::occurred_at).ge(from));
        }
        query.load(conn)
    };
    let rows = match lead_ids {
        None => run(conn, None)?,
        Some(ids) => {
            let mut out = Vec::new();
            for chunk in ids.chunks(super::CHUNK) {
                out.extend(run(conn, Some(chunk))?);
            }
            out
        }
    };
    Ok(rows
        .into_iter()
        .filter_map(|(id, t)| t.map(|t| (id, t)))
        .collect())
}

/// (lead id, createdAt) of the leads created in `[from, to)`, or of `lead_ids`.
pub fn created(
    conn: &mut AnyConnection,
    window: Option<(NaiveDateTime, NaiveDateTime)>,
    lead_ids: Option<&[i64]>,
) -> QueryResult<Vec<(i64, NaiveDateTime)>> {
    let run = |conn: &mut AnyConnection, ids: Option<&[i64]>| {
        let mut query = leads::table
            .select((leads::id, leads::created_at))
            .into_boxed();
        if let Some((from, to)) = window {
            query = query
                .filter(leads::created_at.ge(from))
                .filter(leads::created_at.lt(to));
        }
        if let Some(ids) = ids {
            query = query.filter(leads::id.eq_any(ids.to_vec()));
        }
        query.load::<(i64, NaiveDateTime)>(conn)
    };
    match lead_ids {
        None => run(conn, None),
        Some(ids) => {
            let mut out = Vec::new();
            for chunk in ids.chunks(super::CHUNK) {
                out.extend(run(conn, Some(chunk))?);
            }
            Ok(out)
        }
    }
}

/// Touchpoints that occurred in `[from, to)`.
pub fn touchpoints_between(
    conn: &mut AnyConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<TouchpointRow>> {
    touchpoints::table
        .filter(touchpoints::occurred_at.ge(from))
        .filter(touchpoints::occurred_at.lt(to))
        .select(TouchpointRow::as_select())
        .load(conn)
}

pub fn opportunities_created_between(
    conn: &mut AnyConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<OpportunityRow>> {
    opportunities::table
        .filter(opportunities::created_at.ge(from))
        .filter(opportunities::created_at.lt(to))
        .select(OpportunityRow::as_select())
        .order(opportunities::external_id)
        .load(conn)
}

pub fn opportunities_won_between(
    conn: &mut AnyConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<OpportunityRow>> {
    opportunities::table
        .filter(opportunities::status.eq("WON"))
        .filter(opportunities::closed_at.ge(from))
        .filter(opportunities::closed_at.lt(to))
        .select(OpportunityRow::as_select())
        .order(opportunities::external_id)
        .load(conn)
}

pub fn revenue_booked_between(
    conn: &mut AnyConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> QueryResult<Vec<RevenueRow>> {
    revenue_events::table
        .filter(revenue_events::booked_on.ge(from))
        .filter(revenue_events::booked_on.lt(to))
        .select(RevenueRow::as_select())
        .order((revenue_events::booked_on, revenue_events::external_id))
        .load(conn)
}

/// The largest audit id: every committed mutation writes one, so it versions the data.
pub fn data_version(conn: &mut AnyConnection) -> QueryResult<i64> {
    use crate::db::schema::audit_log;
    audit_log::table
        .select(diesel::dsl::max(audit_log::id))
        .first::<Option<i64>>(conn)
        .map(|v| v.unwrap_or(0))
}
