//! When does Ruby run `/bin/sh`? Exactly Ruby's rule (`rb_exec_fillarg` in `process.c`),
//! so the guard refuses what would reach a shell and nothing else.
//!
//! A command given as one string goes to `/bin/sh -c` when, scanning up to the first NUL:
//! - any byte is one of ``*?{}[]<>()~&|\$;'`"`` or a newline or `#`; or
//! - an `=` appears in the first word before any `/` (`NAME=value cmd`); or
//! - the first word is a POSIX reserved word or special built-in (`if`, `exec`, `.`, …).
//!
//! Otherwise Ruby splits the string on spaces and tabs and execs the words directly.

use std::fmt;

/// The POSIX reserved words and special built-ins Ruby hands to the shell
/// (`posix_sh_cmds` in `process.c`), sorted as Ruby's `bsearch` needs.
const POSIX_SH_CMDS: [&str; 29] = [
    "!", ".", ":", "break", "case", "continue", "do", "done", "elif", "else", "esac", "eval",
    "exec", "exit", "export", "fi", "for", "if", "in", "readonly", "return", "set", "shift",
    "then", "times", "trap", "unset", "until", "while",
];

/// The bytes that make Ruby use the shell (`strchr("*?{}[]<>()~&|\\$;'`\"\n#", c)`).
const META: &[u8] = b"*?{}[]<>()~&|\\$;'`\"\n#";

/// Why a command string would run through `/bin/sh`.
///
/// ```
/// use portcullis::guard::{shell_reason, ShellReason};
/// assert_eq!(shell_reason("bin/rails db:migrate"), None);
/// assert_eq!(shell_reason("convert a.png b.jpg; rm -rf /"), Some(ShellReason::Metacharacter(';')));
/// assert_eq!(shell_reason("FOO=1 env"), Some(ShellReason::Assignment));
/// assert_eq!(shell_reason("exec ls"), Some(ShellReason::ReservedWord("exec".into())));
/// assert_eq!(shell_reason("/usr/bin/env FOO=1"), None); // '=' after a '/' in the first word
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShellReason {
    /// A shell metacharacter (glob, redirection, quoting, substitution, list, comment).
    Metacharacter(char),
    /// An `=` in the first word before any `/`: a variable assignment.
    Assignment,
    /// The first word is a POSIX reserved word or special built-in.
    ReservedWord(String),
}

impl fmt::Display for ShellReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Metacharacter(c) => write!(f, "it contains the shell metacharacter {c:?}"),
            Self::Assignment => f.write_str("its first word is a variable assignment (NAME=...)"),
            Self::ReservedWord(w) => {
                write!(
                    f,
                    "its first word {w:?} is a shell reserved word or built-in"
                )
            }
        }
    }
}

/// `Some(reason)` when Ruby would run `command` (a single command string) through
/// `/bin/sh`; `None` when Ruby splits it on blanks and execs it directly.
pub fn shell_reason(command: &str) -> Option<ShellReason> {
    shell_reason_bytes(command.as_bytes())
}

/// [`shell_reason`] over raw bytes (Ruby strings need not be UTF-8).
pub fn shell_reason_bytes(command: &[u8]) -> Option<ShellReason> {
    // A string of nothing but spaces, tabs and newlines is exec'd directly (and fails
    // with ENOENT), newline or not: measured on Ruby 3.1 and 3.3.
    let text = command.split(|&b| b == 0).next().unwrap_or_default();
    if text.iter().all(|&b| matches!(b, b' ' | b'\t' | b'\n')) {
        return None;
    }
    // first_start: index of the first non-blank byte; first_len: None while inside the
    // first word, Some(n) once it ended (Ruby sets 0x100 on a '/' to stop the '=' check
    // and to make the word longer than any reserved word).
    let mut first_start: Option<usize> = None;
    let mut first_len: Option<usize> = None;
    let mut end = command.len();
    for (i, &b) in command.iter().enumerate() {
        if b == 0 {
            end = i;
            break;
        }
        if b == b' ' || b == b'\t' {
            if let (Some(start), None) = (first_start, first_len) {
                first_len = Some(i - start);
            }
        } else if first_start.is_none() {
            first_start = Some(i);
        }
        if META.contains(&b) {
            return Some(ShellReason::Metacharacter(char::from(b)));
        }
        if first_len.is_none() {
            if b == b'=' {
                return Some(ShellReason::Assignment);
            }
            if b == b'/' {
                first_len = Some(0x100);
            }
        }
    }
    let start = first_start?;
    let len = first_len.unwrap_or(end - start);
    let word = command.get(start..start + len.min(end - start))?;
    if len <= 9 {
        if let Some(w) = POSIX_SH_CMDS.iter().find(|w| w.as_bytes() == word) {
            return Some(ShellReason::ReservedWord((*w).to_owned()));
        }
    }
    None
}

/// The words Ruby execs for a command string that needs no shell: split on spaces and
/// tabs, up to the first NUL.
///
/// ```
/// assert_eq!(portcullis::guard::split_words(b"  ls\t-l  /tmp "), vec![&b"ls"[..], b"-l", b"/tmp"]);
/// ```
pub fn split_words(command: &[u8]) -> Vec<&[u8]> {
    let end = command
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(command.len());
    command
        .get(..end)
        .unwrap_or_default()
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|w| !w.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metacharacter_needs_the_shell() {
        for &m in META {
            let cmd = format!("echo a{}b", char::from(m));
            assert_eq!(
                shell_reason(&cmd),
                Some(ShellReason::Metacharacter(char::from(m))),
                "{cmd:?}"
            );
        }
    }

    #[test]
    fn reserved_words_only_as_the_whole_first_word() {
        for w in POSIX_SH_CMDS {
            assert!(shell_reason(&format!("{w} x")).is_some(), "{w}");
            assert!(shell_reason(&format!("  {w}")).is_some(), "{w}");
            assert_eq!(shell_reason(&format!("{w}x y")), None, "{w}x");
            assert_eq!(shell_reason(&format!("x {w}")), None, "x {w}");
        }
        assert_eq!(shell_reason("/bin/exec"), None);
    }

    #[test]
    fn assignment_rule_follows_ruby() {
        assert_eq!(shell_reason("A=1"), Some(ShellReason::Assignment));
        assert_eq!(shell_reason("  A=1 ls"), Some(ShellReason::Assignment));
        assert_eq!(shell_reason("ls A=1"), None);
        assert_eq!(shell_reason("./a=b"), None);
        assert_eq!(shell_reason("a/b=c"), None);
    }

    #[test]
    fn blank_strings_with_newlines_are_execd_directly() {
        for blank in ["\n", " \n", "\n\t ", "\n \n", "\n\n"] {
            assert_eq!(shell_reason(blank), None, "{blank:?}");
        }
        // any other byte next to the newline makes it a metacharacter again
        for shell in [" \r\n", "\x0b\n", "\x0c\n", "\nzq", "zq\n"] {
            assert!(shell_reason(shell).is_some(), "{shell:?}");
        }
    }

    #[test]
    fn plain_commands_and_blank_strings_need_no_shell() {
        for cmd in [
            "bin/rails db:migrate",
            "ls -l",
            "",
            "   ",
            "git log --oneline -n 5",
            "a,b+c@d%e!f",
        ] {
            assert_eq!(shell_reason(cmd), None, "{cmd:?}");
        }
        // '!' alone is a reserved word, inside a word it is not.
        assert!(shell_reason("! ls").is_some());
    }

    #[test]
    fn scan_stops_at_nul() {
        assert_eq!(shell_reason_bytes(b"ls\0;rm"), None);
        assert_eq!(split_words(b"ls -l\0 x"), vec![&b"ls"[..], b"-l"]);
    }
}
