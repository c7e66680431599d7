//! [`ConfigError`]: every mistake in a configuration file, with where it is.

use std::fmt;

use crate::ErrorCode;

/// Where in a configuration file something is: file name, 1-based line and column.
///
/// ```
/// use portcullis::config::Location;
/// let at = Location::in_text("portcullis.toml", "a = 1\nb = 2\n", 6);
/// assert_eq!((at.line, at.column), (2, 1));
/// assert_eq!(at.to_string(), "portcullis.toml:2:1");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// The file as it was named when loaded (`<string>` for text without a file).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text` (clamped to the text's length).
    pub fn in_text(file: &str, text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
        Self {
            file: file.to_owned(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Why a configuration file was refused (or a name was not found in a loaded one).
///
/// Every variant about the file's content carries a [`Location`]; its `Display` starts with
/// `file:line:column:` so editors and CI logs can jump to the mistake.
///
/// ```
/// use portcullis::{config::Config, ErrorCode};
/// let err = Config::from_str("[egress.partners]\nalow_hosts = []\n", "/tmp").unwrap_err();
/// assert_eq!(err.code(), "config.unknown_key");
/// assert!(err.to_string().starts_with("<string>:2:1: unknown key \"alow_hosts\" in [egress.partners]"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{file}: cannot read the configuration file: {source}")]
    Io {
        /// The file as named.
        file: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// The text is not valid TOML (unclosed bracket, duplicate key, bad string escape, …).
    #[error("{at}: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: Location,
        /// The parser's explanation.
        message: String,
    },

    /// A key that Portcullis does not know; usually a typo. Nothing is silently ignored.
    #[error("{at}: unknown key \"{key}\" in {table}; expected one of: {}", expected.join(", "))]
    UnknownKey {
        /// Where the key is.
        at: Location,
        /// The key as written.
        key: String,
        /// The table it is in, as `[egress.partners]`.
        table: String,
        /// The keys that table accepts.
        expected: Vec<String>,
    },

    /// A required key is absent.
    #[error("{at}: missing key \"{key}\" in {table}")]
    MissingKey {
        /// Where the table is.
        at: Location,
        /// The missing key.
        key: String,
        /// The table, as `[command.deploy]`.
        table: String,
    },

    /// A value has the wrong TOML type (a string where a list is expected, …).
    #[error("{at}: {message}")]
    InvalidType {
        /// Where the value is.
        at: Location,
        /// What was found and what was expected.
        message: String,
    },

    /// A value has the right type but is refused: a CIDR that does not parse, a relative
    /// command program, an empty CA bundle, a pattern that does not compile, …
    #[error("{at}: {message}")]
    InvalidValue {
        /// Where the value is.
        at: Location,
        /// What is wrong and what is expected (including the capability's own error).
        message: String,
        /// The capability's error code when one refused the value (`egress.invalid_policy`, …).
        cause: Option<&'static str>,
    },

    /// A file named by the configuration (CA bundle, CRL, root directory) does not exist or
    /// cannot be read. Relative paths are resolved against the configuration file's directory.
    #[error("{at}: {what} {path:?} cannot be read: {reason}")]
    MissingFile {
        /// Where the path is written.
        at: Location,
        /// What the file is for (`CA bundle`, `CRL`, `root directory`, …).
        what: &'static str,
        /// The resolved path.
        path: String,
        /// The operating system's reason.
        reason: String,
    },

    /// A name that refers to another section that does not exist (a rule naming a missing
    /// trust store, a path parameter naming a missing root, …).
    #[error("{at}: {message}")]
    Reference {
        /// Where the name is written.
        at: Location,
        /// Which name was not found and which ones exist.
        message: String,
    },

    /// A lookup by name (`config.egress("x")`) for a name the file does not define.
    #[error("no {kind} named {name:?} in {file}; defined: {}", if defined.is_empty() { "none".to_owned() } else { defined.join(", ") })]
    UnknownName {
        /// `trust store`, `egress policy`, `root`, `command`, `source`.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The file the configuration came from.
        file: String,
        /// The names that exist.
        defined: Vec<String>,
    },
}

impl ConfigError {
    /// Where in the file the mistake is, when it is about the file's content.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Syntax { at, .. }
            | Self::UnknownKey { at, .. }
            | Self::MissingKey { at, .. }
            | Self::InvalidType { at, .. }
            | Self::InvalidValue { at, .. }
            | Self::MissingFile { at, .. }
            | Self::Reference { at, .. } => Some(at),
            Self::Io { .. } | Self::UnknownName { .. } => None,
        }
    }
}

impl ErrorCode for ConfigError {
    fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "config.io",
            Self::Syntax { .. } => "config.syntax",
            Self::UnknownKey { .. } => "config.unknown_key",
            Self::MissingKey { .. } => "config.missing_key",
            Self::InvalidType { .. } => "config.invalid_type",
            Self::InvalidValue { .. } => "config.invalid_value",
            Self::MissingFile { .. } => "config.missing_file",
            Self::Reference { .. } => "config.reference",
            Self::UnknownName { .. } => "config.unknown_name",
        }
    }
}
