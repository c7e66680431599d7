//! Fuzzes `authz::RouteRequirements` and `authz::canonical_path`: a route key, a request
//! method and path, and method-override values from arbitrary bytes
//! (`route \n METHOD path [\n value,value,...]`).
//!
//! Invariants: nothing panics; a table either compiles or fails with an `authz.` code; the
//! folded path is canonical (rooted, no empty, `.` or `..` segments, no `\`, `;` or
//! uppercase ASCII); a request needs the route's permission exactly when an independent
//! restatement of the rule says so (method matches, HEAD as GET, or the method is POST and
//! an override value upcases to the route's method, or the override is unknown; folded path
//! at or beneath the folded route path on a segment boundary, or its last segment with a
//! `.format` suffix); a method that is not an RFC 9110 token is `authz.bad_method`; an
//! override only ever adds permissions, and an unknown one adds at least as many; a skip
//! table built from the same key skips a path only if it is canonical and equal to or
//! beneath the key on a segment boundary (no format suffix), and a canonical path is never
//! changed by folding beyond case and a trailing slash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::authz::{
    canonical_path, is_canonical_path, MethodOverride, RouteRequirements, SkipRoutes,
};
use portcullis::ErrorCode;

fuzz_target!(|data: &[u8]| {
    let (route, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"/"[..]),
    };
    let (rest, overrides) = match rest.iter().position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let values: Vec<&[u8]> = overrides
        .map(|o| o.split(|b| *b == b',').collect())
        .unwrap_or_default();
    let (method_bytes, path) = match rest.iter().position(|b| *b == b' ') {
        Some(i) if i <= 8 => (&rest[..i], &rest[i + 1..]),
        _ => (&b"GET"[..], rest),
    };
    let method = String::from_utf8_lossy(method_bytes);
    let Ok(route) = std::str::from_utf8(route) else {
        return;
    };

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
                // The format-suffix rule of `require:` never widens a skip.
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
            let token = !method_bytes.is_empty()
                && method_bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b));
            let none = table.required_for(method_bytes, path, MethodOverride::None);
            let given = table.required_for(method_bytes, path, MethodOverride::Values(&values));
            let unknown = table.required_for(method_bytes, path, MethodOverride::Unknown);
            if !token {
                for verdict in [&none, &given, &unknown] {
                    let e = verdict.as_ref().expect_err("a non-token method was judged");
                    assert_eq!(e.code(), "authz.bad_method");
                }
                return;
            }
            let (none, given, unknown) = (none.unwrap(), given.unwrap(), unknown.unwrap());
            assert!(none.iter().all(|p| given.contains(p)), "{given:?} dropped {none:?}");
            assert!(given.iter().all(|p| unknown.contains(p)), "{unknown:?} dropped {given:?}");
            let needs = !table.required_bytes(&method, path).is_empty();
            assert_eq!(needs, !none.is_empty());
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
            // At or beneath the prefix, or its last segment with a `.format` suffix.
            let under = folded.starts_with(&prefix)
                && matches!(folded.get(prefix.len()), None | Some(b'/' | b'.'));
            let matches_method = |m: &str, method: &str| {
                m.eq_ignore_ascii_case(method)
                    || (m.eq_ignore_ascii_case("GET") && method.eq_ignore_ascii_case("HEAD"))
            };
            let method_ok = route_method.map_or(true, |m| matches_method(m, &method));
            assert_eq!(needs, under && method_ok, "{route:?} {method:?} {path:?}");
            let post = method.eq_ignore_ascii_case("POST");
            let override_ok = route_method.map_or(true, |m| {
                values.iter().any(|v| {
                    std::str::from_utf8(v).is_ok_and(|v| matches_method(m, &v.to_uppercase()))
                })
            });
            assert_eq!(
                !given.is_empty(),
                under && (method_ok || (post && override_ok)),
                "{route:?} {method:?} {path:?} {values:?}"
            );
            assert_eq!(!unknown.is_empty(), under && (method_ok || post));
        }
    }
});
