//! Which permissions a request needs, by method and path: the table behind the Rack
//! middleware's `require:` and `[rack] require` in `portcullis.toml`.
//!
//! Over-matching is the safe direction here (it only ever asks for *more* permissions), so
//! request paths are normalized the generous way a router might read them before they are
//! compared: percent-escapes decoded once, `\` read as `/`, `;parameters` dropped, empty
//! and `.` segments removed, `..` resolved, ASCII case folded. `//admin`, `/%61dmin`,
//! `/x/../admin`, `/admin;x` and `/ADMIN` all need what `/admin` needs. The last segment of
//! an entry also covers itself with any `.suffix`, because Rails routes `/admin(.:format)`:
//! `/admin.json` and `/admin.anything` need what `/admin` needs, and `/users/7.json` what
//! `/users/7` needs. Every matching entry applies, not only the longest. A `POST` may also
//! need what the method it overrides to needs ([`MethodOverride`]).
//!
//! ```
//! use portcullis::authz::RouteRequirements;
//!
//! let routes = RouteRequirements::new([
//!     ("/admin", vec!["admin"]),
//!     ("POST /deploy", vec!["containers:deploy"]),
//! ])?;
//! assert_eq!(routes.required("GET", "/admin/users"), ["admin"]);
//! assert_eq!(routes.required("GET", "/x/../%61DMIN"), ["admin"]);
//! assert!(routes.required("GET", "/administrator").is_empty());
//! assert!(routes.required("GET", "/deploy").is_empty());
//! assert_eq!(routes.required("post", "//deploy/"), ["containers:deploy"]);
//! assert_eq!(routes.required("GET", "/admin.json"), ["admin"]);
//! # Ok::<(), portcullis::authz::AuthzError>(())
//! ```

use super::{valid_permission, AuthzError};

/// Longest route key accepted (`"VERB /path"`).
const MAX_ROUTE_LEN: usize = 2048;

/// One `require:` entry, compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Route {
    /// Uppercase method; `None` for any method.
    method: Option<String>,
    /// Canonical path prefix without a trailing slash; empty for `/` (every path).
    prefix: Vec<u8>,
    permissions: Vec<String>,
}

/// A compiled `require:` table. Immutable and cheap to share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteRequirements {
    routes: Vec<Route>,
}

impl RouteRequirements {
    /// Compiles `(route, permissions)` pairs. A route is `"/path"` (any method) or
    /// `"VERB /path"`; its path is normalized like request paths are. Each route needs at
    /// least one valid permission name.
    ///
    /// Errors: `authz.bad_route` for a malformed route or an empty permission list,
    /// `authz.bad_permission` for a malformed permission name.
    pub fn new<K, P, I>(entries: I) -> Result<Self, AuthzError>
    where
        I: IntoIterator<Item = (K, Vec<P>)>,
        K: AsRef<str>,
        P: AsRef<str>,
    {
        let mut routes = Vec::new();
        for (index, (key, permissions)) in entries.into_iter().enumerate() {
            routes.push(compile(index, key.as_ref(), &permissions)?);
        }
        Ok(Self { routes })
    }

    /// Whether the table has no entry (every request needs nothing).
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The permissions a `method` request for `path` needs: every matching entry's, in
    /// table order, without repeats. `path` is what the framework received (SCRIPT_NAME
    /// plus PATH_INFO, still escaped); a `HEAD` request needs what `GET` needs.
    pub fn required(&self, method: &str, path: &str) -> Vec<&str> {
        self.required_bytes(method, path.as_bytes())
    }

    /// [`RouteRequirements::required`] for a path that need not be UTF-8.
    pub fn required_bytes(&self, method: &str, path: &[u8]) -> Vec<&str> {
        self.collect(method.as_bytes(), path, MethodOverride::None)
    }

    /// The permissions a request needs, for raw server input (Rack's `REQUEST_METHOD` and
    /// `SCRIPT_NAME` + `PATH_INFO`, any bytes), when a method-override layer may sit in
    /// front of the app: a `POST` needs what it needs as `POST` *and* what it needs as each
    /// method `method_override` names (see [`MethodOverride`]). Other methods are never
    /// overridden (Rack::MethodOverride only rewrites `POST`).
    ///
    /// Errors: `authz.bad_method` when `method` is not an HTTP token (RFC 9110 §9): such a
    /// request cannot be judged and deserves a 400.
    ///
    /// ```
    /// use portcullis::authz::{MethodOverride, RouteRequirements};
    /// let routes = RouteRequirements::new([("DELETE /users", vec!["users:delete"])])?;
    /// let form: &[&[u8]] = &[b"delete"]; // `_method=delete` in the form body
    /// assert_eq!(routes.required_for(b"POST", b"/users/7", MethodOverride::Values(form))?, ["users:delete"]);
    /// assert_eq!(routes.required_for(b"POST", b"/users/7", MethodOverride::Unknown)?, ["users:delete"]);
    /// assert!(routes.required_for(b"POST", b"/users/7", MethodOverride::None)?.is_empty());
    /// assert!(routes.required_for(b"GET", b"/users/7", MethodOverride::Values(form))?.is_empty());
    /// assert!(routes.required_for(b"GE\xffT", b"/", MethodOverride::None).is_err());
    /// # Ok::<(), portcullis::authz::AuthzError>(())
    /// ```
    pub fn required_for(
        &self,
        method: &[u8],
        path: &[u8],
        method_override: MethodOverride<'_>,
    ) -> Result<Vec<&str>, AuthzError> {
        if !is_method_token(method) {
            let mut shown = String::from_utf8_lossy(method).into_owned();
            if let Some((cut, _)) = shown.char_indices().nth(64) {
                shown.truncate(cut);
            }
            return Err(AuthzError::BadMethod { method: shown });
        }
        Ok(self.collect(method, path, method_override))
    }

    fn collect(
        &self,
        method: &[u8],
        path: &[u8],
        method_override: MethodOverride<'_>,
    ) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        if self.routes.is_empty() {
            return out;
        }
        // The methods the app may dispatch this request as.
        let mut methods: Vec<Vec<u8>> = vec![method.to_vec()];
        let mut any_method = false;
        if method.eq_ignore_ascii_case(b"POST") {
            match method_override {
                MethodOverride::None => {}
                MethodOverride::Values(values) => {
                    methods.extend(values.iter().map(|v| override_method(v)));
                }
                MethodOverride::Unknown => any_method = true,
            }
        }
        let path = canonical_path(path);
        for route in &self.routes {
            let method_matches = match &route.method {
                None => true,
                Some(_) if any_method => true,
                Some(m) => methods.iter().any(|method| {
                    m.as_bytes().eq_ignore_ascii_case(method)
                        || (m == "GET" && method.eq_ignore_ascii_case(b"HEAD"))
                }),
            };
            if !method_matches || !covers(&path, &route.prefix) {
                continue;
            }
            for permission in &route.permissions {
                if !out.contains(&permission.as_str()) {
                    out.push(permission);
                }
            }
        }
        out
    }

    /// The permissions a request needs that `granted` lacks (empty: let it through).
    pub fn missing<'a, G: AsRef<str>>(
        &'a self,
        method: &str,
        path: &str,
        granted: &[G],
    ) -> Vec<&'a str> {
        let mut needed = self.required(method, path);
        needed.retain(|p| !granted.iter().any(|g| g.as_ref() == *p));
        needed
    }
}

/// What a method-override layer in front of the app may turn a `POST` into, for
/// [`RouteRequirements::required_for`]. `Rack::MethodOverride` (in Rails' default middleware
/// stack, Sinatra's `method_override`, Hanami) reads the `_method` form field, else the
/// `X-HTTP-Method-Override` header, upcases it and dispatches the `POST` as that method;
/// a Rails form for `PATCH` or `DELETE` is a `POST` with `_method=patch`.
///
/// Each value is judged as the method it upcases to (Unicode case mapping, as Ruby's
/// `String#upcase`: `_method=delete` and `X-HTTP-Method-Override: Delete` are `DELETE`), and
/// every value applies, not only the one Rack would pick: over-matching is the safe
/// direction here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MethodOverride<'a> {
    /// No override layer, or the request carries no override.
    #[default]
    None,
    /// The override values the request carries, as received (the form field's value, the
    /// header's value).
    Values(&'a [&'a [u8]]),
    /// The request may carry an override that could not be read (a body over the reading
    /// cap, no length on an input that cannot rewind, a form that does not parse): the
    /// request needs what every method-specific entry for its path asks for.
    Unknown,
}

/// The method an override value dispatches as: Ruby's `String#upcase` (full Unicode case
/// mapping, so `ı` is `I` and `ﬅ` is `ST`); bytes that are not UTF-8 are upcased as ASCII.
fn override_method(value: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(value) {
        Ok(text) => text.to_uppercase().into_bytes(),
        Err(_) => value.to_ascii_uppercase(),
    }
}

/// RFC 9110 `token`: the only shape an HTTP method has.
fn is_method_token(method: &[u8]) -> bool {
    !method.is_empty()
        && method
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

/// Paths that bypass the certificate check (health checks, public assets): the table
/// behind the Rack middleware's `skip:` String entries and `[rack] skip`.
///
/// The opposite of [`RouteRequirements`]: here *under*-matching is the safe direction, so
/// nothing is folded. A path is skipped only if it is already canonical (no `%`, `\`, `;`,
/// doubled `/`, or `.`/`..` segments: [`is_canonical_path`]) and equals a prefix or lies
/// beneath it on a segment boundary, case-sensitively.
///
/// ```
/// use portcullis::authz::SkipRoutes;
/// let skip = SkipRoutes::new(["/up", "/assets/"])?;
/// assert!(skip.skips("/up") && skip.skips("/assets/app.css"));
/// for path in ["/upload", "/UP", "//up", "/up/../admin", "/up/%2e%2e/admin", "/up;x"] {
///     assert!(!skip.skips(path), "{path}");
/// }
/// # Ok::<(), portcullis::authz::AuthzError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SkipRoutes {
    /// Prefixes without a trailing slash; empty for `/` (every canonical path).
    prefixes: Vec<String>,
}

impl SkipRoutes {
    /// Compiles `"/path"` prefixes. Errors: `authz.bad_route` for a prefix that does not
    /// start with `/`, is not canonical itself, or is too long.
    pub fn new<I, S>(prefixes: I) -> Result<Self, AuthzError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for prefix in prefixes {
            let prefix = prefix.as_ref();
            let bad = |reason: &str| AuthzError::BadRoute {
                route: prefix.to_owned(),
                reason: reason.to_owned(),
            };
            if prefix.len() > MAX_ROUTE_LEN {
                return Err(bad("is longer than 2048 bytes"));
            }
            if !prefix.starts_with('/') {
                return Err(bad(
                    "must be a path starting with / (skip entries take no method)",
                ));
            }
            let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
            if !trimmed.is_empty() && !is_canonical_path(trimmed.as_bytes()) {
                return Err(bad(
                    "is not canonical (no %, \\, ;, //, . or .. segments): it could never match",
                ));
            }
            if prefix.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                return Err(bad("has a space or control character"));
            }
            out.push(trimmed.to_owned());
        }
        Ok(Self { prefixes: out })
    }

    /// Whether the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// Whether a request for `path` (SCRIPT_NAME plus PATH_INFO, as received) skips the
    /// check.
    pub fn skips(&self, path: &str) -> bool {
        self.skips_bytes(path.as_bytes())
    }

    /// [`SkipRoutes::skips`] for a path that need not be UTF-8.
    pub fn skips_bytes(&self, path: &[u8]) -> bool {
        !self.prefixes.is_empty()
            && is_canonical_path(path)
            && self
                .prefixes
                .iter()
                .any(|p| p.is_empty() || under(path, p.as_bytes()))
    }
}

/// Whether `path` is already in the form [`canonical_path`] would give it, up to case and
/// a trailing slash: no `%`, `\` or `;`, no doubled `/`, no `.` or `..` segment.
///
/// ```
/// use portcullis::authz::is_canonical_path;
/// assert!(is_canonical_path(b"/assets/app.css") && is_canonical_path(b"/a/"));
/// assert!(!is_canonical_path(b"/a//b") && !is_canonical_path(b"/a/./b"));
/// assert!(!is_canonical_path(b"/a/..") && !is_canonical_path(b"/%61"));
/// ```
pub fn is_canonical_path(path: &[u8]) -> bool {
    if path.iter().any(|b| matches!(b, b'%' | b'\\' | b';')) {
        return false;
    }
    let mut segments = path.split(|b| *b == b'/');
    // Before the first `/`: a relative path is never canonical; "" means it starts with `/`.
    if segments.next() != Some(&b""[..]) {
        return false;
    }
    let rest: Vec<&[u8]> = segments.collect();
    let last = rest.len().saturating_sub(1);
    rest.iter().enumerate().all(|(i, segment)| match *segment {
        b"" => i == last, // only a trailing slash may leave an empty segment
        b"." | b".." => false,
        _ => true,
    })
}

/// `path` equals `prefix` or lies beneath it on a segment boundary (the skip table's rule:
/// exact, because under-matching is its safe direction).
fn under(path: &[u8], prefix: &[u8]) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.first() == Some(&b'/'),
        None => false,
    }
}

/// A `require:` prefix covers `path`: [`under`], or the prefix's last segment carries a
/// `.suffix` in `path`. Rails routes `/admin(.:format)`, so `/admin.json` and
/// `/admin.anything` reach the `/admin` action; a dynamic segment may take dots too
/// (`constraints: { id: /[^\/]+/ }`), where the extra permission is the safe direction.
fn covers(path: &[u8], prefix: &[u8]) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => matches!(rest.first(), None | Some(b'/' | b'.')),
        None => false,
    }
}

fn compile<P: AsRef<str>>(index: usize, key: &str, permissions: &[P]) -> Result<Route, AuthzError> {
    let bad = |reason: &str| AuthzError::BadRoute {
        route: key.to_owned(),
        reason: reason.to_owned(),
    };
    if key.len() > MAX_ROUTE_LEN {
        return Err(bad("is longer than 2048 bytes"));
    }
    let mut words = key.split_whitespace();
    let (method, path) = match (words.next(), words.next(), words.next()) {
        (Some(path), None, None) => (None, path),
        (Some(method), Some(path), None) => (Some(method), path),
        _ => return Err(bad("must be \"/path\" or \"VERB /path\"")),
    };
    if !path.starts_with('/') {
        return Err(bad(
            "must be \"/path\" or \"VERB /path\" (the path starts with /)",
        ));
    }
    if let Some(m) = method {
        if !m.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(bad("has a method that is not a word like GET or POST"));
        }
    }
    if path.bytes().any(|b| b.is_ascii_control()) {
        return Err(bad("has a control character in its path"));
    }
    if permissions.is_empty() {
        return Err(bad("names no permission"));
    }
    for p in permissions {
        if !valid_permission(p.as_ref()) {
            return Err(AuthzError::BadPermission {
                rule: index,
                permission: p.as_ref().to_owned(),
            });
        }
    }
    let mut prefix = canonical_path(path.as_bytes());
    if prefix == b"/" {
        prefix.clear();
    }
    Ok(Route {
        method: method.map(str::to_ascii_uppercase),
        prefix,
        permissions: permissions.iter().map(|p| p.as_ref().to_owned()).collect(),
    })
}

/// A request path the way a generous router reads it: `/` followed by its segments, with
/// percent-escapes decoded once, `\` read as `/`, `;parameters` dropped, empty and `.`
/// segments removed, `..` resolved (never above the root) and ASCII letters lowercased.
/// The result is bytes: a decoded escape need not be UTF-8.
///
/// ```
/// use portcullis::authz::canonical_path;
/// assert_eq!(canonical_path(b"/Admin/"), b"/admin");
/// assert_eq!(canonical_path(b"//x/./../%61dmin;jsessionid=1"), b"/admin");
/// assert_eq!(canonical_path(b"/..\\..\\etc"), b"/etc");
/// assert_eq!(canonical_path(b"/%2561"), b"/%61"); // decoded once, not twice
/// assert_eq!(canonical_path(b""), b"/");
/// ```
pub fn canonical_path(path: &[u8]) -> Vec<u8> {
    let decoded = percent_decode_once(path);
    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in decoded.split(|b| *b == b'/' || *b == b'\\') {
        let segment = segment.split(|b| *b == b';').next().unwrap_or(segment);
        match segment {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = Vec::with_capacity(path.len() + 1);
    for segment in &segments {
        out.push(b'/');
        out.extend(segment.iter().map(u8::to_ascii_lowercase));
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Decodes `%HH` escapes once; a `%` not followed by two hex digits stays as it is.
fn percent_decode_once(path: &[u8]) -> Vec<u8> {
    let hex = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = path.get(i) {
        if b == b'%' {
            if let (Some(hi), Some(lo)) = (
                path.get(i + 1).copied().and_then(hex),
                path.get(i + 2).copied().and_then(hex),
            ) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ErrorCode;

    fn table() -> RouteRequirements {
        RouteRequirements::new([
            ("/admin", vec!["admin"]),
            ("POST /deploy", vec!["containers:deploy"]),
            ("GET /reports", vec!["reports:read"]),
            ("/admin/audit", vec!["audit", "admin"]),
        ])
        .unwrap()
    }

    #[test]
    fn hostile_spellings_need_what_the_plain_path_needs() {
        let t = table();
        for path in [
            "/admin",
            "/admin/",
            "//admin",
            "/ADMIN",
            "/%61dmin",
            "/%41DMIN",
            "/x/../admin",
            "/./admin",
            "/admin;jsessionid=1",
            "\\admin",
            "/../../admin",
            "/admin/users/../../admin",
        ] {
            assert_eq!(t.required("GET", path), ["admin"], "{path}");
        }
        assert_eq!(t.required("GET", "/admin/audit/2024"), ["admin", "audit"]);
        assert_eq!(t.required("DELETE", "/admin//AUDIT"), ["admin", "audit"]);
    }

    #[test]
    fn a_format_suffix_needs_what_the_plain_path_needs() {
        // Rails routes `/admin(.:format)`: `/admin.json` reaches the same action.
        let t = table();
        for path in [
            "/admin.json",
            "/admin.xml",
            "/admin.anything",
            "/ADMIN.JSON",
            "/admin.",
            "/admin%2ejson",
            "/admin.json/",
            "/admin.json;x",
            "/admin/7.json",
            "/x/../admin.json",
        ] {
            assert_eq!(t.required("GET", path), ["admin"], "{path}");
        }
        assert_eq!(t.required("POST", "/deploy.json"), ["containers:deploy"]);
        assert_eq!(t.required("GET", "/reports.csv"), ["reports:read"]);
        assert_eq!(t.required("GET", "/admin/audit.json"), ["admin", "audit"]);
        let users = RouteRequirements::new([("/users/7", vec!["u7"])]).unwrap();
        assert_eq!(users.required("GET", "/users/7.json"), ["u7"]);
        assert!(users.required("GET", "/users/70.json").is_empty());
        // A route with a dot of its own: its own format suffix too, but not a shorter name.
        let dotted = RouteRequirements::new([("/files/report.pdf", vec!["r"])]).unwrap();
        assert_eq!(dotted.required("GET", "/files/report.pdf.json"), ["r"]);
        assert!(dotted.required("GET", "/files/report").is_empty());
        assert!(t.required("GET", "/adminx.json").is_empty());
    }

    #[test]
    fn a_post_needs_what_its_method_override_needs() {
        let t = RouteRequirements::new([
            ("DELETE /users", vec!["users:delete"]),
            ("PATCH /users", vec!["users:write"]),
            ("GET /users", vec!["users:read"]),
            ("POST /users", vec!["users:create"]),
        ])
        .unwrap();
        let need = |method: &[u8], values: &[&[u8]]| {
            t.required_for(method, b"/users/7", MethodOverride::Values(values))
                .unwrap()
        };
        // `_method=delete` (form) and `X-HTTP-Method-Override: DELETE`, every spelling that
        // String#upcase turns into DELETE.
        for value in [&b"delete"[..], b"DELETE", b"Delete", b"dElEtE"] {
            assert_eq!(
                need(b"POST", &[value]),
                ["users:delete", "users:create"],
                "{value:?}"
            );
        }
        assert_eq!(
            need(b"post", &[b"delete"]),
            ["users:delete", "users:create"]
        );
        // Every value applies (Rack takes the form field first; the header may differ).
        assert_eq!(
            need(b"POST", &[b"patch", b"delete"]),
            ["users:delete", "users:write", "users:create"]
        );
        // HEAD overrides need what GET needs; an unknown word only what POST needs.
        assert_eq!(need(b"POST", &[b"head"]), ["users:read", "users:create"]);
        assert_eq!(
            need(b"POST", &[b"purge", b"DELETE ", b"", b"\xff"]),
            ["users:create"]
        );
        // Unicode case mapping, as Ruby's upcase: `ı` -> I, `ſ`/`ﬅ` -> S/ST.
        let unicode = RouteRequirements::new([
            ("UNLINK /users", vec!["unlink"]),
            ("POST /users", vec!["post"]),
            ("OPTIONS /users", vec!["options"]),
        ])
        .unwrap();
        let over = |v: &str| {
            unicode
                .required_for(b"POST", b"/users", MethodOverride::Values(&[v.as_bytes()]))
                .unwrap()
        };
        assert_eq!(over("unl\u{131}nk"), ["unlink", "post"]);
        assert_eq!(over("opt\u{131}on\u{17f}"), ["post", "options"]);
        assert_eq!(over("po\u{fb05}"), ["post"]);
        // Only POST is overridden.
        for method in [&b"GET"[..], b"PUT", b"PATCH", b"HEAD"] {
            let got = need(method, &[b"delete"]);
            assert!(!got.contains(&"users:delete"), "{method:?}: {got:?}");
        }
        // An override that could not be read: every method-specific entry for the path.
        assert_eq!(
            t.required_for(b"POST", b"/users/7.json", MethodOverride::Unknown)
                .unwrap(),
            ["users:delete", "users:write", "users:read", "users:create"]
        );
        assert_eq!(
            t.required_for(b"GET", b"/users/7", MethodOverride::Unknown)
                .unwrap(),
            ["users:read"]
        );
        assert!(t
            .required_for(b"POST", b"/other", MethodOverride::Unknown)
            .unwrap()
            .is_empty());
        assert_eq!(
            t.required_for(b"POST", b"/users/7", MethodOverride::None)
                .unwrap(),
            ["users:create"]
        );
    }

    #[test]
    fn methods_that_are_not_tokens_are_refused() {
        let t = table();
        for method in [
            &b""[..],
            b"GE\xffT",
            b"GET ",
            b"G(ET",
            b"\xc3\x89",
            b"GET\n",
            b"P\0OST",
        ] {
            let err = t
                .required_for(method, b"/admin", MethodOverride::None)
                .unwrap_err();
            assert_eq!(err.code(), "authz.bad_method", "{method:?}");
            assert!(err.to_string().contains("400"));
        }
        let long = vec![0xff_u8; 5000];
        let err = t
            .required_for(&long, b"/", MethodOverride::None)
            .unwrap_err();
        assert!(err.to_string().len() < 400);
        for method in [&b"GET"[..], b"M-SEARCH", b"X_CUSTOM", b"PROPFIND"] {
            assert!(t
                .required_for(method, b"/admin", MethodOverride::None)
                .is_ok());
        }
        // Any path bytes are judged (a raw high byte, an invalid UTF-8 escape).
        assert_eq!(
            t.required_for(b"GET", b"/admin/\xff", MethodOverride::None)
                .unwrap(),
            ["admin"]
        );
        assert_eq!(
            t.required_for(b"GET", b"/admin.%ff", MethodOverride::None)
                .unwrap(),
            ["admin"]
        );
    }

    #[test]
    fn prefixes_end_on_segment_boundaries() {
        let t = table();
        for path in [
            "/administrator",
            "/admins",
            "/",
            "",
            "/public/admin",
            "/adm%69n2",
        ] {
            assert!(t.required("GET", path).is_empty(), "{path}");
        }
        // An escaped slash decodes to a separator: over-matching is the safe direction.
        assert_eq!(t.required("GET", "/%2fadmin"), ["admin"]);
    }

    #[test]
    fn methods_match_case_insensitively_and_head_counts_as_get() {
        let t = table();
        assert_eq!(t.required("post", "/deploy"), ["containers:deploy"]);
        assert!(t.required("GET", "/deploy").is_empty());
        assert_eq!(t.required("HEAD", "/reports/q3"), ["reports:read"]);
        assert!(t.required("POST", "/reports").is_empty());
    }

    #[test]
    fn a_root_route_covers_everything() {
        let t = RouteRequirements::new([("/", vec!["any"])]).unwrap();
        for path in ["/", "", "/a/b", "//", "/.."] {
            assert_eq!(t.required("GET", path), ["any"], "{path}");
        }
    }

    #[test]
    fn missing_lists_only_what_is_not_granted() {
        let t = table();
        assert_eq!(t.missing("GET", "/admin/audit", &["admin"]), ["audit"]);
        assert!(t
            .missing("GET", "/admin/audit", &["audit", "admin"])
            .is_empty());
        assert!(t.missing("GET", "/public", &[] as &[&str]).is_empty());
    }

    #[test]
    fn malformed_tables_are_refused_with_codes() {
        let cases: Vec<(&str, Vec<&str>, &str)> = vec![
            ("admin", vec!["a"], "authz.bad_route"),
            ("", vec!["a"], "authz.bad_route"),
            ("GET POST /x", vec!["a"], "authz.bad_route"),
            ("G3T /x", vec!["a"], "authz.bad_route"),
            ("/x", vec![], "authz.bad_route"),
            ("/x\u{7}", vec!["a"], "authz.bad_route"),
            ("/x", vec![""], "authz.bad_permission"),
            ("/x", vec!["two words"], "authz.bad_permission"),
        ];
        for (route, perms, code) in cases {
            let err = RouteRequirements::new([(route, perms)]).unwrap_err();
            assert_eq!(err.code(), code, "{route:?}");
            assert!(err.to_string().contains("route") || code == "authz.bad_permission");
        }
        assert!(RouteRequirements::new(Vec::<(&str, Vec<&str>)>::new())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn non_utf8_paths_are_compared_as_bytes() {
        let t = RouteRequirements::new([("/caf\u{e9}", vec!["x"])]).unwrap();
        assert_eq!(t.required("GET", "/caf%C3%A9"), ["x"]);
        assert!(t.required_bytes("GET", b"/caf\xe9").is_empty());
        assert!(t.required_bytes("GET", b"/%ff%fe").is_empty());
    }

    #[test]
    fn skip_tables_only_match_canonical_paths_on_boundaries() {
        let skip = SkipRoutes::new(["/up", "/assets/"]).unwrap();
        for path in ["/up", "/up/", "/up/db", "/assets/app.css", "/assets"] {
            assert!(skip.skips(path), "{path}");
        }
        for path in [
            "/upload",
            "/UP",
            "//up",
            "/up/../admin",
            "/up/%2e%2e/admin",
            "/up;x",
            "/up/..",
            "/up\\..\\admin",
            "/up//x",
            "/./up",
            "up",
            "",
            "/",
        ] {
            assert!(!skip.skips(path), "{path}");
        }
        // The format-suffix rule of `require:` does not widen a skip: `/up` is not
        // `/up.json` (a dotted name may be another resource: `/docs/:file` with dots).
        for path in [
            "/up.json",
            "/up.",
            "/up.anything",
            "/up.json/x",
            "/assets.json",
        ] {
            assert!(!skip.skips(path), "{path}");
        }
        assert!(SkipRoutes::new(["/up.json"]).unwrap().skips("/up.json"));
        let all = SkipRoutes::new(["/"]).unwrap();
        assert!(all.skips("/anything") && all.skips("/"));
        assert!(!all.skips("/a/../b"));
        assert!(!SkipRoutes::default().skips("/up"));
        for bad in ["up", "GET /up", "/a//b", "/%75p", "/a/../b", "/a b", ""] {
            assert_eq!(
                SkipRoutes::new([bad]).unwrap_err().code(),
                "authz.bad_route",
                "{bad:?}"
            );
        }
    }

    proptest::proptest! {
        /// Whatever the bytes, the folded path is canonical: rooted, no empty, `.` or `..`
        /// segments, no `\`, `;` or uppercase ASCII; and folding it again changes nothing
        /// unless a decoded escape made a new `%HH`.
        #[test]
        fn folded_paths_are_canonical(path in proptest::collection::vec(
            proptest::sample::select(b"/\\.;%2fF5cA aZ\xff".to_vec()), 0..24)) {
            let folded = canonical_path(&path);
            proptest::prop_assert_eq!(folded.first(), Some(&b'/'));
            if folded != b"/" {
                for segment in folded.split(|b| *b == b'/').skip(1) {
                    proptest::prop_assert!(!segment.is_empty());
                    proptest::prop_assert!(segment != b"." && segment != b"..");
                }
            }
            proptest::prop_assert!(!folded.iter().any(|b| matches!(b, b'\\' | b';') || b.is_ascii_uppercase()));
            if !folded.contains(&b'%') {
                proptest::prop_assert_eq!(canonical_path(&folded), folded.clone());
            }
            let routes = RouteRequirements::new([("/a", vec!["p"])]).unwrap();
            let needs = !routes.required_bytes("GET", &path).is_empty();
            proptest::prop_assert_eq!(
                needs,
                folded == b"/a" || folded.starts_with(b"/a/") || folded.starts_with(b"/a.")
            );
            // A skip table never skips what it was not given: no format suffix, no folding.
            let skip = SkipRoutes::new(["/a"]).unwrap();
            if skip.skips_bytes(&path) {
                proptest::prop_assert!(path == b"/a" || path.starts_with(b"/a/"));
            }
        }

        /// A POST with any override values needs at least what it needs as POST and as each
        /// value's ASCII-upcased method; an unreadable override needs at least as much.
        #[test]
        fn overrides_only_ever_add(values in proptest::collection::vec(
            proptest::sample::select(vec![&b"delete"[..], b"DELETE", b"patch", b"head", b"get", b"x", b"", b"\xff", b"Delete"]), 0..4),
            path in proptest::sample::select(vec!["/users/7", "/users.json", "/u", "/users/7.json", "/"])) {
            let t = RouteRequirements::new([
                ("DELETE /users", vec!["d"]),
                ("PATCH /users", vec!["w"]),
                ("GET /users", vec!["r"]),
                ("POST /users", vec!["c"]),
                ("/users", vec!["any"]),
            ]).unwrap();
            let got = t.required_for(b"POST", path.as_bytes(), MethodOverride::Values(&values)).unwrap();
            let mut expected: Vec<&str> = t.required("POST", path);
            for v in &values {
                let m = String::from_utf8_lossy(v).to_ascii_uppercase();
                for p in t.required(&m, path) {
                    if !expected.contains(&p) { expected.push(p); }
                }
            }
            for p in &expected {
                proptest::prop_assert!(got.contains(p), "{:?} lacks {}", got, p);
            }
            for p in &got {
                proptest::prop_assert!(expected.contains(p), "{:?} has extra {}", got, p);
            }
            let unknown = t.required_for(b"POST", path.as_bytes(), MethodOverride::Unknown).unwrap();
            for p in &got {
                proptest::prop_assert!(unknown.contains(p));
            }
        }
    }
}
