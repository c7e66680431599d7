//! Strict checks on the raw URL text, before the WHATWG parser repairs it.
//!
//! The parser is right by the standard, but the input may also be read by a logger, a
//! proxy or another library with a different parser; refusing the ambiguous spellings
//! means every reader agrees on the host.

use super::{shorten, EgressError};

/// Longest URL accepted; longer input is refused before parsing.
pub(crate) const MAX_URL_LEN: usize = 8192;

/// Schemes whose authority the WHATWG parser finds after any number of slashes.
const SPECIAL_SCHEMES: [&str; 6] = ["http", "https", "ws", "wss", "ftp", "file"];

/// Characters that IDNA maps to `.` most often used to hide a host (UTS 46 full stops);
/// any other non-ASCII character is tested by asking the IDNA mapping directly.
const NON_ASCII_DOTS: [char; 3] = ['\u{3002}', '\u{FF0E}', '\u{FF61}'];

/// Runs every strict check on `input` (an absolute URL or a redirect `Location`).
pub(crate) fn strict_checks(input: &str) -> Result<(), EgressError> {
    // Fast path: printable ASCII needs no per-char Unicode classification.
    let suspicious = input
        .bytes()
        .position(|b| b <= b' ' || b >= 0x7f)
        .unwrap_or(input.len());
    if let Some((position, character)) = input
        .get(suspicious..)
        .unwrap_or_default()
        .char_indices()
        .map(|(i, c)| (i + suspicious, c))
        .find(|(_, c)| c.is_control() || c.is_whitespace())
    {
        return Err(EgressError::ControlChar {
            character,
            position,
        });
    }
    let before_query = input.split(['?', '#']).next().unwrap_or_default();
    if before_query.contains('\\') {
        return Err(EgressError::Backslash {
            input: shorten(input),
        });
    }
    let Some(authority) = raw_authority(before_query) else {
        return Ok(());
    };
    if authority.contains('@') {
        return Err(EgressError::Userinfo {
            input: shorten(input),
        });
    }
    let host = raw_host(authority);
    if host.contains('%') {
        return Err(EgressError::EncodedHost {
            host: shorten(host),
            reason: "percent-encoded".to_owned(),
        });
    }
    if host.chars().any(|c| !c.is_ascii() && maps_to_dot(c)) {
        return Err(EgressError::EncodedHost {
            host: shorten(host),
            reason: "non-ASCII full stop, which IDNA maps to '.'".to_owned(),
        });
    }
    Ok(())
}

fn maps_to_dot(c: char) -> bool {
    if NON_ASCII_DOTS.contains(&c) {
        return true;
    }
    let probe = format!("a{c}b");
    matches!(url::Host::parse(&probe), Ok(url::Host::Domain(d)) if d.contains('.'))
}

/// The authority part of a raw absolute or scheme-relative reference (no query or
/// fragment in `before_query`), or `None` when it has none (a relative path).
fn raw_authority(before_query: &str) -> Option<&str> {
    let rest = match scheme_end(before_query) {
        Some(colon) => {
            let scheme = before_query.get(..colon).unwrap_or_default();
            if !SPECIAL_SCHEMES
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme))
            {
                // Not a scheme the policy can allow; the scheme check reports it.
                return None;
            }
            // WHATWG skips any number of slashes after a special scheme.
            before_query
                .get(colon + 1..)
                .unwrap_or_default()
                .trim_start_matches('/')
        }
        None if before_query.starts_with("//") => before_query.trim_start_matches('/'),
        None => return None,
    };
    Some(rest.split('/').next().unwrap_or_default())
}

/// Byte index of the ':' ending a syntactically valid scheme, if the input starts with one.
fn scheme_end(s: &str) -> Option<usize> {
    let colon = s.find(':')?;
    let scheme = s.get(..colon)?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    if first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        Some(colon)
    } else {
        None
    }
}

/// The host of a raw authority without userinfo: the bracketed part, or everything
/// before the last ':'.
fn raw_host(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split(']').next().unwrap_or(authority);
    }
    match authority.rfind(':') {
        Some(colon) => authority.get(..colon).unwrap_or(authority),
        None => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_extraction() {
        assert_eq!(
            raw_authority("https://a.example:8443/x"),
            Some("a.example:8443")
        );
        assert_eq!(raw_authority("https:a.example/x"), Some("a.example"));
        assert_eq!(raw_authority("HTTP:////a.example"), Some("a.example"));
        assert_eq!(raw_authority("//a.example/x"), Some("a.example"));
        assert_eq!(raw_authority("/x/y"), None);
        assert_eq!(raw_authority("x/y"), None);
        assert_eq!(raw_authority("mailto:a@b"), None);
        assert_eq!(raw_host("[::1]:80"), "[::1");
        assert_eq!(raw_host("a.example:80"), "a.example");
    }
}
