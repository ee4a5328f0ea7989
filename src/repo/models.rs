//! Custom attribution models and their versions (SPEC §4b).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{attribution_model_versions as versions, attribution_models as models};
use crate::db::AnyConnection;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = models)]
pub struct ModelRow {
    pub id: i64,
    pub key: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = versions)]
pub struct VersionRow {
    pub id: i64,
    pub model_id: i64,
    pub version: i32,
    pub first_weight: String,
    pub last_weight: String,
    pub mql_weight: String,
    pub opportunity_weight: String,
    pub close_weight: String,
    pub middle_weight: String,
    pub created_at: NaiveDateTime,
    pub created_by: String,
}

impl VersionRow {
    /// The weights in `ROLES` order.
    pub fn texts(&self) -> [&str; 6] {
        [
            &self.first_weight,
            &self.last_weight,
            &self.mql_weight,
            &self.opportunity_weight,
            &self.close_weight,
            &self.middle_weight,
        ]
    }
}

pub fn by_key(conn: &mut AnyConnection, key: &str) -> QueryResult<Option<ModelRow>> {
    models::table
        .filter(models::key.eq(key))
        .select(ModelRow::as_select())
        .first(conn)
        .optional()
}

pub fn by_id(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<ModelRow>> {
    models::table
        .find(id)
        .select(ModelRow::as_select())
        .first(conn)
        .optional()
}

pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<ModelRow>> {
    models::table
        .select(ModelRow::as_select())
        .order(models::key)
        .load(conn)
}

/// Every version of some models, oldest first.
pub fn versions_of(conn: &mut AnyConnection, model_ids: &[i64]) -> QueryResult<Vec<VersionRow>> {
    versions::table
        .filter(versions::model_id.eq_any(model_ids))
        .select(VersionRow::as_select())
        .order((versions::model_id, versions::version))
        .load(conn)
}

/// The latest version of a model.
pub fn current(conn: &mut AnyConnection, model_id: i64) -> QueryResult<Option<VersionRow>> {
    versions::table
        .filter(versions::model_id.eq(model_id))
        .select(VersionRow::as_select())
        .order(versions::version.desc())
        .first(conn)
        .optional()
}

pub fn version_by_id(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<VersionRow>> {
    versions::table
        .find(id)
        .select(VersionRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_model(conn: &mut AnyConnection, key: &str, name: &str) -> QueryResult<i64> {
    diesel::insert_into(models::table)
        .values((models::key.eq(key), models::name.eq(name)))
        .returning(models::id)
        .get_result(conn)
}

pub fn rename(conn: &mut AnyConnection, id: i64, name: &str) -> QueryResult<usize> {
    diesel::update(models::table.find(id))
        .set(models::name.eq(name))
        .execute(conn)
}

pub fn insert_version(
    conn: &mut AnyConnection,
    model_id: i64,
    version: i32,
    weights: &[String; 6],
    at: NaiveDateTime,
    by: &str,
) -> QueryResult<i64> {
    diesel::insert_into(versions::table)
        .values((
            versions::model_id.eq(model_id),
            versions::version.eq(version),
            versions::first_weight.eq(&weights[0]),
            versions::last_weight.eq(&weights[1]),
            versions::mql_weight.eq(&weights[2]),
            versions::opportunity_weight.eq(&weights[3]),
            versions::close_weight.eq(&weights[4]),
            versions::middle_weight.eq(&weights[5]),
            versions::created_at.eq(at),
            versions::created_by.eq(by),
        ))
        .returning(versions::id)
        .get_result(conn)
}
