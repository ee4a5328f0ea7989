//! Attribution reports, opportunity credits and campaign ROI (SPEC §4). On the journey index a
//! report keeps its tally and brings it forward over the leads and deals changed since
//! (`advance_tally`); on the database (while the index loads) a stage's facts are read once per
//! data version and shared by every model asking for them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use super::cache::{ChainKey, FactsKey, ReportCache, Tallied, TallyKey, Version};
use super::index::{
    micros_range, CampaignData, Changed, Deal, JourneyIndex, Journeys, LeadJourney,
};
use super::{AppError, AppResult, Ctx};
use crate::auth::{Read, Scope};
use crate::db::AnyConnection;
use crate::domain::account::{previous_close, Mapping};
use crate::domain::attribution::{
    eligible, eligible_run, sort_touches, Conversion, Model, Params, Touch,
};
use crate::domain::deal::DealStatus;
use crate::domain::exact::ExactSum;
use crate::domain::markov::{collapse, removal_effects_of_order, ChainCounts, Path};
use crate::domain::money::Money;
use crate::domain::period::Period;
use crate::domain::report::{
    self, Buckets, CampaignInfo, ConversionFacts, Credit, Grouping, Report, Rule, Sign, StageFacts,
    Tally, ValueFacts,
};
use crate::domain::stage::LeadStage;
use crate::repo::campaigns::{self, CampaignRow};
use crate::repo::leads::TouchpointRow;
use crate::repo::opportunities::{self, OpportunityRow, RevenueRow};
use crate::repo::reports;

/// What a report asks for.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    pub model: Model,
    pub stage: LeadStage,
    pub period: Period,
    pub grouping: Grouping,
    pub half_life_days: f64,
    pub lookback_days: i64,
    /// Whose touches a deal credits (SPEC §8).
    pub mapping: Mapping,
    /// The account attribute a SEGMENT report groups by.
    pub segment: Option<String>,
}

/// The row key of each account for an ACCOUNT (externalId) or SEGMENT (the attribute) report:
/// kept by the journey index per change to accounts, else read.
async fn account_keys(
    ctx: &Ctx,
    grouping: Grouping,
    segment: Option<String>,
) -> AppResult<Arc<HashMap<i64, String>>> {
    let attribute = match grouping {
        Grouping::Account => None,
        Grouping::Segment => Some(segment.filter(|k| !k.trim().is_empty()).ok_or_else(|| {
            AppError::BadInput(
                "groupBy SEGMENT needs segment: the account attribute to group by".into(),
            )
        })?),
        _ => return Ok(Arc::new(HashMap::new())),
    };
    let index = ctx.reports.index.clone();
    let primary = index.is_ready();
    ctx.db
        .run_on(primary, move |conn| {
            if primary && index.current(conn)? {
                index.account_keys(conn, attribute.as_deref())
            } else {
                Ok(Arc::new(super::index::read_account_keys(
                    conn,
                    attribute.as_deref(),
                )?))
            }
        })
        .await
}

/// A report with what the caller may see of it.
#[derive(Debug, Clone)]
pub struct AttributionReport {
    pub query: ReportQuery,
    pub report: Report,
    /// (campaign, removal effect, share) for MARKOV, by campaign externalId.
    pub removal_effects: Vec<(CampaignRow, f64, f64)>,
    /// (channel, φ) for SHAPLEY, by channel.
    pub shapley_values: Vec<(String, f64)>,
    pub campaigns: HashMap<i64, CampaignRow>,
}

pub fn check_stage(stage: LeadStage) -> AppResult<()> {
    if matches!(
        stage,
        LeadStage::Lost | LeadStage::Recycled | LeadStage::Disqualified
    ) {
        return Err(AppError::BadInput(format!(
            "attribution has no conversions at {stage}; use INQUIRY, MQL, SAL, SQL, OPPORTUNITY or WON"
        )));
    }
    Ok(())
}

pub(super) fn check_params(half_life_days: f64, lookback_days: i64) -> AppResult<()> {
    if !(half_life_days.is_finite() && half_life_days > 0.0) {
        return Err(AppError::BadInput(
            "halfLifeDays must be a positive number".into(),
        ));
    }
    if !(0..=3650).contains(&lookback_days) {
        return Err(AppError::BadInput(
            "lookbackDays must be between 0 and 3650".into(),
        ));
    }
    Ok(())
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

fn to_touch(t: &TouchpointRow) -> Touch {
    Touch {
        id: t.id,
        external_id: t.external_id.as_str().into(),
        campaign_id: t.campaign_id,
        at: utc(t.occurred_at),
    }
}

/// Every touch of some leads, sorted per lead.
fn touches_by_lead(
    conn: &mut AnyConnection,
    lead_ids: &[i64],
) -> AppResult<HashMap<i64, Vec<Touch>>> {
    let mut out: HashMap<i64, Vec<Touch>> = HashMap::new();
    for t in crate::repo::leads::touchpoints_of(conn, lead_ids)? {
        out.entry(t.lead_id).or_default().push(to_touch(&t));
    }
    for list in out.values_mut() {
        sort_touches(list);
    }
    Ok(out)
}

fn first_reach_of(
    conn: &mut AnyConnection,
    stage: LeadStage,
    window: Option<(NaiveDateTime, NaiveDateTime)>,
    lead_ids: Option<&[i64]>,
) -> AppResult<HashMap<i64, DateTime<Utc>>> {
    let rank = stage.funnel_rank().unwrap_or(0);
    let rows = reports::reach(conn, rank, window, lead_ids)?;
    Ok(rows.into_iter().map(|(id, t)| (id, utc(t))).collect())
}

/// The merged, sorted touches of an opportunity's contacts.
fn deal_touches(contacts: &[i64], touches: &HashMap<i64, Vec<Touch>>) -> Vec<Touch> {
    let mut all: Vec<Touch> = contacts
        .iter()
        .flat_map(|c| touches.get(c).cloned().unwrap_or_default())
        .collect();
    sort_touches(&mut all);
    all
}

struct Deals {
    contacts: HashMap<i64, Vec<i64>>,
    touches: HashMap<i64, Vec<Touch>>,
    mql: HashMap<i64, DateTime<Utc>>,
}

impl Deals {
    fn load(conn: &mut AnyConnection, opps: &[&OpportunityRow]) -> AppResult<Deals> {
        let ids: Vec<i64> = opps.iter().map(|o| o.id).collect();
        let mut contacts: HashMap<i64, Vec<i64>> = HashMap::new();
        for (opp, lead) in opportunities::contacts_of(conn, &ids)? {
            contacts.entry(opp).or_default().push(lead);
        }
        let mut leads: Vec<i64> = contacts.values().flatten().copied().collect();
        leads.sort_unstable();
        leads.dedup();
        let primaries: Vec<i64> = opps.iter().map(|o| o.primary_contact_id).collect();
        Ok(Deals {
            touches: touches_by_lead(conn, &leads)?,
            mql: first_reach_of(conn, LeadStage::Mql, None, Some(&primaries))?,
            contacts,
        })
    }

    /// The conversion of a deal at `at` and its eligible touches.
    fn conversion(
        &self,
        opp: &OpportunityRow,
        at: DateTime<Utc>,
        won: bool,
        lookback: i64,
    ) -> (Conversion, Vec<Touch>) {
        let all = deal_touches(
            self.contacts.get(&opp.id).map(Vec::as_slice).unwrap_or(&[]),
            &self.touches,
        );
        (
            Conversion {
                at,
                mql_at: self.mql.get(&opp.primary_contact_id).copied(),
                opportunity_created_at: Some(utc(opp.created_at)),
                won,
            },
            eligible(&all, at, lookback),
        )
    }
}

/// Reads the facts of a stage and period from the database.
pub fn load_facts(
    conn: &mut AnyConnection,
    stage: LeadStage,
    period: Period,
    lookback: i64,
) -> AppResult<StageFacts> {
    let started = std::time::Instant::now();
    let window = (period.start().naive_utc(), period.end().naive_utc());
    let mut facts = StageFacts::default();
    match stage {
        LeadStage::Opportunity => {
            let opps = reports::opportunities_created_between(conn, window.0, window.1)?;
            let refs: Vec<&OpportunityRow> = opps.iter().collect();
            let deals = Deals::load(conn, &refs)?;
            for opp in &opps {
                let (conversion, touches) =
                    deals.conversion(opp, utc(opp.created_at), false, lookback);
                facts.conversions.push(ConversionFacts {
                    conversion,
                    touches: touches.into(),
                    value: Some(opp.amount_cents),
                });
            }
        }
        LeadStage::Won => {
            let won = reports::opportunities_won_between(conn, window.0, window.1)?;
            let revenue = reports::revenue_booked_between(conn, period.from, period.to)?;
            let booked_on: Vec<i64> = revenue.iter().map(|r| r.opportunity_id).collect();
            let others = opportunities::by_ids(conn, &booked_on)?;
            let mut all: HashMap<i64, &OpportunityRow> =
                others.values().map(|o| (o.id, o)).collect();
            for o in &won {
                all.insert(o.id, o);
            }
            let refs: Vec<&OpportunityRow> = all.values().copied().collect();
            let deals = Deals::load(conn, &refs)?;
            for opp in &won {
                let at = utc(opp.closed_at.unwrap_or(opp.created_at));
                let (conversion, touches) = deals.conversion(opp, at, true, lookback);
                facts.conversions.push(ConversionFacts {
                    conversion,
                    touches: touches.into(),
                    value: None,
                });
            }
            for r in &revenue {
                let Some(opp) = all.get(&r.opportunity_id) else {
                    continue;
                };
                let at = utc(opp.closed_at.unwrap_or(opp.created_at));
                let (conversion, touches) = deals.conversion(opp, at, true, lookback);
                facts.values.push(ValueFacts {
                    conversion,
                    touches: touches.into(),
                    amount: r.amount_cents,
                    revenue_event_id: r.id,
                    opportunity_id: opp.id,
                });
            }
        }
        _ => {
            let reached = first_reach_of(conn, stage, Some(window), None)?;
            let mut ids: Vec<i64> = reached.keys().copied().collect();
            ids.sort_unstable();
            let touches = touches_by_lead(conn, &ids)?;
            let mql = first_reach_of(conn, LeadStage::Mql, None, Some(&ids))?;
            for id in ids {
                let at = reached[&id];
                let all = touches.get(&id).map(Vec::as_slice).unwrap_or(&[]);
                facts.conversions.push(ConversionFacts {
                    conversion: Conversion {
                        at,
                        mql_at: mql.get(&id).copied(),
                        opportunity_created_at: None,
                        won: false,
                    },
                    touches: eligible(all, at, lookback).into(),
                    value: None,
                });
            }
        }
    }
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        conversions = facts.conversions.len(),
        "report facts read"
    );
    Ok(facts)
}

/// One path per lead with a touch in [from − lookback, to) that had not reached the stage
/// before `from` (SPEC §4, MARKOV).
pub fn markov_paths(
    conn: &mut AnyConnection,
    stage: LeadStage,
    period: Period,
    lookback: i64,
) -> AppResult<Vec<Path>> {
    let start = period.start() - Duration::days(lookback);
    let mut window =
        reports::touch_campaigns_between(conn, start.naive_utc(), period.end().naive_utc())?;
    // By lead, then in touch order (time, then externalId: SPEC §4).
    window.sort_unstable_by(|a, b| (a.0, a.2, &a.3).cmp(&(b.0, b.2, &b.3)));
    let mut ids: Vec<i64> = window.iter().map(|t| t.0).collect();
    ids.dedup();
    let reached = first_reach_of(conn, stage, None, Some(&ids))?;
    let mut paths = Vec::new();
    for touches in window.chunk_by(|a, b| a.0 == b.0) {
        let id = touches[0].0;
        let path = match reached.get(&id) {
            Some(t) if *t < period.start() => continue,
            Some(t) if period.holds(*t) => {
                let (from, until) = ((*t - Duration::days(lookback)).naive_utc(), t.naive_utc());
                Path {
                    campaigns: collapse(
                        touches
                            .iter()
                            .filter(|x| x.2 >= from && x.2 <= until)
                            .map(|x| x.1),
                    ),
                    converted: true,
                }
            }
            _ => Path {
                campaigns: collapse(touches.iter().map(|x| x.1)),
                converted: false,
            },
        };
        if !path.campaigns.is_empty() {
            paths.push(path);
        }
    }
    Ok(paths)
}

/// What a tally keeps beside each campaign, and whose touches a deal credits: the default is
/// what the database path reads (no accounts, the deal's contacts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    pub by: Buckets,
    pub mapping: Mapping,
}

/// What a tally on the index credits: the stage, period and lookback, weighed by `rule`.
#[derive(Clone, Copy)]
pub struct Ask<'a> {
    pub rule: Rule<'a>,
    pub stage: LeadStage,
    pub period: Period,
    pub lookback: i64,
    /// Whose touches a deal credits (SPEC §8).
    pub mapping: Mapping,
}

/// A report's model, parameters, period and lookback: an `Ask` per stage.
#[derive(Clone, Copy)]
struct Weighing {
    model: Model,
    params: Params,
    period: Period,
    lookback: i64,
    mapping: Mapping,
}

impl Weighing {
    fn ask<'a>(&self, stage: LeadStage, removal_effects: &'a HashMap<i64, f64>) -> Ask<'a> {
        Ask {
            rule: Rule {
                model: self.model,
                params: self.params,
                removal_effects,
            },
            stage,
            period: self.period,
            lookback: self.lookback,
            mapping: self.mapping,
        }
    }
}

/// The journey index as it is now, or as it was at an earlier version (the leads and deals
/// changed since replaced by what they were then): what a tally credited then is taken back
/// exactly as it was counted in.
pub struct View<'a> {
    j: &'a Journeys,
    then: Option<&'a Changed<'a>>,
    /// For the earlier version: the changed leads and deals by the account they had then.
    members_then: HashMap<i64, Vec<i64>>,
    deals_then: HashMap<i64, Vec<i64>>,
}

impl<'a> View<'a> {
    pub fn now(j: &'a Journeys) -> View<'a> {
        View {
            j,
            then: None,
            members_then: HashMap::new(),
            deals_then: HashMap::new(),
        }
    }

    fn then(j: &'a Journeys, changed: &'a Changed<'a>) -> View<'a> {
        let mut view = View {
            j,
            then: Some(changed),
            members_then: HashMap::new(),
            deals_then: HashMap::new(),
        };
        for (id, old) in &changed.leads {
            if let Some(a) = old.and_then(|l| l.account) {
                view.members_then.entry(a).or_default().push(*id);
            }
        }
        let mut deals_then: HashMap<i64, Vec<i64>> = HashMap::new();
        for (id, old) in &changed.deals {
            if let Some(a) = old.and_then(|d| view.account_of(d)) {
                deals_then.entry(a).or_default().push(*id);
            }
        }
        view.deals_then = deals_then;
        view
    }

    pub fn lead(&self, id: i64) -> Option<&'a LeadJourney> {
        match self.then.and_then(|c| c.leads.get(&id)) {
            Some(old) => *old,
            None => self.j.lead(id),
        }
    }

    pub fn deal(&self, id: i64) -> Option<&'a Deal> {
        match self.then.and_then(|c| c.deals.get(&id)) {
            Some(old) => *old,
            None => self.j.deal(id),
        }
    }

    /// A deal's account: the one it names, else its primary contact's.
    pub fn account_of(&self, deal: &Deal) -> Option<i64> {
        deal.row
            .account_id
            .or_else(|| self.lead(deal.row.primary_contact_id)?.account)
    }

    /// The leads of an account, ascending.
    pub fn members(&self, account: i64) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .j
            .by_account
            .get(&account)
            .into_iter()
            .flatten()
            .chain(self.members_then.get(&account).into_iter().flatten())
            .copied()
            .filter(|id| self.lead(*id).is_some_and(|l| l.account == Some(account)))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The deals of an account (naming it, or through their primary contact), ascending.
    pub fn account_deals(&self, account: i64, members: &[i64]) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .j
            .deals_by_account
            .get(&account)
            .into_iter()
            .flatten()
            .chain(self.deals_then.get(&account).into_iter().flatten())
            .chain(
                members
                    .iter()
                    .flat_map(|m| self.j.by_contact.get(m).into_iter().flatten()),
            )
            .copied()
            .filter(|id| {
                self.deal(*id)
                    .is_some_and(|d| self.account_of(d) == Some(account))
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// The leads whose touches a deal credits under `mapping` (SPEC §8), and the bound F below
/// which none counts (ACCOUNT only).
pub fn mapped_leads(
    view: &View,
    deal: &Deal,
    mapping: Mapping,
) -> (Vec<i64>, Option<DateTime<Utc>>) {
    let row = &deal.row;
    match mapping {
        Mapping::ContactRoles => (deal.contacts.clone(), None),
        Mapping::PrimaryContact => (vec![row.primary_contact_id], None),
        Mapping::Account => match view.account_of(deal) {
            None => (deal.contacts.clone(), None),
            Some(account) => {
                let members = view.members(account);
                let created = utc(row.created_at);
                let floor = previous_close(
                    created,
                    view.account_deals(account, &members)
                        .into_iter()
                        .filter(|id| *id != row.id)
                        .filter_map(|id| view.deal(id))
                        .map(|d| d.row.closed_at.map(utc)),
                );
                let mut all = members;
                all.extend(deal.contacts.iter().copied());
                all.sort_unstable();
                all.dedup();
                (all, floor)
            }
        },
    }
}

/// The touches of several leads in one list sorted by time, then externalId (SPEC §4), each
/// with what its source says of its lead.
pub fn merge_touches<'a, X: Copy + 'a>(
    sources: impl IntoIterator<Item = (&'a [Touch], X)>,
) -> Vec<(Touch, X)> {
    let mut pairs: Vec<(Touch, X)> = sources
        .into_iter()
        .flat_map(|(touches, x)| touches.iter().map(move |t| (t.clone(), x)))
        .collect();
    pairs.sort_by(|a, b| (a.0.at, &a.0.external_id).cmp(&(b.0.at, &b.0.external_id)));
    pairs
}

/// The touches a deal credits under `mapping`, sorted, with (when `with_accounts`) the
/// account of each one's lead (0: none), and the bound F below which none counts (SPEC §8).
pub fn mapped_touches(
    view: &View,
    deal: &Deal,
    mapping: Mapping,
    with_accounts: bool,
) -> (Vec<Touch>, Vec<i64>, Option<DateTime<Utc>>) {
    let (leads, floor) = mapped_leads(view, deal, mapping);
    let pairs = merge_touches(
        leads
            .iter()
            .filter_map(|id| view.lead(*id))
            .map(|l| (&l.touches[..], l.account.unwrap_or(0))),
    );
    let accounts = if with_accounts {
        pairs.iter().map(|p| p.1).collect()
    } else {
        Vec::new()
    };
    (pairs.into_iter().map(|p| p.0).collect(), accounts, floor)
}

/// The eligible run of sorted `all` for a conversion at `at`: max(at − lookback, floor) ≤
/// time ≤ at, as (start, end) indexes.
pub fn eligible_span(
    all: &[Touch],
    at: DateTime<Utc>,
    lookback: i64,
    floor: Option<DateTime<Utc>>,
) -> std::ops::Range<usize> {
    // As `eligible_run`, with the lower bound raised to the floor.
    let lower = (at - Duration::days(lookback)).max(floor.unwrap_or(DateTime::<Utc>::MIN_UTC));
    let from = all.partition_point(|t| t.at < lower);
    from..all.partition_point(|t| t.at <= at).max(from)
}

/// Counts in (or takes back) a lead's conversion at a funnel rank, if it reached the rank in
/// the period: as `load_facts` reads it from the database.
fn credit_lead(t: &mut Tally, ask: &Ask, lead: &LeadJourney, sign: Sign) -> AppResult<()> {
    let rank = ask.stage.funnel_rank().unwrap_or(0);
    let Some(conversion) = lead_conversion(lead, rank, ask.period) else {
        return Ok(());
    };
    let touches = eligible_run(&lead.touches, conversion.at, ask.lookback);
    let accounts = if t.buckets() == Buckets::Account {
        vec![lead.account.unwrap_or(0); touches.len()]
    } else {
        Vec::new()
    };
    Ok(t.conversion(&ask.rule, &conversion, touches, &accounts, 0, sign)?)
}

/// A lead's conversion at a funnel rank, if it first reached the rank in the period.
pub fn lead_conversion(lead: &LeadJourney, rank: usize, period: Period) -> Option<Conversion> {
    let at = lead.reach.get(rank).copied().flatten()?;
    period.holds(at).then_some(Conversion {
        at,
        mql_at: lead.reach[1],
        opportunity_created_at: None,
        won: false,
    })
}

/// What a deal gives a deal stage in a period: the conversion its touches are weighed at (its
/// creation at OPPORTUNITY, its close at WON) and whether it counts as one.
pub struct DealConversion {
    pub conversion: Conversion,
    /// Created (OPPORTUNITY) or won (WON) in the period.
    pub counted: bool,
}

/// Whether a revenue event is split at `stage` in `period` (WON, booked in it).
pub fn booked_in(r: &RevenueRow, stage: LeadStage, period: Period) -> bool {
    stage == LeadStage::Won && period.holds_day(r.booked_on)
}

/// A deal's conversion at OPPORTUNITY or WON, None when it neither counts in the period nor has
/// revenue booked in it (or the stage is a lead stage).
pub fn deal_conversion(
    deal: &Deal,
    view: &View,
    stage: LeadStage,
    period: Period,
) -> Option<DealConversion> {
    let row = &deal.row;
    let closed = utc(row.closed_at.unwrap_or(row.created_at));
    let (at, won, counted) = match stage {
        LeadStage::Opportunity => (utc(row.created_at), false, true),
        LeadStage::Won => (
            closed,
            true,
            row.status == DealStatus::Won.as_str()
                && row.closed_at.is_some_and(|t| period.holds(utc(t))),
        ),
        _ => return None,
    };
    let counted = counted && period.holds(at);
    if !counted && !deal.revenue.iter().any(|r| booked_in(r, stage, period)) {
        return None;
    }
    Some(DealConversion {
        conversion: Conversion {
            at,
            mql_at: view.lead(row.primary_contact_id).and_then(|l| l.reach[1]),
            opportunity_created_at: Some(utc(row.created_at)),
            won,
        },
        counted,
    })
}

/// Counts in (or takes back) what a deal gives the stage in the period, its contacts' touches
/// and its primary contact's MQL read through `lead`: at OPPORTUNITY its creation with its
/// pipeline amount; at WON its win and every revenue event booked on it in the period, as of
/// its close. As `load_facts` reads them from the database.
fn credit_deal(t: &mut Tally, ask: &Ask, deal: &Deal, view: &View, sign: Sign) -> AppResult<()> {
    let row = &deal.row;
    let Some(DealConversion {
        conversion,
        counted,
    }) = deal_conversion(deal, view, ask.stage, ask.period)
    else {
        return Ok(());
    };
    let booked = |r: &&RevenueRow| booked_in(r, ask.stage, ask.period);
    let won = conversion.won;
    let (all, accounts, floor) =
        mapped_touches(view, deal, ask.mapping, t.buckets() == Buckets::Account);
    let span = eligible_span(&all, conversion.at, ask.lookback, floor);
    let touches = &all[span.clone()];
    let accounts = accounts.get(span).unwrap_or_default();
    if counted {
        let value = if won { 0 } else { row.amount_cents };
        t.conversion(&ask.rule, &conversion, touches, accounts, value, sign)?;
    }
    for r in deal.revenue.iter().filter(booked) {
        t.value(
            &ask.rule,
            &conversion,
            touches,
            accounts,
            r.amount_cents,
            sign,
        )?;
    }
    Ok(())
}

/// The tally of a stage and period, read from the journey index.
pub fn indexed_tally(j: &Journeys, ask: &Ask, by: Buckets) -> AppResult<Tally> {
    let mut t = Tally::new(by);
    match ask.stage {
        LeadStage::Opportunity | LeadStage::Won => {
            let view = View::now(j);
            for deal in j.deals.values() {
                credit_deal(&mut t, ask, deal, &view, Sign::Add)?;
            }
        }
        stage => {
            let rank = stage.funnel_rank().unwrap_or(0);
            let order = j
                .by_reach
                .get(rank)
                .into_iter()
                .flat_map(|o| o.range(micros_range(ask.period.start(), ask.period.end())));
            for (_, id) in order {
                if let Some(lead) = j.lead(*id) {
                    credit_lead(&mut t, ask, lead, Sign::Add)?;
                }
            }
        }
    }
    Ok(t)
}

/// Brings a tally made at version `since` to the index's version by re-crediting only the
/// leads and deals changed since (taken back as they were, counted in as they are); false when
/// the journal no longer reaches back to `since` (make it again).
pub fn advance_tally(t: &mut Tally, j: &Journeys, ask: &Ask, since: i64) -> AppResult<bool> {
    let Some(changed) = j.journal.since(since) else {
        return Ok(false);
    };
    let now = |id: i64| j.lead(id);
    match ask.stage {
        LeadStage::Opportunity | LeadStage::Won => {
            let (view_now, view_then) = (View::now(j), View::then(j, &changed));
            // The deals that changed and those naming a lead that changed (a deal that named
            // it only before changed itself).
            let mut deals: BTreeSet<i64> = changed.deals.keys().copied().collect();
            for id in changed.leads.keys() {
                deals.extend(j.by_contact.get(id).into_iter().flatten());
            }
            if ask.mapping == Mapping::Account {
                // Under ACCOUNT a deal also reads every lead of its account and the closes of
                // the account's other deals: re-credit every deal of an account, then or now,
                // of a changed lead or deal.
                let mut accounts: BTreeSet<i64> = BTreeSet::new();
                for (id, old) in &changed.leads {
                    accounts.extend(old.and_then(|l| l.account));
                    accounts.extend(j.lead(*id).and_then(|l| l.account));
                }
                for (id, old) in &changed.deals {
                    accounts.extend(old.and_then(|d| view_then.account_of(d)));
                    accounts.extend(j.deal(*id).and_then(|d| view_now.account_of(d)));
                }
                for a in accounts {
                    for view in [&view_then, &view_now] {
                        deals.extend(view.account_deals(a, &view.members(a)));
                    }
                }
            }
            for id in deals {
                if let Some(d) = view_then.deal(id) {
                    credit_deal(t, ask, d, &view_then, Sign::Remove)?;
                }
                if let Some(d) = j.deal(id) {
                    credit_deal(t, ask, d, &view_now, Sign::Add)?;
                }
            }
        }
        _ => {
            for (id, before) in &changed.leads {
                if let Some(l) = before {
                    credit_lead(t, ask, l, Sign::Remove)?;
                }
                if let Some(l) = now(*id) {
                    credit_lead(t, ask, l, Sign::Add)?;
                }
            }
        }
    }
    Ok(true)
}

/// A lead's MARKOV path for a stage and period, if it has one: its touches in [from −
/// lookback, to) when it had not reached the stage before `from`, cut at the lookback window
/// of its conversion when it converted in the period (as `markov_paths` reads them).
fn markov_path_of(
    lead: &LeadJourney,
    stage: LeadStage,
    period: Period,
    lookback: i64,
) -> Option<Path> {
    let rank = stage.funnel_rank().unwrap_or(0);
    let start = period.start() - Duration::days(lookback);
    let end = period.end();
    let window = lead.touches.iter().filter(|t| t.at >= start && t.at < end);
    let path = match lead.reach.get(rank).copied().flatten() {
        Some(t) if t < period.start() => return None,
        Some(t) if period.holds(t) => {
            let from = t - Duration::days(lookback);
            Path {
                campaigns: collapse(
                    window
                        .filter(|x| x.at >= from && x.at <= t)
                        .map(|x| x.campaign_id),
                ),
                converted: true,
            }
        }
        _ => Path {
            campaigns: collapse(window.map(|x| x.campaign_id)),
            converted: false,
        },
    };
    (!path.campaigns.is_empty()).then_some(path)
}

/// `markov_paths`, read from the journey index.
pub fn indexed_markov_paths(
    j: &Journeys,
    stage: LeadStage,
    period: Period,
    lookback: i64,
) -> Vec<Path> {
    let mut paths: Vec<(i64, Path)> = j
        .leads
        .iter()
        .filter_map(|(id, lead)| Some((*id, markov_path_of(lead, stage, period, lookback)?)))
        .collect();
    paths.sort_unstable_by_key(|(id, _)| *id);
    paths.into_iter().map(|(_, p)| p).collect()
}

/// The MARKOV chain's counts of a stage and period, of an order, read from the journey index.
pub fn indexed_chain(
    j: &Journeys,
    stage: LeadStage,
    period: Period,
    lookback: i64,
    order: u8,
) -> ChainCounts {
    let mut counts = ChainCounts::new(order);
    for lead in j.leads.values() {
        if let Some(path) = markov_path_of(lead, stage, period, lookback) {
            counts.add(&path, 1);
        }
    }
    counts
}

/// Brings a chain's counts made at version `since` to the index's version: the paths of the
/// leads changed since are taken back as they were and counted in as they are. False when
/// the journal no longer reaches back to `since`.
pub fn advance_chain(
    counts: &mut ChainCounts,
    j: &Journeys,
    stage: LeadStage,
    period: Period,
    lookback: i64,
    since: i64,
) -> bool {
    advance_paths(j, stage, period, lookback, since, |path, sign| {
        counts.add(path, sign)
    })
}

/// The paths of the leads changed since `since`: each as it was (−1) and as it is (+1).
/// False when the journal no longer reaches back to `since`.
fn advance_paths(
    j: &Journeys,
    stage: LeadStage,
    period: Period,
    lookback: i64,
    since: i64,
    mut count: impl FnMut(&Path, i32),
) -> bool {
    let Some(changed) = j.journal.since(since) else {
        return false;
    };
    for (id, before) in &changed.leads {
        if let Some(path) = before.and_then(|l| markov_path_of(l, stage, period, lookback)) {
            count(&path, -1);
        }
        if let Some(path) = j
            .lead(*id)
            .and_then(|l| markov_path_of(l, stage, period, lookback))
        {
            count(&path, 1);
        }
    }
    true
}

/// A SHAPLEY game's path-set counts of a stage and period at the index's version: kept from
/// an earlier version and brought forward, or read from the whole index.
pub(super) fn game(
    cache: &ReportCache,
    j: &Journeys,
    stage: LeadStage,
    period: Period,
    lookback: i64,
) -> Arc<crate::domain::shapley::PathSets> {
    let version = j.journal.version;
    let key = ChainKey {
        stage,
        period,
        lookback_days: lookback,
        order: 0,
    };
    let mut sets = None;
    if let Some((since, mut kept)) = cache.take_game(&key) {
        if since == version
            || (since < version
                && advance_paths(j, stage, period, lookback, since, |path, sign| {
                    Arc::make_mut(&mut kept).add(path, sign)
                }))
        {
            sets = Some(kept);
        }
    }
    let sets = sets.unwrap_or_else(|| {
        let mut fresh = crate::domain::shapley::PathSets::default();
        for lead in j.leads.values() {
            if let Some(path) = markov_path_of(lead, stage, period, lookback) {
                fresh.add(&path, 1);
            }
        }
        Arc::new(fresh)
    });
    cache.keep_game(key, version, sets.clone());
    sets
}

/// The tallies of some stages of a period under a model, and every campaign, in one catch-up
/// and one read. From the journey index once it is loaded (after catching up with the change
/// log, so every acknowledged write is in): a heuristic model's tally kept from an earlier
/// version is brought forward by re-crediting what changed since; MARKOV's weights move with
/// every change to the chain, so its tally is made per version. Else from the database.
async fn tallies(
    ctx: &Ctx,
    stages: Vec<LeadStage>,
    period: Period,
    lookback: i64,
    model: Model,
    params: Params,
    shape: Shape,
) -> AppResult<(Vec<Arc<Tallied>>, Arc<CampaignData>)> {
    let Shape { by, mapping } = shape;
    let cache = ctx.reports.clone();
    let index = cache.index.clone();
    let markov = model.data_driven();
    let half_life_bits = if model == Model::TimeDecay {
        params.half_life_days.to_bits()
    } else {
        0
    };
    let tally_key = move |stage| TallyKey {
        model,
        stage,
        period,
        lookback_days: lookback,
        half_life_bits,
        by,
        mapping,
    };
    let facts_key = move |version, stage, markov| FactsKey {
        version,
        stage,
        period,
        lookback_days: lookback,
        markov,
    };
    // The index path only on the primary: a connection taken while the index was loading may
    // be a replica's, and what is read beside the index (campaigns, costs) must not trail it.
    let primary = index.is_ready();
    ctx.db
        .run_on(primary, move |conn| {
            if primary && index.current(conn)? {
                let campaigns = index.campaign_data(conn)?;
                let q = Weighing {
                    model,
                    params,
                    period,
                    lookback,
                    mapping,
                };
                if markov {
                    let found =
                        markov_tallies(&cache, &index, &stages, q, by, tally_key, &campaigns)?;
                    return Ok((found, campaigns));
                }
                let found = index.read(|j| -> AppResult<Vec<Arc<Tallied>>> {
                    let version = j.journal.version;
                    let no_effects = HashMap::new();
                    let mut found = Vec::new();
                    for stage in &stages {
                        let key = tally_key(*stage);
                        let mut tallied = None;
                        if let Some((Version::Indexed(since), mut kept)) = cache.take_tally(&key) {
                            if since == version {
                                tallied = Some(kept);
                            } else if since < version {
                                let tally = &mut Arc::make_mut(&mut kept).tally;
                                if advance_tally(tally, j, &q.ask(*stage, &no_effects), since)? {
                                    tallied = Some(kept);
                                }
                            }
                        }
                        let tallied = match tallied {
                            Some(t) => t,
                            None => Arc::new(Tallied {
                                tally: indexed_tally(j, &q.ask(*stage, &no_effects), by)?,
                                removal_effects: HashMap::new(),
                            }),
                        };
                        cache.keep_tally(key, Version::Indexed(version), tallied.clone());
                        found.push(tallied);
                    }
                    Ok(found)
                })??;
                return Ok((found, campaigns));
            }
            let version = Version::Data(reports::data_version(conn)?);
            let campaigns = Arc::new(CampaignData::read(conn)?);
            if shape != Shape::default() {
                // Accounts are read through the journeys: while the index loads, build them
                // from the database for this report (slow at scale, but exact).
                let j = JourneyIndex::rebuilt(conn)?;
                let mut found = Vec::new();
                for stage in stages {
                    let effects = if markov {
                        data_effects(
                            model,
                            &markov_paths(conn, stage, period, lookback)?,
                            &campaigns.campaigns,
                        )?
                    } else {
                        HashMap::new()
                    };
                    let q = Weighing {
                        model,
                        params,
                        period,
                        lookback,
                        mapping,
                    };
                    found.push(Arc::new(Tallied {
                        tally: indexed_tally(&j, &q.ask(stage, &effects), by)?,
                        removal_effects: effects,
                    }));
                }
                return Ok((found, campaigns));
            }
            let mut found = Vec::new();
            for stage in stages {
                let key = tally_key(stage);
                if let Some((kept_at, kept)) = cache.take_tally(&key) {
                    if kept_at == version {
                        cache.keep_tally(key, version, kept.clone());
                        found.push(kept);
                        continue;
                    }
                }
                // Facts are cached with MARKOV's effects; SHAPLEY's are made on the plain facts.
                let with_effects = model.markov_order().unwrap_or(0);
                let facts = match cache.get(&facts_key(version, stage, with_effects)) {
                    Some(hit) => hit,
                    None => {
                        let mut loaded = match cache.get(&facts_key(version, stage, 0)) {
                            Some(hit) => (*hit).clone(),
                            None => load_facts(conn, stage, period, lookback)?,
                        };
                        if with_effects > 0 {
                            loaded.removal_effects = removal_effects_of_order(
                                &markov_paths(conn, stage, period, lookback)?,
                                with_effects,
                            );
                        }
                        let loaded = Arc::new(loaded);
                        cache.put(facts_key(version, stage, with_effects), loaded.clone());
                        loaded
                    }
                };
                let facts = if model == Model::Shapley {
                    let mut own = (*facts).clone();
                    own.removal_effects = data_effects(
                        model,
                        &markov_paths(conn, stage, period, lookback)?,
                        &campaigns.campaigns,
                    )?;
                    Arc::new(own)
                } else {
                    facts
                };
                let tallied = Arc::new(Tallied {
                    tally: Tally::of_facts(&facts, model, params, by)?,
                    removal_effects: facts.removal_effects.clone(),
                });
                cache.keep_tally(key, version, tallied.clone());
                found.push(tallied);
            }
            Ok((found, campaigns))
        })
        .await
}

/// MARKOV tallies of some stages on the index: those kept at the index's version, else the
/// chains brought forward under the index's lock, solved after letting go of it (the dense solve
/// takes ~0.5 s per chain at 2,000 campaigns, and a writer waiting on the lock would hold every
/// other report up), and the conversions credited with the effects under the lock again. Both
/// versions hold every write acknowledged before the report began; if a change landed between
/// them the tally is served but not kept (its effects are of the earlier version).
#[allow(clippy::too_many_arguments)]
fn markov_tallies(
    cache: &ReportCache,
    index: &JourneyIndex,
    stages: &[LeadStage],
    q: Weighing,
    by: Buckets,
    key_of: impl Fn(LeadStage) -> TallyKey,
    campaigns: &CampaignData,
) -> AppResult<Vec<Arc<Tallied>>> {
    let began = std::time::Instant::now();
    let shapley = q.model == Model::Shapley;
    let (solved_at, kept, chains, games) = index.read(|j| -> AppResult<_> {
        let version = j.journal.version;
        let mut kept = Vec::new();
        let mut chains = Vec::new();
        // SHAPLEY's games are small (one player per channel): made here from the paths.
        let mut games: Vec<Option<HashMap<i64, f64>>> = Vec::new();
        for stage in stages {
            let key = key_of(*stage);
            match cache.take_tally(&key) {
                Some((Version::Indexed(at), t)) if at == version => {
                    cache.keep_tally(key, Version::Indexed(version), t.clone());
                    kept.push(Some(t));
                    chains.push(None);
                    games.push(None);
                }
                _ if shapley => {
                    kept.push(None);
                    chains.push(None);
                    let sets = game(cache, j, *stage, key.period, key.lookback_days);
                    let channel_of: HashMap<i64, String> = campaigns
                        .campaigns
                        .iter()
                        .map(|c| (c.id, c.channel.clone()))
                        .collect();
                    let (encoded, _) = sets.effects(&channel_of).map_err(AppError::BadInput)?;
                    games.push(Some(encoded));
                }
                _ => {
                    kept.push(None);
                    let order = q.model.markov_order().unwrap_or(1);
                    chains.push(Some(chain(
                        cache,
                        j,
                        *stage,
                        key.period,
                        key.lookback_days,
                        order,
                    )));
                    games.push(None);
                }
            }
        }
        Ok((version, kept, chains, games))
    })??;
    let counted = began.elapsed();
    let mut effects: Vec<HashMap<i64, f64>> =
        games.into_iter().map(Option::unwrap_or_default).collect();
    let to_solve: Vec<(usize, &ChainCounts)> = chains
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, &**c.as_ref()?)))
        .collect();
    for (i, e) in two_ways(to_solve, |(i, c)| (i, c.removal_effects())) {
        effects[i] = e;
    }
    let solved = began.elapsed();
    let found = index.read(|j| -> AppResult<Vec<Arc<Tallied>>> {
        let version = j.journal.version;
        let to_credit: Vec<(LeadStage, &HashMap<i64, f64>)> = stages
            .iter()
            .zip(&kept)
            .zip(&effects)
            .filter(|((_, kept), _)| kept.is_none())
            .map(|((stage, _), effects)| (*stage, effects))
            .collect();
        let mut credited = two_ways(to_credit, |(stage, effects)| {
            indexed_tally(j, &q.ask(stage, effects), by)
        })
        .into_iter();
        let mut found = Vec::new();
        for ((stage, kept), effects) in stages.iter().zip(kept).zip(&effects) {
            if let Some(t) = kept {
                found.push(t);
                continue;
            }
            let tally = credited
                .next()
                .ok_or_else(|| AppError::Internal("a MARKOV stage was not credited".into()))??;
            let tallied = Arc::new(Tallied {
                tally,
                removal_effects: effects.clone(),
            });
            if version == solved_at {
                cache.keep_tally(key_of(*stage), Version::Indexed(version), tallied.clone());
            }
            found.push(tallied);
        }
        Ok(found)
    })?;
    tracing::debug!(
        chains = chains.iter().flatten().count(),
        counted_ms = counted.as_millis() as u64,
        solved_ms = (solved - counted).as_millis() as u64,
        credited_ms = (began.elapsed() - solved).as_millis() as u64,
        "markov tallies"
    );
    found
}

/// `work` done on every item, in order: with more than one item, on two threads (one per
/// core), each taking every other item. For the MARKOV steps of campaignRoi's six stages
/// (a solve, a full crediting), which take long enough to be worth a thread.
fn two_ways<T: Send, R: Send>(items: Vec<T>, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    if items.len() < 2 {
        return items.into_iter().map(work).collect();
    }
    let (odd, even): (Vec<_>, Vec<_>) =
        items.into_iter().enumerate().partition(|(i, _)| i % 2 == 1);
    let work = &work;
    let (odd, even) = std::thread::scope(|s| {
        let odd = s.spawn(move || {
            odd.into_iter()
                .map(|(i, t)| (i, work(t)))
                .collect::<Vec<_>>()
        });
        let even: Vec<_> = even.into_iter().map(|(i, t)| (i, work(t))).collect();
        (
            odd.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
            even,
        )
    });
    let mut all: Vec<(usize, R)> = odd.into_iter().chain(even).collect();
    all.sort_unstable_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// The MARKOV chain's counts of a stage and period at the index's version: kept from an
/// earlier version and brought forward, or read from the whole index.
pub(super) fn chain(
    cache: &ReportCache,
    j: &Journeys,
    stage: LeadStage,
    period: Period,
    lookback: i64,
    order: u8,
) -> Arc<ChainCounts> {
    let version = j.journal.version;
    let key = ChainKey {
        stage,
        period,
        lookback_days: lookback,
        order,
    };
    let mut counts = None;
    if let Some((since, mut kept)) = cache.take_chain(&key) {
        if since == version
            || (since < version
                && advance_chain(Arc::make_mut(&mut kept), j, stage, period, lookback, since))
        {
            counts = Some(kept);
        }
    }
    let counts =
        counts.unwrap_or_else(|| Arc::new(indexed_chain(j, stage, period, lookback, order)));
    cache.keep_chain(key, version, counts.clone());
    counts
}

/// A data-driven model's figures from the period's paths: MARKOV's removal effects by
/// campaign, SHAPLEY's game encoded by campaign (`domain::shapley::effects`; more than 16
/// channels on the paths is BAD_USER_INPUT); nothing for the other models.
pub fn data_effects(
    model: Model,
    paths: &[Path],
    campaigns: &[CampaignRow],
) -> AppResult<HashMap<i64, f64>> {
    match model {
        Model::Markov(order) => Ok(removal_effects_of_order(paths, order)),
        Model::Shapley => {
            let channel_of: HashMap<i64, String> = campaigns
                .iter()
                .map(|c| (c.id, c.channel.clone()))
                .collect();
            crate::domain::shapley::effects(paths, &channel_of)
                .map(|(encoded, _)| encoded)
                .map_err(AppError::BadInput)
        }
        _ => Ok(HashMap::new()),
    }
}

/// Which campaigns' rows the caller may see.
pub(super) fn visible_campaigns(ctx: &Ctx, campaigns: &[CampaignRow]) -> AppResult<HashSet<i64>> {
    let scope = ctx.require_read(Read::Campaigns, "attribution")?;
    Ok(campaigns
        .iter()
        .filter(|c| scope == Scope::All || (matches!(scope, Scope::Own(_)) && ctx.owns(c.owner_id)))
        .map(|c| c.id)
        .collect())
}

fn infos(campaigns: &[CampaignRow]) -> HashMap<i64, CampaignInfo> {
    campaigns
        .iter()
        .map(|c| {
            (
                c.id,
                CampaignInfo {
                    external_id: c.external_id.clone(),
                    channel: c.channel.clone(),
                },
            )
        })
        .collect()
}

pub async fn report(ctx: &Ctx, query: ReportQuery) -> AppResult<AttributionReport> {
    ctx.require_read(Read::Campaigns, "attribution")?;
    check_stage(query.stage)?;
    check_params(query.half_life_days, query.lookback_days)?;
    if query.grouping == Grouping::Segment
        && query.segment.as_deref().is_none_or(|k| k.trim().is_empty())
    {
        return Err(AppError::BadInput(
            "groupBy SEGMENT needs segment: the account attribute to group by".into(),
        ));
    }
    let (tallied, campaigns) = tallies(
        ctx,
        vec![query.stage],
        query.period,
        query.lookback_days,
        query.model,
        Params {
            half_life_days: query.half_life_days,
        },
        Shape {
            by: query.grouping.buckets(),
            mapping: query.mapping,
        },
    )
    .await?;
    let keys = account_keys(ctx, query.grouping, query.segment.clone()).await?;
    let tallied = tallied
        .into_iter()
        .next()
        .ok_or_else(|| AppError::Internal("no tally for the stage".into()))?;
    let campaigns = &campaigns.campaigns;
    let visible = visible_campaigns(ctx, campaigns)?;
    let report = tallied.tally.report_keyed(
        query.grouping,
        &infos(campaigns),
        |c| visible.contains(&c),
        &|account| keys.get(&account).cloned(),
    )?;
    // The campaigns the report names, for its rows and removal effects.
    let named: HashSet<i64> = report
        .rows
        .iter()
        .filter_map(|r| r.campaign_id)
        .chain(tallied.removal_effects.keys().copied())
        .collect();
    let by_id: HashMap<i64, CampaignRow> = campaigns
        .iter()
        .filter(|c| named.contains(&c.id))
        .map(|c| (c.id, c.clone()))
        .collect();
    let mut removal = Vec::new();
    if query.model.markov_order().is_some() {
        let total: f64 = tallied.removal_effects.values().sum();
        for (id, re) in &tallied.removal_effects {
            if let (true, Some(c)) = (visible.contains(id), by_id.get(id)) {
                removal.push((c.clone(), *re, if total > 0.0 { re / total } else { 0.0 }));
            }
        }
        removal.sort_by(|a, b| a.0.external_id.cmp(&b.0.external_id));
    }
    // SHAPLEY: each channel's φ, as the encoded game holds it (channels on no path: 0).
    let mut shapley: Vec<(String, f64)> = Vec::new();
    if query.model == Model::Shapley {
        for c in campaigns {
            if let Some(phi) = tallied.removal_effects.get(&c.id) {
                if !shapley.iter().any(|(ch, _)| *ch == c.channel) {
                    shapley.push((c.channel.clone(), *phi));
                }
            }
        }
        shapley.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(AttributionReport {
        query,
        report,
        removal_effects: removal,
        shapley_values: shapley,
        campaigns: by_id,
    })
}

/// The credits of one opportunity under a model: as of its close (its booked revenue) when
/// WON, else as of its creation (its pipeline amount). MARKOV uses the chain of the 365 days
/// up to that instant.
pub async fn opportunity_credits(
    ctx: &Ctx,
    opportunity_id: i64,
    model: Model,
    mapping: Mapping,
) -> AppResult<Vec<Credit>> {
    ctx.require_read(Read::Campaigns, "attribution credits")?;
    let visible_scope = ctx.read_scope(Read::Campaigns);
    let me = ctx.user_id;
    let index = ctx.reports.index.clone();
    let (credits, owners) = ctx
        .db
        .run_primary(move |conn| -> AppResult<_> {
            let opp = opportunities::by_id(conn, opportunity_id)?
                .ok_or_else(|| AppError::NotFound("no such opportunity".into()))?;
            let won = super::opportunities::status_of(&opp)? == DealStatus::Won;
            let at = if won {
                utc(opp.closed_at.unwrap_or(opp.created_at))
            } else {
                utc(opp.created_at)
            };
            let deals = Deals::load(conn, &[&opp])?;
            let (conversion, mut touches) = deals.conversion(&opp, at, won, 365);
            if mapping == Mapping::PrimaryContact {
                // Its primary contact's touches: read with its contacts' already.
                let own = deals
                    .touches
                    .get(&opp.primary_contact_id)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                touches = eligible(own, at, 365);
            } else if mapping == Mapping::Account {
                // Whose touches: read through the journeys (every lead of its account).
                let mapped = |j: &Journeys| -> AppResult<Vec<Touch>> {
                    let deal = j.deal(opp.id).ok_or_else(|| {
                        AppError::Internal("a deal missing from the journeys".into())
                    })?;
                    let (all, _, floor) = mapped_touches(&View::now(j), deal, mapping, false);
                    Ok(all[eligible_span(&all, at, 365, floor)].to_vec())
                };
                touches = if index.current(conn)? {
                    index.read(mapped)??
                } else {
                    mapped(&JourneyIndex::rebuilt(conn)?)?
                };
            }
            let effects = if model.data_driven() {
                let day = at.date_naive();
                let period = Period::new(day - Duration::days(365), day + Duration::days(1))
                    .map_err(|e| AppError::Internal(e.to_string()))?;
                let stage = if won {
                    LeadStage::Won
                } else {
                    LeadStage::Opportunity
                };
                // The chain of a year of touches: from the journey index when it is loaded.
                let paths = if index.current(conn)? {
                    index.read(|j| indexed_markov_paths(j, stage, period, 365))?
                } else {
                    markov_paths(conn, stage, period, 365)?
                };
                data_effects(model, &paths, &campaigns::all(conn)?)?
            } else {
                HashMap::new()
            };
            let mut credits: Vec<Credit> = Vec::new();
            if won {
                for r in opportunities::revenue_of(conn, &[opp.id])? {
                    let part = report::credits(
                        model,
                        &conversion,
                        &touches,
                        Params::default(),
                        &effects,
                        r.amount_cents,
                    );
                    if credits.is_empty() {
                        credits = part;
                    } else {
                        for (c, p) in credits.iter_mut().zip(part) {
                            c.amount = c
                                .amount
                                .checked_add(p.amount)
                                .ok_or(AppError::overflow("attributed revenue"))?;
                        }
                    }
                }
                if credits.is_empty() {
                    credits = report::credits(
                        model,
                        &conversion,
                        &touches,
                        Params::default(),
                        &effects,
                        0,
                    );
                }
            } else {
                credits = report::credits(
                    model,
                    &conversion,
                    &touches,
                    Params::default(),
                    &effects,
                    opp.amount_cents,
                );
            }
            let ids: Vec<i64> = credits.iter().map(|c| c.touch.campaign_id).collect();
            let owners: HashMap<i64, Option<i64>> = campaigns::by_ids(conn, &ids)?
                .into_values()
                .map(|c| (c.id, c.owner_id))
                .collect();
            Ok((credits, owners))
        })
        .await?;
    Ok(credits
        .into_iter()
        .filter(|c| {
            visible_scope == Scope::All
                || owners
                    .get(&c.touch.campaign_id)
                    .copied()
                    .flatten()
                    .is_some_and(|o| Some(o) == me)
        })
        .collect())
}

/// One campaign's return over a period.
#[derive(Debug, Clone)]
pub struct CampaignRoi {
    pub campaign: CampaignRow,
    pub cost: i64,
    pub revenue: i64,
    pub pipeline: i64,
    /// Conversions at INQUIRY, MQL, SAL, SQL, OPPORTUNITY, WON, exact.
    pub conversions: [ExactSum; 6],
}

impl CampaignRoi {
    pub fn roi(&self) -> Option<f64> {
        (self.cost != 0).then(|| (self.revenue as f64 - self.cost as f64) / self.cost as f64)
    }
    pub fn roas(&self) -> Option<f64> {
        (self.cost != 0).then(|| self.revenue as f64 / self.cost as f64)
    }
    /// Conversions at one stage, for display.
    pub fn conversions_at(&self, stage: usize) -> f64 {
        self.conversions[stage].to_f64()
    }
    /// cost / conversions from the exact sum of credits, rounded half to even to the minor
    /// unit once; None when there are none.
    pub fn cost_per(&self, stage: usize) -> Option<Money> {
        self.conversions[stage].divide(self.cost).map(Money)
    }
}

pub async fn campaign_roi(
    ctx: &Ctx,
    model: Model,
    period: Period,
    only: Option<Vec<String>>,
    mapping: Mapping,
) -> AppResult<Vec<CampaignRoi>> {
    ctx.require_read(Read::Campaigns, "campaign ROI")?;
    let stages = [
        LeadStage::Inquiry,
        LeadStage::Mql,
        LeadStage::Sal,
        LeadStage::Sql,
        LeadStage::Opportunity,
        LeadStage::Won,
    ];
    // One catch-up and one read of the index for the six stages (and one of the campaigns).
    let params = Params {
        half_life_days: 7.0,
    };
    let shape = Shape {
        by: Buckets::None,
        mapping,
    };
    let (tallied, data) = tallies(ctx, stages.to_vec(), period, 365, model, params, shape).await?;
    let campaigns = &data.campaigns;
    let visible = visible_campaigns(ctx, campaigns)?;
    let infos = infos(campaigns);
    let mut reports = Vec::new();
    for tallied in &tallied {
        reports.push(
            tallied
                .tally
                .report(Grouping::Campaign, &infos, |c| visible.contains(&c))?,
        );
    }
    // Costs incurred in the period, read with the campaigns (current as the tallies are).
    let mut cost_by: HashMap<i64, i64> = HashMap::new();
    for (id, costs) in &data.costs {
        let mut total: i64 = 0;
        for (_, cents) in costs.iter().filter(|(day, _)| period.holds_day(*day)) {
            total = total
                .checked_add(*cents)
                .ok_or(AppError::overflow("campaign cost"))?;
        }
        cost_by.insert(*id, total);
    }
    let rows_by_campaign: Vec<HashMap<i64, &report::Row>> = reports
        .iter()
        .map(|r| {
            r.rows
                .iter()
                .filter_map(|row| Some((row.campaign_id?, row)))
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for c in campaigns {
        if !visible.contains(&c.id) {
            if only.as_ref().is_some_and(|o| o.contains(&c.external_id)) {
                return Err(super::campaigns::not_yours());
            }
            continue;
        }
        if let Some(o) = &only {
            if !o.contains(&c.external_id) {
                continue;
            }
        }
        let row = |i: usize| rows_by_campaign[i].get(&c.id).copied();
        let conversions: [ExactSum; 6] =
            std::array::from_fn(|i| row(i).map(|r| r.conversions.clone()).unwrap_or_default());
        out.push(CampaignRoi {
            cost: cost_by.get(&c.id).copied().unwrap_or(0),
            revenue: row(5).map(|r| r.revenue).unwrap_or(0),
            pipeline: row(4).map(|r| r.revenue).unwrap_or(0),
            conversions,
            campaign: c.clone(),
        });
    }
    if let Some(o) = &only {
        let scoped = ctx.read_scope(Read::Campaigns) != Scope::All;
        for ext in o {
            if !out.iter().any(|r| &r.campaign.external_id == ext) {
                // A scoped caller is told the same for a campaign that is not theirs and
                // for one that does not exist.
                return Err(if scoped {
                    super::campaigns::not_yours()
                } else {
                    AppError::NotFound(format!("no campaign with externalId \"{ext}\""))
                });
            }
        }
    }
    Ok(out)
}

/// `attributionComparison` (SPEC §4b): the same question under several models, one row per
/// campaign with each model's conversions and revenue side by side.
pub struct Comparison {
    /// One CAMPAIGN report per model, in the order asked (totals, unattributed, other).
    pub reports: Vec<AttributionReport>,
    /// Every campaign credited under at least one model, by externalId; `figures[i]` is the
    /// campaign under `reports[i]`'s model (zero when it credited nothing there).
    pub rows: Vec<ComparisonRow>,
}

pub struct ComparisonRow {
    pub key: String,
    pub campaign: Option<CampaignRow>,
    pub figures: Vec<(ExactSum, i64)>,
}

/// The largest number of models one comparison runs.
pub const MAX_COMPARED: usize = 12;

pub async fn comparison(ctx: &Ctx, models: &[Model], base: ReportQuery) -> AppResult<Comparison> {
    let mut distinct: Vec<Model> = Vec::new();
    for m in models {
        if !distinct.contains(m) {
            distinct.push(*m);
        }
    }
    if distinct.is_empty() || distinct.len() > MAX_COMPARED {
        return Err(AppError::BadInput(format!(
            "models: list 1 to {MAX_COMPARED} distinct models"
        )));
    }
    let mut reports = Vec::with_capacity(distinct.len());
    for model in &distinct {
        reports.push(
            report(
                ctx,
                ReportQuery {
                    model: *model,
                    grouping: Grouping::Campaign,
                    segment: None,
                    ..base.clone()
                },
            )
            .await?,
        );
    }
    let mut rows: std::collections::BTreeMap<String, ComparisonRow> = Default::default();
    let width = reports.len();
    for (i, r) in reports.iter().enumerate() {
        for row in &r.report.rows {
            let entry = rows
                .entry(row.key.clone())
                .or_insert_with(|| ComparisonRow {
                    key: row.key.clone(),
                    campaign: None,
                    figures: vec![(ExactSum::default(), 0); width],
                });
            if entry.campaign.is_none() {
                entry.campaign = row.campaign_id.and_then(|id| r.campaigns.get(&id).cloned());
            }
            entry.figures[i] = (row.conversions.clone(), row.revenue);
        }
    }
    Ok(Comparison {
        reports,
        rows: rows.into_values().collect(),
    })
}
