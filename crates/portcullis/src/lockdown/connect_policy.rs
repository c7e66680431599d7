//! What the connect supervisor allows: the decision half, without system calls, so it is
//! tested with hostile inputs directly. The supervisor (`supervisor.rs`) reads the
//! destination from the child's memory, parses it here, and asks here.
//!
//! ```
//! use portcullis::lockdown::{ConnectPolicy, Destination};
//! use portcullis::egress::EgressPolicy;
//! let egress = EgressPolicy::builder().allow_cidrs(["127.0.0.2/32"]).build()?;
//! let policy = ConnectPolicy::new(egress).unix_sockets(["/run/app.sock"]);
//! let allowed = Destination::Inet("127.0.0.2:80".parse().unwrap());
//! assert!(policy.judge(&allowed, true).is_ok());
//! let mapped = Destination::Inet("[::ffff:127.0.0.1]:80".parse().unwrap());
//! assert_eq!(policy.judge(&mapped, true).unwrap_err().code, "egress.reserved_address");
//! # Ok::<(), portcullis::egress::EgressError>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::{Component, Path, PathBuf};

use crate::egress::EgressPolicy;
use crate::ErrorCode;

/// Container-runtime sockets: root on the host. Refused beneath an allowed directory
/// unless named exactly.
pub const RUNTIME_SOCKETS: [&str; 9] = [
    "docker.sock",
    "containerd.sock",
    "podman.sock",
    "crio.sock",
    "cri-dockerd.sock",
    "buildkitd.sock",
    "dockershim.sock",
    "kubelet.sock",
    "lxd.socket",
];

/// Where a `connect`/`sendto`/`sendmsg` goes, as read from the child's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Destination {
    /// An IPv4 or IPv6 address and port.
    Inet(SocketAddr),
    /// A pathname UNIX socket, as the program wrote it (relative names are relative to
    /// its working directory).
    UnixPath(PathBuf),
    /// An abstract UNIX socket name (the bytes after the leading NUL).
    UnixAbstract(Vec<u8>),
    /// `AF_UNSPEC`: dissolves a connection, goes nowhere.
    Unspec,
    /// Netlink, to the kernel (`nl_pid` 0, no groups) or elsewhere.
    Netlink {
        /// `nl_pid`: 0 is the kernel.
        pid: u32,
        /// `nl_groups`.
        groups: u32,
    },
    /// A family the supervisor does not judge (refused).
    Other(u16),
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet(SocketAddr::V4(a)) => write!(f, "{} port {} (AF_INET)", a.ip(), a.port()),
            Self::Inet(SocketAddr::V6(a)) => {
                write!(f, "[{}] port {} (AF_INET6)", a.ip(), a.port())
            }
            Self::UnixPath(p) => write!(f, "{} (AF_UNIX)", p.display()),
            Self::UnixAbstract(n) => {
                write!(f, "@{} (AF_UNIX abstract)", String::from_utf8_lossy(n))
            }
            Self::Unspec => f.write_str("AF_UNSPEC"),
            Self::Netlink { pid, groups } => {
                write!(f, "netlink pid {pid} groups {groups:#x} (AF_NETLINK)")
            }
            Self::Other(family) => write!(f, "address family {family}"),
        }
    }
}

/// Why the kernel would refuse to parse the address: the errno to return without asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadAddress(pub i32);

impl Destination {
    /// Parses a `struct sockaddr` of `bytes.len()` bytes (the length the program passed),
    /// as the kernel would: too short for its family is `EINVAL`.
    ///
    /// ```
    /// use portcullis::lockdown::Destination;
    /// let mut sa = vec![2u8, 0, 0, 80, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    /// assert_eq!(Destination::parse(&sa).unwrap(), Destination::Inet("127.0.0.1:80".parse().unwrap()));
    /// sa.truncate(8);
    /// assert!(Destination::parse(&sa).is_err());
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Self, BadAddress> {
        let einval = BadAddress(libc::EINVAL);
        if bytes.len() < 2 {
            return Err(einval);
        }
        let family = u16::from_ne_bytes([bytes[0], bytes[1]]);
        let be16 = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        match i32::from(family) {
            libc::AF_INET => {
                if bytes.len() < 16 {
                    return Err(einval);
                }
                let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
                Ok(Self::Inet(SocketAddr::from((ip, be16(2)))))
            }
            libc::AF_INET6 => {
                // SIN6_LEN_RFC2133: the scope id is optional
                if bytes.len() < 24 {
                    return Err(einval);
                }
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&bytes[8..24]);
                let flow = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                let scope = if bytes.len() >= 28 {
                    u32::from_ne_bytes([bytes[24], bytes[25], bytes[26], bytes[27]])
                } else {
                    0
                };
                Ok(Self::Inet(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(octets),
                    be16(2),
                    flow,
                    scope,
                ))))
            }
            libc::AF_UNIX => {
                let path = &bytes[2..];
                if path.len() > 108 {
                    return Err(einval);
                }
                match path.first() {
                    None => Err(einval),
                    Some(0) => Ok(Self::UnixAbstract(path[1..].to_vec())),
                    Some(_) => {
                        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                        use std::os::unix::ffi::OsStrExt;
                        Ok(Self::UnixPath(PathBuf::from(std::ffi::OsStr::from_bytes(
                            &path[..end],
                        ))))
                    }
                }
            }
            libc::AF_UNSPEC => Ok(Self::Unspec),
            libc::AF_NETLINK => {
                if bytes.len() < 12 {
                    return Err(einval);
                }
                let u32_at = |i: usize| {
                    u32::from_ne_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]])
                };
                Ok(Self::Netlink {
                    pid: u32_at(4),
                    groups: u32_at(8),
                })
            }
            _ => Ok(Self::Other(family)),
        }
    }
}

/// A refusal: a stable code, the errno the program gets, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// `egress.reserved_address`, `egress.metadata`, `supervisor.port`,
    /// `supervisor.unix_socket`, `supervisor.runtime_socket`, `supervisor.abstract_socket`,
    /// `supervisor.family`, `supervisor.ancillary`.
    pub code: &'static str,
    /// What the program's call returns (`EACCES`, `EPERM` for abstract sockets as
    /// Landlock's scope does, `EOPNOTSUPP` for ancillary data the supervisor cannot pass).
    pub errno: i32,
    /// Why, in words.
    pub reason: String,
    /// Held even in report mode: cloud metadata and container-runtime sockets.
    pub floor: bool,
}

impl Refusal {
    fn new(code: &'static str, errno: i32, reason: impl Into<String>) -> Self {
        Self {
            code,
            errno,
            reason: reason.into(),
            floor: false,
        }
    }
}

/// What may be reached from under `portcullis exec`: the address rules of an
/// [`EgressPolicy`] (reserved and metadata ranges, embedded IPv4, `allow_cidrs`,
/// `deny_cidrs`; host names are not known at this level), the TCP ports of the lockdown's
/// `connect_tcp`, the nameservers of `/etc/resolv.conf` on port 53, and an allowlist of
/// pathname UNIX sockets.
#[derive(Clone, Debug)]
pub struct ConnectPolicy {
    egress: EgressPolicy,
    egress_name: Option<String>,
    unix: Vec<PathBuf>,
    tcp_ports: Option<BTreeSet<u16>>,
    nameservers: Vec<IpAddr>,
    report: bool,
}

impl ConnectPolicy {
    /// The address rules of `egress`, no UNIX sockets, no port limit, no nameservers.
    pub fn new(egress: EgressPolicy) -> Self {
        Self {
            egress,
            egress_name: None,
            unix: Vec::new(),
            tcp_ports: None,
            nameservers: Vec::new(),
            report: false,
        }
    }

    /// The name of the `[egress.NAME]` policy, for messages.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.egress_name = Some(name.into());
        self
    }

    /// Pathname UNIX sockets that may be connected to. An entry ending in `/` allows the
    /// sockets beneath that directory, except container-runtime sockets
    /// ([`RUNTIME_SOCKETS`]), which must be named. Entries are made canonical (their
    /// directory's symlinks resolved, as the administrator wrote it) when the supervisor
    /// starts; an `@name` entry allows that abstract socket.
    #[must_use]
    pub fn unix_sockets<I: IntoIterator<Item = P>, P: AsRef<Path>>(mut self, paths: I) -> Self {
        self.unix
            .extend(paths.into_iter().map(|p| canonical_entry(p.as_ref())));
        self
    }

    /// TCP connects only to these ports (what Landlock would enforce: the supervisor
    /// performs connects outside the child's Landlock domain, so it checks them itself).
    #[must_use]
    pub fn tcp_ports<I: IntoIterator<Item = u16>>(mut self, ports: I) -> Self {
        self.tcp_ports = Some(ports.into_iter().collect());
        self
    }

    /// DNS servers reachable on port 53 (TCP and UDP) whatever the address rules say.
    #[must_use]
    pub fn nameservers<I: IntoIterator<Item = IpAddr>>(mut self, servers: I) -> Self {
        self.nameservers.extend(servers);
        self
    }

    /// Report mode: refusals are logged and allowed, except the floor (cloud metadata,
    /// container-runtime sockets).
    #[must_use]
    pub fn report(mut self, on: bool) -> Self {
        self.report = on;
        self
    }

    /// Whether report mode is on.
    pub fn is_report(&self) -> bool {
        self.report
    }

    /// The egress policy's name, if it has one.
    pub fn egress_name(&self) -> Option<&str> {
        self.egress_name.as_deref()
    }

    /// The UNIX socket allowlist, canonical.
    pub fn unix_socket_list(&self) -> &[PathBuf] {
        &self.unix
    }

    /// The nameservers exempted on port 53.
    pub fn nameserver_list(&self) -> &[IpAddr] {
        &self.nameservers
    }

    /// Judges a destination. `stream`: the socket is `SOCK_STREAM` (the TCP port list
    /// applies). For [`Destination::UnixPath`] pass the path the name *resolved to*
    /// (`supervisor.rs` resolves it inside the child's root, symlinks followed, and
    /// connects through the file it found, so what is judged is what is reached).
    pub fn judge(&self, dest: &Destination, stream: bool) -> Result<(), Refusal> {
        match dest {
            Destination::Inet(sa) => self.judge_inet(*sa, stream),
            Destination::UnixPath(p) => self.judge_unix(p),
            Destination::UnixAbstract(name) => {
                let mut entry = b"@".to_vec();
                entry.extend_from_slice(name);
                use std::os::unix::ffi::OsStrExt;
                if self
                    .unix
                    .iter()
                    .any(|p| p.as_os_str().as_bytes() == entry.as_slice())
                {
                    Ok(())
                } else {
                    Err(Refusal::new(
                        "supervisor.abstract_socket",
                        libc::EPERM,
                        "abstract UNIX sockets are not reached through the supervisor unless named as \"@NAME\" in unix_sockets (the name could be rewritten after the check, so it is never passed through)",
                    ))
                }
            }
            Destination::Unspec => Ok(()),
            Destination::Netlink { pid: 0, groups: 0 } => Ok(()),
            Destination::Netlink { .. } => Err(Refusal::new(
                "supervisor.family",
                libc::EACCES,
                "netlink messages go to the kernel only (nl_pid 0, no groups)",
            )),
            Destination::Other(f) => Err(Refusal::new(
                "supervisor.family",
                libc::EAFNOSUPPORT,
                format!("address family {f} is not judged by the supervisor, so it is refused"),
            )),
        }
    }

    fn judge_inet(&self, sa: SocketAddr, stream: bool) -> Result<(), Refusal> {
        let ip = sa.ip();
        if sa.port() == 53 && self.nameservers.contains(&ip) {
            return Ok(());
        }
        if let Err(e) = self.egress.check_ip(ip) {
            let mut r = Refusal::new(
                e.code(),
                libc::EACCES,
                match &self.egress_name {
                    Some(n) => format!("{e} (egress policy {n:?})"),
                    None => format!("{e} (the default denylist; name an [egress.POLICY] with `egress =` in the lockdown)"),
                },
            );
            r.floor = e.code() == "egress.metadata";
            return Err(r);
        }
        if stream {
            if let Some(ports) = &self.tcp_ports {
                if !ports.contains(&sa.port()) {
                    return Err(Refusal::new(
                        "supervisor.port",
                        libc::EACCES,
                        format!("TCP port {} is not in connect_tcp", sa.port()),
                    ));
                }
            }
        }
        Ok(())
    }

    fn judge_unix(&self, real: &Path) -> Result<(), Refusal> {
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let runtime = RUNTIME_SOCKETS.contains(&name.as_str());
        for entry in &self.unix {
            if entry == real {
                return Ok(());
            }
            let text = entry.to_string_lossy();
            if text.ends_with('/') && real.starts_with(entry) && !runtime {
                return Ok(());
            }
        }
        let mut r = if runtime {
            Refusal::new(
                "supervisor.runtime_socket",
                libc::EACCES,
                format!("{} is a container-runtime socket (root on the host); name it exactly in unix_sockets if this process really must drive the runtime", real.display()),
            )
        } else {
            Refusal::new(
                "supervisor.unix_socket",
                libc::EACCES,
                format!("{} is not in unix_sockets", real.display()),
            )
        };
        r.floor = runtime;
        Err(r)
    }
}

/// An allowlist entry made canonical: its directory's symlinks resolved (the file itself
/// may not exist yet: servers create their sockets at start).
fn canonical_entry(p: &Path) -> PathBuf {
    let text = p.to_string_lossy();
    if text.starts_with('@') {
        return p.to_path_buf();
    }
    if text.ends_with('/') {
        let mut c = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        c.push(""); // keep the trailing '/'
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or_else(|_| p.to_path_buf()),
        _ => p.to_path_buf(),
    }
}

/// Checks one `unix_sockets` entry as written in a config file: absolute (or `@name`),
/// no NUL, no `..`, short enough for `sun_path`.
pub(crate) fn check_unix_entry(p: &str) -> Result<(), String> {
    if p.contains('\0') {
        return Err("contains a NUL byte".to_owned());
    }
    if let Some(name) = p.strip_prefix('@') {
        if name.is_empty() || name.len() > 107 {
            return Err("an abstract name is 1-107 bytes after '@'".to_owned());
        }
        return Ok(());
    }
    let path = Path::new(p);
    if !path.is_absolute() {
        return Err(
            "is not absolute; name the socket by its full path (or @NAME for an abstract socket)"
                .to_owned(),
        );
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err("contains '..'; write the path the socket lives at".to_owned());
    }
    if p.len() > 107 {
        return Err("is longer than a UNIX socket path can be (107 bytes)".to_owned());
    }
    Ok(())
}

/// The `nameserver` lines of a resolv.conf.
///
/// ```
/// let ns = portcullis::lockdown::nameservers_of("# x\nnameserver 127.0.0.53\nnameserver ::1\nsearch lan\n");
/// assert_eq!(ns.len(), 2);
/// ```
pub fn nameservers_of(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
                .and_then(|w| w.split('%').next())
                .and_then(|w| w.parse().ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ConnectPolicy {
        let egress = EgressPolicy::builder()
            .allow_cidrs(["127.0.0.2/32"])
            .build()
            .unwrap();
        ConnectPolicy::new(egress)
            .unix_sockets(["/tmp/portcullis-ok.sock", "/srv/sockets/"])
            .tcp_ports([80, 443])
            .nameservers(["127.0.0.53".parse().unwrap()])
    }

    fn inet(s: &str) -> Destination {
        Destination::Inet(s.parse().unwrap())
    }

    #[test]
    fn every_spelling_of_a_refused_address_is_refused() {
        let p = policy();
        assert!(p.judge(&inet("127.0.0.2:80"), true).is_ok());
        for bad in [
            "127.0.0.1:80",
            "[::ffff:127.0.0.1]:80",
            "[::127.0.0.1]:80",
            "[64:ff9b::7f00:1]:80",
            "[2002:7f00:1::]:80",
            "[::1]:80",
            "0.0.0.0:80",
            "[::]:80",
            "169.254.169.254:80",
            "[::ffff:169.254.169.254]:80",
            "10.0.0.1:80",
            "[fe80::1%1]:80",
        ] {
            let r = p.judge(&inet(bad), true).unwrap_err();
            assert_eq!(r.errno, libc::EACCES, "{bad}");
            assert!(r.code.starts_with("egress."), "{bad}: {r:?}");
        }
        let meta = p.judge(&inet("169.254.169.254:80"), true).unwrap_err();
        assert!(meta.floor);
        assert!(!p.judge(&inet("10.0.0.1:80"), true).unwrap_err().floor);
    }

    #[test]
    fn ports_apply_to_streams_only_and_dns_is_exempt() {
        let p = policy();
        assert_eq!(
            p.judge(&inet("127.0.0.2:22"), true).unwrap_err().code,
            "supervisor.port"
        );
        assert!(p.judge(&inet("127.0.0.2:22"), false).is_ok());
        assert!(p.judge(&inet("127.0.0.53:53"), false).is_ok());
        assert!(p.judge(&inet("127.0.0.53:53"), true).is_ok());
        assert!(p.judge(&inet("127.0.0.53:54"), false).is_err());
        assert!(p.judge(&inet("127.0.0.54:53"), false).is_err());
    }

    #[test]
    fn unix_sockets_by_resolved_path() {
        let p = policy();
        let ok = |s: &str| p.judge(&Destination::UnixPath(s.into()), true);
        assert!(ok("/tmp/portcullis-ok.sock").is_ok());
        assert_eq!(
            ok("/tmp/other.sock").unwrap_err().code,
            "supervisor.unix_socket"
        );
        assert!(ok("/srv/sockets/app.sock").is_ok());
        assert!(ok("/srv/sockets/sub/app.sock").is_ok());
        assert_eq!(
            ok("/srv/sockets/docker.sock").unwrap_err().code,
            "supervisor.runtime_socket"
        );
        assert!(ok("/srv/sockets/docker.sock").unwrap_err().floor);
        assert_eq!(
            ok("/run/docker.sock").unwrap_err().code,
            "supervisor.runtime_socket"
        );
        assert!(ok("/srv/socketsX/app.sock").is_err());
        let named = ConnectPolicy::new(EgressPolicy::default()).unix_sockets(["/run/docker.sock"]);
        assert!(named
            .judge(&Destination::UnixPath("/run/docker.sock".into()), true)
            .is_ok());
        assert_eq!(
            p.judge(&Destination::UnixAbstract(b"x".to_vec()), true)
                .unwrap_err()
                .errno,
            libc::EPERM
        );
        let abs = ConnectPolicy::new(EgressPolicy::default()).unix_sockets(["@x"]);
        assert!(abs
            .judge(&Destination::UnixAbstract(b"x".to_vec()), true)
            .is_ok());
    }

    #[test]
    fn parse_like_the_kernel() {
        assert_eq!(Destination::parse(&[]).unwrap_err().0, libc::EINVAL);
        let mut v6 = vec![10u8, 0, 0, 80];
        v6.extend([0; 4]);
        v6.extend(Ipv6Addr::LOCALHOST.octets());
        assert_eq!(Destination::parse(&v6).unwrap(), inet("[::1]:80"));
        v6.pop();
        assert!(Destination::parse(&v6).is_err());
        let mut un = vec![1u8, 0];
        un.extend(b"/run/x.sock\0garbage");
        assert_eq!(
            Destination::parse(&un).unwrap(),
            Destination::UnixPath("/run/x.sock".into())
        );
        assert_eq!(
            Destination::parse(&[1, 0, 0, b'a']).unwrap(),
            Destination::UnixAbstract(b"a".to_vec())
        );
        assert_eq!(Destination::parse(&[0, 0]).unwrap(), Destination::Unspec);
        let p = policy();
        assert!(p.judge(&Destination::Other(40), true).is_err());
        assert!(p
            .judge(&Destination::Netlink { pid: 0, groups: 0 }, false)
            .is_ok());
        assert!(p
            .judge(&Destination::Netlink { pid: 9, groups: 0 }, false)
            .is_err());
    }

    #[test]
    fn entries_checked() {
        assert!(check_unix_entry("/run/postgresql/.s.PGSQL.5432").is_ok());
        assert!(check_unix_entry("@name").is_ok());
        for bad in [
            "run/x",
            "/run/../x",
            "/a\0b",
            "@",
            &format!("/{}", "a".repeat(120)),
        ] {
            assert!(check_unix_entry(bad).is_err(), "{bad}");
        }
        assert_eq!(
            nameservers_of("nameserver fe80::1%eth0\nnameserver x\n"),
            vec!["fe80::1".parse::<IpAddr>().unwrap()]
        );
    }
}
