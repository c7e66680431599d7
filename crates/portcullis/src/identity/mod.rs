//! Client certificate chains in, [`Identity`] out.
//!
//! Owned by the identity capability: trust store, chain verification (rustls-webpki),
//! the verification cache, certificate decoding and certificate sources.

mod cache;
mod cert;
mod constraints;
mod crl;
mod crl_fetch;
mod crl_refresh;
pub mod decode;
mod der;
mod dn;
mod error;
mod memo;
mod pkix;
mod profile;
pub mod source;
mod store;
#[cfg(feature = "rustls")]
pub mod tls;

pub use crl::CrlInfo;
pub use crl_fetch::{DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_CRL_BYTES};
pub use crl_refresh::{CrlRefreshEvent, CrlRefresher};
pub(crate) use der::rfc3339;
pub use dn::{attribute_oid, Attribute, DistinguishedName, DnParseError};
pub use error::CertificateError;
pub use store::{
    TrustStore, TrustStoreBuilder, Usage, DEFAULT_CACHE_CAPACITY, MAX_PRESENTED_CHAIN_BYTES,
};

use std::net::IpAddr;

/// Who a verified client is: everything later decisions (authz, logging) may rely on.
///
/// Only [`TrustStore`-verified](self) chains produce an `Identity`; it is never built from
/// a header or a string alone.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// Subject DN of the leaf.
    pub subject: DistinguishedName,
    /// Issuer DN of the leaf.
    pub issuer: DistinguishedName,
    /// The leaf's most specific commonName, if any.
    pub common_name: Option<String>,
    /// dNSName SANs.
    pub dns_names: Vec<String>,
    /// uniformResourceIdentifier SANs (including the SPIFFE ID, if any).
    pub uris: Vec<String>,
    /// rfc822Name SANs.
    pub emails: Vec<String>,
    /// iPAddress SANs.
    pub ips: Vec<IpAddr>,
    /// The SPIFFE ID, when the leaf carries exactly one `spiffe://` URI SAN.
    pub spiffe_id: Option<String>,
    /// Serial number, lowercase hex, no leading zero bytes.
    pub serial: String,
    /// SHA-256 of the leaf's DER, lowercase hex.
    pub fingerprint: String,
    /// notBefore, seconds since the Unix epoch.
    pub not_before: i64,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: i64,
    /// SHA-256 fingerprints (lowercase hex) of the verified path: leaf first, anchor last.
    pub chain_fingerprints: Vec<String>,
    /// Set when the chain was accepted without a confirmed revocation status because a
    /// CRL that covers it has lapsed (past its nextUpdate) and the store does not deny
    /// unknown status: which CRL, since when. A certificate the lapsed CRL lists is still
    /// refused as revoked. Log it; it stays set until fresh CRLs are loaded.
    pub revocation_warning: Option<String>,
}

impl Identity {
    /// The trust domain of the SPIFFE ID (`example.org` in `spiffe://example.org/ns/x`).
    pub fn spiffe_trust_domain(&self) -> Option<&str> {
        let rest = self.spiffe_id.as_deref()?.strip_prefix("spiffe://")?;
        Some(rest.split('/').next().unwrap_or(rest))
    }
}

/// The x509-limbo test vectors (`tests/data/limbo.json.gz`), for the unit tests that run
/// the certificate reader and the path builder over them.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn limbo_json() -> serde_json::Value {
    use std::io::Read;
    let gz = include_bytes!("../../tests/data/limbo.json.gz");
    let mut json = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut json)
        .unwrap();
    serde_json::from_str(&json).unwrap()
}
