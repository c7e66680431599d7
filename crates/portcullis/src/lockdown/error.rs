//! `LockdownError`: why a lockdown was refused or could not be applied.

use std::path::PathBuf;

use crate::ErrorCode;

/// Why a lockdown was refused, or why applying it failed.
///
/// Refusals found while building ([`super::LockdownBuilder::build`]) and while preparing
/// [`super::Lockdown::apply`] happen before anything irreversible is done: the process is
/// unchanged. [`LockdownError::Failed`] is the one exception; see its documentation.
///
/// ```
/// use portcullis::{lockdown::Lockdown, ErrorCode};
/// let err = Lockdown::builder().read(["relative/dir"]).build().unwrap_err();
/// assert_eq!(err.code(), "lockdown.bad_path");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockdownError {
    /// The kernel cannot enforce what the policy asks (no Landlock, an ABI too old for TCP
    /// rules or scoping, seccomp missing, or a container profile refusing the syscalls), and
    /// `best_effort` is off. Nothing was changed.
    #[error("the kernel cannot enforce this lockdown: {missing}; run on a kernel that can (Landlock ABI 6+, seccomp), or set best_effort = true to accept less, knowingly")]
    Unsupported {
        /// What is missing, in words.
        missing: String,
    },
    /// The process has more than one thread and Landlock can restrict only the calling one
    /// (process-wide enforcement needs Landlock ABI 8). Nothing was changed.
    #[error("the process has {count} threads; Landlock on this kernel (ABI {abi}) restricts only the calling thread, so the others would keep full access. Lock down before any thread starts: use `portcullis exec -- CMD` (applies, then execs), or apply at the top of main / in a preforking master before it forks")]
    Threads {
        /// Threads counted in `/proc/self/task`.
        count: usize,
        /// The running Landlock ABI.
        abi: i32,
    },
    /// A path of the policy cannot be used: not absolute, contains NUL, does not exist, or
    /// names a single process under `/proc`.
    #[error("{path:?}: {reason}")]
    BadPath {
        /// The path as given.
        path: PathBuf,
        /// Why it was refused and what to do.
        reason: String,
    },
    /// A port of `connect_tcp`/`bind_tcp` is 0.
    #[error("port 0 in {list}: name real TCP ports 1-65535")]
    BadPort {
        /// `connect_tcp` or `bind_tcp`.
        list: &'static str,
    },
    /// A name in `keep_caps` is not a Linux capability.
    #[error("{name:?} is not a Linux capability; write names like \"NET_BIND_SERVICE\" (the CAP_ prefix is optional)")]
    BadCapability {
        /// The name as given.
        name: String,
    },
    /// The `user` or `group` to switch to does not exist, or switching needs root.
    #[error("cannot switch to {kind} {name:?}: {reason}")]
    BadUser {
        /// `user` or `group`.
        kind: &'static str,
        /// The name as given.
        name: String,
        /// Why.
        reason: String,
    },
    /// This process already applied a lockdown through Portcullis. Lockdowns only tighten;
    /// a second one in the same process is refused so a policy is never mistaken for the one
    /// in force. (A program started by `exec` may apply its own, which stacks.)
    #[error(
        "a lockdown was already applied in this process; it stays in force and cannot be loosened"
    )]
    AlreadyApplied,
    /// A system call failed after the first irreversible step. The process is partly locked
    /// down and must not go on serving: exit.
    #[error(
        "lockdown step {step:?} failed: {source}; the process is partly locked down, exit now"
    )]
    Failed {
        /// Which step (`capabilities`, `no_new_privs`, `landlock`, `seccomp`, …).
        step: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ErrorCode for LockdownError {
    fn code(&self) -> &'static str {
        match self {
            Self::Unsupported { .. } => "lockdown.unsupported",
            Self::Threads { .. } => "lockdown.threads",
            Self::BadPath { .. } => "lockdown.bad_path",
            Self::BadPort { .. } => "lockdown.bad_port",
            Self::BadCapability { .. } => "lockdown.bad_capability",
            Self::BadUser { .. } => "lockdown.bad_user",
            Self::AlreadyApplied => "lockdown.already_applied",
            Self::Failed { .. } => "lockdown.failed",
        }
    }
}
