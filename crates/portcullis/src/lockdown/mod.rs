//! The kernel floor under everything: once locked down, this process, every thread of it
//! and everything it starts can read, write and execute only beneath the paths its policy
//! names, connect and bind only the TCP ports it names, and cannot make the system calls
//! container escapes use.
//!
//! Layers, applied in this order by [`Lockdown::apply`]:
//! 1. optional switch to an unprivileged `user`/`group`;
//! 2. capabilities: bounding set reduced and ambient set cleared; permitted, effective and
//!    inheritable reduced to `keep_caps` (default: none);
//! 3. `PR_SET_NO_NEW_PRIVS` (setuid binaries and file capabilities stop working);
//! 4. Landlock (the `landlock` crate): every filesystem access right of the running ABI is
//!    handled, and each path gets only what its list needs; TCP bind/connect by port;
//!    signal and abstract-UNIX-socket scoping;
//! 5. seccomp (the `seccompiler` crate), on every thread (TSYNC): the syscall floor.
//!
//! Everything that can be refused (paths, names, threads, kernel support) is checked before
//! step 1, so a refusal leaves the process unchanged.
//!
//! On this kernel (Landlock ABI 7) Landlock restricts only the calling thread; `apply`
//! therefore refuses with `lockdown.threads` when the process has more than one thread,
//! unless the kernel offers `LANDLOCK_RESTRICT_SELF_TSYNC` (ABI 8), which it then uses.
//!
//! ```no_run
//! use portcullis::lockdown::Lockdown;
//! let status = Lockdown::builder()
//!     .read(["/usr/lib", "/etc/ssl"])
//!     .write(["/srv/app/tmp"])
//!     .exec(["/usr/bin/convert"])
//!     .connect_tcp([443, 5432])
//!     .bind_tcp([8080])
//!     .build()?
//!     .apply()?; // at the top of main, before any thread starts
//! eprintln!("{}", status.log_line());
//! # Ok::<(), portcullis::lockdown::LockdownError>(())
//! ```

mod caps;
#[cfg(target_os = "linux")]
mod connect_policy;
mod error;
mod interp;
#[cfg(target_os = "linux")]
mod landlock_rules;
#[cfg(target_os = "linux")]
mod observed;
#[cfg(target_os = "linux")]
mod seccomp;
#[cfg(target_os = "linux")]
pub mod supervisor;
#[cfg(target_os = "linux")]
mod sys;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(target_os = "linux")]
pub use connect_policy::{nameservers_of, ConnectPolicy, Destination, Refusal, RUNTIME_SOCKETS};
pub use error::LockdownError;
#[cfg(target_os = "linux")]
pub use observed::Observed;

/// What a path rule lets the process do beneath the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Access {
    /// Open files for reading and list directories.
    Read,
    /// Read, plus create, write, truncate, rename and remove files, directories, symlinks,
    /// FIFOs and sockets (never device nodes); ioctl only on devices beneath `/dev`.
    Write,
    /// Read, plus execute.
    Exec,
}

impl Access {
    /// `read`, `write` or `exec`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Exec => "exec",
        }
    }
}

/// One path of the policy, after checking.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathRule {
    /// The path, with symlinks resolved (Landlock binds to what the name resolves to now).
    pub path: PathBuf,
    /// What is allowed beneath it.
    pub access: Access,
    /// Why it is there: `policy`, a preset name, or `interpreter of /usr/bin/x`.
    pub origin: String,
}

/// What the policy asks of one layer, and what the kernel gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Level {
    /// Everything asked is enforced.
    Full,
    /// Enforced, but the kernel lacks part of what was asked (`best_effort` only).
    Partial,
    /// Not enforcing; refusals are only logged (`--dry-run`).
    LogOnly,
    /// Not enforced.
    Off,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Self::Full => "enforced",
            Self::Partial => "partly enforced",
            Self::LogOnly => "log only",
            Self::Off => "off",
        }
    }
}

/// What [`Lockdown::apply`] put in force, as a value and as one log line.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The running Landlock ABI (0: none).
    pub landlock_abi: i32,
    /// Landlock's state.
    pub landlock: Level,
    /// Whether Landlock covers every thread (TSYNC, ABI 8) rather than the calling one
    /// (which was then the only one).
    pub landlock_all_threads: bool,
    /// Parts of the policy the kernel could not enforce (empty when [`Level::Full`]).
    pub missing: Vec<String>,
    /// The seccomp floor's state.
    pub seccomp: Level,
    /// Syscalls on the floor's refusal list.
    pub seccomp_syscalls: usize,
    /// `PR_SET_NO_NEW_PRIVS` is set.
    pub no_new_privs: bool,
    /// Capabilities left in the effective set, by name.
    pub capabilities: Vec<String>,
    /// Whether the bounding set now holds only `keep_caps`.
    pub bounding_reduced: bool,
    /// `(uid, gid)` after the optional user switch.
    pub user: (u32, u32),
    /// Threads Landlock does not restrict ([`LockdownBuilder::calling_thread_only`]); 0
    /// unless asked for.
    pub unrestricted_threads: usize,
}

impl Status {
    /// One line for the log: every layer and how fully it holds.
    ///
    /// ```
    /// # use portcullis::lockdown::{Lockdown, LockdownError};
    /// // `Status` comes from `apply`; its line names every layer
    /// fn log(s: &portcullis::lockdown::Status) { eprintln!("{}", s.log_line()); }
    /// ```
    pub fn log_line(&self) -> String {
        let threads = if self.landlock_all_threads {
            "all threads"
        } else if self.unrestricted_threads > 0 {
            "calling thread only"
        } else {
            "calling thread, the only one"
        };
        let mut line = format!(
            "portcullis lockdown: landlock ABI {} {} ({threads}); seccomp floor {} ({} syscalls, clone3 ENOSYS, x32 refused, all threads); no_new_privs {}; capabilities {}{}; uid {} gid {}",
            self.landlock_abi,
            self.landlock.as_str(),
            self.seccomp.as_str(),
            self.seccomp_syscalls,
            if self.no_new_privs { "on" } else { "off" },
            if self.capabilities.is_empty() { "none".to_owned() } else { self.capabilities.join(",") },
            if self.bounding_reduced { "" } else { " (bounding set unchanged: no CAP_SETPCAP; no_new_privs keeps file capabilities from applying)" },
            self.user.0,
            self.user.1,
        );
        if self.unrestricted_threads > 0 {
            line.push_str(&format!(
                "; {} other threads NOT restricted by Landlock (calling_thread_only)",
                self.unrestricted_threads
            ));
        }
        if !self.missing.is_empty() {
            line.push_str(&format!("; NOT enforced: {}", self.missing.join(", ")));
        }
        line
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.log_line())
    }
}

#[derive(Clone, Debug)]
struct Wanted {
    path: PathBuf,
    access: Access,
    optional: bool,
    origin: String,
}

/// Builds a [`Lockdown`] from plain data. Nothing is checked until [`build`](Self::build).
///
/// Defaults: no paths, no TCP ports, signals and abstract UNIX sockets scoped, the syscall
/// floor on, no capabilities kept, no user switch, fail closed.
#[derive(Clone, Debug)]
#[must_use]
pub struct LockdownBuilder {
    wanted: Vec<Wanted>,
    connect_tcp: BTreeSet<u16>,
    bind_tcp: BTreeSet<u16>,
    scope_signals: bool,
    scope_abstract_unix: bool,
    syscall_floor: bool,
    keep_caps: Vec<String>,
    user: Option<String>,
    group: Option<String>,
    best_effort: bool,
    log_only: bool,
    calling_thread_only: bool,
    presets: Vec<&'static str>,
    egress: Option<(String, crate::egress::EgressPolicy)>,
    unix_sockets: Vec<String>,
}

impl Default for LockdownBuilder {
    fn default() -> Self {
        Self {
            wanted: Vec::new(),
            connect_tcp: BTreeSet::new(),
            bind_tcp: BTreeSet::new(),
            scope_signals: true,
            scope_abstract_unix: true,
            syscall_floor: true,
            keep_caps: Vec::new(),
            user: None,
            group: None,
            best_effort: false,
            log_only: false,
            calling_thread_only: false,
            presets: Vec::new(),
            egress: None,
            unix_sockets: Vec::new(),
        }
    }
}

impl LockdownBuilder {
    fn add<I, P>(mut self, access: Access, optional: bool, origin: &str, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        for p in paths {
            self.wanted.push(Wanted {
                path: p.as_ref().to_path_buf(),
                access,
                optional,
                origin: origin.to_owned(),
            });
        }
        self
    }

    /// Paths (directories or files) the process may read.
    pub fn read<I: IntoIterator<Item = P>, P: AsRef<Path>>(self, paths: I) -> Self {
        self.add(Access::Read, false, "policy", paths)
    }

    /// Paths the process may read and write beneath.
    pub fn write<I: IntoIterator<Item = P>, P: AsRef<Path>>(self, paths: I) -> Self {
        self.add(Access::Write, false, "policy", paths)
    }

    /// Programs (or directories of programs) the process may execute; their `#!` and ELF
    /// interpreters are added.
    pub fn exec<I: IntoIterator<Item = P>, P: AsRef<Path>>(self, paths: I) -> Self {
        self.add(Access::Exec, false, "policy", paths)
    }

    /// Like [`read`](Self::read)/[`write`](Self::write)/[`exec`](Self::exec), but a path
    /// that does not exist is skipped (and listed by [`Lockdown::explain`]); presets use it.
    pub fn optional<I: IntoIterator<Item = P>, P: AsRef<Path>>(
        self,
        access: Access,
        origin: &str,
        paths: I,
    ) -> Self {
        self.add(access, true, origin, paths)
    }

    /// The `ruby` preset: what a Ruby/Rails process needs to boot and serve (measured with
    /// Rails 6.1 and Puma 5.6): `/usr/lib`, `/usr/share`, `/usr/local/lib` and
    /// `/usr/local/share` read-only (not `/usr/bin` or `/usr/sbin`, so the dynamic loader
    /// cannot run programs from there), `gem_paths` read-only, `/etc/ssl` and the resolver
    /// and locale files, `/dev/null`, `/dev/urandom`, `/dev/random` read-write, `app`
    /// read-only with its `tmp/` and `log/` writable, and `ruby` executable.
    pub fn ruby_preset<I, P>(self, app: &Path, ruby: Option<&Path>, gem_paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let o = "ruby preset";
        let mut b = self;
        if !b.presets.contains(&"ruby") {
            b.presets.push("ruby");
        }
        let mut b = b
            .optional(
                Access::Read,
                o,
                [
                    "/usr/lib",
                    "/usr/lib64",
                    "/usr/share",
                    "/usr/local/lib",
                    "/usr/local/share",
                    "/etc/ssl",
                    "/etc/resolv.conf",
                    "/etc/hosts",
                    "/etc/nsswitch.conf",
                    "/etc/gai.conf",
                    "/etc/host.conf",
                    "/etc/localtime",
                    "/etc/ld.so.cache",
                ],
            )
            .optional(Access::Read, o, gem_paths)
            .optional(
                Access::Write,
                o,
                ["/dev/null", "/dev/urandom", "/dev/random"],
            )
            .optional(Access::Read, o, [app])
            .optional(Access::Write, o, [app.join("tmp"), app.join("log")]);
        if let Some(ruby) = ruby {
            b = b.optional(Access::Exec, o, [ruby]);
        }
        b
    }

    /// TCP ports the process may connect to (everything else is refused).
    pub fn connect_tcp<I: IntoIterator<Item = u16>>(mut self, ports: I) -> Self {
        self.connect_tcp.extend(ports);
        self
    }

    /// TCP ports the process may bind (listen on).
    pub fn bind_tcp<I: IntoIterator<Item = u16>>(mut self, ports: I) -> Self {
        self.bind_tcp.extend(ports);
        self
    }

    /// Scope signals (default on): no signal to a process outside the sandbox.
    pub fn scope_signals(mut self, on: bool) -> Self {
        self.scope_signals = on;
        self
    }

    /// Scope abstract UNIX sockets (default on): no connect to one made outside.
    pub fn scope_abstract_unix(mut self, on: bool) -> Self {
        self.scope_abstract_unix = on;
        self
    }

    /// The seccomp syscall floor (default on).
    pub fn syscall_floor(mut self, on: bool) -> Self {
        self.syscall_floor = on;
        self
    }

    /// Capabilities to keep (`NET_BIND_SERVICE`, …); default none.
    pub fn keep_caps<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, names: I) -> Self {
        self.keep_caps
            .extend(names.into_iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// Switch to this user (name or uid) first; its primary group unless [`group`](Self::group).
    pub fn user(mut self, name: impl Into<String>) -> Self {
        self.user = Some(name.into());
        self
    }

    /// Switch to this group (name or gid).
    pub fn group(mut self, name: impl Into<String>) -> Self {
        self.group = Some(name.into());
        self
    }

    /// Accept less than the policy asks when the kernel cannot enforce it (default: refuse
    /// with `lockdown.unsupported`). What is missing is in [`Status::missing`].
    pub fn best_effort(mut self, on: bool) -> Self {
        self.best_effort = on;
        self
    }

    /// Dry run: the seccomp floor logs (`SECCOMP_RET_LOG`) instead of refusing, and Landlock,
    /// capabilities and the user switch are not applied (Landlock has no log-only mode on
    /// this kernel). `no_new_privs` is set, as seccomp requires it.
    pub fn log_only(mut self, on: bool) -> Self {
        self.log_only = on;
        self
    }

    /// Accept a multi-threaded process on a kernel without Landlock TSYNC: Landlock then
    /// restricts the calling thread and what it forks or execs, and **not** the other
    /// threads that already exist (seccomp, no_new_privs and capabilities still cover every
    /// thread). For a preforking master whose workers fork from the calling thread (Puma's
    /// `before_fork`); the count of unrestricted threads is in [`Status::unrestricted_threads`].
    pub fn calling_thread_only(mut self, on: bool) -> Self {
        self.calling_thread_only = on;
        self
    }

    /// The egress policy whose address rules the connect supervisor of `portcullis exec`
    /// enforces (default: the reserved and metadata denylist, no private range allowed).
    pub fn egress(mut self, name: impl Into<String>, policy: crate::egress::EgressPolicy) -> Self {
        self.egress = Some((name.into(), policy));
        self
    }

    /// Pathname UNIX sockets the supervisor lets the process connect to (absolute paths;
    /// `DIR/` for the sockets beneath a directory, container-runtime sockets excepted;
    /// `@NAME` for an abstract socket). Checked by [`build`](Self::build).
    pub fn unix_sockets<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, paths: I) -> Self {
        self.unix_sockets
            .extend(paths.into_iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// Checks every path and name. Paths must be absolute and exist (optional ones are
    /// skipped when missing); symlinks are resolved; paths naming one process under `/proc`
    /// are refused.
    pub fn build(self) -> Result<Lockdown, LockdownError> {
        let mut rules: Vec<PathRule> = Vec::new();
        let mut skipped = Vec::new();
        let mut queue = self.wanted.clone();
        let mut i = 0;
        while i < queue.len() {
            let w = queue[i].clone();
            i += 1;
            let path = match check_path(&w.path) {
                Ok(p) => p,
                Err(_) if w.optional && !w.path.exists() => {
                    skipped.push((w.path.clone(), format!("missing ({})", w.origin)));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if w.access == Access::Exec && path.is_file() && queue.len() < 256 {
                if let Some(next) = interp::interpreter(&path) {
                    queue.push(Wanted {
                        path: next,
                        access: Access::Exec,
                        optional: false,
                        origin: format!("interpreter of {}", path.display()),
                    });
                }
            }
            if !rules.iter().any(|r| r.path == path && r.access == w.access) {
                rules.push(PathRule {
                    path,
                    access: w.access,
                    origin: w.origin,
                });
            }
        }
        if self.connect_tcp.contains(&0) {
            return Err(LockdownError::BadPort {
                list: "connect_tcp",
            });
        }
        if self.bind_tcp.contains(&0) {
            return Err(LockdownError::BadPort { list: "bind_tcp" });
        }
        #[cfg(target_os = "linux")]
        for p in &self.unix_sockets {
            connect_policy::check_unix_entry(p).map_err(|reason| LockdownError::BadPath {
                path: PathBuf::from(p),
                reason: format!("unix_sockets: {reason}"),
            })?;
        }
        let mut keep = BTreeSet::new();
        for name in &self.keep_caps {
            keep.insert(caps::parse(name)?);
        }
        for (kind, name) in [("user", &self.user), ("group", &self.group)] {
            if let Some(n) = name {
                if n.is_empty() || n.contains('\0') {
                    return Err(LockdownError::BadUser {
                        kind,
                        name: n.clone(),
                        reason: "empty or contains NUL".to_owned(),
                    });
                }
            }
        }
        Ok(Lockdown {
            rules,
            skipped,
            keep_caps: keep,
            builder: self,
        })
    }
}

/// Absolute, no NUL, exists; symlinks resolved; not one process's `/proc` entry.
fn check_path(path: &Path) -> Result<PathBuf, LockdownError> {
    let bad = |reason: &str| LockdownError::BadPath {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let text = path.to_string_lossy();
    if text.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    if !path.is_absolute() {
        return Err(bad("is not absolute; lockdown paths are absolute (config files resolve relative paths against their directory)"));
    }
    let real = std::fs::canonicalize(path).map_err(|e| {
        bad(&format!(
            "cannot be opened ({e}); create it first or remove it from the policy"
        ))
    })?;
    if names_one_process(path) || names_one_process(&real) {
        return Err(bad("names one process under /proc (a rule on /proc/self binds the pid it resolves to when the rule is made, so forked workers and exec'd programs lose it); allow \"/proc\" read-only if the program needs its own /proc entry, knowing it then reads other processes' public entries too"));
    }
    Ok(real)
}

fn names_one_process(path: &Path) -> bool {
    let mut c = path.components();
    matches!(c.next(), Some(Component::RootDir))
        && matches!(c.next(), Some(Component::Normal(p)) if p == "proc")
        && matches!(c.next(), Some(Component::Normal(n))
            if n == "self" || n == "thread-self" || n.to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(target_os = "linux")]
static APPLIED: AtomicBool = AtomicBool::new(false);

/// A checked lockdown policy. [`apply`](Self::apply) puts it in force, irreversibly, for
/// this process and everything it starts.
///
/// ```
/// use portcullis::lockdown::{Access, Lockdown};
/// let lockdown = Lockdown::builder().read(["/etc"]).connect_tcp([443]).build()?;
/// assert_eq!(lockdown.rules()[0].access, Access::Read);
/// assert!(lockdown.explain().contains("connect_tcp: 443"));
/// # Ok::<(), portcullis::lockdown::LockdownError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Lockdown {
    rules: Vec<PathRule>,
    skipped: Vec<(PathBuf, String)>,
    keep_caps: BTreeSet<u8>,
    builder: LockdownBuilder,
}

impl Lockdown {
    /// A builder with the defaults (see [`LockdownBuilder`]).
    pub fn builder() -> LockdownBuilder {
        LockdownBuilder::default()
    }

    /// The builder this lockdown was made from, to extend it (`portcullis exec` adds the
    /// program it runs to `exec`).
    pub fn to_builder(&self) -> LockdownBuilder {
        self.builder.clone()
    }

    /// The path rules, after checking (symlinks resolved, interpreters added).
    pub fn rules(&self) -> &[PathRule] {
        &self.rules
    }

    /// TCP ports that may be connected to.
    pub fn connect_tcp(&self) -> impl Iterator<Item = u16> + '_ {
        self.builder.connect_tcp.iter().copied()
    }

    /// TCP ports that may be bound.
    pub fn bind_tcp(&self) -> impl Iterator<Item = u16> + '_ {
        self.builder.bind_tcp.iter().copied()
    }

    /// The presets this lockdown uses (`ruby`).
    pub fn presets(&self) -> &[&'static str] {
        &self.builder.presets
    }

    /// What the connect supervisor of `portcullis exec` enforces: the egress policy's
    /// address rules, `connect_tcp` (the supervisor connects outside the child's Landlock
    /// domain, so it checks the ports itself), the nameservers of `/etc/resolv.conf` on
    /// port 53, and `unix_sockets`. In a dry run, report mode.
    #[cfg(target_os = "linux")]
    pub fn connect_policy(&self) -> ConnectPolicy {
        let b = &self.builder;
        let mut p = match &b.egress {
            Some((name, policy)) => ConnectPolicy::new(policy.clone()).named(name.clone()),
            None => ConnectPolicy::new(crate::egress::EgressPolicy::default()),
        };
        if !b.log_only {
            p = p.tcp_ports(b.connect_tcp.iter().copied());
        }
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        p.nameservers(nameservers_of(&resolv))
            .unix_sockets(b.unix_sockets.iter())
            .report(b.log_only)
    }

    /// The `(uid, gid)` [`apply`](Self::apply) will switch to (`None`: no switch, or a dry
    /// run). `portcullis exec` switches its supervisor to them too, so that it reads the
    /// program's memory as its own user (no `CAP_SYS_PTRACE` needed) and connects UNIX
    /// sockets with the program's permissions, not root's.
    #[cfg(target_os = "linux")]
    pub fn switch_ids(&self) -> Result<Option<(u32, u32)>, LockdownError> {
        switch_ids(&self.builder)
    }

    /// The `egress` policy's name, if the lockdown names one.
    pub fn egress_name(&self) -> Option<&str> {
        self.builder.egress.as_ref().map(|(n, _)| n.as_str())
    }

    /// The `unix_sockets` allowlist, as given.
    pub fn unix_sockets(&self) -> &[String] {
        &self.builder.unix_sockets
    }

    /// Whether this is a dry run ([`LockdownBuilder::log_only`]).
    pub fn is_log_only(&self) -> bool {
        self.builder.log_only
    }

    /// The effective rules, for people (`portcullis lockdown explain`).
    pub fn explain(&self) -> String {
        let b = &self.builder;
        let mut out = String::new();
        let ports = |s: &BTreeSet<u16>| {
            if s.is_empty() {
                "none".to_owned()
            } else {
                s.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
            }
        };
        out.push_str(&format!("landlock (running ABI {}):\n", landlock_abi()));
        for r in &self.rules {
            out.push_str(&format!(
                "  {:<5} {}  ({})\n",
                r.access.as_str(),
                r.path.display(),
                r.origin
            ));
        }
        if self.rules.is_empty() {
            out.push_str("  no paths: nothing on disk can be opened\n");
        }
        for (p, why) in &self.skipped {
            out.push_str(&format!("  skipped {}: {why}\n", p.display()));
        }
        out.push_str(&format!("  connect_tcp: {}\n", ports(&b.connect_tcp)));
        out.push_str(&format!("  bind_tcp: {}\n", ports(&b.bind_tcp)));
        out.push_str(&format!(
            "  scopes: signals {}, abstract unix sockets {}\n",
            if b.scope_signals { "scoped" } else { "open" },
            if b.scope_abstract_unix {
                "scoped"
            } else {
                "open"
            },
        ));
        out.push_str("  not covered by Landlock on ABI 7: stat/chmod/chown of any path, UDP, connect to pathname UNIX sockets, already-open descriptors\n");
        if b.syscall_floor {
            out.push_str(&format!(
                "seccomp floor (all threads), {}:\n",
                if b.log_only {
                    "SECCOMP_RET_LOG (dry run: allowed and logged)"
                } else {
                    "EPERM"
                }
            ));
            out.push_str(&floor_lines());
        } else {
            out.push_str("seccomp floor: off\n");
        }
        out.push_str(&supervisor_lines(self));
        out.push_str("no_new_privs: set\n");
        let kept: Vec<String> = self.keep_caps.iter().map(|&c| caps::name(c)).collect();
        out.push_str(&format!(
            "capabilities kept: {} (bounding reduced, ambient cleared)\n",
            if kept.is_empty() {
                "none".to_owned()
            } else {
                kept.join(", ")
            }
        ));
        if let Some(u) = &b.user {
            out.push_str(&format!(
                "switch to user {u}{}\n",
                b.group
                    .as_ref()
                    .map(|g| format!(", group {g}"))
                    .unwrap_or_default()
            ));
        }
        out.push_str(&format!(
            "unsupported by the kernel: {}\n",
            if b.best_effort {
                "accepted (best_effort), reported in the status"
            } else {
                "refused (lockdown.unsupported)"
            }
        ));
        if b.log_only {
            out.push_str("dry run: Landlock is NOT applied (it has no log-only mode on this kernel), nor the capability drop or user switch\n");
        }
        out
    }

    /// Puts the lockdown in force for this process and everything it starts. Irreversible.
    ///
    /// Refuses, leaving the process unchanged, with `lockdown.threads` when the process has
    /// more than one thread and the kernel cannot restrict them all, `lockdown.unsupported`
    /// when the kernel lacks something asked (unless `best_effort`), `lockdown.bad_user`,
    /// and `lockdown.already_applied` on a second call.
    pub fn apply(&self) -> Result<Status, LockdownError> {
        apply_impl(self)
    }
}

fn landlock_abi() -> i32 {
    #[cfg(target_os = "linux")]
    {
        sys::landlock_abi()
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

fn supervisor_lines(l: &Lockdown) -> String {
    let b = &l.builder;
    let mut out = String::from("connect supervisor (portcullis exec), judging connect, sendto with an address, sendmsg, sendmmsg:\n");
    out.push_str(&format!(
        "  addresses: {}; host names are not known at this level\n",
        match &b.egress {
            Some((n, _)) => format!("the address rules of [egress.{n}] (allow_cidrs, deny_cidrs, reserved and metadata ranges, embedded IPv4)"),
            None => "the default denylist (reserved and metadata ranges, embedded IPv4; no private range allowed)".to_owned(),
        }
    ));
    out.push_str("  DNS: the nameservers of /etc/resolv.conf on port 53\n");
    out.push_str(&format!(
        "  unix_sockets: {}\n",
        if b.unix_sockets.is_empty() {
            "none (every pathname UNIX socket refused)".to_owned()
        } else {
            b.unix_sockets.join(", ")
        }
    ));
    out.push_str("  container-runtime sockets (docker.sock, containerd.sock, podman.sock, crio.sock, ...): refused unless named exactly; abstract sockets: refused unless named @NAME\n");
    if b.log_only {
        out.push_str("  report mode (dry run): refusals logged and allowed, except cloud metadata and runtime sockets\n");
    }
    out
}

#[cfg(target_os = "linux")]
fn floor_lines() -> String {
    let mut out = String::new();
    for e in seccomp::entries() {
        match e.when {
            None => out.push_str(&format!("  {}\n", e.name)),
            Some(w) => out.push_str(&format!("  {} when {w}\n", e.name)),
        }
    }
    out.push_str("  clone3 -> ENOSYS (glibc falls back to clone, whose flags are checked)\n");
    out.push_str("  x32 syscall numbers -> EPERM; a foreign architecture -> process killed\n");
    out
}

#[cfg(not(target_os = "linux"))]
fn floor_lines() -> String {
    "  (Linux only)\n".to_owned()
}

#[cfg(not(target_os = "linux"))]
fn apply_impl(_: &Lockdown) -> Result<Status, LockdownError> {
    Err(LockdownError::Unsupported {
        missing: "Landlock and seccomp exist only on Linux".to_owned(),
    })
}

#[cfg(target_os = "linux")]
fn switch_ids(b: &LockdownBuilder) -> Result<Option<(u32, u32)>, LockdownError> {
    Ok(if b.log_only {
        None
    } else {
        match &b.user {
            Some(user) => {
                let (uid, mut gid) =
                    sys::lookup_user(user).map_err(|reason| LockdownError::BadUser {
                        kind: "user",
                        name: user.clone(),
                        reason,
                    })?;
                if let Some(g) = &b.group {
                    gid = sys::lookup_group(g).map_err(|reason| LockdownError::BadUser {
                        kind: "group",
                        name: g.clone(),
                        reason,
                    })?;
                }
                if sys::uid() != 0 && sys::uid() != uid {
                    return Err(LockdownError::BadUser {
                        kind: "user",
                        name: user.clone(),
                        reason:
                            "switching users needs root; start the process as root or drop `user`"
                                .to_owned(),
                    });
                }
                Some((uid, gid))
            }
            None if b.group.is_some() => {
                return Err(LockdownError::BadUser {
                    kind: "group",
                    name: b.group.clone().unwrap_or_default(),
                    reason: "a group switch needs a `user` too".to_owned(),
                })
            }
            None => None,
        }
    })
}

#[cfg(target_os = "linux")]
fn apply_impl(lockdown: &Lockdown) -> Result<Status, LockdownError> {
    let b = &lockdown.builder;
    if APPLIED.load(Ordering::SeqCst) {
        return Err(LockdownError::AlreadyApplied);
    }
    let abi = sys::landlock_abi();
    // What the policy needs of the kernel, and what it lacks.
    let mut missing = Vec::new();
    if !b.log_only {
        if abi < 1 {
            missing.push("Landlock (not built in, disabled at boot, or its syscalls refused by a container seccomp profile)".to_owned());
        } else {
            if abi < 4 {
                missing.push(format!("Landlock TCP rules (ABI 4; running {abi})"));
            }
            if (b.scope_signals || b.scope_abstract_unix) && abi < 6 {
                missing.push(format!(
                    "Landlock signal and abstract UNIX socket scoping (ABI 6; running {abi})"
                ));
            }
            if abi < 5 {
                missing.push(format!(
                    "Landlock refer/truncate/ioctl rights (ABI 2, 3, 5; running {abi})"
                ));
            }
        }
    }
    if b.syscall_floor && !sys::seccomp_available() {
        missing.push("seccomp filters".to_owned());
    }
    if !missing.is_empty() && !b.best_effort {
        return Err(LockdownError::Unsupported {
            missing: missing.join(", "),
        });
    }
    let all_threads = abi >= 8;
    let threads = sys::thread_count().map_err(|e| LockdownError::Unsupported {
        missing: format!("a thread count (/proc/self/task: {e})"),
    })?;
    let unrestricted_threads = if threads > 1 && !all_threads && !b.log_only && abi >= 1 {
        threads - 1
    } else {
        0
    };
    if unrestricted_threads > 0 && !b.calling_thread_only {
        return Err(LockdownError::Threads {
            count: threads,
            abi,
        });
    }
    // Everything that can fail for a reason in the policy, before any change.
    let switch = switch_ids(b)?;
    let ruleset = if b.log_only || abi < 1 {
        None
    } else {
        Some(landlock_rules::prepare(lockdown, abi)?)
    };
    let programs = if b.syscall_floor && sys::seccomp_available() {
        seccomp::programs(b.log_only).map_err(|e| LockdownError::Unsupported { missing: e })?
    } else {
        Vec::new()
    };

    APPLIED.store(true, Ordering::SeqCst);
    let failed = |step: &'static str| move |source| LockdownError::Failed { step, source };
    let mut bounding_reduced = true;
    if !b.log_only {
        let keep_mask: u64 = lockdown.keep_caps.iter().fold(0, |m, &c| m | (1u64 << c));
        for cap in 0..=sys::cap_last_cap() {
            if lockdown.keep_caps.contains(&cap) || !sys::in_bounding(cap) {
                continue;
            }
            if sys::drop_bounding(cap).is_err() {
                bounding_reduced = false;
                break;
            }
        }
        sys::clear_ambient().map_err(failed("clear ambient capabilities"))?;
        if let Some((uid, gid)) = switch {
            sys::set_keepcaps(keep_mask != 0).map_err(failed("keep capabilities"))?;
            sys::switch_user(uid, gid).map_err(failed("switch user"))?;
            sys::set_keepcaps(false).map_err(failed("keep capabilities"))?;
        }
        let (_, permitted, _) = sys::capget().map_err(failed("read capabilities"))?;
        sys::capset(keep_mask & permitted).map_err(failed("set capabilities"))?;
        if sys::uid() != 0 {
            // A non-root process keeps capabilities across execve only through the
            // ambient set.
            for &cap in &lockdown.keep_caps {
                if permitted & (1u64 << cap) != 0 {
                    sys::raise_ambient(cap).map_err(failed("raise ambient capability"))?;
                }
            }
        }
    }
    sys::set_no_new_privs().map_err(failed("no_new_privs"))?;
    let landlock = match ruleset {
        Some(r) => landlock_rules::enforce(r, all_threads).map_err(failed("landlock"))?,
        None if b.log_only => Level::LogOnly,
        None => Level::Off,
    };
    let landlock = if landlock == Level::Full && !missing.is_empty() {
        Level::Partial
    } else {
        landlock
    };
    let seccomp_level = if programs.is_empty() {
        Level::Off
    } else {
        seccomp::install(&programs).map_err(failed("seccomp"))?;
        if b.log_only {
            Level::LogOnly
        } else {
            Level::Full
        }
    };
    let (effective, _, _) = sys::capget().map_err(failed("read capabilities"))?;
    let capabilities = (0..64u8)
        .filter(|c| effective & (1u64 << c) != 0)
        .map(caps::name)
        .collect();
    let gid = rustix::process::getgid().as_raw();
    Ok(Status {
        landlock_abi: abi,
        landlock,
        landlock_all_threads: all_threads,
        missing,
        seccomp: seccomp_level,
        seccomp_syscalls: if programs.is_empty() {
            0
        } else {
            seccomp::entries().len() + 1
        },
        no_new_privs: sys::no_new_privs(),
        capabilities,
        bounding_reduced: bounding_reduced || b.log_only,
        user: (sys::uid(), gid),
        unrestricted_threads: if b.calling_thread_only {
            unrestricted_threads
        } else {
            0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_self_and_pids_are_refused() {
        for p in [
            "/proc/self",
            "/proc/self/fd",
            "/proc/thread-self",
            "/proc/1",
        ] {
            let err = Lockdown::builder().read([p]).build().unwrap_err();
            assert_eq!(crate::ErrorCode::code(&err), "lockdown.bad_path", "{p}");
            assert!(err.to_string().contains("binds the pid"), "{err}");
        }
        assert!(Lockdown::builder().read(["/proc"]).build().is_ok());
        assert!(!names_one_process(Path::new("/procx/self")));
    }

    #[test]
    fn bad_inputs() {
        use crate::ErrorCode;
        let code = |b: LockdownBuilder| b.build().unwrap_err().code();
        assert_eq!(code(Lockdown::builder().read(["etc"])), "lockdown.bad_path");
        assert_eq!(
            code(Lockdown::builder().read(["/no/such/dir"])),
            "lockdown.bad_path"
        );
        assert_eq!(
            code(Lockdown::builder().connect_tcp([0])),
            "lockdown.bad_port"
        );
        assert_eq!(
            code(Lockdown::builder().bind_tcp([0, 80])),
            "lockdown.bad_port"
        );
        assert_eq!(
            code(Lockdown::builder().keep_caps(["ROOT"])),
            "lockdown.bad_capability"
        );
        assert_eq!(code(Lockdown::builder().user("")), "lockdown.bad_user");
        // optional paths that are missing are skipped, and said so
        let l = Lockdown::builder()
            .optional(Access::Read, "test", ["/no/such/dir"])
            .build()
            .unwrap();
        assert!(l.rules().is_empty());
        assert!(l.explain().contains("skipped /no/such/dir"));
    }

    #[test]
    fn exec_adds_interpreters() {
        let l = Lockdown::builder().exec(["/bin/ls"]).build().unwrap();
        if interp::interpreter(Path::new("/bin/ls")).is_some() {
            assert!(l.rules().len() >= 2, "{:?}", l.rules());
            assert!(l.rules()[1].origin.starts_with("interpreter of"));
        }
    }
}
