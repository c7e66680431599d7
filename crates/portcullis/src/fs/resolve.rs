//! Opening a checked name beneath the root directory handle, on disk.
//!
//! The fast path is `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: the kernel resolves
//! the whole name and refuses anything that would leave the root, atomically, with
//! symlinks and `..` evaluated against the real tree at that instant. (A name with no `..`
//! is first tried with `RESOLVE_NO_SYMLINKS` alone, which cannot leave the root either and
//! is cheaper; see [`open_beneath`].) Where openat2 is
//! missing (ENOSYS) or filtered (EPERM from seccomp), the walk below does the same one
//! component at a time: every component is opened relative to the previous directory
//! handle with `O_NOFOLLOW`, its type read from the handle (not the name), and symlinks
//! are expanded by this code, so a concurrent swap can only ever be observed, never
//! followed blindly. Both paths are pure rustix calls: no `unsafe` here.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{fstat, openat, openat2, readlinkat, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::SymlinkPolicy;

/// Symlinks expanded per resolution before the name counts as a loop (the kernel's limit).
const MAX_SYMLINK_HOPS: u32 = 40;
/// Directory handles the walk may hold at once (one per level below the root): a 4096-byte
/// name could otherwise pin 2048 descriptors and starve the process.
const MAX_WALK_DEPTH: usize = 256;
/// openat2 returns EAGAIN when a concurrent rename makes `..` resolution unverifiable.
const MAX_EAGAIN_RETRIES: u32 = 16;

/// Set once openat2 answered ENOSYS: the kernel will not grow it while we run.
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

/// Why a resolution failed, before it is given the caller's name.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The name or a symlink in it leaves the root.
    Escape,
    /// A symlink the policy refuses, or too many of them.
    Symlink,
    /// Any other answer from the kernel.
    Os(Errno),
}

impl From<Errno> for Refusal {
    fn from(errno: Errno) -> Self {
        match errno {
            // EXDEV is RESOLVE_BENEATH's "would leave the root"; ELOOP its symlink refusal.
            Errno::XDEV => Self::Escape,
            Errno::LOOP => Self::Symlink,
            other => Self::Os(other),
        }
    }
}

/// Which resolver `open_beneath` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolver {
    /// openat2 when the kernel has it, the walk otherwise.
    Auto,
    /// Always the component-by-component walk.
    Walk,
}

/// Opens `name` (already lexically checked) beneath `root` with `flags` and `mode`.
///
/// `climbs` says whether the name has a `..` component. A name without one whose walk
/// meets no symlink cannot leave the root: every step goes from a directory beneath the
/// root into one of its children (a mount point inside the root is crossed either way;
/// `RESOLVE_BENEATH` does not refuse those). So such a name is first opened with
/// `RESOLVE_NO_SYMLINKS` alone, which the kernel checks for free, while
/// `RESOLVE_BENEATH`'s final "is the result still under the root" check costs about as
/// much as a third of the open. A name that climbs goes straight to `RESOLVE_BENEATH`
/// (a concurrent rename can move a directory out from under `..`); a walk that met a
/// symlink (ELOOP) is redone under `RESOLVE_BENEATH` when the policy follows symlinks.
pub(crate) fn open_beneath(
    root: BorrowedFd<'_>,
    name: &str,
    climbs: bool,
    flags: OFlags,
    mode: Mode,
    policy: SymlinkPolicy,
    resolver: Resolver,
) -> Result<OwnedFd, Refusal> {
    // openat2 is strict: O_PATH admits only O_CLOEXEC, O_DIRECTORY and O_NOFOLLOW.
    let flags = if flags.contains(OFlags::PATH) {
        flags | OFlags::CLOEXEC
    } else {
        flags | OFlags::CLOEXEC | OFlags::NOCTTY
    };
    if resolver == Resolver::Auto && !OPENAT2_MISSING.load(Ordering::Relaxed) {
        let mut scoped = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        if policy == SymlinkPolicy::Deny {
            scoped |= ResolveFlags::NO_SYMLINKS;
        }
        let answer = if climbs {
            openat2_retrying(root, name, flags, mode, scoped)
        } else {
            let plain = ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match openat2_retrying(root, name, flags, mode, plain) {
                Err(Errno::LOOP) if policy == SymlinkPolicy::Within => {
                    openat2_retrying(root, name, flags, mode, scoped)
                }
                other => other,
            }
        };
        // A missing or filtered openat2 shows on the first call; the walk takes over.
        match answer {
            Ok(fd) => return Ok(fd),
            Err(errno) => match fallback_for(errno) {
                Fallback::Never => return Err(Refusal::from(errno)),
                Fallback::ThisCall => {}
                Fallback::Always => OPENAT2_MISSING.store(true, Ordering::Relaxed),
            },
        }
    }
    walk(root, name, flags, mode, policy)
}

/// openat2, retried a bounded number of times on EAGAIN (a concurrent rename made `..`
/// unverifiable).
fn openat2_retrying(
    root: BorrowedFd<'_>,
    name: &str,
    flags: OFlags,
    mode: Mode,
    resolve: ResolveFlags,
) -> Result<OwnedFd, Errno> {
    let mut attempts = 0;
    loop {
        match openat2(root, name, flags, mode, resolve) {
            Err(Errno::AGAIN) if attempts < MAX_EAGAIN_RETRIES => attempts += 1,
            other => return other,
        }
    }
}

/// What an openat2 failure means for the choice of resolver.
#[derive(Debug, PartialEq, Eq)]
enum Fallback {
    /// A real answer about the name: report it.
    Never,
    /// openat2 was refused (seccomp commonly answers EPERM): walk this time.
    ThisCall,
    /// The kernel has no openat2 (ENOSYS): walk from now on.
    Always,
}

fn fallback_for(errno: Errno) -> Fallback {
    match errno {
        Errno::NOSYS => Fallback::Always,
        Errno::PERM => Fallback::ThisCall,
        _ => Fallback::Never,
    }
}

fn current<'a>(root: BorrowedFd<'a>, stack: &'a [OwnedFd]) -> BorrowedFd<'a> {
    stack.last().map_or(root, AsFd::as_fd)
}

fn is_symlink(fd: &OwnedFd) -> Result<bool, Errno> {
    Ok(FileType::from_raw_mode(fstat(fd)?.st_mode) == FileType::Symlink)
}

/// The portable resolver: one component at a time, symlinks expanded here.
fn walk(
    root: BorrowedFd<'_>,
    name: &str,
    flags: OFlags,
    mode: Mode,
    policy: SymlinkPolicy,
) -> Result<OwnedFd, Refusal> {
    let probe = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut pending: VecDeque<Vec<u8>> = name.split('/').map(|c| c.as_bytes().to_vec()).collect();
    // Directory handles from the root down; empty means "at the root". `..` pops, and
    // popping an empty stack is an escape: the walk never goes above the root.
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut hops = 0u32;
    while let Some(component) = pending.pop_front() {
        let last = pending.is_empty();
        match component.as_slice() {
            b"" | b"." => {
                if last {
                    return Ok(openat(current(root, &stack), ".", flags, mode)?);
                }
            }
            b".." => {
                if stack.pop().is_none() {
                    return Err(Refusal::Escape);
                }
                if last {
                    return Ok(openat(current(root, &stack), ".", flags, mode)?);
                }
            }
            entry if !last => {
                let fd = openat(current(root, &stack), entry, probe, Mode::empty())?;
                match FileType::from_raw_mode(fstat(&fd)?.st_mode) {
                    FileType::Directory if stack.len() >= MAX_WALK_DEPTH => {
                        return Err(Refusal::Os(Errno::NAMETOOLONG));
                    }
                    FileType::Directory => stack.push(fd),
                    FileType::Symlink => follow(&fd, &mut pending, &mut hops, policy)?,
                    _ => return Err(Refusal::Os(Errno::NOTDIR)),
                }
            }
            entry => {
                let dir = current(root, &stack);
                match openat(dir, entry, flags | OFlags::NOFOLLOW, mode) {
                    // O_PATH|O_NOFOLLOW opens a symlink as itself instead of failing.
                    Ok(fd) if flags.contains(OFlags::PATH) && is_symlink(&fd)? => {
                        follow(&fd, &mut pending, &mut hops, policy)?;
                    }
                    Ok(fd) => return Ok(fd),
                    // A final symlink fails with ELOOP, or ENOTDIR when O_DIRECTORY is set.
                    Err(errno @ (Errno::LOOP | Errno::NOTDIR)) => {
                        let link = openat(dir, entry, probe, Mode::empty())?;
                        if !is_symlink(&link)? {
                            return Err(Refusal::Os(errno));
                        }
                        follow(&link, &mut pending, &mut hops, policy)?;
                    }
                    Err(errno) => return Err(Refusal::Os(errno)),
                }
            }
        }
    }
    // Unreachable in practice: the last component always opens, fails or queues more.
    Err(Refusal::Os(Errno::NOENT))
}

/// Queues the target of the symlink open as `link` (read from the handle, so it is the
/// link that was inspected, not whatever the name points at now).
fn follow(
    link: &OwnedFd,
    pending: &mut VecDeque<Vec<u8>>,
    hops: &mut u32,
    policy: SymlinkPolicy,
) -> Result<(), Refusal> {
    if policy == SymlinkPolicy::Deny {
        return Err(Refusal::Symlink);
    }
    *hops += 1;
    if *hops > MAX_SYMLINK_HOPS {
        return Err(Refusal::Symlink);
    }
    let target = readlinkat(link, "", Vec::new())?.into_bytes();
    if target.is_empty() {
        return Err(Refusal::Os(Errno::NOENT));
    }
    // Absolute targets are escapes under every policy: the root is not `/`.
    if target.first() == Some(&b'/') {
        return Err(Refusal::Escape);
    }
    for component in target.split(|&b| b == b'/').rev() {
        pending.push_front(component.to_vec());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_or_filtered_openat2_falls_back() {
        assert_eq!(fallback_for(Errno::NOSYS), Fallback::Always);
        assert_eq!(fallback_for(Errno::PERM), Fallback::ThisCall);
        // Refusals by RESOLVE_BENEATH and ordinary failures must never be retried by the walk.
        for errno in [
            Errno::XDEV,
            Errno::LOOP,
            Errno::NOENT,
            Errno::ACCESS,
            Errno::INVAL,
        ] {
            assert_eq!(fallback_for(errno), Fallback::Never, "{errno:?}");
        }
    }

    #[test]
    fn refusals_keep_their_meaning() {
        assert!(matches!(Refusal::from(Errno::XDEV), Refusal::Escape));
        assert!(matches!(Refusal::from(Errno::LOOP), Refusal::Symlink));
        assert!(matches!(
            Refusal::from(Errno::NOENT),
            Refusal::Os(Errno::NOENT)
        ));
    }
}
