//! The set-based path of the import (issue 15) for leads, touchpoints, moves, deals, their
//! closes and revenue, the bulk of a CRM's history: a batch reads what it refers to in a few
//! statements (`IN` lists by externalId), runs every record in file order against that state
//! in memory with the same checks and decisions as its mutation (`leads::check_*`,
//! `leads::may_move`, `scoring::decide`, `opportunities::check_*`/`decide_close`/
//! `opening_move`/`closing_move`, `periods::check_open_in`, the lifecycle's `plan_move`), and
//! writes the outcome in multi-row statements: each lead and deal once however many records
//! touched it, new touchpoints, stage rows, revenue and audit entries in the order one-by-one
//! mutations would have written them.
//!
//! A refused record changes nothing (every check comes before any change of state) and is
//! reported with its line. Anything else that goes wrong (the database) makes the caller write
//! the batch again with savepoints, this run one record at a time through the use cases, so no
//! case is left to this path alone.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};

use super::leads::{self, LeadInput, TouchpointInput, TransitionInput};
use super::moves::stage_of;
use super::opportunities::{self as deals, CloseInput, OpportunityInput, RevenueInput};
use super::periods::check_open_in;
use super::record::Record;
use super::{naive, not_found, scoring, AppError, AppResult, Ctx, Outcome};
use crate::auth::TransitionRights;
use crate::db::AnyConnection;
use crate::domain::currency::Rates;
use crate::domain::scoring::Rule;
use crate::domain::stage::{self, LeadStage, Step};
use crate::repo::audit::NewAudit;
use crate::repo::compensation::ClosedPeriodRow;
use crate::repo::leads::{LeadRow, NewTransition, TouchpointRow, TouchpointValues};
use crate::repo::opportunities::{OpportunityRow, RevenueRow, RevenueValues};
use crate::repo::{
    accounts, bulk, campaigns as campaigns_repo, leads as repo, opportunities, users,
};

/// Whether a record is written by this path.
pub fn set_based(record: &Record) -> bool {
    matches!(
        record,
        Record::Lead(_)
            | Record::Touchpoint(_)
            | Record::Transition(_)
            | Record::Opportunity(_)
            | Record::CloseOpportunity(_)
            | Record::Revenue(_)
    )
}

/// A lead's position in `Batch::leads`.
type Slot = usize;

struct Lead {
    /// The row as read (None: created by this batch).
    read: Option<LeadRow>,
    /// The row as the records so far left it.
    row: LeadRow,
    attributes: Vec<(String, String)>,
    attributes_replaced: bool,
    /// Its touchpoints in time order then externalId, as scoring and the source read them:
    /// (time, externalId) → (kind, campaign id).
    touches: BTreeMap<(NaiveDateTime, String), (String, i64)>,
    /// The time of its creation row (None: it has none).
    creation_at: Option<NaiveDateTime>,
    creation_moved: bool,
    /// Its creation row among `Batch::moves` when the batch created it.
    creation_row: Option<usize>,
    /// The latest time of its other stage rows.
    last_other: Option<NaiveDateTime>,
    /// Whether the batch gave it stage rows. Stage rows have no change-log trigger: the
    /// lead's own row is written (as a move's `set_stage` would) so that every instance's
    /// journey index reads its history again.
    moved: bool,
}

impl Lead {
    fn from_row(row: LeadRow) -> Lead {
        Lead {
            read: Some(row.clone()),
            row,
            attributes: Vec::new(),
            attributes_replaced: false,
            touches: BTreeMap::new(),
            creation_at: None,
            creation_moved: false,
            creation_row: None,
            last_other: None,
            moved: false,
        }
    }

    /// The time of its latest stage row, as `scoring::decide` takes it.
    fn last_move(&self) -> Option<DateTime<Utc>> {
        self.creation_at.max(self.last_other).map(|t| t.and_utc())
    }

    /// Re-derives its source campaign from its earliest touchpoint.
    fn refresh_source(&mut self) {
        self.row.source_campaign_id = self.touches.values().next().map(|(_, c)| *c);
    }

    /// That it reached funnel rank `rank` at `at` (every stage up to it, unless earlier).
    fn record_reach(&mut self, rank: usize, at: NaiveDateTime) {
        let row = &mut self.row;
        let columns = [
            &mut row.mql_at,
            &mut row.sal_at,
            &mut row.sql_at,
            &mut row.opportunity_at,
            &mut row.won_at,
        ];
        for column in columns.into_iter().take(rank) {
            if column.is_none_or(|t| t > at) {
                *column = Some(at);
            }
        }
    }
}

struct Touch {
    read: Option<TouchpointRow>,
    lead: Slot,
    campaign_id: i64,
    kind: String,
    occurred_at: NaiveDateTime,
}

struct Deal {
    read: Option<OpportunityRow>,
    /// The row as the records so far left it (its primary contact id is written at flush).
    row: OpportunityRow,
    primary: Slot,
    /// Its contacts, primary first.
    contacts: Vec<Slot>,
    /// The contacts' lead ids as read.
    read_contacts: Vec<i64>,
    contacts_replaced: bool,
}

struct Revenue {
    read: Option<RevenueRow>,
    /// Its deal: one of the batch's (`Batch::deals`), or, as read, one no record names.
    deal: Result<usize, i64>,
    amount_cents: i64,
    booked_on: chrono::NaiveDate,
    /// Written in another currency: (currency, original minor units).
    currency: Option<String>,
    original_amount: Option<i64>,
}

/// A stage row to write.
struct Move {
    lead: Slot,
    external_id: Option<String>,
    from: Option<&'static str>,
    to: &'static str,
    at: NaiveDateTime,
    actor: String,
    reason: Option<String>,
}

/// An audit entry to write, at the time its record was run.
struct Entry {
    at: NaiveDateTime,
    operation: &'static str,
    external_id: Option<String>,
    detail: String,
}

/// One batch's state: what it read, and what its records made of it.
pub struct Batch<'c> {
    ctx: &'c Ctx,
    leads: Vec<Lead>,
    by_external_id: HashMap<String, Slot>,
    by_id: HashMap<i64, Slot>,
    touches: HashMap<String, Touch>,
    /// Touchpoints the batch created, in the order it created them.
    created_touches: Vec<String>,
    campaigns: HashMap<String, i64>,
    users: HashMap<String, i64>,
    /// Account ids by the externalIds and the domains the records name.
    accounts: HashMap<String, i64>,
    accounts_by_domain: HashMap<String, i64>,
    deals: Vec<Deal>,
    deal_by_external_id: HashMap<String, usize>,
    revenue: HashMap<String, Revenue>,
    /// Revenue events the batch created, in the order it created them.
    created_revenue: Vec<String>,
    closed: Vec<ClosedPeriodRow>,
    /// Every exchange rate, read once (amounts in other currencies are valued with them).
    rates: Rates,
    /// Transition externalIds already used: (the lead, when it is one of the batch's, actor).
    moved: HashMap<String, (Option<Slot>, String)>,
    rules: Vec<Rule>,
    threshold: i32,
    rights: TransitionRights,
    moves: Vec<Move>,
    audit: Vec<Entry>,
}

impl<'c> Batch<'c> {
    /// Reads what the records refer to: their leads (and the leads their touchpoints belong to
    /// now), those leads' attributes, touchpoints and stage times, the touchpoints, moves and
    /// campaigns named, and the scoring rules.
    pub fn load(
        ctx: &'c Ctx,
        conn: &mut AnyConnection,
        records: &[&(u64, Record)],
    ) -> AppResult<Batch<'c>> {
        let mut lead_ids: Vec<&str> = Vec::new();
        let mut touch_ids: Vec<&str> = Vec::new();
        let mut move_ids: Vec<&str> = Vec::new();
        let mut campaign_ids: Vec<&str> = Vec::new();
        let mut deal_ids: Vec<&str> = Vec::new();
        let mut revenue_ids: Vec<&str> = Vec::new();
        let mut user_ids: Vec<&str> = Vec::new();
        let mut account_ids: Vec<&str> = Vec::new();
        let mut domains: Vec<String> = Vec::new();
        for (_, record) in records {
            match record {
                Record::Lead(i) => {
                    lead_ids.push(&i.external_id);
                    match &i.account_external_id {
                        Some(ext) => account_ids.push(ext),
                        None => domains
                            .extend(crate::domain::account::matching_domain(i.email.as_deref())),
                    }
                }
                Record::Touchpoint(i) => {
                    lead_ids.push(&i.lead_external_id);
                    touch_ids.push(&i.external_id);
                    campaign_ids.push(&i.campaign_external_id);
                }
                Record::Transition(i) => {
                    lead_ids.push(&i.lead_external_id);
                    if let Some(ext) = &i.external_id {
                        move_ids.push(ext);
                    }
                }
                Record::Opportunity(i) => {
                    deal_ids.push(&i.external_id);
                    lead_ids.push(&i.primary_contact_external_id);
                    lead_ids.extend(i.contact_external_ids.iter().map(String::as_str));
                    user_ids.extend(i.owner_external_id.as_deref());
                    account_ids.extend(i.account_external_id.as_deref());
                }
                Record::CloseOpportunity(i) => deal_ids.push(&i.external_id),
                Record::Revenue(i) => {
                    deal_ids.push(&i.opportunity_external_id);
                    revenue_ids.push(&i.external_id);
                }
                _ => {}
            }
        }
        for list in [
            &mut lead_ids,
            &mut touch_ids,
            &mut move_ids,
            &mut campaign_ids,
            &mut deal_ids,
            &mut revenue_ids,
            &mut user_ids,
            &mut account_ids,
        ] {
            list.sort_unstable();
            list.dedup();
        }
        domains.sort_unstable();
        domains.dedup();
        let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
        let mut batch = Batch {
            ctx,
            leads: Vec::new(),
            by_external_id: HashMap::new(),
            by_id: HashMap::new(),
            touches: HashMap::new(),
            created_touches: Vec::new(),
            campaigns: campaigns_repo::ids_by_external_ids(conn, &campaign_ids)?,
            users: users::ids_by_external_ids(conn, &user_ids)?,
            accounts: accounts::ids_by_external_ids(conn, &account_ids)?,
            accounts_by_domain: accounts::ids_by_domains(conn, &domains)?,
            deals: Vec::new(),
            deal_by_external_id: HashMap::new(),
            revenue: HashMap::new(),
            created_revenue: Vec::new(),
            closed: crate::repo::compensation::closed_periods(conn)?,
            rates: super::currency::all_rates(conn)?,
            moved: HashMap::new(),
            rules: Vec::new(),
            threshold: 0,
            rights: crate::auth::policy::transitions(ctx.caller.role),
            moves: Vec::new(),
            audit: Vec::new(),
        };
        for row in repo::by_external_ids(conn, &lead_ids)? {
            batch.add_read(row);
        }
        let touches = repo::touchpoints_by_external_ids(conn, &touch_ids)?;
        let deals = opportunities::by_external_ids(conn, &deal_ids)?;
        let deal_rows: Vec<i64> = deals.iter().map(|d| d.id).collect();
        let contacts = opportunities::contacts_of(conn, &deal_rows)?;
        // The leads the touchpoints and deals belong to now, when no record names them.
        let mut elsewhere: Vec<i64> = touches
            .iter()
            .map(|t| t.lead_id)
            .chain(deals.iter().map(|d| d.primary_contact_id))
            .chain(contacts.iter().map(|(_, lead)| *lead))
            .filter(|id| !batch.by_id.contains_key(id))
            .collect();
        elsewhere.sort_unstable();
        elsewhere.dedup();
        for row in repo::by_ids(conn, &elsewhere)?.into_values() {
            batch.add_read(row);
        }
        let ids: Vec<i64> = batch.leads.iter().map(|l| l.row.id).collect();
        for a in repo::attributes_of(conn, &ids)? {
            let slot = batch.by_id[&a.lead_id];
            batch.leads[slot].attributes.push((a.key, a.value));
        }
        for t in repo::touchpoints_of(conn, &ids)? {
            let slot = batch.by_id[&t.lead_id];
            batch.leads[slot]
                .touches
                .insert((t.occurred_at, t.external_id), (t.kind, t.campaign_id));
        }
        for (lead_id, creation, at) in repo::stage_times_of(conn, &ids)? {
            let lead = &mut batch.leads[batch.by_id[&lead_id]];
            let slot = if creation {
                &mut lead.creation_at
            } else {
                &mut lead.last_other
            };
            *slot = (*slot).max(Some(at));
        }
        for t in touches {
            let lead = batch.by_id[&t.lead_id];
            batch.touches.insert(
                t.external_id.clone(),
                Touch {
                    lead,
                    campaign_id: t.campaign_id,
                    kind: t.kind.clone(),
                    occurred_at: t.occurred_at,
                    read: Some(t),
                },
            );
        }
        let mut read_contacts: HashMap<i64, Vec<i64>> = HashMap::new();
        for (deal, lead) in contacts {
            read_contacts.entry(deal).or_default().push(lead);
        }
        for row in deals {
            let read_contacts = read_contacts.remove(&row.id).unwrap_or_default();
            batch
                .deal_by_external_id
                .insert(row.external_id.clone(), batch.deals.len());
            batch.deals.push(Deal {
                primary: batch.by_id[&row.primary_contact_id],
                contacts: read_contacts.iter().map(|id| batch.by_id[id]).collect(),
                read_contacts,
                contacts_replaced: false,
                read: Some(row.clone()),
                row,
            });
        }
        let deal_of: HashMap<i64, usize> = batch
            .deals
            .iter()
            .enumerate()
            .map(|(i, d)| (d.row.id, i))
            .collect();
        for row in opportunities::revenue_by_external_ids(conn, &revenue_ids)? {
            let deal = deal_of
                .get(&row.opportunity_id)
                .copied()
                .ok_or(row.opportunity_id);
            batch.revenue.insert(
                row.external_id.clone(),
                Revenue {
                    deal,
                    amount_cents: row.amount_cents,
                    booked_on: row.booked_on,
                    currency: row.currency.clone(),
                    original_amount: row.original_amount,
                    read: Some(row),
                },
            );
        }
        for (ext, lead_id, actor) in repo::transitions_by_external_ids(conn, &move_ids)? {
            let lead = batch.by_id.get(&lead_id).copied();
            batch.moved.entry(ext).or_insert((lead, actor));
        }
        if batch.rights == TransitionRights::SalesOwn {
            // Sales reps cannot import (`policy::may_import`); their moves depend on deals'
            // owners, which this path does not follow.
            return Err(AppError::Internal(
                "a sales rep's moves go one by one".into(),
            ));
        }
        batch.rules = scoring::active_rules(conn)?;
        batch.threshold = scoring::threshold(conn)?;
        Ok(batch)
    }

    fn add_read(&mut self, row: LeadRow) {
        let slot = self.leads.len();
        self.by_external_id.insert(row.external_id.clone(), slot);
        self.by_id.insert(row.id, slot);
        self.leads.push(Lead::from_row(row));
    }

    /// Runs one record against the batch's state. An error is the record's own and changed
    /// nothing, except `Internal` and `Db`, which end the batch.
    pub fn apply(&mut self, record: &Record) -> AppResult<()> {
        match record {
            Record::Lead(i) => self.upsert_lead(i),
            Record::Touchpoint(i) => self.record_touchpoint(i),
            Record::Transition(i) => self.transition(i),
            Record::Opportunity(i) => self.upsert_opportunity(i),
            Record::CloseOpportunity(i) => self.close(i),
            Record::Revenue(i) => self.record_revenue(i),
            _ => Err(AppError::Internal(
                "a record the set-based import does not write".into(),
            )),
        }
    }

    /// A lead the batch knows (read or created so far), or NOT_FOUND as its mutation says.
    fn lead(&self, external_id: &str) -> AppResult<Slot> {
        self.by_external_id
            .get(external_id)
            .copied()
            .ok_or_else(|| not_found("lead", external_id))
    }

    /// A deal the batch knows, or NOT_FOUND.
    fn deal(&self, external_id: &str) -> AppResult<usize> {
        self.deal_by_external_id
            .get(external_id)
            .copied()
            .ok_or_else(|| not_found("opportunity", external_id))
    }

    fn entry(&mut self, operation: &'static str, external_id: Option<&str>, detail: String) {
        self.audit.push(Entry {
            at: Utc::now().naive_utc(),
            operation,
            external_id: external_id.map(str::to_string),
            detail,
        });
    }

    /// `leads::upsert_in`, in memory.
    fn upsert_lead(&mut self, input: &LeadInput) -> AppResult<()> {
        let attributes = leads::check_lead(self.ctx, input)?;
        let link = leads::account_link(
            input,
            |ext| Ok(self.accounts.get(ext).copied()),
            |d| Ok(self.accounts_by_domain.get(d).copied()),
        )?;
        let created_at = naive(input.created_at);
        let (slot, outcome) = match self.by_external_id.get(&input.external_id) {
            None => {
                let slot = self.leads.len();
                self.moves.push(Move {
                    lead: slot,
                    external_id: None,
                    from: None,
                    to: LeadStage::Inquiry.as_str(),
                    at: created_at,
                    actor: self.ctx.caller.sub.clone(),
                    reason: Some("lead created".into()),
                });
                self.leads.push(Lead {
                    read: None,
                    row: LeadRow {
                        id: 0,
                        external_id: input.external_id.clone(),
                        email: input.email.clone(),
                        full_name: input.full_name.clone(),
                        company: input.company.clone(),
                        title: input.title.clone(),
                        stage: LeadStage::Inquiry.as_str().to_string(),
                        score: 0,
                        owner_id: None,
                        created_at,
                        mql_at: None,
                        sal_at: None,
                        sql_at: None,
                        opportunity_at: None,
                        won_at: None,
                        source_campaign_id: None,
                        account_id: link.account_id,
                        account_explicit: link.explicit,
                        email_domain: link.email_domain,
                    },
                    attributes_replaced: attributes.is_some(),
                    attributes: attributes.unwrap_or_default(),
                    touches: BTreeMap::new(),
                    creation_at: Some(created_at),
                    creation_moved: false,
                    creation_row: Some(self.moves.len() - 1),
                    last_other: None,
                    moved: true,
                });
                self.by_external_id.insert(input.external_id.clone(), slot);
                (slot, Outcome::Created)
            }
            Some(&slot) => {
                let lead = &mut self.leads[slot];
                let row = &mut lead.row;
                let mut changed = false;
                let same_fields = row.email == input.email
                    && row.full_name == input.full_name
                    && row.company == input.company
                    && row.title == input.title
                    && row.created_at == created_at
                    && row.account_id == link.account_id
                    && row.account_explicit == link.explicit
                    && row.email_domain == link.email_domain;
                if !same_fields {
                    row.account_id = link.account_id;
                    row.account_explicit = link.explicit;
                    row.email_domain = link.email_domain;
                    row.email.clone_from(&input.email);
                    row.full_name.clone_from(&input.full_name);
                    row.company.clone_from(&input.company);
                    row.title.clone_from(&input.title);
                    if row.created_at != created_at {
                        row.created_at = created_at;
                        if lead.creation_at.is_some() {
                            lead.creation_at = Some(created_at);
                            lead.creation_moved = true;
                            if let Some(index) = lead.creation_row {
                                self.moves[index].at = created_at;
                            }
                        }
                    }
                    changed = true;
                }
                if let Some(attributes) = attributes {
                    if lead.attributes != attributes {
                        lead.attributes = attributes;
                        lead.attributes_replaced = true;
                        changed = true;
                    }
                }
                let outcome = if changed {
                    Outcome::Updated
                } else {
                    Outcome::Unchanged
                };
                (slot, outcome)
            }
        };
        if outcome != Outcome::Unchanged {
            self.rescore(slot)?;
        }
        self.entry(
            "upsertLead",
            Some(&input.external_id),
            outcome.as_str().to_string(),
        );
        Ok(())
    }

    /// `leads::record_touchpoint_in`, in memory.
    fn record_touchpoint(&mut self, input: &TouchpointInput) -> AppResult<()> {
        leads::check_touchpoint(self.ctx, input)?;
        let slot = self.lead(&input.lead_external_id)?;
        let campaign_id = *self
            .campaigns
            .get(&input.campaign_external_id)
            .ok_or_else(|| not_found("campaign", &input.campaign_external_id))?;
        let at = naive(input.occurred_at);
        let (outcome, previous) = match self.touches.get_mut(&input.external_id) {
            None => {
                self.touches.insert(
                    input.external_id.clone(),
                    Touch {
                        read: None,
                        lead: slot,
                        campaign_id,
                        kind: input.kind.clone(),
                        occurred_at: at,
                    },
                );
                self.created_touches.push(input.external_id.clone());
                (Outcome::Created, None)
            }
            Some(t) => {
                if t.lead == slot
                    && t.campaign_id == campaign_id
                    && t.kind == input.kind
                    && t.occurred_at == at
                {
                    (Outcome::Unchanged, None)
                } else {
                    let previous = (t.lead, t.occurred_at);
                    t.lead = slot;
                    t.campaign_id = campaign_id;
                    t.kind.clone_from(&input.kind);
                    t.occurred_at = at;
                    (Outcome::Updated, Some(previous))
                }
            }
        };
        if outcome != Outcome::Unchanged {
            if let Some((lead, at)) = previous {
                self.leads[lead]
                    .touches
                    .remove(&(at, input.external_id.clone()));
            }
            self.leads[slot].touches.insert(
                (at, input.external_id.clone()),
                (input.kind.clone(), campaign_id),
            );
            if let Some((lead, _)) = previous.filter(|(lead, _)| *lead != slot) {
                self.leads[lead].refresh_source();
                self.rescore(lead)?;
            }
            self.leads[slot].refresh_source();
            self.rescore(slot)?;
        }
        self.entry(
            "recordTouchpoint",
            Some(&input.external_id),
            outcome.as_str().to_string(),
        );
        Ok(())
    }

    /// `leads::transition_in`, in memory.
    fn transition(&mut self, input: &TransitionInput) -> AppResult<()> {
        let rights = leads::check_transition(self.ctx, input)?;
        let slot = self.lead(&input.lead_external_id)?;
        let ctx = self.ctx;
        if let Some(ext) = &input.external_id {
            if let Some((moved_lead, actor)) = self.moved.get(ext).cloned() {
                let lead = &self.leads[slot];
                if rights != TransitionRights::Any && actor != ctx.caller.sub {
                    let from = stage_of(&lead.row)?;
                    leads::may_move(ctx, rights, &lead.row, from, input.to, no_deal_owners)?;
                }
                if moved_lead != Some(slot) {
                    return Err(AppError::Conflict(format!(
                        "transition externalId \"{ext}\" was already used for another lead"
                    )));
                }
                self.entry(
                    "transitionLead",
                    Some(ext),
                    "unchanged (replay)".to_string(),
                );
                return Ok(());
            }
        }
        let lead = &self.leads[slot];
        let from = stage_of(&lead.row)?;
        let to = input.to;
        leads::may_move(ctx, rights, &lead.row, from, to, no_deal_owners)?;
        let steps = stage::plan_move(from, to).map_err(|e| AppError::BadInput(e.to_string()))?;
        self.apply_steps(
            slot,
            &steps,
            naive(input.occurred_at),
            &ctx.caller.sub,
            input.reason.as_deref(),
            input.external_id.as_deref(),
        );
        if let Some(ext) = &input.external_id {
            if !steps.is_empty() {
                self.moved
                    .entry(ext.clone())
                    .or_insert((Some(slot), ctx.caller.sub.clone()));
            }
        }
        // A sales rep accepting an unowned lead takes it.
        let row = &mut self.leads[slot].row;
        if rights == TransitionRights::SalesOwn
            && row.owner_id.is_none()
            && to.implies_reached(LeadStage::Sal)
        {
            if let Some(me) = ctx.user_id {
                row.owner_id = Some(me);
            }
        }
        self.entry(
            "transitionLead",
            Some(
                input
                    .external_id
                    .as_deref()
                    .unwrap_or(&input.lead_external_id),
            ),
            format!("{} {from} -> {to}", input.lead_external_id),
        );
        Ok(())
    }

    /// `opportunities::upsert_in`, in memory.
    fn upsert_opportunity(&mut self, input: &OpportunityInput) -> AppResult<()> {
        let priced = deals::check_opportunity(self.ctx, input, &self.rates)?;
        let (currency, original_amount) = super::currency::columns(&priced);
        let currency = currency.map(str::to_string);
        let primary = self.lead(&input.primary_contact_external_id)?;
        let mut contacts = vec![primary];
        for ext in &input.contact_external_ids {
            let slot = self.lead(ext)?;
            if !contacts.contains(&slot) {
                contacts.push(slot);
            }
        }
        let owner_id = match &input.owner_external_id {
            Some(ext) => Some(*self.users.get(ext).ok_or_else(|| not_found("user", ext))?),
            None => None,
        };
        let account_id = match &input.account_external_id {
            Some(ext) => Some(
                *self
                    .accounts
                    .get(ext)
                    .ok_or_else(|| not_found("account", ext))?,
            ),
            None => None,
        };
        let created_at = naive(input.created_at);
        let (outcome, primary_changed) = match self.deal_by_external_id.get(&input.external_id) {
            None => {
                self.deal_by_external_id
                    .insert(input.external_id.clone(), self.deals.len());
                self.deals.push(Deal {
                    read: None,
                    row: OpportunityRow {
                        id: 0,
                        external_id: input.external_id.clone(),
                        name: input.name.clone(),
                        primary_contact_id: 0,
                        owner_id,
                        amount_cents: priced.value.0,
                        status: "OPEN".to_string(),
                        created_at,
                        closed_at: None,
                        account_id,
                        currency,
                        original_amount,
                    },
                    primary,
                    contacts,
                    read_contacts: Vec::new(),
                    contacts_replaced: true,
                });
                (Outcome::Created, true)
            }
            Some(&index) => {
                let deal = &mut self.deals[index];
                let primary_changed = deal.primary != primary;
                let same = deal.row.name == input.name
                    && !primary_changed
                    && deal.row.owner_id == owner_id
                    && deal.row.amount_cents == priced.value.0
                    && deal.row.currency == currency
                    && deal.row.original_amount == original_amount
                    && deal.row.created_at == created_at
                    && deal.row.account_id == account_id
                    && deal.contacts == contacts;
                if same {
                    (Outcome::Unchanged, false)
                } else {
                    deal.row.name.clone_from(&input.name);
                    deal.primary = primary;
                    deal.row.owner_id = owner_id;
                    deal.row.amount_cents = priced.value.0;
                    deal.row.currency = currency;
                    deal.row.original_amount = original_amount;
                    deal.row.created_at = created_at;
                    deal.row.account_id = account_id;
                    if deal.contacts != contacts {
                        deal.contacts = contacts;
                        deal.contacts_replaced = true;
                    }
                    (Outcome::Updated, primary_changed)
                }
            }
        };
        if primary_changed {
            let lead = &self.leads[primary].row;
            let unowned = lead.owner_id.is_none();
            if let Some(steps) = deals::opening_move(stage_of(lead)?) {
                let reason = format!("opportunity {} created", input.external_id);
                let actor = self.ctx.caller.sub.clone();
                self.apply_steps(primary, &steps, created_at, &actor, Some(&reason), None);
            }
            if unowned {
                if let Some(owner) = owner_id {
                    self.leads[primary].row.owner_id = Some(owner);
                }
            }
        }
        self.entry(
            "upsertOpportunity",
            Some(&input.external_id),
            outcome.as_str().to_string(),
        );
        Ok(())
    }

    /// The deal's row as `opportunities::decide_close` reads it (its primary contact's id
    /// as it will be written).
    fn deal_row(&self, index: usize) -> OpportunityRow {
        let deal = &self.deals[index];
        OpportunityRow {
            primary_contact_id: self.leads[deal.primary].row.id,
            ..deal.row.clone()
        }
    }

    /// `opportunities::close_in`, in memory.
    fn close(&mut self, input: &CloseInput) -> AppResult<()> {
        self.ctx
            .require_write(crate::auth::Write::Ingest, "close opportunities")?;
        let index = self.deal(&input.external_id)?;
        let Some(status) = deals::decide_close(&self.deal_row(index), input)? else {
            self.entry(
                "closeOpportunity",
                Some(&input.external_id),
                "unchanged (replay)".to_string(),
            );
            return Ok(());
        };
        let at = naive(input.closed_at);
        let deal = &mut self.deals[index];
        deal.row.status = status.as_str().to_string();
        deal.row.closed_at = Some(at);
        let primary = deal.primary;
        if let Some((steps, target)) =
            deals::closing_move(stage_of(&self.leads[primary].row)?, input.won)
        {
            let reason = format!("opportunity {} closed {}", input.external_id, target);
            let actor = self.ctx.caller.sub.clone();
            self.apply_steps(primary, &steps, at, &actor, Some(&reason), None);
        }
        self.entry(
            "closeOpportunity",
            Some(&input.external_id),
            status.as_str().to_string(),
        );
        Ok(())
    }

    /// `opportunities::record_revenue_in`, in memory.
    fn record_revenue(&mut self, input: &RevenueInput) -> AppResult<()> {
        let priced = deals::check_revenue(self.ctx, input, &self.rates)?;
        let (currency, original_amount) = super::currency::columns(&priced);
        let currency = currency.map(str::to_string);
        let index = self.deal(&input.opportunity_external_id)?;
        deals::check_won(&self.deal_row(index))?;
        let outcome = match self.revenue.get_mut(&input.external_id) {
            None => {
                check_open_in(&self.closed, input.booked_on, "revenue")?;
                self.revenue.insert(
                    input.external_id.clone(),
                    Revenue {
                        read: None,
                        deal: Ok(index),
                        amount_cents: priced.value.0,
                        booked_on: input.booked_on,
                        currency,
                        original_amount,
                    },
                );
                self.created_revenue.push(input.external_id.clone());
                Outcome::Created
            }
            Some(r) => {
                if r.deal == Ok(index)
                    && r.amount_cents == priced.value.0
                    && r.currency == currency
                    && r.original_amount == original_amount
                    && r.booked_on == input.booked_on
                {
                    Outcome::Unchanged
                } else {
                    // A replay is fine; moving money in or out of a closed period is not.
                    check_open_in(&self.closed, r.booked_on, "the revenue event being changed")?;
                    check_open_in(&self.closed, input.booked_on, "revenue")?;
                    r.deal = Ok(index);
                    r.amount_cents = priced.value.0;
                    r.booked_on = input.booked_on;
                    r.currency = currency;
                    r.original_amount = original_amount;
                    Outcome::Updated
                }
            }
        };
        self.entry(
            "recordRevenue",
            Some(&input.external_id),
            outcome.as_str().to_string(),
        );
        Ok(())
    }

    /// `moves::apply_steps`, in memory.
    fn apply_steps(
        &mut self,
        slot: Slot,
        steps: &[Step],
        at: NaiveDateTime,
        actor: &str,
        reason: Option<&str>,
        external_id: Option<&str>,
    ) {
        for step in steps {
            self.moves.push(Move {
                lead: slot,
                external_id: external_id.map(str::to_string),
                from: Some(step.from.as_str()),
                to: step.to.as_str(),
                at,
                actor: actor.to_string(),
                reason: reason.map(str::to_string),
            });
        }
        let lead = &mut self.leads[slot];
        if !steps.is_empty() {
            lead.last_other = lead.last_other.max(Some(at));
            lead.moved = true;
        }
        if let Some(last) = steps.last() {
            lead.row.stage = last.to.as_str().to_string();
        }
        if let Some(rank) = steps.iter().filter_map(|s| s.to.funnel_rank()).max() {
            lead.record_reach(rank, at);
        }
    }

    /// `scoring::rescore_lead`, in memory.
    fn rescore(&mut self, slot: Slot) -> AppResult<()> {
        if self.rules.is_empty() {
            return Ok(());
        }
        let lead = &self.leads[slot];
        let timeline: Vec<(DateTime<Utc>, &str)> = lead
            .touches
            .iter()
            .map(|((at, _), (kind, _))| (at.and_utc(), kind.as_str()))
            .collect();
        let decided = scoring::decide(
            &self.rules,
            self.threshold,
            &lead.row,
            &lead.attributes,
            &timeline,
            lead.last_move(),
        )?;
        self.leads[slot].row.score = decided.score;
        if let Some(mql) = decided.mql {
            self.apply_steps(
                slot,
                &mql.steps,
                naive(mql.at),
                "system",
                Some(&mql.reason),
                None,
            );
        }
        Ok(())
    }

    /// Writes what the records did: new leads with ids reserved as one-by-one inserts would
    /// have taken them, each changed lead once, attributes, touchpoints, stage rows and audit
    /// entries in multi-row statements, in the order the records made them.
    pub fn flush(mut self, conn: &mut AnyConnection) -> AppResult<()> {
        let created: Vec<Slot> = (0..self.leads.len())
            .filter(|s| self.leads[*s].read.is_none())
            .collect();
        let ids = bulk::reserve_ids(conn, "leads", created.len())?;
        for (slot, id) in created.iter().zip(ids) {
            self.leads[*slot].row.id = id;
        }
        let rows: Vec<LeadRow> = created.iter().map(|s| self.leads[*s].row.clone()).collect();
        bulk::leads(conn, &rows)?;
        let mut replaced = Vec::new();
        let mut attributes = Vec::new();
        for lead in &self.leads {
            let id = lead.row.id;
            if let Some(read) = &lead.read {
                if *read != lead.row || lead.moved {
                    repo::update_whole(conn, &lead.row)?;
                }
                if lead.creation_moved {
                    if let Some(at) = lead.creation_at {
                        repo::move_creation_row(conn, id, at)?;
                    }
                }
                if lead.attributes_replaced {
                    replaced.push(id);
                }
            }
            if lead.attributes_replaced {
                attributes.extend(
                    lead.attributes
                        .iter()
                        .map(|(key, value)| repo::AttributeRow {
                            lead_id: id,
                            key: key.clone(),
                            value: value.clone(),
                        }),
                );
            }
        }
        repo::delete_attributes(conn, &replaced)?;
        bulk::attributes(conn, &attributes)?;
        self.flush_deals(conn)?;
        let mut new_touches = Vec::new();
        for ext in &self.created_touches {
            let t = &self.touches[ext];
            new_touches.push(TouchpointValues {
                external_id: ext,
                lead_id: self.leads[t.lead].row.id,
                campaign_id: t.campaign_id,
                kind: &t.kind,
                occurred_at: t.occurred_at,
            });
        }
        bulk::new_touchpoints(conn, &new_touches)?;
        for (ext, t) in &self.touches {
            let Some(read) = &t.read else { continue };
            let values = TouchpointValues {
                external_id: ext,
                lead_id: self.leads[t.lead].row.id,
                campaign_id: t.campaign_id,
                kind: &t.kind,
                occurred_at: t.occurred_at,
            };
            if (
                read.lead_id,
                read.campaign_id,
                read.kind.as_str(),
                read.occurred_at,
            ) != (
                values.lead_id,
                values.campaign_id,
                values.kind,
                values.occurred_at,
            ) {
                repo::update_touchpoint(conn, read.id, &values)?;
            }
        }
        let moves: Vec<NewTransition<'_>> = self
            .moves
            .iter()
            .map(|m| NewTransition {
                lead_id: self.leads[m.lead].row.id,
                external_id: m.external_id.as_deref(),
                from_stage: m.from,
                to_stage: m.to,
                occurred_at: m.at,
                actor: &m.actor,
                reason: m.reason.as_deref(),
            })
            .collect();
        bulk::new_transitions(conn, &moves)?;
        let role = self.ctx.caller.role.as_str();
        let entries: Vec<NewAudit<'_>> = self
            .audit
            .iter()
            .map(|e| NewAudit {
                occurred_at: e.at,
                actor: &self.ctx.caller.sub,
                role,
                operation: e.operation,
                external_id: e.external_id.as_deref(),
                detail: Some(&e.detail),
            })
            .collect();
        bulk::audit(conn, &entries)?;
        Ok(())
    }

    fn deal_id(&self, deal: Result<usize, i64>) -> i64 {
        deal.map_or_else(|id| id, |index| self.deals[index].row.id)
    }

    /// New deals with reserved ids, each changed deal once, contacts and revenue.
    fn flush_deals(&mut self, conn: &mut AnyConnection) -> AppResult<()> {
        let created: Vec<usize> = (0..self.deals.len())
            .filter(|d| self.deals[*d].read.is_none())
            .collect();
        let ids = bulk::reserve_ids(conn, "opportunities", created.len())?;
        for (index, id) in created.iter().zip(ids) {
            self.deals[*index].row.id = id;
        }
        for index in 0..self.deals.len() {
            let primary = self.leads[self.deals[index].primary].row.id;
            self.deals[index].row.primary_contact_id = primary;
        }
        let rows: Vec<OpportunityRow> =
            created.iter().map(|d| self.deals[*d].row.clone()).collect();
        bulk::opportunities(conn, &rows)?;
        let mut replaced = Vec::new();
        let mut contacts = Vec::new();
        for deal in &self.deals {
            if let Some(read) = &deal.read {
                if *read != deal.row {
                    opportunities::update_whole(conn, &deal.row)?;
                }
            }
            let ids: Vec<i64> = deal
                .contacts
                .iter()
                .map(|s| self.leads[*s].row.id)
                .collect();
            if deal.read.is_none() || (deal.contacts_replaced && ids != deal.read_contacts) {
                if deal.read.is_some() {
                    replaced.push(deal.row.id);
                }
                contacts.extend(
                    ids.iter()
                        .enumerate()
                        .map(|(position, lead)| (deal.row.id, *lead, position as i32)),
                );
            }
        }
        opportunities::delete_contacts(conn, &replaced)?;
        bulk::contacts(conn, &contacts)?;
        let mut new_revenue = Vec::new();
        for ext in &self.created_revenue {
            let r = &self.revenue[ext];
            new_revenue.push(RevenueValues {
                external_id: ext,
                opportunity_id: self.deal_id(r.deal),
                amount_cents: r.amount_cents,
                booked_on: r.booked_on,
                currency: r.currency.as_deref(),
                original_amount: r.original_amount,
            });
        }
        bulk::new_revenue(conn, &new_revenue)?;
        for (ext, r) in &self.revenue {
            let Some(read) = &r.read else { continue };
            let values = RevenueValues {
                external_id: ext,
                opportunity_id: self.deal_id(r.deal),
                amount_cents: r.amount_cents,
                booked_on: r.booked_on,
                currency: r.currency.as_deref(),
                original_amount: r.original_amount,
            };
            if (
                read.opportunity_id,
                read.amount_cents,
                read.booked_on,
                read.currency.as_deref(),
                read.original_amount,
            ) != (
                values.opportunity_id,
                values.amount_cents,
                values.booked_on,
                values.currency,
                values.original_amount,
            ) {
                opportunities::update_revenue(conn, read.id, &values)?;
            }
        }
        Ok(())
    }
}

/// Owners of the deals a lead is a contact of: never asked here (see `Batch::load`).
fn no_deal_owners() -> AppResult<Vec<i64>> {
    Ok(Vec::new())
}
