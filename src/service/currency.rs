//! The reporting currency a database's amounts are in (issue 17, SPEC §9). Every stored amount
//! is in minor units of one currency, which the database records on first use: a server started
//! with another `FUNNELGRAPH_CURRENCY` would otherwise re-label every amount silently.

use super::{AppError, AppResult};
use crate::db::AnyConnection;
use crate::repo::settings;

const KEY: &str = "reporting_currency";

/// Records `configured` as the database's reporting currency when it has none yet; refuses
/// (CONFLICT) when it has another.
pub fn claim(conn: &mut AnyConnection, configured: &str) -> AppResult<()> {
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
