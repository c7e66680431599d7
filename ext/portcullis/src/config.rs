//! Ruby bindings for `portcullis::config`: `Portcullis::Config` (loaded by
//! `Portcullis.load`, see `lib/portcullis/config.rb`).
//!
//! The objects it hands out are the same Ruby classes the direct constructors make
//! (`Portcullis::TrustStore`, `EgressPolicy`, `SafeRoot`, `Command`), sharing the core
//! objects of the configuration in force when they were asked for.

use std::sync::Arc;
use std::time::Duration;

use magnus::{prelude::*, Error, RArray, RModule, Ruby};

use crate::errors::{function, method}; // panic-guarded; see errors.rs
use portcullis::config::{ConfigError, ConfigHandle};

use crate::authz::RbAccessPolicy;
use crate::command::RbCommand;
use crate::egress::RbEgressPolicy;
use crate::fs::RbSafeRoot;
use crate::identity::RbTrustStore;
use crate::source::RbCertSource;
use crate::{errors, gvl};

/// `Portcullis::Config`: a configuration file kept in force; reloads swap atomically.
#[magnus::wrap(class = "Portcullis::Config", free_immediately, size)]
struct RbConfig(Arc<ConfigHandle>);

/// Raises `Portcullis::ConfigError` with `#code`, and `#file`, `#line`, `#column` when the
/// error is about the file's content.
fn config_error(ruby: &Ruby, err: &ConfigError) -> Error {
    let raised = errors::to_ruby(ruby, "ConfigError", err);
    if let (Some(exc), Some(at)) = (raised.value(), err.location()) {
        for (ivar, value) in [
            ("@file", ruby.str_new(&at.file).as_value()),
            ("@line", ruby.integer_from_u64(at.line as u64).as_value()),
            (
                "@column",
                ruby.integer_from_u64(at.column as u64).as_value(),
            ),
        ] {
            if let Err(e) =
                exc.funcall::<_, _, magnus::Value>("instance_variable_set", (ivar, value))
            {
                return e;
            }
        }
    }
    raised
}

/// Runs file-reading core work without the GVL and maps its error.
fn off_gvl<R: Send>(
    ruby: &Ruby,
    work: impl FnOnce() -> Result<R, ConfigError> + Send,
) -> Result<R, Error> {
    match gvl::without_gvl(work) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(config_error(ruby, &err)),
        Err(panic) => Err(gvl::panic_error(panic)),
    }
}

/// `Config._load(path, check_interval_seconds)`
fn load(ruby: &Ruby, path: String, interval: f64) -> Result<RbConfig, Error> {
    let interval = Duration::try_from_secs_f64(interval).map_err(|_| {
        errors::arg_error(
            ruby,
            "check_interval: must be a non-negative number of seconds",
        )
    })?;
    let handle = off_gvl(ruby, move || ConfigHandle::open(&path))?;
    Ok(RbConfig(Arc::new(handle.with_check_interval(interval))))
}

impl RbConfig {
    fn trust_store(ruby: &Ruby, rb_self: &Self, name: String) -> Result<RbTrustStore, Error> {
        let config = rb_self.0.current();
        let store = config
            .trust_store(&name)
            .map_err(|e| config_error(ruby, &e))?;
        Ok(RbTrustStore::from_shared(Arc::clone(store)))
    }

    fn egress(ruby: &Ruby, rb_self: &Self, name: String) -> Result<RbEgressPolicy, Error> {
        let config = rb_self.0.current();
        let policy = config.egress(&name).map_err(|e| config_error(ruby, &e))?;
        Ok(RbEgressPolicy::from_shared(Arc::clone(policy)))
    }

    fn root(ruby: &Ruby, rb_self: &Self, name: String) -> Result<RbSafeRoot, Error> {
        let config = rb_self.0.current();
        let root = config.root(&name).map_err(|e| config_error(ruby, &e))?;
        Ok(RbSafeRoot::from_shared(Arc::clone(root)))
    }

    fn command(ruby: &Ruby, rb_self: &Self, name: String) -> Result<RbCommand, Error> {
        let config = rb_self.0.current();
        let template = config.command(&name).map_err(|e| config_error(ruby, &e))?;
        Ok(RbCommand::from_template((**template).clone()))
    }

    fn source(ruby: &Ruby, rb_self: &Self, name: String) -> Result<RbCertSource, Error> {
        let config = rb_self.0.current();
        let source = config.source(&name).map_err(|e| config_error(ruby, &e))?;
        Ok(RbCertSource::from_source((**source).clone()))
    }

    /// `_access_policy(store_or_nil)`
    fn access_policy(
        ruby: &Ruby,
        rb_self: &Self,
        store: Option<String>,
    ) -> Result<RbAccessPolicy, Error> {
        let config = rb_self.0.current();
        let policy = match store {
            None => config.access_policy(),
            Some(name) => config
                .access_policy_for(&name)
                .map_err(|e| config_error(ruby, &e))?,
        };
        Ok(RbAccessPolicy::from_policy((**policy).clone()))
    }

    /// `_rack` -> nil or `[trust_store, source_or_nil, [[route, permission], ...], [skip, ...], interval_or_nil]`
    fn rack(ruby: &Ruby, rb_self: &Self) -> Result<Option<RArray>, Error> {
        let config = rb_self.0.current();
        let Some(rack) = config.rack() else {
            return Ok(None);
        };
        let require = ruby.ary_new_capa(rack.require.len());
        for (route, permission) in &rack.require {
            require.push((route.as_str(), permission.as_str()))?;
        }
        let out = ruby.ary_new_capa(5);
        out.push(rack.trust_store.as_str())?;
        out.push(rack.source.as_deref())?;
        out.push(require)?;
        out.push(ruby.ary_from_iter(rack.skip.iter().map(String::as_str)))?;
        out.push(rack.reload_interval.map(|d| d.as_secs_f64()))?;
        Ok(Some(out))
    }

    fn reload(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        let handle = Arc::clone(&rb_self.0);
        off_gvl(ruby, move || handle.reload().map(|_| true))
    }

    fn reload_if_changed(ruby: &Ruby, rb_self: &Self, throttle: bool) -> Result<bool, Error> {
        let handle = Arc::clone(&rb_self.0);
        off_gvl(ruby, move || {
            if throttle {
                handle.reload_if_changed()
            } else {
                handle.reload_if_changed_now()
            }
        })
    }

    fn reload_crls(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        let handle = Arc::clone(&rb_self.0);
        off_gvl(ruby, move || handle.reload_crls().map(|_| true))
    }

    fn path(&self) -> String {
        self.0.path().display().to_string()
    }

    fn names(ruby: &Ruby, rb_self: &Self, kind: String) -> Result<RArray, Error> {
        let config = rb_self.0.current();
        let names: Vec<&str> = match kind.as_str() {
            "trust_store" => config.trust_store_names().collect(),
            "egress" => config.egress_names().collect(),
            "root" => config.root_names().collect(),
            "command" => config.command_names().collect(),
            "source" => config.source_names().collect(),
            other => {
                return Err(errors::arg_error(
                    ruby,
                    format!("unknown section kind {other:?}"),
                ))
            }
        };
        let out = ruby.ary_new_capa(names.len());
        for n in names {
            out.push(ruby.to_symbol(n))?;
        }
        Ok(out)
    }

    /// `[[kind, name, [detail, ...]], ...]`
    fn summary(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        let config = rb_self.0.current();
        let out = ruby.ary_new_capa(config.summary().len());
        for s in config.summary() {
            let details = ruby.ary_from_iter(s.details.iter().map(String::as_str));
            out.push((ruby.to_symbol(s.kind), s.name.as_str(), details))?;
        }
        Ok(out)
    }
}

pub(crate) fn init(ruby: &Ruby, module: RModule) -> Result<(), Error> {
    let class = module.define_class("Config", ruby.class_object())?;
    class.define_singleton_method("_load", function!(load, 2))?;
    class.define_method("_trust_store", method!(RbConfig::trust_store, 1))?;
    class.define_method("_egress", method!(RbConfig::egress, 1))?;
    class.define_method("_root", method!(RbConfig::root, 1))?;
    class.define_method("_command", method!(RbConfig::command, 1))?;
    class.define_method("_source", method!(RbConfig::source, 1))?;
    class.define_method("_access_policy", method!(RbConfig::access_policy, 1))?;
    class.define_method("_rack", method!(RbConfig::rack, 0))?;
    class.define_method("_reload", method!(RbConfig::reload, 0))?;
    class.define_method(
        "_reload_if_changed",
        method!(RbConfig::reload_if_changed, 1),
    )?;
    class.define_method("_reload_crls", method!(RbConfig::reload_crls, 0))?;
    class.define_method("_names", method!(RbConfig::names, 1))?;
    class.define_method("_summary", method!(RbConfig::summary, 0))?;
    class.define_method("path", method!(RbConfig::path, 0))?;
    Ok(())
}
