//! Closed periods guard money: revenue and costs dated inside one are refused (SPEC §5).
//! Below every use case that writes money, so none of them depends on compensation.

use chrono::NaiveDate;

use super::{AppError, AppResult};
use crate::db::AnyConnection;
use crate::repo::compensation as repo;

/// PERIOD_CLOSED when `day` lies in a closed period (money facts may not move there).
pub fn check_open(conn: &mut AnyConnection, day: NaiveDate, what: &str) -> AppResult<()> {
    match repo::closed_holding(conn, day)? {
        Some(c) => Err(AppError::PeriodClosed(format!(
            "{what} dated {day} falls in the closed period {}..{}; reopen it first",
            c.period_from, c.period_to
        ))),
        None => Ok(()),
    }
}
