//! `portcullis pki demo DIR`: a throwaway PKI for development and `make demo`.
//!
//! root CA -> intermediate CA -> {server (127.0.0.1, localhost), client, revoked (in the
//! CRL), SPIFFE SVID}; a separate rogue CA issues a client certificate that must be refused.
//! Keys are P-256, written unencrypted: never use these outside development.

use std::path::Path;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertificateRevocationListParams,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::Failure;

/// The SPIFFE ID of the demo SVID.
pub(crate) const DEMO_SPIFFE_ID: &str = "spiffe://demo.portcullis.example/ns/ops/sa/deployer";

struct Issuer {
    cert: Certificate,
    key: KeyPair,
}

fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure {
        code: "pki.failed",
        message: format!("{what}: {e}"),
        location: None,
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Portcullis Demo");
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca(cn: &str, serial: u64, issuer: Option<&Issuer>) -> Result<Issuer, Failure> {
    let key = KeyPair::generate().map_err(|e| fail("key generation", e))?;
    let now = OffsetDateTime::now_utc();
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(3650);
    p.serial_number = Some(SerialNumber::from(serial));
    p.use_authority_key_identifier_extension = issuer.is_some();
    p.key_identifier_method = KeyIdMethod::Sha256;
    let cert = match issuer {
        None => p.self_signed(&key),
        Some(i) => p.signed_by(&key, &i.cert, &i.key),
    }
    .map_err(|e| fail(cn, e))?;
    Ok(Issuer { cert, key })
}

enum Kind {
    Server,
    Client,
    Spiffe,
}

fn leaf(cn: &str, serial: u64, kind: Kind, issuer: &Issuer) -> Result<Issuer, Failure> {
    let key = KeyPair::generate().map_err(|e| fail("key generation", e))?;
    let now = OffsetDateTime::now_utc();
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(825);
    p.serial_number = Some(SerialNumber::from(serial));
    p.use_authority_key_identifier_extension = true;
    match kind {
        Kind::Server => {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            p.subject_alt_names = vec![
                SanType::DnsName("localhost".try_into().map_err(|e| fail("san", e))?),
                SanType::IpAddress([127, 0, 0, 1].into()),
            ];
        }
        Kind::Client => {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        Kind::Spiffe => {
            p.distinguished_name = DistinguishedName::new();
            p.distinguished_name
                .push(DnType::OrganizationName, "Portcullis Demo");
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            p.subject_alt_names = vec![SanType::URI(
                DEMO_SPIFFE_ID.try_into().map_err(|e| fail("san", e))?,
            )];
        }
    }
    let cert = p
        .signed_by(&key, &issuer.cert, &issuer.key)
        .map_err(|e| fail(cn, e))?;
    Ok(Issuer { cert, key })
}

fn crl(issuer: &Issuer, revoked: &[u64]) -> Result<String, Failure> {
    let now = OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now - Duration::hours(1),
        next_update: now + Duration::days(3650),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: now - Duration::minutes(30),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params
        .signed_by(&issuer.cert, &issuer.key)
        .and_then(|c| c.pem())
        .map_err(|e| fail("CRL", e))
}

const DEMO_TOML: &str = r#"# A demo configuration for the throwaway PKI next to it (`portcullis pki demo`).
# Check it with: portcullis check portcullis.toml

[trust_store.clients]
ca = "ca.pem"
intermediates = ["intermediate.pem"]
crls = ["crl.pem"]

[[access]]
cn = "demo-client"
grants = ["containers:deploy"]

[[access]]
spiffe_prefix = "spiffe://demo.portcullis.example/ns/ops/"
grants = ["containers:deploy", "admin"]

[rack]
trust_store = "clients"
require = { "POST /deploy" = "containers:deploy", "/admin" = "admin" }
skip = ["/up"]

[egress.partners]
allow_hosts = ["example.com", "*.example.com"]
"#;

/// Writes the demo PKI into `dir`; returns (file name, description) pairs.
pub(crate) fn demo(dir: &Path) -> Result<Vec<(String, String)>, Failure> {
    std::fs::create_dir_all(dir).map_err(|e| fail(&dir.display().to_string(), e))?;
    // Distinct serials per run keep browsers and caches from confusing two demo PKIs.
    let base = u64::try_from(OffsetDateTime::now_utc().unix_timestamp())
        .unwrap_or(1)
        .saturating_mul(16);
    let root = ca("Portcullis Demo Root CA", base + 1, None)?;
    let inter = ca("Portcullis Demo Intermediate CA", base + 2, Some(&root))?;
    let rogue = ca("Portcullis Demo Rogue CA", base + 3, None)?;
    let server = leaf("localhost", base + 4, Kind::Server, &inter)?;
    let client = leaf("demo-client", base + 5, Kind::Client, &inter)?;
    let revoked = leaf("demo-revoked", base + 6, Kind::Client, &inter)?;
    let wrong = leaf("demo-client", base + 7, Kind::Client, &rogue)?;
    let spiffe = leaf("svid", base + 8, Kind::Spiffe, &inter)?;
    let crls = format!("{}{}", crl(&inter, &[base + 6])?, crl(&root, &[])?);

    let mut files: Vec<(String, String, String)> = vec![
        (
            "ca.pem".into(),
            root.cert.pem(),
            "root CA (trust anchor)".into(),
        ),
        (
            "ca-key.pem".into(),
            root.key.serialize_pem(),
            "root CA key".into(),
        ),
        (
            "intermediate.pem".into(),
            inter.cert.pem(),
            "intermediate CA (signs every leaf)".into(),
        ),
        (
            "intermediate-key.pem".into(),
            inter.key.serialize_pem(),
            "intermediate CA key".into(),
        ),
        (
            "crl.pem".into(),
            crls,
            "CRLs: the intermediate's (revokes revoked.pem) and the root's".into(),
        ),
    ];
    for (name, cert, what) in [
        (
            "server",
            &server,
            "server certificate for 127.0.0.1 and localhost",
        ),
        (
            "client",
            &client,
            "client certificate, CN=demo-client: accepted",
        ),
        (
            "revoked",
            &revoked,
            "client certificate in crl.pem: refused (cert.revoked)",
        ),
        (
            "wrong-issuer",
            &wrong,
            "client certificate from the rogue CA: refused",
        ),
        (
            "spiffe",
            &spiffe,
            "SPIFFE SVID for spiffe://demo.portcullis.example/ns/ops/sa/deployer",
        ),
    ] {
        files.push((format!("{name}.pem"), cert.cert.pem(), what.into()));
        files.push((
            format!("{name}-key.pem"),
            cert.key.serialize_pem(),
            format!("{name} key"),
        ));
        if name != "wrong-issuer" {
            files.push((
                format!("{name}-chain.pem"),
                format!("{}{}", cert.cert.pem(), inter.cert.pem()),
                format!("{name} certificate followed by the intermediate"),
            ));
        }
    }
    files.push((
        "rogue-ca.pem".into(),
        rogue.cert.pem(),
        "the rogue CA (not trusted)".into(),
    ));
    files.push((
        "portcullis.toml".into(),
        DEMO_TOML.into(),
        "a configuration using these files".into(),
    ));

    let mut written = Vec::with_capacity(files.len());
    for (name, contents, what) in files {
        let path = dir.join(&name);
        std::fs::write(&path, contents).map_err(|e| fail(&path.display().to_string(), e))?;
        written.push((name, what));
    }
    Ok(written)
}
