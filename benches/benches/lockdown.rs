//! The cost of the seccomp floor on syscalls: `getpid` (allowed by every filter without
//! looking at arguments, so the kernel's seccomp action cache can skip the BPF programs)
//! and `socket`+`close` (whose arguments the floor inspects, so its program runs), each
//! without and then with the lockdown applied. The filtered half runs in a forked child,
//! because a lockdown cannot be undone. The Landlock part of the policy grants the whole
//! filesystem so criterion can write its reports; Landlock does not act on these calls.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench setup: failing fast is right
#![allow(unsafe_code)] // fork/waitpid/_exit and raw syscalls of the measured loop

use std::hint::black_box;

use criterion::Criterion;
use portcullis::lockdown::Lockdown;

fn getpid() -> libc::c_long {
    unsafe { libc::syscall(libc::SYS_getpid) }
}

fn socket_close() {
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0);
    unsafe { libc::close(fd) };
}

fn run(label: &str) {
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("lockdown_syscall");
    g.bench_function(format!("getpid/{label}"), |b| {
        b.iter(|| black_box(getpid()))
    });
    g.bench_function(format!("socket_close/{label}"), |b| b.iter(socket_close));
    g.finish();
    c.final_summary();
}

fn main() {
    run("unfiltered");
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let status = Lockdown::builder()
            .write(["/"])
            .exec(["/"])
            .build()
            .unwrap()
            .apply()
            .unwrap();
        eprintln!("{}", status.log_line());
        run("lockdown");
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "filtered half failed"
    );
}
