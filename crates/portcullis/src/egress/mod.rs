//! May the app connect to this URL, and to which exact IP addresses?
//!
//! An [`EgressPolicy`] judges a URL in three layers and hands back a [`Destination`]: the
//! canonical URL, the host name to use for SNI and the `Host` header, the port, and the
//! addresses the caller must connect to. Connecting only to those addresses (pinning) is
//! what defeats DNS rebinding: the name is resolved once, here, and every answer is checked.
//!
//! 1. **The URL.** Parsed once by the WHATWG parser (`url`). In strict mode (the default) the
//!    raw input is also checked, because the parser silently repairs things a different
//!    parser downstream may read differently: userinfo (`egress.userinfo`), backslashes
//!    (`egress.backslash`), control characters and whitespace (`egress.control_char`),
//!    percent-encoded or non-ASCII-dot host names (`egress.encoded_host`). Then the scheme
//!    (`egress.scheme`, default `https` only) and port (`egress.port`, default 443, plus 80
//!    when `http` is allowed).
//! 2. **The name.** Host denylist (`egress.host_denied`), metadata service names such as
//!    `metadata.google.internal` (`egress.metadata`), then the host allowlist
//!    (`egress.host_not_allowed`). Patterns are exact names or `*.suffix`; `*.example.com`
//!    matches `a.example.com` but neither `example.com` nor `evilexample.com`. Matching is
//!    case-insensitive, ignores one trailing dot, and compares IDNA (punycode) forms. A
//!    host with any other empty label (`vault.example..`, `a..b`, `.a`) is refused
//!    (`egress.bad_url`): resolvers read `vault.example..` as `vault.example`, so it would
//!    otherwise dodge a `deny_hosts` entry. The same rule normalises patterns.
//! 3. **The addresses.** An IP literal in any spelling (`2130706433`, `0177.0.0.1`,
//!    `0x7f.1`, `127.1`) is judged as the address it denotes; a name is resolved through
//!    [`Resolve`] and every answer must pass. IPv4 carried in IPv6 (mapped, compatible,
//!    NAT64, 6to4, Teredo) is unwrapped and judged as IPv4; 6to4 (`2002::/16`) and Teredo
//!    (`2001::/32`) are refused outright by default (`egress.ipv6_tunnel`, RFC 7526), NAT64
//!    when `allow_nat64` is off. Precedence, first match wins:
//!
//!    | rule | effect | code |
//!    |---|---|---|
//!    | `deny_cidrs` | deny | `egress.denied_cidr` |
//!    | cloud metadata address | deny, unless an `allow_cidrs` entry lies inside the metadata entry (names it explicitly) | `egress.metadata` |
//!    | carrier turned off (6to4, Teredo by default; NAT64 with `allow_nat64: false`) | deny, unless an `allow_cidrs` entry covers the IPv6 form; the IPv4 inside is judged by the rows below either way | `egress.ipv6_tunnel`, `egress.reserved_address` |
//!    | `allow_cidrs` | allow | |
//!    | default reserved denylist (IANA special-purpose) | deny | `egress.reserved_address` |
//!    | everything else (public) | allow | |
//!
//! ```
//! use portcullis::egress::EgressPolicy;
//!
//! let policy = EgressPolicy::builder()
//!     .allow_hosts(["api.example.com", "*.cdn.example.com"])
//!     .build()?;
//! // A stub resolver: tests and examples never touch the network.
//! let dns = |host: &str| -> std::io::Result<Vec<std::net::IpAddr>> {
//!     Ok(vec!["93.184.216.34".parse().unwrap()])
//! };
//! let dest = policy.check_with("https://API.example.com./v1?q=1", &dns)?;
//! assert_eq!(dest.host, "api.example.com");
//! assert_eq!(dest.port, 443);
//! assert_eq!(dest.addrs, vec!["93.184.216.34".parse::<std::net::IpAddr>().unwrap()]);
//!
//! let err = policy.check_with("https://evilexample.com/", &dns).unwrap_err();
//! assert_eq!(portcullis::ErrorCode::code(&err), "egress.host_not_allowed");
//! let err = EgressPolicy::default().check_with("https://0x7f.1/", &dns).unwrap_err();
//! assert_eq!(portcullis::ErrorCode::code(&err), "egress.reserved_address");
//! # Ok::<(), portcullis::egress::EgressError>(())
//! ```
//!
//! # Using a Destination with an HTTP client
//!
//! The rule is: connect to `dest.socket_addrs()` and nothing else, use `dest.host` for SNI,
//! certificate verification and `Host`, send `dest.url` (or, writing the request line
//! yourself, [`Destination::request_target`]) without re-parsing it, turn off proxies (a proxy resolves the name again)
//! and automatic redirects (each hop must go through [`EgressPolicy::check_redirect`]).
//!
//! With **reqwest**, a per-destination client pins the name through its resolve override:
//!
//! ```ignore
//! let dest = policy.check(url)?;                       // blocks on DNS; use spawn_blocking in async code
//! let client = reqwest::Client::builder()
//!     .no_proxy()
//!     .redirect(reqwest::redirect::Policy::none())
//!     .resolve_to_addrs(&dest.host, &dest.socket_addrs())
//!     .build()?;
//! let response = client.get(dest.url.clone()).send().await?;
//! if response.status().is_redirection() {
//!     let location = response.headers()["location"].to_str()?;
//!     let next = policy.check_redirect(&dest.url, location)?; // and build the next client from `next`
//! }
//! ```
//!
//! With **hyper** (or any client taking a connector), write the connector as
//! `policy.check(uri)` followed by `TcpStream::connect(&dest.socket_addrs()[..])`, then the
//! TLS handshake with `dest.host` as the server name.
//! `crates/portcullis/examples/egress_fetch.rs` shows the same pinning with std's
//! `TcpStream` only (it keeps the crate's dev-dependencies light).

mod policy;
mod ranges;
mod resolve;
mod url_check;

pub use policy::{EgressPolicy, EgressPolicyBuilder, PendingUrl};
pub use ranges::{embedded_ipv4, special_purpose_range, Embedding, SpecialRange};
pub use resolve::{Resolve, SystemResolver};
/// The WHATWG URL type used throughout (re-exported from the `url` crate).
pub use url::Url;

use std::net::{IpAddr, SocketAddr};

use crate::ErrorCode;

/// A checked destination: connect to `addrs` (and only those) on `port`, present `host`
/// for SNI, certificate verification and the `Host` header, and request `url`.
///
/// ```
/// use portcullis::egress::EgressPolicy;
/// let dest = EgressPolicy::default().check_with("https://93.184.216.34/x", &|_: &str| Ok(vec![]))?;
/// assert_eq!(dest.socket_addrs(), vec!["93.184.216.34:443".parse().unwrap()]);
/// # Ok::<(), portcullis::egress::EgressError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Destination {
    /// The canonical URL as parsed by the WHATWG parser; use this, not the input string.
    pub url: Url,
    /// The host: a lowercase ASCII (punycode) name without trailing dot, or an IP literal
    /// without brackets.
    pub host: String,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// Every address the host resolved to, each one checked; never empty.
    pub addrs: Vec<IpAddr>,
}

impl Destination {
    /// `addrs` paired with `port`, ready for `TcpStream::connect` or a client's resolve override.
    ///
    /// ```
    /// # use portcullis::egress::EgressPolicy;
    /// let dest = EgressPolicy::default().check_with("https://[2606:4700::1111]:443/", &|_: &str| Ok(vec![]))?;
    /// assert_eq!(dest.socket_addrs()[0].to_string(), "[2606:4700::1111]:443");
    /// # Ok::<(), portcullis::egress::EgressError>(())
    /// ```
    pub fn socket_addrs(&self) -> Vec<SocketAddr> {
        self.addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, self.port))
            .collect()
    }

    /// The request target to send: the canonical URL's path and query, exactly as the
    /// WHATWG parser wrote them (`/a|b`, `/%zz` stay as they are). A client that re-parses
    /// the URL with another parser may refuse or rewrite what the policy accepted.
    ///
    /// ```
    /// # use portcullis::egress::EgressPolicy;
    /// let dest = EgressPolicy::default().check_with("https://93.184.216.34/a|b/%zz?q=1#frag", &|_: &str| Ok(vec![]))?;
    /// assert_eq!(dest.request_target(), "/a|b/%zz?q=1");
    /// # Ok::<(), portcullis::egress::EgressError>(())
    /// ```
    pub fn request_target(&self) -> &str {
        &self.url[url::Position::BeforePath..url::Position::AfterQuery]
    }
}

/// Why a destination was refused. Every variant has a stable [`ErrorCode`].
///
/// ```
/// use portcullis::{ErrorCode, egress::EgressPolicy};
/// let err = EgressPolicy::default().check_url("http://169.254.169.254/latest/meta-data/").unwrap_err();
/// assert_eq!(err.code(), "egress.scheme"); // https only by default
/// let policy = EgressPolicy::builder().schemes(["http", "https"]).build()?;
/// let err = policy.check_url("http://169.254.169.254/latest/meta-data/").unwrap_err();
/// assert_eq!(err.code(), "egress.metadata");
/// assert!(err.to_string().contains("169.254.169.254/32"));
/// # Ok::<(), portcullis::egress::EgressError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    /// The input is not a URL the WHATWG parser accepts, has no host, or is too long.
    #[error("not an acceptable URL ({reason}): {input:?}")]
    BadUrl {
        /// The input, truncated for display.
        input: String,
        /// What the parser or the length check said.
        reason: String,
    },
    /// The scheme is not in the policy's allowed schemes.
    #[error("scheme {scheme:?} is not allowed (allowed: {allowed}); use one of the allowed schemes or add it to the policy")]
    Scheme {
        /// The URL's scheme.
        scheme: String,
        /// The allowed schemes, comma-separated.
        allowed: String,
    },
    /// The port (explicit or the scheme's default) is not in the policy's allowed ports.
    #[error("port {port} is not allowed (allowed: {allowed}); add it to the policy's ports if it is meant to be reachable")]
    Port {
        /// The URL's effective port.
        port: u16,
        /// The allowed ports, comma-separated.
        allowed: String,
    },
    /// The policy has a host allowlist and the host matches none of its patterns.
    #[error(
        "host {host:?} is not in the host allowlist; add it (or a *.suffix pattern) to allow_hosts"
    )]
    HostNotAllowed {
        /// The normalised host.
        host: String,
    },
    /// The host matches a pattern of the policy's host denylist.
    #[error("host {host:?} is denied by the host denylist pattern {pattern:?}")]
    HostDenied {
        /// The normalised host.
        host: String,
        /// The deny pattern that matched.
        pattern: String,
    },
    /// The address (or one address the name resolved to) is in a special-purpose range
    /// from the default denylist: private, loopback, link-local, documentation, multicast…
    #[error("{target} is in the reserved range {range} ({name}); add a CIDR to allow_cidrs if this internal destination is intended")]
    ReservedAddress {
        /// The address, with the IPv6 form it was carried in, if any (`::ffff:127.0.0.1 (IPv4-mapped 127.0.0.1)`).
        target: String,
        /// The matching range, in CIDR notation.
        range: String,
        /// What the range is for.
        name: String,
    },
    /// The host is a cloud metadata service, by address or by name. Metadata stays denied
    /// even under a broader `allow_cidrs` entry; only an entry inside the metadata range
    /// (or, for names, an exact `allow_hosts` entry) permits it.
    #[error("{target} is a cloud metadata service ({range}: {name}); refusing to let requests reach instance credentials")]
    Metadata {
        /// The address or host name.
        target: String,
        /// The matching metadata range or name.
        range: String,
        /// Which service it is.
        name: String,
    },
    /// The address is a 6to4 (`2002::/16`) or Teredo (`2001::/32`) tunnel address and the
    /// policy refuses that carrier (the default for both; see
    /// [`EgressPolicyBuilder::allow_6to4`]). A relay forwards such traffic to whatever
    /// IPv4 address the client names, and both mechanisms are deprecated.
    #[error("{target} is a {name} tunnel address ({range}); tunnels are refused by default because a relay delivers to the IPv4 address the client names; set {option}: true to judge it as the IPv4 address it carries")]
    Ipv6Tunnel {
        /// The address, with the IPv4 address it carries.
        target: String,
        /// The tunnel prefix, in CIDR notation.
        range: String,
        /// Which tunnel mechanism.
        name: String,
        /// The policy option that allows it (`allow_6to4`, `allow_teredo`).
        option: String,
    },
    /// The address is inside one of the policy's `deny_cidrs`, which beat everything else.
    #[error("{target} is in the denied range {cidr} (deny_cidrs)")]
    DeniedCidr {
        /// The address, with its IPv6 carrier form if any.
        target: String,
        /// The deny CIDR that matched.
        cidr: String,
    },
    /// Strict mode: the URL carries userinfo (`user:pass@`, or a bare `@`), a classic way
    /// to make a host look like another one.
    #[error("URL carries userinfo before the host ({input:?}); pass credentials in a header, not in the URL")]
    Userinfo {
        /// The input, truncated for display.
        input: String,
    },
    /// Strict mode: a backslash before the query; the WHATWG parser reads it as `/`, other
    /// parsers do not, so the host two parsers see can differ.
    #[error("URL contains a backslash before the query ({input:?}); use '/'")]
    Backslash {
        /// The input, truncated for display.
        input: String,
    },
    /// Strict mode: a control character or whitespace anywhere in the input; the WHATWG
    /// parser strips some of them silently.
    #[error("URL contains control character or whitespace {character:?} at byte {position}; percent-encode it")]
    ControlChar {
        /// The offending character.
        character: char,
        /// Its byte offset in the input.
        position: usize,
    },
    /// Strict mode: the host is percent-encoded or uses a non-ASCII full stop (`。`, `．`,
    /// `｡`) that IDNA maps to `.`; write the plain host name.
    #[error("host {host:?} is obfuscated ({reason}); write the plain ASCII or Unicode host name")]
    EncodedHost {
        /// The raw host as written.
        host: String,
        /// What was found.
        reason: String,
    },
    /// The name did not resolve, or resolved to nothing, or the resolver returned junk.
    #[error("could not resolve {host:?}: {reason}")]
    ResolveFailed {
        /// The host name.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// A redirect from `https` to a non-`https` scheme.
    #[error("redirect from {from} to {to} downgrades the scheme; refused")]
    Downgrade {
        /// The URL being redirected from.
        from: String,
        /// The resolved redirect target.
        to: String,
    },
    /// The policy itself is invalid (a bad CIDR, host pattern, scheme or port).
    #[error("invalid egress policy: {reason}")]
    InvalidPolicy {
        /// What is wrong with it.
        reason: String,
    },
}

impl ErrorCode for EgressError {
    fn code(&self) -> &'static str {
        match self {
            Self::BadUrl { .. } => "egress.bad_url",
            Self::Scheme { .. } => "egress.scheme",
            Self::Port { .. } => "egress.port",
            Self::HostNotAllowed { .. } => "egress.host_not_allowed",
            Self::HostDenied { .. } => "egress.host_denied",
            Self::ReservedAddress { .. } => "egress.reserved_address",
            Self::Metadata { .. } => "egress.metadata",
            Self::DeniedCidr { .. } => "egress.denied_cidr",
            Self::Ipv6Tunnel { .. } => "egress.ipv6_tunnel",
            Self::Userinfo { .. } => "egress.userinfo",
            Self::Backslash { .. } => "egress.backslash",
            Self::ControlChar { .. } => "egress.control_char",
            Self::EncodedHost { .. } => "egress.encoded_host",
            Self::ResolveFailed { .. } => "egress.resolve_failed",
            Self::Downgrade { .. } => "egress.downgrade",
            Self::InvalidPolicy { .. } => "egress.invalid_policy",
        }
    }
}

/// Truncates untrusted input for messages (char-boundary safe).
pub(crate) fn shorten(input: &str) -> String {
    const MAX: usize = 200;
    if input.len() <= MAX {
        return input.to_owned();
    }
    let mut end = MAX;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", input.get(..end).unwrap_or_default())
}
