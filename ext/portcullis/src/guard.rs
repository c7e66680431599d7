//! Ruby bindings for `portcullis::guard`: the process-wide state behind
//! `Portcullis.guard!` and the judgements the hooks in `lib/portcullis/guard.rb` ask for.
//!
//! The state lives here, in Rust globals, not in Ruby objects: the hooks run in every
//! thread, fiber and Ractor, and a module function reading a Rust global is callable from
//! all of them. Every decision is the core's (`GuardPolicy`); this file converts types.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};

use magnus::{prelude::*, Error, RArray, RModule, RString, Ruby, Value};
use portcullis::guard::{
    normalise_name, parse_sockaddr, shell_reason_bytes, system_nameservers, Command, GuardError,
    GuardOptions, GuardPolicy, Mode, NameCache, SocketTarget, SpawnRule, Verdict,
};
use portcullis::ErrorCode;

use crate::egress::RbEgressPolicy;
use crate::errors::{self, function}; // panic-guarded; see errors.rs

static POLICY: RwLock<Option<Arc<GuardPolicy>>> = RwLock::new(None);
static NAMES: LazyLock<NameCache> = LazyLock::new(|| NameCache::new(4096));
static SEEN: LazyLock<Mutex<HashSet<u64>>> = LazyLock::new(|| Mutex::new(HashSet::new()));
/// [egress, spawn] x [allowed, refused, reported]
static COUNTS: [[AtomicU64; 3]; 2] = [
    [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
    [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
];
const EGRESS: usize = 0;
const SPAWN: usize = 1;
const SEEN_CAPACITY: usize = 4096;

fn current() -> Option<Arc<GuardPolicy>> {
    POLICY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

fn invalid(ruby: &Ruby, err: &GuardError) -> Error {
    errors::to_ruby(ruby, "ConfigError", err)
}

/// `_install(policy, mode, spawn, programs_or_nil, nameservers_or_nil)`: builds the guard
/// policy in the core and makes it the process's.
fn install(
    ruby: &Ruby,
    egress: &RbEgressPolicy,
    mode: String,
    spawn: String,
    programs: Option<Vec<String>>,
    nameservers: Option<Vec<String>>,
) -> Result<(), Error> {
    let mode = Mode::parse(&mode).map_err(|e| invalid(ruby, &e))?;
    let spawn = SpawnRule::parse(&spawn).map_err(|e| invalid(ruby, &e))?;
    let nameservers = match nameservers {
        None => system_nameservers(),
        Some(list) => list
            .iter()
            .map(|s| {
                s.parse::<IpAddr>().map_err(|_| {
                    invalid(
                        ruby,
                        &GuardError::Invalid {
                            reason: format!("nameserver {s:?} is not an IP address"),
                        },
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let mut options = GuardOptions::default();
    options.mode = mode;
    options.spawn = spawn;
    options.programs = programs;
    options.nameservers = nameservers;
    let policy = GuardPolicy::new(egress.shared(), options).map_err(|e| invalid(ruby, &e))?;
    *POLICY.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(policy));
    Ok(())
}

fn active() -> bool {
    current().is_some()
}

/// nil when allowed (or not egress); otherwise
/// `[action, code, message, address, port, host]` with action "refused" or "reported".
fn outcome(ruby: &Ruby, kind: usize, verdict: Verdict) -> Result<Option<RArray>, Error> {
    let counts = &COUNTS[kind];
    let (action, err) = match verdict {
        Verdict::Allowed | Verdict::Nameserver => {
            counts[0].fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        Verdict::NotEgress => return Ok(None),
        Verdict::Refused(err) => {
            counts[1].fetch_add(1, Ordering::Relaxed);
            ("refused", err)
        }
        Verdict::Reported(err) => {
            counts[2].fetch_add(1, Ordering::Relaxed);
            ("reported", err)
        }
        _ => return Ok(None),
    };
    let out = ruby.ary_new_capa(6);
    out.push(action)?;
    out.push(err.code())?;
    out.push(err.to_string())?;
    match &err {
        GuardError::Egress { address, host, .. } => {
            out.push(address.ip().to_string())?;
            out.push(address.port())?;
            out.push(host.as_deref())?;
        }
        GuardError::ShellString { program, .. } | GuardError::ProgramNotAllowed { program, .. } => {
            out.push(ruby.qnil())?;
            out.push(ruby.qnil())?;
            out.push(program.as_str())?;
        }
        _ => {
            out.push(ruby.qnil())?;
            out.push(ruby.qnil())?;
            out.push(ruby.qnil())?;
        }
    }
    Ok(Some(out))
}

/// `_judge_sockaddr(bytes, host_or_nil)`: a connect or send to a packed `struct sockaddr`.
/// Without `host`, the name cache supplies the name the address was resolved from.
fn judge_sockaddr(
    ruby: &Ruby,
    raw: RString,
    host: Option<String>,
) -> Result<Option<RArray>, Error> {
    let Some(policy) = current() else {
        return Ok(None);
    };
    let bytes = raw.to_bytes();
    let host = host
        .and_then(|h| normalise_name(&h))
        .or_else(|| match parse_sockaddr(&bytes) {
            Ok(SocketTarget::Inet(addr)) => NAMES.lookup(addr.ip()),
            _ => None,
        });
    outcome(ruby, EGRESS, policy.judge_sockaddr(&bytes, host.as_deref()))
}

/// `_judge_ip(address_text, port, host_or_nil)`: one answer of a name the hooks resolved
/// themselves (`TCPSocket#initialize`, `UDPSocket#connect/#send`).
fn judge_ip(
    ruby: &Ruby,
    ip: String,
    port: u16,
    host: Option<String>,
) -> Result<Option<RArray>, Error> {
    let Some(policy) = current() else {
        return Ok(None);
    };
    let text = ip.split('%').next().unwrap_or_default();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let addr: IpAddr = text
        .parse()
        .map_err(|_| errors::arg_error(ruby, format!("{ip:?} is not an IP address")))?;
    let host = host
        .and_then(|h| normalise_name(&h))
        .or_else(|| NAMES.lookup(addr));
    outcome(
        ruby,
        EGRESS,
        policy.judge_connect(SocketAddr::new(addr, port), host.as_deref()),
    )
}

/// `_record_names(name, [address, ...])`: remembers which addresses a name resolved to.
fn record_names(name: String, addrs: Vec<String>) {
    let parsed: Vec<IpAddr> = addrs
        .iter()
        .filter_map(|a| a.split('%').next().and_then(|t| t.parse().ok()))
        .collect();
    if !parsed.is_empty() {
        NAMES.record(&name, &parsed);
    }
}

/// `_name?(text)`: whether `text` is a host name (not an IP literal in any spelling).
fn is_name(text: String) -> bool {
    normalise_name(&text).is_some()
}

/// `_judge_shell(command_string)` / `_judge_argv(program, argc)`.
fn judge_shell(ruby: &Ruby, command: RString) -> Result<Option<RArray>, Error> {
    let Some(policy) = current() else {
        return Ok(None);
    };
    let bytes = command.to_bytes();
    outcome(ruby, SPAWN, policy.judge_command(Command::Shell(&bytes)))
}

fn judge_argv(ruby: &Ruby, program: RString, argc: usize) -> Result<Option<RArray>, Error> {
    let Some(policy) = current() else {
        return Ok(None);
    };
    let bytes = program.to_bytes();
    outcome(
        ruby,
        SPAWN,
        policy.judge_command(Command::Argv(&bytes, argc)),
    )
}

/// `Portcullis::Guard.shell_reason(string)`: why Ruby would run this string through
/// `/bin/sh`, or nil when it execs it directly.
fn shell_reason(command: RString) -> Option<String> {
    shell_reason_bytes(&command.to_bytes()).map(|r| r.to_string())
}

/// `_first_seen(key)`: true the first time an event key is seen (deduplication).
fn first_seen(key: String) -> bool {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    let digest = hasher.finish();
    let mut seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
    if seen.len() >= SEEN_CAPACITY {
        seen.clear();
    }
    seen.insert(digest)
}

/// `_state` -> nil, or `[mode, spawn, programs_or_nil, [nameserver, ...], [egress allowed, refused, reported], [spawn ...], names]`.
fn state(ruby: &Ruby) -> Result<Value, Error> {
    let Some(policy) = current() else {
        return Ok(ruby.qnil().as_value());
    };
    let options = policy.options();
    let out = ruby.ary_new_capa(8);
    out.push(options.mode.as_str())?;
    out.push(options.spawn.as_str())?;
    out.push(options.programs.clone())?;
    out.push(
        options
            .nameservers
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>(),
    )?;
    for kind in [EGRESS, SPAWN] {
        let counts: Vec<u64> = COUNTS[kind]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        out.push(counts)?;
    }
    out.push(NAMES.len())?;
    Ok(out.as_value())
}

pub(crate) fn init(ruby: &Ruby, module: RModule) -> Result<(), Error> {
    let guard = module.define_module("Guard")?;
    guard.define_singleton_method("_install", function!(install, 5))?;
    // The hooks run in every Ractor. The functions defined next touch only Rust globals
    // (behind locks or atomics) and build plain Arrays/Strings, so they are marked
    // Ractor-safe; `_install` above stays main-Ractor only.
    set_ractor_safe(true);
    let defined = define_hook_functions(guard);
    set_ractor_safe(false);
    defined?;
    let _ = ruby;
    Ok(())
}

#[allow(unsafe_code)] // one flag-setting call; rb_ext_ractor_safe only changes how the next methods are defined
fn set_ractor_safe(flag: bool) {
    // SAFETY: called during the extension's Init with the GVL held; it sets a per-thread
    // flag that rb_define_* reads.
    unsafe { rb_sys::rb_ext_ractor_safe(flag) }
}

fn define_hook_functions(guard: RModule) -> Result<(), Error> {
    guard.define_singleton_method("active?", function!(active, 0))?;
    guard.define_singleton_method("_judge_sockaddr", function!(judge_sockaddr, 2))?;
    guard.define_singleton_method("_judge_ip", function!(judge_ip, 3))?;
    guard.define_singleton_method("_record_names", function!(record_names, 2))?;
    guard.define_singleton_method("_name?", function!(is_name, 1))?;
    guard.define_singleton_method("_judge_shell", function!(judge_shell, 1))?;
    guard.define_singleton_method("_judge_argv", function!(judge_argv, 2))?;
    guard.define_singleton_method("shell_reason", function!(shell_reason, 1))?;
    guard.define_singleton_method("_first_seen", function!(first_seen, 1))?;
    guard.define_singleton_method("_state", function!(state, 0))?;
    Ok(())
}
