//! Real escapes against a real lockdown. Each test forks a child (one thread, as the
//! lockdown requires), applies the policy there, tries the escape, and reports through a
//! pipe; the parent asserts. Each test also does the normal work next to the escape, so a
//! lockdown that refused everything (or nothing) fails.
#![cfg(target_os = "linux")]
#![allow(unsafe_code)] // fork, raw syscalls for the escapes; each child only calls them and _exits
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;

use portcullis::lockdown::{Lockdown, LockdownBuilder};
use portcullis::ErrorCode;

/// Runs `child` in a forked process after applying `policy`; returns what it reported.
fn in_child(
    policy: LockdownBuilder,
    child: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    fork_run(move || {
        let lockdown = policy.build().map_err(|e| format!("build: {e}"))?;
        lockdown
            .apply()
            .map_err(|e| format!("apply: {} {e}", e.code()))?;
        child()
    })
}

fn fork_run(child: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        unsafe { libc::close(fds[0]) };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child))
            .unwrap_or_else(|_| Err("child panicked".to_owned()));
        let mut w = unsafe { std::fs::File::from_raw_fd(fds[1]) };
        let code = match result {
            Ok(()) => 0,
            Err(msg) => {
                let _ = w.write_all(msg.as_bytes());
                1
            }
        };
        drop(w);
        unsafe { libc::_exit(code) };
    }
    unsafe { libc::close(fds[1]) };
    let mut r = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let mut msg = String::new();
    let _ = r.read_to_string(&mut msg);
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFSIGNALED(status) {
        return Err(format!(
            "child killed by signal {} ({msg})",
            libc::WTERMSIG(status)
        ));
    }
    match libc::WEXITSTATUS(status) {
        0 => Ok(()),
        _ => Err(msg),
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `ret` must be -1 with `want` as errno.
fn refused(what: &str, ret: libc::c_long, want: i32) -> Result<(), String> {
    let e = errno();
    if ret == -1 && e == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: expected errno {want}, got ret {ret} errno {e}"
        ))
    }
}

fn expect_denied<T: std::fmt::Debug>(what: &str, r: std::io::Result<T>) -> Result<(), String> {
    match r {
        Err(e)
            if e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EPERM) =>
        {
            Ok(())
        }
        other => Err(format!("{what}: expected EACCES/EPERM, got {other:?}")),
    }
}

fn expect_ok<T>(what: &str, r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: expected success, got {e}"))
}

/// Libraries and loader config a dynamically linked program needs to start.
fn runtime() -> LockdownBuilder {
    Lockdown::builder()
        .optional(
            portcullis::lockdown::Access::Read,
            "test",
            ["/usr/lib", "/usr/lib64", "/etc/ld.so.cache"],
        )
        .optional(portcullis::lockdown::Access::Write, "test", ["/dev/null"])
}

#[test]
fn reads_only_beneath_read() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    let other = dir.path().join("other");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::create_dir(&other).unwrap();
    std::fs::write(allowed.join("a.txt"), "yes").unwrap();
    std::fs::write(other.join("b.txt"), "no").unwrap();
    assert!(std::fs::read("/etc/passwd").is_ok()); // the parent can
    let (a, o) = (allowed.clone(), other.clone());
    in_child(Lockdown::builder().read([&allowed]), move || {
        let got = expect_ok("read allowed", std::fs::read_to_string(a.join("a.txt")))?;
        if got != "yes" {
            return Err(format!("read {got:?}"));
        }
        expect_ok("list allowed", std::fs::read_dir(&a))?;
        expect_denied("read /etc/shadow", std::fs::read("/etc/shadow"))?;
        expect_denied("read /etc/passwd", std::fs::read("/etc/passwd"))?;
        expect_denied("read outside", std::fs::read(o.join("b.txt")))?;
        expect_denied("list outside", std::fs::read_dir(&o))?;
        // every spelling of the way out resolves to the same inode, and is refused
        expect_denied("read via ..", std::fs::read(a.join("../other/b.txt")))?;
        expect_denied(
            "read via //",
            std::fs::read(format!("{}//b.txt", o.display())),
        )?;
        expect_denied(
            "write allowed (read-only)",
            std::fs::write(a.join("a.txt"), "x"),
        )?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn writes_only_beneath_write() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w");
    let r = dir.path().join("r");
    std::fs::create_dir(&w).unwrap();
    std::fs::create_dir(&r).unwrap();
    std::fs::write(r.join("keep.txt"), "original").unwrap();
    let (w2, r2) = (w.clone(), r.clone());
    in_child(Lockdown::builder().write([&w]).read([&r]), move || {
        expect_ok("create in write", std::fs::write(w2.join("new.txt"), "hi"))?;
        expect_ok("mkdir in write", std::fs::create_dir(w2.join("sub")))?;
        expect_ok(
            "rename in write",
            std::fs::rename(w2.join("new.txt"), w2.join("sub/n.txt")),
        )?;
        expect_ok(
            "remove in write",
            std::fs::remove_file(w2.join("sub/n.txt")),
        )?;
        expect_denied("create outside", std::fs::write(r2.join("evil.txt"), "x"))?;
        expect_denied(
            "truncate outside",
            std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(r2.join("keep.txt")),
        )?;
        expect_denied("remove outside", std::fs::remove_file(r2.join("keep.txt")))?;
        expect_denied("write /tmp", std::fs::write("/tmp/portcullis-escape", "x"))?;
        expect_denied(
            "symlink outside",
            std::os::unix::fs::symlink("/etc/shadow", r2.join("l")),
        )?;
        // a device node, even beneath `write`, is never allowed
        let dev = std::ffi::CString::new(w2.join("sda").to_string_lossy().as_bytes()).unwrap();
        let ret = unsafe { libc::mknod(dev.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(8, 0)) };
        refused("mknod block device", ret.into(), libc::EACCES)?;
        Ok(())
    })
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(r.join("keep.txt")).unwrap(),
        "original"
    );
    assert!(!Path::new("/tmp/portcullis-escape").exists());
}

#[test]
fn exec_only_what_exec_names() {
    let policy = runtime().exec(["/usr/bin/true"]);
    in_child(policy, || {
        let ok = expect_ok(
            "run /usr/bin/true",
            std::process::Command::new("/usr/bin/true").status(),
        )?;
        if !ok.success() {
            return Err(format!("/usr/bin/true: {ok}"));
        }
        expect_denied(
            "exec /bin/sh",
            std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg("id")
                .status(),
        )?;
        expect_denied(
            "exec /usr/bin/id",
            std::process::Command::new("/usr/bin/id").status(),
        )?;
        Ok(())
    })
    .unwrap();
}

fn loader() -> Option<std::path::PathBuf> {
    ["/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
}

/// `ld.so /path/to/prog` maps `prog` with mmap(PROT_EXEC), which Landlock does not check on
/// this kernel. The loader has to be executable for any dynamic program to start, so the
/// trick is closed by keeping other programs unreadable: here `/usr/bin` is not in `read`.
#[test]
fn loader_cannot_run_an_unreadable_program() {
    let Some(ld) = loader() else { return };
    in_child(runtime().exec(["/usr/bin/true"]), move || {
        let out = expect_ok(
            "run the loader",
            std::process::Command::new(&ld).arg("/usr/bin/id").output(),
        )?;
        if out.status.success() || !out.stdout.is_empty() {
            return Err(format!("ld.so ran /usr/bin/id: {out:?}"));
        }
        Ok(())
    })
    .unwrap();
}

/// The documented limit: a program the policy lets the process *read* can be run through
/// the loader. If this starts failing, the kernel closed the hole; update the README.
#[test]
fn loader_runs_a_readable_program_documented_limit() {
    let Some(ld) = loader() else { return };
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("id");
    std::fs::copy("/usr/bin/id", &copy).unwrap();
    let policy = runtime().exec(["/usr/bin/true"]).read([dir.path()]);
    in_child(policy, move || {
        expect_denied("direct exec", std::process::Command::new(&copy).output())?;
        let out = expect_ok(
            "loader",
            std::process::Command::new(&ld).arg(&copy).output(),
        )?;
        if !out.status.success() {
            return Err(format!(
                "expected the documented loader behaviour, got {out:?}"
            ));
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn tcp_connect_only_to_named_ports() {
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let (pa, po) = (
        allowed.local_addr().unwrap().port(),
        other.local_addr().unwrap().port(),
    );
    in_child(Lockdown::builder().connect_tcp([pa]), move || {
        expect_ok("connect allowed", TcpStream::connect(("127.0.0.1", pa)))?;
        expect_denied("connect other", TcpStream::connect(("127.0.0.1", po)))?;
        expect_denied("bind", TcpListener::bind("127.0.0.1:0"))?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn tcp_bind_only_named_ports() {
    let probe = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    in_child(Lockdown::builder().bind_tcp([port]), move || {
        expect_ok("bind allowed", TcpListener::bind(("127.0.0.1", port)))?;
        expect_denied(
            "bind other",
            TcpListener::bind(("127.0.0.1", port.wrapping_add(1).max(1024))),
        )?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn mptcp_raw_packet_and_odd_families_are_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    in_child(Lockdown::builder().connect_tcp([port]), move || {
        let s = |family: i32, kind: i32, proto: i32| unsafe { libc::socket(family, kind, proto) };
        refused(
            "MPTCP v4",
            s(libc::AF_INET, libc::SOCK_STREAM, 262).into(),
            libc::EPERM,
        )?;
        refused(
            "MPTCP v6",
            s(libc::AF_INET6, libc::SOCK_STREAM, 262).into(),
            libc::EPERM,
        )?;
        refused(
            "MPTCP with flags",
            s(
                libc::AF_INET,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                262,
            )
            .into(),
            libc::EPERM,
        )?;
        refused(
            "raw v4",
            s(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP).into(),
            libc::EPERM,
        )?;
        refused(
            "raw v4 cloexec",
            s(
                libc::AF_INET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::IPPROTO_RAW,
            )
            .into(),
            libc::EPERM,
        )?;
        refused(
            "raw v6",
            s(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6).into(),
            libc::EPERM,
        )?;
        refused(
            "packet",
            s(libc::AF_PACKET, libc::SOCK_RAW, 0x0300).into(),
            libc::EPERM,
        )?;
        refused(
            "packet dgram",
            s(libc::AF_PACKET, libc::SOCK_DGRAM, 0).into(),
            libc::EPERM,
        )?;
        refused(
            "SOCK_PACKET",
            s(libc::AF_INET, 10, 0x0300).into(),
            libc::EPERM,
        )?;
        refused(
            "AF_ALG",
            s(libc::AF_ALG, libc::SOCK_SEQPACKET, 0).into(),
            libc::EPERM,
        )?;
        refused(
            "AF_VSOCK",
            s(libc::AF_VSOCK, libc::SOCK_STREAM, 0).into(),
            libc::EPERM,
        )?;
        // plain TCP and UDP sockets still work
        let fd = s(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(format!("plain TCP socket refused: {}", errno()));
        }
        expect_ok("connect allowed", TcpStream::connect(("127.0.0.1", port)))?;
        expect_ok("udp", std::net::UdpSocket::bind("127.0.0.1:0"))?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn escape_syscalls_get_eperm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    in_child(Lockdown::builder().write([&d]), move || {
        let target = std::ffi::CString::new(d.to_string_lossy().as_bytes()).unwrap();
        let sys = |nr: libc::c_long, a: usize, b: usize, c: usize| unsafe {
            libc::syscall(nr, a, b, c, 0usize, 0usize)
        };
        let mut handle = [0u8; 136];
        refused(
            "open_by_handle_at",
            sys(
                libc::SYS_open_by_handle_at,
                libc::AT_FDCWD as usize,
                handle.as_mut_ptr() as usize,
                0,
            ),
            libc::EPERM,
        )?;
        refused(
            "unshare(CLONE_NEWUSER)",
            unsafe { libc::unshare(libc::CLONE_NEWUSER) }.into(),
            libc::EPERM,
        )?;
        refused(
            "unshare(CLONE_NEWNS)",
            unsafe { libc::unshare(libc::CLONE_NEWNS) }.into(),
            libc::EPERM,
        )?;
        let tmpfs = std::ffi::CString::new("tmpfs").unwrap();
        refused(
            "mount",
            unsafe {
                libc::mount(
                    tmpfs.as_ptr(),
                    target.as_ptr(),
                    tmpfs.as_ptr(),
                    0,
                    std::ptr::null(),
                )
            }
            .into(),
            libc::EPERM,
        )?;
        refused(
            "umount2",
            unsafe { libc::umount2(target.as_ptr(), 0) }.into(),
            libc::EPERM,
        )?;
        refused(
            "fsopen",
            sys(libc::SYS_fsopen, tmpfs.as_ptr() as usize, 0, 0),
            libc::EPERM,
        )?;
        refused(
            "chroot",
            unsafe { libc::chroot(target.as_ptr()) }.into(),
            libc::EPERM,
        )?;
        refused("setns", unsafe { libc::setns(0, 0) }.into(), libc::EPERM)?;
        refused(
            "ptrace(TRACEME)",
            sys(libc::SYS_ptrace, libc::PTRACE_TRACEME as usize, 0, 0),
            libc::EPERM,
        )?;
        refused(
            "ptrace(ATTACH 1)",
            sys(libc::SYS_ptrace, libc::PTRACE_ATTACH as usize, 1, 0),
            libc::EPERM,
        )?;
        refused(
            "process_vm_readv",
            sys(libc::SYS_process_vm_readv, 1, 0, 0),
            libc::EPERM,
        )?;
        refused(
            "pidfd_getfd",
            sys(libc::SYS_pidfd_getfd, 0, 0, 0),
            libc::EPERM,
        )?;
        refused("keyctl", sys(libc::SYS_keyctl, 0, 0, 0), libc::EPERM)?;
        refused("add_key", sys(libc::SYS_add_key, 0, 0, 0), libc::EPERM)?;
        refused("bpf", sys(libc::SYS_bpf, 0, 0, 0), libc::EPERM)?;
        refused(
            "io_uring_setup",
            sys(libc::SYS_io_uring_setup, 8, 0, 0),
            libc::EPERM,
        )?;
        refused(
            "userfaultfd",
            sys(libc::SYS_userfaultfd, 0, 0, 0),
            libc::EPERM,
        )?;
        refused(
            "perf_event_open",
            sys(libc::SYS_perf_event_open, 0, 0, 0),
            libc::EPERM,
        )?;
        refused(
            "init_module",
            sys(libc::SYS_init_module, 0, 0, 0),
            libc::EPERM,
        )?;
        refused(
            "kexec_load",
            sys(libc::SYS_kexec_load, 0, 0, 0),
            libc::EPERM,
        )?;
        refused("reboot", sys(libc::SYS_reboot, 0, 0, 0), libc::EPERM)?;
        refused(
            "swapoff",
            sys(libc::SYS_swapoff, target.as_ptr() as usize, 0, 0),
            libc::EPERM,
        )?;
        refused(
            "personality(PER_LINUX32)",
            sys(libc::SYS_personality, 0x0008, 0, 0),
            libc::EPERM,
        )?;
        refused(
            "personality(ADDR_NO_RANDOMIZE)",
            sys(libc::SYS_personality, 0x0040000, 0, 0),
            libc::EPERM,
        )?;
        // personality query and the default still work
        if sys(libc::SYS_personality, 0xffff_ffff, 0, 0) < 0 {
            return Err("personality query refused".to_owned());
        }
        // clone with a namespace flag (the raw syscall; a success would return 0 in a child)
        let ret = sys(
            libc::SYS_clone,
            (libc::CLONE_NEWUSER | libc::SIGCHLD) as usize,
            0,
            0,
        );
        if ret == 0 {
            unsafe { libc::_exit(0) };
        }
        refused("clone(CLONE_NEWUSER)", ret, libc::EPERM)?;
        let ret = sys(
            libc::SYS_clone,
            (libc::CLONE_NEWNET | libc::SIGCHLD) as usize,
            0,
            0,
        );
        if ret == 0 {
            unsafe { libc::_exit(0) };
        }
        refused("clone(CLONE_NEWNET)", ret, libc::EPERM)?;
        // clone3 says ENOSYS, so glibc falls back to clone
        refused("clone3", sys(libc::SYS_clone3, 0, 0, 0), libc::ENOSYS)?;
        #[cfg(target_arch = "x86_64")]
        refused(
            "x32 getpid",
            sys(0x4000_0000 | libc::SYS_getpid, 0, 0, 0),
            libc::EPERM,
        )?;
        // ordinary syscalls still work
        if sys(libc::SYS_getpid, 0, 0, 0) <= 0 {
            return Err("getpid failed".to_owned());
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn threads_and_processes_still_start() {
    in_child(runtime().exec(["/usr/bin/true"]), || {
        let v = std::thread::spawn(|| 41 + 1)
            .join()
            .map_err(|_| "thread panicked")?;
        if v != 42 {
            return Err("thread result".to_owned());
        }
        let st = expect_ok(
            "spawn",
            std::process::Command::new("/usr/bin/true").status(),
        )?;
        if !st.success() {
            return Err(format!("true: {st}"));
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn signals_do_not_leave_the_sandbox() {
    let mut outside = std::process::Command::new("/bin/sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = outside.id() as libc::pid_t;
    let result = in_child(runtime().exec(["/usr/bin/true"]), move || {
        refused(
            "kill outside",
            unsafe { libc::kill(pid, libc::SIGKILL) }.into(),
            libc::EPERM,
        )?;
        refused(
            "kill parent",
            unsafe { libc::kill(libc::getppid(), 0) }.into(),
            libc::EPERM,
        )?;
        // inside the sandbox, signals work
        let mut inner = expect_ok("spawn", std::process::Command::new("/usr/bin/true").spawn())?;
        let _ = inner.wait();
        if unsafe { libc::kill(libc::getpid(), 0) } != 0 {
            return Err("signal to self refused".to_owned());
        }
        Ok(())
    });
    let alive = outside.try_wait().unwrap().is_none();
    let _ = outside.kill();
    let _ = outside.wait();
    result.unwrap();
    assert!(alive, "the outside process was killed");
}

#[test]
fn abstract_unix_sockets_made_outside_are_unreachable() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
    let name = format!("portcullis-test-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _outside = UnixListener::bind_addr(&addr).unwrap();
    assert!(UnixStream::connect_addr(&addr).is_ok()); // reachable before
    in_child(Lockdown::builder(), move || {
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        expect_denied("connect outside abstract", UnixStream::connect_addr(&addr))?;
        let own = SocketAddr::from_abstract_name(format!("{name}-inside").as_bytes()).unwrap();
        let _l = expect_ok("bind own abstract", UnixListener::bind_addr(&own))?;
        expect_ok("connect own abstract", UnixStream::connect_addr(&own))?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_multithreaded_process_is_refused_unchanged() {
    fork_run(|| {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        let l = Lockdown::builder().build().map_err(|e| e.to_string())?;
        let err = match l.apply() {
            Ok(_) => return Err("apply succeeded with two threads".to_owned()),
            Err(e) => e,
        };
        if err.code() != "lockdown.threads" || !err.to_string().contains("portcullis exec") {
            return Err(format!("wrong error: {} {err}", err.code()));
        }
        // nothing changed: files, and a later apply once alone
        expect_ok("read after refusal", std::fs::read("/etc/passwd"))?;
        drop(tx);
        let _ = t.join();
        std::thread::sleep(std::time::Duration::from_millis(50));
        l.apply().map_err(|e| format!("apply alone: {e}"))?;
        expect_denied("read after apply", std::fs::read("/etc/passwd"))?;
        let again = l.apply().err().map(|e| e.code());
        if again != Some("lockdown.already_applied") {
            return Err(format!("second apply: {again:?}"));
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn capabilities_are_gone_even_for_root() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("capabilities_are_gone_even_for_root: needs root, not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "another user's").unwrap();
    std::os::unix::fs::chown(&secret, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    assert!(std::fs::read(&secret).is_ok()); // root can, before
    let s = secret.clone();
    in_child(
        Lockdown::builder().read([dir.path(), Path::new("/proc")]),
        move || {
            let status = expect_ok("status", std::fs::read_to_string("/proc/self/status"))?;
            for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
                let line = status
                    .lines()
                    .find(|l| l.starts_with(key))
                    .ok_or(format!("{key} missing"))?;
                if !line.ends_with("0000000000000000") {
                    return Err(line.to_string());
                }
            }
            if !status
                .lines()
                .any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('1'))
            {
                return Err("NoNewPrivs not set".to_owned());
            }
            expect_denied("root reads 0600 of another user", std::fs::read(&s))?;
            Ok(())
        },
    )
    .unwrap();
}

#[test]
fn keep_caps_keeps_only_what_it_names() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("keep_caps_keeps_only_what_it_names: needs root, not run");
        return;
    }
    in_child(
        Lockdown::builder()
            .read(["/proc"])
            .keep_caps(["NET_BIND_SERVICE"])
            .bind_tcp([81]),
        || {
            let status = expect_ok("status", std::fs::read_to_string("/proc/self/status"))?;
            let eff = status
                .lines()
                .find(|l| l.starts_with("CapEff"))
                .unwrap_or("");
            if !eff.ends_with("0000000000000400") {
                return Err(eff.to_owned());
            }
            expect_ok("bind 81", TcpListener::bind("127.0.0.1:81"))?;
            Ok(())
        },
    )
    .unwrap();
}

#[test]
fn user_switch() {
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    in_child(Lockdown::builder().user("nobody"), || {
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        if uid != 65534 || gid != 65534 {
            return Err(format!("uid {uid} gid {gid}"));
        }
        Ok(())
    })
    .unwrap();
    let err = fork_run(|| {
        match Lockdown::builder()
            .user("no-such-user-x")
            .build()
            .unwrap()
            .apply()
        {
            Err(e) if e.code() == "lockdown.bad_user" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    err.unwrap();
}

#[test]
fn status_says_what_holds() {
    fork_run(|| {
        let s = Lockdown::builder()
            .build()
            .unwrap()
            .apply()
            .map_err(|e| e.to_string())?;
        let line = s.log_line();
        if s.landlock_abi >= 6
            && !line.contains("enforced (calling thread")
            && !line.contains("enforced (all threads")
        {
            return Err(line);
        }
        if !s.no_new_privs || !s.missing.is_empty() || !line.contains("seccomp floor enforced") {
            return Err(line);
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn dry_run_logs_instead_of_refusing() {
    fork_run(|| {
        let s = Lockdown::builder()
            .log_only(true)
            .build()
            .unwrap()
            .apply()
            .map_err(|e| e.to_string())?;
        if !s.log_line().contains("seccomp floor log only") {
            return Err(s.log_line());
        }
        expect_ok(
            "read (Landlock not applied in a dry run)",
            std::fs::read("/etc/passwd"),
        )?;
        let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) };
        if fd < 0 && errno() == libc::EPERM {
            return Err("userfaultfd refused in log mode".to_owned());
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn an_already_open_descriptor_keeps_working() {
    // Documented: Landlock checks at open time. A descriptor opened before stays usable.
    let f = std::fs::File::open("/etc/hostname")
        .or_else(|_| std::fs::File::open("/etc/passwd"))
        .unwrap();
    let fd = f.as_raw_fd();
    fork_run(move || {
        Lockdown::builder()
            .build()
            .unwrap()
            .apply()
            .map_err(|e| e.to_string())?;
        let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
        let mut s = String::new();
        expect_ok("read open fd", f.read_to_string(&mut s))?;
        std::mem::forget(f);
        Ok(())
    })
    .unwrap();
}

mod config {
    use portcullis::config::Config;
    use portcullis::ErrorCode;

    fn load(text: &str) -> Result<Config, portcullis::config::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let r = Config::from_str_named(text, dir.path().join("config"), "portcullis.toml");
        drop(dir);
        r
    }

    #[test]
    fn a_full_table() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_dir = dir.path().join("config");
        std::fs::create_dir_all(&cfg_dir).unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let config = Config::from_str(
            r#"
[egress.partners]
schemes = ["https", "http"]

[command.greet]
program = "/bin/echo"
args = ["{name}"]
params.name = { type = "pattern", pattern = "[a-z]+" }

[lockdown.web]
preset = "ruby"
read = ["/etc/ssl"]
write = ["../tmp"]
connect_tcp = [5432, "partners"]
bind_tcp = [3000]
keep_caps = ["NET_BIND_SERVICE"]
"#,
            &cfg_dir,
        )
        .unwrap();
        let l = config.lockdown("web").unwrap();
        assert_eq!(l.connect_tcp().collect::<Vec<_>>(), [80, 443, 5432]);
        assert_eq!(l.bind_tcp().collect::<Vec<_>>(), [3000]);
        let explain = l.explain();
        let echo = std::fs::canonicalize("/bin/echo").unwrap();
        assert!(
            explain.contains(&format!("exec  {}  (command templates)", echo.display())),
            "{explain}"
        );
        assert!(
            explain.contains("read  /usr/lib  (ruby preset)"),
            "{explain}"
        );
        let tmp = std::fs::canonicalize(dir.path().join("tmp")).unwrap();
        assert!(
            explain.contains(&format!("write {}", tmp.display())),
            "{explain}"
        );
        assert!(explain.contains("CAP_NET_BIND_SERVICE"), "{explain}");
        assert!(
            !explain.contains("/usr/bin  ("),
            "the preset must not make /usr/bin readable: {explain}"
        );
        assert!(config
            .summary()
            .iter()
            .any(|s| s.kind == "lockdown" && s.name == "web"));
        assert_eq!(
            config.lockdown("nope").unwrap_err().code(),
            "config.unknown_name"
        );
    }

    #[test]
    fn every_mistake_points_at_itself() {
        let cases = [
            ("[lockdown.x]\nreed = []\n", "config.unknown_key", ":2:1:"),
            (
                "[lockdown.x]\nconnect_tcp = [0]\n",
                "config.invalid_value",
                ":2:16:",
            ),
            (
                "[lockdown.x]\nconnect_tcp = [70000]\n",
                "config.invalid_value",
                ":2:16:",
            ),
            (
                "[lockdown.x]\nconnect_tcp = [-1]\n",
                "config.invalid_value",
                ":2:16:",
            ),
            (
                "[lockdown.x]\nconnect_tcp = [\"nope\"]\n",
                "config.reference",
                ":2:16:",
            ),
            (
                "[lockdown.x]\nbind_tcp = [0]\n",
                "config.invalid_value",
                ":2:13:",
            ),
            (
                "[lockdown.x]\nread = [\"/no/such/dir\"]\n",
                "config.invalid_value",
                ":2:9:",
            ),
            (
                "[lockdown.x]\nread = \"/proc/self\"\n",
                "config.invalid_value",
                ":2:8:",
            ),
            (
                "[lockdown.x]\nwrite = [\"/proc/1/mem\"]\n",
                "config.invalid_value",
                ":2:10:",
            ),
            (
                "[lockdown.x]\nkeep_caps = [\"ALL\"]\n",
                "config.invalid_value",
                ":2:14:",
            ),
            (
                "[lockdown.x]\npreset = \"rails\"\n",
                "config.invalid_value",
                ":2:10:",
            ),
            (
                "[lockdown.x]\ngroup = \"app\"\n",
                "config.invalid_value",
                ":2:9:",
            ),
            (
                "[lockdown.x]\nbest_effort = \"yes\"\n",
                "config.invalid_type",
                "",
            ),
        ];
        for (text, code, at) in cases {
            let err = load(text).unwrap_err();
            assert_eq!(err.code(), code, "{text}: {err}");
            assert!(err.to_string().contains(at), "{text}: {err}");
        }
        let err = load("[lockdown.x]\nread = [\"/proc/self\"]\n").unwrap_err();
        assert!(err.to_string().contains("binds the pid"), "{err}");
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let config = load("[lockdown.x]\nread = [\"../data\"]\nexec = []\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let l = config.lockdown("x").unwrap();
        assert_eq!(l.rules().len(), 1);
        assert!(l.rules()[0].path.ends_with("data"));
    }
}

/// The caveat `calling_thread_only` accepts, shown: the other thread keeps its file access
/// (seccomp still covers it), while the calling thread and what it forks are restricted.
#[test]
fn calling_thread_only_restricts_the_caller_and_its_forks_not_the_others() {
    fork_run(|| {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<(bool, i64)>();
        let other = std::thread::spawn(move || {
            let _ = rx.recv();
            let read = std::fs::read("/etc/passwd").is_ok();
            let uffd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) };
            let _ = done_tx.send((read, if uffd < 0 { i64::from(errno()) } else { 0 }));
        });
        let status = Lockdown::builder()
            .calling_thread_only(true)
            .build()
            .unwrap()
            .apply()
            .map_err(|e| e.to_string())?;
        if status.unrestricted_threads != 1
            || !status.log_line().contains("1 other threads NOT restricted")
        {
            return Err(status.log_line());
        }
        expect_denied("calling thread", std::fs::read("/etc/passwd"))?;
        fork_run(|| {
            expect_denied("fork of the calling thread", std::fs::read("/etc/passwd")).map(drop)
        })?;
        let _ = tx.send(());
        let (read, uffd_errno) = done_rx.recv().map_err(|e| e.to_string())?;
        let _ = other.join();
        if !read {
            return Err(
                "the other thread was restricted: update the docs, the kernel has TSYNC".to_owned(),
            );
        }
        if uffd_errno != i64::from(libc::EPERM) {
            return Err(format!(
                "seccomp did not cover the other thread: {uffd_errno}"
            ));
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn the_committed_example_has_a_lockdown() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/portcullis.toml");
    let config = portcullis::config::Config::from_path(&file).unwrap();
    let web = config.lockdown("web").unwrap();
    assert_eq!(web.connect_tcp().collect::<Vec<_>>(), [443, 5432]);
    let explain = web.explain();
    assert!(explain.contains("(command templates)"), "{explain}");
    assert!(web
        .rules()
        .iter()
        .any(|r| r.path.ends_with("examples/uploads")
            && r.access == portcullis::lockdown::Access::Write));
}
