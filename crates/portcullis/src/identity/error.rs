//! Why a certificate, a chain or a trust store was refused.

use crate::ErrorCode;

/// Why a certificate (or chain, or trust store configuration) was refused.
///
/// Every variant names the offending certificate: its subject DN when it has one, plus the
/// start of its SHA-256 fingerprint (`subject "CN=api" (sha256 3f2a…)`), and says what to
/// do. [`ErrorCode::code`] gives the stable machine code.
///
/// ```
/// use portcullis::identity::CertificateError;
/// use portcullis::ErrorCode;
/// let err = portcullis::identity::decode::decode_certificate(b"not a certificate").unwrap_err();
/// assert_eq!(err.code(), "cert.bad_encoding");
/// assert!(matches!(err, CertificateError::BadEncoding { .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The input is not a certificate (or CRL) in any supported encoding: not PEM, not DER,
    /// not URL-escaped PEM, not base64 DER; or it is larger than the size caps allow.
    #[error("{what} could not be decoded: {reason}; send a PEM or DER X.509 certificate")]
    BadEncoding {
        /// What was being decoded (`"certificate"`, `"CRL"`, `"trust anchor bundle"`, …).
        what: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The trust store configuration is unusable: an empty or unparsable CA bundle, a CA
    /// that is not a valid trust anchor, an unparsable CRL, an ambiguous CRL set (two
    /// different CRLs of one issuer with the same cRLNumber), or a CRL whose signature does
    /// not verify with its issuer's key (found at load time when the issuer is a configured
    /// CA, otherwise when a chain through that issuer is verified).
    #[error("trust store is unusable: {reason}")]
    BadTrustStore {
        /// What is wrong, naming the offending input.
        reason: String,
    },

    /// No path from the certificate to a configured trust anchor could be built: the issuer
    /// is not trusted, or an intermediate is missing from the presented chain.
    #[error("{cert} does not chain to a trusted CA; present the intermediate certificates or add its issuer ({issuer}) to the trust store")]
    UnknownIssuer {
        /// The certificate that could not be chained.
        cert: String,
        /// Its issuer DN.
        issuer: String,
    },

    /// The certificate (or one in its chain) expired before the verification time.
    #[error(
        "{cert} expired at {not_after} (unix time), verification time {at}; renew the certificate"
    )]
    Expired {
        /// The expired certificate.
        cert: String,
        /// Its notAfter, seconds since the Unix epoch.
        not_after: i64,
        /// The verification time, seconds since the Unix epoch.
        at: i64,
    },

    /// The certificate (or one in its chain) is not valid yet at the verification time.
    #[error("{cert} is not valid until {not_before} (unix time), verification time {at}; check the clocks or wait")]
    NotYetValid {
        /// The certificate.
        cert: String,
        /// Its notBefore, seconds since the Unix epoch.
        not_before: i64,
        /// The verification time, seconds since the Unix epoch.
        at: i64,
    },

    /// A configured CRL lists the certificate (or one in its chain) as revoked.
    #[error("{cert} is revoked by its issuer's CRL; issue a new certificate")]
    Revoked {
        /// The revoked certificate.
        cert: String,
    },

    /// Revocation status could not be determined and the store is configured to deny on
    /// unknown status: no CRL from the issuer is loaded, or the issuer's CRL has lapsed
    /// (the verification time is at or past its nextUpdate).
    #[error("revocation status of {cert} is unknown: {reason}")]
    RevocationUnknown {
        /// The certificate whose status is unknown.
        cert: String,
        /// Why, and what to do (load the issuer's CRL, fetch a fresh one).
        reason: String,
    },

    /// The certificate's extended key usage does not allow the purpose the store verifies
    /// for (client authentication by default, server authentication for outbound peers).
    #[error("{cert} is not valid for {usage}; issue it with the {usage} extended key usage")]
    WrongUsage {
        /// The certificate.
        cert: String,
        /// The purpose that was required (`"client authentication"`, …).
        usage: String,
    },

    /// A signature in the chain does not verify, or uses an algorithm or key this store
    /// does not accept.
    #[error("signature on {cert} does not verify ({reason}); the certificate was altered or signed by another key")]
    BadSignature {
        /// The certificate.
        cert: String,
        /// The detail (bad signature, unsupported algorithm, …).
        reason: String,
    },

    /// The leaf breaks the SPIFFE X509-SVID profile: not exactly one `spiffe://` URI SAN,
    /// a malformed SPIFFE ID, a CA flag, or keyCertSign/cRLSign key usage.
    #[error("{cert} is not a valid SPIFFE X509-SVID: {reason}")]
    NotSpiffe {
        /// The certificate.
        cert: String,
        /// Which rule it breaks.
        reason: String,
    },

    /// A CA certificate (basicConstraints CA=true, or allowed to sign certificates) was
    /// presented as the end-entity certificate.
    #[error("{cert} is a CA certificate and cannot identify a client or server; present the end-entity certificate")]
    CaAsLeaf {
        /// The certificate.
        cert: String,
    },

    /// The presented chain, or the path built from it, is longer than allowed (or path
    /// building needed too much work: a hostile chain).
    #[error("chain for {cert} is too long: {reason}; present only the certificates from leaf to the trust anchor")]
    ChainTooLong {
        /// The leaf certificate.
        cert: String,
        /// The limit that was hit.
        reason: String,
    },

    /// The certificate is not valid for the expected server name (DNS name or IP address).
    #[error("{cert} is not valid for {name:?}; the peer presented a certificate for another name")]
    NameMismatch {
        /// The certificate.
        cert: String,
        /// The expected name.
        name: String,
    },

    /// A CA's name constraints forbid a name in the certificate.
    #[error("{cert} violates the name constraints of a CA in its chain")]
    NameConstraint {
        /// The certificate.
        cert: String,
    },

    /// The certificate decodes but breaks the X.509 profile (RFC 5280 / CA/B rules
    /// Portcullis enforces): a duplicate or unknown critical extension, a bad validity
    /// period, a path length violation, a malformed name, …
    #[error("{cert} is malformed: {reason}; reissue it with a conforming profile")]
    Invalid {
        /// The certificate.
        cert: String,
        /// The rule it breaks.
        reason: String,
    },
}

impl CertificateError {
    pub(crate) fn bad_encoding(what: &str, reason: impl Into<String>) -> Self {
        Self::BadEncoding {
            what: what.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn bad_trust_store(reason: impl Into<String>) -> Self {
        Self::BadTrustStore {
            reason: reason.into(),
        }
    }
}

impl ErrorCode for CertificateError {
    fn code(&self) -> &'static str {
        match self {
            Self::BadEncoding { .. } => "cert.bad_encoding",
            Self::BadTrustStore { .. } => "cert.bad_trust_store",
            Self::UnknownIssuer { .. } => "cert.unknown_issuer",
            Self::Expired { .. } => "cert.expired",
            Self::NotYetValid { .. } => "cert.not_yet_valid",
            Self::Revoked { .. } => "cert.revoked",
            Self::RevocationUnknown { .. } => "cert.revocation_unknown",
            Self::WrongUsage { .. } => "cert.wrong_usage",
            Self::BadSignature { .. } => "cert.bad_signature",
            Self::NotSpiffe { .. } => "cert.not_spiffe",
            Self::CaAsLeaf { .. } => "cert.ca_as_leaf",
            Self::ChainTooLong { .. } => "cert.chain_too_long",
            Self::NameMismatch { .. } => "cert.name_mismatch",
            Self::NameConstraint { .. } => "cert.name_constraint",
            Self::Invalid { .. } => "cert.invalid",
        }
    }
}
