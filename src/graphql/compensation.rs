//! Compensation: plans, statements, period close, and the audit log finance reads.

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject};

use super::ids;
use super::mutation::MoneyInput;
use super::scalars::{DateTime, Decimal};
use super::types::{
    money_opt, AttributionModel, Campaign, CompensationPlan, Money, Opportunity, PageInfo, Period,
    User,
};
use super::{session, PeriodInput};
use crate::service::compensation::ClosedPeriodRow;
use crate::service::compensation::{self as service, LineRecord, StatementRecord};
use crate::service::AppError;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::service::compensation::StatementStatus")]
pub enum StatementStatus {
    Open,
    Closed,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CompensationLineKind {
    Commission,
    Accelerator,
    LeadBonus,
    Cap,
    Clawback,
}

pub struct CompensationLine(LineRecord);

#[Object]
impl CompensationLine {
    async fn kind(&self) -> Result<CompensationLineKind> {
        Ok(match self.0.kind.as_str() {
            "COMMISSION" => CompensationLineKind::Commission,
            "ACCELERATOR" => CompensationLineKind::Accelerator,
            "LEAD_BONUS" => CompensationLineKind::LeadBonus,
            "CAP" => CompensationLineKind::Cap,
            "CLAWBACK" => CompensationLineKind::Clawback,
            other => return Err(AppError::Internal(format!("unknown line kind {other}")).into()),
        })
    }
    async fn campaign(&self, ctx: &Context<'_>) -> Result<Option<Campaign>> {
        let Some(id) = self.0.campaign_id else {
            return Ok(None);
        };
        Ok(session(ctx)
            .loaders
            .campaigns()
            .load_one(id)
            .await?
            .map(Campaign))
    }
    async fn opportunity(&self, ctx: &Context<'_>) -> Result<Option<Opportunity>> {
        let Some(id) = self.0.opportunity_id else {
            return Ok(None);
        };
        Ok(session(ctx)
            .loaders
            .opportunities()
            .load_one(id)
            .await?
            .map(Opportunity))
    }
    async fn basis(&self, ctx: &Context<'_>) -> Option<Money> {
        money_opt(session(ctx), self.0.basis_cents)
    }
    /// The rate applied (an exact decimal); for LEAD_BONUS, the number of qualified leads.
    async fn rate(&self) -> Option<Decimal> {
        self.0.rate.clone().map(Decimal)
    }
    async fn amount(&self, ctx: &Context<'_>) -> Money {
        Money::new(session(ctx), self.0.amount_cents)
    }
    /// How the line was computed, in words.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// The campaign's and opportunity's externalIds, as they were when the line was made.
    async fn campaign_external_id(&self) -> Option<&str> {
        self.0.campaign_external_id.as_deref()
    }
    async fn opportunity_external_id(&self) -> Option<&str> {
        self.0.opportunity_external_id.as_deref()
    }
}

pub struct CompensationStatement(pub StatementRecord);

#[Object]
impl CompensationStatement {
    async fn user(&self, ctx: &Context<'_>) -> Result<User> {
        let row = session(ctx)
            .loaders
            .users()
            .load_one(self.0.user_id)
            .await?;
        row.map(User)
            .ok_or_else(|| AppError::Internal("statement user vanished".into()).into())
    }
    async fn plan(&self) -> CompensationPlan {
        CompensationPlan(self.0.plan.clone())
    }
    async fn period(&self) -> Period {
        Period {
            from: super::scalars::Date(self.0.from),
            to: super::scalars::Date(self.0.to),
        }
    }
    async fn status(&self) -> StatementStatus {
        self.0.status.into()
    }
    async fn attributed_revenue(&self, ctx: &Context<'_>) -> Money {
        Money::new(session(ctx), self.0.attributed_revenue_cents)
    }
    async fn qualified_leads(&self) -> f64 {
        self.0.qualified_leads
    }
    async fn total(&self, ctx: &Context<'_>) -> Money {
        Money::new(session(ctx), self.0.total_cents)
    }
    async fn lines(&self) -> Vec<CompensationLine> {
        self.0.lines.iter().cloned().map(CompensationLine).collect()
    }
}

pub struct PeriodClose(ClosedPeriodRow);

#[Object]
impl PeriodClose {
    async fn period(&self) -> Period {
        Period {
            from: super::scalars::Date(self.0.period_from),
            to: super::scalars::Date(self.0.period_to),
        }
    }
    async fn closed_at(&self) -> DateTime {
        DateTime(self.0.closed_at.and_utc())
    }
    async fn closed_by(&self) -> &str {
        &self.0.closed_by
    }
    async fn statements(&self) -> i32 {
        self.0.statements
    }
}

#[derive(InputObject)]
pub struct CompensationPlanInput {
    pub external_id: String,
    pub name: String,
    pub model: AttributionModel,
    pub revenue_rate: Decimal,
    pub quota: Option<MoneyInput>,
    pub accelerator_rate: Option<Decimal>,
    pub qualified_lead_bonus: MoneyInput,
    pub cap: Option<MoneyInput>,
    #[graphql(default_with = "Some(90)")]
    pub clawback_days: Option<i32>,
    /// Whose touches its statements credit on a deal (SPEC §8); statements of a closed period
    /// keep the mapping they were computed with.
    #[graphql(default_with = "Some(super::types::ContactMapping::ContactRoles)")]
    pub contacts: Option<super::types::ContactMapping>,
    /// With model CUSTOM: the key of a model in `attributionModels`; statements use its
    /// current version, and a closed statement keeps the version it used.
    pub custom_model: Option<String>,
}

#[derive(InputObject)]
pub struct PlanAssignmentInput {
    pub user_external_id: String,
    pub plan_external_id: String,
    pub effective_from: super::scalars::Date,
}

/// One entry of the audit log.
#[derive(SimpleObject, Clone)]
pub struct AuditEntry {
    pub occurred_at: DateTime,
    pub actor: String,
    pub role: String,
    pub operation: String,
    pub external_id: Option<String>,
    pub detail: Option<String>,
}

#[derive(SimpleObject, Clone)]
pub struct AuditEntryEdge {
    pub cursor: String,
    pub node: AuditEntry,
}

#[derive(SimpleObject, Clone)]
pub struct AuditEntryConnection {
    pub edges: Vec<AuditEntryEdge>,
    pub nodes: Vec<AuditEntry>,
    pub page_info: PageInfo,
    pub total_count: i64,
}

#[derive(Default)]
pub struct CompensationQuery;

#[Object]
impl CompensationQuery {
    /// A marketer's pay for a period: frozen (CLOSED) for exactly a closed period, else live.
    async fn compensation_statement(
        &self,
        ctx: &Context<'_>,
        user_external_id: String,
        period: PeriodInput,
    ) -> Result<CompensationStatement> {
        let record =
            service::statement(&session(ctx).ctx, user_external_id, period.checked()?).await?;
        Ok(CompensationStatement(record))
    }

    /// Who did what, when, to which externalId; newest first (ADMIN and FINANCE).
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<AuditEntryConnection> {
        let s = session(ctx);
        s.ctx
            .require_read(crate::auth::Read::AuditLog, "the audit log")?;
        let (limit, after) = ids::page_args(first, after)?;
        let before = after
            .map(|a| {
                a.parse::<i64>()
                    .map_err(|_| AppError::BadInput("not a cursor of the audit log".into()))
            })
            .transpose()?;
        let had_after = before.is_some();
        let crate::service::reads::Page { rows, total } =
            crate::service::reads::audit_page(&s.ctx, before, limit).await?;
        let has_next_page = rows.len() as i64 > limit;
        let edges: Vec<AuditEntryEdge> = rows
            .into_iter()
            .take(limit as usize)
            .map(|r| AuditEntryEdge {
                cursor: ids::cursor(&r.id.to_string()),
                node: AuditEntry {
                    occurred_at: DateTime(r.occurred_at.and_utc()),
                    actor: r.actor,
                    role: r.role,
                    operation: r.operation,
                    external_id: r.external_id,
                    detail: r.detail,
                },
            })
            .collect();
        Ok(AuditEntryConnection {
            nodes: edges.iter().map(|e| e.node.clone()).collect(),
            page_info: PageInfo {
                has_next_page,
                has_previous_page: had_after,
                start_cursor: edges.first().map(|e| e.cursor.clone()),
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            total_count: total,
        })
    }
}

#[derive(Default)]
pub struct CompensationMutation;

#[Object]
impl CompensationMutation {
    async fn upsert_compensation_plan(
        &self,
        ctx: &Context<'_>,
        input: CompensationPlanInput,
    ) -> Result<CompensationPlan> {
        let custom_model = input.custom_model.clone();
        let model = input
            .model
            .resolve(&session(ctx).ctx, input.custom_model, None)
            .await?;
        let row = service::upsert_plan(
            &session(ctx).ctx,
            service::PlanInput {
                external_id: input.external_id,
                name: input.name,
                model,
                custom_model,
                revenue_rate: input.revenue_rate.0,
                quota: input.quota.map(|m| (m.amount.0, m.currency)),
                accelerator_rate: input.accelerator_rate.map(|d| d.0),
                qualified_lead_bonus: (
                    input.qualified_lead_bonus.amount.0,
                    input.qualified_lead_bonus.currency,
                ),
                cap: input.cap.map(|m| (m.amount.0, m.currency)),
                clawback_days: input.clawback_days.unwrap_or(90),
                contacts: input.contacts.unwrap_or_default().into(),
            },
        )
        .await?;
        Ok(CompensationPlan(row.into()))
    }

    async fn assign_compensation_plan(
        &self,
        ctx: &Context<'_>,
        input: PlanAssignmentInput,
    ) -> Result<CompensationPlan> {
        let row = service::assign_plan(
            &session(ctx).ctx,
            input.user_external_id,
            input.plan_external_id,
            input.effective_from.0,
        )
        .await?;
        Ok(CompensationPlan(row.into()))
    }

    /// Freezes every marketer's statement of the period (FINANCE, ADMIN).
    async fn close_period(&self, ctx: &Context<'_>, period: PeriodInput) -> Result<PeriodClose> {
        Ok(PeriodClose(
            service::close_period(&session(ctx).ctx, period.checked()?).await?,
        ))
    }

    /// Drops the frozen statements of exactly a closed period (FINANCE, ADMIN).
    async fn reopen_period(&self, ctx: &Context<'_>, period: PeriodInput) -> Result<bool> {
        Ok(service::reopen_period(&session(ctx).ctx, period.checked()?).await?)
    }
}
