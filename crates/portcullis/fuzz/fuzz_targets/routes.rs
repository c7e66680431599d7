//! Fuzzes `authz::RouteRequirements` and `authz::canonical_path`: a route key and a request
//! path from arbitrary bytes (split at the first newline).
//!
//! Invariants: nothing panics; a table either compiles or fails with an `authz.` code; the
//! folded path is canonical (rooted, no empty, `.` or `..` segments, no `\`, `;` or
//! uppercase ASCII); a request needs the route's permission exactly when an independent
//! restatement of the rule says so (method matches, HEAD as GET; folded path at or beneath
//! the folded route path on a segment boundary); a skip table built from the same key skips
//! a path only if it is canonical and equal to or beneath the key on a segment boundary,
//! and a canonical path is never changed by folding beyond case and a trailing slash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::authz::{canonical_path, is_canonical_path, RouteRequirements, SkipRoutes};
use portcullis::ErrorCode;

fuzz_target!(|data: &[u8]| {
    let (route, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"/"[..]),
    };
    let (method, path) = match rest.iter().position(|b| *b == b' ') {
        Some(i) if i <= 8 => (&rest[..i], &rest[i + 1..]),
        _ => (&b"GET"[..], rest),
    };
    let Ok(route) = std::str::from_utf8(route) else {
        return;
    };
    let method = String::from_utf8_lossy(method);

    let folded = canonical_path(path);
    assert_eq!(folded.first(), Some(&b'/'));
    assert!(!folded
        .iter()
        .any(|b| matches!(b, b'\\' | b';') || b.is_ascii_uppercase()));
    if folded != b"/" {
        for segment in folded.split(|b| *b == b'/').skip(1) {
            assert!(!segment.is_empty() && segment != b"." && segment != b"..");
        }
    }

    if is_canonical_path(path) {
        let mut expected = path.to_ascii_lowercase();
        if expected.len() > 1 && expected.ends_with(b"/") {
            expected.pop();
        }
        if expected.is_empty() {
            expected.push(b'/');
        }
        assert_eq!(folded, expected, "{path:?}");
    }
    match SkipRoutes::new([route]) {
        Err(e) => assert_eq!(e.code(), "authz.bad_route"),
        Ok(skip) => {
            if skip.skips_bytes(path) {
                assert!(is_canonical_path(path));
                let prefix = route.strip_suffix('/').unwrap_or(route).as_bytes();
                assert!(
                    path.starts_with(prefix)
                        && (path.len() == prefix.len() || path.get(prefix.len()) == Some(&b'/')),
                    "{route:?} skipped {path:?}"
                );
            }
        }
    }

    match RouteRequirements::new([(route, vec!["p"])]) {
        Err(e) => assert!(e.code().starts_with("authz."), "{e}"),
        Ok(table) => {
            let needs = !table.required_bytes(&method, path).is_empty();
            let words: Vec<&str> = route.split_whitespace().collect();
            let (route_method, route_path) = match words.as_slice() {
                [path] => (None, *path),
                [m, path] => (Some(*m), *path),
                _ => panic!("compiled a route that is not one or two words: {route:?}"),
            };
            let mut prefix = canonical_path(route_path.as_bytes());
            if prefix == b"/" {
                prefix.clear();
            }
            let under = folded.starts_with(&prefix)
                && (folded.len() == prefix.len() || folded.get(prefix.len()) == Some(&b'/'));
            let method_ok = route_method.map_or(true, |m| {
                m.eq_ignore_ascii_case(&method)
                    || (m.eq_ignore_ascii_case("GET") && method.eq_ignore_ascii_case("HEAD"))
            });
            assert_eq!(needs, under && method_ok, "{route:?} {method:?} {path:?}");
        }
    }
});
