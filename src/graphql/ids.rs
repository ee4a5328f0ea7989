//! Opaque global ids ("Lead:42", base64url) and cursors (the row's externalId, base64url).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::service::AppError;

pub fn encode(kind: &str, id: i64) -> async_graphql::ID {
    async_graphql::ID(URL_SAFE_NO_PAD.encode(format!("{kind}:{id}")))
}

/// Splits a global id into its type name and row id.
pub fn decode(id: &str) -> Result<(String, i64), AppError> {
    let bad = || AppError::BadInput(format!("\"{id}\" is not an id of this API"));
    let bytes = URL_SAFE_NO_PAD.decode(id).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (kind, raw) = text.split_once(':').ok_or_else(bad)?;
    let row = raw.parse::<i64>().map_err(|_| bad())?;
    Ok((kind.to_string(), row))
}

/// Decodes an id that must be of `kind`.
pub fn decode_as(id: &str, kind: &str) -> Result<i64, AppError> {
    match decode(id)? {
        (k, row) if k == kind => Ok(row),
        (k, _) => Err(AppError::BadInput(format!(
            "id \"{id}\" is a {k}, not a {kind}"
        ))),
    }
}

pub fn cursor(external_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(external_id)
}

pub fn decode_cursor(cursor: &str) -> Result<String, AppError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| AppError::BadInput(format!("\"{cursor}\" is not a cursor of this list")))
}

/// Default and largest page sizes of every connection.
pub const DEFAULT_PAGE: i32 = 50;
pub const MAX_PAGE: i32 = 500;

/// A checked page request: `first` in 0..=500 and the decoded `after`.
pub fn page_args(
    first: Option<i32>,
    after: Option<String>,
) -> Result<(i64, Option<String>), AppError> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    if first < 0 {
        return Err(AppError::BadInput("first must not be negative".into()));
    }
    if first > MAX_PAGE {
        return Err(AppError::TooComplex(format!(
            "first is {first}; a page holds at most {MAX_PAGE} rows (over by {}; use after: to page on)",
            first - MAX_PAGE
        )));
    }
    let after = after.map(|c| decode_cursor(&c)).transpose()?;
    Ok((i64::from(first), after))
}
