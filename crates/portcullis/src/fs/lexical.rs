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
    /// The last raw component, if it is an ordinary name (not `.`/`..`, no trailing `/`).
    pub(crate) last_normal: Option<&'a str>,
    /// Whether any component is `..` (the resolver must then scope the whole walk).
    pub(crate) climbs: bool,
}

impl<'a> CheckedName<'a> {
    /// The name with `.`, empty components and `..` folded away, lexically. Used only for
    /// display paths (`join`), never to open anything. The check guaranteed that no `..`
    /// climbs above the root, so folding never runs out of components.
    pub(crate) fn normalized(&self) -> Vec<&'a str> {
        let mut out: Vec<&str> = Vec::new();
        for component in self.text.split('/') {
            match component {
                "" | "." => {}
                ".." => {
                    out.pop();
                }
                other => out.push(other),
            }
        }
        out
    }
}

/// Checks `name` lexically and returns it split for the resolver.
///
/// One pass over the bytes and no allocation on success: this runs before every open.
pub(crate) fn check(name: &[u8]) -> Result<CheckedName<'_>, PathError> {
    if name.is_empty() {
        return Err(PathError::Empty);
    }
    let shown = || display_name(name);
    if name.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong { name: shown() });
    }
    let (mut nul, mut control, mut backslash) = (false, false, false);
    for &b in name {
        if b < 0x20 || b == 0x7f {
            nul |= b == 0;
            control = true;
        } else if b == b'\\' {
            backslash = true;
        }
    }
    // NUL first: it is a control byte too, and the more specific code.
    if nul {
        return Err(PathError::Nul { name: shown() });
    }
    if control {
        return Err(PathError::Control { name: shown() });
    }
    let text = std::str::from_utf8(name).map_err(|_| PathError::NotUtf8 { name: shown() })?;
    // UNC (`//server/share`, `\\server\share`) and drive letters (`C:`, `c:\`) before the
    // generic backslash/absolute checks, so the code says what the input was trying.
    if name.starts_with(b"//") || name.starts_with(b"\\\\") || has_drive_letter(name) {
        return Err(PathError::Drive { name: shown() });
    }
    if backslash {
        return Err(PathError::Backslash { name: shown() });
    }
    if name.first() == Some(&b'/') {
        return Err(PathError::Absolute { name: shown() });
    }
    // Depth below the root after each component; `..` at depth 0 climbs out.
    let mut depth = 0usize;
    let mut climbs = false;
    let mut last = "";
    for component in text.split('/') {
        if component.len() > MAX_COMPONENT_BYTES {
            return Err(PathError::TooLong { name: shown() });
        }
        match component {
            "" | "." => {}
            ".." => {
                climbs = true;
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| PathError::Escape { name: shown() })?;
            }
            _ => depth += 1,
        }
        last = component;
    }
    let last_normal = match last {
        "" | "." | ".." => None,
        other => Some(other),
    };
    Ok(CheckedName {
        text,
        last_normal,
        climbs,
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

#[cfg(test)]
mod tests {
    use super::check;

    /// `climbs` decides whether the resolver may skip RESOLVE_BENEATH, so only an exact
    /// `..` component may clear it.
    #[test]
    fn climbs_is_set_by_every_dotdot_component_and_nothing_else() {
        for name in ["a/../b", "a/..", "./a/../b", "a//../b", "a/b/../../c"] {
            assert!(check(name.as_bytes()).unwrap().climbs, "{name}");
        }
        for name in [
            "a/b", "a/..b/c", "a/b../c", "...", "a/.../b", ".a/b", "./a/./b/",
        ] {
            assert!(!check(name.as_bytes()).unwrap().climbs, "{name}");
        }
    }

    #[test]
    fn normalized_folds_dots_for_display() {
        let checked = check(b"a/./b//../c/").unwrap();
        assert_eq!(checked.normalized(), vec!["a", "c"]);
        assert_eq!(checked.last_normal, None);
        assert_eq!(check(b"x/y.txt").unwrap().last_normal, Some("y.txt"));
    }
}
