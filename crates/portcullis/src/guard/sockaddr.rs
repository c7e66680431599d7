//! Reading the `struct sockaddr` bytes Ruby passes to `connect`/`sendmsg` (a packed String
//! or `Addrinfo#to_sockaddr`) and libcurl hands to its open-socket callback.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// What a socket address names, as far as egress is concerned.
///
/// ```
/// use portcullis::guard::{parse_sockaddr, SocketTarget};
/// let mut raw = vec![0u8; 16];
/// raw[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
/// raw[2..4].copy_from_slice(&8080u16.to_be_bytes());
/// raw[4..8].copy_from_slice(&[127, 0, 0, 1]);
/// # #[cfg(target_os = "linux")]
/// assert_eq!(parse_sockaddr(&raw), Ok(SocketTarget::Inet("127.0.0.1:8080".parse().unwrap())));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketTarget {
    /// An IPv4 or IPv6 address and port: egress, judged by the policy.
    Inet(SocketAddr),
    /// A UNIX-domain socket (path or abstract): local IPC, not egress.
    Unix,
    /// `AF_UNSPEC`: dissolves a datagram socket's association; connects nowhere.
    Unspec,
    /// Any other address family (netlink, packet, vsock, …), by number.
    Other(u16),
}

/// Why socket address bytes could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SockaddrError(pub String);

fn family_of(raw: &[u8]) -> Option<u16> {
    // BSDs and macOS start with a length byte and a one-byte family; Linux has a u16.
    #[cfg(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    ))]
    {
        raw.get(1).map(|b| u16::from(*b))
    }
    #[cfg(not(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    )))]
    {
        Some(u16::from_ne_bytes([*raw.first()?, *raw.get(1)?]))
    }
}

/// Reads a `struct sockaddr` (the bytes of `sockaddr_in`, `sockaddr_in6`, `sockaddr_un`, …).
pub fn parse_sockaddr(raw: &[u8]) -> Result<SocketTarget, SockaddrError> {
    let family = family_of(raw).ok_or_else(|| {
        SockaddrError(format!(
            "{} bytes is too short for a socket address",
            raw.len()
        ))
    })?;
    let short = |need: usize| {
        SockaddrError(format!(
            "family {family} needs {need} bytes, got {}",
            raw.len()
        ))
    };
    let port = || raw.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]]));
    match i32::from(family) {
        libc::AF_INET => {
            let port = port().ok_or_else(|| short(8))?;
            let ip: [u8; 4] = raw
                .get(4..8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| short(8))?;
            Ok(SocketTarget::Inet(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(ip),
                port,
            ))))
        }
        libc::AF_INET6 => {
            let port = port().ok_or_else(|| short(24))?;
            let ip: [u8; 16] = raw
                .get(8..24)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| short(24))?;
            let scope = raw
                .get(24..28)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_ne_bytes);
            Ok(SocketTarget::Inet(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                0,
                scope,
            ))))
        }
        libc::AF_UNIX => Ok(SocketTarget::Unix),
        libc::AF_UNSPEC => Ok(SocketTarget::Unspec),
        _ => Ok(SocketTarget::Other(family)),
    }
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;

    fn v6(ip: &str, port: u16) -> Vec<u8> {
        let mut raw = vec![0u8; 28];
        raw[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        raw[2..4].copy_from_slice(&port.to_be_bytes());
        raw[8..24].copy_from_slice(&ip.parse::<Ipv6Addr>().unwrap().octets());
        raw
    }

    #[test]
    fn reads_every_family() {
        assert_eq!(
            parse_sockaddr(&v6("::ffff:127.0.0.1", 80)),
            Ok(SocketTarget::Inet("[::ffff:127.0.0.1]:80".parse().unwrap()))
        );
        let mut unix = vec![0u8; 110];
        unix[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(parse_sockaddr(&unix), Ok(SocketTarget::Unix));
        assert_eq!(parse_sockaddr(&[0, 0]), Ok(SocketTarget::Unspec));
        let netlink = (libc::AF_NETLINK as u16).to_ne_bytes();
        assert_eq!(
            parse_sockaddr(&netlink),
            Ok(SocketTarget::Other(libc::AF_NETLINK as u16))
        );
    }

    #[test]
    fn truncated_addresses_are_errors_not_panics() {
        assert!(parse_sockaddr(&[]).is_err());
        assert!(parse_sockaddr(&[2]).is_err());
        assert!(parse_sockaddr(&(libc::AF_INET as u16).to_ne_bytes()).is_err());
        assert!(parse_sockaddr(&v6("::1", 1)[..20]).is_err());
    }
}
