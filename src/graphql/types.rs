//! The contract's object types over repository rows. Resolvers stay thin: they read through
//! the request's loaders and ask `service` and `auth` what the caller may see.

use async_graphql::{ComplexObject, Context, Enum, Interface, Object, Result, SimpleObject, ID};

use super::ids::{self, page_args};
use super::scalars::{Date, DateTime, Decimal};
use super::{error::forbidden, session, Session};
use crate::domain::money::Money as DomainMoney;
use crate::domain::report::Credit;
use crate::domain::scoring::Operator;
use crate::domain::stage;
use crate::service::compensation::PlanRecord;
use crate::service::reads::{self, RuleRow};
use crate::service::reads::{
    CampaignRow, LeadRow, OpportunityRow, RevenueRow, TouchpointRow, TransitionRow, UserRow,
};
use crate::service::{self, scoring, AppError};

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::auth::Role")]
pub enum Role {
    Admin,
    Finance,
    MarketingManager,
    Marketer,
    SalesRep,
    Analyst,
    Integration,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::stage::LeadStage")]
pub enum LeadStage {
    Inquiry,
    Mql,
    Sal,
    Sql,
    Opportunity,
    Won,
    Lost,
    Recycled,
    Disqualified,
}

fn parse_stage(text: &str) -> Result<LeadStage> {
    text.parse::<stage::LeadStage>()
        .map(LeadStage::from)
        .map_err(|e| AppError::Internal(e).into())
}

/// Whose touches an opportunity's OPPORTUNITY and WON conversions credit (SPEC §8).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
#[graphql(remote = "crate::domain::account::Mapping")]
pub enum ContactMapping {
    /// The opportunity's contacts (its primary contact among them).
    #[default]
    ContactRoles,
    /// Its primary contact only.
    PrimaryContact,
    /// Its contacts and every lead of its account, no touch before the account's previous
    /// close; an opportunity without an account falls back to CONTACT_ROLES.
    Account,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::deal::DealStatus")]
pub enum OpportunityStatus {
    Open,
    Won,
    Lost,
}

impl OpportunityStatus {
    pub fn as_str(self) -> &'static str {
        crate::domain::deal::DealStatus::from(self).as_str()
    }
}

/// An amount of money in the reporting currency.
#[derive(SimpleObject, Clone, Debug)]
pub struct Money {
    pub amount: Decimal,
    pub currency: String,
}

impl Money {
    pub fn new(session: &Session, minor_units: i64) -> Money {
        let currency = session.ctx.currency.clone();
        Money {
            amount: Decimal(DomainMoney(minor_units).to_decimal_string(&currency)),
            currency,
        }
    }

    /// An amount as it was written: in its own currency when it was not the reporting one.
    pub fn original(
        session: &Session,
        currency: Option<&str>,
        original: Option<i64>,
        value: i64,
    ) -> Money {
        match (currency, original) {
            (Some(currency), Some(units)) => Money {
                amount: Decimal(DomainMoney(units).to_decimal_string(currency)),
                currency: currency.to_string(),
            },
            _ => Money::new(session, value),
        }
    }
}

/// One cost of a campaign, as recorded.
#[derive(Clone, Debug)]
pub struct CampaignCost(pub crate::service::reads::CostRow);

#[Object]
impl CampaignCost {
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    /// In the reporting currency, at the rate in force on `incurredOn` (SPEC §9).
    async fn amount(&self, ctx: &Context<'_>) -> Money {
        Money::new(session(ctx), self.0.amount_cents)
    }
    /// As it was written, in its own currency.
    async fn original_amount(&self, ctx: &Context<'_>) -> Option<Money> {
        Some(Money::original(
            session(ctx),
            self.0.currency.as_deref(),
            self.0.original_amount,
            self.0.amount_cents,
        ))
    }
    async fn incurred_on(&self) -> Date {
        Date(self.0.incurred_on)
    }
}

#[derive(SimpleObject, Clone, Debug, Default)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Period {
    pub from: Date,
    pub to: Date,
}

macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ident) => {
        #[derive(SimpleObject, Clone)]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        #[derive(SimpleObject, Clone)]
        #[graphql(complex)]
        pub struct $conn {
            pub edges: Vec<$edge>,
            pub page_info: PageInfo,
            pub total_count: i64,
        }

        #[ComplexObject]
        impl $conn {
            async fn nodes(&self) -> Vec<$node> {
                self.edges.iter().map(|e| e.node.clone()).collect()
            }
        }

        impl $conn {
            /// Builds a page from up to `limit + 1` rows fetched after the cursor.
            pub fn from_rows(
                mut rows: Vec<$node>,
                limit: i64,
                after: bool,
                total_count: i64,
                external_id: impl Fn(&$node) -> &str,
            ) -> $conn {
                let has_next_page = rows.len() as i64 > limit;
                rows.truncate(limit as usize);
                let edges: Vec<$edge> = rows
                    .into_iter()
                    .map(|node| $edge {
                        cursor: ids::cursor(external_id(&node)),
                        node,
                    })
                    .collect();
                $conn {
                    page_info: PageInfo {
                        has_next_page,
                        has_previous_page: after,
                        start_cursor: edges.first().map(|e| e.cursor.clone()),
                        end_cursor: edges.last().map(|e| e.cursor.clone()),
                    },
                    edges,
                    total_count,
                }
            }
        }
    };
}

connection!(CampaignConnection, CampaignEdge, Campaign);
connection!(LeadConnection, LeadEdge, Lead);
connection!(OpportunityConnection, OpportunityEdge, Opportunity);

#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    User(User),
    Campaign(Campaign),
    Lead(Lead),
    Touchpoint(Touchpoint),
    Opportunity(Opportunity),
    RevenueEvent(RevenueEvent),
    CompensationPlan(CompensationPlan),
    ScoringRule(ScoringRule),
    Account(Account),
}

#[derive(Clone, Debug)]
pub struct Account(pub service::accounts::AccountRow);

impl Account {
    /// FORBIDDEN unless the caller may see this account's deals.
    fn check_deal_milestones(&self, ctx: &Context<'_>) -> Result<()> {
        let s = session(ctx);
        if service::accounts::may_see_deal_milestones(&s.ctx, &self.0) {
            Ok(())
        } else {
            Err(forbidden(format!(
                "role {} may not see this account's deals",
                s.ctx.caller.role.as_str()
            )))
        }
    }
}

/// How engaged an account is: its leads' current scores summed, and how many of them were
/// touched lately.
#[derive(SimpleObject, Clone, Debug)]
pub struct AccountEngagement {
    /// Leads of the account.
    pub contacts: i64,
    /// The sum of their current scores.
    pub score: i64,
    /// Leads with at least one touch in the last `days` days.
    pub engaged_contacts: i64,
    pub days: i32,
}

#[Object]
impl Account {
    async fn id(&self) -> ID {
        ids::encode("Account", self.0.id)
    }
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Lower-case; leads whose email host equals it belong here unless they name an account.
    async fn domain(&self) -> Option<&str> {
        self.0.domain.as_deref()
    }
    async fn owner(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_ref(ctx, self.0.owner_id).await
    }
    /// By key.
    async fn attributes(&self, ctx: &Context<'_>) -> Result<Vec<LeadAttribute>> {
        let s = session(ctx);
        let mut all = service::accounts::attributes(&s.ctx, vec![self.0.id]).await?;
        Ok(all
            .remove(&self.0.id)
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| LeadAttribute { key, value })
            .collect())
    }
    /// Its leads, by externalId (their personal data as the caller's role allows).
    async fn leads(&self, ctx: &Context<'_>) -> Result<Vec<Lead>> {
        let rows = service::accounts::leads_of(&session(ctx).ctx, self.0.id).await?;
        Ok(rows.into_iter().map(Lead).collect())
    }
    /// Its opportunities the caller may see (naming it, or through their primary contact),
    /// by externalId.
    async fn opportunities(&self, ctx: &Context<'_>) -> Result<Vec<Opportunity>> {
        let rows = service::accounts::opportunities_of(&session(ctx).ctx, self.0.id).await?;
        Ok(rows.into_iter().map(Opportunity).collect())
    }
    /// Every touch of every lead of the account, in time order, then externalId.
    async fn timeline(&self, ctx: &Context<'_>) -> Result<Vec<Touchpoint>> {
        let rows = service::accounts::timeline(&session(ctx).ctx, self.0.id).await?;
        Ok(rows.into_iter().map(Touchpoint).collect())
    }
    /// When it became a marketing-qualified account (SPEC §8); null if it has not.
    async fn mqa_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime>> {
        let states = service::accounts::states(&session(ctx).ctx).await?;
        Ok(states
            .milestones
            .get(&self.0.id)
            .and_then(|m| m.mqa)
            .map(DateTime))
    }
    async fn first_opportunity_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime>> {
        self.check_deal_milestones(ctx)?;
        let states = service::accounts::states(&session(ctx).ctx).await?;
        Ok(states
            .milestones
            .get(&self.0.id)
            .and_then(|m| m.first_opportunity)
            .map(DateTime))
    }
    async fn first_won_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime>> {
        self.check_deal_milestones(ctx)?;
        let states = service::accounts::states(&session(ctx).ctx).await?;
        Ok(states
            .milestones
            .get(&self.0.id)
            .and_then(|m| m.first_win)
            .map(DateTime))
    }
    /// Its leads' scores summed, and its engaged contacts: those touched in the last `days`.
    async fn engagement(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 90)] days: i32,
    ) -> Result<AccountEngagement> {
        let found =
            service::accounts::engagement(&session(ctx).ctx, vec![self.0.id], i64::from(days))
                .await?
                .remove(&self.0.id)
                .unwrap_or_default();
        Ok(AccountEngagement {
            contacts: found.0,
            score: found.1,
            engaged_contacts: found.2,
            days,
        })
    }
}

/// Resolves an account reference (accounts follow the leads' read rules).
async fn account_ref(ctx: &Context<'_>, id: Option<i64>) -> Result<Option<Account>> {
    let Some(id) = id else { return Ok(None) };
    Ok(session(ctx)
        .loaders
        .accounts()
        .load_one(id)
        .await?
        .map(Account))
}

/// Resolves a user reference the caller may or may not see.
pub(crate) async fn user_ref(ctx: &Context<'_>, id: Option<i64>) -> Result<Option<User>> {
    let Some(id) = id else { return Ok(None) };
    let s = session(ctx);
    if !service::users::can_see_user(&s.ctx, id) {
        return Err(forbidden(format!(
            "role {} may not see other users",
            s.ctx.caller.role.as_str()
        )));
    }
    Ok(s.loaders.users().load_one(id).await?.map(User))
}

#[derive(Clone, Debug)]
pub struct User(pub UserRow);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ids::encode("User", self.0.id)
    }
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        if service::users::can_see_email(&session(ctx).ctx, &self.0.external_id) {
            Ok(self.0.email.as_deref())
        } else {
            Err(forbidden("this role may not see users' email addresses"))
        }
    }
    async fn role(&self) -> Result<Role> {
        Ok(service::users::role_of(&self.0)?.into())
    }
}

#[derive(Clone, Debug)]
pub struct Campaign(pub CampaignRow);

#[Object]
impl Campaign {
    async fn id(&self) -> ID {
        ids::encode("Campaign", self.0.id)
    }
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn channel(&self) -> &str {
        &self.0.channel
    }
    async fn owner(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_ref(ctx, self.0.owner_id).await
    }
    async fn starts_on(&self) -> Option<Date> {
        self.0.starts_on.map(Date)
    }
    async fn ends_on(&self) -> Option<Date> {
        self.0.ends_on.map(Date)
    }
    async fn budget(&self, ctx: &Context<'_>) -> Option<Money> {
        self.0.budget_cents.map(|c| Money::new(session(ctx), c))
    }
    /// Money spent on the campaign; only what was incurred in `period` when given.
    async fn cost(&self, ctx: &Context<'_>, period: Option<super::PeriodInput>) -> Result<Money> {
        let s = session(ctx);
        let range = period
            .map(|p| p.checked())
            .transpose()?
            .map(|p| (p.from, p.to));
        let cents = s
            .loaders
            .costs()
            .load_one((self.0.id, range))
            .await?
            .unwrap_or(0);
        Ok(Money::new(s, cents))
    }
    /// The costs recorded on the campaign (only those incurred in `period` when given), by
    /// day then externalId, each with the amount as written.
    async fn cost_entries(
        &self,
        ctx: &Context<'_>,
        period: Option<super::PeriodInput>,
    ) -> Result<Vec<CampaignCost>> {
        let range = period
            .map(|p| p.checked())
            .transpose()?
            .map(|p| (p.from, p.to));
        let rows = service::campaigns::cost_entries(&session(ctx).ctx, self.0.id, range).await?;
        Ok(rows.into_iter().map(CampaignCost).collect())
    }
    /// The leads with at least one touchpoint on this campaign, by externalId.
    #[graphql(
        complexity = "first.unwrap_or(ids::DEFAULT_PAGE).clamp(0, ids::MAX_PAGE + 1) as usize * child_complexity"
    )]
    async fn leads(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<LeadConnection> {
        campaign_leads(ctx, self.0.id, first, after).await
    }
}

#[derive(async_graphql::InputObject)]
pub struct LeadAttributeInput {
    pub key: String,
    pub value: String,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct LeadAttribute {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug)]
pub struct Lead(pub LeadRow);

impl Lead {
    /// FORBIDDEN unless the caller may see this lead's personal data.
    async fn check_pii(&self, ctx: &Context<'_>) -> Result<()> {
        let s = session(ctx);
        let (by_campaigns, by_deals) = service::leads::pii_needs_facts(&s.ctx);
        let facts = if by_campaigns || by_deals {
            let mut facts = service::leads::PiiFacts::default();
            if by_deals {
                facts.opportunity_owners = s
                    .loaders
                    .opportunity_owners()
                    .load_one(self.0.id)
                    .await?
                    .unwrap_or_default();
                if let Some(account) = self.0.account_id {
                    facts.account_owner = s
                        .loaders
                        .accounts()
                        .load_one(account)
                        .await?
                        .and_then(|a| a.owner_id);
                }
            }
            if by_campaigns {
                let touches = s
                    .loaders
                    .touchpoints_by_lead()
                    .load_one(self.0.id)
                    .await?
                    .unwrap_or_default();
                let campaign_ids: Vec<i64> = touches.iter().map(|t| t.campaign_id).collect();
                let campaigns = s.loaders.campaigns().load_many(campaign_ids).await?;
                facts.campaign_owners = campaigns.values().filter_map(|c| c.owner_id).collect();
            }
            facts
        } else {
            service::leads::PiiFacts::default()
        };
        if service::leads::can_see_pii(&s.ctx, &self.0, || facts) {
            Ok(())
        } else {
            Err(forbidden(format!(
                "role {} may not see this lead's personal data",
                s.ctx.caller.role.as_str()
            )))
        }
    }
}

#[Object]
impl Lead {
    async fn id(&self) -> ID {
        ids::encode("Lead", self.0.id)
    }
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        self.check_pii(ctx).await?;
        Ok(self.0.email.as_deref())
    }
    async fn full_name(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        self.check_pii(ctx).await?;
        Ok(self.0.full_name.as_deref())
    }
    async fn company(&self) -> Option<&str> {
        self.0.company.as_deref()
    }
    async fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }
    async fn attributes(&self, ctx: &Context<'_>) -> Result<Vec<LeadAttribute>> {
        let attrs = session(ctx)
            .loaders
            .attributes_by_lead()
            .load_one(self.0.id)
            .await?;
        Ok(attrs
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| LeadAttribute { key, value })
            .collect())
    }
    async fn stage(&self) -> Result<LeadStage> {
        parse_stage(&self.0.stage)
    }
    async fn score(&self) -> i32 {
        self.0.score
    }
    /// Each active rule's contribution to the score, so sales can see why a lead is hot.
    async fn score_breakdown(&self, ctx: &Context<'_>) -> Result<Vec<ScoreContribution>> {
        breakdown(ctx, self).await
    }
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at.and_utc())
    }
    async fn owner(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_ref(ctx, self.0.owner_id).await
    }
    /// Its account: the one it names, else the one its email's domain matches (SPEC §8).
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        account_ref(ctx, self.0.account_id).await
    }
    /// Whether its account was given (true) or matched by its email's domain (false).
    async fn account_explicit(&self) -> bool {
        self.0.account_explicit
    }
    /// In time order, then externalId.
    async fn touchpoints(&self, ctx: &Context<'_>) -> Result<Vec<Touchpoint>> {
        let rows = session(ctx)
            .loaders
            .touchpoints_by_lead()
            .load_one(self.0.id)
            .await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(Touchpoint)
            .collect())
    }
    /// In time order, then externalId, then the order the moves were made.
    async fn stage_history(&self, ctx: &Context<'_>) -> Result<Vec<StageTransition>> {
        let mut rows = session(ctx)
            .loaders
            .transitions_by_lead()
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        rows.sort_by(|a, b| {
            (a.occurred_at, &a.external_id, a.id).cmp(&(b.occurred_at, &b.external_id, b.id))
        });
        Ok(rows.into_iter().map(StageTransition).collect())
    }
}

#[derive(Clone, Debug)]
pub struct Touchpoint(pub TouchpointRow);

#[Object]
impl Touchpoint {
    async fn id(&self) -> ID {
        ids::encode("Touchpoint", self.0.id)
    }
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    async fn lead(&self, ctx: &Context<'_>) -> Result<Lead> {
        let lead = session(ctx)
            .loaders
            .leads()
            .load_one(self.0.lead_id)
            .await?;
        lead.map(Lead)
            .ok_or_else(|| AppError::Internal("touchpoint without lead".into()).into())
    }
    async fn campaign(&self, ctx: &Context<'_>) -> Result<Campaign> {
        let s = session(ctx);
        let campaign = s
            .loaders
            .campaigns()
            .load_one(self.0.campaign_id)
            .await?
            .ok_or_else(|| AppError::Internal("touchpoint without campaign".into()))?;
        if !service::campaigns::can_see(&s.ctx, campaign.owner_id) {
            return Err(forbidden(format!(
                "role {} may not see this campaign",
                s.ctx.caller.role.as_str()
            )));
        }
        Ok(Campaign(campaign))
    }
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn occurred_at(&self) -> DateTime {
        DateTime(self.0.occurred_at.and_utc())
    }
}

#[derive(Clone, Debug)]
pub struct StageTransition(pub TransitionRow);

#[Object]
impl StageTransition {
    async fn from(&self) -> Result<Option<LeadStage>> {
        self.0.from_stage.as_deref().map(parse_stage).transpose()
    }
    async fn to(&self) -> Result<LeadStage> {
        parse_stage(&self.0.to_stage)
    }
    async fn occurred_at(&self) -> DateTime {
        DateTime(self.0.occurred_at.and_utc())
    }
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// The externalId the move was made with, when it had one.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
}

#[derive(Clone, Debug)]
pub struct Opportunity(pub OpportunityRow);

#[Object]
impl Opportunity {
    async fn id(&self) -> ID {
        ids::encode("Opportunity", self.0.id)
    }
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn primary_contact(&self, ctx: &Context<'_>) -> Result<Lead> {
        let lead = session(ctx)
            .loaders
            .leads()
            .load_one(self.0.primary_contact_id)
            .await?;
        lead.map(Lead)
            .ok_or_else(|| AppError::Internal("opportunity without primary contact".into()).into())
    }
    /// Every contact, the primary one first.
    async fn contacts(&self, ctx: &Context<'_>) -> Result<Vec<Lead>> {
        let s = session(ctx);
        let ids = s
            .loaders
            .contacts()
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        let leads = s.loaders.leads().load_many(ids.clone()).await?;
        Ok(ids
            .iter()
            .filter_map(|id| leads.get(id).cloned().map(Lead))
            .collect())
    }
    async fn owner(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_ref(ctx, self.0.owner_id).await
    }
    /// Its account: the one it names, else its primary contact's (SPEC §8).
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        let id = match self.0.account_id {
            Some(id) => Some(id),
            None => session(ctx)
                .loaders
                .leads()
                .load_one(self.0.primary_contact_id)
                .await?
                .and_then(|l| l.account_id),
        };
        account_ref(ctx, id).await
    }
    /// In the reporting currency, at the rate in force on the UTC day of `createdAt` (SPEC §9).
    async fn amount(&self, ctx: &Context<'_>) -> Money {
        Money::new(session(ctx), self.0.amount_cents)
    }
    /// As it was written, in its own currency.
    async fn original_amount(&self, ctx: &Context<'_>) -> Option<Money> {
        Some(Money::original(
            session(ctx),
            self.0.currency.as_deref(),
            self.0.original_amount,
            self.0.amount_cents,
        ))
    }
    async fn status(&self) -> Result<OpportunityStatus> {
        Ok(service::opportunities::status_of(&self.0)?.into())
    }
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at.and_utc())
    }
    async fn closed_at(&self) -> Option<DateTime> {
        self.0.closed_at.map(|t| DateTime(t.and_utc()))
    }
    /// Each touchpoint's share of this deal under `model`: of its booked revenue as of its
    /// close when WON, else of its amount as of its creation (365-day lookback).
    async fn credits(
        &self,
        ctx: &Context<'_>,
        model: AttributionModel,
        #[graphql(default_with = "Some(ContactMapping::ContactRoles)")] contacts: Option<
            ContactMapping,
        >,
        #[graphql(desc = "With model CUSTOM: the key of a model in attributionModels.")]
        custom_model: Option<String>,
    ) -> Result<Vec<AttributionCredit>> {
        // MARKOV at order 1 here: a deal's credits solve the chain of 365 days before it, per
        // deal, which at order 2 takes minutes at scale (BENCHMARKS.md).
        let model = model.resolve(&session(ctx).ctx, custom_model, None).await?;
        let credits = service::attribution::opportunity_credits(
            &session(ctx).ctx,
            self.0.id,
            model,
            contacts.unwrap_or_default().into(),
        )
        .await?;
        Ok(credits
            .into_iter()
            .map(|credit| AttributionCredit { credit })
            .collect())
    }
    /// Revenue booked on this deal, by booking date.
    async fn revenue(&self, ctx: &Context<'_>) -> Result<Vec<RevenueEvent>> {
        let rows = session(ctx).loaders.revenue().load_one(self.0.id).await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(RevenueEvent)
            .collect())
    }
}

#[derive(Clone, Debug)]
pub struct RevenueEvent(pub RevenueRow);

#[Object]
impl RevenueEvent {
    async fn id(&self) -> ID {
        ids::encode("RevenueEvent", self.0.id)
    }
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    async fn opportunity(&self, ctx: &Context<'_>) -> Result<Opportunity> {
        let opp = session(ctx)
            .loaders
            .opportunities()
            .load_one(self.0.opportunity_id)
            .await?;
        opp.map(Opportunity)
            .ok_or_else(|| AppError::Internal("revenue without opportunity".into()).into())
    }
    /// In the reporting currency, at the rate in force on `bookedOn` (SPEC §9).
    async fn amount(&self, ctx: &Context<'_>) -> Money {
        Money::new(session(ctx), self.0.amount_cents)
    }
    /// As it was written, in its own currency.
    async fn original_amount(&self, ctx: &Context<'_>) -> Option<Money> {
        Some(Money::original(
            session(ctx),
            self.0.currency.as_deref(),
            self.0.original_amount,
            self.0.amount_cents,
        ))
    }
    async fn booked_on(&self) -> Date {
        Date(self.0.booked_on)
    }
}

// ---- object types reached from the entities above (plans, rules, credits) ----

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AttributionModel {
    FirstTouch,
    LastTouch,
    Linear,
    PositionBased,
    WShaped,
    FullPath,
    TimeDecay,
    Markov,
    JShaped,
    InverseJ,
    /// Channel-level Shapley values of the period's paths (SPEC §4b), at most 16 channels.
    Shapley,
    /// A custom model as data (`attributionModels`), named by a `customModel` argument.
    Custom,
}

impl From<crate::domain::attribution::Model> for AttributionModel {
    fn from(m: crate::domain::attribution::Model) -> Self {
        use crate::domain::attribution::Model as M;
        match m {
            M::FirstTouch => AttributionModel::FirstTouch,
            M::LastTouch => AttributionModel::LastTouch,
            M::Linear => AttributionModel::Linear,
            M::PositionBased => AttributionModel::PositionBased,
            M::WShaped => AttributionModel::WShaped,
            M::FullPath => AttributionModel::FullPath,
            M::TimeDecay => AttributionModel::TimeDecay,
            M::Markov(_) => AttributionModel::Markov,
            M::JShaped => AttributionModel::JShaped,
            M::InverseJ => AttributionModel::InverseJ,
            M::Shapley => AttributionModel::Shapley,
            M::Custom(_) => AttributionModel::Custom,
        }
    }
}

impl AttributionModel {
    /// MARKOV at `order` (1 ..= 3); an order with any other model is BAD_USER_INPUT.
    pub fn with_order(
        model: crate::domain::attribution::Model,
        order: Option<i32>,
    ) -> Result<crate::domain::attribution::Model, crate::service::AppError> {
        match order {
            None => Ok(model),
            Some(k) => model
                .at_order(i64::from(k))
                .map_err(crate::service::AppError::BadInput),
        }
    }

    fn order_alone() -> crate::service::AppError {
        crate::service::AppError::BadInput("markovOrder goes with model: MARKOV".into())
    }

    /// The named model, or None for CUSTOM (which needs its `customModel`).
    pub fn named(self) -> Option<crate::domain::attribution::Model> {
        use crate::domain::attribution::Model as M;
        Some(match self {
            AttributionModel::FirstTouch => M::FirstTouch,
            AttributionModel::LastTouch => M::LastTouch,
            AttributionModel::Linear => M::Linear,
            AttributionModel::PositionBased => M::PositionBased,
            AttributionModel::WShaped => M::WShaped,
            AttributionModel::FullPath => M::FullPath,
            AttributionModel::TimeDecay => M::TimeDecay,
            AttributionModel::Markov => M::Markov(1),
            AttributionModel::JShaped => M::JShaped,
            AttributionModel::InverseJ => M::InverseJ,
            AttributionModel::Shapley => M::Shapley,
            AttributionModel::Custom => return None,
        })
    }

    /// The model a query names: a named one, or the current version of `custom` when the
    /// model is CUSTOM (each without the other is BAD_USER_INPUT).
    pub async fn resolve(
        self,
        ctx: &crate::service::Ctx,
        custom: Option<String>,
        markov_order: Option<i32>,
    ) -> Result<crate::domain::attribution::Model, crate::service::AppError> {
        match (self.named(), custom) {
            (Some(model), None) => AttributionModel::with_order(model, markov_order),
            (None, Some(_)) if markov_order.is_some() => Err(Self::order_alone()),
            (None, Some(key)) => crate::service::models::current(ctx, &key).await,
            (None, None) => Err(crate::service::AppError::BadInput(
                "model CUSTOM needs customModel: the key of a model in attributionModels".into(),
            )),
            (Some(_), Some(_)) => Err(crate::service::AppError::BadInput(
                "customModel goes with model: CUSTOM".into(),
            )),
        }
    }
}

/// A touchpoint's share of an opportunity.
#[derive(Clone)]
pub struct AttributionCredit {
    pub credit: Credit,
}

#[Object]
impl AttributionCredit {
    async fn touchpoint(&self, ctx: &Context<'_>) -> Result<Touchpoint> {
        let row = session(ctx)
            .loaders
            .touchpoints()
            .load_one(self.credit.touch.id)
            .await?;
        row.map(Touchpoint).ok_or_else(|| {
            crate::service::AppError::Internal("credited touchpoint vanished".into()).into()
        })
    }
    async fn campaign(&self, ctx: &Context<'_>) -> Result<Campaign> {
        let row = session(ctx)
            .loaders
            .campaigns()
            .load_one(self.credit.touch.campaign_id)
            .await?;
        row.map(Campaign).ok_or_else(|| {
            crate::service::AppError::Internal("credited campaign vanished".into()).into()
        })
    }
    async fn weight(&self) -> f64 {
        self.credit.weight.to_f64()
    }
    async fn amount(&self, ctx: &Context<'_>) -> Money {
        Money::new(session(ctx), self.credit.amount)
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::scoring::Kind")]
pub enum ScoringRuleKind {
    Attribute,
    Behavior,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::scoring::Operator")]
pub enum ScoringOperator {
    Equals,
    Contains,
    Gte,
    Lte,
    In,
}

#[derive(Clone, Debug)]
pub struct ScoringRule(pub RuleRow);

#[Object]
impl ScoringRule {
    pub async fn id(&self) -> ID {
        ids::encode("ScoringRule", self.0.id)
    }
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn kind(&self) -> ScoringRuleKind {
        if self.0.kind == "BEHAVIOR" {
            ScoringRuleKind::Behavior
        } else {
            ScoringRuleKind::Attribute
        }
    }
    async fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }
    async fn operator(&self) -> Option<ScoringOperator> {
        Some(match Operator::parse(self.0.operator.as_deref()?)? {
            Operator::Equals => ScoringOperator::Equals,
            Operator::Contains => ScoringOperator::Contains,
            Operator::Gte => ScoringOperator::Gte,
            Operator::Lte => ScoringOperator::Lte,
            Operator::In => ScoringOperator::In,
        })
    }
    async fn value(&self) -> Option<&str> {
        self.0.value.as_deref()
    }
    async fn touch_kind(&self) -> Option<&str> {
        self.0.touch_kind.as_deref()
    }
    async fn points(&self) -> i32 {
        self.0.points
    }
    async fn max_points(&self) -> Option<i32> {
        self.0.max_points
    }
    async fn active(&self) -> bool {
        self.0.active
    }
}

/// One rule's part of a lead's score.
#[derive(SimpleObject, Clone)]
pub struct ScoreContribution {
    pub rule: ScoringRule,
    pub points: i32,
}

/// The breakdown of a lead's score under the active rules.
pub async fn breakdown(ctx: &Context<'_>, lead: &Lead) -> Result<Vec<ScoreContribution>> {
    let s = session(ctx);
    let rows = s.loaders.rules().load_one(0).await?.unwrap_or_default();
    if !rows.iter().any(|r| r.active) {
        return Ok(vec![]);
    }
    let attributes = s
        .loaders
        .attributes_by_lead()
        .load_one(lead.0.id)
        .await?
        .unwrap_or_default();
    let touches = s
        .loaders
        .touchpoints_by_lead()
        .load_one(lead.0.id)
        .await?
        .unwrap_or_default();
    let kinds: Vec<&str> = touches.iter().map(|t| t.kind.as_str()).collect();
    Ok(scoring::breakdown(&rows, &lead.0, &attributes, &kinds)?
        .into_iter()
        .map(|(rule, points)| ScoreContribution {
            rule: ScoringRule(rule.clone()),
            points,
        })
        .collect())
}

#[derive(Clone, Debug)]
pub struct CompensationPlan(pub PlanRecord);

pub(super) fn money_opt(s: &super::Session, cents: Option<i64>) -> Option<Money> {
    cents.map(|c| Money::new(s, c))
}

#[Object]
impl CompensationPlan {
    pub async fn id(&self) -> ID {
        ids::encode("CompensationPlan", self.0.id)
    }
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn model(&self) -> Result<AttributionModel> {
        if self.0.model == "CUSTOM" {
            return Ok(AttributionModel::Custom);
        }
        let m: crate::domain::attribution::Model =
            self.0.model.parse().map_err(AppError::Internal)?;
        Ok(m.into())
    }
    /// The custom model's key when `model` is CUSTOM.
    async fn custom_model(&self) -> Option<&str> {
        self.0.custom_model.as_deref()
    }
    /// The version of that model this plan's statement used (on a statement's plan; null on a
    /// plan read by itself, which follows the current version).
    async fn custom_model_version(&self) -> Option<i32> {
        self.0.custom_model_version
    }
    async fn revenue_rate(&self) -> Decimal {
        Decimal(self.0.revenue_rate.clone())
    }
    async fn quota(&self, ctx: &Context<'_>) -> Option<Money> {
        money_opt(session(ctx), self.0.quota_cents)
    }
    async fn accelerator_rate(&self) -> Option<Decimal> {
        self.0.accelerator_rate.clone().map(Decimal)
    }
    async fn qualified_lead_bonus(&self, ctx: &Context<'_>) -> Money {
        Money::new(session(ctx), self.0.qualified_lead_bonus_cents)
    }
    async fn cap(&self, ctx: &Context<'_>) -> Option<Money> {
        money_opt(session(ctx), self.0.cap_cents)
    }
    /// Whose touches its statements credit on a deal.
    async fn contacts(&self) -> Result<ContactMapping> {
        crate::domain::account::Mapping::parse(&self.0.contacts)
            .map(ContactMapping::from)
            .ok_or_else(|| {
                AppError::Internal(format!("unknown mapping {}", self.0.contacts)).into()
            })
    }
    async fn clawback_days(&self) -> i32 {
        self.0.clawback_days
    }
}

pub(super) fn wants_total(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

pub(super) async fn campaign_leads(
    ctx: &Context<'_>,
    campaign_id: i64,
    first: Option<i32>,
    after: Option<String>,
) -> Result<LeadConnection> {
    let s = session(ctx);
    let (limit, after) = page_args(first, after)?;
    let total = wants_total(ctx);
    let had_after = after.is_some();
    let reads::Page {
        rows: ids,
        total: count,
    } = reads::campaign_lead_page(&s.ctx, campaign_id, after, limit, total).await?;
    let loaded = s.loaders.leads().load_many(ids.clone()).await?;
    let rows: Vec<Lead> = ids
        .iter()
        .filter_map(|id| loaded.get(id).cloned().map(Lead))
        .collect();
    Ok(LeadConnection::from_rows(
        rows,
        limit,
        had_after,
        count,
        |l| &l.0.external_id,
    ))
}
