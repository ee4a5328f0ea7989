//! Money as integer minor units of the reporting currency, parsed from and printed as exact
//! decimal strings. Floats never hold money.
#![deny(clippy::float_arithmetic, clippy::cast_possible_truncation)]

use std::fmt;

/// An amount in minor units (cents for USD). Arithmetic is checked: an overflow is an error,
/// never a wrapped number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("\"{0}\" is not a decimal number (expected digits with an optional sign and point, e.g. \"1250.00\")")]
    Syntax(String),
    #[error("\"{amount}\" has more fraction digits than {currency} allows ({digits})")]
    Precision {
        amount: String,
        currency: String,
        digits: u32,
    },
    #[error("\"{0}\" is too large to hold")]
    Overflow(String),
    #[error("currency {got} is not the reporting currency {expected}")]
    Currency { got: String, expected: String },
    #[error("a sum exceeds the largest amount this server can represent (9223372036854775807 minor units); ask for a shorter period or check the amounts recorded")]
    Arithmetic,
}

/// Number of fraction digits of a currency's minor unit, from the ISO 4217 table (JPY 0, USD 2,
/// KWD 3); 2 for a code the table does not know or gives none (only for printing: inputs are
/// checked with `currency::lookup`).
pub fn minor_digits(currency: &str) -> u32 {
    crate::currency::lookup(currency).map_or(2, |c| c.digits)
}

/// A parsed decimal: sign, digits, and how many of them are fraction digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    /// The value times 10^scale.
    pub units: i128,
    pub scale: u32,
}

impl Decimal {
    /// Parses `-12.345`, `12`, `+0.5`. No exponents, no grouping, at most 30 digits.
    pub fn parse(text: &str) -> Result<Decimal, MoneyError> {
        let syntax = || MoneyError::Syntax(text.to_string());
        let (negative, body) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if int.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (body.contains('.') && frac.is_empty())
        {
            return Err(syntax());
        }
        if int.len() + frac.len() > 30 {
            return Err(MoneyError::Overflow(text.to_string()));
        }
        let mut units: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            units = units * 10 + i128::from(b - b'0');
        }
        Ok(Decimal {
            units: if negative { -units } else { units },
            // At most 30 digits (checked above).
            scale: u32::try_from(frac.len()).map_err(|_| MoneyError::Overflow(text.to_string()))?,
        })
    }

    /// Fraction digits that are not trailing zeros.
    pub fn significant_scale(&self) -> u32 {
        let mut scale = self.scale;
        let mut units = self.units;
        while scale > 0 && units % 10 == 0 {
            units /= 10;
            scale -= 1;
        }
        scale
    }

    /// The same value at `scale` fraction digits, when that loses nothing.
    pub fn rescale(&self, scale: u32) -> Option<i128> {
        if self.significant_scale() > scale {
            return None;
        }
        let mut units = self.units;
        let mut s = self.scale;
        while s < scale {
            units = units.checked_mul(10)?;
            s += 1;
        }
        while s > scale {
            units /= 10;
            s -= 1;
        }
        Some(units)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", format_units(self.units, self.scale))
    }
}

/// Prints `units / 10^scale` with exactly `scale` fraction digits.
pub fn format_units(units: i128, scale: u32) -> String {
    let negative = units < 0;
    let abs = units.unsigned_abs();
    let digits = abs.to_string();
    let body = if scale == 0 {
        digits
    } else {
        let scale = scale as usize;
        let padded = format!("{:0>width$}", digits, width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        format!("{int}.{frac}")
    };
    if negative {
        format!("-{body}")
    } else {
        body
    }
}

impl Money {
    pub const ZERO: Money = Money(0);

    /// Parses a decimal amount in `currency`, which must be the reporting currency, with no
    /// more fraction digits than the currency has.
    pub fn parse(amount: &str, currency: &str, reporting: &str) -> Result<Money, MoneyError> {
        if currency != reporting {
            return Err(MoneyError::Currency {
                got: currency.to_string(),
                expected: reporting.to_string(),
            });
        }
        let digits = minor_digits(currency);
        let decimal = Decimal::parse(amount)?;
        // Fraction digits count as written (SPEC §9): "10.10" USD is fine, "750.0" JPY is not.
        if decimal.scale > digits {
            return Err(MoneyError::Precision {
                amount: amount.to_string(),
                currency: currency.to_string(),
                digits,
            });
        }
        let units = decimal
            .rescale(digits)
            .ok_or_else(|| MoneyError::Precision {
                amount: amount.to_string(),
                currency: currency.to_string(),
                digits,
            })?;
        i64::try_from(units)
            .map(Money)
            .map_err(|_| MoneyError::Overflow(amount.to_string()))
    }

    pub fn minor_units(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.0
            .checked_add(other.0)
            .map(Money)
            .ok_or(MoneyError::Arithmetic)
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.0
            .checked_sub(other.0)
            .map(Money)
            .ok_or(MoneyError::Arithmetic)
    }

    /// Sum of amounts, failing on overflow.
    pub fn sum<I: IntoIterator<Item = Money>>(items: I) -> Result<Money, MoneyError> {
        items
            .into_iter()
            .try_fold(Money::ZERO, |acc, m| acc.checked_add(m))
    }

    /// The amount as a decimal string in `currency`'s minor unit, e.g. "1250.00".
    pub fn to_decimal_string(self, currency: &str) -> String {
        format_units(i128::from(self.0), minor_digits(currency))
    }
}

/// Divides `numerator / denominator` rounding half to even. `denominator` must not be 0.
pub fn div_round_half_even(numerator: i128, denominator: i128) -> Option<i128> {
    if denominator == 0 {
        return None;
    }
    let (n, d) = if denominator < 0 {
        (numerator.checked_neg()?, denominator.checked_neg()?)
    } else {
        (numerator, denominator)
    };
    let q = n.div_euclid(d);
    let r = n.rem_euclid(d);
    let twice = r.checked_mul(2)?;
    Some(match twice.cmp(&d) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => {
            if q % 2 == 0 {
                q
            } else {
                q + 1
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_odd_cents() {
        let m = Money::parse("1250.07", "USD", "USD").unwrap();
        assert_eq!(m, Money(125007));
        assert_eq!(m.to_decimal_string("USD"), "1250.07");
        assert_eq!(Money(-5).to_decimal_string("USD"), "-0.05");
        assert_eq!(Money(0).to_decimal_string("USD"), "0.00");
        assert_eq!(Money(7).to_decimal_string("JPY"), "7");
    }

    #[test]
    fn fraction_digits_count_as_written() {
        assert!(Money::parse("10.500", "USD", "USD").is_err());
        assert_eq!(Money::parse("10.50", "USD", "USD").unwrap(), Money(1050));
        assert_eq!(Money::parse("10", "USD", "USD").unwrap(), Money(1000));
        assert!(Money::parse("750.0", "JPY", "JPY").is_err());
    }

    #[test]
    fn rejects_sub_cent_precision_other_currency_and_junk() {
        assert!(matches!(
            Money::parse("10.001", "USD", "USD"),
            Err(MoneyError::Precision { .. })
        ));
        assert!(matches!(
            Money::parse("10.00", "EUR", "USD"),
            Err(MoneyError::Currency { .. })
        ));
        for junk in ["", "-", "1e3", "1.", ".5", "1,000.00", "12a", "NaN"] {
            assert!(Money::parse(junk, "USD", "USD").is_err(), "{junk}");
        }
    }

    #[test]
    fn holds_the_largest_i64_amount_and_refuses_beyond() {
        let max = Money::parse("92233720368547758.07", "USD", "USD").unwrap();
        assert_eq!(max, Money(i64::MAX));
        assert_eq!(max.to_decimal_string("USD"), "92233720368547758.07");
        assert!(matches!(
            Money::parse("92233720368547758.08", "USD", "USD"),
            Err(MoneyError::Overflow(_))
        ));
        assert!(max.checked_add(Money(1)).is_err());
    }

    #[test]
    fn half_to_even_rounds_ties_to_the_even_neighbour() {
        assert_eq!(div_round_half_even(5, 2), Some(2));
        assert_eq!(div_round_half_even(7, 2), Some(4));
        assert_eq!(div_round_half_even(-5, 2), Some(-2));
        assert_eq!(div_round_half_even(-7, 2), Some(-4));
        assert_eq!(div_round_half_even(10, 3), Some(3));
        assert_eq!(div_round_half_even(11, 3), Some(4));
        assert_eq!(div_round_half_even(1, 0), None);
    }
}
