//! The checks rustls-webpki leaves out, read from x509-parser's view of each certificate:
//! RFC 5280 profile rules for leaves and CAs, and the SPIFFE X509-SVID profile.
//!
//! webpki builds and signature-checks the path; these rules reject certificates that are
//! well-signed but malformed in ways other verifiers (and attackers) disagree about.

use std::collections::HashSet;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::X509Version;

use super::CertificateError;

/// Where a certificate sits in the path being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Leaf,
    Intermediate,
    Anchor,
}

/// A leaf's name for messages, formatted only if an error needs it.
pub(crate) struct LeafName<'a> {
    pub(crate) cert: &'a X509Certificate<'a>,
    pub(crate) fingerprint: &'a str,
}

impl std::fmt::Display for LeafName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(self.cert, self.fingerprint))
    }
}

/// An X.509 name in RFC 4514 form, formatted only if needed.
pub(crate) struct NameDisplay<'a>(pub(crate) &'a x509_parser::x509::X509Name<'a>);

impl std::fmt::Display for NameDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", super::DistinguishedName::from_x509(self.0))
    }
}

/// A short human name for a certificate in messages: subject DN (or "(empty subject)")
/// plus the start of its SHA-256 fingerprint.
pub(crate) fn describe(cert: &X509Certificate<'_>, fingerprint: &str) -> String {
    let subject = super::DistinguishedName::from_x509(cert.subject()).to_string();
    let short = fingerprint.get(..16).unwrap_or(fingerprint);
    if subject.is_empty() {
        format!("certificate (empty subject, sha256 {short}…)")
    } else {
        format!("certificate \"{subject}\" (sha256 {short}…)")
    }
}

/// Whether the certificate names itself as issuer (self-issued; for roots, self-signed).
pub(crate) fn is_self_issued(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw()
}

const OID_EC_P256: &str = "1.2.840.10045.3.1.7";
const OID_EC_P384: &str = "1.3.132.0.34";
const OID_EC_P521: &str = "1.3.132.0.35";
const OID_ED25519: &str = "1.3.101.112";

/// Public keys we accept in any position (CA/B Forum 6.1.5 and what ring can verify):
/// RSA of at least 2048 bits and a multiple of 8, ECDSA on P-256/P-384/P-521, Ed25519.
/// webpki only judges keys that verify a signature, so a leaf's own key is otherwise
/// never looked at.
fn key_rules(cert: &X509Certificate<'_>) -> Result<(), String> {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let modulus = rsa.modulus;
            let start = modulus
                .iter()
                .position(|b| *b != 0)
                .unwrap_or(modulus.len());
            let significant = modulus.get(start..).unwrap_or(&[]);
            let bits = significant
                .first()
                .map_or(0, |b| significant.len() * 8 - b.leading_zeros() as usize);
            if bits < 2048 {
                return Err(format!(
                    "RSA key of {bits} bits; at least 2048 are required"
                ));
            }
            if bits % 8 != 0 {
                return Err(format!("RSA key of {bits} bits is not a multiple of 8"));
            }
            Ok(())
        }
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            if [OID_EC_P256, OID_EC_P384, OID_EC_P521].contains(&curve.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "EC key on unsupported curve {curve:?}; use P-256 or P-384"
                ))
            }
        }
        Ok(PublicKey::DSA(_)) => Err("DSA keys are not accepted".to_owned()),
        _ if alg == OID_ED25519 => Ok(()),
        Ok(_) => Err(format!("unsupported public key algorithm {alg}")),
        Err(e) => Err(format!("public key does not parse ({e})")),
    }
}

/// RFC 5280 / CA/B Forum rules, by position in the path. Anchors are trusted by
/// configuration, so rules that real roots commonly break (serial numbers) are not applied
/// to them.
fn profile_rules(cert: &X509Certificate<'_>, role: Role) -> Result<(), String> {
    let tbs = &cert.tbs_certificate;
    // 4.1.2.1: extensions require v3.
    if tbs.version != X509Version::V3 && !cert.extensions().is_empty() {
        return Err("has extensions but is not a version 3 certificate".to_owned());
    }
    if tbs.version.0 > 2 {
        return Err(format!("unknown certificate version {}", tbs.version.0 + 1));
    }
    // 4.1.2.2: serial is a positive integer of at most 20 octets.
    if role != Role::Anchor {
        let serial = cert.raw_serial();
        if serial.len() > 21 || (serial.len() == 21 && serial.first() != Some(&0)) {
            return Err("serial number is longer than 20 octets".to_owned());
        }
        if serial.first().is_some_and(|b| b & 0x80 != 0) {
            return Err("serial number is negative".to_owned());
        }
        if serial.iter().all(|b| *b == 0) {
            return Err("serial number is zero".to_owned());
        }
    }
    // 4.1.1.2: the two signature algorithm fields must agree.
    if cert.signature_algorithm != tbs.signature {
        return Err("signatureAlgorithm differs from the TBS signature field".to_owned());
    }
    // 4.1.2.5: a validity period that ends before it begins is nonsense.
    if tbs.validity.not_before > tbs.validity.not_after {
        return Err("notBefore is after notAfter".to_owned());
    }
    key_rules(cert)?;

    let is_ca_role = role != Role::Leaf;
    let mut seen = HashSet::new();
    let mut ski: Option<&[u8]> = None;
    let mut aki_present = false;
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        // 4.2: at most one instance of each extension.
        if !seen.insert(ext.oid.as_bytes()) {
            return Err(format!("extension {oid} appears twice"));
        }
        match ext.parsed_extension() {
            ParsedExtension::ParseError { error } => {
                return Err(format!("extension {oid} is malformed ({error})"))
            }
            // 4.2: a critical extension we cannot process must be refused.
            ParsedExtension::UnsupportedExtension { .. } if ext.critical => {
                return Err(format!("unknown critical extension {oid}"))
            }
            // 4.2.1.1: AKI is non-critical; a root's AKI names only its own key identifier.
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki_present = true;
                if ext.critical {
                    return Err("authorityKeyIdentifier is marked critical".to_owned());
                }
                if role == Role::Anchor && is_self_issued(cert) {
                    if aki.key_identifier.is_none() {
                        return Err("root authorityKeyIdentifier lacks keyIdentifier".to_owned());
                    }
                    if aki.authority_cert_issuer.is_some() || aki.authority_cert_serial.is_some() {
                        return Err(
                            "root authorityKeyIdentifier carries issuer/serial fields".to_owned()
                        );
                    }
                }
            }
            // 4.2.1.2: SKI is non-critical.
            ParsedExtension::SubjectKeyIdentifier(id) => {
                if ext.critical {
                    return Err("subjectKeyIdentifier is marked critical".to_owned());
                }
                ski = Some(id.0);
            }
            // 4.2.1.10: name constraints only in CAs, critical, with at least one subtree;
            // a dNSName constraint has no leading period (that is URI syntax).
            ParsedExtension::NameConstraints(nc) => {
                if !is_ca_role {
                    return Err("nameConstraints in an end-entity certificate".to_owned());
                }
                // RFC 5280 wants it critical; webpki (and limbo's webpki profile) accept a
                // non-critical one on a root, so only intermediates are held to it.
                if !ext.critical && role == Role::Intermediate {
                    return Err("nameConstraints is not marked critical".to_owned());
                }
                let permitted = nc.permitted_subtrees.as_ref().map_or(0, Vec::len);
                let excluded = nc.excluded_subtrees.as_ref().map_or(0, Vec::len);
                if permitted + excluded == 0 {
                    return Err("nameConstraints has no subtrees".to_owned());
                }
                let subtrees = nc
                    .permitted_subtrees
                    .iter()
                    .chain(nc.excluded_subtrees.iter());
                for tree in subtrees.flatten() {
                    if let GeneralName::DNSName(d) = &tree.base {
                        if d.starts_with('.') {
                            return Err(format!(
                                "nameConstraints dNSName {d:?} has a leading period"
                            ));
                        }
                    }
                }
            }
            // 4.2.1.11: policy constraints are critical.
            ParsedExtension::PolicyConstraints(_) if !ext.critical => {
                return Err("policyConstraints is not marked critical".to_owned());
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                // CA/B 7.1.2.1.2: a root carries no EKU. 7.1.2.7.6: a subscriber's EKU is
                // non-critical and never anyExtendedKeyUsage.
                if role == Role::Anchor && is_self_issued(cert) {
                    return Err("root CA carries extKeyUsage".to_owned());
                }
                if role == Role::Leaf {
                    if ext.critical {
                        return Err("extKeyUsage is marked critical".to_owned());
                    }
                    if eku.any {
                        return Err("extKeyUsage includes anyExtendedKeyUsage".to_owned());
                    }
                }
            }
            // 4.2.1.9: pathLenConstraint only for CAs that sign certificates.
            ParsedExtension::BasicConstraints(bc) if bc.path_len_constraint.is_some() && !bc.ca => {
                return Err("pathLenConstraint on a certificate that is not a CA".to_owned());
            }
            _ => {}
        }
    }
    // 4.2.1.1: every certificate but a self-signed one names its issuer's key.
    // Anchors are exempt: they are trusted by configuration, not by an issuer.
    if !aki_present && !is_self_issued(cert) && role != Role::Anchor {
        return Err("no authorityKeyIdentifier".to_owned());
    }
    if is_ca_role {
        // 4.2.1.2: CA certificates carry a subject key identifier.
        if ski.is_none() {
            return Err("CA certificate has no subjectKeyIdentifier".to_owned());
        }
        if role == Role::Anchor && is_self_issued(cert) {
            if let (Ok(Some(aki)), Some(ski)) = (authority_key_id(cert), ski) {
                if aki != ski {
                    return Err(
                        "root authorityKeyIdentifier differs from its subjectKeyIdentifier"
                            .to_owned(),
                    );
                }
            }
        }
    }

    // 4.2.1.6: a SAN extension is never empty; an empty subject needs a critical SAN, and
    // only a leaf may have one (4.1.2.6: a CA's subject is non-empty).
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad SAN ({e})"))?;
    if let Some(san) = &san {
        if san.value.general_names.is_empty() {
            return Err("subjectAltName extension is empty".to_owned());
        }
    }
    let empty_subject = tbs.subject.iter_rdn().next().is_none();
    if empty_subject && is_ca_role {
        return Err("CA certificate has an empty subject".to_owned());
    }
    if role == Role::Leaf {
        match &san {
            None if empty_subject => return Err("empty subject and no subjectAltName".to_owned()),
            Some(san) if empty_subject && !san.critical => {
                return Err("empty subject but subjectAltName is not critical".to_owned())
            }
            Some(san) if !empty_subject && san.critical => {
                return Err(
                    "subjectAltName is critical although the subject is not empty".to_owned(),
                )
            }
            _ => {}
        }
        if let Some(san) = &san {
            for name in &san.value.general_names {
                if let GeneralName::DNSName(d) = name {
                    check_dns_name(d)?;
                }
            }
        }
    }
    Ok(())
}

fn authority_key_id<'a>(cert: &'a X509Certificate<'_>) -> Result<Option<&'a [u8]>, String> {
    for ext in cert.extensions() {
        if let ParsedExtension::AuthorityKeyIdentifier(aki) = ext.parsed_extension() {
            return Ok(aki.key_identifier.as_ref().map(|k| k.0));
        }
    }
    Ok(None)
}

/// RFC 1034 preferred name syntax (as amended by RFC 1123), with a whole-label `*` allowed
/// as the leftmost label: letters, digits and hyphens, no empty labels, no hyphen at either
/// end of a label, no underscore.
fn check_dns_name(name: &str) -> Result<(), String> {
    let bad = || Err(format!("dNSName SAN {name:?} is not a valid host name"));
    if name.is_empty() || name.len() > 253 {
        return bad();
    }
    for (i, label) in name.split('.').enumerate() {
        if i == 0 && label == "*" {
            continue;
        }
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad();
        }
    }
    Ok(())
}

/// CA/B 7.1.4.3 asks that a commonName be a character-for-character copy of a SAN. Plenty
/// of valid certificates carry an unrelated CN, so we refuse the deceptive cases only: a CN
/// that names one of the SANs in another spelling (case, IP address notation), or an
/// internationalized CN (U-label or xn-- A-label) that is not exactly one of the SANs.
pub(crate) fn check_cn_consistent(cert: &X509Certificate<'_>) -> Result<(), String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Ok(());
    };
    let mut dns: Vec<&str> = Vec::new();
    let mut ips: Vec<std::net::IpAddr> = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(d) => dns.push(d),
            GeneralName::IPAddress(bytes) => {
                if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                    ips.push(std::net::IpAddr::from(v4));
                } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                    ips.push(std::net::IpAddr::from(v6));
                }
            }
            _ => {}
        }
    }
    for cn in cert.subject().iter_common_name() {
        let value = cn
            .as_str()
            .map_err(|_| "commonName is not a string".to_owned())?;
        let exact = dns.contains(&value) || ips.iter().any(|ip| ip.to_string() == value);
        if exact {
            continue;
        }
        let deceptive = || {
            Err(format!(
                "commonName {value:?} is not a character-for-character copy of its subjectAltName"
            ))
        };
        let internationalized = !value.is_ascii()
            || value
                .split('.')
                .any(|l| l.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("xn--")));
        if internationalized {
            return deceptive();
        }
        // ASCII from here on: another spelling of a DNS SAN differs only in case.
        if dns.iter().any(|d| d.eq_ignore_ascii_case(value)) {
            return deceptive();
        }
        // Another spelling of an IP SAN (hex, octal, leading zeros, uncompressed IPv6):
        // parse the way browsers do and compare addresses. Only IP-shaped values get here.
        let ip_shaped = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b'.' | b':' | b'x' | b'X'));
        if ip_shaped && !ips.is_empty() {
            let host = if value.contains(':') {
                url::Host::parse(&format!("[{value}]"))
            } else {
                url::Host::parse(value)
            };
            match host {
                Ok(url::Host::Ipv4(a)) if ips.contains(&std::net::IpAddr::V4(a)) => {
                    return deceptive()
                }
                Ok(url::Host::Ipv6(a)) if ips.contains(&std::net::IpAddr::V6(a)) => {
                    return deceptive()
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Checks a leaf (end-entity) certificate. `name` describes it in errors.
pub(crate) fn check_leaf(
    cert: &X509Certificate<'_>,
    name: &dyn std::fmt::Display,
) -> Result<(), CertificateError> {
    let bc = cert
        .basic_constraints()
        .map_err(|e| CertificateError::Invalid {
            cert: name.to_string(),
            reason: format!("bad basicConstraints ({e})"),
        })?;
    let ku = cert.key_usage().map_err(|e| CertificateError::Invalid {
        cert: name.to_string(),
        reason: format!("bad keyUsage ({e})"),
    })?;
    let is_ca = bc.as_ref().is_some_and(|bc| bc.value.ca);
    let signs_certs = ku.as_ref().is_some_and(|ku| ku.value.key_cert_sign());
    if is_ca || signs_certs {
        return Err(CertificateError::CaAsLeaf {
            cert: name.to_string(),
        });
    }
    profile_rules(cert, Role::Leaf).map_err(|reason| CertificateError::Invalid {
        cert: name.to_string(),
        reason,
    })
}

/// Checks a certificate used as an issuer in a candidate path: the profile, and that it
/// really is a CA: basicConstraints present, critical, cA set; keyUsage, if present, with
/// keyCertSign.
pub(crate) fn check_issuer(cert: &X509Certificate<'_>, role: Role) -> Result<(), String> {
    profile_rules(cert, role)?;
    let bc = cert
        .basic_constraints()
        .map_err(|e| format!("bad basicConstraints ({e})"))?;
    match bc {
        Some(bc) if bc.value.ca && bc.critical => {}
        Some(bc) if bc.value.ca => {
            return Err("basicConstraints of a CA is not marked critical".to_owned())
        }
        _ => return Err("issues certificates but is not a CA (basicConstraints cA)".to_owned()),
    }
    let ku = cert
        .key_usage()
        .map_err(|e| format!("bad keyUsage ({e})"))?;
    if let Some(ku) = ku {
        if !ku.value.key_cert_sign() {
            return Err("CA keyUsage lacks keyCertSign".to_owned());
        }
    }
    Ok(())
}

/// Whether a CA may sign CRLs: no keyUsage, or keyUsage with cRLSign (4.2.1.3).
pub(crate) fn may_sign_crls(cert: &X509Certificate<'_>) -> bool {
    match cert.key_usage() {
        Ok(Some(ku)) => ku.value.crl_sign(),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// The leaf's URI SANs.
pub(crate) fn uri_sans<'a>(cert: &'a X509Certificate<'_>) -> Vec<&'a str> {
    match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|g| match g {
                GeneralName::URI(u) => Some(*u),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether any URI SAN claims to be a SPIFFE ID (scheme compared case-insensitively, so a
/// `SPIFFE://` spelling cannot dodge the profile).
pub(crate) fn claims_spiffe(uris: &[&str]) -> bool {
    uris.iter().any(|u| {
        u.get(..9)
            .is_some_and(|s| s.eq_ignore_ascii_case("spiffe://"))
    })
}

/// SPIFFE ID syntax (SPIFFE-ID spec §2): `spiffe://` + trust domain of `[a-z0-9.-_]` + an
/// optional path of non-empty segments of `[a-zA-Z0-9.-_]`, no `.`/`..` segments, no query,
/// fragment, port or userinfo.
pub(crate) fn check_spiffe_id(id: &str) -> Result<(), String> {
    let rest = id
        .strip_prefix("spiffe://")
        .ok_or_else(|| format!("{id:?} does not start with lowercase spiffe://"))?;
    let (domain, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("")),
        None => (rest, ""),
    };
    if domain.is_empty() {
        return Err(format!("{id:?} has an empty trust domain"));
    }
    if domain.len() > 255 {
        return Err(format!("{id:?} has a trust domain longer than 255 bytes"));
    }
    if !domain
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(format!(
            "{id:?}: trust domain may hold only lowercase letters, digits, '.', '-', '_'"
        ));
    }
    if id.len() > 2048 {
        return Err(format!("{id:?} is longer than 2048 bytes"));
    }
    if !path.is_empty() {
        for segment in path.split('/').skip(1) {
            if segment.is_empty() {
                return Err(format!("{id:?} has an empty path segment or trailing '/'"));
            }
            if segment == "." || segment == ".." {
                return Err(format!("{id:?} has a '.' or '..' path segment"));
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            {
                return Err(format!(
                    "{id:?}: path segments may hold only letters, digits, '.', '-', '_'"
                ));
            }
        }
    }
    Ok(())
}

/// The X509-SVID rules for a leaf: exactly one URI SAN, a valid SPIFFE ID, not a CA,
/// digitalSignature and neither keyCertSign nor cRLSign. Returns the SPIFFE ID.
pub(crate) fn check_svid(
    cert: &X509Certificate<'_>,
    name: &dyn std::fmt::Display,
) -> Result<String, CertificateError> {
    let fail = |reason: String| CertificateError::NotSpiffe {
        cert: name.to_string(),
        reason,
    };
    let uris = uri_sans(cert);
    let id = match uris.as_slice() {
        [one] => *one,
        [] => return Err(fail("it has no spiffe:// URI SAN".to_owned())),
        many => {
            return Err(fail(format!(
                "it has {} URI SANs; an SVID has exactly one",
                many.len()
            )))
        }
    };
    check_spiffe_id(id).map_err(fail)?;
    if cert.is_ca() {
        return Err(fail("a leaf SVID must not be a CA".to_owned()));
    }
    match cert.key_usage() {
        Ok(Some(ku)) => {
            if ku.value.key_cert_sign() || ku.value.crl_sign() {
                return Err(fail(
                    "a leaf SVID must not have keyCertSign or cRLSign key usage".to_owned(),
                ));
            }
            if !ku.value.digital_signature() {
                return Err(fail(
                    "a leaf SVID must have digitalSignature key usage".to_owned(),
                ));
            }
        }
        Ok(None) => {
            return Err(fail(
                "a leaf SVID must carry a keyUsage extension".to_owned(),
            ))
        }
        Err(e) => return Err(fail(format!("bad keyUsage ({e})"))),
    }
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::check_spiffe_id;

    #[test]
    fn spiffe_id_syntax() {
        for good in [
            "spiffe://example.org",
            "spiffe://example.org/ns/prod/sa/api",
            "spiffe://a-b_c.d/x.y-z_1",
        ] {
            assert!(check_spiffe_id(good).is_ok(), "{good}");
        }
        for bad in [
            "spiffe://",
            "SPIFFE://example.org/x",
            "spiffe://Example.org/x",
            "spiffe://example.org/",
            "spiffe://example.org//x",
            "spiffe://example.org/../x",
            "spiffe://example.org/./x",
            "spiffe://example.org:443/x",
            "spiffe://user@example.org/x",
            "spiffe://example.org/x?q=1",
            "spiffe://example.org/x#f",
            "https://example.org/x",
        ] {
            assert!(check_spiffe_id(bad).is_err(), "{bad}");
        }
    }
}
