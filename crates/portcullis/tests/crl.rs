//! CRL sets: the highest cRLNumber per issuer wins in any order, ambiguous sets and forged
//! CRLs are store errors naming the CRL, and a lapsed CRL (past nextUpdate) is unknown
//! status, never "not revoked".

#![allow(clippy::unwrap_used, clippy::panic)] // a failure is a failed test

mod common;

use common::*;
use portcullis::identity::{decode, CertificateError, TrustStore, TrustStoreBuilder};
use portcullis::ErrorCode;

const LEAF_SERIAL: u64 = 0x1001;

fn base(pki: &Pki) -> TrustStoreBuilder {
    TrustStore::builder().ca_pem(pki.root.pem().as_bytes())
}

fn fresh_pair(pki: &Pki) -> (Vec<u8>, Vec<u8>) {
    // The stale CRL (number 1) predates the revocation; the fresh one (number 2) lists it.
    let stale = crl_with(&pki.inter, &[], 1, ymd(2025, 1, 1), ymd(2030, 1, 1));
    let fresh = crl_with(
        &pki.inter,
        &[LEAF_SERIAL],
        2,
        ymd(2025, 5, 1),
        ymd(2030, 1, 1),
    );
    (stale, fresh)
}

#[test]
fn the_highest_crl_number_wins_in_any_order() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let chain: &[&[u8]] = &[&pki.inter.der()];
    let (stale, fresh) = fresh_pair(&pki);
    // The intermediate configured (CRL checked at load) and only presented (checked later).
    for configured in [true, false] {
        for order in [[&stale, &fresh], [&fresh, &stale]] {
            let mut b = base(&pki);
            if configured {
                b = b.intermediates(pki.inter.pem().as_bytes());
            }
            for crl in order {
                b = b.crls(crl);
            }
            let store = b.build().unwrap();
            let err = store.verify(&pki.leaf.der(), chain, now()).unwrap_err();
            assert_eq!(err.code(), "cert.revoked", "configured={configured}");
            let infos = store.crls();
            assert_eq!(infos.len(), 1);
            assert_eq!(infos[0].number, "2");
            assert_eq!(infos[0].superseded, 1);
            assert_eq!(infos[0].signature_checked, configured);
            assert!(infos[0].issuer.contains("CN=Test Intermediate"));
            // The same through reload_crls.
            let store = base(&pki).build().unwrap();
            store.reload_crls(&[order[0], order[1]]).unwrap();
            assert_eq!(
                store
                    .verify(&pki.leaf.der(), chain, now())
                    .unwrap_err()
                    .code(),
                "cert.revoked"
            );
        }
    }
    // One PEM bundle holding both, stale first.
    let bundle = format!("{}{}", pem_crl(&stale), pem_crl(&fresh));
    let store = base(&pki).crls(bundle.as_bytes()).build().unwrap();
    assert_eq!(
        store
            .verify(&pki.leaf.der(), chain, now())
            .unwrap_err()
            .code(),
        "cert.revoked"
    );
}

#[test]
fn identical_copies_collapse_and_a_number_clash_is_refused() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let (stale, fresh) = fresh_pair(&pki);
    let store = base(&pki)
        .crls(&fresh)
        .crls(&fresh)
        .crls(&stale)
        .build()
        .unwrap();
    assert_eq!(store.crls().len(), 1);
    // Two different CRLs with the same number: which one holds is not knowable.
    let twin = crl_with(&pki.inter, &[], 2, ymd(2025, 5, 2), ymd(2030, 1, 1));
    for order in [[&fresh, &twin], [&twin, &fresh]] {
        let err = base(&pki)
            .crls(order[0])
            .crls(&stale)
            .crls(order[1])
            .build()
            .unwrap_err();
        assert_eq!(err.code(), "cert.bad_trust_store");
        let msg = err.to_string();
        assert!(msg.contains("ambiguous"), "{msg}");
        assert!(msg.contains("cRLNumber 2"), "{msg}");
        assert!(msg.contains("CN=Test Intermediate"), "{msg}");
    }
    // reload_crls refuses the same set and keeps what it had.
    let store = base(&pki).crls(&fresh).build().unwrap();
    let err = store.reload_crls(&[&fresh, &twin]).unwrap_err();
    assert_eq!(err.code(), "cert.bad_trust_store");
    assert_eq!(store.crls()[0].fingerprint.len(), 64);
    assert_eq!(
        store
            .verify(&pki.leaf.der(), &[&pki.inter.der()], now())
            .unwrap_err()
            .code(),
        "cert.revoked"
    );
    // Different issuers with the same number are independent.
    let root_crl = crl_with(&pki.root, &[], 2, ymd(2025, 1, 1), ymd(2030, 1, 1));
    let store = base(&pki).crls(&fresh).crls(&root_crl).build().unwrap();
    assert_eq!(store.crls().len(), 2);
}

#[test]
fn a_lapsed_crl_is_unknown_status() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let chain: &[&[u8]] = &[&pki.inter.der()];
    // now() is 2025-06-01; this CRL's nextUpdate was 2025-05-01.
    let lapsed = crl_with(&pki.inter, &[0x9999], 7, ymd(2025, 4, 1), ymd(2025, 5, 1));
    let root_crl = crl(&pki.root, &[]);
    let strict = base(&pki)
        .crls(&lapsed)
        .crls(&root_crl)
        .deny_unknown_revocation(true)
        .build()
        .unwrap();
    let err = strict.verify(&pki.leaf.der(), chain, now()).unwrap_err();
    assert_eq!(err.code(), "cert.revocation_unknown");
    let msg = err.to_string();
    assert!(msg.contains("lapsed"), "{msg}");
    assert!(msg.contains("cRLNumber 7"), "{msg}");
    assert!(msg.contains("CN=Test Intermediate"), "{msg}");
    assert!(strict.crls().iter().any(|c| c.is_lapsed(1_748_736_000)));
    // Before nextUpdate the same store accepts.
    let before = at(2025, 4, 15);
    assert!(strict.verify(&pki.leaf.der(), chain, before).is_ok());

    // Without deny: accepted, and the identity says why it is unconfirmed.
    let lenient = base(&pki).crls(&lapsed).crls(&root_crl).build().unwrap();
    let id = lenient.verify(&pki.leaf.der(), chain, now()).unwrap();
    let warning = id.revocation_warning.clone().unwrap();
    assert!(warning.contains("lapsed"), "{warning}");
    assert!(warning.contains("deny_unknown_revocation"), "{warning}");
    assert!(lenient
        .verify(&pki.leaf.der(), chain, before)
        .unwrap()
        .revocation_warning
        .is_none());

    // A certificate the lapsed CRL lists stays revoked, with or without deny.
    let lapsed_revoking = crl_with(
        &pki.inter,
        &[LEAF_SERIAL],
        8,
        ymd(2025, 4, 1),
        ymd(2025, 5, 1),
    );
    for deny in [true, false] {
        let store = base(&pki)
            .crls(&lapsed_revoking)
            .crls(&root_crl)
            .deny_unknown_revocation(deny)
            .build()
            .unwrap();
        assert_eq!(
            store
                .verify(&pki.leaf.der(), chain, now())
                .unwrap_err()
                .code(),
            "cert.revoked",
            "deny={deny}"
        );
    }

    // A lapsed CRL of a CA in the chain (the root's, covering the intermediate) counts too.
    let root_lapsed = crl_with(&pki.root, &[], 3, ymd(2025, 1, 1), ymd(2025, 2, 1));
    let fresh_inter = crl(&pki.inter, &[]);
    let store = base(&pki)
        .crls(&root_lapsed)
        .crls(&fresh_inter)
        .deny_unknown_revocation(true)
        .build()
        .unwrap();
    let err = store.verify(&pki.leaf.der(), chain, now()).unwrap_err();
    assert_eq!(err.code(), "cert.revocation_unknown");
    assert!(err.to_string().contains("CN=Test Root"), "{err}");
}

#[test]
fn the_cache_does_not_outlive_a_crls_next_update() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let chain: &[&[u8]] = &[&pki.inter.der()];
    let crl = crl_with(&pki.inter, &[], 1, ymd(2025, 1, 1), ymd(2025, 7, 1));
    let store = base(&pki)
        .crls(&crl)
        .deny_unknown_revocation(false)
        .build()
        .unwrap();
    let strict = base(&pki)
        .crls(&crl)
        .crls(&common::crl(&pki.root, &[]))
        .deny_unknown_revocation(true)
        .build()
        .unwrap();
    for s in [&store, &strict] {
        assert!(s.verify(&pki.leaf.der(), chain, now()).is_ok());
        assert_eq!(s.cached_len(), 1);
    }
    let later = at(2025, 7, 2);
    assert_eq!(
        strict
            .verify(&pki.leaf.der(), chain, later)
            .unwrap_err()
            .code(),
        "cert.revocation_unknown"
    );
    assert!(store
        .verify(&pki.leaf.der(), chain, later)
        .unwrap()
        .revocation_warning
        .is_some());
}

#[test]
fn a_forged_crl_is_a_store_error_naming_the_crl() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    let chain: &[&[u8]] = &[&pki.inter.der()];
    // Same issuer names, other keys.
    let fake_root = root(Alg::P256);
    let fake_inter = intermediate(Alg::P256, &pki.root, "Test Intermediate");
    let forged_root_crl = crl_with(&fake_root, &[], 5, ymd(2025, 1, 1), ymd(2030, 1, 1));
    let forged_inter_crl = crl_with(&fake_inter, &[], 6, ymd(2025, 1, 1), ymd(2030, 1, 1));

    // Issuer configured: refused when loaded, naming the CRL and the CA.
    let err = base(&pki).crls(&forged_root_crl).build().unwrap_err();
    assert_eq!(err.code(), "cert.bad_trust_store");
    let msg = err.to_string();
    assert!(msg.contains("signature does not verify"), "{msg}");
    assert!(msg.contains("cRLNumber 5"), "{msg}");
    assert!(msg.contains("CN=Test Root"), "{msg}");
    let err = base(&pki)
        .intermediates(pki.inter.pem().as_bytes())
        .crls(&forged_inter_crl)
        .build()
        .unwrap_err();
    assert_eq!(err.code(), "cert.bad_trust_store");
    let store = base(&pki).build().unwrap();
    assert_eq!(
        store.reload_crls(&[&forged_root_crl]).unwrap_err().code(),
        "cert.bad_trust_store"
    );

    // Issuer only presented by peers: loads, then every chain through it is refused as a
    // store error naming the CRL (not the leaf's signature), with or without deny.
    for deny in [false, true] {
        let store = base(&pki)
            .crls(&forged_inter_crl)
            .crls(&crl(&pki.root, &[]))
            .deny_unknown_revocation(deny)
            .build()
            .unwrap();
        assert!(store.crls().iter().any(|c| !c.signature_checked));
        let err = store.verify(&pki.leaf.der(), chain, now()).unwrap_err();
        assert_eq!(err.code(), "cert.bad_trust_store", "{err}");
        let msg = err.to_string();
        assert!(msg.contains("cRLNumber 6"), "{msg}");
        assert!(msg.contains("signature does not verify"), "{msg}");
        assert!(
            !matches!(err, CertificateError::BadSignature { .. }),
            "{msg}"
        );
    }
}

#[test]
fn ca_input_that_starts_with_zero_is_not_taken_for_der() {
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    // PEM text with a leading comment line that starts with "0".
    for prefix in ["0", "0 comment\n", "0\x30\n", "00000\r\n"] {
        let text = format!("{prefix}\n{}", pki.root.pem());
        let store = TrustStore::builder().ca(text.as_bytes()).build();
        assert!(store.is_ok(), "{prefix:?}: {store:?}");
        let crls = format!("{prefix}\n{}", pem_crl(&crl(&pki.inter, &[])));
        assert_eq!(decode::decode_crls(crls.as_bytes()).unwrap().len(), 1);
        let certs = format!("{prefix}\n{}", pki.inter.pem());
        assert_eq!(
            decode::decode_certificates(certs.as_bytes()).unwrap().len(),
            1
        );
    }
    // DER still is DER, in both entry points.
    assert!(TrustStore::builder().ca(&pki.root.der()).build().is_ok());
    assert!(decode::is_der(&pki.root.der()));
    assert!(decode::is_der(&crl(&pki.inter, &[])));
    // Truncated or padded DER is not DER, and the DER decoder explains it.
    let der = pki.root.der();
    assert!(!decode::is_der(&der[..der.len() - 1]));
    let mut padded = der.clone();
    padded.push(0);
    assert!(!decode::is_der(&padded));
    let err = TrustStore::builder().ca(&padded).build().unwrap_err();
    assert_eq!(err.code(), "cert.bad_trust_store");
    assert!(err.to_string().contains("DER"), "{err}");
}

#[test]
fn input_form_for_every_spelling() {
    use decode::{input_form, InputForm};
    let pki = pki(Alg::P256, &LeafSpec::client("c"));
    for path in [
        "0ca.pem",
        "0",
        "00",
        "0\x01",
        "0\u{7f}ca",
        "config/ca.pem",
        "/etc/ssl/0ca.der",
        "0é.pem",
        "ca.pem ",
        " -----BEGI",
        "\u{3000}ca",
    ] {
        assert_eq!(
            input_form(path.as_bytes()),
            Some(InputForm::Path),
            "{path:?}"
        );
    }
    assert_eq!(input_form(pki.root.pem().as_bytes()), Some(InputForm::Pem));
    assert_eq!(
        input_form(format!("0\n{}", pki.root.pem()).as_bytes()),
        Some(InputForm::Pem)
    );
    assert_eq!(input_form(&pki.root.der()), Some(InputForm::Der));
    assert_eq!(input_form(&crl(&pki.root, &[])), Some(InputForm::Der));
    // Broken binary DER is DER (so the error is a DER error), not a path.
    let der = pki.root.der();
    assert_eq!(input_form(&der[..40]), Some(InputForm::Der));
    for neither in [
        &b""[..],
        b"a\nb",
        b"ca\0.pem",
        b"line\r\n",
        &[0xffu8, 0xfe][..],
    ] {
        assert_eq!(input_form(neither), None, "{neither:?}");
    }
    assert_eq!(input_form("x".repeat(5000).as_bytes()), None);
}

fn pem_crl(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN X509 CRL-----\n{}\n-----END X509 CRL-----\n",
        lines.join("\n")
    )
}

proptest::proptest! {
    /// The classification never calls text DER, and a path is always one line of text
    /// without a PEM block: the invariants the cert_decode fuzz target checks too.
    #[test]
    fn input_form_never_takes_text_for_der(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
                                            text in "[0-9a-z./ -]{0,40}") {
        use decode::{input_form, InputForm};
        for input in [bytes.as_slice(), text.as_bytes()] {
            if decode::is_der(input) {
                proptest::prop_assert!(std::str::from_utf8(input).is_err());
                proptest::prop_assert_eq!(input_form(input), Some(InputForm::Der));
            }
            if input_form(input) == Some(InputForm::Path) {
                let t = std::str::from_utf8(input).unwrap();
                proptest::prop_assert!(!t.contains("-----BEGIN") && !t.contains('\n'));
            }
        }
        if !text.is_empty() {
            proptest::prop_assert_eq!(input_form(text.as_bytes()), Some(InputForm::Path));
        }
    }
}
