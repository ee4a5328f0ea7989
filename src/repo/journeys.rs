//! Reads for the journey index (`service::index`): whole tables a page at a time (keyset on
//! id, so neither driver buffers a million rows at once), the same rows for some ids, and the
//! change log the index tails.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{
    change_log, leads, opportunities, opportunity_contacts, stage_transitions, touchpoints,
};
use crate::db::AnyConnection;

/// A lead as the reports read it: id, the first reach of each funnel rank (INQUIRY is its
/// creation), externalId, source campaign and owner.
pub type ReachRow = (
    i64,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// A move as the hand-off reports read it: (id, lead, to stage, time).
pub type MoveRow = (i64, i64, String, NaiveDateTime);

/// A touchpoint as the reports read it: (id, lead, campaign, time, externalId).
pub type TouchRow = (i64, i64, i64, NaiveDateTime, String);

/// One entry of the change log: (id, kind, entity id).
pub type ChangeRow = (i64, String, i64);

macro_rules! reach_columns {
    () => {
        (
            leads::id,
            leads::created_at,
            leads::mql_at,
            leads::sal_at,
            leads::sql_at,
            leads::opportunity_at,
            leads::won_at,
            leads::external_id,
            leads::source_campaign_id,
            leads::owner_id,
            leads::account_id,
        )
    };
}

/// Leads with id > `after`, by id, at most `limit`.
pub fn reach_page(conn: &mut AnyConnection, after: i64, limit: i64) -> QueryResult<Vec<ReachRow>> {
    leads::table
        .filter(leads::id.gt(after))
        .order(leads::id)
        .limit(limit)
        .select(reach_columns!())
        .load(conn)
}

pub fn reach_of(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<Vec<ReachRow>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(super::CHUNK) {
        out.extend(
            leads::table
                .filter(leads::id.eq_any(chunk))
                .select(reach_columns!())
                .load::<ReachRow>(conn)?,
        );
    }
    Ok(out)
}

macro_rules! move_columns {
    () => {
        (
            stage_transitions::id,
            stage_transitions::lead_id,
            stage_transitions::to_stage,
            stage_transitions::occurred_at,
        )
    };
}

macro_rules! touch_columns {
    () => {
        (
            touchpoints::id,
            touchpoints::lead_id,
            touchpoints::campaign_id,
            touchpoints::occurred_at,
            touchpoints::external_id,
        )
    };
}

/// Touchpoints with id > `after`, by id, at most `limit`.
pub fn touch_page(conn: &mut AnyConnection, after: i64, limit: i64) -> QueryResult<Vec<TouchRow>> {
    touchpoints::table
        .filter(touchpoints::id.gt(after))
        .order(touchpoints::id)
        .limit(limit)
        .select(touch_columns!())
        .load(conn)
}

/// Every touchpoint of some leads.
pub fn touches_of(conn: &mut AnyConnection, lead_ids: &[i64]) -> QueryResult<Vec<TouchRow>> {
    let mut out = Vec::new();
    for chunk in lead_ids.chunks(super::CHUNK) {
        out.extend(
            touchpoints::table
                .filter(touchpoints::lead_id.eq_any(chunk))
                .select(touch_columns!())
                .load::<TouchRow>(conn)?,
        );
    }
    Ok(out)
}

/// Moves with id > `after`, by id, at most `limit`.
pub fn move_page(conn: &mut AnyConnection, after: i64, limit: i64) -> QueryResult<Vec<MoveRow>> {
    stage_transitions::table
        .filter(stage_transitions::id.gt(after))
        .order(stage_transitions::id)
        .limit(limit)
        .select(move_columns!())
        .load(conn)
}

/// Every move of some leads.
pub fn moves_of(conn: &mut AnyConnection, lead_ids: &[i64]) -> QueryResult<Vec<MoveRow>> {
    let mut out = Vec::new();
    for chunk in lead_ids.chunks(super::CHUNK) {
        out.extend(
            stage_transitions::table
                .filter(stage_transitions::lead_id.eq_any(chunk))
                .select(move_columns!())
                .load::<MoveRow>(conn)?,
        );
    }
    Ok(out)
}

/// Every opportunity id (the deals are few next to leads; their rows are read by
/// `opportunities::by_ids`).
pub fn opportunity_ids(conn: &mut AnyConnection) -> QueryResult<Vec<i64>> {
    opportunities::table
        .select(opportunities::id)
        .order(opportunities::id)
        .load(conn)
}

/// Every (opportunity, contact) pair.
pub fn all_contacts(conn: &mut AnyConnection) -> QueryResult<Vec<(i64, i64)>> {
    opportunity_contacts::table
        .select((
            opportunity_contacts::opportunity_id,
            opportunity_contacts::lead_id,
        ))
        .load(conn)
}

/// The newest change-log id (0 when empty).
pub fn newest_change(conn: &mut AnyConnection) -> QueryResult<i64> {
    change_log::table
        .select(diesel::dsl::max(change_log::id))
        .first::<Option<i64>>(conn)
        .map(Option::unwrap_or_default)
}

/// Change-log entries with id > `after`, in id order, at most `limit`.
pub fn changes_after(
    conn: &mut AnyConnection,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<ChangeRow>> {
    change_log::table
        .filter(change_log::id.gt(after))
        .order(change_log::id)
        .limit(limit)
        .select((change_log::id, change_log::kind, change_log::entity_id))
        .load(conn)
}

/// Deletes entries logged before `before` (every instance has long read them).
pub fn prune_changes(conn: &mut AnyConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(change_log::table.filter(change_log::logged_at.lt(before))).execute(conn)
}

/// The kind of entry that tells every reader to reload its whole index.
pub const RELOAD: &str = "reload";

/// Replaces the whole log with one [`RELOAD`] entry (after `generate`, whose millions of
/// entries would only name every row): a server loading later reads the tables anyway, and
/// one already running reloads rather than miss what was written. Ids are never reused.
pub fn replace_changes_with_reload(conn: &mut AnyConnection) -> QueryResult<usize> {
    let cleared = diesel::delete(change_log::table).execute(conn)?;
    diesel::insert_into(change_log::table)
        .values((change_log::kind.eq(RELOAD), change_log::entity_id.eq(0_i64)))
        .execute(conn)?;
    Ok(cleared)
}

/// PostgreSQL: (xmin, xmax) of the current snapshot: every transaction with an id below xmin
/// has ended, and every one that had begun when the snapshot was taken has an id below xmax.
pub fn pg_snapshot(conn: &mut AnyConnection) -> QueryResult<Option<(u64, u64)>> {
    #[derive(QueryableByName)]
    struct Snapshot {
        #[diesel(sql_type = diesel::sql_types::Text)]
        xmin: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        xmax: String,
    }
    match conn {
        AnyConnection::Postgresql(_) => {
            let s: Snapshot = diesel::sql_query(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, \
                 pg_snapshot_xmax(pg_current_snapshot())::text AS xmax",
            )
            .get_result(conn)?;
            Ok(s.xmin.parse().ok().zip(s.xmax.parse().ok()))
        }
        AnyConnection::Sqlite(_) => Ok(None),
    }
}
