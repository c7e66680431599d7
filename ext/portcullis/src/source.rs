//! Ruby bindings for `portcullis::identity::source`: `Portcullis::CertSource`.
//!
//! ```ruby
//! source = Portcullis::CertSource.new(:envoy, trusted_proxies: ["10.0.0.0/8"])
//! leaf_der, chain_ders = source.extract(env)            # REMOTE_ADDR from env
//! leaf_der, chain_ders = source.extract(headers, "10.1.2.3")
//! ```

use magnus::{
    prelude::*,
    scan_args::{get_kwargs, scan_args},
    Error, RArray, RHash, RModule, RString, Ruby, Symbol, Value,
};

use crate::errors::{function, method}; // panic-guarded; see errors.rs
use portcullis::identity::source::{CertSource, SourceKind, SourceLimits, TrustedProxies};

use crate::errors;

#[magnus::wrap(
    class = "Portcullis::CertSource",
    free_immediately,
    size,
    frozen_shareable
)]
pub(crate) struct RbCertSource {
    source: CertSource,
    /// What `extract` reads, computed once: (name the core asks for, Rack env key).
    keys: Vec<(String, String)>,
}

impl RbCertSource {
    /// Wraps a source built elsewhere (the configuration file).
    pub(crate) fn from_source(source: CertSource) -> Self {
        Self::wrap(source)
    }

    fn wrap(source: CertSource) -> Self {
        let mut names = vec![source.header().to_owned()];
        if source.kind() == SourceKind::Tls {
            let prefix = source.chain_header().unwrap_or("SSL_CLIENT_CERT_CHAIN_");
            names.extend((0..=source.limits().max_certs).map(|n| format!("{prefix}{n}")));
        } else if let Some(chain) = source.chain_header() {
            names.push(chain.to_owned());
        }
        let forwarded = source.kind().is_forwarded();
        let keys = names
            .into_iter()
            .map(|name| {
                // Headers live in the Rack env as HTTP_X_FORWARDED_CLIENT_CERT; server
                // variables (SSL_CLIENT_CERT) under their own name.
                let key = if forwarded {
                    format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"))
                } else {
                    name.clone()
                };
                (name, key)
            })
            .collect();
        Self { source, keys }
    }
}

/// A Ruby String as Rust text; a value that is not valid text becomes one that no decoder
/// accepts, so it surfaces as `cert.bad_encoding` rather than a TypeError.
fn text(value: Value) -> Option<String> {
    let s = RString::from_value(value)?;
    Some(s.to_string().unwrap_or_else(|_| "\u{FFFD}".to_owned()))
}

fn kind_from(ruby: &Ruby, value: Value) -> Result<SourceKind, Error> {
    let name = if let Some(sym) = Symbol::from_value(value) {
        sym.name()?.into_owned()
    } else if let Some(s) = RString::from_value(value) {
        s.to_string()?
    } else {
        return Err(errors::arg_error(
            ruby,
            "source must be a Symbol such as :envoy",
        ));
    };
    name.parse::<SourceKind>()
        .map_err(|e| errors::to_ruby(ruby, "CertificateError", &e))
}

type NewKwargs = (
    Option<Vec<String>>,
    Option<String>,
    Option<String>,
    Option<usize>,
    Option<usize>,
    Option<usize>,
);

impl RbCertSource {
    fn new(ruby: &Ruby, args: &[Value]) -> Result<Self, Error> {
        let args = scan_args::<(Value,), (), (), (), RHash, ()>(args)?;
        let (kind,) = args.required;
        let kw = get_kwargs::<_, (), NewKwargs, ()>(
            args.keywords,
            &[],
            &[
                "trusted_proxies",
                "header",
                "chain_header",
                "max_cert_bytes",
                "max_chain_bytes",
                "max_certs",
            ],
        )?;
        let (proxies, header, chain_header, max_cert, max_chain, max_certs) = kw.optional;
        let kind = kind_from(ruby, kind)?;
        let cert_err = |e: &portcullis::identity::source::SourceError| {
            errors::to_ruby(ruby, "CertificateError", e)
        };
        let proxies = TrustedProxies::new(proxies.unwrap_or_default()).map_err(|e| cert_err(&e))?;
        let mut source = CertSource::new(kind, proxies).map_err(|e| cert_err(&e))?;
        if let Some(h) = header {
            source = source.with_header(&h).map_err(|e| cert_err(&e))?;
        }
        if let Some(h) = chain_header {
            source = source.with_chain_header(&h).map_err(|e| cert_err(&e))?;
        }
        let defaults = SourceLimits::default();
        let source = source
            .with_limits(SourceLimits {
                max_cert_bytes: max_cert.unwrap_or(defaults.max_cert_bytes),
                max_chain_bytes: max_chain.unwrap_or(defaults.max_chain_bytes),
                max_certs: max_certs.unwrap_or(defaults.max_certs),
            })
            .map_err(|e| cert_err(&e))?;
        Ok(Self::wrap(source))
    }

    /// `extract(env_or_headers, remote_addr = env["REMOTE_ADDR"])` -> `[leaf_der, [der, ...]]`.
    fn extract(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<RArray, Error> {
        let args = scan_args::<(RHash,), (Option<Value>,), (), (), (), ()>(args)?;
        let (env,) = args.required;
        let (peer,) = args.optional;
        let peer = match peer.filter(|v| !v.is_nil()) {
            Some(v) => text(v),
            None => env.get("REMOTE_ADDR").and_then(text),
        };
        let source = &rb_self.source;
        let forwarded = source.kind().is_forwarded();
        // Copy just the values the source reads out of the Ruby hash, then decide in Rust.
        let mut values: Vec<(&str, String)> = Vec::with_capacity(2);
        for (i, (name, key)) in rb_self.keys.iter().enumerate() {
            let found = env.get(key.as_str()).or_else(|| {
                // A plain headers hash with lowercase names works too.
                if forwarded {
                    env.get(name.as_str())
                } else {
                    None
                }
            });
            match found.and_then(text) {
                Some(v) => values.push((name, v)),
                // SSL_CLIENT_CERT_CHAIN_n stops at the first gap.
                None if !forwarded && i > 0 => break,
                None => {}
            }
        }
        let lookup = |name: &str| {
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        let presented = source
            .extract(lookup, peer.as_deref())
            .map_err(|e| errors::to_ruby(ruby, "CertificateError", &e))?;
        let chain = ruby.ary_new_capa(presented.chain.len());
        for der in &presented.chain {
            chain.push(ruby.str_from_slice(der))?;
        }
        let out = ruby.ary_new_capa(2);
        out.push(ruby.str_from_slice(&presented.leaf))?;
        out.push(chain)?;
        Ok(out)
    }

    fn kind(ruby: &Ruby, rb_self: &Self) -> Symbol {
        ruby.to_symbol(rb_self.source.kind().name())
    }

    fn forwarded(&self) -> bool {
        self.source.kind().is_forwarded()
    }

    fn header(&self) -> String {
        self.source.header().to_owned()
    }

    fn trusted_proxy(&self, addr: Option<String>) -> bool {
        self.source.trusted_proxies().contains_peer(addr.as_deref())
    }
}

pub(crate) fn init(ruby: &Ruby, module: RModule) -> Result<(), Error> {
    let class = module.define_class("CertSource", ruby.class_object())?;
    class.define_singleton_method("new", function!(RbCertSource::new, -1))?;
    class.define_method("extract", method!(RbCertSource::extract, -1))?;
    class.define_method("kind", method!(RbCertSource::kind, 0))?;
    class.define_method("forwarded?", method!(RbCertSource::forwarded, 0))?;
    class.define_method("header", method!(RbCertSource::header, 0))?;
    class.define_method("trusted_proxy?", method!(RbCertSource::trusted_proxy, 1))?;
    Ok(())
}
