//! [`EgressPolicy`]: the rules, built from plain data, and the checks that apply them.

use std::net::IpAddr;

use ipnet::IpNet;
use url::{Host, Url};

use super::ranges::{self, Embedding};
use super::resolve::{Resolve, SystemResolver};
use super::url_check::{self, MAX_URL_LEN};
use super::{shorten, Destination, EgressError};

/// Schemes a policy may allow: the WHATWG "special" schemes with a host and a default port.
const KNOWN_SCHEMES: [&str; 4] = ["http", "https", "ws", "wss"];

/// A host pattern from `allow_hosts` / `deny_hosts`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    /// An exact, normalised name.
    Exact(String),
    /// `*.suffix`: any name with at least one more label in front of `suffix`.
    Suffix(String),
    /// An IP literal.
    Ip(IpAddr),
}

impl HostPattern {
    fn parse(raw: &str) -> Result<Self, EgressError> {
        let invalid = |why: &str| EgressError::InvalidPolicy {
            reason: format!("host pattern {:?}: {why}", shorten(raw)),
        };
        let trimmed = raw.trim();
        if let Some(suffix) = trimmed.strip_prefix("*.") {
            if suffix.contains('*') {
                return Err(invalid("only one leading '*.' is supported"));
            }
            return match normalise_pattern_host(suffix).map_err(|e| invalid(&e))? {
                Self::Exact(name) => Ok(Self::Suffix(name)),
                _ => Err(invalid("a wildcard must be followed by a domain name")),
            };
        }
        if trimmed.contains('*') {
            return Err(invalid(
                "'*' is only allowed as a leading '*.' (leave allow_hosts empty to allow any host)",
            ));
        }
        normalise_pattern_host(trimmed).map_err(|e| invalid(&e))
    }

    fn matches_name(&self, host: &str) -> bool {
        match self {
            Self::Exact(name) => name == host,
            Self::Suffix(suffix) => host
                .strip_suffix(suffix.as_str())
                .and_then(|front| front.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty()),
            Self::Ip(_) => false,
        }
    }

    fn display(&self) -> String {
        match self {
            Self::Exact(name) => name.clone(),
            Self::Suffix(suffix) => format!("*.{suffix}"),
            Self::Ip(ip) => ip.to_string(),
        }
    }
}

fn normalise_pattern_host(raw: &str) -> Result<HostPattern, String> {
    let unbracketed = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(raw);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(HostPattern::Ip(ip));
    }
    let without_dot = host_name(raw)?;
    match Host::parse(without_dot) {
        Ok(Host::Domain(name)) => Ok(HostPattern::Exact(host_name(&name)?.to_owned())),
        Ok(Host::Ipv4(ip)) => Ok(HostPattern::Ip(IpAddr::V4(ip))),
        Ok(Host::Ipv6(ip)) => Ok(HostPattern::Ip(IpAddr::V6(ip))),
        Err(e) => Err(e.to_string()),
    }
}

/// The one rule for host names, applied to URL hosts, `allow_hosts` / `deny_hosts` patterns
/// and the metadata-name list alike: one trailing dot (the DNS root) is dropped; any other
/// empty label (`a..b`, `.a`, `a..`) is refused. Resolvers read `vault.example..` as
/// `vault.example`, so a rule that compared strings would see a different name than DNS.
pub(crate) fn host_name(raw: &str) -> Result<&str, String> {
    let name = raw.strip_suffix('.').unwrap_or(raw);
    if name.is_empty() {
        return Err("empty host".to_owned());
    }
    if name.split('.').any(str::is_empty) {
        return Err(format!(
            "host {:?} has an empty label; write it with at most one trailing dot and no '..'",
            shorten(raw)
        ));
    }
    Ok(name)
}

/// Builds an [`EgressPolicy`] from plain data (strings and numbers, as read from a config
/// file or passed from Ruby). Every value is validated in [`build`](Self::build).
///
/// ```
/// use portcullis::egress::EgressPolicy;
/// let policy = EgressPolicy::builder()
///     .schemes(["https", "http"])        // default: https only
///     .ports([443, 8443])                 // default: 443, plus 80 when http is allowed
///     .allow_hosts(["api.example.com", "*.internal.example"])
///     .deny_hosts(["legacy.internal.example"])
///     .allow_cidrs(["10.20.0.0/16"])      // internal services the app may reach
///     .deny_cidrs(["10.20.99.0/24"])      // except these, whatever else says
///     .strict(true)                       // default
///     .allow_nat64(true)                  // default
///     .allow_6to4(false)                  // default: 2002::/16 refused (RFC 7526)
///     .allow_teredo(false)                // default: 2001::/32 refused
///     .build()?;
/// # Ok::<(), portcullis::egress::EgressError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct EgressPolicyBuilder {
    schemes: Vec<String>,
    ports: Option<Vec<u16>>,
    allow_hosts: Vec<String>,
    deny_hosts: Vec<String>,
    allow_cidrs: Vec<String>,
    deny_cidrs: Vec<String>,
    strict: bool,
    allow_nat64: bool,
    allow_6to4: bool,
    allow_teredo: bool,
}

impl Default for EgressPolicyBuilder {
    fn default() -> Self {
        Self {
            schemes: vec!["https".to_owned()],
            ports: None,
            allow_hosts: Vec::new(),
            deny_hosts: Vec::new(),
            allow_cidrs: Vec::new(),
            deny_cidrs: Vec::new(),
            strict: true,
            allow_nat64: true,
            allow_6to4: false,
            allow_teredo: false,
        }
    }
}

fn strings<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    items.into_iter().map(|s| s.as_ref().to_owned()).collect()
}

impl EgressPolicyBuilder {
    /// Allowed schemes among `http`, `https`, `ws`, `wss`. Default: `["https"]`.
    pub fn schemes<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, schemes: I) -> Self {
        self.schemes = strings(schemes);
        self
    }

    /// Allowed ports. Default: 443, plus 80 when `http` or `ws` is allowed.
    pub fn ports<I: IntoIterator<Item = u16>>(mut self, ports: I) -> Self {
        self.ports = Some(ports.into_iter().collect());
        self
    }

    /// Host allowlist: exact names, `*.suffix` patterns, or IP literals. Empty (the
    /// default) allows any host that passes the address checks. When non-empty, an IP
    /// literal URL is allowed only if that IP is listed here.
    pub fn allow_hosts<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, hosts: I) -> Self {
        self.allow_hosts = strings(hosts);
        self
    }

    /// Host denylist, same pattern syntax; checked before the allowlist.
    pub fn deny_hosts<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, hosts: I) -> Self {
        self.deny_hosts = strings(hosts);
        self
    }

    /// CIDRs (or single addresses) allowed even though the default denylist covers them.
    /// They do not open cloud metadata addresses unless they lie inside the metadata entry
    /// (e.g. `169.254.169.254/32`).
    pub fn allow_cidrs<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, cidrs: I) -> Self {
        self.allow_cidrs = strings(cidrs);
        self
    }

    /// CIDRs (or single addresses) always denied; they beat every other rule.
    pub fn deny_cidrs<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, cidrs: I) -> Self {
        self.deny_cidrs = strings(cidrs);
        self
    }

    /// Strict URL checks on the raw input (userinfo, backslashes, control characters,
    /// encoded hosts). Default: on.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Whether NAT64 addresses (`64:ff9b::/96`, `64:ff9b:1::/48`) are judged as the IPv4
    /// address they carry (default, for dual-stack clouds) or denied outright. An
    /// `allow_cidrs` entry covering the IPv6 form re-opens a denied prefix, but the IPv4
    /// address inside is still judged.
    pub fn allow_nat64(mut self, allow: bool) -> Self {
        self.allow_nat64 = allow;
        self
    }

    /// Whether 6to4 addresses (`2002::/16`) are judged as the IPv4 address they carry, or
    /// refused outright with `egress.ipv6_tunnel` (the default: 6to4 is deprecated by
    /// RFC 7526 and a relay forwards to whatever IPv4 address the client names). As with
    /// NAT64, an `allow_cidrs` entry covering the IPv6 form re-opens it, and the IPv4
    /// address inside is still judged.
    ///
    /// ```
    /// use portcullis::{ErrorCode, egress::EgressPolicy};
    /// let ip = "2002:808:808::".parse().unwrap(); // 6to4 of 8.8.8.8
    /// assert_eq!(EgressPolicy::default().check_ip(ip).unwrap_err().code(), "egress.ipv6_tunnel");
    /// assert!(EgressPolicy::builder().allow_6to4(true).build()?.check_ip(ip).is_ok());
    /// # Ok::<(), portcullis::egress::EgressError>(())
    /// ```
    pub fn allow_6to4(mut self, allow: bool) -> Self {
        self.allow_6to4 = allow;
        self
    }

    /// Whether Teredo addresses (`2001::/32`) are judged as the IPv4 client address they
    /// carry, or refused outright with `egress.ipv6_tunnel` (the default). Same re-opening
    /// rule as [`allow_6to4`](Self::allow_6to4).
    ///
    /// ```
    /// use portcullis::{ErrorCode, egress::EgressPolicy};
    /// let ip = "2001:0:4136:e378:8000:63bf:a247:27dd".parse().unwrap(); // client 93.184.216.34
    /// assert_eq!(EgressPolicy::default().check_ip(ip).unwrap_err().code(), "egress.ipv6_tunnel");
    /// assert!(EgressPolicy::builder().allow_teredo(true).build()?.check_ip(ip).is_ok());
    /// # Ok::<(), portcullis::egress::EgressError>(())
    /// ```
    pub fn allow_teredo(mut self, allow: bool) -> Self {
        self.allow_teredo = allow;
        self
    }

    /// Validates everything and builds the policy.
    ///
    /// ```
    /// use portcullis::{ErrorCode, egress::EgressPolicy};
    /// let err = EgressPolicy::builder().allow_cidrs(["10.0.0.0/33"]).build().unwrap_err();
    /// assert_eq!(err.code(), "egress.invalid_policy");
    /// ```
    pub fn build(self) -> Result<EgressPolicy, EgressError> {
        let mut schemes = Vec::new();
        for raw in &self.schemes {
            let scheme = raw.trim().to_ascii_lowercase();
            if !KNOWN_SCHEMES.contains(&scheme.as_str()) {
                return Err(EgressError::InvalidPolicy {
                    reason: format!(
                        "scheme {:?} is not supported (supported: {})",
                        shorten(raw),
                        KNOWN_SCHEMES.join(", ")
                    ),
                });
            }
            if !schemes.contains(&scheme) {
                schemes.push(scheme);
            }
        }
        if schemes.is_empty() {
            return Err(EgressError::InvalidPolicy {
                reason: "no schemes allowed".to_owned(),
            });
        }
        let ports = match self.ports {
            Some(ports) => ports,
            None => {
                let mut ports = vec![443];
                if schemes.iter().any(|s| s == "http" || s == "ws") {
                    ports.push(80);
                }
                ports
            }
        };
        if ports.is_empty() || ports.contains(&0) {
            return Err(EgressError::InvalidPolicy {
                reason: "ports must be a non-empty list of ports 1-65535".to_owned(),
            });
        }
        let patterns = |raw: &[String]| -> Result<Vec<HostPattern>, EgressError> {
            raw.iter().map(|p| HostPattern::parse(p)).collect()
        };
        Ok(EgressPolicy {
            schemes,
            ports,
            allow_hosts: patterns(&self.allow_hosts)?,
            deny_hosts: patterns(&self.deny_hosts)?,
            allow_cidrs: parse_cidrs(&self.allow_cidrs)?,
            deny_cidrs: parse_cidrs(&self.deny_cidrs)?,
            strict: self.strict,
            allow_nat64: self.allow_nat64,
            allow_6to4: self.allow_6to4,
            allow_teredo: self.allow_teredo,
        })
    }
}

fn parse_cidrs(raw: &[String]) -> Result<Vec<IpNet>, EgressError> {
    raw.iter()
        .map(|r| {
            let text = r.trim();
            text.parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| EgressError::InvalidPolicy {
                    reason: format!("{:?} is not a CIDR or IP address", shorten(r)),
                })
        })
        .collect()
}

/// Which URLs and addresses the app may connect to. Build one with
/// [`EgressPolicy::builder`]; [`EgressPolicy::default`] allows `https` on port 443 to any
/// public address. See the [module docs](super) for the rules and their precedence.
///
/// ```
/// use portcullis::{ErrorCode, egress::EgressPolicy};
/// let policy = EgressPolicy::default();
/// for bad in ["https://2130706433/", "https://0177.0.0.1/", "https://[::ffff:127.0.0.1]/",
///             "https://[64:ff9b::a9fe:a9fe]/", "https://user@93.184.216.34/"] {
///     assert!(policy.check_url(bad).is_err(), "{bad}");
/// }
/// assert!(policy.check_url("https://93.184.216.34/").is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct EgressPolicy {
    schemes: Vec<String>,
    ports: Vec<u16>,
    allow_hosts: Vec<HostPattern>,
    deny_hosts: Vec<HostPattern>,
    allow_cidrs: Vec<IpNet>,
    deny_cidrs: Vec<IpNet>,
    strict: bool,
    allow_nat64: bool,
    allow_6to4: bool,
    allow_teredo: bool,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self {
            schemes: vec!["https".to_owned()],
            ports: vec![443],
            allow_hosts: Vec::new(),
            deny_hosts: Vec::new(),
            allow_cidrs: Vec::new(),
            deny_cidrs: Vec::new(),
            strict: true,
            allow_nat64: true,
            allow_6to4: false,
            allow_teredo: false,
        }
    }
}

/// A URL that passed the URL and name checks and awaits resolution: the first half of
/// [`EgressPolicy::check_with`], for callers that resolve names themselves (the Ruby
/// binding calls a Ruby resolver between the halves). Finish with
/// [`EgressPolicy::check_answers`].
///
/// ```
/// use portcullis::egress::EgressPolicy;
/// let policy = EgressPolicy::default();
/// let pending = policy.check_url("https://api.example.com/")?;
/// assert_eq!(pending.resolve_name(), Some("api.example.com"));
/// let dest = policy.check_answers(pending, vec!["93.184.216.34".parse().unwrap()])?;
/// assert_eq!(dest.addrs.len(), 1);
/// # Ok::<(), portcullis::egress::EgressError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingUrl {
    url: Url,
    host: String,
    port: u16,
    literal: Option<IpAddr>,
}

impl PendingUrl {
    /// The host name to resolve, or `None` when the URL's host is an IP literal (already
    /// checked; no resolution needed).
    pub fn resolve_name(&self) -> Option<&str> {
        match self.literal {
            Some(_) => None,
            None => Some(&self.host),
        }
    }

    /// The canonical URL.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

impl EgressPolicy {
    /// A builder with the defaults: `https` only, port 443, any public host, strict.
    pub fn builder() -> EgressPolicyBuilder {
        EgressPolicyBuilder::default()
    }

    /// Checks `url` and resolves its host with the system resolver. Blocks on DNS.
    pub fn check(&self, url: &str) -> Result<Destination, EgressError> {
        self.check_with(url, &SystemResolver)
    }

    /// Checks `url`, resolving its host through `resolver`; every answer must pass.
    pub fn check_with<R: Resolve + ?Sized>(
        &self,
        url: &str,
        resolver: &R,
    ) -> Result<Destination, EgressError> {
        let pending = self.check_url(url)?;
        self.resolve_pending(pending, resolver)
    }

    /// The URL and name layers only (and the address layer for IP literals). See
    /// [`PendingUrl`].
    pub fn check_url(&self, url: &str) -> Result<PendingUrl, EgressError> {
        if url.len() > MAX_URL_LEN {
            return Err(too_long(url));
        }
        if self.strict {
            url_check::strict_checks(url)?;
        }
        let parsed = Url::parse(url).map_err(|e| EgressError::BadUrl {
            input: shorten(url),
            reason: e.to_string(),
        })?;
        self.check_parsed(parsed)
    }

    /// Checks a redirect: `location` (absolute or relative, as sent in the `Location`
    /// header) is resolved against `from` and judged like any URL; going from `https` to a
    /// plain scheme is refused. Resolves with the system resolver.
    ///
    /// ```
    /// use portcullis::{ErrorCode, egress::EgressPolicy};
    /// let policy = EgressPolicy::builder().schemes(["https", "http"]).build()?;
    /// let from = url::Url::parse("https://93.184.216.34/a/b").unwrap();
    /// let dest = policy.check_redirect(&from, "../c?d")?;
    /// assert_eq!(dest.url.as_str(), "https://93.184.216.34/c?d");
    /// assert_eq!(policy.check_redirect(&from, "http://93.184.216.34/").unwrap_err().code(), "egress.downgrade");
    /// assert_eq!(policy.check_redirect(&from, "//169.254.169.254/").unwrap_err().code(), "egress.metadata");
    /// # Ok::<(), portcullis::egress::EgressError>(())
    /// ```
    pub fn check_redirect(&self, from: &Url, location: &str) -> Result<Destination, EgressError> {
        self.check_redirect_with(from, location, &SystemResolver)
    }

    /// [`check_redirect`](Self::check_redirect) with an explicit resolver.
    pub fn check_redirect_with<R: Resolve + ?Sized>(
        &self,
        from: &Url,
        location: &str,
        resolver: &R,
    ) -> Result<Destination, EgressError> {
        let pending = self.check_redirect_url(from, location)?;
        self.resolve_pending(pending, resolver)
    }

    /// The URL and name layers of [`check_redirect`](Self::check_redirect).
    pub fn check_redirect_url(
        &self,
        from: &Url,
        location: &str,
    ) -> Result<PendingUrl, EgressError> {
        if location.len() > MAX_URL_LEN {
            return Err(too_long(location));
        }
        if self.strict {
            url_check::strict_checks(location)?;
        }
        let target = from.join(location).map_err(|e| EgressError::BadUrl {
            input: shorten(location),
            reason: e.to_string(),
        })?;
        let secure = |scheme: &str| scheme == "https" || scheme == "wss";
        // A scheme the policy does not allow at all is reported as such by check_parsed.
        let allowed = self.schemes.iter().any(|s| s == target.scheme());
        if allowed && secure(from.scheme()) && !secure(target.scheme()) {
            return Err(EgressError::Downgrade {
                from: shorten(from.as_str()),
                to: shorten(target.as_str()),
            });
        }
        self.check_parsed(target)
    }

    /// Finishes a [`PendingUrl`] with the addresses its name resolved to. Every answer must
    /// pass; an empty answer is a resolution failure. For an IP-literal URL the answers are
    /// ignored (the literal was already checked).
    pub fn check_answers(
        &self,
        pending: PendingUrl,
        answers: Vec<IpAddr>,
    ) -> Result<Destination, EgressError> {
        if let Some(ip) = pending.literal {
            return Ok(destination(pending, vec![ip]));
        }
        if answers.is_empty() {
            return Err(EgressError::ResolveFailed {
                host: pending.host,
                reason: "no addresses".to_owned(),
            });
        }
        let mut addrs: Vec<IpAddr> = Vec::with_capacity(answers.len());
        for ip in answers {
            self.check_ip(ip).map_err(|e| for_host(e, &pending.host))?;
            if !addrs.contains(&ip) {
                addrs.push(ip);
            }
        }
        Ok(destination(pending, addrs))
    }

    /// Judges one address by the precedence `deny_cidrs` > metadata > `allow_cidrs` >
    /// default reserved denylist > public. IPv4 carried in IPv6 is judged as IPv4.
    ///
    /// ```
    /// use portcullis::{ErrorCode, egress::EgressPolicy};
    /// let policy = EgressPolicy::builder().allow_cidrs(["169.254.0.0/16"]).build()?;
    /// assert!(policy.check_ip("169.254.1.1".parse().unwrap()).is_ok());
    /// // metadata is not opened by a broader allow
    /// assert_eq!(policy.check_ip("169.254.169.254".parse().unwrap()).unwrap_err().code(), "egress.metadata");
    /// assert_eq!(policy.check_ip("::ffff:a9fe:a9fe".parse().unwrap()).unwrap_err().code(), "egress.metadata");
    /// # Ok::<(), portcullis::egress::EgressError>(())
    /// ```
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), EgressError> {
        let embedded = match ip {
            IpAddr::V6(v6) => ranges::embedded_ipv4(v6),
            IpAddr::V4(_) => None,
        };
        let effective = embedded.map_or(ip, |(v4, _)| IpAddr::V4(v4));
        let target = || match embedded {
            Some((v4, how)) => format!("{ip} ({how} {v4})"),
            None => ip.to_string(),
        };

        if let Some(net) = self
            .deny_cidrs
            .iter()
            .find(|net| net.contains(&effective) || net.contains(&ip))
        {
            return Err(EgressError::DeniedCidr {
                target: target(),
                cidr: net.to_string(),
            });
        }
        for candidate in [effective, ip] {
            if let Some((meta_net, range)) = ranges::metadata_net(candidate) {
                let named = self
                    .allow_cidrs
                    .iter()
                    .any(|allow| allow.contains(&candidate) && meta_net.contains(allow));
                if !named {
                    return Err(EgressError::Metadata {
                        target: target(),
                        range: range.cidr.to_owned(),
                        name: range.name.to_owned(),
                    });
                }
            }
        }
        // A carrier this policy turned off is refused unless an allow_cidrs entry covers
        // the IPv6 form; even then the IPv4 address inside is judged below, never waved
        // through (re-opening a prefix must not open more than leaving it on would).
        if let Some((_, how)) = embedded {
            if !self.carrier_allowed(how) && !self.allow_cidrs.iter().any(|net| net.contains(&ip)) {
                return Err(match how {
                    Embedding::SixToFour | Embedding::Teredo => {
                        let (range, option) = ranges::tunnel(how);
                        EgressError::Ipv6Tunnel {
                            target: target(),
                            range: range.cidr.to_owned(),
                            name: range.name.to_owned(),
                            option: option.to_owned(),
                        }
                    }
                    _ => {
                        let range = ranges::nat64_disabled();
                        EgressError::ReservedAddress {
                            target: target(),
                            range: range.cidr.to_owned(),
                            name: range.name.to_owned(),
                        }
                    }
                });
            }
        }
        if self.allow_cidrs.iter().any(|net| net.contains(&effective)) {
            return Ok(());
        }
        let reserved = match effective {
            IpAddr::V4(v4) => ranges::reserved_v4(v4),
            IpAddr::V6(v6) => ranges::reserved_v6(v6),
        };
        match reserved {
            Some(range) => Err(EgressError::ReservedAddress {
                target: target(),
                range: range.cidr.to_owned(),
                name: range.name.to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Whether the policy judges addresses carried this way as their IPv4 address (rather
    /// than refusing the carrier).
    fn carrier_allowed(&self, how: Embedding) -> bool {
        match how {
            Embedding::Nat64 | Embedding::Nat64LocalUse => self.allow_nat64,
            Embedding::SixToFour => self.allow_6to4,
            Embedding::Teredo => self.allow_teredo,
            _ => true,
        }
    }

    /// Resolves a [`PendingUrl`]'s name through `resolver` and checks every answer: the
    /// second half of [`check_with`](Self::check_with). For an IP-literal URL the resolver
    /// is not called.
    pub fn resolve_pending<R: Resolve + ?Sized>(
        &self,
        pending: PendingUrl,
        resolver: &R,
    ) -> Result<Destination, EgressError> {
        let answers = match pending.resolve_name() {
            None => Vec::new(),
            Some(name) => resolver
                .resolve(name)
                .map_err(|e| EgressError::ResolveFailed {
                    host: name.to_owned(),
                    reason: e.to_string(),
                })?,
        };
        self.check_answers(pending, answers)
    }

    fn check_parsed(&self, url: Url) -> Result<PendingUrl, EgressError> {
        if self.strict && (!url.username().is_empty() || url.password().is_some()) {
            return Err(EgressError::Userinfo {
                input: shorten(url.as_str()),
            });
        }
        if !self.schemes.iter().any(|s| s == url.scheme()) {
            return Err(EgressError::Scheme {
                scheme: url.scheme().to_owned(),
                allowed: self.schemes.join(", "),
            });
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| EgressError::BadUrl {
                input: shorten(url.as_str()),
                reason: "no port".to_owned(),
            })?;
        if !self.ports.contains(&port) {
            return Err(EgressError::Port {
                port,
                allowed: self
                    .ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let literal = match url.host() {
            None => {
                return Err(EgressError::BadUrl {
                    input: shorten(url.as_str()),
                    reason: "no host".to_owned(),
                })
            }
            Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(Host::Domain(_)) => None,
        };
        let host = match literal {
            Some(ip) => {
                self.check_literal_host(ip)?;
                ip.to_string()
            }
            None => {
                let raw = url.host_str().unwrap_or_default();
                let name = host_name(raw)
                    .map_err(|reason| EgressError::BadUrl {
                        input: shorten(url.as_str()),
                        reason,
                    })?
                    .to_owned();
                self.check_name(&name)?;
                name
            }
        };
        Ok(PendingUrl {
            url,
            host,
            port,
            literal,
        })
    }

    fn check_literal_host(&self, ip: IpAddr) -> Result<(), EgressError> {
        if let Some(p) = self.deny_hosts.iter().find(|p| **p == HostPattern::Ip(ip)) {
            return Err(EgressError::HostDenied {
                host: ip.to_string(),
                pattern: p.display(),
            });
        }
        if !self.allow_hosts.is_empty() && !self.allow_hosts.contains(&HostPattern::Ip(ip)) {
            return Err(EgressError::HostNotAllowed {
                host: ip.to_string(),
            });
        }
        self.check_ip(ip)
    }

    fn check_name(&self, name: &str) -> Result<(), EgressError> {
        if name.is_empty() {
            return Err(EgressError::BadUrl {
                input: String::new(),
                reason: "empty host".to_owned(),
            });
        }
        if let Some(p) = self.deny_hosts.iter().find(|p| p.matches_name(name)) {
            return Err(EgressError::HostDenied {
                host: name.to_owned(),
                pattern: p.display(),
            });
        }
        if ranges::is_metadata_name(name)
            && !self
                .allow_hosts
                .contains(&HostPattern::Exact(name.to_owned()))
        {
            return Err(EgressError::Metadata {
                target: name.to_owned(),
                range: name.to_owned(),
                name: "cloud metadata service name".to_owned(),
            });
        }
        if !self.allow_hosts.is_empty() && !self.allow_hosts.iter().any(|p| p.matches_name(name)) {
            return Err(EgressError::HostNotAllowed {
                host: name.to_owned(),
            });
        }
        Ok(())
    }
}

fn too_long(input: &str) -> EgressError {
    EgressError::BadUrl {
        input: shorten(input),
        reason: format!("longer than {MAX_URL_LEN} bytes"),
    }
}

/// Names the host in an address error, so "api.example.com resolved to 10.0.0.5" is clear.
fn for_host(err: EgressError, host: &str) -> EgressError {
    match err {
        EgressError::ReservedAddress {
            target,
            range,
            name,
        } => EgressError::ReservedAddress {
            target: format!("{target} (an address of {host})"),
            range,
            name,
        },
        EgressError::Metadata {
            target,
            range,
            name,
        } => EgressError::Metadata {
            target: format!("{target} (an address of {host})"),
            range,
            name,
        },
        EgressError::DeniedCidr { target, cidr } => EgressError::DeniedCidr {
            target: format!("{target} (an address of {host})"),
            cidr,
        },
        EgressError::Ipv6Tunnel {
            target,
            range,
            name,
            option,
        } => EgressError::Ipv6Tunnel {
            target: format!("{target} (an address of {host})"),
            range,
            name,
            option,
        },
        other => other,
    }
}

/// IPv4-mapped answers (`::ffff:a.b.c.d`) were judged as IPv4, so they are pinned as the
/// IPv4 address too: a v6 socket to a mapped address fails on hosts without dual-stack.
fn destination(pending: PendingUrl, addrs: Vec<IpAddr>) -> Destination {
    let mut pinned: Vec<IpAddr> = Vec::with_capacity(addrs.len());
    for ip in addrs.into_iter().map(|ip| ip.to_canonical()) {
        if !pinned.contains(&ip) {
            pinned.push(ip);
        }
    }
    Destination {
        url: pending.url,
        host: pending.host,
        port: pending.port,
        addrs: pinned,
    }
}

#[cfg(test)]
mod tests {
    use super::host_name;
    use crate::egress::ranges::METADATA_NAMES;

    #[test]
    fn metadata_names_are_in_the_one_host_name_form() {
        // is_metadata_name compares normalised names; a list entry the rule would
        // rewrite (a trailing dot, an empty label, uppercase) could never match.
        for name in METADATA_NAMES {
            assert_eq!(host_name(name), Ok(name));
            assert_eq!(name.to_ascii_lowercase(), name);
        }
        assert_eq!(host_name("a.example."), Ok("a.example"));
        assert!(host_name("a.example..").is_err());
        assert!(host_name("a..example").is_err());
        assert!(host_name(".a.example").is_err());
        assert!(host_name(".").is_err());
        assert!(host_name("").is_err());
    }
}
