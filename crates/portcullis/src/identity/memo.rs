//! What the path checks learn from an intermediate's bytes alone, remembered for the
//! intermediates seen most recently.
//!
//! Every client of a CA presents the same intermediate, so a cold verification (a leaf
//! the result cache has not seen) usually meets an intermediate it has already judged.
//! The facts kept here are a pure function of the certificate's DER (its fingerprint,
//! validity, names and whether it passes the intermediate profile), so a hit is exact: the
//! whole DER is compared, never a hash of it. Signatures, revocation, name constraints and
//! everything else that depends on the path are still checked on every verification.
//! A certificate that fails the profile is not remembered (its error is rebuilt each time).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use super::cert::Cert;
use super::profile::{self, Role};

/// How many intermediates are remembered by default. Real deployments present a handful; the cap
/// bounds memory (each entry holds its DER, at most `decode::MAX_CERT_BYTES`).
pub(crate) const CAPACITY: usize = 32;

/// One intermediate that passed the profile checks.
#[derive(Debug)]
pub(crate) struct Facts {
    /// SHA-256 of the DER, lowercase hex.
    pub(crate) fingerprint: String,
    /// The subject Name, raw DER (for the cRLSign check).
    pub(crate) subject_raw: Vec<u8>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) may_sign_crls: bool,
    pub(crate) self_issued: bool,
    /// It carries name constraints of forms webpki does not process.
    pub(crate) beyond_webpki_constraints: bool,
}

impl Facts {
    /// Judges a parsed certificate as an intermediate: `Err` with the profile's reason
    /// (the caller names the certificate), or the facts.
    pub(crate) fn judge(parsed: &Cert<'_>, fingerprint: String) -> Result<Self, String> {
        profile::check_issuer(parsed, Role::Intermediate)?;
        Ok(Self {
            fingerprint,
            subject_raw: parsed.subject.raw.to_vec(),
            not_before: parsed.not_before,
            not_after: parsed.not_after,
            may_sign_crls: profile::may_sign_crls(parsed),
            self_issued: parsed.is_self_issued(),
            beyond_webpki_constraints: parsed
                .extensions
                .name_constraints
                .is_some_and(|n| n.value.beyond_webpki),
        })
    }
}

/// One remembered intermediate: its exact DER and what was found.
type Entry = (Box<[u8]>, Arc<Facts>);

#[derive(Debug)]
pub(crate) struct IntermediateMemo {
    capacity: usize,
    entries: RwLock<Vec<Entry>>,
    /// The slot the next insertion replaces once the memo is full (round robin).
    next: AtomicUsize,
}

impl IntermediateMemo {
    /// A memo of at most `capacity` intermediates (0: remembers nothing).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
        }
    }

    /// The facts for exactly these bytes, if remembered.
    pub(crate) fn get(&self, der: &[u8]) -> Option<Arc<Facts>> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .find(|(d, _)| d.len() == der.len() && **d == *der)
            .map(|(_, f)| Arc::clone(f))
    }

    /// Remembers `facts` for `der`, replacing the oldest entry when full.
    pub(crate) fn insert(&self, der: &[u8], facts: Arc<Facts>) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.iter().any(|(d, _)| **d == *der) {
            return;
        }
        let entry = (Box::from(der), facts);
        if entries.len() < self.capacity {
            entries.push(entry);
        } else {
            let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.capacity;
            if let Some(e) = entries.get_mut(slot) {
                *e = entry;
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(tag: &str) -> Arc<Facts> {
        Arc::new(Facts {
            fingerprint: tag.to_owned(),
            subject_raw: Vec::new(),
            not_before: 0,
            not_after: 1,
            may_sign_crls: true,
            self_issued: false,
            beyond_webpki_constraints: false,
        })
    }

    #[test]
    fn a_hit_needs_the_exact_bytes() {
        let memo = IntermediateMemo::new(CAPACITY);
        memo.insert(b"abc", facts("abc"));
        assert_eq!(
            memo.get(b"abc").map(|f| f.fingerprint.clone()),
            Some("abc".into())
        );
        assert!(memo.get(b"abd").is_none());
        assert!(memo.get(b"ab").is_none());
        assert!(memo.get(b"abcd").is_none());
    }

    #[test]
    fn it_stays_within_its_capacity_and_keeps_the_newest() {
        let memo = IntermediateMemo::new(CAPACITY);
        for i in 0..(CAPACITY * 3) {
            let der = i.to_be_bytes();
            memo.insert(&der, facts(&i.to_string()));
            memo.insert(&der, facts("again")); // a repeat changes nothing
        }
        assert_eq!(memo.len(), CAPACITY);
        let last = (CAPACITY * 3 - 1).to_be_bytes();
        assert_eq!(
            memo.get(&last).map(|f| f.fingerprint.clone()),
            Some((CAPACITY * 3 - 1).to_string())
        );
        assert!(memo.get(&0usize.to_be_bytes()).is_none());
    }

    #[test]
    fn capacity_zero_remembers_nothing() {
        let memo = IntermediateMemo::new(0);
        memo.insert(b"abc", facts("abc"));
        assert!(memo.get(b"abc").is_none());
        assert_eq!(memo.len(), 0);
    }
}
