//! Periods of UTC days and the instants they hold.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

/// A half-open range of UTC days: `from <= day < to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("period is empty or reversed: from {from} must be before to {to}")]
pub struct EmptyPeriod {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Period, EmptyPeriod> {
        if from < to {
            Ok(Period { from, to })
        } else {
            Err(EmptyPeriod { from, to })
        }
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.from.and_time(NaiveTime::MIN).and_utc()
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.to.and_time(NaiveTime::MIN).and_utc()
    }

    /// Whether the period holds instant `t`: `from` 00:00Z <= t < `to` 00:00Z.
    pub fn holds(&self, t: DateTime<Utc>) -> bool {
        self.start() <= t && t < self.end()
    }

    pub fn holds_day(&self, day: NaiveDate) -> bool {
        self.from <= day && day < self.to
    }

    pub fn overlaps(&self, other: &Period) -> bool {
        self.from < other.to && other.from < self.to
    }
}
