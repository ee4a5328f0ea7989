//! Leads, touchpoints and the lifecycle moves of SPEC §3.

use chrono::{DateTime, Utc};

use super::moves::{apply_steps, stage_of};
use super::{check_external_id, naive, not_found, AppError, AppResult, Ctx, Outcome};
use crate::auth::{policy, Owned, Read, Scope, TransitionRights, Write};
use crate::db::AnyConnection;
use crate::domain::stage::{self, LeadStage};
use crate::repo::leads::{
    self as repo, LeadRow, LeadValues, NewTransition, TouchpointRow, TouchpointValues,
};
use crate::repo::{accounts, campaigns, opportunities};

#[derive(Debug, Clone)]
pub struct LeadInput {
    pub external_id: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub attributes: Option<Vec<(String, String)>>,
    pub created_at: DateTime<Utc>,
    /// The lead's account; None: the account its email's domain matches, if any.
    pub account_external_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TouchpointInput {
    pub external_id: String,
    pub lead_external_id: String,
    pub campaign_external_id: String,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct TransitionInput {
    pub lead_external_id: String,
    pub to: LeadStage,
    pub occurred_at: DateTime<Utc>,
    pub reason: Option<String>,
    pub external_id: Option<String>,
}

pub async fn upsert(ctx: &Ctx, input: LeadInput) -> AppResult<LeadRow> {
    ctx.write(input, upsert_in).await
}

/// The checks of a lead upsert that need no database: the caller's right, the input's
/// shape. Returns the attributes sorted by key (None: left as they are).
pub fn check_lead(ctx: &Ctx, input: &LeadInput) -> AppResult<Option<Vec<(String, String)>>> {
    ctx.require_write(Write::Ingest, "upsert leads")?;
    check_external_id("lead", &input.external_id)?;
    if let Some(email) = &input.email {
        if !email.contains('@') {
            return Err(AppError::BadInput(format!(
                "\"{email}\" is not an email address"
            )));
        }
    }
    if let Some(ext) = &input.account_external_id {
        check_external_id("account", ext)?;
    }
    input
        .attributes
        .as_deref()
        .map(super::sorted_attributes)
        .transpose()
}

/// Which account a lead belongs to (SPEC §8) and the domain it is matched by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLink {
    pub account_id: Option<i64>,
    /// Whether the input named the account (an account upsert never re-matches it then).
    pub explicit: bool,
    /// The email's host, lower-case.
    pub email_domain: Option<String>,
}

/// A lead's account: the one its input names (NOT_FOUND when there is none by that
/// externalId), else the account whose domain is its email's host (never a free-mail one).
/// `by_external_id` and `by_domain` find an account's id; the mutation asks the database, the
/// import its batch's lookups.
pub fn account_link(
    input: &LeadInput,
    by_external_id: impl FnOnce(&str) -> AppResult<Option<i64>>,
    by_domain: impl FnOnce(&str) -> AppResult<Option<i64>>,
) -> AppResult<AccountLink> {
    let email_domain = input
        .email
        .as_deref()
        .and_then(crate::domain::account::email_domain);
    let (account_id, explicit) = match &input.account_external_id {
        Some(ext) => (
            Some(by_external_id(ext)?.ok_or_else(|| not_found("account", ext))?),
            true,
        ),
        None => match crate::domain::account::matching_domain(input.email.as_deref()) {
            Some(d) => (by_domain(&d)?, false),
            None => (None, false),
        },
    };
    Ok(AccountLink {
        account_id,
        explicit,
        email_domain,
    })
}

/// The use case inside a caller's transaction (a mutation's own, or a batch of `/import`).
pub fn upsert_in(ctx: &Ctx, conn: &mut AnyConnection, input: &LeadInput) -> AppResult<LeadRow> {
    let attributes = check_lead(ctx, input)?;
    // The two lookups `account_link` may ask for, made first (each borrows the connection).
    let named = match &input.account_external_id {
        Some(ext) => accounts::by_external_id(conn, ext)?.map(|a| a.id),
        None => None,
    };
    let matched = match (
        &input.account_external_id,
        crate::domain::account::matching_domain(input.email.as_deref()),
    ) {
        (None, Some(d)) => accounts::by_domain(conn, &d)?.map(|a| a.id),
        _ => None,
    };
    let link = account_link(input, |_| Ok(named), |_| Ok(matched))?;
    let values = LeadValues {
        external_id: &input.external_id,
        email: input.email.as_deref(),
        full_name: input.full_name.as_deref(),
        company: input.company.as_deref(),
        title: input.title.as_deref(),
        created_at: naive(input.created_at),
        account_id: link.account_id,
        account_explicit: link.explicit,
        email_domain: link.email_domain.as_deref(),
    };
    let outcome = match repo::by_external_id(conn, &input.external_id)? {
        None => {
            let id = repo::insert(conn, &values, LeadStage::Inquiry.as_str())?;
            repo::insert_transition(
                conn,
                &NewTransition {
                    lead_id: id,
                    external_id: None,
                    from_stage: None,
                    to_stage: LeadStage::Inquiry.as_str(),
                    occurred_at: values.created_at,
                    actor: &ctx.caller.sub,
                    reason: Some("lead created"),
                },
            )?;
            if let Some(attrs) = &attributes {
                repo::replace_attributes(conn, id, attrs)?;
            }
            Outcome::Created
        }
        Some(row) => {
            let mut changed = false;
            let same_fields = row.email.as_deref() == values.email
                && row.full_name.as_deref() == values.full_name
                && row.company.as_deref() == values.company
                && row.title.as_deref() == values.title
                && row.created_at == values.created_at
                && row.account_id == values.account_id
                && row.account_explicit == values.account_explicit
                && row.email_domain.as_deref() == values.email_domain;
            if !same_fields {
                repo::update(conn, row.id, &values)?;
                if row.created_at != values.created_at {
                    repo::move_creation_row(conn, row.id, values.created_at)?;
                }
                changed = true;
            }
            if let Some(attrs) = &attributes {
                let current: Vec<(String, String)> = repo::attributes_of(conn, &[row.id])?
                    .into_iter()
                    .map(|a| (a.key, a.value))
                    .collect();
                if &current != attrs {
                    repo::replace_attributes(conn, row.id, attrs)?;
                    changed = true;
                }
            }
            if changed {
                Outcome::Updated
            } else {
                Outcome::Unchanged
            }
        }
    };
    if outcome != Outcome::Unchanged {
        let id = repo::by_external_id(conn, &input.external_id)?
            .ok_or_else(|| AppError::Internal("lead vanished after upsert".into()))?
            .id;
        super::scoring::rescore_lead(conn, id)?;
    }
    ctx.audit(
        conn,
        "upsertLead",
        Some(&input.external_id),
        outcome.as_str(),
    )?;
    repo::by_external_id(conn, &input.external_id)?
        .ok_or_else(|| AppError::Internal("lead vanished after upsert".into()))
}

pub async fn record_touchpoint(ctx: &Ctx, input: TouchpointInput) -> AppResult<TouchpointRow> {
    ctx.write(input, record_touchpoint_in).await
}

/// The checks of a touchpoint that need no database.
pub fn check_touchpoint(ctx: &Ctx, input: &TouchpointInput) -> AppResult<()> {
    ctx.require_write(Write::Ingest, "record touchpoints")?;
    check_external_id("touchpoint", &input.external_id)?;
    super::check_non_empty("kind", &input.kind)?;
    Ok(())
}

/// The use case inside a caller's transaction (a mutation's own, or a batch of `/import`).
pub fn record_touchpoint_in(
    ctx: &Ctx,
    conn: &mut AnyConnection,
    input: &TouchpointInput,
) -> AppResult<TouchpointRow> {
    check_touchpoint(ctx, input)?;
    let lead = repo::by_external_id(conn, &input.lead_external_id)?
        .ok_or_else(|| not_found("lead", &input.lead_external_id))?;
    let campaign = campaigns::by_external_id(conn, &input.campaign_external_id)?
        .ok_or_else(|| not_found("campaign", &input.campaign_external_id))?;
    let values = TouchpointValues {
        external_id: &input.external_id,
        lead_id: lead.id,
        campaign_id: campaign.id,
        kind: &input.kind,
        occurred_at: naive(input.occurred_at),
    };
    let existing = repo::touchpoint_by_external_id(conn, &input.external_id)?;
    let previous_lead = existing.as_ref().map(|t| t.lead_id);
    let outcome = match existing {
        None => {
            repo::insert_touchpoint(conn, &values)?;
            Outcome::Created
        }
        Some(row) => {
            if row.lead_id == lead.id
                && row.campaign_id == campaign.id
                && row.kind == input.kind
                && row.occurred_at == values.occurred_at
            {
                Outcome::Unchanged
            } else {
                repo::update_touchpoint(conn, row.id, &values)?;
                Outcome::Updated
            }
        }
    };
    if outcome != Outcome::Unchanged {
        if let Some(previous) = previous_lead.filter(|p| *p != lead.id) {
            repo::refresh_source(conn, previous)?;
            super::scoring::rescore_lead(conn, previous)?;
        }
        repo::refresh_source(conn, lead.id)?;
        super::scoring::rescore_lead(conn, lead.id)?;
    }
    ctx.audit(
        conn,
        "recordTouchpoint",
        Some(&input.external_id),
        outcome.as_str(),
    )?;
    repo::touchpoint_by_external_id(conn, &input.external_id)?
        .ok_or_else(|| AppError::Internal("touchpoint vanished after upsert".into()))
}

pub async fn transition(ctx: &Ctx, input: TransitionInput) -> AppResult<LeadRow> {
    ctx.write(input, transition_in).await
}

/// The checks of a move that need no database; returns the caller's rights.
pub fn check_transition(ctx: &Ctx, input: &TransitionInput) -> AppResult<TransitionRights> {
    let rights = policy::transitions(ctx.caller.role);
    if rights == TransitionRights::None {
        return Err(AppError::Forbidden(format!(
            "role {} may not move leads",
            ctx.caller.role.as_str()
        )));
    }
    if let Some(ext) = &input.external_id {
        check_external_id("transition", ext)?;
    }
    Ok(rights)
}

/// The use case inside a caller's transaction (a mutation's own, or a batch of `/import`).
pub fn transition_in(
    ctx: &Ctx,
    conn: &mut AnyConnection,
    input: &TransitionInput,
) -> AppResult<LeadRow> {
    let rights = check_transition(ctx, input)?;
    let lead = repo::by_external_id(conn, &input.lead_external_id)?
        .ok_or_else(|| not_found("lead", &input.lead_external_id))?;
    if let Some(ext) = &input.external_id {
        if let Some((lead_id, actor)) = repo::transition_exists(conn, ext)? {
            // A replay by someone other than the mover is answered only when they may make
            // that move on the lead as it is now, and refused exactly as a fresh move would
            // be: nobody else learns that the externalId exists, or writes an audit row.
            if rights != TransitionRights::Any && actor != ctx.caller.sub {
                check_rights(conn, ctx, rights, &lead, stage_of(&lead)?, input.to)?;
            }
            if lead_id != lead.id {
                return Err(AppError::Conflict(format!(
                    "transition externalId \"{ext}\" was already used for another lead"
                )));
            }
            ctx.audit(conn, "transitionLead", Some(ext), "unchanged (replay)")?;
            return Ok(lead);
        }
    }
    let from = stage_of(&lead)?;
    let to = input.to;
    check_rights(conn, ctx, rights, &lead, from, to)?;
    let steps = stage::plan_move(from, to).map_err(|e| AppError::BadInput(e.to_string()))?;
    apply_steps(
        conn,
        lead.id,
        &steps,
        input.occurred_at,
        &ctx.caller.sub,
        input.reason.as_deref(),
        input.external_id.as_deref(),
    )?;
    // A sales rep accepting an unowned lead takes it.
    if rights == TransitionRights::SalesOwn
        && lead.owner_id.is_none()
        && to.implies_reached(LeadStage::Sal)
    {
        if let Some(me) = ctx.user_id {
            repo::set_owner(conn, lead.id, me)?;
        }
    }
    ctx.audit(
        conn,
        "transitionLead",
        input
            .external_id
            .as_deref()
            .or(Some(&input.lead_external_id)),
        &format!("{} {from} -> {to}", input.lead_external_id),
    )?;
    repo::by_id(conn, lead.id)?
        .ok_or_else(|| AppError::Internal("lead vanished after transition".into()))
}

fn check_rights(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    rights: TransitionRights,
    lead: &LeadRow,
    from: LeadStage,
    to: LeadStage,
) -> AppResult<()> {
    may_move(ctx, rights, lead, from, to, || {
        Ok(opportunities::owners_by_contact(conn, &[lead.id])?
            .into_iter()
            .map(|(_, owner)| owner)
            .collect())
    })
}

/// Whether the caller may move `lead` from `from` to `to`; `contact_owners` gives the owners
/// of the opportunities the lead is a contact of (asked only when the rule needs them).
pub fn may_move(
    ctx: &Ctx,
    rights: TransitionRights,
    lead: &LeadRow,
    from: LeadStage,
    to: LeadStage,
    contact_owners: impl FnOnce() -> AppResult<Vec<i64>>,
) -> AppResult<()> {
    use LeadStage::*;
    let allowed = match rights {
        TransitionRights::Any => true,
        TransitionRights::None => false,
        TransitionRights::Marketing => {
            (to == Mql && matches!(from, Inquiry | Recycled))
                || matches!(to, Recycled | Disqualified)
        }
        TransitionRights::SalesOwn => match ctx.user_id {
            None => false,
            Some(me) => {
                lead.owner_id == Some(me)
                    || (lead.owner_id.is_none() && from == Mql)
                    || contact_owners()?.contains(&me)
            }
        },
    };
    if allowed {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "role {} may not move lead \"{}\" from {from} to {to}",
            ctx.caller.role.as_str(),
            lead.external_id
        )))
    }
}

/// Facts that decide whether the caller may see a lead's personal data.
#[derive(Debug, Clone, Default)]
pub struct PiiFacts {
    /// Owners of the campaigns that touched the lead.
    pub campaign_owners: Vec<i64>,
    /// Owners of the opportunities that count the lead as a contact.
    pub opportunity_owners: Vec<i64>,
    /// The owner of the lead's account.
    pub account_owner: Option<i64>,
}

/// Whether the caller may see a lead's email and full name (SPEC §6).
pub fn can_see_pii(ctx: &Ctx, lead: &LeadRow, facts: impl FnOnce() -> PiiFacts) -> bool {
    match ctx.read_scope(Read::LeadPersonalData) {
        Scope::All => true,
        Scope::None => false,
        Scope::Own(owned) => {
            let Some(me) = ctx.user_id else { return false };
            match owned {
                Owned::LeadsAndOwnDealContacts => {
                    lead.owner_id == Some(me) || {
                        let facts = facts();
                        facts.opportunity_owners.contains(&me) || facts.account_owner == Some(me)
                    }
                }
                Owned::LeadsTouchedByOwnCampaigns => facts().campaign_owners.contains(&me),
                Owned::Leads => lead.owner_id == Some(me),
                Owned::Campaigns | Owned::Deals | Owned::Myself => false,
            }
        }
    }
}

/// Which facts the caller's personal-data rule needs about a lead: (owners of the campaigns
/// that touched it, owners of the opportunities it is a contact of).
pub fn pii_needs_facts(ctx: &Ctx) -> (bool, bool) {
    match ctx.read_scope(Read::LeadPersonalData) {
        Scope::Own(Owned::LeadsTouchedByOwnCampaigns) => (true, false),
        Scope::Own(Owned::LeadsAndOwnDealContacts) => (false, true),
        _ => (false, false),
    }
}
