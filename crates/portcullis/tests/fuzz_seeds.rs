//! The fuzz targets' fixed PKI and seed corpora still reach the success paths: if the
//! committed certificates stopped verifying (expiry, a parser change), the `cert_decode`,
//! `xfcc` and `rfc9440` targets would silently fuzz only the error paths.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, UNIX_EPOCH};

use portcullis::identity::decode;
use portcullis::identity::source::{CertSource, SourceKind, TrustedProxies};
use portcullis::identity::TrustStore;

const CA: &[u8] = include_bytes!("../fuzz/data/ca.pem");
const INTERMEDIATE: &[u8] = include_bytes!("../fuzz/data/intermediate.pem");
const LEAF: &[u8] = include_bytes!("../fuzz/data/leaf.pem");
const CRL: &[u8] = include_bytes!("../fuzz/data/intermediate.crl.pem");

fn at() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000) // 2030-01-01, as the targets use
}

fn store() -> TrustStore {
    TrustStore::builder().ca_pem(CA).build().unwrap()
}

#[test]
fn fixed_pki_verifies_and_alone_does_not() {
    let leaf = decode::decode_pem_certificate(LEAF).unwrap();
    let inter = decode::decode_pem_certificate(INTERMEDIATE).unwrap();
    let id = store().verify(&leaf, &[&inter], at()).unwrap();
    assert_eq!(id.spiffe_id.as_deref(), Some("spiffe://fuzz.test/worker"));
    assert_eq!(id.chain_fingerprints.len(), 3);
    assert!(store().verify(&leaf, &[], at()).is_err());
    // The cert_decode target's second store: configured intermediate, its CRL checked.
    let with_crl = |deny_unknown: bool| {
        TrustStore::builder()
            .ca_pem(CA)
            .intermediates(INTERMEDIATE)
            .crls(CRL)
            .deny_unknown_revocation(deny_unknown)
            .build()
            .unwrap()
    };
    assert!(with_crl(false).verify(&leaf, &[], at()).is_ok());
    // The root published no CRL, so the intermediate's status is unknown.
    let err = with_crl(true).verify(&leaf, &[], at()).unwrap_err();
    assert_eq!(portcullis::ErrorCode::code(&err), "cert.revocation_unknown");
}

fn seed(target: &str, name: &str) -> String {
    let path = format!("{}/fuzz/corpus/{target}/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

fn extract_and_verify(kind: SourceKind, cert: &str, chain: &str) -> bool {
    let src = CertSource::new(kind, TrustedProxies::new(["::1"]).unwrap()).unwrap();
    let chain_header = src.chain_header().map(str::to_owned);
    let lookup = |name: &str| {
        if name == src.header() {
            Some(cert)
        } else if Some(name) == chain_header.as_deref() {
            Some(chain)
        } else {
            None
        }
    };
    let p = src.extract(lookup, Some("::1")).unwrap();
    let refs: Vec<&[u8]> = p.chain.iter().map(Vec::as_slice).collect();
    store().verify(&p.leaf, &refs, at()).is_ok()
}

#[test]
fn xfcc_seeds_reach_a_verified_identity() {
    assert!(extract_and_verify(
        SourceKind::Envoy,
        &seed("xfcc", "cert_chain"),
        ""
    ));
    assert!(extract_and_verify(
        SourceKind::Envoy,
        &seed("xfcc", "two_elements"),
        ""
    ));
    // Cert without Chain: extracted, but the intermediate is missing.
    assert!(!extract_and_verify(
        SourceKind::Envoy,
        &seed("xfcc", "cert_hash"),
        ""
    ));
}

#[test]
fn rfc9440_seeds_reach_a_verified_identity() {
    let text = seed("rfc9440", "leaf_chain");
    let (cert, chain) = text.split_once('\n').unwrap();
    assert!(extract_and_verify(SourceKind::Rfc9440, cert, chain));
    let text = seed("rfc9440", "no_padding");
    let (cert, chain) = text.split_once('\n').unwrap();
    assert!(extract_and_verify(SourceKind::Rfc9440, cert, chain));
}

/// The `config` target loads its seeds against a scratch tree with the fixed PKI under
/// `pki/` and an `uploads/` directory; the good seeds must load all the way.
#[test]
fn config_seeds_load_against_the_fixed_pki() {
    use portcullis::config::Config;
    use portcullis::ErrorCode;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pki")).unwrap();
    std::fs::create_dir_all(dir.path().join("uploads")).unwrap();
    std::fs::write(dir.path().join("pki/ca.pem"), CA).unwrap();
    std::fs::write(dir.path().join("pki/intermediate.pem"), INTERMEDIATE).unwrap();
    std::fs::write(dir.path().join("pki/crl.pem"), CRL).unwrap();
    for good in [
        "full.toml",
        "trust_store.toml",
        "egress.toml",
        "command.toml",
        "access_rack.toml",
    ] {
        let text = seed("config", good);
        if let Err(e) = Config::from_str_named(&text, dir.path(), good) {
            panic!("{good}: {e}");
        }
    }
    for (bad, code) in [
        ("bad_cidr.toml", "config.invalid_value"),
        ("bad_syntax.toml", "config.syntax"),
        ("bad_command.toml", "config.invalid_value"),
    ] {
        let err = Config::from_str_named(&seed("config", bad), dir.path(), bad).unwrap_err();
        assert_eq!(err.code(), code, "{bad}: {err}");
        assert!(err.location().is_some(), "{bad}: {err}");
    }
}

#[test]
fn cert_paths_fixture_verifies_only_through_the_rfc5280_builder() {
    let pem = |b: &[u8]| decode::decode_pem_certificate(b).unwrap();
    let root: &[u8] = include_bytes!("../fuzz/data/nc-root.pem");
    let leaf = pem(include_bytes!("../fuzz/data/nc-leaf.pem"));
    let rollover = pem(include_bytes!("../fuzz/data/nc-ca-rollover.pem"));
    let old = pem(include_bytes!("../fuzz/data/nc-ca-old.pem"));
    let store = TrustStore::builder().ca_pem(root).build().unwrap();
    let id = store.verify(&leaf, &[&rollover, &old], at()).unwrap();
    assert_eq!(id.chain_fingerprints.len(), 4);
    assert_eq!(id.emails, ["worker@fuzz.test"]);
    assert!(store
        .verify_server(&leaf, &[&old, &rollover], "worker.fuzz.test", at())
        .is_ok());
    assert!(store.verify(&leaf, &[&old], at()).is_err());
    // The seeds decode to the same leaf first.
    for name in ["rollover_path", "reversed_pool", "duplicates", "leaf_only"] {
        let path = format!(
            "{}/fuzz/corpus/cert_paths/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(path).unwrap();
        let len = usize::from(u16::from_be_bytes([bytes[1], bytes[2]]));
        assert_eq!(&bytes[3..3 + len], leaf.as_slice(), "{name}");
    }
}
