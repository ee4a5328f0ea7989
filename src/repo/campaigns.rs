//! Campaigns and the money spent on them.

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::prelude::*;

use crate::db::schema::{campaign_costs, campaigns, leads, touchpoints};
use crate::db::AnyConnection;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = campaigns, treat_none_as_default_value = false)]
pub struct CampaignRow {
    pub id: i64,
    pub external_id: String,
    pub name: String,
    pub channel: String,
    pub owner_id: Option<i64>,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub budget_cents: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Insertable, AsChangeset)]
#[diesel(table_name = campaigns, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct CampaignValues<'a> {
    pub external_id: &'a str,
    pub name: &'a str,
    pub channel: &'a str,
    pub owner_id: Option<i64>,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub budget_cents: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = campaign_costs, treat_none_as_default_value = false)]
pub struct CostRow {
    pub id: i64,
    pub external_id: String,
    pub campaign_id: i64,
    pub amount_cents: i64,
    pub incurred_on: NaiveDate,
    /// The currency it was written in and its amount there (None: the reporting currency).
    pub currency: Option<String>,
    pub original_amount: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Insertable, AsChangeset)]
#[diesel(table_name = campaign_costs, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct CostValues<'a> {
    pub external_id: &'a str,
    pub campaign_id: i64,
    pub amount_cents: i64,
    pub incurred_on: NaiveDate,
    pub currency: Option<&'a str>,
    pub original_amount: Option<i64>,
}

/// Which campaigns a list may show.
#[derive(Debug, Clone, Default)]
pub struct CampaignFilter {
    pub channel: Option<String>,
    /// Only campaigns owned by this user.
    pub owner_id: Option<i64>,
}

pub fn by_external_id(
    conn: &mut AnyConnection,
    external_id: &str,
) -> QueryResult<Option<CampaignRow>> {
    campaigns::table
        .filter(campaigns::external_id.eq(external_id))
        .select(CampaignRow::as_select())
        .first(conn)
        .optional()
}

pub fn by_id(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<CampaignRow>> {
    campaigns::table
        .find(id)
        .select(CampaignRow::as_select())
        .first(conn)
        .optional()
}

pub fn by_ids(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<HashMap<i64, CampaignRow>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(super::CHUNK) {
        for row in campaigns::table
            .filter(campaigns::id.eq_any(chunk))
            .select(CampaignRow::as_select())
            .load(conn)?
        {
            out.insert(row.id, row);
        }
    }
    Ok(out)
}

fn filtered(filter: &CampaignFilter) -> campaigns::BoxedQuery<'static, crate::db::MultiBackend> {
    let mut query = campaigns::table.into_boxed();
    if let Some(channel) = &filter.channel {
        query = query.filter(campaigns::channel.eq(channel.clone()));
    }
    if let Some(owner) = filter.owner_id {
        query = query.filter(campaigns::owner_id.eq(owner));
    }
    query
}

/// A page in externalId order, after the cursor.
pub fn page(
    conn: &mut AnyConnection,
    filter: &CampaignFilter,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<CampaignRow>> {
    let mut query = filtered(filter)
        .select(CampaignRow::as_select())
        .order(campaigns::external_id.asc())
        .limit(limit);
    if let Some(after) = after {
        query = query.filter(campaigns::external_id.gt(after.to_string()));
    }
    query.load(conn)
}

pub fn count(conn: &mut AnyConnection, filter: &CampaignFilter) -> QueryResult<i64> {
    filtered(filter).count().get_result(conn)
}

pub fn insert(conn: &mut AnyConnection, values: &CampaignValues<'_>) -> QueryResult<i64> {
    diesel::insert_into(campaigns::table)
        .values(values)
        .returning(campaigns::id)
        .get_result(conn)
}

pub fn update(
    conn: &mut AnyConnection,
    id: i64,
    values: &CampaignValues<'_>,
) -> QueryResult<usize> {
    diesel::update(campaigns::table.find(id))
        .set(values)
        .execute(conn)
}

pub fn cost_by_external_id(
    conn: &mut AnyConnection,
    external_id: &str,
) -> QueryResult<Option<CostRow>> {
    campaign_costs::table
        .filter(campaign_costs::external_id.eq(external_id))
        .select(CostRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_cost(conn: &mut AnyConnection, values: &CostValues<'_>) -> QueryResult<i64> {
    diesel::insert_into(campaign_costs::table)
        .values(values)
        .returning(campaign_costs::id)
        .get_result(conn)
}

pub fn update_cost(
    conn: &mut AnyConnection,
    id: i64,
    values: &CostValues<'_>,
) -> QueryResult<usize> {
    diesel::update(campaign_costs::table.find(id))
        .set(values)
        .execute(conn)
}

/// The cost rows of some campaigns, optionally only those incurred in `[from, to)`.
pub fn costs_of(
    conn: &mut AnyConnection,
    campaign_ids: &[i64],
    range: Option<(NaiveDate, NaiveDate)>,
) -> QueryResult<Vec<CostRow>> {
    let mut out = Vec::new();
    for chunk in campaign_ids.chunks(super::CHUNK) {
        let mut query = campaign_costs::table
            .filter(campaign_costs::campaign_id.eq_any(chunk))
            .select(CostRow::as_select())
            .into_boxed();
        if let Some((from, to)) = range {
            query = query
                .filter(campaign_costs::incurred_on.ge(from))
                .filter(campaign_costs::incurred_on.lt(to));
        }
        out.extend(query.load(conn)?);
    }
    Ok(out)
}

/// Ids and externalIds of the leads with a touchpoint on the campaign, in externalId order.
pub fn lead_page(
    conn: &mut AnyConnection,
    campaign_id: i64,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<i64>> {
    let touched = touchpoints::table
        .filter(touchpoints::campaign_id.eq(campaign_id))
        .select(touchpoints::lead_id);
    let mut query = leads::table
        .filter(leads::id.eq_any(touched))
        .select(leads::id)
        .order(leads::external_id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(leads::external_id.gt(after.to_string()));
    }
    query.load(conn)
}

pub fn lead_count(conn: &mut AnyConnection, campaign_id: i64) -> QueryResult<i64> {
    let touched = touchpoints::table
        .filter(touchpoints::campaign_id.eq(campaign_id))
        .select(touchpoints::lead_id);
    leads::table
        .filter(leads::id.eq_any(touched))
        .count()
        .get_result(conn)
}

/// Every campaign (a company has thousands at most).
pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<CampaignRow>> {
    campaigns::table
        .select(CampaignRow::as_select())
        .order(campaigns::external_id)
        .load(conn)
}

/// (campaign, day, amount) of every cost.
pub fn all_costs(conn: &mut AnyConnection) -> QueryResult<Vec<(i64, NaiveDate, i64)>> {
    campaign_costs::table
        .select((
            campaign_costs::campaign_id,
            campaign_costs::incurred_on,
            campaign_costs::amount_cents,
        ))
        .load(conn)
}

/// Campaign ids by externalId, any number of them.
pub fn ids_by_external_ids(
    conn: &mut AnyConnection,
    external_ids: &[&str],
) -> QueryResult<HashMap<String, i64>> {
    let pairs = super::in_chunks(external_ids, |chunk| {
        campaigns::table
            .filter(campaigns::external_id.eq_any(chunk))
            .select((campaigns::external_id, campaigns::id))
            .load::<(String, i64)>(conn)
    })?;
    Ok(pairs.into_iter().collect())
}
