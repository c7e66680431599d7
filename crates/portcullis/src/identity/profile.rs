//! The checks rustls-webpki leaves out, read from [`Cert`], this crate's zero-copy view of
//! each certificate: RFC 5280 profile rules for leaves and CAs, and the SPIFFE X509-SVID
//! profile.
//!
//! webpki builds and signature-checks the path; these rules reject certificates that are
//! well-signed but malformed in ways other verifiers (and attackers) disagree about.

use super::cert::{key_usage, Cert};
use super::der::oid_string;
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
    pub(crate) cert: &'a Cert<'a>,
    pub(crate) fingerprint: &'a str,
}

impl std::fmt::Display for LeafName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(self.cert, self.fingerprint))
    }
}

/// An X.501 name in RFC 4514 form, formatted only if needed.
pub(crate) struct NameDisplay<'a>(pub(crate) &'a super::cert::Name<'a>);

impl std::fmt::Display for NameDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", super::DistinguishedName::from_name(self.0))
    }
}

/// A short human name for a certificate in messages: subject DN (or "(empty subject)")
/// plus the start of its SHA-256 fingerprint.
pub(crate) fn describe(cert: &Cert<'_>, fingerprint: &str) -> String {
    let subject = super::DistinguishedName::from_name(&cert.subject).to_string();
    let short = fingerprint.get(..16).unwrap_or(fingerprint);
    if subject.is_empty() {
        format!("certificate (empty subject, sha256 {short}…)")
    } else {
        format!("certificate \"{subject}\" (sha256 {short}…)")
    }
}

// Public key algorithm and curve OIDs (value bytes).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_EC_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_EC_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_EC_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];

/// Public keys we accept in any position (CA/B Forum 6.1.5 and what ring can verify):
/// RSA of at least 2048 bits and a multiple of 8, ECDSA on P-256/P-384/P-521, Ed25519.
/// webpki only judges keys that verify a signature, so a leaf's own key is otherwise
/// never looked at.
fn key_rules(cert: &Cert<'_>) -> Result<(), String> {
    let spki = &cert.public_key;
    match spki.algorithm {
        OID_RSA => {
            let modulus =
                rsa_modulus(spki.key).map_err(|e| format!("public key does not parse ({e})"))?;
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
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .parameters
                .filter(|p| p.tag == super::der::OID)
                .map(|p| p.content);
            match curve {
                Some(OID_EC_P256 | OID_EC_P384 | OID_EC_P521) => Ok(()),
                other => Err(format!(
                    "EC key on unsupported curve {:?}; use P-256 or P-384",
                    other.map(oid_string).unwrap_or_default()
                )),
            }
        }
        OID_DSA => Err("DSA keys are not accepted".to_owned()),
        OID_ED25519 => Ok(()),
        other => Err(format!(
            "unsupported public key algorithm {}",
            oid_string(other)
        )),
    }
}

/// The modulus of an RSAPublicKey (`SEQUENCE { modulus INTEGER, publicExponent INTEGER }`).
fn rsa_modulus(key: &[u8]) -> Result<&[u8], super::der::DerError> {
    use super::der::{self, Reader};
    let mut r = Reader::new(der::single(key, der::SEQUENCE, "RSAPublicKey")?);
    let modulus = der::integer(r.expect(der::INTEGER, "RSA modulus")?)?;
    der::integer(r.expect(der::INTEGER, "RSA exponent")?)?;
    r.finish("trailing fields in RSAPublicKey")?;
    Ok(modulus)
}

/// RFC 5280 / CA/B Forum rules, by position in the path. Anchors are trusted by
/// configuration, so rules that real roots commonly break (serial numbers) are not applied
/// to them.
fn profile_rules(cert: &Cert<'_>, role: Role) -> Result<(), String> {
    let ext = &cert.extensions;
    // 4.1.2.1: extensions require v3.
    if cert.version != 2 && ext.present {
        return Err("has extensions but is not a version 3 certificate".to_owned());
    }
    if cert.version > 2 {
        return Err(format!(
            "unknown certificate version {}",
            cert.version.saturating_add(1)
        ));
    }
    // 4.1.2.2: serial is a positive integer of at most 20 octets.
    if role != Role::Anchor {
        let serial = cert.serial;
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
    if cert.signature_algorithm != cert.tbs_signature {
        return Err("signatureAlgorithm differs from the TBS signature field".to_owned());
    }
    // 4.1.2.5: a validity period that ends before it begins is nonsense.
    if cert.not_before > cert.not_after {
        return Err("notBefore is after notAfter".to_owned());
    }
    key_rules(cert)?;

    // 4.2: at most one instance of each extension; known ones well-formed; a critical
    // extension we cannot process must be refused.
    if let Some(oid) = ext.duplicate {
        return Err(format!("extension {} appears twice", oid_string(oid)));
    }
    if let Some((oid, error)) = ext.malformed {
        return Err(format!(
            "extension {} is malformed ({error})",
            oid_string(oid)
        ));
    }
    if let Some(oid) = ext.unknown_critical {
        return Err(format!("unknown critical extension {}", oid_string(oid)));
    }
    let is_ca_role = role != Role::Leaf;
    let root = role == Role::Anchor && cert.is_self_issued();
    // 4.2.1.1: AKI is non-critical; a root's AKI names only its own key identifier.
    if let Some(aki) = ext.authority_key_id {
        if aki.critical {
            return Err("authorityKeyIdentifier is marked critical".to_owned());
        }
        if root {
            if aki.value.key_id.is_none() {
                return Err("root authorityKeyIdentifier lacks keyIdentifier".to_owned());
            }
            if aki.value.issuer_or_serial {
                return Err("root authorityKeyIdentifier carries issuer/serial fields".to_owned());
            }
        }
    }
    // 4.2.1.2: SKI is non-critical.
    if ext.subject_key_id.is_some_and(|ski| ski.critical) {
        return Err("subjectKeyIdentifier is marked critical".to_owned());
    }
    // 4.2.1.10: name constraints only in CAs, critical, with at least one subtree; a
    // dNSName constraint has no leading period (that is URI syntax).
    if let Some(nc) = ext.name_constraints {
        if !is_ca_role {
            return Err("nameConstraints in an end-entity certificate".to_owned());
        }
        // RFC 5280 wants it critical; webpki (and limbo's webpki profile) accept a
        // non-critical one on a root, so only intermediates are held to it.
        if !nc.critical && role == Role::Intermediate {
            return Err("nameConstraints is not marked critical".to_owned());
        }
        if nc.value.subtrees == 0 {
            return Err("nameConstraints has no subtrees".to_owned());
        }
        if let Some(d) = nc.value.dotted_dns {
            return Err(format!(
                "nameConstraints dNSName {d:?} has a leading period"
            ));
        }
    }
    // 4.2.1.11: policy constraints are critical.
    if ext.policy_constraints == Some(false) {
        return Err("policyConstraints is not marked critical".to_owned());
    }
    if let Some(eku) = ext.ext_key_usage {
        // CA/B 7.1.2.1.2: a root carries no EKU. 7.1.2.7.6: a subscriber's EKU is
        // non-critical and never anyExtendedKeyUsage.
        if root {
            return Err("root CA carries extKeyUsage".to_owned());
        }
        if role == Role::Leaf {
            if eku.critical {
                return Err("extKeyUsage is marked critical".to_owned());
            }
            if eku.value {
                return Err("extKeyUsage includes anyExtendedKeyUsage".to_owned());
            }
        }
    }
    // 4.2.1.9: pathLenConstraint only for CAs that sign certificates.
    if ext
        .basic_constraints
        .is_some_and(|bc| bc.value.path_len.is_some() && !bc.value.ca)
    {
        return Err("pathLenConstraint on a certificate that is not a CA".to_owned());
    }
    // 4.2.1.1: every certificate but a self-signed one names its issuer's key.
    // Anchors are exempt: they are trusted by configuration, not by an issuer.
    if ext.authority_key_id.is_none() && !cert.is_self_issued() && role != Role::Anchor {
        return Err("no authorityKeyIdentifier".to_owned());
    }
    if is_ca_role {
        // 4.2.1.2: CA certificates carry a subject key identifier.
        let Some(ski) = ext.subject_key_id else {
            return Err("CA certificate has no subjectKeyIdentifier".to_owned());
        };
        if root {
            if let Some(aki) = ext.authority_key_id.and_then(|a| a.value.key_id) {
                if aki != ski.value {
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
    let san = ext.subject_alt_name;
    if san.is_some_and(|san| san.value.is_empty()) {
        return Err("subjectAltName extension is empty".to_owned());
    }
    let empty_subject = cert.subject.is_empty();
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
        for d in cert.san().dns() {
            check_dns_name(d)?;
        }
    }
    Ok(())
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
pub(crate) fn check_cn_consistent(cert: &Cert<'_>) -> Result<(), String> {
    let Some(san) = cert.extensions.subject_alt_name.map(|s| s.value) else {
        return Ok(());
    };
    for cn in cert.subject.common_names() {
        let value = cn
            .text()
            .ok_or_else(|| "commonName is not a string".to_owned())?;
        // SANs are walked in place: most leaves have one CN and a few SANs, and this runs
        // on every cold verification.
        let exact = san.dns().any(|d| d == value) || san.ips().any(|ip| ip.to_string() == value);
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
        if san.dns().any(|d| d.eq_ignore_ascii_case(value)) {
            return deceptive();
        }
        // Another spelling of an IP SAN (hex, octal, leading zeros, uncompressed IPv6):
        // parse the way browsers do and compare addresses. Only IP-shaped values get here.
        let ip_shaped = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b'.' | b':' | b'x' | b'X'));
        if ip_shaped && san.ips().next().is_some() {
            let host = if value.contains(':') {
                url::Host::parse(&format!("[{value}]"))
            } else {
                url::Host::parse(value)
            };
            match host {
                Ok(url::Host::Ipv4(a)) if san.ips().any(|ip| ip == a) => return deceptive(),
                Ok(url::Host::Ipv6(a)) if san.ips().any(|ip| ip == a) => return deceptive(),
                _ => {}
            }
        }
        // A host name beside the SANs (`notinsan.example.com` next to `www.example.com`)
        // names a host the certificate does not authenticate. A CN that is a parent
        // domain of a DNS SAN (the organisation's domain, `example.com` over
        // `foo.example.com`) is a common legacy shape and is let through.
        let host_shaped = value.contains('.')
            && !ip_shaped
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
        if host_shaped && san.dns().next().is_some() {
            let parent_of_a_san = san.dns().any(|d| {
                let d = d.strip_prefix("*.").unwrap_or(d);
                d == value
                    || (d.len() > value.len()
                        && d.ends_with(value)
                        && d.as_bytes().get(d.len() - value.len() - 1) == Some(&b'.'))
            });
            if !parent_of_a_san {
                return Err(format!(
                    "commonName {value:?} names a host that is not among its dNSName SANs"
                ));
            }
        }
    }
    Ok(())
}

/// Whether `name` (a DNS name) is a public suffix on the Public Suffix List (ICANN and
/// private sections, as compiled into the `psl` crate); a name outside any listed
/// suffix is treated as one, as the list's implicit `*` rule says.
pub(crate) fn is_public_suffix(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    psl::suffix_str(&name) == Some(name.as_str())
}

/// CA/B 3.2.2.6: a wildcard must not span a registry-controlled or public suffix
/// (`*.com`, `*.co.uk`, `*.s3.amazonaws.com`). Browsers apply it when matching, and so
/// does this: `server_name` (already matched by webpki) must be matched by an exact DNS
/// SAN, or by a wildcard whose base is not a public suffix. A certificate that also
/// names `s3.amazonaws.com` itself still serves that name.
pub(crate) fn check_wildcard_match(cert: &Cert<'_>, server_name: &str) -> Result<(), String> {
    if server_name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let name = server_name.strip_suffix('.').unwrap_or(server_name);
    let parent = name.split_once('.').map(|(_, p)| p);
    let mut refused = None;
    for d in cert.san().dns() {
        match d.strip_prefix("*.") {
            None if d.eq_ignore_ascii_case(name) => return Ok(()),
            None => {}
            Some(base) if parent.is_some_and(|p| p.eq_ignore_ascii_case(base)) => {
                if !is_public_suffix(base) {
                    return Ok(());
                }
                refused.get_or_insert(d);
            }
            Some(_) => {}
        }
    }
    match refused {
        Some(d) => Err(format!(
            "{server_name:?} matches only the wildcard dNSName SAN {d:?}, which spans a public suffix"
        )),
        None => Ok(()),
    }
}

/// Checks a leaf (end-entity) certificate. `name` describes it in errors.
pub(crate) fn check_leaf(
    cert: &Cert<'_>,
    name: &dyn std::fmt::Display,
) -> Result<(), CertificateError> {
    let signs_certs = cert
        .key_usage()
        .is_some_and(|ku| ku & key_usage::KEY_CERT_SIGN != 0);
    if cert.is_ca() || signs_certs {
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
pub(crate) fn check_issuer(cert: &Cert<'_>, role: Role) -> Result<(), String> {
    profile_rules(cert, role)?;
    match cert.extensions.basic_constraints {
        Some(bc) if bc.value.ca && bc.critical => {}
        Some(bc) if bc.value.ca => {
            return Err("basicConstraints of a CA is not marked critical".to_owned())
        }
        _ => return Err("issues certificates but is not a CA (basicConstraints cA)".to_owned()),
    }
    if cert
        .key_usage()
        .is_some_and(|ku| ku & key_usage::KEY_CERT_SIGN == 0)
    {
        return Err("CA keyUsage lacks keyCertSign".to_owned());
    }
    Ok(())
}

/// Whether a CA may sign CRLs: no keyUsage, or keyUsage with cRLSign (4.2.1.3).
pub(crate) fn may_sign_crls(cert: &Cert<'_>) -> bool {
    cert.key_usage()
        .map_or(true, |ku| ku & key_usage::CRL_SIGN != 0)
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
/// `uris` are the leaf's URI SANs.
pub(crate) fn check_svid(
    cert: &Cert<'_>,
    uris: &[&str],
    name: &dyn std::fmt::Display,
) -> Result<String, CertificateError> {
    let fail = |reason: String| CertificateError::NotSpiffe {
        cert: name.to_string(),
        reason,
    };
    let id = match uris {
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
    let Some(ku) = cert.key_usage() else {
        return Err(fail(
            "a leaf SVID must carry a keyUsage extension".to_owned(),
        ));
    };
    if ku & (key_usage::KEY_CERT_SIGN | key_usage::CRL_SIGN) != 0 {
        return Err(fail(
            "a leaf SVID must not have keyCertSign or cRLSign key usage".to_owned(),
        ));
    }
    if ku & key_usage::DIGITAL_SIGNATURE == 0 {
        return Err(fail(
            "a leaf SVID must have digitalSignature key usage".to_owned(),
        ));
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
