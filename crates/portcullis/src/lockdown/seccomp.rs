//! The syscall floor: seccomp filters compiled by `seccompiler` (pure Rust, no libseccomp).
//!
//! Three small programs, installed with TSYNC so every thread gets them:
//! 1. the refusal list (EPERM), with argument conditions for `clone`, `personality` and
//!    `socket`; its architecture check kills a process that makes syscalls under a foreign
//!    architecture (i386 `int 0x80` on x86_64, for instance);
//! 2. `clone3` → ENOSYS (its flags live in memory that seccomp cannot read; glibc then
//!    falls back to `clone`, whose flags the first program checks; EPERM would break
//!    `pthread_create` and so Ruby's `Thread.new`);
//! 3. x32 syscall numbers (bit 30 set on x86_64) → EPERM, so the x32 ABI cannot reach the
//!    refused calls under other numbers.
//!
//! In log mode (`--dry-run`) every refusal becomes `SECCOMP_RET_LOG`: allowed, and logged
//! by the kernel (audit or the kernel log) where the system records it.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

/// One line of the floor, for `explain` and the docs.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) name: &'static str,
    pub(super) nr: i64,
    /// `None`: always refused; otherwise the argument condition, in words.
    pub(super) when: Option<&'static str>,
}

const fn always(name: &'static str, nr: i64) -> Entry {
    Entry {
        name,
        nr,
        when: None,
    }
}

// CLONE_NEW* flags valid in clone(2)'s first argument (CLONE_NEWTIME only exists for
// clone3/unshare, both refused whole).
const CLONE_NEW_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];
const IPPROTO_MPTCP: u64 = 262;
const SOCK_TYPE_MASK: u64 = 0xf;
const SOCK_PACKET: i32 = 10; // obsolete packet interface on AF_INET (libc deprecates the name)
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The refused syscalls, in the order `explain` prints them.
pub(super) fn entries() -> Vec<Entry> {
    let mut v = vec![
        always("open_by_handle_at", libc::SYS_open_by_handle_at),
        always("mount", libc::SYS_mount),
        always("umount2", libc::SYS_umount2),
        always("fsopen", libc::SYS_fsopen),
        always("fsmount", libc::SYS_fsmount),
        always("fsconfig", libc::SYS_fsconfig),
        always("fspick", libc::SYS_fspick),
        always("move_mount", libc::SYS_move_mount),
        always("open_tree", libc::SYS_open_tree),
        always("mount_setattr", libc::SYS_mount_setattr),
        always("pivot_root", libc::SYS_pivot_root),
        always("chroot", libc::SYS_chroot),
        always("unshare", libc::SYS_unshare),
        always("setns", libc::SYS_setns),
        Entry {
            name: "clone",
            nr: libc::SYS_clone,
            when: Some("flags contain any CLONE_NEW*"),
        },
        always("ptrace", libc::SYS_ptrace),
        always("process_vm_readv", libc::SYS_process_vm_readv),
        always("process_vm_writev", libc::SYS_process_vm_writev),
        always("pidfd_getfd", libc::SYS_pidfd_getfd),
        always("keyctl", libc::SYS_keyctl),
        always("add_key", libc::SYS_add_key),
        always("request_key", libc::SYS_request_key),
        always("bpf", libc::SYS_bpf),
        always("userfaultfd", libc::SYS_userfaultfd),
        always("perf_event_open", libc::SYS_perf_event_open),
        always("io_uring_setup", libc::SYS_io_uring_setup),
        always("io_uring_enter", libc::SYS_io_uring_enter),
        always("io_uring_register", libc::SYS_io_uring_register),
        always("kexec_load", libc::SYS_kexec_load),
        always("kexec_file_load", libc::SYS_kexec_file_load),
        always("init_module", libc::SYS_init_module),
        always("finit_module", libc::SYS_finit_module),
        always("delete_module", libc::SYS_delete_module),
        Entry {
            name: "personality",
            nr: libc::SYS_personality,
            when: Some("persona other than 0 (PER_LINUX) or 0xffffffff (query)"),
        },
        always("swapon", libc::SYS_swapon),
        always("swapoff", libc::SYS_swapoff),
        always("reboot", libc::SYS_reboot),
        always("acct", libc::SYS_acct),
        always("quotactl", libc::SYS_quotactl),
        Entry {
            name: "socket",
            nr: libc::SYS_socket,
            when: Some("AF_ALG, AF_VSOCK, AF_PACKET, SOCK_RAW or SOCK_PACKET on AF_INET/AF_INET6, protocol IPPROTO_MPTCP"),
        },
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        always("iopl", libc::SYS_iopl),
        always("ioperm", libc::SYS_ioperm),
        always("uselib", libc::SYS_uselib),
        always("modify_ldt", libc::SYS_modify_ldt),
    ]);
    v
}

fn arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| format!("seccomp filters for {}", std::env::consts::ARCH))
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(|e| e.to_string())
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conditions).map_err(|e| e.to_string())
}

fn rules_for(entry: &Entry) -> Result<Vec<SeccompRule>, String> {
    use SeccompCmpOp::{Eq, MaskedEq, Ne};
    Ok(match entry.name {
        "clone" => CLONE_NEW_FLAGS
            .iter()
            .map(|&f| rule(vec![cond(0, MaskedEq(f), f)?]))
            .collect::<Result<_, _>>()?,
        "personality" => vec![rule(vec![cond(0, Ne, 0)?, cond(0, Ne, 0xffff_ffff)?])?],
        "socket" => {
            let mut r = Vec::new();
            for family in [libc::AF_ALG, libc::AF_VSOCK, libc::AF_PACKET] {
                r.push(rule(vec![cond(0, Eq, family as u64)?])?);
            }
            for family in [libc::AF_INET, libc::AF_INET6] {
                for kind in [libc::SOCK_RAW, SOCK_PACKET] {
                    r.push(rule(vec![
                        cond(0, Eq, family as u64)?,
                        cond(1, MaskedEq(SOCK_TYPE_MASK), kind as u64)?,
                    ])?);
                }
            }
            r.push(rule(vec![cond(2, Eq, IPPROTO_MPTCP)?])?);
            r
        }
        _ => Vec::new(),
    })
}

/// The compiled programs, in install order.
pub(super) fn programs(log_only: bool) -> Result<Vec<BpfProgram>, String> {
    let arch = arch()?;
    let refuse = |errno: i32| {
        if log_only {
            SeccompAction::Log
        } else {
            SeccompAction::Errno(errno as u32)
        }
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for entry in entries() {
        rules.insert(entry.nr, rules_for(&entry)?);
    }
    let floor = SeccompFilter::new(rules, SeccompAction::Allow, refuse(libc::EPERM), arch)
        .map_err(|e| e.to_string())?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        refuse(libc::ENOSYS),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let mut out: Vec<BpfProgram> = vec![
        floor
            .try_into()
            .map_err(|e: seccompiler::BackendError| e.to_string())?,
        clone3
            .try_into()
            .map_err(|e: seccompiler::BackendError| e.to_string())?,
    ];
    if cfg!(target_arch = "x86_64") {
        out.push(x32_program(u32::from(refuse(libc::EPERM))));
    }
    Ok(out)
}

/// `nr & X32_SYSCALL_BIT` → `action`; anything else allowed (the floor program checks the
/// architecture).
fn x32_program(action: u32) -> BpfProgram {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let stmt = |code, k| sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        stmt(LD_W_ABS, 0), // seccomp_data.nr
        sock_filter {
            code: JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        stmt(RET_K, action),
        stmt(RET_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Installs `programs` on every thread (TSYNC).
pub(super) fn install(programs: &[BpfProgram]) -> std::io::Result<()> {
    for p in programs {
        seccompiler::apply_filter_all_threads(p).map_err(|e| match e {
            seccompiler::Error::Seccomp(io) | seccompiler::Error::Prctl(io) => io,
            other => std::io::Error::other(other.to_string()),
        })?;
    }
    Ok(())
}
