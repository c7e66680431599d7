//! Authorization: which verified [`Identity`] may do what.
//!
//! Having a valid certificate says *who* a client is, not what it may do. An
//! [`AccessPolicy`] is a list of [`Rule`]s; each rule matches identities (every field set
//! in its [`Match`] must hold) and grants named permissions. Anything not granted is
//! denied.
//!
//! Matching is structural, never by raw string: DNs are compared as parsed attribute
//! sequences, DNS names label by label, SPIFFE IDs segment by segment.
//!
//! ```
//! use portcullis::authz::{AccessPolicy, Match, Rule};
//!
//! let policy = AccessPolicy::new(vec![Rule {
//!     matcher: Match {
//!         issuer: Some("CN=Ops CA,O=MyOrg".into()),
//!         spiffe_prefix: Some("spiffe://example.org/ops/".into()),
//!         ..Match::default()
//!     },
//!     grants: vec!["containers:deploy".into()],
//! }])?;
//! assert_eq!(policy.rule_count(), 1);
//! # Ok::<(), portcullis::authz::AuthzError>(())
//! ```

use crate::identity::{DistinguishedName, Identity};
use crate::ErrorCode;

mod routes;
pub use routes::{canonical_path, is_canonical_path, RouteRequirements, SkipRoutes};

/// Longest SPIFFE ID the SPIFFE specification allows, in bytes.
const MAX_SPIFFE_ID_LEN: usize = 2048;
/// Longest permission name accepted in a rule.
const MAX_PERMISSION_LEN: usize = 256;

/// What an identity must look like for a [`Rule`] to apply. Every field that is set must
/// match (AND); a `Match` with no field set is refused when the policy is built, because it
/// would grant to every client with a valid certificate.
///
/// - `issuer`, `subject`: RFC 4514 DNs, compared structurally (attribute types by OID,
///   values ignoring case and insignificant whitespace), whole DN against whole DN.
/// - `cn`: the leaf's most specific commonName, compared exactly (case-sensitive).
/// - `dns`: a DNS SAN, exactly (`api.example.com`, case-insensitive) or as `*.example.com`:
///   any name at least one label beneath `example.com`, but not `example.com` itself and not
///   `evilexample.com`.
/// - `spiffe_id`: the SPIFFE ID, exactly.
/// - `spiffe_trust_domain`: `example.org` or `spiffe://example.org`.
/// - `spiffe_prefix`: `spiffe://example.org/ops` matches that ID and every ID beneath it;
///   with a trailing slash (`spiffe://example.org/ops/`) only IDs strictly beneath it.
///   Whole path segments only: `/ops` never matches `/opsevil`.
///
/// ```
/// use portcullis::authz::Match;
/// let m = Match { dns: Some("*.svc.example.com".into()), ..Match::default() };
/// assert!(!m.is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Match {
    /// Issuer DN of the leaf (RFC 4514).
    pub issuer: Option<String>,
    /// Subject DN of the leaf (RFC 4514).
    pub subject: Option<String>,
    /// Most specific commonName of the leaf, exact.
    pub cn: Option<String>,
    /// A DNS SAN: exact, or `*.suffix`.
    pub dns: Option<String>,
    /// The SPIFFE ID, exact.
    pub spiffe_id: Option<String>,
    /// The SPIFFE trust domain.
    pub spiffe_trust_domain: Option<String>,
    /// A SPIFFE ID path prefix, on segment boundaries.
    pub spiffe_prefix: Option<String>,
}

impl Match {
    /// Whether no field is set (such a match is refused by [`AccessPolicy::new`]).
    ///
    /// ```
    /// assert!(portcullis::authz::Match::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.issuer.is_none()
            && self.subject.is_none()
            && self.cn.is_none()
            && self.dns.is_none()
            && self.spiffe_id.is_none()
            && self.spiffe_trust_domain.is_none()
            && self.spiffe_prefix.is_none()
    }
}

/// One rule: identities matching `matcher` are granted every permission in `grants`.
///
/// ```
/// use portcullis::authz::{Match, Rule};
/// let rule = Rule {
///     matcher: Match { cn: Some("deployer".into()), ..Match::default() },
///     grants: vec!["containers:deploy".into()],
/// };
/// assert_eq!(rule.grants.len(), 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// Which identities the rule applies to.
    pub matcher: Match,
    /// Permission names granted (non-empty, no whitespace or control characters).
    pub grants: Vec<String>,
}

/// Why a policy could not be built, or why an identity was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthzError {
    /// The identity is valid but no rule grants it the permission it asked for.
    #[error("{identity} is not granted {permission:?}: add a rule that grants it, or call with an identity that has it")]
    Forbidden {
        /// The permission that was asked for.
        permission: String,
        /// Who asked (SPIFFE ID, else subject DN, else fingerprint).
        identity: String,
    },
    /// A rule has no matcher field set, so it would grant its permissions to every client
    /// with a valid certificate.
    #[error("rule {rule} matches every identity: set at least one of issuer, subject, cn, dns, spiffe_id, spiffe_trust_domain, spiffe_prefix")]
    EmptyMatch {
        /// Index of the rule (0-based).
        rule: usize,
    },
    /// A matcher field of a rule is malformed (unparsable DN, invalid DNS name, malformed
    /// SPIFFE ID, …).
    #[error("rule {rule}: {field} {value:?} is invalid: {reason}")]
    BadRule {
        /// Index of the rule (0-based).
        rule: usize,
        /// The field (`issuer`, `dns`, `spiffe_prefix`, …).
        field: &'static str,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A granted permission name is empty, too long, or has whitespace or control characters.
    #[error("rule {rule}: permission {permission:?} is invalid: use a non-empty name without whitespace (e.g. \"containers:deploy\")")]
    BadPermission {
        /// Index of the rule (0-based).
        rule: usize,
        /// The offending permission name.
        permission: String,
    },
    /// A rule grants nothing; it is almost certainly a mistake.
    #[error("rule {rule} grants no permission: list at least one in grants")]
    NoGrants {
        /// Index of the rule (0-based).
        rule: usize,
    },
    /// A [`RouteRequirements`] entry is malformed (not `"/path"` or `"VERB /path"`, or
    /// names no permission).
    #[error("route {route:?} {reason}")]
    BadRoute {
        /// The offending route key.
        route: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ErrorCode for AuthzError {
    fn code(&self) -> &'static str {
        match self {
            Self::Forbidden { .. } => "authz.forbidden",
            Self::EmptyMatch { .. } => "authz.empty_match",
            Self::BadRule { .. } => "authz.bad_rule",
            Self::BadPermission { .. } => "authz.bad_permission",
            Self::NoGrants { .. } => "authz.no_grants",
            Self::BadRoute { .. } => "authz.bad_route",
        }
    }
}

/// A SPIFFE ID split into its lowercase trust domain and path segments.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SpiffeId {
    trust_domain: String,
    segments: Vec<String>,
}

/// Parses a SPIFFE ID per the SPIFFE ID specification: `spiffe://` + trust domain
/// (`[a-z0-9._-]`, scheme and trust domain case-insensitive, normalized to lowercase) +
/// optional path of non-empty segments of `[A-Za-z0-9._-]`, no `.`/`..` segments, no
/// query, fragment, port, userinfo or percent-encoding. With `allow_trailing_slash`, one
/// trailing `/` is accepted (for prefixes) and reported in the second tuple field.
fn parse_spiffe(s: &str, allow_trailing_slash: bool) -> Result<(SpiffeId, bool), String> {
    if s.len() > MAX_SPIFFE_ID_LEN {
        return Err(format!("longer than {MAX_SPIFFE_ID_LEN} bytes"));
    }
    let rest = s
        .get(..9)
        .filter(|scheme| scheme.eq_ignore_ascii_case("spiffe://"))
        .and_then(|_| s.get(9..))
        .ok_or_else(|| "must start with spiffe://".to_owned())?;
    let (td, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let trust_domain = parse_trust_domain(td)?;
    let mut trailing = false;
    let mut path = path;
    if allow_trailing_slash && path.len() > 1 && path.ends_with('/') {
        trailing = true;
        path = &path[..path.len() - 1];
    }
    let mut segments = Vec::new();
    if !path.is_empty() {
        for seg in path[1..].split('/') {
            if seg.is_empty() {
                return Err("empty path segment (// or trailing /)".to_owned());
            }
            if seg == "." || seg == ".." {
                return Err(format!("path segment {seg:?} is not allowed"));
            }
            if let Some(c) = seg
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
            {
                return Err(format!(
                    "path character {c:?} is not allowed (only A-Z a-z 0-9 . - _)"
                ));
            }
            segments.push(seg.to_owned());
        }
    }
    Ok((
        SpiffeId {
            trust_domain,
            segments,
        },
        trailing,
    ))
}

fn parse_trust_domain(td: &str) -> Result<String, String> {
    if td.is_empty() {
        return Err("empty trust domain".to_owned());
    }
    let td = td.to_ascii_lowercase();
    if let Some(c) = td
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')))
    {
        return Err(format!(
            "trust domain character {c:?} is not allowed (only a-z 0-9 . - _; no port, userinfo, query or fragment)"
        ));
    }
    Ok(td)
}

/// A DNS name in a rule: lowercase labels, no trailing dot.
fn parse_dns_name(s: &str) -> Result<Vec<String>, String> {
    let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 {
        return Err("must be 1 to 253 characters".to_owned());
    }
    let labels: Vec<String> = name.split('.').map(str::to_owned).collect();
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err("every label must be 1 to 63 characters".to_owned());
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
        {
            return Err(format!(
                "character {c:?} is not allowed (use A-labels, xn--, for IDNs; `*` only as a leading `*.`)"
            ));
        }
    }
    Ok(labels)
}

/// A SAN from a certificate, as labels; `None` when it is not a plain DNS name (wildcard
/// SANs in client certificates never match anything).
fn san_labels(san: &str) -> Option<Vec<String>> {
    parse_dns_name(san).ok()
}

#[derive(Clone, Debug)]
enum DnsMatcher {
    Exact(Vec<String>),
    /// `*.suffix`: names with more labels than `suffix`, ending in it.
    Beneath(Vec<String>),
}

#[derive(Clone, Debug)]
struct SpiffePrefix {
    id: SpiffeId,
    strictly_beneath: bool,
}

#[derive(Clone, Debug)]
struct CompiledMatch {
    issuer: Option<DistinguishedName>,
    subject: Option<DistinguishedName>,
    cn: Option<String>,
    dns: Option<DnsMatcher>,
    spiffe_id: Option<SpiffeId>,
    spiffe_trust_domain: Option<String>,
    spiffe_prefix: Option<SpiffePrefix>,
}

#[derive(Clone, Debug)]
struct CompiledRule {
    matcher: CompiledMatch,
    grants: Vec<String>,
}

/// Rules mapping identities to permissions; default deny.
///
/// ```
/// use portcullis::authz::{AccessPolicy, Match, Rule};
/// // A rule without any matcher would grant to everyone: refused.
/// let err = AccessPolicy::new(vec![Rule { matcher: Match::default(), grants: vec!["x".into()] }]);
/// assert!(err.is_err());
/// ```
#[derive(Clone, Debug)]
pub struct AccessPolicy {
    rules: Vec<CompiledRule>,
}

impl AccessPolicy {
    /// Validates and compiles `rules`. Fails on a rule without matcher fields, without
    /// grants, with an unparsable DN, DNS name or SPIFFE ID, or with a bad permission name.
    ///
    /// ```
    /// use portcullis::authz::{AccessPolicy, Match, Rule};
    /// let bad = Rule {
    ///     matcher: Match { spiffe_prefix: Some("spiffe://example.org/../x".into()), ..Match::default() },
    ///     grants: vec!["x".into()],
    /// };
    /// let err = AccessPolicy::new(vec![bad]).unwrap_err();
    /// assert_eq!(portcullis::ErrorCode::code(&err), "authz.bad_rule");
    /// ```
    pub fn new(rules: Vec<Rule>) -> Result<Self, AuthzError> {
        let rules = rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| compile(i, rule))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { rules })
    }

    /// Number of rules.
    ///
    /// ```
    /// assert_eq!(portcullis::authz::AccessPolicy::new(vec![]).unwrap().rule_count(), 0);
    /// ```
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Whether some rule matching `identity` grants `permission`.
    ///
    /// ```
    /// use portcullis::authz::AccessPolicy;
    /// # fn f(id: &portcullis::identity::Identity) {
    /// let policy = AccessPolicy::new(vec![]).unwrap();
    /// assert!(!policy.allowed(id, "anything")); // default deny
    /// # }
    /// ```
    pub fn allowed(&self, identity: &Identity, permission: &str) -> bool {
        let view = IdentityView::new(identity);
        self.rules
            .iter()
            .any(|r| r.grants.iter().any(|g| g == permission) && r.matcher.matches(&view))
    }

    /// `Ok(())` when [`allowed`](Self::allowed), else [`AuthzError::Forbidden`].
    ///
    /// ```
    /// use portcullis::authz::{AccessPolicy, AuthzError};
    /// # fn f(id: &portcullis::identity::Identity) {
    /// let policy = AccessPolicy::new(vec![]).unwrap();
    /// assert!(matches!(policy.authorize(id, "x"), Err(AuthzError::Forbidden { .. })));
    /// # }
    /// ```
    pub fn authorize(&self, identity: &Identity, permission: &str) -> Result<(), AuthzError> {
        if self.allowed(identity, permission) {
            return Ok(());
        }
        let who = identity
            .spiffe_id
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| Some(identity.subject.to_string()).filter(|s| !s.is_empty()))
            .unwrap_or_else(|| format!("certificate {}", identity.fingerprint));
        Err(AuthzError::Forbidden {
            permission: permission.to_owned(),
            identity: who,
        })
    }

    /// Every permission granted to `identity`, sorted and without duplicates.
    ///
    /// ```
    /// use portcullis::authz::AccessPolicy;
    /// # fn f(id: &portcullis::identity::Identity) {
    /// assert!(AccessPolicy::new(vec![]).unwrap().permissions(id).is_empty());
    /// # }
    /// ```
    pub fn permissions(&self, identity: &Identity) -> Vec<String> {
        let view = IdentityView::new(identity);
        let mut out: Vec<String> = self
            .rules
            .iter()
            .filter(|r| r.matcher.matches(&view))
            .flat_map(|r| r.grants.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// A permission name: non-empty, at most 256 bytes, no whitespace or control characters.
fn valid_permission(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PERMISSION_LEN
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn compile(i: usize, rule: Rule) -> Result<CompiledRule, AuthzError> {
    let m = &rule.matcher;
    if m.is_empty() {
        return Err(AuthzError::EmptyMatch { rule: i });
    }
    if rule.grants.is_empty() {
        return Err(AuthzError::NoGrants { rule: i });
    }
    for g in &rule.grants {
        if !valid_permission(g) {
            return Err(AuthzError::BadPermission {
                rule: i,
                permission: g.clone(),
            });
        }
    }
    let bad = |field: &'static str, value: &str, reason: String| AuthzError::BadRule {
        rule: i,
        field,
        value: value.to_owned(),
        reason,
    };
    let dn = |field: &'static str, v: &Option<String>| -> Result<_, AuthzError> {
        v.as_deref()
            .map(|s| DistinguishedName::parse(s).map_err(|e| bad(field, s, e.message)))
            .transpose()
    };
    let issuer = dn("issuer", &m.issuer)?;
    let subject = dn("subject", &m.subject)?;
    let cn = match m.cn.as_deref() {
        Some("") => return Err(bad("cn", "", "must not be empty".to_owned())),
        other => other.map(str::to_owned),
    };
    let dns = match m.dns.as_deref() {
        None => None,
        Some(s) => Some(match s.strip_prefix("*.") {
            Some(suffix) => {
                DnsMatcher::Beneath(parse_dns_name(suffix).map_err(|r| bad("dns", s, r))?)
            }
            None => DnsMatcher::Exact(parse_dns_name(s).map_err(|r| bad("dns", s, r))?),
        }),
    };
    let spiffe_id = match m.spiffe_id.as_deref() {
        None => None,
        Some(s) => Some(
            parse_spiffe(s, false)
                .map_err(|r| bad("spiffe_id", s, r))?
                .0,
        ),
    };
    let spiffe_trust_domain = match m.spiffe_trust_domain.as_deref() {
        None => None,
        Some(s) => {
            let td = match s.get(..9) {
                Some(p) if p.eq_ignore_ascii_case("spiffe://") => {
                    let (id, _) =
                        parse_spiffe(s, false).map_err(|r| bad("spiffe_trust_domain", s, r))?;
                    if !id.segments.is_empty() {
                        return Err(bad(
                            "spiffe_trust_domain",
                            s,
                            "a trust domain has no path; use spiffe_prefix".to_owned(),
                        ));
                    }
                    id.trust_domain
                }
                _ => parse_trust_domain(s).map_err(|r| bad("spiffe_trust_domain", s, r))?,
            };
            Some(td)
        }
    };
    let spiffe_prefix = match m.spiffe_prefix.as_deref() {
        None => None,
        Some(s) => {
            let (id, strictly_beneath) =
                parse_spiffe(s, true).map_err(|r| bad("spiffe_prefix", s, r))?;
            if id.segments.is_empty() {
                return Err(bad(
                    "spiffe_prefix",
                    s,
                    "a prefix needs a path; use spiffe_trust_domain for a whole trust domain"
                        .to_owned(),
                ));
            }
            Some(SpiffePrefix {
                id,
                strictly_beneath,
            })
        }
    };
    Ok(CompiledRule {
        matcher: CompiledMatch {
            issuer,
            subject,
            cn,
            dns,
            spiffe_id,
            spiffe_trust_domain,
            spiffe_prefix,
        },
        grants: rule.grants,
    })
}

/// The parts of an [`Identity`] matchers look at, parsed once per decision.
struct IdentityView<'a> {
    identity: &'a Identity,
    dns: Vec<Vec<String>>,
    spiffe: Option<SpiffeId>,
}

impl<'a> IdentityView<'a> {
    fn new(identity: &'a Identity) -> Self {
        Self {
            identity,
            dns: identity
                .dns_names
                .iter()
                .filter_map(|n| san_labels(n))
                .collect(),
            // An identity whose SPIFFE ID is malformed matches no SPIFFE matcher.
            spiffe: identity
                .spiffe_id
                .as_deref()
                .and_then(|s| parse_spiffe(s, false).ok())
                .map(|(id, _)| id),
        }
    }
}

impl CompiledMatch {
    fn matches(&self, v: &IdentityView<'_>) -> bool {
        let id = v.identity;
        if let Some(dn) = &self.issuer {
            if !dn.matches(&id.issuer) {
                return false;
            }
        }
        if let Some(dn) = &self.subject {
            if !dn.matches(&id.subject) {
                return false;
            }
        }
        if let Some(cn) = &self.cn {
            if id.common_name.as_deref() != Some(cn.as_str()) {
                return false;
            }
        }
        if let Some(dns) = &self.dns {
            let hit = v.dns.iter().any(|labels| match dns {
                DnsMatcher::Exact(want) => labels == want,
                DnsMatcher::Beneath(suffix) => {
                    labels.len() > suffix.len() && labels.ends_with(suffix)
                }
            });
            if !hit {
                return false;
            }
        }
        if self.spiffe_id.is_some()
            || self.spiffe_trust_domain.is_some()
            || self.spiffe_prefix.is_some()
        {
            let Some(sid) = &v.spiffe else {
                return false;
            };
            if let Some(want) = &self.spiffe_id {
                if want != sid {
                    return false;
                }
            }
            if let Some(td) = &self.spiffe_trust_domain {
                if td != &sid.trust_domain {
                    return false;
                }
            }
            if let Some(p) = &self.spiffe_prefix {
                let deeper_enough = if p.strictly_beneath {
                    sid.segments.len() > p.id.segments.len()
                } else {
                    sid.segments.len() >= p.id.segments.len()
                };
                if p.id.trust_domain != sid.trust_domain
                    || !deeper_enough
                    || !sid.segments.starts_with(&p.id.segments)
                {
                    return false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(subject: &str, issuer: &str) -> Identity {
        let subject = DistinguishedName::parse(subject).unwrap();
        Identity {
            common_name: subject.common_name().map(str::to_owned),
            subject,
            issuer: DistinguishedName::parse(issuer).unwrap(),
            dns_names: vec![],
            uris: vec![],
            emails: vec![],
            ips: vec![],
            spiffe_id: None,
            serial: "01".into(),
            fingerprint: "ab".repeat(32),
            not_before: 0,
            not_after: i64::MAX,
            chain_fingerprints: vec![],
            revocation_warning: None,
        }
    }

    fn with_spiffe(id: &str) -> Identity {
        let mut i = identity("O=Workloads", "CN=SPIFFE CA,O=MyOrg");
        i.uris = vec![id.to_owned()];
        i.spiffe_id = Some(id.to_owned());
        i
    }

    fn with_dns(names: &[&str]) -> Identity {
        let mut i = identity("CN=svc,O=MyOrg", "CN=Ops CA,O=MyOrg");
        i.dns_names = names.iter().map(|s| (*s).to_owned()).collect();
        i
    }

    fn policy(m: Match) -> AccessPolicy {
        AccessPolicy::new(vec![Rule {
            matcher: m,
            grants: vec!["p".into()],
        }])
        .unwrap()
    }

    fn build_err(m: Match) -> AuthzError {
        AccessPolicy::new(vec![Rule {
            matcher: m,
            grants: vec!["p".into()],
        }])
        .unwrap_err()
    }

    #[test]
    fn default_deny() {
        let p = AccessPolicy::new(vec![]).unwrap();
        let id = identity("CN=a,O=MyOrg", "CN=Ops CA,O=MyOrg");
        assert!(!p.allowed(&id, "p"));
        assert!(p.permissions(&id).is_empty());
        let err = p.authorize(&id, "p").unwrap_err();
        assert_eq!(err.code(), "authz.forbidden");
        assert!(err.to_string().contains("CN=a,O=MyOrg"), "{err}");
    }

    #[test]
    fn empty_match_and_bad_grants_are_build_errors() {
        assert_eq!(build_err(Match::default()).code(), "authz.empty_match");
        let m = Match {
            cn: Some("a".into()),
            ..Match::default()
        };
        for (grants, code) in [
            (vec![], "authz.no_grants"),
            (vec!["".to_owned()], "authz.bad_permission"),
            (vec!["a b".to_owned()], "authz.bad_permission"),
            (vec!["a\nb".to_owned()], "authz.bad_permission"),
            (vec!["x".repeat(300)], "authz.bad_permission"),
        ] {
            let err = AccessPolicy::new(vec![Rule {
                matcher: m.clone(),
                grants,
            }])
            .unwrap_err();
            assert_eq!(err.code(), code);
        }
        let empty_cn = Match {
            cn: Some(String::new()),
            ..Match::default()
        };
        assert_eq!(build_err(empty_cn).code(), "authz.bad_rule");
    }

    #[test]
    fn issuer_dn_is_structural() {
        let p = policy(Match {
            issuer: Some("CN=Ops CA, O=MyOrg".into()),
            ..Match::default()
        });
        assert!(p.allowed(&identity("CN=a", "cn=ops ca,o=myorg"), "p"));
        assert!(p.allowed(&identity("CN=a", "CN=Ops  CA,O=MyOrg"), "p"));
        assert!(!p.allowed(&identity("CN=a", "CN=Ops CA,O=MyOrg,C=DE"), "p"));
        assert!(!p.allowed(&identity("CN=a", "O=MyOrg,CN=Ops CA"), "p"));
        // A CA whose CN merely contains ",O=MyOrg" is a different, single-attribute issuer.
        assert!(!p.allowed(&identity("CN=a", r"CN=Ops CA\,O=MyOrg"), "p"));
        assert!(!p.allowed(&identity("CN=a", "CN=Ops CA"), "p"));
        assert!(!p.allowed(&identity("CN=a", "CN=Ops CA,O=MyOrg"), "q"));
    }

    #[test]
    fn subject_dn_with_embedded_separator_does_not_match() {
        let p = policy(Match {
            subject: Some("CN=deployer,O=MyOrg".into()),
            ..Match::default()
        });
        assert!(p.allowed(&identity("CN=deployer,O=MyOrg", "CN=CA"), "p"));
        assert!(!p.allowed(&identity(r"CN=deployer\,O=MyOrg", "CN=CA"), "p"));
        assert!(!p.allowed(&identity(r"CN=deployer\2CO=MyOrg,O=Evil", "CN=CA"), "p"));
        assert!(!p.allowed(&identity("CN=deployer,O=MyOrg,O=Evil", "CN=CA"), "p"));
        assert!(!p.allowed(&identity("CN=deployer+UID=1,O=MyOrg", "CN=CA"), "p"));
    }

    #[test]
    fn unparsable_dn_is_a_build_error() {
        let e = build_err(Match {
            issuer: Some("Ops CA".into()),
            ..Match::default()
        });
        assert_eq!(e.code(), "authz.bad_rule");
        assert!(e.to_string().contains("issuer"), "{e}");
    }

    #[test]
    fn cn_is_exact() {
        let p = policy(Match {
            cn: Some("deployer".into()),
            ..Match::default()
        });
        assert!(p.allowed(&identity("CN=deployer,O=X", "CN=CA"), "p"));
        assert!(!p.allowed(&identity("CN=Deployer", "CN=CA"), "p"));
        assert!(!p.allowed(&identity("CN=deployer2", "CN=CA"), "p"));
        assert!(!p.allowed(&identity(r"CN=deployer\,O=MyOrg", "CN=CA"), "p"));
        assert!(!p.allowed(&identity("O=deployer", "CN=CA"), "p"));
    }

    #[test]
    fn dns_exact_and_suffix_on_label_boundaries() {
        let exact = policy(Match {
            dns: Some("API.example.com.".into()),
            ..Match::default()
        });
        assert!(exact.allowed(&with_dns(&["api.example.com"]), "p"));
        assert!(exact.allowed(&with_dns(&["x.org", "Api.Example.Com"]), "p"));
        assert!(!exact.allowed(&with_dns(&["api.example.com.evil.org"]), "p"));
        assert!(!exact.allowed(&with_dns(&["*.example.com"]), "p"));

        let beneath = policy(Match {
            dns: Some("*.trusted.example.com".into()),
            ..Match::default()
        });
        assert!(beneath.allowed(&with_dns(&["a.trusted.example.com"]), "p"));
        assert!(beneath.allowed(&with_dns(&["a.b.TRUSTED.example.com"]), "p"));
        assert!(!beneath.allowed(&with_dns(&["trusted.example.com"]), "p"));
        assert!(!beneath.allowed(&with_dns(&["eviltrusted.example.com"]), "p"));
        assert!(!beneath.allowed(&with_dns(&["a.trusted.example.com.evil.org"]), "p"));
        assert!(!beneath.allowed(&with_dns(&["*.trusted.example.com"]), "p"));
        assert!(!beneath.allowed(&with_dns(&[]), "p"));

        for bad in [
            "*",
            "*.",
            "a..b",
            "a.*.b",
            "**.a",
            "a b.com",
            "ex%61mple.com",
            "",
        ] {
            assert_eq!(
                build_err(Match {
                    dns: Some(bad.into()),
                    ..Match::default()
                })
                .code(),
                "authz.bad_rule",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn spiffe_exact_and_trust_domain() {
        let exact = policy(Match {
            spiffe_id: Some("SPIFFE://Example.ORG/ns/prod/sa/api".into()),
            ..Match::default()
        });
        assert!(exact.allowed(&with_spiffe("spiffe://example.org/ns/prod/sa/api"), "p"));
        assert!(!exact.allowed(&with_spiffe("spiffe://example.org/ns/prod/sa/API"), "p"));
        assert!(!exact.allowed(&with_spiffe("spiffe://example.org/ns/prod/sa/api/x"), "p"));
        assert!(!exact.allowed(&with_spiffe("spiffe://example.org/ns/prod/sa/api/"), "p"));
        assert!(!exact.allowed(
            &identity("CN=spiffe://example.org/ns/prod/sa/api", "CN=CA"),
            "p"
        ));

        let td = policy(Match {
            spiffe_trust_domain: Some("example.org".into()),
            ..Match::default()
        });
        let td2 = policy(Match {
            spiffe_trust_domain: Some("spiffe://example.org".into()),
            ..Match::default()
        });
        for p in [&td, &td2] {
            assert!(p.allowed(&with_spiffe("spiffe://example.org/a"), "p"));
            assert!(!p.allowed(&with_spiffe("spiffe://example.org.evil.com/a"), "p"));
            assert!(!p.allowed(&with_spiffe("spiffe://evilexample.org/a"), "p"));
            assert!(!p.allowed(&with_spiffe("spiffe://example.org@evil.com/a"), "p"));
            assert!(!p.allowed(&with_spiffe("spiffe://example.org:443/a"), "p"));
            assert!(!p.allowed(&with_dns(&["example.org"]), "p"));
        }
        assert_eq!(
            build_err(Match {
                spiffe_trust_domain: Some("spiffe://example.org/ns".into()),
                ..Match::default()
            })
            .code(),
            "authz.bad_rule"
        );
    }

    #[test]
    fn spiffe_prefix_respects_segments() {
        let p = policy(Match {
            spiffe_prefix: Some("spiffe://example.org/ops/".into()),
            ..Match::default()
        });
        assert!(p.allowed(&with_spiffe("spiffe://example.org/ops/deployer"), "p"));
        assert!(p.allowed(&with_spiffe("spiffe://example.org/ops/a/b"), "p"));
        assert!(!p.allowed(&with_spiffe("spiffe://example.org/opsevil"), "p"));
        assert!(!p.allowed(&with_spiffe("spiffe://example.org/opsevil/x"), "p"));
        assert!(!p.allowed(&with_spiffe("spiffe://example.org/ops"), "p"));
        assert!(!p.allowed(&with_spiffe("spiffe://example.org/Ops/deployer"), "p"));
        assert!(!p.allowed(&with_spiffe("spiffe://example.org/ops/../admin"), "p"));
        assert!(!p.allowed(&with_spiffe("spiffe://example.org/ops//x"), "p"));
        assert!(!p.allowed(&with_spiffe("spiffe://other.org/ops/deployer"), "p"));
        assert!(!p.allowed(&with_spiffe("spiffe://example.org/ops/x?y"), "p"));
        assert!(!p.allowed(&with_spiffe("spiffe://example.org/ops/%2e%2e"), "p"));

        let inclusive = policy(Match {
            spiffe_prefix: Some("spiffe://example.org/ops".into()),
            ..Match::default()
        });
        assert!(inclusive.allowed(&with_spiffe("spiffe://example.org/ops"), "p"));
        assert!(inclusive.allowed(&with_spiffe("spiffe://example.org/ops/x"), "p"));
        assert!(!inclusive.allowed(&with_spiffe("spiffe://example.org/opsevil"), "p"));
    }

    #[test]
    fn malformed_spiffe_rules_are_refused() {
        for bad in [
            "https://example.org/ops/",
            "spiffe://",
            "spiffe:///ops",
            "spiffe://example.org",
            "spiffe://example.org/",
            "spiffe://example.org//ops/",
            "spiffe://example.org/./ops/",
            "spiffe://example.org/../ops/",
            "spiffe://example.org/ops%2F/",
            "spiffe://user@example.org/ops/",
            "spiffe://example.org:8080/ops/",
            "spiffe://example.org/ops?x/",
            "spiffe://exa mple.org/ops/",
        ] {
            let e = build_err(Match {
                spiffe_prefix: Some(bad.into()),
                ..Match::default()
            });
            assert_eq!(e.code(), "authz.bad_rule", "{bad:?}");
        }
        for bad in [
            "spiffe://example.org/a/",
            "spiffe://example.org/a#b",
            "example.org/a",
        ] {
            let e = build_err(Match {
                spiffe_id: Some(bad.into()),
                ..Match::default()
            });
            assert_eq!(e.code(), "authz.bad_rule", "{bad:?}");
        }
        let long = format!("spiffe://example.org/{}", "a".repeat(MAX_SPIFFE_ID_LEN));
        assert_eq!(
            build_err(Match {
                spiffe_id: Some(long),
                ..Match::default()
            })
            .code(),
            "authz.bad_rule"
        );
    }

    #[test]
    fn fields_combine_with_and() {
        let p = policy(Match {
            issuer: Some("CN=SPIFFE CA,O=MyOrg".into()),
            spiffe_prefix: Some("spiffe://example.org/ops/".into()),
            ..Match::default()
        });
        assert!(p.allowed(&with_spiffe("spiffe://example.org/ops/d"), "p"));
        let mut wrong_issuer = with_spiffe("spiffe://example.org/ops/d");
        wrong_issuer.issuer = DistinguishedName::parse("CN=Other CA,O=MyOrg").unwrap();
        assert!(!p.allowed(&wrong_issuer, "p"));
        assert!(!p.allowed(&with_spiffe("spiffe://example.org/dev/d"), "p"));
    }

    #[test]
    fn permissions_are_sorted_and_unique() {
        let p = AccessPolicy::new(vec![
            Rule {
                matcher: Match {
                    spiffe_trust_domain: Some("example.org".into()),
                    ..Match::default()
                },
                grants: vec!["files:read".into(), "containers:deploy".into()],
            },
            Rule {
                matcher: Match {
                    spiffe_prefix: Some("spiffe://example.org/ops".into()),
                    ..Match::default()
                },
                grants: vec!["files:read".into(), "admin".into()],
            },
            Rule {
                matcher: Match {
                    cn: Some("nobody".into()),
                    ..Match::default()
                },
                grants: vec!["secret".into()],
            },
        ])
        .unwrap();
        let id = with_spiffe("spiffe://example.org/ops/x");
        assert_eq!(
            p.permissions(&id),
            vec!["admin", "containers:deploy", "files:read"]
        );
        assert!(p.authorize(&id, "admin").is_ok());
        let err = p.authorize(&id, "secret").unwrap_err();
        assert_eq!(err.code(), "authz.forbidden");
        assert!(err.to_string().contains("spiffe://example.org/ops/x"));
        assert_eq!(
            p.permissions(&with_spiffe("spiffe://example.org/dev")),
            vec!["containers:deploy", "files:read"]
        );
    }

    #[test]
    fn malformed_identity_spiffe_ids_match_nothing() {
        let p = policy(Match {
            spiffe_trust_domain: Some("example.org".into()),
            ..Match::default()
        });
        for id in [
            "spiffe://example.org/a/../b",
            "spiffe://example.org/a/",
            "spiffe://example.org/%61",
            "spiffe://",
            "spiffe://example.org:80/a",
        ] {
            assert!(!p.allowed(&with_spiffe(id), "p"), "{id}");
        }
    }
}
