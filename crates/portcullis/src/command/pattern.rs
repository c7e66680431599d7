//! The pattern dialect of [`super::Param::pattern`]: Rust `regex` syntax, read with Ruby's
//! (Onigmo's) meaning wherever Ruby would read the same text differently, so a Ruby
//! `Regexp` and the same source in `portcullis.toml` accept exactly the same values.
//!
//! Where Ruby and the `regex` crate differ, and what this does about it:
//! - `\d \s \w \h` (and `\D \S \W \H`) are ASCII in Ruby, Unicode (or unknown: `\h`) in
//!   `regex`: they become explicit ASCII sets, which case-insensitive matching does not
//!   widen (Ruby's `/\w/i` refuses the Kelvin sign `K` and the long `ſ`).
//! - POSIX classes (`[[:alpha:]]`) are Unicode in Ruby, ASCII in `regex`: they become the
//!   Unicode properties Onigmo uses (`[[:xdigit:]]` stays ASCII, as in Ruby).
//! - An isolated option such as `a(?i)b|c` applies to the rest of its group in Ruby,
//!   alternatives included (`a(?i:b|c)`); in `regex` it does not reach back over `|`. It is
//!   rewritten as the group Ruby reads.
//! - `{` that does not start a Ruby quantifier (`x{ 3}`, `{foo}`) is a literal in Ruby;
//!   `{,n}` is `{0,n}`. `\Z` is `\z` (values never hold a newline). `\<` and `\>` are
//!   literal `<` and `>` in Ruby, word boundaries in `regex`.
//! - Whitespace and `#` inside a bracket class are characters in Ruby even with `x`; `regex`
//!   drops them. They are escaped.
//! - Refused, because the two read them differently and no rewrite is exact: possessive
//!   quantifiers (`a++`, `a*+`, `a?+`), `x{n}?` (optional in Ruby, lazy in `regex`), the
//!   class operators `--` and `~~` (characters in Ruby, set operations in `regex`), a range
//!   with a class at one end (`[a-\w]`, an error in Ruby), and `\w`/`\h` inside a negated
//!   or nested class or one with `&&` where case-insensitive matching is on.
//!
//! Kept as they are, because both read them alike: `\b` and `\B` (Unicode word boundaries
//! in both), `\p{…}`, `&&`, nested classes, `.`, anchors. Both refuse what the other lacks
//! (lookaround, backreferences, `\K`, `\R`, …), so those patterns fail when the template is
//! built. Two differences remain: Ruby folds case fully (`/ß/i` accepts `ss`) where
//! `regex` folds simply (it refuses `ss`); and the Unicode tables are of different versions
//! (Ruby 3.1 has Unicode 13.0, `regex` 15 or later), so the 40 code points whose
//! `Alphabetic` or `Lowercase` property changed since (combining letters U+0363–U+036F,
//! U+1DD3–U+1DE6, …) and characters assigned since follow the newer tables.

/// ASCII sets for Ruby's `\d`, `\s`, `\w`, `\h`, written for use inside a bracket class.
const DIGIT: &str = "0-9";
const SPACE: &str = r"\t\n\x0B\x0C\r\x20";
const WORD: &str = "0-9A-Za-z_";
const HEX: &str = "0-9A-Fa-f";

/// The set for a Perl-style class escape, whether it is negated, and whether it holds
/// letters (which case-insensitive matching would widen).
fn perl_class(c: char) -> Option<(&'static str, bool, bool)> {
    Some(match c {
        'd' => (DIGIT, false, false),
        'D' => (DIGIT, true, false),
        's' => (SPACE, false, false),
        'S' => (SPACE, true, false),
        'w' => (WORD, false, true),
        'W' => (WORD, true, true),
        'h' => (HEX, false, true),
        'H' => (HEX, true, true),
        _ => return None,
    })
}

/// A POSIX class as Onigmo reads it for UTF-8 text, written for use inside a bracket class.
fn posix_class(name: &str) -> Option<&'static str> {
    Some(match name {
        "alpha" => r"\p{Alphabetic}",
        "digit" => r"\p{Nd}",
        "alnum" => r"\p{Alphabetic}\p{Nd}",
        "upper" => r"\p{Uppercase}",
        "lower" => r"\p{Lowercase}",
        "space" => r"\p{White_Space}",
        "blank" => r"\p{Zs}\t",
        "cntrl" => r"\p{Cc}",
        "punct" => r"\p{P}\$\+<=>\^`\|\~",
        "graph" => r"[^\p{White_Space}\p{Cc}\p{Cn}]",
        "print" => r"[^\p{White_Space}\p{Cc}\p{Cn}]\p{Zs}",
        "xdigit" => HEX,
        "word" => r"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}",
        "ascii" => r"\x00-\x7F",
        _ => return None,
    })
}

/// The options in force in one group, and how many groups this translation opened in it
/// (for isolated options) that must close with it.
#[derive(Debug, Clone, Copy, Default)]
struct Frame {
    case_insensitive: bool,
    extended: bool,
    opened: usize,
}

/// Translates `pattern` into `regex` syntax with Ruby's meaning, or says why it cannot.
pub(super) fn translate(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut frames = vec![Frame::default()];
    let mut i = 0;
    while let Some(c) = at(i) {
        let frame = frames.last().copied().unwrap_or_default();
        match c {
            '\\' => i = escape(&chars, i, &mut out),
            '[' => i = class(&chars, i, frame.case_insensitive, &mut out)?,
            '{' => match quantifier(&chars, i) {
                Some((text, end, exact)) => {
                    out.push_str(&text);
                    i = end;
                    if exact && at(i) == Some('?') {
                        return Err(format!(
                            "{} is an optional repetition in Ruby and a lazy one in Rust; write (?:x{})? or x{}",
                            text, text, text
                        ));
                    }
                }
                None => {
                    out.push_str(r"\{");
                    i += 1;
                }
            },
            '}' => {
                out.push_str(r"\}");
                i += 1;
            }
            '+' | '*' | '?' => {
                out.push(c);
                i += 1;
                if at(i) == Some('+') {
                    return Err(format!(
                        "the possessive quantifier {c}+ is not supported; drop the second '+'"
                    ));
                }
            }
            '(' => {
                if at(i + 1) == Some('?') {
                    // `(?flags)` or `(?flags:`; anything else (`(?<name>`, `(?=`) is copied.
                    let mut j = i + 2;
                    while at(j).is_some_and(|f| f.is_ascii_alphabetic() || f == '-') {
                        j += 1;
                    }
                    let flags: String = chars.get(i + 2..j).unwrap_or_default().iter().collect();
                    let end = at(j);
                    if !flags.is_empty() && matches!(end, Some(')' | ':')) {
                        let mut inner = frame;
                        inner.opened = 0;
                        apply_flags(&flags, &mut inner);
                        out.push_str("(?");
                        out.push_str(&flags);
                        out.push(':');
                        i = j + 1;
                        if end == Some(')') {
                            // Isolated: to the end of the enclosing group, `|` included.
                            if let Some(top) = frames.last_mut() {
                                top.case_insensitive = inner.case_insensitive;
                                top.extended = inner.extended;
                                top.opened += 1;
                            }
                        } else {
                            frames.push(inner);
                        }
                        continue;
                    }
                }
                let mut inner = frame;
                inner.opened = 0;
                frames.push(inner);
                out.push('(');
                i += 1;
            }
            ')' => {
                if frames.len() > 1 {
                    if let Some(closed) = frames.pop() {
                        out.extend(std::iter::repeat(')').take(closed.opened));
                    }
                }
                out.push(')');
                i += 1;
            }
            '#' if frame.extended => {
                // A comment to the end of the line, in both dialects: copied untouched.
                while let Some(d) = at(i) {
                    out.push(d);
                    i += 1;
                    if d == '\n' {
                        break;
                    }
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    for frame in frames.iter().rev() {
        out.extend(std::iter::repeat(')').take(frame.opened));
    }
    Ok(out)
}

fn apply_flags(flags: &str, frame: &mut Frame) {
    let mut on = true;
    for f in flags.chars() {
        match f {
            '-' => on = false,
            'i' => frame.case_insensitive = on,
            'x' => frame.extended = on,
            _ => {}
        }
    }
}

/// An escape outside a class, at `chars[i] == '\\'`; returns the index after it.
fn escape(chars: &[char], i: usize, out: &mut String) -> usize {
    let Some(&e) = chars.get(i + 1) else {
        out.push('\\'); // a trailing backslash: regex refuses it
        return i + 1;
    };
    if let Some((set, negated, letters)) = perl_class(e) {
        // `(?-i:…)`: Ruby's `/\w/i` is still exactly [0-9A-Za-z_].
        out.push_str(if letters { "(?-i:[" } else { "[" });
        if negated {
            out.push('^');
        }
        out.push_str(set);
        out.push_str(if letters { "])" } else { "]" });
        return i + 2;
    }
    match e {
        'Z' => out.push_str(r"\z"),
        '<' | '>' => out.push(e),
        _ => return copy_escape(chars, i, out),
    }
    i + 2
}

/// Copies an escape as is, with its `{…}` for `\p{…}`, `\x{…}`, `\u{…}`.
fn copy_escape(chars: &[char], i: usize, out: &mut String) -> usize {
    let mut j = i + 2;
    out.extend(chars.get(i..j).unwrap_or_default());
    let braced =
        matches!(chars.get(i + 1), Some('p' | 'P' | 'x' | 'u' | 'U')) && chars.get(j) == Some(&'{');
    if braced {
        while let Some(&d) = chars.get(j) {
            out.push(d);
            j += 1;
            if d == '}' {
                break;
            }
        }
    }
    j
}

/// A Ruby quantifier at `chars[i] == '{'`: `{n}`, `{n,}`, `{,m}`, `{n,m}` (digits only).
/// Returns its `regex` spelling, the index after it, and whether it is `{n}`.
fn quantifier(chars: &[char], i: usize) -> Option<(String, usize, bool)> {
    let digits = |mut j: usize| {
        let start = j;
        while chars.get(j).is_some_and(char::is_ascii_digit) {
            j += 1;
        }
        (
            chars
                .get(start..j)
                .unwrap_or_default()
                .iter()
                .collect::<String>(),
            j,
        )
    };
    let (low, j) = digits(i + 1);
    let (comma, j) = if chars.get(j) == Some(&',') {
        (true, j + 1)
    } else {
        (false, j)
    };
    let (high, j) = if comma { digits(j) } else { (String::new(), j) };
    if chars.get(j) != Some(&'}') || (low.is_empty() && high.is_empty()) {
        return None;
    }
    let low = if low.is_empty() { "0".to_owned() } else { low };
    let text = if comma {
        format!("{{{low},{high}}}")
    } else {
        format!("{{{low}}}")
    };
    Some((text, j + 1, !comma))
}

/// A bracket class at `chars[start] == '['`; returns the index after its `]`.
fn class(
    chars: &[char],
    start: usize,
    case_insensitive: bool,
    out: &mut String,
) -> Result<usize, String> {
    let at = |i: usize| chars.get(i).copied();
    let mut i = start + 1;
    let negated = at(i) == Some('^');
    if negated {
        i += 1;
    }
    let mut body = String::new();
    // `\w`/`\h` sets of a plain class under case-insensitive matching, kept out of `body`
    // so that folding cannot widen them: the class becomes `(?:[body]|(?-i:[set]))`.
    let mut letter_sets: Vec<String> = Vec::new();
    let mut depth = 1usize;
    let mut intersects = false;
    let mut at_start = true; // just after `[` or `[^`: a `]` here is a character
    let mut after_dash = false; // the last token was a '-' that can make a range
    loop {
        let Some(c) = at(i) else {
            return Err("a character class is not closed; add ']'".to_owned());
        };
        let starting = at_start;
        at_start = false;
        let was_dash = std::mem::take(&mut after_dash);
        match c {
            ']' if starting => {
                body.push_str(r"\]");
                i += 1;
            }
            ']' => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    break;
                }
                body.push(']');
            }
            '[' if at(i + 1) == Some(':') => {
                let rest: String = chars.get(i + 2..).unwrap_or_default().iter().collect();
                let Some(end) = rest.find(":]") else {
                    return Err("a POSIX class is not closed; write [[:name:]]".to_owned());
                };
                let name = rest.get(..end).unwrap_or_default();
                let (negate, name) = match name.strip_prefix('^') {
                    Some(name) => (true, name),
                    None => (false, name),
                };
                let Some(set) = posix_class(name) else {
                    return Err(format!("[:{name}:] is not a POSIX class"));
                };
                body.push('[');
                if negate {
                    body.push('^');
                }
                body.push_str(set);
                body.push(']');
                i += 2 + name.chars().count() + usize::from(negate) + 2;
            }
            '[' => {
                depth += 1;
                body.push('[');
                i += 1;
                if at(i) == Some('^') {
                    body.push('^');
                    i += 1;
                }
                at_start = true;
            }
            '\\' => {
                let Some(e) = at(i + 1) else {
                    return Err("a character class is not closed; add ']'".to_owned());
                };
                let Some((set, negate, letters)) = perl_class(e) else {
                    i = copy_escape(chars, i, &mut body);
                    continue;
                };
                if was_dash || (at(i + 2) == Some('-') && !matches!(at(i + 3), Some(']') | None)) {
                    return Err(format!(
                        "a range cannot start or end at \\{e}; escape the '-' as \\-"
                    ));
                }
                if letters && case_insensitive {
                    if depth > 1 || negated {
                        return Err(format!(
                            "\\{e} inside a negated or nested class is widened by case-insensitive matching; move it out of the class, or list the characters"
                        ));
                    }
                    letter_sets.push(format!("(?-i:[{}{set}])", if negate { "^" } else { "" }));
                } else if negate {
                    body.push_str("[^");
                    body.push_str(set);
                    body.push(']');
                } else {
                    body.push_str(set);
                }
                i += 2;
            }
            '&' if at(i + 1) == Some('&') => {
                intersects |= depth == 1;
                body.push_str("&&");
                i += 2;
            }
            '-' | '~' if at(i + 1) == Some(c) => {
                return Err(format!(
                    "{c}{c} inside a class is two characters in Ruby and a set operation in Rust; escape them (\\{c}) or use &&"
                ));
            }
            '-' => {
                after_dash = !starting && at(i + 1) != Some(']');
                body.push('-');
                i += 1;
            }
            '#' => {
                body.push_str(r"\#");
                i += 1;
            }
            c if c.is_whitespace() => {
                body.push_str(&format!(r"\x{{{:X}}}", u32::from(c)));
                i += 1;
            }
            _ => {
                body.push(c);
                i += 1;
            }
        }
    }
    if letter_sets.is_empty() {
        out.push('[');
        if negated {
            out.push('^');
        }
        out.push_str(&body);
        out.push(']');
    } else {
        if intersects {
            return Err(
                "\\w or \\h in a class with && is widened by case-insensitive matching; move it out of the class, or list the characters"
                    .to_owned(),
            );
        }
        out.push_str("(?:");
        if !body.is_empty() {
            out.push('[');
            out.push_str(&body);
            out.push_str("]|");
        }
        out.push_str(&letter_sets.join("|"));
        out.push(')');
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::translate;

    #[test]
    fn rewrites() {
        for (ruby, rust) in [
            (r"\d+", "[0-9]+"),
            (r"\w", "(?-i:[0-9A-Za-z_])"),
            (r"[\w.-]", "[0-9A-Za-z_.-]"),
            (r"(?i)[\w.]", "(?i:(?:[.]|(?-i:[0-9A-Za-z_])))"),
            (r"a(?i)b|c", "a(?i:b|c)"),
            (r"(?:a(?i)b|c)d", "(?:a(?i:b|c))d"),
            (r"\d{,3}", "[0-9]{0,3}"),
            (r"x{ 3}", r"x\{ 3\}"),
            (r"[[:alpha:]]", r"[[\p{Alphabetic}]]"),
            (r"[[:^digit:]x]", r"[[^\p{Nd}]x]"),
            (r"[a b#]", r"[a\x{20}b\#]"),
            (r"\p{L}{2}", r"\p{L}{2}"),
            (r"a\Z", r"a\z"),
            (r"\<a\>", "<a>"),
            (r"[]a]", r"[\]a]"),
            (r"[\w-]", "[0-9A-Za-z_-]"),
        ] {
            assert_eq!(translate(ruby).unwrap(), rust, "{ruby}");
        }
    }

    #[test]
    fn refusals() {
        for pattern in [
            "a++",
            "a*+",
            "a?+",
            "a{2}?",
            "[a-z--c]",
            "[a~~b]",
            r"[a-\w]",
            r"[\w-z]",
            r"(?i)[^\w]",
            r"(?i)[a[\w]]",
            r"(?i)[\w&&[^_]]",
            "[abc",
            "[[:alpha:",
            "[[:letter:]]",
        ] {
            assert!(translate(pattern).is_err(), "{pattern}");
        }
        assert!(translate(r"[^\w]").is_ok());
        assert!(translate(r"(?i)[^\d]").is_ok());
        assert!(translate(r"a{2,3}?").is_ok());
    }
}
