//! Accounts (SPEC §8), their attributes, and the leads matched to them by domain.

use std::collections::HashMap;

use diesel::prelude::*;

use crate::db::schema::{account_attributes, accounts, leads, opportunities};
use crate::db::AnyConnection;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = accounts, treat_none_as_default_value = false)]
pub struct AccountRow {
    pub id: i64,
    pub external_id: String,
    pub name: String,
    pub domain: Option<String>,
    pub owner_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Insertable, AsChangeset)]
#[diesel(table_name = accounts, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct AccountValues<'a> {
    pub external_id: &'a str,
    pub name: &'a str,
    pub domain: Option<&'a str>,
    pub owner_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = account_attributes, treat_none_as_default_value = false)]
pub struct AccountAttributeRow {
    pub account_id: i64,
    pub key: String,
    pub value: String,
}

/// Which accounts a list may show.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    /// Only accounts owned by this user.
    pub owner_id: Option<i64>,
    /// Only accounts whose attribute `segment` has this value.
    pub segment: Option<String>,
}

pub fn by_external_id(
    conn: &mut AnyConnection,
    external_id: &str,
) -> QueryResult<Option<AccountRow>> {
    accounts::table
        .filter(accounts::external_id.eq(external_id))
        .select(AccountRow::as_select())
        .first(conn)
        .optional()
}

pub fn by_id(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<AccountRow>> {
    accounts::table
        .find(id)
        .select(AccountRow::as_select())
        .first(conn)
        .optional()
}

pub fn by_domain(conn: &mut AnyConnection, domain: &str) -> QueryResult<Option<AccountRow>> {
    accounts::table
        .filter(accounts::domain.eq(domain))
        .select(AccountRow::as_select())
        .first(conn)
        .optional()
}

pub fn by_ids(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<HashMap<i64, AccountRow>> {
    let rows = super::in_chunks(ids, |chunk| {
        accounts::table
            .filter(accounts::id.eq_any(chunk))
            .select(AccountRow::as_select())
            .load(conn)
    })?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}

/// Account ids by externalId, for those that exist.
pub fn ids_by_external_ids(
    conn: &mut AnyConnection,
    ext: &[&str],
) -> QueryResult<HashMap<String, i64>> {
    let rows = super::in_chunks(ext, |chunk| {
        accounts::table
            .filter(accounts::external_id.eq_any(chunk))
            .select((accounts::external_id, accounts::id))
            .load::<(String, i64)>(conn)
    })?;
    Ok(rows.into_iter().collect())
}

/// Account ids by domain, for the domains some account has.
pub fn ids_by_domains(
    conn: &mut AnyConnection,
    domains: &[&str],
) -> QueryResult<HashMap<String, i64>> {
    let rows = super::in_chunks(domains, |chunk| {
        accounts::table
            .filter(accounts::domain.eq_any(chunk))
            .select((accounts::domain.assume_not_null(), accounts::id))
            .load::<(String, i64)>(conn)
    })?;
    Ok(rows.into_iter().collect())
}

/// Every account (the reports' grouping keys, the account funnel).
pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<AccountRow>> {
    accounts::table
        .select(AccountRow::as_select())
        .order(accounts::id)
        .load(conn)
}

/// Every account's value of one attribute.
pub fn attribute_of_all(conn: &mut AnyConnection, key: &str) -> QueryResult<HashMap<i64, String>> {
    Ok(account_attributes::table
        .filter(account_attributes::key.eq(key))
        .select((account_attributes::account_id, account_attributes::value))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect())
}

fn filtered(filter: &AccountFilter) -> accounts::BoxedQuery<'static, crate::db::MultiBackend> {
    let mut query = accounts::table.into_boxed();
    if let Some(owner) = filter.owner_id {
        query = query.filter(accounts::owner_id.eq(owner));
    }
    if let Some(segment) = &filter.segment {
        query = query.filter(
            accounts::id.eq_any(
                account_attributes::table
                    .filter(account_attributes::key.eq("segment"))
                    .filter(account_attributes::value.eq(segment.clone()))
                    .select(account_attributes::account_id),
            ),
        );
    }
    query
}

/// A page in externalId order, after the cursor.
pub fn page(
    conn: &mut AnyConnection,
    filter: &AccountFilter,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AccountRow>> {
    let mut query = filtered(filter)
        .select(AccountRow::as_select())
        .order(accounts::external_id.asc())
        .limit(limit);
    if let Some(after) = after {
        query = query.filter(accounts::external_id.gt(after.to_string()));
    }
    query.load(conn)
}

pub fn count(conn: &mut AnyConnection, filter: &AccountFilter) -> QueryResult<i64> {
    filtered(filter).count().get_result(conn)
}

pub fn insert(conn: &mut AnyConnection, values: &AccountValues<'_>) -> QueryResult<i64> {
    diesel::insert_into(accounts::table)
        .values(values)
        .returning(accounts::id)
        .get_result(conn)
}

pub fn update(conn: &mut AnyConnection, id: i64, values: &AccountValues<'_>) -> QueryResult<usize> {
    diesel::update(accounts::table.find(id))
        .set(values)
        .execute(conn)
}

/// (account id, key, value), by account then key.
pub fn attributes_of(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> QueryResult<Vec<(i64, String, String)>> {
    super::in_chunks(ids, |chunk| {
        account_attributes::table
            .filter(account_attributes::account_id.eq_any(chunk))
            .select((
                account_attributes::account_id,
                account_attributes::key,
                account_attributes::value,
            ))
            .order((account_attributes::account_id, account_attributes::key))
            .load(conn)
    })
}

pub fn replace_attributes(
    conn: &mut AnyConnection,
    account_id: i64,
    attributes: &[(String, String)],
) -> QueryResult<()> {
    diesel::delete(account_attributes::table.filter(account_attributes::account_id.eq(account_id)))
        .execute(conn)?;
    let rows: Vec<_> = attributes
        .iter()
        .map(|(k, v)| {
            (
                account_attributes::account_id.eq(account_id),
                account_attributes::key.eq(k),
                account_attributes::value.eq(v),
            )
        })
        .collect();
    for row in rows {
        diesel::insert_into(account_attributes::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Matches the leads without an explicit account to this account by its domain: those it had
/// by a domain it no longer has lose it, those whose email has its domain (and no other
/// account) take it. Returns how many leads changed.
pub fn rematch(
    conn: &mut AnyConnection,
    account_id: i64,
    domain: Option<&str>,
) -> QueryResult<usize> {
    let mut released = leads::table
        .filter(leads::account_explicit.eq(false))
        .filter(leads::account_id.eq(account_id))
        .into_boxed();
    if let Some(d) = domain {
        released = released.filter(leads::email_domain.ne(d).or(leads::email_domain.is_null()));
    }
    let released: Vec<i64> = released.select(leads::id).load(conn)?;
    let mut changed = 0;
    for chunk in released.chunks(super::CHUNK) {
        changed += diesel::update(leads::table.filter(leads::id.eq_any(chunk)))
            .set(leads::account_id.eq(None::<i64>))
            .execute(conn)?;
    }
    if let Some(d) = domain {
        changed += diesel::update(
            leads::table
                .filter(leads::account_explicit.eq(false))
                .filter(leads::email_domain.eq(d))
                .filter(
                    leads::account_id
                        .is_null()
                        .or(leads::account_id.ne(account_id)),
                ),
        )
        .set(leads::account_id.eq(account_id))
        .execute(conn)?;
    }
    Ok(changed)
}

/// The ids of an account's leads, ascending.
pub fn lead_ids_of(conn: &mut AnyConnection, account_id: i64) -> QueryResult<Vec<i64>> {
    leads::table
        .filter(leads::account_id.eq(account_id))
        .select(leads::id)
        .order(leads::id)
        .load(conn)
}

/// The ids of an account's opportunities: those naming it and those without an account whose
/// primary contact belongs to it.
pub fn opportunity_ids_of(conn: &mut AnyConnection, account_id: i64) -> QueryResult<Vec<i64>> {
    let mut ids: Vec<i64> = opportunities::table
        .filter(opportunities::account_id.eq(account_id))
        .select(opportunities::id)
        .load(conn)?;
    ids.extend(
        opportunities::table
            .filter(opportunities::account_id.is_null())
            .filter(
                opportunities::primary_contact_id.eq_any(
                    leads::table
                        .filter(leads::account_id.eq(account_id))
                        .select(leads::id),
                ),
            )
            .select(opportunities::id)
            .load::<i64>(conn)?,
    );
    ids.sort_unstable();
    Ok(ids)
}

/// Every opportunity as the account funnel reads it: (its account, its primary contact's
/// account, created, status, closed).
pub type DealFacts = (
    Option<i64>,
    Option<i64>,
    chrono::NaiveDateTime,
    String,
    Option<chrono::NaiveDateTime>,
);

/// The columns of `DealFacts`, over opportunities joined with their primary contact.
macro_rules! deal_columns {
    () => {
        (
            opportunities::account_id,
            leads::account_id,
            opportunities::created_at,
            opportunities::status,
            opportunities::closed_at,
        )
    };
}

pub fn deal_facts(conn: &mut AnyConnection) -> QueryResult<Vec<DealFacts>> {
    opportunities::table
        .inner_join(leads::table.on(leads::id.eq(opportunities::primary_contact_id)))
        .select(deal_columns!())
        .load(conn)
}

/// `deal_facts` of the opportunities of some accounts (naming one, or through their primary
/// contact).
pub fn deal_facts_of(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<Vec<DealFacts>> {
    // Two indexed lookups (an OR across the join would scan every deal).
    let mut out: Vec<DealFacts> = super::in_chunks(ids, |chunk| {
        opportunities::table
            .inner_join(leads::table.on(leads::id.eq(opportunities::primary_contact_id)))
            .filter(opportunities::account_id.eq_any(chunk))
            .select(deal_columns!())
            .load(conn)
    })?;
    out.extend(super::in_chunks(ids, |chunk| {
        leads::table
            .inner_join(opportunities::table.on(opportunities::primary_contact_id.eq(leads::id)))
            .filter(leads::account_id.eq_any(chunk))
            .filter(opportunities::account_id.is_null())
            .select(deal_columns!())
            .load::<DealFacts>(conn)
    })?);
    Ok(out)
}

/// The accounts of the leads that reached MQL, one entry per such lead.
pub fn accounts_of_mqls(conn: &mut AnyConnection) -> QueryResult<Vec<i64>> {
    leads::table
        .filter(leads::account_id.is_not_null())
        .filter(leads::mql_at.is_not_null())
        .select(leads::account_id.assume_not_null())
        .load(conn)
}

/// The leads of some accounts.
pub fn leads_of_accounts(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> QueryResult<Vec<super::leads::LeadRow>> {
    super::in_chunks(ids, |chunk| {
        leads::table
            .filter(leads::account_id.eq_any(chunk))
            .select(super::leads::LeadRow::as_select())
            .load(conn)
    })
}

/// Per account: (leads, summed current score, leads with a touch at or after `since`).
pub fn engagement(
    conn: &mut AnyConnection,
    ids: &[i64],
    since: chrono::NaiveDateTime,
) -> QueryResult<HashMap<i64, (i64, i64, i64)>> {
    use crate::db::schema::touchpoints;
    let mut out: HashMap<i64, (i64, i64, i64)> = HashMap::new();
    let rows: Vec<(i64, i64, i32)> = super::in_chunks(ids, |chunk| {
        leads::table
            .filter(leads::account_id.eq_any(chunk))
            .select((leads::account_id.assume_not_null(), leads::id, leads::score))
            .load(conn)
    })?;
    let lead_ids: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let engaged: std::collections::HashSet<i64> = super::in_chunks(&lead_ids, |chunk| {
        touchpoints::table
            .filter(touchpoints::lead_id.eq_any(chunk))
            .filter(touchpoints::occurred_at.ge(since))
            .select(touchpoints::lead_id)
            .distinct()
            .load::<i64>(conn)
    })?
    .into_iter()
    .collect();
    for (account, lead, score) in rows {
        let e = out.entry(account).or_default();
        e.0 += 1;
        e.1 += i64::from(score);
        e.2 += i64::from(engaged.contains(&lead));
    }
    Ok(out)
}
