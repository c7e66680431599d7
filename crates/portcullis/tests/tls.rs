//! `identity::tls::ClientVerifier` in real rustls handshakes over loopback TCP: the server
//! verifies client chains with a `TrustStore`, then reads the caller's `Identity`.
#![cfg(feature = "rustls")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use common::{intermediate, leaf, root, root_named, Alg, LeafSpec};
use portcullis::identity::tls::ClientVerifier;
use portcullis::identity::{Identity, TrustStore};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// No test waits longer than this for the other side.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

struct Server {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    ca: CertificateDer<'static>,
}

fn server_identity() -> Server {
    let ca = root_named(Alg::P256, "Server Root");
    let cert = leaf(Alg::P256, &ca, &LeafSpec::server("localhost"));
    Server {
        chain: vec![CertificateDer::from(cert.der())],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key.serialize_der())),
        ca: CertificateDer::from(ca.der()),
    }
}

/// A store trusting `ca` alone.
fn store_for(ca: &common::Ca) -> Arc<TrustStore> {
    Arc::new(
        TrustStore::builder()
            .ca_pem(ca.pem().as_bytes())
            .build()
            .unwrap(),
    )
}

/// What the server saw: the identity it read after the handshake, or the handshake error.
type Outcome = Result<Option<Arc<Identity>>, String>;

/// One handshake: a server thread with `verifier`, a client presenting `client_auth`
/// (chain, key) or nothing. Returns (server outcome, client saw an error).
fn handshake(
    verifier: Arc<ClientVerifier>,
    client_auth: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> (Outcome, bool) {
    let server = server_identity();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(server.chain, server.key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server_thread = std::thread::spawn(move || -> Outcome {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        while conn.is_handshaking() {
            // On a refusal, complete_io has already sent the alert.
            conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
        }
        let identity = match conn.peer_certificates() {
            Some(peer) => Some(verifier.identity(peer).map_err(|e| e.to_string())?),
            None => None,
        };
        let mut stream = rustls::Stream::new(&mut conn, &mut tcp);
        stream.write_all(b"hello").unwrap();
        stream.flush().unwrap();
        Ok(identity)
    });

    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.ca).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client_auth {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let mut client =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut stream = rustls::Stream::new(&mut client, &mut tcp);
    let mut buf = [0u8; 5];
    let client_failed = stream.read_exact(&mut buf).is_err();
    if !client_failed {
        assert_eq!(&buf, b"hello");
    }
    (server_thread.join().unwrap(), client_failed)
}

fn client_auth(
    cert: &common::Leaf,
    chain: &[&common::Ca],
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let mut certs = vec![CertificateDer::from(cert.der())];
    certs.extend(chain.iter().map(|c| CertificateDer::from(c.der())));
    (
        certs,
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key.serialize_der())),
    )
}

#[test]
fn a_verified_client_gets_through_and_its_identity_is_read_back() {
    let ca = root(Alg::P256);
    let inter = intermediate(Alg::P256, &ca, "Clients CA");
    let id = "spiffe://example.org/ns/prod/sa/api";
    let client = leaf(Alg::P256, &inter, &LeafSpec::spiffe(id));
    let store = store_for(&ca);
    let verifier = Arc::new(ClientVerifier::new(store));

    let (outcome, client_failed) = handshake(verifier, Some(client_auth(&client, &[&inter])));
    let identity = outcome
        .unwrap()
        .expect("the client presented a certificate");
    assert!(!client_failed);
    assert_eq!(identity.spiffe_id.as_deref(), Some(id));
    assert_eq!(identity.chain_fingerprints.len(), 3);
}

#[test]
fn hostile_and_broken_clients_are_refused_in_the_handshake() {
    let ca = root(Alg::P256);
    let inter = intermediate(Alg::P256, &ca, "Clients CA");
    let store = store_for(&ca);
    let verifier = Arc::new(ClientVerifier::new(store));

    // A forged chain: a rogue root with the trusted root's name signs an intermediate
    // with the real intermediate's name.
    let rogue_ca = root(Alg::P256);
    let rogue_inter = intermediate(Alg::P256, &rogue_ca, "Clients CA");
    let rogue = leaf(Alg::P256, &rogue_inter, &LeafSpec::client("api"));
    // A chain from an unrelated CA.
    let other_ca = root_named(Alg::P256, "Other Root");
    let other_inter = intermediate(Alg::P256, &other_ca, "Other CA");
    let other = leaf(Alg::P256, &other_inter, &LeafSpec::client("api"));
    // Expired.
    let mut spec = LeafSpec::client("old");
    spec.not_before = common::ymd(2020, 1, 1);
    spec.not_after = common::ymd(2021, 1, 1);
    let expired = leaf(Alg::P256, &inter, &spec);
    // A server certificate used as a client certificate (wrong EKU).
    let server_cert = leaf(Alg::P256, &inter, &LeafSpec::server("api.example.org"));
    // The intermediate missing from the chain.
    let good = leaf(Alg::P256, &inter, &LeafSpec::client("api"));

    let cases = [
        (
            "forged chain",
            client_auth(&rogue, &[&rogue_inter]),
            "BadSignature",
        ),
        (
            "unrelated CA",
            client_auth(&other, &[&other_inter]),
            "UnknownIssuer",
        ),
        ("expired", client_auth(&expired, &[&inter]), "Expired"),
        (
            "server EKU",
            client_auth(&server_cert, &[&inter]),
            "InvalidPurpose",
        ),
        (
            "missing intermediate",
            client_auth(&good, &[]),
            "UnknownIssuer",
        ),
    ];
    for (label, auth, expected) in cases {
        let (outcome, client_failed) = handshake(Arc::clone(&verifier), Some(auth));
        let err = outcome.expect_err(label);
        assert!(err.contains(expected), "{label}: {err}");
        assert!(
            client_failed,
            "{label}: the client must see the handshake fail"
        );
    }
}

#[test]
fn portcullis_profile_refusals_travel_with_their_code() {
    let ca = root(Alg::P256);
    let inter = intermediate(Alg::P256, &ca, "Clients CA");
    // Two SPIFFE IDs in one leaf: a Portcullis profile rule, no rustls variant for it.
    let store = store_for(&ca);
    let verifier = Arc::new(ClientVerifier::new(store));
    let mut spec = LeafSpec::spiffe("spiffe://example.org/a");
    spec.uris.push("spiffe://example.org/b".into());
    let two_ids = leaf(Alg::P256, &inter, &spec);
    let (outcome, client_failed) = handshake(
        Arc::clone(&verifier),
        Some(client_auth(&two_ids, &[&inter])),
    );
    let err = outcome.unwrap_err();
    assert!(err.contains("URI SAN"), "{err}");
    assert!(client_failed);

    // The same refusal, asked directly: the Portcullis error and its code are inside.
    use rustls::server::danger::ClientCertVerifier as _;
    let refused = verifier
        .verify_client_cert(
            &CertificateDer::from(two_ids.der()),
            &[CertificateDer::from(inter.der())],
            rustls::pki_types::UnixTime::now(),
        )
        .unwrap_err();
    let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) = refused else {
        panic!("expected an Other certificate error, got {refused:?}");
    };
    let inner = other
        .0
        .downcast_ref::<portcullis::identity::CertificateError>()
        .expect("a portcullis CertificateError");
    assert_eq!(portcullis::ErrorCode::code(inner), "cert.not_spiffe");
}

#[test]
fn anonymous_clients_only_when_allowed() {
    let ca = root(Alg::P256);
    let store = store_for(&ca);

    let strict = Arc::new(ClientVerifier::new(Arc::clone(&store)));
    let (outcome, client_failed) = handshake(strict, None);
    assert!(outcome.is_err());
    assert!(client_failed);

    let lenient = Arc::new(ClientVerifier::new(store).allow_anonymous());
    let (outcome, client_failed) = handshake(lenient, None);
    assert!(outcome.unwrap().is_none());
    assert!(!client_failed);
}

#[test]
fn the_certificate_request_names_the_trust_anchors() {
    let a = root_named(Alg::P256, "Root A");
    let b = root_named(Alg::Ed25519, "Root B");
    let store = TrustStore::builder()
        .ca_pem(format!("{}{}", a.pem(), b.pem()).as_bytes())
        .build()
        .unwrap();
    let verifier = ClientVerifier::new(Arc::new(store));
    use rustls::server::danger::ClientCertVerifier as _;
    let hints = verifier.root_hint_subjects();
    assert_eq!(hints.len(), 2);
    let names: Vec<String> = hints
        .iter()
        .map(|h| {
            portcullis::identity::DistinguishedName::from_der(h.as_ref())
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(names[0].contains("CN=Root A"), "{names:?}");
    assert!(names[1].contains("CN=Root B"), "{names:?}");
    assert!(!verifier.supported_verify_schemes().is_empty());
    assert!(verifier.identity(&[]).is_err());
}
