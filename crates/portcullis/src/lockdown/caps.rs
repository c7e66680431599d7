//! Linux capability names (`capabilities(7)`), for `keep_caps`.

use super::LockdownError;

/// Capability numbers 0..=40, as named in `<linux/capability.h>` without `CAP_`.
pub(super) const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The number of a capability name: `NET_BIND_SERVICE`, `cap_net_bind_service`, `CAP_KILL`.
pub(super) fn parse(name: &str) -> Result<u8, LockdownError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES
        .iter()
        .position(|n| *n == bare)
        .and_then(|i| u8::try_from(i).ok())
        .ok_or_else(|| LockdownError::BadCapability {
            name: name.to_owned(),
        })
}

/// The name of capability `n` (`"CAP_42"` for numbers newer than this table).
pub(super) fn name(n: u8) -> String {
    NAMES
        .get(usize::from(n))
        .map_or_else(|| format!("CAP_{n}"), |s| format!("CAP_{s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling() {
        assert_eq!(parse("NET_BIND_SERVICE").ok(), Some(10));
        assert_eq!(parse("cap_net_bind_service").ok(), Some(10));
        assert_eq!(parse(" CAP_KILL ").ok(), Some(5));
        assert_eq!(parse("CHECKPOINT_RESTORE").ok(), Some(40));
        for bad in ["", "CAP_", "NET_BIND", "ALL", "CAP_41", "10"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(name(21), "CAP_SYS_ADMIN");
    }
}
