//! Leads, their attributes, touchpoints and stage history.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{lead_attributes, leads, stage_transitions, touchpoints};
use crate::db::AnyConnection;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = leads, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct LeadRow {
    pub id: i64,
    pub external_id: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub stage: String,
    pub score: i32,
    pub owner_id: Option<i64>,
    pub created_at: NaiveDateTime,
    /// First reach of MQL, SAL, SQL, OPPORTUNITY and WON, kept as moves are written.
    pub mql_at: Option<NaiveDateTime>,
    pub sal_at: Option<NaiveDateTime>,
    pub sql_at: Option<NaiveDateTime>,
    pub opportunity_at: Option<NaiveDateTime>,
    pub won_at: Option<NaiveDateTime>,
    /// The campaign of the earliest touchpoint.
    pub source_campaign_id: Option<i64>,
    /// Its account (SPEC §8): given (`account_explicit`) or matched by `email_domain`.
    pub account_id: Option<i64>,
    pub account_explicit: bool,
    /// Its email's host, lower-case (what domain matching reads).
    pub email_domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Insertable, AsChangeset)]
#[diesel(table_name = leads, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct LeadValues<'a> {
    pub external_id: &'a str,
    pub email: Option<&'a str>,
    pub full_name: Option<&'a str>,
    pub company: Option<&'a str>,
    pub title: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub account_id: Option<i64>,
    pub account_explicit: bool,
    pub email_domain: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = lead_attributes, treat_none_as_default_value = false)]
pub struct AttributeRow {
    pub lead_id: i64,
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = touchpoints, treat_none_as_default_value = false)]
pub struct TouchpointRow {
    pub id: i64,
    pub external_id: String,
    pub lead_id: i64,
    pub campaign_id: i64,
    pub kind: String,
    pub occurred_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Insertable, AsChangeset)]
#[diesel(table_name = touchpoints, treat_none_as_default_value = false)]
pub struct TouchpointValues<'a> {
    pub external_id: &'a str,
    pub lead_id: i64,
    pub campaign_id: i64,
    pub kind: &'a str,
    pub occurred_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = stage_transitions, treat_none_as_default_value = false)]
pub struct TransitionRow {
    pub id: i64,
    pub lead_id: i64,
    pub external_id: Option<String>,
    pub from_stage: Option<String>,
    pub to_stage: String,
    pub occurred_at: NaiveDateTime,
    pub actor: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = stage_transitions, treat_none_as_default_value = false)]
pub struct NewTransition<'a> {
    pub lead_id: i64,
    pub external_id: Option<&'a str>,
    pub from_stage: Option<&'a str>,
    pub to_stage: &'a str,
    pub occurred_at: NaiveDateTime,
    pub actor: &'a str,
    pub reason: Option<&'a str>,
}

pub fn by_external_id(conn: &mut AnyConnection, external_id: &str) -> QueryResult<Option<LeadRow>> {
    leads::table
        .filter(leads::external_id.eq(external_id))
        .select(LeadRow::as_select())
        .first(conn)
        .optional()
}

pub fn by_id(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<LeadRow>> {
    leads::table
        .find(id)
        .select(LeadRow::as_select())
        .first(conn)
        .optional()
}

pub fn by_ids(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<HashMap<i64, LeadRow>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(super::CHUNK) {
        for row in leads::table
            .filter(leads::id.eq_any(chunk))
            .select(LeadRow::as_select())
            .load(conn)?
        {
            out.insert(row.id, row);
        }
    }
    Ok(out)
}

pub fn all_ids(conn: &mut AnyConnection) -> QueryResult<Vec<i64>> {
    leads::table.select(leads::id).order(leads::id).load(conn)
}

pub fn ids_by_external_ids(
    conn: &mut AnyConnection,
    external_ids: &[String],
) -> QueryResult<HashMap<String, i64>> {
    let mut out = HashMap::new();
    for chunk in external_ids.chunks(super::CHUNK) {
        for (id, ext) in leads::table
            .filter(leads::external_id.eq_any(chunk))
            .select((leads::id, leads::external_id))
            .load::<(i64, String)>(conn)?
        {
            out.insert(ext, id);
        }
    }
    Ok(out)
}

pub fn page(
    conn: &mut AnyConnection,
    stage: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<LeadRow>> {
    let mut query = leads::table
        .select(LeadRow::as_select())
        .order(leads::external_id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(stage) = stage {
        query = query.filter(leads::stage.eq(stage.to_string()));
    }
    if let Some(after) = after {
        query = query.filter(leads::external_id.gt(after.to_string()));
    }
    query.load(conn)
}

pub fn count(conn: &mut AnyConnection, stage: Option<&str>) -> QueryResult<i64> {
    let mut query = leads::table.into_boxed();
    if let Some(stage) = stage {
        query = query.filter(leads::stage.eq(stage.to_string()));
    }
    query.count().get_result(conn)
}

pub fn insert(conn: &mut AnyConnection, values: &LeadValues<'_>, stage: &str) -> QueryResult<i64> {
    diesel::insert_into(leads::table)
        .values((values, leads::stage.eq(stage), leads::score.eq(0)))
        .returning(leads::id)
        .get_result(conn)
}

pub fn update(conn: &mut AnyConnection, id: i64, values: &LeadValues<'_>) -> QueryResult<usize> {
    diesel::update(leads::table.find(id))
        .set(values)
        .execute(conn)
}

pub fn set_stage(conn: &mut AnyConnection, id: i64, stage: &str) -> QueryResult<usize> {
    diesel::update(leads::table.find(id))
        .set(leads::stage.eq(stage))
        .execute(conn)
}

/// Records that the lead reached funnel rank `rank` (1 = MQL … 5 = WON) at `at`: every stage
/// up to it counts as reached then, unless it was reached earlier.
pub fn record_reach(
    conn: &mut AnyConnection,
    id: i64,
    rank: usize,
    at: NaiveDateTime,
) -> QueryResult<()> {
    macro_rules! earliest {
        ($col:ident) => {
            diesel::update(
                leads::table
                    .find(id)
                    .filter(leads::$col.is_null().or(leads::$col.gt(at))),
            )
            .set(leads::$col.eq(Some(at)))
            .execute(conn)?
        };
    }
    if rank >= 1 {
        earliest!(mql_at);
    }
    if rank >= 2 {
        earliest!(sal_at);
    }
    if rank >= 3 {
        earliest!(sql_at);
    }
    if rank >= 4 {
        earliest!(opportunity_at);
    }
    if rank >= 5 {
        earliest!(won_at);
    }
    Ok(())
}

/// Re-derives the lead's source campaign from its earliest touchpoint.
pub fn refresh_source(conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
    let source: Option<i64> = touchpoints::table
        .filter(touchpoints::lead_id.eq(id))
        .order((touchpoints::occurred_at, touchpoints::external_id))
        .select(touchpoints::campaign_id)
        .first(conn)
        .optional()?;
    diesel::update(leads::table.find(id))
        .set(leads::source_campaign_id.eq(source))
        .execute(conn)
        .map(|_| ())
}

pub fn set_score(conn: &mut AnyConnection, id: i64, score: i32) -> QueryResult<usize> {
    diesel::update(leads::table.find(id))
        .set(leads::score.eq(score))
        .execute(conn)
}

pub fn set_owner(conn: &mut AnyConnection, id: i64, owner_id: i64) -> QueryResult<usize> {
    diesel::update(leads::table.find(id))
        .set(leads::owner_id.eq(owner_id))
        .execute(conn)
}

pub fn attributes_of(conn: &mut AnyConnection, lead_ids: &[i64]) -> QueryResult<Vec<AttributeRow>> {
    let mut out = Vec::new();
    for chunk in lead_ids.chunks(super::CHUNK) {
        out.extend(
            lead_attributes::table
                .filter(lead_attributes::lead_id.eq_any(chunk))
                .select(AttributeRow::as_select())
                .order((lead_attributes::lead_id, lead_attributes::key))
                .load(conn)?,
        );
    }
    Ok(out)
}

pub fn replace_attributes(
    conn: &mut AnyConnection,
    lead_id: i64,
    attributes: &[(String, String)],
) -> QueryResult<()> {
    diesel::delete(lead_attributes::table.filter(lead_attributes::lead_id.eq(lead_id)))
        .execute(conn)?;
    let rows: Vec<_> = attributes
        .iter()
        .map(|(k, v)| {
            (
                lead_attributes::lead_id.eq(lead_id),
                lead_attributes::key.eq(k),
                lead_attributes::value.eq(v),
            )
        })
        .collect();
    for row in rows {
        diesel::insert_into(lead_attributes::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

pub fn touchpoint_by_external_id(
    conn: &mut AnyConnection,
    external_id: &str,
) -> QueryResult<Option<TouchpointRow>> {
    touchpoints::table
        .filter(touchpoints::external_id.eq(external_id))
        .select(TouchpointRow::as_select())
        .first(conn)
        .optional()
}

pub fn touchpoints_by_ids(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> QueryResult<HashMap<i64, TouchpointRow>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(super::CHUNK) {
        for row in touchpoints::table
            .filter(touchpoints::id.eq_any(chunk))
            .select(TouchpointRow::as_select())
            .load(conn)?
        {
            out.insert(row.id, row);
        }
    }
    Ok(out)
}

pub fn insert_touchpoint(
    conn: &mut AnyConnection,
    values: &TouchpointValues<'_>,
) -> QueryResult<i64> {
    diesel::insert_into(touchpoints::table)
        .values(values)
        .returning(touchpoints::id)
        .get_result(conn)
}

pub fn update_touchpoint(
    conn: &mut AnyConnection,
    id: i64,
    values: &TouchpointValues<'_>,
) -> QueryResult<usize> {
    diesel::update(touchpoints::table.find(id))
        .set(values)
        .execute(conn)
}

/// Touchpoints of some leads, in time order then externalId.
pub fn touchpoints_of(
    conn: &mut AnyConnection,
    lead_ids: &[i64],
) -> QueryResult<Vec<TouchpointRow>> {
    let mut out = Vec::new();
    for chunk in lead_ids.chunks(super::CHUNK) {
        out.extend(
            touchpoints::table
                .filter(touchpoints::lead_id.eq_any(chunk))
                .select(TouchpointRow::as_select())
                .order((touchpoints::occurred_at, touchpoints::external_id))
                .load(conn)?,
        );
    }
    Ok(out)
}

/// Stage history of some leads, in the order the moves were made.
pub fn transitions_of(
    conn: &mut AnyConnection,
    lead_ids: &[i64],
) -> QueryResult<Vec<TransitionRow>> {
    let mut out = Vec::new();
    for chunk in lead_ids.chunks(super::CHUNK) {
        out.extend(
            stage_transitions::table
                .filter(stage_transitions::lead_id.eq_any(chunk))
                .select(TransitionRow::as_select())
                .order(stage_transitions::id)
                .load(conn)?,
        );
    }
    Ok(out)
}

/// The lead and the actor of the move recorded under a transition externalId, if any.
pub fn transition_exists(
    conn: &mut AnyConnection,
    external_id: &str,
) -> QueryResult<Option<(i64, String)>> {
    stage_transitions::table
        .filter(stage_transitions::external_id.eq(external_id))
        .select((stage_transitions::lead_id, stage_transitions::actor))
        .first(conn)
        .optional()
}

pub fn insert_transition(conn: &mut AnyConnection, row: &NewTransition<'_>) -> QueryResult<()> {
    diesel::insert_into(stage_transitions::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Moves the time of the lead's creation row (null → INQUIRY) when its `createdAt` changes.
pub fn move_creation_row(
    conn: &mut AnyConnection,
    lead_id: i64,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        stage_transitions::table
            .filter(stage_transitions::lead_id.eq(lead_id))
            .filter(stage_transitions::from_stage.is_null()),
    )
    .set(stage_transitions::occurred_at.eq(at))
    .execute(conn)
}

/// Whether any touchpoint of the lead is on one of the campaigns owned by `owner_id`.
pub fn touched_by_owner(
    conn: &mut AnyConnection,
    lead_ids: &[i64],
    owner_id: i64,
) -> QueryResult<Vec<i64>> {
    use crate::db::schema::campaigns;
    let mut out = Vec::new();
    for chunk in lead_ids.chunks(super::CHUNK) {
        out.extend(
            touchpoints::table
                .inner_join(campaigns::table)
                .filter(touchpoints::lead_id.eq_any(chunk))
                .filter(campaigns::owner_id.eq(owner_id))
                .select(touchpoints::lead_id)
                .distinct()
                .load::<i64>(conn)?,
        );
    }
    Ok(out)
}

/// Leads by externalId, any number of them.
pub fn by_external_ids(
    conn: &mut AnyConnection,
    external_ids: &[&str],
) -> QueryResult<Vec<LeadRow>> {
    super::in_chunks(external_ids, |chunk| {
        leads::table
            .filter(leads::external_id.eq_any(chunk))
            .select(LeadRow::as_select())
            .load(conn)
    })
}

/// Touchpoints by externalId, any number of them.
pub fn touchpoints_by_external_ids(
    conn: &mut AnyConnection,
    external_ids: &[&str],
) -> QueryResult<Vec<TouchpointRow>> {
    super::in_chunks(external_ids, |chunk| {
        touchpoints::table
            .filter(touchpoints::external_id.eq_any(chunk))
            .select(TouchpointRow::as_select())
            .load(conn)
    })
}

/// (externalId, lead, actor) of the moves recorded under some transition externalIds.
pub fn transitions_by_external_ids(
    conn: &mut AnyConnection,
    external_ids: &[&str],
) -> QueryResult<Vec<(String, i64, String)>> {
    super::in_chunks(external_ids, |chunk| {
        stage_transitions::table
            .filter(stage_transitions::external_id.eq_any(chunk))
            .select((
                stage_transitions::external_id.assume_not_null(),
                stage_transitions::lead_id,
                stage_transitions::actor,
            ))
            .load(conn)
    })
}

/// (lead, whether it is the creation row, time) of every stage row of some leads.
pub fn stage_times_of(
    conn: &mut AnyConnection,
    lead_ids: &[i64],
) -> QueryResult<Vec<(i64, bool, NaiveDateTime)>> {
    super::in_chunks(lead_ids, |chunk| {
        stage_transitions::table
            .filter(stage_transitions::lead_id.eq_any(chunk))
            .select((
                stage_transitions::lead_id,
                stage_transitions::from_stage.is_null(),
                stage_transitions::occurred_at,
            ))
            .load(conn)
    })
}

/// Writes every column of a lead as it is now (the batched import's one write per lead).
pub fn update_whole(conn: &mut AnyConnection, row: &LeadRow) -> QueryResult<usize> {
    diesel::update(leads::table.find(row.id))
        .set(row)
        .execute(conn)
}

/// Removes the attributes of some leads (before they are written anew).
pub fn delete_attributes(conn: &mut AnyConnection, lead_ids: &[i64]) -> QueryResult<usize> {
    let mut n = 0;
    for chunk in lead_ids.chunks(super::CHUNK) {
        n += diesel::delete(lead_attributes::table.filter(lead_attributes::lead_id.eq_any(chunk)))
            .execute(conn)?;
    }
    Ok(n)
}
