//! Typed parameters: what a request may put into one placeholder.

use std::borrow::Cow;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use regex::Regex;

use super::{shown, CommandError};
use crate::fs::SafeRoot;

/// The default cap on a value's length, in bytes.
pub const DEFAULT_MAX_LEN: usize = 4096;

/// The type of one placeholder: which request values it accepts and which argument each
/// becomes.
///
/// Whatever the type, a value is refused when it contains NUL, CR or LF
/// (`command.control_char`), is longer than [`Param::max_len`] bytes (`command.too_long`),
/// or starts with `-` (`command.option_injection`) unless [`Param::allow_leading_dash`] was
/// called. The same checks apply to the argument a `one_of` value maps to.
///
/// ```
/// use portcullis::command::Param;
///
/// let image = Param::one_of([("worker", "worker:latest")]);
/// let branch = Param::pattern("[a-z0-9][a-z0-9._/-]*")?;
/// let count = Param::integer(1..=10);
/// let message = Param::literal().max_len(200);
/// let offset = Param::integer(-100..=100).allow_leading_dash();
/// # Ok::<(), portcullis::command::CommandError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Param {
    pub(super) kind: Kind,
    pub(super) allow_leading_dash: bool,
    pub(super) max_len: usize,
}

#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// Request value -> argument actually used, in the order given.
    OneOf(Vec<(String, String)>),
    /// Anchored to the whole value.
    Pattern { source: String, regex: Regex },
    /// Inclusive range; the argument is the canonical decimal form.
    Integer { min: i64, max: i64 },
    /// Any text, taken as is (only the universal checks apply).
    Literal,
    /// A name beneath a root; the argument is the absolute path it resolves to.
    Path(Arc<SafeRoot>),
}

impl Param {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            allow_leading_dash: false,
            max_len: DEFAULT_MAX_LEN,
        }
    }

    /// Accepts exactly the keys of `choices`, and passes the value each maps to (the
    /// argument actually used) — a request can only pick, never spell, the argument.
    ///
    /// ```
    /// use portcullis::command::Param;
    /// let image = Param::one_of([("worker", "worker:latest"), ("api", "api:stable")]);
    /// ```
    pub fn one_of<I, K, V>(choices: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self::new(Kind::OneOf(
            choices
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }

    /// Accepts exactly the given values, passed through unchanged.
    ///
    /// ```
    /// use portcullis::command::Param;
    /// let format = Param::one_of_values(["json", "text"]);
    /// ```
    pub fn one_of_values<I, V>(choices: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        Self::new(Kind::OneOf(
            choices
                .into_iter()
                .map(|v| {
                    let v = v.into();
                    (v.clone(), v)
                })
                .collect(),
        ))
    }

    /// Accepts values that match the regular expression as a whole: the pattern is
    /// anchored as `^(?:pattern)$`, so `[a-z]+` does not accept `ab;id`.
    ///
    /// The syntax is the Rust `regex` crate's, read with Ruby's meaning where Ruby would
    /// read the same text differently, so a Ruby `Regexp` and the same source in
    /// `portcullis.toml` accept the same values: `\d`, `\s`, `\w` and `\h` are ASCII
    /// (also case-insensitively: `(?i)\w` refuses the Kelvin sign), POSIX classes such
    /// as `[[:alpha:]]` are Unicode, `a(?i)b|c` means `a(?i:b|c)`, `{` that starts no
    /// quantifier is a character. Constructs the two read differently with no exact
    /// rewrite (possessive `a++`, `x{2}?`, `--`/`~~` in a class, …) are refused.
    ///
    /// ```
    /// use portcullis::command::Param;
    /// let name = Param::pattern("[a-z]+")?;
    /// assert!(Param::pattern("(unclosed").is_err());
    /// let digits = Param::pattern(r"\A\d+\z")?;
    /// # Ok::<(), portcullis::command::CommandError>(())
    /// ```
    ///
    /// # Errors
    /// `command.bad_template` when the pattern does not compile or uses a construct that
    /// Ruby and Rust read differently.
    pub fn pattern(pattern: &str) -> Result<Self, CommandError> {
        let translated = super::pattern::translate(pattern).map_err(|reason| {
            CommandError::bad_template(format!("pattern {pattern:?} is refused: {reason}"))
        })?;
        let regex = Regex::new(&format!("^(?:{translated})$")).map_err(|e| {
            CommandError::bad_template(format!("pattern {pattern:?} does not compile: {e}"))
        })?;
        Ok(Self::new(Kind::Pattern {
            source: pattern.to_owned(),
            regex,
        }))
    }

    /// Accepts decimal integers (ASCII digits, optionally a leading `-`) within `range`,
    /// and passes their canonical form (`007` becomes `7`). Negative values start with `-`,
    /// so they also need [`Param::allow_leading_dash`].
    ///
    /// ```
    /// use portcullis::command::Param;
    /// let replicas = Param::integer(1..=10);
    /// let nice = Param::integer(-20..20).allow_leading_dash();
    /// ```
    pub fn integer(range: impl RangeBounds<i64>) -> Self {
        let min = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n.saturating_add(1),
            Bound::Unbounded => i64::MIN,
        };
        let max = match range.end_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n.saturating_sub(1),
            Bound::Unbounded => i64::MAX,
        };
        Self::new(Kind::Integer { min, max })
    }

    /// Accepts any text and passes it as is, as one argv element (no shell, so `;`, `|`,
    /// `$(…)` and quotes are just characters). Only the universal checks apply.
    ///
    /// ```
    /// use portcullis::command::Param;
    /// let commit_message = Param::literal().max_len(500);
    /// ```
    pub fn literal() -> Self {
        Self::new(Kind::Literal)
    }

    /// Accepts a name beneath `root` (relative, no `..` escape, no symlink out of the root,
    /// existing on disk: everything [`SafeRoot::resolve_for_argv`] checks) and passes the
    /// absolute path it resolves to, so the program never sees the request's spelling.
    /// Refusals by the root come as `command.path`, with the [`crate::fs::PathError`] as
    /// the source. The length cap applies to the name as given.
    ///
    /// The program opens the path later: use roots that untrusted parties cannot write to
    /// (see [`SafeRoot::resolve_for_argv`]).
    ///
    /// ```
    /// use portcullis::command::{CommandTemplate, Param};
    /// use portcullis::fs::SafeRoot;
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("report.txt"), b"ok").unwrap();
    /// let cat = CommandTemplate::builder("/bin/cat")
    ///     .end_of_options()
    ///     .placeholder("file")
    ///     .param("file", Param::path(SafeRoot::new(dir.path()).unwrap()))
    ///     .build()?;
    /// assert_eq!(cat.run([("file", "report.txt")])?.stdout, b"ok");
    /// assert!(cat.argv([("file", "../../etc/passwd")]).is_err());
    /// # Ok::<(), portcullis::command::CommandError>(())
    /// ```
    pub fn path(root: impl Into<Arc<SafeRoot>>) -> Self {
        Self::new(Kind::Path(root.into()))
    }

    /// Lets values (and `one_of` targets) start with `-`. Use it only where the program
    /// cannot take the value as an option: after a `--` the program honours, or for a
    /// negative number after a prefix such as `--offset=`.
    ///
    /// ```
    /// use portcullis::command::Param;
    /// let delta = Param::integer(-5..=5).allow_leading_dash();
    /// ```
    #[must_use]
    pub fn allow_leading_dash(mut self) -> Self {
        self.allow_leading_dash = true;
        self
    }

    /// Sets the cap on a value's length in bytes (default [`DEFAULT_MAX_LEN`]).
    ///
    /// ```
    /// use portcullis::command::Param;
    /// let tag = Param::pattern("[a-z0-9.]+")?.max_len(64);
    /// # Ok::<(), portcullis::command::CommandError>(())
    /// ```
    #[must_use]
    pub fn max_len(mut self, bytes: usize) -> Self {
        self.max_len = bytes;
        self
    }

    /// Checks the template author's own configuration (run once, when the template is built).
    pub(super) fn check_definition(&self, name: &str) -> Result<(), CommandError> {
        match &self.kind {
            Kind::OneOf(choices) => {
                if choices.is_empty() {
                    return Err(CommandError::bad_template(format!(
                        "parameter {name:?}: one_of has no choices"
                    )));
                }
                for (i, (key, target)) in choices.iter().enumerate() {
                    if choices.iter().take(i).any(|(k, _)| k == key) {
                        return Err(CommandError::bad_template(format!(
                            "parameter {name:?}: one_of lists {key:?} twice"
                        )));
                    }
                    for (what, text) in [("choice", key), ("target", target)] {
                        if let Err(e) = self.universal_checks(name, text) {
                            return Err(CommandError::bad_template(format!(
                                "parameter {name:?}: one_of {what} {} is unusable: {e}",
                                shown(text)
                            )));
                        }
                    }
                }
            }
            Kind::Integer { min, max } if min > max => {
                return Err(CommandError::bad_template(format!(
                    "parameter {name:?}: integer range {min}..={max} is empty"
                )));
            }
            _ => {}
        }
        Ok(())
    }

    /// NUL/CR/LF, length cap, leading dash.
    fn universal_checks(&self, name: &str, value: &str) -> Result<(), CommandError> {
        if value.bytes().any(|b| matches!(b, b'\0' | b'\r' | b'\n')) {
            return Err(CommandError::ControlChar {
                name: name.to_owned(),
            });
        }
        if value.len() > self.max_len {
            return Err(CommandError::TooLong {
                name: name.to_owned(),
                len: value.len(),
                max: self.max_len,
            });
        }
        if value.starts_with('-') && !self.allow_leading_dash {
            return Err(CommandError::OptionInjection {
                name: name.to_owned(),
                value: shown(value),
            });
        }
        Ok(())
    }

    /// Validates a request value and returns the argument it becomes.
    pub(super) fn apply<'a>(
        &'a self,
        name: &str,
        raw: &'a str,
    ) -> Result<Cow<'a, str>, CommandError> {
        self.universal_checks(name, raw)?;
        let invalid = |expected: String| CommandError::InvalidValue {
            name: name.to_owned(),
            value: shown(raw),
            expected,
        };
        let argument: Cow<'a, str> = match &self.kind {
            Kind::OneOf(choices) => match choices.iter().find(|(k, _)| k == raw) {
                Some((_, target)) => Cow::Borrowed(target.as_str()),
                None => return Err(invalid(describe_choices(choices))),
            },
            Kind::Pattern { source, regex } => {
                if !regex.is_match(raw) {
                    return Err(invalid(format!("a value matching the pattern {source:?}")));
                }
                Cow::Borrowed(raw)
            }
            Kind::Integer { min, max } => match parse_decimal(raw) {
                Some(n) if (*min..=*max).contains(&n) => Cow::Owned(n.to_string()),
                _ => return Err(invalid(format!("an integer from {min} to {max}"))),
            },
            Kind::Literal => Cow::Borrowed(raw),
            Kind::Path(root) => {
                let resolved = root
                    .resolve_for_argv(raw)
                    .map_err(|source| CommandError::Path {
                        name: name.to_owned(),
                        source,
                    })?;
                match resolved.into_os_string().into_string() {
                    Ok(path) => Cow::Owned(path),
                    Err(_) => {
                        return Err(invalid("a name that resolves to a UTF-8 path".to_owned()))
                    }
                }
            }
        };
        // The argument actually used gets the same checks as the raw value: a mapping or
        // canonical form must never smuggle in what the raw value could not. (A resolved
        // path is absolute and carries the root's length; only the name was capped.)
        if argument != raw {
            if matches!(self.kind, Kind::Path(_)) {
                if argument.bytes().any(|b| matches!(b, b'\0' | b'\r' | b'\n')) {
                    return Err(CommandError::ControlChar {
                        name: name.to_owned(),
                    });
                }
            } else {
                self.universal_checks(name, &argument)?;
            }
        }
        Ok(argument)
    }
}

/// `-?[0-9]+` only: no `+`, no spaces, no `0x`, no `_`.
fn parse_decimal(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn describe_choices(choices: &[(String, String)]) -> String {
    const SHOWN: usize = 8;
    let mut list: Vec<String> = choices
        .iter()
        .take(SHOWN)
        .map(|(k, _)| format!("{k:?}"))
        .collect();
    if choices.len() > SHOWN {
        list.push("…".to_owned());
    }
    format!("one of {}", list.join(", "))
}
