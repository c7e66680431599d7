//! mTLS for Rust services: a rustls [`ClientCertVerifier`] backed by a [`TrustStore`], so
//! the handshake itself refuses what [`TrustStore::verify`] refuses (the same path building,
//! profile checks, SPIFFE rules, CRLs and usage), and the application then reads the
//! caller's [`Identity`] from the connection with a cache hit.
//!
//! Enabled by the `rustls` feature (on by default).
//!
//! ```no_run
//! use std::sync::Arc;
//! use portcullis::identity::{tls::ClientVerifier, TrustStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (server_chain, server_key): (Vec<rustls_pki_types::CertificateDer<'static>>, rustls_pki_types::PrivateKeyDer<'static>) = todo!();
//! let store = Arc::new(TrustStore::builder().ca_pem(&std::fs::read("ca.pem")?).build()?);
//! let verifier = Arc::new(ClientVerifier::new(Arc::clone(&store)));
//! let config = rustls::ServerConfig::builder_with_provider(Arc::new(
//!         rustls::crypto::ring::default_provider()))
//!     .with_safe_default_protocol_versions()?
//!     .with_client_cert_verifier(verifier.clone())
//!     .with_single_cert(server_chain, server_key)?;
//! // ... after the handshake on `conn: rustls::ServerConnection`:
//! # let conn: rustls::ServerConnection = todo!();
//! let identity = verifier.identity(conn.peer_certificates().unwrap_or_default())?;
//! println!("caller: {:?}", identity.spiffe_id);
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError as TlsCertError, DigitallySignedStruct, DistinguishedName};
use rustls::{OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::{CertificateError, Identity, TrustStore};
use crate::ErrorCode;

/// A rustls client-certificate verifier that delegates every decision about the chain to
/// a [`TrustStore`] (which should use [`Usage::ClientAuth`](super::Usage), the default).
///
/// Handshake signatures (the client proving it holds the key) are checked by rustls' own
/// ring-backed algorithms. A refused chain ends the handshake with the TLS alert rustls
/// derives from the error: `certificate_expired`, `certificate_revoked`, `unknown_ca`,
/// `bad_certificate`, … The [`CertificateError`] itself, with its stable code, travels
/// inside `rustls::Error::InvalidCertificate(CertificateError::Other(..))` when no rustls
/// variant says the same thing.
#[derive(Debug)]
pub struct ClientVerifier {
    store: Arc<TrustStore>,
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
    mandatory: bool,
}

impl ClientVerifier {
    /// A verifier that requires a client certificate, and advertises the store's trust
    /// anchors as acceptable issuers in the CertificateRequest.
    pub fn new(store: Arc<TrustStore>) -> Self {
        let hints = store
            .anchor_subjects()
            .map(DistinguishedName::in_sequence)
            .collect();
        Self {
            store,
            hints,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
            mandatory: true,
        }
    }

    /// Lets clients without a certificate complete the handshake (the application then
    /// finds no peer certificates and decides itself). A certificate that *is* presented
    /// must still verify.
    #[must_use]
    pub fn allow_anonymous(mut self) -> Self {
        self.mandatory = false;
        self
    }

    /// Uses the signature algorithms of `provider` for the handshake signatures instead of
    /// ring's defaults.
    #[must_use]
    pub fn with_provider(mut self, provider: &CryptoProvider) -> Self {
        self.algorithms = provider.signature_verification_algorithms;
        self
    }

    /// The store the verifier checks chains with.
    pub fn store(&self) -> &Arc<TrustStore> {
        &self.store
    }

    /// The caller's identity from a finished handshake's peer certificates (leaf first, as
    /// `rustls::ServerConnection::peer_certificates` returns them). The handshake verified
    /// the same bytes, so this is a cache hit unless the cache is disabled or full.
    pub fn identity(
        &self,
        peer_certificates: &[CertificateDer<'_>],
    ) -> Result<Arc<Identity>, CertificateError> {
        let (leaf, chain) = peer_certificates.split_first().ok_or_else(|| {
            CertificateError::bad_encoding("peer certificate", "the peer presented none")
        })?;
        let chain: Vec<&[u8]> = chain.iter().map(AsRef::as_ref).collect();
        self.store
            .verify_shared(leaf.as_ref(), &chain, SystemTime::now())
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let chain: Vec<&[u8]> = intermediates.iter().map(AsRef::as_ref).collect();
        let at = UNIX_EPOCH + Duration::from_secs(now.as_secs());
        self.store
            .verify_shared(end_entity.as_ref(), &chain, at)
            .map(|_| ClientCertVerified::assertion())
            .map_err(to_rustls)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
}

/// The rustls error (and so the TLS alert) for a refused chain.
fn to_rustls(err: CertificateError) -> rustls::Error {
    let kind = match err.code() {
        "cert.expired" => TlsCertError::Expired,
        "cert.not_yet_valid" => TlsCertError::NotValidYet,
        "cert.revoked" => TlsCertError::Revoked,
        "cert.revocation_unknown" => TlsCertError::UnknownRevocationStatus,
        "cert.unknown_issuer" => TlsCertError::UnknownIssuer,
        "cert.bad_signature" => TlsCertError::BadSignature,
        "cert.wrong_usage" => TlsCertError::InvalidPurpose,
        _ => TlsCertError::Other(OtherError(Arc::new(err))),
    };
    rustls::Error::InvalidCertificate(kind)
}
