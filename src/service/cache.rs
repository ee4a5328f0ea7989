//! The report cache. Facts read from the database, and what other reports read for a period,
//! are keyed by the version they were read at (a data version every committed write bumps, see
//! `db::write_transaction`, or the journey index's version), so an entry is never served for a
//! later version. Attribution tallies and MARKOV chain counts are kept per query with the index
//! version they are of, and a report brings them forward to the current version before it reads
//! them (`service::attribution`). It knows the domain's types only; what else a report reads
//! for a period is stored by type.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::AppResult;

/// A value of some type read for a period at a data version.
type PeriodKey = (TypeId, Version, Period);
use crate::domain::attribution::Model;
use crate::domain::markov::ChainCounts;
use crate::domain::period::Period;
use crate::domain::report::{StageFacts, Tally};
use crate::domain::stage::LeadStage;

/// What a cached value was read at: a data version of the database, or a version of the
/// journey index (which moves with every change it applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Version {
    Data(i64),
    Indexed(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FactsKey {
    pub(crate) version: Version,
    pub(crate) stage: LeadStage,
    pub(crate) period: Period,
    pub(crate) lookback_days: i64,
    /// The order of the MARKOV removal effects in them, 0 for none (they cost a read of every
    /// touch of the window, so only MARKOV reports pay for them).
    pub(crate) markov: u8,
}

/// A tally's query: everything but the caller (a report is cut to the caller's campaigns
/// when it is read from the tally).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TallyKey {
    pub(crate) model: Model,
    pub(crate) stage: LeadStage,
    pub(crate) period: Period,
    pub(crate) lookback_days: i64,
    /// TIME_DECAY's half-life (0 for the models that do not read it).
    pub(crate) half_life_bits: u64,
    pub(crate) by: crate::domain::report::Buckets,
    pub(crate) mapping: crate::domain::account::Mapping,
}

/// The query of a MARKOV chain's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ChainKey {
    pub(crate) stage: LeadStage,
    pub(crate) period: Period,
    pub(crate) lookback_days: i64,
    /// MARKOV's order (SHAPLEY's games: 0).
    pub(crate) order: u8,
}

/// A stage's credits, and for MARKOV the removal effects they were weighed by.
#[derive(Debug, Clone, Default)]
pub struct Tallied {
    pub tally: Tally,
    pub removal_effects: HashMap<i64, f64>,
}

/// Facts, tallies and chains of recent reports (see the module's comment).
#[derive(Default)]
pub struct ReportCache {
    /// What attribution reads, in memory and current (see `service::index`).
    pub index: std::sync::Arc<super::index::JourneyIndex>,
    facts: Mutex<HashMap<FactsKey, Arc<StageFacts>>>,
    /// Tallies of recent reports, at the version they were made or last brought to.
    tallies: Mutex<HashMap<TallyKey, (Version, Arc<Tallied>)>>,
    /// MARKOV chains' counts at the index version they were brought to (16 MB each at
    /// 2,000 campaigns: a few are kept).
    chains: Mutex<HashMap<ChainKey, (i64, Arc<ChainCounts>)>>,
    /// SHAPLEY games' path-set counts, kept and brought forward like the chains.
    games: Mutex<HashMap<ChainKey, (i64, Arc<crate::domain::shapley::PathSets>)>>,
    /// What other reports read for a period, per data version and type of value: the
    /// funnel's cohort, leakage's MQLs, the facts every statement of a period shares. Keyed by
    /// type, so this module need not know the reports that use it.
    by_period: Mutex<HashMap<PeriodKey, Arc<dyn Any + Send + Sync>>>,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

impl ReportCache {
    const CAPACITY: usize = 64;
    /// Periods kept per type of value.
    const PERIODS: usize = 8;

    /// The `V` of (version, period), loaded by `load` when it is not cached. Entries of older
    /// versions are dropped as soon as a newer one is stored, so nothing stale is served.
    pub(crate) fn get_or_load<V: Any + Send + Sync>(
        &self,
        version: Version,
        period: Period,
        load: impl FnOnce() -> AppResult<V>,
    ) -> AppResult<Arc<V>> {
        let key = (TypeId::of::<V>(), version, period);
        let found = self
            .by_period
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
            .and_then(|v| v.downcast::<V>().ok());
        if let Some(found) = self.count(found) {
            return Ok(found);
        }
        let loaded = Arc::new(load()?);
        if let Ok(mut map) = self.by_period.lock() {
            let kind = TypeId::of::<V>();
            map.retain(|(t, v, _), _| *t != kind || *v >= version);
            if map.keys().filter(|(t, _, _)| *t == kind).count() >= Self::PERIODS {
                map.retain(|(t, _, _), _| *t != kind);
            }
            let erased: Arc<dyn Any + Send + Sync> = loaded.clone();
            map.insert(key, erased);
        }
        Ok(loaded)
    }

    /// The `V` of a period kept at the newest index version, with that version: shared when it
    /// is of version `now` (concurrent asks of an unchanged index all find it), else taken out
    /// for the caller to bring forward and keep again.
    pub(crate) fn take_indexed<V: Any + Send + Sync>(
        &self,
        period: Period,
        now: i64,
    ) -> Option<(i64, Arc<V>)> {
        let kind = TypeId::of::<V>();
        let mut map = self.by_period.lock().ok()?;
        let newest = map
            .keys()
            .filter_map(|(t, v, p)| match v {
                Version::Indexed(at) if *t == kind && *p == period => Some(*at),
                _ => None,
            })
            .max()?;
        let key = (kind, Version::Indexed(newest), period);
        let found = if newest == now {
            map.get(&key)?.clone()
        } else {
            map.remove(&key)?
        };
        Some((newest, found.downcast::<V>().ok()?))
    }

    /// Forgets the `V` of a period kept at any index version (it was computed under settings
    /// that changed since).
    pub(crate) fn forget_indexed<V: Any + Send + Sync>(&self, period: Period) {
        let kind = TypeId::of::<V>();
        if let Ok(mut map) = self.by_period.lock() {
            map.retain(|(t, v, p), _| {
                !(*t == kind && *p == period && matches!(v, Version::Indexed(_)))
            });
        }
    }

    /// Keeps the `V` of a period at an index version (not when a newer one is kept already).
    pub(crate) fn keep_indexed<V: Any + Send + Sync>(
        &self,
        version: i64,
        period: Period,
        value: Arc<V>,
    ) {
        let kind = TypeId::of::<V>();
        if let Ok(mut map) = self.by_period.lock() {
            let newer = map.keys().any(|(t, v, p)| {
                *t == kind && *p == period && matches!(v, Version::Indexed(at) if *at >= version)
            });
            if newer {
                return;
            }
            map.retain(|(t, _, p), _| *t != kind || *p != period);
            if map.keys().filter(|(t, _, _)| *t == kind).count() >= Self::PERIODS {
                map.retain(|(t, _, _), _| *t != kind);
            }
            let erased: Arc<dyn Any + Send + Sync> = value;
            map.insert((kind, Version::Indexed(version), period), erased);
        }
    }

    /// (hits, misses) so far, for `/metrics`.
    pub fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.hits.load(Relaxed), self.misses.load(Relaxed))
    }

    /// Counts a lookup made outside this module (`take_indexed`) as a hit or a miss.
    pub(crate) fn counted(&self, hit: bool) {
        self.count(hit.then_some(()));
    }

    /// Counts a lookup of any of the caches as a hit or a miss.
    fn count<T>(&self, found: Option<T>) -> Option<T> {
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        found
    }

    pub(crate) fn get(&self, key: &FactsKey) -> Option<Arc<StageFacts>> {
        let found = self.facts.lock().ok()?.get(key).cloned();
        self.count(found)
    }

    pub(crate) fn put(&self, key: FactsKey, facts: Arc<StageFacts>) {
        if let Ok(mut map) = self.facts.lock() {
            map.retain(|k, _| k.version == key.version);
            if map.len() >= Self::CAPACITY {
                map.clear();
            }
            map.insert(key, facts);
        }
    }

    /// Takes the tally of `key` out (a report brings it forward, then keeps it again).
    pub(crate) fn take_tally(&self, key: &TallyKey) -> Option<(Version, Arc<Tallied>)> {
        let found = self.tallies.lock().ok()?.remove(key);
        self.count(found)
    }

    /// Keeps a tally unless a newer one of the same query is kept; at capacity the one of the
    /// oldest version goes.
    pub(crate) fn keep_tally(&self, key: TallyKey, version: Version, tallied: Arc<Tallied>) {
        if let Ok(mut map) = self.tallies.lock() {
            if map.get(&key).is_some_and(|(v, _)| *v > version) {
                return;
            }
            if map.len() >= 2 * Self::CAPACITY && !map.contains_key(&key) {
                if let Some(oldest) = map.iter().min_by_key(|(_, (v, _))| *v).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
            map.insert(key, (version, tallied));
        }
    }

    /// Takes the counts of `key` out (a report brings them forward, then keeps them again).
    pub(crate) fn take_chain(&self, key: &ChainKey) -> Option<(i64, Arc<ChainCounts>)> {
        self.chains.lock().ok()?.remove(key)
    }

    /// Keeps a chain's counts; beyond `CHAINS` the oldest go.
    pub(crate) fn keep_chain(&self, key: ChainKey, version: i64, counts: Arc<ChainCounts>) {
        keep_versioned(&self.chains, key, version, counts);
    }

    /// Takes a SHAPLEY game's counts out (brought forward, then kept again).
    pub(crate) fn take_game(
        &self,
        key: &ChainKey,
    ) -> Option<(i64, Arc<crate::domain::shapley::PathSets>)> {
        self.games.lock().ok()?.remove(key)
    }

    pub(crate) fn keep_game(
        &self,
        key: ChainKey,
        version: i64,
        sets: Arc<crate::domain::shapley::PathSets>,
    ) {
        keep_versioned(&self.games, key, version, sets);
    }
}

/// Keeps `value` at `version` unless a newer one is kept; beyond 12 entries the oldest go.
fn keep_versioned<V>(
    map: &Mutex<HashMap<ChainKey, (i64, Arc<V>)>>,
    key: ChainKey,
    version: i64,
    value: Arc<V>,
) {
    const KEPT: usize = 12;
    if let Ok(mut map) = map.lock() {
        if map.get(&key).is_some_and(|(v, _)| *v > version) {
            return;
        }
        while map.len() >= KEPT && !map.contains_key(&key) {
            let Some(oldest) = map.iter().min_by_key(|(_, (v, _))| *v).map(|(k, _)| *k) else {
                break;
            };
            map.remove(&oldest);
        }
        map.insert(key, (version, value));
    }
}
