//! Deals: created and closed by the CRM sync, moving their primary contact along the funnel;
//! revenue booked on won deals.

use chrono::{DateTime, NaiveDate, Utc};

use super::moves::{apply_steps, stage_of};
use super::periods::check_open;
use super::{
    check_external_id, check_non_empty, naive, not_found, AppError, AppResult, Ctx, Outcome,
};
use crate::auth::{Read, Scope, Write};
use crate::db::AnyConnection;
use crate::domain::currency::{Priced, Rates};
use crate::domain::deal::DealStatus;
use crate::domain::stage::{self, LeadStage};
use crate::repo::opportunities::{
    self as repo, OpportunityFilter, OpportunityRow, OpportunityValues, RevenueRow, RevenueValues,
};
use crate::repo::{leads, users};

#[derive(Debug, Clone)]
pub struct OpportunityInput {
    pub external_id: String,
    pub name: String,
    pub primary_contact_external_id: String,
    pub contact_external_ids: Vec<String>,
    pub owner_external_id: Option<String>,
    pub amount: (String, String),
    pub created_at: DateTime<Utc>,
    /// The account it is for; None: its primary contact's (SPEC §8).
    pub account_external_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CloseInput {
    pub external_id: String,
    pub won: bool,
    pub closed_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct RevenueInput {
    pub external_id: String,
    pub opportunity_external_id: String,
    pub amount: (String, String),
    pub booked_on: NaiveDate,
}

/// Whether the caller may see an opportunity owned by `owner_id`.
pub fn can_see(ctx: &Ctx, owner_id: Option<i64>) -> bool {
    match ctx.read_scope(Read::Opportunities) {
        Scope::All => true,
        Scope::Own(_) => ctx.owns(owner_id),
        Scope::None => false,
    }
}

/// A deal's status, as a typed state (the row holds its text).
pub fn status_of(opp: &OpportunityRow) -> AppResult<DealStatus> {
    opp.status.parse().map_err(AppError::Internal)
}

pub fn visible_filter(ctx: &Ctx, status: Option<String>) -> AppResult<OpportunityFilter> {
    let scope = ctx.require_read(Read::Opportunities, "opportunities")?;
    Ok(OpportunityFilter {
        status,
        owner_id: match scope {
            Scope::Own(_) => Some(ctx.user_id.unwrap_or(-1)),
            _ => None,
        },
    })
}

pub async fn upsert(ctx: &Ctx, input: OpportunityInput) -> AppResult<OpportunityRow> {
    ctx.write(input, upsert_in).await
}

/// The checks of an opportunity that need no database but the rates of its currency; returns
/// its amount, valued on the UTC day it was created (SPEC §9).
pub fn check_opportunity(ctx: &Ctx, input: &OpportunityInput, rates: &Rates) -> AppResult<Priced> {
    ctx.require_write(Write::Ingest, "upsert opportunities")?;
    check_external_id("opportunity", &input.external_id)?;
    check_non_empty("name", &input.name)?;
    if let Some(ext) = &input.account_external_id {
        check_external_id("account", ext)?;
    }
    let (amount, currency) = &input.amount;
    let priced = rates.price(
        amount,
        currency,
        &ctx.currency,
        input.created_at.date_naive(),
    )?;
    if super::currency::is_negative(&priced) {
        return Err(AppError::BadInput(
            "an opportunity amount must not be negative".into(),
        ));
    }
    Ok(priced)
}

/// The use case inside a caller's transaction (a mutation's own, or a batch of `/import`).
pub fn upsert_in(
    ctx: &Ctx,
    conn: &mut AnyConnection,
    input: &OpportunityInput,
) -> AppResult<OpportunityRow> {
    let rates = super::currency::rates_for(ctx, conn, &input.amount.1)?;
    let priced = check_opportunity(ctx, input, &rates)?;
    let (currency, original_amount) = super::currency::columns(&priced);
    let primary = leads::by_external_id(conn, &input.primary_contact_external_id)?
        .ok_or_else(|| not_found("lead", &input.primary_contact_external_id))?;
    let mut contact_ids = vec![primary.id];
    for ext in &input.contact_external_ids {
        let lead = leads::by_external_id(conn, ext)?.ok_or_else(|| not_found("lead", ext))?;
        if !contact_ids.contains(&lead.id) {
            contact_ids.push(lead.id);
        }
    }
    let owner_id = match &input.owner_external_id {
        Some(ext) => Some(
            users::by_external_id(conn, ext)?
                .ok_or_else(|| not_found("user", ext))?
                .id,
        ),
        None => None,
    };
    let account_id = match &input.account_external_id {
        Some(ext) => Some(
            crate::repo::accounts::by_external_id(conn, ext)?
                .ok_or_else(|| not_found("account", ext))?
                .id,
        ),
        None => None,
    };
    let values = OpportunityValues {
        external_id: &input.external_id,
        name: &input.name,
        primary_contact_id: primary.id,
        owner_id,
        amount_cents: priced.value.0,
        created_at: naive(input.created_at),
        account_id,
        currency,
        original_amount,
    };
    let existing = repo::by_external_id(conn, &input.external_id)?;
    let outcome = match &existing {
        None => {
            let id = repo::insert(conn, &values)?;
            repo::replace_contacts(conn, id, &contact_ids)?;
            Outcome::Created
        }
        Some(row) => {
            let current_contacts: Vec<i64> = repo::contacts_of(conn, &[row.id])?
                .into_iter()
                .map(|(_, l)| l)
                .collect();
            let same = row.name == input.name
                && row.primary_contact_id == primary.id
                && row.owner_id == owner_id
                && row.amount_cents == priced.value.0
                && row.currency.as_deref() == currency
                && row.original_amount == original_amount
                && row.created_at == values.created_at
                && row.account_id == account_id
                && current_contacts == contact_ids;
            if same {
                Outcome::Unchanged
            } else {
                repo::update(conn, row.id, &values)?;
                repo::replace_contacts(conn, row.id, &contact_ids)?;
                Outcome::Updated
            }
        }
    };
    let primary_changed = existing
        .as_ref()
        .is_none_or(|row| row.primary_contact_id != primary.id);
    if primary_changed {
        if let Some(steps) = opening_move(stage_of(&primary)?) {
            let reason = format!("opportunity {} created", input.external_id);
            apply_steps(
                conn,
                primary.id,
                &steps,
                input.created_at,
                &ctx.caller.sub,
                Some(&reason),
                None,
            )?;
        }
        if primary.owner_id.is_none() {
            if let Some(owner) = owner_id {
                leads::set_owner(conn, primary.id, owner)?;
            }
        }
    }
    ctx.audit(
        conn,
        "upsertOpportunity",
        Some(&input.external_id),
        outcome.as_str(),
    )?;
    repo::by_external_id(conn, &input.external_id)?
        .ok_or_else(|| AppError::Internal("opportunity vanished after upsert".into()))
}

pub async fn close(ctx: &Ctx, input: CloseInput) -> AppResult<OpportunityRow> {
    ctx.write(input, close_in).await
}

/// The use case inside a caller's transaction (a mutation's own, or a batch of `/import`).
pub fn close_in(
    ctx: &Ctx,
    conn: &mut AnyConnection,
    input: &CloseInput,
) -> AppResult<OpportunityRow> {
    ctx.require_write(Write::Ingest, "close opportunities")?;
    let opp = repo::by_external_id(conn, &input.external_id)?
        .ok_or_else(|| not_found("opportunity", &input.external_id))?;
    let Some(status) = decide_close(&opp, input)? else {
        ctx.audit(
            conn,
            "closeOpportunity",
            Some(&input.external_id),
            "unchanged (replay)",
        )?;
        return Ok(opp);
    };
    let at = naive(input.closed_at);
    repo::close(conn, opp.id, status.as_str(), at)?;
    move_primary_on_close(conn, ctx, &opp, input.won, input.closed_at)?;
    ctx.audit(
        conn,
        "closeOpportunity",
        Some(&input.external_id),
        status.as_str(),
    )?;
    repo::by_id(conn, opp.id)?.ok_or_else(|| AppError::Internal("opportunity vanished".into()))
}

/// Whether closing `opp` as `input` says is a replay (None) or closes it with a status;
/// refused when it is closed otherwise, or before it was created.
pub fn decide_close(opp: &OpportunityRow, input: &CloseInput) -> AppResult<Option<DealStatus>> {
    let status = DealStatus::closed(input.won);
    let at = naive(input.closed_at);
    let current = status_of(opp)?;
    if current != DealStatus::Open {
        if current == status && opp.closed_at == Some(at) {
            return Ok(None);
        }
        return Err(AppError::Conflict(format!(
            "opportunity \"{}\" is already closed {} at {}",
            opp.external_id,
            opp.status,
            opp.closed_at
                .map(|t| t.and_utc().to_rfc3339())
                .unwrap_or_default()
        )));
    }
    if at < opp.created_at {
        return Err(AppError::BadInput(format!(
            "closedAt {} is before the opportunity was created ({})",
            input.closed_at.to_rfc3339(),
            opp.created_at.and_utc().to_rfc3339()
        )));
    }
    Ok(Some(status))
}

/// The move of a deal's primary contact when the deal is created (None: it is at or past
/// OPPORTUNITY already).
pub fn opening_move(current: LeadStage) -> Option<Vec<stage::Step>> {
    (!matches!(
        current,
        LeadStage::Opportunity | LeadStage::Won | LeadStage::Lost
    ))
    .then(|| stage::plan_forced(current, LeadStage::Opportunity))
}

/// The move of a deal's primary contact when the deal closes, and where it goes (None: a
/// contact already won on another deal stays won; a lost one stays lost unless this wins).
pub fn closing_move(current: LeadStage, won: bool) -> Option<(Vec<stage::Step>, LeadStage)> {
    let target = if won { LeadStage::Won } else { LeadStage::Lost };
    let keep = current == LeadStage::Won || (current == LeadStage::Lost && !won);
    (!keep).then(|| (stage::plan_forced(current, target), target))
}

fn move_primary_on_close(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    opp: &OpportunityRow,
    won: bool,
    at: DateTime<Utc>,
) -> AppResult<()> {
    let lead = leads::by_id(conn, opp.primary_contact_id)?
        .ok_or_else(|| AppError::Internal("primary contact vanished".into()))?;
    if let Some((steps, target)) = closing_move(stage_of(&lead)?, won) {
        let reason = format!("opportunity {} closed {}", opp.external_id, target);
        apply_steps(
            conn,
            lead.id,
            &steps,
            at,
            &ctx.caller.sub,
            Some(&reason),
            None,
        )?;
    }
    Ok(())
}

pub async fn record_revenue(ctx: &Ctx, input: RevenueInput) -> AppResult<RevenueRow> {
    ctx.write(input, record_revenue_in).await
}

/// The checks of a revenue event that need no database but the rates of its currency; returns
/// its amount, valued on its booking day (SPEC §9; a refund may be in another currency than
/// its deal).
pub fn check_revenue(ctx: &Ctx, input: &RevenueInput, rates: &Rates) -> AppResult<Priced> {
    ctx.require_write(Write::Ingest, "record revenue")?;
    check_external_id("revenue event", &input.external_id)?;
    let (amount, currency) = &input.amount;
    Ok(rates.price(amount, currency, &ctx.currency, input.booked_on)?)
}

/// Revenue is booked on won deals only.
pub fn check_won(opp: &OpportunityRow) -> AppResult<()> {
    if status_of(opp)? != DealStatus::Won {
        return Err(AppError::BadInput(format!(
            "revenue can only be booked on a WON opportunity; \"{}\" is {}",
            opp.external_id, opp.status
        )));
    }
    Ok(())
}

/// The use case inside a caller's transaction (a mutation's own, or a batch of `/import`).
pub fn record_revenue_in(
    ctx: &Ctx,
    conn: &mut AnyConnection,
    input: &RevenueInput,
) -> AppResult<RevenueRow> {
    let rates = super::currency::rates_for(ctx, conn, &input.amount.1)?;
    let priced = check_revenue(ctx, input, &rates)?;
    let (currency, original_amount) = super::currency::columns(&priced);
    let opp = repo::by_external_id(conn, &input.opportunity_external_id)?
        .ok_or_else(|| not_found("opportunity", &input.opportunity_external_id))?;
    check_won(&opp)?;
    let values = RevenueValues {
        external_id: &input.external_id,
        opportunity_id: opp.id,
        amount_cents: priced.value.0,
        booked_on: input.booked_on,
        currency,
        original_amount,
    };
    let outcome = match repo::revenue_by_external_id(conn, &input.external_id)? {
        None => {
            check_open(conn, input.booked_on, "revenue")?;
            repo::insert_revenue(conn, &values)?;
            Outcome::Created
        }
        Some(row) => {
            if row.opportunity_id == opp.id
                && row.amount_cents == priced.value.0
                && row.currency.as_deref() == currency
                && row.original_amount == original_amount
                && row.booked_on == input.booked_on
            {
                Outcome::Unchanged
            } else {
                // A replay is fine; moving money in or out of a closed period is not.
                check_open(conn, row.booked_on, "the revenue event being changed")?;
                check_open(conn, input.booked_on, "revenue")?;
                repo::update_revenue(conn, row.id, &values)?;
                Outcome::Updated
            }
        }
    };
    ctx.audit(
        conn,
        "recordRevenue",
        Some(&input.external_id),
        outcome.as_str(),
    )?;
    repo::revenue_by_external_id(conn, &input.external_id)?
        .ok_or_else(|| AppError::Internal("revenue event vanished after upsert".into()))
}
