//! Campaigns and their costs: who may write them, who may see them.

use crate::db::AnyConnection;
use chrono::NaiveDate;

use super::periods::check_open;
use super::{check_external_id, check_non_empty, not_found, AppError, AppResult, Ctx, Outcome};
use crate::auth::{Read, Scope, Write};
use crate::domain::money::Money;
use crate::repo::campaigns::{
    self as repo, CampaignFilter, CampaignRow, CampaignValues, CostValues,
};
use crate::repo::users;

#[derive(Debug, Clone)]
pub struct CampaignInput {
    pub external_id: String,
    pub name: String,
    pub channel: String,
    pub owner_external_id: Option<String>,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub budget: Option<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct CostInput {
    pub external_id: String,
    pub campaign_external_id: String,
    pub amount: (String, String),
    pub incurred_on: NaiveDate,
}

/// Whether the caller may see a campaign owned by `owner_id`.
pub fn can_see(ctx: &Ctx, owner_id: Option<i64>) -> bool {
    match ctx.read_scope(Read::Campaigns) {
        Scope::All => true,
        Scope::Own(_) => ctx.owns(owner_id),
        Scope::None => false,
    }
}

/// A looked-up campaign as the caller may have it. A caller who sees only their own
/// campaigns gets the same FORBIDDEN for one that is not theirs and for one that does not
/// exist, so lookups cannot tell them which externalIds exist.
pub fn visible_or_forbidden(ctx: &Ctx, row: Option<CampaignRow>) -> AppResult<Option<CampaignRow>> {
    let scope = ctx.require_read(Read::Campaigns, "campaigns")?;
    match row {
        Some(c) if can_see(ctx, c.owner_id) => Ok(Some(c)),
        None if scope == Scope::All => Ok(None),
        _ => Err(not_yours()),
    }
}

/// Whether a caller with write `scope` may change a campaign (or what hangs off it) owned by
/// `owner_id`.
fn may_write(ctx: &Ctx, scope: Scope, owner_id: Option<i64>) -> bool {
    scope == Scope::All || ctx.owns(owner_id)
}

/// The one refusal for a campaign a scoped caller may not reach (or that is not there).
pub fn not_yours() -> AppError {
    AppError::Forbidden("no campaign of yours has this id".into())
}

/// The list filter for the caller: a MARKETER's lists hold their own campaigns.
pub fn visible_filter(ctx: &Ctx, channel: Option<String>) -> AppResult<CampaignFilter> {
    let scope = ctx.require_read(Read::Campaigns, "campaigns")?;
    Ok(CampaignFilter {
        channel,
        owner_id: match scope {
            Scope::Own(_) => Some(ctx.user_id.unwrap_or(-1)),
            _ => None,
        },
    })
}

pub async fn upsert(ctx: &Ctx, input: CampaignInput) -> AppResult<CampaignRow> {
    ctx.write(input, upsert_in).await
}

/// The use case inside a caller's transaction (a mutation's own, or a batch of `/import`).
pub fn upsert_in(
    ctx: &Ctx,
    conn: &mut AnyConnection,
    input: &CampaignInput,
) -> AppResult<CampaignRow> {
    let scope = ctx.require_write(Write::Campaigns, "write campaigns")?;
    check_external_id("campaign", &input.external_id)?;
    check_non_empty("name", &input.name)?;
    check_non_empty("channel", &input.channel)?;
    if let (Some(s), Some(e)) = (input.starts_on, input.ends_on) {
        if e < s {
            return Err(AppError::BadInput(format!(
                "endsOn {e} is before startsOn {s}"
            )));
        }
    }
    let budget = match &input.budget {
        Some((amount, currency)) => {
            let m = super::currency::reporting_only(ctx, "a budget", amount, currency)?;
            if m < Money::ZERO {
                return Err(AppError::BadInput("budget must not be negative".into()));
            }
            Some(m.0)
        }
        None => None,
    };
    // A marketer writes only campaigns they own, and owns what they create.
    let owner_external_id = match (scope, &input.owner_external_id) {
        (Scope::Own(_), Some(owner)) if owner != &ctx.caller.sub => {
            return Err(AppError::Forbidden(
                "a MARKETER may only write campaigns they own".into(),
            ))
        }
        (Scope::Own(_), _) => Some(ctx.caller.sub.clone()),
        (_, owner) => owner.clone(),
    };
    let owner_id = match &owner_external_id {
        Some(ext) => Some(
            users::by_external_id(conn, ext)?
                .ok_or_else(|| not_found("user", ext))?
                .id,
        ),
        None => None,
    };
    let values = CampaignValues {
        external_id: &input.external_id,
        name: &input.name,
        channel: &input.channel,
        owner_id,
        starts_on: input.starts_on,
        ends_on: input.ends_on,
        budget_cents: budget,
    };
    let existing = repo::by_external_id(conn, &input.external_id)?;
    let outcome = match existing {
        None => {
            repo::insert(conn, &values)?;
            Outcome::Created
        }
        Some(row) => {
            if !may_write(ctx, scope, row.owner_id) {
                return Err(AppError::Forbidden(
                    "a MARKETER may only write campaigns they own".into(),
                ));
            }
            let same = row.name == input.name
                && row.channel == input.channel
                && row.owner_id == owner_id
                && row.starts_on == input.starts_on
                && row.ends_on == input.ends_on
                && row.budget_cents == budget;
            if same {
                Outcome::Unchanged
            } else {
                repo::update(conn, row.id, &values)?;
                Outcome::Updated
            }
        }
    };
    ctx.audit(
        conn,
        "upsertCampaign",
        Some(&input.external_id),
        outcome.as_str(),
    )?;
    repo::by_external_id(conn, &input.external_id)?
        .ok_or_else(|| AppError::Internal("campaign vanished after upsert".into()))
}

pub async fn record_cost(ctx: &Ctx, input: CostInput) -> AppResult<CampaignRow> {
    ctx.write(input, record_cost_in).await
}

/// The use case inside a caller's transaction (a mutation's own, or a batch of `/import`).
pub fn record_cost_in(
    ctx: &Ctx,
    conn: &mut AnyConnection,
    input: &CostInput,
) -> AppResult<CampaignRow> {
    let scope = ctx.require_write(Write::Campaigns, "record campaign costs")?;
    check_external_id("campaign cost", &input.external_id)?;
    // A scoped caller is told the same for a campaign that is not theirs and one that does
    // not exist.
    let campaign = match repo::by_external_id(conn, &input.campaign_external_id)? {
        Some(c) if may_write(ctx, scope, c.owner_id) => c,
        Some(_) => return Err(not_yours()),
        None if scope == Scope::All => {
            return Err(not_found("campaign", &input.campaign_external_id))
        }
        None => return Err(not_yours()),
    };
    let priced = super::currency::price_in(ctx, conn, &input.amount, input.incurred_on)?;
    let (currency, original_amount) = super::currency::columns(&priced);
    if super::currency::is_negative(&priced) {
        return Err(AppError::BadInput(
            "a cost must not be negative; correct a cost by upserting it again with its externalId"
                .into(),
        ));
    }
    let values = CostValues {
        external_id: &input.external_id,
        campaign_id: campaign.id,
        amount_cents: priced.value.0,
        incurred_on: input.incurred_on,
        currency,
        original_amount,
    };
    let outcome = match repo::cost_by_external_id(conn, &input.external_id)? {
        None => {
            check_open(conn, input.incurred_on, "a cost")?;
            repo::insert_cost(conn, &values)?;
            Outcome::Created
        }
        Some(row) => {
            // The cost as it is: a MARKETER may not move or rewrite a cost recorded on a
            // campaign they do not own, whichever campaign it is sent to.
            if scope != Scope::All && row.campaign_id != campaign.id {
                let current = repo::by_id(conn, row.campaign_id)?.ok_or_else(|| {
                    AppError::Internal(format!("cost {} has no campaign", row.id))
                })?;
                if !may_write(ctx, scope, current.owner_id) {
                    return Err(not_yours());
                }
            }
            if row.campaign_id == campaign.id
                && row.amount_cents == priced.value.0
                && row.currency.as_deref() == currency
                && row.original_amount == original_amount
                && row.incurred_on == input.incurred_on
            {
                Outcome::Unchanged
            } else {
                check_open(conn, row.incurred_on, "the cost being changed")?;
                check_open(conn, input.incurred_on, "a cost")?;
                repo::update_cost(conn, row.id, &values)?;
                Outcome::Updated
            }
        }
    };
    ctx.audit(
        conn,
        "recordCampaignCost",
        Some(&input.external_id),
        outcome.as_str(),
    )?;
    Ok(campaign)
}

/// The cost rows of one campaign the caller already sees, by day then externalId.
pub async fn cost_entries(
    ctx: &Ctx,
    campaign_id: i64,
    range: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
) -> AppResult<Vec<repo::CostRow>> {
    let mut rows = ctx
        .db
        .run(move |conn| -> AppResult<Vec<repo::CostRow>> {
            Ok(repo::costs_of(conn, &[campaign_id], range)?)
        })
        .await?;
    rows.sort_by(|a, b| (a.incurred_on, &a.external_id).cmp(&(b.incurred_on, &b.external_id)));
    Ok(rows)
}
