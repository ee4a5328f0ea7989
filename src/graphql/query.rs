//! Read entry points of the foundation: the caller, nodes, and the entity lists.

use async_graphql::{Context, Object, Result, ID};

use super::error::forbidden;
use super::ids::{self, page_args};
use super::types::*;
use super::{session, Session};
use crate::repo::{campaigns, leads, opportunities};
use crate::service::{self, AppError, AppResult};

#[derive(Default)]
pub struct EntityQuery;

/// Exactly one of `id` and `externalId` picks a row.
enum Key {
    Row(i64),
    External(String),
}

fn key(id: Option<ID>, external_id: Option<String>, kind: &str) -> AppResult<Key> {
    match (id, external_id) {
        (Some(id), None) => Ok(Key::Row(ids::decode_as(&id, kind)?)),
        (None, Some(ext)) => Ok(Key::External(ext)),
        _ => Err(AppError::BadInput(format!(
            "give exactly one of id and externalId to find a {kind}"
        ))),
    }
}

async fn find_campaign(s: &Session, key: Key) -> Result<Option<Campaign>> {
    s.ctx
        .require_read(crate::auth::Read::Campaigns, "campaigns")?;
    let row = s
        .ctx
        .db
        .run(move |conn| -> AppResult<_> {
            Ok(match key {
                Key::Row(id) => campaigns::by_id(conn, id)?,
                Key::External(ext) => campaigns::by_external_id(conn, &ext)?,
            })
        })
        .await?;
    Ok(service::campaigns::visible_or_forbidden(&s.ctx, row)?.map(Campaign))
}

async fn find_lead(s: &Session, key: Key) -> Result<Option<Lead>> {
    let row = s
        .ctx
        .db
        .run(move |conn| -> AppResult<_> {
            Ok(match key {
                Key::Row(id) => leads::by_id(conn, id)?,
                Key::External(ext) => leads::by_external_id(conn, &ext)?,
            })
        })
        .await?;
    Ok(row.map(Lead))
}

async fn find_opportunity(s: &Session, key: Key) -> Result<Option<Opportunity>> {
    s.ctx
        .require_read(crate::auth::Read::Opportunities, "opportunities")?;
    let row = s
        .ctx
        .db
        .run(move |conn| -> AppResult<_> {
            Ok(match key {
                Key::Row(id) => opportunities::by_id(conn, id)?,
                Key::External(ext) => opportunities::by_external_id(conn, &ext)?,
            })
        })
        .await?;
    match row {
        Some(o) if !service::opportunities::can_see(&s.ctx, o.owner_id) => {
            Err(forbidden("a SALES_REP sees only their own opportunities"))
        }
        other => Ok(other.map(Opportunity)),
    }
}

fn wants_total(ctx: &Context<'_>) -> bool {
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
    let (ids, count) = s
        .ctx
        .db
        .run(move |conn| -> AppResult<_> {
            let ids = campaigns::lead_page(conn, campaign_id, after.as_deref(), limit + 1)?;
            let count = if total {
                campaigns::lead_count(conn, campaign_id)?
            } else {
                0
            };
            Ok((ids, count))
        })
        .await?;
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
            "Campaign" => find_campaign(s, Key::Row(row)).await?.map(Node::Campaign),
            "Lead" => find_lead(s, Key::Row(row)).await?.map(Node::Lead),
            "Opportunity" => find_opportunity(s, Key::Row(row))
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
            "RevenueEvent" => {
                s.ctx
                    .require_read(crate::auth::Read::Opportunities, "revenue")?;
                let rev = s
                    .ctx
                    .db
                    .run(move |conn| -> AppResult<_> {
                        Ok(opportunities::revenue_by_id(conn, row)?)
                    })
                    .await?;
                let Some(rev) = rev else { return Ok(None) };
                let opp = s
                    .loaders
                    .opportunities()
                    .load_one(rev.opportunity_id)
                    .await?;
                if !opp.is_some_and(|o| service::opportunities::can_see(&s.ctx, o.owner_id)) {
                    return Err(forbidden(
                        "a SALES_REP sees only revenue of their own opportunities",
                    ));
                }
                Some(Node::RevenueEvent(RevenueEvent(rev)))
            }
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
        let filter = service::campaigns::visible_filter(&s.ctx, channel)?;
        let (limit, after) = page_args(first, after)?;
        let total = wants_total(ctx);
        let had_after = after.is_some();
        let (rows, count) = s
            .ctx
            .db
            .run(move |conn| -> AppResult<_> {
                let rows = campaigns::page(conn, &filter, after.as_deref(), limit + 1)?;
                let count = if total {
                    campaigns::count(conn, &filter)?
                } else {
                    0
                };
                Ok((rows, count))
            })
            .await?;
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
        let stage = stage.map(|st| crate::domain::stage::LeadStage::from(st).as_str());
        let total = wants_total(ctx);
        let had_after = after.is_some();
        let (rows, count) = s
            .ctx
            .db
            .run(move |conn| -> AppResult<_> {
                let rows = leads::page(conn, stage, after.as_deref(), limit + 1)?;
                let count = if total { leads::count(conn, stage)? } else { 0 };
                Ok((rows, count))
            })
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
        let filter = service::opportunities::visible_filter(
            &s.ctx,
            status.map(|st| st.as_str().to_string()),
        )?;
        let (limit, after) = page_args(first, after)?;
        let total = wants_total(ctx);
        let had_after = after.is_some();
        let (rows, count) = s
            .ctx
            .db
            .run(move |conn| -> AppResult<_> {
                let rows = opportunities::page(conn, &filter, after.as_deref(), limit + 1)?;
                let count = if total {
                    opportunities::count(conn, &filter)?
                } else {
                    0
                };
                Ok((rows, count))
            })
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
