//! `funnelgraph generate`: a realistic synthetic company written straight to the database in
//! batched transactions, for benchmarks. Deterministic for a seed. `large` is 2,000 campaigns
//! over 8 channels, 1,000,000 leads, about 5,000,000 touchpoints and 100,000 opportunities,
//! dated 2025-01-01 to 2026-12-31; `medium` is a tenth, `small` a hundredth.

use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use crate::db::{write_transaction, AnyConnection, Db};
use crate::domain::currency::{Currency, Rate, Rates};
use crate::domain::stage::LeadStage::{self, *};
use crate::repo::accounts::{AccountAttributeRow, AccountRow};
use crate::repo::bulk;
use crate::repo::campaigns::{CampaignRow, CostRow};
use crate::repo::leads::{LeadRow, TouchpointRow, TransitionRow};
use crate::repo::opportunities::{OpportunityRow, RevenueRow};
use crate::repo::users::UserRow;
use crate::rng::Rng;
use crate::service::{AppError, AppResult};

/// The generated company's money in other currencies (SPEC §9): monthly rates from 2024-01 to
/// 2027-12 for three currencies (EUR, GBP, JPY, or USD in place of the reporting one), derived
/// from fixed USD rates with a small monthly swing. No random draws, so the rest of the data is
/// the same as before currencies existed.
pub struct Fx {
    pub reporting: String,
    pub foreign: Vec<Currency>,
    pub rates: Rates,
    /// (currency, first day of the month, rate) in date order, to store.
    pub rows: Vec<(String, NaiveDate, Rate)>,
}

/// USD per unit, times 10^10.
const USD_PER_UNIT: [(&str, i128); 4] = [
    ("USD", 10_000_000_000),
    ("EUR", 10_850_000_000),
    ("GBP", 12_700_000_000),
    ("JPY", 67_000_000),
];

impl Fx {
    pub fn new(reporting: &str) -> AppResult<Fx> {
        let usd = |code: &str, month: i128| -> Option<i128> {
            let (_, base) = USD_PER_UNIT.iter().find(|(c, _)| *c == code)?;
            // A swing of −1.0 % … +1.0 % by month and currency, exact to 10 digits.
            let swing = 1_000 + (month * 37 + i128::from(code.as_bytes()[0])) % 21 - 10;
            crate::domain::money::div_round_half_even(base * swing, 1_000)
        };
        let foreign: Vec<Currency> = ["EUR", "GBP", "JPY", "USD"]
            .into_iter()
            .filter(|c| *c != reporting)
            .take(3)
            .map(crate::domain::currency::lookup)
            .collect::<Result<_, _>>()?;
        let mut fx = Fx {
            reporting: reporting.to_string(),
            foreign,
            rates: Rates::default(),
            rows: Vec::new(),
        };
        let against = USD_PER_UNIT.iter().any(|(c, _)| *c == reporting);
        for c in fx.foreign.clone() {
            for month in 0..48i128 {
                let day =
                    NaiveDate::from_ymd_opt(2024 + (month / 12) as i32, (month % 12) as u32 + 1, 1)
                        .unwrap_or_default();
                // Reporting per unit = USD per unit ÷ USD per reporting unit; a reporting
                // currency with no fixed USD rate is taken as worth one USD.
                let units = match (
                    usd(c.code, month),
                    against.then(|| usd(reporting, month)).flatten(),
                ) {
                    (Some(u), Some(r)) => {
                        crate::domain::money::div_round_half_even(u * 10_000_000_000, r)
                    }
                    (Some(u), None) => Some(u),
                    _ => None,
                };
                let rate = units.and_then(Rate::from_units).ok_or_else(|| {
                    AppError::Internal(format!("no generated rate for {}", c.code))
                })?;
                fx.rates.insert(c.code, day, rate);
                fx.rows.push((c.code.to_string(), day, rate));
            }
        }
        Ok(fx)
    }

    /// `cents` of a USD-sized amount as written instead in `currency`, in its minor units
    /// (yen: 1.5 per cent; the others one for one).
    pub fn original_of(currency: &Currency, cents: i64) -> i64 {
        if currency.digits == 0 {
            cents * 3 / 2
        } else {
            cents
        }
    }

    /// `cents` of a USD-sized amount written instead in `currency`, and its reporting-currency
    /// value on `day`.
    pub fn book(&self, currency: &Currency, cents: i64, day: NaiveDate) -> (i64, i64) {
        let original = Fx::original_of(currency, cents);
        let value = self
            .rates
            .in_force(currency.code, day)
            .and_then(|(_, rate)| {
                crate::domain::currency::value_of(original, currency, rate, &self.reporting)
            })
            .map_or(original, |m| m.0);
        (original, value)
    }

    /// Writes the rates.
    pub fn store(&self, conn: &mut AnyConnection) -> AppResult<()> {
        for (code, day, rate) in &self.rows {
            crate::repo::rates::upsert(conn, code, *day, &rate.to_string())?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Small,
    Medium,
    Large,
}

impl std::str::FromStr for Scale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "small" => Ok(Scale::Small),
            "medium" => Ok(Scale::Medium),
            "large" => Ok(Scale::Large),
            other => Err(format!("unknown scale {other}: use small, medium or large")),
        }
    }
}

impl Scale {
    fn divisor(self) -> usize {
        match self {
            Scale::Small => 100,
            Scale::Medium => 10,
            Scale::Large => 1,
        }
    }
    pub fn leads(self) -> usize {
        1_000_000 / self.divisor()
    }
    pub fn campaigns(self) -> usize {
        2_000 / self.divisor()
    }
    /// About 60,000 accounts at `large` (SPEC §8).
    pub fn accounts(self) -> usize {
        60_000 / self.divisor()
    }
}

/// Accounts and which lead belongs to which: `accounts()` accounts of 1–40 leads each, sized
/// by a Pareto law cut at 40 (α = 0.3: most accounts have a few leads, a long tail has tens;
/// ~8 on average), spread over the lead ids among leads of no account (free mail) in a
/// shuffled order. Returns the accounts, their attributes, and each lead's account (index:
/// lead id − 1; 0: none).
fn accounts_plan(
    rng: &mut Rng,
    scale: Scale,
    first_rep: i64,
    reps: i64,
) -> (Vec<AccountRow>, Vec<AccountAttributeRow>, Vec<u32>) {
    const ALPHA: f64 = 0.3;
    let leads = scale.leads();
    let cut = 40f64.powf(-ALPHA);
    let mut sizes: Vec<usize> = Vec::new();
    let mut total = 0;
    for _ in 0..scale.accounts() {
        let u = (rng.below(1 << 30) + 1) as f64 / (1u64 << 30) as f64;
        let size = ((1.0 - u * (1.0 - cut)).powf(-1.0 / ALPHA).floor() as usize).clamp(1, 40);
        if total + size > leads {
            break;
        }
        total += size;
        sizes.push(size);
    }
    // Blocks: an account's leads together, or one lead of no account.
    let mut blocks: Vec<(u32, usize)> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| (i as u32 + 1, *n))
        .chain(std::iter::repeat_n((0, 1), leads - total))
        .collect();
    for i in (1..blocks.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        blocks.swap(i, j);
    }
    let mut of_lead = Vec::with_capacity(leads);
    for (account, n) in blocks {
        of_lead.extend(std::iter::repeat_n(account, n));
    }
    let mut accounts = Vec::new();
    let mut attributes = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let id = i as i64 + 1;
        accounts.push(AccountRow {
            id,
            external_id: format!("A{id:06}"),
            name: format!("Account {id}"),
            domain: Some(account_domain(id)),
            owner_id: Some(first_rep + (id % reps)),
        });
        let segment = match size {
            1..=4 => "SMB",
            5..=15 => "MID_MARKET",
            _ => "ENTERPRISE",
        };
        for (key, value) in [
            ("industry", INDUSTRIES[i % INDUSTRIES.len()].to_string()),
            ("segment", segment.to_string()),
            ("employees", (size * 250).to_string()),
        ] {
            attributes.push(AccountAttributeRow {
                account_id: id,
                key: key.into(),
                value,
            });
        }
    }
    (accounts, attributes, of_lead)
}

const INDUSTRIES: [&str; 5] = ["software", "finance", "retail", "health", "manufacturing"];
const FREE_MAIL: [&str; 3] = ["gmail.com", "outlook.com", "yahoo.com"];

fn account_domain(id: i64) -> String {
    format!("acct{id}.example.com")
}

const CHANNELS: [&str; 8] = [
    "email",
    "paid_search",
    "paid_social",
    "webinar",
    "event",
    "content",
    "partner",
    "direct_mail",
];
/// Behaviour scoring rules the data set is scored with: (externalId, touch kind, points,
/// maxPoints). Together they give at most 65 points, under the default MQL threshold of 100,
/// so the generated journeys stay as generated and every stored score is what the rules say.
const RULES: [(&str, &str, i32, i32); 3] = [
    ("gen-webinar", "webinar_attended", 10, 30),
    ("gen-content", "content_download", 5, 15),
    ("gen-event", "event_visit", 10, 20),
];

/// A lead's score under [`RULES`] from the kinds of its touches.
fn score_of<'a>(kinds: impl Iterator<Item = &'a str>) -> i32 {
    let mut counts = [0i32; RULES.len()];
    for kind in kinds {
        if let Some(i) = RULES.iter().position(|r| r.1 == kind) {
            counts[i] += 1;
        }
    }
    RULES
        .iter()
        .zip(counts)
        .map(|((_, _, points, max), n)| (points * n).min(*max))
        .sum()
}

const KINDS: [&str; 6] = [
    "form_fill",
    "email_click",
    "webinar_attended",
    "ad_click",
    "event_visit",
    "content_download",
];

#[derive(Debug, Default)]
pub struct Summary {
    pub users: usize,
    pub campaigns: usize,
    pub costs: usize,
    pub leads: usize,
    pub touchpoints: usize,
    pub transitions: usize,
    pub opportunities: usize,
    pub won: usize,
    pub revenue_events: usize,
    /// Compensation plans (every marketer is assigned one).
    pub plans: usize,
    /// Scoring rules (every lead's score is computed with them).
    pub rules: usize,
    pub accounts: usize,
    pub seconds: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows = self.users
            + self.accounts
            + self.campaigns
            + self.costs
            + self.leads
            + self.touchpoints
            + self.transitions
            + self.opportunities
            + self.revenue_events;
        write!(
            f,
            "generated {} users, {} accounts, {} campaigns, {} costs, {} leads, {} touchpoints, {} stage moves, {} opportunities ({} won), {} revenue events, {} compensation plans, {} scoring rules: {} rows in {:.1} s ({:.0} rows/s)",
            self.users, self.accounts, self.campaigns, self.costs, self.leads, self.touchpoints, self.transitions, self.opportunities,
            self.won, self.revenue_events, self.plans, self.rules, rows, self.seconds, rows as f64 / self.seconds.max(1e-9)
        )
    }
}

fn t(base: DateTime<Utc>) -> chrono::NaiveDateTime {
    base.naive_utc()
}

/// Everything generated for one chunk of leads, written in one transaction.
#[derive(Default)]
struct Chunk {
    leads: Vec<LeadRow>,
    touchpoints: Vec<TouchpointRow>,
    transitions: Vec<TransitionRow>,
    opportunities: Vec<OpportunityRow>,
    contacts: Vec<(i64, i64, i32)>,
    revenue: Vec<RevenueRow>,
}

struct Ids {
    touchpoint: i64,
    transition: i64,
    opportunity: i64,
    revenue: i64,
}

/// Writes the data set; refuses a database that already has leads.
pub fn generate(db: &Db, scale: Scale, seed: u64, progress: impl Fn(&str)) -> AppResult<Summary> {
    let started = Instant::now();
    let mut conn = db.get()?;
    let conn: &mut AnyConnection = &mut conn;
    if crate::repo::leads::count(conn, None)? > 0 {
        return Err(AppError::Conflict(
            "the database already holds leads; generate into an empty one".into(),
        ));
    }
    let mut rng = Rng::new(seed);
    let mut summary = Summary::default();
    let reporting = crate::repo::settings::get(conn, "reporting_currency")?
        .unwrap_or_else(|| "USD".to_string());
    crate::service::currency::claim(conn, &reporting)?;
    let fx = Fx::new(&reporting)?;
    let start = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let end = Utc
        .with_ymd_and_hms(2026, 12, 31, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let marketers = (scale.campaigns() / 50).max(4);
    let reps = (scale.leads() / 10_000).max(5);
    let mut users = vec![
        (1, "admin", "ADMIN"),
        (2, "finance", "FINANCE"),
        (3, "mara", "MARKETING_MANAGER"),
        (4, "ana", "ANALYST"),
        (5, "crm-sync", "INTEGRATION"),
    ]
    .into_iter()
    .map(|(id, ext, role)| UserRow {
        id,
        external_id: ext.into(),
        name: ext.into(),
        email: Some(format!("{ext}@gen.test")),
        role: role.into(),
    })
    .collect::<Vec<_>>();
    let first_marketer = 6i64;
    for m in 0..marketers as i64 {
        users.push(UserRow {
            id: first_marketer + m,
            external_id: format!("m{m}"),
            name: format!("Marketer {m}"),
            email: Some(format!("m{m}@gen.test")),
            role: "MARKETER".into(),
        });
    }
    let first_rep = first_marketer + marketers as i64;
    for r in 0..reps as i64 {
        users.push(UserRow {
            id: first_rep + r,
            external_id: format!("s{r}"),
            name: format!("Rep {r}"),
            email: Some(format!("s{r}@gen.test")),
            role: "SALES_REP".into(),
        });
    }
    let campaigns: Vec<CampaignRow> = (0..scale.campaigns())
        .map(|i| CampaignRow {
            id: i as i64 + 1,
            external_id: format!("c{i:04}"),
            name: format!("Campaign {i}"),
            channel: CHANNELS[i % CHANNELS.len()].into(),
            owner_id: Some(first_marketer + (i % marketers) as i64),
            starts_on: NaiveDate::from_ymd_opt(2025, 1, 1),
            ends_on: NaiveDate::from_ymd_opt(2026, 12, 31),
            budget_cents: Some(1_000_000 + (i as i64 * 7919) % 9_000_000),
        })
        .collect();
    let mut costs = Vec::new();
    for (i, c) in campaigns.iter().enumerate() {
        // One campaign in four spends in another currency.
        let currency = (i % 4 == 1).then(|| &fx.foreign[(i / 4) % fx.foreign.len()]);
        for month in 0..24u32 {
            let day = NaiveDate::from_ymd_opt(2025 + (month / 12) as i32, month % 12 + 1, 28)
                .unwrap_or_default();
            let cents = 10_000 + rng.below(400_000) as i64;
            let (amount_cents, currency, original_amount) = match currency {
                Some(cur) => {
                    let (original, value) = fx.book(cur, cents, day);
                    (value, Some(cur.code.to_string()), Some(original))
                }
                None => (cents, None, None),
            };
            costs.push(CostRow {
                id: costs.len() as i64 + 1,
                external_id: format!("{}-{}", c.external_id, day.format("%Y-%m")),
                campaign_id: c.id,
                amount_cents,
                incurred_on: day,
                currency,
                original_amount,
            });
        }
    }
    let (accounts, account_attributes, account_of) =
        accounts_plan(&mut rng, scale, first_rep, reps as i64);
    write_transaction(conn, |conn| -> AppResult<()> {
        bulk::users(conn, &users)?;
        bulk::accounts(conn, &accounts)?;
        bulk::account_attributes(conn, &account_attributes)?;
        fx.store(conn)?;
        bulk::campaigns(conn, &campaigns)?;
        bulk::costs(conn, &costs)?;
        for (external_id, kind, points, max) in RULES {
            crate::repo::scoring::insert(
                conn,
                &crate::repo::scoring::RuleValues {
                    external_id,
                    name: &format!("Behaviour: {kind}"),
                    kind: "BEHAVIOR",
                    field: None,
                    operator: None,
                    value: None,
                    touch_kind: Some(kind),
                    points,
                    max_points: Some(max),
                    active: true,
                },
            )?;
        }
        Ok(())
    })?;
    summary.rules = RULES.len();
    summary.accounts = accounts.len();
    summary.users = users.len();
    summary.campaigns = campaigns.len();
    summary.costs = costs.len();
    let total = scale.leads();
    let mut ids = Ids {
        touchpoint: 1,
        transition: 1,
        opportunity: 1,
        revenue: 1,
    };
    let chunk_size = 20_000;
    let mut lead_id = 1i64;
    while (lead_id as usize) <= total {
        let upto = (lead_id as usize + chunk_size - 1).min(total) as i64;
        let mut chunk = Chunk::default();
        for id in lead_id..=upto {
            let account = account_of
                .get(id as usize - 1)
                .copied()
                .filter(|a| *a > 0)
                .map(i64::from);
            journey(
                &mut rng,
                &mut chunk,
                &mut ids,
                (id, account),
                &campaigns,
                first_rep,
                reps as i64,
                start,
                end,
                &fx,
            );
        }
        write_transaction(conn, |conn| -> AppResult<()> {
            bulk::leads(conn, &chunk.leads)?;
            bulk::touchpoints(conn, &chunk.touchpoints)?;
            bulk::transitions(conn, &chunk.transitions)?;
            bulk::opportunities(conn, &chunk.opportunities)?;
            bulk::contacts(conn, &chunk.contacts)?;
            bulk::revenue(conn, &chunk.revenue)?;
            Ok(())
        })?;
        summary.leads += chunk.leads.len();
        summary.touchpoints += chunk.touchpoints.len();
        summary.transitions += chunk.transitions.len();
        summary.opportunities += chunk.opportunities.len();
        summary.won += chunk
            .opportunities
            .iter()
            .filter(|o| o.status == "WON")
            .count();
        summary.revenue_events += chunk.revenue.len();
        progress(&format!(
            "leads {:>9}/{total} ({:>3}%)  {:.1} s",
            upto,
            upto as usize * 100 / total,
            started.elapsed().as_secs_f64()
        ));
        lead_id = upto + 1;
    }
    bulk::fix_sequences(conn, db.backend())?;
    // Compensation: three plans over the attribution models finance uses, every marketer on
    // one of them for the whole range, so statements have real work at every scale.
    let plans = [
        (
            "plan-linear",
            "Linear 5%",
            "LINEAR",
            "0.05",
            None,
            None,
            2_500,
            None,
        ),
        (
            "plan-wshaped",
            "W-shaped 4% with accelerator",
            "W_SHAPED",
            "0.04",
            Some(50_000_000),
            Some("0.06"),
            1_000,
            None,
        ),
        (
            "plan-position",
            "Position-based 6%, capped",
            "POSITION_BASED",
            "0.06",
            None,
            None,
            0,
            Some(2_000_000),
        ),
    ];
    let mut plan_ids = Vec::new();
    for (ext, name, model, rate, quota, accelerator, bonus, cap) in plans {
        plan_ids.push(crate::repo::compensation::insert_plan(
            conn,
            &crate::repo::compensation::PlanValues {
                external_id: ext,
                name,
                model,
                revenue_rate: rate,
                quota_cents: quota,
                accelerator_rate: accelerator,
                qualified_lead_bonus_cents: bonus,
                cap_cents: cap,
                clawback_days: 90,
                contacts: "CONTACT_ROLES",
                custom_model: None,
            },
        )?);
    }
    let from = start.date_naive();
    for m in 0..marketers as i64 {
        let plan = plan_ids[(m as usize) % plan_ids.len()];
        crate::repo::compensation::assign(conn, first_marketer + m, plan, from)?;
    }
    summary.plans = plan_ids.len();
    // Planner statistics for what was just written, as after any bulk load: without them
    // PostgreSQL (whose autovacuum may be off, or not yet round) plans the reports' range
    // scans from guesses, and SQLite has no sqlite_stat1 at all.
    // The change log's entries for what was generated name every row just written; one
    // 'reload' entry says the same to a running server, and costs a later one nothing.
    crate::repo::journeys::replace_changes_with_reload(conn)?;
    progress("analyze");
    diesel::RunQueryDsl::execute(diesel::sql_query("ANALYZE"), conn)?;
    // Except the change log: analyzed now it holds one entry, and SQLite, believing it stays
    // that small, then scans the whole log (sorting it) for every catch-up instead of seeking
    // by id: 12 ms per report after a day's writes at `large`, growing with the log.
    if matches!(conn, crate::db::AnyConnection::Sqlite(_)) {
        diesel::RunQueryDsl::execute(
            diesel::sql_query("DELETE FROM sqlite_stat1 WHERE tbl = 'change_log'"),
            conn,
        )?;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// One lead's life: touches, moves through the funnel, and sometimes a deal.
#[allow(clippy::too_many_arguments)]
fn journey(
    rng: &mut Rng,
    chunk: &mut Chunk,
    ids: &mut Ids,
    (lead_id, account): (i64, Option<i64>),
    campaigns: &[CampaignRow],
    first_rep: i64,
    reps: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    fx: &Fx,
) {
    let span_minutes = (end - start).num_minutes() as u64;
    let created = start + Duration::minutes(rng.below(span_minutes) as i64);
    // A few campaigns draw most leads: pick with a skew towards low indexes.
    let n = campaigns.len() as u64;
    let mut at = created;
    let mut source = None;
    let first_touch = chunk.touchpoints.len();
    let touches = 1 + rng.below(9);
    for k in 0..touches {
        let skewed = (rng.below(n) * rng.below(n)) / n;
        let campaign = &campaigns[skewed as usize];
        source.get_or_insert(campaign.id);
        chunk.touchpoints.push(TouchpointRow {
            id: ids.touchpoint,
            external_id: format!("t{:09}", ids.touchpoint),
            lead_id,
            campaign_id: campaign.id,
            kind: if k == 0 {
                "form_fill".into()
            } else {
                rng.pick(&KINDS).to_string()
            },
            occurred_at: t(at),
        });
        ids.touchpoint += 1;
        at += rng.minutes(1, 24 * 20);
    }
    let mut stage = Inquiry;
    let mut owner = None;
    let mut moves: Vec<(LeadStage, LeadStage, DateTime<Utc>)> = vec![];
    let go = |moves: &mut Vec<(LeadStage, LeadStage, DateTime<Utc>)>,
              stage: &mut LeadStage,
              to: LeadStage,
              when: DateTime<Utc>| {
        for step in crate::domain::stage::plan_forced(*stage, to) {
            moves.push((step.from, step.to, when));
        }
        *stage = to;
    };
    let mut opportunity = None;
    if rng.chance(5) {
        at += rng.minutes(2, 24 * 4);
        go(&mut moves, &mut stage, Sql, at);
    } else if rng.chance(60) {
        at += rng.minutes(1, 24 * 5);
        go(&mut moves, &mut stage, Mql, at);
        let roll = rng.below(100);
        if roll < 10 {
            at += rng.minutes(12, 24 * 10);
            go(&mut moves, &mut stage, Recycled, at);
        } else if roll < 15 {
            at += rng.minutes(12, 24 * 10);
            go(&mut moves, &mut stage, Disqualified, at);
        } else if roll < 70 {
            at += rng.minutes(1, 24 * 6);
            go(&mut moves, &mut stage, Sal, at);
            if rng.chance(70) {
                at += rng.minutes(24, 24 * 14);
                go(&mut moves, &mut stage, Sql, at);
            }
        }
    }
    if stage == Sal || stage == Sql {
        owner = Some(first_rep + rng.below(reps as u64) as i64);
    }
    if stage == Sql && rng.chance(43) {
        at += rng.minutes(24, 24 * 10);
        go(&mut moves, &mut stage, Opportunity, at);
        opportunity = Some(at);
    }
    if let Some(created_at) = opportunity {
        let opp_id = ids.opportunity;
        ids.opportunity += 1;
        let amount = 100_000 + rng.below(4_900_000) as i64 + 37;
        let roll = rng.below(100);
        let closed = created_at + rng.minutes(24 * 7, 24 * 90);
        let (status, closed_at) = if closed >= end || roll >= 70 {
            ("OPEN", None)
        } else if roll < 30 {
            go(&mut moves, &mut stage, Won, closed);
            ("WON", Some(closed))
        } else {
            go(&mut moves, &mut stage, Lost, closed);
            ("LOST", Some(closed))
        };
        // Three deals in ten are booked in another currency, each its own.
        let currency = match opp_id % 10 {
            7..=9 => fx.foreign.get((opp_id % 10 - 7) as usize),
            _ => None,
        };
        let price = |cents: i64, on: NaiveDate| match currency {
            Some(cur) => {
                let (original, value) = fx.book(cur, cents, on);
                (value, Some(cur.code.to_string()), Some(original))
            }
            None => (cents, None, None),
        };
        let (amount_cents, deal_currency, original_amount) = price(amount, created_at.date_naive());
        chunk.opportunities.push(OpportunityRow {
            id: opp_id,
            external_id: format!("o{opp_id:08}"),
            name: format!("Deal {opp_id}"),
            primary_contact_id: lead_id,
            owner_id: owner,
            amount_cents,
            status: status.into(),
            created_at: t(created_at),
            closed_at: closed_at.map(t),
            account_id: None,
            currency: deal_currency,
            original_amount,
        });
        chunk.contacts.push((opp_id, lead_id, 0));
        if lead_id > 1 && rng.chance(20) {
            let colleague = lead_id - 1 - rng.below(((lead_id - 1) as u64).min(50)) as i64;
            if chunk.leads.first().is_some_and(|l| l.id <= colleague) {
                chunk.contacts.push((opp_id, colleague, 1));
            }
        }
        if let (true, Some(closed)) = (status == "WON", closed_at) {
            let first = amount * (60 + rng.below(41) as i64) / 100;
            let mut book = |cents: i64, on: DateTime<Utc>| {
                let (amount_cents, currency, original_amount) = price(cents, on.date_naive());
                chunk.revenue.push(RevenueRow {
                    id: ids.revenue,
                    external_id: format!("r{:08}", ids.revenue),
                    opportunity_id: opp_id,
                    amount_cents,
                    booked_on: on.date_naive(),
                    currency,
                    original_amount,
                });
                ids.revenue += 1;
            };
            book(first, closed);
            if rng.chance(33) {
                book(amount - first, closed + Duration::days(30));
            }
            if rng.chance(2) {
                book(-(first / 10) - 1, closed + Duration::days(14));
            }
        }
    }
    chunk.transitions.push(TransitionRow {
        id: ids.transition,
        lead_id,
        external_id: None,
        from_stage: None,
        to_stage: Inquiry.as_str().into(),
        occurred_at: t(created),
        actor: "generate".into(),
        reason: Some("lead created".into()),
    });
    ids.transition += 1;
    let mut reach: [Option<chrono::NaiveDateTime>; 6] = [None; 6];
    for (_, to, when) in &moves {
        if let Some(rank) = to.funnel_rank() {
            for slot in reach.iter_mut().take(rank + 1).skip(1) {
                if slot.is_none_or(|t0| t0 > t(*when)) {
                    *slot = Some(t(*when));
                }
            }
        }
    }
    for (from, to, when) in moves {
        chunk.transitions.push(TransitionRow {
            id: ids.transition,
            lead_id,
            external_id: None,
            from_stage: Some(from.as_str().into()),
            to_stage: to.as_str().into(),
            occurred_at: t(when),
            actor: "generate".into(),
            reason: None,
        });
        ids.transition += 1;
    }
    let domain = match account {
        Some(a) => account_domain(a),
        None => FREE_MAIL[lead_id as usize % FREE_MAIL.len()].to_string(),
    };
    chunk.leads.push(LeadRow {
        id: lead_id,
        external_id: format!("L{lead_id:08}"),
        email: Some(format!("lead{lead_id}@{domain}")),
        full_name: Some(format!("Person {lead_id}")),
        company: Some(format!("Company {}", lead_id % 5_000)),
        title: None,
        stage: stage.as_str().into(),
        score: score_of(
            chunk.touchpoints[first_touch..]
                .iter()
                .map(|t| t.kind.as_str()),
        ),
        owner_id: owner,
        created_at: t(created),
        mql_at: reach[1],
        sal_at: reach[2],
        sql_at: reach[3],
        opportunity_at: reach[4],
        won_at: reach[5],
        source_campaign_id: source,
        account_id: account,
        account_explicit: false,
        email_domain: Some(domain),
    });
}
