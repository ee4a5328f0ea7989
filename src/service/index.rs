//! The journey index: what attribution reads, held in memory so a report never waits on the
//! database for its facts (issue 14). Per lead: the first reach of each funnel rank and its
//! touches in SPEC §4 order; per deal: its row, contacts and revenue. Loaded once at start-up,
//! then kept current by tailing the change log, which triggers write in the same transaction as
//! every change to leads, touchpoints, deals, contacts, revenue, campaigns and costs
//! (migration 2026-12-01-000006). The database stays the source of truth: an entry only names
//! what changed, and the index reloads that lead or deal from the database, so applying an
//! entry twice is harmless and no write path can be missed.
//!
//! Freshness: every report catches up with the log before it reads the index (one indexed
//! query), so a write acknowledged by any instance is in the next report of every instance;
//! a background thread keeps catching up so that query usually finds nothing new.
//!
//! Order: on PostgreSQL ids are taken before commit, so a smaller id can become visible after
//! a larger one. The tail keeps a low watermark below the oldest id it has not seen and reads
//! from there; an unseen id (a gap) is given up only once every transaction that was running
//! when the gap was noticed has ended (`pg_current_snapshot()`), so a slow commit is never
//! skipped; on SQLite writers commit in id order and a gap is given up after a few seconds.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use compact_str::CompactString;

use super::{AppError, AppResult};
use crate::db::{AnyConnection, Db};
use crate::domain::attribution::{sort_touches, Touch};
use crate::domain::handoff::{hand_offs, stage_read, Exits, MqlMove};
use crate::repo::campaigns::{self, CampaignRow};
use crate::repo::journeys::{self, MoveRow, ReachRow, TouchRow};
use crate::repo::opportunities::{self, OpportunityRow, RevenueRow};

/// One lead as the reports see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadJourney {
    /// First reach of funnel rank 0 (INQUIRY: its creation) … 5 (WON).
    pub reach: [Option<DateTime<Utc>>; 6],
    /// Every touch, sorted by time then externalId; shared with the facts that name them.
    pub touches: Arc<[Touch]>,
    pub external_id: CompactString,
    /// The campaign of its earliest touch.
    pub source: Option<i64>,
    pub owner: Option<i64>,
    /// Its account (SPEC §8).
    pub account: Option<i64>,
    /// How it left the funnel (the funnel report).
    pub exits: Exits,
    /// Its moves into MQL with the decision that followed each (leakage).
    pub mqls: Vec<MqlMove>,
}

/// One deal as the reports see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    pub row: OpportunityRow,
    /// Contact lead ids, ascending.
    pub contacts: Vec<i64>,
    /// Revenue booked on it, by id.
    pub revenue: Vec<RevenueRow>,
}

/// The index's content at one moment.
#[derive(Debug, Default)]
pub struct Journeys {
    /// Boxed: a map's slots are empty up to half the time, and a journey is ~200 bytes.
    /// Change through `put_lead`/`drop_lead`, which keep the orderings below.
    pub leads: HashMap<i64, Box<LeadJourney>>,
    pub deals: HashMap<i64, Box<Deal>>,
    /// Per funnel rank, (first reach in µs since the epoch, lead id): a period's leads at a
    /// rank without a scan of every lead.
    pub by_reach: [BTreeSet<(i64, i64)>; 6],
    /// Every move into MQL as (µs since the epoch, lead id).
    pub by_mql: BTreeSet<(i64, i64)>,
    /// How many leads each campaign sourced (never 0: a campaign without leads has no entry).
    pub sourced: HashMap<i64, i64>,
    /// Deal ids (ascending) by the leads they name, primary contact included: the deals a
    /// lead's change reaches. Change deals through `put_deal`/`take_deal`.
    pub by_contact: HashMap<i64, Vec<i64>>,
    /// Lead ids (ascending) by account.
    pub by_account: HashMap<i64, Vec<i64>>,
    /// Deal ids (ascending) by the account they name (not those taking their primary
    /// contact's: find those through `by_account` and `by_contact`).
    pub deals_by_account: HashMap<i64, Vec<i64>>,
    /// What each change replaced, and the content's version.
    pub journal: Journal,
}

/// The content is what the database holds; the journal is history, not content.
impl PartialEq for Journeys {
    fn eq(&self, other: &Journeys) -> bool {
        self.leads == other.leads
            && self.deals == other.deals
            && self.by_reach == other.by_reach
            && self.by_mql == other.by_mql
            && self.sourced == other.sourced
            && self.by_contact == other.by_contact
            && self.by_account == other.by_account
            && self.deals_by_account == other.deals_by_account
    }
}

impl Eq for Journeys {}

/// What a change replaced: a lead's or a deal's journey before it (None: it did not exist).
#[derive(Debug)]
pub enum Replaced {
    Lead(i64, Option<Box<LeadJourney>>),
    Deal(i64, Option<Box<Deal>>),
}

/// The content's version and, for the last changes, what each replaced: enough to bring a
/// report's tally made at an earlier version forward by re-crediting only what changed.
#[derive(Debug, Default)]
pub struct Journal {
    /// The version of the content (the index's version when it was last changed).
    pub version: i64,
    /// A tally made at a version ≥ this can be brought forward from the entries.
    from: i64,
    /// (version that made the change, what it replaced), oldest first.
    entries: VecDeque<(i64, Replaced)>,
    /// Roughly what the entries hold, in bytes.
    bytes: usize,
}

impl Replaced {
    /// Roughly the bytes it holds: a lead's touches dominate (a lead with thousands of touches
    /// changed thousands of times would otherwise keep each of its versions).
    fn bytes(&self) -> usize {
        use std::mem::size_of;
        match self {
            Replaced::Lead(_, l) => l.as_ref().map_or(0, |l| {
                size_of::<LeadJourney>()
                    + l.touches.len() * size_of::<Touch>()
                    + l.mqls.len() * size_of::<MqlMove>()
            }),
            Replaced::Deal(_, d) => d.as_ref().map_or(0, |d| {
                size_of::<Deal>()
                    + d.contacts.len() * size_of::<i64>()
                    + d.revenue.len() * size_of::<RevenueRow>()
            }),
        }
    }
}

/// What the content held, at some earlier version, of the leads and deals changed since.
#[derive(Debug, Default)]
pub struct Changed<'a> {
    pub leads: HashMap<i64, Option<&'a LeadJourney>>,
    pub deals: HashMap<i64, Option<&'a Deal>>,
}

impl Journal {
    /// Entries kept: ~25 MB of replaced journeys, a few minutes of a CRM sync's writes, and
    /// never more than `BYTES` of them. A tally older than that is made again.
    const KEEP: usize = 50_000;
    const BYTES: usize = 64 << 20;

    fn starting_at(version: i64) -> Journal {
        Journal {
            version,
            from: version,
            entries: VecDeque::new(),
            bytes: 0,
        }
    }

    fn record(&mut self, version: i64, replaced: Replaced) {
        self.bytes += replaced.bytes();
        self.entries.push_back((version, replaced));
        while self.entries.len() > Self::KEEP
            || (self.bytes > Self::BYTES && self.entries.len() > 1)
        {
            if let Some((v, old)) = self.entries.pop_front() {
                self.bytes = self.bytes.saturating_sub(old.bytes());
                self.from = self.from.max(v);
            }
        }
    }

    /// What the content held at `since` of everything changed after it; None when the
    /// journal no longer reaches back that far.
    pub fn since(&self, since: i64) -> Option<Changed<'_>> {
        if since < self.from || since > self.version {
            return None;
        }
        let start = self.entries.partition_point(|(v, _)| *v <= since);
        let mut changed = Changed::default();
        for (_, replaced) in self.entries.range(start..) {
            // The first entry after `since` holds what was there at `since`.
            match replaced {
                Replaced::Lead(id, old) => {
                    changed.leads.entry(*id).or_insert(old.as_deref());
                }
                Replaced::Deal(id, old) => {
                    changed.deals.entry(*id).or_insert(old.as_deref());
                }
            }
        }
        Some(changed)
    }
}

/// The leads a deal names: its contacts and its primary contact.
fn named_by(deal: &Deal) -> impl Iterator<Item = i64> + '_ {
    deal.contacts
        .iter()
        .copied()
        .chain(std::iter::once(deal.row.primary_contact_id))
}

fn insert_sorted(ids: &mut Vec<i64>, id: i64) {
    if let Err(at) = ids.binary_search(&id) {
        ids.insert(at, id);
    }
}

fn remove_sorted(map: &mut HashMap<i64, Vec<i64>>, key: i64, id: i64) {
    if let Some(ids) = map.get_mut(&key) {
        if let Ok(at) = ids.binary_search(&id) {
            ids.remove(at);
        }
        if ids.is_empty() {
            map.remove(&key);
        }
    }
}

/// The [from, to) bounds of a period in `by_reach`/`by_mql` keys.
pub fn micros_range(from: DateTime<Utc>, to: DateTime<Utc>) -> std::ops::Range<(i64, i64)> {
    (from.timestamp_micros(), i64::MIN)..(to.timestamp_micros(), i64::MIN)
}

impl Journeys {
    /// The index of these leads and deals, its orderings built in bulk.
    pub fn of(leads: HashMap<i64, Box<LeadJourney>>, deals: HashMap<i64, Box<Deal>>) -> Journeys {
        let mut by_reach: [Vec<(i64, i64)>; 6] = Default::default();
        let mut by_mql = Vec::new();
        let mut sourced: HashMap<i64, i64> = HashMap::new();
        for (id, lead) in &leads {
            for (rank, at) in lead.reach.iter().enumerate() {
                if let (Some(at), Some(order)) = (at, by_reach.get_mut(rank)) {
                    order.push((at.timestamp_micros(), *id));
                }
            }
            by_mql.extend(lead.mqls.iter().map(|m| (m.at.timestamp_micros(), *id)));
            if let Some(c) = lead.source {
                *sourced.entry(c).or_insert(0) += 1;
            }
        }
        let mut by_contact: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut deals_by_account: HashMap<i64, Vec<i64>> = HashMap::new();
        for (id, deal) in &deals {
            for lead in named_by(deal) {
                by_contact.entry(lead).or_default().push(*id);
            }
            if let Some(a) = deal.row.account_id {
                deals_by_account.entry(a).or_default().push(*id);
            }
        }
        let mut by_account: HashMap<i64, Vec<i64>> = HashMap::new();
        for (id, lead) in &leads {
            if let Some(a) = lead.account {
                by_account.entry(a).or_default().push(*id);
            }
        }
        for ids in by_contact
            .values_mut()
            .chain(by_account.values_mut())
            .chain(deals_by_account.values_mut())
        {
            ids.sort_unstable();
            ids.dedup();
        }
        Journeys {
            leads,
            deals,
            by_reach: by_reach.map(BTreeSet::from_iter),
            by_mql: BTreeSet::from_iter(by_mql),
            sourced,
            by_contact,
            by_account,
            deals_by_account,
            journal: Journal::default(),
        }
    }

    pub fn lead(&self, id: i64) -> Option<&LeadJourney> {
        self.leads.get(&id).map(|l| &**l)
    }

    pub fn deal(&self, id: i64) -> Option<&Deal> {
        self.deals.get(&id).map(|d| &**d)
    }

    /// Adds (or replaces) a deal and its place under the leads and the account it names.
    pub fn put_deal(&mut self, id: i64, deal: Box<Deal>) {
        self.take_deal(id);
        for lead in named_by(&deal) {
            insert_sorted(self.by_contact.entry(lead).or_default(), id);
        }
        if let Some(a) = deal.row.account_id {
            insert_sorted(self.deals_by_account.entry(a).or_default(), id);
        }
        self.deals.insert(id, deal);
    }

    /// Removes a deal and its place under the leads and the account it names; returns it.
    pub fn take_deal(&mut self, id: i64) -> Option<Box<Deal>> {
        let deal = self.deals.remove(&id)?;
        for lead in named_by(&deal) {
            remove_sorted(&mut self.by_contact, lead, id);
        }
        if let Some(a) = deal.row.account_id {
            remove_sorted(&mut self.deals_by_account, a, id);
        }
        Some(deal)
    }

    /// The account of a deal: the one it names, else its primary contact's (SPEC §8).
    pub fn account_of(&self, deal: &Deal) -> Option<i64> {
        deal.row
            .account_id
            .or_else(|| self.lead(deal.row.primary_contact_id)?.account)
    }

    /// Adds (or replaces) a lead and its place in every ordering.
    pub fn put_lead(&mut self, id: i64, lead: Box<LeadJourney>) {
        self.drop_lead(id);
        for (rank, at) in lead.reach.iter().enumerate() {
            if let Some(at) = at {
                self.by_reach[rank].insert((at.timestamp_micros(), id));
            }
        }
        for m in &lead.mqls {
            self.by_mql.insert((m.at.timestamp_micros(), id));
        }
        if let Some(c) = lead.source {
            *self.sourced.entry(c).or_insert(0) += 1;
        }
        if let Some(a) = lead.account {
            insert_sorted(self.by_account.entry(a).or_default(), id);
        }
        self.leads.insert(id, lead);
    }

    /// Removes a lead and its place in every ordering; returns it.
    pub fn drop_lead(&mut self, id: i64) -> Option<Box<LeadJourney>> {
        let lead = self.leads.remove(&id)?;
        for (rank, at) in lead.reach.iter().enumerate() {
            if let Some(at) = at {
                self.by_reach[rank].remove(&(at.timestamp_micros(), id));
            }
        }
        for m in &lead.mqls {
            self.by_mql.remove(&(m.at.timestamp_micros(), id));
        }
        if let Some(c) = lead.source {
            if let Some(n) = self.sourced.get_mut(&c) {
                *n -= 1;
                if *n <= 0 {
                    self.sourced.remove(&c);
                }
            }
        }
        if let Some(a) = lead.account {
            remove_sorted(&mut self.by_account, a, id);
        }
        Some(lead)
    }

    /// Leads that reached `rank` in [from, to), by lead id.
    pub fn reached(
        &self,
        rank: usize,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(i64, &LeadJourney)> {
        let Some(order) = self.by_reach.get(rank) else {
            return Vec::new();
        };
        let mut out: Vec<(i64, &LeadJourney)> = order
            .range(micros_range(from, to))
            .filter_map(|(_, id)| Some((*id, &**self.leads.get(id)?)))
            .collect();
        out.sort_unstable_by_key(|(id, _)| *id);
        out
    }
}

/// A change-log id not seen yet although a larger one was.
#[derive(Debug, Clone, Copy)]
struct Gap {
    noticed: Instant,
    /// The catch-up that noticed it.
    round: u64,
    /// PostgreSQL: xmax of a snapshot taken after the gap was noticed; once the oldest running
    /// transaction is at or past it, the writer of the gap has ended and its entry would show.
    xmax: Option<u64>,
}

#[derive(Debug, Default)]
struct Tail {
    /// Every id ≤ low has been applied (or given up).
    low: i64,
    /// Applied ids above `low`.
    seen: BTreeSet<i64>,
    gaps: HashMap<i64, Gap>,
    /// Catch-ups so far.
    round: u64,
    /// The newest change-log id when the index was last loaded: a 'reload' entry up to it
    /// asks for what that load already read.
    loaded_through: i64,
}

/// Every campaign and its costs, as the reports read them whole.
#[derive(Debug, Default)]
pub struct CampaignData {
    /// In externalId order.
    pub campaigns: Vec<CampaignRow>,
    /// (day, amount in minor units) by campaign, in order.
    pub costs: HashMap<i64, Vec<(chrono::NaiveDate, i64)>>,
}

impl CampaignData {
    pub fn read(conn: &mut AnyConnection) -> AppResult<CampaignData> {
        let mut costs: HashMap<i64, Vec<(chrono::NaiveDate, i64)>> = HashMap::new();
        for (campaign, day, amount) in campaigns::all_costs(conn)? {
            costs.entry(campaign).or_default().push((day, amount));
        }
        for v in costs.values_mut() {
            v.sort_unstable();
        }
        Ok(CampaignData {
            campaigns: campaigns::all(conn)?,
            costs,
        })
    }
}

/// The index and its place in the change log.
#[derive(Default)]
pub struct JourneyIndex {
    journeys: RwLock<Journeys>,
    /// Bumped whenever the content may have changed (report caches key on it).
    version: std::sync::atomic::AtomicI64,
    ready: AtomicBool,
    /// Set by the first load, never cleared.
    loaded: AtomicBool,
    tail: Mutex<Tail>,
    /// Bumped whenever a campaign or a cost may have changed.
    campaigns_version: std::sync::atomic::AtomicI64,
    /// Bumped whenever an account or its attributes may have changed.
    accounts_version: std::sync::atomic::AtomicI64,
    /// Report row keys of accounts (by grouping key: "" for externalIds, else the attribute)
    /// read at an `accounts_version`.
    account_keys: Mutex<HashMap<String, (i64, AccountKeys)>>,
    /// Campaigns and costs read at a `campaigns_version`.
    campaign_data: Mutex<Option<(i64, Arc<CampaignData>)>>,
}

/// Entries replayed after a load: a transaction that took its ids before the load read the
/// newest id and committed after it is covered while it is among the last this many.
const REPLAY: i64 = 10_000;
/// Change-log entries read per query.
const PAGE: i64 = 50_000;
/// SQLite: an unseen id older than this is a rolled-back write.
const SQLITE_GAP: Duration = Duration::from_secs(5);
/// How often the background thread catches up.
const POLL: Duration = Duration::from_millis(250);
/// How long entries stay in the log.
const KEEP_DAYS: i64 = 1;

fn utc(t: chrono::NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

fn journey_of(row: &ReachRow) -> LeadJourney {
    LeadJourney {
        reach: [
            Some(utc(row.1)),
            row.2.map(utc),
            row.3.map(utc),
            row.4.map(utc),
            row.5.map(utc),
            row.6.map(utc),
        ],
        touches: Arc::new([]),
        external_id: CompactString::from(row.7.as_str()),
        source: row.8,
        owner: row.9,
        account: row.10,
        exits: Exits::default(),
        mqls: Vec::new(),
    }
}

/// Groups moves as (id, lead, to stage, time) by lead, as `hand_offs` takes them.
pub(crate) fn moves_by_lead(
    rows: &[(i64, i64, String, chrono::NaiveDateTime)],
) -> HashMap<i64, Vec<(chrono::NaiveDateTime, i64, &str)>> {
    let mut out: HashMap<i64, Vec<_>> = HashMap::new();
    for (id, lead, stage, at) in rows {
        out.entry(*lead)
            .or_default()
            .push((*at, *id, stage.as_str()));
    }
    out
}

/// Sets the exits and MQL moves of leads from their moves.
fn set_hand_offs(leads: &mut HashMap<i64, Box<LeadJourney>>, moves: &[MoveRow]) {
    for (lead, mut moves) in moves_by_lead(moves) {
        if let Some(j) = leads.get_mut(&lead) {
            let (exits, mut mqls) = hand_offs(&mut moves);
            mqls.shrink_to_fit();
            j.exits = exits;
            j.mqls = mqls;
        }
    }
}

fn touch_of(row: TouchRow) -> (i64, Touch) {
    (
        row.1,
        Touch {
            id: row.0,
            external_id: row.4.as_str().into(),
            campaign_id: row.2,
            at: utc(row.3),
        },
    )
}

fn lock_error() -> AppError {
    AppError::Internal("the journey index lock was poisoned".into())
}

impl JourneyIndex {
    /// Whether the index has been loaded (reports read the database until then).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Changes with every applied change; report caches key on it.
    pub fn version(&self) -> i64 {
        self.version.load(Ordering::Acquire)
    }

    /// Every campaign and its costs: read from the database once per change to them (call
    /// after `current`, so every acknowledged change to a campaign or a cost is in).
    pub fn campaign_data(&self, conn: &mut AnyConnection) -> AppResult<Arc<CampaignData>> {
        // The version is taken before the read: what is read holds at least its changes.
        let version = self.campaigns_version.load(Ordering::Acquire);
        let kept = self.campaign_data.lock().map_err(|_| lock_error())?.clone();
        if let Some((at, data)) = kept {
            if at == version {
                return Ok(data);
            }
        }
        let data = Arc::new(CampaignData::read(conn)?);
        let mut kept = self.campaign_data.lock().map_err(|_| lock_error())?;
        if kept.as_ref().is_none_or(|(at, _)| *at <= version) {
            *kept = Some((version, data.clone()));
        }
        Ok(data)
    }

    /// Each account's report key, `attribute` None: its externalId, else its value of that
    /// attribute (accounts without one are absent): read from the database once per change to
    /// accounts (call after `current`, so every acknowledged change to an account is in).
    pub fn account_keys(
        &self,
        conn: &mut AnyConnection,
        attribute: Option<&str>,
    ) -> AppResult<AccountKeys> {
        let version = self.accounts_version.load(Ordering::Acquire);
        let key = attribute.unwrap_or("").to_string();
        let kept = self
            .account_keys
            .lock()
            .map_err(|_| lock_error())?
            .get(&key)
            .cloned();
        if let Some((at, keys)) = kept {
            if at == version {
                return Ok(keys);
            }
        }
        let keys = Arc::new(read_account_keys(conn, attribute)?);
        let mut kept = self.account_keys.lock().map_err(|_| lock_error())?;
        // A few attributes at most are asked for; forget the oldest beyond 16.
        if kept.len() >= 16 {
            kept.clear();
        }
        if kept.get(&key).is_none_or(|(at, _)| *at <= version) {
            kept.insert(key, (version, keys.clone()));
        }
        Ok(keys)
    }

    /// Runs `read` on the current content.
    pub fn read<T>(&self, read: impl FnOnce(&Journeys) -> T) -> AppResult<T> {
        let journeys = self.journeys.read().map_err(|_| lock_error())?;
        Ok(read(&journeys))
    }

    /// Reads everything from the database (start-up). The tail restarts a little before the
    /// newest change-log id read first, so a write that committed during the load is applied
    /// again on the next catch-up.
    pub fn load(&self, conn: &mut AnyConnection) -> AppResult<()> {
        let started = Instant::now();
        let mut tail = self.tail.lock().map_err(|_| lock_error())?;
        let newest = journeys::newest_change(conn)?;
        let mut fresh = read_all(conn)?;
        let (leads, deals) = (fresh.leads.len(), fresh.deals.len());
        {
            let mut journeys = self.journeys.write().map_err(|_| lock_error())?;
            // A new version with the new content, under the lock, so no reader pairs one with
            // the other's; nothing made before it can be brought forward.
            let version = self.version.fetch_add(1, Ordering::AcqRel) + 1;
            fresh.journal = Journal::starting_at(version);
            *journeys = fresh;
            self.campaigns_version.fetch_add(1, Ordering::AcqRel);
            self.accounts_version.fetch_add(1, Ordering::AcqRel);
        }
        *tail = Tail {
            low: (newest - REPLAY).max(0),
            loaded_through: newest,
            ..Tail::default()
        };
        self.ready.store(true, Ordering::Release);
        self.loaded.store(true, Ordering::Release);
        drop(tail);
        self.catch_up(conn)?;
        tracing::info!(
            leads,
            deals,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "journey index loaded"
        );
        Ok(())
    }

    /// Catches up and says whether the index may be read (false while it loads or reloads:
    /// read the database then).
    pub fn current(&self, conn: &mut AnyConnection) -> AppResult<bool> {
        if !self.is_ready() {
            return Ok(false);
        }
        self.catch_up(conn)?;
        Ok(self.is_ready())
    }

    /// Whether the index has loaded at least once (`/ready`: during a reload the reports read
    /// the database, so the instance stays in service).
    pub fn has_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Applies every change-log entry not applied yet; returns how many it applied.
    pub fn catch_up(&self, conn: &mut AnyConnection) -> AppResult<usize> {
        if !self.is_ready() {
            return Ok(0);
        }
        let mut tail = self.tail.lock().map_err(|_| lock_error())?;
        // Read before the entries: a transaction older than its xmin has ended, so its entry,
        // if it committed, is visible to the entries query that follows.
        let snapshot = journeys::pg_snapshot(conn)?;
        tail.round += 1;
        let mut applied = 0;
        let mut after = tail.low;
        loop {
            let page = journeys::changes_after(conn, after, PAGE)?;
            let Some(last) = page.last().map(|c| c.0) else {
                break;
            };
            let full = page.len() as i64 == PAGE;
            let fresh: Vec<_> = page
                .into_iter()
                .filter(|c| !tail.seen.contains(&c.0))
                .collect();
            if !fresh.is_empty() {
                self.apply(conn, &fresh, tail.loaded_through)?;
                applied += fresh.len();
                for c in &fresh {
                    tail.seen.insert(c.0);
                    tail.gaps.remove(&c.0);
                }
            }
            if !full {
                break;
            }
            after = last;
        }
        advance(&mut tail, snapshot);
        Ok(applied)
    }

    /// Reloads what the entries name and swaps it in.
    fn apply(
        &self,
        conn: &mut AnyConnection,
        changes: &[journeys::ChangeRow],
        loaded_through: i64,
    ) -> AppResult<()> {
        // A bulk writer (generate) replaced the log's entries with one 'reload', unless the
        // last load began after it: the background thread loads everything again, off any
        // request's path, and reports read the database until it has.
        if changes
            .iter()
            .any(|(id, kind, _)| kind == journeys::RELOAD && *id > loaded_through)
        {
            self.ready.store(false, Ordering::Release);
            self.version.fetch_add(1, Ordering::AcqRel);
            return Ok(());
        }
        let mut lead_ids: HashSet<i64> = HashSet::new();
        let mut deal_ids: HashSet<i64> = HashSet::new();
        for (_, kind, id) in changes {
            match kind.as_str() {
                "lead" => {
                    lead_ids.insert(*id);
                }
                "deal" => {
                    deal_ids.insert(*id);
                }
                // An account or its attributes: its report keys are read again when asked.
                "account" => {
                    self.accounts_version.fetch_add(1, Ordering::AcqRel);
                }
                // A campaign or its costs: read again, whole, when next asked for.
                _ => {
                    self.campaigns_version.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
        let lead_ids: Vec<i64> = lead_ids.into_iter().collect();
        let deal_ids: Vec<i64> = deal_ids.into_iter().collect();
        let leads = read_leads(conn, &lead_ids)?;
        let deals = read_deals(conn, &deal_ids)?;
        let mut journeys = self.journeys.write().map_err(|_| lock_error())?;
        // The new version is taken under the lock: a reader sees a content and its version.
        let version = self.version.fetch_add(1, Ordering::AcqRel) + 1;
        journeys.journal.version = version;
        for id in &lead_ids {
            let old = journeys.drop_lead(*id);
            journeys.journal.record(version, Replaced::Lead(*id, old));
        }
        for (id, lead) in leads {
            journeys.put_lead(id, lead);
        }
        for id in &deal_ids {
            let old = journeys.take_deal(*id);
            journeys.journal.record(version, Replaced::Deal(*id, old));
        }
        for (id, deal) in deals {
            journeys.put_deal(id, deal);
        }
        Ok(())
    }

    /// The whole content, rebuilt from the database, for comparison (tests).
    pub fn rebuilt(conn: &mut AnyConnection) -> AppResult<Journeys> {
        read_all(conn)
    }

    /// Whether the content equals `other`.
    pub fn equals(&self, other: &Journeys) -> AppResult<bool> {
        self.read(|j| j == other)
    }
}

/// Each account's report row key, by account id.
pub type AccountKeys = Arc<HashMap<i64, String>>;

/// Each account's report key: its externalId, or its value of `attribute`.
pub fn read_account_keys(
    conn: &mut AnyConnection,
    attribute: Option<&str>,
) -> AppResult<HashMap<i64, String>> {
    Ok(match attribute {
        None => crate::repo::accounts::all(conn)?
            .into_iter()
            .map(|a| (a.id, a.external_id))
            .collect(),
        Some(key) => crate::repo::accounts::attribute_of_all(conn, key)?,
    })
}

/// Moves the watermark over the ids seen, and gives up gaps whose writer has ended.
fn advance(tail: &mut Tail, snapshot: Option<(u64, u64)>) {
    let top = tail.seen.iter().next_back().copied().unwrap_or(tail.low);
    for id in (tail.low + 1)..top {
        if !tail.seen.contains(&id) {
            let round = tail.round;
            tail.gaps.entry(id).or_insert(Gap {
                noticed: Instant::now(),
                round,
                xmax: None,
            });
        }
    }
    let mut given_up = Vec::new();
    let round = tail.round;
    for (id, gap) in tail.gaps.iter_mut() {
        match snapshot {
            Some((xmin, xmax)) => match gap.xmax {
                Some(bound) if xmin >= bound => given_up.push(*id),
                Some(_) => {}
                // This snapshot was taken after the gap was noticed (on an earlier call).
                None if gap.round < round => gap.xmax = Some(xmax),
                None => {}
            },
            None if gap.noticed.elapsed() > SQLITE_GAP => given_up.push(*id),
            None => {}
        }
    }
    for id in given_up {
        tail.gaps.remove(&id);
        tail.seen.insert(id);
    }
    while tail.seen.remove(&(tail.low + 1)) {
        tail.low += 1;
    }
}

/// Sorts each lead's touches and hands them to it, one shared allocation per lead.
fn set_touches(leads: &mut HashMap<i64, Box<LeadJourney>>, touches: HashMap<i64, Vec<Touch>>) {
    for (lead, mut mine) in touches {
        if let Some(j) = leads.get_mut(&lead) {
            sort_touches(&mut mine);
            j.touches = mine.into();
        }
    }
}

fn read_leads(conn: &mut AnyConnection, ids: &[i64]) -> AppResult<Vec<(i64, Box<LeadJourney>)>> {
    let mut out: HashMap<i64, Box<LeadJourney>> = journeys::reach_of(conn, ids)?
        .iter()
        .map(|r| (r.0, Box::new(journey_of(r))))
        .collect();
    let mut touches: HashMap<i64, Vec<Touch>> = HashMap::new();
    for row in journeys::touches_of(conn, ids)? {
        let (lead, touch) = touch_of(row);
        touches.entry(lead).or_default().push(touch);
    }
    set_touches(&mut out, touches);
    set_hand_offs(&mut out, &journeys::moves_of(conn, ids)?);
    Ok(out.into_iter().collect())
}

fn read_deals(conn: &mut AnyConnection, ids: &[i64]) -> AppResult<Vec<(i64, Box<Deal>)>> {
    let mut out: HashMap<i64, Box<Deal>> = opportunities::by_ids(conn, ids)?
        .into_values()
        .map(|row| {
            (
                row.id,
                Box::new(Deal {
                    row,
                    contacts: Vec::new(),
                    revenue: Vec::new(),
                }),
            )
        })
        .collect();
    for (opp, lead) in opportunities::contacts_of(conn, ids)? {
        if let Some(d) = out.get_mut(&opp) {
            d.contacts.push(lead);
        }
    }
    for r in opportunities::revenue_of(conn, ids)? {
        if let Some(d) = out.get_mut(&r.opportunity_id) {
            d.revenue.push(r);
        }
    }
    for d in out.values_mut() {
        d.contacts.sort_unstable();
        d.revenue.sort_by_key(|r| r.id);
    }
    Ok(out.into_iter().collect())
}

/// Every lead and deal, a page at a time.
fn read_all(conn: &mut AnyConnection) -> AppResult<Journeys> {
    const LEAD_PAGE: i64 = 100_000;
    const TOUCH_PAGE: i64 = 200_000;
    let mut leads: HashMap<i64, Box<LeadJourney>> = HashMap::new();
    let mut after = 0;
    loop {
        let page = journeys::reach_page(conn, after, LEAD_PAGE)?;
        let Some(last) = page.last().map(|r| r.0) else {
            break;
        };
        leads.extend(page.iter().map(|r| (r.0, Box::new(journey_of(r)))));
        after = last;
    }
    after = 0;
    let mut touches: HashMap<i64, Vec<Touch>> = HashMap::new();
    loop {
        let page = journeys::touch_page(conn, after, TOUCH_PAGE)?;
        let Some(last) = page.last().map(|r| r.0) else {
            break;
        };
        for row in page {
            let (lead, touch) = touch_of(row);
            touches.entry(lead).or_default().push(touch);
        }
        after = last;
    }
    set_touches(&mut leads, touches);
    // Every move that matters to the hand-off reports, kept compact, then one lead at a time.
    after = 0;
    let mut moves: Vec<(i64, chrono::NaiveDateTime, i64, &'static str)> = Vec::new();
    loop {
        let page = journeys::move_page(conn, after, TOUCH_PAGE)?;
        let Some(last) = page.last().map(|r| r.0) else {
            break;
        };
        moves.extend(
            page.into_iter()
                .filter_map(|(id, lead, stage, at)| Some((lead, at, id, stage_read(&stage)?))),
        );
        after = last;
    }
    moves.sort_unstable();
    for run in moves.chunk_by(|a, b| a.0 == b.0) {
        if let Some(j) = leads.get_mut(&run[0].0) {
            let mut history: Vec<_> = run.iter().map(|m| (m.1, m.2, m.3)).collect();
            let (exits, mqls) = hand_offs(&mut history);
            j.exits = exits;
            j.mqls = mqls;
        }
    }
    drop(moves);
    let ids = journeys::opportunity_ids(conn)?;
    let mut deals: HashMap<i64, Box<Deal>> = HashMap::new();
    for chunk in ids.chunks(crate::repo::CHUNK) {
        deals.extend(read_deals(conn, chunk)?);
    }
    Ok(Journeys::of(leads, deals))
}

/// Loads the index of `cache` and keeps it current until the cache is dropped: a thread that
/// retries the load until it succeeds, then catches up every 250 ms and prunes the change log
/// of entries older than a day every ten minutes.
pub fn maintain(db: Db, index: Weak<JourneyIndex>) {
    let spawned = std::thread::Builder::new()
        .name("journey-index".into())
        .spawn(move || {
            crate::db::stop_counting_this_thread();
            let mut pruned = Instant::now();
            loop {
                let Some(index) = index.upgrade() else {
                    return;
                };
                let result = db.get().map_err(AppError::from).and_then(|mut conn| {
                    if index.is_ready() {
                        index.catch_up(&mut conn)?;
                        if pruned.elapsed() > Duration::from_secs(600) {
                            pruned = Instant::now();
                            let before =
                                (Utc::now() - chrono::Duration::days(KEEP_DAYS)).naive_utc();
                            journeys::prune_changes(&mut conn, before)?;
                        }
                        Ok(())
                    } else {
                        index.load(&mut conn)
                    }
                });
                let pause = match result {
                    Ok(()) => POLL,
                    Err(e) => {
                        tracing::warn!(error = ?e, "journey index: could not read the change log");
                        Duration::from_secs(2)
                    }
                };
                drop(index);
                std::thread::sleep(pause);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "journey index: could not start its thread");
    }
}

/// An `Arc` so the maintaining thread can hold it weakly.
pub type SharedIndex = Arc<JourneyIndex>;
