//! Ruby bindings for `portcullis::lockdown`: `Portcullis::Lockdown`. The keyword surface and
//! the Puma helper live in `lib/portcullis/lockdown.rb`; this file converts and maps errors.

use std::path::PathBuf;
use std::sync::Arc;

use magnus::{prelude::*, Error, RHash, RModule, Ruby};
use portcullis::lockdown::{Access, Level, Lockdown, LockdownError, Status};

use crate::errors::{self, function, method}; // panic-guarded; see errors.rs

/// `Portcullis::Lockdown`: a checked policy; `#apply!` puts it in force.
#[magnus::wrap(class = "Portcullis::Lockdown", free_immediately, size)]
pub(crate) struct RbLockdown(Arc<Lockdown>);

impl RbLockdown {
    /// Wraps a lockdown from the configuration file, adding the running Ruby's interpreter
    /// and `Gem.path` when it uses the `ruby` preset.
    pub(crate) fn from_config(
        ruby: &Ruby,
        lockdown: &Lockdown,
        interpreter: String,
        gem_paths: Vec<String>,
    ) -> Result<Self, Error> {
        if !lockdown.presets().contains(&"ruby") {
            return Ok(Self(Arc::new(lockdown.clone())));
        }
        let built = lockdown
            .to_builder()
            .optional(Access::Exec, "RbConfig.ruby", [PathBuf::from(interpreter)])
            .optional(
                Access::Read,
                "Gem.path",
                gem_paths.iter().map(PathBuf::from),
            )
            .build()
            .map_err(|e| lockdown_error(ruby, &e))?;
        Ok(Self(Arc::new(built)))
    }
}

fn lockdown_error(ruby: &Ruby, err: &LockdownError) -> Error {
    errors::to_ruby(ruby, "LockdownError", err)
}

#[allow(clippy::too_many_arguments)] // mirrors the Ruby keyword arguments, grouped
fn build(
    ruby: &Ruby,
    paths: (Vec<String>, Vec<String>, Vec<String>),
    ports: (Vec<u16>, Vec<u16>),
    keep_caps: Vec<String>,
    user: Option<String>,
    group: Option<String>,
    flags: Vec<String>,
    preset_app: Option<String>,
    interpreter: Option<String>,
    gem_paths: Vec<String>,
) -> Result<RbLockdown, Error> {
    let (read, write, exec) = paths;
    let on = |name: &str| flags.iter().any(|f| f == name);
    let mut b = Lockdown::builder()
        .read(read)
        .write(write)
        .exec(exec)
        .connect_tcp(ports.0)
        .bind_tcp(ports.1)
        .keep_caps(keep_caps)
        .best_effort(on("best_effort"))
        .log_only(on("dry_run"))
        .calling_thread_only(on("calling_thread_only"))
        .scope_signals(!on("no_scope_signals"))
        .scope_abstract_unix(!on("no_scope_abstract_unix"))
        .syscall_floor(!on("no_syscall_floor"));
    if let Some(u) = user {
        b = b.user(u);
    }
    if let Some(g) = group {
        b = b.group(g);
    }
    if let Some(app) = preset_app {
        b = b.ruby_preset(
            std::path::Path::new(&app),
            interpreter.as_deref().map(std::path::Path::new),
            gem_paths,
        );
    }
    b.build()
        .map(|l| RbLockdown(Arc::new(l)))
        .map_err(|e| lockdown_error(ruby, &e))
}

fn level(l: Level) -> &'static str {
    match l {
        Level::Full => "full",
        Level::Partial => "partial",
        Level::LogOnly => "log_only",
        Level::Off => "off",
        _ => "unknown",
    }
}

fn status_hash(ruby: &Ruby, s: &Status) -> Result<RHash, Error> {
    let h = ruby.hash_new();
    h.aset(ruby.to_symbol("landlock_abi"), s.landlock_abi)?;
    h.aset(
        ruby.to_symbol("landlock"),
        ruby.to_symbol(level(s.landlock)),
    )?;
    h.aset(
        ruby.to_symbol("landlock_all_threads"),
        s.landlock_all_threads,
    )?;
    h.aset(ruby.to_symbol("seccomp"), ruby.to_symbol(level(s.seccomp)))?;
    h.aset(ruby.to_symbol("seccomp_syscalls"), s.seccomp_syscalls)?;
    h.aset(ruby.to_symbol("no_new_privs"), s.no_new_privs)?;
    h.aset(ruby.to_symbol("capabilities"), s.capabilities.clone())?;
    h.aset(ruby.to_symbol("missing"), s.missing.clone())?;
    h.aset(ruby.to_symbol("uid"), s.user.0)?;
    h.aset(ruby.to_symbol("gid"), s.user.1)?;
    h.aset(
        ruby.to_symbol("unrestricted_threads"),
        s.unrestricted_threads,
    )?;
    h.aset(ruby.to_symbol("log_line"), s.log_line())?;
    Ok(h)
}

impl RbLockdown {
    fn apply(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        // With the GVL held: the lockdown must run on this (the only) thread.
        let status = rb_self.0.apply().map_err(|e| lockdown_error(ruby, &e))?;
        status_hash(ruby, &status)
    }

    fn with_calling_thread_only(ruby: &Ruby, rb_self: &Self) -> Result<Self, Error> {
        let built = rb_self
            .0
            .to_builder()
            .calling_thread_only(true)
            .build()
            .map_err(|e| lockdown_error(ruby, &e))?;
        Ok(Self(Arc::new(built)))
    }

    fn explain(&self) -> String {
        self.0.explain()
    }

    fn rules(ruby: &Ruby, rb_self: &Self) -> Result<magnus::RArray, Error> {
        let out = ruby.ary_new();
        for r in rb_self.0.rules() {
            out.push((
                ruby.to_symbol(r.access.as_str()),
                r.path.display().to_string(),
                r.origin.clone(),
            ))?;
        }
        Ok(out)
    }
}

pub(crate) fn init(ruby: &Ruby, module: RModule) -> Result<(), Error> {
    let class = module.define_class("Lockdown", ruby.class_object())?;
    class.define_singleton_method("_build", function!(build, 9))?;
    class.define_method("_apply", method!(RbLockdown::apply, 0))?;
    class.define_method("explain", method!(RbLockdown::explain, 0))?;
    class.define_private_method(
        "_with_calling_thread_only",
        method!(RbLockdown::with_calling_thread_only, 0),
    )?;
    class.define_method("_rules", method!(RbLockdown::rules, 0))?;
    class.define_singleton_method("_observed", function!(observed, 1))?;
    Ok(())
}

/// `Lockdown._observed(exec_said)`: the core's reading of `/proc/self/status` (seccomp,
/// no_new_privs, effective capabilities), with what `portcullis exec` said, if anything.
fn observed(exec_said: Option<String>) -> String {
    #[cfg(target_os = "linux")]
    return portcullis::lockdown::Observed::describe_current(exec_said.as_deref());
    #[cfg(not(target_os = "linux"))]
    return exec_said.map_or_else(
        || "unsupported (not Linux)".to_owned(),
        |s| format!("applied by portcullis exec ({s})"),
    );
}
