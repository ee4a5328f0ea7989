//! The contract's scalars: `Decimal` (exact decimal string), `DateTime` (RFC 3339, UTC) and
//! `Date` (YYYY-MM-DD). Bad values are refused before any resolver runs.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime as ChronoDateTime, NaiveDate, SecondsFormat, Utc};

use crate::domain::money::Decimal as ExactDecimal;

/// Exact decimal number as a string, e.g. "1250.00" or "-19.99".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal(pub String);

#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        let text =
            match &value {
                Value::String(s) => s.clone(),
                Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                _ => return Err(InputValueError::custom(
                    "a Decimal is a string of digits, e.g. \"1250.00\" (floats would lose cents)",
                )),
            };
        ExactDecimal::parse(&text).map_err(|e| InputValueError::custom(e.to_string()))?;
        Ok(Decimal(text))
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// RFC 3339 timestamp, e.g. "2026-03-01T12:00:00Z".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime(pub ChronoDateTime<Utc>);

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => ChronoDateTime::parse_from_rfc3339(s)
                .map(|t| DateTime(t.with_timezone(&Utc)))
                .map_err(|_| {
                    InputValueError::custom(format!(
                        "\"{s}\" is not an RFC 3339 timestamp (e.g. \"2026-03-01T12:00:00Z\")"
                    ))
                }),
            _ => Err(InputValueError::custom("a DateTime is an RFC 3339 string")),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

/// Calendar date, "YYYY-MM-DD".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) if s.len() == 10 => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| {
                    InputValueError::custom(format!("\"{s}\" is not a date (YYYY-MM-DD)"))
                }),
            Value::String(s) => Err(InputValueError::custom(format!(
                "\"{s}\" is not a date (YYYY-MM-DD)"
            ))),
            _ => Err(InputValueError::custom("a Date is a \"YYYY-MM-DD\" string")),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}
