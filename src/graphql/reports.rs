//! Attribution and ROI: the report types of the contract and their entry points.

use async_graphql::{Context, Enum, Object, Result, SimpleObject};

use super::scalars::Date;
use super::types::{AttributionModel, Campaign, ContactMapping, LeadStage, Money, Period};
use super::{session, PeriodInput, Session};
use crate::service::attribution::{self as service, ReportQuery};

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::report::Grouping")]
pub enum AttributionGrouping {
    Campaign,
    Channel,
    Month,
    /// The credited touch's lead's account externalId; `(none)` for a lead without one.
    Account,
    /// An attribute of that account, named by the `segment` argument; `(none)` when the lead
    /// has no account or the account lacks it.
    Segment,
}

pub fn period_of(p: crate::domain::period::Period) -> Period {
    Period {
        from: Date(p.from),
        to: Date(p.to),
    }
}

#[derive(SimpleObject, Clone)]
pub struct AttributionRow {
    /// Campaign externalId, channel name, or YYYY-MM, by grouping.
    pub key: String,
    pub campaign: Option<Campaign>,
    pub conversions: f64,
    /// WON: attributed booked revenue. OPPORTUNITY: attributed pipeline. Other stages: zero.
    pub revenue: Money,
}

#[derive(SimpleObject, Clone)]
pub struct RemovalEffect {
    pub campaign: Campaign,
    pub removal_effect: f64,
    pub share: f64,
}

#[derive(SimpleObject, Clone)]
pub struct AttributionReport {
    pub model: AttributionModel,
    pub stage: LeadStage,
    pub period: Period,
    pub rows: Vec<AttributionRow>,
    pub total_conversions: f64,
    pub total_revenue: Money,
    pub unattributed_conversions: f64,
    pub unattributed_revenue: Money,
    /// Conversions credited to campaigns the caller may not see, aggregated (0 for a caller
    /// who sees every campaign): rows + other + unattributed = total.
    pub other_conversions: f64,
    /// Revenue credited to campaigns the caller may not see, aggregated.
    pub other_revenue: Money,
    /// MARKOV only; empty for the other models.
    pub removal_effects: Vec<RemovalEffect>,
    /// SHAPLEY only: each channel's raw Shapley value φ (may be negative; Σφ is the paths'
    /// conversion rate); a channel on no path has 0. Empty for the other models.
    pub shapley_values: Vec<ShapleyValue>,
    /// CUSTOM only: the model and the version the report used.
    pub custom_model: Option<CustomModelRef>,
    /// MARKOV only: the chain's order (1, 2 or 3).
    pub markov_order: Option<i32>,
    #[graphql(skip)]
    pub custom_version: Option<i64>,
}

/// A channel's Shapley value in the period's conversion-rate game.
#[derive(SimpleObject, Clone)]
pub struct ShapleyValue {
    pub channel: String,
    pub value: f64,
}

/// A version of a custom model, as a report or statement used it.
#[derive(SimpleObject, Clone)]
pub struct CustomModelRef {
    pub key: String,
    pub version: i32,
}

impl AttributionReport {
    /// Names the custom model version a report used.
    async fn described(
        mut self,
        s: &Session,
    ) -> Result<AttributionReport, crate::service::AppError> {
        if let Some(version) = self.custom_version {
            self.custom_model = crate::service::models::describe(&s.ctx, version)
                .await?
                .map(|(key, version)| CustomModelRef { key, version });
        }
        Ok(self)
    }
}

/// One campaign's conversions and revenue under one model.
#[derive(SimpleObject, Clone)]
pub struct ModelFigures {
    pub model: AttributionModel,
    /// MARKOV only: the chain's order.
    pub markov_order: Option<i32>,
    /// CUSTOM only: which model (its key) and version.
    pub custom_model: Option<CustomModelRef>,
    pub conversions: f64,
    pub revenue: Money,
}

/// One campaign under every compared model, in the order the models were asked.
#[derive(SimpleObject, Clone)]
pub struct ComparisonRow {
    /// The campaign's externalId.
    pub key: String,
    pub campaign: Option<Campaign>,
    pub models: Vec<ModelFigures>,
}

/// The same period and stage under several models (SPEC §4b): every campaign credited by at
/// least one of them, by externalId, and each model's whole report (totals, unattributed,
/// other) so each column sums like `attribution`.
#[derive(SimpleObject, Clone)]
pub struct AttributionComparison {
    pub stage: LeadStage,
    pub period: Period,
    pub rows: Vec<ComparisonRow>,
    pub reports: Vec<AttributionReport>,
}

impl AttributionReport {
    fn new(s: &Session, r: service::AttributionReport) -> AttributionReport {
        AttributionReport {
            model: r.query.model.into(),
            stage: r.query.stage.into(),
            period: period_of(r.query.period),
            rows: r
                .report
                .rows
                .iter()
                .map(|row| AttributionRow {
                    key: row.key.clone(),
                    campaign: row
                        .campaign_id
                        .and_then(|id| r.campaigns.get(&id).cloned())
                        .map(Campaign),
                    conversions: row.conversions.to_f64(),
                    revenue: Money::new(s, row.revenue),
                })
                .collect(),
            total_conversions: r.report.total_conversions as f64,
            total_revenue: Money::new(s, r.report.total_revenue),
            unattributed_conversions: r.report.unattributed_conversions as f64,
            unattributed_revenue: Money::new(s, r.report.unattributed_revenue),
            other_conversions: r.report.other_conversions.to_f64(),
            other_revenue: Money::new(s, r.report.other_revenue),
            removal_effects: r
                .removal_effects
                .into_iter()
                .map(|(c, re, share)| RemovalEffect {
                    campaign: Campaign(c),
                    removal_effect: re,
                    share,
                })
                .collect(),
            shapley_values: r
                .shapley_values
                .iter()
                .map(|(channel, value)| ShapleyValue {
                    channel: channel.clone(),
                    value: *value,
                })
                .collect(),
            custom_model: None,
            markov_order: r.query.model.markov_order().map(i32::from),
            custom_version: match r.query.model {
                crate::domain::attribution::Model::Custom(w) => Some(w.version),
                _ => None,
            },
        }
    }
}

pub struct CampaignRoi {
    roi: service::CampaignRoi,
}

#[Object]
impl CampaignRoi {
    async fn campaign(&self) -> Campaign {
        Campaign(self.roi.campaign.clone())
    }
    async fn cost(&self, ctx: &Context<'_>) -> Money {
        Money::new(session(ctx), self.roi.cost)
    }
    async fn attributed_revenue(&self, ctx: &Context<'_>) -> Money {
        Money::new(session(ctx), self.roi.revenue)
    }
    async fn attributed_pipeline(&self, ctx: &Context<'_>) -> Money {
        Money::new(session(ctx), self.roi.pipeline)
    }
    /// (revenue − cost) / cost; null when the cost is zero.
    async fn roi(&self) -> Option<f64> {
        self.roi.roi()
    }
    /// revenue / cost; null when the cost is zero.
    async fn roas(&self) -> Option<f64> {
        self.roi.roas()
    }
    async fn inquiries(&self) -> f64 {
        self.roi.conversions_at(0)
    }
    async fn mqls(&self) -> f64 {
        self.roi.conversions_at(1)
    }
    async fn sals(&self) -> f64 {
        self.roi.conversions_at(2)
    }
    async fn sqls(&self) -> f64 {
        self.roi.conversions_at(3)
    }
    async fn opportunities(&self) -> f64 {
        self.roi.conversions_at(4)
    }
    async fn wins(&self) -> f64 {
        self.roi.conversions_at(5)
    }
    async fn cost_per_inquiry(&self, ctx: &Context<'_>) -> Option<Money> {
        self.per(ctx, 0)
    }
    async fn cost_per_mql(&self, ctx: &Context<'_>) -> Option<Money> {
        self.per(ctx, 1)
    }
    async fn cost_per_sal(&self, ctx: &Context<'_>) -> Option<Money> {
        self.per(ctx, 2)
    }
    async fn cost_per_sql(&self, ctx: &Context<'_>) -> Option<Money> {
        self.per(ctx, 3)
    }
    async fn cost_per_opportunity(&self, ctx: &Context<'_>) -> Option<Money> {
        self.per(ctx, 4)
    }
    async fn cost_per_win(&self, ctx: &Context<'_>) -> Option<Money> {
        self.per(ctx, 5)
    }
}

impl CampaignRoi {
    fn per(&self, ctx: &Context<'_>, stage: usize) -> Option<Money> {
        self.roi
            .cost_per(stage)
            .map(|m| Money::new(session(ctx), m.0))
    }
}

#[derive(Default)]
pub struct ReportQueryRoot;

#[Object]
impl ReportQueryRoot {
    /// Conversions and value at a stage, credited to campaigns, channels or months by a model.
    #[allow(clippy::too_many_arguments)]
    async fn attribution(
        &self,
        ctx: &Context<'_>,
        model: AttributionModel,
        period: PeriodInput,
        #[graphql(default_with = "Some(LeadStage::Won)")] stage: Option<LeadStage>,
        #[graphql(default_with = "Some(AttributionGrouping::Campaign)")] group_by: Option<
            AttributionGrouping,
        >,
        #[graphql(default_with = "Some(7.0)")] half_life_days: Option<f64>,
        #[graphql(default_with = "Some(365)")] lookback_days: Option<i32>,
        #[graphql(default_with = "Some(ContactMapping::ContactRoles)")] contacts: Option<
            ContactMapping,
        >,
        segment: Option<String>,
        #[graphql(
            desc = "With model CUSTOM: the key of a model in attributionModels (its current version)."
        )]
        custom_model: Option<String>,
        #[graphql(desc = "With model MARKOV: the chain's order, 1 (the default), 2 or 3.")]
        markov_order: Option<i32>,
    ) -> Result<AttributionReport> {
        let s = session(ctx);
        let model = model.resolve(&s.ctx, custom_model, markov_order).await?;
        let report = service::report(
            &s.ctx,
            ReportQuery {
                model,
                stage: stage.unwrap_or(LeadStage::Won).into(),
                period: period.checked()?,
                grouping: group_by.unwrap_or(AttributionGrouping::Campaign).into(),
                half_life_days: half_life_days.unwrap_or(7.0),
                lookback_days: i64::from(lookback_days.unwrap_or(365)),
                mapping: contacts.unwrap_or_default().into(),
                segment,
            },
        )
        .await?;
        Ok(AttributionReport::new(s, report).described(s).await?)
    }

    /// Every listed model's conversions and revenue per campaign, side by side (at most 12
    /// models; `/export/comparison.csv` gives the same as CSV).
    #[allow(clippy::too_many_arguments)]
    async fn attribution_comparison(
        &self,
        ctx: &Context<'_>,
        period: PeriodInput,
        models: Vec<AttributionModel>,
        #[graphql(default_with = "Some(LeadStage::Won)")] stage: Option<LeadStage>,
        #[graphql(default_with = "Some(7.0)")] half_life_days: Option<f64>,
        #[graphql(default_with = "Some(365)")] lookback_days: Option<i32>,
        #[graphql(default_with = "Some(ContactMapping::ContactRoles)")] contacts: Option<
            ContactMapping,
        >,
        #[graphql(desc = "Custom models (keys of attributionModels) compared after `models`.")]
        custom_models: Option<Vec<String>>,
        #[graphql(
            desc = "The orders MARKOV in `models` is compared at, a column each (default [1])."
        )]
        markov_orders: Option<Vec<i32>>,
    ) -> Result<AttributionComparison> {
        let s = session(ctx);
        let mut resolved: Vec<crate::domain::attribution::Model> = Vec::new();
        let with_markov = models
            .iter()
            .any(|m| m.named().is_some_and(|m| m.markov_order().is_some()));
        if markov_orders.is_some() && !with_markov {
            return Err(crate::service::AppError::BadInput(
                "markovOrders goes with MARKOV in models".into(),
            )
            .into());
        }
        let orders = markov_orders.unwrap_or_else(|| vec![1]);
        if orders.is_empty() {
            return Err(crate::service::AppError::BadInput(
                "markovOrders lists at least one order (1, 2 or 3)".into(),
            )
            .into());
        }
        for model in models {
            let named = model.named().ok_or_else(|| {
                crate::service::AppError::BadInput(
                    "list custom models in customModels, by key".into(),
                )
            })?;
            if named.markov_order().is_some() {
                for order in &orders {
                    resolved.push(AttributionModel::with_order(named, Some(*order))?);
                }
            } else {
                resolved.push(named);
            }
        }
        for key in custom_models.unwrap_or_default() {
            resolved.push(crate::service::models::current(&s.ctx, &key).await?);
        }
        let models = resolved;
        let query = ReportQuery {
            model: crate::domain::attribution::Model::Linear,
            stage: stage.unwrap_or(LeadStage::Won).into(),
            period: period.checked()?,
            grouping: crate::domain::report::Grouping::Campaign,
            half_life_days: half_life_days.unwrap_or(7.0),
            lookback_days: i64::from(lookback_days.unwrap_or(365)),
            mapping: contacts.unwrap_or_default().into(),
            segment: None,
        };
        let c = service::comparison(&s.ctx, &models, query.clone()).await?;
        let mut models: Vec<(AttributionModel, Option<i32>, Option<CustomModelRef>)> = Vec::new();
        for r in &c.reports {
            let custom = match r.query.model {
                crate::domain::attribution::Model::Custom(w) => {
                    crate::service::models::describe(&s.ctx, w.version)
                        .await?
                        .map(|(key, version)| CustomModelRef { key, version })
                }
                _ => None,
            };
            models.push((
                r.query.model.into(),
                r.query.model.markov_order().map(i32::from),
                custom,
            ));
        }
        Ok(AttributionComparison {
            stage: query.stage.into(),
            period: period_of(query.period),
            rows: c
                .rows
                .into_iter()
                .map(|row| ComparisonRow {
                    key: row.key,
                    campaign: row.campaign.map(Campaign),
                    models: models
                        .iter()
                        .zip(row.figures)
                        .map(
                            |((model, order, custom), (conversions, revenue))| ModelFigures {
                                model: *model,
                                markov_order: *order,
                                custom_model: custom.clone(),
                                conversions: conversions.to_f64(),
                                revenue: Money::new(s, revenue),
                            },
                        )
                        .collect(),
                })
                .collect(),
            reports: {
                let mut out = Vec::new();
                for r in c.reports {
                    out.push(AttributionReport::new(s, r).described(s).await?);
                }
                out
            },
        })
    }

    /// Cost, attributed revenue and pipeline, conversions and cost per conversion, per campaign.
    #[allow(clippy::too_many_arguments)]
    async fn campaign_roi(
        &self,
        ctx: &Context<'_>,
        model: AttributionModel,
        period: PeriodInput,
        campaign_external_ids: Option<Vec<String>>,
        #[graphql(default_with = "Some(ContactMapping::ContactRoles)")] contacts: Option<
            ContactMapping,
        >,
        #[graphql(desc = "With model CUSTOM: the key of a model in attributionModels.")]
        custom_model: Option<String>,
        #[graphql(desc = "With model MARKOV: the chain's order, 1 (the default), 2 or 3.")]
        markov_order: Option<i32>,
    ) -> Result<Vec<CampaignRoi>> {
        let model = model
            .resolve(&session(ctx).ctx, custom_model, markov_order)
            .await?;
        let rows = service::campaign_roi(
            &session(ctx).ctx,
            model,
            period.checked()?,
            campaign_external_ids,
            contacts.unwrap_or_default().into(),
        )
        .await?;
        Ok(rows.into_iter().map(|roi| CampaignRoi { roi }).collect())
    }
}
