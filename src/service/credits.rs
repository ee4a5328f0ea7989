//! The credit fact table (SPEC §11): one row per (conversion or revenue event, eligible touch),
//! what a warehouse joins on, summing exactly to the attribution report of the same arguments.
//!
//! A table is made in two steps. `prepare` takes, under one read of the journey index, what
//! every conversion of the stage and period needs (each lead's touches are shared with the
//! index, not copied) and the data-driven model's chain at that same version, so the table is
//! one consistent snapshot however long it takes to write out. `CreditExport::rows` then makes
//! the rows conversion by conversion: memory holds the conversions, never the rows.
//!
//! Weights are exact fractions; the table carries each one in billionths of a conversion,
//! allocated by largest remainder like money, so a conversion's weights sum to exactly 1 and
//! the table's weights to exactly the report's `totalConversions`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use compact_str::CompactString;

use super::attribution::{
    chain, check_params, check_stage, data_effects, eligible_span, game, indexed_markov_paths,
    mapped_leads, merge_touches, visible_campaigns, ReportQuery, View,
};
use super::index::{micros_range, CampaignData, JourneyIndex, Journeys};
use super::{utc, AppError, AppResult, Ctx};
use crate::auth::{Read, Scope};
use crate::domain::account::Mapping;
use crate::domain::allocation::allocate;
use crate::domain::attribution::{eligible_run, weights, Conversion, Model, Params, Touch};
use crate::domain::deal::DealStatus;
use crate::domain::markov::ChainCounts;
use crate::domain::period::Period;
use crate::domain::stage::LeadStage;
use crate::repo::opportunities::{OpportunityRow, RevenueRow};

/// Billionths of a conversion: the unit of the table's `weight`.
pub const WEIGHT_UNITS: i64 = 1_000_000_000;
/// Fraction digits of `weight`.
pub const WEIGHT_DIGITS: u32 = 9;

/// What a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// A lead first reaching INQUIRY, MQL, SAL or SQL; the conversion id is the lead's.
    #[default]
    Lead,
    /// An opportunity created (OPPORTUNITY, with its pipeline) or won (WON, no money).
    Opportunity,
    /// A revenue event booked (WON): money only, weight 0.
    Revenue,
    /// For a caller who sees only some campaigns: what went to all the others, aggregated.
    Other,
    /// For such a caller: every unattributed conversion and revenue event, aggregated.
    Unattributed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Lead => "LEAD",
            Kind::Opportunity => "OPPORTUNITY",
            Kind::Revenue => "REVENUE",
            Kind::Other => "OTHER",
            Kind::Unattributed => "UNATTRIBUTED",
        }
    }
}

/// One row of the table. `touchpoint` is None on an unattributed row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditRow {
    pub kind: Kind,
    pub conversion_id: Option<String>,
    pub revenue_event: Option<String>,
    pub converted_at: Option<DateTime<Utc>>,
    pub booked_on: Option<NaiveDate>,
    pub lead: Option<String>,
    pub account: Option<String>,
    pub opportunity: Option<String>,
    pub touchpoint: Option<String>,
    pub touched_at: Option<DateTime<Utc>>,
    pub campaign: Option<String>,
    pub channel: Option<String>,
    /// Conversions credited, in billionths (`WEIGHT_UNITS`).
    pub weight: i64,
    /// Money credited, in minor units of the reporting currency.
    pub amount: i64,
}

/// What the rows added up to: the report's totals, for the command line to print.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub rows: u64,
    /// Billionths of a conversion.
    pub weight: i64,
    pub amount: i64,
}

/// A lead whose touches a conversion reads: its externalId, account and touches (shared with
/// the journey index).
#[derive(Debug, Clone)]
struct Source {
    external_id: CompactString,
    account: Option<i64>,
    touches: Arc<[Touch]>,
}

#[derive(Debug)]
struct LeadJob {
    lead: Source,
    conversion: Conversion,
}

#[derive(Debug)]
struct DealJob {
    row: OpportunityRow,
    /// It converts in the period (created at OPPORTUNITY, won at WON).
    counted: bool,
    /// Revenue booked in the period (WON).
    revenue: Vec<RevenueRow>,
    conversion: Conversion,
    /// Whose touches it credits, and the bound F (SPEC §8).
    sources: Vec<Source>,
    floor: Option<DateTime<Utc>>,
    /// Its primary contact: the lead of an unattributed row.
    primary: Option<Source>,
}

#[derive(Debug)]
enum Job {
    Lead(LeadJob),
    Deal(Box<DealJob>),
}

/// What a data-driven model's weights come from, taken with the snapshot.
enum Data {
    None,
    Chain(Arc<ChainCounts>),
    Game(Arc<crate::domain::shapley::PathSets>),
    Effects(HashMap<i64, f64>),
}

/// A credit fact table ready to be written out: a snapshot of the conversions of one stage and
/// period, the model's weights, and what the caller may see.
pub struct CreditExport {
    /// The model as the table names it: `W_SHAPED`, `MARKOV:order2`, `CUSTOM:key@3`.
    pub model_label: String,
    pub stage: LeadStage,
    pub period: Period,
    pub currency: String,
    model: Model,
    params: Params,
    lookback: i64,
    effects: HashMap<i64, f64>,
    /// (externalId, channel) by campaign id.
    campaigns: HashMap<i64, (String, String)>,
    /// None: the caller sees every campaign.
    visible: Option<HashSet<i64>>,
    /// The caller may read opportunities and revenue (their ids are shown).
    deals_visible: bool,
    accounts: Arc<HashMap<i64, String>>,
    jobs: Vec<Job>,
}

fn source(j: &Journeys, id: i64) -> Option<Source> {
    let lead = j.lead(id)?;
    Some(Source {
        external_id: lead.external_id.clone(),
        account: lead.account,
        touches: lead.touches.clone(),
    })
}

/// Every conversion of the stage and period, as `indexed_tally` credits them: leads in order of
/// reaching the stage, deals in order of converting.
fn snapshot(j: &Journeys, stage: LeadStage, period: Period, mapping: Mapping) -> Vec<Job> {
    match stage {
        LeadStage::Opportunity | LeadStage::Won => {
            let view = View::now(j);
            let mut jobs: Vec<DealJob> = Vec::new();
            for deal in j.deals.values() {
                let row = &deal.row;
                let closed = utc(row.closed_at.unwrap_or(row.created_at));
                let (at, won, counted) = match stage {
                    LeadStage::Opportunity => (utc(row.created_at), false, true),
                    _ => (
                        closed,
                        true,
                        row.status == DealStatus::Won.as_str()
                            && row.closed_at.is_some_and(|t| period.holds(utc(t))),
                    ),
                };
                let counted = counted && period.holds(at);
                let revenue: Vec<RevenueRow> = deal
                    .revenue
                    .iter()
                    .filter(|r| stage == LeadStage::Won && period.holds_day(r.booked_on))
                    .cloned()
                    .collect();
                if !counted && revenue.is_empty() {
                    continue;
                }
                let (leads, floor) = mapped_leads(&view, deal, mapping);
                jobs.push(DealJob {
                    row: row.clone(),
                    counted,
                    revenue,
                    conversion: Conversion {
                        at,
                        mql_at: j.lead(row.primary_contact_id).and_then(|l| l.reach[1]),
                        opportunity_created_at: Some(utc(row.created_at)),
                        won,
                    },
                    sources: leads.iter().filter_map(|id| source(j, *id)).collect(),
                    floor,
                    primary: source(j, row.primary_contact_id),
                });
            }
            jobs.sort_by_key(|d| (d.conversion.at, d.row.id));
            jobs.into_iter().map(|d| Job::Deal(Box::new(d))).collect()
        }
        stage => {
            let rank = stage.funnel_rank().unwrap_or(0);
            j.by_reach
                .get(rank)
                .into_iter()
                .flat_map(|o| o.range(micros_range(period.start(), period.end())))
                .filter_map(|(_, id)| {
                    let lead = j.lead(*id)?;
                    let at = lead.reach.get(rank).copied().flatten()?;
                    if !period.holds(at) {
                        return None;
                    }
                    Some(Job::Lead(LeadJob {
                        lead: source(j, *id)?,
                        conversion: Conversion {
                            at,
                            mql_at: lead.reach[1],
                            opportunity_created_at: None,
                            won: false,
                        },
                    }))
                })
                .collect()
        }
    }
}

/// The table of `query` (its grouping and segment do not apply: a row is one credit) for the
/// caller, under the same rules as the attribution report. `model_label` names the model.
pub async fn prepare(
    ctx: &Ctx,
    query: ReportQuery,
    model_label: String,
) -> AppResult<CreditExport> {
    ctx.require_read(Read::Campaigns, "the credit fact table")?;
    check_stage(query.stage)?;
    check_params(query.half_life_days, query.lookback_days)?;
    let ReportQuery {
        model,
        stage,
        period,
        lookback_days: lookback,
        mapping,
        ..
    } = query;
    let cache = ctx.reports.clone();
    let index = cache.index.clone();
    let primary = index.is_ready();
    let (jobs, data, campaigns, accounts) = ctx
        .db
        .run_on(primary, move |conn| -> AppResult<_> {
            if primary && index.current(conn)? {
                // One read: the conversions and the chain at one version.
                let (jobs, data) = index.read(|j| {
                    let data = match model {
                        Model::Shapley => Data::Game(game(&cache, j, stage, period, lookback)),
                        Model::Markov(order) => {
                            Data::Chain(chain(&cache, j, stage, period, lookback, order))
                        }
                        _ => Data::None,
                    };
                    (snapshot(j, stage, period, mapping), data)
                })?;
                // Read after: every campaign and account the snapshot names is in them.
                let campaigns = index.campaign_data(conn)?;
                let accounts = index.account_keys(conn, None)?;
                return Ok((jobs, data, campaigns, accounts));
            }
            // The index is loading: the journeys read from the database for this table.
            let campaigns = Arc::new(CampaignData::read(conn)?);
            let accounts = Arc::new(super::index::read_account_keys(conn, None)?);
            let j = JourneyIndex::rebuilt(conn)?;
            let data = if model.data_driven() {
                let paths = indexed_markov_paths(&j, stage, period, lookback);
                Data::Effects(data_effects(model, &paths, &campaigns.campaigns)?)
            } else {
                Data::None
            };
            Ok((
                snapshot(&j, stage, period, mapping),
                data,
                campaigns,
                accounts,
            ))
        })
        .await?;
    let effects = match data {
        Data::None => HashMap::new(),
        Data::Effects(e) => e,
        Data::Chain(counts) => tokio::task::spawn_blocking(move || counts.removal_effects())
            .await
            .map_err(|e| AppError::Internal(format!("the chain's solve failed: {e}")))?,
        Data::Game(sets) => {
            let channel_of: HashMap<i64, String> = campaigns
                .campaigns
                .iter()
                .map(|c| (c.id, c.channel.clone()))
                .collect();
            sets.effects(&channel_of).map_err(AppError::BadInput)?.0
        }
    };
    let visible = match ctx.read_scope(Read::Campaigns) {
        Scope::All => None,
        _ => Some(visible_campaigns(ctx, &campaigns.campaigns)?),
    };
    Ok(CreditExport {
        model_label,
        stage,
        period,
        currency: ctx.currency.clone(),
        model,
        params: Params {
            half_life_days: query.half_life_days,
        },
        lookback,
        effects,
        campaigns: campaigns
            .campaigns
            .iter()
            .map(|c| (c.id, (c.external_id.clone(), c.channel.clone())))
            .collect(),
        visible,
        deals_visible: ctx.read_scope(Read::Opportunities) != Scope::None,
        accounts,
        jobs,
    })
}

fn overflow() -> std::io::Error {
    std::io::Error::other("a credited figure is out of range")
}

fn plus(a: i64, b: i64) -> std::io::Result<i64> {
    a.checked_add(b).ok_or_else(overflow)
}

/// One conversion (or revenue event) on its way into rows.
struct Credited<'a> {
    kind: Kind,
    base: CreditRow,
    touches: &'a [Touch],
    /// Which source each touch is of.
    of: &'a [usize],
    sources: &'a [Source],
    /// The lead of an unattributed row.
    unattributed_lead: Option<&'a Source>,
    /// Conversions counted (billionths to split: `WEIGHT_UNITS` or 0) and money.
    weight: i64,
    amount: i64,
}

/// What a caller who sees only some campaigns gets aggregated.
#[derive(Default)]
struct Aggregates {
    other: Totals,
    unattributed: Totals,
}

impl CreditExport {
    /// How many conversions the table reads (its rows are at least as many, one per credit).
    pub fn conversions(&self) -> usize {
        self.jobs.len()
    }

    /// Makes every row in order and hands each to `each`; stops at the first error `each`
    /// returns. Returns what the rows add up to.
    pub fn rows(
        &self,
        mut each: impl FnMut(CreditRow) -> std::io::Result<()>,
    ) -> std::io::Result<Totals> {
        let mut totals = Totals::default();
        let mut aggregates = Aggregates::default();
        let mut emit = |row: CreditRow, totals: &mut Totals| -> std::io::Result<()> {
            totals.rows += 1;
            totals.weight = plus(totals.weight, row.weight)?;
            totals.amount = plus(totals.amount, row.amount)?;
            each(row)
        };
        for job in &self.jobs {
            match job {
                Job::Lead(l) => {
                    let touches = eligible_run(&l.lead.touches, l.conversion.at, self.lookback);
                    let of = vec![0; touches.len()];
                    let c = Credited {
                        kind: Kind::Lead,
                        base: CreditRow {
                            kind: Kind::Lead,
                            conversion_id: Some(l.lead.external_id.to_string()),
                            converted_at: Some(l.conversion.at),
                            ..CreditRow::default()
                        },
                        touches,
                        of: &of,
                        sources: std::slice::from_ref(&l.lead),
                        unattributed_lead: Some(&l.lead),
                        weight: WEIGHT_UNITS,
                        amount: 0,
                    };
                    self.credit(&c, &l.conversion, &mut aggregates, &mut totals, &mut emit)?;
                }
                Job::Deal(d) => {
                    let merged = merge_touches(
                        d.sources
                            .iter()
                            .enumerate()
                            .map(|(i, s)| (&s.touches[..], i)),
                    );
                    let (all, of): (Vec<Touch>, Vec<usize>) = merged.into_iter().unzip();
                    let span = eligible_span(&all, d.conversion.at, self.lookback, d.floor);
                    let (touches, of) = (&all[span.clone()], &of[span]);
                    let deal_id = self.deals_visible.then(|| d.row.external_id.clone());
                    let base = CreditRow {
                        kind: Kind::Opportunity,
                        conversion_id: deal_id.clone(),
                        converted_at: Some(d.conversion.at),
                        opportunity: deal_id,
                        ..CreditRow::default()
                    };
                    if d.counted {
                        let c = Credited {
                            kind: Kind::Opportunity,
                            base: base.clone(),
                            touches,
                            of,
                            sources: &d.sources,
                            unattributed_lead: d.primary.as_ref(),
                            weight: WEIGHT_UNITS,
                            amount: if d.conversion.won {
                                0
                            } else {
                                d.row.amount_cents
                            },
                        };
                        self.credit(&c, &d.conversion, &mut aggregates, &mut totals, &mut emit)?;
                    }
                    for r in &d.revenue {
                        let event = self.deals_visible.then(|| r.external_id.clone());
                        let c = Credited {
                            kind: Kind::Revenue,
                            base: CreditRow {
                                kind: Kind::Revenue,
                                conversion_id: event.clone(),
                                revenue_event: event,
                                booked_on: Some(r.booked_on),
                                ..base.clone()
                            },
                            touches,
                            of,
                            sources: &d.sources,
                            unattributed_lead: d.primary.as_ref(),
                            weight: 0,
                            amount: r.amount_cents,
                        };
                        self.credit(&c, &d.conversion, &mut aggregates, &mut totals, &mut emit)?;
                    }
                }
            }
        }
        if self.visible.is_some() {
            for (kind, sum) in [
                (Kind::Other, aggregates.other),
                (Kind::Unattributed, aggregates.unattributed),
            ] {
                if sum.rows > 0 {
                    emit(
                        CreditRow {
                            kind,
                            weight: sum.weight,
                            amount: sum.amount,
                            ..CreditRow::default()
                        },
                        &mut totals,
                    )?;
                }
            }
        }
        Ok(totals)
    }

    fn account(&self, source: &Source) -> Option<String> {
        source.account.and_then(|a| self.accounts.get(&a).cloned())
    }

    /// The rows of one conversion or revenue event: one per eligible touch with its weight and
    /// share of the money (largest remainder, as the report splits it), or one unattributed.
    fn credit(
        &self,
        c: &Credited,
        conversion: &Conversion,
        aggregates: &mut Aggregates,
        totals: &mut Totals,
        emit: &mut impl FnMut(CreditRow, &mut Totals) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if c.touches.is_empty() {
            if self.visible.is_some() {
                let sum = &mut aggregates.unattributed;
                sum.rows += 1;
                sum.weight = plus(sum.weight, c.weight)?;
                sum.amount = plus(sum.amount, c.amount)?;
                return Ok(());
            }
            return emit(
                CreditRow {
                    lead: c.unattributed_lead.map(|l| l.external_id.to_string()),
                    account: c.unattributed_lead.and_then(|l| self.account(l)),
                    weight: c.weight,
                    amount: c.amount,
                    ..c.base.clone()
                },
                totals,
            );
        }
        let w = weights(
            self.model,
            conversion,
            c.touches,
            self.params,
            &self.effects,
        );
        let units = allocate(c.weight, &w);
        let parts = allocate(c.amount, &w);
        for (i, t) in c.touches.iter().enumerate() {
            let (weight, amount) = (units[i], parts[i]);
            if let Some(visible) = &self.visible {
                if !visible.contains(&t.campaign_id) {
                    let sum = &mut aggregates.other;
                    sum.rows += 1;
                    sum.weight = plus(sum.weight, weight)?;
                    sum.amount = plus(sum.amount, amount)?;
                    continue;
                }
            }
            let lead = c.of.get(i).and_then(|s| c.sources.get(*s));
            let campaign = self.campaigns.get(&t.campaign_id);
            emit(
                CreditRow {
                    kind: c.kind,
                    lead: lead.map(|l| l.external_id.to_string()),
                    account: lead.and_then(|l| self.account(l)),
                    touchpoint: Some(t.external_id.to_string()),
                    touched_at: Some(t.at),
                    campaign: campaign.map(|c| c.0.clone()),
                    channel: campaign.map(|c| c.1.clone()),
                    weight,
                    amount,
                    ..c.base.clone()
                },
                totals,
            )?;
        }
        Ok(())
    }
}
