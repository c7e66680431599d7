//! Ruby bindings for `portcullis::identity`: `Portcullis::TrustStore`,
//! `Portcullis::Identity` and `Portcullis::Certificates`.
//!
//! Keyword handling, file reading and `OpenSSL::X509::Certificate#to_der` happen in
//! `lib/portcullis/identity.rb`; this file receives byte strings and plain values.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use magnus::{
    prelude::*, typed_data::Obj, value::ReprValue, Error, RArray, RHash, RModule, RString, Ruby,
    TryConvert, Value,
};

use crate::errors::{function, method}; // panic-guarded; see errors.rs
use portcullis::identity::{
    decode, CertificateError, CrlRefreshEvent, CrlRefresher, Identity, TrustStore, Usage,
    DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_CRL_BYTES, MAX_PRESENTED_CHAIN_BYTES,
};

use crate::egress::RbEgressPolicy;
use crate::fs::bytes_of;
use crate::{errors, gvl};

const CLASS: &str = "CertificateError";

fn cert_error(ruby: &Ruby, err: &CertificateError) -> Error {
    errors::to_ruby(ruby, CLASS, err)
}

fn strings(ary: RArray) -> Result<Vec<Vec<u8>>, Error> {
    ary.into_iter()
        .map(|v| RString::try_convert(v).map(bytes_of))
        .collect()
}

fn unix_time(secs: Option<i64>) -> SystemTime {
    match secs {
        None => SystemTime::now(),
        Some(s) if s >= 0 => UNIX_EPOCH + Duration::from_secs(s.unsigned_abs()),
        Some(s) => UNIX_EPOCH - Duration::from_secs(s.unsigned_abs()),
    }
}

/// `Portcullis::TrustStore`: shared by every thread; verification releases the GVL.
#[magnus::wrap(class = "Portcullis::TrustStore", free_immediately, size)]
pub(crate) struct RbTrustStore {
    inner: Arc<TrustStore>,
    /// The background CRL refresher, when CRL URLs were given (`crl_refresh: true`);
    /// dropped, and so stopped, with the store.
    refresher: Option<CrlRefresher>,
}

impl RbTrustStore {
    /// Wraps a store built elsewhere (the configuration file); its cache stays shared.
    pub(crate) fn from_shared(inner: Arc<TrustStore>) -> Self {
        Self {
            inner,
            refresher: None,
        }
    }

    /// `TrustStore._build(cas, intermediates, crls, usage, cache_size, deny_unknown,
    /// require_spiffe, max_intermediates_or_nil, crl_network_or_nil)`; `crl_network` is a
    /// Hash with `urls`, `from_distribution_points`, `egress` (a `Portcullis::EgressPolicy`),
    /// `max_bytes`, `timeout` (seconds) and `refresh` (start the background refresher).
    #[allow(clippy::too_many_arguments)] // mirrors the Ruby keywords one to one
    fn build(
        ruby: &Ruby,
        cas: RArray,
        intermediates: RArray,
        crls: RArray,
        usage: String,
        cache_size: i64,
        deny_unknown_revocation: bool,
        require_spiffe: bool,
        max_intermediates: Option<i64>,
        crl_network: Option<RHash>,
    ) -> Result<Self, Error> {
        let usage = match usage.as_str() {
            "client" | "client_auth" => Usage::ClientAuth,
            "server" | "server_auth" => Usage::ServerAuth,
            other => {
                return Err(errors::arg_error(
                    ruby,
                    format!("usage must be :client or :server, not {other:?}"),
                ))
            }
        };
        let capacity = usize::try_from(cache_size)
            .map_err(|_| errors::arg_error(ruby, "cache_size must be >= 0"))?;
        let mut builder = TrustStore::builder()
            .usage(usage)
            .cache_capacity(capacity)
            .deny_unknown_revocation(deny_unknown_revocation)
            .require_spiffe(require_spiffe);
        if let Some(max) = max_intermediates {
            let max = usize::try_from(max)
                .map_err(|_| errors::arg_error(ruby, "max_intermediates must be >= 0"))?;
            builder = builder.max_intermediates(max);
        }
        let cas = strings(cas)?;
        if cas.is_empty() {
            return Err(errors::arg_error(
                ruby,
                "ca: needs at least one CA certificate",
            ));
        }
        for ca in &cas {
            builder = builder.ca(ca);
        }
        for i in strings(intermediates)? {
            builder = builder.intermediates(&i);
        }
        for c in strings(crls)? {
            builder = builder.crls(&c);
        }
        let mut refresh = false;
        if let Some(net) = crl_network {
            let get = |key: &str| net.get(ruby.to_symbol(key));
            if let Some(urls) = get("urls") {
                let urls: Vec<String> = TryConvert::try_convert(urls)?;
                builder = builder.crl_urls(urls);
            }
            if let Some(v) = get("from_distribution_points") {
                builder = builder.crl_from_distribution_points(TryConvert::try_convert(v)?);
            }
            if let Some(policy) = get("egress").filter(|v| !v.is_nil()) {
                let policy: &RbEgressPolicy = TryConvert::try_convert(policy)?;
                builder = builder.crl_egress(policy.shared());
            }
            let max_bytes = match get("max_bytes").filter(|v| !v.is_nil()) {
                Some(v) => usize::try_from(i64::try_convert(v)?)
                    .map_err(|_| errors::arg_error(ruby, "crl_max_bytes must be >= 0"))?,
                None => DEFAULT_MAX_CRL_BYTES,
            };
            let timeout = match get("timeout").filter(|v| !v.is_nil()) {
                Some(v) => Duration::try_from_secs_f64(f64::try_convert(v)?)
                    .map_err(|_| errors::arg_error(ruby, "crl_timeout must be >= 0"))?,
                None => DEFAULT_FETCH_TIMEOUT,
            };
            builder = builder.crl_fetch_limits(max_bytes, timeout);
            refresh = get("refresh").is_some_and(|v| v.to_bool());
        }
        // Building may fetch CRLs over the network: without the GVL.
        let built = gvl::without_gvl(move || builder.build()).map_err(gvl::panic_error)?;
        let store = Arc::new(built.map_err(|e| cert_error(ruby, &e))?);
        let refresher = if refresh && !store.crl_urls().is_empty() {
            Some(
                store
                    .spawn_crl_refresher()
                    .map_err(|e| cert_error(ruby, &e))?,
            )
        } else {
            None
        };
        Ok(Self {
            inner: store,
            refresher,
        })
    }

    /// `store._refresh_crls` -> [event Hash, ...]: fetch every CRL URL now.
    fn refresh_crls(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        let store = Arc::clone(&rb_self.inner);
        let events = gvl::without_gvl(move || store.refresh_crls()).map_err(gvl::panic_error)?;
        refresh_events(ruby, events)
    }

    /// `store.crl_refresh_log` -> the recent refresh events, oldest first.
    fn crl_refresh_log(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        refresh_events(ruby, rb_self.inner.crl_refresh_log())
    }

    /// `store.crl_urls` -> the distribution points this store fetches.
    fn crl_urls(&self) -> Vec<String> {
        self.inner.crl_urls().to_vec()
    }

    /// `store.crl_refresher?` -> whether a background refresher runs for this store.
    fn crl_refresher(&self) -> bool {
        self.refresher.is_some()
    }

    /// `store._verify(leaf_bytes, [chain_bytes...], unix_seconds_or_nil, server_name_or_nil)`
    fn verify(
        ruby: &Ruby,
        rb_self: &Self,
        leaf: RString,
        chain: RArray,
        at: Option<i64>,
        server_name: Option<String>,
    ) -> Result<Obj<RbIdentity>, Error> {
        // Everything the work needs is owned Rust data before the GVL is released.
        let leaf = bytes_of(leaf);
        let chain = strings(chain)?;
        let store = Arc::clone(&rb_self.inner);
        let at = unix_time(at);
        let outcome = gvl::without_gvl(move || -> Result<Arc<Identity>, CertificateError> {
            let leaf = decode::decode_certificate(&leaf)?;
            let mut ders = Vec::with_capacity(chain.len());
            let mut bytes = 0usize;
            for c in &chain {
                for der in decode::decode_certificates(c)? {
                    bytes += der.len();
                    ders.push(der);
                }
                if bytes > MAX_PRESENTED_CHAIN_BYTES {
                    break; // enough to be refused as too long; decode no more
                }
            }
            let refs: Vec<&[u8]> = ders.iter().map(Vec::as_slice).collect();
            match server_name {
                Some(name) => store.verify_server(&leaf, &refs, &name, at).map(Arc::new),
                None => store.verify_shared(&leaf, &refs, at),
            }
        });
        match outcome {
            Ok(Ok(identity)) => {
                let obj = ruby.obj_wrap(RbIdentity { inner: identity });
                obj.freeze();
                Ok(obj)
            }
            Ok(Err(e)) => Err(cert_error(ruby, &e)),
            Err(panic) => Err(gvl::panic_error(panic)),
        }
    }

    fn reload_crls(ruby: &Ruby, rb_self: &Self, crls: RArray) -> Result<bool, Error> {
        let crls = strings(crls)?;
        let refs: Vec<&[u8]> = crls.iter().map(Vec::as_slice).collect();
        rb_self
            .inner
            .reload_crls(&refs)
            .map_err(|e| cert_error(ruby, &e))?;
        Ok(true)
    }

    fn usage(ruby: &Ruby, rb_self: &Self) -> Value {
        let name = match rb_self.inner.usage() {
            Usage::ServerAuth => "server",
            _ => "client",
        };
        ruby.to_symbol(name).as_value()
    }

    fn cache_size(&self) -> usize {
        self.inner.cache_capacity()
    }

    /// `store.crls` -> `[{issuer:, number:, this_update:, next_update:, fingerprint:,
    /// signature_checked:, superseded:}, ...]`: the CRLs in force.
    fn crls(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        let out = ruby.ary_new();
        for crl in rb_self.inner.crls() {
            let h = ruby.hash_new();
            let sym = |s: &str| ruby.to_symbol(s);
            h.aset(sym("issuer"), crl.issuer)?;
            h.aset(sym("number"), crl.number)?;
            h.aset(sym("this_update"), utc_time(ruby, crl.this_update)?)?;
            h.aset(sym("next_update"), utc_time(ruby, crl.next_update)?)?;
            h.aset(sym("fingerprint"), crl.fingerprint)?;
            h.aset(sym("signature_checked"), crl.signature_checked)?;
            h.aset(sym("superseded"), crl.superseded)?;
            h.freeze();
            out.push(h)?;
        }
        Ok(out)
    }

    fn cached_count(&self) -> usize {
        self.inner.cached_len()
    }
}

/// Refresh events as frozen Hashes: `url`, `at` (Time), `error` (String or nil),
/// `kept_previous`, `bytes`, `message` (the log line).
fn refresh_events(ruby: &Ruby, events: Vec<CrlRefreshEvent>) -> Result<RArray, Error> {
    let out = ruby.ary_new();
    for e in events {
        let h = ruby.hash_new();
        let sym = |s: &str| ruby.to_symbol(s);
        h.aset(sym("message"), e.to_string())?;
        h.aset(sym("url"), e.url)?;
        h.aset(sym("at"), utc_time(ruby, e.at)?)?;
        h.aset(sym("error"), e.error)?;
        h.aset(sym("kept_previous"), e.kept_previous)?;
        h.aset(sym("bytes"), e.bytes)?;
        h.freeze();
        out.push(h)?;
    }
    Ok(out)
}

/// `Portcullis::Identity`: frozen, built only by `TrustStore#verify`.
#[magnus::wrap(
    class = "Portcullis::Identity",
    free_immediately,
    size,
    frozen_shareable
)]
pub(crate) struct RbIdentity {
    pub(crate) inner: Arc<Identity>,
}

fn str_array(ruby: &Ruby, items: impl IntoIterator<Item = String>) -> RArray {
    let ary = ruby.ary_new();
    for item in items {
        let _ = ary.push(ruby.str_new(&item));
    }
    ary
}

fn utc_time(ruby: &Ruby, secs: i64) -> Result<Value, Error> {
    let t = ruby.time_new(secs, 0)?;
    t.funcall("utc", ())
}

impl RbIdentity {
    fn subject(&self) -> String {
        self.inner.subject.to_string()
    }
    fn issuer(&self) -> String {
        self.inner.issuer.to_string()
    }
    fn common_name(&self) -> Option<String> {
        self.inner.common_name.clone()
    }
    fn dns_names(ruby: &Ruby, rb_self: &Self) -> RArray {
        str_array(ruby, rb_self.inner.dns_names.clone())
    }
    fn uris(ruby: &Ruby, rb_self: &Self) -> RArray {
        str_array(ruby, rb_self.inner.uris.clone())
    }
    fn emails(ruby: &Ruby, rb_self: &Self) -> RArray {
        str_array(ruby, rb_self.inner.emails.clone())
    }
    fn ips(ruby: &Ruby, rb_self: &Self) -> RArray {
        str_array(ruby, rb_self.inner.ips.iter().map(|ip| ip.to_string()))
    }
    fn spiffe_id(&self) -> Option<String> {
        self.inner.spiffe_id.clone()
    }
    fn spiffe_trust_domain(&self) -> Option<String> {
        self.inner.spiffe_trust_domain().map(str::to_owned)
    }
    fn serial(&self) -> String {
        self.inner.serial.clone()
    }
    fn fingerprint(&self) -> String {
        self.inner.fingerprint.clone()
    }
    fn not_before(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        utc_time(ruby, rb_self.inner.not_before)
    }
    fn not_after(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        utc_time(ruby, rb_self.inner.not_after)
    }
    fn chain_fingerprints(ruby: &Ruby, rb_self: &Self) -> RArray {
        str_array(ruby, rb_self.inner.chain_fingerprints.clone())
    }
    fn revocation_warning(&self) -> Option<String> {
        self.inner.revocation_warning.clone()
    }

    fn to_h(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        let h = ruby.hash_new();
        let id = &rb_self.inner;
        let sym = |s: &str| ruby.to_symbol(s);
        h.aset(sym("subject"), id.subject.to_string())?;
        h.aset(sym("issuer"), id.issuer.to_string())?;
        h.aset(sym("common_name"), id.common_name.clone())?;
        h.aset(sym("dns_names"), Self::dns_names(ruby, rb_self))?;
        h.aset(sym("uris"), Self::uris(ruby, rb_self))?;
        h.aset(sym("emails"), Self::emails(ruby, rb_self))?;
        h.aset(sym("ips"), Self::ips(ruby, rb_self))?;
        h.aset(sym("spiffe_id"), id.spiffe_id.clone())?;
        h.aset(sym("serial"), id.serial.clone())?;
        h.aset(sym("fingerprint"), id.fingerprint.clone())?;
        h.aset(sym("not_before"), Self::not_before(ruby, rb_self)?)?;
        h.aset(sym("not_after"), Self::not_after(ruby, rb_self)?)?;
        h.aset(
            sym("chain_fingerprints"),
            Self::chain_fingerprints(ruby, rb_self),
        )?;
        h.aset(sym("revocation_warning"), id.revocation_warning.clone())?;
        Ok(h)
    }

    fn eq(&self, other: Value) -> bool {
        match <&RbIdentity>::try_convert(other) {
            Ok(o) => self.inner == o.inner,
            Err(_) => false,
        }
    }

    fn hash(&self) -> i64 {
        let mut h = DefaultHasher::new();
        self.inner.fingerprint.hash(&mut h);
        self.inner.chain_fingerprints.hash(&mut h);
        h.finish() as i64
    }

    fn inspect(&self) -> String {
        format!(
            "#<Portcullis::Identity subject={:?} spiffe_id={} fingerprint={}>",
            self.inner.subject.to_string(),
            self.inner
                .spiffe_id
                .as_ref()
                .map_or_else(|| "nil".to_owned(), |s| format!("{s:?}")),
            self.inner.fingerprint
        )
    }
}

fn binary_array(ruby: &Ruby, ders: Vec<Vec<u8>>) -> RArray {
    let ary = ruby.ary_new();
    for d in ders {
        let _ = ary.push(ruby.str_from_slice(&d));
    }
    ary
}

fn decode_any(ruby: &Ruby, input: RString) -> Result<RArray, Error> {
    decode::decode_certificates(&bytes_of(input))
        .map(|d| binary_array(ruby, d))
        .map_err(|e| cert_error(ruby, &e))
}

/// `Certificates.input_form(string)` -> `:der`, `:pem`, `:path` or nil (the core's rule).
fn input_form(ruby: &Ruby, input: RString) -> Option<Value> {
    let name = match decode::input_form(&bytes_of(input))? {
        decode::InputForm::Der => "der",
        decode::InputForm::Pem => "pem",
        decode::InputForm::Path => "path",
        _ => return None,
    };
    Some(ruby.to_symbol(name).as_value())
}

fn decode_pem(ruby: &Ruby, input: RString) -> Result<RArray, Error> {
    decode::decode_pem_certificates(&bytes_of(input))
        .map(|d| binary_array(ruby, d))
        .map_err(|e| cert_error(ruby, &e))
}

fn decode_url_escaped_pem(ruby: &Ruby, input: String) -> Result<RArray, Error> {
    decode::decode_url_escaped_pem(&input)
        .map(|d| binary_array(ruby, d))
        .map_err(|e| cert_error(ruby, &e))
}

fn decode_base64_der(ruby: &Ruby, input: String) -> Result<RString, Error> {
    decode::decode_base64_der(&input)
        .map(|d| ruby.str_from_slice(&d))
        .map_err(|e| cert_error(ruby, &e))
}

pub(crate) fn init(ruby: &Ruby, module: RModule) -> Result<(), Error> {
    let store = module.define_class("TrustStore", ruby.class_object())?;
    store.undef_default_alloc_func();
    store.define_singleton_method("_build", function!(RbTrustStore::build, 9))?;
    store.define_method("_refresh_crls", method!(RbTrustStore::refresh_crls, 0))?;
    store.define_method("crl_refresh_log", method!(RbTrustStore::crl_refresh_log, 0))?;
    store.define_method("crl_urls", method!(RbTrustStore::crl_urls, 0))?;
    store.define_method("crl_refresher?", method!(RbTrustStore::crl_refresher, 0))?;
    store.define_method("_verify", method!(RbTrustStore::verify, 4))?;
    store.define_method("_reload_crls", method!(RbTrustStore::reload_crls, 1))?;
    store.define_method("usage", method!(RbTrustStore::usage, 0))?;
    store.define_method("cache_size", method!(RbTrustStore::cache_size, 0))?;
    store.define_method("cached_count", method!(RbTrustStore::cached_count, 0))?;
    store.define_method("crls", method!(RbTrustStore::crls, 0))?;

    let identity = module.define_class("Identity", ruby.class_object())?;
    identity.undef_default_alloc_func();
    identity.define_method("subject", method!(RbIdentity::subject, 0))?;
    identity.define_method("issuer", method!(RbIdentity::issuer, 0))?;
    identity.define_method("common_name", method!(RbIdentity::common_name, 0))?;
    identity.define_method("dns_names", method!(RbIdentity::dns_names, 0))?;
    identity.define_method("uris", method!(RbIdentity::uris, 0))?;
    identity.define_method("emails", method!(RbIdentity::emails, 0))?;
    identity.define_method("ips", method!(RbIdentity::ips, 0))?;
    identity.define_method("spiffe_id", method!(RbIdentity::spiffe_id, 0))?;
    identity.define_method(
        "spiffe_trust_domain",
        method!(RbIdentity::spiffe_trust_domain, 0),
    )?;
    identity.define_method("serial", method!(RbIdentity::serial, 0))?;
    identity.define_method("fingerprint", method!(RbIdentity::fingerprint, 0))?;
    identity.define_method("not_before", method!(RbIdentity::not_before, 0))?;
    identity.define_method("not_after", method!(RbIdentity::not_after, 0))?;
    identity.define_method(
        "chain_fingerprints",
        method!(RbIdentity::chain_fingerprints, 0),
    )?;
    identity.define_method(
        "revocation_warning",
        method!(RbIdentity::revocation_warning, 0),
    )?;
    identity.define_method("to_h", method!(RbIdentity::to_h, 0))?;
    identity.define_method("==", method!(RbIdentity::eq, 1))?;
    identity.define_method("eql?", method!(RbIdentity::eq, 1))?;
    identity.define_method("hash", method!(RbIdentity::hash, 0))?;
    identity.define_method("inspect", method!(RbIdentity::inspect, 0))?;

    let certs = module.define_module("Certificates")?;
    certs.define_singleton_method("decode", function!(decode_any, 1))?;
    certs.define_singleton_method("decode_pem", function!(decode_pem, 1))?;
    certs.define_singleton_method("input_form", function!(input_form, 1))?;
    certs.define_singleton_method(
        "decode_url_escaped_pem",
        function!(decode_url_escaped_pem, 1),
    )?;
    certs.define_singleton_method("decode_base64_der", function!(decode_base64_der, 1))?;
    Ok(())
}
