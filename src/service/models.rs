//! Custom attribution models as data (SPEC §4b): `upsertAttributionModel` writes a new version
//! when the weights change; reports and plans use a model's current version, and a closed
//! statement keeps the version it used.

use chrono::Utc;

use super::{check_non_empty, AppError, AppResult, Ctx, Outcome};
use crate::auth::Write;
use crate::db::AnyConnection;
use crate::domain::attribution::{Model, RoleWeights};
use crate::repo::models::{self as repo, ModelRow, VersionRow};

#[derive(Debug, Clone)]
pub struct ModelInput {
    pub key: String,
    pub name: String,
    /// first, last, mql, opportunity, close, middle.
    pub weights: [String; 6],
}

/// A model with its versions, oldest first (the last is current).
#[derive(Debug, Clone)]
pub struct ModelRecord {
    pub model: ModelRow,
    pub versions: Vec<VersionRow>,
}

impl ModelRecord {
    pub fn current(&self) -> Option<&VersionRow> {
        self.versions.last()
    }
}

fn check_key(key: &str) -> AppResult<()> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(AppError::BadInput(format!(
            "key \"{key}\": 1 to 64 letters, digits, '_' or '-'"
        )))
    }
}

/// The weights of a stored version as a model.
pub fn model_of(version: &VersionRow) -> AppResult<Model> {
    RoleWeights::parse(version.id, version.texts())
        .map(Model::Custom)
        .map_err(|e| AppError::Internal(format!("stored model version {}: {e}", version.id)))
}

/// The current version of the model `key`, inside a transaction or read.
pub fn current_in(conn: &mut AnyConnection, key: &str) -> AppResult<(Model, VersionRow)> {
    let model = repo::by_key(conn, key)?
        .ok_or_else(|| AppError::NotFound(format!("no attribution model with key \"{key}\"")))?;
    let version = repo::current(conn, model.id)?
        .ok_or_else(|| AppError::Internal(format!("model {key} has no version")))?;
    Ok((model_of(&version)?, version))
}

/// The current version of the model `key`.
pub async fn current(ctx: &Ctx, key: &str) -> AppResult<Model> {
    let key = key.to_string();
    ctx.db
        .run(move |conn| current_in(conn, &key).map(|(m, _)| m))
        .await
}

pub async fn upsert(ctx: &Ctx, input: ModelInput) -> AppResult<ModelRecord> {
    ctx.write(input, upsert_in).await
}

pub fn upsert_in(
    ctx: &Ctx,
    conn: &mut AnyConnection,
    input: &ModelInput,
) -> AppResult<ModelRecord> {
    ctx.require_write(Write::AttributionModels, "define attribution models")?;
    check_key(&input.key)?;
    check_non_empty("name", &input.name)?;
    let texts = [0, 1, 2, 3, 4, 5].map(|i| input.weights[i].as_str());
    let weights = RoleWeights::parse(0, texts).map_err(AppError::BadInput)?;
    let canonical = weights.texts();
    let outcome = match repo::by_key(conn, &input.key)? {
        None => {
            let id = repo::insert_model(conn, &input.key, &input.name)?;
            repo::insert_version(
                conn,
                id,
                1,
                &canonical,
                Utc::now().naive_utc(),
                &ctx.caller.sub,
            )?;
            Outcome::Created
        }
        Some(model) => {
            let current = repo::current(conn, model.id)?;
            let same_weights = current.as_ref().is_some_and(|v| {
                model_of(v).ok()
                    == Some(Model::Custom(RoleWeights {
                        version: v.id,
                        ..weights
                    }))
            });
            if model.name != input.name {
                repo::rename(conn, model.id, &input.name)?;
            }
            if !same_weights {
                let next = current.map_or(1, |v| v.version + 1);
                repo::insert_version(
                    conn,
                    model.id,
                    next,
                    &canonical,
                    Utc::now().naive_utc(),
                    &ctx.caller.sub,
                )?;
            }
            if same_weights && model.name == input.name {
                Outcome::Unchanged
            } else {
                Outcome::Updated
            }
        }
    };
    ctx.audit(
        conn,
        "upsertAttributionModel",
        Some(&input.key),
        outcome.as_str(),
    )?;
    let model = repo::by_key(conn, &input.key)?
        .ok_or_else(|| AppError::Internal("model vanished after upsert".into()))?;
    let versions = repo::versions_of(conn, &[model.id])?;
    Ok(ModelRecord { model, versions })
}

/// Every custom model with its versions, by key (anyone signed in: the shared definitions).
pub async fn list(ctx: &Ctx) -> AppResult<Vec<ModelRecord>> {
    ctx.db
        .run(|conn| -> AppResult<Vec<ModelRecord>> {
            let models = repo::all(conn)?;
            let ids: Vec<i64> = models.iter().map(|m| m.id).collect();
            let mut versions = repo::versions_of(conn, &ids)?;
            Ok(models
                .into_iter()
                .map(|model| {
                    let mine: Vec<VersionRow> = versions
                        .iter()
                        .filter(|v| v.model_id == model.id)
                        .cloned()
                        .collect();
                    versions.retain(|v| v.model_id != model.id);
                    ModelRecord {
                        model,
                        versions: mine,
                    }
                })
                .collect())
        })
        .await
}

/// The key and version number of a custom model version (for a report or statement).
pub async fn describe(ctx: &Ctx, version_id: i64) -> AppResult<Option<(String, i32)>> {
    ctx.db
        .run(move |conn| -> AppResult<Option<(String, i32)>> {
            let Some(v) = repo::version_by_id(conn, version_id)? else {
                return Ok(None);
            };
            Ok(repo::by_id(conn, v.model_id)?.map(|m| (m.key, v.version)))
        })
        .await
}
