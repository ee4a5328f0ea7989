//! Custom attribution models as data (SPEC §4b): `attributionModels` and
//! `upsertAttributionModel`.

use async_graphql::{Context, Object, Result, SimpleObject};

use super::scalars::{DateTime, Decimal};
use super::session;
use crate::service::models::{self as service, ModelRecord};
use crate::service::reads::ModelVersionRow;

/// One version of a custom model's role weights (each ≥ 0, summing to 1).
#[derive(SimpleObject, Clone)]
pub struct AttributionModelVersion {
    pub version: i32,
    pub first: Decimal,
    pub last: Decimal,
    pub mql: Decimal,
    pub opportunity: Decimal,
    pub close: Decimal,
    pub middle: Decimal,
    pub created_at: DateTime,
    pub created_by: String,
}

impl From<&ModelVersionRow> for AttributionModelVersion {
    fn from(v: &ModelVersionRow) -> Self {
        AttributionModelVersion {
            version: v.version,
            first: Decimal(v.first_weight.clone()),
            last: Decimal(v.last_weight.clone()),
            mql: Decimal(v.mql_weight.clone()),
            opportunity: Decimal(v.opportunity_weight.clone()),
            close: Decimal(v.close_weight.clone()),
            middle: Decimal(v.middle_weight.clone()),
            created_at: DateTime(v.created_at.and_utc()),
            created_by: v.created_by.clone(),
        }
    }
}

/// A custom attribution model: reports, comparisons and plans use its current version.
#[derive(SimpleObject, Clone)]
pub struct AttributionModelDefinition {
    pub key: String,
    pub name: String,
    /// The current version.
    pub current: AttributionModelVersion,
    /// Every version, oldest first.
    pub versions: Vec<AttributionModelVersion>,
}

fn definition(record: ModelRecord) -> Result<AttributionModelDefinition> {
    let current = record
        .current()
        .map(AttributionModelVersion::from)
        .ok_or_else(|| crate::service::AppError::Internal("a model without a version".into()))?;
    Ok(AttributionModelDefinition {
        key: record.model.key.clone(),
        name: record.model.name.clone(),
        current,
        versions: record
            .versions
            .iter()
            .map(AttributionModelVersion::from)
            .collect(),
    })
}

#[derive(Default)]
pub struct ModelQuery;

#[Object]
impl ModelQuery {
    /// The custom attribution models, by key.
    async fn attribution_models(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<AttributionModelDefinition>> {
        service::list(&session(ctx).ctx)
            .await?
            .into_iter()
            .map(definition)
            .collect()
    }
}

#[derive(Default)]
pub struct ModelMutation;

#[Object]
impl ModelMutation {
    /// Defines or edits a custom model by key (ADMIN, MARKETING_MANAGER): role weights as
    /// decimals, each ≥ 0, summing exactly to 1 (FIRST = t1, LAST = tn, MQL and OPPORTUNITY as
    /// in W_SHAPED, CLOSE = tn at WON only; a role weighted 0 is absent; `middle` is shared by
    /// the touches holding no role). Changed weights make a new version.
    #[allow(clippy::too_many_arguments)]
    async fn upsert_attribution_model(
        &self,
        ctx: &Context<'_>,
        key: String,
        name: String,
        first: Decimal,
        last: Decimal,
        mql: Decimal,
        opportunity: Decimal,
        close: Decimal,
        middle: Decimal,
    ) -> Result<AttributionModelDefinition> {
        let record = service::upsert(
            &session(ctx).ctx,
            service::ModelInput {
                key,
                name,
                weights: [first.0, last.0, mql.0, opportunity.0, close.0, middle.0],
            },
        )
        .await?;
        definition(record)
    }
}
