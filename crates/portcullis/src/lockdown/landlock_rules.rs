//! The Landlock layer, through the `landlock` crate: every access right of the running ABI
//! is handled (so anything not granted is denied), and each path gets only what its list
//! needs.

use landlock::{
    make_bitflags, Access as _, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort,
    PathBeneath, PathFd, RestrictSelfAttr, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use super::{Access, Level, Lockdown, LockdownError};

fn rights(access: Access, is_dir: bool, under_dev: bool) -> BitFlags<AccessFs> {
    let mut r = match (access, is_dir) {
        (Access::Read, true) => make_bitflags!(AccessFs::{ReadFile | ReadDir}),
        (Access::Read, false) => make_bitflags!(AccessFs::{ReadFile}),
        (Access::Exec, true) => make_bitflags!(AccessFs::{ReadFile | ReadDir | Execute}),
        (Access::Exec, false) => make_bitflags!(AccessFs::{ReadFile | Execute}),
        // never MakeChar/MakeBlock: device nodes are how a container reaches the host disk
        (Access::Write, true) => make_bitflags!(AccessFs::{
            ReadFile | ReadDir | WriteFile | Truncate | RemoveDir | RemoveFile | MakeDir
            | MakeReg | MakeSock | MakeFifo | MakeSym | Refer
        }),
        (Access::Write, false) => make_bitflags!(AccessFs::{ReadFile | WriteFile | Truncate}),
    };
    if access == Access::Write && under_dev {
        r |= AccessFs::IoctlDev;
    }
    r
}

fn unsupported(e: impl std::fmt::Display) -> LockdownError {
    LockdownError::Unsupported {
        missing: format!("Landlock refused the ruleset: {e}"),
    }
}

/// Builds the ruleset and opens every path; nothing is enforced yet.
pub(super) fn prepare(
    lockdown: &Lockdown,
    abi_version: i32,
) -> Result<RulesetCreated, LockdownError> {
    let b = &lockdown.builder;
    let abi = ABI::from(abi_version);
    let handled = AccessFs::from_all(abi);
    // The rights are exactly the running ABI's, so a hard requirement holds by construction
    // and any refusal is an error rather than a silent downgrade.
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(handled)
        .map_err(unsupported)?;
    if abi_version >= 4 {
        ruleset = ruleset
            .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
            .map_err(unsupported)?;
    }
    if abi_version >= 6 {
        let mut scopes = BitFlags::<Scope>::EMPTY;
        if b.scope_signals {
            scopes |= Scope::Signal;
        }
        if b.scope_abstract_unix {
            scopes |= Scope::AbstractUnixSocket;
        }
        if !scopes.is_empty() {
            ruleset = ruleset.scope(scopes).map_err(unsupported)?;
        }
    }
    let mut created = ruleset.create().map_err(unsupported)?;
    for rule in &lockdown.rules {
        let fd = PathFd::new(&rule.path).map_err(|e| LockdownError::BadPath {
            path: rule.path.clone(),
            reason: format!("cannot be opened for a Landlock rule: {e}"),
        })?;
        let is_dir = rule.path.is_dir();
        let access = rights(rule.access, is_dir, rule.path.starts_with("/dev")) & handled;
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| LockdownError::BadPath {
                path: rule.path.clone(),
                reason: format!("Landlock refused the rule: {e}"),
            })?;
    }
    if abi_version >= 4 {
        for port in &b.connect_tcp {
            created = created
                .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
                .map_err(unsupported)?;
        }
        for port in &b.bind_tcp {
            created = created
                .add_rule(NetPort::new(*port, AccessNet::BindTcp))
                .map_err(unsupported)?;
        }
    }
    Ok(created)
}

/// `landlock_restrict_self`, on every thread when the kernel offers TSYNC.
pub(super) fn enforce(created: RulesetCreated, all_threads: bool) -> std::io::Result<Level> {
    let created = if all_threads {
        created.all_threads(true).map_err(std::io::Error::other)?
    } else {
        created
    };
    let status = created.restrict_self().map_err(std::io::Error::other)?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => Level::Full,
        RulesetStatus::PartiallyEnforced => Level::Partial,
        _ => Level::Off,
    })
}
