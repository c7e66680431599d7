//! # Portcullis
//!
//! Keeps a compromised or hostile request inside the box. mTLS proves *who* is calling;
//! Portcullis decides *what they may reach*:
//!
//! - [`identity`]: verify client certificate chains (rustls-webpki) and turn them into an
//!   [`identity::Identity`].
//! - [`authz`]: map identities to named permissions, default deny.
//! - [`egress`]: decide which URLs and exact IP addresses the app may connect to.
//! - [`fs`]: open files strictly beneath a root, on disk, without check-then-use races.
//! - [`command`]: build argv from typed, untrusted values; never a shell.
//! - [`guard`]: the decisions behind the Ruby runtime guard (connects and spawns).
//! - [`lockdown`]: the kernel floor for the whole process (Landlock, seccomp, capabilities).
//!
//! Optional features put these into a Rust service's stack: `reqwest` (`egress::reqwest`),
//! `hyper` (`egress::hyper`), `tower` and `axum` (`tower`).
//!
//! Every capability has its own `#[non_exhaustive]` error enum; each error has a stable
//! machine code (see [`ErrorCode`]) and a message that says what was wrong.
#![deny(unsafe_code)]
// opt-outs: `command` sets rlimits in the forked child (pre_exec); `lockdown::sys` makes the
// prctl/capset/setuid calls no safe wrapper offers; fs is safe via rustix openat2
#![warn(missing_docs)]

mod answer;
pub mod authz;
pub mod command;
pub mod config;
pub mod egress;
pub mod fs;
pub mod guard;
pub mod identity;
pub mod lockdown;
#[cfg(feature = "tower")]
pub mod tower;

pub use answer::Answer;

/// A stable, machine-readable code carried by every Portcullis error
/// (`cert.expired`, `egress.reserved_address`, `path.escape`, …).
///
/// Codes never change once published; messages may be reworded.
///
/// ```
/// use portcullis::ErrorCode;
/// fn log(e: &dyn ErrorCode) -> String { format!("{}: {}", e.code(), e) }
/// ```
pub trait ErrorCode: std::error::Error {
    /// The stable code, `capability.reason`.
    fn code(&self) -> &'static str;

    /// How a web app should answer the request this error stopped ([`Answer::for_code`]).
    fn answer(&self) -> Answer {
        Answer::for_code(self.code())
    }
}
