//! Users: the team, keyed by the JWT `sub`.

use std::collections::HashMap;

use diesel::prelude::*;

use crate::db::schema::users;
use crate::db::AnyConnection;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = users, treat_none_as_default_value = false)]
pub struct UserRow {
    pub id: i64,
    pub external_id: String,
    pub name: String,
    pub email: Option<String>,
    pub role: String,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = users, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct UserValues<'a> {
    pub external_id: &'a str,
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub role: &'a str,
}

pub fn by_external_id(conn: &mut AnyConnection, external_id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::external_id.eq(external_id))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn by_id(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn by_ids(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<HashMap<i64, UserRow>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(super::CHUNK) {
        for row in users::table
            .filter(users::id.eq_any(chunk))
            .select(UserRow::as_select())
            .load(conn)?
        {
            out.insert(row.id, row);
        }
    }
    Ok(out)
}

pub fn insert(conn: &mut AnyConnection, values: &UserValues<'_>) -> QueryResult<i64> {
    diesel::insert_into(users::table)
        .values(values)
        .returning(users::id)
        .get_result(conn)
}

pub fn update(conn: &mut AnyConnection, id: i64, values: &UserValues<'_>) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(values)
        .execute(conn)
}

/// User ids by externalId, any number of them.
pub fn ids_by_external_ids(
    conn: &mut AnyConnection,
    external_ids: &[&str],
) -> QueryResult<HashMap<String, i64>> {
    let pairs = super::in_chunks(external_ids, |chunk| {
        users::table
            .filter(users::external_id.eq_any(chunk))
            .select((users::external_id, users::id))
            .load::<(String, i64)>(conn)
    })?;
    Ok(pairs.into_iter().collect())
}
