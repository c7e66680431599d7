//! How a web app answers a request that a Portcullis error stopped: one table for every
//! code, so the Rack middleware, the Rails concern and a Rust service all answer alike.
//!
//! ```
//! use portcullis::Answer;
//! assert_eq!(Answer::for_code("path.escape").status(), 403);
//! assert_eq!(Answer::for_code("path.absolute").status(), 400); // malformed, not hostile
//! assert_eq!(Answer::for_code("path.not_found").status(), 404);
//! assert_eq!(Answer::for_code("command.spawn_failed").status(), 500); // the server's fault
//! assert_eq!(Answer::for_code("no.such_code").status(), 403); // unknown: refuse
//! ```

/// The HTTP answer for a Portcullis error code. Bodies should stay detail-free (the code
/// and message belong in the log): say only the status's reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Answer {
    /// 400: the request's value is malformed (an empty or absolute file name, a control
    /// character, an unknown parameter, a URL that does not parse, an odd method override).
    BadRequest,
    /// 401: no client certificate, or one that does not verify.
    Unauthenticated,
    /// 403: well-formed and refused by policy (a path out of its root, a reserved address,
    /// an option-shaped value, a missing permission), and every code this table does not
    /// know: an unknown refusal stays a refusal.
    Forbidden,
    /// 404: a well-formed, allowed name with nothing (or no regular file) there.
    NotFound,
    /// 409: the file to be created exists already.
    Conflict,
    /// 500: the server's own failure or misconfiguration (I/O, a missing root, a template
    /// or policy that does not build, a lockdown or configuration error, a panic caught at
    /// the Ruby boundary).
    Internal,
    /// 502: the upstream could not be resolved, reached or read.
    BadGateway,
    /// 504: a command or an upstream ran out of time.
    GatewayTimeout,
}

impl Answer {
    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::Internal => 500,
            Self::BadGateway => 502,
            Self::GatewayTimeout => 504,
        }
    }

    /// The answer for a code (`capability.reason`, as [`ErrorCode::code`](crate::ErrorCode::code)
    /// returns it, or one of the codes the Ruby gem raises itself).
    pub fn for_code(code: &str) -> Self {
        match code {
            // The peer is not a proxy allowed to vouch for a certificate: a refusal.
            "cert.untrusted_proxy" => Self::Forbidden,
            c if c.starts_with("cert.") => Self::Unauthenticated,

            "authz.no_identity" => Self::Unauthenticated,
            "authz.bad_method" => Self::BadRequest,
            // A rule, route or permission that does not build is the app's configuration.
            "authz.empty_match"
            | "authz.bad_rule"
            | "authz.bad_permission"
            | "authz.no_grants"
            | "authz.bad_route" => Self::Internal,

            "path.empty" | "path.nul" | "path.control" | "path.not_utf8" | "path.absolute"
            | "path.backslash" | "path.drive" | "path.too_long" | "path.not_a_string" => {
                Self::BadRequest
            }
            "path.not_found" | "path.not_a_file" | "path.not_a_directory" => Self::NotFound,
            "path.exists" => Self::Conflict,
            "path.io" | "path.root_missing" => Self::Internal,

            "command.missing_param"
            | "command.unknown_param"
            | "command.duplicate_param"
            | "command.invalid_value"
            | "command.control_char"
            | "command.too_long" => Self::BadRequest,
            "command.timeout" => Self::GatewayTimeout,
            "command.program"
            | "command.interpreter"
            | "command.launcher"
            | "command.bad_template"
            | "command.failed"
            | "command.spawn_failed"
            | "command.output"
            | "command.cancelled" => Self::Internal,

            "egress.bad_url" | "egress.backslash" | "egress.control_char" => Self::BadRequest,
            "egress.resolve_failed"
            | "egress.connect_failed"
            | "egress.http"
            | "egress.response_too_large"
            | "egress.response_headers_too_large"
            | "egress.too_many_redirects"
            | "egress.pin_mismatch" => Self::BadGateway,
            "egress.timeout" | "egress.deadline_exceeded" => Self::GatewayTimeout,
            "egress.invalid_policy" => Self::Internal,

            c if c.starts_with("config.")
                || c.starts_with("lockdown.")
                || c.starts_with("guard.")
                || c.starts_with("internal.") =>
            {
                Self::Internal
            }
            _ => Self::Forbidden,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_its_own() {
        let all = [
            Answer::BadRequest,
            Answer::Unauthenticated,
            Answer::Forbidden,
            Answer::NotFound,
            Answer::Conflict,
            Answer::Internal,
            Answer::BadGateway,
            Answer::GatewayTimeout,
        ];
        let statuses: std::collections::BTreeSet<u16> = all.iter().map(|a| a.status()).collect();
        assert_eq!(statuses.len(), all.len());
    }

    #[test]
    fn hostile_values_are_refusals_and_malformed_ones_bad_requests() {
        for code in [
            "path.escape",
            "path.symlink",
            "path.extension",
            "egress.metadata",
            "egress.reserved_address",
            "egress.ipv6_tunnel",
            "egress.userinfo",
            "egress.encoded_host",
            "command.option_injection",
            "command.shell_string",
            "authz.forbidden",
            "authz.no_middleware",
            "cert.untrusted_proxy",
        ] {
            assert_eq!(Answer::for_code(code), Answer::Forbidden, "{code}");
        }
        for code in [
            "path.absolute",
            "path.not_utf8",
            "command.invalid_value",
            "egress.bad_url",
        ] {
            assert_eq!(Answer::for_code(code), Answer::BadRequest, "{code}");
        }
        for code in [
            "cert.missing",
            "cert.expired",
            "cert.revoked",
            "authz.no_identity",
        ] {
            assert_eq!(Answer::for_code(code), Answer::Unauthenticated, "{code}");
        }
    }

    #[test]
    fn unknown_and_odd_codes_are_refused() {
        for code in [
            "",
            "path",
            "path.",
            "PATH.ESCAPE",
            "no.such_code",
            "path.escape ",
        ] {
            assert_eq!(Answer::for_code(code), Answer::Forbidden, "{code:?}");
        }
    }
}
