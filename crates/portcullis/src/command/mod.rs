//! Commands: argv built from a fixed template and typed, untrusted values; never a shell.
//!
//! A [`CommandTemplate`] is written in code or configuration: an absolute program path
//! (checked when the template is built, and refused if it is a shell, interpreter or
//! launcher, or a `#!` script whose interpreter line makes its arguments code), fixed
//! arguments, and placeholders. A request only fills placeholders, and every value goes
//! through its [`Param`] type (`one_of`, `pattern`, `integer`, `literal`, `path`) before it becomes
//! exactly one argv element. Whatever the type, a value that starts with `-`, contains NUL,
//! CR or LF, or exceeds its length cap is refused, so no value can become an option.
//!
//! [`CommandTemplate::run`] spawns the program with `std::process::Command` (argv only, no
//! shell), an empty environment plus an explicit allowlist (`PATH` fixed to [`SAFE_PATH`]),
//! stdin on `/dev/null`, a fixed working directory, its own process group (killed as a
//! whole on timeout), output captured with a size cap, and optional [`Rlimits`].
//!
//! ```
//! use portcullis::command::{CommandTemplate, Param};
//!
//! let deploy = CommandTemplate::builder("/bin/echo")
//!     .args(["run", "--rm", "--"])
//!     .placeholder("image")
//!     .param("image", Param::one_of([("worker", "worker:latest"), ("api", "api:stable")]))
//!     .build()?;
//!
//! assert_eq!(
//!     deploy.argv([("image", "worker")])?,
//!     ["/bin/echo", "run", "--rm", "--", "worker:latest"]
//! );
//! let refused = deploy.argv([("image", "--privileged")]).unwrap_err();
//! assert_eq!(portcullis::ErrorCode::code(&refused), "command.option_injection");
//! # Ok::<(), portcullis::command::CommandError>(())
//! ```

mod param;
mod pattern;
mod program;
mod run;
mod template;

use std::time::Duration;

pub use param::{Param, DEFAULT_MAX_LEN};
pub use run::{CancelHandle, CommandOutput, Rlimits, RunningCommand};
pub use template::{CommandTemplate, CommandTemplateBuilder};

/// The `PATH` every child gets; templates cannot change it.
pub const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How long a child may run when the template sets no timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest timeout a template may set (a week): a deadline must stay representable,
/// and a command that needs longer is not a request-driven command.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// How many bytes of stdout (and, separately, of stderr) are kept when the template sets no cap.
pub const DEFAULT_MAX_OUTPUT: usize = 1024 * 1024;

/// Why a template, a value or a run was refused.
///
/// Values named in messages are quoted with control characters escaped and cut to a short
/// prefix, so a hostile value cannot forge log lines.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The program path is not absolute, does not exist, is not a regular file or has no
    /// execute bit. Programs are checked when the template is built, not when it runs.
    #[error(
        "program {path:?} refused: {reason}; give the absolute path of an existing executable file"
    )]
    Program {
        /// The program path as written in the template.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The program or the file it resolves to is a shell or language interpreter (sh, bash,
    /// python, ruby, perl, node, make, …), which would treat its arguments as code; or it is
    /// a `#!` script whose interpreter line makes them code (`#!/bin/sh -c`,
    /// `#!/usr/bin/env -S perl -e`, an interpreter that takes them as code whatever its
    /// options); or GNU `sed` without `--sandbox`. A script whose interpreter runs the
    /// script file (`#!/bin/sh`, `#!/usr/bin/env python3 `) is not refused: its arguments
    /// are data. Allowed only when the template says so explicitly.
    #[error("program {path:?} runs the interpreter {interpreter:?}, which would treat its arguments as code; run a dedicated program instead, or allow interpreters explicitly for a template whose code arguments are fixed")]
    Interpreter {
        /// The program path as written in the template.
        path: String,
        /// The interpreter it was found to be or to run.
        interpreter: String,
    },

    /// The program, the file it resolves to, or the `#!` interpreter of a script is a
    /// launcher (`nice`, `timeout`, `xargs`, `sudo`, `env`, `ld.so`, `find -exec`, …), which
    /// would run one of its arguments as a program. Allowed only when the template says so
    /// explicitly (`allow_interpreter`).
    #[error("program {path:?} runs {launcher:?}, which would run its arguments as a program; put the program it would run in the template instead, or allow launchers explicitly for a template whose launched program and its code arguments are fixed")]
    Launcher {
        /// The program path as written in the template.
        path: String,
        /// The launcher it was found to be or to run, and why.
        launcher: String,
    },

    /// The template has a placeholder for this parameter and no value was given.
    #[error("parameter {name:?} is missing; give a value for every placeholder")]
    MissingParam {
        /// The parameter's name.
        name: String,
    },

    /// A value was given for a parameter the template does not have.
    #[error("parameter {name} is unknown to this command; pass only the template's parameters")]
    UnknownParam {
        /// The name as given (quoted and cut short).
        name: String,
    },

    /// The same parameter was given twice.
    #[error("parameter {name:?} was given more than once; give one value per parameter")]
    DuplicateParam {
        /// The parameter's name.
        name: String,
    },

    /// The value does not satisfy the parameter's type (not one of the choices, does not
    /// match the pattern, not an integer in range).
    #[error("parameter {name:?}: value {value} refused: expected {expected}")]
    InvalidValue {
        /// The parameter's name.
        name: String,
        /// The value (quoted and cut short).
        value: String,
        /// What the parameter accepts.
        expected: String,
    },

    /// The value (as given, or as mapped by `one_of`) starts with `-` and would be read as
    /// an option; or the argv element it produces would start with `-` where the template
    /// did not put one.
    #[error("parameter {name:?}: value {value} starts with '-' and would be read as an option; values may not start with '-' unless the template allows it for this parameter")]
    OptionInjection {
        /// The parameter's name.
        name: String,
        /// The value (quoted and cut short).
        value: String,
    },

    /// The value of a `path` parameter was refused by its [`crate::fs::SafeRoot`]: it
    /// escapes the root, is absolute, does not exist, goes through a refused symlink, …
    /// `source` carries the `path.*` reason.
    #[error("parameter {name:?}: {source}")]
    Path {
        /// The parameter's name.
        name: String,
        /// Why the root refused the name.
        source: crate::fs::PathError,
    },

    /// The value contains NUL, CR or LF.
    #[error("parameter {name:?}: value contains NUL, CR or LF; remove control characters")]
    ControlChar {
        /// The parameter's name.
        name: String,
    },

    /// The value is longer than the parameter's cap (in bytes).
    #[error("parameter {name:?}: value is {len} bytes long, more than the cap of {max}")]
    TooLong {
        /// The parameter's name.
        name: String,
        /// The value's length in bytes.
        len: usize,
        /// The cap in bytes.
        max: usize,
    },

    /// The program ran longer than the template's timeout; its whole process group was
    /// killed. Returned by [`CommandOutput::check`]; [`CommandTemplate::run`] itself reports
    /// a timeout in [`CommandOutput::timed_out`] so the partial output stays available.
    #[error("program {program:?} ran longer than {after:?} and was killed with its process group")]
    Timeout {
        /// The program path as written in the template.
        program: String,
        /// The timeout.
        after: Duration,
    },

    /// The program exited with a non-zero status or was killed by a signal. Returned by
    /// [`CommandOutput::check`].
    #[error("program {program:?} failed: {status}")]
    Failed {
        /// The program path as written in the template.
        program: String,
        /// The exit status, as text (`exit status: 1`, `signal: 9 (SIGKILL)`).
        status: String,
    },

    /// The operating system refused to start the program (it vanished, lost its execute
    /// bit, an rlimit could not be set, too many processes, …).
    #[error("program {program:?} could not be started: {source}")]
    SpawnFailed {
        /// The program path as written in the template.
        program: String,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The template itself is inconsistent: a placeholder without a parameter, a parameter
    /// without a placeholder, a bad pattern, a `one_of` target that starts with `-`, an
    /// environment variable that cannot be set, a relative working directory, …
    #[error("bad command template: {reason}")]
    BadTemplate {
        /// What is wrong, and where.
        reason: String,
    },

    /// The run was stopped through its [`CancelHandle`] (a Ruby interrupt such as
    /// `Timeout.timeout`, a request deadline). The program's process group was killed and
    /// the child reaped.
    #[error("running {program:?} was cancelled; its process group was killed")]
    Cancelled {
        /// The program path as written in the template.
        program: String,
    },

    /// Capturing the child's output or waiting for it failed. The child's process group was
    /// killed and the child reaped.
    #[error("capturing the output of {program:?} failed: {source}")]
    Output {
        /// The program path as written in the template.
        program: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl crate::ErrorCode for CommandError {
    fn code(&self) -> &'static str {
        match self {
            Self::Program { .. } => "command.program",
            Self::Interpreter { .. } => "command.interpreter",
            Self::Launcher { .. } => "command.launcher",
            Self::MissingParam { .. } => "command.missing_param",
            Self::UnknownParam { .. } => "command.unknown_param",
            Self::DuplicateParam { .. } => "command.duplicate_param",
            Self::InvalidValue { .. } => "command.invalid_value",
            Self::OptionInjection { .. } => "command.option_injection",
            Self::Path { .. } => "command.path",
            Self::ControlChar { .. } => "command.control_char",
            Self::TooLong { .. } => "command.too_long",
            Self::Timeout { .. } => "command.timeout",
            Self::Failed { .. } => "command.failed",
            Self::SpawnFailed { .. } => "command.spawn_failed",
            Self::BadTemplate { .. } => "command.bad_template",
            Self::Output { .. } => "command.output",
            Self::Cancelled { .. } => "command.cancelled",
        }
    }
}

impl CommandError {
    pub(crate) fn bad_template(reason: impl Into<String>) -> Self {
        Self::BadTemplate {
            reason: reason.into(),
        }
    }
}

/// Quotes an untrusted value for a message: Debug-escaped (no raw control characters) and
/// cut to a short prefix.
pub(crate) fn shown(value: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut cut: String = value.chars().take(MAX_CHARS).collect();
    let more = cut.len() < value.len();
    if more {
        cut.push('…');
    }
    format!("{cut:?}")
}
