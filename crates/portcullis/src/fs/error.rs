//! `PathError`: why a name was refused or an operation beneath the root failed.

use crate::ErrorCode;

/// Why a name was refused, or why an operation beneath a [`super::SafeRoot`] failed.
///
/// Every variant carries the offending name (lossily decoded, truncated for display) and
/// has a stable [`ErrorCode`] such as `path.escape`.
///
/// ```
/// use portcullis::{fs::check_name, ErrorCode};
/// let err = check_name(b"../etc/passwd").unwrap_err();
/// assert_eq!(err.code(), "path.escape");
/// assert!(err.to_string().contains("../etc/passwd"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The name was empty. An empty name never means "the root itself"; pass `"."` for that.
    #[error("the file name is empty; pass a name relative to the root")]
    Empty,
    /// The name contains a NUL byte, which would silently truncate it at the C boundary.
    #[error("{name:?} contains a NUL byte; refuse the request")]
    Nul {
        /// The offending name.
        name: String,
    },
    /// The name contains a control byte (0x01-0x1f or 0x7f) other than NUL: newlines and
    /// escape sequences in file names are log injection and terminal tricks, never needed.
    #[error("{name:?} contains a control character; refuse the request")]
    Control {
        /// The offending name.
        name: String,
    },
    /// The name is not valid UTF-8; Portcullis only accepts names it can print and compare.
    #[error("{name:?} is not valid UTF-8; refuse the request")]
    NotUtf8 {
        /// The offending name, lossily decoded.
        name: String,
    },
    /// The name is absolute (starts with `/`); names are always relative to the root.
    #[error("{name:?} is absolute; pass a name relative to the root")]
    Absolute {
        /// The offending name.
        name: String,
    },
    /// The name contains a backslash: a Windows separator on some systems and a literal
    /// character on others, so it is refused everywhere.
    #[error("{name:?} contains a backslash; use `/` as the separator")]
    Backslash {
        /// The offending name.
        name: String,
    },
    /// The name starts with a Windows drive letter (`C:`) or a UNC prefix (`//server`,
    /// `\\server`).
    #[error("{name:?} starts with a drive letter or UNC prefix; pass a relative name")]
    Drive {
        /// The offending name.
        name: String,
    },
    /// The name climbs above the root, lexically (`a/../../b`) or on disk (through `..`
    /// after a symlink, or a symlink whose target is absolute or leaves the root).
    #[error("{name:?} leaves the root directory; refuse the request")]
    Escape {
        /// The offending name.
        name: String,
    },
    /// The name goes through a symlink the policy refuses (any symlink under
    /// [`super::SymlinkPolicy::Deny`]), or through too many symlinks (a loop).
    #[error("{name:?} goes through a symlink that is refused (policy or loop)")]
    Symlink {
        /// The offending name.
        name: String,
    },
    /// Nothing exists under that name beneath the root.
    #[error("{name:?} does not exist beneath the root")]
    NotFound {
        /// The offending name.
        name: String,
    },
    /// The root directory itself does not exist: a configuration
    /// mistake, reported when the [`super::SafeRoot`] is made.
    #[error("root directory {root:?} does not exist; create it or fix the configured path")]
    RootMissing {
        /// The configured root.
        root: String,
    },
    /// The name exists but is not a regular file (a directory, FIFO, device, socket, …).
    #[error("{name:?} is not a regular file")]
    NotAFile {
        /// The offending name.
        name: String,
    },
    /// A component used as a directory is not one (including a trailing `/` after a file).
    #[error("{name:?} is not a directory (or a component of it is not)")]
    NotADirectory {
        /// The offending name.
        name: String,
    },
    /// The name is longer than 4096 bytes, or one component is longer than 255 bytes.
    #[error("{name:?}… is too long (at most 4096 bytes, 255 per component)")]
    TooLong {
        /// The first bytes of the offending name.
        name: String,
    },
    /// An upload's extension is missing or not in the allowlist.
    #[error("{name:?} has extension {extension:?}, which is not allowed; allowed: {allowed}")]
    Extension {
        /// The client-supplied file name.
        name: String,
        /// The extension found (lowercased), empty if none.
        extension: String,
        /// The allowlist, comma separated.
        allowed: String,
    },
    /// The name already exists and exclusive creation was asked for.
    #[error("{name:?} already exists")]
    Exists {
        /// The offending name.
        name: String,
    },
    /// The operating system refused the operation for another reason (permissions, disk
    /// full, …); the source error says which.
    #[error("{name:?}: {source}")]
    Io {
        /// The offending name.
        name: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ErrorCode for PathError {
    fn code(&self) -> &'static str {
        match self {
            Self::Empty => "path.empty",
            Self::Nul { .. } => "path.nul",
            Self::Control { .. } => "path.control",
            Self::NotUtf8 { .. } => "path.not_utf8",
            Self::Absolute { .. } => "path.absolute",
            Self::Backslash { .. } => "path.backslash",
            Self::Drive { .. } => "path.drive",
            Self::Escape { .. } => "path.escape",
            Self::Symlink { .. } => "path.symlink",
            Self::NotFound { .. } => "path.not_found",
            Self::RootMissing { .. } => "path.root_missing",
            Self::NotAFile { .. } => "path.not_a_file",
            Self::NotADirectory { .. } => "path.not_a_directory",
            Self::TooLong { .. } => "path.too_long",
            Self::Extension { .. } => "path.extension",
            Self::Exists { .. } => "path.exists",
            Self::Io { .. } => "path.io",
        }
    }
}

/// The name as it appears in messages: lossily decoded, at most 256 characters.
pub(crate) fn display_name(name: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(name);
    lossy.chars().take(256).collect()
}
