//! Name resolution behind a trait, so tests inject answers and services plug in their own
//! resolver (hickory, a cache, a service registry).

use std::io;
use std::net::{IpAddr, ToSocketAddrs};

/// Resolves a host name to IP addresses. Every address returned is checked against the
/// policy; one bad answer rejects the destination.
///
/// Any `Fn(&str) -> io::Result<Vec<IpAddr>>` is a resolver, which is how tests stub DNS:
///
/// ```
/// use portcullis::egress::{EgressPolicy, Resolve};
/// use std::net::IpAddr;
/// let rebinding = |_: &str| -> std::io::Result<Vec<IpAddr>> {
///     Ok(vec!["93.184.216.34".parse().unwrap(), "127.0.0.1".parse().unwrap()])
/// };
/// let err = EgressPolicy::default().check_with("https://rebind.example/", &rebinding).unwrap_err();
/// assert_eq!(portcullis::ErrorCode::code(&err), "egress.reserved_address");
/// ```
pub trait Resolve {
    /// The addresses `host` resolves to. `host` is a normalised ASCII name, never an IP literal.
    fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

impl<F> Resolve for F
where
    F: Fn(&str) -> io::Result<Vec<IpAddr>>,
{
    fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        self(host)
    }
}

/// The operating system's resolver (`getaddrinfo` through std's `ToSocketAddrs`). It blocks;
/// the Ruby binding calls it with the GVL released.
///
/// ```no_run
/// use portcullis::egress::{EgressPolicy, SystemResolver};
/// let dest = EgressPolicy::default().check_with("https://example.com/", &SystemResolver)?;
/// # Ok::<(), portcullis::egress::EgressError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        // The port is irrelevant to the answer; 0 keeps getaddrinfo from needing a service.
        Ok((host, 0u16).to_socket_addrs()?.map(|sa| sa.ip()).collect())
    }
}
