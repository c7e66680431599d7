//! A bounded, thread-safe cache of verified chains.
//!
//! An entry is found by a fast keyed 64-bit hash (XXH3 with a per-cache random seed) of
//! what was presented (purpose, server name, leaf and chain bytes), and a hit is served
//! only if the stored presented bytes equal the new ones byte for byte. The hash picks
//! the bucket, the comparison decides: two different chains never share an entry, even if
//! their hashes collide. Buckets hold at most [`MAX_BUCKET`] entries, so even an input
//! crafted to collide costs a few byte comparisons, never a long scan.
//!
//! A hit never skips the time check: each entry keeps the validity window of the whole
//! verified path, and a lookup outside it is a miss, so the full verification reports the
//! precise error. Loading new CRLs bumps a generation, clearing the cache and refusing
//! late inserts from verifications that started under the old CRLs.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use xxhash_rust::xxh3::Xxh3;

use super::Identity;

/// Most entries whose hashes collide that one bucket keeps. With a keyed 64-bit hash a
/// second entry in a bucket is already vanishingly rare; the cap bounds the scan if an
/// attacker finds collisions anyway (their chains then simply go uncached).
const MAX_BUCKET: usize = 4;

/// What a peer presented, as borrowed from the caller: the cache compares these bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Presented<'a> {
    /// The purpose verified for ([`super::Usage`]'s tag).
    pub(crate) usage: u8,
    /// The server name checked (`verify_server`), empty otherwise.
    pub(crate) server_name: &'a str,
    pub(crate) leaf: &'a [u8],
    pub(crate) chain: &'a [&'a [u8]],
}

impl Presented<'_> {
    fn parts(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.leaf).chain(self.chain.iter().copied())
    }
}

/// An owned copy of [`Presented`]: every certificate's bytes, concatenated, with their
/// lengths, so a lookup can compare exactly.
#[derive(Debug)]
struct StoredPresented {
    usage: u8,
    server_name: Box<str>,
    lengths: Box<[usize]>,
    bytes: Box<[u8]>,
}

impl StoredPresented {
    fn new(p: &Presented<'_>) -> Self {
        let lengths: Box<[usize]> = p.parts().map(<[u8]>::len).collect();
        let mut bytes = Vec::with_capacity(lengths.iter().sum());
        for part in p.parts() {
            bytes.extend_from_slice(part);
        }
        Self {
            usage: p.usage,
            server_name: p.server_name.into(),
            lengths,
            bytes: bytes.into_boxed_slice(),
        }
    }

    /// True only if `p` is exactly what was stored: same purpose, same name, same number of
    /// certificates, each byte-for-byte equal.
    fn matches(&self, p: &Presented<'_>) -> bool {
        if self.usage != p.usage
            || *self.server_name != *p.server_name
            || self.lengths.len() != 1 + p.chain.len()
        {
            return false;
        }
        let mut rest: &[u8] = &self.bytes;
        for (part, &len) in p.parts().zip(self.lengths.iter()) {
            if part.len() != len {
                return false;
            }
            let Some((stored, tail)) = rest.split_at_checked(len) else {
                return false;
            };
            if stored != part {
                return false;
            }
            rest = tail;
        }
        rest.is_empty()
    }
}

#[derive(Debug)]
struct Entry {
    presented: StoredPresented,
    /// Insertion number; matches this entry's slot in `Inner::order`.
    seq: u64,
    identity: Arc<Identity>,
    valid_from: i64,
    valid_until: i64,
}

/// The map's keys are already keyed hashes: hashing them again would only cost time.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `u64` keys; fold anything else in, for completeness.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<u64, Vec<Entry>, BuildHasherDefault<PassThrough>>,
    /// Insertion order (hash, seq), for first-in-first-out eviction; one item per entry.
    order: VecDeque<(u64, u64)>,
    next_seq: u64,
    generation: u64,
}

impl Inner {
    fn evict_oldest(&mut self) {
        let Some((hash, seq)) = self.order.pop_front() else {
            return;
        };
        if let Some(bucket) = self.map.get_mut(&hash) {
            bucket.retain(|e| e.seq != seq);
            if bucket.is_empty() {
                self.map.remove(&hash);
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct VerificationCache {
    capacity: usize,
    seed: u64,
    inner: Mutex<Inner>,
}

impl VerificationCache {
    pub(crate) fn new(capacity: usize) -> Self {
        // std's RandomState is seeded from the OS: a per-cache secret the hash is keyed by.
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x706f_7274_u64);
        Self {
            capacity,
            seed,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated in a way that
        // matters (worst case: a stale order item), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().order.len()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The keyed hash that picks `p`'s bucket. Lengths are hashed too, so moving bytes
    /// between certificates changes the hash (the comparison would catch it anyway).
    pub(crate) fn hash(&self, p: &Presented<'_>) -> u64 {
        let mut h = Xxh3::with_seed(self.seed);
        h.update(&[p.usage]);
        h.update(&(p.server_name.len() as u64).to_le_bytes());
        h.update(p.server_name.as_bytes());
        for part in p.parts() {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.digest()
    }

    /// The cached identity, if exactly `p` was verified and `at` lies inside its path's
    /// window. `hash` is [`Self::hash`] of `p`.
    pub(crate) fn get(&self, hash: u64, p: &Presented<'_>, at: i64) -> Option<Arc<Identity>> {
        if self.capacity == 0 {
            return None;
        }
        let inner = self.lock();
        let entry = inner
            .map
            .get(&hash)?
            .iter()
            .find(|e| e.presented.matches(p))?;
        (entry.valid_from <= at && at <= entry.valid_until).then(|| Arc::clone(&entry.identity))
    }

    /// Stores a verification result made under CRL `generation`; dropped if CRLs changed
    /// since, or if `hash`'s bucket is full of other chains.
    pub(crate) fn insert(
        &self,
        hash: u64,
        p: &Presented<'_>,
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
        if let Some(existing) = inner
            .map
            .get_mut(&hash)
            .and_then(|bucket| bucket.iter_mut().find(|e| e.presented.matches(p)))
        {
            existing.identity = identity;
            existing.valid_from = valid_from;
            existing.valid_until = valid_until;
            return;
        }
        if inner.map.get(&hash).is_some_and(|b| b.len() >= MAX_BUCKET) {
            return;
        }
        while inner.order.len() >= self.capacity {
            if inner.order.is_empty() {
                break;
            }
            inner.evict_oldest();
        }
        let seq = inner.next_seq;
        inner.next_seq = inner.next_seq.wrapping_add(1);
        inner.order.push_back((hash, seq));
        inner.map.entry(hash).or_default().push(Entry {
            presented: StoredPresented::new(p),
            seq,
            identity,
            valid_from,
            valid_until,
        });
    }

    /// Forgets everything and starts a new generation (new CRLs were loaded).
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.order.clear();
        inner.generation = inner.generation.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DistinguishedName;

    fn identity(cn: &str) -> Arc<Identity> {
        Arc::new(Identity {
            subject: DistinguishedName::default(),
            issuer: DistinguishedName::default(),
            common_name: Some(cn.to_owned()),
            dns_names: vec![],
            uris: vec![],
            emails: vec![],
            ips: vec![],
            spiffe_id: None,
            serial: String::new(),
            fingerprint: String::new(),
            not_before: 0,
            not_after: 100,
            chain_fingerprints: vec![],
            revocation_warning: None,
        })
    }

    fn presented<'a>(leaf: &'a [u8], chain: &'a [&'a [u8]]) -> Presented<'a> {
        Presented {
            usage: 1,
            server_name: "",
            leaf,
            chain,
        }
    }

    fn cn(hit: Option<Arc<Identity>>) -> Option<String> {
        hit.and_then(|i| i.common_name.clone())
    }

    /// Chains forced into the same bucket (the worst case: a full hash collision) still
    /// each get their own entry, and a hit needs every byte, the purpose and the name to
    /// match.
    #[test]
    fn colliding_chains_never_share_an_entry() {
        let cache = VerificationCache::new(16);
        const H: u64 = 42; // one bucket for everything
        let a = presented(b"leaf-a", &[b"inter"]);
        let b = presented(b"leaf-b", &[b"inter"]);
        // Same bytes, split differently between leaf and chain.
        let a_split = presented(b"leaf-", &[b"ainter"]);
        let a_no_chain = presented(b"leaf-a", &[]);
        let a_two = presented(b"leaf-a", &[b"inter", b"inter"]);
        let a_server = Presented { usage: 2, ..a };
        let a_named = Presented {
            server_name: "a.example",
            ..a
        };
        let a_prefix = presented(b"leaf-a", &[b"inte"]);
        cache.insert(H, &a, 0, identity("a"), 0, 100);
        assert_eq!(cn(cache.get(H, &a, 50)).as_deref(), Some("a"));
        for other in [b, a_split, a_no_chain, a_two, a_server, a_named, a_prefix] {
            assert!(
                cache.get(H, &other, 50).is_none(),
                "{other:?} hit a's entry"
            );
        }
        cache.insert(H, &b, 0, identity("b"), 0, 100);
        assert_eq!(cn(cache.get(H, &a, 50)).as_deref(), Some("a"));
        assert_eq!(cn(cache.get(H, &b, 50)).as_deref(), Some("b"));
        assert_eq!(cache.len(), 2);
        // The bucket is capped: two more fit, the fifth colliding chain is not cached.
        cache.insert(H, &a_split, 0, identity("s"), 0, 100);
        cache.insert(H, &a_two, 0, identity("t"), 0, 100);
        cache.insert(H, &a_server, 0, identity("x"), 0, 100);
        assert!(cache.get(H, &a_server, 50).is_none());
        assert_eq!(cache.len(), MAX_BUCKET);
        assert_eq!(cn(cache.get(H, &a_two, 50)).as_deref(), Some("t"));
        // Outside the validity window: a miss.
        assert!(cache.get(H, &a, 101).is_none());
    }

    #[test]
    fn eviction_is_first_in_first_out_and_bounded() {
        let cache = VerificationCache::new(2);
        let leaves: [&[u8]; 3] = [b"one", b"two", b"three"];
        for (i, leaf) in leaves.iter().enumerate() {
            let p = presented(leaf, &[]);
            // The first two share a bucket, so eviction must remove the right entry.
            let h = if i < 2 { 7 } else { cache.hash(&p) };
            cache.insert(h, &p, 0, identity(&i.to_string()), 0, 100);
            assert!(cache.len() <= 2);
        }
        assert!(cache.get(7, &presented(b"one", &[]), 1).is_none());
        assert_eq!(
            cn(cache.get(7, &presented(b"two", &[]), 1)).as_deref(),
            Some("1")
        );
        let three = presented(b"three", &[]);
        assert_eq!(
            cn(cache.get(cache.hash(&three), &three, 1)).as_deref(),
            Some("2")
        );
        // Re-inserting the same bytes replaces, never duplicates.
        cache.insert(cache.hash(&three), &three, 0, identity("again"), 0, 100);
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cn(cache.get(cache.hash(&three), &three, 1)).as_deref(),
            Some("again")
        );
    }

    #[test]
    fn stale_generation_inserts_are_dropped() {
        let cache = VerificationCache::new(4);
        let p = presented(b"leaf", &[]);
        let generation = cache.generation();
        cache.clear();
        cache.insert(cache.hash(&p), &p, generation, identity("old"), 0, 100);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn hash_separates_parts_and_is_keyed() {
        let c1 = VerificationCache::new(1);
        let c2 = VerificationCache::new(1);
        let a = presented(b"ab", &[b"c"]);
        let b = presented(b"a", &[b"bc"]);
        assert_ne!(c1.hash(&a), c1.hash(&b));
        // Per-cache seeds: the same input hashes differently in another cache.
        assert_ne!(c1.hash(&a), c2.hash(&a));
    }
}
