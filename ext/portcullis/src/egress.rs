//! Ruby bindings for `portcullis::egress`: `Portcullis::EgressPolicy` and
//! `Portcullis::Destination`. The keyword-argument surface lives in
//! `lib/portcullis/egress.rb`; this file converts types and maps errors.

use std::net::IpAddr;
use std::sync::Arc;

use magnus::{prelude::*, Class, Error, RArray, RModule, RString, Ruby, TryConvert, Value};

use crate::errors::{function, method}; // panic-guarded; see errors.rs
use portcullis::egress::{
    Destination, EgressError, EgressPolicy, PendingUrl, Resolve, SystemResolver, Url,
};

use crate::{errors, gvl};

#[magnus::wrap(
    class = "Portcullis::EgressPolicy",
    free_immediately,
    size,
    frozen_shareable
)]
pub(crate) struct RbEgressPolicy(Arc<EgressPolicy>);

impl RbEgressPolicy {
    /// The policy itself, shared (a trust store fetches CRLs through it; the guard keeps it).
    pub(crate) fn shared(&self) -> Arc<EgressPolicy> {
        Arc::clone(&self.0)
    }

    /// Wraps a policy built elsewhere (the configuration file).
    pub(crate) fn from_shared(policy: Arc<EgressPolicy>) -> Self {
        Self(policy)
    }
}

#[magnus::wrap(
    class = "Portcullis::Destination",
    free_immediately,
    size,
    frozen_shareable
)]
struct RbDestination(Destination);

fn denied(ruby: &Ruby, err: &EgressError) -> Error {
    errors::to_ruby(ruby, "EgressDenied", err)
}

#[allow(clippy::too_many_arguments)] // mirrors the Ruby keyword arguments one to one
fn build(
    ruby: &Ruby,
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
) -> Result<RbEgressPolicy, Error> {
    let mut builder = EgressPolicy::builder()
        .schemes(schemes)
        .allow_hosts(allow_hosts)
        .deny_hosts(deny_hosts)
        .allow_cidrs(allow_cidrs)
        .deny_cidrs(deny_cidrs)
        .strict(strict)
        .allow_nat64(allow_nat64)
        .allow_6to4(allow_6to4)
        .allow_teredo(allow_teredo);
    if let Some(ports) = ports {
        builder = builder.ports(ports);
    }
    builder
        .build()
        .map(|p| RbEgressPolicy(Arc::new(p)))
        .map_err(|e| errors::to_ruby(ruby, "ConfigError", &e))
}

impl RbEgressPolicy {
    fn check(
        ruby: &Ruby,
        rb_self: &Self,
        url: String,
        resolver: Option<Value>,
    ) -> Result<RbDestination, Error> {
        let pending = rb_self.0.check_url(&url).map_err(|e| denied(ruby, &e))?;
        rb_self.finish(ruby, pending, resolver).map(RbDestination)
    }

    fn allowed(ruby: &Ruby, rb_self: &Self, url: String, resolver: Option<Value>) -> bool {
        match rb_self.0.check_url(&url) {
            Ok(pending) => rb_self.finish(ruby, pending, resolver).is_ok(),
            Err(_) => false,
        }
    }

    fn check_redirect(
        ruby: &Ruby,
        rb_self: &Self,
        from: String,
        location: String,
        resolver: Option<Value>,
    ) -> Result<RbDestination, Error> {
        let from = Url::parse(&from).map_err(|e| {
            denied(
                ruby,
                &EgressError::BadUrl {
                    input: from.chars().take(200).collect(),
                    reason: e.to_string(),
                },
            )
        })?;
        let pending = rb_self
            .0
            .check_redirect_url(&from, &location)
            .map_err(|e| denied(ruby, &e))?;
        rb_self.finish(ruby, pending, resolver).map(RbDestination)
    }

    fn check_ip(ruby: &Ruby, rb_self: &Self, ip: String) -> Result<(), Error> {
        let addr = parse_ip(&ip)
            .ok_or_else(|| errors::arg_error(ruby, format!("{ip:?} is not an IP address")))?;
        rb_self.0.check_ip(addr).map_err(|e| denied(ruby, &e))
    }

    fn ip_allowed(&self, ip: String) -> bool {
        parse_ip(&ip).is_some_and(|addr| self.0.check_ip(addr).is_ok())
    }

    /// Resolves the pending name (system resolver without the GVL, or the Ruby resolver
    /// with it) and checks every answer in the core.
    fn finish(
        &self,
        ruby: &Ruby,
        pending: PendingUrl,
        resolver: Option<Value>,
    ) -> Result<Destination, Error> {
        let Some(name) = pending.resolve_name().map(str::to_owned) else {
            return self
                .0
                .check_answers(pending, Vec::new())
                .map_err(|e| denied(ruby, &e));
        };
        let answers = match resolver {
            Some(resolver) => ruby_answers(ruby, resolver, &name)?,
            None => {
                let lookup = name.clone();
                let result = gvl::without_gvl(move || SystemResolver.resolve(&lookup))
                    .map_err(gvl::panic_error)?;
                result.map_err(|e| {
                    denied(
                        ruby,
                        &EgressError::ResolveFailed {
                            host: name.clone(),
                            reason: e.to_string(),
                        },
                    )
                })?
            }
        };
        self.0
            .check_answers(pending, answers)
            .map_err(|e| denied(ruby, &e))
    }
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    let trimmed = text.trim();
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(trimmed);
    unbracketed.parse().ok()
}

/// Calls a Ruby resolver (`->(host) { [...] }`) with the GVL held and converts its answer:
/// an Array of address Strings (or objects whose `to_s` is one, such as `IPAddr`), or a
/// single one. A StandardError from the resolver becomes `egress.resolve_failed`.
fn ruby_answers(ruby: &Ruby, resolver: Value, name: &str) -> Result<Vec<IpAddr>, Error> {
    let failed = |reason: String| {
        denied(
            ruby,
            &EgressError::ResolveFailed {
                host: name.to_owned(),
                reason,
            },
        )
    };
    let answer: Value = match resolver.funcall("call", (name,)) {
        Ok(v) => v,
        Err(e) if e.is_kind_of(ruby.exception_standard_error()) => {
            return Err(failed(format!("resolver raised {e}")))
        }
        Err(e) => return Err(e),
    };
    let items: Vec<Value> = match RArray::from_value(answer) {
        Some(array) => (0..array.len())
            .map(|i| array.entry::<Value>(i as isize))
            .collect::<Result<_, _>>()?,
        None if answer.is_nil() => Vec::new(),
        None => vec![answer],
    };
    let mut addrs = Vec::with_capacity(items.len());
    for item in items {
        let text = match RString::from_value(item) {
            Some(s) => s.to_string()?,
            None => String::try_convert(item.funcall::<_, _, Value>("to_s", ())?)?,
        };
        let addr = parse_ip(&text).ok_or_else(|| {
            failed(format!(
                "resolver returned {:?}, which is not an IP address",
                text.chars().take(100).collect::<String>()
            ))
        })?;
        addrs.push(addr);
    }
    Ok(addrs)
}

impl RbDestination {
    fn url(&self) -> String {
        self.0.url.to_string()
    }

    fn host(&self) -> String {
        self.0.host.clone()
    }

    fn port(&self) -> u16 {
        self.0.port
    }

    fn scheme(&self) -> String {
        self.0.url.scheme().to_owned()
    }

    fn request_target(&self) -> String {
        self.0.request_target().to_owned()
    }

    fn addresses(&self) -> Vec<String> {
        self.0.addrs.iter().map(IpAddr::to_string).collect()
    }

    fn inspect(&self) -> String {
        format!(
            "#<Portcullis::Destination url={:?} host={:?} port={} addresses={:?}>",
            self.url(),
            self.0.host,
            self.0.port,
            self.addresses()
        )
    }
}

pub(crate) fn init(ruby: &Ruby, module: RModule) -> Result<(), Error> {
    let policy = module.define_class("EgressPolicy", ruby.class_object())?;
    // Instances come only from `_build` / the checks, never from a bare allocate.
    policy.undef_default_alloc_func();
    policy.define_singleton_method("_build", function!(build, 10))?;
    policy.define_method("_check", method!(RbEgressPolicy::check, 2))?;
    policy.define_method("_allowed", method!(RbEgressPolicy::allowed, 2))?;
    policy.define_method(
        "_check_redirect",
        method!(RbEgressPolicy::check_redirect, 3),
    )?;
    policy.define_method("_check_ip", method!(RbEgressPolicy::check_ip, 1))?;
    policy.define_method("_ip_allowed", method!(RbEgressPolicy::ip_allowed, 1))?;

    let destination = module.define_class("Destination", ruby.class_object())?;
    destination.undef_default_alloc_func();
    destination.define_method("url", method!(RbDestination::url, 0))?;
    destination.define_method("host", method!(RbDestination::host, 0))?;
    destination.define_method("port", method!(RbDestination::port, 0))?;
    destination.define_method("addresses", method!(RbDestination::addresses, 0))?;
    destination.define_method("scheme", method!(RbDestination::scheme, 0))?;
    destination.define_method("request_target", method!(RbDestination::request_target, 0))?;
    destination.define_method("inspect", method!(RbDestination::inspect, 0))?;
    Ok(())
}
