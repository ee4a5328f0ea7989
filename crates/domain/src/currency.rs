//! Currencies (SPEC §9): the ISO 4217 table, exchange rates as exact decimals, and the exact
//! conversion of an amount in any currency into the reporting currency's minor units.
//!
//! A rate is reporting-currency units per one unit of the currency, at most 10^9 with at most
//! 10 fraction digits; an amount in another currency is at most 10^15 of its minor units. So
//! `amount × rate × 10^(reporting digits)` fits in an `i128` (< 10^38 for every pair of the
//! table), is computed exactly, and is rounded half-to-even once.
#![deny(clippy::float_arithmetic, clippy::cast_possible_truncation)]

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;

use crate::iso4217::CURRENCIES;
use crate::money::{div_round_half_even, format_units, Decimal, Money, MoneyError};

/// Fraction digits of an exchange rate, at most.
pub const RATE_DIGITS: u32 = 10;
/// The largest rate (reporting-currency units per unit).
pub const MAX_RATE: i128 = 1_000_000_000;
/// The largest amount in another currency than the reporting one, in its minor units.
pub const MAX_ORIGINAL: i64 = 1_000_000_000_000_000;

/// An ISO 4217 currency of list one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    pub code: &'static str,
    pub numeric: u16,
    /// Digits of its minor unit (JPY 0, USD 2, KWD 3).
    pub digits: u32,
    pub name: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    #[error("\"{0}\" is not an ISO 4217 currency code")]
    Unknown(String),
    #[error("{0} has no minor unit in ISO 4217 (a fund, metal or testing code), so it cannot hold money")]
    NoMinorUnit(String),
    #[error("the rate \"{0}\" is not a decimal number greater than 0 and at most 1000000000 with at most 10 fraction digits")]
    BadRate(String),
    #[error("\"{amount}\" {currency} is beyond the largest amount in another currency (10^15 minor units)")]
    TooLarge { amount: String, currency: String },
    #[error("no exchange rate for {currency} is in force on {day}: record one with upsertExchangeRate (effectiveFrom on or before {day})")]
    NoRate { currency: String, day: NaiveDate },
    #[error("{amount} {currency} converts to more than the largest amount this server can hold")]
    Overflow { amount: String, currency: String },
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// The currency of an ISO 4217 code (upper case, as the standard writes it).
pub fn lookup(code: &str) -> Result<Currency, CurrencyError> {
    let index = CURRENCIES
        .binary_search_by(|(c, ..)| (*c).cmp(code))
        .map_err(|_| CurrencyError::Unknown(code.to_string()))?;
    let (code, numeric, digits, name) = CURRENCIES[index];
    let digits = digits.ok_or_else(|| CurrencyError::NoMinorUnit(code.to_string()))?;
    Ok(Currency {
        code,
        numeric,
        digits,
        name,
    })
}

/// An exchange rate: `units / 10^10` reporting-currency units per one unit of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(i128);

impl Rate {
    /// Parses `"0.0067"`, `"1.0842"`, `"150"`: > 0, ≤ 10^9, at most 10 fraction digits as written.
    pub fn parse(text: &str) -> Result<Rate, CurrencyError> {
        let bad = || CurrencyError::BadRate(text.to_string());
        let decimal = Decimal::parse(text).map_err(|_| bad())?;
        if decimal.scale > RATE_DIGITS || decimal.units <= 0 {
            return Err(bad());
        }
        let units = decimal.rescale(RATE_DIGITS).ok_or_else(bad)?;
        if units > MAX_RATE * 10i128.pow(RATE_DIGITS) {
            return Err(bad());
        }
        Ok(Rate(units))
    }

    /// The rate times 10^10.
    pub fn units(self) -> i128 {
        self.0
    }

    pub fn from_units(units: i128) -> Option<Rate> {
        (units > 0 && units <= MAX_RATE * 10i128.pow(RATE_DIGITS)).then_some(Rate(units))
    }
}

impl fmt::Display for Rate {
    /// The shortest exact form: `"1.0842"`, `"150"`, `"0.0000000001"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut units = self.0;
        let mut scale = RATE_DIGITS;
        while scale > 0 && units % 10 == 0 {
            units /= 10;
            scale -= 1;
        }
        f.write_str(&format_units(units, scale))
    }
}

/// Parses an amount written in `currency`: a known code with a minor unit, no more fraction
/// digits than it has as written (`"750.0"` JPY is refused), at most 10^15 minor units.
/// Returns the amount in the currency's minor units.
pub fn parse_original(amount: &str, currency: &Currency) -> Result<i64, CurrencyError> {
    let decimal = Decimal::parse(amount)?;
    if decimal.scale > currency.digits {
        return Err(MoneyError::Precision {
            amount: amount.to_string(),
            currency: currency.code.to_string(),
            digits: currency.digits,
        }
        .into());
    }
    let too_large = || CurrencyError::TooLarge {
        amount: amount.to_string(),
        currency: currency.code.to_string(),
    };
    let units = decimal.rescale(currency.digits).ok_or_else(too_large)?;
    match i64::try_from(units) {
        Ok(units) if units.unsigned_abs() <= MAX_ORIGINAL.unsigned_abs() => Ok(units),
        _ => Err(too_large()),
    }
}

/// `units` minor units of a currency with `from_digits`, at `rate`, in minor units of a
/// currency with `to_digits`: exact, rounded half-to-even once. None when it does not fit.
pub fn convert(units: i64, from_digits: u32, rate: Rate, to_digits: u32) -> Option<i64> {
    // value = units / 10^from × rate / 10^10 × 10^to
    let mut numerator = i128::from(units).checked_mul(rate.0)?;
    let mut denominator_exp = RATE_DIGITS + from_digits;
    if to_digits >= denominator_exp {
        numerator = numerator.checked_mul(10i128.checked_pow(to_digits - denominator_exp)?)?;
        denominator_exp = 0;
    } else {
        denominator_exp -= to_digits;
    }
    let value = div_round_half_even(numerator, 10i128.checked_pow(denominator_exp)?)?;
    i64::try_from(value).ok()
}

/// An amount as it was written, when it is not in the reporting currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    pub currency: String,
    /// In the currency's own minor units.
    pub units: i64,
}

/// An amount's reporting-currency value and, when it was written in another currency, the
/// original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub value: Money,
    pub original: Option<Original>,
}

/// The exchange rates of some currencies, each dated: a rate holds from its date (inclusive)
/// until the next one's (exclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rates {
    by_currency: BTreeMap<String, BTreeMap<NaiveDate, Rate>>,
}

impl Rates {
    pub fn insert(&mut self, currency: &str, from: NaiveDate, rate: Rate) {
        self.by_currency
            .entry(currency.to_string())
            .or_default()
            .insert(from, rate);
    }

    /// The rate in force for `currency` on `day`, and the date it holds from.
    pub fn in_force(&self, currency: &str, day: NaiveDate) -> Option<(NaiveDate, Rate)> {
        self.by_currency
            .get(currency)?
            .range(..=day)
            .next_back()
            .map(|(d, r)| (*d, *r))
    }

    /// The date of the first rate of `currency` after `day` (where the one in force ends).
    pub fn next_after(&self, currency: &str, day: NaiveDate) -> Option<NaiveDate> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.by_currency
            .get(currency)?
            .range((Excluded(day), Unbounded))
            .next()
            .map(|(d, _)| *d)
    }

    /// `amount` written in `currency` and dated `day`, valued in `reporting`: as written when
    /// it is the reporting currency, else converted at the rate in force on `day`.
    pub fn price(
        &self,
        amount: &str,
        currency: &str,
        reporting: &str,
        day: NaiveDate,
    ) -> Result<Priced, CurrencyError> {
        if currency == reporting {
            return Ok(Priced {
                value: Money::parse(amount, currency, reporting)?,
                original: None,
            });
        }
        let from = lookup(currency)?;
        let units = parse_original(amount, &from)?;
        let (_, rate) = self
            .in_force(currency, day)
            .ok_or_else(|| CurrencyError::NoRate {
                currency: currency.to_string(),
                day,
            })?;
        let value =
            value_of(units, &from, rate, reporting).ok_or_else(|| CurrencyError::Overflow {
                amount: amount.to_string(),
                currency: currency.to_string(),
            })?;
        Ok(Priced {
            value,
            original: Some(Original {
                currency: currency.to_string(),
                units,
            }),
        })
    }
}

/// `units` of `from` at `rate` in minor units of `reporting`.
pub fn value_of(units: i64, from: &Currency, rate: Rate, reporting: &str) -> Option<Money> {
    let to = crate::money::minor_digits(reporting);
    convert(units, from.digits, rate, to).map(Money)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn the_table_is_the_published_list() {
        // Re-read the XML the table was generated from: every entry with a code, and nothing else.
        let xml = include_str!("../data/iso4217-list-one.xml");
        let mut seen = std::collections::BTreeMap::new();
        for entry in xml.split("<CcyNtry>").skip(1) {
            let field = |tag: &str| {
                let open = format!("<{tag}>");
                entry.find(&open).map(|at| {
                    let rest = &entry[at + open.len()..];
                    rest[..rest.find('<').unwrap_or(0)].trim().to_string()
                })
            };
            let Some(code) = field("Ccy") else { continue };
            let digits = field("CcyMnrUnts").and_then(|d| d.parse::<u32>().ok());
            let numeric = field("CcyNbr").and_then(|n| n.parse::<u16>().ok());
            seen.insert(code, (numeric, digits));
        }
        assert_eq!(seen.len(), CURRENCIES.len());
        for (code, numeric, digits, _) in CURRENCIES {
            assert_eq!(seen.get(*code), Some(&(Some(*numeric), *digits)), "{code}");
        }
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
        assert_eq!(lookup("JPY").map(|c| c.digits), Ok(0));
        assert_eq!(lookup("USD").map(|c| c.digits), Ok(2));
        assert_eq!(lookup("KWD").map(|c| c.digits), Ok(3));
        assert_eq!(lookup("CLF").map(|c| c.digits), Ok(4));
        assert!(matches!(lookup("XAU"), Err(CurrencyError::NoMinorUnit(_))));
        assert!(matches!(lookup("usd"), Err(CurrencyError::Unknown(_))));
        assert!(matches!(lookup("ABC"), Err(CurrencyError::Unknown(_))));
    }

    #[test]
    fn rates_are_bounded_exact_decimals() {
        assert_eq!(
            Rate::parse("1.0842").map(|r| r.to_string()),
            Ok("1.0842".into())
        );
        assert_eq!(
            Rate::parse("150.000").map(|r| r.to_string()),
            Ok("150".into())
        );
        assert_eq!(Rate::parse("0.0000000001").map(|r| r.units()), Ok(1));
        assert_eq!(
            Rate::parse("1000000000").map(|r| r.to_string()),
            Ok("1000000000".into())
        );
        for bad in [
            "0",
            "-1.5",
            "0.00000000001",
            "1000000000.0000000001",
            "1e3",
            "",
            "abc",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fraction_digits_count_as_written() {
        let jpy = lookup("JPY").unwrap_or_else(|e| panic!("{e}"));
        let usd = lookup("USD").unwrap_or_else(|e| panic!("{e}"));
        assert!(parse_original("750.0", &jpy).is_err());
        assert_eq!(parse_original("750", &jpy).ok(), Some(750));
        assert_eq!(parse_original("10.10", &usd).ok(), Some(1010));
        assert_eq!(parse_original("10.1", &usd).ok(), Some(1010));
        assert!(parse_original("10.001", &usd).is_err());
        assert_eq!(
            parse_original("10000000000000.00", &usd).ok(),
            Some(MAX_ORIGINAL)
        );
        assert!(matches!(
            parse_original("10000000000000.01", &usd),
            Err(CurrencyError::TooLarge { .. })
        ));
        assert_eq!(
            parse_original("-10000000000000.00", &usd).ok(),
            Some(-MAX_ORIGINAL)
        );
    }

    #[test]
    fn hand_worked_conversions_round_half_to_even_once() {
        let mut rates = Rates::default();
        // JPY → USD: 0.0067 USD per yen until March, 0.00675 from March.
        rates.insert(
            "JPY",
            day("2026-01-01"),
            Rate::parse("0.0067").unwrap_or(Rate(1)),
        );
        rates.insert(
            "JPY",
            day("2026-03-01"),
            Rate::parse("0.00675").unwrap_or(Rate(1)),
        );
        // EUR at 0.01 for the ties; USD → KWD (a reporting currency of 3 digits).
        rates.insert(
            "EUR",
            day("2026-01-01"),
            Rate::parse("0.01").unwrap_or(Rate(1)),
        );
        rates.insert(
            "USD",
            day("2026-01-01"),
            Rate::parse("0.30712").unwrap_or(Rate(1)),
        );
        rates.insert(
            "USD",
            day("2026-06-01"),
            Rate::parse("0.3069").unwrap_or(Rate(1)),
        );
        let price = |amount: &str, currency: &str, reporting: &str, on: &str| {
            rates.price(amount, currency, reporting, day(on))
        };
        // 150,000 yen × 0.0067 = 1005.00 USD exactly.
        assert_eq!(
            price("150000", "JPY", "USD", "2026-02-28").map(|p| p.value),
            Ok(Money(100_500))
        );
        // The same yen a day later, at 0.00675: 1012.50.
        assert_eq!(
            price("150000", "JPY", "USD", "2026-03-01").map(|p| p.value),
            Ok(Money(101_250))
        );
        // 1 yen × 0.00675 = 0.00675 USD → 0.01 (above half); 3 yen × 0.0067 = 0.0201 → 0.02.
        assert_eq!(
            price("1", "JPY", "USD", "2026-03-01").map(|p| p.value),
            Ok(Money(1))
        );
        assert_eq!(
            price("3", "JPY", "USD", "2026-01-15").map(|p| p.value),
            Ok(Money(2))
        );
        // No rate in force before the first one: refused, naming currency and date.
        let err = price("1", "JPY", "USD", "2025-12-31").map(|p| p.value);
        assert_eq!(
            err.map_err(|e| e.to_string()),
            Err("no exchange rate for JPY is in force on 2025-12-31: record one with upsertExchangeRate (effectiveFrom on or before 2025-12-31)".into())
        );
        // Half-cent ties go to the even cent: 0.5 × 0.01 = 0.005 → 0.00; 1.5 × 0.01 = 0.015 → 0.02;
        // 2.5 × 0.01 = 0.025 → 0.02; negative ties alike.
        for (amount, cents) in [
            ("0.50", 0),
            ("1.50", 2),
            ("2.50", 2),
            ("3.50", 4),
            ("-2.50", -2),
            ("-3.50", -4),
        ] {
            assert_eq!(
                price(amount, "EUR", "USD", "2026-01-02").map(|p| p.value),
                Ok(Money(cents)),
                "{amount}"
            );
        }
        // USD → KWD (a reporting currency of 3 digits): 1 USD = 0.30712 KWD until June,
        // 0.3069 from June. 100.01 USD = 30.7150712 KWD → 30.715; then 30.693069 → 30.693.
        assert_eq!(
            price("100.01", "USD", "KWD", "2026-05-31").map(|p| p.value),
            Ok(Money(30_715))
        );
        assert_eq!(
            price("100.01", "USD", "KWD", "2026-06-01").map(|p| p.value),
            Ok(Money(30_693))
        );
        // Reporting-currency amounts are as written, with no rate needed.
        assert_eq!(
            price("10.10", "USD", "USD", "1999-01-01").map(|p| p.original),
            Ok(None)
        );
        assert!(price("750.0", "JPY", "USD", "2026-03-01").is_err());
        assert!(matches!(
            price("1", "XYZ", "USD", "2026-03-01"),
            Err(CurrencyError::Unknown(_))
        ));
    }

    #[test]
    fn the_largest_inputs_convert_without_overflow() {
        // 10^15 minor units of a 0-digit currency at the largest rate into a 4-digit one:
        // 10^15 × 10^9 × 10^4 = 10^28 minor units does not fit an i64: refused, not wrapped.
        let max = Rate::parse("1000000000").unwrap_or(Rate(1));
        assert_eq!(convert(MAX_ORIGINAL, 0, max, 4), None);
        assert_eq!(convert(MAX_ORIGINAL, 0, max, 2), None);
        // The largest that fits: 10^15 × 9 = 9·10^15 → 9·10^17 cents.
        let nine = Rate::parse("9").unwrap_or(Rate(1));
        assert_eq!(
            convert(MAX_ORIGINAL, 0, nine, 2),
            Some(900_000_000_000_000_000)
        );
        let tiny = Rate::parse("0.0000000001").unwrap_or(Rate(1));
        assert_eq!(convert(MAX_ORIGINAL, 0, tiny, 2), Some(10_000_000));
    }

    proptest! {
        #[test]
        fn conversion_is_exact_and_checked(
            units in -MAX_ORIGINAL..=MAX_ORIGINAL,
            rate in 1i128..=MAX_RATE * 10_000_000_000,
            from in 0u32..=4,
            to in 0u32..=4,
        ) {
            let rate = Rate(rate);
            match convert(units, from, rate, to) {
                Some(value) => {
                    // |value − units·rate·10^to / 10^(10+from)| ≤ 1/2, checked in exact big integers.
                    use num_bigint::BigInt;
                    let exact_num = BigInt::from(units) * BigInt::from(rate.units()) * BigInt::from(10).pow(to);
                    let den = BigInt::from(10).pow(10 + from);
                    let diff = BigInt::from(value) * &den - exact_num;
                    let twice: BigInt = diff * 2;
                    prop_assert!(twice.magnitude() <= den.magnitude());
                }
                None => {
                    // Only when the exact value does not fit in an i64.
                    use num_bigint::BigInt;
                    let exact = BigInt::from(units) * BigInt::from(rate.units()) * BigInt::from(10).pow(to)
                        / BigInt::from(10).pow(10 + from);
                    prop_assert!(exact.magnitude() >= &num_bigint::BigUint::from(i64::MAX.unsigned_abs()));
                }
            }
        }
    }
}
