//! The default denylist: IANA special-purpose ranges, cloud metadata services, and the
//! IPv6 forms that carry an IPv4 address.
//!
//! Ranges are kept as integer/mask pairs so classifying an address is a short scan of
//! constant tables (no allocation, no parsing), well under a microsecond.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One entry of the default denylist: a special-purpose or metadata range.
///
/// ```
/// use portcullis::egress::special_purpose_range;
/// let range = special_purpose_range("10.1.2.3".parse().unwrap()).unwrap();
/// assert_eq!(range.cidr, "10.0.0.0/8");
/// assert_eq!(range.name, "private-use (RFC 1918)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecialRange {
    /// The range in CIDR notation, as it appears in error messages.
    pub cidr: &'static str,
    /// What the range is for, as it appears in error messages.
    pub name: &'static str,
}

struct V4Range {
    net: u32,
    prefix: u8,
    range: SpecialRange,
}

struct V6Range {
    net: u128,
    prefix: u8,
    range: SpecialRange,
}

const fn v4(
    a: u8,
    b: u8,
    c: u8,
    d: u8,
    prefix: u8,
    cidr: &'static str,
    name: &'static str,
) -> V4Range {
    V4Range {
        net: u32::from_be_bytes([a, b, c, d]),
        prefix,
        range: SpecialRange { cidr, name },
    }
}

const fn v6(net: u128, prefix: u8, cidr: &'static str, name: &'static str) -> V6Range {
    V6Range {
        net,
        prefix,
        range: SpecialRange { cidr, name },
    }
}

const fn mask4(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

const fn mask6(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix as u32)
    }
}

impl V4Range {
    fn contains(&self, addr: u32) -> bool {
        addr & mask4(self.prefix) == self.net
    }
}

impl V6Range {
    fn contains(&self, addr: u128) -> bool {
        addr & mask6(self.prefix) == self.net
    }
}

/// IPv4 ranges that are not globally reachable (IANA IPv4 Special-Purpose Address
/// Registry), plus multicast and the reserved 240/4. 192.0.0.0/24 is denied whole although
/// two anycast addresses inside it are global: no application fetches from them.
static RESERVED_V4: [V4Range; 15] = [
    v4(0, 0, 0, 0, 8, "0.0.0.0/8", "\"this network\" (RFC 791)"),
    v4(10, 0, 0, 0, 8, "10.0.0.0/8", "private-use (RFC 1918)"),
    v4(
        100,
        64,
        0,
        0,
        10,
        "100.64.0.0/10",
        "shared address space / CGN (RFC 6598)",
    ),
    v4(127, 0, 0, 0, 8, "127.0.0.0/8", "loopback (RFC 1122)"),
    v4(
        169,
        254,
        0,
        0,
        16,
        "169.254.0.0/16",
        "link-local (RFC 3927)",
    ),
    v4(172, 16, 0, 0, 12, "172.16.0.0/12", "private-use (RFC 1918)"),
    v4(
        192,
        0,
        0,
        0,
        24,
        "192.0.0.0/24",
        "IETF protocol assignments (RFC 6890)",
    ),
    v4(
        192,
        0,
        2,
        0,
        24,
        "192.0.2.0/24",
        "documentation TEST-NET-1 (RFC 5737)",
    ),
    v4(
        192,
        88,
        99,
        0,
        24,
        "192.88.99.0/24",
        "deprecated 6to4 relay anycast (RFC 7526)",
    ),
    v4(
        192,
        168,
        0,
        0,
        16,
        "192.168.0.0/16",
        "private-use (RFC 1918)",
    ),
    v4(
        198,
        18,
        0,
        0,
        15,
        "198.18.0.0/15",
        "benchmarking (RFC 2544)",
    ),
    v4(
        198,
        51,
        100,
        0,
        24,
        "198.51.100.0/24",
        "documentation TEST-NET-2 (RFC 5737)",
    ),
    v4(
        203,
        0,
        113,
        0,
        24,
        "203.0.113.0/24",
        "documentation TEST-NET-3 (RFC 5737)",
    ),
    v4(224, 0, 0, 0, 4, "224.0.0.0/4", "multicast (RFC 5771)"),
    v4(
        240,
        0,
        0,
        0,
        4,
        "240.0.0.0/4",
        "reserved and limited broadcast (RFC 1112, RFC 919)",
    ),
];

/// Cloud metadata and platform services reachable from inside a VM or container.
static METADATA_V4: [V4Range; 5] = [
    v4(
        169,
        254,
        169,
        254,
        32,
        "169.254.169.254/32",
        "cloud instance metadata (AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle)",
    ),
    v4(
        169,
        254,
        170,
        2,
        32,
        "169.254.170.2/32",
        "AWS ECS task metadata and credentials",
    ),
    v4(
        169,
        254,
        0,
        23,
        32,
        "169.254.0.23/32",
        "Tencent Cloud metadata",
    ),
    v4(
        100,
        100,
        100,
        200,
        32,
        "100.100.100.200/32",
        "Alibaba Cloud metadata",
    ),
    v4(
        192,
        0,
        0,
        192,
        32,
        "192.0.0.192/32",
        "Oracle Cloud legacy metadata",
    ),
];

/// The Azure WireServer sits in public space (168.63.129.16), so it is listed on its own
/// and checked before the reserved table.
static METADATA_V4_PUBLIC: [V4Range; 1] = [v4(
    168,
    63,
    129,
    16,
    32,
    "168.63.129.16/32",
    "Azure WireServer / platform metadata",
)];

static METADATA_V6: [V6Range; 1] = [v6(
    0xfd00_0ec2_0000_0000_0000_0000_0000_0254,
    128,
    "fd00:ec2::254/128",
    "AWS instance metadata over IPv6",
)];

/// Host names of metadata services. Matched exactly (after lowercasing and dropping a
/// trailing dot); denied even when the host allowlist has a wildcard covering them.
pub(crate) static METADATA_NAMES: [&str; 7] = [
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.tencentyun.com",
    "metadata.azure.internal",
];

/// IPv6 ranges that are not globally reachable. Embedded-IPv4 forms (mapped, compatible,
/// NAT64, 6to4, Teredo) are unwrapped before this table is consulted; the rest of
/// 2001::/23 is denied whole. Anything outside 2000::/3 that is not listed here is caught
/// by the final "not global unicast" rule.
static RESERVED_V6: [V6Range; 15] = [
    v6(0, 128, "::/128", "unspecified address (RFC 4291)"),
    v6(1, 128, "::1/128", "loopback (RFC 4291)"),
    v6(
        0x0000_0000_0000_0000_0000_ffff_0000_0000,
        96,
        "::ffff:0:0/96",
        "IPv4-mapped (RFC 4291)",
    ),
    v6(
        0x0064_ff9b_0000_0000_0000_0000_0000_0000,
        96,
        "64:ff9b::/96",
        "NAT64 well-known prefix (RFC 6052)",
    ),
    v6(
        0x0064_ff9b_0001_0000_0000_0000_0000_0000,
        48,
        "64:ff9b:1::/48",
        "local-use IPv4/IPv6 translation (RFC 8215)",
    ),
    v6(
        0x0100_0000_0000_0000_0000_0000_0000_0000,
        64,
        "100::/64",
        "discard-only (RFC 6666)",
    ),
    v6(
        0x0100_0000_0000_0001_0000_0000_0000_0000,
        64,
        "100:0:0:1::/64",
        "dummy IPv6 prefix (RFC 9780)",
    ),
    v6(
        0x2001_0000_0000_0000_0000_0000_0000_0000,
        23,
        "2001::/23",
        "IETF protocol assignments (RFC 2928)",
    ),
    v6(
        0x2001_0db8_0000_0000_0000_0000_0000_0000,
        32,
        "2001:db8::/32",
        "documentation (RFC 3849)",
    ),
    v6(
        0x3fff_0000_0000_0000_0000_0000_0000_0000,
        20,
        "3fff::/20",
        "documentation (RFC 9637)",
    ),
    v6(
        0x5f00_0000_0000_0000_0000_0000_0000_0000,
        16,
        "5f00::/16",
        "SRv6 SIDs (RFC 9602)",
    ),
    v6(
        0xfc00_0000_0000_0000_0000_0000_0000_0000,
        7,
        "fc00::/7",
        "unique-local (RFC 4193)",
    ),
    v6(
        0xfe80_0000_0000_0000_0000_0000_0000_0000,
        10,
        "fe80::/10",
        "link-local unicast (RFC 4291)",
    ),
    v6(
        0xfec0_0000_0000_0000_0000_0000_0000_0000,
        10,
        "fec0::/10",
        "deprecated site-local (RFC 3879)",
    ),
    v6(
        0xff00_0000_0000_0000_0000_0000_0000_0000,
        8,
        "ff00::/8",
        "multicast (RFC 4291)",
    ),
];

static NOT_GLOBAL_UNICAST: SpecialRange = SpecialRange {
    cidr: "outside 2000::/3",
    name: "not global unicast (RFC 4291)",
};

static NAT64_DISABLED: SpecialRange = SpecialRange {
    cidr: "64:ff9b::/96",
    name: "NAT64 (disabled by this policy's allow_nat64: false)",
};

/// How an IPv4 address is carried inside an IPv6 address.
///
/// ```
/// use portcullis::egress::{embedded_ipv4, Embedding};
/// let (v4, how) = embedded_ipv4("2002:7f00:1::".parse().unwrap()).unwrap();
/// assert_eq!(v4.to_string(), "127.0.0.1");
/// assert_eq!(how, Embedding::SixToFour);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Embedding {
    /// `::ffff:a.b.c.d` (RFC 4291).
    Mapped,
    /// `::a.b.c.d`, deprecated IPv4-compatible (RFC 4291).
    Compatible,
    /// `::ffff:0:a.b.c.d`, SIIT IPv4-translated (RFC 2765).
    Translated,
    /// `64:ff9b::a.b.c.d`, the NAT64 well-known prefix (RFC 6052).
    Nat64,
    /// `64:ff9b:1::/48`, local-use NAT64 (RFC 8215), in the /96 or the RFC 6052 /48 layout.
    Nat64LocalUse,
    /// `2002:AABB:CCDD::/48`, 6to4 (RFC 3056).
    SixToFour,
    /// `2001:0:S:S:F:P:C:C`, Teredo (RFC 4380); the client address is the last 32 bits
    /// XOR 0xffffffff.
    Teredo,
}

impl fmt::Display for Embedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mapped => "IPv4-mapped",
            Self::Compatible => "IPv4-compatible",
            Self::Translated => "IPv4-translated",
            Self::Nat64 => "NAT64",
            Self::Nat64LocalUse => "local-use NAT64",
            Self::SixToFour => "6to4",
            Self::Teredo => "Teredo client",
        })
    }
}

/// The IPv4 address an IPv6 address carries, if it is one of the [`Embedding`] forms.
/// `::` and `::1` are IPv6's own unspecified and loopback addresses, not embeddings.
///
/// ```
/// use portcullis::egress::{embedded_ipv4, Embedding};
/// let (v4, how) = embedded_ipv4("64:ff9b::a9fe:a9fe".parse().unwrap()).unwrap();
/// assert_eq!(v4.to_string(), "169.254.169.254");
/// assert_eq!(how, Embedding::Nat64);
/// assert!(embedded_ipv4("2606:4700::1111".parse().unwrap()).is_none());
/// ```
pub fn embedded_ipv4(addr: Ipv6Addr) -> Option<(Ipv4Addr, Embedding)> {
    let b = addr.octets();
    let bits = u128::from_be_bytes(b);
    let last32 = Ipv4Addr::new(b[12], b[13], b[14], b[15]);
    if bits >> 32 == 0 {
        if bits <= 1 {
            return None;
        }
        return Some((last32, Embedding::Compatible));
    }
    if bits >> 32 == 0xffff {
        return Some((last32, Embedding::Mapped));
    }
    if bits >> 32 == 0xffff_0000 {
        return Some((last32, Embedding::Translated));
    }
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some((last32, Embedding::Nat64));
    }
    if bits >> 80 == 0x0064_ff9b_0001 {
        // /96 layout inside the local-use /48: bits 48..96 are zero.
        if (bits >> 32) & 0xffff_ffff_ffff == 0 {
            return Some((last32, Embedding::Nat64LocalUse));
        }
        // RFC 6052 /48 layout: v4 in bytes 6,7 and 9,10; byte 8 (u) and suffix zero.
        if b[8] == 0 && b[11..].iter().all(|&x| x == 0) {
            return Some((
                Ipv4Addr::new(b[6], b[7], b[9], b[10]),
                Embedding::Nat64LocalUse,
            ));
        }
        return None;
    }
    if bits >> 112 == 0x2002 {
        return Some((Ipv4Addr::new(b[2], b[3], b[4], b[5]), Embedding::SixToFour));
    }
    if bits >> 96 == 0x2001_0000 {
        let client = u32::from_be_bytes([b[12], b[13], b[14], b[15]]) ^ u32::MAX;
        return Some((Ipv4Addr::from(client), Embedding::Teredo));
    }
    None
}

/// The special-purpose range an address falls in, judged on the address itself (no
/// unwrapping of IPv6 embeddings; see [`embedded_ipv4`]). `None` means globally reachable.
/// Metadata addresses report their metadata entry.
///
/// ```
/// use portcullis::egress::special_purpose_range;
/// assert_eq!(special_purpose_range("169.254.169.254".parse().unwrap()).unwrap().cidr, "169.254.169.254/32");
/// assert_eq!(special_purpose_range("fe80::1".parse().unwrap()).unwrap().cidr, "fe80::/10");
/// assert!(special_purpose_range("93.184.216.34".parse().unwrap()).is_none());
/// assert!(special_purpose_range("2606:4700::1111".parse().unwrap()).is_none());
/// ```
pub fn special_purpose_range(addr: IpAddr) -> Option<&'static SpecialRange> {
    match addr {
        IpAddr::V4(a) => metadata_v4(a).or_else(|| reserved_v4(a)),
        IpAddr::V6(a) => metadata_v6(a).or_else(|| reserved_v6(a)),
    }
}

pub(crate) fn metadata_v4(addr: Ipv4Addr) -> Option<&'static SpecialRange> {
    let bits = u32::from(addr);
    METADATA_V4
        .iter()
        .chain(METADATA_V4_PUBLIC.iter())
        .find(|r| r.contains(bits))
        .map(|r| &r.range)
}

pub(crate) fn metadata_v6(addr: Ipv6Addr) -> Option<&'static SpecialRange> {
    let bits = u128::from(addr);
    METADATA_V6
        .iter()
        .find(|r| r.contains(bits))
        .map(|r| &r.range)
}

/// The metadata range containing `addr`, as an `ipnet` network, for the "named
/// explicitly" rule (an allow CIDR at least as specific as the metadata entry).
pub(crate) fn metadata_net(addr: IpAddr) -> Option<(ipnet::IpNet, &'static SpecialRange)> {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            METADATA_V4
                .iter()
                .chain(METADATA_V4_PUBLIC.iter())
                .find(|r| r.contains(bits))
                .and_then(|r| {
                    ipnet::Ipv4Net::new(Ipv4Addr::from(r.net), r.prefix)
                        .ok()
                        .map(|n| (ipnet::IpNet::V4(n), &r.range))
                })
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            METADATA_V6.iter().find(|r| r.contains(bits)).and_then(|r| {
                ipnet::Ipv6Net::new(Ipv6Addr::from(r.net), r.prefix)
                    .ok()
                    .map(|n| (ipnet::IpNet::V6(n), &r.range))
            })
        }
    }
}

pub(crate) fn reserved_v4(addr: Ipv4Addr) -> Option<&'static SpecialRange> {
    let bits = u32::from(addr);
    RESERVED_V4
        .iter()
        .find(|r| r.contains(bits))
        .map(|r| &r.range)
}

pub(crate) fn reserved_v6(addr: Ipv6Addr) -> Option<&'static SpecialRange> {
    let bits = u128::from(addr);
    if let Some(r) = RESERVED_V6.iter().find(|r| r.contains(bits)) {
        return Some(&r.range);
    }
    // Global unicast is 2000::/3; everything else is unassigned or special.
    if bits >> 125 != 0b001 {
        return Some(&NOT_GLOBAL_UNICAST);
    }
    None
}

pub(crate) fn nat64_disabled() -> &'static SpecialRange {
    &NAT64_DISABLED
}

static SIX_TO_FOUR: SpecialRange = SpecialRange {
    cidr: "2002::/16",
    name: "6to4 (RFC 3056, deprecated by RFC 7526)",
};

static TEREDO: SpecialRange = SpecialRange {
    cidr: "2001::/32",
    name: "Teredo (RFC 4380)",
};

/// The range and the policy option of an IPv4-over-IPv6 tunnel carrier (6to4 or Teredo).
pub(crate) fn tunnel(how: Embedding) -> (&'static SpecialRange, &'static str) {
    match how {
        Embedding::Teredo => (&TEREDO, "allow_teredo"),
        _ => (&SIX_TO_FOUR, "allow_6to4"),
    }
}

/// Whether a normalised host name (lowercase, no trailing dot) is a metadata service name.
pub(crate) fn is_metadata_name(host: &str) -> bool {
    METADATA_NAMES.contains(&host)
}
