//! What a process can see, from inside, of a lockdown it runs under: the seccomp mode,
//! no_new_privs and the effective capabilities, from `/proc/self/status`. Landlock is not
//! visible from inside on this kernel (no call reports a domain), so a process started by
//! `portcullis exec` relies on what exec said (`PORTCULLIS_LOCKDOWN`) for that part.

/// The lockdown-related fields of `/proc/self/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Observed {
    /// `Seccomp:` 0 none, 1 strict, 2 filter.
    pub seccomp_mode: u8,
    /// `NoNewPrivs:` 1.
    pub no_new_privs: bool,
    /// `CapEff:` the effective capability bits.
    pub effective_caps: u64,
}

impl Observed {
    /// Reads `/proc/self/status`.
    pub fn current() -> std::io::Result<Self> {
        std::fs::read_to_string("/proc/self/status").map(|s| Self::parse(&s))
    }

    /// Reads the fields from the text of a `/proc/PID/status`; a missing or odd field counts
    /// as off (0), so an unreadable value never reports protection.
    pub fn parse(status: &str) -> Self {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
        };
        Self {
            seccomp_mode: field("Seccomp:").and_then(|v| v.parse().ok()).unwrap_or(0),
            no_new_privs: field("NoNewPrivs:") == Some("1"),
            effective_caps: field("CapEff:")
                .and_then(|v| u64::from_str_radix(v, 16).ok())
                .unwrap_or(0),
        }
    }

    /// One line for a status report. `exec_said`: what `portcullis exec` put in
    /// `PORTCULLIS_LOCKDOWN`, if the process inherited it (informational: the kernel
    /// enforces the lockdown, not the variable). "off" when neither a seccomp filter nor
    /// no_new_privs is in force.
    pub fn describe(&self, exec_said: Option<&str>) -> String {
        if self.seccomp_mode == 0 && !self.no_new_privs {
            return "off".to_owned();
        }
        let origin = exec_said.map_or_else(
            || "inherited (Landlock is not visible from inside)".to_owned(),
            |said| format!("applied by portcullis exec ({said})"),
        );
        format!(
            "{origin}, {}, no_new_privs {}, effective capabilities {}",
            if self.seccomp_mode == 2 {
                "seccomp filter on"
            } else {
                "no seccomp filter"
            },
            if self.no_new_privs { "on" } else { "off" },
            if self.effective_caps == 0 {
                "none".to_owned()
            } else {
                format!("0x{:x}", self.effective_caps)
            }
        )
    }

    /// [`current`](Self::current) described; when `/proc/self/status` cannot be read
    /// (itself a sign of a Landlock domain that does not grant it), what exec said, or
    /// "unknown".
    pub fn describe_current(exec_said: Option<&str>) -> String {
        match Self::current() {
            Ok(o) => o.describe(exec_said),
            Err(_) => exec_said.map_or_else(
                || "unknown (/proc/self/status unreadable)".to_owned(),
                |said| format!("applied by portcullis exec ({said})"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCKED: &str = "Name:\truby\nUmask:\t0022\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t2\n";
    const PLAIN: &str = "Name:\truby\nCapEff:\t000001ffffffffff\nNoNewPrivs:\t0\nSeccomp:\t0\n";

    #[test]
    fn reads_the_fields() {
        assert_eq!(
            Observed::parse(LOCKED),
            Observed {
                seccomp_mode: 2,
                no_new_privs: true,
                effective_caps: 0
            }
        );
        let plain = Observed::parse(PLAIN);
        assert_eq!(plain.effective_caps, 0x1ff_ffff_ffff);
        assert!(!plain.no_new_privs);
        // Seccomp_filters: must not be read as Seccomp:
        assert_eq!(Observed::parse("Seccomp_filters:\t2\n").seccomp_mode, 0);
    }

    #[test]
    fn odd_or_missing_fields_report_no_protection() {
        let odd = Observed::parse("Seccomp:\tx\nNoNewPrivs:\tyes\nCapEff:\tzz\n");
        assert_eq!(odd.describe(None), "off");
        assert_eq!(Observed::parse("").describe(Some("anything")), "off");
    }

    #[test]
    fn describes_what_it_sees() {
        assert_eq!(Observed::parse(PLAIN).describe(None), "off");
        assert_eq!(
            Observed::parse(LOCKED).describe(Some("portcullis lockdown: landlock ABI 7 enforced")),
            "applied by portcullis exec (portcullis lockdown: landlock ABI 7 enforced), seccomp filter on, \
             no_new_privs on, effective capabilities none"
        );
        let caps = Observed::parse("NoNewPrivs:\t1\nSeccomp:\t0\nCapEff:\t0000000000000400\n");
        assert_eq!(
            caps.describe(None),
            "inherited (Landlock is not visible from inside), no seccomp filter, no_new_privs on, \
             effective capabilities 0x400"
        );
    }

    #[test]
    fn this_process_reads() {
        assert!(Observed::current().is_ok());
    }
}
