//! [`TrustStore`]: trust anchors, intermediates, CRLs and the purpose to verify for;
//! [`TrustStore::verify`] turns a presented chain into an [`Identity`].

use std::cell::RefCell;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::cache::{Presented, VerificationCache};
use super::cert::Cert;
use super::crl::{CrlInfo, CrlSet};
use super::crl_fetch::Fetcher;
use super::crl_refresh::{CrlNetworkConfig, CrlRefreshEvent, CrlRefresher, CrlSources};
use super::dn::hex;
use super::memo;
use super::pkix;
use super::profile::{self, Role};
use super::{decode, CertificateError, DistinguishedName, Identity};
use crate::egress::EgressPolicy;
use ring::digest;
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use webpki::{
    EndEntityCert, ExpirationPolicy, KeyUsage, RevocationCheckDepth, RevocationOptionsBuilder,
    UnknownStatusPolicy, VerifiedPath,
};

/// Most bytes of certificates a peer may present besides its leaf (256 KiB: a
/// 35-certificate cross-signed mesh of RSA-4096 CAs fits). Path-building work is bounded
/// separately, by signature checks, candidate paths and name comparisons; a pool that
/// exhausts them is refused with `cert.chain_too_long`.
pub const MAX_PRESENTED_CHAIN_BYTES: usize = 256 * 1024;

/// Default number of verified chains remembered by [`TrustStore`]'s cache.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// What the verified certificate must be good for (its extended key usage).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Usage {
    /// TLS client authentication (`id-kp-clientAuth`): verifying the clients that call us.
    #[default]
    ClientAuth,
    /// TLS server authentication (`id-kp-serverAuth`): verifying servers we call.
    ServerAuth,
}

impl Usage {
    fn webpki(self) -> KeyUsage {
        match self {
            Self::ClientAuth => KeyUsage::client_auth(),
            Self::ServerAuth => KeyUsage::server_auth(),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::ClientAuth => "TLS client authentication",
            Self::ServerAuth => "TLS server authentication",
        }
    }

    /// The extended key usage OID (value bytes) this usage requires, if EKU is present.
    fn eku_oid(self) -> &'static [u8] {
        match self {
            Self::ClientAuth => &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02],
            Self::ServerAuth => &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01],
        }
    }

    fn tag(self) -> u8 {
        match self {
            Self::ClientAuth => 1,
            Self::ServerAuth => 2,
        }
    }
}

/// Collects a [`TrustStore`]'s configuration; [`build`](Self::build) checks it all.
///
/// ```
/// use portcullis::identity::{TrustStore, Usage};
/// // An empty bundle is refused with a clear error, not silently "trust nothing".
/// let err = TrustStore::builder().ca_pem(b"").build().unwrap_err();
/// assert_eq!(portcullis::ErrorCode::code(&err), "cert.bad_trust_store");
/// ```
#[derive(Debug, Default)]
pub struct TrustStoreBuilder {
    anchors: Vec<Vec<u8>>,
    intermediates: Vec<Vec<u8>>,
    crls: Vec<Vec<u8>>,
    usage: Usage,
    deny_unknown_revocation: bool,
    require_spiffe: bool,
    cache_capacity: Option<usize>,
    max_intermediates: Option<usize>,
    no_intermediate_memo: bool,
    crl_network: CrlNetworkConfig,
    error: Option<CertificateError>,
}

impl TrustStoreBuilder {
    fn keep_first_error(&mut self, err: CertificateError) {
        if self.error.is_none() {
            self.error = Some(err);
        }
    }

    /// Adds every certificate of a PEM bundle as a trust anchor.
    pub fn ca_pem(mut self, pem: &[u8]) -> Self {
        match decode::decode_pem_certificates(pem) {
            Ok(certs) => self.anchors.extend(certs),
            Err(e) => self.keep_first_error(CertificateError::bad_trust_store(format!(
                "the CA bundle has no usable certificate: {e}"
            ))),
        }
        self
    }

    /// Adds trust anchors from `input`: a PEM bundle (every certificate in it) or one DER
    /// certificate, whichever it is ([`decode::is_der`] decides: PEM text that happens to
    /// start with `0` is still PEM).
    pub fn ca(self, input: &[u8]) -> Self {
        if decode::is_der(input) {
            self.ca_der(input)
        } else {
            self.ca_pem(input)
        }
    }

    /// Adds one DER certificate as a trust anchor.
    pub fn ca_der(mut self, der: &[u8]) -> Self {
        match decode::decode_der(der) {
            Ok(d) => self.anchors.push(d),
            Err(e) => self.keep_first_error(CertificateError::bad_trust_store(format!(
                "a CA certificate is not DER: {e}"
            ))),
        }
        self
    }

    /// Adds intermediate certificates (PEM, one or many; or one DER) that the store may use
    /// to build paths even when peers do not present them. They are not trusted by
    /// themselves: each must chain to an anchor.
    pub fn intermediates(mut self, input: &[u8]) -> Self {
        match decode::decode_certificates(input) {
            Ok(certs) => self.intermediates.extend(certs),
            Err(e) => self.keep_first_error(CertificateError::bad_trust_store(format!(
                "an intermediate certificate could not be decoded: {e}"
            ))),
        }
        self
    }

    /// Adds certificate revocation lists (PEM blocks or one DER CRL). With any CRL loaded,
    /// the leaf and every intermediate are checked against the CRLs of their issuers.
    ///
    /// Per issuer (and issuingDistributionPoint scope) the CRL with the highest cRLNumber
    /// is used and older ones are dropped, whatever the order they were added in; two
    /// different CRLs with the same cRLNumber make [`build`](Self::build) fail. A CRL
    /// issued by a configured CA (anchor or intermediate) must verify under its key. Past
    /// its nextUpdate a CRL is *lapsed*: see [`TrustStore::verify`].
    pub fn crls(mut self, input: &[u8]) -> Self {
        match decode::decode_crls(input) {
            Ok(crls) => self.crls.extend(crls),
            Err(e) => self.keep_first_error(CertificateError::bad_trust_store(format!(
                "a CRL could not be decoded: {e}"
            ))),
        }
        self
    }

    /// The purpose to verify for; [`Usage::ClientAuth`] by default.
    pub fn usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// When CRLs are loaded, refuse certificates whose issuer has no loaded CRL
    /// (`cert.revocation_unknown`) instead of treating them as not revoked. Off by default.
    pub fn deny_unknown_revocation(mut self, deny: bool) -> Self {
        self.deny_unknown_revocation = deny;
        self
    }

    /// Require every leaf to be a SPIFFE X509-SVID (`cert.not_spiffe` otherwise). A leaf
    /// that carries a `spiffe://` URI SAN is held to the SVID rules either way.
    pub fn require_spiffe(mut self, require: bool) -> Self {
        self.require_spiffe = require;
        self
    }

    /// How many verified chains to remember ([`DEFAULT_CACHE_CAPACITY`] by default); 0
    /// disables the cache.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = Some(capacity);
        self
    }

    /// At most `n` logical intermediates between leaf and anchor (self-issued re-keys of
    /// the same CA do not count, as in RFC 5280 path length). Longer paths are refused with
    /// `cert.chain_too_long`. Without this, only webpki's own depth limit applies.
    pub fn max_intermediates(mut self, n: usize) -> Self {
        self.max_intermediates = Some(n);
        self
    }

    /// Whether to remember what the profile checks found about the intermediates seen
    /// most recently (default: yes, the last 32). The facts kept (fingerprint, validity,
    /// subject, profile verdict) depend only on the certificate's bytes, and a hit compares
    /// the whole DER, so turning this off changes speed, never a verdict: a new leaf under
    /// a known intermediate then re-parses and re-hashes that intermediate too.
    /// Signatures, revocation and name constraints are checked on every verification
    /// either way.
    pub fn intermediate_memo(mut self, enabled: bool) -> Self {
        self.no_intermediate_memo = !enabled;
        self
    }

    /// Fetches CRLs from these distribution points (`http://` URLs) through the
    /// [`crl_egress`](Self::crl_egress) policy: once when the store is built, then on
    /// [`TrustStore::refresh_crls`] or in the background
    /// ([`TrustStore::spawn_crl_refresher`]). They join the CRLs given as bytes.
    pub fn crl_urls<I: IntoIterator<Item = S>, S: Into<String>>(mut self, urls: I) -> Self {
        self.crl_network
            .urls
            .extend(urls.into_iter().map(Into::into));
        self
    }

    /// Also fetch the CRLs named by the cRLDistributionPoints of the configured CAs
    /// (anchors and intermediates): the CRLs that say whether those CAs are revoked.
    pub fn crl_from_distribution_points(mut self, enabled: bool) -> Self {
        self.crl_network.from_distribution_points = enabled;
        self
    }

    /// The egress policy CRL fetches must pass (required with CRL URLs; it must allow
    /// `http` and the distribution points' hosts). Connections go only to the addresses
    /// it checked.
    pub fn crl_egress(mut self, policy: Arc<EgressPolicy>) -> Self {
        self.crl_network.egress = Some(policy);
        self
    }

    /// Caps on one CRL fetch: body bytes ([`DEFAULT_MAX_CRL_BYTES`](super::DEFAULT_MAX_CRL_BYTES) by default) and total
    /// time, redirects included ([`DEFAULT_FETCH_TIMEOUT`](super::DEFAULT_FETCH_TIMEOUT)).
    pub fn crl_fetch_limits(mut self, max_bytes: usize, timeout: Duration) -> Self {
        self.crl_network.fetcher = Fetcher { max_bytes, timeout };
        self
    }

    /// Bounds on the background refresh: the refresher wakes a quarter of the time before
    /// the earliest nextUpdate, but no sooner than `min` and no later than `max`; after a
    /// failed fetch, within `retry`. Defaults: 30 s, 6 h, 5 min.
    pub fn crl_refresh_schedule(mut self, min: Duration, max: Duration, retry: Duration) -> Self {
        self.crl_network.schedule = Some((min, max.max(min), retry));
        self
    }

    /// Where refresh events go (one per URL per refresh); by default one line each on
    /// standard error. [`TrustStore::crl_refresh_log`] keeps the recent ones either way.
    pub fn on_crl_refresh(
        mut self,
        log: impl Fn(&CrlRefreshEvent) + Send + Sync + 'static,
    ) -> Self {
        self.crl_network.log = Some(Arc::new(log));
        self
    }

    /// Checks the configuration and builds the store.
    pub fn build(self) -> Result<TrustStore, CertificateError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.anchors.is_empty() {
            return Err(CertificateError::bad_trust_store(
                "no trust anchors: configure at least one CA certificate",
            ));
        }
        let mut anchors = Vec::with_capacity(self.anchors.len());
        let mut anchor_info = Vec::with_capacity(self.anchors.len());
        let anchor_ders = self.anchors.clone();
        for der in self.anchors {
            let cert_der = CertificateDer::from(der.as_slice());
            let anchor = webpki::anchor_from_trusted_cert(&cert_der)
                .map_err(|e| {
                    CertificateError::bad_trust_store(format!(
                        "CA certificate (sha256 {}) is not a usable trust anchor: {e:?}",
                        fingerprint(&der)
                    ))
                })?
                .to_owned();
            // Anchors are trusted by configuration, but an anchor that is not a CA (or
            // breaks the profile) must not issue: paths through it are refused.
            let info = match Cert::parse(&der) {
                Ok(cert) => AnchorInfo {
                    fingerprint: fingerprint(&der),
                    problem: profile::check_issuer(&cert, Role::Anchor).err(),
                    not_before: cert.not_before,
                    not_after: cert.not_after,
                    subject_raw: cert.subject.raw.to_vec(),
                    may_sign_crls: profile::may_sign_crls(&cert),
                },
                Err(e) => AnchorInfo {
                    fingerprint: fingerprint(&der),
                    problem: Some(format!("trust anchor does not parse ({e})")),
                    not_before: i64::MIN,
                    not_after: i64::MAX,
                    subject_raw: Vec::new(),
                    may_sign_crls: false,
                },
            };
            anchors.push(anchor);
            anchor_info.push(info);
        }
        let mut crl_signers = anchor_ders;
        crl_signers.extend(self.intermediates.iter().cloned());
        let crls = CrlSet::load(&self.crls, &crl_signers)?;
        let intermediates = self
            .intermediates
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        let crl_sources = crl_sources(self.crl_network, &self.crls, crl_signers.iter())?;
        let store = TrustStore {
            anchors,
            anchor_info,
            intermediates,
            crl_signers,
            crls: RwLock::new(Arc::new(crls)),
            usage: self.usage,
            deny_unknown_revocation: self.deny_unknown_revocation,
            require_spiffe: self.require_spiffe,
            max_intermediates: self.max_intermediates,
            cache: VerificationCache::new(self.cache_capacity.unwrap_or(DEFAULT_CACHE_CAPACITY)),
            crl_sources,
            memo: memo::IntermediateMemo::new(if self.no_intermediate_memo {
                0
            } else {
                memo::CAPACITY
            }),
        };
        if store.crl_sources.is_some() {
            store.refresh_crls();
        }
        Ok(store)
    }
}

/// The network CRL sources, if any URL is configured (or found in the CAs' distribution
/// points).
fn crl_sources<'d>(
    config: CrlNetworkConfig,
    fixed: &[Vec<u8>],
    cas: impl Iterator<Item = &'d Vec<u8>>,
) -> Result<Option<CrlSources>, CertificateError> {
    let mut urls = config.urls;
    if config.from_distribution_points {
        for der in cas {
            if let Ok(cert) = Cert::parse(der) {
                urls.extend(pkix::distribution_point_uris(&cert));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    urls.retain(|u| seen.insert(u.clone()));
    if urls.is_empty() {
        return Ok(None);
    }
    let Some(egress) = config.egress else {
        return Err(CertificateError::bad_trust_store(
            "CRL URLs need an egress policy to fetch them through (crl_egress)",
        ));
    };
    for url in &urls {
        egress.check_url(url).map_err(|e| {
            CertificateError::bad_trust_store(format!(
                "CRL URL {url:?} is refused by the CRL egress policy: {e}"
            ))
        })?;
    }
    Ok(Some(CrlSources {
        urls,
        egress,
        fetcher: config.fetcher,
        log: config.log,
        fixed: fixed.to_vec(),
        last_good: Mutex::new(std::collections::BTreeMap::new()),
        events: Mutex::new(Vec::new()),
        running: Mutex::new(()),
        last_failed: Mutex::new(false),
        schedule: config
            .schedule
            .unwrap_or(super::crl_refresh::DEFAULT_SCHEDULE),
    }))
}

#[derive(Debug)]
struct AnchorInfo {
    fingerprint: String,
    /// Why paths through this anchor are refused, if they are.
    problem: Option<String>,
    not_before: i64,
    not_after: i64,
    subject_raw: Vec<u8>,
    may_sign_crls: bool,
}

/// Trust anchors, intermediates, CRLs and the purpose to verify for. Thread-safe: share one
/// store (e.g. in an `Arc`) across all request threads, so its cache is shared too.
///
/// ```no_run
/// use portcullis::identity::TrustStore;
/// use std::time::SystemTime;
/// let ca = std::fs::read("ca.pem").unwrap();
/// let store = TrustStore::builder().ca_pem(&ca).build()?;
/// let leaf_der = std::fs::read("client.der").unwrap();
/// let id = store.verify(&leaf_der, &[], SystemTime::now())?;
/// println!("{} ({:?})", id.subject, id.spiffe_id);
/// # Ok::<(), portcullis::identity::CertificateError>(())
/// ```
pub struct TrustStore {
    anchors: Vec<TrustAnchor<'static>>,
    anchor_info: Vec<AnchorInfo>,
    intermediates: Vec<CertificateDer<'static>>,
    /// Anchors and configured intermediates (DER): the keys CRL signatures are checked
    /// with when CRLs are loaded.
    crl_signers: Vec<Vec<u8>>,
    crls: RwLock<Arc<CrlSet>>,
    usage: Usage,
    deny_unknown_revocation: bool,
    require_spiffe: bool,
    max_intermediates: Option<usize>,
    cache: VerificationCache,
    crl_sources: Option<CrlSources>,
    memo: memo::IntermediateMemo,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("anchors", &self.anchors.len())
            .field("intermediates", &self.intermediates.len())
            .field("crls", &self.crl_snapshot())
            .field("usage", &self.usage)
            .field("deny_unknown_revocation", &self.deny_unknown_revocation)
            .field("require_spiffe", &self.require_spiffe)
            .field("max_intermediates", &self.max_intermediates)
            .field("cache_capacity", &self.cache.capacity())
            .finish()
    }
}

/// What one successful path verification produced.
struct Verified {
    identity: Identity,
    valid_from: i64,
    valid_until: i64,
}

fn fingerprint(der: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, der).as_ref())
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

impl TrustStore {
    /// Starts configuring a store.
    ///
    /// ```
    /// let builder = portcullis::identity::TrustStore::builder().cache_capacity(0);
    /// assert!(builder.build().is_err()); // no CA configured
    /// ```
    pub fn builder() -> TrustStoreBuilder {
        TrustStoreBuilder::default()
    }

    /// The purpose this store verifies for.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// How many verified chains the cache holds right now.
    pub fn cached_len(&self) -> usize {
        self.cache.len()
    }

    /// The cache's capacity (0: disabled).
    pub fn cache_capacity(&self) -> usize {
        self.cache.capacity()
    }

    /// Replaces the loaded CRLs (each input PEM, one or many blocks, or one DER CRL) and
    /// clears the verification cache, so no chain verified under the old CRLs is served
    /// again. The same rules as [`TrustStoreBuilder::crls`] apply (highest cRLNumber per
    /// issuer, ambiguous sets and bad signatures refused). On error nothing changes.
    pub fn reload_crls(&self, inputs: &[&[u8]]) -> Result<(), CertificateError> {
        let mut ders = Vec::new();
        for input in inputs {
            ders.extend(decode::decode_crls(input).map_err(|e| {
                CertificateError::bad_trust_store(format!("a CRL could not be decoded: {e}"))
            })?);
        }
        let parsed = CrlSet::load(&ders, &self.crl_signers)?;
        let mut slot = self.crls.write().unwrap_or_else(|p| p.into_inner());
        *slot = Arc::new(parsed);
        // Cleared while the write lock is held: a verification that read the old CRLs got
        // its generation number before this, so its late insert is refused.
        self.cache.clear();
        Ok(())
    }

    /// Fetches every CRL URL now (through the egress policy), keeps the last good copy of
    /// any that fails, and swaps the CRL set (clearing the cache) if anything changed.
    /// Returns this refresh's events (also logged, see
    /// [`TrustStoreBuilder::on_crl_refresh`]); empty without CRL URLs.
    ///
    /// A fetched CRL replaces the previous copy only if it decodes as exactly one CRL,
    /// passes the store's CRL rules, verifies under the configured CA that issued it (when
    /// one is configured) and does not go back in cRLNumber.
    pub fn refresh_crls(&self) -> Vec<CrlRefreshEvent> {
        let Some(src) = &self.crl_sources else {
            return Vec::new();
        };
        let _one_at_a_time = src.running.lock().unwrap_or_else(|p| p.into_inner());
        let previous = src
            .last_good
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut good = previous.clone();
        let mut events = Vec::with_capacity(src.urls.len());
        for url in &src.urls {
            let at = super::crl_refresh::now_secs();
            let outcome = src.fetcher.fetch(&src.egress, url).and_then(|body| {
                self.crl_candidate(&body, good.get(url))
                    .map(|der| (der, body.len()))
            });
            events.push(match outcome {
                Ok((der, bytes)) => {
                    good.insert(url.clone(), der);
                    CrlRefreshEvent {
                        url: url.clone(),
                        at,
                        error: None,
                        kept_previous: false,
                        bytes,
                    }
                }
                Err(error) => CrlRefreshEvent {
                    url: url.clone(),
                    at,
                    error: Some(error),
                    kept_previous: good.contains_key(url),
                    bytes: 0,
                },
            });
        }
        if good != previous || self.crl_snapshot().crls.is_empty() && !good.is_empty() {
            let all: Vec<&[u8]> = src
                .fixed
                .iter()
                .chain(good.values())
                .map(Vec::as_slice)
                .collect();
            match self.reload_crls(&all) {
                Ok(()) => *src.last_good.lock().unwrap_or_else(|p| p.into_inner()) = good,
                Err(e) => {
                    // The new set as a whole is refused (two CRLs contradict each other):
                    // everything stays as it was.
                    for event in &mut events {
                        if event.error.is_none() {
                            event.error = Some(format!("the CRL set was refused: {e}"));
                            event.kept_previous = previous.contains_key(&event.url);
                        }
                    }
                }
            }
        }
        *src.last_failed.lock().unwrap_or_else(|p| p.into_inner()) =
            events.iter().any(|e| e.error.is_some());
        for event in &events {
            src.record(event.clone());
        }
        events
    }

    /// The recent CRL refresh events, oldest first (at most 64).
    pub fn crl_refresh_log(&self) -> Vec<CrlRefreshEvent> {
        self.crl_sources.as_ref().map_or_else(Vec::new, |s| {
            s.events.lock().unwrap_or_else(|p| p.into_inner()).clone()
        })
    }

    /// The CRL URLs this store fetches (configured plus distribution points).
    pub fn crl_urls(&self) -> &[String] {
        self.crl_sources.as_ref().map_or(&[], |s| s.urls.as_slice())
    }

    /// Starts refreshing the CRLs in the background, before their nextUpdate (see
    /// [`TrustStoreBuilder::crl_refresh_schedule`]). The thread holds the store weakly;
    /// dropping the returned handle stops it. Without CRL URLs: `cert.bad_trust_store`.
    pub fn spawn_crl_refresher(self: &Arc<Self>) -> Result<CrlRefresher, CertificateError> {
        let Some(src) = &self.crl_sources else {
            return Err(CertificateError::bad_trust_store(
                "this store has no CRL URLs to refresh",
            ));
        };
        CrlRefresher::spawn(self, src.schedule).map_err(|e| {
            CertificateError::bad_trust_store(format!("could not start the CRL refresher: {e}"))
        })
    }

    pub(crate) fn earliest_next_update(&self) -> Option<i64> {
        self.crl_snapshot()
            .crls
            .iter()
            .map(|c| c.info.next_update)
            .min()
    }

    pub(crate) fn last_crl_refresh_failed(&self) -> bool {
        self.crl_sources
            .as_ref()
            .is_some_and(|s| *s.last_failed.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Checks one fetched response: one CRL, acceptable to the store, signed by the
    /// configured CA it names (if any), not older than `previous`.
    fn crl_candidate(&self, body: &[u8], previous: Option<&Vec<u8>>) -> Result<Vec<u8>, String> {
        let mut ders = decode::decode_crls(body).map_err(|e| format!("not a CRL: {e}"))?;
        if ders.len() != 1 {
            return Err(format!("{} CRLs in one response; expected one", ders.len()));
        }
        let der = ders.pop().unwrap_or_default();
        CrlSet::load(std::slice::from_ref(&der), &self.crl_signers).map_err(|e| e.to_string())?;
        let signed = pkix::CrlSigned::parse(&der).map_err(|e| format!("not a CRL: {e}"))?;
        let issuers: Vec<Cert<'_>> = self
            .crl_signers
            .iter()
            .filter_map(|d| Cert::parse(d).ok())
            .filter(|c| c.subject.content == signed.issuer.as_slice())
            .collect();
        if !issuers.is_empty() && !issuers.iter().any(|c| signed.signed_by(c.spki)) {
            return Err(
                "its signature does not verify under the configured CA it names as issuer"
                    .to_owned(),
            );
        }
        if let Some(prev) = previous.and_then(|p| pkix::CrlSigned::parse(p).ok()) {
            let older = match (&prev.crl_number, &signed.crl_number) {
                (Some(a), Some(b)) => pkix::integer_less(b, a),
                _ => false,
            };
            if older {
                return Err(
                    "its cRLNumber is lower than the copy in force (a replayed CRL)".to_owned(),
                );
            }
        }
        Ok(der)
    }

    /// The trust anchors' subjects: each Name's DER contents, without the outer SEQUENCE
    /// header (what TLS CertificateRequest hints are built from).
    #[cfg_attr(not(feature = "rustls"), allow(dead_code))]
    pub(crate) fn anchor_subjects(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.anchors.iter().map(|a| a.subject.as_ref())
    }

    /// The CRLs in force: one per issuer and scope, the highest cRLNumber of those loaded.
    /// Check [`CrlInfo::is_lapsed`] to alert before certificates are refused (or, with
    /// `deny_unknown_revocation` off, accepted unconfirmed).
    pub fn crls(&self) -> Vec<CrlInfo> {
        self.crl_snapshot().infos()
    }

    fn crl_snapshot(&self) -> Arc<CrlSet> {
        Arc::clone(&self.crls.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Verifies `leaf_der` (DER) with the intermediates the peer presented (`chain`, DER,
    /// any order) at time `at`, for this store's [`Usage`], and returns who it is.
    ///
    /// Repeat calls with the same bytes are served from the cache, still checking `at`
    /// against the validity of every certificate in the verified path and the nextUpdate
    /// of every loaded CRL.
    ///
    /// Revocation, with CRLs loaded: a certificate listed by its issuer's CRL is refused
    /// (`cert.revoked`), even when that CRL has lapsed. A certificate whose issuer's CRL has
    /// lapsed (the time is at or past its nextUpdate) and does not list it has an unknown
    /// status: with `deny_unknown_revocation` it is refused (`cert.revocation_unknown`,
    /// naming the lapsed CRL); without, it is accepted and
    /// [`Identity::revocation_warning`] says which CRL lapsed. A CRL whose signature does
    /// not verify refuses every chain through its issuer (`cert.bad_trust_store`).
    pub fn verify(
        &self,
        leaf_der: &[u8],
        chain: &[&[u8]],
        at: SystemTime,
    ) -> Result<Identity, CertificateError> {
        self.verify_inner(leaf_der, chain, at, self.usage, None)
            .map(|shared| Arc::try_unwrap(shared).unwrap_or_else(|s| (*s).clone()))
    }

    /// Like [`verify`](Self::verify), but hands back the cached `Arc` itself, so a cache hit
    /// allocates nothing.
    pub fn verify_shared(
        &self,
        leaf_der: &[u8],
        chain: &[&[u8]],
        at: SystemTime,
    ) -> Result<Arc<Identity>, CertificateError> {
        self.verify_inner(leaf_der, chain, at, self.usage, None)
    }

    /// Verifies a server's certificate for TLS server authentication (whatever this store's
    /// [`Usage`]) and checks that it is valid for `server_name`, a DNS name or an IP address.
    pub fn verify_server(
        &self,
        leaf_der: &[u8],
        chain: &[&[u8]],
        server_name: &str,
        at: SystemTime,
    ) -> Result<Identity, CertificateError> {
        self.verify_inner(leaf_der, chain, at, Usage::ServerAuth, Some(server_name))
            .map(|shared| Arc::try_unwrap(shared).unwrap_or_else(|s| (*s).clone()))
    }

    fn verify_inner(
        &self,
        leaf_der: &[u8],
        chain: &[&[u8]],
        at: SystemTime,
        usage: Usage,
        server_name: Option<&str>,
    ) -> Result<Arc<Identity>, CertificateError> {
        let at_secs = unix_seconds(at);
        if leaf_der.len() > decode::MAX_CERT_BYTES {
            return Err(CertificateError::bad_encoding(
                "certificate",
                format!(
                    "{} bytes is more than the {} byte cap",
                    leaf_der.len(),
                    decode::MAX_CERT_BYTES
                ),
            ));
        }
        // Bound the work before hashing anything: at most MAX_PRESENTED_CHAIN_BYTES.
        let presented: usize = chain.iter().map(|c| c.len()).sum();
        if presented > MAX_PRESENTED_CHAIN_BYTES {
            let fp = fingerprint(leaf_der);
            return Err(CertificateError::ChainTooLong {
                cert: format!("certificate (sha256 {}…)", fp.get(..16).unwrap_or(&fp)),
                reason: format!(
                    "{} certificates of {presented} bytes presented, at most \
                     {MAX_PRESENTED_CHAIN_BYTES} bytes are accepted",
                    chain.len()
                ),
            });
        }
        for c in chain {
            decode::check_der_frame("certificate", c)?;
        }
        if self.cache.capacity() == 0 {
            return self
                .verify_uncached(leaf_der, chain, at_secs, usage, server_name)
                .map(|v| Arc::new(v.identity));
        }
        let presented = Presented {
            usage: usage.tag(),
            server_name: server_name.unwrap_or(""),
            leaf: leaf_der,
            chain,
        };
        let hash = self.cache.hash(&presented);
        if let Some(hit) = self.cache.get(hash, &presented, at_secs) {
            return Ok(hit);
        }
        let generation = self.cache.generation();
        let verified = self.verify_uncached(leaf_der, chain, at_secs, usage, server_name)?;
        let identity = Arc::new(verified.identity);
        self.cache.insert(
            hash,
            &presented,
            generation,
            Arc::clone(&identity),
            verified.valid_from,
            verified.valid_until,
        );
        Ok(identity)
    }

    fn verify_uncached(
        &self,
        leaf_der: &[u8],
        chain: &[&[u8]],
        at_secs: i64,
        usage: Usage,
        server_name: Option<&str>,
    ) -> Result<Verified, CertificateError> {
        let leaf_fp = fingerprint(leaf_der);
        let leaf = Cert::parse(leaf_der).map_err(|e| {
            CertificateError::bad_encoding(
                "certificate",
                format!("not an X.509 certificate ({e}; sha256 {leaf_fp})"),
            )
        })?;
        // Formatted only when an error needs them.
        let name = profile::LeafName {
            cert: &leaf,
            fingerprint: &leaf_fp,
        };
        let issuer_dn = profile::NameDisplay(&leaf.issuer);

        // The leaf's own rules first: they do not depend on the path, and they name the
        // leaf precisely.
        profile::check_leaf(&leaf, &name)?;
        profile::check_cn_consistent(&leaf).map_err(|reason| CertificateError::Invalid {
            cert: name.to_string(),
            reason,
        })?;
        let uris: Vec<&str> = leaf.san().uris().collect();
        let spiffe_id = if self.require_spiffe || profile::claims_spiffe(&uris) {
            Some(profile::check_svid(&leaf, &uris, &name)?)
        } else {
            None
        };
        let (leaf_nb, leaf_na) = (leaf.not_before, leaf.not_after);
        if at_secs > leaf_na {
            return Err(CertificateError::Expired {
                cert: name.to_string(),
                not_after: leaf_na,
                at: at_secs,
            });
        }
        if at_secs < leaf_nb {
            return Err(CertificateError::NotYetValid {
                cert: name.to_string(),
                not_before: leaf_nb,
                at: at_secs,
            });
        }

        let leaf_cert_der = CertificateDer::from(leaf_der);
        let ee = EndEntityCert::try_from(&leaf_cert_der)
            .map_err(|e| map_webpki(e, &name, &issuer_dn, usage))?;
        let mut intermediates: Vec<CertificateDer<'_>> =
            Vec::with_capacity(chain.len() + self.intermediates.len());
        intermediates.extend(chain.iter().map(|c| CertificateDer::from(*c)));
        intermediates.extend(
            self.intermediates
                .iter()
                .map(|c| CertificateDer::from(c.as_ref())),
        );

        let crls = self.crl_snapshot();
        if crls.crls.is_empty() && self.deny_unknown_revocation && self.crl_sources.is_some() {
            // CRLs are configured by URL and none has been fetched yet: every status is
            // unknown, and webpki (given no CRL at all) would check nothing.
            return Err(CertificateError::RevocationUnknown {
                cert: format!("{name} (or a CA in its chain)"),
                reason: format!(
                    "no CRL has been fetched from {} yet; see the CRL refresh log",
                    self.crl_urls().join(", ")
                ),
            });
        }
        let crl_refs = crls.lists();
        let time =
            UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(at_secs).unwrap_or(0)));
        // One path-building run; `expiration` says whether a lapsed CRL is an error. The
        // path is webpki's, or (where webpki gives up) the RFC 5280 builder's.
        let attempt = |expiration: ExpirationPolicy| {
            let revocation = RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
                b.with_depth(RevocationCheckDepth::Chain)
                    .with_status_policy(if self.deny_unknown_revocation {
                        UnknownStatusPolicy::Deny
                    } else {
                        UnknownStatusPolicy::Allow
                    })
                    .with_expiration_policy(expiration)
                    .build()
            });
            // The path checks webpki leaves out run on each candidate path; a refusal makes
            // webpki try the next candidate, and the last refusal explains a final failure.
            let path_refusal: RefCell<Option<CertificateError>> = RefCell::new(None);
            let window: RefCell<(i64, i64)> = RefCell::new((leaf_nb, leaf_na));
            let path_fps: RefCell<Vec<String>> = RefCell::new(Vec::new());
            let check_path = |path: &VerifiedPath<'_>| -> Result<(), webpki::Error> {
                let anchor = path.anchor();
                let index = self.anchors.iter().position(|a| std::ptr::eq(a, anchor));
                let certs = PathCerts::Webpki(path);
                match self.check_path(&leaf, &certs, index, &name, at_secs, &crls) {
                    Ok(found) => {
                        *window.borrow_mut() = (leaf_nb.max(found.from), leaf_na.min(found.until));
                        *path_fps.borrow_mut() = found.fingerprints;
                        Ok(())
                    }
                    Err(e) => {
                        *path_refusal.borrow_mut() = Some(e);
                        // Any error makes webpki keep looking; this one is never surfaced.
                        Err(webpki::Error::UnknownIssuer)
                    }
                }
            };
            let verified = ee.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                &intermediates,
                time,
                usage.webpki(),
                revocation,
                Some(&check_path),
            );
            // The error says whether a lapsed CRL caused it.
            match verified {
                Ok(path) => {
                    // The fingerprints of the path check_path accepted last: this one.
                    let anchor = path.anchor();
                    let index = self.anchors.iter().position(|a| std::ptr::eq(a, anchor));
                    Ok((path_fps.into_inner(), window.into_inner(), index))
                }
                Err(e) => {
                    let pool: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
                    let enforce = expiration == ExpirationPolicy::Enforce;
                    let refusal = path_refusal.into_inner();
                    match self.fallback(&leaf, &name, &pool, &e, at_secs, usage, &crls, enforce) {
                        Some(Ok(found)) => {
                            let window = (leaf_nb.max(found.from), leaf_na.min(found.until));
                            return Ok((found.fingerprints, window, Some(found.anchor)));
                        }
                        Some(Err(refused)) => return Err(refused),
                        None => {}
                    }
                    Err(match (e, refusal) {
                        (webpki::Error::UnknownIssuer, Some(refusal)) => (false, refusal),
                        (e, _) if is_crl_signature_error(&e) => {
                            (false, crls.signature_failure(chain))
                        }
                        (webpki::Error::CrlExpired { next_update, .. }, _) => (
                            true,
                            CertificateError::RevocationUnknown {
                                cert: format!("{name} (or a CA in its chain)"),
                                reason: lapse_reason(&crls, at_secs, next_update, leaf.issuer.raw),
                            },
                        ),
                        (e, _) => (false, map_webpki(e, &name, &issuer_dn, usage)),
                    })
                }
            }
        };
        let mut revocation_warning = None;
        let (intermediate_fps, window, anchor_index) = match attempt(ExpirationPolicy::Enforce) {
            Ok(found) => found,
            Err((true, lapsed)) => {
                // A covering CRL lapsed. Judge again with it: what it lists stays revoked.
                let found = attempt(ExpirationPolicy::Ignore).map_err(|(_, e)| e)?;
                if self.deny_unknown_revocation {
                    return Err(lapsed);
                }
                if let CertificateError::RevocationUnknown { reason, .. } = lapsed {
                    revocation_warning = Some(format!(
                        "revocation status not confirmed: {reason}; accepted because \
                         deny_unknown_revocation is off (the lapsed CRL does not list it)"
                    ));
                }
                found
            }
            Err((false, e)) => return Err(e),
        };
        if let Some(server_name) = server_name {
            let sn =
                ServerName::try_from(server_name).map_err(|_| CertificateError::NameMismatch {
                    cert: name.to_string(),
                    name: server_name.to_owned(),
                })?;
            ee.verify_is_valid_for_subject_name(&sn).map_err(|_| {
                CertificateError::NameMismatch {
                    cert: name.to_string(),
                    name: server_name.to_owned(),
                }
            })?;
            profile::check_wildcard_match(&leaf, server_name).map_err(|reason| {
                CertificateError::Invalid {
                    cert: name.to_string(),
                    reason,
                }
            })?;
        }

        let mut chain_fingerprints = Vec::with_capacity(intermediate_fps.len() + 2);
        chain_fingerprints.push(leaf_fp.clone());
        chain_fingerprints.extend(intermediate_fps);
        if let Some(info) = anchor_index.and_then(|i| self.anchor_info.get(i)) {
            chain_fingerprints.push(info.fingerprint.clone());
        }
        let (mut valid_from, mut valid_until) = window;
        // A cached result holds only while every CRL is as fresh (or lapsed) as it was.
        let (steady_from, steady_until) = crls.steady_window(at_secs);
        if let Some(from) = steady_from {
            valid_from = valid_from.max(from);
        }
        if let Some(until) = steady_until {
            valid_until = valid_until.min(until);
        }
        let mut identity = identity_from(&leaf, leaf_fp, spiffe_id, chain_fingerprints, uris);
        identity.revocation_warning = revocation_warning;
        Ok(Verified {
            identity,
            valid_from,
            valid_until,
        })
    }

    /// webpki refused the chain with `err`. When the problem holds something webpki does
    /// not implement (name constraints of other forms, a self-issued intermediate, more
    /// work than its fixed budget), the path is built by [`pkix`] instead, and that verdict
    /// is final. `None`: webpki's refusal stands.
    #[allow(clippy::too_many_arguments)]
    fn fallback(
        &self,
        leaf: &Cert<'_>,
        leaf_name: &dyn std::fmt::Display,
        pool_ders: &[&[u8]],
        err: &webpki::Error,
        at_secs: i64,
        usage: Usage,
        crls: &CrlSet,
        enforce_next_update: bool,
    ) -> Option<Result<FallbackPath, (bool, CertificateError)>> {
        use webpki::Error as E;
        // A certificate that does not parse is on no path (webpki skips it too).
        let (pool, pool_ders): (Vec<Cert<'_>>, Vec<&[u8]>) = pool_ders
            .iter()
            .filter_map(|d| Cert::parse(d).ok().map(|c| (c, *d)))
            .unzip();
        let anchors: Vec<pkix::Anchor<'_>> = self
            .anchors
            .iter()
            .map(|a| {
                let nc = a
                    .name_constraints
                    .as_ref()
                    .map(|nc| super::cert::name_constraints_content(nc.as_ref()));
                pkix::Anchor {
                    // An anchor whose constraints do not parse issues nothing.
                    subject: if matches!(nc, Some(Err(_))) {
                        &[]
                    } else {
                        a.subject.as_ref()
                    },
                    spki: a.subject_public_key_info.as_ref(),
                    name_constraints: nc.and_then(Result::ok),
                }
            })
            .collect();
        let gave_up = matches!(
            err,
            E::MaximumPathDepthExceeded
                | E::MaximumSignatureChecksExceeded
                | E::MaximumPathBuildCallsExceeded
                | E::MaximumNameConstraintComparisonsExceeded
        );
        let beyond =
            |nc: Option<super::cert::NameConstraints<'_>>| nc.is_some_and(|n| n.beyond_webpki);
        let unimplemented = pool.iter().any(|c| {
            beyond(c.extensions.name_constraints.map(|n| n.value)) || pkix::is_rollover(c)
        }) || anchors.iter().any(|a| beyond(a.name_constraints));
        if !gave_up && !unimplemented {
            return None;
        }
        let revocation = (!crls.crls.is_empty()).then(|| pkix::Revocation {
            crls: crls.crls.iter().map(|c| (&c.list, &c.signed)).collect(),
            deny_unknown: self.deny_unknown_revocation,
            enforce_next_update,
        });
        let problem = pkix::Problem {
            leaf,
            pool: &pool,
            anchors: &anchors,
            eku: usage.eku_oid(),
            time: at_secs,
            revocation,
            limits: pkix::LIMITS,
            lapsed: std::cell::Cell::new(false),
        };
        let mut accepted = PathFacts {
            from: i64::MIN,
            until: i64::MAX,
            fingerprints: Vec::new(),
        };
        let mut accept = |inters: &[usize], anchor: usize| {
            let ders: Vec<&[u8]> = inters
                .iter()
                .map(|i| pool_ders.get(*i).copied().unwrap_or(&[]))
                .collect();
            let certs = PathCerts::Pool(&ders);
            accepted = self.check_path(leaf, &certs, Some(anchor), leaf_name, at_secs, crls)?;
            Ok(())
        };
        let found =
            pkix::build(&problem, leaf_name, &mut accept).map_err(|e| (problem.lapsed.get(), e));
        // The last path `accept` took is the one pkix::build returns.
        Some(found.map(|f| FallbackPath {
            fingerprints: accepted.fingerprints,
            anchor: f.anchor,
            from: accepted.from,
            until: accepted.until,
        }))
    }

    /// Checks one candidate path: the profile of each intermediate and of the anchor, and
    /// (for a path webpki built) the name constraints webpki does not process. Returns the
    /// validity window of the intermediates and the anchor.
    fn check_path(
        &self,
        leaf: &Cert<'_>,
        certs: &PathCerts<'_>,
        index: Option<usize>,
        leaf_name: &dyn std::fmt::Display,
        at_secs: i64,
        crls: &CrlSet,
    ) -> Result<PathFacts, CertificateError> {
        // RFC 5280 4.2.1.3: a CA that issued a loaded CRL must be allowed to sign CRLs.
        let crl_signer_ok = |subject: &[u8], may_sign: bool| may_sign || !crls.issued_by(subject);
        let mut from = i64::MIN;
        let mut until = i64::MAX;
        let mut logical_intermediates = 0usize;
        let mut constrained = false;
        let mut fingerprints = Vec::new();
        certs.each(&mut |der: &[u8]| {
            let facts = self.intermediate_facts(der, leaf_name)?;
            if !crl_signer_ok(&facts.subject_raw, facts.may_sign_crls) {
                let cert = Cert::parse(der).map_or_else(
                    |_| format!("intermediate (sha256 {})", facts.fingerprint),
                    |parsed| profile::describe(&parsed, &facts.fingerprint),
                );
                return Err(CertificateError::Invalid {
                    cert,
                    reason: "issued a loaded CRL but its keyUsage lacks cRLSign".to_owned(),
                });
            }
            if !facts.self_issued {
                logical_intermediates += 1;
            }
            if let Some(max) = self.max_intermediates {
                if logical_intermediates > max {
                    return Err(CertificateError::ChainTooLong {
                        cert: leaf_name.to_string(),
                        reason: format!("the path needs more than {max} intermediates"),
                    });
                }
            }
            constrained |= facts.beyond_webpki_constraints;
            from = from.max(facts.not_before);
            until = until.min(facts.not_after);
            fingerprints.push(facts.fingerprint.clone());
            Ok(())
        })?;
        let anchor = index.and_then(|i| self.anchors.get(i));
        if let PathCerts::Webpki(_) = certs {
            // webpki checked dNSName and iPAddress constraints and refused paths on which
            // the other forms meet a name; what it never looks at (a subject emailAddress
            // under an rfc822Name constraint, say) is checked here. Rare: copies are fine.
            let anchor_nc = anchor
                .and_then(|a| a.name_constraints.as_ref())
                .and_then(|nc| super::cert::name_constraints_content(nc.as_ref()).ok());
            if constrained || anchor_nc.is_some_and(|n| n.beyond_webpki) {
                let mut ders: Vec<Vec<u8>> = Vec::new();
                certs.each(&mut |der: &[u8]| {
                    ders.push(der.to_vec());
                    Ok(())
                })?;
                let parsed: Vec<Cert<'_>> =
                    ders.iter().filter_map(|d| Cert::parse(d).ok()).collect();
                let mut chain: Vec<&Cert<'_>> = vec![leaf];
                chain.extend(parsed.iter());
                let mut budget = super::constraints::Budget(pkix::LIMITS.name_comparisons);
                pkix::check_name_constraints(&chain, anchor_nc, &mut budget).map_err(
                    |(at, _)| CertificateError::NameConstraint {
                        cert: if at == 0 {
                            leaf_name.to_string()
                        } else {
                            format!("an intermediate in the chain of {leaf_name}")
                        },
                    },
                )?;
            }
        }
        if let Some(info) = index.and_then(|i| self.anchor_info.get(i)) {
            let anchor_name =
                || format!("trust anchor (sha256 {}) for {leaf_name}", info.fingerprint);
            if let Some(problem) = &info.problem {
                return Err(CertificateError::Invalid {
                    cert: anchor_name(),
                    reason: problem.clone(),
                });
            }
            // webpki treats anchors as timeless; an expired root is still expired.
            if at_secs > info.not_after {
                return Err(CertificateError::Expired {
                    cert: anchor_name(),
                    not_after: info.not_after,
                    at: at_secs,
                });
            }
            if at_secs < info.not_before {
                return Err(CertificateError::NotYetValid {
                    cert: anchor_name(),
                    not_before: info.not_before,
                    at: at_secs,
                });
            }
            if !crl_signer_ok(&info.subject_raw, info.may_sign_crls) {
                return Err(CertificateError::Invalid {
                    cert: anchor_name(),
                    reason: "issued a loaded CRL but its keyUsage lacks cRLSign".to_owned(),
                });
            }
            from = from.max(info.not_before);
            until = until.min(info.not_after);
        }
        Ok(PathFacts {
            from,
            until,
            fingerprints,
        })
    }

    /// The facts of one intermediate: remembered, or parsed, judged and remembered now.
    fn intermediate_facts(
        &self,
        der: &[u8],
        leaf_name: &dyn std::fmt::Display,
    ) -> Result<Arc<memo::Facts>, CertificateError> {
        if let Some(facts) = self.memo.get(der) {
            return Ok(facts);
        }
        let fp = fingerprint(der);
        let parsed = Cert::parse(der).map_err(|e| CertificateError::Invalid {
            cert: format!("intermediate (sha256 {fp}) of {leaf_name}"),
            reason: format!("does not parse ({e})"),
        })?;
        let facts =
            memo::Facts::judge(&parsed, fp).map_err(|reason| CertificateError::Invalid {
                cert: profile::describe(&parsed, &fingerprint(der)),
                reason,
            })?;
        let facts = Arc::new(facts);
        self.memo.insert(der, Arc::clone(&facts));
        Ok(facts)
    }
}

/// What [`TrustStore::check_path`] found on an acceptable path: the validity window of
/// its intermediates and anchor, and the intermediates' fingerprints (leaf side first).
struct PathFacts {
    from: i64,
    until: i64,
    fingerprints: Vec<String>,
}

/// A path [`pkix`] built: its intermediates (leaf side first), anchor index and the
/// validity window of intermediates and anchor.
struct FallbackPath {
    fingerprints: Vec<String>,
    anchor: usize,
    from: i64,
    until: i64,
}

/// The intermediates of a candidate path: one webpki built, or one [`pkix`] built.
enum PathCerts<'c> {
    Webpki(&'c VerifiedPath<'c>),
    Pool(&'c [&'c [u8]]),
}

impl PathCerts<'_> {
    /// Calls `f` with each intermediate's DER, leaf side first; stops at an error.
    fn each(
        &self,
        f: &mut dyn FnMut(&[u8]) -> Result<(), CertificateError>,
    ) -> Result<(), CertificateError> {
        match self {
            Self::Webpki(path) => {
                for cert in path.intermediate_certificates() {
                    let der = cert.der();
                    f(der.as_ref())?;
                }
            }
            Self::Pool(ders) => {
                for der in *ders {
                    f(der)?;
                }
            }
        }
        Ok(())
    }
}

/// A CRL's signature failed (webpki maps these to their CRL variants): the store's fault,
/// not the certificate's.
fn is_crl_signature_error(e: &webpki::Error) -> bool {
    #[allow(deprecated)] // the context-free variants still exist and may be returned
    let old = matches!(
        e,
        webpki::Error::UnsupportedCrlSignatureAlgorithm
            | webpki::Error::UnsupportedCrlSignatureAlgorithmForPublicKey
    );
    old || matches!(
        e,
        webpki::Error::InvalidCrlSignatureForPublicKey
            | webpki::Error::UnsupportedCrlSignatureAlgorithmContext(_)
            | webpki::Error::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_)
    )
}

/// Why the status is unknown when webpki reports a lapsed CRL (by its nextUpdate).
fn lapse_reason(crls: &CrlSet, at: i64, next_update: UnixTime, leaf_issuer: &[u8]) -> String {
    let next = i64::try_from(next_update.as_secs()).unwrap_or(i64::MAX);
    let which = crls
        .lapsed(at, next, leaf_issuer)
        .map_or_else(|| "the issuer's CRL".to_owned(), CrlInfo::describe);
    format!(
        "{which} lapsed at {} (its nextUpdate), verification time {}; \
         fetch the CA's current CRL and reload it",
        super::der::rfc3339(next),
        super::der::rfc3339(at)
    )
}

fn map_webpki(
    err: webpki::Error,
    name: &dyn std::fmt::Display,
    issuer: &dyn std::fmt::Display,
    usage: Usage,
) -> CertificateError {
    use webpki::Error as E;
    let cert = name.to_string();
    let secs = |t: UnixTime| i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    match err {
        E::UnknownIssuer => CertificateError::UnknownIssuer {
            cert,
            issuer: issuer.to_string(),
        },
        E::CertExpired { time, not_after } => CertificateError::Expired {
            cert: format!("a certificate in the chain of {name}"),
            not_after: secs(not_after),
            at: secs(time),
        },
        E::CertNotValidYet { time, not_before } => CertificateError::NotYetValid {
            cert: format!("a certificate in the chain of {name}"),
            not_before: secs(not_before),
            at: secs(time),
        },
        E::CertRevoked => CertificateError::Revoked {
            cert: format!("{name} (or a CA in its chain)"),
        },
        E::UnknownRevocationStatus => CertificateError::RevocationUnknown {
            cert: format!("{name} (or a CA in its chain)"),
            reason: "no CRL from its issuer is loaded; load the issuer's CRL or turn \
                     deny_unknown_revocation off"
                .to_owned(),
        },
        E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => CertificateError::WrongUsage {
            cert,
            usage: usage.describe().to_owned(),
        },
        E::InvalidSignatureForPublicKey
        | E::SignatureAlgorithmMismatch
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            CertificateError::BadSignature {
                cert,
                reason: format!("{err:?}"),
            }
        }
        E::CaUsedAsEndEntity => CertificateError::CaAsLeaf { cert },
        E::MaximumPathDepthExceeded
        | E::MaximumPathBuildCallsExceeded
        | E::MaximumSignatureChecksExceeded
        | E::MaximumNameConstraintComparisonsExceeded => CertificateError::ChainTooLong {
            cert,
            reason: format!("{err:?}"),
        },
        E::NameConstraintViolation => CertificateError::NameConstraint { cert },
        E::CertNotValidForName(_) => CertificateError::NameMismatch {
            cert,
            name: String::new(),
        },
        E::BadDer | E::BadDerTime | E::TrailingData(_) => CertificateError::BadEncoding {
            what: format!("a certificate in the chain of {name}"),
            reason: format!("{err:?}"),
        },
        other => CertificateError::Invalid {
            cert,
            reason: format!("{other:?}"),
        },
    }
}

fn identity_from(
    leaf: &Cert<'_>,
    fingerprint: String,
    spiffe_id: Option<String>,
    chain_fingerprints: Vec<String>,
    uris: Vec<&str>,
) -> Identity {
    let subject = DistinguishedName::from_name(&leaf.subject);
    let issuer = DistinguishedName::from_name(&leaf.issuer);
    let common_name = subject.common_name().map(str::to_owned);
    let san = leaf.san();
    let dns_names = san.dns().map(str::to_owned).collect();
    let emails = san
        .iter()
        .filter_map(|g| match g {
            super::cert::GeneralName::Email(e) => Some(e.to_owned()),
            _ => None,
        })
        .collect();
    let ips = san.ips().collect();
    let serial_bytes = leaf.serial;
    let first_nonzero = serial_bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(serial_bytes.len().saturating_sub(1));
    let serial = hex(serial_bytes.get(first_nonzero..).unwrap_or(serial_bytes));
    Identity {
        subject,
        issuer,
        common_name,
        dns_names,
        uris: uris.into_iter().map(str::to_owned).collect(),
        emails,
        ips,
        spiffe_id,
        serial,
        fingerprint,
        not_before: leaf.not_before,
        not_after: leaf.not_after,
        chain_fingerprints,
        revocation_warning: None,
    }
}
