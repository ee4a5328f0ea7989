//! Compensation plans, assignments, closed periods and frozen statements.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{
    closed_periods, compensation_plans, frozen_statements, plan_assignments, revenue_events,
};
use crate::db::AnyConnection;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = compensation_plans)]
pub struct PlanRow {
    pub id: i64,
    pub external_id: String,
    pub name: String,
    pub model: String,
    pub revenue_rate: String,
    pub quota_cents: Option<i64>,
    pub accelerator_rate: Option<String>,
    pub qualified_lead_bonus_cents: i64,
    pub cap_cents: Option<i64>,
    pub clawback_days: i32,
    /// Whose touches its statements credit on a deal (SPEC §8 mapping).
    pub contacts: String,
    /// The custom model's key when `model` is CUSTOM (its current version is used).
    pub custom_model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Insertable, AsChangeset)]
#[diesel(table_name = compensation_plans, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct PlanValues<'a> {
    pub external_id: &'a str,
    pub name: &'a str,
    pub model: &'a str,
    pub revenue_rate: &'a str,
    pub quota_cents: Option<i64>,
    pub accelerator_rate: Option<&'a str>,
    pub qualified_lead_bonus_cents: i64,
    pub cap_cents: Option<i64>,
    pub clawback_days: i32,
    pub contacts: &'a str,
    pub custom_model: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = closed_periods)]
pub struct ClosedPeriodRow {
    pub id: i64,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    pub closed_at: NaiveDateTime,
    pub closed_by: String,
    pub statements: i32,
}

pub fn plan_by_external_id(
    conn: &mut AnyConnection,
    external_id: &str,
) -> QueryResult<Option<PlanRow>> {
    compensation_plans::table
        .filter(compensation_plans::external_id.eq(external_id))
        .select(PlanRow::as_select())
        .first(conn)
        .optional()
}

pub fn plan_by_id(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<PlanRow>> {
    compensation_plans::table
        .find(id)
        .select(PlanRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_plan(conn: &mut AnyConnection, values: &PlanValues<'_>) -> QueryResult<i64> {
    diesel::insert_into(compensation_plans::table)
        .values(values)
        .returning(compensation_plans::id)
        .get_result(conn)
}

pub fn update_plan(
    conn: &mut AnyConnection,
    id: i64,
    values: &PlanValues<'_>,
) -> QueryResult<usize> {
    diesel::update(compensation_plans::table.find(id))
        .set(values)
        .execute(conn)
}

/// Sets the plan of a user from a date (one assignment per user and date).
pub fn assign(
    conn: &mut AnyConnection,
    user_id: i64,
    plan_id: i64,
    from: NaiveDate,
) -> QueryResult<bool> {
    let updated = diesel::update(
        plan_assignments::table
            .filter(plan_assignments::user_id.eq(user_id))
            .filter(plan_assignments::effective_from.eq(from)),
    )
    .set(plan_assignments::plan_id.eq(plan_id))
    .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(plan_assignments::table)
            .values((
                plan_assignments::user_id.eq(user_id),
                plan_assignments::plan_id.eq(plan_id),
                plan_assignments::effective_from.eq(from),
            ))
            .execute(conn)?;
        return Ok(true);
    }
    Ok(false)
}

/// The plan in effect for a user on a day: the latest assignment effective on or before it.
pub fn plan_in_effect(
    conn: &mut AnyConnection,
    user_id: i64,
    on: NaiveDate,
) -> QueryResult<Option<PlanRow>> {
    let plan_id: Option<i64> = plan_assignments::table
        .filter(plan_assignments::user_id.eq(user_id))
        .filter(plan_assignments::effective_from.le(on))
        .order(plan_assignments::effective_from.desc())
        .select(plan_assignments::plan_id)
        .first(conn)
        .optional()?;
    match plan_id {
        Some(id) => plan_by_id(conn, id),
        None => Ok(None),
    }
}

/// The users who have a plan assignment effective on or before `on`.
pub fn users_with_plans(conn: &mut AnyConnection, on: NaiveDate) -> QueryResult<Vec<i64>> {
    plan_assignments::table
        .filter(plan_assignments::effective_from.le(on))
        .select(plan_assignments::user_id)
        .distinct()
        .load(conn)
}

/// The first day with positive revenue, per opportunity.
pub fn first_positive_bookings(
    conn: &mut AnyConnection,
    opportunity_ids: &[i64],
) -> QueryResult<Vec<(i64, NaiveDate)>> {
    let mut out = Vec::new();
    for chunk in opportunity_ids.chunks(super::CHUNK) {
        let rows: Vec<(i64, Option<NaiveDate>)> = revenue_events::table
            .filter(revenue_events::opportunity_id.eq_any(chunk))
            .filter(revenue_events::amount_cents.gt(0))
            .group_by(revenue_events::opportunity_id)
            .select((
                revenue_events::opportunity_id,
                diesel::dsl::min(revenue_events::booked_on),
            ))
            .load(conn)?;
        out.extend(rows.into_iter().filter_map(|(o, d)| d.map(|d| (o, d))));
    }
    Ok(out)
}

pub fn closed_periods(conn: &mut AnyConnection) -> QueryResult<Vec<ClosedPeriodRow>> {
    closed_periods::table
        .select(ClosedPeriodRow::as_select())
        .order(closed_periods::period_from)
        .load(conn)
}

/// The closed period that holds `day`, if any.
pub fn closed_holding(
    conn: &mut AnyConnection,
    day: NaiveDate,
) -> QueryResult<Option<ClosedPeriodRow>> {
    closed_periods::table
        .filter(closed_periods::period_from.le(day))
        .filter(closed_periods::period_to.gt(day))
        .select(ClosedPeriodRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_closed(
    conn: &mut AnyConnection,
    from: NaiveDate,
    to: NaiveDate,
    at: NaiveDateTime,
    by: &str,
    statements: i32,
) -> QueryResult<i64> {
    diesel::insert_into(closed_periods::table)
        .values((
            closed_periods::period_from.eq(from),
            closed_periods::period_to.eq(to),
            closed_periods::closed_at.eq(at),
            closed_periods::closed_by.eq(by),
            closed_periods::statements.eq(statements),
        ))
        .returning(closed_periods::id)
        .get_result(conn)
}

pub fn delete_closed(conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
    diesel::delete(frozen_statements::table.filter(frozen_statements::closed_period_id.eq(id)))
        .execute(conn)?;
    diesel::delete(closed_periods::table.find(id)).execute(conn)?;
    Ok(())
}

pub fn freeze(
    conn: &mut AnyConnection,
    closed_id: i64,
    user_external_id: &str,
    body: &str,
) -> QueryResult<()> {
    diesel::insert_into(frozen_statements::table)
        .values((
            frozen_statements::closed_period_id.eq(closed_id),
            frozen_statements::user_external_id.eq(user_external_id),
            frozen_statements::body.eq(body),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn frozen(
    conn: &mut AnyConnection,
    closed_id: i64,
    user_external_id: Option<&str>,
) -> QueryResult<Vec<String>> {
    let mut query = frozen_statements::table
        .filter(frozen_statements::closed_period_id.eq(closed_id))
        .select(frozen_statements::body)
        .order(frozen_statements::user_external_id)
        .into_boxed();
    if let Some(u) = user_external_id {
        query = query.filter(frozen_statements::user_external_id.eq(u.to_string()));
    }
    query.load(conn)
}
