//! The entity reads behind the API's lookups and lists, with who may see what applied here
//! (the GraphQL layer only translates): one row by id or externalId, a page of a list, and
//! the batched reads the request's loaders make.

use std::collections::HashMap;
use std::hash::Hash;

use chrono::NaiveDate;

use super::{AppError, AppResult, Ctx};
use crate::auth::Read;
use crate::db::Db;
use crate::repo::{audit, campaigns, leads, opportunities, scoring, users};

pub use crate::repo::audit::AuditRow;
pub use crate::repo::campaigns::{CampaignRow, CostRow};
pub use crate::repo::leads::{LeadRow, TouchpointRow, TransitionRow};
pub use crate::repo::models::VersionRow as ModelVersionRow;
pub use crate::repo::opportunities::{OpportunityRow, RevenueRow};
pub use crate::repo::scoring::RuleRow;
pub use crate::repo::users::UserRow;

/// Which row a lookup asks for.
pub enum Lookup {
    Id(i64),
    External(String),
}

/// A page of rows (one more than asked, so the caller can tell whether a next page exists)
/// and, when asked, the total count.
pub struct Page<T> {
    pub rows: Vec<T>,
    pub total: i64,
}

pub async fn campaign(ctx: &Ctx, key: Lookup) -> AppResult<Option<CampaignRow>> {
    ctx.require_read(Read::Campaigns, "campaigns")?;
    let row = ctx
        .db
        .run(move |conn| -> AppResult<_> {
            Ok(match key {
                Lookup::Id(id) => campaigns::by_id(conn, id)?,
                Lookup::External(ext) => campaigns::by_external_id(conn, &ext)?,
            })
        })
        .await?;
    super::campaigns::visible_or_forbidden(ctx, row)
}

pub async fn lead(ctx: &Ctx, key: Lookup) -> AppResult<Option<LeadRow>> {
    ctx.require_read(Read::Leads, "leads")?;
    ctx.db
        .run(move |conn| -> AppResult<_> {
            Ok(match key {
                Lookup::Id(id) => leads::by_id(conn, id)?,
                Lookup::External(ext) => leads::by_external_id(conn, &ext)?,
            })
        })
        .await
}

pub async fn opportunity(ctx: &Ctx, key: Lookup) -> AppResult<Option<OpportunityRow>> {
    ctx.require_read(Read::Opportunities, "opportunities")?;
    let row = ctx
        .db
        .run(move |conn| -> AppResult<_> {
            Ok(match key {
                Lookup::Id(id) => opportunities::by_id(conn, id)?,
                Lookup::External(ext) => opportunities::by_external_id(conn, &ext)?,
            })
        })
        .await?;
    match row {
        Some(o) if !super::opportunities::can_see(ctx, o.owner_id) => Err(AppError::Forbidden(
            "a SALES_REP sees only their own opportunities".into(),
        )),
        other => Ok(other),
    }
}

/// A revenue event by id, when the caller may see its opportunity.
pub async fn revenue_event(ctx: &Ctx, id: i64) -> AppResult<Option<RevenueRow>> {
    ctx.require_read(Read::Opportunities, "revenue")?;
    let found = ctx
        .db
        .run(move |conn| -> AppResult<_> {
            let Some(rev) = opportunities::revenue_by_id(conn, id)? else {
                return Ok(None);
            };
            let owner = opportunities::by_id(conn, rev.opportunity_id)?.map(|o| o.owner_id);
            Ok(Some((rev, owner)))
        })
        .await?;
    match found {
        None => Ok(None),
        Some((rev, Some(owner))) if super::opportunities::can_see(ctx, owner) => Ok(Some(rev)),
        Some(_) => Err(AppError::Forbidden(
            "a SALES_REP sees only revenue of their own opportunities".into(),
        )),
    }
}

/// Campaigns by externalId after `after`; a MARKETER's list holds their own.
pub async fn campaign_page(
    ctx: &Ctx,
    channel: Option<String>,
    after: Option<String>,
    limit: i64,
    with_total: bool,
) -> AppResult<Page<CampaignRow>> {
    let filter = super::campaigns::visible_filter(ctx, channel)?;
    ctx.db
        .run(move |conn| -> AppResult<_> {
            let rows = campaigns::page(conn, &filter, after.as_deref(), limit + 1)?;
            let total = if with_total {
                campaigns::count(conn, &filter)?
            } else {
                0
            };
            Ok(Page { rows, total })
        })
        .await
}

/// Leads by externalId after `after`, optionally only those at `stage`.
pub async fn lead_page(
    ctx: &Ctx,
    stage: Option<crate::domain::stage::LeadStage>,
    after: Option<String>,
    limit: i64,
    with_total: bool,
) -> AppResult<Page<LeadRow>> {
    ctx.require_read(Read::Leads, "leads")?;
    let stage = stage.map(|s| s.as_str());
    ctx.db
        .run(move |conn| -> AppResult<_> {
            let rows = leads::page(conn, stage, after.as_deref(), limit + 1)?;
            let total = if with_total {
                leads::count(conn, stage)?
            } else {
                0
            };
            Ok(Page { rows, total })
        })
        .await
}

/// Opportunities by externalId after `after`; a SALES_REP's list holds their own.
pub async fn opportunity_page(
    ctx: &Ctx,
    status: Option<String>,
    after: Option<String>,
    limit: i64,
    with_total: bool,
) -> AppResult<Page<OpportunityRow>> {
    let filter = super::opportunities::visible_filter(ctx, status)?;
    ctx.db
        .run(move |conn| -> AppResult<_> {
            let rows = opportunities::page(conn, &filter, after.as_deref(), limit + 1)?;
            let total = if with_total {
                opportunities::count(conn, &filter)?
            } else {
                0
            };
            Ok(Page { rows, total })
        })
        .await
}

/// The ids of the leads touched by a campaign, by externalId after `after`.
pub async fn campaign_lead_page(
    ctx: &Ctx,
    campaign_id: i64,
    after: Option<String>,
    limit: i64,
    with_total: bool,
) -> AppResult<Page<i64>> {
    ctx.db
        .run(move |conn| -> AppResult<_> {
            let rows = campaigns::lead_page(conn, campaign_id, after.as_deref(), limit + 1)?;
            let total = if with_total {
                campaigns::lead_count(conn, campaign_id)?
            } else {
                0
            };
            Ok(Page { rows, total })
        })
        .await
}

/// The audit log, newest first, before the entry `before` (ADMIN and FINANCE).
pub async fn audit_page(ctx: &Ctx, before: Option<i64>, limit: i64) -> AppResult<Page<AuditRow>> {
    ctx.require_read(Read::AuditLog, "the audit log")?;
    ctx.db
        .run(move |conn| -> AppResult<_> {
            Ok(Page {
                rows: audit::page(conn, before, limit + 1)?,
                total: audit::count(conn)?,
            })
        })
        .await
}

fn group<K: Eq + Hash, V>(rows: Vec<V>, key: impl Fn(&V) -> K) -> HashMap<K, Vec<V>> {
    let mut out: HashMap<K, Vec<V>> = HashMap::new();
    for row in rows {
        out.entry(key(&row)).or_default().push(row);
    }
    out
}

/// Batched reads by key, one statement per batch, for the request's loaders. They return
/// rows as stored; what a caller may see of them is decided where each is used.
pub mod batch {
    use super::*;

    pub async fn users(db: &Db, keys: Vec<i64>) -> AppResult<HashMap<i64, UserRow>> {
        db.run(move |conn| Ok(users::by_ids(conn, &keys)?)).await
    }

    pub async fn campaigns(db: &Db, keys: Vec<i64>) -> AppResult<HashMap<i64, CampaignRow>> {
        db.run(move |conn| Ok(campaigns::by_ids(conn, &keys)?))
            .await
    }

    pub async fn leads(db: &Db, keys: Vec<i64>) -> AppResult<HashMap<i64, LeadRow>> {
        db.run(move |conn| Ok(leads::by_ids(conn, &keys)?)).await
    }

    pub async fn opportunities(db: &Db, keys: Vec<i64>) -> AppResult<HashMap<i64, OpportunityRow>> {
        db.run(move |conn| Ok(opportunities::by_ids(conn, &keys)?))
            .await
    }

    pub async fn touchpoints(db: &Db, keys: Vec<i64>) -> AppResult<HashMap<i64, TouchpointRow>> {
        db.run(move |conn| Ok(leads::touchpoints_by_ids(conn, &keys)?))
            .await
    }

    /// A lead's touchpoints in time order, then externalId.
    pub async fn touchpoints_by_lead(
        db: &Db,
        keys: Vec<i64>,
    ) -> AppResult<HashMap<i64, Vec<TouchpointRow>>> {
        db.run(move |conn| Ok(group(leads::touchpoints_of(conn, &keys)?, |t| t.lead_id)))
            .await
    }

    /// A lead's history rows in the order the moves were made.
    pub async fn transitions_by_lead(
        db: &Db,
        keys: Vec<i64>,
    ) -> AppResult<HashMap<i64, Vec<TransitionRow>>> {
        db.run(move |conn| Ok(group(leads::transitions_of(conn, &keys)?, |t| t.lead_id)))
            .await
    }

    pub async fn attributes_by_lead(
        db: &Db,
        keys: Vec<i64>,
    ) -> AppResult<HashMap<i64, Vec<(String, String)>>> {
        db.run(move |conn| {
            let mut out: HashMap<i64, Vec<(String, String)>> = HashMap::new();
            for a in leads::attributes_of(conn, &keys)? {
                out.entry(a.lead_id).or_default().push((a.key, a.value));
            }
            Ok(out)
        })
        .await
    }

    /// Contact lead ids of an opportunity, primary first.
    pub async fn contacts(db: &Db, keys: Vec<i64>) -> AppResult<HashMap<i64, Vec<i64>>> {
        db.run(move |conn| {
            let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
            for (opp, lead) in opportunities::contacts_of(conn, &keys)? {
                out.entry(opp).or_default().push(lead);
            }
            Ok(out)
        })
        .await
    }

    pub async fn revenue(db: &Db, keys: Vec<i64>) -> AppResult<HashMap<i64, Vec<RevenueRow>>> {
        db.run(move |conn| {
            Ok(group(opportunities::revenue_of(conn, &keys)?, |r| {
                r.opportunity_id
            }))
        })
        .await
    }

    /// Owners of the opportunities a lead is a contact of (a sales rep's view of personal
    /// data).
    pub async fn opportunity_owners(db: &Db, keys: Vec<i64>) -> AppResult<HashMap<i64, Vec<i64>>> {
        db.run(move |conn| {
            let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
            for (lead, owner) in opportunities::owners_by_contact(conn, &keys)? {
                out.entry(lead).or_default().push(owner);
            }
            Ok(out)
        })
        .await
    }

    /// Every scoring rule, under the one key 0.
    pub async fn rules(db: &Db) -> AppResult<HashMap<i64, Vec<RuleRow>>> {
        db.run(move |conn| Ok(HashMap::from([(0, scoring::all(conn)?)])))
            .await
    }

    /// A campaign's cost, optionally only inside a period of days.
    pub type CostKey = (i64, Option<(NaiveDate, NaiveDate)>);

    /// Each campaign's summed cost per asked range.
    pub async fn costs(db: &Db, keys: Vec<CostKey>) -> AppResult<HashMap<CostKey, i64>> {
        db.run(move |conn| {
            let mut out: HashMap<CostKey, i64> = HashMap::new();
            let mut by_range: HashMap<Option<(NaiveDate, NaiveDate)>, Vec<i64>> = HashMap::new();
            for (id, range) in &keys {
                by_range.entry(*range).or_default().push(*id);
            }
            for (range, ids) in by_range {
                for id in &ids {
                    out.insert((*id, range), 0);
                }
                for cost in campaigns::costs_of(conn, &ids, range)? {
                    let slot = out.entry((cost.campaign_id, range)).or_insert(0);
                    *slot = slot
                        .checked_add(cost.amount_cents)
                        .ok_or_else(|| AppError::overflow("the campaign's cost"))?;
                }
            }
            Ok(out)
        })
        .await
    }
}
