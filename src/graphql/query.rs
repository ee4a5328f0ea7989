//! Read entry points of the foundation: the caller, nodes, and the entity lists.

use async_graphql::{Context, Object, Result, ID};

use super::error::forbidden;
use super::ids::{self, page_args};
use super::types::*;
use super::{session, Session};
use crate::service::reads::{self, Lookup};
use crate::service::{self, AppError, AppResult};

#[derive(Default)]
pub struct EntityQuery;

/// Exactly one of `id` and `externalId` picks a row.
fn key(id: Option<ID>, external_id: Option<String>, kind: &str) -> AppResult<Lookup> {
    match (id, external_id) {
        (Some(id), None) => Ok(Lookup::Id(ids::decode_as(&id, kind)?)),
        (None, Some(ext)) => Ok(Lookup::External(ext)),
        _ => Err(AppError::BadInput(format!(
            "give exactly one of id and externalId to find a {kind}"
        ))),
    }
}

async fn find_campaign(s: &Session, key: Lookup) -> Result<Option<Campaign>> {
    Ok(reads::campaign(&s.ctx, key).await?.map(Campaign))
}

async fn find_lead(s: &Session, key: Lookup) -> Result<Option<Lead>> {
    Ok(reads::lead(&s.ctx, key).await?.map(Lead))
}

async fn find_opportunity(s: &Session, key: Lookup) -> Result<Option<Opportunity>> {
    Ok(reads::opportunity(&s.ctx, key).await?.map(Opportunity))
}

#[Object]
impl EntityQuery {
    /// The caller: their user row, or one made from the token when there is none yet.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        Ok(User(service::users::me(&session(ctx).ctx).await?))
    }

    /// Any object by its global id.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        let s = session(ctx);
        let (kind, row) = ids::decode(&id)?;
        Ok(match kind.as_str() {
            "Campaign" => find_campaign(s, Lookup::Id(row)).await?.map(Node::Campaign),
            "Lead" => find_lead(s, Lookup::Id(row)).await?.map(Node::Lead),
            "Opportunity" => find_opportunity(s, Lookup::Id(row))
                .await?
                .map(Node::Opportunity),
            "User" => {
                if !service::users::can_see_user(&s.ctx, row) {
                    return Err(forbidden("this role may not see other users"));
                }
                s.loaders
                    .users()
                    .load_one(row)
                    .await?
                    .map(User)
                    .map(Node::User)
            }
            "Touchpoint" => s
                .loaders
                .touchpoints()
                .load_one(row)
                .await?
                .map(Touchpoint)
                .map(Node::Touchpoint),
            "Account" => service::accounts::account(&s.ctx, service::accounts::AccountKey::Id(row))
                .await?
                .map(|a| Node::Account(Account(a))),
            "RevenueEvent" => reads::revenue_event(&s.ctx, row)
                .await?
                .map(|r| Node::RevenueEvent(RevenueEvent(r))),
            _ => None,
        })
    }

    async fn campaign(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        external_id: Option<String>,
    ) -> Result<Option<Campaign>> {
        find_campaign(session(ctx), key(id, external_id, "Campaign")?).await
    }

    /// Campaigns by externalId; a MARKETER's list holds their own.
    #[graphql(
        complexity = "first.unwrap_or(ids::DEFAULT_PAGE).clamp(0, ids::MAX_PAGE + 1) as usize * child_complexity"
    )]
    async fn campaigns(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        channel: Option<String>,
    ) -> Result<CampaignConnection> {
        let s = session(ctx);
        let (limit, after) = page_args(first, after)?;
        let had_after = after.is_some();
        let reads::Page { rows, total: count } =
            reads::campaign_page(&s.ctx, channel, after, limit, wants_total(ctx)).await?;
        let rows = rows.into_iter().map(Campaign).collect();
        Ok(CampaignConnection::from_rows(
            rows,
            limit,
            had_after,
            count,
            |c| &c.0.external_id,
        ))
    }

    async fn lead(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        external_id: Option<String>,
    ) -> Result<Option<Lead>> {
        find_lead(session(ctx), key(id, external_id, "Lead")?).await
    }

    /// Leads by externalId, optionally only those currently at `stage`.
    #[graphql(
        complexity = "first.unwrap_or(ids::DEFAULT_PAGE).clamp(0, ids::MAX_PAGE + 1) as usize * child_complexity"
    )]
    async fn leads(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        stage: Option<LeadStage>,
    ) -> Result<LeadConnection> {
        let s = session(ctx);
        let (limit, after) = page_args(first, after)?;
        let had_after = after.is_some();
        let reads::Page { rows, total: count } = reads::lead_page(
            &s.ctx,
            stage.map(crate::domain::stage::LeadStage::from),
            after,
            limit,
            wants_total(ctx),
        )
        .await?;
        let rows = rows.into_iter().map(Lead).collect();
        Ok(LeadConnection::from_rows(
            rows,
            limit,
            had_after,
            count,
            |l| &l.0.external_id,
        ))
    }

    async fn opportunity(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        external_id: Option<String>,
    ) -> Result<Option<Opportunity>> {
        find_opportunity(session(ctx), key(id, external_id, "Opportunity")?).await
    }

    /// Opportunities by externalId; a SALES_REP's list holds their own.
    #[graphql(
        complexity = "first.unwrap_or(ids::DEFAULT_PAGE).clamp(0, ids::MAX_PAGE + 1) as usize * child_complexity"
    )]
    async fn opportunities(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<OpportunityStatus>,
    ) -> Result<OpportunityConnection> {
        let s = session(ctx);
        let (limit, after) = page_args(first, after)?;
        let had_after = after.is_some();
        let reads::Page { rows, total: count } = reads::opportunity_page(
            &s.ctx,
            status.map(|st| st.as_str().to_string()),
            after,
            limit,
            wants_total(ctx),
        )
        .await?;
        let rows = rows.into_iter().map(Opportunity).collect();
        Ok(OpportunityConnection::from_rows(
            rows,
            limit,
            had_after,
            count,
            |o| &o.0.external_id,
        ))
    }
}
