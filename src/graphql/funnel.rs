//! The shared lead definition and the hand-off reports: scoring rules, breakdowns,
//! calibration, the funnel with its timeframes, and leakage.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};

use super::ids::page_args;
use super::reports::period_of;
use super::scalars::DateTime;
use super::types::{
    Lead, LeadConnection, LeadStage, Money, Period, ScoringOperator, ScoringRule, ScoringRuleKind,
};
use super::{session, PeriodInput};
use crate::domain::scoring::Kind;
use crate::domain::stats::DurationStats as Stats;
use crate::service::{funnel as service, scoring};

#[derive(SimpleObject, Clone)]
pub struct RuleCalibration {
    pub rule: ScoringRule,
    pub matched: i32,
    pub matched_won: i32,
    pub win_rate_matched: Option<f64>,
    pub win_rate_unmatched: Option<f64>,
    pub lift: Option<f64>,
}

#[derive(SimpleObject, Clone)]
pub struct DurationStats {
    pub count: i32,
    pub median_days: Option<f64>,
    pub p90_days: Option<f64>,
    pub mean_days: Option<f64>,
}

impl From<Stats> for DurationStats {
    fn from(s: Stats) -> Self {
        DurationStats {
            count: s.count as i32,
            median_days: s.median,
            p90_days: s.p90,
            mean_days: s.mean,
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct FunnelStage {
    pub stage: LeadStage,
    pub entered: i32,
    pub converted_to_next: i32,
    pub conversion_rate: Option<f64>,
    pub median_days_to_next: Option<f64>,
}

#[derive(SimpleObject, Clone)]
pub struct Funnel {
    pub period: Period,
    pub cohort_size: i32,
    pub stages: Vec<FunnelStage>,
    pub marketing_time: DurationStats,
    pub sales_cycle: DurationStats,
    pub handoff_time: DurationStats,
    pub recycled: i32,
    pub disqualified: i32,
    pub lost: i32,
}

pub struct Leakage(service::Leakage);

#[Object]
impl Leakage {
    async fn period(&self) -> Period {
        period_of(self.0.period)
    }
    async fn sla_hours(&self) -> i32 {
        self.0.sla_hours
    }
    async fn as_of(&self) -> DateTime {
        DateTime(self.0.as_of)
    }
    async fn mqls(&self) -> i32 {
        self.0.mqls as i32
    }
    async fn decided_within_sla(&self) -> i32 {
        self.0.decided_within_sla as i32
    }
    async fn decided_late(&self) -> i32 {
        self.0.decided_late as i32
    }
    async fn undecided(&self) -> i32 {
        self.0.undecided as i32
    }
    async fn leaked(&self) -> i32 {
        self.0.leaked as i32
    }
    async fn leakage_rate(&self) -> Option<f64> {
        (self.0.mqls > 0).then(|| self.0.leaked as f64 / self.0.mqls as f64)
    }
    async fn recycled_by_sales(&self) -> i32 {
        self.0.recycled_by_sales as i32
    }
    async fn disqualified_by_sales(&self) -> i32 {
        self.0.disqualified_by_sales as i32
    }
    /// Spend that sourced the leaked leads: sum over leaked leads of their first-touch campaign's cost per lead.
    async fn wasted_spend(&self, ctx: &Context<'_>) -> Money {
        Money::new(session(ctx), self.0.wasted_spend)
    }
    /// The leaked leads by externalId, so sales managers can act on them today.
    async fn leaked_leads(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<LeadConnection> {
        let (limit, after) = page_args(first, after)?;
        let ids: Vec<i64> = self
            .0
            .leaked_leads
            .iter()
            .filter(|(external_id, _)| after.as_ref().is_none_or(|a| &**external_id > a.as_str()))
            .take(limit as usize + 1)
            .map(|(_, id)| *id)
            .collect();
        let rows: Vec<Lead> = service::leaked_page(&session(ctx).ctx, ids)
            .await?
            .into_iter()
            .map(Lead)
            .collect();
        Ok(LeadConnection::from_rows(
            rows,
            limit,
            after.is_some(),
            self.0.leaked_leads.len() as i64,
            |l| &l.0.external_id,
        ))
    }
}

#[derive(InputObject)]
pub struct ScoringRuleInput {
    pub external_id: String,
    pub name: String,
    pub kind: ScoringRuleKind,
    pub field: Option<String>,
    pub operator: Option<ScoringOperator>,
    pub value: Option<String>,
    pub touch_kind: Option<String>,
    pub points: i32,
    pub max_points: Option<i32>,
    #[graphql(default_with = "Some(true)")]
    pub active: Option<bool>,
}

#[derive(Default)]
pub struct FunnelQuery;

#[Object]
impl FunnelQuery {
    /// Every scoring rule, active or not: the shared lead definition, in the open.
    async fn scoring_rules(&self, ctx: &Context<'_>) -> Result<Vec<ScoringRule>> {
        Ok(scoring::rules(&session(ctx).ctx)
            .await?
            .into_iter()
            .map(ScoringRule)
            .collect())
    }

    /// The score at which a lead meets the shared definition (MQL).
    async fn mql_threshold(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(scoring::current_threshold(&session(ctx).ctx).await?)
    }

    /// Per rule: how leads created in the period that matched it were won, against the rest.
    async fn scoring_calibration(
        &self,
        ctx: &Context<'_>,
        period: PeriodInput,
    ) -> Result<Vec<RuleCalibration>> {
        let rows = service::calibration(&session(ctx).ctx, period.checked()?).await?;
        Ok(rows
            .into_iter()
            .map(|c| RuleCalibration {
                rule: ScoringRule(c.rule),
                matched: c.matched as i32,
                matched_won: c.matched_won as i32,
                win_rate_matched: c.win_rate_matched,
                win_rate_unmatched: c.win_rate_unmatched,
                lift: c.lift,
            })
            .collect())
    }

    /// The cohort of leads created in the period, stage by stage, with the two timeframes.
    async fn funnel(
        &self,
        ctx: &Context<'_>,
        period: PeriodInput,
        campaign_external_id: Option<String>,
        channel: Option<String>,
    ) -> Result<Funnel> {
        let f = service::funnel(
            &session(ctx).ctx,
            period.checked()?,
            campaign_external_id,
            channel,
        )
        .await?;
        Ok(Funnel {
            period: period_of(f.period),
            cohort_size: f.cohort_size as i32,
            stages: f
                .stages
                .into_iter()
                .map(|s| FunnelStage {
                    stage: s.stage.into(),
                    entered: s.entered as i32,
                    converted_to_next: s.converted as i32,
                    conversion_rate: s.conversion_rate,
                    median_days_to_next: s.median_days_to_next,
                })
                .collect(),
            marketing_time: f.marketing_time.into(),
            sales_cycle: f.sales_cycle.into(),
            handoff_time: f.handoff_time.into(),
            recycled: f.recycled as i32,
            disqualified: f.disqualified as i32,
            lost: f.lost as i32,
        })
    }

    /// MQLs sales never acted on in time, and the lead-generation money that leaked with them.
    async fn leakage(
        &self,
        ctx: &Context<'_>,
        period: PeriodInput,
        #[graphql(default_with = "Some(48)")] sla_hours: Option<i32>,
        as_of: Option<DateTime>,
    ) -> Result<Leakage> {
        let l = service::leakage(
            &session(ctx).ctx,
            period.checked()?,
            sla_hours.unwrap_or(48),
            as_of.map(|d| d.0),
        )
        .await?;
        Ok(Leakage(l))
    }
}

#[derive(Default)]
pub struct FunnelMutation;

#[Object]
impl FunnelMutation {
    /// Adds or changes a scoring rule; every lead is re-scored in the same transaction.
    async fn upsert_scoring_rule(
        &self,
        ctx: &Context<'_>,
        input: ScoringRuleInput,
    ) -> Result<ScoringRule> {
        let row = scoring::upsert_rule(
            &session(ctx).ctx,
            scoring::RuleInput {
                external_id: input.external_id,
                name: input.name,
                kind: match input.kind {
                    ScoringRuleKind::Attribute => Kind::Attribute,
                    ScoringRuleKind::Behavior => Kind::Behavior,
                },
                field: input.field,
                operator: input.operator.map(Into::into),
                value: input.value,
                touch_kind: input.touch_kind,
                points: input.points,
                max_points: input.max_points,
                active: input.active.unwrap_or(true),
            },
        )
        .await?;
        Ok(ScoringRule(row))
    }

    async fn set_mql_threshold(&self, ctx: &Context<'_>, points: i32) -> Result<i32> {
        Ok(scoring::set_threshold(&session(ctx).ctx, points).await?)
    }
}
