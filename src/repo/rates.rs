//! Exchange rates and the amounts written in other currencies than the reporting one (SPEC §9).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use diesel::prelude::*;

use crate::db::schema::{campaign_costs, exchange_rates, opportunities, revenue_events};
use crate::db::AnyConnection;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = exchange_rates)]
pub struct RateRow {
    pub id: i64,
    pub currency: String,
    pub effective_from: NaiveDate,
    pub rate: String,
}

/// The rates of `currency`, by date.
pub fn of_currency(conn: &mut AnyConnection, currency: &str) -> QueryResult<Vec<RateRow>> {
    exchange_rates::table
        .filter(exchange_rates::currency.eq(currency))
        .select(RateRow::as_select())
        .order(exchange_rates::effective_from)
        .load(conn)
}

/// Every rate, by currency then date (a few hundred rows per currency over years).
pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<RateRow>> {
    exchange_rates::table
        .select(RateRow::as_select())
        .order((exchange_rates::currency, exchange_rates::effective_from))
        .load(conn)
}

/// Inserts the rate of `currency` from `from`, or replaces the one already dated there.
pub fn upsert(
    conn: &mut AnyConnection,
    currency: &str,
    from: NaiveDate,
    rate: &str,
) -> QueryResult<()> {
    let updated = diesel::update(
        exchange_rates::table
            .filter(exchange_rates::currency.eq(currency))
            .filter(exchange_rates::effective_from.eq(from)),
    )
    .set(exchange_rates::rate.eq(rate))
    .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(exchange_rates::table)
            .values((
                exchange_rates::currency.eq(currency),
                exchange_rates::effective_from.eq(from),
                exchange_rates::rate.eq(rate),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Which amounts: opportunities (dated by the UTC day of `created_at`), revenue events (their
/// booking day) or campaign costs (the day incurred).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amounts {
    Opportunities,
    Revenue,
    Costs,
}

pub const AMOUNTS: [Amounts; 3] = [Amounts::Opportunities, Amounts::Revenue, Amounts::Costs];

/// One amount written in another currency: (row id, original minor units, its day, its
/// reporting-currency value).
pub type Written = (i64, i64, NaiveDate, i64);

fn midnight(day: NaiveDate) -> NaiveDateTime {
    day.and_time(NaiveTime::MIN)
}

/// The amounts of `what` written in `currency` and dated in `[from, to)` (`to` None: onwards).
pub fn written_in(
    conn: &mut AnyConnection,
    what: Amounts,
    currency: &str,
    from: NaiveDate,
    to: Option<NaiveDate>,
) -> QueryResult<Vec<Written>> {
    let rows: Vec<(i64, Option<i64>, NaiveDate, i64)> = match what {
        Amounts::Opportunities => {
            let mut q = opportunities::table
                .filter(opportunities::currency.eq(currency))
                .filter(opportunities::created_at.ge(midnight(from)))
                .select((
                    opportunities::id,
                    opportunities::original_amount,
                    opportunities::created_at,
                    opportunities::amount_cents,
                ))
                .into_boxed();
            if let Some(to) = to {
                q = q.filter(opportunities::created_at.lt(midnight(to)));
            }
            q.load::<(i64, Option<i64>, NaiveDateTime, i64)>(conn)?
                .into_iter()
                .map(|(id, o, at, v)| (id, o, at.date(), v))
                .collect()
        }
        Amounts::Revenue => {
            let mut q = revenue_events::table
                .filter(revenue_events::currency.eq(currency))
                .filter(revenue_events::booked_on.ge(from))
                .select((
                    revenue_events::id,
                    revenue_events::original_amount,
                    revenue_events::booked_on,
                    revenue_events::amount_cents,
                ))
                .into_boxed();
            if let Some(to) = to {
                q = q.filter(revenue_events::booked_on.lt(to));
            }
            q.load(conn)?
        }
        Amounts::Costs => {
            let mut q = campaign_costs::table
                .filter(campaign_costs::currency.eq(currency))
                .filter(campaign_costs::incurred_on.ge(from))
                .select((
                    campaign_costs::id,
                    campaign_costs::original_amount,
                    campaign_costs::incurred_on,
                    campaign_costs::amount_cents,
                ))
                .into_boxed();
            if let Some(to) = to {
                q = q.filter(campaign_costs::incurred_on.lt(to));
            }
            q.load(conn)?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(id, original, day, value)| (id, original.unwrap_or(value), day, value))
        .collect())
}

/// Sets the reporting-currency values of some amounts: `(row id, value)`, a thousand rows per
/// `UPDATE … FROM (VALUES …)` (one statement instead of a round trip per row: a rate with no
/// successor can re-value every amount of its currency).
pub fn revalue(conn: &mut AnyConnection, what: Amounts, values: &[(i64, i64)]) -> QueryResult<()> {
    let table = match what {
        Amounts::Opportunities => "opportunities",
        Amounts::Revenue => "revenue_events",
        Amounts::Costs => "campaign_costs",
    };
    for chunk in values.chunks(1_000) {
        // Only integers are spliced into the statement.
        let rows = chunk
            .iter()
            .map(|(id, value)| format!("({id}, {value})"))
            .collect::<Vec<_>>()
            .join(", ");
        diesel::sql_query(format!(
            "UPDATE {table} SET amount_cents = v.amount FROM (SELECT column1 AS id, column2 AS amount \
             FROM (VALUES {rows}) AS t) AS v WHERE {table}.id = v.id"
        ))
        .execute(conn)?;
    }
    Ok(())
}
