//! Opportunities, their contacts, and the revenue booked on them.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{opportunities, opportunity_contacts, revenue_events};
use crate::db::AnyConnection;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = opportunities, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct OpportunityRow {
    pub id: i64,
    pub external_id: String,
    pub name: String,
    pub primary_contact_id: i64,
    pub owner_id: Option<i64>,
    pub amount_cents: i64,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
    /// The account it names (None: its primary contact's, SPEC §8).
    pub account_id: Option<i64>,
    /// The currency it was written in and its amount there (None: the reporting currency).
    pub currency: Option<String>,
    pub original_amount: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Insertable, AsChangeset)]
#[diesel(table_name = opportunities, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct OpportunityValues<'a> {
    pub external_id: &'a str,
    pub name: &'a str,
    pub primary_contact_id: i64,
    pub owner_id: Option<i64>,
    pub amount_cents: i64,
    pub created_at: NaiveDateTime,
    pub account_id: Option<i64>,
    pub currency: Option<&'a str>,
    pub original_amount: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = revenue_events, treat_none_as_default_value = false)]
pub struct RevenueRow {
    pub id: i64,
    pub external_id: String,
    pub opportunity_id: i64,
    pub amount_cents: i64,
    pub booked_on: NaiveDate,
    /// The currency it was written in and its amount there (None: the reporting currency).
    pub currency: Option<String>,
    pub original_amount: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Insertable, AsChangeset)]
#[diesel(table_name = revenue_events, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct RevenueValues<'a> {
    pub external_id: &'a str,
    pub opportunity_id: i64,
    pub amount_cents: i64,
    pub booked_on: NaiveDate,
    pub currency: Option<&'a str>,
    pub original_amount: Option<i64>,
}

/// Which opportunities a list may show.
#[derive(Debug, Clone, Default)]
pub struct OpportunityFilter {
    pub status: Option<String>,
    pub owner_id: Option<i64>,
}

pub fn by_external_id(
    conn: &mut AnyConnection,
    external_id: &str,
) -> QueryResult<Option<OpportunityRow>> {
    opportunities::table
        .filter(opportunities::external_id.eq(external_id))
        .select(OpportunityRow::as_select())
        .first(conn)
        .optional()
}

pub fn by_id(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<OpportunityRow>> {
    opportunities::table
        .find(id)
        .select(OpportunityRow::as_select())
        .first(conn)
        .optional()
}

pub fn by_ids(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<HashMap<i64, OpportunityRow>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(super::CHUNK) {
        for row in opportunities::table
            .filter(opportunities::id.eq_any(chunk))
            .select(OpportunityRow::as_select())
            .load(conn)?
        {
            out.insert(row.id, row);
        }
    }
    Ok(out)
}

fn filtered(
    filter: &OpportunityFilter,
) -> opportunities::BoxedQuery<'static, crate::db::MultiBackend> {
    let mut query = opportunities::table.into_boxed();
    if let Some(status) = &filter.status {
        query = query.filter(opportunities::status.eq(status.clone()));
    }
    if let Some(owner) = filter.owner_id {
        query = query.filter(opportunities::owner_id.eq(owner));
    }
    query
}

pub fn page(
    conn: &mut AnyConnection,
    filter: &OpportunityFilter,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<OpportunityRow>> {
    let mut query = filtered(filter)
        .select(OpportunityRow::as_select())
        .order(opportunities::external_id.asc())
        .limit(limit);
    if let Some(after) = after {
        query = query.filter(opportunities::external_id.gt(after.to_string()));
    }
    query.load(conn)
}

pub fn count(conn: &mut AnyConnection, filter: &OpportunityFilter) -> QueryResult<i64> {
    filtered(filter).count().get_result(conn)
}

pub fn insert(conn: &mut AnyConnection, values: &OpportunityValues<'_>) -> QueryResult<i64> {
    diesel::insert_into(opportunities::table)
        .values((values, opportunities::status.eq("OPEN")))
        .returning(opportunities::id)
        .get_result(conn)
}

pub fn update(
    conn: &mut AnyConnection,
    id: i64,
    values: &OpportunityValues<'_>,
) -> QueryResult<usize> {
    diesel::update(opportunities::table.find(id))
        .set(values)
        .execute(conn)
}

pub fn close(
    conn: &mut AnyConnection,
    id: i64,
    status: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(opportunities::table.find(id))
        .set((
            opportunities::status.eq(status),
            opportunities::closed_at.eq(Some(at)),
        ))
        .execute(conn)
}

/// (opportunity id, lead id) pairs of some opportunities, primary contact first.
pub fn contacts_of(
    conn: &mut AnyConnection,
    opportunity_ids: &[i64],
) -> QueryResult<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    for chunk in opportunity_ids.chunks(super::CHUNK) {
        out.extend(
            opportunity_contacts::table
                .filter(opportunity_contacts::opportunity_id.eq_any(chunk))
                .order((
                    opportunity_contacts::opportunity_id,
                    opportunity_contacts::position,
                ))
                .select((
                    opportunity_contacts::opportunity_id,
                    opportunity_contacts::lead_id,
                ))
                .load::<(i64, i64)>(conn)?,
        );
    }
    Ok(out)
}

/// (lead id, opportunity owner id) for the opportunities that count the leads as contacts.
pub fn owners_by_contact(
    conn: &mut AnyConnection,
    lead_ids: &[i64],
) -> QueryResult<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    for chunk in lead_ids.chunks(super::CHUNK) {
        out.extend(
            opportunity_contacts::table
                .inner_join(opportunities::table)
                .filter(opportunity_contacts::lead_id.eq_any(chunk))
                .filter(opportunities::owner_id.is_not_null())
                .select((
                    opportunity_contacts::lead_id,
                    opportunities::owner_id.assume_not_null(),
                ))
                .load::<(i64, i64)>(conn)?,
        );
    }
    Ok(out)
}

pub fn replace_contacts(
    conn: &mut AnyConnection,
    opportunity_id: i64,
    lead_ids: &[i64],
) -> QueryResult<()> {
    diesel::delete(
        opportunity_contacts::table.filter(opportunity_contacts::opportunity_id.eq(opportunity_id)),
    )
    .execute(conn)?;
    for (position, lead_id) in lead_ids.iter().enumerate() {
        diesel::insert_into(opportunity_contacts::table)
            .values((
                opportunity_contacts::opportunity_id.eq(opportunity_id),
                opportunity_contacts::lead_id.eq(lead_id),
                opportunity_contacts::position.eq(position as i32),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn revenue_by_external_id(
    conn: &mut AnyConnection,
    external_id: &str,
) -> QueryResult<Option<RevenueRow>> {
    revenue_events::table
        .filter(revenue_events::external_id.eq(external_id))
        .select(RevenueRow::as_select())
        .first(conn)
        .optional()
}

pub fn revenue_by_id(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<RevenueRow>> {
    revenue_events::table
        .find(id)
        .select(RevenueRow::as_select())
        .first(conn)
        .optional()
}

pub fn revenue_of(
    conn: &mut AnyConnection,
    opportunity_ids: &[i64],
) -> QueryResult<Vec<RevenueRow>> {
    let mut out = Vec::new();
    for chunk in opportunity_ids.chunks(super::CHUNK) {
        out.extend(
            revenue_events::table
                .filter(revenue_events::opportunity_id.eq_any(chunk))
                .select(RevenueRow::as_select())
                .order((revenue_events::booked_on, revenue_events::external_id))
                .load(conn)?,
        );
    }
    Ok(out)
}

pub fn insert_revenue(conn: &mut AnyConnection, values: &RevenueValues<'_>) -> QueryResult<i64> {
    diesel::insert_into(revenue_events::table)
        .values(values)
        .returning(revenue_events::id)
        .get_result(conn)
}

pub fn update_revenue(
    conn: &mut AnyConnection,
    id: i64,
    values: &RevenueValues<'_>,
) -> QueryResult<usize> {
    diesel::update(revenue_events::table.find(id))
        .set(values)
        .execute(conn)
}

/// Opportunities by externalId, any number of them.
pub fn by_external_ids(
    conn: &mut AnyConnection,
    external_ids: &[&str],
) -> QueryResult<Vec<OpportunityRow>> {
    super::in_chunks(external_ids, |chunk| {
        opportunities::table
            .filter(opportunities::external_id.eq_any(chunk))
            .select(OpportunityRow::as_select())
            .load(conn)
    })
}

/// Revenue events by externalId, any number of them.
pub fn revenue_by_external_ids(
    conn: &mut AnyConnection,
    external_ids: &[&str],
) -> QueryResult<Vec<RevenueRow>> {
    super::in_chunks(external_ids, |chunk| {
        revenue_events::table
            .filter(revenue_events::external_id.eq_any(chunk))
            .select(RevenueRow::as_select())
            .load(conn)
    })
}

/// Writes every column of an opportunity as it is now (the batched import's one write).
pub fn update_whole(conn: &mut AnyConnection, row: &OpportunityRow) -> QueryResult<usize> {
    diesel::update(opportunities::table.find(row.id))
        .set(row)
        .execute(conn)
}

/// Removes the contacts of some opportunities (before they are written anew).
pub fn delete_contacts(conn: &mut AnyConnection, opportunity_ids: &[i64]) -> QueryResult<usize> {
    let mut n = 0;
    for chunk in opportunity_ids.chunks(super::CHUNK) {
        n += diesel::delete(
            opportunity_contacts::table.filter(opportunity_contacts::opportunity_id.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    Ok(n)
}
