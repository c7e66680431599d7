//! The checks rustls-webpki leaves out, read from x509-parser's view of each certificate:
//! RFC 5280 profile rules for leaves and CAs, and the SPIFFE X509-SVID profile.
//!
//! webpki builds and signature-checks the path; these rules reject certificates that are
//! well-signed but malformed in ways other verifiers (and attackers) disagree about.

use std::collections::HashSet;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::x509::X509Version;

use super::CertificateError;

/// Where a certificate sits in the path being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Leaf,
    Intermediate,
    Anchor,
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

/// RFC 5280 rules common to every certificate in a path.
fn common_rules(cert: &X509Certificate<'_>, role: Role) -> Result<(), String> {
    let tbs = &cert.tbs_certificate;
    // 4.1.2.1: extensions require v3.
    if tbs.version != X509Version::V3 && !cert.extensions().is_empty() {
        return Err("has extensions but is not a version 3 certificate".to_owned());
    }
    if tbs.version.0 > 2 {
        return Err(format!("unknown certificate version {}", tbs.version.0 + 1));
    }
    // 4.1.2.2: serial is a positive integer of at most 20 octets.
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
    // 4.1.1.2 / 4.1.2.3: the two signature algorithm fields must agree.
    if cert.signature_algorithm != tbs.signature {
        return Err("signatureAlgorithm differs from the TBS signature field".to_owned());
    }
    // 4.1.2.5: a validity period that ends before it begins is nonsense.
    if tbs.validity.not_before > tbs.validity.not_after {
        return Err("notBefore is after notAfter".to_owned());
    }
    // 4.2: at most one instance of each extension.
    let mut seen = HashSet::new();
    for ext in cert.extensions() {
        if !seen.insert(ext.oid.as_bytes()) {
            return Err(format!(
                "extension {} appears twice",
                ext.oid.to_id_string()
            ));
        }
        if let ParsedExtension::ParseError { error } = ext.parsed_extension() {
            return Err(format!(
                "extension {} is malformed ({error})",
                ext.oid.to_id_string()
            ));
        }
    }
    // 4.2.1.6: a SAN extension must not be empty; an empty subject requires a critical SAN.
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad SAN ({e})"))?;
    if let Some(san) = &san {
        if san.value.general_names.is_empty() {
            return Err("subjectAltName extension is empty".to_owned());
        }
    }
    if tbs.subject.iter_rdn().next().is_none() {
        match (&san, role) {
            (None, _) => return Err("empty subject and no subjectAltName".to_owned()),
            (Some(san), Role::Leaf) if !san.critical => {
                return Err("empty subject but subjectAltName is not critical".to_owned())
            }
            _ => {}
        }
    }
    Ok(())
}

/// Rules for certificates that issue others (intermediates and anchors used in a path).
fn ca_rules(cert: &X509Certificate<'_>) -> Result<(), String> {
    let bc = cert
        .basic_constraints()
        .map_err(|e| format!("bad basicConstraints ({e})"))?;
    match bc {
        Some(bc) if bc.value.ca => {}
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

/// Checks a leaf (end-entity) certificate. `name` describes it in errors.
pub(crate) fn check_leaf(cert: &X509Certificate<'_>, name: &str) -> Result<(), CertificateError> {
    let bc = cert
        .basic_constraints()
        .map_err(|e| CertificateError::Invalid {
            cert: name.to_owned(),
            reason: format!("bad basicConstraints ({e})"),
        })?;
    let ku = cert.key_usage().map_err(|e| CertificateError::Invalid {
        cert: name.to_owned(),
        reason: format!("bad keyUsage ({e})"),
    })?;
    let is_ca = bc.as_ref().is_some_and(|bc| bc.value.ca);
    let signs_certs = ku.as_ref().is_some_and(|ku| ku.value.key_cert_sign());
    if is_ca || signs_certs {
        return Err(CertificateError::CaAsLeaf {
            cert: name.to_owned(),
        });
    }
    common_rules(cert, Role::Leaf).map_err(|reason| CertificateError::Invalid {
        cert: name.to_owned(),
        reason,
    })
}

/// Checks a certificate used as an issuer in a candidate path.
pub(crate) fn check_issuer(cert: &X509Certificate<'_>, role: Role) -> Result<(), String> {
    common_rules(cert, role)?;
    ca_rules(cert)
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
    name: &str,
) -> Result<String, CertificateError> {
    let fail = |reason: String| CertificateError::NotSpiffe {
        cert: name.to_owned(),
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
