//! The process-wide system calls the lockdown needs that no safe wrapper offers: the
//! Landlock ABI probe, prctl for no_new_privs and the capability sets, capset/capget, and
//! user/group lookup and switching. Each `unsafe` block passes only values owned here.
#![allow(unsafe_code)] // raw prctl/capset/syscall calls; arguments are plain integers or local buffers

use std::ffi::CString;
use std::io;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The running kernel's Landlock ABI (0: no Landlock; negative errors folded to 0).
pub(super) fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: landlock_create_ruleset(NULL, 0, VERSION) reads no memory and returns an int.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    i32::try_from(v).unwrap_or(0).max(0)
}

/// Whether seccomp filters can be installed (`prctl(PR_GET_SECCOMP)` answers).
pub(super) fn seccomp_available() -> bool {
    // SAFETY: PR_GET_SECCOMP takes no pointers.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}

/// Threads of this process, from `/proc/self/task` (falls back to `Threads:` in status).
pub(super) fn thread_count() -> io::Result<usize> {
    match std::fs::read_dir("/proc/self/task") {
        Ok(dir) => Ok(dir.filter(Result::is_ok).count()),
        Err(e) => Err(e),
    }
}

pub(super) fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
}

pub(super) fn no_new_privs() -> bool {
    // SAFETY: integer arguments only.
    unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 }
}

pub(super) fn set_keepcaps(on: bool) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) }).map(drop)
}

/// The highest capability number the kernel knows (`/proc/sys/kernel/cap_last_cap`).
pub(super) fn cap_last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Whether capability `cap` is in the bounding set.
pub(super) fn in_bounding(cap: u8) -> bool {
    // SAFETY: integer arguments only.
    unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) == 1 }
}

pub(super) fn drop_bounding(cap: u8) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) })
        .map(drop)
}

pub(super) fn clear_ambient() -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    })
    .map(drop)
}

pub(super) fn raise_ambient(cap: u8) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            libc::c_ulong::from(cap),
            0,
            0,
        )
    })
    .map(drop)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// (effective, permitted, inheritable) as 64-bit masks.
pub(super) fn capget() -> io::Result<(u64, u64, u64)> {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are valid, correctly sized V3 buffers owned by this frame.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capget,
            std::ptr::addr_of_mut!(header),
            data.as_mut_ptr(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

/// Sets effective = permitted = inheritable = `mask`.
pub(super) fn capset(mask: u64) -> io::Result<()> {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let lo = (mask & 0xffff_ffff) as u32;
    let hi = (mask >> 32) as u32;
    let data = [
        CapData {
            effective: lo,
            permitted: lo,
            inheritable: lo,
        },
        CapData {
            effective: hi,
            permitted: hi,
            inheritable: hi,
        },
    ];
    // SAFETY: header and data are valid, correctly sized V3 buffers owned by this frame.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capset,
            std::ptr::addr_of_mut!(header),
            data.as_ptr(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// (uid, primary gid) of user `name` (or a numeric uid).
pub(super) fn lookup_user(name: &str) -> Result<(u32, u32), String> {
    let c = CString::new(name).map_err(|_| "the name contains NUL".to_owned())?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: passwd is plain data; zeroed is a valid (empty) value.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to a live local; buf's length is passed.
    let rc = unsafe {
        libc::getpwnam_r(
            c.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc == 0 && !result.is_null() {
        return Ok((pwd.pw_uid, pwd.pw_gid));
    }
    match name.parse::<u32>() {
        Ok(uid) => Ok((uid, uid)),
        Err(_) => Err("no such user in the passwd database".to_owned()),
    }
}

/// The gid of group `name` (or a numeric gid).
pub(super) fn lookup_group(name: &str) -> Result<u32, String> {
    let c = CString::new(name).map_err(|_| "the name contains NUL".to_owned())?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: group is plain data; zeroed is a valid (empty) value.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer refers to a live local; buf's length is passed.
    let rc = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc == 0 && !result.is_null() {
        return Ok(grp.gr_gid);
    }
    name.parse::<u32>()
        .map_err(|_| "no such group in the group database".to_owned())
}

pub(super) fn uid() -> u32 {
    // SAFETY: no arguments.
    unsafe { libc::getuid() }
}

/// setgroups([gid]), setgid, setuid. Raw syscalls act on the calling thread only, which
/// is the only thread (checked before).
pub(super) fn switch_user(uid: u32, gid: u32) -> io::Result<()> {
    let groups = [gid];
    // SAFETY: groups is a live one-element array.
    check(unsafe { libc::setgroups(1, groups.as_ptr()) })?;
    // SAFETY: integer arguments only. glibc's wrappers broadcast to every thread.
    check(unsafe { libc::setresgid(gid, gid, gid) })?;
    // SAFETY: integer arguments only.
    check(unsafe { libc::setresuid(uid, uid, uid) })?;
    Ok(())
}
