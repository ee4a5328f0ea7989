//! A small map whose entries are used for a limited time: the caches of callers' user rows
//! and of verified tokens, which both answer "what did we learn about this key a moment ago".

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Values by key, each used while younger than `ttl`. A zero `ttl` keeps nothing. Past
/// `capacity` the stale entries go, and if that is not enough, all of them.
pub struct TtlMap<V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> TtlMap<V> {
    pub fn new(ttl: Duration, capacity: usize) -> TtlMap<V> {
        TtlMap {
            ttl,
            capacity,
            entries: Default::default(),
        }
    }

    /// The value stored for `key` less than `ttl` before `now`.
    pub fn get(&self, key: &str, now: Instant) -> Option<V> {
        let entries = self.lock();
        let (at, value) = entries.get(key)?;
        (now.saturating_duration_since(*at) < self.ttl).then(|| value.clone())
    }

    pub fn put(&self, key: &str, value: V, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key.to_string(), (now, value));
    }

    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
