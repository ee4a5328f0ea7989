//! Reads for the reports: the facts of a period, fetched in a few set-based queries.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{leads, opportunities, revenue_events, touchpoints};
use crate::db::AnyConnection;
use crate::repo::opportunities::{OpportunityRow, RevenueRow};

/// (lead id, first reach of funnel rank `rank`: 0 = INQUIRY (createdAt) … 5 = WON) for the
/// leads whose first reach lies in `[from, to)` when a window is given, or for `lead_ids`.
pub fn reach(
    conn: &mut AnyConnection,
    rank: usize,
    window: Option<(NaiveDateTime, NaiveDateTime)>,
    lead_ids: Option<&[i64]>,
) -> QueryResult<Vec<(i64, NaiveDateTime)>> {
    macro_rules! by_column {
        ($col:expr) => {{
            let run = |conn: &mut AnyConnection,
                       ids: Option<&[i64]>|
             -> QueryResult<Vec<(i64, Option<NaiveDateTime>)>> {
                let mut query = leads::table
                    .select((leads::id, $col.nullable()))
                    .filter($col.nullable().is_not_null())
                    .into_boxed();
                if let Some((from, to)) = window {
                    query = query
                        .filter($col.nullable().ge(from))
                        .filter($col.nullable().lt(to));
                }
                if let Some(ids) = ids {
                    query = query.filter(leads::id.eq_any(ids.to_vec()));
                }
                query.load(conn)
            };
            match lead_ids {
                None => run(conn, None)?,
                Some(ids) => {
                    let mut out = Vec::new();
                    for chunk in ids.chunks(super::CHUNK) {
                        out.extend(run(conn, Some(chunk))?);
                    }
                    out
                }
            }
        }};
    }
    let rows = match rank {
        0 => by_column!(leads::created_at),
        1 => by_column!(leads::mql_at),
        2 => by_column!(leads::sal_at),
        3 => by_column!(leads::sql_at),
        4 => by_column!(leads::opportunity_at),
        _ => by_column!(leads::won_at),
    };
    Ok(rows
        .into_iter()
        .filter_map(|(id, t)| t.map(|t| (id, t)))
        .collect())
}

/// Of the touchpoints in `[from, to)`, only what a MARKOV path needs: (lead, campaign, time,
/// externalId for ties). A quarter of a large company holds millions of them; whole rows
/// would more than double the memory. Read a month at a time, so the driver's buffer of a
/// result (libpq keeps a whole result before the first row is decoded) holds one month, not
/// the window.
pub fn touch_campaigns_between(
    conn: &mut AnyConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(i64, i64, NaiveDateTime, String)>> {
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        let end = (start + chrono::Duration::days(31)).min(to);
        out.extend(
            touchpoints::table
                .filter(touchpoints::occurred_at.ge(start))
                .filter(touchpoints::occurred_at.lt(end))
                .select((
                    touchpoints::lead_id,
                    touchpoints::campaign_id,
                    touchpoints::occurred_at,
                    touchpoints::external_id,
                ))
                .load::<(i64, i64, NaiveDateTime, String)>(conn)?,
        );
        start = end;
    }
    Ok(out)
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

/// The data version: every write bumps it once committed (see `db::write_transaction`), so a
/// report that loads its facts after reading version v has seen every write counted in v.
/// Read it before the facts a report caches under it.
pub fn data_version(conn: &mut AnyConnection) -> QueryResult<i64> {
    use crate::db::schema::data_version;
    data_version::table
        .select(data_version::version)
        .filter(data_version::id.eq(1))
        .first::<i64>(conn)
}

/// The leads created in `[from, to)`.
pub fn cohort(
    conn: &mut AnyConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<crate::repo::leads::LeadRow>> {
    use crate::repo::leads::LeadRow;
    leads::table
        .filter(leads::created_at.ge(from))
        .filter(leads::created_at.lt(to))
        .select(LeadRow::as_select())
        .order(leads::external_id)
        .load(conn)
}

/// Every move into `stage` at an instant in `[from, to]`.
pub fn moves_into(
    conn: &mut AnyConnection,
    stage: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<crate::repo::leads::TransitionRow>> {
    use crate::db::schema::stage_transitions;
    use crate::repo::leads::TransitionRow;
    stage_transitions::table
        .filter(stage_transitions::to_stage.eq(stage))
        .filter(stage_transitions::occurred_at.ge(from))
        .filter(stage_transitions::occurred_at.le(to))
        .select(TransitionRow::as_select())
        .load(conn)
}

/// How many leads each campaign sourced (their earliest touch is on it).
pub fn sourced_counts(conn: &mut AnyConnection) -> QueryResult<Vec<(Option<i64>, i64)>> {
    leads::table
        .group_by(leads::source_campaign_id)
        .select((leads::source_campaign_id, diesel::dsl::count_star()))
        .load(conn)
}
