//! Scoring rules.

use diesel::prelude::*;

use crate::db::schema::scoring_rules;
use crate::db::AnyConnection;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = scoring_rules)]
pub struct RuleRow {
    pub id: i64,
    pub external_id: String,
    pub name: String,
    pub kind: String,
    pub field: Option<String>,
    pub operator: Option<String>,
    pub value: Option<String>,
    pub touch_kind: Option<String>,
    pub points: i32,
    pub max_points: Option<i32>,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Insertable, AsChangeset)]
#[diesel(table_name = scoring_rules, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct RuleValues<'a> {
    pub external_id: &'a str,
    pub name: &'a str,
    pub kind: &'a str,
    pub field: Option<&'a str>,
    pub operator: Option<&'a str>,
    pub value: Option<&'a str>,
    pub touch_kind: Option<&'a str>,
    pub points: i32,
    pub max_points: Option<i32>,
    pub active: bool,
}

pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<RuleRow>> {
    scoring_rules::table
        .select(RuleRow::as_select())
        .order(scoring_rules::external_id)
        .load(conn)
}

pub fn by_external_id(conn: &mut AnyConnection, external_id: &str) -> QueryResult<Option<RuleRow>> {
    scoring_rules::table
        .filter(scoring_rules::external_id.eq(external_id))
        .select(RuleRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut AnyConnection, values: &RuleValues<'_>) -> QueryResult<i64> {
    diesel::insert_into(scoring_rules::table)
        .values(values)
        .returning(scoring_rules::id)
        .get_result(conn)
}

pub fn update(conn: &mut AnyConnection, id: i64, values: &RuleValues<'_>) -> QueryResult<usize> {
    diesel::update(scoring_rules::table.find(id))
        .set(values)
        .execute(conn)
}
