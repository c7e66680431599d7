//! A bounded, thread-safe cache of verified chains.
//!
//! Keyed by the SHA-256 of the presented bytes (and the purpose/name they were verified
//! for). A hit never skips the time check: each entry keeps the validity window of the
//! whole verified path, and a lookup outside it is a miss, so the full verification
//! reports the precise error. Loading new CRLs bumps a generation, clearing the cache and
//! refusing late inserts from verifications that started under the old CRLs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::Identity;

pub(crate) type CacheKey = [u8; 32];

#[derive(Debug)]
struct Entry {
    identity: Arc<Identity>,
    valid_from: i64,
    valid_until: i64,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<CacheKey, Entry>,
    /// Insertion order, for first-in-first-out eviction; holds exactly the keys of `map`.
    order: VecDeque<CacheKey>,
    generation: u64,
}

#[derive(Debug)]
pub(crate) struct VerificationCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl VerificationCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated in a way that
        // matters (worst case: a stale order entry), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The cached identity, if `key` was verified and `at` lies inside its path's window.
    pub(crate) fn get(&self, key: &CacheKey, at: i64) -> Option<Arc<Identity>> {
        if self.capacity == 0 {
            return None;
        }
        let inner = self.lock();
        let entry = inner.map.get(key)?;
        (entry.valid_from <= at && at <= entry.valid_until).then(|| Arc::clone(&entry.identity))
    }

    /// Stores a verification result made under CRL `generation`; dropped if CRLs changed since.
    pub(crate) fn insert(
        &self,
        key: CacheKey,
        generation: u64,
        identity: Arc<Identity>,
        valid_from: i64,
        valid_until: i64,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        let entry = Entry {
            identity,
            valid_from,
            valid_until,
        };
        if let Some(slot) = inner.map.get_mut(&key) {
            *slot = entry;
            return;
        }
        while inner.map.len() >= self.capacity {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.map.remove(&old);
                }
                None => break,
            }
        }
        inner.order.push_back(key);
        inner.map.insert(key, entry);
    }

    /// Forgets everything and starts a new generation (new CRLs were loaded).
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.order.clear();
        inner.generation = inner.generation.wrapping_add(1);
    }
}
