//! Distinguished names as parsed attribute sequences, never as raw strings.
//!
//! Matching a DN by string is fooled by formatting (`CN=a,O=b` vs `CN=a, O=b`) and by
//! values that contain separators (a CN of `x,O=MyOrg`). A [`DistinguishedName`] keeps the
//! RDN sequence with attribute types as OIDs, so comparisons are structural.

use std::fmt;

/// One `type=value` pair of a relative distinguished name.
#[derive(Clone, Debug)]
pub struct Attribute {
    /// The attribute type as a dotted OID, e.g. `2.5.4.3` for commonName.
    pub oid: String,
    /// The attribute value as text (a non-string value is kept as `#` + hex of its DER).
    pub value: String,
}

/// A distinguished name: RDNs in ASN.1 order (most general first, e.g. `C`, then `O`,
/// then `CN`); each RDN has one or more attributes.
///
/// ```
/// use portcullis::identity::DistinguishedName;
/// let a = DistinguishedName::parse("CN=api,O=MyOrg").unwrap();
/// let b = DistinguishedName::parse("cn=API, o=myorg").unwrap();
/// assert!(a.matches(&b));
/// assert_eq!(a.to_string(), "CN=api,O=MyOrg");
/// // A CN that merely contains ",O=MyOrg" is one attribute, not two.
/// let c = DistinguishedName::parse(r"CN=x\,O=MyOrg").unwrap();
/// assert!(!c.matches(&DistinguishedName::parse("CN=x,O=MyOrg").unwrap()));
/// ```
#[derive(Clone, Debug, Default)]
pub struct DistinguishedName {
    rdns: Vec<Vec<Attribute>>,
}

/// Why an RFC 4514 string could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnParseError {
    /// What is wrong, naming the offending part.
    pub message: String,
}

impl fmt::Display for DnParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid distinguished name: {}", self.message)
    }
}

impl std::error::Error for DnParseError {}

/// Short names from RFC 4514 §3 plus the common extras, with their OIDs.
const NAMES: &[(&str, &str)] = &[
    ("CN", "2.5.4.3"),
    ("L", "2.5.4.7"),
    ("ST", "2.5.4.8"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("C", "2.5.4.6"),
    ("STREET", "2.5.4.9"),
    ("DC", "0.9.2342.19200300.100.1.25"),
    ("UID", "0.9.2342.19200300.100.1.1"),
    ("serialNumber", "2.5.4.5"),
    ("emailAddress", "1.2.840.113549.1.9.1"),
    ("title", "2.5.4.12"),
    ("GN", "2.5.4.42"),
    ("SN", "2.5.4.4"),
];

/// The dotted OID for an attribute type name (`CN`, `o`, `2.5.4.3`), if known or numeric.
pub fn attribute_oid(name: &str) -> Option<String> {
    if let Some((_, oid)) = NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        return Some((*oid).to_owned());
    }
    if name.eq_ignore_ascii_case("E") || name.eq_ignore_ascii_case("email") {
        return Some("1.2.840.113549.1.9.1".to_owned());
    }
    let numeric = !name.is_empty()
        && name.split('.').count() >= 2
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    numeric.then(|| name.to_owned())
}

fn short_name(oid: &str) -> Option<&'static str> {
    NAMES.iter().find(|(_, o)| *o == oid).map(|(n, _)| *n)
}

/// Values compare case-insensitively with insignificant whitespace removed
/// (RFC 4518 caseIgnoreMatch, simplified to what certificates use in practice).
fn normalize(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl Attribute {
    fn matches(&self, other: &Attribute) -> bool {
        self.oid == other.oid && normalize(&self.value) == normalize(&other.value)
    }
}

impl DistinguishedName {
    /// Builds a DN from RDNs in ASN.1 order (most general first).
    pub fn from_rdns(rdns: Vec<Vec<Attribute>>) -> Self {
        Self { rdns }
    }

    /// Reads a DER-encoded X.501 Name (a certificate's subject or issuer, a CRL's issuer).
    ///
    /// ```
    /// use portcullis::identity::DistinguishedName;
    /// // SEQUENCE { SET { SEQUENCE { 2.5.4.3, UTF8String "api" } } }
    /// let der = [0x30, 0x0e, 0x31, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03,
    ///            0x0c, 0x03, b'a', b'p', b'i'];
    /// assert_eq!(DistinguishedName::from_der(&der).unwrap().to_string(), "CN=api");
    /// assert!(DistinguishedName::from_der(&der[..10]).is_err());
    /// ```
    pub fn from_der(der: &[u8]) -> Result<Self, DnParseError> {
        let name = super::cert::Name::parse_der(der).map_err(|e| DnParseError {
            message: format!("not a DER Name ({e})"),
        })?;
        Ok(Self::from_name(&name))
    }

    /// Reads a Name already checked by the certificate reader.
    pub(crate) fn from_name(name: &super::cert::Name<'_>) -> Self {
        let rdns = name
            .rdns()
            .map(|rdn| {
                rdn.attributes()
                    .map(|atv| Attribute {
                        oid: super::der::oid_string(atv.oid),
                        value: match atv.text() {
                            Some(s) => s.to_owned(),
                            None => format!("#{}", hex(atv.value.content)),
                        },
                    })
                    .collect()
            })
            .collect();
        Self { rdns }
    }

    /// Parses an RFC 4514 string (`CN=api,O=MyOrg,C=DE`: most specific first). Spaces
    /// around `,`, `+` and `=` are tolerated; `\,` `\+` `\"` `\\` and `\HH` escapes decode.
    pub fn parse(s: &str) -> Result<Self, DnParseError> {
        let err = |m: String| DnParseError { message: m };
        if s.trim().is_empty() {
            return Err(err("empty string".to_owned()));
        }
        let mut rdns: Vec<Vec<Attribute>> = Vec::new();
        let mut rdn: Vec<Attribute> = Vec::new();
        let mut key = String::new();
        let mut value: Vec<u8> = Vec::new();
        let mut in_value = false;
        let bytes = s.as_bytes();
        let mut i = 0;
        let finish = |key: &mut String, value: &mut Vec<u8>, rdn: &mut Vec<Attribute>| {
            let name = key.trim();
            let oid = attribute_oid(name).ok_or_else(|| DnParseError {
                message: format!("unknown attribute type {name:?}"),
            })?;
            let text = String::from_utf8(std::mem::take(value)).map_err(|_| DnParseError {
                message: format!("value of {name} is not UTF-8"),
            })?;
            let text = text.trim().to_owned();
            if text.is_empty() {
                return Err(DnParseError {
                    message: format!("empty value for {name}"),
                });
            }
            rdn.push(Attribute { oid, value: text });
            key.clear();
            Ok(())
        };
        while let Some(&b) = bytes.get(i) {
            if !in_value {
                match b {
                    b'=' => in_value = true,
                    b',' | b'+' => {
                        return Err(err(format!("attribute without '=' before byte {i}")))
                    }
                    _ => key.push(b as char),
                }
                i += 1;
                continue;
            }
            match b {
                b'\\' => {
                    let next = *bytes
                        .get(i + 1)
                        .ok_or_else(|| err("dangling '\\' at end".to_owned()))?;
                    if next.is_ascii_hexdigit() {
                        let pair = bytes
                            .get(i + 1..i + 3)
                            .ok_or_else(|| err("truncated \\HH escape".to_owned()))?;
                        let hexstr =
                            std::str::from_utf8(pair).map_err(|_| err("bad escape".to_owned()))?;
                        let v = u8::from_str_radix(hexstr, 16)
                            .map_err(|_| err(format!("bad escape \\{hexstr}")))?;
                        value.push(v);
                        i += 3;
                    } else {
                        value.push(next);
                        i += 2;
                    }
                }
                b',' | b'+' => {
                    finish(&mut key, &mut value, &mut rdn)?;
                    if b == b',' {
                        rdns.push(std::mem::take(&mut rdn));
                    }
                    in_value = false;
                    i += 1;
                }
                _ => {
                    value.push(b);
                    i += 1;
                }
            }
        }
        if !in_value {
            return Err(err(format!("attribute {:?} has no '='", key.trim())));
        }
        finish(&mut key, &mut value, &mut rdn)?;
        rdns.push(rdn);
        rdns.reverse(); // RFC 4514 writes the most specific RDN first
        Ok(Self { rdns })
    }

    /// RDNs in ASN.1 order (most general first).
    pub fn rdns(&self) -> &[Vec<Attribute>] {
        &self.rdns
    }

    /// Every value of the attribute with this OID, most specific first.
    pub fn values(&self, oid: &str) -> impl Iterator<Item = &str> + '_ {
        let oid = oid.to_owned();
        self.rdns
            .iter()
            .rev()
            .flat_map(|rdn| rdn.iter())
            .filter(move |a| a.oid == oid)
            .map(|a| a.value.as_str())
    }

    /// The most specific commonName, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.values("2.5.4.3").next()
    }

    /// Structural equality: same RDN sequence, same attribute types (multi-valued RDNs in
    /// any order), values equal ignoring case and insignificant whitespace.
    pub fn matches(&self, other: &DistinguishedName) -> bool {
        self.rdns.len() == other.rdns.len()
            && self.rdns.iter().zip(&other.rdns).all(|(a, b)| {
                a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| x.matches(y)))
            })
    }

    /// Whether `self` is empty (a certificate with an empty subject, SAN-only).
    pub fn is_empty(&self) -> bool {
        self.rdns.is_empty()
    }
}

impl PartialEq for DistinguishedName {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other)
    }
}

impl Eq for DistinguishedName {}

fn escape_value(v: &str, out: &mut String) {
    let len = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == len && c == ' ');
        if c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\{b:02X}"));
            }
            continue;
        }
        if special && !(v.starts_with('#') && i == 0 && v.len() > 1 && is_hex_form(v)) {
            out.push('\\');
        }
        out.push(c);
    }
}

fn is_hex_form(v: &str) -> bool {
    v.len() > 1 && v[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl fmt::Display for DistinguishedName {
    /// RFC 4514: most specific RDN first, short names where known, dotted OIDs otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for (i, rdn) in self.rdns.iter().rev().enumerate() {
            if i > 0 {
                out.push(',');
            }
            for (j, atv) in rdn.iter().enumerate() {
                if j > 0 {
                    out.push('+');
                }
                out.push_str(short_name(&atv.oid).unwrap_or(&atv.oid));
                out.push('=');
                escape_value(&atv.value, &mut out);
            }
        }
        f.write_str(&out)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_does_not_matter() {
        let a = DistinguishedName::parse("CN=a,O=b").unwrap();
        assert!(a.matches(&DistinguishedName::parse("CN=a, O=b").unwrap()));
        assert!(a.matches(&DistinguishedName::parse(" cn = A ,o=B").unwrap()));
        assert!(a.matches(&DistinguishedName::parse("2.5.4.3=a,2.5.4.10=b").unwrap()));
        assert!(!a.matches(&DistinguishedName::parse("O=b,CN=a").unwrap()));
        assert!(!a.matches(&DistinguishedName::parse("CN=a").unwrap()));
    }

    #[test]
    fn embedded_separators_stay_inside_the_value() {
        let dn = DistinguishedName::parse(r"CN=evil\,O=MyOrg").unwrap();
        assert_eq!(dn.rdns().len(), 1);
        assert_eq!(dn.common_name(), Some("evil,O=MyOrg"));
        assert_eq!(dn.to_string(), r"CN=evil\,O=MyOrg");
        let hexed = DistinguishedName::parse(r"CN=evil\2CO=MyOrg").unwrap();
        assert!(dn.matches(&hexed));
    }

    #[test]
    fn multi_valued_rdns() {
        let a = DistinguishedName::parse("CN=a+UID=1,O=b").unwrap();
        let b = DistinguishedName::parse("UID=1+CN=a,O=b").unwrap();
        assert!(a.matches(&b));
        assert_eq!(a.rdns()[1].len(), 2);
    }

    #[test]
    fn malformed_strings_are_errors() {
        for bad in [
            "", "CN", "CN=", "=a", "XX=a", "CN=a,", "CN=a\\", "CN=a\\4", ",CN=a",
        ] {
            assert!(
                DistinguishedName::parse(bad).is_err(),
                "{bad:?} should fail"
            );
        }
    }
}
