//! A zero-copy view of one X.509 certificate: the fields the profile checks and
//! [`super::Identity`] need, read in one strict pass.
//!
//! webpki parses certificates too, but exposes few fields; a general parser (x509-parser)
//! builds a full object model and costs about 2 µs per certificate, which on a cold
//! verification is a large share of the work beyond the signature checks. This reader
//! builds nothing it does not need: names, SANs and extensions stay borrowed slices,
//! walked again only when asked.
//!
//! Structure errors (the certificate is not DER) fail [`Cert::parse`]; a known extension
//! whose *content* is malformed is recorded in [`Extensions::malformed`] instead, so the
//! profile can name it.

use super::der::{self, DerError, DerResult, Reader, Tlv};

/// `2.5.29.x`: the id-ce extensions.
const ID_CE: [u8; 2] = [0x55, 0x1d];
const CE_SUBJECT_KEY_ID: u8 = 14;
const CE_KEY_USAGE: u8 = 15;
const CE_SUBJECT_ALT_NAME: u8 = 17;
const CE_ISSUER_ALT_NAME: u8 = 18;
const CE_BASIC_CONSTRAINTS: u8 = 19;
const CE_CRL_NUMBER: u8 = 20;
const CE_REASON_CODE: u8 = 21;
const CE_INVALIDITY_DATE: u8 = 24;
const CE_ISSUING_DISTRIBUTION_POINT: u8 = 28;
const CE_NAME_CONSTRAINTS: u8 = 30;
const CE_CRL_DISTRIBUTION_POINTS: u8 = 31;
const CE_CERTIFICATE_POLICIES: u8 = 32;
const CE_POLICY_MAPPINGS: u8 = 33;
const CE_AUTHORITY_KEY_ID: u8 = 35;
const CE_POLICY_CONSTRAINTS: u8 = 36;
const CE_EXT_KEY_USAGE: u8 = 37;
const CE_INHIBIT_ANY_POLICY: u8 = 54;
/// Other extensions a verifier commonly understands (so a critical one is not "unknown"):
/// authorityInfoAccess, the CT SCT list, Netscape cert type and comment.
const OTHER_KNOWN: [&[u8]; 4] = [
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01],
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02],
    &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x01, 0x01],
    &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x01, 0x0d],
];
/// anyExtendedKeyUsage, 2.5.29.37.0.
const ANY_EKU: [u8; 4] = [0x55, 0x1d, 0x25, 0x00];
/// commonName, 2.5.4.3.
pub(crate) const OID_COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];

/// keyUsage bits (RFC 5280 4.2.1.3), numbered as in the BIT STRING.
pub(crate) mod key_usage {
    pub(crate) const DIGITAL_SIGNATURE: u16 = 1 << 0;
    pub(crate) const KEY_CERT_SIGN: u16 = 1 << 5;
    pub(crate) const CRL_SIGN: u16 = 1 << 6;
}

/// An extension's payload plus its critical flag.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flagged<T> {
    pub(crate) critical: bool,
    pub(crate) value: T,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct BasicConstraints {
    pub(crate) ca: bool,
    pub(crate) path_len: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthorityKeyId<'a> {
    pub(crate) key_id: Option<&'a [u8]>,
    /// authorityCertIssuer or authorityCertSerialNumber present.
    pub(crate) issuer_or_serial: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct NameConstraints<'a> {
    /// permitted plus excluded subtrees.
    pub(crate) subtrees: usize,
    /// The first dNSName base with a leading period, if any.
    pub(crate) dotted_dns: Option<&'a str>,
    /// The permittedSubtrees and excludedSubtrees contents (each a run of GeneralSubtree).
    pub(crate) permitted: Option<&'a [u8]>,
    pub(crate) excluded: Option<&'a [u8]>,
    /// A subtree constrains a form rustls-webpki does not process (rfc822Name,
    /// directoryName, uniformResourceIdentifier): see [`super::constraints`].
    pub(crate) beyond_webpki: bool,
    /// Which name forms (bit = GeneralName tag number) any subtree constrains.
    pub(crate) forms: u16,
}

/// The extensions the profile reads, parsed; plus what was wrong with the rest.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Extensions<'a> {
    /// Whether the certificate has an extensions field at all.
    pub(crate) present: bool,
    /// The OID (value bytes) of the first extension that appears twice.
    pub(crate) duplicate: Option<&'a [u8]>,
    /// The first known extension whose content does not parse, and why.
    pub(crate) malformed: Option<(&'a [u8], DerError)>,
    /// The first critical extension this reader does not know.
    pub(crate) unknown_critical: Option<&'a [u8]>,
    /// A critical extension rustls-webpki does not process (it processes keyUsage,
    /// subjectAltName, basicConstraints, nameConstraints, cRLDistributionPoints and
    /// extKeyUsage), so it refuses the certificate.
    pub(crate) critical_beyond_webpki: bool,
    pub(crate) basic_constraints: Option<Flagged<BasicConstraints>>,
    pub(crate) key_usage: Option<Flagged<u16>>,
    /// Whether extKeyUsage includes anyExtendedKeyUsage.
    pub(crate) ext_key_usage: Option<Flagged<bool>>,
    /// The extKeyUsage SEQUENCE's value bytes (a run of checked OIDs).
    pub(crate) ext_key_usage_oids: Option<&'a [u8]>,
    pub(crate) subject_alt_name: Option<Flagged<GeneralNames<'a>>>,
    pub(crate) authority_key_id: Option<Flagged<AuthorityKeyId<'a>>>,
    pub(crate) subject_key_id: Option<Flagged<&'a [u8]>>,
    pub(crate) name_constraints: Option<Flagged<NameConstraints<'a>>>,
    /// policyConstraints' critical flag.
    pub(crate) policy_constraints: Option<bool>,
    /// The cRLDistributionPoints value (a checked TLV), for CRL scope.
    pub(crate) crl_distribution_points: Option<&'a [u8]>,
}

/// The subject public key, split.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublicKeyInfo<'a> {
    /// The algorithm OID's value bytes.
    pub(crate) algorithm: &'a [u8],
    /// The algorithm parameters (for EC keys, the curve OID), if any.
    pub(crate) parameters: Option<Tlv<'a>>,
    /// The BIT STRING's bits.
    pub(crate) key: &'a [u8],
}

/// One certificate, borrowed from its DER.
#[derive(Debug, Clone)]
pub(crate) struct Cert<'a> {
    /// The raw version number (0 = v1, 2 = v3).
    pub(crate) version: u64,
    /// The serial number's INTEGER value bytes (two's complement, as encoded).
    pub(crate) serial: &'a [u8],
    /// The TBS `signature` AlgorithmIdentifier, whole.
    pub(crate) tbs_signature: &'a [u8],
    /// The outer `signatureAlgorithm`, whole.
    pub(crate) signature_algorithm: &'a [u8],
    /// The TBSCertificate, whole: what the issuer signed.
    pub(crate) tbs: &'a [u8],
    /// The signatureValue's bits.
    pub(crate) signature: &'a [u8],
    pub(crate) issuer: Name<'a>,
    pub(crate) subject: Name<'a>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) public_key: PublicKeyInfo<'a>,
    /// The subjectPublicKeyInfo SEQUENCE's value bytes (what a trust anchor holds).
    pub(crate) spki: &'a [u8],
    pub(crate) extensions: Extensions<'a>,
}

impl<'a> Cert<'a> {
    /// Parses one DER certificate; trailing bytes are an error.
    pub(crate) fn parse(der: &'a [u8]) -> DerResult<Self> {
        let mut outer = Reader::new(der);
        let cert = outer.expect(der::SEQUENCE, "not a certificate (SEQUENCE expected)")?;
        outer.finish("trailing bytes after the certificate")?;
        let mut cert = Reader::new(cert);
        let tbs_tlv = cert.expect_tlv(der::SEQUENCE, "TBSCertificate is not a SEQUENCE")?;
        let tbs = tbs_tlv.content;
        let signature_algorithm = cert
            .expect_tlv(der::SEQUENCE, "signatureAlgorithm is not a SEQUENCE")?
            .raw;
        let signature =
            der::bit_string(cert.expect(der::BIT_STRING, "signatureValue is not a BIT STRING")?)?;
        cert.finish("trailing fields after signatureValue")?;

        let mut tbs = Reader::new(tbs);
        let version = match tbs.optional(der::context_constructed(0))? {
            Some(v) => {
                let n = der::single(v.content, der::INTEGER, "version is not an INTEGER")?;
                u64::from(der::small_unsigned(n)?)
            }
            None => 0,
        };
        let serial = tbs.expect(der::INTEGER, "serialNumber is not an INTEGER")?;
        if serial.is_empty() {
            return Err(DerError("empty serialNumber"));
        }
        let tbs_signature = tbs
            .expect_tlv(der::SEQUENCE, "signature is not an AlgorithmIdentifier")?
            .raw;
        let issuer = Name::parse(tbs.expect_tlv(der::SEQUENCE, "issuer is not a Name")?)?;
        let mut validity = Reader::new(tbs.expect(der::SEQUENCE, "validity is not a SEQUENCE")?);
        let not_before = der::time(&validity.read()?)?;
        let not_after = der::time(&validity.read()?)?;
        validity.finish("trailing fields in validity")?;
        let subject = Name::parse(tbs.expect_tlv(der::SEQUENCE, "subject is not a Name")?)?;
        let spki = tbs.expect(der::SEQUENCE, "subjectPublicKeyInfo expected")?;
        let public_key = parse_spki(spki)?;
        // issuerUniqueID [1] and subjectUniqueID [2]: BIT STRINGs nobody reads.
        for n in [1, 2] {
            if let Some(id) = tbs.optional(der::context(n))? {
                der::bit_string(id.content)?;
            }
        }
        let extensions = match tbs.optional(der::context_constructed(3))? {
            Some(wrapper) => Extensions::parse(der::single(
                wrapper.content,
                der::SEQUENCE,
                "extensions is not a SEQUENCE",
            )?)?,
            None => Extensions::default(),
        };
        tbs.finish("trailing fields in TBSCertificate")?;
        Ok(Self {
            version,
            serial,
            tbs_signature,
            signature_algorithm,
            tbs: tbs_tlv.raw,
            signature,
            issuer,
            subject,
            not_before,
            not_after,
            public_key,
            spki,
            extensions,
        })
    }

    /// Subject and issuer are the same name (byte for byte).
    pub(crate) fn is_self_issued(&self) -> bool {
        self.subject.raw == self.issuer.raw
    }

    pub(crate) fn is_ca(&self) -> bool {
        self.extensions
            .basic_constraints
            .is_some_and(|bc| bc.value.ca)
    }

    /// keyUsage bits, if the extension is present.
    pub(crate) fn key_usage(&self) -> Option<u16> {
        self.extensions.key_usage.map(|ku| ku.value)
    }

    /// The SAN entries (empty without a SAN extension).
    pub(crate) fn san(&self) -> GeneralNames<'a> {
        self.extensions
            .subject_alt_name
            .map_or(GeneralNames { content: &[] }, |san| san.value)
    }
}

fn parse_spki(content: &[u8]) -> DerResult<PublicKeyInfo<'_>> {
    let mut spki = Reader::new(content);
    let mut alg = Reader::new(spki.expect(der::SEQUENCE, "AlgorithmIdentifier expected")?);
    let algorithm = der::oid(alg.expect(der::OID, "algorithm OID expected")?)?;
    let parameters = if alg.is_empty() {
        None
    } else {
        Some(alg.read()?)
    };
    alg.finish("trailing fields in AlgorithmIdentifier")?;
    let key = der::bit_string(spki.expect(der::BIT_STRING, "subjectPublicKey expected")?)?;
    spki.finish("trailing fields in subjectPublicKeyInfo")?;
    Ok(PublicKeyInfo {
        algorithm,
        parameters,
        key,
    })
}

impl<'a> Extensions<'a> {
    fn parse(content: &'a [u8]) -> DerResult<Self> {
        let mut out = Extensions {
            present: true,
            ..Extensions::default()
        };
        let mut seen = SeenOids::default();
        let mut list = Reader::new(content);
        while !list.is_empty() {
            let mut ext = Reader::new(list.expect(der::SEQUENCE, "Extension is not a SEQUENCE")?);
            let oid = der::oid(ext.expect(der::OID, "extension OID expected")?)?;
            let critical = match ext.optional(der::BOOLEAN)? {
                Some(b) => der::boolean(b.content)?,
                None => false,
            };
            let value = ext.expect(der::OCTET_STRING, "extnValue is not an OCTET STRING")?;
            ext.finish("trailing fields in Extension")?;
            if !seen.insert(oid) {
                out.duplicate.get_or_insert(oid);
            }
            let webpki_processes = matches!(
                oid,
                [
                    0x55,
                    0x1d,
                    CE_KEY_USAGE | CE_SUBJECT_ALT_NAME | CE_BASIC_CONSTRAINTS
                ] | [
                    0x55,
                    0x1d,
                    CE_NAME_CONSTRAINTS | CE_CRL_DISTRIBUTION_POINTS | CE_EXT_KEY_USAGE
                ]
            );
            out.critical_beyond_webpki |= critical && !webpki_processes;
            if let Err(e) = out.record(oid, critical, value) {
                out.malformed.get_or_insert((oid, e));
            }
        }
        Ok(out)
    }

    /// Parses one extension's value into its field (the first of duplicates wins).
    fn record(&mut self, oid: &'a [u8], critical: bool, value: &'a [u8]) -> DerResult<()> {
        let id = match oid {
            [0x55, 0x1d, id] => *id,
            _ => {
                if OTHER_KNOWN.contains(&oid) {
                    well_formed(value)?;
                } else if critical {
                    self.unknown_critical.get_or_insert(oid);
                }
                return Ok(());
            }
        };
        debug_assert_eq!(oid.get(..2), Some(&ID_CE[..]));
        match id {
            CE_BASIC_CONSTRAINTS => {
                let bc = basic_constraints(value)?;
                self.basic_constraints.get_or_insert(Flagged {
                    critical,
                    value: bc,
                });
            }
            CE_KEY_USAGE => {
                let ku = key_usage_bits(value)?;
                self.key_usage.get_or_insert(Flagged {
                    critical,
                    value: ku,
                });
            }
            CE_EXT_KEY_USAGE => {
                let any = ext_key_usage(value)?;
                self.ext_key_usage.get_or_insert(Flagged {
                    critical,
                    value: any,
                });
                self.ext_key_usage_oids.get_or_insert(der::single(
                    value,
                    der::SEQUENCE,
                    "extKeyUsage",
                )?);
            }
            CE_SUBJECT_ALT_NAME => {
                let names = GeneralNames::parse(value)?;
                self.subject_alt_name.get_or_insert(Flagged {
                    critical,
                    value: names,
                });
            }
            CE_AUTHORITY_KEY_ID => {
                let aki = authority_key_id(value)?;
                self.authority_key_id.get_or_insert(Flagged {
                    critical,
                    value: aki,
                });
            }
            CE_SUBJECT_KEY_ID => {
                let ski = der::single(value, der::OCTET_STRING, "subjectKeyIdentifier")?;
                self.subject_key_id.get_or_insert(Flagged {
                    critical,
                    value: ski,
                });
            }
            CE_NAME_CONSTRAINTS => {
                let nc = name_constraints(value)?;
                self.name_constraints.get_or_insert(Flagged {
                    critical,
                    value: nc,
                });
            }
            CE_POLICY_CONSTRAINTS => {
                policy_constraints(value)?;
                self.policy_constraints.get_or_insert(critical);
            }
            CE_ISSUER_ALT_NAME => {
                GeneralNames::parse(value)?;
            }
            CE_CRL_DISTRIBUTION_POINTS => {
                well_formed(value)?;
                self.crl_distribution_points.get_or_insert(value);
            }
            CE_CERTIFICATE_POLICIES
            | CE_POLICY_MAPPINGS
            | CE_INHIBIT_ANY_POLICY
            | CE_CRL_NUMBER
            | CE_REASON_CODE
            | CE_INVALIDITY_DATE
            | CE_ISSUING_DISTRIBUTION_POINT => well_formed(value)?,
            _ if critical => {
                self.unknown_critical.get_or_insert(oid);
            }
            _ => {}
        }
        Ok(())
    }
}

/// The extension OIDs seen so far: on the stack for the handful real certificates carry,
/// in a hash set beyond that (a hostile certificate may carry thousands).
#[derive(Default)]
struct SeenOids<'a> {
    first: [&'a [u8]; 16],
    count: usize,
    more: std::collections::HashSet<&'a [u8]>,
}

impl<'a> SeenOids<'a> {
    /// Records `oid`; false if it was already there.
    fn insert(&mut self, oid: &'a [u8]) -> bool {
        let stacked = self.first.get(..self.count).unwrap_or(&[]);
        if stacked.contains(&oid) || self.more.contains(oid) {
            return false;
        }
        match self.first.get_mut(self.count) {
            Some(slot) => {
                *slot = oid;
                self.count += 1;
            }
            None => {
                self.more.insert(oid);
            }
        }
        true
    }
}

/// A value this reader does not interpret must still be exactly one DER TLV.
fn well_formed(value: &[u8]) -> DerResult<()> {
    let mut r = Reader::new(value);
    r.read()?;
    r.finish("trailing bytes in extension value")
}

fn basic_constraints(value: &[u8]) -> DerResult<BasicConstraints> {
    let mut r = Reader::new(der::single(value, der::SEQUENCE, "basicConstraints")?);
    let ca = match r.optional(der::BOOLEAN)? {
        Some(b) => der::boolean(b.content)?,
        None => false,
    };
    let path_len = match r.optional(der::INTEGER)? {
        Some(n) => Some(der::small_unsigned(n.content)?),
        None => None,
    };
    r.finish("trailing fields in basicConstraints")?;
    Ok(BasicConstraints { ca, path_len })
}

fn key_usage_bits(value: &[u8]) -> DerResult<u16> {
    let bits = der::bit_string(der::single(value, der::BIT_STRING, "keyUsage")?)?;
    let byte = |i: usize| u16::from(bits.get(i).copied().unwrap_or(0).reverse_bits());
    Ok(byte(0) | (byte(1) << 8))
}

fn ext_key_usage(value: &[u8]) -> DerResult<bool> {
    let mut r = Reader::new(der::single(value, der::SEQUENCE, "extKeyUsage")?);
    let mut any = false;
    while !r.is_empty() {
        let oid = der::oid(r.expect(der::OID, "extKeyUsage holds a non-OID")?)?;
        any |= oid == ANY_EKU;
    }
    Ok(any)
}

fn authority_key_id(value: &[u8]) -> DerResult<AuthorityKeyId<'_>> {
    let mut r = Reader::new(der::single(value, der::SEQUENCE, "authorityKeyIdentifier")?);
    let key_id = r.optional(der::context(0))?.map(|t| t.content);
    let issuer = r.optional(der::context_constructed(1))?;
    if let Some(issuer) = issuer {
        GeneralNames::parse_content(issuer.content)?;
    }
    let serial = r.optional(der::context(2))?;
    if let Some(serial) = serial {
        der::integer(serial.content)?;
    }
    r.finish("trailing fields in authorityKeyIdentifier")?;
    Ok(AuthorityKeyId {
        key_id,
        issuer_or_serial: issuer.is_some() || serial.is_some(),
    })
}

fn name_constraints(value: &[u8]) -> DerResult<NameConstraints<'_>> {
    name_constraints_content(der::single(value, der::SEQUENCE, "nameConstraints")?)
}

/// A NameConstraints SEQUENCE's value bytes (what a webpki trust anchor holds).
pub(crate) fn name_constraints_content(content: &[u8]) -> DerResult<NameConstraints<'_>> {
    let mut r = Reader::new(content);
    let mut out = NameConstraints {
        subtrees: 0,
        dotted_dns: None,
        permitted: None,
        excluded: None,
        beyond_webpki: false,
        forms: 0,
    };
    for n in [0, 1] {
        let Some(trees) = r.optional(der::context_constructed(n))? else {
            continue;
        };
        if n == 0 {
            out.permitted = Some(trees.content);
        } else {
            out.excluded = Some(trees.content);
        }
        let mut trees = Reader::new(trees.content);
        while !trees.is_empty() {
            let mut subtree = Reader::new(trees.expect(der::SEQUENCE, "GeneralSubtree")?);
            let base = GeneralName::parse(subtree.read()?)?;
            if let Some(min) = subtree.optional(der::context(0))? {
                der::small_unsigned(min.content)?;
            }
            if let Some(max) = subtree.optional(der::context(1))? {
                der::small_unsigned(max.content)?;
            }
            subtree.finish("trailing fields in GeneralSubtree")?;
            out.forms |= 1 << base.form();
            match base {
                GeneralName::Dns(d) if d.starts_with('.') => {
                    out.dotted_dns.get_or_insert(d);
                }
                GeneralName::Email(_) | GeneralName::Uri(_) | GeneralName::Directory(_) => {
                    out.beyond_webpki = true;
                }
                _ => {}
            }
            out.subtrees += 1;
        }
    }
    r.finish("trailing fields in nameConstraints")?;
    Ok(out)
}

fn policy_constraints(value: &[u8]) -> DerResult<()> {
    let mut r = Reader::new(der::single(value, der::SEQUENCE, "policyConstraints")?);
    for n in [0, 1] {
        if let Some(skip) = r.optional(der::context(n))? {
            der::small_unsigned(skip.content)?;
        }
    }
    r.finish("trailing fields in policyConstraints")
}

/// A GeneralName, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GeneralName<'a> {
    Email(&'a str),
    Dns(&'a str),
    Uri(&'a str),
    /// The raw address bytes (4 or 16 for an address; constraints use 8 or 32).
    Ip(&'a [u8]),
    /// directoryName.
    Directory(Name<'a>),
    /// otherName, x400Address, ediPartyName, registeredID: the context tag number.
    Other(u8),
}

impl<'a> GeneralName<'a> {
    /// The name form: the GeneralName's context tag number.
    pub(crate) fn form(&self) -> u8 {
        match self {
            Self::Email(_) => 1,
            Self::Dns(_) => 2,
            Self::Directory(_) => 4,
            Self::Uri(_) => 6,
            Self::Ip(_) => 7,
            Self::Other(tag) => *tag,
        }
    }

    /// One GeneralName TLV, checked.
    pub(crate) fn parse_tlv(tlv: Tlv<'a>) -> DerResult<Self> {
        Self::parse(tlv)
    }

    fn parse(tlv: Tlv<'a>) -> DerResult<Self> {
        let text = |bytes: &'a [u8]| {
            std::str::from_utf8(bytes).map_err(|_| DerError("GeneralName text is not UTF-8"))
        };
        Ok(match tlv.tag {
            0x81 => Self::Email(text(tlv.content)?),
            0x82 => Self::Dns(text(tlv.content)?),
            0x86 => Self::Uri(text(tlv.content)?),
            0x87 => Self::Ip(tlv.content),
            0xa0 => {
                let mut other = Reader::new(tlv.content);
                der::oid(other.expect(der::OID, "otherName type-id")?)?;
                other.expect(der::context_constructed(0), "otherName value")?;
                other.finish("trailing fields in otherName")?;
                Self::Other(0)
            }
            0xa4 => {
                let mut dir = Reader::new(tlv.content);
                let name = Name::parse(dir.expect_tlv(der::SEQUENCE, "directoryName")?)?;
                dir.finish("trailing fields in directoryName")?;
                Self::Directory(name)
            }
            0x88 => {
                der::oid(tlv.content)?;
                Self::Other(8)
            }
            0xa3 | 0xa5 => Self::Other(tlv.tag & 0x1f),
            _ => return Err(DerError("unknown GeneralName form")),
        })
    }
}

/// A checked GeneralNames SEQUENCE, iterated on demand.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GeneralNames<'a> {
    content: &'a [u8],
}

impl<'a> GeneralNames<'a> {
    /// From an extension value (a SEQUENCE OF GeneralName).
    fn parse(value: &'a [u8]) -> DerResult<Self> {
        Self::parse_content(der::single(value, der::SEQUENCE, "GeneralNames")?)
    }

    /// From the SEQUENCE's value bytes; every entry is checked now.
    pub(crate) fn parse_content(content: &'a [u8]) -> DerResult<Self> {
        let mut r = Reader::new(content);
        while !r.is_empty() {
            GeneralName::parse(r.read()?)?;
        }
        Ok(Self { content })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.content.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = GeneralName<'a>> + 'a {
        let mut r = Reader::new(self.content);
        // Every entry was checked by `parse_content`, so nothing is skipped here.
        std::iter::from_fn(move || r.read().ok().and_then(|t| GeneralName::parse(t).ok()))
    }

    pub(crate) fn dns(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.iter().filter_map(|g| match g {
            GeneralName::Dns(d) => Some(d),
            _ => None,
        })
    }

    pub(crate) fn uris(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.iter().filter_map(|g| match g {
            GeneralName::Uri(u) => Some(u),
            _ => None,
        })
    }

    /// IP address SANs (entries of another length are not addresses and are skipped).
    pub(crate) fn ips(&self) -> impl Iterator<Item = std::net::IpAddr> + 'a {
        self.iter().filter_map(|g| match g {
            GeneralName::Ip(bytes) => ip(bytes),
            _ => None,
        })
    }
}

fn ip(bytes: &[u8]) -> Option<std::net::IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(v4.into())
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Some(v6.into())
    } else {
        None
    }
}

/// An X.501 Name, checked, iterated on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Name<'a> {
    /// The whole encoding (SEQUENCE header included), for byte comparison.
    pub(crate) raw: &'a [u8],
    /// The SEQUENCE's value bytes (what webpki and CRLs compare).
    pub(crate) content: &'a [u8],
}

/// One attribute of a Name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attribute<'a> {
    /// The attribute type OID's value bytes.
    pub(crate) oid: &'a [u8],
    /// The value's tag and bytes.
    pub(crate) value: Tlv<'a>,
}

impl<'a> Attribute<'a> {
    /// The value as text, for the string types whose bytes are text (NumericString,
    /// PrintableString, UTF8String, IA5String); `None` for any other type.
    pub(crate) fn text(&self) -> Option<&'a str> {
        match self.value.tag {
            der::NUMERIC_STRING | der::PRINTABLE_STRING | der::UTF8_STRING | der::IA5_STRING => {
                std::str::from_utf8(self.value.content).ok()
            }
            _ => None,
        }
    }
}

impl<'a> Name<'a> {
    /// A whole DER Name, nothing after it.
    pub(crate) fn parse_der(der: &'a [u8]) -> DerResult<Self> {
        let mut r = Reader::new(der);
        let name = Self::parse(r.expect_tlv(der::SEQUENCE, "Name is not a SEQUENCE")?)?;
        r.finish("trailing bytes after the Name")?;
        Ok(name)
    }

    fn parse(tlv: Tlv<'a>) -> DerResult<Self> {
        let name = Self {
            raw: tlv.raw,
            content: tlv.content,
        };
        let mut rdns = Reader::new(tlv.content);
        while !rdns.is_empty() {
            let mut set = Reader::new(rdns.expect(der::SET, "RelativeDistinguishedName")?);
            if set.is_empty() {
                return Err(DerError("empty RelativeDistinguishedName"));
            }
            while !set.is_empty() {
                let mut atv = Reader::new(set.expect(der::SEQUENCE, "AttributeTypeAndValue")?);
                der::oid(atv.expect(der::OID, "attribute type")?)?;
                atv.read()?;
                atv.finish("trailing fields in AttributeTypeAndValue")?;
            }
        }
        Ok(name)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.content.is_empty()
    }

    /// The RDNs in encoded order (most general first).
    pub(crate) fn rdns(&self) -> impl Iterator<Item = Rdn<'a>> + 'a {
        let mut rdns = Reader::new(self.content);
        // Checked by `parse`: the reads cannot fail.
        std::iter::from_fn(move || {
            rdns.read().ok().map(|set| Rdn {
                content: set.content,
            })
        })
    }

    /// Every commonName attribute.
    pub(crate) fn common_names(&self) -> impl Iterator<Item = Attribute<'a>> + 'a {
        self.rdns()
            .flat_map(|rdn| rdn.attributes())
            .filter(|a| a.oid == OID_COMMON_NAME)
    }
}

/// One relative distinguished name: one or more attributes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rdn<'a> {
    content: &'a [u8],
}

impl<'a> Rdn<'a> {
    pub(crate) fn attributes(&self) -> impl Iterator<Item = Attribute<'a>> + 'a {
        let mut set = Reader::new(self.content);
        // Checked by `Name::parse`: the reads cannot fail.
        std::iter::from_fn(move || {
            let mut atv = Reader::new(set.read().ok()?.content);
            let oid = atv.read().ok()?.content;
            let value = atv.read().ok()?;
            Some(Attribute { oid, value })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_usage_bits_are_numbered_as_in_rfc5280() {
        // digitalSignature (bit 0) and keyCertSign (bit 5): 1000 0100, 2 unused bits.
        assert_eq!(
            key_usage_bits(&[0x03, 0x02, 0x02, 0x84]),
            Ok(key_usage::DIGITAL_SIGNATURE | key_usage::KEY_CERT_SIGN)
        );
        // decipherOnly is bit 8, in the second byte.
        assert_eq!(key_usage_bits(&[0x03, 0x03, 0x07, 0x00, 0x80]), Ok(1 << 8));
    }

    #[test]
    fn duplicates_are_found_past_the_stack_slots() {
        let oids: Vec<[u8; 3]> = (0..40u8).map(|i| [0x2a, 0x03, i]).collect();
        let mut seen = SeenOids::default();
        for oid in &oids {
            assert!(seen.insert(oid));
        }
        assert!(!seen.insert(&oids[3]));
        assert!(!seen.insert(&oids[30]));
        assert!(seen.insert(&[0x2a, 0x04]));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect();
            let _ = Cert::parse(&bytes);
            let mut framed = vec![0x30, 0x82, (len >> 8) as u8, len as u8];
            framed.extend(&bytes);
            let _ = Cert::parse(&framed);
        }
    }
}

/// Differential test: every certificate in the x509-limbo corpus, read by this module and
/// by x509-parser (still a dependency, for CRLs), must give the same fields.
#[cfg(test)]
mod differential {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use x509_parser::extensions::GeneralName as XName;
    use x509_parser::prelude::{ParsedExtension, X509Name};

    fn corpus() -> Vec<Vec<u8>> {
        let limbo = crate::identity::limbo_json();
        let mut ders = Vec::new();
        for case in limbo["testcases"].as_array().unwrap() {
            let mut pems: Vec<&str> = vec![case["peer_certificate"].as_str().unwrap()];
            for key in ["trusted_certs", "untrusted_intermediates"] {
                pems.extend(
                    case[key]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(|v| v.as_str()),
                );
            }
            for pem in pems {
                if let Ok(certs) = crate::identity::decode::decode_pem_certificates(pem.as_bytes())
                {
                    ders.extend(certs);
                }
            }
        }
        ders.sort();
        ders.dedup();
        ders
    }

    fn x509_dn(name: &X509Name<'_>) -> String {
        let rdns: Vec<Vec<crate::identity::Attribute>> = name
            .iter_rdn()
            .map(|rdn| {
                rdn.iter()
                    .map(|atv| crate::identity::Attribute {
                        oid: atv.attr_type().to_id_string(),
                        value: match atv.as_str() {
                            Ok(s) => s.to_owned(),
                            Err(_) => {
                                format!("#{}", crate::identity::dn::hex(atv.attr_value().data))
                            }
                        },
                    })
                    .collect()
            })
            .collect();
        crate::identity::DistinguishedName::from_rdns(rdns).to_string()
    }

    #[test]
    fn agrees_with_x509_parser_on_the_limbo_corpus() {
        let ders = corpus();
        assert!(ders.len() > 400, "corpus has {} certificates", ders.len());
        let mut compared = 0;
        for der in &ders {
            let ours = Cert::parse(der);
            let Ok((rest, theirs)) = x509_parser::parse_x509_certificate(der) else {
                continue;
            };
            assert!(rest.is_empty());
            let ours = ours.unwrap_or_else(|e| {
                panic!(
                    "x509-parser reads a certificate we refuse ({e}): {}",
                    x509_dn(theirs.subject())
                )
            });
            let who = x509_dn(theirs.subject());
            assert_eq!(ours.serial, theirs.raw_serial(), "{who}");
            assert_eq!(u64::from(theirs.version().0), ours.version, "{who}");
            assert_eq!(
                ours.not_before,
                theirs.validity().not_before.timestamp(),
                "{who}"
            );
            assert_eq!(
                ours.not_after,
                theirs.validity().not_after.timestamp(),
                "{who}"
            );
            assert_eq!(ours.subject.raw, theirs.subject().as_raw(), "{who}");
            assert_eq!(ours.issuer.raw, theirs.issuer().as_raw(), "{who}");
            assert_eq!(
                crate::identity::DistinguishedName::from_name(&ours.subject).to_string(),
                who
            );
            assert_eq!(
                crate::identity::DistinguishedName::from_name(&ours.issuer).to_string(),
                x509_dn(theirs.issuer())
            );
            assert_eq!(
                ours.extensions.present,
                !theirs.extensions().is_empty(),
                "{who}"
            );
            assert_eq!(
                ours.is_self_issued(),
                theirs.subject().as_raw() == theirs.issuer().as_raw()
            );
            // Extensions: where x509-parser reads one cleanly, we read the same values.
            if let Ok(Some(bc)) = theirs.basic_constraints() {
                let mine = ours.extensions.basic_constraints.expect("basicConstraints");
                assert_eq!(mine.value.ca, bc.value.ca, "{who}");
                assert_eq!(mine.value.path_len, bc.value.path_len_constraint, "{who}");
                assert_eq!(mine.critical, bc.critical, "{who}");
            }
            if let Ok(Some(ku)) = theirs.key_usage() {
                let mine = ours.key_usage().expect("keyUsage");
                assert_eq!(mine, ku.value.flags, "{who}");
            }
            if let Ok(Some(eku)) = theirs.extended_key_usage() {
                let mine = ours.extensions.ext_key_usage.expect("extKeyUsage");
                assert_eq!(mine.value, eku.value.any, "{who}");
                assert_eq!(mine.critical, eku.critical, "{who}");
            }
            if let Ok(Some(san)) = theirs.subject_alternative_name() {
                let mine: Vec<String> = ours.san().iter().map(|g| format!("{g:?}")).collect();
                let expected: Vec<String> = san
                    .value
                    .general_names
                    .iter()
                    .map(|g| match g {
                        XName::RFC822Name(s) => format!("{:?}", GeneralName::Email(s)),
                        XName::DNSName(s) => format!("{:?}", GeneralName::Dns(s)),
                        XName::URI(s) => format!("{:?}", GeneralName::Uri(s)),
                        XName::IPAddress(b) => format!("{:?}", GeneralName::Ip(b)),
                        XName::DirectoryName(n) => format!(
                            "{:?}",
                            GeneralName::Directory(Name::parse_der(n.as_raw()).unwrap())
                        ),
                        XName::OtherName(..) => format!("{:?}", GeneralName::Other(0)),
                        XName::X400Address(..) => format!("{:?}", GeneralName::Other(3)),
                        XName::EDIPartyName(..) => format!("{:?}", GeneralName::Other(5)),
                        XName::RegisteredID(..) => format!("{:?}", GeneralName::Other(8)),
                    })
                    .collect();
                assert_eq!(mine, expected, "{who}");
                assert_eq!(
                    ours.extensions.subject_alt_name.unwrap().critical,
                    san.critical
                );
            }
            for ext in theirs.extensions() {
                match ext.parsed_extension() {
                    ParsedExtension::SubjectKeyIdentifier(id) => {
                        assert_eq!(ours.extensions.subject_key_id.unwrap().value, id.0, "{who}");
                    }
                    ParsedExtension::AuthorityKeyIdentifier(aki) => {
                        let mine = ours.extensions.authority_key_id.unwrap().value;
                        assert_eq!(
                            mine.key_id,
                            aki.key_identifier.as_ref().map(|k| k.0),
                            "{who}"
                        );
                        assert_eq!(
                            mine.issuer_or_serial,
                            aki.authority_cert_issuer.is_some()
                                || aki.authority_cert_serial.is_some()
                        );
                    }
                    ParsedExtension::NameConstraints(nc) => {
                        let mine = ours.extensions.name_constraints.unwrap().value;
                        let n = nc.permitted_subtrees.as_ref().map_or(0, Vec::len)
                            + nc.excluded_subtrees.as_ref().map_or(0, Vec::len);
                        assert_eq!(mine.subtrees, n, "{who}");
                    }
                    _ => {}
                }
            }
            compared += 1;
        }
        assert!(compared > 400, "only {compared} certificates compared");
    }
}
