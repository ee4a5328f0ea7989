//! The hand-off reports of SPEC §3: the cohort funnel with the two timeframes, leakage of
//! MQLs sales never acted on (with the spend that leaked with them), and how scoring rules
//! predicted wins.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use compact_str::CompactString;

use super::cache::Version;
use super::index::{moves_by_lead, JourneyIndex, Journeys, LeadJourney};
use super::{AppError, AppResult, Ctx};
use crate::auth::{Owned, Read, Scope};
use crate::domain::exact::{ExactSum, Fraction};
use crate::domain::handoff::{hand_offs, Exits};
use crate::domain::period::Period;
use crate::domain::scoring;
use crate::domain::stage::{LeadStage, FUNNEL};
use crate::domain::stats::{days_between, duration_stats, DurationStats};
use crate::repo::leads::{self as leads_repo, LeadRow};
use crate::repo::{campaigns, reports};

#[derive(Debug, Clone)]
pub struct StageRow {
    pub stage: LeadStage,
    pub entered: usize,
    pub converted: usize,
    pub conversion_rate: Option<f64>,
    pub median_days_to_next: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Funnel {
    pub period: Period,
    pub cohort_size: usize,
    pub stages: Vec<StageRow>,
    pub marketing_time: DurationStats,
    pub sales_cycle: DurationStats,
    pub handoff_time: DurationStats,
    pub recycled: usize,
    pub disqualified: usize,
    pub lost: usize,
}

/// When a lead first reached each funnel stage, INQUIRY to WON.
type Reach = [Option<DateTime<Utc>>; 6];

/// Picks the end of a timeframe for a lead.
type EndOf<'a> = &'a dyn Fn(&CohortLead) -> Option<DateTime<Utc>>;

fn at(t: Option<chrono::NaiveDateTime>) -> Option<DateTime<Utc>> {
    t.map(|t| t.and_utc())
}

/// When a lead first reached each funnel stage (INQUIRY at its creation).
fn reach(lead: &LeadRow) -> [Option<DateTime<Utc>>; 6] {
    [
        Some(lead.created_at.and_utc()),
        at(lead.mql_at),
        at(lead.sal_at),
        at(lead.sql_at),
        at(lead.opportunity_at),
        at(lead.won_at),
    ]
}

/// The campaigns whose sourced leads the caller's funnel covers (None: all).
fn own_campaigns(
    ctx: &Ctx,
    conn: &mut crate::db::AnyConnection,
) -> AppResult<Option<HashSet<i64>>> {
    match ctx.read_scope(Read::Campaigns) {
        Scope::Own(Owned::Campaigns) => Ok(Some(owned_campaign_ids(ctx, conn)?)),
        Scope::Own(other) => Err(AppError::Internal(format!(
            "campaign reports have no rule for own {other:?}"
        ))),
        _ => Ok(None),
    }
}

/// The ids of the campaigns the caller owns.
fn owned_campaign_ids(ctx: &Ctx, conn: &mut crate::db::AnyConnection) -> AppResult<HashSet<i64>> {
    Ok(campaigns::all(conn)?
        .into_iter()
        .filter(|c| ctx.owns(c.owner_id))
        .map(|c| c.id)
        .collect())
}

/// One lead of a period's cohort, as the funnel needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortLead {
    id: i64,
    source_campaign_id: Option<i64>,
    reach: Reach,
    exits: Exits,
}

/// The cohort of a period (leads created in it, by id), read once per version and shared by
/// every funnel of that period, whatever its campaign, channel or caller. On the index it is
/// brought forward from version to version by the leads changed in between.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CohortInputs {
    leads: BTreeMap<i64, CohortLead>,
}

/// The cohort of a period, read from the database.
pub fn load_cohort(conn: &mut crate::db::AnyConnection, period: Period) -> AppResult<CohortInputs> {
    let cohort = reports::cohort(conn, period.start().naive_utc(), period.end().naive_utc())?;
    let ids: Vec<i64> = cohort.iter().map(|l| l.id).collect();
    let moves = crate::repo::journeys::moves_of(conn, &ids)?;
    let mut moves = moves_by_lead(&moves);
    let leads = cohort
        .iter()
        .map(|l| {
            let lead = CohortLead {
                id: l.id,
                source_campaign_id: l.source_campaign_id,
                reach: reach(l),
                exits: moves
                    .get_mut(&l.id)
                    .map(|m| hand_offs(m).0)
                    .unwrap_or_default(),
            };
            (l.id, lead)
        })
        .collect();
    Ok(CohortInputs { leads })
}

/// A lead of the index as a member of a period's cohort (None: created outside it).
fn cohort_lead(id: i64, l: &LeadJourney, period: Period) -> Option<CohortLead> {
    l.reach[0].filter(|at| period.holds(*at))?;
    Some(CohortLead {
        id,
        source_campaign_id: l.source,
        reach: l.reach,
        exits: l.exits,
    })
}

/// The cohort of a period, read from the journey index.
pub fn indexed_cohort(j: &Journeys, period: Period) -> CohortInputs {
    let leads = j
        .reached(0, period.start(), period.end())
        .into_iter()
        .filter_map(|(id, l)| Some((id, cohort_lead(id, l, period)?)))
        .collect();
    CohortInputs { leads }
}

/// Brings a period's cohort read at index version `since` to the index's version: each lead
/// changed since leaves it and comes back as it is now, if it belongs. False when the journal
/// no longer reaches back to `since` (read it again).
pub fn advance_cohort(c: &mut CohortInputs, j: &Journeys, period: Period, since: i64) -> bool {
    let Some(changed) = j.journal.since(since) else {
        return false;
    };
    for id in changed.leads.keys() {
        c.leads.remove(id);
        if let Some(lead) = j.lead(*id).and_then(|l| cohort_lead(*id, l, period)) {
            c.leads.insert(*id, lead);
        }
    }
    true
}

/// How a hand-off report's inputs of a period are read from the journey index, or brought
/// forward there from an earlier version.
trait Indexed: std::any::Any + Send + Sync + Clone + Sized {
    /// Reads them whole, under the index's lock.
    fn read(j: &Journeys, period: Period) -> Self;
    /// Brings them from index version `since` to the index's, under its lock; false when the
    /// journal no longer reaches back.
    fn advance(&mut self, j: &Journeys, period: Period, since: i64) -> bool;
    /// What is read beside the index once its lock is let go (a writer queued behind a
    /// reader that waits on the database would hold every other report up).
    fn finish(
        &mut self,
        _index: &JourneyIndex,
        _conn: &mut crate::db::AnyConnection,
    ) -> AppResult<()> {
        Ok(())
    }
}

impl Indexed for CohortInputs {
    fn read(j: &Journeys, period: Period) -> Self {
        indexed_cohort(j, period)
    }
    fn advance(&mut self, j: &Journeys, period: Period, since: i64) -> bool {
        advance_cohort(self, j, period, since)
    }
}

impl Indexed for MqlInputs {
    fn read(j: &Journeys, period: Period) -> Self {
        mqls_in(j, period)
    }
    fn advance(&mut self, j: &Journeys, period: Period, since: i64) -> bool {
        advance_mqls(self, j, period, since)
    }
    fn finish(
        &mut self,
        index: &JourneyIndex,
        conn: &mut crate::db::AnyConnection,
    ) -> AppResult<()> {
        with_costs(self, index, conn)
    }
}

/// Reads what a hand-off report of a period needs: from the journey index once it is loaded
/// (after catching up, so every acknowledged write is in), brought forward from the version it
/// was last read or brought to; else from the database, cached per data version.
fn period_inputs<V: Indexed>(
    ctx: &Ctx,
    conn: &mut crate::db::AnyConnection,
    primary: bool,
    period: Period,
    from_database: impl FnOnce(&mut crate::db::AnyConnection) -> AppResult<V>,
) -> AppResult<Arc<V>> {
    let index = &ctx.reports.index;
    // Only on the primary: a connection taken while the index was loading may be a replica's,
    // and the index and what is read beside it (costs) must not trail the primary.
    if primary && index.current(conn)? {
        let kept = ctx.reports.take_indexed::<V>(period, index.version());
        let (version, found) = index.read(|j| {
            let version = j.journal.version;
            let found: Result<Arc<V>, V> = match kept {
                Some((at, v)) if at == version => Ok(v),
                Some((at, v)) => {
                    let mut v = Arc::try_unwrap(v).unwrap_or_else(|shared| (*shared).clone());
                    if v.advance(j, period, at) {
                        Err(v)
                    } else {
                        Err(V::read(j, period))
                    }
                }
                None => Err(V::read(j, period)),
            };
            (version, found)
        })?;
        ctx.reports.counted(found.is_ok());
        let value = match found {
            Ok(kept) => kept,
            Err(mut made) => {
                made.finish(index, conn)?;
                Arc::new(made)
            }
        };
        ctx.reports.keep_indexed(version, period, value.clone());
        return Ok(value);
    }
    let version = Version::Data(reports::data_version(conn)?);
    ctx.reports
        .get_or_load(version, period, || from_database(conn))
}

pub async fn funnel(
    ctx: &Ctx,
    period: Period,
    campaign: Option<String>,
    channel: Option<String>,
) -> AppResult<Funnel> {
    ctx.require_read(Read::Campaigns, "the funnel")?;
    let ctx2 = ctx.clone();
    let primary = ctx.reports.index.is_ready();
    ctx.db
        .run_on(primary, move |conn| {
            let all_campaigns = campaigns::all(conn)?;
            let mut sources: Option<HashSet<i64>> = own_campaigns(&ctx2, conn)?;
            let mut narrow = |wanted: HashSet<i64>| {
                sources = Some(match &sources {
                    Some(s) => s.intersection(&wanted).copied().collect(),
                    None => wanted,
                });
            };
            if let Some(ext) = &campaign {
                let c = all_campaigns
                    .iter()
                    .find(|c| &c.external_id == ext)
                    .ok_or_else(|| super::not_found("campaign", ext))?;
                narrow(HashSet::from([c.id]));
            }
            if let Some(ch) = &channel {
                narrow(
                    all_campaigns
                        .iter()
                        .filter(|c| &c.channel == ch)
                        .map(|c| c.id)
                        .collect(),
                );
            }
            let inputs = period_inputs(&ctx2, conn, primary, period, |conn| {
                load_cohort(conn, period)
            })?;
            let cohort: Vec<&CohortLead> = inputs
                .leads
                .values()
                .filter(|l| match &sources {
                    None => true,
                    Some(s) => l.source_campaign_id.is_some_and(|c| s.contains(&c)),
                })
                .collect();
            let mut stages = Vec::new();
            for (rank, stage) in FUNNEL.iter().enumerate() {
                let entered: Vec<&Reach> = cohort
                    .iter()
                    .map(|l| &l.reach)
                    .filter(|r| r[rank].is_some())
                    .collect();
                let (converted, days): (usize, Vec<f64>) = if rank + 1 < FUNNEL.len() {
                    let gaps: Vec<f64> = entered
                        .iter()
                        .filter_map(|r| Some(days_between(r[rank]?, r[rank + 1]?)))
                        .collect();
                    (gaps.len(), gaps)
                } else {
                    (0, vec![])
                };
                stages.push(StageRow {
                    stage: *stage,
                    entered: entered.len(),
                    converted,
                    conversion_rate: (rank + 1 < FUNNEL.len() && !entered.is_empty())
                        .then(|| converted as f64 / entered.len() as f64),
                    median_days_to_next: duration_stats(days).median,
                });
            }
            let span = |from: usize, to: EndOf<'_>| {
                duration_stats(
                    cohort
                        .iter()
                        .filter_map(|l| Some(days_between(l.reach[from]?, to(l)?)))
                        .collect(),
                )
            };
            let marketing_time = span(0, &|l| l.reach[2]);
            let handoff_time = span(1, &|l| l.reach[2]);
            let sales_cycle = span(2, &|l| match (l.reach[5], l.exits.lost_at) {
                (Some(w), Some(lost)) => Some(w.min(lost)),
                (w, lost) => w.or(lost),
            });
            let count = |flag: fn(&Exits) -> bool| cohort.iter().filter(|l| flag(&l.exits)).count();
            Ok(Funnel {
                period,
                cohort_size: cohort.len(),
                stages,
                marketing_time,
                sales_cycle,
                handoff_time,
                recycled: count(|l| l.recycled),
                disqualified: count(|l| l.disqualified),
                lost: count(|l| l.lost),
            })
        })
        .await
}

#[derive(Debug, Clone)]
pub struct Leakage {
    pub period: Period,
    pub sla_hours: i32,
    pub as_of: DateTime<Utc>,
    pub mqls: usize,
    pub decided_within_sla: usize,
    pub decided_late: usize,
    pub undecided: usize,
    pub leaked: usize,
    pub recycled_by_sales: usize,
    pub disqualified_by_sales: usize,
    pub wasted_spend: i64,
    /// The distinct leaked leads as (externalId, id), by externalId; `leaked_page` reads a
    /// page of their rows.
    pub leaked_leads: Vec<(CompactString, i64)>,
}

/// A move into MQL in a period, with the first decision sales made after it (whenever).
#[derive(Debug, Clone, PartialEq, Eq)]
struct MqlEvent {
    lead_id: i64,
    at: DateTime<Utc>,
    decision: Option<(DateTime<Utc>, &'static str)>,
}

/// What leakage needs of a lead that made an MQL move.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MqlLead {
    external_id: CompactString,
    source_campaign_id: Option<i64>,
    owner_id: Option<i64>,
}

/// What leakage of a period reads: its moves into MQL with their first decisions, the leads
/// that made them, and the cost of their source campaigns. Read once per version and shared
/// by every leakage of that period, whatever its SLA, asOf or caller: a decision only counts
/// when it was made by asOf, and as decisions are taken in time order, the first one after
/// the MQL is the only one that can count.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MqlInputs {
    /// By lead id, then time.
    events: BTreeMap<i64, Vec<MqlEvent>>,
    leads: HashMap<i64, MqlLead>,
    /// How many leads each campaign sourced.
    sourced: HashMap<i64, i64>,
    /// Costs of the campaigns that sourced these leads: (day, amount in minor units).
    costs: HashMap<i64, Vec<(chrono::NaiveDate, i64)>>,
}

/// The costs of the campaigns that sourced some leads, by campaign.
fn costs_of(
    conn: &mut crate::db::AnyConnection,
    leads: &HashMap<i64, MqlLead>,
) -> AppResult<HashMap<i64, Vec<(chrono::NaiveDate, i64)>>> {
    let mut campaign_ids: Vec<i64> = leads
        .values()
        .filter_map(|l| l.source_campaign_id)
        .collect();
    campaign_ids.sort_unstable();
    campaign_ids.dedup();
    let mut costs: HashMap<i64, Vec<(chrono::NaiveDate, i64)>> = HashMap::new();
    for c in campaigns::costs_of(conn, &campaign_ids, None)? {
        costs
            .entry(c.campaign_id)
            .or_default()
            .push((c.incurred_on, c.amount_cents));
    }
    for v in costs.values_mut() {
        v.sort_unstable();
    }
    Ok(costs)
}

/// What leakage of a period reads, from the database.
pub fn load_mqls(conn: &mut crate::db::AnyConnection, period: Period) -> AppResult<MqlInputs> {
    let moves = reports::moves_into(
        conn,
        "MQL",
        period.start().naive_utc(),
        period.end().naive_utc(),
    )?;
    let mut lead_ids: Vec<i64> = moves
        .iter()
        .filter(|e| period.holds(e.occurred_at.and_utc()))
        .map(|e| e.lead_id)
        .collect();
    lead_ids.sort_unstable();
    lead_ids.dedup();
    let leads: HashMap<i64, MqlLead> = leads_repo::by_ids(conn, &lead_ids)?
        .into_values()
        .map(|l| {
            (
                l.id,
                MqlLead {
                    external_id: CompactString::from(l.external_id),
                    source_campaign_id: l.source_campaign_id,
                    owner_id: l.owner_id,
                },
            )
        })
        .collect();
    let history = crate::repo::journeys::moves_of(conn, &lead_ids)?;
    let mut events = BTreeMap::new();
    for (lead_id, mut moves) in moves_by_lead(&history) {
        let mut of_lead: Vec<MqlEvent> = hand_offs(&mut moves)
            .1
            .into_iter()
            .filter(|m| period.holds(m.at))
            .map(|m| MqlEvent {
                lead_id,
                at: m.at,
                decision: m.decision,
            })
            .collect();
        of_lead.sort_unstable_by_key(|e| e.at);
        if !of_lead.is_empty() {
            events.insert(lead_id, of_lead);
        }
    }
    let sourced: HashMap<i64, i64> = reports::sourced_counts(conn)?
        .into_iter()
        .filter_map(|(c, n)| c.map(|c| (c, n)))
        .collect();
    let costs = costs_of(conn, &leads)?;
    Ok(MqlInputs {
        events,
        leads,
        sourced,
        costs,
    })
}

/// What leakage of a period reads, from the journey index (the costs from the database).
pub fn indexed_mqls(
    index: &JourneyIndex,
    conn: &mut crate::db::AnyConnection,
    period: Period,
) -> AppResult<MqlInputs> {
    let mut inputs = index.read(|j| mqls_in(j, period))?;
    with_costs(&mut inputs, index, conn)?;
    Ok(inputs)
}

/// The costs of the campaigns that sourced the leads, from the campaign data read beside the
/// index (only when a campaign or a cost changed), after its lock is let go.
pub fn with_costs(
    inputs: &mut MqlInputs,
    index: &JourneyIndex,
    conn: &mut crate::db::AnyConnection,
) -> AppResult<()> {
    let data = index.campaign_data(conn)?;
    inputs.costs = inputs
        .leads
        .values()
        .filter_map(|l| l.source_campaign_id)
        .filter_map(|c| Some((c, data.costs.get(&c)?.clone())))
        .collect();
    Ok(())
}

/// A lead's moves into MQL in a period with their decisions, and what leakage needs of it
/// (None: no such move).
fn mqls_of(id: i64, l: &LeadJourney, period: Period) -> Option<(Vec<MqlEvent>, MqlLead)> {
    let mut events: Vec<MqlEvent> = l
        .mqls
        .iter()
        .filter(|m| period.holds(m.at))
        .map(|m| MqlEvent {
            lead_id: id,
            at: m.at,
            decision: m.decision,
        })
        .collect();
    if events.is_empty() {
        return None;
    }
    events.sort_unstable_by_key(|e| e.at);
    let lead = MqlLead {
        external_id: l.external_id.clone(),
        source_campaign_id: l.source,
        owner_id: l.owner,
    };
    Some((events, lead))
}

/// Leakage's MQL moves, leads and source counts of a period, from the index (no costs).
fn mqls_in(j: &Journeys, period: Period) -> MqlInputs {
    let mut ids: Vec<i64> = j
        .by_mql
        .range(super::index::micros_range(period.start(), period.end()))
        .map(|(_, id)| *id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut inputs = MqlInputs {
        sourced: j.sourced.clone(),
        ..MqlInputs::default()
    };
    for id in ids {
        if let Some((events, lead)) = j.lead(id).and_then(|l| mqls_of(id, l, period)) {
            inputs.events.insert(id, events);
            inputs.leads.insert(id, lead);
        }
    }
    inputs
}

/// Brings leakage's inputs of a period read at index version `since` to the index's version
/// (all but the costs, see `with_costs`): each lead changed since leaves them and comes back
/// as it is now; the source counts are taken again. False when the journal no longer reaches
/// back to `since`.
pub fn advance_mqls(m: &mut MqlInputs, j: &Journeys, period: Period, since: i64) -> bool {
    let Some(changed) = j.journal.since(since) else {
        return false;
    };
    for id in changed.leads.keys() {
        m.events.remove(id);
        m.leads.remove(id);
        if let Some((events, lead)) = j.lead(*id).and_then(|l| mqls_of(*id, l, period)) {
            m.events.insert(*id, events);
            m.leads.insert(*id, lead);
        }
    }
    m.sourced.clone_from(&j.sourced);
    true
}

/// The rows of a page of leaked leads (`ids` from `Leakage::leaked_leads`), in that order.
pub async fn leaked_page(ctx: &Ctx, ids: Vec<i64>) -> AppResult<Vec<LeadRow>> {
    ctx.require_read(Read::Leakage, "leakage")?;
    let wanted = ids.clone();
    let mut rows = ctx
        .db
        .run_on(ctx.reports.index.is_ready(), move |conn| {
            Ok::<_, AppError>(leads_repo::by_ids(conn, &wanted)?)
        })
        .await?;
    Ok(ids.iter().filter_map(|id| rows.remove(id)).collect())
}

pub async fn leakage(
    ctx: &Ctx,
    period: Period,
    sla_hours: i32,
    as_of: Option<DateTime<Utc>>,
) -> AppResult<Leakage> {
    ctx.require_read(Read::Leakage, "leakage")?;
    // What "own" leakage is comes from the policy: the leads own campaigns sourced
    // (marketing), or own leads (sales).
    let scope = ctx.read_scope(Read::Leakage);
    let sales_own = scope == Scope::Own(Owned::Leads);
    let campaigns_own = scope == Scope::Own(Owned::Campaigns);
    if sla_hours < 0 {
        return Err(AppError::BadInput("slaHours must not be negative".into()));
    }
    let as_of = as_of.unwrap_or_else(Utc::now);
    let ctx2 = ctx.clone();
    let primary = ctx.reports.index.is_ready();
    ctx.db
        .run_on(primary, move |conn| {
            let sla = Duration::hours(i64::from(sla_hours));
            let until = period.end().min(as_of + Duration::microseconds(1));
            let own = if campaigns_own {
                Some(owned_campaign_ids(&ctx2, conn)?)
            } else {
                None
            };
            let inputs =
                period_inputs(&ctx2, conn, primary, period, |conn| load_mqls(conn, period))?;
            let visible = |lead: &MqlLead| {
                if sales_own {
                    return ctx2.owns(lead.owner_id);
                }
                match &own {
                    None => true,
                    Some(s) => lead.source_campaign_id.is_some_and(|c| s.contains(&c)),
                }
            };
            let mut out = Leakage {
                period,
                sla_hours,
                as_of,
                mqls: 0,
                decided_within_sla: 0,
                decided_late: 0,
                undecided: 0,
                leaked: 0,
                recycled_by_sales: 0,
                disqualified_by_sales: 0,
                wasted_spend: 0,
                leaked_leads: vec![],
            };
            let mut leaked: HashSet<i64> = HashSet::new();
            for e in inputs.events.values().flatten().filter(|e| e.at < until) {
                let Some(lead) = inputs.leads.get(&e.lead_id) else {
                    continue;
                };
                if !visible(lead) {
                    continue;
                }
                out.mqls += 1;
                match e.decision.filter(|(at, _)| *at <= as_of) {
                    Some((decided, stage)) => {
                        if decided - e.at <= sla {
                            out.decided_within_sla += 1;
                        } else {
                            out.decided_late += 1;
                            out.leaked += 1;
                            leaked.insert(e.lead_id);
                        }
                        match stage {
                            "RECYCLED" => out.recycled_by_sales += 1,
                            "DISQUALIFIED" => out.disqualified_by_sales += 1,
                            _ => {}
                        }
                    }
                    None => {
                        out.undecided += 1;
                        if as_of - e.at > sla {
                            out.leaked += 1;
                            leaked.insert(e.lead_id);
                        }
                    }
                }
            }
            out.wasted_spend = wasted_spend(&inputs, &leaked, as_of)?;
            let mut list: Vec<(CompactString, i64)> = leaked
                .iter()
                .filter_map(|id| Some((inputs.leads.get(id)?.external_id.clone(), *id)))
                .collect();
            list.sort_unstable();
            out.leaked_leads = list;
            Ok(out)
        })
        .await
}

/// Σ over leaked leads of their source campaign's cost per lead (cost up to asOf / leads it
/// sourced), summed exactly as fractions and rounded half to even once, at the end.
fn wasted_spend(inputs: &MqlInputs, leaked: &HashSet<i64>, as_of: DateTime<Utc>) -> AppResult<i64> {
    let mut per_campaign: HashMap<i64, u128> = HashMap::new();
    for id in leaked {
        if let Some(c) = inputs.leads.get(id).and_then(|l| l.source_campaign_id) {
            *per_campaign.entry(c).or_insert(0) += 1;
        }
    }
    let mut total = ExactSum::default();
    for (c, leaked_here) in per_campaign {
        // "Up to asOf": a cost counts from the start of the day it was incurred.
        let mut cost: u128 = 0;
        for (day, amount) in inputs.costs.get(&c).into_iter().flatten() {
            if *day <= as_of.date_naive() {
                let amount = u128::try_from(*amount)
                    .map_err(|_| AppError::Internal(format!("campaign {c} has a negative cost")))?;
                cost = cost
                    .checked_add(amount)
                    .ok_or_else(|| AppError::overflow("wasted spend"))?;
            }
        }
        // The counts and the leads are read by separate statements: a touchpoint written in
        // between can move a lead's source, so never divide by fewer leads than leaked here.
        let sourced = u128::from(inputs.sourced.get(&c).copied().unwrap_or(0).unsigned_abs())
            .max(leaked_here);
        let numerator = cost
            .checked_mul(leaked_here)
            .ok_or_else(|| AppError::overflow("wasted spend"))?;
        total.add(Fraction::new(numerator, sourced));
    }
    total
        .times(1)
        .ok_or_else(|| AppError::overflow("wasted spend"))
}

#[derive(Debug, Clone)]
pub struct Calibration {
    pub rule: crate::repo::scoring::RuleRow,
    pub matched: usize,
    pub matched_won: usize,
    pub win_rate_matched: Option<f64>,
    pub win_rate_unmatched: Option<f64>,
    pub lift: Option<f64>,
}

/// Per rule: how the leads created in the period that matched it were won, against the rest.
pub async fn calibration(ctx: &Ctx, period: Period) -> AppResult<Vec<Calibration>> {
    ctx.require_read(Read::Campaigns, "scoring calibration")?;
    ctx.db
        .run(move |conn| {
            let rows = crate::repo::scoring::all(conn)?;
            let cohort =
                reports::cohort(conn, period.start().naive_utc(), period.end().naive_utc())?;
            let ids: Vec<i64> = cohort.iter().map(|l| l.id).collect();
            let mut attributes: HashMap<i64, Vec<(String, String)>> = HashMap::new();
            for a in leads_repo::attributes_of(conn, &ids)? {
                attributes
                    .entry(a.lead_id)
                    .or_default()
                    .push((a.key, a.value));
            }
            let mut kinds: HashMap<i64, Vec<String>> = HashMap::new();
            for t in leads_repo::touchpoints_of(conn, &ids)? {
                kinds.entry(t.lead_id).or_default().push(t.kind);
            }
            let mut out = Vec::new();
            for row in rows {
                let rule = super::scoring::to_rule(&row)?;
                let (mut matched, mut matched_won, mut other, mut other_won) = (0, 0, 0, 0);
                for lead in &cohort {
                    let profile = super::scoring::profile(
                        lead,
                        attributes.get(&lead.id).map(Vec::as_slice).unwrap_or(&[]),
                    );
                    let k: Vec<&str> = kinds
                        .get(&lead.id)
                        .map(|v| v.iter().map(String::as_str).collect())
                        .unwrap_or_default();
                    let won = lead.won_at.is_some();
                    if scoring::points(&rule, &profile, &k) != 0 {
                        matched += 1;
                        matched_won += usize::from(won);
                    } else {
                        other += 1;
                        other_won += usize::from(won);
                    }
                }
                let rate = |w: usize, n: usize| (n > 0).then(|| w as f64 / n as f64);
                let (m, u) = (rate(matched_won, matched), rate(other_won, other));
                out.push(Calibration {
                    rule: row,
                    matched,
                    matched_won,
                    win_rate_matched: m,
                    win_rate_unmatched: u,
                    lift: match (m, u) {
                        (Some(m), Some(u)) if u > 0.0 => Some(m / u),
                        _ => None,
                    },
                });
            }
            Ok(out)
        })
        .await
}
