//! The decisions behind the Ruby runtime guard (`Portcullis.guard!`): may this socket
//! address be connected to, and may this command be spawned?
//!
//! The Ruby hooks on `TCPSocket#initialize`, `Socket#connect`, `BasicSocket#send`, `Kernel#system`
//! and friends only collect what the call names (a socket address, a command) and ask a
//! [`GuardPolicy`]; every rule lives here:
//!
//! - **Addresses** are judged exactly as [`EgressPolicy::check_ip`] judges them (IPv4 carried
//!   in IPv6 unwrapped), plus the host rules when a name is known for the address
//!   ([`NameCache`], filled from the resolver hooks; best effort). Schemes and ports are URL
//!   rules and do not apply to raw connects.
//! - **A floor** is refused in every mode: cloud metadata addresses and names, and
//!   `0.0.0.0/8` and `::` (which reach loopback on Linux).
//! - **DNS** to the configured nameservers on port 53 is allowed, so resolvers keep working.
//! - **UNIX sockets** are not egress; other non-IP families are refused.
//! - **Commands** given as one string are refused when Ruby would run them through `/bin/sh`
//!   ([`shell_reason`], Ruby's own rule); an optional program allowlist applies to every form.
//!
//! ```
//! use std::sync::Arc;
//! use portcullis::egress::EgressPolicy;
//! use portcullis::guard::{GuardOptions, GuardPolicy, Verdict, Command};
//!
//! let guard = GuardPolicy::new(Arc::new(EgressPolicy::default()), GuardOptions::default())?;
//! assert!(matches!(guard.judge_connect("93.184.216.34:443".parse().unwrap(), None), Verdict::Allowed));
//! let Verdict::Refused(err) = guard.judge_connect("[::ffff:169.254.169.254]:80".parse().unwrap(), None) else { panic!() };
//! assert_eq!(portcullis::ErrorCode::code(&err), "egress.metadata");
//! let Verdict::Refused(err) = guard.judge_command(Command::Shell(b"convert a.png b.jpg; id")) else { panic!() };
//! assert_eq!(portcullis::ErrorCode::code(&err), "command.shell_string");
//! assert!(matches!(guard.judge_command(Command::Shell(b"bin/rails db:migrate")), Verdict::Allowed));
//! # Ok::<(), portcullis::guard::GuardError>(())
//! ```

mod names;
mod shell;
mod sockaddr;

pub use names::{normalise_name, NameCache};
pub use shell::{shell_reason, shell_reason_bytes, split_words, ShellReason};
pub use sockaddr::{parse_sockaddr, SockaddrError, SocketTarget};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::egress::{EgressError, EgressPolicy};
use crate::ErrorCode;

/// Whether violations are refused or only reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Refuse every violation (the default).
    #[default]
    Enforce,
    /// Report violations and let them proceed, except the floor (metadata, `0.0.0.0/8`, `::`).
    Report,
}

impl Mode {
    /// `"enforce"` or `"report"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Report => "report",
        }
    }

    /// Parses `"enforce"` / `"report"`.
    pub fn parse(text: &str) -> Result<Self, GuardError> {
        match text {
            "enforce" => Ok(Self::Enforce),
            "report" => Ok(Self::Report),
            other => Err(GuardError::Invalid {
                reason: format!("mode {other:?} is not one of \"enforce\", \"report\""),
            }),
        }
    }
}

/// What the guard does with spawns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SpawnRule {
    /// Refuse single command strings that Ruby would run through `/bin/sh` (the default).
    #[default]
    NoShell,
    /// Do not judge spawns at all (a program allowlist still applies if one is set).
    Off,
}

impl SpawnRule {
    /// `"no_shell"` or `"off"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoShell => "no_shell",
            Self::Off => "off",
        }
    }

    /// Parses `"no_shell"` / `"off"`.
    pub fn parse(text: &str) -> Result<Self, GuardError> {
        match text {
            "no_shell" => Ok(Self::NoShell),
            "off" => Ok(Self::Off),
            other => Err(GuardError::Invalid {
                reason: format!("spawn {other:?} is not one of \"no_shell\", \"off\""),
            }),
        }
    }
}

/// Options of a [`GuardPolicy`] beside its egress policy.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct GuardOptions {
    /// Enforce or report.
    pub mode: Mode,
    /// The spawn rule.
    pub spawn: SpawnRule,
    /// Programs that may be spawned: an entry with a `/` matches that exact path, a bare
    /// name matches the same bare name (looked up in `PATH`). `None`: any program.
    pub programs: Option<Vec<String>>,
    /// Nameservers that may be reached on port 53 (see [`system_nameservers`]).
    pub nameservers: Vec<IpAddr>,
}

/// The guard's rules: an egress policy and the options. Immutable and `Send + Sync`.
#[derive(Clone, Debug)]
pub struct GuardPolicy {
    egress: Arc<EgressPolicy>,
    options: GuardOptions,
}

/// The answer to one connect or spawn.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Within the policy.
    Allowed,
    /// DNS to a configured nameserver; allowed.
    Nameserver,
    /// Not egress (a UNIX socket, `AF_UNSPEC`); nothing to judge.
    NotEgress,
    /// Outside the policy: refuse it.
    Refused(GuardError),
    /// Outside the policy, report mode: let it proceed and report it.
    Reported(GuardError),
}

/// A command as the spawn hooks see it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Command<'a> {
    /// A single command string (`system("...")`): the shell rule applies.
    Shell(&'a [u8]),
    /// An argv form (`system("ls", "-l")`, `system(["ls", "ls"])`): the program and how
    /// many arguments follow it.
    Argv(&'a [u8], usize),
}

/// Why the guard refused (or, in report mode, reported) a connect or a spawn.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The address (or the name known for it) is outside the egress policy.
    #[error("connect to {} refused by the Portcullis guard: {source}", describe(address, host.as_deref()))]
    Egress {
        /// The address and port being connected to.
        address: SocketAddr,
        /// The host name the address was resolved from, when known.
        host: Option<String>,
        /// The egress rule that refused it; its code is this error's code.
        source: Box<EgressError>,
    },
    /// A socket family that is neither IP nor UNIX.
    #[error("connect with address family {family} refused by the Portcullis guard: only IPv4, IPv6 and UNIX sockets are judged")]
    AddressFamily {
        /// The family number.
        family: u16,
    },
    /// The socket address bytes could not be read.
    #[error("connect refused by the Portcullis guard: unreadable socket address ({reason})")]
    BadAddress {
        /// What was wrong.
        reason: String,
    },
    /// A single command string that Ruby would hand to `/bin/sh`.
    #[error("spawn of {program:?} ({args} more words) refused by the Portcullis guard: Ruby would run this string through /bin/sh because {reason}; pass the program and its arguments separately (system(\"prog\", arg, ...)) or use a Portcullis::CommandTemplate")]
    ShellString {
        /// The first word of the command (the rest is not repeated: it may hold secrets).
        program: String,
        /// How many words follow it.
        args: usize,
        /// Why the shell would run.
        reason: ShellReason,
    },
    /// The program is not in the guard's program allowlist.
    #[error("spawn of {program:?} refused by the Portcullis guard: not in the program allowlist ({allowed})")]
    ProgramNotAllowed {
        /// The program as given.
        program: String,
        /// The allowlist, comma-separated.
        allowed: String,
    },
    /// The guard's own options are invalid.
    #[error("invalid guard options: {reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
}

fn describe(address: &SocketAddr, host: Option<&str>) -> String {
    match host {
        Some(h) => format!("{address} (host {h:?})"),
        None => address.to_string(),
    }
}

impl ErrorCode for GuardError {
    fn code(&self) -> &'static str {
        match self {
            Self::Egress { source, .. } => source.as_ref().code(),
            Self::AddressFamily { .. } => "egress.address_family",
            Self::BadAddress { .. } => "egress.bad_address",
            Self::ShellString { .. } => "command.shell_string",
            Self::ProgramNotAllowed { .. } => "command.program_not_allowed",
            Self::Invalid { .. } => "guard.invalid",
        }
    }
}

impl GuardPolicy {
    /// A guard judging addresses with `egress`. Refuses an empty or NUL-carrying entry in
    /// the program allowlist (`guard.invalid`).
    pub fn new(egress: Arc<EgressPolicy>, options: GuardOptions) -> Result<Self, GuardError> {
        if let Some(programs) = &options.programs {
            for p in programs {
                if p.trim().is_empty() || p.contains('\0') || p.trim() != p {
                    return Err(GuardError::Invalid {
                        reason: format!("program allowlist entry {p:?} must be a non-blank name or path without NUL or surrounding blanks"),
                    });
                }
            }
        }
        Ok(Self { egress, options })
    }

    /// The egress policy addresses are judged with.
    pub fn egress(&self) -> &Arc<EgressPolicy> {
        &self.egress
    }

    /// The options.
    pub fn options(&self) -> &GuardOptions {
        &self.options
    }

    /// Judges a connect (or a send with a destination) to `address`; `host` is the name
    /// it was resolved from, when known.
    pub fn judge_connect(&self, address: SocketAddr, host: Option<&str>) -> Verdict {
        let ip = address.ip().to_canonical();
        if address.port() == 53
            && self
                .options
                .nameservers
                .iter()
                .any(|ns| ns.to_canonical() == ip)
        {
            return Verdict::Nameserver;
        }
        match self.connect_error(address, host) {
            None => Verdict::Allowed,
            Some((err, floor)) => self.verdict(err, floor),
        }
    }

    /// Judges a connect given as raw `struct sockaddr` bytes.
    pub fn judge_sockaddr(&self, raw: &[u8], host: Option<&str>) -> Verdict {
        match parse_sockaddr(raw) {
            Ok(SocketTarget::Inet(addr)) => self.judge_connect(addr, host),
            Ok(SocketTarget::Unix | SocketTarget::Unspec) => Verdict::NotEgress,
            Ok(SocketTarget::Other(family)) => {
                self.verdict(GuardError::AddressFamily { family }, false)
            }
            Err(SockaddrError(reason)) => self.verdict(GuardError::BadAddress { reason }, false),
        }
    }

    /// Judges a spawn.
    pub fn judge_command(&self, command: Command<'_>) -> Verdict {
        let program = match command {
            Command::Shell(text) => {
                let words = split_words(text);
                let program = words
                    .first()
                    .map(|w| String::from_utf8_lossy(w).into_owned());
                if self.options.spawn == SpawnRule::NoShell {
                    if let Some(reason) = shell_reason_bytes(text) {
                        let first = first_token(text);
                        return self.verdict(
                            GuardError::ShellString {
                                program: first,
                                args: words.len().saturating_sub(1),
                                reason,
                            },
                            false,
                        );
                    }
                }
                match program {
                    Some(p) => p,
                    // A blank string execs nothing (Ruby raises ENOENT).
                    None => return Verdict::Allowed,
                }
            }
            Command::Argv(program, _) => String::from_utf8_lossy(program).into_owned(),
        };
        match &self.options.programs {
            Some(list) if !list.iter().any(|entry| program_matches(entry, &program)) => self
                .verdict(
                    GuardError::ProgramNotAllowed {
                        program: crate::egress::shorten(&program),
                        allowed: list.join(", "),
                    },
                    false,
                ),
            _ => Verdict::Allowed,
        }
    }

    fn verdict(&self, err: GuardError, floor: bool) -> Verdict {
        if floor || self.options.mode == Mode::Enforce {
            Verdict::Refused(err)
        } else {
            Verdict::Reported(err)
        }
    }

    /// The refusal for `address` with whether it is part of the floor, or `None`.
    fn connect_error(&self, address: SocketAddr, host: Option<&str>) -> Option<(GuardError, bool)> {
        let wrap = |source: EgressError| GuardError::Egress {
            address,
            host: host.map(str::to_owned),
            source: Box::new(source),
        };
        if let Some(source) = unspecified(address.ip()) {
            return Some((wrap(source), true));
        }
        let result = match host {
            Some(name) => self
                .egress
                .check_name(name)
                .and_then(|()| self.egress.check_ip(address.ip())),
            None => self.egress.check_literal_host(address.ip()),
        };
        result.err().map(|source| {
            let floor = matches!(source, EgressError::Metadata { .. });
            (wrap(source), floor)
        })
    }
}

/// `0.0.0.0/8` and `::` (also when carried in IPv6) reach the local host on Linux.
fn unspecified(ip: IpAddr) -> Option<EgressError> {
    let effective = match ip {
        IpAddr::V6(v6) => crate::egress::embedded_ipv4(v6).map_or(ip, |(v4, _)| IpAddr::V4(v4)),
        IpAddr::V4(_) => ip,
    };
    let (cidr, name) = match effective {
        IpAddr::V4(v4) if v4.octets()[0] == 0 => ("0.0.0.0/8", "\"this network\" (RFC 791)"),
        IpAddr::V6(v6) if v6.is_unspecified() => ("::/128", "unspecified address (RFC 4291)"),
        _ => return None,
    };
    Some(EgressError::ReservedAddress {
        target: if effective == ip {
            ip.to_string()
        } else {
            format!("{ip} ({effective})")
        },
        range: cidr.to_owned(),
        name: format!("{name}, which reaches this host; refused in every mode"),
    })
}

fn program_matches(entry: &str, program: &str) -> bool {
    entry == program
}

/// The first blank-separated token of a shell string, truncated, for messages.
fn first_token(text: &[u8]) -> String {
    let word = split_words(text).first().copied().unwrap_or_default();
    let mut s = String::from_utf8_lossy(word).into_owned();
    // Only the characters before any metacharacter: "convert;rm" shows "convert".
    if let Some(pos) =
        s.find(|c: char| c.is_ascii() && b"*?{}[]<>()~&|\\$;'`\"\n#=".contains(&(c as u8)))
    {
        s.truncate(pos);
    }
    crate::egress::shorten(&s)
}

/// The nameservers in `/etc/resolv.conf` (empty when it cannot be read).
pub fn system_nameservers() -> Vec<IpAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|text| parse_resolv_conf(&text))
        .unwrap_or_default()
}

/// The `nameserver` addresses of a `resolv.conf` text.
///
/// ```
/// let ns = portcullis::guard::parse_resolv_conf("# c\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nsearch x\n");
/// assert_eq!(ns, vec!["10.0.0.2".parse::<std::net::IpAddr>().unwrap(), "fe80::1".parse().unwrap()]);
/// ```
pub fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            let addr = words.next()?;
            addr.split('%').next()?.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests;
