//! Where rustls-webpki gives up and Portcullis does not: name constraints on URI (SPIFFE
//! trust domains), rfc822Name (SANs and the subject's emailAddress) and directoryName;
//! self-issued key-rollover intermediates; a 35-certificate cross-signed mesh; and the
//! pathological pools that must still fail fast. Each case also asks webpki directly, to
//! show what it would have said.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis::identity::{TrustStore, Usage};
use portcullis::ErrorCode;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    GeneralSubtree, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls_pki_types::{CertificateDer, UnixTime};

fn code<T: std::fmt::Debug>(r: Result<T, portcullis::identity::CertificateError>) -> String {
    r.map(|v| panic!("expected an error, got {v:?}"))
        .unwrap_or_else(|e| e.code().to_owned())
}

/// What webpki alone says about the chain (no profile checks): Ok or its error.
fn webpki_says(root: &Ca, chain: &[Vec<u8>], leaf: &[u8], usage: Usage) -> Result<(), String> {
    webpki_says_der(&root.der(), chain, leaf, usage)
}

fn webpki_says_der(
    root: &[u8],
    chain: &[Vec<u8>],
    leaf: &[u8],
    usage: Usage,
) -> Result<(), String> {
    let root_der = CertificateDer::from(root);
    let anchors = vec![webpki::anchor_from_trusted_cert(&root_der)
        .unwrap()
        .to_owned()];
    let leaf = CertificateDer::from(leaf);
    let ee = webpki::EndEntityCert::try_from(&leaf).map_err(|e| format!("{e:?}"))?;
    let inters: Vec<CertificateDer<'_>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let secs = now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &inters,
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs)),
        match usage {
            Usage::ServerAuth => webpki::KeyUsage::server_auth(),
            _ => webpki::KeyUsage::client_auth(),
        },
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| format!("{e:?}"))
}

fn store(root: &Ca) -> TrustStore {
    store_pem(&root.pem())
}

fn store_pem(pem: &str) -> TrustStore {
    TrustStore::builder()
        .ca_pem(pem.as_bytes())
        .cache_capacity(0)
        .build()
        .unwrap()
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    if body.len() < 0x80 {
        v.push(u8::try_from(body.len()).unwrap());
    } else {
        let len = u16::try_from(body.len()).unwrap().to_be_bytes();
        v.extend([0x82, len[0], len[1]]);
    }
    v.extend_from_slice(body);
    v
}

/// A critical nameConstraints extension with URI subtrees (rcgen has no URI form).
fn uri_constraints(permitted: &[&str], excluded: &[&str]) -> CustomExtension {
    let trees = |uris: &[&str]| -> Vec<u8> {
        uris.iter()
            .flat_map(|u| tlv(0x30, &tlv(0x86, u.as_bytes())))
            .collect()
    };
    let mut body = Vec::new();
    if !permitted.is_empty() {
        body.extend(tlv(0xa0, &trees(permitted)));
    }
    if !excluded.is_empty() {
        body.extend(tlv(0xa1, &trees(excluded)));
    }
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], tlv(0x30, &body));
    ext.set_criticality(true);
    ext
}

#[test]
fn spiffe_trust_domain_constrained_by_uri_name_constraints() {
    let root = root(Alg::P256);
    let inter = intermediate_with(Alg::P256, &root, "Prod SPIRE", |p| {
        p.custom_extensions.push(uri_constraints(
            &["prod.example.org"],
            &["legacy.prod.example.org"],
        ));
    });
    let s = store(&root);
    let chain = [inter.der()];
    let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();

    let good = leaf(
        Alg::P256,
        &inter,
        &LeafSpec::spiffe("spiffe://prod.example.org/ns/api"),
    );
    // webpki refuses every SVID under a URI-constrained CA ...
    assert_eq!(
        webpki_says(&root, &chain, &good.der(), Usage::ClientAuth),
        Err("NameConstraintViolation".to_owned())
    );
    // ... Portcullis applies the constraint to the URI's host: the trust domain.
    let id = s.verify(&good.der(), &refs, now()).unwrap();
    assert_eq!(id.spiffe_trust_domain(), Some("prod.example.org"));

    for outside in [
        "spiffe://staging.example.org/ns/api",
        "spiffe://prod.example.org.evil/ns/api",
        "spiffe://sub.prod.example.org/ns/api", // a host, not a domain: no subdomains
        "spiffe://legacy.prod.example.org/x",
    ] {
        let bad = leaf(Alg::P256, &inter, &LeafSpec::spiffe(outside));
        assert_eq!(
            code(s.verify(&bad.der(), &refs, now())),
            "cert.name_constraint",
            "{outside}"
        );
    }
    // A leaf with no URI at all is not constrained by URI subtrees.
    let plain = leaf(Alg::P256, &inter, &LeafSpec::client("no-uri"));
    assert!(s.verify(&plain.der(), &refs, now()).is_ok());
}

#[test]
fn uri_domain_constraints_and_uris_without_a_host() {
    let root = root(Alg::P256);
    let inter = intermediate_with(Alg::P256, &root, "Web", |p| {
        p.custom_extensions
            .push(uri_constraints(&[".example.com"], &[]));
    });
    let s = store(&root);
    let chain = [inter.der()];
    let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    let with_uri = |uri: &str| {
        let mut spec = LeafSpec::client("web");
        spec.uris = vec![uri.to_owned()];
        leaf(Alg::P256, &inter, &spec)
    };
    assert!(s
        .verify(&with_uri("https://api.example.com/x").der(), &refs, now())
        .is_ok());
    assert!(s
        .verify(
            &with_uri("https://user@deep.api.example.com:8443/").der(),
            &refs,
            now()
        )
        .is_ok());
    for bad in [
        "https://example.com/",     // the domain itself is not below it
        "https://api.example.net/", // elsewhere
        "https://192.0.2.1/",       // RFC 5280: no host name, must be rejected
        "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
    ] {
        assert_eq!(
            code(s.verify(&with_uri(bad).der(), &refs, now())),
            "cert.name_constraint",
            "{bad}"
        );
    }
}

fn email_inter(root: &Ca, permitted: &[&str], excluded: &[&str]) -> Ca {
    intermediate_with(Alg::P256, root, "Mail CA", |p| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: permitted
                .iter()
                .map(|e| GeneralSubtree::Rfc822Name((*e).to_owned()))
                .collect(),
            excluded_subtrees: excluded
                .iter()
                .map(|e| GeneralSubtree::Rfc822Name((*e).to_owned()))
                .collect(),
        });
    })
}

/// A client leaf under `issuer` with email SANs and, optionally, a subject emailAddress.
fn mail_leaf(issuer: &Ca, sans: &[&str], subject_email: Option<&str>) -> Leaf {
    let key = key(Alg::P256, 2);
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "mail user");
    if let Some(e) = subject_email {
        dn.push(
            DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]),
            rcgen::DnValue::Ia5String((*e).try_into().unwrap()),
        );
    }
    p.distinguished_name = dn;
    for e in sans {
        p.subject_alt_names
            .push(rcgen::SanType::Rfc822Name((*e).try_into().unwrap()));
    }
    if sans.is_empty() {
        p.subject_alt_names.push(rcgen::SanType::DnsName(
            "mail.example.com".try_into().unwrap(),
        ));
    }
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.not_before = ymd(2024, 1, 1);
    p.not_after = ymd(2030, 1, 1);
    p.use_authority_key_identifier_extension = true;
    let cert = p.signed_by(&key, &issuer.cert, &issuer.key).unwrap();
    Leaf { cert, key }
}

#[test]
fn rfc822_constraints_bind_sans_and_the_subject_email_address() {
    let root = root(Alg::P256);
    let inter = email_inter(
        &root,
        &["example.com", ".example.org"],
        &["ceo@example.com"],
    );
    let s = store(&root);
    let chain = [inter.der()];
    let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    let ok = |sans: &[&str], subj: Option<&str>| {
        s.verify(&mail_leaf(&inter, sans, subj).der(), &refs, now())
    };

    let alice = mail_leaf(&inter, &["alice@example.com"], None);
    assert_eq!(
        webpki_says(&root, &chain, &alice.der(), Usage::ClientAuth),
        Err("NameConstraintViolation".to_owned()),
        "webpki refuses every email SAN under an email-constrained CA"
    );
    assert!(ok(&["alice@example.com"], None).is_ok());
    assert!(ok(&["bob@mail.example.org"], None).is_ok());
    assert_eq!(code(ok(&["bob@example.org"], None)), "cert.name_constraint");
    assert_eq!(code(ok(&["eve@evil.test"], None)), "cert.name_constraint");
    assert_eq!(
        code(ok(&["eve@sub.example.com"], None)),
        "cert.name_constraint"
    );
    assert_eq!(code(ok(&["ceo@example.com"], None)), "cert.name_constraint");
    assert_eq!(
        code(ok(&["alice@example.com", "eve@evil.test"], None)),
        "cert.name_constraint"
    );

    // The subject's emailAddress is held to the same subtrees. webpki does not look at it,
    // so it accepts this chain; Portcullis does not.
    let legacy = mail_leaf(&inter, &[], Some("eve@evil.test"));
    assert_eq!(
        webpki_says(&root, &chain, &legacy.der(), Usage::ClientAuth),
        Ok(())
    );
    assert_eq!(
        code(s.verify(&legacy.der(), &refs, now())),
        "cert.name_constraint"
    );
    assert!(ok(&[], Some("alice@example.com")).is_ok());
    assert_eq!(
        code(ok(&["alice@example.com"], Some("ceo@example.com"))),
        "cert.name_constraint"
    );
}

/// A Name of single-attribute RDNs, each (attribute OID arcs' DER, PrintableString value).
fn name_der(rdns: &[(&[u8], &str)]) -> Vec<u8> {
    let body: Vec<u8> = rdns
        .iter()
        .flat_map(|(oid, v)| {
            tlv(
                0x31,
                &tlv(0x30, &[tlv(0x06, oid), tlv(0x13, v.as_bytes())].concat()),
            )
        })
        .collect();
    tlv(0x30, &body)
}

/// A critical nameConstraints extension with directoryName subtrees. (rcgen tags a
/// directoryName implicitly, which is not DER for a CHOICE; this encodes it explicitly.)
fn dn_constraints(permitted: &[Vec<u8>], excluded: &[Vec<u8>]) -> CustomExtension {
    let trees = |names: &[Vec<u8>]| -> Vec<u8> {
        names
            .iter()
            .flat_map(|n| tlv(0x30, &tlv(0xa4, n)))
            .collect()
    };
    let mut body = Vec::new();
    if !permitted.is_empty() {
        body.extend(tlv(0xa0, &trees(permitted)));
    }
    if !excluded.is_empty() {
        body.extend(tlv(0xa1, &trees(excluded)));
    }
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], tlv(0x30, &body));
    ext.set_criticality(true);
    ext
}

#[test]
fn directory_name_constraints_bind_the_subject() {
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let root = root(Alg::P256);
    // Compared as RFC 4518 strings: case and spacing do not matter.
    let permitted = name_der(&[(O, "portcullis  TEST")]);
    let excluded = name_der(&[(O, "Portcullis Test"), (CN, "banned")]);
    let inter = intermediate_with(Alg::P256, &root, "Dir CA", |p| {
        p.custom_extensions
            .push(dn_constraints(&[permitted], &[excluded]));
    });
    let s = store(&root);
    let chain = [inter.der()];
    let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    // The common helper names leaves O=Portcullis Test, CN=<cn>.
    let inside = leaf(Alg::P256, &inter, &LeafSpec::client("svc"));
    assert_eq!(
        webpki_says(&root, &chain, &inside.der(), Usage::ClientAuth),
        Err("NameConstraintViolation".to_owned())
    );
    assert!(s.verify(&inside.der(), &refs, now()).is_ok());
    let banned = leaf(Alg::P256, &inter, &LeafSpec::client("banned"));
    assert_eq!(
        code(s.verify(&banned.der(), &refs, now())),
        "cert.name_constraint"
    );
    let outsider = mail_leaf(&inter, &["x@example.com"], None); // subject CN=mail user only
    assert_eq!(
        code(s.verify(&outsider.der(), &refs, now())),
        "cert.name_constraint"
    );
}

/// A CA certificate for `name` with `key`, signed by `issuer_key` under `issuer`.
fn ca_cert(
    name: &str,
    key: &KeyPair,
    issuer: Option<(&rcgen::Certificate, &KeyPair)>,
    path_len: Option<u8>,
    tweak: impl FnOnce(&mut CertificateParams),
) -> rcgen::Certificate {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = ymd(2020, 1, 1);
    p.not_after = ymd(2040, 1, 1);
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = KeyIdMethod::Sha256;
    tweak(&mut p);
    match issuer {
        Some((cert, k)) => p.signed_by(key, cert, k).unwrap(),
        None => p.self_signed(key).unwrap(),
    }
}

fn p256() -> KeyPair {
    key(Alg::P256, 0)
}

fn clone_key(k: &KeyPair) -> KeyPair {
    KeyPair::from_pem(&k.serialize_pem()).unwrap()
}

#[test]
fn self_issued_rollover_is_not_counted_for_path_length() {
    // root -> ICA (old key, pathlen 0) -> ICA (new key, self-issued rollover) -> leaf.
    let root_key = p256();
    let root = Ca {
        cert: ca_cert("Roll Root", &root_key, None, None, |_| {}),
        key: root_key,
    };
    let old_key = p256();
    let old = ca_cert(
        "Issuing CA",
        &old_key,
        Some((&root.cert, &root.key)),
        Some(0),
        |_| {},
    );
    let new_key = p256();
    let rollover = ca_cert(
        "Issuing CA",
        &new_key,
        Some((&old, &old_key)),
        Some(0),
        |_| {},
    );
    let new_ca = Ca {
        cert: rollover,
        key: new_key,
    };
    let l = leaf(Alg::P256, &new_ca, &LeafSpec::client("rolled"));
    let chain = [new_ca.der(), old.der().to_vec()];
    let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    // webpki counts the rollover certificate against pathLenConstraint 0.
    assert!(webpki_says(&root, &chain, &l.der(), Usage::ClientAuth).is_err());
    let id = store(&root).verify(&l.der(), &refs, now()).unwrap();
    assert_eq!(id.chain_fingerprints.len(), 4);

    // The same shape with a CA that is *not* self-issued breaks pathLenConstraint 0.
    let other_key = p256();
    let other = ca_cert("Other CA", &other_key, Some((&old, &old_key)), None, |_| {});
    let other = Ca {
        cert: other,
        key: other_key,
    };
    let l2 = leaf(Alg::P256, &other, &LeafSpec::client("too deep"));
    let chain2 = [other.der(), old.der().to_vec()];
    let refs2: Vec<&[u8]> = chain2.iter().map(Vec::as_slice).collect();
    assert!(store(&root).verify(&l2.der(), &refs2, now()).is_err());
}

#[test]
fn self_issued_intermediates_are_exempt_from_name_constraints_unless_last() {
    // The root permits example.com; the rollover certificate's own SAN is elsewhere.
    let root_key = p256();
    let root = Ca {
        cert: ca_cert("NC Root", &root_key, None, None, |p| {
            p.name_constraints = Some(NameConstraints {
                permitted_subtrees: vec![GeneralSubtree::DnsName("example.com".into())],
                excluded_subtrees: vec![],
            });
        }),
        key: root_key,
    };
    let old_key = p256();
    let old = ca_cert(
        "Web CA",
        &old_key,
        Some((&root.cert, &root.key)),
        None,
        |_| {},
    );
    let new_key = p256();
    let rollover = ca_cert("Web CA", &new_key, Some((&old, &old_key)), None, |p| {
        p.subject_alt_names.push(rcgen::SanType::DnsName(
            "ca.not-example.net".try_into().unwrap(),
        ));
    });
    let new_ca = Ca {
        cert: rollover,
        key: new_key,
    };
    let chain = [new_ca.der(), old.der().to_vec()];
    let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    let s = TrustStore::builder()
        .ca_pem(root.pem().as_bytes())
        .usage(Usage::ServerAuth)
        .cache_capacity(0)
        .build()
        .unwrap();
    let good = leaf(Alg::P256, &new_ca, &LeafSpec::server("www.example.com"));
    assert!(webpki_says(&root, &chain, &good.der(), Usage::ServerAuth).is_err());
    assert!(s
        .verify_server(&good.der(), &refs, "www.example.com", now())
        .is_ok());
    // The leaf is always bound.
    let bad = leaf(Alg::P256, &new_ca, &LeafSpec::server("www.not-example.net"));
    assert_eq!(
        code(s.verify_server(&bad.der(), &refs, "www.not-example.net", now())),
        "cert.name_constraint"
    );
}

/// `levels` levels of `width` CAs each. Level k's CAs are all named "Mesh k" and each is
/// signed by the CA of the same column one level up; column 0 ends at the trusted root,
/// the others at roots nobody trusts (named like the trusted root). Every path is
/// name-valid, so a builder that follows names alone explores width^levels of them.
struct Mesh {
    root_der: Vec<u8>,
    root_pem: String,
    pool: Vec<Vec<u8>>,
    leaf: Leaf,
}

fn mesh(levels: usize, width: usize, shared_key_per_level: bool) -> Mesh {
    let mut issuers: Vec<(rcgen::Certificate, KeyPair)> = (0..width)
        .map(|_| {
            let k = p256();
            (ca_cert("Mesh Root", &k, None, None, |_| {}), k)
        })
        .collect();
    let root_der = issuers[0].0.der().to_vec();
    let root_pem = issuers[0].0.pem();
    let mut levels_out: Vec<Vec<Vec<u8>>> = Vec::new();
    for level in 1..=levels {
        let shared = p256();
        let mut next = Vec::new();
        let mut ders = Vec::new();
        for col in 0..issuers.len() {
            let k = if shared_key_per_level {
                clone_key(&shared)
            } else {
                p256()
            };
            let issuer = if shared_key_per_level && level > 1 {
                // Cross-signed: every CA of this level by the previous level's CA of the
                // next column (all share a key, so each signature verifies).
                &issuers[(col + 1) % issuers.len()]
            } else {
                &issuers[col]
            };
            let cert = ca_cert(
                &format!("Mesh {level}"),
                &k,
                Some((&issuer.0, &issuer.1)),
                None,
                |_| {},
            );
            ders.push(cert.der().to_vec());
            next.push((cert, k));
        }
        levels_out.push(ders);
        issuers = next;
    }
    let (cert, key) = issuers.swap_remove(0);
    let issuer = Ca { cert, key };
    let leaf = leaf(Alg::P256, &issuer, &LeafSpec::client("meshed"));
    // Presented leaf side first, the valid column last at every level.
    let mut pool = Vec::new();
    for mut ders in levels_out.into_iter().rev() {
        ders.rotate_left(1);
        pool.extend(ders);
    }
    Mesh {
        root_der,
        root_pem,
        pool,
        leaf,
    }
}

#[test]
fn a_35_certificate_cross_signed_mesh_with_one_valid_path_verifies() {
    let m = mesh(5, 7, false);
    assert_eq!(m.pool.len(), 35);
    let refs: Vec<&[u8]> = m.pool.iter().map(Vec::as_slice).collect();
    // webpki runs out of its 100 signature checks following names alone.
    assert_eq!(
        webpki_says_der(&m.root_der, &m.pool, &m.leaf.der(), Usage::ClientAuth),
        Err("MaximumSignatureChecksExceeded".to_owned())
    );
    let id = store_pem(&m.root_pem)
        .verify(&m.leaf.der(), &refs, now())
        .unwrap();
    assert_eq!(id.chain_fingerprints.len(), 7);
    // Without the intermediates the leaf is unknown; with only the invalid columns too.
    let decoys: Vec<&[u8]> = m
        .pool
        .chunks(7)
        .flat_map(|level| level[..6].iter().map(Vec::as_slice))
        .collect();
    assert!(store_pem(&m.root_pem)
        .verify(&m.leaf.der(), &decoys, now())
        .is_err());
}

#[test]
fn a_pathological_pool_fails_fast_with_chain_too_long() {
    // Six levels of twelve CAs sharing one key per level and cross-signed: every edge
    // verifies and no path reaches an anchor whose checks pass (the root rejects them
    // all: it carries a name constraint the leaf violates), so a builder must explore
    // 12^6 paths. The work limits end it.
    let m = mesh(6, 12, true);
    let refs: Vec<&[u8]> = m.pool.iter().map(Vec::as_slice).collect();
    let other_root = root_named(Alg::P256, "Elsewhere");
    let s = TrustStore::builder()
        .ca_pem(m.root_pem.as_bytes())
        .ca_pem(other_root.pem().as_bytes())
        .cache_capacity(0)
        .max_intermediates(2)
        .build()
        .unwrap();
    assert_eq!(
        code(s.verify(&m.leaf.der(), &refs, now())),
        "cert.chain_too_long"
    );
}
