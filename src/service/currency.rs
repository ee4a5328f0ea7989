//! Currencies (issue 17, SPEC §9): the reporting currency a database's amounts are in, dated
//! exchange rates, and the value of an amount written in another currency.
//!
//! Every amount keeps the currency and amount it was written in (`currency`, `original_amount`;
//! NULL for the reporting currency) and its reporting-currency value (`amount_cents`), which is
//! what every report splits: the original at the rate in force on the amount's day, exact and
//! rounded half-to-even once. A rate change re-values the amounts of its currency dated in the
//! span it changes, in the same transaction, unless one of them lies in a closed period.

use chrono::NaiveDate;

use super::{AppError, AppResult, Ctx};
use crate::auth::Write;
use crate::db::AnyConnection;
use crate::domain::currency::{self as cur, CurrencyError, Priced, Rate, Rates};
use crate::repo::compensation as periods;
use crate::repo::rates::{self as repo, Amounts, RateRow, AMOUNTS};
use crate::repo::settings;

const KEY: &str = "reporting_currency";

impl From<CurrencyError> for AppError {
    fn from(e: CurrencyError) -> Self {
        AppError::BadInput(e.to_string())
    }
}

/// Records `configured` as the database's reporting currency when it has none yet; refuses
/// (CONFLICT) when it has another.
pub fn claim(conn: &mut AnyConnection, configured: &str) -> AppResult<()> {
    check_reporting(configured)?;
    crate::db::write_transaction(conn, |conn| -> AppResult<()> {
        match settings::get(conn, KEY)? {
            Some(stored) if stored == configured => Ok(()),
            Some(stored) => Err(AppError::Conflict(format!(
                "this database's amounts are in {stored}, but FUNNELGRAPH_CURRENCY is {configured}: \
                 start with FUNNELGRAPH_CURRENCY={stored} (changing it would re-label every stored \
                 amount)"
            ))),
            None => Ok(settings::set(conn, KEY, configured)?),
        }
    })
}

/// Checks `FUNNELGRAPH_CURRENCY` before anything is stored: an ISO 4217 code with a minor unit.
pub fn check_reporting(code: &str) -> AppResult<()> {
    cur::lookup(code)
        .map(|_| ())
        .map_err(|e| AppError::BadInput(format!("FUNNELGRAPH_CURRENCY: {e}")))
}

fn rates_of(rows: &[RateRow]) -> AppResult<Rates> {
    let mut rates = Rates::default();
    for row in rows {
        let rate = Rate::parse(&row.rate).map_err(|e| {
            AppError::Internal(format!("stored rate {} of {}: {e}", row.rate, row.currency))
        })?;
        rates.insert(&row.currency, row.effective_from, rate);
    }
    Ok(rates)
}

/// Every exchange rate (the batched import reads them once per run).
pub fn all_rates(conn: &mut AnyConnection) -> AppResult<Rates> {
    rates_of(&repo::all(conn)?)
}

/// `(amount, currency)` dated `day` valued in the reporting currency (no query when it is
/// written in the reporting currency).
pub fn price_in(
    ctx: &Ctx,
    conn: &mut AnyConnection,
    money: &(String, String),
    day: NaiveDate,
) -> AppResult<Priced> {
    let (amount, currency) = money;
    Ok(rates_for(ctx, conn, currency)?.price(amount, currency, &ctx.currency, day)?)
}

/// The rates an amount written in `currency` needs (none for the reporting currency).
pub fn rates_for(ctx: &Ctx, conn: &mut AnyConnection, currency: &str) -> AppResult<Rates> {
    if currency == ctx.currency {
        return Ok(Rates::default());
    }
    rates_of(&repo::of_currency(conn, currency)?)
}

/// An amount's stored columns: (currency, original minor units), None for the reporting currency.
pub fn columns(priced: &Priced) -> (Option<&str>, Option<i64>) {
    match &priced.original {
        Some(o) => (Some(o.currency.as_str()), Some(o.units)),
        None => (None, None),
    }
}

/// Whether an amount is negative as written (a rounding to 0 does not hide it).
pub fn is_negative(priced: &Priced) -> bool {
    priced.value.0 < 0 || priced.original.as_ref().is_some_and(|o| o.units < 0)
}

/// Money a rule sets (budgets, plan quota, bonus and cap): in the reporting currency only.
pub fn reporting_only(
    ctx: &Ctx,
    what: &str,
    amount: &str,
    currency: &str,
) -> AppResult<crate::domain::money::Money> {
    if currency != ctx.currency {
        return Err(AppError::BadInput(format!(
            "{what} is in the reporting currency {reporting}, not {currency}: convert it first \
             (only opportunities, revenue and costs may be written in other currencies)",
            reporting = ctx.currency
        )));
    }
    ctx.parse_money(amount, currency)
}

#[derive(Debug, Clone)]
pub struct RateInput {
    pub currency: String,
    pub rate: String,
    pub effective_from: NaiveDate,
}

/// A dated rate: in force from `effective_from` (inclusive) until `effective_to` (exclusive;
/// None: until a later one is recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRecord {
    pub currency: String,
    pub rate: String,
    pub effective_from: NaiveDate,
    pub effective_to: Option<NaiveDate>,
}

/// What an upsert did: the rate, and how many amounts it re-valued.
#[derive(Debug, Clone)]
pub struct RateOutcome {
    pub record: RateRecord,
    pub revalued: i64,
}

pub async fn upsert_rate(ctx: &Ctx, input: RateInput) -> AppResult<RateOutcome> {
    ctx.write(input, upsert_rate_in).await
}

/// The use case inside a caller's transaction (a mutation's own, or a record of `/import`).
pub fn upsert_rate_in(
    ctx: &Ctx,
    conn: &mut AnyConnection,
    input: &RateInput,
) -> AppResult<RateOutcome> {
    ctx.require_write(Write::ExchangeRates, "upsert exchange rates")?;
    let currency = cur::lookup(&input.currency)?;
    if currency.code == ctx.currency {
        return Err(AppError::BadInput(format!(
            "{} is the reporting currency: its rate is always 1",
            currency.code
        )));
    }
    let rate = Rate::parse(&input.rate)?;
    let day = input.effective_from;
    let rows = repo::of_currency(conn, currency.code)?;
    let rates = rates_of(&rows)?;
    let next = rates.next_after(currency.code, day);
    let record = RateRecord {
        currency: currency.code.to_string(),
        rate: rate.to_string(),
        effective_from: day,
        effective_to: next,
    };
    let external_id = format!("{}@{day}", currency.code);
    let existing = rows.iter().find(|r| r.effective_from == day);
    if let Some(row) = existing {
        if Rate::parse(&row.rate).ok() == Some(rate) {
            ctx.audit(
                conn,
                "upsertExchangeRate",
                Some(&external_id),
                "unchanged (replay)",
            )?;
            return Ok(RateOutcome {
                record,
                revalued: 0,
            });
        }
    }
    // The rate in force on [day, next) so far; the amounts there move only when it changes.
    let before = rates.in_force(currency.code, day).map(|(_, r)| r);
    let mut revalued = 0i64;
    if before != Some(rate) {
        let closed = periods::closed_periods(conn)?;
        let mut moved: Vec<(Amounts, i64, i64)> = Vec::new();
        for what in AMOUNTS {
            for (id, original, on, value) in repo::written_in(conn, what, currency.code, day, next)?
            {
                if let Some(c) = closed
                    .iter()
                    .find(|c| c.period_from <= on && on < c.period_to)
                {
                    return Err(AppError::PeriodClosed(format!(
                        "this rate would re-value {} written in {} on {on}, in the closed period \
                         {}..{}; reopen it first (rates in force in a closed period are frozen)",
                        noun(what),
                        currency.code,
                        c.period_from,
                        c.period_to
                    )));
                }
                let new =
                    cur::value_of(original, &currency, rate, &ctx.currency).ok_or_else(|| {
                        AppError::BadInput(format!(
                        "at {} an amount of {} {} on {on} converts to more than the largest amount \
                         this server can hold",
                        rate,
                        crate::domain::money::format_units(i128::from(original), currency.digits),
                        currency.code
                    ))
                    })?;
                if new.0 != value {
                    moved.push((what, id, new.0));
                }
            }
        }
        for what in AMOUNTS {
            let values: Vec<(i64, i64)> = moved
                .iter()
                .filter(|(w, ..)| *w == what)
                .map(|(_, id, value)| (*id, *value))
                .collect();
            repo::revalue(conn, what, &values)?;
        }
        revalued = i64::try_from(moved.len()).unwrap_or(i64::MAX);
    }
    repo::upsert(conn, currency.code, day, &record.rate)?;
    let outcome = if existing.is_some() {
        "updated"
    } else {
        "created"
    };
    ctx.audit(
        conn,
        "upsertExchangeRate",
        Some(&external_id),
        &format!("{outcome} {}; re-valued {revalued} amounts", record.rate),
    )?;
    Ok(RateOutcome { record, revalued })
}

fn noun(what: Amounts) -> &'static str {
    match what {
        Amounts::Opportunities => "an opportunity",
        Amounts::Revenue => "revenue",
        Amounts::Costs => "a cost",
    }
}

/// The rates in force on some day of `[from, to)` (either end open), of one currency or all,
/// by currency then date. Any signed-in caller: rates are no one's personal data, and every
/// role sees amounts they produced.
pub async fn rates(
    ctx: &Ctx,
    currency: Option<String>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> AppResult<Vec<RateRecord>> {
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            return Err(AppError::BadInput(format!("to {t} is before from {f}")));
        }
        if t == f {
            return Ok(Vec::new());
        }
    }
    if let Some(code) = &currency {
        cur::lookup(code)?;
    }
    let rows = ctx
        .db
        .run(move |conn| -> AppResult<Vec<RateRow>> {
            Ok(match &currency {
                Some(c) => repo::of_currency(conn, c)?,
                None => repo::all(conn)?,
            })
        })
        .await?;
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let effective_to = rows
            .get(i + 1)
            .filter(|n| n.currency == row.currency)
            .map(|n| n.effective_from);
        let starts_before_to = to.is_none_or(|t| row.effective_from < t);
        let ends_after_from = match (from, effective_to) {
            (Some(f), Some(e)) => e > f,
            _ => true,
        };
        if starts_before_to && ends_after_from {
            let rate = Rate::parse(&row.rate).map_err(|e| AppError::Internal(e.to_string()))?;
            out.push(RateRecord {
                currency: row.currency.clone(),
                rate: rate.to_string(),
                effective_from: row.effective_from,
                effective_to,
            });
        }
    }
    Ok(out)
}
