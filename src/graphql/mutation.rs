//! Write entry points of the foundation: the CRM sync's upserts and the lead moves. Each one
//! is a single service call in one transaction.

use async_graphql::{Context, InputObject, Object, Result};

use super::scalars::{Date, DateTime, Decimal};
use super::session;
use super::types::*;
use crate::service;

#[derive(InputObject, Clone, Debug)]
pub struct MoneyInput {
    pub amount: Decimal,
    pub currency: String,
}

impl MoneyInput {
    fn pair(self) -> (String, String) {
        (self.amount.0, self.currency)
    }
}

#[derive(InputObject)]
pub struct UserInput {
    pub external_id: String,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
}

#[derive(InputObject)]
pub struct CampaignInput {
    pub external_id: String,
    pub name: String,
    pub channel: String,
    pub owner_external_id: Option<String>,
    pub starts_on: Option<Date>,
    pub ends_on: Option<Date>,
    pub budget: Option<MoneyInput>,
}

#[derive(InputObject)]
pub struct CampaignCostInput {
    pub external_id: String,
    pub campaign_external_id: String,
    pub amount: MoneyInput,
    pub incurred_on: Date,
}

#[derive(InputObject)]
pub struct LeadInput {
    pub external_id: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub attributes: Option<Vec<LeadAttributeInput>>,
    pub created_at: DateTime,
    /// The lead's account. Absent: the account whose domain is the host of its email, if
    /// any (never a free-mail domain), matched again whenever an account is upserted.
    pub account_external_id: Option<String>,
}

#[derive(InputObject)]
pub struct TouchpointInput {
    pub external_id: String,
    pub lead_external_id: String,
    pub campaign_external_id: String,
    pub kind: String,
    pub occurred_at: DateTime,
}

#[derive(InputObject)]
pub struct TransitionInput {
    pub lead_external_id: String,
    pub to: LeadStage,
    pub occurred_at: DateTime,
    pub reason: Option<String>,
    pub external_id: Option<String>,
}

#[derive(InputObject)]
pub struct OpportunityInput {
    pub external_id: String,
    pub name: String,
    pub primary_contact_external_id: String,
    pub contact_external_ids: Option<Vec<String>>,
    pub owner_external_id: Option<String>,
    pub amount: MoneyInput,
    pub created_at: DateTime,
    /// The account it is for. Absent: its primary contact's account.
    pub account_external_id: Option<String>,
}

#[derive(InputObject)]
pub struct CloseOpportunityInput {
    pub external_id: String,
    pub won: bool,
    pub closed_at: DateTime,
}

#[derive(InputObject)]
pub struct RevenueInput {
    pub external_id: String,
    pub opportunity_external_id: String,
    pub amount: MoneyInput,
    pub booked_on: Date,
}

impl From<UserInput> for service::users::UserInput {
    fn from(input: UserInput) -> Self {
        service::users::UserInput {
            external_id: input.external_id,
            name: input.name,
            email: input.email,
            role: input.role.into(),
        }
    }
}

impl From<CampaignInput> for service::campaigns::CampaignInput {
    fn from(input: CampaignInput) -> Self {
        service::campaigns::CampaignInput {
            external_id: input.external_id,
            name: input.name,
            channel: input.channel,
            owner_external_id: input.owner_external_id,
            starts_on: input.starts_on.map(|d| d.0),
            ends_on: input.ends_on.map(|d| d.0),
            budget: input.budget.map(MoneyInput::pair),
        }
    }
}

impl From<CampaignCostInput> for service::campaigns::CostInput {
    fn from(input: CampaignCostInput) -> Self {
        service::campaigns::CostInput {
            external_id: input.external_id,
            campaign_external_id: input.campaign_external_id,
            amount: input.amount.pair(),
            incurred_on: input.incurred_on.0,
        }
    }
}

impl From<LeadInput> for service::leads::LeadInput {
    fn from(input: LeadInput) -> Self {
        service::leads::LeadInput {
            external_id: input.external_id,
            email: input.email,
            full_name: input.full_name,
            company: input.company,
            title: input.title,
            attributes: input
                .attributes
                .map(|list| list.into_iter().map(|a| (a.key, a.value)).collect()),
            created_at: input.created_at.0,
            account_external_id: input.account_external_id,
        }
    }
}

impl From<TouchpointInput> for service::leads::TouchpointInput {
    fn from(input: TouchpointInput) -> Self {
        service::leads::TouchpointInput {
            external_id: input.external_id,
            lead_external_id: input.lead_external_id,
            campaign_external_id: input.campaign_external_id,
            kind: input.kind,
            occurred_at: input.occurred_at.0,
        }
    }
}

impl From<TransitionInput> for service::leads::TransitionInput {
    fn from(input: TransitionInput) -> Self {
        service::leads::TransitionInput {
            lead_external_id: input.lead_external_id,
            to: input.to.into(),
            occurred_at: input.occurred_at.0,
            reason: input.reason,
            external_id: input.external_id,
        }
    }
}

impl From<OpportunityInput> for service::opportunities::OpportunityInput {
    fn from(input: OpportunityInput) -> Self {
        service::opportunities::OpportunityInput {
            external_id: input.external_id,
            name: input.name,
            primary_contact_external_id: input.primary_contact_external_id,
            contact_external_ids: input.contact_external_ids.unwrap_or_default(),
            owner_external_id: input.owner_external_id,
            amount: input.amount.pair(),
            created_at: input.created_at.0,
            account_external_id: input.account_external_id,
        }
    }
}

impl From<CloseOpportunityInput> for service::opportunities::CloseInput {
    fn from(input: CloseOpportunityInput) -> Self {
        service::opportunities::CloseInput {
            external_id: input.external_id,
            won: input.won,
            closed_at: input.closed_at.0,
        }
    }
}

impl From<RevenueInput> for service::opportunities::RevenueInput {
    fn from(input: RevenueInput) -> Self {
        service::opportunities::RevenueInput {
            external_id: input.external_id,
            opportunity_external_id: input.opportunity_external_id,
            amount: input.amount.pair(),
            booked_on: input.booked_on.0,
        }
    }
}

#[derive(Default)]
pub struct EntityMutation;

#[Object]
impl EntityMutation {
    async fn upsert_user(&self, ctx: &Context<'_>, input: UserInput) -> Result<User> {
        let row = service::users::upsert(&session(ctx).ctx, input.into()).await?;
        Ok(User(row))
    }

    async fn upsert_campaign(&self, ctx: &Context<'_>, input: CampaignInput) -> Result<Campaign> {
        let row = service::campaigns::upsert(&session(ctx).ctx, input.into()).await?;
        Ok(Campaign(row))
    }

    async fn record_campaign_cost(
        &self,
        ctx: &Context<'_>,
        input: CampaignCostInput,
    ) -> Result<Campaign> {
        let row = service::campaigns::record_cost(&session(ctx).ctx, input.into()).await?;
        Ok(Campaign(row))
    }

    async fn upsert_lead(&self, ctx: &Context<'_>, input: LeadInput) -> Result<Lead> {
        let row = service::leads::upsert(&session(ctx).ctx, input.into()).await?;
        Ok(Lead(row))
    }

    async fn record_touchpoint(
        &self,
        ctx: &Context<'_>,
        input: TouchpointInput,
    ) -> Result<Touchpoint> {
        let row = service::leads::record_touchpoint(&session(ctx).ctx, input.into()).await?;
        Ok(Touchpoint(row))
    }

    async fn transition_lead(&self, ctx: &Context<'_>, input: TransitionInput) -> Result<Lead> {
        let row = service::leads::transition(&session(ctx).ctx, input.into()).await?;
        Ok(Lead(row))
    }

    async fn upsert_opportunity(
        &self,
        ctx: &Context<'_>,
        input: OpportunityInput,
    ) -> Result<Opportunity> {
        let row = service::opportunities::upsert(&session(ctx).ctx, input.into()).await?;
        Ok(Opportunity(row))
    }

    async fn close_opportunity(
        &self,
        ctx: &Context<'_>,
        input: CloseOpportunityInput,
    ) -> Result<Opportunity> {
        let row = service::opportunities::close(&session(ctx).ctx, input.into()).await?;
        Ok(Opportunity(row))
    }

    async fn record_revenue(&self, ctx: &Context<'_>, input: RevenueInput) -> Result<RevenueEvent> {
        let row = service::opportunities::record_revenue(&session(ctx).ctx, input.into()).await?;
        Ok(RevenueEvent(row))
    }
}
