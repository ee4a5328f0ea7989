//! The audit log: who did what, when, to which externalId.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::audit_log;
use crate::db::AnyConnection;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: i64,
    pub occurred_at: NaiveDateTime,
    pub actor: String,
    pub role: String,
    pub operation: String,
    pub external_id: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
pub struct NewAudit<'a> {
    pub occurred_at: NaiveDateTime,
    pub actor: &'a str,
    pub role: &'a str,
    pub operation: &'a str,
    pub external_id: Option<&'a str>,
    pub detail: Option<&'a str>,
}

pub fn record(conn: &mut AnyConnection, entry: &NewAudit<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values(entry)
        .execute(conn)
        .map(|_| ())
}

/// A page of the log, newest first, after the entry with id `before` when given.
pub fn page(
    conn: &mut AnyConnection,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_log::table
        .select(AuditRow::as_select())
        .order(audit_log::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(audit_log::id.lt(before));
    }
    query.load(conn)
}

pub fn count(conn: &mut AnyConnection) -> QueryResult<i64> {
    audit_log::table.count().get_result(conn)
}

pub fn count_for(conn: &mut AnyConnection, operation: &str, external_id: &str) -> QueryResult<i64> {
    audit_log::table
        .filter(audit_log::operation.eq(operation))
        .filter(audit_log::external_id.eq(external_id))
        .count()
        .get_result(conn)
}
