//! Test PKI minting shared by the identity tests and benchmarks (rcgen).
//!
//! RSA keys cannot be generated with rcgen's ring backend, so three RSA-2048 keys made once
//! with `openssl genpkey` live in `tests/data/rsa2048-*.pk8.pem`.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset
#![allow(clippy::unwrap_used)] // test fixtures: a minting failure is a broken test, not bad input

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertificateRevocationListParams,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber, SignatureAlgorithm,
};
use time::OffsetDateTime;

/// Key algorithms the tests mint chains with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    P256,
    P384,
    Ed25519,
    Rsa2048,
}

const RSA_KEYS: [&str; 3] = [
    include_str!("../data/rsa2048-root.pk8.pem"),
    include_str!("../data/rsa2048-intermediate.pk8.pem"),
    include_str!("../data/rsa2048-leaf.pk8.pem"),
];

/// A fresh key for `alg`; `slot` picks one of the three fixed RSA keys.
pub fn key(alg: Alg, slot: usize) -> KeyPair {
    let sig: &'static SignatureAlgorithm = match alg {
        Alg::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        Alg::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        Alg::Ed25519 => &rcgen::PKCS_ED25519,
        Alg::Rsa2048 => {
            return KeyPair::from_pem_and_sign_algo(RSA_KEYS[slot % 3], &rcgen::PKCS_RSA_SHA256)
                .unwrap()
        }
    };
    KeyPair::generate_for(sig).unwrap()
}

/// A CA (root or intermediate) with its key.
pub struct Ca {
    pub cert: Certificate,
    pub key: KeyPair,
}

impl Ca {
    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }
    pub fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// A leaf with its key.
pub struct Leaf {
    pub cert: Certificate,
    pub key: KeyPair,
}

impl Leaf {
    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }
    pub fn pem(&self) -> String {
        self.cert.pem()
    }
}

pub fn ymd(y: i32, m: u8, d: u8) -> OffsetDateTime {
    rcgen::date_time_ymd(y, m, d)
}

/// SystemTime for a calendar day (midnight UTC).
pub fn at(y: i32, m: u8, d: u8) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(ymd(y, m, d).unix_timestamp() as u64)
}

/// The "now" the tests verify at, inside every default validity window.
pub fn now() -> SystemTime {
    at(2025, 6, 1)
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Portcullis Test");
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = ymd(2020, 1, 1);
    p.not_after = ymd(2040, 1, 1);
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = KeyIdMethod::Sha256;
    p
}

pub fn root(alg: Alg) -> Ca {
    root_named(alg, "Test Root")
}

pub fn root_named(alg: Alg, cn: &str) -> Ca {
    let key = key(alg, 0);
    let cert = ca_params(cn).self_signed(&key).unwrap();
    Ca { cert, key }
}

pub fn intermediate(alg: Alg, issuer: &Ca, cn: &str) -> Ca {
    intermediate_with(alg, issuer, cn, |_| {})
}

pub fn intermediate_with(
    alg: Alg,
    issuer: &Ca,
    cn: &str,
    tweak: impl FnOnce(&mut CertificateParams),
) -> Ca {
    let key = key(alg, 1);
    let mut p = ca_params(cn);
    tweak(&mut p);
    let cert = p.signed_by(&key, &issuer.cert, &issuer.key).unwrap();
    Ca { cert, key }
}

/// What a test leaf looks like; `LeafSpec::client("name")` is a plain client cert.
#[derive(Clone, Debug)]
pub struct LeafSpec {
    pub cn: String,
    pub dns: Vec<String>,
    pub uris: Vec<String>,
    pub emails: Vec<String>,
    pub ips: Vec<std::net::IpAddr>,
    pub eku: Vec<ExtendedKeyUsagePurpose>,
    pub ku: Vec<KeyUsagePurpose>,
    pub is_ca: bool,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub serial: u64,
}

impl LeafSpec {
    pub fn client(cn: &str) -> Self {
        Self {
            cn: cn.to_owned(),
            dns: vec![],
            uris: vec![],
            emails: vec![],
            ips: vec![],
            eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
            ku: vec![KeyUsagePurpose::DigitalSignature],
            is_ca: false,
            not_before: ymd(2021, 1, 1),
            not_after: ymd(2035, 1, 1),
            serial: 0x1001,
        }
    }

    pub fn server(dns: &str) -> Self {
        let mut s = Self::client(dns);
        s.dns = vec![dns.to_owned()];
        s.eku = vec![ExtendedKeyUsagePurpose::ServerAuth];
        s
    }

    pub fn spiffe(id: &str) -> Self {
        let mut s = Self::client("svid");
        s.uris = vec![id.to_owned()];
        s
    }
}

pub fn leaf(alg: Alg, issuer: &Ca, spec: &LeafSpec) -> Leaf {
    let key = key(alg, 2);
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(&spec.cn);
    for d in &spec.dns {
        p.subject_alt_names
            .push(SanType::DnsName(d.clone().try_into().unwrap()));
    }
    for u in &spec.uris {
        p.subject_alt_names
            .push(SanType::URI(u.clone().try_into().unwrap()));
    }
    for e in &spec.emails {
        p.subject_alt_names
            .push(SanType::Rfc822Name(e.clone().try_into().unwrap()));
    }
    for ip in &spec.ips {
        p.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    p.extended_key_usages = spec.eku.clone();
    p.key_usages = spec.ku.clone();
    p.is_ca = if spec.is_ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    p.not_before = spec.not_before;
    p.not_after = spec.not_after;
    p.serial_number = Some(SerialNumber::from(spec.serial));
    p.use_authority_key_identifier_extension = true;
    let cert = p.signed_by(&key, &issuer.cert, &issuer.key).unwrap();
    Leaf { cert, key }
}

/// A CRL from `issuer` revoking `serials`, valid 2024-01-01 .. 2030-01-01.
pub fn crl(issuer: &Ca, serials: &[u64]) -> Vec<u8> {
    crl_with(issuer, serials, 1, ymd(2024, 1, 1), ymd(2030, 1, 1))
}

/// A CRL with its own cRLNumber, thisUpdate and nextUpdate.
pub fn crl_with(
    issuer: &Ca,
    serials: &[u64],
    number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
) -> Vec<u8> {
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: ymd(2024, 6, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params
        .signed_by(&issuer.cert, &issuer.key)
        .unwrap()
        .der()
        .to_vec()
}

/// root -> intermediate -> leaf, all with `alg`.
pub struct Pki {
    pub root: Ca,
    pub inter: Ca,
    pub leaf: Leaf,
}

pub fn pki(alg: Alg, spec: &LeafSpec) -> Pki {
    let root = root(alg);
    let inter = intermediate(alg, &root, "Test Intermediate");
    let leaf = leaf(alg, &inter, spec);
    Pki { root, inter, leaf }
}
