//! The lexical pre-check: refuses names that are wrong on paper before any syscall.
//!
//! This check alone is not confinement (symlinks and races are handled on disk by
//! `resolve`); it turns hostile spellings into precise error codes early and cheaply.
//! It never URL-decodes: `%2e%2e` is a literal (and harmless) name here.

use super::error::{display_name, PathError};

/// Longest accepted name, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest accepted component, in bytes (Linux `NAME_MAX`).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// A name that passed the lexical check.
#[derive(Debug, Clone)]
pub(crate) struct CheckedName<'a> {
    /// The name as given (valid UTF-8, relative, no NUL/control/backslash).
    pub(crate) text: &'a str,
    /// The name with `.`, empty components and `..` folded away, lexically. Used only for
    /// display paths (`join`), never to open anything.
    pub(crate) normalized: Vec<&'a str>,
    /// The last raw component, if it is an ordinary name (not `.`/`..`, no trailing `/`).
    pub(crate) last_normal: Option<&'a str>,
}

/// Checks `name` lexically and returns it split for the resolver.
pub(crate) fn check(name: &[u8]) -> Result<CheckedName<'_>, PathError> {
    if name.is_empty() {
        return Err(PathError::Empty);
    }
    let shown = || display_name(name);
    if name.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong { name: shown() });
    }
    if name.contains(&0) {
        return Err(PathError::Nul { name: shown() });
    }
    if name.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(PathError::Control { name: shown() });
    }
    let text = std::str::from_utf8(name).map_err(|_| PathError::NotUtf8 { name: shown() })?;
    // UNC (`//server/share`, `\\server\share`) and drive letters (`C:`, `c:\`) before the
    // generic backslash/absolute checks, so the code says what the input was trying.
    if text.starts_with("//") || text.starts_with("\\\\") || has_drive_letter(name) {
        return Err(PathError::Drive { name: shown() });
    }
    if text.contains('\\') {
        return Err(PathError::Backslash { name: shown() });
    }
    if text.starts_with('/') {
        return Err(PathError::Absolute { name: shown() });
    }
    let mut normalized: Vec<&str> = Vec::new();
    for component in text.split('/') {
        if component.len() > MAX_COMPONENT_BYTES {
            return Err(PathError::TooLong { name: shown() });
        }
        match component {
            "" | "." => {}
            ".." => {
                if normalized.pop().is_none() {
                    return Err(PathError::Escape { name: shown() });
                }
            }
            other => normalized.push(other),
        }
    }
    let last = text.rsplit('/').next().unwrap_or("");
    let last_normal = match last {
        "" | "." | ".." => None,
        other => Some(other),
    };
    Ok(CheckedName {
        text,
        normalized,
        last_normal,
    })
}

fn has_drive_letter(name: &[u8]) -> bool {
    matches!(name, [letter, b':', ..] if letter.is_ascii_alphabetic())
}

/// Checks a name lexically without touching the disk: the same first gate every
/// [`super::SafeRoot`] operation applies. `Ok` does not mean the name is safe to open
/// by path; only `SafeRoot` makes that decision, on disk.
///
/// ```
/// use portcullis::{fs::check_name, ErrorCode};
/// assert!(check_name(b"css/site.css").is_ok());
/// assert!(check_name(b"a/../b").is_ok());
/// assert_eq!(check_name(b"a/../../b").unwrap_err().code(), "path.escape");
/// assert_eq!(check_name(b"/etc/passwd").unwrap_err().code(), "path.absolute");
/// assert_eq!(check_name(b"C:/x").unwrap_err().code(), "path.drive");
/// ```
pub fn check_name(name: &[u8]) -> Result<(), PathError> {
    check(name).map(|_| ())
}
