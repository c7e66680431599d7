//! Chain verification against rcgen-minted PKIs: one test per error code, the valid
//! algorithms, hostile bytes, and the verification cache.

#![allow(clippy::unwrap_used, clippy::panic)] // helpers outside #[test] fns; a failure is a failed test

mod common;

use std::sync::Arc;

use common::*;
use portcullis::identity::{decode, CertificateError, TrustStore, Usage};
use portcullis::ErrorCode;
use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};

fn store_for(root: &Ca) -> TrustStore {
    TrustStore::builder()
        .ca_pem(root.pem().as_bytes())
        .build()
        .unwrap()
}

fn code(r: Result<portcullis::identity::Identity, CertificateError>) -> &'static str {
    match r {
        Ok(id) => panic!("expected an error, verified {id:?}"),
        Err(e) => {
            // Every message names a certificate or the input and is not empty.
            assert!(!e.to_string().is_empty());
            e.code()
        }
    }
}

#[test]
fn valid_chains_for_every_algorithm() {
    for alg in [Alg::Rsa2048, Alg::P256, Alg::P384, Alg::Ed25519] {
        let mut spec = LeafSpec::client("api-client");
        spec.dns = vec!["api.example.com".into()];
        spec.emails = vec!["ops@example.com".into()];
        spec.ips = vec!["10.0.0.7".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        spec.uris = vec!["https://example.com/client".into()];
        spec.serial = 0x00ab_cdef;
        let pki = pki(alg, &spec);
        let store = store_for(&pki.root);
        let id = store
            .verify(&pki.leaf.der(), &[&pki.inter.der()], now())
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(id.subject.to_string(), "CN=api-client,O=Portcullis Test");
        assert_eq!(
            id.issuer.to_string(),
            "CN=Test Intermediate,O=Portcullis Test"
        );
        assert_eq!(id.common_name.as_deref(), Some("api-client"));
        assert_eq!(id.dns_names, vec!["api.example.com"]);
        assert_eq!(id.emails, vec!["ops@example.com"]);
        assert_eq!(id.uris, vec!["https://example.com/client"]);
        assert_eq!(id.ips.len(), 2);
        assert_eq!(id.spiffe_id, None);
        assert_eq!(id.serial, "abcdef");
        assert_eq!(id.fingerprint.len(), 64);
        assert_eq!(
            id.chain_fingerprints.len(),
            3,
            "{alg:?}: leaf, intermediate, anchor"
        );
        assert_eq!(id.chain_fingerprints[0], id.fingerprint);
        assert_ne!(id.chain_fingerprints[1], id.chain_fingerprints[2]);
        assert_eq!(id.not_before, ymd(2021, 1, 1).unix_timestamp());
        assert_eq!(id.not_after, ymd(2035, 1, 1).unix_timestamp());
    }
}

#[test]
fn intermediates_in_any_order_and_from_the_store() {
    let root = root(Alg::P256);
    let i1 = intermediate(Alg::P256, &root, "I1");
    let i2 = intermediate(Alg::P256, &i1, "I2");
    let leaf = leaf(Alg::P256, &i2, &LeafSpec::client("deep"));
    let store = store_for(&root);
    let id = store
        .verify(&leaf.der(), &[&i1.der(), &i2.der()], now())
        .unwrap();
    assert_eq!(id.chain_fingerprints.len(), 4);
    // Missing intermediate: no path.
    assert_eq!(
        code(store.verify(&leaf.der(), &[&i1.der()], now())),
        "cert.unknown_issuer"
    );
    // Configured intermediates fill the gap.
    let with_inters = TrustStore::builder()
        .ca_pem(root.pem().as_bytes())
        .intermediates(format!("{}{}", i1.pem(), i2.pem()).as_bytes())
        .build()
        .unwrap();
    assert!(with_inters.verify(&leaf.der(), &[], now()).is_ok());
    // Unrelated junk certificates in the chain do not hurt.
    let other = root_named(Alg::P256, "Other Root");
    assert!(store
        .verify(&leaf.der(), &[&other.der(), &i2.der(), &i1.der()], now())
        .is_ok());
}

#[test]
fn unknown_issuer_and_self_signed_leaf() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let stranger = root_named(Alg::P256, "Stranger");
    let store = store_for(&stranger);
    assert_eq!(
        code(store.verify(&pki.leaf.der(), &[&pki.inter.der()], now())),
        "cert.unknown_issuer"
    );
    // A self-signed end-entity certificate is not an anchor.
    let key = key(Alg::P256, 0);
    let mut p = rcgen::CertificateParams::new(vec!["self.example".into()]).unwrap();
    p.is_ca = rcgen::IsCa::ExplicitNoCa;
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let selfsigned = p.self_signed(&key).unwrap();
    let err = store_for(&pki.root)
        .verify(selfsigned.der(), &[], now())
        .unwrap_err();
    assert_eq!(err.code(), "cert.unknown_issuer");
    assert!(err.to_string().contains("does not chain to a trusted CA"));
}

#[test]
fn ca_certificate_as_leaf() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let store = store_for(&pki.root);
    // The intermediate itself presented as the client certificate.
    assert_eq!(
        code(store.verify(&pki.inter.der(), &[], now())),
        "cert.ca_as_leaf"
    );
    // A "leaf" with keyCertSign but no CA flag is a CA in disguise.
    let mut spec = LeafSpec::client("signer");
    spec.ku = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    let sneaky = leaf(Alg::P256, &pki.inter, &spec);
    assert_eq!(
        code(store.verify(&sneaky.der(), &[&pki.inter.der()], now())),
        "cert.ca_as_leaf"
    );
}

#[test]
fn expired_and_not_yet_valid() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let store = TrustStore::builder()
        .ca_pem(pki.root.pem().as_bytes())
        .cache_capacity(0)
        .build()
        .unwrap();
    let chain: &[&[u8]] = &[&pki.inter.der()];
    let err = store
        .verify(&pki.leaf.der(), chain, at(2036, 1, 1))
        .unwrap_err();
    assert_eq!(err.code(), "cert.expired");
    assert!(err.to_string().contains("CN=c"), "{err}");
    assert_eq!(
        code(store.verify(&pki.leaf.der(), chain, at(2020, 6, 1))),
        "cert.not_yet_valid"
    );
    // An expired intermediate expires the whole chain.
    let short = intermediate_with(Alg::P256, &pki.root, "Short", |p| {
        p.not_after = ymd(2024, 1, 1)
    });
    let l = leaf(Alg::P256, &short, &LeafSpec::client("c2"));
    assert_eq!(
        code(store.verify(&l.der(), &[&short.der()], now())),
        "cert.expired"
    );
}

#[test]
fn revoked_and_unknown_revocation() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let chain: &[&[u8]] = &[&pki.inter.der()];
    let revoking = crl(&pki.inter, &[0x1001]);
    let not_revoking = crl(&pki.inter, &[0x9999]);
    let root_crl = crl(&pki.root, &[]);
    let store = TrustStore::builder()
        .ca_pem(pki.root.pem().as_bytes())
        .crls(&revoking)
        .crls(&root_crl)
        .build()
        .unwrap();
    let err = store.verify(&pki.leaf.der(), chain, now()).unwrap_err();
    assert_eq!(err.code(), "cert.revoked");
    // PEM CRLs work too, and a CRL that lists another serial lets the leaf through.
    let pem = format!(
        "-----BEGIN X509 CRL-----\n{}\n-----END X509 CRL-----\n",
        base64_lines(&not_revoking)
    );
    let ok = TrustStore::builder()
        .ca_pem(pki.root.pem().as_bytes())
        .crls(pem.as_bytes())
        .crls(&root_crl)
        .deny_unknown_revocation(true)
        .build()
        .unwrap();
    assert!(ok.verify(&pki.leaf.der(), chain, now()).is_ok());
    // Only the root's CRL: the intermediate's status is known, the leaf's is not.
    let strict = TrustStore::builder()
        .ca_pem(pki.root.pem().as_bytes())
        .crls(&root_crl)
        .deny_unknown_revocation(true)
        .build()
        .unwrap();
    assert_eq!(
        code(strict.verify(&pki.leaf.der(), chain, now())),
        "cert.revocation_unknown"
    );
    let lenient = TrustStore::builder()
        .ca_pem(pki.root.pem().as_bytes())
        .crls(&root_crl)
        .build()
        .unwrap();
    assert!(lenient.verify(&pki.leaf.der(), chain, now()).is_ok());
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    b64.as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn wrong_usage() {
    let pki = pki(Alg::P256, &LeafSpec::server("srv.example.com"));
    let client_store = store_for(&pki.root);
    let err = client_store
        .verify(&pki.leaf.der(), &[&pki.inter.der()], now())
        .unwrap_err();
    assert_eq!(err.code(), "cert.wrong_usage");
    assert!(err.to_string().contains("client authentication"));
    let server_store = TrustStore::builder()
        .ca_pem(pki.root.pem().as_bytes())
        .usage(Usage::ServerAuth)
        .build()
        .unwrap();
    assert!(server_store
        .verify(&pki.leaf.der(), &[&pki.inter.der()], now())
        .is_ok());
}

#[test]
fn bad_signature() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let store = store_for(&pki.root);
    let mut tampered = pki.leaf.der();
    let n = tampered.len();
    tampered[n - 3] ^= 0x01; // inside the ECDSA signature's s value
    assert_eq!(
        code(store.verify(&tampered, &[&pki.inter.der()], now())),
        "cert.bad_signature"
    );
    // Altering a signed field (the serial) breaks the signature too.
    let mut altered = pki.leaf.der();
    let serial_at = altered
        .windows(3)
        .position(|w| w == [0x02, 0x02, 0x10])
        .unwrap();
    altered[serial_at + 3] ^= 0x02;
    assert_eq!(
        code(store.verify(&altered, &[&pki.inter.der()], now())),
        "cert.bad_signature"
    );
}

#[test]
fn spiffe_profile() {
    let good = pki(
        Alg::P256,
        &LeafSpec::spiffe("spiffe://example.org/ns/prod/sa/api"),
    );
    let store = TrustStore::builder()
        .ca_pem(good.root.pem().as_bytes())
        .require_spiffe(true)
        .build()
        .unwrap();
    let id = store
        .verify(&good.leaf.der(), &[&good.inter.der()], now())
        .unwrap();
    assert_eq!(
        id.spiffe_id.as_deref(),
        Some("spiffe://example.org/ns/prod/sa/api")
    );
    assert_eq!(id.spiffe_trust_domain(), Some("example.org"));

    let mut two = LeafSpec::spiffe("spiffe://example.org/a");
    two.uris.push("spiffe://example.org/b".into());
    let mut ca_bits = LeafSpec::spiffe("spiffe://example.org/a");
    ca_bits.ku = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
    let mut no_ds = LeafSpec::spiffe("spiffe://example.org/a");
    no_ds.ku = vec![KeyUsagePurpose::KeyEncipherment];
    let cases = [
        two,
        LeafSpec::spiffe("spiffe://example.org/../etc"),
        LeafSpec::spiffe("spiffe://Example.org/x"),
        ca_bits,
        no_ds,
        LeafSpec::client("no-uri"),
    ];
    for spec in cases {
        let l = leaf(Alg::P256, &good.inter, &spec);
        let err = store
            .verify(&l.der(), &[&good.inter.der()], now())
            .unwrap_err();
        assert_eq!(err.code(), "cert.not_spiffe", "{spec:?}: {err}");
    }
    // A store that does not require SPIFFE still holds spiffe:// leaves to the profile.
    let lax = store_for(&good.root);
    let mut bad = LeafSpec::spiffe("spiffe://example.org/x");
    bad.uris.push("https://example.org/".into());
    let l = leaf(Alg::P256, &good.inter, &bad);
    assert_eq!(
        code(lax.verify(&l.der(), &[&good.inter.der()], now())),
        "cert.not_spiffe"
    );
    assert!(lax
        .verify(
            &leaf(Alg::P256, &good.inter, &LeafSpec::client("plain")).der(),
            &[&good.inter.der()],
            now()
        )
        .is_ok());
}

#[test]
fn chain_too_long() {
    let root = root(Alg::P256);
    // More presented bytes than MAX_PRESENTED_CHAIN_BYTES is refused before any path
    // building; a count alone is not (17 copies of one intermediate verify).
    let filler = intermediate(Alg::P256, &root, "Filler");
    let leaf1 = leaf(Alg::P256, &filler, &LeafSpec::client("c"));
    let store = store_for(&root);
    let copies = |n: usize| -> Vec<Vec<u8>> { (0..n).map(|_| filler.der()).collect() };
    let seventeen = copies(17);
    let refs: Vec<&[u8]> = seventeen.iter().map(|v| v.as_slice()).collect();
    assert!(store.verify(&leaf1.der(), &refs, now()).is_ok());
    let n = portcullis::identity::MAX_PRESENTED_CHAIN_BYTES / filler.der().len() + 1;
    let many = copies(n);
    let refs: Vec<&[u8]> = many.iter().map(|v| v.as_slice()).collect();
    assert_eq!(
        code(store.verify(&leaf1.der(), &refs, now())),
        "cert.chain_too_long"
    );
    // A path deeper than webpki's 6 and our own 8 intermediates.
    let mut cas = vec![intermediate(Alg::P256, &root, "D0")];
    for i in 1..9 {
        let next = intermediate(Alg::P256, cas.last().unwrap(), &format!("D{i}"));
        cas.push(next);
    }
    let deep = leaf(Alg::P256, cas.last().unwrap(), &LeafSpec::client("deep"));
    let ders: Vec<Vec<u8>> = cas.iter().map(Ca::der).collect();
    let refs: Vec<&[u8]> = ders.iter().map(|v| v.as_slice()).collect();
    assert_eq!(
        code(store.verify(&deep.der(), &refs, now())),
        "cert.chain_too_long"
    );
    // Seven intermediates (D0..D6): more than webpki builds, within our bound of 8.
    let seven = leaf(Alg::P256, &cas[6], &LeafSpec::client("seven"));
    let id = store.verify(&seven.der(), &refs[..7], now()).unwrap();
    assert_eq!(id.chain_fingerprints.len(), 9);
}

#[test]
fn server_names() {
    let mut spec = LeafSpec::server("api.example.com");
    spec.ips = vec!["192.0.2.10".parse().unwrap()];
    let pki = pki(Alg::P256, &spec);
    let store = store_for(&pki.root);
    let chain: &[&[u8]] = &[&pki.inter.der()];
    assert!(store
        .verify_server(&pki.leaf.der(), chain, "api.example.com", now())
        .is_ok());
    assert!(store
        .verify_server(&pki.leaf.der(), chain, "192.0.2.10", now())
        .is_ok());
    for wrong in [
        "evil.example.com",
        "example.com",
        "192.0.2.11",
        "api.example.com.evil",
        "",
    ] {
        assert_eq!(
            code(store.verify_server(&pki.leaf.der(), chain, wrong, now())),
            "cert.name_mismatch",
            "{wrong}"
        );
    }
}

#[test]
fn hostile_bytes_are_bad_encoding() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let store = store_for(&pki.root);
    let der = pki.leaf.der();
    for cut in [0, 1, 2, 10, der.len() / 2, der.len() - 1] {
        assert_eq!(
            code(store.verify(&der[..cut], &[], now())),
            "cert.bad_encoding",
            "cut {cut}"
        );
    }
    let mut seed = 42u64;
    for len in [1usize, 64, 500, 4096] {
        let random: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        assert_eq!(code(store.verify(&random, &[], now())), "cert.bad_encoding");
        let mut framed = vec![0x30, 0x82, (len >> 8) as u8, len as u8];
        framed.extend(&random);
        assert!(store.verify(&framed, &[], now()).is_err());
        assert!(store.verify(&der, &[&random], now()).is_err());
    }
    let garbage = vec![0xA5u8; 1024 * 1024];
    assert_eq!(
        code(store.verify(&garbage, &[], now())),
        "cert.bad_encoding"
    );
    assert_eq!(
        decode::decode_certificate(&garbage).unwrap_err().code(),
        "cert.bad_encoding"
    );
    // Trailing bytes after a valid certificate.
    let mut trailing = der.clone();
    trailing.push(0);
    assert_eq!(
        code(store.verify(&trailing, &[], now())),
        "cert.bad_encoding"
    );
}

#[test]
fn bad_trust_store() {
    for bundle in [
        &b""[..],
        b"garbage",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
    ] {
        let err = TrustStore::builder().ca_pem(bundle).build().unwrap_err();
        assert_eq!(err.code(), "cert.bad_trust_store", "{bundle:?}");
    }
    assert_eq!(
        TrustStore::builder().build().unwrap_err().code(),
        "cert.bad_trust_store"
    );
    let root = root(Alg::P256);
    let err = TrustStore::builder()
        .ca_pem(root.pem().as_bytes())
        .crls(b"not a crl")
        .build()
        .unwrap_err();
    assert_eq!(err.code(), "cert.bad_trust_store");
    let store = store_for(&root);
    assert_eq!(
        store.reload_crls(&[b"\x30\x00"]).unwrap_err().code(),
        "cert.bad_trust_store"
    );
}

#[test]
fn decoders_accept_every_transport_form() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let der = pki.leaf.der();
    let pem = pki.leaf.pem();
    assert_eq!(decode::decode_certificate(pem.as_bytes()).unwrap(), der);
    assert_eq!(decode::decode_certificate(&der).unwrap(), der);
    let escaped: String = pem
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    assert_eq!(
        decode::decode_url_escaped_pem(&escaped).unwrap(),
        vec![der.clone()]
    );
    assert_eq!(decode::decode_certificate(escaped.as_bytes()).unwrap(), der);
    let b64 = base64_lines(&der).replace('\n', "");
    assert_eq!(decode::decode_base64_der(&b64).unwrap(), der);
    assert_eq!(decode::decode_certificate(b64.as_bytes()).unwrap(), der);
    let two = format!("{}{}", pem, pki.inter.pem());
    assert_eq!(
        decode::decode_pem_certificates(two.as_bytes())
            .unwrap()
            .len(),
        2
    );
    assert!(decode::decode_certificate(two.as_bytes()).is_err());
}

#[test]
fn cache_hit_still_checks_time() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let store = store_for(&pki.root);
    let chain: &[&[u8]] = &[&pki.inter.der()];
    let first = store.verify(&pki.leaf.der(), chain, now()).unwrap();
    assert_eq!(store.cached_len(), 1);
    let second = store.verify(&pki.leaf.der(), chain, now()).unwrap();
    assert_eq!(first, second);
    assert_eq!(store.cached_len(), 1);
    assert_eq!(
        code(store.verify(&pki.leaf.der(), chain, at(2036, 1, 1))),
        "cert.expired"
    );
    assert_eq!(
        code(store.verify(&pki.leaf.der(), chain, at(2020, 1, 1))),
        "cert.not_yet_valid"
    );
    // The window covers the intermediate too: it ends before the leaf does.
    let short = intermediate_with(Alg::P256, &pki.root, "Short", |p| {
        p.not_after = ymd(2030, 1, 1)
    });
    let l = leaf(Alg::P256, &short, &LeafSpec::client("c2"));
    assert!(store.verify(&l.der(), &[&short.der()], now()).is_ok());
    assert_eq!(
        code(store.verify(&l.der(), &[&short.der()], at(2031, 1, 1))),
        "cert.expired"
    );
}

#[test]
fn crl_reload_clears_the_cache() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let store = store_for(&pki.root);
    let chain: &[&[u8]] = &[&pki.inter.der()];
    assert!(store.verify(&pki.leaf.der(), chain, now()).is_ok());
    assert_eq!(store.cached_len(), 1);
    let revoking = crl(&pki.inter, &[0x1001]);
    store.reload_crls(&[&revoking]).unwrap();
    assert_eq!(store.cached_len(), 0);
    assert_eq!(
        code(store.verify(&pki.leaf.der(), chain, now())),
        "cert.revoked"
    );
    // Failures are not cached; reloading a clean CRL lets the leaf through again.
    store.reload_crls(&[&crl(&pki.inter, &[])]).unwrap();
    assert!(store.verify(&pki.leaf.der(), chain, now()).is_ok());
}

#[test]
fn different_chains_never_share_a_cache_entry() {
    let mut spec = LeafSpec::server("a.example.com");
    spec.eku = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let pki = pki(Alg::P256, &spec);
    let mut other_spec = spec.clone();
    other_spec.cn = "b.example.com".into();
    other_spec.dns = vec!["b.example.com".into()];
    other_spec.serial = 0x2002;
    let other = leaf(Alg::P256, &pki.inter, &other_spec);
    let decoy = intermediate(Alg::P256, &pki.root, "Decoy");
    let store = store_for(&pki.root);
    let inter = pki.inter.der();
    let a = pki.leaf.der();
    let b = other.der();

    let id_a = store.verify(&a, &[&inter], now()).unwrap();
    assert_eq!(store.cached_len(), 1);
    // A different leaf under the same intermediate: its own entry, its own identity.
    let id_b = store.verify(&b, &[&inter], now()).unwrap();
    assert_eq!(id_b.common_name.as_deref(), Some("b.example.com"));
    assert_ne!(id_a.fingerprint, id_b.fingerprint);
    assert_eq!(store.cached_len(), 2);
    // The same leaf with a different presented chain is a different cache key.
    let id_a2 = store.verify(&a, &[&inter, &decoy.der()], now()).unwrap();
    assert_eq!(id_a2.fingerprint, id_a.fingerprint);
    assert_eq!(store.cached_len(), 3);
    // Same leaf, no chain: not served from the entry that had the intermediate.
    assert_eq!(code(store.verify(&a, &[], now())), "cert.unknown_issuer");
    // A leaf differing from a cached one in one byte of its signature is verified, not
    // served: the cache compares every byte.
    let mut forged = a.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(store.verify(&forged, &[&inter], now()).is_err());
    // Same bytes, other purpose or other server name: separate entries.
    assert!(store
        .verify_server(&a, &[&inter], "a.example.com", now())
        .is_ok());
    assert_eq!(store.cached_len(), 4);
    assert_eq!(
        code(store.verify_server(&a, &[&inter], "b.example.com", now())),
        "cert.name_mismatch"
    );
    assert_eq!(store.cached_len(), 4);
    // Every earlier entry still answers with its own identity.
    assert_eq!(store.verify(&a, &[&inter], now()).unwrap(), id_a);
    assert_eq!(store.verify(&b, &[&inter], now()).unwrap(), id_b);
    assert_eq!(store.cached_len(), 4);
}

#[test]
fn cache_stays_bounded() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let store = TrustStore::builder()
        .ca_pem(pki.root.pem().as_bytes())
        .cache_capacity(3)
        .build()
        .unwrap();
    assert_eq!(store.cache_capacity(), 3);
    for i in 0..10u64 {
        let mut spec = LeafSpec::client(&format!("c{i}"));
        spec.serial = 0x2000 + i;
        let l = leaf(Alg::P256, &pki.inter, &spec);
        store.verify(&l.der(), &[&pki.inter.der()], now()).unwrap();
        assert!(store.cached_len() <= 3);
    }
    assert_eq!(store.cached_len(), 3);
    // Failures never enter the cache.
    let stranger = root_named(Alg::P256, "Stranger");
    let lonely = leaf(Alg::P256, &stranger, &LeafSpec::client("x"));
    let disabled = TrustStore::builder()
        .ca_pem(pki.root.pem().as_bytes())
        .cache_capacity(0)
        .build()
        .unwrap();
    assert!(disabled.verify(&lonely.der(), &[], now()).is_err());
    assert!(disabled
        .verify(&pki.leaf.der(), &[&pki.inter.der()], now())
        .is_ok());
    assert_eq!(disabled.cached_len(), 0);
}

#[test]
fn shared_across_threads() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let store = Arc::new(store_for(&pki.root));
    let leaf = Arc::new(pki.leaf.der());
    let inter = Arc::new(pki.inter.der());
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (store, leaf, inter) = (store.clone(), leaf.clone(), inter.clone());
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let id = store.verify(&leaf, &[&inter], now()).unwrap();
                    assert_eq!(id.common_name.as_deref(), Some("c"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn profile_rules_refuse_malformed_certificates() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let store = store_for(&pki.root);
    let chain: &[&[u8]] = &[&pki.inter.der()];
    let mut zero_serial = LeafSpec::client("zero");
    zero_serial.serial = 0;
    let mut underscore = LeafSpec::client("u");
    underscore.dns = vec!["bad_name.example.com".into()];
    let mut any_eku = LeafSpec::client("any");
    any_eku.eku = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::Any,
    ];
    let mut deceptive_case = LeafSpec::client("API.Example.com");
    deceptive_case.dns = vec!["api.example.com".into()];
    let mut deceptive_ip = LeafSpec::client("192.168.001.001");
    deceptive_ip.ips = vec!["192.168.1.1".parse().unwrap()];
    let mut idn = LeafSpec::client("xn--pple-43d.com");
    idn.dns = vec!["apple.com".into()];
    for spec in [
        zero_serial,
        underscore,
        any_eku,
        deceptive_case,
        deceptive_ip,
        idn,
    ] {
        let l = leaf(Alg::P256, &pki.inter, &spec);
        let err = store.verify(&l.der(), chain, now()).unwrap_err();
        assert_eq!(err.code(), "cert.invalid", "{spec:?}: {err}");
    }
    // A CN that is simply another name (not a respelling of a SAN) is fine.
    let mut unrelated = LeafSpec::client("billing service");
    unrelated.dns = vec!["billing.internal".into()];
    assert!(store
        .verify(&leaf(Alg::P256, &pki.inter, &unrelated).der(), chain, now())
        .is_ok());
}

#[test]
fn expired_trust_anchor_is_refused() {
    let old_root = {
        let key = key(Alg::P256, 0);
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "Old Root");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = ymd(2010, 1, 1);
        p.not_after = ymd(2024, 1, 1);
        Ca {
            cert: p.self_signed(&key).unwrap(),
            key,
        }
    };
    let inter = intermediate(Alg::P256, &old_root, "I");
    let l = leaf(Alg::P256, &inter, &LeafSpec::client("c"));
    let store = store_for(&old_root);
    assert_eq!(
        code(store.verify(&l.der(), &[&inter.der()], now())),
        "cert.expired"
    );
    assert!(store
        .verify(&l.der(), &[&inter.der()], at(2023, 1, 1))
        .is_ok());
}

#[test]
fn no_single_byte_change_to_a_valid_leaf_verifies() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let store = TrustStore::builder()
        .ca_pem(pki.root.pem().as_bytes())
        .cache_capacity(0)
        .build()
        .unwrap();
    let chain: &[&[u8]] = &[&pki.inter.der()];
    let der = pki.leaf.der();
    assert!(store.verify(&der, chain, now()).is_ok());
    for i in 0..der.len() {
        let mut mutated = der.clone();
        mutated[i] ^= 0x01;
        assert!(
            store.verify(&mutated, chain, now()).is_err(),
            "flipping bit 0 of byte {i} still verified"
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        for r in [
            decode::decode_certificate(&bytes),
            decode::decode_der(&bytes),
        ] {
            if let Err(e) = r {
                proptest::prop_assert_eq!(e.code(), "cert.bad_encoding");
            }
        }
        let _ = decode::decode_certificates(&bytes);
        let _ = decode::decode_crls(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = decode::decode_url_escaped_pem(&text);
        let _ = decode::decode_base64_der(&text);
        let _ = TrustStore::builder().ca(&bytes).crls(&bytes).build();
    }

    #[test]
    fn arbitrary_chains_never_verify(
        leaf in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024),
        extra in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024),
    ) {
        let store = shared_store();
        let mut framed = vec![0x30, 0x82, (leaf.len() >> 8) as u8, leaf.len() as u8];
        framed.extend(&leaf);
        proptest::prop_assert!(store.verify(&leaf, &[&extra], now()).is_err());
        proptest::prop_assert!(store.verify(&framed, &[&extra], now()).is_err());
    }
}

fn shared_store() -> &'static TrustStore {
    static STORE: std::sync::OnceLock<TrustStore> = std::sync::OnceLock::new();
    STORE.get_or_init(|| store_for(&root(Alg::P256)))
}

#[test]
fn store_and_identity_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TrustStore>();
    assert_send_sync::<portcullis::identity::Identity>();
    assert_send_sync::<CertificateError>();
}

#[test]
fn max_intermediates_limits_the_path() {
    let root = root(Alg::P256);
    let i1 = intermediate(Alg::P256, &root, "I1");
    let i2 = intermediate(Alg::P256, &i1, "I2");
    let l = leaf(Alg::P256, &i2, &LeafSpec::client("deep"));
    let chain: &[&[u8]] = &[&i1.der(), &i2.der()];
    let with_max = |n| {
        TrustStore::builder()
            .ca_pem(root.pem().as_bytes())
            .max_intermediates(n)
            .build()
            .unwrap()
    };
    assert!(with_max(2).verify(&l.der(), chain, now()).is_ok());
    assert_eq!(
        code(with_max(1).verify(&l.der(), chain, now())),
        "cert.chain_too_long"
    );
    assert_eq!(
        code(with_max(0).verify(&l.der(), chain, now())),
        "cert.chain_too_long"
    );
}

/// The intermediate memo (on by default) remembers what the profile checks found about
/// recent intermediates. It must never change a verdict: the same chains, verified
/// repeatedly (so the memo is warm) by a store with it and one without, give the same
/// identities and the same errors, and a leaf forged under a remembered intermediate is
/// still refused.
#[test]
fn the_intermediate_memo_never_changes_a_verdict() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let build = |memo: bool, crls: &[Vec<u8>]| {
        let mut b = TrustStore::builder()
            .ca_pem(pki.root.pem().as_bytes())
            .cache_capacity(0)
            .intermediate_memo(memo);
        for c in crls {
            b = b.crls(c);
        }
        b.build().unwrap()
    };
    let outcome = |store: &TrustStore, leaf: &[u8], chain: &[&[u8]], at| {
        store
            .verify(leaf, chain, at)
            .map(|id| {
                (
                    id.fingerprint,
                    id.chain_fingerprints,
                    id.subject.to_string(),
                )
            })
            .map_err(|e| (e.code(), e.to_string()))
    };
    let short = intermediate_with(Alg::P256, &pki.root, "Short", |p| {
        p.not_after = ymd(2030, 1, 1)
    });
    let no_cert_sign = intermediate_with(Alg::P256, &pki.root, "No CertSign", |p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature]
    });
    // Same subject and key as a CRL signer, but without cRLSign: the loaded CRL names it.
    let crl_signer = intermediate_with(Alg::P256, &pki.root, "CRL Issuer", |_| {});
    let no_crl_sign = intermediate_with(Alg::P256, &pki.root, "CRL Issuer", |p| {
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ]
    });
    let crls = vec![crl(&crl_signer, &[0x7777])];
    let mut cases: Vec<(Vec<u8>, Vec<u8>)> = vec![(pki.leaf.der(), pki.inter.der())];
    for (i, ca) in [&pki.inter, &short, &no_cert_sign, &no_crl_sign]
        .into_iter()
        .enumerate()
    {
        let mut spec = LeafSpec::client(&format!("memo{i}"));
        spec.serial = 0x3000 + i as u64;
        cases.push((leaf(Alg::P256, ca, &spec).der(), ca.der()));
    }
    // A leaf claiming pki.inter as issuer but signed by another key.
    let impostor = intermediate_with(Alg::P256, &pki.root, "Intermediate CA", |_| {});
    let mut forged_spec = LeafSpec::client("forged");
    forged_spec.serial = 0x3100;
    let forged = leaf(Alg::P256, &impostor, &forged_spec);
    cases.push((forged.der(), pki.inter.der()));

    let with = build(true, &crls);
    let without = build(false, &crls);
    let mut refused = Vec::new();
    for round in 0..3 {
        for (leaf_der, inter_der) in &cases {
            for at in [now(), at(2031, 6, 1)] {
                let chain: &[&[u8]] = &[inter_der];
                let a = outcome(&with, leaf_der, chain, at);
                let b = outcome(&without, leaf_der, chain, at);
                assert_eq!(a, b, "round {round}: memo on and off disagree");
                if round == 0 {
                    refused.push(a.err().map(|e| e.0));
                }
            }
        }
    }
    // The cases really cover both verdicts (two times per case): the good chains verify,
    // and each hostile one is refused for its own reason.
    let ok = None;
    let no = |code: &'static str| Some(code);
    assert_eq!(
        refused,
        [
            ok,
            ok, // pki.inter
            ok,
            ok, // pki.inter again, another leaf
            ok,
            no("cert.expired"), // the intermediate expires in 2030
            no("cert.invalid"),
            no("cert.invalid"), // keyUsage without keyCertSign
            // the CRL names an issuer without cRLSign, so its signature cannot count
            no("cert.bad_trust_store"),
            no("cert.bad_trust_store"),
            // signed by another key than the remembered intermediate's
            no("cert.unknown_issuer"),
            no("cert.unknown_issuer"),
        ]
    );
    // And the good chain still verifies after all that.
    assert!(with
        .verify(&pki.leaf.der(), &[&pki.inter.der()], now())
        .is_ok());
}
