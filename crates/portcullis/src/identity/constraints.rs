//! RFC 5280 §4.2.1.10 name constraints, every name form a certificate presents:
//! dNSName, iPAddress, rfc822Name (SANs and the subject's emailAddress attributes),
//! uniformResourceIdentifier (the host part, so a SPIFFE trust domain) and directoryName
//! (the subject DN and directoryName SANs).
//!
//! rustls-webpki processes dNSName and iPAddress constraints and refuses every chain in
//! which one of the others would have to be applied; this module processes them all, and
//! for dNSName and iPAddress it follows webpki's reading (a differential test checks that
//! the two agree wherever webpki gives an answer). A constraint on a form we cannot
//! process (otherName, x400Address, ediPartyName, registeredID) refuses any certificate
//! presenting a name of that form, as RFC 5280 requires.

use super::cert::{Attribute, Cert, GeneralName, Name, NameConstraints};
use super::der::{self, Reader};

/// emailAddress (1.2.840.113549.1.9.1), the legacy place for a mailbox in a subject DN.
const OID_EMAIL_ADDRESS: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

/// Why a certificate does not conform to a CA's name constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NcError {
    /// A presented name is outside the permitted subtrees or inside an excluded one.
    Violation(String),
    /// A constraint (or the presented name it must be compared with) does not parse.
    Malformed(String),
    /// The comparison budget ran out (a hostile certificate with thousands of names).
    Budget,
}

/// Comparisons left for one verification (shared by every CA on the path).
#[derive(Debug)]
pub(crate) struct Budget(pub(crate) usize);

impl Budget {
    fn take(&mut self) -> Result<(), NcError> {
        self.0 = self.0.checked_sub(1).ok_or(NcError::Budget)?;
        Ok(())
    }
}

/// One name a certificate presents, in the form name constraints compare.
#[derive(Debug, Clone, Copy)]
enum Presented<'a> {
    San(GeneralName<'a>),
    /// The subject DN (directoryName form).
    Subject(Name<'a>),
    /// An emailAddress attribute of the subject (rfc822Name form).
    SubjectEmail(Attribute<'a>),
}

fn form(name: &GeneralName<'_>) -> u8 {
    name.form()
}

/// Checks every name `cert` presents against one CA's constraints `nc`.
pub(crate) fn check(
    nc: &NameConstraints<'_>,
    cert: &Cert<'_>,
    budget: &mut Budget,
) -> Result<(), NcError> {
    let subject = (!cert.subject.is_empty()).then_some(Presented::Subject(cert.subject));
    let emails = cert
        .subject
        .rdns()
        .flat_map(|rdn| rdn.attributes())
        .filter(|a| a.oid == OID_EMAIL_ADDRESS)
        .map(Presented::SubjectEmail);
    let sans = cert.san().iter().map(Presented::San);
    for name in subject.into_iter().chain(emails).chain(sans) {
        check_name(nc, name, budget)?;
    }
    Ok(())
}

fn check_name(
    nc: &NameConstraints<'_>,
    name: Presented<'_>,
    budget: &mut Budget,
) -> Result<(), NcError> {
    let presented_form = match &name {
        Presented::San(g) => form(g),
        Presented::Subject(_) => 4,
        Presented::SubjectEmail(_) => 1,
    };
    // No subtree of this form: nothing to compare (and no budget spent).
    if nc.forms & (1u16 << presented_form) == 0 {
        return Ok(());
    }
    if let Some(permitted) = nc.permitted {
        let mut any_of_form = false;
        let mut matched = false;
        for base in subtrees(permitted) {
            budget.take()?;
            let base = base?;
            if form(&base) != presented_form {
                continue;
            }
            any_of_form = true;
            if matches(name, base, false)? {
                matched = true;
                break;
            }
        }
        if any_of_form && !matched {
            return Err(NcError::Violation(format!(
                "{} is outside the permitted subtrees",
                describe(name)
            )));
        }
    }
    if let Some(excluded) = nc.excluded {
        for base in subtrees(excluded) {
            budget.take()?;
            let base = base?;
            if form(&base) == presented_form && matches(name, base, true)? {
                return Err(NcError::Violation(format!(
                    "{} is inside an excluded subtree",
                    describe(name)
                )));
            }
        }
    }
    Ok(())
}

fn describe(name: Presented<'_>) -> String {
    match name {
        Presented::San(GeneralName::Email(e)) => format!("rfc822Name {e:?}"),
        Presented::San(GeneralName::Dns(d)) => format!("dNSName {d:?}"),
        Presented::San(GeneralName::Uri(u)) => format!("URI {u:?}"),
        Presented::San(GeneralName::Ip(ip)) => format!("iPAddress {ip:02x?}"),
        Presented::San(GeneralName::Directory(n)) => {
            format!(
                "directoryName \"{}\"",
                super::DistinguishedName::from_name(&n)
            )
        }
        Presented::San(GeneralName::Other(tag)) => format!("a GeneralName of form [{tag}]"),
        Presented::Subject(n) => {
            format!("subject \"{}\"", super::DistinguishedName::from_name(&n))
        }
        Presented::SubjectEmail(a) => format!(
            "subject emailAddress {:?}",
            String::from_utf8_lossy(a.value.content)
        ),
    }
}

/// The base names of a run of GeneralSubtree. RFC 5280: "the minimum MUST be zero, and
/// maximum MUST be absent"; as in webpki, a subtree that encodes either is malformed.
fn subtrees(content: &[u8]) -> impl Iterator<Item = Result<GeneralName<'_>, NcError>> + '_ {
    let mut r = Reader::new(content);
    let mut failed = false;
    std::iter::from_fn(move || {
        if r.is_empty() || failed {
            return None;
        }
        let one = (|| {
            let mut subtree = Reader::new(r.expect(der::SEQUENCE, "GeneralSubtree")?);
            let base = GeneralName::parse_tlv(subtree.read()?)?;
            subtree.finish("GeneralSubtree has minimum or maximum")?;
            Ok(base)
        })()
        .map_err(|e: der::DerError| NcError::Malformed(format!("a name constraint ({e})")));
        failed = one.is_err();
        Some(one)
    })
}

/// Whether `name` lies within the subtree `base` (both of the same form).
fn matches(name: Presented<'_>, base: GeneralName<'_>, excluded: bool) -> Result<bool, NcError> {
    match (name, base) {
        (Presented::San(GeneralName::Dns(p)), GeneralName::Dns(b)) => dns_matches(p, b, excluded),
        (Presented::San(GeneralName::Ip(p)), GeneralName::Ip(b)) => ip_matches(p, b),
        (Presented::San(GeneralName::Email(p)), GeneralName::Email(b)) => email_matches(p, b),
        (Presented::SubjectEmail(a), GeneralName::Email(b)) => {
            let text = a
                .text()
                .ok_or_else(|| NcError::Malformed("subject emailAddress is not text".into()))?;
            email_matches(text, b)
        }
        (Presented::San(GeneralName::Uri(p)), GeneralName::Uri(b)) => uri_matches(p, b),
        (
            Presented::Subject(p) | Presented::San(GeneralName::Directory(p)),
            GeneralName::Directory(b),
        ) => Ok(dn_within(p, b)),
        // A form we cannot compare: fail closed (RFC 5280: process it or reject).
        (_, GeneralName::Other(tag)) => Err(NcError::Violation(format!(
            "a name of form [{tag}] meets a constraint on that form, which is not processed"
        ))),
        _ => Ok(false),
    }
}

/// A DNS name's syntax, as webpki checks it for presented names (`wildcard`: a leftmost
/// `*` label is allowed) and for constraints (an empty constraint, or one with a leading
/// period, is allowed).
fn valid_dns(name: &str, presented: bool) -> bool {
    if name.len() > 253 {
        return false;
    }
    if !presented && name.is_empty() {
        return true;
    }
    let body = if presented {
        name.strip_prefix("*.").unwrap_or(name)
    } else {
        name.strip_prefix('.').unwrap_or(name)
    };
    let labels: Vec<&str> = body.split('.').collect();
    let last_numeric = labels
        .last()
        .is_some_and(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()));
    !last_numeric
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn ends_with_ci(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.get(s.len() - suffix.len()..)
            .is_some_and(|t| t.eq_ignore_ascii_case(suffix))
}

/// RFC 5280: "any DNS name that can be constructed by simply adding zero or more labels
/// to the left-hand side of the name satisfies the name constraint". A wildcard SAN is
/// within a permitted subtree only if the literal name is; for excluded subtrees it is
/// expanded, so `*.example.com` meets an exclusion of `foo.example.com` (CVE-2025-61727).
pub(crate) fn dns_matches(presented: &str, base: &str, excluded: bool) -> Result<bool, NcError> {
    if !valid_dns(presented, true) {
        return Err(NcError::Violation(format!(
            "dNSName {presented:?} is not a valid DNS name"
        )));
    }
    if !valid_dns(base, false) {
        return Err(NcError::Malformed(format!(
            "dNSName constraint {base:?} is not a valid DNS name"
        )));
    }
    if base.is_empty() {
        return Ok(true);
    }
    let within = |name: &str| {
        if let Some(dotted) = base.strip_prefix('.') {
            name.len() > dotted.len() && ends_with_ci(name, base)
        } else {
            name.eq_ignore_ascii_case(base)
                || (name.len() > base.len()
                    && ends_with_ci(name, base)
                    && name.as_bytes().get(name.len() - base.len() - 1) == Some(&b'.'))
        }
    };
    if within(presented) {
        return Ok(true);
    }
    if excluded {
        if let Some(rest) = presented.strip_prefix("*.") {
            // Some expansion `x.rest` of the wildcard is the base itself or below it.
            let base_parent = base.split_once('.').map(|(_, p)| p);
            return Ok(base_parent.is_some_and(|p| p.eq_ignore_ascii_case(rest)));
        }
    }
    Ok(false)
}

/// An iPAddress constraint is an address and a contiguous mask (8 or 32 bytes); an
/// address of the other family never matches.
pub(crate) fn ip_matches(presented: &[u8], base: &[u8]) -> Result<bool, NcError> {
    match (presented.len(), base.len()) {
        (4, 8) | (16, 32) => {}
        (4, 32) | (16, 8) => return Ok(false),
        (4 | 16, _) => {
            return Err(NcError::Malformed(format!(
                "iPAddress constraint of {} bytes (8 or 32 expected)",
                base.len()
            )))
        }
        _ => {
            return Err(NcError::Violation(format!(
                "iPAddress of {} bytes is not an address",
                presented.len()
            )))
        }
    }
    let (addr, mask) = base.split_at(base.len() / 2);
    let mut seen_zero = false;
    for bit in mask
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| b >> i & 1))
    {
        if bit == 0 {
            seen_zero = true;
        } else if seen_zero {
            return Err(NcError::Malformed(
                "iPAddress constraint mask is not contiguous".into(),
            ));
        }
    }
    Ok(presented
        .iter()
        .zip(addr)
        .zip(mask)
        .all(|((p, a), m)| p & m == a & m))
}

/// A mailbox `local@domain`: exactly one `@`, neither side empty.
fn mailbox(s: &str) -> Option<(&str, &str)> {
    let (local, domain) = s.split_once('@')?;
    (!local.is_empty() && !domain.is_empty() && !domain.contains('@')).then_some((local, domain))
}

/// RFC 5280: an rfc822Name constraint names a mailbox (`root@example.com`: local part
/// compared exactly, host case-insensitively), every mailbox on a host (`example.com`),
/// or every mailbox in a domain below it (`.example.com`). Characters such as `*` are
/// literal.
pub(crate) fn email_matches(presented: &str, base: &str) -> Result<bool, NcError> {
    let (p_local, p_domain) = mailbox(presented)
        .ok_or_else(|| NcError::Violation(format!("{presented:?} is not a valid mailbox")))?;
    if base.contains('@') {
        let (b_local, b_domain) = mailbox(base).ok_or_else(|| {
            NcError::Malformed(format!("rfc822Name constraint {base:?} is not a mailbox"))
        })?;
        return Ok(p_local == b_local && p_domain.eq_ignore_ascii_case(b_domain));
    }
    if !valid_dns(base, false) || base.is_empty() {
        return Err(NcError::Malformed(format!(
            "rfc822Name constraint {base:?} is not a host or domain"
        )));
    }
    Ok(if base.starts_with('.') {
        p_domain.len() > base.len() && ends_with_ci(p_domain, base)
    } else {
        p_domain.eq_ignore_ascii_case(base)
    })
}

/// The host of a URI's authority, if it is a fully qualified domain name (not an IP
/// literal, not absent): what RFC 5280 applies URI constraints to.
pub(crate) fn uri_host(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once(':')?;
    let mut chars = scheme.bytes();
    if !chars.next()?.is_ascii_alphabetic()
        || !chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let rest = rest.strip_prefix("//")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.starts_with('[') {
        return None; // an IP literal
    }
    let host = match hostport.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        Some(_) => return None,
        None => hostport,
    };
    let ipv4 = host.parse::<std::net::Ipv4Addr>().is_ok();
    (!host.is_empty() && !ipv4 && valid_dns(host, true) && !host.starts_with('*')).then_some(host)
}

/// RFC 5280: a URI constraint applies to the host part; `host.example.com` names one
/// host, `.example.com` any host below the domain (not the domain itself). A URI without
/// a host name (no authority, or an IP address) is refused when a URI constraint applies.
pub(crate) fn uri_matches(presented: &str, base: &str) -> Result<bool, NcError> {
    let host = uri_host(presented).ok_or_else(|| {
        NcError::Violation(format!(
            "URI {presented:?} has no host name, and a URI name constraint applies"
        ))
    })?;
    if base.is_empty() || !valid_dns(base, false) {
        return Err(NcError::Malformed(format!(
            "URI constraint {base:?} is not a host or domain"
        )));
    }
    Ok(if base.starts_with('.') {
        host.len() > base.len() && ends_with_ci(host, base)
    } else {
        host.eq_ignore_ascii_case(base)
    })
}

/// RFC 5280 §7.1 (as §6.1.3 applies it): a DN is within a directoryName subtree when the
/// subtree's RDNs are its leading RDNs. Attribute values compare as strings after
/// RFC 4518-style folding (case, surrounding and repeated spaces) when both are text,
/// byte for byte otherwise.
pub(crate) fn dn_within(name: Name<'_>, base: Name<'_>) -> bool {
    let mut names = name.rdns();
    for b in base.rdns() {
        let Some(n) = names.next() else {
            return false;
        };
        let mut b_attrs: Vec<Attribute<'_>> = b.attributes().collect();
        let n_attrs: Vec<Attribute<'_>> = n.attributes().collect();
        if b_attrs.len() != n_attrs.len() {
            return false;
        }
        for na in &n_attrs {
            match b_attrs.iter().position(|ba| attribute_eq(na, ba)) {
                Some(i) => {
                    b_attrs.swap_remove(i);
                }
                None => return false,
            }
        }
    }
    true
}

fn attribute_eq(a: &Attribute<'_>, b: &Attribute<'_>) -> bool {
    if a.oid != b.oid {
        return false;
    }
    if a.value.tag == b.value.tag && a.value.content == b.value.content {
        return true;
    }
    match (a.text(), b.text()) {
        (Some(x), Some(y)) => fold(x) == fold(y),
        _ => false,
    }
}

fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    //! One test per rule of RFC 5280 §4.2.1.10 (quoted), plus webpki's readings.
    use super::*;

    #[test]
    fn dns_adding_labels_to_the_left() {
        // "www.host.example.com would satisfy the constraint but host1.example.com would not."
        assert_eq!(
            dns_matches("www.host.example.com", "host.example.com", false),
            Ok(true)
        );
        assert_eq!(
            dns_matches("host.example.com", "host.example.com", false),
            Ok(true)
        );
        assert_eq!(
            dns_matches("host1.example.com", "host.example.com", false),
            Ok(false)
        );
        assert_eq!(
            dns_matches("HOST.Example.COM", "host.example.com", false),
            Ok(true)
        );
        assert_eq!(
            dns_matches("badexample.com", "example.com", false),
            Ok(false)
        );
        assert_eq!(dns_matches("anything.test", "", false), Ok(true));
    }

    #[test]
    fn dns_wildcards_are_literal_when_permitted_and_expanded_when_excluded() {
        assert_eq!(dns_matches("*.example.com", "example.com", false), Ok(true));
        assert_eq!(
            dns_matches("*.example.com", "foo.example.com", false),
            Ok(false)
        );
        assert_eq!(
            dns_matches("*.example.com", "foo.example.com", true),
            Ok(true)
        );
        assert_eq!(
            dns_matches("*.example.com", "a.b.example.com", true),
            Ok(false)
        );
        assert!(dns_matches("ex ample.com", "example.com", false).is_err());
        assert!(matches!(
            dns_matches("a.example.com", "*.example.com", false),
            Err(NcError::Malformed(_))
        ));
    }

    #[test]
    fn ip_address_and_mask() {
        // "192.0.2.0/24 ... represented as C0 00 02 00 FF FF FF 00"
        let net = [192, 0, 2, 0, 255, 255, 255, 0];
        assert_eq!(ip_matches(&[192, 0, 2, 77], &net), Ok(true));
        assert_eq!(ip_matches(&[192, 0, 3, 1], &net), Ok(false));
        let mut v6 = [0u8; 32];
        v6[16] = 0xff;
        assert_eq!(ip_matches(&[192, 0, 2, 1], &v6), Ok(false));
        assert!(ip_matches(&[192, 0, 2, 1], &[192, 0, 2, 0, 255, 0, 255, 0]).is_err());
        assert!(ip_matches(&[192, 0, 2, 1], &[192, 0, 2, 0]).is_err());
    }

    #[test]
    fn email_mailbox_host_and_domain() {
        // "a particular mailbox, all addresses at a particular host, or all mailboxes in
        // a domain"
        assert_eq!(
            email_matches("root@example.com", "root@example.com"),
            Ok(true)
        );
        assert_eq!(
            email_matches("root@EXAMPLE.com", "root@example.com"),
            Ok(true)
        );
        assert_eq!(
            email_matches("Root@example.com", "root@example.com"),
            Ok(false)
        );
        assert_eq!(email_matches("anyone@example.com", "example.com"), Ok(true));
        assert_eq!(
            email_matches("anyone@sub.example.com", "example.com"),
            Ok(false)
        );
        assert_eq!(
            email_matches("anyone@sub.example.com", ".example.com"),
            Ok(true)
        );
        assert_eq!(
            email_matches("anyone@example.com", ".example.com"),
            Ok(false)
        );
        // Asterisks are characters, not patterns.
        assert_eq!(email_matches("*@example.com", "*@example.com"), Ok(true));
        assert_eq!(
            email_matches("user@example.com", "*@example.com"),
            Ok(false)
        );
        assert_eq!(email_matches("*@example.com", "**@example.com"), Ok(false));
        assert!(matches!(
            email_matches("a@b@example.com", "example.com"),
            Err(NcError::Violation(_))
        ));
        assert!(matches!(
            email_matches("a@example.com", "x@y@example.com"),
            Err(NcError::Malformed(_))
        ));
    }

    #[test]
    fn uri_host_part_and_spiffe_trust_domains() {
        // "the constraint applies to the host part of the name"
        assert_eq!(
            uri_host("spiffe://prod.example.org/ns/a"),
            Some("prod.example.org")
        );
        assert_eq!(
            uri_host("https://user:pw@Host.Example.com:8443/x?y#z"),
            Some("Host.Example.com")
        );
        assert_eq!(uri_host("urn:uuid:1234"), None);
        assert_eq!(uri_host("https://192.0.2.1/"), None);
        assert_eq!(uri_host("https://[::1]/"), None);
        assert_eq!(uri_host("https://host:abc/"), None);
        assert_eq!(
            uri_matches("spiffe://prod.example.org/x", "prod.example.org"),
            Ok(true)
        );
        assert_eq!(
            uri_matches("spiffe://evil.org/x", "prod.example.org"),
            Ok(false)
        );
        assert_eq!(
            uri_matches("spiffe://prod.example.org.evil/x", "prod.example.org"),
            Ok(false)
        );
        // ".example.com is satisfied by host.example.com ... not by example.com"
        assert_eq!(
            uri_matches("https://host.example.com/", ".example.com"),
            Ok(true)
        );
        assert_eq!(
            uri_matches("https://example.com/", ".example.com"),
            Ok(false)
        );
        // "MUST reject the certificate" when the URI has no host name.
        assert!(matches!(
            uri_matches("urn:x:y", "example.com"),
            Err(NcError::Violation(_))
        ));
        assert!(matches!(
            uri_matches("https://10.0.0.1/", "example.com"),
            Err(NcError::Violation(_))
        ));
    }

    fn name(der: &[u8]) -> Name<'_> {
        Name::parse_der(der).unwrap()
    }

    /// A Name of single-attribute RDNs (OID value bytes, tag, text).
    fn encode(rdns: &[(&[u8], u8, &str)]) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut v = vec![tag, u8::try_from(body.len()).unwrap()];
            v.extend_from_slice(body);
            v
        }
        let mut seq = Vec::new();
        for (oid, tag, text) in rdns {
            let atv = [tlv(0x06, oid), tlv(*tag, text.as_bytes())].concat();
            seq.extend(tlv(0x31, &tlv(0x30, &atv)));
        }
        tlv(0x30, &seq)
    }

    #[test]
    fn directory_name_subtrees_are_leading_rdns() {
        const O: &[u8] = &[0x55, 0x04, 0x0a];
        const CN: &[u8] = &[0x55, 0x04, 0x03];
        let base = encode(&[(O, 0x13, "Example Corp")]);
        let inside = encode(&[(O, 0x0c, "example  corp"), (CN, 0x0c, "alice")]);
        let outside = encode(&[(O, 0x13, "Other Corp"), (CN, 0x0c, "alice")]);
        let shorter = encode(&[]);
        assert!(dn_within(name(&inside), name(&base)));
        assert!(!dn_within(name(&outside), name(&base)));
        assert!(!dn_within(name(&shorter), name(&base)));
        assert!(dn_within(name(&base), name(&base)));
    }
}
