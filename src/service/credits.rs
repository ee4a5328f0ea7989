//! The credit fact table (SPEC §11): one row per (conversion or revenue event, eligible touch),
//! what a warehouse joins on, summing exactly to the attribution report of the same arguments.
//!
//! A table is made in two steps. `prepare` takes, under one read of the journey index, what
//! every conversion of the stage and period needs (each lead's touches are shared with the
//! index, not copied) and the data-driven model's chain at that same version, so the table is
//! one consistent snapshot however long it takes to write out. `CreditExport::rows` then makes
//! the rows conversion by conversion: memory holds the conversions, never the rows.
//!
//! A caller who sees only some campaigns (a MARKETER) gets the rows of own campaigns, the rest
//! summed into one `OTHER` and one `UNATTRIBUTED` row; as such a caller may not read deals, the
//! OPPORTUNITY and WON rows of own campaigns are summed per campaign too (a row per touch would
//! give away each deal's amount through its weight), leaving what the report shows.
//!
//! Weights are exact fractions; the table carries each one in billionths of a conversion,
//! allocated by largest remainder like money, so a conversion's weights sum to exactly 1 and
//! the table's weights to exactly the report's `totalConversions`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use compact_str::CompactString;

use super::attribution::{
    booked_in, chain, check_params, check_stage, data_effects, deal_conversion, eligible_span,
    game, indexed_markov_paths, lead_conversion, mapped_leads, merge_touches, visible_campaigns,
    DealConversion, ReportQuery, View,
};
use super::index::{micros_range, CampaignData, JourneyIndex, Journeys, LeadJourney};
use super::{AppError, AppResult, Ctx};
use crate::auth::{Read, Scope};
use crate::domain::account::Mapping;
use crate::domain::allocation::allocate;
use crate::domain::attribution::{eligible_run, weights, Conversion, Model, Params, Touch};
use crate::domain::markov::ChainCounts;
use crate::domain::period::Period;
use crate::domain::stage::LeadStage;
use crate::repo::opportunities::{OpportunityRow, RevenueRow};

/// Billionths of a conversion: the unit of the table's `weight`.
pub const WEIGHT_UNITS: i64 = 1_000_000_000;
/// Fraction digits of `weight`.
pub const WEIGHT_DIGITS: u32 = 9;

/// What a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Kind {
    /// A lead first reaching INQUIRY, MQL, SAL or SQL; the conversion id is the lead's.
    #[default]
    Lead,
    /// An opportunity created (OPPORTUNITY, with its pipeline) or won (WON, no money). For a
    /// caller who may not read deals, one row per campaign summing its credit.
    Opportunity,
    /// A revenue event booked (WON): money only, weight 0. Summed per campaign likewise.
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
/// the journey index). Kept once per lead, however many conversions read it.
#[derive(Debug, Clone)]
struct Source {
    external_id: CompactString,
    account: Option<i64>,
    touches: Arc<[Touch]>,
}

#[derive(Debug)]
struct DealJob {
    row: OpportunityRow,
    /// It converts in the period (created at OPPORTUNITY, won at WON).
    counted: bool,
    /// Revenue booked in the period (WON).
    revenue: Vec<RevenueRow>,
    conversion: Conversion,
    /// The leads whose touches it credits (keys of `Snapshot::leads`), and the bound F
    /// (SPEC §8).
    leads: Vec<i64>,
    floor: Option<DateTime<Utc>>,
}

#[derive(Debug)]
enum Job {
    /// A lead converting (each at most once per stage: kept here, not in `Snapshot::leads`).
    Lead(Source, Conversion),
    Deal(Box<DealJob>),
}

/// The conversions of a stage and period, and every lead the deals among them read (kept once
/// however many deals read it).
#[derive(Debug, Default)]
struct Snapshot {
    jobs: Vec<Job>,
    leads: HashMap<i64, Source>,
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
    /// The caller may read opportunities and revenue: deal rows are one per credit, with
    /// their ids. Else (a MARKETER) they are summed per campaign, as the report shows them.
    deals_visible: bool,
    accounts: Arc<HashMap<i64, String>>,
    snapshot: Snapshot,
}

fn source(lead: &LeadJourney) -> Source {
    Source {
        external_id: lead.external_id.clone(),
        account: lead.account,
        touches: lead.touches.clone(),
    }
}

impl Snapshot {
    fn keep(&mut self, j: &Journeys, id: i64) {
        if self.leads.contains_key(&id) {
            return;
        }
        if let Some(lead) = j.lead(id) {
            self.leads.insert(id, source(lead));
        }
    }
}

/// Every conversion of the stage and period, as `indexed_tally` credits them: leads in order of
/// reaching the stage, deals in order of converting.
fn snapshot(j: &Journeys, stage: LeadStage, period: Period, mapping: Mapping) -> Snapshot {
    let mut snap = Snapshot::default();
    match stage {
        LeadStage::Opportunity | LeadStage::Won => {
            let view = View::now(j);
            let mut deals: Vec<DealJob> = Vec::new();
            for deal in j.deals.values() {
                let Some(DealConversion {
                    conversion,
                    counted,
                }) = deal_conversion(deal, &view, stage, period)
                else {
                    continue;
                };
                let (mut leads, floor) = mapped_leads(&view, deal, mapping);
                leads.retain(|id| j.lead(*id).is_some());
                for id in leads.iter().chain([&deal.row.primary_contact_id]) {
                    snap.keep(j, *id);
                }
                deals.push(DealJob {
                    row: deal.row.clone(),
                    counted,
                    revenue: deal
                        .revenue
                        .iter()
                        .filter(|r| booked_in(r, stage, period))
                        .cloned()
                        .collect(),
                    conversion,
                    leads,
                    floor,
                });
            }
            deals.sort_by_key(|d| (d.conversion.at, d.row.id));
            snap.jobs = deals.into_iter().map(|d| Job::Deal(Box::new(d))).collect();
        }
        stage => {
            let rank = stage.funnel_rank().unwrap_or(0);
            let ids: Vec<i64> = j
                .by_reach
                .get(rank)
                .into_iter()
                .flat_map(|o| o.range(micros_range(period.start(), period.end())))
                .map(|(_, id)| *id)
                .collect();
            for id in ids {
                let Some(lead) = j.lead(id) else {
                    continue;
                };
                if let Some(conversion) = lead_conversion(lead, rank, period) {
                    snap.jobs.push(Job::Lead(source(lead), conversion));
                }
            }
        }
    }
    snap
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
    let (snap, data, campaigns, accounts) = ctx
        .db
        .run_on(primary, move |conn| -> AppResult<_> {
            if primary && index.current(conn)? {
                // One read: the conversions and the chain at one version.
                let (snap, data) = index.read(|j| {
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
                return Ok((snap, data, campaigns, accounts));
            }
            // The index is loading: the journeys read from the database for this table, then
            // the campaigns and accounts (so every one they name is there).
            let j = JourneyIndex::rebuilt(conn)?;
            let campaigns = Arc::new(CampaignData::read(conn)?);
            let accounts = Arc::new(super::index::read_account_keys(conn, None)?);
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
        snapshot: snap,
    })
}

fn overflow() -> std::io::Error {
    std::io::Error::other("a credited figure is out of range")
}

fn plus(a: i64, b: i64) -> std::io::Result<i64> {
    a.checked_add(b).ok_or_else(overflow)
}

impl Totals {
    fn add(&mut self, weight: i64, amount: i64) -> std::io::Result<()> {
        self.rows += 1;
        self.weight = plus(self.weight, weight)?;
        self.amount = plus(self.amount, amount)?;
        Ok(())
    }
}

/// One conversion (or revenue event) on its way into rows.
struct Credited<'a> {
    base: CreditRow,
    touches: &'a [Touch],
    /// The lead of each touch.
    of: &'a [&'a Source],
    /// The lead of an unattributed row.
    unattributed_lead: Option<&'a Source>,
    /// Conversions counted (billionths to split: `WEIGHT_UNITS` or 0) and money.
    weight: i64,
    amount: i64,
}

/// What a caller who may not see everything gets summed instead of row by row.
#[derive(Default)]
struct Aggregates {
    /// Credit to campaigns the caller may not see.
    other: Totals,
    unattributed: Totals,
    /// For a caller who may not read deals: deal credit per (kind, campaign).
    deals: std::collections::BTreeMap<(Kind, i64), Totals>,
}

impl CreditExport {
    /// Makes every row in order and hands each to `each`; stops at the first error `each`
    /// returns. Returns what the rows add up to.
    pub fn rows(
        &self,
        mut each: impl FnMut(CreditRow) -> std::io::Result<()>,
    ) -> std::io::Result<Totals> {
        let mut totals = Totals::default();
        let mut sums = Aggregates::default();
        let mut emit = |row: CreditRow, totals: &mut Totals| -> std::io::Result<()> {
            totals.add(row.weight, row.amount)?;
            each(row)
        };
        for job in &self.snapshot.jobs {
            match job {
                Job::Lead(lead, conversion) => {
                    let touches = eligible_run(&lead.touches, conversion.at, self.lookback);
                    let of = vec![lead; touches.len()];
                    let c = Credited {
                        base: CreditRow {
                            kind: Kind::Lead,
                            conversion_id: Some(lead.external_id.to_string()),
                            converted_at: Some(conversion.at),
                            ..CreditRow::default()
                        },
                        touches,
                        of: &of,
                        unattributed_lead: Some(lead),
                        weight: WEIGHT_UNITS,
                        amount: 0,
                    };
                    self.credit(&c, conversion, &mut sums, &mut totals, &mut emit)?;
                }
                Job::Deal(d) => {
                    let merged = merge_touches(d.leads.iter().filter_map(|id| {
                        let lead = self.snapshot.leads.get(id)?;
                        Some((&lead.touches[..], lead))
                    }));
                    let (all, of): (Vec<Touch>, Vec<&Source>) = merged.into_iter().unzip();
                    let span = eligible_span(&all, d.conversion.at, self.lookback, d.floor);
                    let (touches, of) = (&all[span.clone()], &of[span]);
                    let base = CreditRow {
                        kind: Kind::Opportunity,
                        conversion_id: Some(d.row.external_id.clone()),
                        converted_at: Some(d.conversion.at),
                        opportunity: Some(d.row.external_id.clone()),
                        ..CreditRow::default()
                    };
                    let primary = self.snapshot.leads.get(&d.row.primary_contact_id);
                    if d.counted {
                        let c = Credited {
                            base: base.clone(),
                            touches,
                            of,
                            unattributed_lead: primary,
                            weight: WEIGHT_UNITS,
                            amount: if d.conversion.won {
                                0
                            } else {
                                d.row.amount_cents
                            },
                        };
                        self.credit(&c, &d.conversion, &mut sums, &mut totals, &mut emit)?;
                    }
                    for r in &d.revenue {
                        let c = Credited {
                            base: CreditRow {
                                kind: Kind::Revenue,
                                conversion_id: Some(r.external_id.clone()),
                                revenue_event: Some(r.external_id.clone()),
                                booked_on: Some(r.booked_on),
                                ..base.clone()
                            },
                            touches,
                            of,
                            unattributed_lead: primary,
                            weight: 0,
                            amount: r.amount_cents,
                        };
                        self.credit(&c, &d.conversion, &mut sums, &mut totals, &mut emit)?;
                    }
                }
            }
        }
        // What was summed: deal credit per own campaign, then the others and the unattributed.
        for ((kind, campaign), sum) in &sums.deals {
            let names = self.campaigns.get(campaign);
            emit(
                CreditRow {
                    kind: *kind,
                    campaign: names.map(|c| c.0.clone()),
                    channel: names.map(|c| c.1.clone()),
                    weight: sum.weight,
                    amount: sum.amount,
                    ..CreditRow::default()
                },
                &mut totals,
            )?;
        }
        if self.visible.is_some() || !self.deals_visible {
            for (kind, sum) in [
                (Kind::Other, sums.other),
                (Kind::Unattributed, sums.unattributed),
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

    fn account(&self, lead: &Source) -> Option<String> {
        lead.account.and_then(|a| self.accounts.get(&a).cloned())
    }

    /// The rows of one conversion or revenue event: one per eligible touch with its weight and
    /// share of the money (largest remainder, as the report splits it), or one unattributed.
    /// For a caller who sees only some campaigns, credit to the others and unattributed credit
    /// are summed; for one who may not read deals, deal credit is summed per campaign.
    fn credit(
        &self,
        c: &Credited,
        conversion: &Conversion,
        sums: &mut Aggregates,
        totals: &mut Totals,
        emit: &mut impl FnMut(CreditRow, &mut Totals) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let is_deal = c.base.kind != Kind::Lead;
        if c.touches.is_empty() {
            if self.visible.is_some() || (is_deal && !self.deals_visible) {
                return sums.unattributed.add(c.weight, c.amount);
            }
            let lead = c.unattributed_lead;
            return emit(
                CreditRow {
                    lead: lead.map(|l| l.external_id.to_string()),
                    account: lead.and_then(|l| self.account(l)),
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
                    sums.other.add(weight, amount)?;
                    continue;
                }
            }
            if is_deal && !self.deals_visible {
                sums.deals
                    .entry((c.base.kind, t.campaign_id))
                    .or_default()
                    .add(weight, amount)?;
                continue;
            }
            let lead = c.of.get(i).copied();
            let campaign = self.campaigns.get(&t.campaign_id);
            emit(
                CreditRow {
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
