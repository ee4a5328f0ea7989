//! Closed periods guard money: revenue and costs dated inside one are refused (SPEC §5).
//! Below every use case that writes money, so none of them depends on compensation.

use chrono::NaiveDate;

use super::{AppError, AppResult};
use crate::db::AnyConnection;
use crate::repo::compensation::{self as repo, ClosedPeriodRow};

/// PERIOD_CLOSED when `day` lies in a closed period (money facts may not move there).
pub fn check_open(conn: &mut AnyConnection, day: NaiveDate, what: &str) -> AppResult<()> {
    refuse_in(repo::closed_holding(conn, day)?.as_ref(), day, what)
}

/// The same against closed periods already read (the batched import reads them once).
pub fn check_open_in(closed: &[ClosedPeriodRow], day: NaiveDate, what: &str) -> AppResult<()> {
    refuse_in(
        closed
            .iter()
            .find(|c| c.period_from <= day && day < c.period_to),
        day,
        what,
    )
}

fn refuse_in(holding: Option<&ClosedPeriodRow>, day: NaiveDate, what: &str) -> AppResult<()> {
    match holding {
        Some(c) => Err(AppError::PeriodClosed(format!(
            "{what} dated {day} falls in the closed period {}..{}; reopen it first",
            c.period_from, c.period_to
        ))),
        None => Ok(()),
    }
}
