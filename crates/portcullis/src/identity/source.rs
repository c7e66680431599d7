//! Where a client certificate comes from: the TLS layer or a header set by a proxy that
//! terminated TLS in front of the app.
//!
//! A [`CertSource`] reads the raw certificate bytes (leaf DER plus any chain DERs) out of
//! one kind of carrier ([`SourceKind`]). It never decides whether the certificate is good:
//! the bytes it returns must still be verified by the trust store, because a header proves
//! nothing by itself. What it does decide:
//!
//! - a forwarded header is honoured only when the socket peer (`REMOTE_ADDR`, never
//!   `X-Forwarded-For`) is one of the [`TrustedProxies`]; from anyone else it is an error
//!   ([`SourceError::UntrustedProxy`]), not a request "without a certificate";
//! - header values are size-capped ([`SourceLimits`]) before any decoding;
//! - encodings are decoded strictly: an invalid `%` escape, a PEM value without a
//!   certificate block, bad base64, a truncated DER frame, malformed XFCC or an Envoy `Hash`
//!   that does not match `Cert` is an error. PEM and DER decoding is the identity
//!   capability's ([`super::decode`]); this module adds the carriers.
//!
//! ```
//! use portcullis::identity::source::{CertSource, SourceKind, TrustedProxies};
//!
//! let proxies = TrustedProxies::new(["10.0.0.0/8"])?;
//! let source = CertSource::new(SourceKind::Envoy, proxies)?;
//! let headers = [("x-forwarded-client-cert", "By=spiffe://example.org/proxy")];
//! let lookup = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
//! // An XFCC element without Cert or Chain carries no certificate.
//! let err = source.extract(lookup, Some("10.1.2.3")).unwrap_err();
//! assert_eq!(portcullis::ErrorCode::code(&err), "cert.missing");
//! // The same header from a peer outside the trusted proxies is refused outright.
//! let err = source.extract(lookup, Some("203.0.113.9")).unwrap_err();
//! assert_eq!(portcullis::ErrorCode::code(&err), "cert.untrusted_proxy");
//! # Ok::<(), portcullis::identity::source::SourceError>(())
//! ```

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::{decode, CertificateError};
use crate::ErrorCode;

/// The carrier a client certificate arrives in.
///
/// ```
/// use portcullis::identity::source::SourceKind;
/// let kind: SourceKind = "envoy".parse().unwrap();
/// assert_eq!(kind.default_header(), "x-forwarded-client-cert");
/// assert!(kind.is_forwarded());
/// assert!(!SourceKind::Tls.is_forwarded());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceKind {
    /// The app's own TLS layer, WEBrick/Apache style: the server variables
    /// `SSL_CLIENT_CERT` (PEM) and `SSL_CLIENT_CERT_CHAIN_0`, `_1`, … (PEM). Not a header,
    /// so no proxy check applies.
    Tls,
    /// nginx `$ssl_client_escaped_cert`: URL-escaped PEM (leaf, optionally followed by
    /// chain blocks). Default header `x-ssl-client-cert`.
    Nginx,
    /// Envoy `x-forwarded-client-cert` (XFCC): the element added by the nearest proxy (the
    /// last one) with URL-escaped PEM `Cert` and/or `Chain`, checked against `Hash`.
    Envoy,
    /// AWS ALB mTLS passthrough `x-amzn-mtls-clientcert`: URL-escaped PEM chain, leaf first.
    Alb,
    /// Traefik `x-forwarded-tls-client-cert`: base64 DER (optionally URL-escaped), chain
    /// comma-separated, leaf first.
    Traefik,
    /// RFC 9440 `client-cert` (structured-field byte sequence) and `client-cert-chain`
    /// (list of byte sequences).
    Rfc9440,
}

impl SourceKind {
    /// Whether the certificate arrives in a header set by a proxy (so the peer must be
    /// one of the trusted proxies).
    ///
    /// ```
    /// assert!(portcullis::identity::source::SourceKind::Alb.is_forwarded());
    /// ```
    pub fn is_forwarded(self) -> bool {
        !matches!(self, Self::Tls)
    }

    /// The header (or, for [`SourceKind::Tls`], server variable) the leaf is read from.
    ///
    /// ```
    /// use portcullis::identity::source::SourceKind;
    /// assert_eq!(SourceKind::Rfc9440.default_header(), "client-cert");
    /// ```
    pub fn default_header(self) -> &'static str {
        match self {
            Self::Tls => "SSL_CLIENT_CERT",
            Self::Nginx => "x-ssl-client-cert",
            Self::Envoy => "x-forwarded-client-cert",
            Self::Alb => "x-amzn-mtls-clientcert",
            Self::Traefik => "x-forwarded-tls-client-cert",
            Self::Rfc9440 => "client-cert",
        }
    }

    /// The separate chain header, for carriers that have one.
    ///
    /// ```
    /// use portcullis::identity::source::SourceKind;
    /// assert_eq!(SourceKind::Rfc9440.default_chain_header(), Some("client-cert-chain"));
    /// assert_eq!(SourceKind::Envoy.default_chain_header(), None);
    /// ```
    pub fn default_chain_header(self) -> Option<&'static str> {
        match self {
            Self::Tls => Some("SSL_CLIENT_CERT_CHAIN_"),
            Self::Rfc9440 => Some("client-cert-chain"),
            _ => None,
        }
    }

    /// The name used in configuration (`tls`, `nginx`, `envoy`, `alb`, `traefik`, `rfc9440`).
    ///
    /// ```
    /// assert_eq!(portcullis::identity::source::SourceKind::Alb.name(), "alb");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Self::Tls => "tls",
            Self::Nginx => "nginx",
            Self::Envoy => "envoy",
            Self::Alb => "alb",
            Self::Traefik => "traefik",
            Self::Rfc9440 => "rfc9440",
        }
    }
}

impl FromStr for SourceKind {
    type Err = SourceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "tls" => Self::Tls,
            "nginx" => Self::Nginx,
            "envoy" | "xfcc" => Self::Envoy,
            "alb" | "aws_alb" => Self::Alb,
            "traefik" => Self::Traefik,
            "rfc9440" => Self::Rfc9440,
            _ => return Err(SourceError::UnknownSource { name: s.to_owned() }),
        })
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why no usable certificate bytes came out of a source.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The request carries no client certificate in the configured place.
    #[error("no client certificate in {header}: the client must present one (or the proxy must forward it)")]
    Missing {
        /// Where it was looked for.
        header: String,
    },
    /// A header value is not the encoding the source expects (bad `%` escape, bad base64,
    /// no PEM certificate block, truncated DER, malformed XFCC or structured field, …).
    #[error("{header} is not a valid {kind} certificate value: {reason}")]
    BadEncoding {
        /// The header (or server variable).
        header: String,
        /// The source kind.
        kind: SourceKind,
        /// What is wrong.
        reason: String,
    },
    /// A header value exceeds its size cap; checked before any decoding.
    #[error("{header} is {len} bytes, over the {max}-byte cap: raise the cap if the chain is legitimately that large")]
    HeaderTooLarge {
        /// The header.
        header: String,
        /// Its length in bytes.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// More certificates than the cap (leaf included).
    #[error("{header} carries {count} certificates, over the cap of {max}")]
    TooManyCertificates {
        /// The header.
        header: String,
        /// How many were presented.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// The Envoy XFCC `Hash` is not the SHA-256 of the `Cert`: the element was tampered
    /// with or assembled by something other than Envoy.
    #[error("x-forwarded-client-cert Hash {hash} does not match the SHA-256 of Cert ({actual})")]
    XfccHashMismatch {
        /// The `Hash` value from the header.
        hash: String,
        /// SHA-256 of the certificate, lowercase hex.
        actual: String,
    },
    /// The Envoy XFCC `Chain` does not start with the `Cert` it accompanies.
    #[error("x-forwarded-client-cert Chain does not start with Cert (leaf {leaf}): the element is inconsistent")]
    XfccChainMismatch {
        /// SHA-256 of `Cert`, lowercase hex.
        leaf: String,
    },
    /// A certificate header arrived from a socket peer outside the trusted proxies: a
    /// client trying to assert its own certificate.
    #[error("{header} sent by {peer}, which is not a trusted proxy: add the proxy's address to trusted_proxies, or stop the client from sending it")]
    UntrustedProxy {
        /// The header.
        header: String,
        /// The socket peer as given (`unknown` when absent).
        peer: String,
    },
    /// A trusted-proxy entry is neither an IP address nor a CIDR, or trusts every address.
    #[error("trusted proxy {entry:?} is invalid: {reason}")]
    BadProxy {
        /// The entry.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// A forwarded source was configured with no trusted proxy, so every header would be
    /// refused.
    #[error("source {kind} reads a proxy header but trusted_proxies is empty: list the proxies' addresses (CIDRs)")]
    NoTrustedProxies {
        /// The source kind.
        kind: SourceKind,
    },
    /// A source name is not one of `tls`, `nginx`, `envoy`, `alb`, `traefik`, `rfc9440`.
    #[error("unknown certificate source {name:?}: use tls, nginx, envoy, alb, traefik or rfc9440")]
    UnknownSource {
        /// The name given.
        name: String,
    },
    /// A configured header name is not a valid lowercase HTTP field name.
    #[error("header name {name:?} is invalid: use a token such as x-ssl-client-cert")]
    BadHeaderName {
        /// The name given.
        name: String,
    },
    /// A configured size cap ([`SourceLimits`]) is outside its allowed range.
    #[error("{limit} = {value} is out of range: it must be between {min} and {max} ({why})")]
    BadLimit {
        /// Which limit (`max_certs`, `max_cert_bytes`, `max_chain_bytes`).
        limit: &'static str,
        /// The value given.
        value: usize,
        /// The smallest allowed value.
        min: usize,
        /// The largest allowed value.
        max: usize,
        /// Why the range is what it is.
        why: &'static str,
    },
}

impl ErrorCode for SourceError {
    fn code(&self) -> &'static str {
        match self {
            Self::Missing { .. } => "cert.missing",
            Self::BadEncoding { .. } => "cert.bad_encoding",
            Self::HeaderTooLarge { .. } => "cert.header_too_large",
            Self::TooManyCertificates { .. } => "cert.chain_too_long",
            Self::XfccHashMismatch { .. } => "cert.xfcc_hash_mismatch",
            Self::XfccChainMismatch { .. } => "cert.xfcc_chain_mismatch",
            Self::UntrustedProxy { .. } => "cert.untrusted_proxy",
            Self::BadProxy { .. } => "cert.bad_proxy",
            Self::NoTrustedProxies { .. } => "cert.no_trusted_proxies",
            Self::UnknownSource { .. } => "cert.unknown_source",
            Self::BadHeaderName { .. } => "cert.bad_header_name",
            Self::BadLimit { .. } => "cert.bad_limit",
        }
    }
}

/// Size caps on header values, checked before decoding.
///
/// ```
/// use portcullis::identity::source::SourceLimits;
/// let limits = SourceLimits { max_cert_bytes: 8 * 1024, ..SourceLimits::default() };
/// assert_eq!(limits.max_chain_bytes, 64 * 1024);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceLimits {
    /// Cap for a header carrying one certificate (nginx, RFC 9440 `client-cert`,
    /// `SSL_CLIENT_CERT`, each `SSL_CLIENT_CERT_CHAIN_n`). Default 16 KiB.
    pub max_cert_bytes: usize,
    /// Cap for a header that may carry a chain (XFCC, ALB, Traefik, `client-cert-chain`)
    /// and for the sum of `SSL_CLIENT_CERT_CHAIN_n`. Default 64 KiB.
    pub max_chain_bytes: usize,
    /// Most certificates accepted, leaf included. Default 10.
    pub max_certs: usize,
}

/// The most certificates (leaf included) a source may be configured to accept: 64, room
/// for the largest cross-signed meshes path-building suites present (35 certificates).
/// A trust store bounds what it is handed by bytes
/// ([`MAX_PRESENTED_CHAIN_BYTES`](super::MAX_PRESENTED_CHAIN_BYTES)) and by path-building
/// work, not by a count; this cap bounds the decoding a header costs per request.
pub const MAX_CERTS_CAP: usize = 64;

impl SourceLimits {
    /// Checks every cap against its range: `max_certs` 1..=[`MAX_CERTS_CAP`], the byte caps
    /// 1..=[`decode::MAX_INPUT_BYTES`] (the decoders refuse anything larger anyway).
    ///
    /// ```
    /// use portcullis::identity::source::{SourceLimits, MAX_CERTS_CAP};
    /// let huge = SourceLimits { max_certs: 1 << 62, ..SourceLimits::default() };
    /// let err = huge.check().unwrap_err();
    /// assert_eq!(portcullis::ErrorCode::code(&err), "cert.bad_limit");
    /// assert!(err.to_string().contains(&MAX_CERTS_CAP.to_string()));
    /// assert!(SourceLimits::default().check().is_ok());
    /// ```
    pub fn check(&self) -> Result<(), SourceError> {
        let range = |limit, value, max, why| {
            if (1..=max).contains(&value) {
                Ok(())
            } else {
                Err(SourceError::BadLimit {
                    limit,
                    value,
                    min: 1,
                    max,
                    why,
                })
            }
        };
        range(
            "max_certs",
            self.max_certs,
            MAX_CERTS_CAP,
            "more certificates than any chain worth building; a trust store bounds chains by bytes and path-building work",
        )?;
        range(
            "max_cert_bytes",
            self.max_cert_bytes,
            decode::MAX_INPUT_BYTES,
            "larger certificate values are refused by the decoder",
        )?;
        range(
            "max_chain_bytes",
            self.max_chain_bytes,
            decode::MAX_INPUT_BYTES,
            "larger chain values are refused by the decoder",
        )
    }
}

impl Default for SourceLimits {
    fn default() -> Self {
        Self {
            max_cert_bytes: 16 * 1024,
            max_chain_bytes: 64 * 1024,
            max_certs: 10,
        }
    }
}

/// The certificate bytes a source found: not yet verified.
///
/// ```
/// use portcullis::identity::source::PresentedCertificate;
/// let p = PresentedCertificate { leaf: vec![0x30], chain: vec![] };
/// assert!(p.chain.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedCertificate {
    /// The leaf certificate, DER.
    pub leaf: Vec<u8>,
    /// Further certificates as presented (intermediates), DER, leaf excluded.
    pub chain: Vec<Vec<u8>>,
}

/// Socket peers allowed to forward certificate headers, as CIDRs.
///
/// ```
/// use portcullis::identity::source::TrustedProxies;
/// let p = TrustedProxies::new(["10.0.0.0/8", "::1"])?;
/// assert!(p.contains("10.2.3.4".parse().unwrap()));
/// assert!(p.contains("::ffff:10.2.3.4".parse().unwrap())); // IPv4-mapped peers unwrap
/// assert!(!p.contains("11.0.0.1".parse().unwrap()));
/// assert!(TrustedProxies::new(["0.0.0.0/0"]).is_err()); // that would trust everyone
/// # Ok::<(), portcullis::identity::source::SourceError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses CIDRs (`10.0.0.0/8`) and bare addresses (`127.0.0.1`, `::1`). A `/0`
    /// network is refused: it would let any client assert any certificate.
    pub fn new<I, S>(entries: I) -> Result<Self, SourceError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match entry.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(SourceError::BadProxy {
                            entry: entry.to_owned(),
                            reason: "not an IP address or CIDR".to_owned(),
                        })
                    }
                },
            };
            if net.prefix_len() == 0 {
                return Err(SourceError::BadProxy {
                    entry: entry.to_owned(),
                    reason: "a /0 network trusts every address".to_owned(),
                });
            }
            nets.push(net.trunc());
        }
        Ok(Self { nets })
    }

    /// Whether `peer` is inside one of the networks (IPv4-mapped IPv6 is judged as IPv4).
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.nets.iter().any(|n| n.contains(&peer))
    }

    /// Whether the textual socket peer (`REMOTE_ADDR`) is trusted; unparsable or absent
    /// peers are not.
    ///
    /// ```
    /// let p = portcullis::identity::source::TrustedProxies::new(["::1"]).unwrap();
    /// assert!(p.contains_peer(Some("[::1]")));
    /// assert!(!p.contains_peer(Some("::1, 10.0.0.1")));
    /// assert!(!p.contains_peer(None));
    /// ```
    pub fn contains_peer(&self, peer: Option<&str>) -> bool {
        peer.and_then(parse_peer)
            .is_some_and(|ip| self.contains(ip))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

fn parse_peer(peer: &str) -> Option<IpAddr> {
    let p = peer.trim();
    let p = p
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(p);
    p.parse().ok()
}

/// Reads client certificate bytes from one kind of carrier. See the [module docs](self).
///
/// ```
/// use portcullis::identity::source::{CertSource, SourceKind, TrustedProxies};
/// let source = CertSource::new(SourceKind::Tls, TrustedProxies::default())?;
/// let err = source.extract(|_| None, None).unwrap_err();
/// assert_eq!(portcullis::ErrorCode::code(&err), "cert.missing");
/// # Ok::<(), portcullis::identity::source::SourceError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CertSource {
    kind: SourceKind,
    header: String,
    chain_header: Option<String>,
    proxies: TrustedProxies,
    limits: SourceLimits,
}

impl CertSource {
    /// A source of `kind` reading its default header(s). A forwarded kind needs at least
    /// one trusted proxy.
    pub fn new(kind: SourceKind, proxies: TrustedProxies) -> Result<Self, SourceError> {
        if kind.is_forwarded() && proxies.is_empty() {
            return Err(SourceError::NoTrustedProxies { kind });
        }
        Ok(Self {
            kind,
            header: kind.default_header().to_owned(),
            chain_header: kind.default_chain_header().map(str::to_owned),
            proxies,
            limits: SourceLimits::default(),
        })
    }

    /// Reads the leaf from `name` instead of the default header (lowercased). Not
    /// available for [`SourceKind::Tls`], whose server variables are fixed.
    ///
    /// ```
    /// use portcullis::identity::source::{CertSource, SourceKind, TrustedProxies};
    /// let s = CertSource::new(SourceKind::Nginx, TrustedProxies::new(["127.0.0.1"])?)?
    ///     .with_header("X-Client-Cert")?;
    /// assert_eq!(s.header(), "x-client-cert");
    /// # Ok::<(), portcullis::identity::source::SourceError>(())
    /// ```
    pub fn with_header(mut self, name: &str) -> Result<Self, SourceError> {
        self.header = self.header_name(name)?;
        Ok(self)
    }

    /// Reads the chain from `name` (RFC 9440 only; other kinds carry the chain in the
    /// leaf header).
    pub fn with_chain_header(mut self, name: &str) -> Result<Self, SourceError> {
        let name = self.header_name(name)?;
        if self.kind != SourceKind::Rfc9440 {
            return Err(SourceError::BadHeaderName { name });
        }
        self.chain_header = Some(name);
        Ok(self)
    }

    /// Replaces the size caps, after [`SourceLimits::check`]: `max_certs` above
    /// [`MAX_CERTS_CAP`] (or 0, or a byte cap out of range) is `cert.bad_limit`.
    pub fn with_limits(mut self, limits: SourceLimits) -> Result<Self, SourceError> {
        limits.check()?;
        self.limits = limits;
        Ok(self)
    }

    fn header_name(&self, name: &str) -> Result<String, SourceError> {
        let valid = !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        if !valid || self.kind == SourceKind::Tls {
            return Err(SourceError::BadHeaderName {
                name: name.to_owned(),
            });
        }
        Ok(name.to_ascii_lowercase())
    }

    /// The source kind.
    pub fn kind(&self) -> SourceKind {
        self.kind
    }

    /// The leaf header (lowercase), or `SSL_CLIENT_CERT` for [`SourceKind::Tls`].
    pub fn header(&self) -> &str {
        &self.header
    }

    /// The chain header: RFC 9440's, or the `SSL_CLIENT_CERT_CHAIN_` prefix (followed by
    /// `0`, `1`, …) for [`SourceKind::Tls`].
    pub fn chain_header(&self) -> Option<&str> {
        self.chain_header.as_deref()
    }

    /// The trusted proxies.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.proxies
    }

    /// The size caps.
    pub fn limits(&self) -> SourceLimits {
        self.limits
    }

    /// Extracts the presented certificate. `lookup` returns a header's value by its
    /// lowercase name (or, for [`SourceKind::Tls`], a server variable by its exact name);
    /// `peer` is the socket peer address (`REMOTE_ADDR`).
    ///
    /// Errors: [`SourceError::Missing`] when nothing is there;
    /// [`SourceError::UntrustedProxy`] when a forwarded header comes from a peer outside
    /// the trusted proxies; encoding and size errors otherwise.
    pub fn extract<'a, F>(
        &self,
        lookup: F,
        peer: Option<&str>,
    ) -> Result<PresentedCertificate, SourceError>
    where
        F: Fn(&str) -> Option<&'a str>,
    {
        if self.kind == SourceKind::Tls {
            return self.extract_server_variables(&lookup);
        }
        let present = |v: Option<&'a str>| v.filter(|s| !s.trim().is_empty());
        let leaf_value = present(lookup(&self.header));
        let chain_value = self
            .chain_header
            .as_deref()
            .and_then(|h| present(lookup(h)));
        if leaf_value.is_none() && chain_value.is_none() {
            return Err(self.missing());
        }
        if !self.proxies.contains_peer(peer) {
            let header = if leaf_value.is_some() {
                self.header.clone()
            } else {
                self.chain_header.clone().unwrap_or_default()
            };
            return Err(SourceError::UntrustedProxy {
                header,
                peer: peer.unwrap_or("unknown").to_owned(),
            });
        }
        let Some(value) = leaf_value else {
            return Err(self.missing());
        };
        let certs = match self.kind {
            SourceKind::Nginx => {
                self.cap(&self.header, value, self.limits.max_cert_bytes)?;
                // nginx's deprecated $ssl_client_cert indents continuation lines with a tab.
                let value = value.replace('\t', "");
                self.escaped_pem(&self.header, &value)?
            }
            SourceKind::Alb => {
                self.cap(&self.header, value, self.limits.max_chain_bytes)?;
                self.escaped_pem(&self.header, value)?
            }
            SourceKind::Traefik => {
                self.cap(&self.header, value, self.limits.max_chain_bytes)?;
                self.traefik(value)?
            }
            SourceKind::Envoy => {
                self.cap(&self.header, value, self.limits.max_chain_bytes)?;
                self.envoy(value)?
            }
            SourceKind::Rfc9440 => {
                self.cap(&self.header, value, self.limits.max_cert_bytes)?;
                let leaf = sf_binary(value.trim()).map_err(|r| self.bad(&self.header, r))?;
                let mut certs = vec![leaf];
                if let (Some(h), Some(chain)) = (self.chain_header.as_deref(), chain_value) {
                    self.cap(h, chain, self.limits.max_chain_bytes)?;
                    for item in chain.split(',') {
                        certs.push(sf_binary(item.trim()).map_err(|r| self.bad(h, r))?);
                    }
                }
                certs
            }
            SourceKind::Tls => return Err(self.missing()),
        };
        self.finish(&self.header, certs)
    }

    fn extract_server_variables<'a, F>(
        &self,
        lookup: &F,
    ) -> Result<PresentedCertificate, SourceError>
    where
        F: Fn(&str) -> Option<&'a str>,
    {
        let Some(value) = lookup(&self.header).filter(|s| !s.trim().is_empty()) else {
            return Err(self.missing());
        };
        self.cap(&self.header, value, self.limits.max_cert_bytes)?;
        let mut certs = vec![self.one_pem(&self.header, value)?];
        let prefix = self
            .chain_header
            .as_deref()
            .unwrap_or("SSL_CLIENT_CERT_CHAIN_");
        let mut total = 0usize;
        for n in 0.. {
            let name = format!("{prefix}{n}");
            let Some(value) = lookup(&name).filter(|s| !s.trim().is_empty()) else {
                break;
            };
            if certs.len() >= self.limits.max_certs {
                return Err(SourceError::TooManyCertificates {
                    header: prefix.to_owned() + "n",
                    count: certs.len() + 1,
                    max: self.limits.max_certs,
                });
            }
            self.cap(&name, value, self.limits.max_cert_bytes)?;
            total += value.len();
            if total > self.limits.max_chain_bytes {
                return Err(SourceError::HeaderTooLarge {
                    header: prefix.to_owned() + "n",
                    len: total,
                    max: self.limits.max_chain_bytes,
                });
            }
            certs.push(self.one_pem(&name, value)?);
        }
        self.finish(&self.header, certs)
    }

    fn missing(&self) -> SourceError {
        let header = if self.kind == SourceKind::Tls {
            format!("the TLS connection ({})", self.header)
        } else {
            self.header.clone()
        };
        SourceError::Missing { header }
    }

    fn bad(&self, header: &str, reason: impl Into<String>) -> SourceError {
        SourceError::BadEncoding {
            header: header.to_owned(),
            kind: self.kind,
            reason: reason.into(),
        }
    }

    fn cap(&self, header: &str, value: &str, max: usize) -> Result<(), SourceError> {
        if value.len() > max {
            return Err(SourceError::HeaderTooLarge {
                header: header.to_owned(),
                len: value.len(),
                max,
            });
        }
        Ok(())
    }

    fn decoded<T>(&self, header: &str, r: Result<T, CertificateError>) -> Result<T, SourceError> {
        r.map_err(|e| match e {
            CertificateError::BadEncoding { reason, .. } => self.bad(header, reason),
            other => self.bad(header, other.to_string()),
        })
    }

    /// URL-escaped PEM (nginx, ALB, XFCC), unescaped strictly (see [`decode::percent_decode_strict`]).
    fn escaped_pem(&self, header: &str, value: &str) -> Result<Vec<Vec<u8>>, SourceError> {
        let pem = decode::percent_decode_strict(value).map_err(|r| self.bad(header, r))?;
        self.decoded(header, decode::decode_pem_certificates(&pem))
    }

    fn one_pem(&self, header: &str, value: &str) -> Result<Vec<u8>, SourceError> {
        self.decoded(header, decode::decode_pem_certificate(value.as_bytes()))
    }

    fn finish(
        &self,
        header: &str,
        mut certs: Vec<Vec<u8>>,
    ) -> Result<PresentedCertificate, SourceError> {
        if certs.len() > self.limits.max_certs {
            return Err(SourceError::TooManyCertificates {
                header: header.to_owned(),
                count: certs.len(),
                max: self.limits.max_certs,
            });
        }
        if certs.is_empty() {
            return Err(self.missing());
        }
        let leaf = certs.remove(0);
        Ok(PresentedCertificate { leaf, chain: certs })
    }

    fn traefik(&self, value: &str) -> Result<Vec<Vec<u8>>, SourceError> {
        let h = &self.header;
        value
            .split(',')
            .map(|item| {
                let text =
                    decode::percent_decode_strict(item.trim()).map_err(|r| self.bad(h, r))?;
                let text = std::str::from_utf8(&text).map_err(|_| self.bad(h, "not ASCII"))?;
                self.decoded(h, decode::decode_base64_der(text))
            })
            .collect()
    }

    fn envoy(&self, value: &str) -> Result<Vec<Vec<u8>>, SourceError> {
        let h = &self.header;
        let elements = parse_xfcc(value).map_err(|r| self.bad(h, r))?;
        // Each proxy appends its element: the last one is the nearest, the only one whose
        // author we can vouch for (the socket peer). Earlier ones may come from the client.
        let Some(element) = elements.last() else {
            return Err(self.missing());
        };
        let single = |key: &str| -> Result<Option<&str>, SourceError> {
            let mut values = element
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str());
            let first = values.next();
            if values.next().is_some() {
                return Err(self.bad(h, format!("duplicate {key} in the nearest element")));
            }
            Ok(first)
        };
        let cert = single("cert")?.filter(|v| !v.is_empty());
        let chain = single("chain")?.filter(|v| !v.is_empty());
        let hash = single("hash")?;
        let decode = |v: &str| self.escaped_pem(h, v);
        let mut certs = match (cert, chain) {
            (None, None) => return Err(self.missing()),
            (Some(c), chain) => {
                let mut leaf = decode(c)?;
                if leaf.len() != 1 {
                    return Err(self.bad(h, "Cert must hold exactly one certificate"));
                }
                if let Some(chain) = chain {
                    let chain = decode(chain)?;
                    if chain.first() != leaf.first() {
                        let fp = leaf.first().map(|d| sha256_hex(d)).unwrap_or_default();
                        return Err(SourceError::XfccChainMismatch { leaf: fp });
                    }
                    leaf.extend(chain.into_iter().skip(1));
                }
                leaf
            }
            (None, Some(chain)) => decode(chain)?,
        };
        if let (Some(hash), Some(leaf)) = (hash, certs.first()) {
            let actual = sha256_hex(leaf);
            if !hash.trim().eq_ignore_ascii_case(&actual) {
                return Err(SourceError::XfccHashMismatch {
                    hash: hash.chars().take(80).collect(),
                    actual,
                });
            }
        }
        if certs.is_empty() {
            return Err(self.missing());
        }
        certs.shrink_to_fit();
        Ok(certs)
    }
}

fn sha256_hex(der: &[u8]) -> String {
    super::dn::hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

/// One XFCC element: `(lowercase key, unescaped value)` pairs in order.
type XfccElement = Vec<(String, String)>;

/// Parses the Envoy `x-forwarded-client-cert` grammar: elements separated by `,`, pairs by
/// `;`, `key=value` with case-insensitive keys; a value may be a quoted string in which
/// `\"` and `\\` are escapes and `,` `;` `=` are literal.
fn parse_xfcc(value: &str) -> Result<Vec<XfccElement>, String> {
    let mut elements = Vec::new();
    let mut element: XfccElement = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        // key
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            if matches!(c, ',' | ';' | '"') {
                return Err(format!(
                    "unexpected {c:?} in a key (every pair needs key=value)"
                ));
            }
            key.push(c);
            chars.next();
        }
        let key = key.trim().to_ascii_lowercase();
        if chars.next() != Some('=') {
            return Err("pair without '='".to_owned());
        }
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!("invalid key {key:?}"));
        }
        // value
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(e) => val.push(e),
                        None => return Err("dangling '\\' in a quoted value".to_owned()),
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    _ => val.push(c),
                }
            }
            if !closed {
                return Err(format!("unterminated quoted value for {key}"));
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            if chars.peek().is_some_and(|c| !matches!(c, ',' | ';')) {
                return Err(format!("text after the quoted value of {key}"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if matches!(c, ',' | ';') {
                    break;
                }
                // '=' is fine: the key already ended at the first '='.
                if c == '"' {
                    return Err(format!("unquoted value of {key} contains {c:?}"));
                }
                val.push(c);
                chars.next();
            }
            val = val.trim().to_owned();
        }
        element.push((key, val));
        match chars.next() {
            Some(';') => {}
            Some(',') => {
                elements.push(std::mem::take(&mut element));
            }
            None => {
                elements.push(element);
                return Ok(elements);
            }
            Some(c) => return Err(format!("unexpected {c:?}")),
        }
    }
}

/// An RFC 8941 byte sequence `:base64:`.
fn sf_binary(item: &str) -> Result<Vec<u8>, String> {
    let inner = item
        .strip_prefix(':')
        .and_then(|s| s.strip_suffix(':'))
        .ok_or_else(|| "not a structured-field byte sequence (:base64:)".to_owned())?;
    if inner.contains(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))) {
        return Err("byte sequence holds characters outside base64".to_owned());
    }
    decode::decode_base64_der(inner).map_err(|e| match e {
        CertificateError::BadEncoding { reason, .. } => reason,
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const PEM_END: &str = "-----END CERTIFICATE-----";

    /// A tiny DER-shaped blob per index: decoding, not verification, is under test here.
    fn der(n: u8) -> Vec<u8> {
        vec![0x30, 0x03, 0x02, 0x01, n]
    }

    fn b64(d: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(d)
    }

    fn pem(d: &[u8]) -> String {
        format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", b64(d))
    }

    fn escape(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~+/=".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(["10.0.0.0/8", "::1"]).unwrap()
    }

    fn source(kind: SourceKind) -> CertSource {
        CertSource::new(kind, proxies()).unwrap()
    }

    fn run(
        src: &CertSource,
        headers: &[(&str, &str)],
        peer: &str,
    ) -> Result<PresentedCertificate, SourceError> {
        src.extract(
            |name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v),
            Some(peer),
        )
    }

    fn code(r: Result<PresentedCertificate, SourceError>) -> &'static str {
        r.unwrap_err().code()
    }

    #[test]
    fn nginx_escaped_pem() {
        let s = source(SourceKind::Nginx);
        let v = escape(&pem(&der(1)));
        let got = run(&s, &[("x-ssl-client-cert", &v)], "10.0.0.1").unwrap();
        assert_eq!(got.leaf, der(1));
        assert!(got.chain.is_empty());
        // nginx's older $ssl_client_cert: raw PEM with tab-indented continuation lines.
        let tabbed = pem(&der(1)).replace('\n', "\n\t");
        assert_eq!(
            run(&s, &[("x-ssl-client-cert", &tabbed)], "10.0.0.1")
                .unwrap()
                .leaf,
            der(1)
        );
        assert_eq!(
            code(run(&s, &[("x-ssl-client-cert", "%ZZ")], "10.0.0.1")),
            "cert.bad_encoding"
        );
        assert_eq!(
            code(run(&s, &[("x-ssl-client-cert", "%2")], "10.0.0.1")),
            "cert.bad_encoding"
        );
        let truncated = escape(&pem(&der(1))[..40]);
        assert_eq!(
            code(run(&s, &[("x-ssl-client-cert", &truncated)], "10.0.0.1")),
            "cert.bad_encoding"
        );
        let not_der = escape(&pem(b"\x31\x00"));
        assert_eq!(
            code(run(&s, &[("x-ssl-client-cert", &not_der)], "10.0.0.1")),
            "cert.bad_encoding"
        );
        let not_b64 = escape(&format!("{PEM_BEGIN}\n!!!!\n{PEM_END}"));
        assert_eq!(
            code(run(&s, &[("x-ssl-client-cert", &not_b64)], "10.0.0.1")),
            "cert.bad_encoding"
        );
        let key = escape("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----");
        assert_eq!(
            code(run(&s, &[("x-ssl-client-cert", &key)], "10.0.0.1")),
            "cert.bad_encoding"
        );
        assert_eq!(code(run(&s, &[], "10.0.0.1")), "cert.missing");
        assert_eq!(
            code(run(&s, &[("x-ssl-client-cert", "  ")], "10.0.0.1")),
            "cert.missing"
        );
    }

    #[test]
    fn untrusted_peers_are_refused_not_ignored() {
        let s = source(SourceKind::Nginx);
        let v = escape(&pem(&der(1)));
        for peer in [
            "203.0.113.5",
            "11.0.0.1",
            "::2",
            "10.0.0.1, 1.2.3.4",
            "",
            "garbage",
        ] {
            assert_eq!(
                code(run(&s, &[("x-ssl-client-cert", &v)], peer)),
                "cert.untrusted_proxy",
                "{peer}"
            );
        }
        assert_eq!(
            code(s.extract(|_| Some(v.as_str()), None)),
            "cert.untrusted_proxy"
        );
        // X-Forwarded-For naming a trusted proxy changes nothing: only the socket peer counts.
        let h = [
            ("x-ssl-client-cert", v.as_str()),
            ("x-forwarded-for", "10.0.0.1"),
        ];
        assert_eq!(code(run(&s, &h, "203.0.113.5")), "cert.untrusted_proxy");
        // Trusted peers: IPv4, IPv4-mapped IPv6, bracketed IPv6.
        for peer in ["10.9.8.7", "::ffff:10.9.8.7", "[::1]"] {
            assert!(
                run(&s, &[("x-ssl-client-cert", &v)], peer).is_ok(),
                "{peer}"
            );
        }
        // Without the header an untrusted peer is simply certificate-less.
        assert_eq!(code(run(&s, &[], "203.0.113.5")), "cert.missing");
    }

    #[test]
    fn trusted_proxies_config() {
        assert!(TrustedProxies::new(["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::new(["example.com"]).is_err());
        assert_eq!(
            TrustedProxies::new(["::/0"]).unwrap_err().code(),
            "cert.bad_proxy"
        );
        let host_bits = TrustedProxies::new(["10.1.2.3/8"]).unwrap();
        assert!(host_bits.contains("10.200.0.1".parse().unwrap()));
        assert_eq!(
            CertSource::new(SourceKind::Envoy, TrustedProxies::default())
                .unwrap_err()
                .code(),
            "cert.no_trusted_proxies"
        );
        assert!(CertSource::new(SourceKind::Tls, TrustedProxies::default()).is_ok());
        assert_eq!(
            "bogus".parse::<SourceKind>().unwrap_err().code(),
            "cert.unknown_source"
        );
        assert!(source(SourceKind::Nginx).with_header("x bad").is_err());
        assert!(source(SourceKind::Nginx)
            .with_chain_header("x-chain")
            .is_err());
        assert!(CertSource::new(SourceKind::Tls, TrustedProxies::default())
            .unwrap()
            .with_header("x")
            .is_err());
    }

    #[test]
    fn header_override() {
        let s = source(SourceKind::Nginx)
            .with_header("X-Client-Cert")
            .unwrap();
        let v = escape(&pem(&der(1)));
        assert!(run(&s, &[("x-client-cert", &v)], "10.0.0.1").is_ok());
        assert_eq!(
            code(run(&s, &[("x-ssl-client-cert", &v)], "10.0.0.1")),
            "cert.missing"
        );
    }

    #[test]
    fn limits_out_of_range_are_typed_errors() {
        for kind in [SourceKind::Tls, SourceKind::Envoy] {
            for (certs, cert_bytes, chain_bytes) in [
                (0, 1024, 1024),
                (MAX_CERTS_CAP + 1, 1024, 1024),
                (50_000_000, 1024, 1024),
                (1 << 62, 1024, 1024),
                (usize::MAX, 1024, 1024),
                (2, 0, 1024),
                (2, 1024, 0),
                (2, usize::MAX, 1024),
                (2, 1024, decode::MAX_INPUT_BYTES + 1),
            ] {
                let limits = SourceLimits {
                    max_cert_bytes: cert_bytes,
                    max_chain_bytes: chain_bytes,
                    max_certs: certs,
                };
                let err = source(kind).with_limits(limits).unwrap_err();
                assert_eq!(err.code(), "cert.bad_limit", "{limits:?}");
                assert!(matches!(err, SourceError::BadLimit { .. }));
            }
            let edge = SourceLimits {
                max_cert_bytes: decode::MAX_INPUT_BYTES,
                max_chain_bytes: 1,
                max_certs: MAX_CERTS_CAP,
            };
            assert_eq!(source(kind).with_limits(edge).unwrap().limits(), edge);
        }
        let msg = SourceLimits {
            max_certs: 1 << 62,
            ..SourceLimits::default()
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(msg.contains("max_certs") && msg.contains("64"), "{msg}");
    }

    #[test]
    fn size_caps_apply_before_decoding() {
        let s = source(SourceKind::Nginx);
        let big = "A".repeat(16 * 1024 + 1);
        assert_eq!(
            code(run(&s, &[("x-ssl-client-cert", &big)], "10.0.0.1")),
            "cert.header_too_large"
        );
        let s = source(SourceKind::Envoy);
        let big = format!("Cert=\"{}\"", "A".repeat(64 * 1024));
        assert_eq!(
            code(run(&s, &[("x-forwarded-client-cert", &big)], "10.0.0.1")),
            "cert.header_too_large"
        );
        let tight = source(SourceKind::Alb)
            .with_limits(SourceLimits {
                max_chain_bytes: 10,
                ..SourceLimits::default()
            })
            .unwrap();
        let v = escape(&pem(&der(1)));
        assert_eq!(
            code(run(&tight, &[("x-amzn-mtls-clientcert", &v)], "10.0.0.1")),
            "cert.header_too_large"
        );
        let few = source(SourceKind::Alb)
            .with_limits(SourceLimits {
                max_certs: 2,
                ..SourceLimits::default()
            })
            .unwrap();
        let three = escape(&(pem(&der(1)) + &pem(&der(2)) + &pem(&der(3))));
        assert_eq!(
            code(run(&few, &[("x-amzn-mtls-clientcert", &three)], "10.0.0.1")),
            "cert.chain_too_long"
        );
    }

    fn xfcc_cert(d: &[u8]) -> String {
        format!("Hash={};Cert=\"{}\"", sha256_hex(d), escape(&pem(d)))
    }

    #[test]
    fn envoy_uses_the_nearest_element() {
        let s = source(SourceKind::Envoy);
        // The client forged the first element; the proxy appended the last one.
        let v = format!(
            "{};By=spiffe://evil,{};By=spiffe://example.org/app;URI=spiffe://example.org/client",
            xfcc_cert(&der(9)),
            xfcc_cert(&der(1))
        );
        let got = run(&s, &[("x-forwarded-client-cert", &v)], "10.0.0.1").unwrap();
        assert_eq!(got.leaf, der(1));
        // When the nearest element has no Cert, an earlier element's Cert is NOT used.
        let v = format!(
            "{},By=spiffe://example.org/app;URI=spiffe://example.org/x",
            xfcc_cert(&der(9))
        );
        assert_eq!(
            code(run(&s, &[("x-forwarded-client-cert", &v)], "10.0.0.1")),
            "cert.missing"
        );
    }

    #[test]
    fn envoy_hash_must_match_cert() {
        let s = source(SourceKind::Envoy);
        let v = format!(
            "Hash={};Cert=\"{}\"",
            sha256_hex(&der(2)),
            escape(&pem(&der(1)))
        );
        assert_eq!(
            code(run(&s, &[("x-forwarded-client-cert", &v)], "10.0.0.1")),
            "cert.xfcc_hash_mismatch"
        );
        let v = format!(
            "hash={};cert={}",
            sha256_hex(&der(1)).to_uppercase(),
            escape(&pem(&der(1)))
        );
        assert_eq!(
            run(&s, &[("x-forwarded-client-cert", &v)], "10.0.0.1")
                .unwrap()
                .leaf,
            der(1)
        );
        let v = format!("Hash=zz;Cert={}", escape(&pem(&der(1))));
        assert_eq!(
            code(run(&s, &[("x-forwarded-client-cert", &v)], "10.0.0.1")),
            "cert.xfcc_hash_mismatch"
        );
        let v = format!(
            "Hash={h};Hash={h};Cert={}",
            escape(&pem(&der(1))),
            h = sha256_hex(&der(1))
        );
        assert_eq!(
            code(run(&s, &[("x-forwarded-client-cert", &v)], "10.0.0.1")),
            "cert.bad_encoding"
        );
    }

    #[test]
    fn envoy_chain_and_quoting() {
        let s = source(SourceKind::Envoy);
        let leaf = der(1);
        let chain = escape(&(pem(&leaf) + &pem(&der(2)) + &pem(&der(3))));
        let v = format!(
            "By=spiffe://example.org/app;Hash={};Subject=\"CN=a\\\"b,O=x;y=z\";Cert=\"{}\";Chain=\"{}\";DNS=a.example.com;DNS=b.example.com",
            sha256_hex(&leaf),
            escape(&pem(&leaf)),
            chain
        );
        let got = run(&s, &[("x-forwarded-client-cert", &v)], "10.0.0.1").unwrap();
        assert_eq!(got.leaf, leaf);
        assert_eq!(got.chain, vec![der(2), der(3)]);
        // Chain alone: its first certificate is the leaf.
        let v = format!("Chain={chain}");
        let got = run(&s, &[("x-forwarded-client-cert", &v)], "10.0.0.1").unwrap();
        assert_eq!((got.leaf, got.chain.len()), (leaf.clone(), 2));
        // Chain whose first certificate is not Cert: inconsistent.
        let wrong = escape(&(pem(&der(2)) + &pem(&leaf)));
        let v = format!("Cert={};Chain={wrong}", escape(&pem(&leaf)));
        assert_eq!(
            code(run(&s, &[("x-forwarded-client-cert", &v)], "10.0.0.1")),
            "cert.xfcc_chain_mismatch"
        );
    }

    #[test]
    fn xfcc_grammar() {
        let parsed = parse_xfcc(r#"By=a;SUBJECT="x,y;z=\"q\"\\";URI=u , by=b"#).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            parsed[0][1],
            ("subject".to_owned(), r#"x,y;z="q"\"#.to_owned())
        );
        assert_eq!(parsed[0][2], ("uri".to_owned(), "u".to_owned()));
        assert_eq!(parsed[1][0], ("by".to_owned(), "b".to_owned()));
        for bad in [
            r#"By="unterminated"#,
            r#"By="a"junk"#,
            "By",
            "=x",
            "By=a,,By=b",
            "By=a;",
            "By=a\"b",
            "By=\"a\\",
            "B y=a",
        ] {
            assert!(parse_xfcc(bad).is_err(), "{bad:?}");
        }
        let s = source(SourceKind::Envoy);
        assert_eq!(
            code(run(
                &s,
                &[("x-forwarded-client-cert", "Cert=\"%G0\"")],
                "10.0.0.1"
            )),
            "cert.bad_encoding"
        );
    }

    #[test]
    fn alb_chain_leaf_first() {
        let s = source(SourceKind::Alb);
        let v = escape(&(pem(&der(1)) + &pem(&der(2))));
        let got = run(&s, &[("x-amzn-mtls-clientcert", &v)], "10.0.0.1").unwrap();
        assert_eq!((got.leaf, got.chain), (der(1), vec![der(2)]));
        // ALB leaves '+' unescaped: it must not turn into a space.
        let p = vec![0x30, 0x04, 0x04, 0x02, 0x00, 0x3e]; // base64 "MAQEAgA+"
        let v = escape(&pem(&p));
        assert!(v.contains('+'));
        assert_eq!(
            run(&s, &[("x-amzn-mtls-clientcert", &v)], "10.0.0.1")
                .unwrap()
                .leaf,
            p
        );
    }

    #[test]
    fn traefik_base64_list() {
        let s = source(SourceKind::Traefik);
        let v = format!("{},{}", b64(&der(1)), b64(&der(2)));
        let got = run(&s, &[("x-forwarded-tls-client-cert", &v)], "10.0.0.1").unwrap();
        assert_eq!((got.leaf, got.chain), (der(1), vec![der(2)]));
        // Query-escaped (what Traefik sends).
        let escaped = escape(&v).replace("%2C", ",");
        let got = run(&s, &[("x-forwarded-tls-client-cert", &escaped)], "10.0.0.1").unwrap();
        assert_eq!(got.leaf, der(1));
        for bad in ["!!", "MAB", "AAAA", ",", "%zz"] {
            assert_eq!(
                code(run(&s, &[("x-forwarded-tls-client-cert", bad)], "10.0.0.1")),
                "cert.bad_encoding",
                "{bad}"
            );
        }
    }

    #[test]
    fn rfc9440_byte_sequences() {
        let s = source(SourceKind::Rfc9440);
        let leaf = format!(":{}:", b64(&der(1)));
        let chain = format!(":{}:, :{}:", b64(&der(2)), b64(&der(3)));
        let got = run(
            &s,
            &[("client-cert", &leaf), ("client-cert-chain", &chain)],
            "::1",
        )
        .unwrap();
        assert_eq!((got.leaf, got.chain), (der(1), vec![der(2), der(3)]));
        assert!(run(&s, &[("client-cert", &leaf)], "::1")
            .unwrap()
            .chain
            .is_empty());
        for bad in [
            b64(&der(1)),
            format!(":{}", b64(&der(1))),
            format!(":{}:;a=1", b64(&der(1))),
            ":%41:".to_owned(),
        ] {
            assert_eq!(
                code(run(&s, &[("client-cert", &bad)], "::1")),
                "cert.bad_encoding",
                "{bad}"
            );
        }
        assert_eq!(
            code(run(
                &s,
                &[("client-cert", &leaf), ("client-cert-chain", "nope")],
                "::1"
            )),
            "cert.bad_encoding"
        );
        // A chain header alone from an untrusted peer is still refused.
        assert_eq!(
            code(run(&s, &[("client-cert-chain", &chain)], "192.0.2.1")),
            "cert.untrusted_proxy"
        );
        assert_eq!(
            code(run(&s, &[("client-cert-chain", &chain)], "::1")),
            "cert.missing"
        );
    }

    #[test]
    fn tls_server_variables() {
        let s = CertSource::new(SourceKind::Tls, TrustedProxies::default()).unwrap();
        let leaf = pem(&der(1));
        let c0 = pem(&der(2));
        let c1 = pem(&der(3));
        let vars = [
            ("SSL_CLIENT_CERT", leaf.as_str()),
            ("SSL_CLIENT_CERT_CHAIN_0", c0.as_str()),
            ("SSL_CLIENT_CERT_CHAIN_1", c1.as_str()),
            ("SSL_CLIENT_CERT_CHAIN_3", c0.as_str()), // after a gap: ignored
        ];
        let got = run(&s, &vars, "203.0.113.1").unwrap();
        assert_eq!((got.leaf, got.chain), (der(1), vec![der(2), der(3)]));
        let two = leaf.clone() + &c0;
        assert_eq!(
            code(run(&s, &[("SSL_CLIENT_CERT", &two)], "x")),
            "cert.bad_encoding"
        );
        assert_eq!(
            code(run(&s, &[("x-ssl-client-cert", &leaf)], "x")),
            "cert.missing"
        );
        let few = s
            .clone()
            .with_limits(SourceLimits {
                max_certs: 2,
                ..SourceLimits::default()
            })
            .unwrap();
        assert_eq!(code(run(&few, &vars, "x")), "cert.chain_too_long");
    }

    #[test]
    fn garbage_never_panics() {
        let kinds = [
            SourceKind::Nginx,
            SourceKind::Envoy,
            SourceKind::Alb,
            SourceKind::Traefik,
            SourceKind::Rfc9440,
        ];
        let samples = [
            "%",
            "%%",
            ":",
            "::",
            "\"",
            "a=\"",
            "ä%C3",
            "-----BEGIN CERTIFICATE-----",
            "Cert=\"\\",
            ",,,;;;===",
        ];
        for kind in kinds {
            let s = source(kind);
            for v in samples {
                let r = s.extract(|_| Some(v), Some("10.0.0.1"));
                assert!(r.is_err(), "{kind} {v:?}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_header_values_never_panic(value in ".{0,400}", quoted in "[\\\",;= a-zA-Z%0-9:]{0,200}") {
            for kind in [SourceKind::Nginx, SourceKind::Envoy, SourceKind::Alb, SourceKind::Traefik, SourceKind::Rfc9440] {
                let s = source(kind);
                for v in [value.as_str(), quoted.as_str()] {
                    let _ = s.extract(|_| Some(v), Some("10.0.0.1"));
                }
            }
            let _ = parse_xfcc(&quoted);
            let tls = CertSource::new(SourceKind::Tls, TrustedProxies::default()).unwrap();
            let _ = tls.extract(|_| Some(value.as_str()), None);
        }
    }
}
