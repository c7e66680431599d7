//! At the door, in Rust: certificate sources -> TrustStore -> AccessPolicy, with real chains.
#![allow(clippy::unwrap_used, clippy::panic)] // helpers outside #[test] fns; a failure is a failed test

mod common;

use base64::Engine as _;
use common::*;
use portcullis::authz::{AccessPolicy, Match, Rule};
use portcullis::identity::source::{CertSource, PresentedCertificate, SourceKind, TrustedProxies};
use portcullis::identity::{Identity, TrustStore};
use portcullis::ErrorCode;

const PROXY: &str = "10.0.0.7";
const STRANGER: &str = "203.0.113.9";

fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn b64(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(der)
}

fn sha256_hex(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn source(kind: SourceKind) -> CertSource {
    CertSource::new(kind, TrustedProxies::new(["10.0.0.0/8"]).unwrap()).unwrap()
}

fn extract(kind: SourceKind, headers: &[(&str, String)], peer: &str) -> PresentedCertificate {
    try_extract(kind, headers, peer).unwrap()
}

fn try_extract(
    kind: SourceKind,
    headers: &[(&str, String)],
    peer: &str,
) -> Result<PresentedCertificate, portcullis::identity::source::SourceError> {
    source(kind).extract(
        |name| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        },
        Some(peer),
    )
}

/// A store that trusts the root only: intermediates must come from the presented chain.
fn store(pki: &Pki) -> TrustStore {
    TrustStore::builder()
        .ca_pem(pki.root.pem().as_bytes())
        .build()
        .unwrap()
}

fn verify(store: &TrustStore, presented: &PresentedCertificate) -> Result<Identity, String> {
    let chain: Vec<&[u8]> = presented.chain.iter().map(Vec::as_slice).collect();
    store
        .verify(&presented.leaf, &chain, now())
        .map_err(|e| e.code().to_owned())
}

fn policy() -> AccessPolicy {
    AccessPolicy::new(vec![Rule {
        matcher: Match {
            issuer: Some("cn=test intermediate, o=portcullis test".into()),
            spiffe_prefix: Some("spiffe://example.org/ops/".into()),
            ..Match::default()
        },
        grants: vec!["containers:deploy".into()],
    }])
    .unwrap()
}

fn workload() -> Pki {
    pki(
        Alg::P256,
        &LeafSpec::spiffe("spiffe://example.org/ops/deployer"),
    )
}

#[test]
fn envoy_element_from_the_nearest_proxy_verifies_and_authorizes() {
    let pki = workload();
    let chain_pem = pki.leaf.pem() + &pki.inter.pem();
    let element = format!(
        "By=spiffe://example.org/app;Hash={};Cert=\"{}\";Chain=\"{}\";URI=spiffe://example.org/ops/deployer",
        sha256_hex(&pki.leaf.der()),
        escape(&pki.leaf.pem()),
        escape(&chain_pem)
    );
    // A client-forged element first; the proxy appended the real one.
    let attacker = common::pki(
        Alg::P256,
        &LeafSpec::spiffe("spiffe://example.org/ops/admin"),
    );
    let forged = format!(
        "Hash={};Cert=\"{}\"",
        sha256_hex(&attacker.leaf.der()),
        escape(&attacker.leaf.pem())
    );
    let header = format!("{forged},{element}");
    let presented = extract(
        SourceKind::Envoy,
        &[("x-forwarded-client-cert", header.clone())],
        PROXY,
    );
    let identity = verify(&store(&pki), &presented).unwrap();
    assert_eq!(
        identity.spiffe_id.as_deref(),
        Some("spiffe://example.org/ops/deployer")
    );
    assert!(policy().authorize(&identity, "containers:deploy").is_ok());
    assert_eq!(
        policy().authorize(&identity, "admin").unwrap_err().code(),
        "authz.forbidden"
    );

    let refused = try_extract(
        SourceKind::Envoy,
        &[("x-forwarded-client-cert", header)],
        STRANGER,
    );
    assert_eq!(refused.unwrap_err().code(), "cert.untrusted_proxy");
}

#[test]
fn a_forwarded_certificate_proves_nothing_until_verified() {
    let pki = workload();
    // Same SPIFFE ID, same names, minted by the attacker's own CA, forwarded by the proxy.
    let attacker = common::pki(
        Alg::P256,
        &LeafSpec::spiffe("spiffe://example.org/ops/deployer"),
    );
    let presented = extract(
        SourceKind::Nginx,
        &[("x-ssl-client-cert", escape(&attacker.leaf.pem()))],
        PROXY,
    );
    assert_eq!(
        verify(&store(&pki), &presented).unwrap_err(),
        "cert.unknown_issuer"
    );
}

#[test]
fn every_forwarded_carrier_brings_the_chain() {
    let pki = workload();
    let store = store(&pki);
    let (leaf, inter) = (pki.leaf.der(), pki.inter.der());
    let cases = [
        (
            SourceKind::Alb,
            vec![(
                "x-amzn-mtls-clientcert",
                escape(&(pki.leaf.pem() + &pki.inter.pem())),
            )],
        ),
        (
            SourceKind::Traefik,
            vec![(
                "x-forwarded-tls-client-cert",
                format!("{},{}", b64(&leaf), b64(&inter)),
            )],
        ),
        (
            SourceKind::Rfc9440,
            vec![
                ("client-cert", format!(":{}:", b64(&leaf))),
                ("client-cert-chain", format!(":{}:", b64(&inter))),
            ],
        ),
    ];
    for (kind, headers) in cases {
        let presented = extract(kind, &headers, PROXY);
        let identity = verify(&store, &presented).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(policy().allowed(&identity, "containers:deploy"), "{kind}");
    }
}

#[test]
fn a_chain_in_the_wrong_order_does_not_verify() {
    let pki = workload();
    // Intermediate first: the "leaf" is now a CA certificate.
    let header = escape(&(pki.inter.pem() + &pki.leaf.pem()));
    let presented = extract(
        SourceKind::Alb,
        &[("x-amzn-mtls-clientcert", header)],
        PROXY,
    );
    assert_eq!(presented.leaf, pki.inter.der());
    assert!(verify(&store(&pki), &presented).is_err());
}

#[test]
fn issuer_rules_are_not_fooled_by_a_cn_holding_the_organisation() {
    // A root whose CN is "Test Intermediate,O=Portcullis Test" and nothing else.
    let root = root_named(Alg::P256, "Test Intermediate,O=Portcullis Test");
    let leaf = leaf(
        Alg::P256,
        &root,
        &LeafSpec::spiffe("spiffe://example.org/ops/deployer"),
    );
    let store = TrustStore::builder()
        .ca_pem(root.pem().as_bytes())
        .build()
        .unwrap();
    let identity = store.verify(&leaf.der(), &[], now()).unwrap();
    // Still "O=Portcullis Test" as its own RDN, plus the CN with the embedded separator.
    assert_eq!(identity.issuer.rdns().len(), 2);
    assert!(!policy().allowed(&identity, "containers:deploy"));
}
