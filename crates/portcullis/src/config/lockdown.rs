//! `[lockdown.NAME]`: the kernel lockdown of a process, from the file.
//!
//! ```toml
//! [lockdown.web]
//! preset = "ruby"                 # what a Ruby/Rails process needs to boot and serve
//! read = ["/srv/shared"]
//! write = ["/srv/uploads"]
//! # exec defaults to the command templates' programs and the Ruby interpreter
//! connect_tcp = [5432, "partners"] # ports, or egress policies whose ports it opens
//! bind_tcp = [3000]
//! keep_caps = []                   # e.g. ["NET_BIND_SERVICE"]
//! user = "app"
//! best_effort = false              # fail closed (default)
//! egress = "internal"              # the connect supervisor judges addresses by [egress.internal]
//! unix_sockets = ["/run/postgresql/.s.PGSQL.5432"]
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::build::{invalid, Ctx};
use super::spec::PathList;
use super::{ConfigError, Section};
use crate::command::CommandTemplate;
use crate::egress::EgressPolicy;
use crate::lockdown::{Access, Lockdown, LockdownBuilder};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LockdownSpec {
    preset: Option<Spanned<String>>,
    read: Option<Spanned<PathList>>,
    write: Option<Spanned<PathList>>,
    exec: Option<Spanned<PathList>>,
    #[serde(default)]
    connect_tcp: Vec<Spanned<PortOrPolicy>>,
    #[serde(default)]
    bind_tcp: Vec<Spanned<u16>>,
    #[serde(default)]
    keep_caps: Vec<Spanned<String>>,
    user: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
    best_effort: Option<bool>,
    scope_signals: Option<bool>,
    scope_abstract_unix: Option<bool>,
    syscall_floor: Option<bool>,
    /// The app directory of the `ruby` preset (default: the directory holding `config/`).
    app: Option<Spanned<String>>,
    /// Gem directories of the `ruby` preset (default: GEM_HOME, GEM_PATH and the usual
    /// system places; `portcullis exec` and the Ruby binding add `Gem.path`).
    gem_paths: Option<Spanned<PathList>>,
    /// The `[egress.NAME]` whose address rules the connect supervisor enforces.
    egress: Option<Spanned<String>>,
    /// Pathname UNIX sockets the supervisor lets the process connect to.
    #[serde(default)]
    unix_sockets: Vec<Spanned<String>>,
}

#[derive(Debug)]
enum PortOrPolicy {
    Port(i64),
    Policy(String),
}

impl<'de> Deserialize<'de> for PortOrPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortOrPolicy;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TCP port or the name of an [egress.NAME] policy")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortOrPolicy, E> {
                Ok(PortOrPolicy::Port(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortOrPolicy, E> {
                Ok(PortOrPolicy::Port(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortOrPolicy, E> {
                Ok(PortOrPolicy::Policy(v.to_owned()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `ruby` found on PATH, symlinks resolved.
pub(crate) fn ruby_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ruby"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
}

/// Gem directories the environment names, and the usual system places.
fn default_gem_paths() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = ["/var/lib/gems", "/usr/lib/ruby", "/usr/local/lib/ruby"]
        .iter()
        .map(PathBuf::from)
        .collect();
    for var in ["GEM_HOME", "GEM_PATH", "BUNDLE_PATH"] {
        if let Some(v) = std::env::var_os(var) {
            out.extend(std::env::split_paths(&v).filter(|p| p.is_absolute()));
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        out.push(home.join(".gem"));
        out.push(home.join(".local/share/gem"));
    }
    out
}

/// A file loaded by a relative name resolves against the working directory, as the
/// kernel would when the rule is made.
fn absolute(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        return p;
    }
    std::env::current_dir().map_or(p.clone(), |cwd| cwd.join(p))
}

fn app_dir(base: &Path) -> PathBuf {
    let base = absolute(base.to_path_buf());
    let base = std::fs::canonicalize(&base).unwrap_or(base);
    if base.file_name().is_some_and(|n| n == "config") {
        base.parent()
            .map_or_else(|| base.clone(), Path::to_path_buf)
    } else {
        base
    }
}

type Built = (Lockdown, Vec<String>);

pub(super) fn build_one(
    ctx: &Ctx<'_>,
    name: &str,
    spec: &Spanned<LockdownSpec>,
    egress: &BTreeMap<String, Arc<EgressPolicy>>,
    commands: &BTreeMap<String, Arc<CommandTemplate>>,
) -> Result<Built, ConfigError> {
    let s = spec.get_ref();
    let refuse = |span: &std::ops::Range<usize>, e: crate::lockdown::LockdownError| {
        invalid(ctx.at(span), format!("[lockdown.{name}]: {e}"), Some(e))
    };
    let mut b = Lockdown::builder();
    let mut details = Vec::new();
    if let Some(preset) = &s.preset {
        match preset.get_ref().as_str() {
            "ruby" => {
                let app = s
                    .app
                    .as_ref()
                    .map_or_else(|| app_dir(ctx.base), |a| absolute(ctx.resolve(a.get_ref())));
                let gems: Vec<PathBuf> = match &s.gem_paths {
                    Some(list) => list
                        .get_ref()
                        .spanned(&list.span())
                        .into_iter()
                        .map(|(p, _)| absolute(ctx.resolve(&p)))
                        .collect(),
                    None => default_gem_paths(),
                };
                b = b.ruby_preset(&app, ruby_on_path().as_deref(), gems);
                details.push(format!("preset ruby (app {})", app.display()));
            }
            other => {
                return Err(invalid(
                    ctx.at(&preset.span()),
                    format!("[lockdown.{name}]: unknown preset {other:?}; the presets are: ruby"),
                    None::<crate::lockdown::LockdownError>,
                ))
            }
        }
    }
    let lists = [
        (Access::Read, &s.read),
        (Access::Write, &s.write),
        (Access::Exec, &s.exec),
    ];
    for (access, list) in lists {
        let Some(list) = list else { continue };
        for (p, span) in list.get_ref().spanned(&list.span()) {
            let path = absolute(ctx.resolve(&p));
            // checked one by one so the refusal points at the path
            Lockdown::builder()
                .add_for_check(access, &path)
                .build()
                .map_err(|e| refuse(&span, e))?;
            b = match access {
                Access::Read => b.read([&path]),
                Access::Write => b.write([&path]),
                _ => b.exec([&path]),
            };
        }
    }
    if s.exec.is_none() {
        // Default: the command templates' programs and the Ruby interpreter.
        let programs: Vec<PathBuf> = commands
            .values()
            .map(|c| c.resolved_program().to_path_buf())
            .collect();
        b = b.optional(Access::Exec, "command templates", programs);
        if let Some(ruby) = ruby_on_path() {
            b = b.optional(Access::Exec, "Ruby interpreter", [ruby]);
        }
    }
    for item in &s.connect_tcp {
        match item.get_ref() {
            PortOrPolicy::Port(p) => {
                let port = u16::try_from(*p).ok().filter(|&p| p != 0).ok_or_else(|| {
                    invalid(
                        ctx.at(&item.span()),
                        format!(
                            "[lockdown.{name}]: connect_tcp port {p} is not a TCP port 1-65535"
                        ),
                        None::<crate::lockdown::LockdownError>,
                    )
                })?;
                b = b.connect_tcp([port]);
            }
            PortOrPolicy::Policy(policy) => {
                let Some(found) = egress.get(policy) else {
                    let defined: Vec<&str> = egress.keys().map(String::as_str).collect();
                    return Err(ConfigError::Reference {
                        at: ctx.at(&item.span()),
                        message: format!(
                            "connect_tcp names no egress policy {policy:?}; define [egress.{policy}] or use one of: {}",
                            if defined.is_empty() { "(none defined)".to_owned() } else { defined.join(", ") }
                        ),
                    });
                };
                b = b.connect_tcp(found.ports().iter().copied());
            }
        }
    }
    for port in &s.bind_tcp {
        if *port.get_ref() == 0 {
            return Err(invalid(
                ctx.at(&port.span()),
                format!("[lockdown.{name}]: bind_tcp port 0 is not a TCP port; name the port the server listens on"),
                None::<crate::lockdown::LockdownError>,
            ));
        }
        b = b.bind_tcp([*port.get_ref()]);
    }
    if let Some(e) = &s.egress {
        let Some(found) = egress.get(e.get_ref()) else {
            let defined: Vec<&str> = egress.keys().map(String::as_str).collect();
            return Err(ConfigError::Reference {
                at: ctx.at(&e.span()),
                message: format!(
                    "egress names no egress policy {:?}; define [egress.{}] or use one of: {}",
                    e.get_ref(),
                    e.get_ref(),
                    if defined.is_empty() {
                        "(none defined)".to_owned()
                    } else {
                        defined.join(", ")
                    }
                ),
            });
        };
        b = b.egress(e.get_ref().clone(), (**found).clone());
        details.push(format!("supervisor egress {}", e.get_ref()));
    }
    for sock in &s.unix_sockets {
        Lockdown::builder()
            .unix_sockets([sock.get_ref()])
            .build()
            .map_err(|e| refuse(&sock.span(), e))?;
        b = b.unix_sockets([sock.get_ref()]);
    }
    if !s.unix_sockets.is_empty() {
        details.push(format!(
            "unix_sockets {}",
            s.unix_sockets
                .iter()
                .map(|s| s.get_ref().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for cap in &s.keep_caps {
        Lockdown::builder()
            .keep_caps([cap.get_ref()])
            .build()
            .map_err(|e| refuse(&cap.span(), e))?;
        b = b.keep_caps([cap.get_ref()]);
    }
    if let Some(u) = &s.user {
        b = b.user(u.get_ref());
    }
    if let Some(g) = &s.group {
        if s.user.is_none() {
            return Err(invalid(
                ctx.at(&g.span()),
                format!("[lockdown.{name}]: group needs user too"),
                None::<crate::lockdown::LockdownError>,
            ));
        }
        b = b.group(g.get_ref());
    }
    b = b
        .best_effort(s.best_effort.unwrap_or(false))
        .scope_signals(s.scope_signals.unwrap_or(true))
        .scope_abstract_unix(s.scope_abstract_unix.unwrap_or(true))
        .syscall_floor(s.syscall_floor.unwrap_or(true));
    let built = b.build().map_err(|e| refuse(&spec.span(), e))?;
    for r in built.rules() {
        details.push(format!("{} {}", r.access.as_str(), r.path.display()));
    }
    let ports = |v: Vec<u16>| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        }
    };
    details.push(format!(
        "connect_tcp {}",
        ports(built.connect_tcp().collect())
    ));
    details.push(format!("bind_tcp {}", ports(built.bind_tcp().collect())));
    if s.best_effort == Some(true) {
        details.push("best effort: runs with less when the kernel lacks a feature".to_owned());
    }
    Ok((built, details))
}

pub(super) fn build_all(
    ctx: &Ctx<'_>,
    specs: &BTreeMap<String, Spanned<LockdownSpec>>,
    egress: &BTreeMap<String, Arc<EgressPolicy>>,
    commands: &BTreeMap<String, Arc<CommandTemplate>>,
    summary: &mut Vec<Section>,
) -> Result<BTreeMap<String, Arc<Lockdown>>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, spec) in specs {
        let (built, details) = build_one(ctx, name, spec, egress, commands)?;
        out.insert(name.clone(), Arc::new(built));
        summary.push(Section {
            kind: "lockdown",
            name: name.clone(),
            details,
        });
    }
    Ok(out)
}

impl LockdownBuilder {
    fn add_for_check(self, access: Access, path: &Path) -> Self {
        match access {
            Access::Read => self.read([path]),
            Access::Write => self.write([path]),
            _ => self.read([path]), // exec: the interpreters are checked with the whole policy
        }
    }
}
