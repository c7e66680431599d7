//! The CRLs a [`TrustStore`](super::TrustStore) judges revocation with.
//!
//! Loading is where ambiguity is settled, so verification never has to guess:
//! - one CRL per issuer and scope (issuer name plus issuingDistributionPoint): the one with
//!   the highest cRLNumber; identical copies collapse; two different CRLs of one scope with
//!   the same cRLNumber are refused (`crls: Dir["crls/*.pem"]` mid-rotation works, a
//!   corrupted or forked CA does not pass silently);
//! - a CRL whose issuer is a configured CA (anchor or intermediate) must verify under that
//!   CA's key at load time; a CRL from an issuer only peers present is checked when a chain
//!   through that issuer is judged, and a failure there is a store error naming the CRL;
//! - nextUpdate is kept: a CRL past it is *lapsed* (see `TrustStore::verify`).

use super::dn::hex;
use super::{CertificateError, DistinguishedName};
use ring::digest;
use webpki::{CertRevocationList, OwnedCertRevocationList};
use x509_parser::error::X509Error;

/// id-ce-cRLNumber (2.5.29.20).
const OID_CRL_NUMBER: &str = "2.5.29.20";
/// id-ce-issuingDistributionPoint (2.5.29.28).
const OID_IDP: &str = "2.5.29.28";

/// A loaded CRL, as [`TrustStore::crls`](super::TrustStore::crls) reports it.
///
/// ```
/// use portcullis::identity::CrlInfo;
/// fn lapsed(crls: &[CrlInfo], now: i64) -> Vec<&CrlInfo> {
///     crls.iter().filter(|c| c.is_lapsed(now)).collect()
/// }
/// assert!(lapsed(&[], 0).is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CrlInfo {
    /// The issuer DN (RFC 4514).
    pub issuer: String,
    /// The cRLNumber, in decimal.
    pub number: String,
    /// thisUpdate, seconds since the Unix epoch.
    pub this_update: i64,
    /// nextUpdate, seconds since the Unix epoch: from then on the CRL is lapsed.
    pub next_update: i64,
    /// SHA-256 of the CRL's DER, lowercase hex.
    pub fingerprint: String,
    /// Whether its signature was checked at load time (its issuer is a configured CA). If
    /// not, it is checked whenever a chain through its issuer is verified.
    pub signature_checked: bool,
    /// How many other CRLs of the same issuer and scope (lower cRLNumbers) were dropped.
    pub superseded: usize,
}

impl CrlInfo {
    /// Whether the CRL is past its nextUpdate at `at` (seconds since the Unix epoch).
    pub fn is_lapsed(&self, at: i64) -> bool {
        at >= self.next_update
    }

    /// `CRL (sha256 …, issuer "…", cRLNumber N)`: how errors name it.
    pub(crate) fn describe(&self) -> String {
        format!(
            "CRL (sha256 {}, issuer \"{}\", cRLNumber {})",
            self.fingerprint.get(..16).unwrap_or(&self.fingerprint),
            self.issuer,
            self.number
        )
    }
}

pub(crate) struct LoadedCrl {
    pub(crate) list: CertRevocationList<'static>,
    pub(crate) info: CrlInfo,
    /// The issuer Name, DER.
    pub(crate) issuer_raw: Vec<u8>,
    /// issuingDistributionPoint extension value, if any: part of the CRL's scope.
    idp: Option<Vec<u8>>,
    /// cRLNumber, big-endian without leading zeros (so longer means larger).
    number: Vec<u8>,
    der: Vec<u8>,
    /// Signed parts and scope, for the RFC 5280 path builder ([`super::pkix`]).
    pub(crate) signed: super::pkix::CrlSigned,
}

/// The CRLs in force, one per issuer and scope.
#[derive(Default)]
pub(crate) struct CrlSet {
    pub(crate) crls: Vec<LoadedCrl>,
}

impl std::fmt::Debug for CrlSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.crls.iter().map(|c| &c.info))
            .finish()
    }
}

fn fingerprint(der: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, der).as_ref())
}

fn short(fp: &str) -> &str {
    fp.get(..16).unwrap_or(fp)
}

/// Checks the CRL's signature with `signer_der`'s key. `None`: the algorithm is one the
/// load-time check does not know; webpki judges it when the CRL is used.
fn signature_verifies(
    crl: &x509_parser::revocation_list::CertificateRevocationList<'_>,
    signer_der: &[u8],
) -> Option<bool> {
    let (_, signer) = x509_parser::parse_x509_certificate(signer_der).ok()?;
    match crl.verify_signature(signer.public_key()) {
        Ok(()) => Some(true),
        Err(X509Error::SignatureUnsupportedAlgorithm) => None,
        Err(_) => Some(false),
    }
}

/// The subject Name (DER) of a certificate, by x509-parser (the same bytes the CRL's issuer
/// is compared with).
fn subject_raw(cert_der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    Some(cert.subject().as_raw().to_vec())
}

fn parse_one(der: &[u8], signers: &[Vec<u8>]) -> Result<LoadedCrl, CertificateError> {
    let fp = fingerprint(der);
    let refuse = |reason: String| {
        CertificateError::bad_trust_store(format!(
            "CRL (sha256 {}) is not a usable CRL: {reason}",
            short(&fp)
        ))
    };
    let list = OwnedCertRevocationList::from_der(der).map_err(|e| refuse(format!("{e:?}")))?;
    let (_, parsed) = x509_parser::parse_x509_crl(der).map_err(|e| refuse(format!("{e}")))?;
    // RFC 5280 5.2.3: conforming CRLs carry a non-critical cRLNumber.
    match parsed
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == OID_CRL_NUMBER)
    {
        None => return Err(refuse("it has no cRLNumber extension".to_owned())),
        Some(ext) if ext.critical => {
            return Err(refuse("its cRLNumber extension is critical".to_owned()))
        }
        Some(_) => {}
    }
    let number = parsed
        .crl_number()
        .ok_or_else(|| refuse("its cRLNumber extension does not parse".to_owned()))?;
    let number_bytes = number.to_bytes_be();
    if number_bytes.len() > 20 {
        // RFC 5280 5.2.3: at most 20 octets.
        return Err(refuse("its cRLNumber is longer than 20 octets".to_owned()));
    }
    let idp = parsed
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == OID_IDP)
        .map(|e| e.value.to_vec());
    let issuer_raw = parsed.issuer().as_raw().to_vec();
    let issuer = DistinguishedName::from_der(&issuer_raw)
        .map(|d| d.to_string())
        .unwrap_or_else(|_| parsed.issuer().to_string());
    let next_update = parsed
        .next_update()
        .ok_or_else(|| refuse("it has no nextUpdate".to_owned()))?
        .timestamp();
    let mut info = CrlInfo {
        issuer,
        number: number.to_string(),
        this_update: parsed.last_update().timestamp(),
        next_update,
        fingerprint: fp.clone(),
        signature_checked: false,
        superseded: 0,
    };
    // A configured CA with the issuer's name must have signed it (any of them: a re-keyed
    // CA keeps its name). Unknown algorithms are left to webpki at verification.
    let mut known = false;
    for signer in signers {
        if subject_raw(signer).as_deref() != Some(issuer_raw.as_slice()) {
            continue;
        }
        known = true;
        if signature_verifies(&parsed, signer) == Some(true) {
            info.signature_checked = true;
            break;
        }
    }
    if known && !info.signature_checked {
        let unknown_alg = signers
            .iter()
            .filter(|s| subject_raw(s).as_deref() == Some(issuer_raw.as_slice()))
            .all(|s| signature_verifies(&parsed, s).is_none());
        if !unknown_alg {
            return Err(CertificateError::bad_trust_store(format!(
                "{}: its signature does not verify with the key of the configured CA \"{}\"; \
                 the file was altered or signed by another key: replace it with the CA's current CRL",
                info.describe(),
                info.issuer
            )));
        }
    }
    let signed = super::pkix::CrlSigned::parse(der).map_err(|e| refuse(e.to_string()))?;
    Ok(LoadedCrl {
        list: CertRevocationList::from(list),
        info,
        issuer_raw,
        idp,
        number: number_bytes,
        der: der.to_vec(),
        signed,
    })
}

fn number_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl CrlSet {
    /// Parses `ders` and keeps, per issuer and scope, the CRL with the highest cRLNumber.
    /// `signers` are the store's configured CA certificates (DER), used to check the
    /// signatures of the CRLs they issued.
    pub(crate) fn load(ders: &[Vec<u8>], signers: &[Vec<u8>]) -> Result<Self, CertificateError> {
        // Group by scope, in first-seen order, dropping identical copies.
        let mut scopes: Vec<Vec<LoadedCrl>> = Vec::new();
        for der in ders {
            let crl = parse_one(der, signers)?;
            match scopes.iter_mut().find(|group| {
                group
                    .first()
                    .is_some_and(|c| c.issuer_raw == crl.issuer_raw && c.idp == crl.idp)
            }) {
                Some(group) if group.iter().any(|c| c.der == crl.der) => {}
                Some(group) => group.push(crl),
                None => scopes.push(vec![crl]),
            }
        }
        let mut set = CrlSet::default();
        for mut group in scopes {
            group.sort_by(|a, b| number_cmp(&b.number, &a.number));
            let superseded = group.len().saturating_sub(1);
            let mut rest = group.into_iter();
            let Some(mut newest) = rest.next() else {
                continue;
            };
            if let Some(twin) = rest.next().filter(|c| c.number == newest.number) {
                return Err(CertificateError::bad_trust_store(format!(
                    "{} and CRL (sha256 {}) both carry cRLNumber {} for issuer \"{}\" but differ: \
                     the set is ambiguous; keep only the CA's current CRL",
                    newest.info.describe(),
                    short(&twin.info.fingerprint),
                    twin.info.number,
                    twin.info.issuer
                )));
            }
            newest.info.superseded = superseded;
            set.crls.push(newest);
        }
        Ok(set)
    }

    pub(crate) fn lists(&self) -> Vec<&CertRevocationList<'static>> {
        self.crls.iter().map(|c| &c.list).collect()
    }

    pub(crate) fn infos(&self) -> Vec<CrlInfo> {
        self.crls.iter().map(|c| c.info.clone()).collect()
    }

    /// Whether a loaded CRL was issued by the CA with this subject (DER Name).
    pub(crate) fn issued_by(&self, subject: &[u8]) -> bool {
        self.crls.iter().any(|c| c.issuer_raw.as_slice() == subject)
    }

    /// The times around `at` between which every CRL's freshness is what it is at `at`:
    /// from the latest nextUpdate at or before `at` to just before the earliest one after
    /// it. A verification result holds only within them.
    pub(crate) fn steady_window(&self, at: i64) -> (Option<i64>, Option<i64>) {
        let next = self.crls.iter().map(|c| c.info.next_update);
        let from = next.clone().filter(|n| *n <= at).max();
        let until = next.filter(|n| *n > at).min().map(|n| n.saturating_sub(1));
        (from, until)
    }

    /// The lapsed CRL webpki reported (by its nextUpdate), preferring one from `issuer`
    /// (the leaf's issuer, DER Name).
    pub(crate) fn lapsed(&self, at: i64, next_update: i64, issuer: &[u8]) -> Option<&CrlInfo> {
        let matching: Vec<&LoadedCrl> = self
            .crls
            .iter()
            .filter(|c| c.info.is_lapsed(at) && c.info.next_update == next_update)
            .collect();
        matching
            .iter()
            .find(|c| c.issuer_raw.as_slice() == issuer)
            .or(matching.first())
            .map(|c| &c.info)
    }

    /// Names the CRL(s) whose signature failed while a chain of `presented` certificates
    /// (DER) was verified: a CRL not checked at load whose issuer is one of them and whose
    /// signature does not verify with that certificate's key (or, failing an exact
    /// finding, every unchecked CRL from an issuer in the chain).
    pub(crate) fn signature_failure(&self, presented: &[&[u8]]) -> CertificateError {
        let unchecked: Vec<&LoadedCrl> = self
            .crls
            .iter()
            .filter(|c| !c.info.signature_checked)
            .collect();
        let mut bad: Vec<String> = Vec::new();
        let mut suspects: Vec<String> = Vec::new();
        for cert in presented {
            let Some(subject) = subject_raw(cert) else {
                continue;
            };
            for crl in unchecked.iter().filter(|c| c.issuer_raw == subject) {
                suspects.push(crl.info.describe());
                let Ok((_, parsed)) = x509_parser::parse_x509_crl(&crl.der) else {
                    continue;
                };
                if signature_verifies(&parsed, cert) != Some(true) {
                    bad.push(crl.info.describe());
                }
            }
        }
        let named = if bad.is_empty() { suspects } else { bad };
        let named = if named.is_empty() {
            "a CRL of an issuer in the chain".to_owned()
        } else {
            named.join(", ")
        };
        CertificateError::bad_trust_store(format!(
            "{named}: its signature does not verify with the key of the CA that the peer's chain \
             names as its issuer (or uses an algorithm that is not accepted); the CRL was altered \
             or signed by another key: replace it with the CA's current CRL, and configure that CA \
             as an intermediate so the CRL is checked when it is loaded"
        ))
    }
}
