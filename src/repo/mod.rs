//! Rows in, rows out: one module per aggregate, no business rules. Every function takes a
//! connection and runs on both databases.

pub mod accounts;
pub mod audit;
pub mod bulk;
pub mod campaigns;
pub mod compensation;
pub mod journeys;
pub mod leads;
pub mod models;
pub mod opportunities;
pub mod rates;
pub mod reports;
pub mod scoring;
pub mod settings;
pub mod users;

/// Rows per `IN (...)` list: well under SQLite's and PostgreSQL's bind limits.
pub const CHUNK: usize = 5_000;

/// Runs `query` over `keys` a `CHUNK` at a time (an `IN` list each) and gathers the rows.
pub fn in_chunks<K, T>(
    keys: &[K],
    mut query: impl FnMut(&[K]) -> diesel::QueryResult<Vec<T>>,
) -> diesel::QueryResult<Vec<T>> {
    let mut out = Vec::new();
    for chunk in keys.chunks(CHUNK) {
        out.extend(query(chunk)?);
    }
    Ok(out)
}
