//! RFC 5280 §6.1 path validation of our own, for the chains rustls-webpki gives up on.
//!
//! [`super::TrustStore`] asks webpki first. webpki fails closed on what it does not
//! implement: name constraints on rfc822Name, directoryName and URI forms, self-issued
//! (key-rollover) intermediates, which §6.1.4 does not count towards pathLenConstraint and
//! §6.1.3 exempts from name constraints, and pools larger than its fixed budget of 100
//! signature checks and 6 intermediates. Only for those chains does the store build the
//! path here. Everything else follows webpki's reading (validity of every non-anchor
//! certificate, basicConstraints, extended key usage on every certificate, signatures with
//! webpki's own algorithm implementations, loops as in RFC 4158 §5.2, CRLs as webpki
//! scopes them), and a differential test holds the two to the same verdict wherever
//! webpki can judge.
//!
//! Work is bounded: every signature is checked at most once per verification (memoized per
//! issuer/subject pair), candidate issuers whose subjectKeyIdentifier matches the child's
//! authorityKeyIdentifier are tried first, and [`LIMITS`] caps signature checks, path
//! nodes and name comparisons. Running out is `cert.chain_too_long`.

use std::collections::HashMap;

use super::cert::{Cert, GeneralName, GeneralNames, NameConstraints};
use super::constraints::{self, NcError};
use super::der::{self, Reader};
use super::CertificateError;
use rustls_pki_types::SignatureVerificationAlgorithm;
use webpki::CertRevocationList;

/// Bounds on the work one verification may do here.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Signature verifications (certificates and CRLs).
    pub(crate) signatures: usize,
    /// Candidate certificates pushed onto a path.
    pub(crate) nodes: usize,
    /// Name-constraint comparisons.
    pub(crate) name_comparisons: usize,
    /// Intermediates on one path.
    pub(crate) depth: usize,
}

/// Enough for a 35-certificate cross-signed mesh, small enough that a pathological pool
/// fails in milliseconds.
pub(crate) const LIMITS: Limits = Limits {
    signatures: 256,
    nodes: 4096,
    name_comparisons: 250_000,
    depth: 8,
};

/// A trust anchor as webpki holds it: subject and SPKI contents, name constraints.
pub(crate) struct Anchor<'a> {
    pub(crate) subject: &'a [u8],
    pub(crate) spki: &'a [u8],
    pub(crate) name_constraints: Option<NameConstraints<'a>>,
}

/// A CRL's signed parts and scope, read once when it is loaded.
#[derive(Debug, Clone)]
pub(crate) struct CrlSigned {
    tbs: Vec<u8>,
    /// signatureAlgorithm contents.
    algorithm: Vec<u8>,
    signature: Vec<u8>,
    pub(crate) next_update: Option<i64>,
    /// The cRLNumber's INTEGER value bytes.
    pub(crate) crl_number: Option<Vec<u8>>,
    /// The issuer Name's contents.
    pub(crate) issuer: Vec<u8>,
    idp: Option<Idp>,
}

#[derive(Debug, Clone, Default)]
struct Idp {
    only_user: bool,
    only_ca: bool,
    /// fullName URIs.
    uris: Vec<Vec<u8>>,
    has_full_name: bool,
}

impl CrlSigned {
    /// Reads a DER CRL that webpki has already accepted.
    pub(crate) fn parse(crl: &[u8]) -> Result<Self, der::DerError> {
        let mut outer = Reader::new(der::single(crl, der::SEQUENCE, "CRL")?);
        let tbs = outer.expect_tlv(der::SEQUENCE, "TBSCertList")?;
        let algorithm = outer.expect(der::SEQUENCE, "CRL signatureAlgorithm")?;
        let signature = der::bit_string(outer.expect(der::BIT_STRING, "CRL signature")?)?;
        let mut t = Reader::new(tbs.content);
        t.optional(der::INTEGER)?;
        t.expect(der::SEQUENCE, "CRL signature field")?;
        let issuer = t.expect(der::SEQUENCE, "CRL issuer")?;
        t.read()?; // thisUpdate
        let next_update = match t.peek_tag() {
            Some(der::UTC_TIME | der::GENERALIZED_TIME) => Some(der::time(&t.read()?)?),
            _ => None,
        };
        let mut idp = None;
        let mut crl_number = None;
        t.optional(der::SEQUENCE)?; // revokedCertificates
        if let Some(exts) = t.optional(der::context_constructed(0))? {
            let mut list = Reader::new(der::single(exts.content, der::SEQUENCE, "crlExtensions")?);
            while !list.is_empty() {
                let mut ext = Reader::new(list.expect(der::SEQUENCE, "CRL extension")?);
                let oid = der::oid(ext.expect(der::OID, "CRL extension OID")?)?;
                ext.optional(der::BOOLEAN)?;
                let value = ext.expect(der::OCTET_STRING, "CRL extension value")?;
                if oid == [0x55, 0x1d, 28] {
                    idp = Some(Idp::parse(value)?);
                }
                if oid == [0x55, 0x1d, 20] {
                    crl_number = Some(
                        der::integer(der::single(value, der::INTEGER, "cRLNumber")?)?.to_vec(),
                    );
                }
            }
        }
        Ok(Self {
            tbs: tbs.raw.to_vec(),
            algorithm: algorithm.to_vec(),
            signature: signature.to_vec(),
            next_update,
            crl_number,
            issuer: issuer.to_vec(),
            idp,
        })
    }

    /// Verifies the CRL's signature with the key in `spki` (SubjectPublicKeyInfo contents).
    pub(crate) fn signed_by(&self, spki: &[u8]) -> bool {
        verify_signature(spki, &self.algorithm, &self.tbs, &self.signature)
    }
}

impl Idp {
    fn parse(value: &[u8]) -> Result<Self, der::DerError> {
        let mut r = Reader::new(der::single(
            value,
            der::SEQUENCE,
            "issuingDistributionPoint",
        )?);
        let mut idp = Idp::default();
        if let Some(dp) = r.optional(der::context_constructed(0))? {
            let mut names = Reader::new(dp.content);
            if let Some(full) = names.optional(der::context_constructed(0))? {
                idp.has_full_name = true;
                for name in GeneralNames::parse_content(full.content)?.iter() {
                    if let GeneralName::Uri(u) = name {
                        idp.uris.push(u.as_bytes().to_vec());
                    }
                }
            }
        }
        if let Some(b) = r.optional(der::context(1))? {
            idp.only_user = der::boolean(b.content)?;
        }
        if let Some(b) = r.optional(der::context(2))? {
            idp.only_ca = der::boolean(b.content)?;
        }
        Ok(idp)
    }
}

/// The CRLs to check against and what to do when none covers a certificate.
pub(crate) struct Revocation<'a> {
    /// Each CRL as webpki reads it, with its signed parts.
    pub(crate) crls: Vec<(&'a CertRevocationList<'static>, &'a CrlSigned)>,
    pub(crate) deny_unknown: bool,
    /// A CRL past its nextUpdate gives unknown status (and sets `Problem::lapsed`).
    pub(crate) enforce_next_update: bool,
}

/// One verification's question.
pub(crate) struct Problem<'p, 'a> {
    pub(crate) leaf: &'p Cert<'a>,
    /// Presented certificates, then the store's intermediates (duplicates allowed).
    pub(crate) pool: &'p [Cert<'a>],
    pub(crate) anchors: &'p [Anchor<'a>],
    /// The extended key usage OID (value bytes) every certificate's EKU must include.
    pub(crate) eku: &'static [u8],
    pub(crate) time: i64,
    pub(crate) revocation: Option<Revocation<'p>>,
    pub(crate) limits: Limits,
    /// Set when a lapsed CRL refused a candidate path.
    pub(crate) lapsed: std::cell::Cell<bool>,
}

/// A verified path: pool indices of the intermediates (leaf side first) and the anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) intermediates: Vec<usize>,
    pub(crate) anchor: usize,
}

/// Checks a store applies to a complete candidate path (its profile rules).
pub(crate) type Accept<'f> = dyn FnMut(&[usize], usize) -> Result<(), CertificateError> + 'f;

/// How specific a refusal is, for picking the one to report (as webpki ranks its errors).
fn rank(e: &CertificateError) -> u32 {
    match e {
        CertificateError::Expired { .. } | CertificateError::NotYetValid { .. } => 290,
        CertificateError::Revoked { .. } => 270,
        CertificateError::RevocationUnknown { .. } => 260,
        CertificateError::NameConstraint { .. } => 250,
        CertificateError::Invalid { .. } => 240,
        CertificateError::WrongUsage { .. } => 230,
        CertificateError::BadSignature { .. } => 220,
        CertificateError::ChainTooLong { .. } => 210,
        CertificateError::UnknownIssuer { .. } => 0,
        _ => 100,
    }
}

enum Stop {
    /// This candidate failed; others may still succeed.
    Refused(CertificateError),
    /// A limit ran out: stop looking.
    Fatal(CertificateError),
}

/// Validates and builds: the first path (depth first, AKI-matching issuers first) that
/// passes every check and `accept`.
pub(crate) fn build(
    problem: &Problem<'_, '_>,
    leaf_name: &dyn std::fmt::Display,
    accept: &mut Accept<'_>,
) -> Result<Found, CertificateError> {
    let mut search = Search {
        p: problem,
        leaf_name,
        signatures: HashMap::new(),
        budget_signatures: problem.limits.signatures,
        budget_nodes: problem.limits.nodes,
        nc_budget: constraints::Budget(problem.limits.name_comparisons),
        best: None,
        by_subject: HashMap::new(),
    };
    for (i, cert) in problem.pool.iter().enumerate() {
        // Duplicates add no path.
        let dup = problem.pool.get(..i).is_some_and(|before| {
            before
                .iter()
                .any(|b| b.tbs == cert.tbs && b.signature == cert.signature)
        });
        if !dup {
            search
                .by_subject
                .entry(cert.subject.content)
                .or_default()
                .push(i);
        }
    }
    let mut path = Vec::new();
    match search.extend(&mut path, accept) {
        Ok(anchor) => Ok(Found {
            intermediates: path,
            anchor,
        }),
        Err(Stop::Fatal(e)) => Err(e),
        Err(Stop::Refused(e)) => Err(match search.best.take() {
            Some(best) if rank(&best) >= rank(&e) => best,
            _ => e,
        }),
    }
}

/// Who signed: a pool certificate or an anchor.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Signer {
    Pool(usize),
    Anchor(usize),
}

struct Search<'s, 'p, 'a> {
    p: &'s Problem<'p, 'a>,
    leaf_name: &'s dyn std::fmt::Display,
    /// (child: None for the leaf, signer) -> signature verified.
    signatures: HashMap<(Option<usize>, Signer), bool>,
    budget_signatures: usize,
    budget_nodes: usize,
    nc_budget: constraints::Budget,
    best: Option<CertificateError>,
    by_subject: HashMap<&'a [u8], Vec<usize>>,
}

impl<'p, 'a> Search<'_, 'p, 'a> {
    fn cert(&self, index: Option<usize>) -> &'p Cert<'a> {
        let pool: &'p [Cert<'a>] = self.p.pool;
        let leaf: &'p Cert<'a> = self.p.leaf;
        match index.and_then(|i| pool.get(i)) {
            Some(c) => c,
            None => leaf,
        }
    }

    fn note(&mut self, e: CertificateError) {
        let better = match &self.best {
            Some(b) => rank(&e) > rank(b),
            None => true,
        };
        if better {
            self.best = Some(e);
        }
    }

    fn describe(&self, index: Option<usize>) -> String {
        match index {
            None => self.leaf_name.to_string(),
            Some(_) => {
                let c = self.cert(index);
                format!(
                    "intermediate \"{}\" in the chain of {}",
                    super::DistinguishedName::from_name(&c.subject),
                    self.leaf_name
                )
            }
        }
    }

    fn too_long(&self, why: &str) -> Stop {
        Stop::Fatal(CertificateError::ChainTooLong {
            cert: self.leaf_name.to_string(),
            reason: format!("path building gave up: {why}"),
        })
    }

    /// Extends `path` (intermediates below the head, leaf side first) from its head.
    fn extend(&mut self, path: &mut Vec<usize>, accept: &mut Accept<'_>) -> Result<usize, Stop> {
        let head = path.last().copied();
        self.independent(head, path).map_err(Stop::Refused)?;
        let issuer = self.cert(head).issuer.content;
        let mut last = CertificateError::UnknownIssuer {
            cert: self.leaf_name.to_string(),
            issuer: super::DistinguishedName::from_name(&self.cert(head).issuer).to_string(),
        };
        for (ai, anchor) in self.p.anchors.iter().enumerate() {
            if anchor.subject != issuer {
                continue;
            }
            match self.try_anchor(path, ai, accept) {
                Ok(()) => return Ok(ai),
                Err(Stop::Refused(e)) => {
                    self.note(e.clone());
                    last = e;
                }
                Err(fatal) => return Err(fatal),
            }
        }
        let mut candidates = self.by_subject.get(issuer).cloned().unwrap_or_default();
        let aki = self
            .cert(head)
            .extensions
            .authority_key_id
            .and_then(|a| a.value.key_id);
        if aki.is_some() {
            // Stable: AKI-matching issuers first, otherwise presented order.
            candidates.sort_by_key(|i| {
                let ski = self
                    .p
                    .pool
                    .get(*i)
                    .and_then(|c| c.extensions.subject_key_id);
                ski.map(|s| s.value) != aki
            });
        }
        for next in candidates {
            let Some(cand) = self.p.pool.get(next) else {
                continue;
            };
            // RFC 4158 5.2: no certificate (same key and name) twice on a path.
            let looped = std::iter::once(None)
                .chain(path.iter().map(|i| Some(*i)))
                .any(|i| {
                    let c = self.cert(i);
                    c.spki == cand.spki && c.subject.raw == cand.subject.raw
                });
            if looped {
                continue;
            }
            if path.len() >= self.p.limits.depth {
                let e = CertificateError::ChainTooLong {
                    cert: self.leaf_name.to_string(),
                    reason: format!(
                        "the path needs more than {} intermediates",
                        self.p.limits.depth
                    ),
                };
                self.note(e.clone());
                last = e;
                continue;
            }
            match self.signed_by(head, Signer::Pool(next)) {
                Ok(true) => {}
                Ok(false) => {
                    let e = self.bad_signature(head);
                    self.note(e.clone());
                    last = e;
                    continue;
                }
                Err(fatal) => return Err(fatal),
            }
            self.budget_nodes = self
                .budget_nodes
                .checked_sub(1)
                .ok_or_else(|| self.too_long("too many candidate paths"))?;
            path.push(next);
            match self.extend(path, accept) {
                Ok(anchor) => return Ok(anchor),
                Err(Stop::Refused(e)) => {
                    self.note(e.clone());
                    last = e;
                    path.pop();
                }
                Err(fatal) => return Err(fatal),
            }
        }
        Err(Stop::Refused(last))
    }

    fn bad_signature(&self, child: Option<usize>) -> CertificateError {
        CertificateError::BadSignature {
            cert: self.describe(child),
            reason: "no candidate issuer's key verifies it".to_owned(),
        }
    }

    /// Whether `child` (None: the leaf) is signed by `signer`, memoized.
    fn signed_by(&mut self, child: Option<usize>, signer: Signer) -> Result<bool, Stop> {
        if let Some(known) = self.signatures.get(&(child, signer)) {
            return Ok(*known);
        }
        self.budget_signatures = self
            .budget_signatures
            .checked_sub(1)
            .ok_or_else(|| self.too_long("too many signature checks"))?;
        let spki = match signer {
            Signer::Pool(i) => self.p.pool.get(i).map(|c| c.spki),
            Signer::Anchor(i) => self.p.anchors.get(i).map(|a| a.spki),
        }
        .unwrap_or(&[]);
        let c = self.cert(child);
        let ok = der::single(c.signature_algorithm, der::SEQUENCE, "signatureAlgorithm")
            .ok()
            .is_some_and(|alg| verify_signature(spki, alg, c.tbs, c.signature));
        self.signatures.insert((child, signer), ok);
        Ok(ok)
    }

    /// The checks that need no issuer (webpki's "issuer-independent properties"), with
    /// RFC 5280's path length: self-issued intermediates below are not counted.
    fn independent(&self, head: Option<usize>, path: &[usize]) -> Result<(), CertificateError> {
        let c = self.cert(head);
        let name = || self.describe(head);
        if c.not_before > c.not_after {
            return Err(CertificateError::Invalid {
                cert: name(),
                reason: "notBefore is after notAfter".to_owned(),
            });
        }
        if self.p.time < c.not_before {
            return Err(CertificateError::NotYetValid {
                cert: name(),
                not_before: c.not_before,
                at: self.p.time,
            });
        }
        if self.p.time > c.not_after {
            return Err(CertificateError::Expired {
                cert: name(),
                not_after: c.not_after,
                at: self.p.time,
            });
        }
        if c.extensions.critical_beyond_webpki {
            return Err(CertificateError::Invalid {
                cert: name(),
                reason: "carries a critical extension that is not processed".to_owned(),
            });
        }
        let bc = c.extensions.basic_constraints.map(|b| b.value);
        match (head, bc) {
            (None, Some(b)) if b.ca => return Err(CertificateError::CaAsLeaf { cert: name() }),
            (Some(_), b) if !b.is_some_and(|b| b.ca) => {
                return Err(CertificateError::Invalid {
                    cert: name(),
                    reason: "issues certificates but is not a CA (basicConstraints cA)".into(),
                })
            }
            (Some(_), Some(b)) => {
                if let Some(max) = b.path_len {
                    // §6.1.4 (l): only certificates that are not self-issued count; the
                    // leaf never does. `path` ends with this certificate.
                    let below = path.len().saturating_sub(1);
                    let counted = path
                        .get(..below)
                        .unwrap_or(&[])
                        .iter()
                        .filter(|i| self.p.pool.get(**i).is_some_and(|c| !c.is_self_issued()))
                        .count();
                    if counted > usize::try_from(max).unwrap_or(usize::MAX) {
                        return Err(CertificateError::Invalid {
                            cert: name(),
                            reason: format!(
                                "pathLenConstraint {max} allows fewer CAs than the {counted} below it"
                            ),
                        });
                    }
                }
            }
            _ => {}
        }
        if let Some(oids) = c.extensions.ext_key_usage_oids {
            let mut r = Reader::new(oids);
            let mut found = false;
            while let Ok(oid) = r.read() {
                found |= oid.content == self.p.eku;
            }
            if !found {
                return Err(CertificateError::WrongUsage {
                    cert: name(),
                    usage: if self.p.eku.last() == Some(&1) {
                        "TLS server authentication".to_owned()
                    } else {
                        "TLS client authentication".to_owned()
                    },
                });
            }
        }
        Ok(())
    }

    /// The head of `path` is issued by anchor `ai`: finish the path.
    fn try_anchor(
        &mut self,
        path: &[usize],
        ai: usize,
        accept: &mut Accept<'_>,
    ) -> Result<(), Stop> {
        let head = path.last().copied();
        if !self.signed_by(head, Signer::Anchor(ai))? {
            return Err(Stop::Refused(self.bad_signature(head)));
        }
        // The certificates leaf first, each with its issuer.
        let chain: Vec<Option<usize>> = std::iter::once(None)
            .chain(path.iter().map(|i| Some(*i)))
            .collect();
        if let Some(rev) = &self.p.revocation {
            for (k, child) in chain.iter().enumerate() {
                let (spki, ku) = match chain.get(k + 1) {
                    Some(issuer) => {
                        let c = self.cert(*issuer);
                        (c.spki, c.key_usage())
                    }
                    None => (self.p.anchors.get(ai).map_or(&[][..], |a| a.spki), None),
                };
                self.revocation(rev, *child, spki, ku)?;
            }
        }
        let anchor_nc = self.p.anchors.get(ai).and_then(|a| a.name_constraints);
        let certs: Vec<&Cert<'a>> = chain.iter().map(|c| self.cert(*c)).collect();
        match check_name_constraints(&certs, anchor_nc, &mut self.nc_budget) {
            Ok(()) => {}
            Err((_, NcError::Budget)) => {
                return Err(self.too_long("too many name-constraint comparisons"))
            }
            Err((at, _)) => {
                return Err(Stop::Refused(CertificateError::NameConstraint {
                    cert: self.describe(chain.get(at).copied().flatten()),
                }))
            }
        }
        accept(path, ai).map_err(Stop::Refused)
    }

    /// webpki's CRL check for one certificate: the first loaded CRL that is authoritative
    /// for it must verify under the issuer's key and must not list its serial.
    fn revocation(
        &mut self,
        rev: &Revocation<'_>,
        child: Option<usize>,
        issuer_spki: &[u8],
        issuer_ku: Option<u16>,
    ) -> Result<(), Stop> {
        let cert = self.cert(child);
        let found = rev.crls.iter().copied().find(|(list, signed)| {
            list.issuer() == cert.issuer.content && authoritative(signed, cert, child.is_some())
        });
        let name = || format!("{} (or a CA in its chain)", self.leaf_name);
        let Some((list, signed)) = found else {
            return if rev.deny_unknown {
                Err(Stop::Refused(CertificateError::RevocationUnknown {
                    cert: name(),
                    reason: "no CRL from its issuer is loaded; load the issuer's CRL or turn \
                             deny_unknown_revocation off"
                        .to_owned(),
                }))
            } else {
                Ok(())
            };
        };
        self.budget_signatures = self
            .budget_signatures
            .checked_sub(1)
            .ok_or_else(|| self.too_long("too many signature checks"))?;
        if !verify_signature(
            issuer_spki,
            &signed.algorithm,
            &signed.tbs,
            &signed.signature,
        ) {
            return Err(Stop::Refused(CertificateError::BadSignature {
                cert: format!("a CRL for {}", self.describe(child)),
                reason: "InvalidCrlSignatureForPublicKey".to_owned(),
            }));
        }
        if rev.enforce_next_update && signed.next_update.is_some_and(|n| self.p.time >= n) {
            self.p.lapsed.set(true);
            return Err(Stop::Refused(CertificateError::RevocationUnknown {
                cert: name(),
                reason: format!(
                    "the issuer's CRL lapsed at {} (its nextUpdate), verification \
                     time {}; fetch the CA's current CRL and reload it",
                    der::rfc3339(signed.next_update.unwrap_or_default()),
                    der::rfc3339(self.p.time)
                ),
            }));
        }
        if issuer_ku.is_some_and(|ku| ku & super::cert::key_usage::CRL_SIGN == 0) {
            return Err(Stop::Refused(CertificateError::Invalid {
                cert: name(),
                reason: "IssuerNotCrlSigner".to_owned(),
            }));
        }
        match list.find_serial(cert.serial) {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err(Stop::Refused(CertificateError::Revoked { cert: name() })),
            Err(e) => Err(Stop::Refused(CertificateError::Invalid {
                cert: name(),
                reason: format!("{e:?}"),
            })),
        }
    }
}

/// §6.1.3 (b), (c): each CA's constraints bind every certificate below it on `chain`
/// (leaf first, anchor excluded), except self-issued intermediates; the leaf is always
/// bound. On failure, the index of the offending certificate.
pub(crate) fn check_name_constraints(
    chain: &[&Cert<'_>],
    anchor_nc: Option<NameConstraints<'_>>,
    budget: &mut constraints::Budget,
) -> Result<(), (usize, NcError)> {
    let constrainers = chain
        .iter()
        .enumerate()
        .skip(1)
        .map(|(k, c)| (k, c.extensions.name_constraints.map(|n| n.value)))
        .chain(std::iter::once((chain.len(), anchor_nc)));
    for (k, nc) in constrainers {
        let Some(nc) = nc else {
            continue;
        };
        for (j, cert) in chain.iter().take(k).enumerate() {
            if j > 0 && cert.is_self_issued() {
                continue;
            }
            constraints::check(&nc, cert, budget).map_err(|e| (j, e))?;
        }
    }
    Ok(())
}

/// The `http://` URIs in a certificate's cRLDistributionPoints (full names of direct,
/// all-reasons distribution points).
pub(crate) fn distribution_point_uris(cert: &Cert<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(dps) = cert.extensions.crl_distribution_points else {
        return out;
    };
    let Ok(content) = der::single(dps, der::SEQUENCE, "cRLDistributionPoints") else {
        return out;
    };
    let mut points = Reader::new(content);
    while let Ok(dp) = points.expect(der::SEQUENCE, "DistributionPoint") {
        let mut r = Reader::new(dp);
        let Ok(Some(name)) = r.optional(der::context_constructed(0)) else {
            continue;
        };
        let Ok(Some(full)) = Reader::new(name.content).optional(der::context_constructed(0)) else {
            continue;
        };
        if let Ok(names) = GeneralNames::parse_content(full.content) {
            for n in names.iter() {
                if let GeneralName::Uri(u) = n {
                    if u.get(..7)
                        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
                    {
                        out.push(u.to_owned());
                    }
                }
            }
        }
    }
    out
}

/// `a < b` for two non-negative DER INTEGER values.
pub(crate) fn integer_less(a: &[u8], b: &[u8]) -> bool {
    let trim = |x: &[u8]| -> Vec<u8> {
        let start = x.iter().position(|b| *b != 0).unwrap_or(x.len());
        x.get(start..).unwrap_or(&[]).to_vec()
    };
    let (a, b) = (trim(a), trim(b));
    (a.len(), a) < (b.len(), b)
}

/// A self-issued certificate that is not self-signed by its own key (its authority key
/// identifier names another key): a CA key rollover, which webpki mishandles.
pub(crate) fn is_rollover(cert: &Cert<'_>) -> bool {
    if !cert.is_self_issued() {
        return false;
    }
    let aki = cert
        .extensions
        .authority_key_id
        .and_then(|a| a.value.key_id);
    let ski = cert.extensions.subject_key_id.map(|s| s.value);
    aki.is_some() && aki != ski
}

/// webpki's scope rule: a CRL with an issuingDistributionPoint covers a certificate when
/// its only-user / only-CA scope admits it and, if the certificate names distribution
/// points, one of their URIs is in the IDP's full name.
fn authoritative(signed: &CrlSigned, cert: &Cert<'_>, is_issuer: bool) -> bool {
    let Some(idp) = &signed.idp else {
        return true;
    };
    if (idp.only_ca && !is_issuer) || (idp.only_user && is_issuer) {
        return false;
    }
    let Some(dps) = cert.extensions.crl_distribution_points else {
        return true;
    };
    let Ok(content) = der::single(dps, der::SEQUENCE, "cRLDistributionPoints") else {
        return false;
    };
    let mut points = Reader::new(content);
    while let Ok(dp) = points.expect(der::SEQUENCE, "DistributionPoint") {
        let mut r = Reader::new(dp);
        let name = r.optional(der::context_constructed(0)).ok().flatten();
        let reasons = r.optional(der::context(1)).ok().flatten();
        let crl_issuer = r.optional(der::context_constructed(2)).ok().flatten();
        if reasons.is_some() || crl_issuer.is_some() {
            continue;
        }
        let Some(name) = name else {
            continue;
        };
        let Ok(Some(full)) = Reader::new(name.content).optional(der::context_constructed(0)) else {
            continue;
        };
        let Ok(names) = GeneralNames::parse_content(full.content) else {
            continue;
        };
        for n in names.iter() {
            if let GeneralName::Uri(u) = n {
                if !idp.has_full_name {
                    return false;
                }
                if idp.uris.iter().any(|i| i.as_slice() == u.as_bytes()) {
                    return true;
                }
            }
        }
    }
    false
}

/// Verifies `signature` over `message` with the key in `spki` (SubjectPublicKeyInfo
/// contents), using webpki's algorithm implementations, matched as webpki matches them.
pub(crate) fn verify_signature(
    spki: &[u8],
    algorithm: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    let mut r = Reader::new(spki);
    let Ok(key_alg) = r.expect(der::SEQUENCE, "AlgorithmIdentifier") else {
        return false;
    };
    let Ok(key) = r
        .expect(der::BIT_STRING, "subjectPublicKey")
        .and_then(der::bit_string)
    else {
        return false;
    };
    let algs: &[&dyn SignatureVerificationAlgorithm] = webpki::ALL_VERIFICATION_ALGS;
    for alg in algs {
        if alg.signature_alg_id().as_ref() != algorithm {
            continue;
        }
        if alg.public_key_alg_id().as_ref() != key_alg {
            continue;
        }
        return alg.verify_signature(key, message, signature).is_ok();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::integer_less;

    #[test]
    fn crl_numbers_compare_as_unsigned_integers() {
        assert!(integer_less(&[0x01], &[0x02]));
        assert!(integer_less(&[0x7f], &[0x00, 0x80]));
        assert!(!integer_less(&[0x00, 0x80], &[0x7f]));
        assert!(!integer_less(&[0x05], &[0x05]));
        assert!(integer_less(&[0xff], &[0x01, 0x00]));
    }
}

/// Differential test: on every x509-limbo chain rustls-webpki can judge (no name
/// constraint of a form it does not process, no self-issued certificate among the
/// intermediates, within its work budget), this module and webpki give the same verdict.
#[cfg(test)]
mod differential {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
    use webpki::{
        EndEntityCert, KeyUsage, OwnedCertRevocationList, RevocationCheckDepth,
        RevocationOptionsBuilder, UnknownStatusPolicy,
    };

    /// One path-validation question, as DER.
    pub(super) struct Case {
        pub(super) id: String,
        pub(super) anchors: Vec<Vec<u8>>,
        pub(super) pool: Vec<Vec<u8>>,
        pub(super) leaf: Vec<u8>,
        pub(super) crls: Vec<Vec<u8>>,
        pub(super) time: i64,
        pub(super) server: bool,
    }

    /// The verdicts, or None when webpki cannot judge the case.
    pub(super) fn judge(case: &Case, deny_unknown: bool) -> Option<(bool, bool, String)> {
        let leaf_der = CertificateDer::from(case.leaf.as_slice());
        let ee = EndEntityCert::try_from(&leaf_der).ok()?;
        let leaf = Cert::parse(&case.leaf).ok()?;
        let anchor_ders: Vec<CertificateDer<'_>> = case
            .anchors
            .iter()
            .map(|a| CertificateDer::from(a.as_slice()))
            .collect();
        let mut anchors: Vec<TrustAnchor<'_>> = Vec::new();
        for a in &anchor_ders {
            anchors.push(webpki::anchor_from_trusted_cert(a).ok()?);
        }
        let pool: Vec<Cert<'_>> = case
            .pool
            .iter()
            .filter_map(|d| Cert::parse(d).ok())
            .collect();
        if pool.len() != case.pool.len() {
            return None;
        }
        let ours_anchors: Vec<Anchor<'_>> = anchors
            .iter()
            .map(|a| Anchor {
                subject: a.subject.as_ref(),
                spki: a.subject_public_key_info.as_ref(),
                name_constraints: a
                    .name_constraints
                    .as_ref()
                    .map(|n| super::super::cert::name_constraints_content(n.as_ref()).unwrap()),
            })
            .collect();
        let beyond = |nc: Option<NameConstraints<'_>>| nc.is_some_and(|n| n.beyond_webpki);
        if pool
            .iter()
            .any(|c| c.is_self_issued() || beyond(c.extensions.name_constraints.map(|n| n.value)))
            || ours_anchors.iter().any(|a| beyond(a.name_constraints))
        {
            return None;
        }
        let mut lists = Vec::new();
        let mut signed = Vec::new();
        for crl in &case.crls {
            lists.push(CertRevocationList::from(
                OwnedCertRevocationList::from_der(crl).ok()?,
            ));
            signed.push(CrlSigned::parse(crl).ok()?);
        }
        let refs: Vec<&CertRevocationList<'_>> = lists.iter().collect();
        let revocation = RevocationOptionsBuilder::new(&refs).ok().map(|b| {
            b.with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(if deny_unknown {
                    UnknownStatusPolicy::Deny
                } else {
                    UnknownStatusPolicy::Allow
                })
                .build()
        });
        let inters: Vec<CertificateDer<'_>> = case
            .pool
            .iter()
            .map(|d| CertificateDer::from(d.as_slice()))
            .collect();
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(case.time).unwrap(),
        ));
        let usage = if case.server {
            KeyUsage::server_auth()
        } else {
            KeyUsage::client_auth()
        };
        let theirs = ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &inters,
            time,
            usage,
            revocation,
            None,
        );
        if let Err(
            webpki::Error::MaximumPathDepthExceeded
            | webpki::Error::MaximumSignatureChecksExceeded
            | webpki::Error::MaximumPathBuildCallsExceeded
            | webpki::Error::MaximumNameConstraintComparisonsExceeded,
        ) = theirs
        {
            return None;
        }
        let rev = (!lists.is_empty()).then(|| Revocation {
            crls: lists.iter().zip(signed.iter()).collect(),
            deny_unknown,
            enforce_next_update: false,
        });
        let problem = Problem {
            leaf: &leaf,
            pool: &pool,
            anchors: &ours_anchors,
            eku: if case.server {
                &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01]
            } else {
                &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02]
            },
            time: case.time,
            revocation: rev,
            limits: LIMITS,
            lapsed: std::cell::Cell::new(false),
        };
        let ours = build(&problem, &"the leaf", &mut |_, _| Ok(()));
        let detail = format!(
            "webpki: {:?}; ours: {:?}",
            theirs.as_ref().err(),
            ours.as_ref().err()
        );
        Some((theirs.is_ok(), ours.is_ok(), detail))
    }

    fn limbo_cases() -> Vec<Case> {
        let limbo = crate::identity::limbo_json();
        let pems = |v: &serde_json::Value| -> Vec<Vec<u8>> {
            v.as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p.as_str())
                .flat_map(|p| {
                    crate::identity::decode::decode_pem_certificates(p.as_bytes())
                        .unwrap_or_default()
                })
                .collect()
        };
        let mut out = Vec::new();
        for case in limbo["testcases"].as_array().unwrap() {
            let Ok(leaf) = crate::identity::decode::decode_pem_certificate(
                case["peer_certificate"].as_str().unwrap().as_bytes(),
            ) else {
                continue;
            };
            let crls = case["crls"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p.as_str())
                .flat_map(|p| {
                    crate::identity::decode::decode_crls(p.as_bytes()).unwrap_or_default()
                })
                .collect();
            // limbo times are UTC "YYYY-MM-DDTHH:MM:SS+00:00"; null means now.
            let time = case["validation_time"].as_str().map_or_else(
                || {
                    i64::try_from(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_secs(),
                    )
                    .unwrap()
                },
                |t| {
                    let tlv = format!(
                        "{}{}{}{}{}{}Z",
                        &t[0..4],
                        &t[5..7],
                        &t[8..10],
                        &t[11..13],
                        &t[14..16],
                        &t[17..19]
                    );
                    let mut der = vec![der::GENERALIZED_TIME, 15];
                    der.extend(tlv.as_bytes());
                    der::time(&Reader::new(&der).read().unwrap()).unwrap()
                },
            );
            out.push(Case {
                id: case["id"].as_str().unwrap().to_owned(),
                anchors: pems(&case["trusted_certs"]),
                pool: pems(&case["untrusted_intermediates"]),
                leaf,
                crls,
                time,
                server: case["validation_kind"] == "SERVER",
            });
        }
        out
    }

    #[test]
    fn agrees_with_webpki_on_every_limbo_chain_it_can_judge() {
        let mut compared = 0;
        let mut disagreements = Vec::new();
        for case in limbo_cases() {
            for deny in [false, true] {
                let Some((theirs, ours, detail)) = judge(&case, deny) else {
                    continue;
                };
                compared += 1;
                if theirs != ours {
                    disagreements.push(format!("{} (deny_unknown {deny}): {detail}", case.id));
                }
            }
        }
        assert!(disagreements.is_empty(), "{disagreements:#?}");
        assert!(compared > 300, "only {compared} verdicts compared");
    }
}

/// Differential test on generated PKIs: random depth, pathLenConstraint, EKU on every
/// certificate, dNSName/iPAddress constraints (permitted and excluded), expired and
/// non-CA issuers, decoy issuers with the right name and the wrong key, CRLs.
#[cfg(test)]
mod generated {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::differential::{judge, Case};
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, CidrSubnet,
        DistinguishedName, DnType, ExtendedKeyUsagePurpose as Eku, GeneralSubtree, IsCa,
        KeyIdMethod, KeyPair, KeyUsagePurpose, NameConstraints, RevokedCertParams, SanType,
        SerialNumber,
    };

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn chance(&mut self, pct: u64) -> bool {
            self.below(100) < pct
        }
    }

    fn dn(cn: &str) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn
    }

    fn constraints(rng: &mut Rng) -> Option<NameConstraints> {
        let dns = |s: &str| GeneralSubtree::DnsName(s.to_owned());
        let net = GeneralSubtree::IpAddress(CidrSubnet::V4([192, 0, 2, 0], [255, 255, 255, 0]));
        let nc = |p: Vec<GeneralSubtree>, e: Vec<GeneralSubtree>| {
            Some(NameConstraints {
                permitted_subtrees: p,
                excluded_subtrees: e,
            })
        };
        match rng.below(8) {
            0 => nc(vec![dns("example.com")], vec![]),
            1 => nc(vec![], vec![dns("bad.example.com")]),
            2 => nc(vec![net], vec![]),
            3 => nc(vec![dns("example.com"), dns("test")], vec![dns("x.test")]),
            4 => nc(
                vec![],
                vec![GeneralSubtree::IpAddress(CidrSubnet::V4(
                    [10, 0, 0, 0],
                    [255, 0, 0, 0],
                ))],
            ),
            _ => None,
        }
    }

    fn eku(rng: &mut Rng) -> Vec<Eku> {
        match rng.below(6) {
            0 => vec![Eku::ServerAuth],
            1 => vec![Eku::ClientAuth],
            2 => vec![Eku::ServerAuth, Eku::ClientAuth],
            3 => vec![Eku::CodeSigning],
            _ => vec![],
        }
    }

    fn ca(
        rng: &mut Rng,
        cn: &str,
        key: &KeyPair,
        issuer: Option<(&rcgen::Certificate, &KeyPair)>,
    ) -> rcgen::Certificate {
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(cn);
        p.is_ca = if rng.chance(4) {
            IsCa::ExplicitNoCa
        } else {
            IsCa::Ca(match rng.below(4) {
                0 => BasicConstraints::Constrained(0),
                1 => BasicConstraints::Constrained(1),
                _ => BasicConstraints::Unconstrained,
            })
        };
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        if rng.chance(20) {
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        }
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = if rng.chance(5) {
            rcgen::date_time_ymd(2021, 1, 1)
        } else {
            rcgen::date_time_ymd(2040, 1, 1)
        };
        p.serial_number = Some(SerialNumber::from(rng.below(1 << 40) + 1));
        if issuer.is_some() {
            p.extended_key_usages = eku(rng);
        }
        p.name_constraints = constraints(rng);
        p.use_authority_key_identifier_extension = true;
        p.key_identifier_method = KeyIdMethod::Sha256;
        match issuer {
            Some((c, k)) => p.signed_by(key, c, k).unwrap(),
            None => p.self_signed(key).unwrap(),
        }
    }

    fn crl(
        rng: &mut Rng,
        issuer: &rcgen::Certificate,
        key: &KeyPair,
        serials: &[SerialNumber],
    ) -> Vec<u8> {
        let revoked = serials
            .iter()
            .filter(|_| rng.chance(50))
            .map(|s| RevokedCertParams {
                serial_number: s.clone(),
                revocation_time: rcgen::date_time_ymd(2024, 6, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect();
        CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2030, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(issuer, key)
        .unwrap()
        .der()
        .to_vec()
    }

    fn scenario(seed: u64) -> Case {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let alg = &rcgen::PKCS_ECDSA_P256_SHA256;
        let root_key = KeyPair::generate_for(alg).unwrap();
        let root = ca(&mut rng, "Gen Root", &root_key, None);
        let mut chain: Vec<(rcgen::Certificate, KeyPair)> = Vec::new();
        let mut serials = Vec::new();
        let depth = rng.below(4);
        for i in 0..depth {
            let key = KeyPair::generate_for(alg).unwrap();
            let cert = {
                let issuer = chain.last().map_or((&root, &root_key), |(c, k)| (c, k));
                ca(&mut rng, &format!("Gen CA {i}"), &key, Some(issuer))
            };
            serials.push(cert.params().serial_number.clone().unwrap());
            chain.push((cert, key));
        }
        let mut pool: Vec<Vec<u8>> = chain.iter().map(|(c, _)| c.der().to_vec()).collect();
        if !chain.is_empty() && rng.chance(40) {
            // A decoy: the name of a chain CA, another key.
            let i = usize::try_from(rng.below(chain.len() as u64)).unwrap();
            let key = KeyPair::generate_for(alg).unwrap();
            let decoy = ca(
                &mut rng,
                &format!("Gen CA {i}"),
                &key,
                Some((&root, &root_key)),
            );
            pool.insert(
                usize::try_from(rng.below(pool.len() as u64 + 1)).unwrap(),
                decoy.der().to_vec(),
            );
        }
        if rng.chance(30) {
            pool.reverse();
        }
        let leaf_key = KeyPair::generate_for(alg).unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name = dn("gen leaf");
        for name in [
            "a.example.com",
            "bad.example.com",
            "*.example.com",
            "x.test",
            "b.test",
        ] {
            if rng.chance(30) {
                p.subject_alt_names
                    .push(SanType::DnsName(name.try_into().unwrap()));
            }
        }
        for ip in [[192, 0, 2, 5], [10, 0, 0, 1]] {
            if rng.chance(20) {
                p.subject_alt_names.push(SanType::IpAddress(ip.into()));
            }
        }
        if p.subject_alt_names.is_empty() {
            p.subject_alt_names
                .push(SanType::DnsName("a.example.com".try_into().unwrap()));
        }
        p.extended_key_usages = eku(&mut rng);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.is_ca = IsCa::ExplicitNoCa;
        p.not_before = rcgen::date_time_ymd(2024, 1, 1);
        p.not_after = rcgen::date_time_ymd(if rng.chance(5) { 2024 } else { 2030 }, 6, 1);
        p.serial_number = Some(SerialNumber::from(rng.below(1 << 40) + 1));
        serials.push(p.serial_number.clone().unwrap());
        p.use_authority_key_identifier_extension = true;
        let leaf = {
            let issuer = chain.last().map_or((&root, &root_key), |(c, k)| (c, k));
            p.signed_by(&leaf_key, issuer.0, issuer.1).unwrap()
        };
        let mut crls = Vec::new();
        let signs_crls =
            |c: &rcgen::Certificate| c.params().key_usages.contains(&KeyUsagePurpose::CrlSign);
        if rng.chance(35) {
            if signs_crls(&root) {
                crls.push(crl(&mut rng, &root, &root_key, &serials));
            }
            for (c, k) in &chain {
                if signs_crls(c) && rng.chance(60) {
                    crls.push(crl(&mut rng, c, k, &serials));
                }
            }
        }
        Case {
            id: format!("generated seed {seed}"),
            anchors: vec![root.der().to_vec()],
            pool,
            leaf: leaf.der().to_vec(),
            crls,
            time: 1_748_736_000, // 2025-06-01
            server: rng.chance(50),
        }
    }

    #[test]
    fn agrees_with_webpki_on_generated_pkis() {
        let (mut compared, mut accepted) = (0, 0);
        let mut disagreements = Vec::new();
        for seed in 0..240 {
            let case = scenario(seed);
            for deny in [false, true] {
                let Some((theirs, ours, detail)) = judge(&case, deny) else {
                    continue;
                };
                compared += 1;
                accepted += usize::from(theirs);
                if theirs != ours {
                    disagreements.push(format!("{} (deny_unknown {deny}): {detail}", case.id));
                }
            }
        }
        assert!(disagreements.is_empty(), "{disagreements:#?}");
        // Both verdicts are well represented, or the generator is too one-sided to test.
        assert!(compared > 400, "only {compared} compared");
        assert!(
            accepted > 60 && compared - accepted > 60,
            "{accepted} of {compared} accepted"
        );
    }
}
