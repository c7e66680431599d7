//! Ruby bindings for `portcullis::authz`: `Portcullis::AccessPolicy`.
//!
//! ```ruby
//! policy = Portcullis::AccessPolicy.new(rules: [
//!   { match: { issuer: "CN=Ops CA,O=MyOrg", spiffe_prefix: "spiffe://example.org/ops/" },
//!     grant: ["containers:deploy"] }])
//! policy.allowed?(identity, "containers:deploy")
//! policy.authorize!(identity, "containers:deploy")   # raises Portcullis::Forbidden
//! policy.permissions(identity)
//!
//! routes = Portcullis::RouteRequirements.new("/admin" => "admin", "POST /deploy" => %w[deploy])
//! routes.required("GET", "/x/../%61dmin")   # => ["admin"]
//! routes.required("POST", "/admin", ["delete"])   # a POST that Rack::MethodOverride makes a DELETE
//! ```

use magnus::{
    prelude::*,
    r_hash::ForEach,
    scan_args::{get_kwargs, scan_args},
    Error, RArray, RHash, RModule, RString, Ruby, Symbol, Value,
};

use crate::errors::{function, method}; // panic-guarded; see errors.rs
use portcullis::authz::{AccessPolicy, Match, MethodOverride, RouteRequirements, Rule, SkipRoutes};
use portcullis::identity::Identity;

use crate::errors;
use crate::identity::RbIdentity;

#[magnus::wrap(
    class = "Portcullis::AccessPolicy",
    free_immediately,
    size,
    frozen_shareable
)]
pub(crate) struct RbAccessPolicy(AccessPolicy);

impl RbAccessPolicy {
    /// Wraps a policy built elsewhere (the configuration file).
    pub(crate) fn from_policy(policy: AccessPolicy) -> Self {
        Self(policy)
    }
}

const MATCH_KEYS: &[&str] = &[
    "issuer",
    "subject",
    "cn",
    "dns",
    "spiffe_id",
    "spiffe_trust_domain",
    "spiffe_prefix",
];

/// A Hash key as text (Symbol or String).
fn key_name(ruby: &Ruby, key: Value) -> Result<String, Error> {
    if let Some(sym) = Symbol::from_value(key) {
        return Ok(sym.name()?.into_owned());
    }
    if let Some(s) = RString::from_value(key) {
        return s.to_string();
    }
    Err(errors::arg_error(
        ruby,
        "rule keys must be Symbols or Strings",
    ))
}

/// Every (key, value) of a Hash with its key as text; `allowed` keys only, so a typo such
/// as `isuer:` fails loudly instead of silently widening the match.
fn entries(
    ruby: &Ruby,
    hash: RHash,
    what: &str,
    allowed: &[&str],
) -> Result<Vec<(String, Value)>, Error> {
    let mut out = Vec::new();
    let mut failure = None;
    hash.foreach(errors::each(|k: Value, v: Value| {
        match key_name(ruby, k) {
            Ok(name) if allowed.contains(&name.as_str()) => out.push((name, v)),
            Ok(name) => {
                failure = Some(errors::arg_error(
                    ruby,
                    format!(
                        "unknown {what} key {name:?} (known: {})",
                        allowed.join(", ")
                    ),
                ));
                return Ok(ForEach::Stop);
            }
            Err(e) => {
                failure = Some(e);
                return Ok(ForEach::Stop);
            }
        }
        Ok(ForEach::Continue)
    }))?;
    match failure {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn string(ruby: &Ruby, value: Value, what: &str) -> Result<String, Error> {
    if let Some(sym) = Symbol::from_value(value) {
        return Ok(sym.name()?.into_owned());
    }
    RString::from_value(value)
        .ok_or_else(|| errors::arg_error(ruby, format!("{what} must be a String")))?
        .to_string()
}

fn rule_from(ruby: &Ruby, value: Value) -> Result<Rule, Error> {
    let hash = RHash::from_value(value).ok_or_else(|| {
        errors::arg_error(ruby, "each rule must be a Hash with match: and grant:")
    })?;
    let mut rule = Rule::default();
    let mut saw_match = false;
    let mut saw_grant = false;
    // `grants:` is the spelling of portcullis.toml's [[access]]; both are accepted, once.
    for (key, v) in entries(ruby, hash, "rule", &["match", "grant", "grants"])? {
        if key != "match" {
            if saw_grant {
                return Err(errors::arg_error(
                    ruby,
                    "a rule has both grant: and grants:; use one",
                ));
            }
            saw_grant = true;
        }
        if key == "match" {
            saw_match = true;
            let m = RHash::from_value(v)
                .ok_or_else(|| errors::arg_error(ruby, "match: must be a Hash"))?;
            rule.matcher = match_from(ruby, m)?;
        } else if let Some(list) = RArray::from_value(v) {
            for item in list.into_iter() {
                rule.grants.push(string(ruby, item, "each permission")?);
            }
        } else {
            rule.grants.push(string(ruby, v, "grant:")?);
        }
    }
    if !saw_match {
        return Err(errors::arg_error(ruby, "rule without match:"));
    }
    Ok(rule)
}

fn match_from(ruby: &Ruby, hash: RHash) -> Result<Match, Error> {
    let mut m = Match::default();
    for (key, v) in entries(ruby, hash, "match", MATCH_KEYS)? {
        if v.is_nil() {
            continue;
        }
        let text = Some(string(ruby, v, &key)?);
        match key.as_str() {
            "issuer" => m.issuer = text,
            "subject" => m.subject = text,
            "cn" => m.cn = text,
            "dns" => m.dns = text,
            "spiffe_id" => m.spiffe_id = text,
            "spiffe_trust_domain" => m.spiffe_trust_domain = text,
            _ => m.spiffe_prefix = text,
        }
    }
    Ok(m)
}

/// Runs `f` on the core `Identity` behind a `Portcullis::Identity` (only `TrustStore#verify`
/// makes those, so a policy never judges a Hash or look-alike object).
fn with_identity<R>(ruby: &Ruby, value: Value, f: impl FnOnce(&Identity) -> R) -> Result<R, Error> {
    let wrapped = <&RbIdentity>::try_convert(value).map_err(|_| {
        Error::new(
            ruby.exception_type_error(),
            "expected a Portcullis::Identity (from Portcullis::TrustStore#verify)",
        )
    })?;
    Ok(f(&wrapped.inner))
}

impl RbAccessPolicy {
    fn new(ruby: &Ruby, args: &[Value]) -> Result<Self, Error> {
        let args = scan_args::<(), (), (), (), RHash, ()>(args)?;
        let kw = get_kwargs::<_, (RArray,), (), ()>(args.keywords, &["rules"], &[])?;
        let (list,) = kw.required;
        let rules = list
            .into_iter()
            .map(|v| rule_from(ruby, v))
            .collect::<Result<Vec<_>, _>>()?;
        AccessPolicy::new(rules)
            // A bad rule is a configuration mistake, never a request-time "forbidden".
            .map(Self)
            .map_err(|e| errors::to_ruby(ruby, "ConfigError", &e))
    }

    fn allowed(
        ruby: &Ruby,
        rb_self: &Self,
        identity: Value,
        permission: Value,
    ) -> Result<bool, Error> {
        let permission = string(ruby, permission, "permission")?;
        with_identity(ruby, identity, |id| rb_self.0.allowed(id, &permission))
    }

    fn authorize(
        ruby: &Ruby,
        rb_self: &Self,
        identity: Value,
        permission: Value,
    ) -> Result<bool, Error> {
        let permission = string(ruby, permission, "permission")?;
        with_identity(ruby, identity, |id| rb_self.0.authorize(id, &permission))?
            .map_err(|e| errors::to_ruby(ruby, "Forbidden", &e))?;
        Ok(true)
    }

    fn permissions(ruby: &Ruby, rb_self: &Self, identity: Value) -> Result<RArray, Error> {
        let perms = with_identity(ruby, identity, |id| rb_self.0.permissions(id))?;
        frozen_strings(ruby, perms.iter().map(String::as_str))
    }

    fn rule_count(&self) -> usize {
        self.0.rule_count()
    }
}

#[magnus::wrap(
    class = "Portcullis::RouteRequirements",
    free_immediately,
    size,
    frozen_shareable
)]
pub(crate) struct RbRouteRequirements(RouteRequirements);

/// A permission list entry: one String/Symbol, or an Array of them.
fn permission_names(ruby: &Ruby, route: &str, value: Value) -> Result<Vec<String>, Error> {
    let one = |v: Value| -> Result<String, Error> {
        if let Some(sym) = Symbol::from_value(v) {
            return Ok(sym.name()?.into_owned());
        }
        RString::from_value(v)
            .ok_or_else(|| {
                Error::new(
                    ruby.exception_type_error(),
                    format!("require: {route:?} must name permissions as Strings or Symbols"),
                )
            })?
            .to_string()
    };
    match RArray::from_value(value) {
        Some(list) => list.into_iter().map(one).collect(),
        None => Ok(vec![one(value)?]),
    }
}

impl RbRouteRequirements {
    fn new(ruby: &Ruby, map: Value) -> Result<Self, Error> {
        let map = RHash::from_value(map).ok_or_else(|| {
            Error::new(
                ruby.exception_type_error(),
                "require: must be a Hash of \"/path\" or \"VERB /path\" => permission(s)",
            )
        })?;
        let mut entries: Vec<(String, Vec<String>)> = Vec::new();
        let mut failure: Option<Error> = None;
        map.foreach(errors::each(|key: Value, value: Value| {
            let route = if let Some(sym) = Symbol::from_value(key) {
                sym.name()?.into_owned()
            } else if let Some(s) = RString::from_value(key) {
                s.to_string()?
            } else {
                failure = Some(Error::new(
                    ruby.exception_type_error(),
                    "require: keys must be \"/path\" or \"VERB /path\" Strings",
                ));
                return Ok(ForEach::Stop);
            };
            match permission_names(ruby, &route, value) {
                Ok(perms) => entries.push((route, perms)),
                Err(e) => {
                    failure = Some(e);
                    return Ok(ForEach::Stop);
                }
            }
            Ok(ForEach::Continue)
        }))?;
        if let Some(e) = failure {
            return Err(e);
        }
        RouteRequirements::new(entries)
            .map(Self)
            .map_err(|e| errors::to_ruby(ruby, "ConfigError", &e))
    }

    /// `required(method, path, method_override = nil)`: method and path as received (any
    /// bytes, any encoding); `method_override` is nil, an Array of the override values the
    /// request carries, or `:unknown`. Raises `Portcullis::Forbidden` (`authz.bad_method`)
    /// for a method that is not an HTTP token.
    fn required(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<RArray, Error> {
        let args = scan_args::<(RString, RString), (Option<Value>,), (), (), (), ()>(args)?;
        let (method, path) = args.required;
        let (method_override,) = args.optional;
        let method = crate::fs::bytes_of(method);
        let path = crate::fs::bytes_of(path);
        let mut values: Vec<Vec<u8>> = Vec::new();
        let mut unknown = false;
        match method_override {
            None => {}
            Some(v) if v.is_nil() => {}
            Some(v) => {
                if let Some(sym) = Symbol::from_value(v) {
                    if sym.name()? != "unknown" {
                        return Err(errors::arg_error(
                            ruby,
                            "method_override must be nil, an Array of Strings or :unknown",
                        ));
                    }
                    unknown = true;
                } else if let Some(list) = RArray::from_value(v) {
                    for item in list.into_iter() {
                        let s = RString::from_value(item).ok_or_else(|| {
                            Error::new(
                                ruby.exception_type_error(),
                                "method_override values must be Strings",
                            )
                        })?;
                        values.push(crate::fs::bytes_of(s));
                    }
                } else {
                    return Err(Error::new(
                        ruby.exception_type_error(),
                        "method_override must be nil, an Array of Strings or :unknown",
                    ));
                }
            }
        }
        let slices: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let method_override = if unknown {
            MethodOverride::Unknown
        } else if slices.is_empty() {
            MethodOverride::None
        } else {
            MethodOverride::Values(&slices)
        };
        let perms = rb_self
            .0
            .required_for(&method, &path, method_override)
            .map_err(|e| errors::to_ruby(ruby, "Forbidden", &e))?;
        frozen_strings(ruby, perms.iter().map(|p| p.as_ref()))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[magnus::wrap(
    class = "Portcullis::SkipRoutes",
    free_immediately,
    size,
    frozen_shareable
)]
pub(crate) struct RbSkipRoutes(SkipRoutes);

impl RbSkipRoutes {
    fn new(ruby: &Ruby, prefixes: RArray) -> Result<Self, Error> {
        let prefixes = prefixes
            .into_iter()
            .map(|v| {
                RString::from_value(v)
                    .ok_or_else(|| {
                        Error::new(
                            ruby.exception_type_error(),
                            "skip: prefixes must be Strings",
                        )
                    })?
                    .to_string()
            })
            .collect::<Result<Vec<_>, _>>()?;
        SkipRoutes::new(prefixes)
            .map(Self)
            .map_err(|e| errors::to_ruby(ruby, "ConfigError", &e))
    }

    fn skips(&self, path: RString) -> bool {
        self.0.skips_bytes(&crate::fs::bytes_of(path))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub(crate) fn init(ruby: &Ruby, module: RModule) -> Result<(), Error> {
    let skip = module.define_class("SkipRoutes", ruby.class_object())?;
    skip.define_singleton_method("new", function!(RbSkipRoutes::new, 1))?;
    skip.define_method("skips?", method!(RbSkipRoutes::skips, 1))?;
    skip.define_method("empty?", method!(RbSkipRoutes::is_empty, 0))?;
    let routes = module.define_class("RouteRequirements", ruby.class_object())?;
    routes.define_singleton_method("new", function!(RbRouteRequirements::new, 1))?;
    routes.define_method("required", method!(RbRouteRequirements::required, -1))?;
    routes.define_method("empty?", method!(RbRouteRequirements::is_empty, 0))?;

    let class = module.define_class("AccessPolicy", ruby.class_object())?;
    class.define_singleton_method("new", function!(RbAccessPolicy::new, -1))?;
    class.define_method("allowed?", method!(RbAccessPolicy::allowed, 2))?;
    class.define_method("authorize!", method!(RbAccessPolicy::authorize, 2))?;
    class.define_method("permissions", method!(RbAccessPolicy::permissions, 1))?;
    class.define_method("size", method!(RbAccessPolicy::rule_count, 0))?;
    Ok(())
}

/// A frozen Array of frozen Strings (permission lists handed to Ruby).
fn frozen_strings<'a>(
    ruby: &Ruby,
    items: impl ExactSizeIterator<Item = &'a str>,
) -> Result<RArray, Error> {
    let out = ruby.ary_new_capa(items.len());
    for item in items {
        let s = ruby.str_new(item);
        s.freeze();
        out.push(s)?;
    }
    out.freeze();
    Ok(out)
}
