//! Marketer compensation (SPEC §5): plans and assignments, statements computed live or read
//! frozen, and period close and reopen.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::attribution::{eligible_span, load_facts, mapped_touches, markov_paths, View};
use super::index::Journeys;
use super::{check_external_id, check_non_empty, not_found, AppError, AppResult, Ctx, Outcome};
use crate::auth::{Read, Scope, Write};
use crate::db::AnyConnection;
use crate::domain::account::Mapping;
use crate::domain::attribution::Touch;
use crate::domain::attribution::{Model, Params};
use crate::domain::compensation::{self as pay, EventCredit, Terms};
use crate::domain::exact::ExactSum;
use crate::domain::money::{Decimal, Money};
use crate::domain::period::Period;
use crate::domain::report::{self, CampaignInfo, Grouping};
use crate::domain::stage::LeadStage;
pub use crate::repo::compensation::ClosedPeriodRow;
use crate::repo::compensation::{self as repo, PlanRow, PlanValues};
use crate::repo::users::{self, UserRow};
use crate::repo::{campaigns, opportunities, reports};

#[derive(Debug, Clone)]
pub struct PlanInput {
    pub external_id: String,
    pub name: String,
    pub model: Model,
    pub revenue_rate: String,
    pub quota: Option<(String, String)>,
    pub accelerator_rate: Option<String>,
    pub qualified_lead_bonus: (String, String),
    pub cap: Option<(String, String)>,
    pub clawback_days: i32,
    pub contacts: Mapping,
    /// The custom model's key when `model` is one (SPEC §4b).
    pub custom_model: Option<String>,
}

/// A plan as a statement saw it (frozen statements keep the plan they were computed with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    pub id: i64,
    pub external_id: String,
    pub name: String,
    pub model: String,
    pub revenue_rate: String,
    pub quota_cents: Option<i64>,
    pub accelerator_rate: Option<String>,
    pub qualified_lead_bonus_cents: i64,
    pub cap_cents: Option<i64>,
    pub clawback_days: i32,
    /// Whose touches its statements credit on a deal; statements frozen before plans had a
    /// mapping credited the deal's contacts.
    #[serde(default = "contact_roles")]
    pub contacts: String,
    /// The custom model's key when `model` is CUSTOM.
    #[serde(default)]
    pub custom_model: Option<String>,
    /// The version of that model a statement used (set when the statement is computed, so a
    /// frozen statement keeps it).
    #[serde(default)]
    pub custom_model_version: Option<i32>,
}

fn contact_roles() -> String {
    Mapping::ContactRoles.as_str().to_string()
}

impl From<PlanRow> for PlanRecord {
    fn from(p: PlanRow) -> Self {
        PlanRecord {
            id: p.id,
            external_id: p.external_id,
            name: p.name,
            model: p.model,
            revenue_rate: p.revenue_rate,
            quota_cents: p.quota_cents,
            accelerator_rate: p.accelerator_rate,
            qualified_lead_bonus_cents: p.qualified_lead_bonus_cents,
            cap_cents: p.cap_cents,
            clawback_days: p.clawback_days,
            contacts: p.contacts,
            custom_model: p.custom_model,
            custom_model_version: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineRecord {
    pub kind: String,
    pub campaign_id: Option<i64>,
    pub campaign_external_id: Option<String>,
    pub opportunity_id: Option<i64>,
    pub opportunity_external_id: Option<String>,
    pub basis_cents: Option<i64>,
    pub rate: Option<String>,
    pub amount_cents: i64,
    pub description: String,
}

/// Whether a statement is computed live or was frozen when its period closed (kept as
/// "OPEN"/"CLOSED" in frozen statements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StatementStatus {
    Open,
    Closed,
}

impl StatementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StatementStatus::Open => "OPEN",
            StatementStatus::Closed => "CLOSED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementRecord {
    pub user_id: i64,
    pub user_external_id: String,
    pub plan: PlanRecord,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// OPEN (computed now) or CLOSED (frozen at period close).
    pub status: StatementStatus,
    pub attributed_revenue_cents: i64,
    pub qualified_leads: f64,
    pub total_cents: i64,
    pub lines: Vec<LineRecord>,
}

fn parse_rate(field: &str, text: &str) -> AppResult<Decimal> {
    let rate = Decimal::parse(text).map_err(|e| AppError::BadInput(format!("{field}: {e}")))?;
    if rate.units < 0 {
        return Err(AppError::BadInput(format!("{field} must not be negative")));
    }
    Ok(rate)
}

fn terms(plan: &PlanRecord) -> AppResult<Terms> {
    let bad = |e: AppError| {
        AppError::Internal(format!(
            "stored plan {} is invalid: {}",
            plan.external_id,
            e.message()
        ))
    };
    Ok(Terms {
        revenue_rate: parse_rate("revenueRate", &plan.revenue_rate).map_err(bad)?,
        quota: plan.quota_cents,
        accelerator_rate: plan
            .accelerator_rate
            .as_deref()
            .map(|r| parse_rate("acceleratorRate", r))
            .transpose()
            .map_err(bad)?,
        qualified_lead_bonus: plan.qualified_lead_bonus_cents,
        cap: plan.cap_cents,
        clawback_days: i64::from(plan.clawback_days),
    })
}

pub async fn upsert_plan(ctx: &Ctx, input: PlanInput) -> AppResult<PlanRow> {
    ctx.require_write(Write::Compensation, "write compensation plans")?;
    check_external_id("compensation plan", &input.external_id)?;
    check_non_empty("name", &input.name)?;
    parse_rate("revenueRate", &input.revenue_rate)?;
    if let Some(r) = &input.accelerator_rate {
        parse_rate("acceleratorRate", r)?;
        if input.quota.is_none() {
            return Err(AppError::BadInput(
                "an acceleratorRate needs a quota to accelerate above".into(),
            ));
        }
    }
    let non_negative = |field: &str, m: &Option<(String, String)>| -> AppResult<Option<i64>> {
        match m {
            None => Ok(None),
            Some((amount, currency)) => {
                let money = super::currency::reporting_only(
                    ctx,
                    &format!("a compensation plan's {field}"),
                    amount,
                    currency,
                )?;
                if money < Money::ZERO {
                    return Err(AppError::BadInput(format!("{field} must not be negative")));
                }
                Ok(Some(money.0))
            }
        }
    };
    let quota = non_negative("quota", &input.quota)?;
    let cap = non_negative("cap", &input.cap)?;
    let bonus = non_negative(
        "qualifiedLeadBonus",
        &Some(input.qualified_lead_bonus.clone()),
    )?
    .unwrap_or(0);
    if input.clawback_days < 0 {
        return Err(AppError::BadInput(
            "clawbackDays must not be negative".into(),
        ));
    }
    let ctx2 = ctx.clone();
    ctx.db
        .write(move |conn| {
            // A plan on a custom model names one that exists; any other names none.
            match (&input.model, &input.custom_model) {
                (Model::Custom(_), Some(key)) => {
                    super::models::current_in(conn, key)?;
                }
                (Model::Custom(_), None) => {
                    return Err(AppError::BadInput(
                        "model CUSTOM needs customModel: the key of a model in attributionModels"
                            .into(),
                    ))
                }
                (_, Some(_)) => {
                    return Err(AppError::BadInput(
                        "customModel goes with model: CUSTOM".into(),
                    ))
                }
                (_, None) => {}
            }
            let values = PlanValues {
                external_id: &input.external_id,
                name: &input.name,
                model: input.model.as_str(),
                revenue_rate: &input.revenue_rate,
                quota_cents: quota,
                accelerator_rate: input.accelerator_rate.as_deref(),
                qualified_lead_bonus_cents: bonus,
                cap_cents: cap,
                clawback_days: input.clawback_days,
                contacts: input.contacts.as_str(),
                custom_model: input.custom_model.as_deref(),
            };
            let outcome = match repo::plan_by_external_id(conn, &input.external_id)? {
                None => {
                    repo::insert_plan(conn, &values)?;
                    Outcome::Created
                }
                Some(row) => {
                    repo::update_plan(conn, row.id, &values)?;
                    Outcome::Updated
                }
            };
            ctx2.audit(
                conn,
                "upsertCompensationPlan",
                Some(&input.external_id),
                outcome.as_str(),
            )?;
            repo::plan_by_external_id(conn, &input.external_id)?
                .ok_or_else(|| AppError::Internal("plan vanished after upsert".into()))
        })
        .await
}

pub async fn assign_plan(
    ctx: &Ctx,
    user_external_id: String,
    plan_external_id: String,
    from: NaiveDate,
) -> AppResult<PlanRow> {
    ctx.require_write(Write::Compensation, "assign compensation plans")?;
    let ctx2 = ctx.clone();
    ctx.db
        .write(move |conn| {
            let user = users::by_external_id(conn, &user_external_id)?
                .ok_or_else(|| not_found("user", &user_external_id))?;
            let plan = repo::plan_by_external_id(conn, &plan_external_id)?
                .ok_or_else(|| not_found("compensation plan", &plan_external_id))?;
            repo::assign(conn, user.id, plan.id, from)?;
            ctx2.audit(
                conn,
                "assignCompensationPlan",
                Some(&user_external_id),
                &format!("{plan_external_id} from {from}"),
            )?;
            Ok(plan)
        })
        .await
}

/// The facts every marketer's statement of a period shares: read once for all of them
/// (reading them per marketer made 40 statements at 1M leads take 70 s), and what each
/// attribution model makes of them, computed once per model for every marketer on a plan with
/// it (a marketer's share is then their campaigns' part of it).
pub struct SharedFacts {
    period: Period,
    won: crate::domain::report::StageFacts,
    sal: crate::domain::report::StageFacts,
    revenue: HashMap<i64, crate::repo::opportunities::RevenueRow>,
    opps: HashMap<i64, crate::repo::opportunities::OpportunityRow>,
    first_positive: HashMap<i64, NaiveDate>,
    campaigns: Vec<crate::repo::campaigns::CampaignRow>,
    by_model: std::sync::Mutex<HashMap<(Model, Mapping), std::sync::Arc<ModelShares>>>,
    /// The journey index, when the caller has one: a plan mapping deals to their accounts
    /// reads the account's leads from it.
    index: Option<std::sync::Arc<super::index::JourneyIndex>>,
}

/// One model's split of the period: per revenue event of `won.values`, (campaign, credit);
/// per campaign, the SAL conversions credited to it.
struct ModelShares {
    won_credits: Vec<Vec<(i64, i64)>>,
    sal_conversions: HashMap<i64, ExactSum>,
}

impl SharedFacts {
    pub fn load(
        conn: &mut AnyConnection,
        period: Period,
        index: Option<std::sync::Arc<super::index::JourneyIndex>>,
    ) -> AppResult<SharedFacts> {
        let won = load_facts(conn, LeadStage::Won, period, 365)?;
        let sal = load_facts(conn, LeadStage::Sal, period, 365)?;
        let revenue = reports::revenue_booked_between(conn, period.from, period.to)?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let opp_ids: Vec<i64> = won.values.iter().map(|v| v.opportunity_id).collect();
        let opps = opportunities::by_ids(conn, &opp_ids)?;
        let first_positive = repo::first_positive_bookings(conn, &opp_ids)?
            .into_iter()
            .collect();
        Ok(SharedFacts {
            period,
            won,
            sal,
            revenue,
            opps,
            first_positive,
            campaigns: campaigns::all(conn)?,
            by_model: Default::default(),
            index,
        })
    }

    /// What `model` makes of the period, computed at its first use.
    fn shares(
        &self,
        conn: &mut AnyConnection,
        model: Model,
        mapping: Mapping,
    ) -> AppResult<std::sync::Arc<ModelShares>> {
        if let Some(found) = self
            .by_model
            .lock()
            .ok()
            .and_then(|m| m.get(&(model, mapping)).cloned())
        {
            return Ok(found);
        }
        // Under another mapping than the contacts', each revenue event's touches are the ones
        // its deal credits under it (its account's leads: read through the journeys).
        let mapped: Option<Vec<Vec<Touch>>> = if mapping == Mapping::ContactRoles {
            None
        } else {
            let remap = |j: &Journeys| -> Vec<Vec<Touch>> {
                self.won
                    .values
                    .iter()
                    .map(|v| match j.deal(v.opportunity_id) {
                        Some(deal) => {
                            let (all, _, floor) =
                                mapped_touches(&View::now(j), deal, mapping, false);
                            all[eligible_span(&all, v.conversion.at, 365, floor)].to_vec()
                        }
                        None => v.touches.to_vec(),
                    })
                    .collect()
            };
            Some(match &self.index {
                Some(index) if index.current(conn)? => index.read(remap)?,
                _ => remap(&super::index::JourneyIndex::rebuilt(conn)?),
            })
        };
        let effects_for =
            |conn: &mut AnyConnection, stage: LeadStage| -> AppResult<HashMap<i64, f64>> {
                if model.data_driven() {
                    super::attribution::data_effects(
                        model,
                        &markov_paths(conn, stage, self.period, 365)?,
                        &self.campaigns,
                    )
                } else {
                    Ok(HashMap::new())
                }
            };
        let won_effects = effects_for(conn, LeadStage::Won)?;
        let mut won_credits = Vec::with_capacity(self.won.values.len());
        for (i, v) in self.won.values.iter().enumerate() {
            let mut per_campaign: Vec<(i64, i64)> = Vec::new();
            let touches: &[Touch] = match &mapped {
                Some(lists) => lists.get(i).map(Vec::as_slice).unwrap_or_default(),
                None => &v.touches,
            };
            for c in report::credits(
                model,
                &v.conversion,
                touches,
                Params::default(),
                &won_effects,
                v.amount,
            ) {
                match per_campaign
                    .iter_mut()
                    .find(|(id, _)| *id == c.touch.campaign_id)
                {
                    Some((_, sum)) => {
                        *sum = sum
                            .checked_add(c.amount)
                            .ok_or_else(|| AppError::overflow("attributed revenue"))?
                    }
                    None => per_campaign.push((c.touch.campaign_id, c.amount)),
                }
            }
            won_credits.push(per_campaign);
        }
        let sal_effects = effects_for(conn, LeadStage::Sal)?;
        let sal_report = if model.data_driven() {
            let mut sal = self.sal.clone();
            sal.removal_effects = sal_effects;
            self.sal_report(&sal, model)?
        } else {
            self.sal_report(&self.sal, model)?
        };
        let sal_conversions = sal_report
            .rows
            .iter()
            .filter_map(|r| Some((r.campaign_id?, r.conversions.clone())))
            .collect();
        let shares = std::sync::Arc::new(ModelShares {
            won_credits,
            sal_conversions,
        });
        if let Ok(mut m) = self.by_model.lock() {
            m.insert((model, mapping), shares.clone());
        }
        Ok(shares)
    }

    fn sal_report(
        &self,
        sal: &crate::domain::report::StageFacts,
        model: Model,
    ) -> AppResult<report::Report> {
        let infos: HashMap<i64, CampaignInfo> = self
            .campaigns
            .iter()
            .map(|c| {
                (
                    c.id,
                    CampaignInfo {
                        external_id: c.external_id.clone(),
                        channel: String::new(),
                    },
                )
            })
            .collect();
        Ok(report::build(
            sal,
            model,
            Params::default(),
            Grouping::Campaign,
            &infos,
            |_| true,
        )?)
    }
}

/// Computes a marketer's statement for a period from the data as it is now, over the
/// period's shared facts.
pub fn compute_with(
    conn: &mut AnyConnection,
    user: &UserRow,
    period: Period,
    currency: &str,
    shared: &SharedFacts,
) -> AppResult<StatementRecord> {
    let mut plan: PlanRecord = repo::plan_in_effect(conn, user.id, period.from)?
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "user \"{}\" has no compensation plan in effect on {}",
                user.external_id, period.from
            ))
        })?
        .into();
    let model = match (plan.model.as_str(), plan.custom_model.clone()) {
        ("CUSTOM", Some(key)) => {
            let (model, version) = super::models::current_in(conn, &key)?;
            plan.custom_model_version = Some(version.version);
            model
        }
        (named, _) => Model::from_str(named).map_err(AppError::Internal)?,
    };
    let terms = terms(&plan)?;
    let owned: HashMap<i64, String> = shared
        .campaigns
        .iter()
        .filter(|c| c.owner_id == Some(user.id))
        .map(|c| (c.id, c.external_id.clone()))
        .collect();
    let mapping = Mapping::parse(&plan.contacts).ok_or_else(|| {
        AppError::Internal(format!(
            "stored plan {} has an unknown mapping {}",
            plan.external_id, plan.contacts
        ))
    })?;
    let shares = shared.shares(conn, model, mapping)?;
    // Commission and clawback: each revenue event booked in the period, split as its deal closed.
    let (revenue, opps, first_positive) = (&shared.revenue, &shared.opps, &shared.first_positive);
    let mut credits = Vec::new();
    // The facts and their split were made together: a different length, or a credit whose
    // revenue event or deal is not among the period's, is a bug. Refuse rather than pay less.
    if shared.won.values.len() != shares.won_credits.len() {
        return Err(AppError::Internal(format!(
            "statement: {} revenue events but {} splits",
            shared.won.values.len(),
            shares.won_credits.len()
        )));
    }
    for (v, split) in shared.won.values.iter().zip(&shares.won_credits) {
        let (Some(event), Some(opp)) = (
            revenue.get(&v.revenue_event_id),
            opps.get(&v.opportunity_id),
        ) else {
            return Err(AppError::Internal(format!(
                "statement: credit of revenue event {} on opportunity {} has no {}",
                v.revenue_event_id,
                v.opportunity_id,
                if revenue.contains_key(&v.revenue_event_id) {
                    "opportunity"
                } else {
                    "revenue event"
                }
            )));
        };
        for (campaign_id, credit) in split.iter().filter(|(c, _)| owned.contains_key(c)) {
            credits.push(EventCredit {
                booked_on: event.booked_on,
                revenue_external_id: event.external_id.clone(),
                campaign_external_id: owned[campaign_id].clone(),
                opportunity_external_id: opp.external_id.clone(),
                campaign_id: *campaign_id,
                opportunity_id: opp.id,
                credit: *credit,
                refund: event.amount_cents < 0,
                first_positive_booked_on: first_positive.get(&opp.id).copied(),
            });
        }
    }
    // Lead bonus: the SAL conversions of the period credited to the marketer's campaigns, as
    // an exact sum (the bonus is rounded once, from it).
    let mut qualified = ExactSum::default();
    for id in owned.keys() {
        if let Some(n) = shares.sal_conversions.get(id) {
            qualified.add_sum(n);
        }
    }
    let statement = pay::statement(&terms, &credits, &qualified, currency)?;
    let opp_ext: HashMap<i64, String> = opps
        .values()
        .map(|o| (o.id, o.external_id.clone()))
        .collect();
    Ok(StatementRecord {
        user_id: user.id,
        user_external_id: user.external_id.clone(),
        plan,
        from: period.from,
        to: period.to,
        status: StatementStatus::Open,
        attributed_revenue_cents: statement.attributed_revenue,
        qualified_leads: statement.qualified_leads,
        total_cents: statement.total,
        lines: statement
            .lines
            .into_iter()
            .map(|l| LineRecord {
                kind: l.kind.as_str().into(),
                campaign_external_id: l.campaign_id.and_then(|c| owned.get(&c).cloned()),
                campaign_id: l.campaign_id,
                opportunity_external_id: l.opportunity_id.and_then(|o| opp_ext.get(&o).cloned()),
                opportunity_id: l.opportunity_id,
                basis_cents: l.basis,
                rate: l.rate,
                amount_cents: l.amount,
                description: l.description,
            })
            .collect(),
    })
}

fn exact_closed(conn: &mut AnyConnection, period: Period) -> AppResult<Option<ClosedPeriodRow>> {
    Ok(repo::closed_periods(conn)?
        .into_iter()
        .find(|c| c.period_from == period.from && c.period_to == period.to))
}

fn thaw(body: &str) -> AppResult<StatementRecord> {
    serde_json::from_str(body)
        .map_err(|e| AppError::Internal(format!("frozen statement unreadable: {e}")))
}

/// A marketer's statement: the frozen one for exactly a closed period, else computed live.
pub async fn statement(
    ctx: &Ctx,
    user_external_id: String,
    period: Period,
) -> AppResult<StatementRecord> {
    match ctx.require_read(Read::Statements, "compensation statements")? {
        Scope::Own(_) if user_external_id != ctx.caller.sub => {
            return Err(AppError::Forbidden(
                "a MARKETER reads only their own statement".into(),
            ))
        }
        _ => {}
    }
    let currency = ctx.currency.clone();
    let cache = ctx.reports.clone();
    // On the primary once the journey index is loaded: a plan mapping deals to accounts reads
    // it, and it must be caught up only over the primary (as the reports do).
    let primary = cache.index.is_ready();
    ctx.db
        .run_on(primary, move |conn| {
            let user = users::by_external_id(conn, &user_external_id)?
                .ok_or_else(|| not_found("user", &user_external_id))?;
            if let Some(closed) = exact_closed(conn, period)? {
                let frozen = repo::frozen(conn, closed.id, Some(&user_external_id))?;
                return match frozen.first() {
                    Some(body) => thaw(body),
                    None => Err(AppError::NotFound(format!(
                        "no statement was frozen for \"{user_external_id}\" when {}..{} was closed",
                        period.from, period.to
                    ))),
                };
            }
            let shared = shared_facts(conn, period, Some(&cache), None)?;
            compute_with(conn, &user, period, &currency, &shared)
        })
        .await
}

/// The shared facts of a period: from the report cache at the current data version when a
/// cache is given (reads), else read afresh (inside a write's transaction).
fn shared_facts(
    conn: &mut AnyConnection,
    period: Period,
    cache: Option<&super::cache::ReportCache>,
    index: Option<std::sync::Arc<super::index::JourneyIndex>>,
) -> AppResult<std::sync::Arc<SharedFacts>> {
    match cache {
        Some(cache) => {
            let version = super::cache::Version::Data(reports::data_version(conn)?);
            let index = cache.index.clone();
            cache.get_or_load(version, period, || {
                SharedFacts::load(conn, period, Some(index))
            })
        }
        None => Ok(std::sync::Arc::new(SharedFacts::load(conn, period, index)?)),
    }
}

/// Every statement of a period, as finance exports them: frozen when the period is closed.
pub async fn statements(ctx: &Ctx, period: Period) -> AppResult<Vec<StatementRecord>> {
    let scope = ctx.require_read(Read::Statements, "compensation statements")?;
    let currency = ctx.currency.clone();
    let me = ctx.caller.sub.clone();
    let cache = ctx.reports.clone();
    let primary = cache.index.is_ready();
    let all = ctx
        .db
        .run_on(primary, move |conn| {
            if let Some(closed) = exact_closed(conn, period)? {
                return repo::frozen(conn, closed.id, None)?
                    .iter()
                    .map(|b| thaw(b))
                    .collect();
            }
            payable(conn, period, &currency, Some(&cache), None)
        })
        .await?;
    Ok(all
        .into_iter()
        .filter(|s| scope == Scope::All || s.user_external_id == me)
        .collect())
}

/// The statements of every marketer who owns a campaign and has a plan in effect.
fn payable(
    conn: &mut AnyConnection,
    period: Period,
    currency: &str,
    cache: Option<&super::cache::ReportCache>,
    index: Option<std::sync::Arc<super::index::JourneyIndex>>,
) -> AppResult<Vec<StatementRecord>> {
    let owners: std::collections::HashSet<i64> = campaigns::all(conn)?
        .into_iter()
        .filter_map(|c| c.owner_id)
        .collect();
    let mut user_ids: Vec<i64> = repo::users_with_plans(conn, period.from)?
        .into_iter()
        .filter(|u| owners.contains(u))
        .collect();
    user_ids.sort_unstable();
    let mut users: Vec<UserRow> = users::by_ids(conn, &user_ids)?.into_values().collect();
    users.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    let shared = shared_facts(conn, period, cache, index)?;
    users
        .iter()
        .map(|u| compute_with(conn, u, period, currency, &shared))
        .collect()
}

pub async fn close_period(ctx: &Ctx, period: Period) -> AppResult<ClosedPeriodRow> {
    ctx.require_write(Write::Compensation, "close periods")?;
    let ctx2 = ctx.clone();
    ctx.db
        .write(move |conn| {
            if let Some(other) = repo::closed_periods(conn)?.into_iter().find(|c| {
                Period {
                    from: c.period_from,
                    to: c.period_to,
                }
                .overlaps(&period)
            }) {
                return Err(AppError::Conflict(format!(
                    "{}..{} overlaps the closed period {}..{}",
                    period.from, period.to, other.period_from, other.period_to
                )));
            }
            let index = Some(ctx2.reports.index.clone());
            let statements = payable(conn, period, &ctx2.currency, None, index)?;
            let now = Utc::now().naive_utc();
            let id = repo::insert_closed(
                conn,
                period.from,
                period.to,
                now,
                &ctx2.caller.sub,
                statements.len() as i32,
            )?;
            for s in &statements {
                let frozen = StatementRecord {
                    status: StatementStatus::Closed,
                    ..s.clone()
                };
                let body = serde_json::to_string(&frozen)
                    .map_err(|e| AppError::Internal(e.to_string()))?;
                repo::freeze(conn, id, &s.user_external_id, &body)?;
            }
            let label = format!("{}..{}", period.from, period.to);
            ctx2.audit(
                conn,
                "closePeriod",
                Some(&label),
                &format!("{} statements frozen", statements.len()),
            )?;
            exact_closed(conn, period)?
                .ok_or_else(|| AppError::Internal("closed period vanished".into()))
        })
        .await
}

pub async fn reopen_period(ctx: &Ctx, period: Period) -> AppResult<bool> {
    ctx.require_write(Write::Compensation, "reopen periods")?;
    let ctx2 = ctx.clone();
    ctx.db
        .write(move |conn| {
            let closed = exact_closed(conn, period)?.ok_or_else(|| {
                AppError::NotFound(format!(
                    "{}..{} is not a closed period",
                    period.from, period.to
                ))
            })?;
            repo::delete_closed(conn, closed.id)?;
            let label = format!("{}..{}", period.from, period.to);
            ctx2.audit(
                conn,
                "reopenPeriod",
                Some(&label),
                &format!("{} frozen statements dropped", closed.statements),
            )?;
            Ok(true)
        })
        .await
}
