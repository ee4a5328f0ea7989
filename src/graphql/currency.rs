//! Currencies (SPEC §9): `exchangeRates` and `upsertExchangeRate`.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};

use super::scalars::{Date, Decimal};
use super::session;
use crate::service::currency::{self as service, RateRecord};

/// A dated exchange rate: reporting-currency units per one unit of `currency`, in force from
/// `effectiveFrom` (inclusive) until `effectiveTo` (exclusive; null: until a later rate).
#[derive(SimpleObject, Clone)]
pub struct ExchangeRate {
    pub currency: String,
    pub rate: Decimal,
    pub effective_from: Date,
    pub effective_to: Option<Date>,
}

impl From<RateRecord> for ExchangeRate {
    fn from(r: RateRecord) -> Self {
        ExchangeRate {
            currency: r.currency,
            rate: Decimal(r.rate),
            effective_from: Date(r.effective_from),
            effective_to: r.effective_to.map(Date),
        }
    }
}

/// What `upsertExchangeRate` did.
#[derive(SimpleObject, Clone)]
pub struct ExchangeRateChange {
    pub exchange_rate: ExchangeRate,
    /// Amounts (opportunities, revenue events, costs) whose reporting-currency value it changed.
    pub revalued: i64,
}

/// An exchange rate as the import carries it (`"type": "exchangeRate"`).
#[derive(InputObject)]
pub struct ExchangeRateInput {
    pub currency: String,
    pub rate: Decimal,
    pub effective_from: Date,
}

impl From<ExchangeRateInput> for service::RateInput {
    fn from(input: ExchangeRateInput) -> Self {
        service::RateInput {
            currency: input.currency,
            rate: input.rate.0,
            effective_from: input.effective_from.0,
        }
    }
}

#[derive(Default)]
pub struct CurrencyQuery;

#[Object]
impl CurrencyQuery {
    /// The rates in force on some day of `[from, to)` (either end may be left open), of one
    /// currency or of all, by currency then date.
    async fn exchange_rates(
        &self,
        ctx: &Context<'_>,
        currency: Option<String>,
        from: Option<Date>,
        to: Option<Date>,
    ) -> Result<Vec<ExchangeRate>> {
        let rows = service::rates(
            &session(ctx).ctx,
            currency,
            from.map(|d| d.0),
            to.map(|d| d.0),
        )
        .await?;
        Ok(rows.into_iter().map(ExchangeRate::from).collect())
    }
}

#[derive(Default)]
pub struct CurrencyMutation;

#[Object]
impl CurrencyMutation {
    /// Records the rate of `currency` from `effectiveFrom` (ADMIN, FINANCE, INTEGRATION):
    /// reporting-currency units per one unit, > 0, at most 10^9 with 10 fraction digits. It
    /// holds until the next rate's date and re-values the amounts it covers; PERIOD_CLOSED when
    /// one of them lies in a closed period (an identical replay is accepted).
    async fn upsert_exchange_rate(
        &self,
        ctx: &Context<'_>,
        currency: String,
        rate: Decimal,
        effective_from: Date,
    ) -> Result<ExchangeRateChange> {
        let outcome = service::upsert_rate(
            &session(ctx).ctx,
            service::RateInput {
                currency,
                rate: rate.0,
                effective_from: effective_from.0,
            },
        )
        .await?;
        Ok(ExchangeRateChange {
            exchange_rate: outcome.record.into(),
            revalued: outcome.revalued,
        })
    }
}
