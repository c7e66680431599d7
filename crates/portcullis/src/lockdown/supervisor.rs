//! The connect supervisor of `portcullis exec`: seccomp user notification for `connect`,
//! `sendto` (with an address), `sendmsg` and `sendmmsg`, judged by [`ConnectPolicy`] in a
//! process outside the sandbox, which then *performs* each allowed call itself on the
//! child's socket (taken with `pidfd_getfd`) with its own copy of the destination and data.
//! Nothing judged is ever passed back with `SECCOMP_USER_NOTIF_FLAG_CONTINUE`, so a thread
//! rewriting the sockaddr after the check changes nothing.
//!
//! `sendto` with a NULL address (`send()`, the common case on connected sockets) is allowed
//! by the BPF program itself, from its registers: such a send goes to the peer an earlier,
//! judged `connect` fixed, and costs nothing extra.
//!
//! Layout: [`run`] forks; the child installs the filter (`SECCOMP_FILTER_FLAG_NEW_LISTENER`),
//! tells the parent the listener's number over a pipe, and the parent takes it with
//! `pidfd_getfd`; the child closes its copy, then runs the caller's closure (apply the
//! lockdown, execve). The parent receives notifications on an elastic pool of threads (a
//! slow blocking connect gets a thread of its own; others keep being served), forwards
//! signals, reaps children, and returns the child's exit. If the parent dies, the listener
//! closes and the kernel fails every notifying syscall of the child with `ENOSYS`.
#![allow(unsafe_code)] // seccomp(2), the notification ioctls, pidfd_getfd, process_vm_readv/writev, fork, sigwaitinfo: no safe wrappers exist; each block passes buffers owned by this frame

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::connect_policy::{ConnectPolicy, Destination, Refusal};
use super::LockdownError;

/// How the supervised program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// The status a shell would report: the code, or 128 + the signal.
    pub fn status(self) -> i32 {
        match self {
            Self::Code(c) => c,
            Self::Signal(s) => 128 + s,
        }
    }
}

/// Counts kept by the supervisor, for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Calls judged (connects, addressed sends, each message of a sendmmsg).
    pub judged: u64,
    /// Calls refused.
    pub refused: u64,
    /// Refusals let through by report mode.
    pub reported: u64,
}

// Larger payloads are sent in part (stream: a short write) or refused (datagram: EMSGSIZE).
const MAX_DATA: usize = 1 << 20;
const MAX_CONTROL: usize = 64 * 1024;
const MAX_IOV: usize = 1024; // UIO_MAXIOV
const MAX_MMSG: usize = 1024;
const MAX_WORKERS: usize = 256;
const KEEP_IDLE: usize = 2;
const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// Signals `portcullis exec` passes on to the program.
const FORWARDED: [libc::c_int; 10] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGALRM,
];

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn cvt(ret: libc::c_long) -> Result<libc::c_long, i32> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// The notifying filter: foreign architectures killed, x32 numbers and io_uring (whose
/// connect would bypass seccomp) refused, `sendto` with a NULL address allowed, `connect`,
/// addressed `sendto`, `sendmsg`, `sendmmsg` to the supervisor, the rest allowed.
fn program() -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    let stmt = |code, k| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k, jt, jf| libc::sock_filter {
        code: JEQ_K,
        jt,
        jf,
        k,
    };
    let nr = |n: libc::c_long| n as u32;
    let allow = libc::SECCOMP_RET_ALLOW;
    let notify = libc::SECCOMP_RET_USER_NOTIF;
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let arg4_lo = 16 + 8 * 4;
    vec![
        /* 0 */ stmt(LD_W_ABS, 4),
        /* 1 */ jeq(AUDIT_ARCH, 1, 0),
        /* 2 */ stmt(RET_K, libc::SECCOMP_RET_KILL_PROCESS),
        /* 3 */ stmt(LD_W_ABS, 0),
        /* 4 */
        libc::sock_filter {
            code: JGE_K,
            jt: 0,
            jf: 1,
            k: 0x4000_0000,
        },
        /* 5 */ stmt(RET_K, eperm),
        /* 6 */ jeq(nr(libc::SYS_connect), 6, 0),
        /* 7 */ jeq(nr(libc::SYS_sendmsg), 5, 0),
        /* 8 */ jeq(nr(libc::SYS_sendmmsg), 4, 0),
        /* 9 */ jeq(nr(libc::SYS_io_uring_setup), 4, 0),
        /* 10 */ jeq(nr(libc::SYS_sendto), 4, 0),
        /* 11 */ stmt(RET_K, allow),
        /* 12 */ stmt(RET_K, notify),
        /* 13 */ stmt(RET_K, notify),
        /* 14 */ stmt(RET_K, eperm),
        // sendto: the address pointer, both halves, must be 0 to pass without asking
        /* 15 */
        stmt(LD_W_ABS, arg4_lo),
        /* 16 */ jeq(0, 0, 3),
        /* 17 */ stmt(LD_W_ABS, arg4_lo + 4),
        /* 18 */ jeq(0, 0, 1),
        /* 19 */ stmt(RET_K, allow),
        /* 20 */ stmt(RET_K, notify),
    ]
}

/// Installs the notifying filter on the calling (only) thread; returns the listener.
fn install_listener() -> io::Result<RawFd> {
    let mut filter = program();
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // Not SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: a signal interrupts the program's wait as
    // it would interrupt the call (Ruby's Timeout relies on it).
    let flags = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    // SAFETY: prog points at `filter`, alive for the call; the kernel copies it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::addr_of!(prog),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd as RawFd)
}

fn pidfd_open(pid: libc::pid_t, flags: libc::c_uint) -> Result<OwnedFd, i32> {
    // SAFETY: integer arguments only.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) })?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn pidfd_getfd(pidfd: &OwnedFd, fd: RawFd) -> Result<OwnedFd, i32> {
    // SAFETY: integer arguments only.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) })?;
    // SAFETY: the kernel just returned this descriptor (O_CLOEXEC); nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The child's thread stopped in a notifying syscall.
struct Target<'a> {
    tid: libc::pid_t,
    id: u64,
    listener: &'a OwnedFd,
    pidfd: OwnedFd,
}

impl Target<'_> {
    fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, i32> {
        let mut buf = vec![0u8; len];
        if len == 0 {
            return Ok(buf);
        }
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: len,
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: len,
        };
        // SAFETY: `local` covers `buf`, owned here; `remote` is only read by the kernel in
        // the other process, which checks it.
        let n = unsafe { libc::process_vm_readv(self.tid, &local, 1, &remote, 1, 0) };
        if n < 0 || n as usize != len {
            return Err(libc::EFAULT);
        }
        Ok(buf)
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), i32> {
        let local = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: data.len(),
        };
        // SAFETY: `local` covers `data`, which the kernel only reads.
        let n = unsafe { libc::process_vm_writev(self.tid, &local, 1, &remote, 1, 0) };
        if n < 0 || n as usize != data.len() {
            return Err(libc::EFAULT);
        }
        Ok(())
    }

    /// The notification is still pending: the memory read belonged to the stopped thread.
    fn valid(&self) -> Result<(), i32> {
        let mut id = self.id;
        // SAFETY: `id` is a live u64, as the ioctl expects.
        let r = unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
                std::ptr::addr_of_mut!(id),
            )
        };
        if r < 0 {
            Err(libc::ENOENT)
        } else {
            Ok(())
        }
    }

    fn comm(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/comm", self.tid))
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_else(|_| "?".to_owned())
    }

    fn sigpipe(&self) {
        // SAFETY: integer arguments and a NULL siginfo.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGPIPE,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
        }
    }
}

fn sockopt_int(fd: &OwnedFd, opt: libc::c_int) -> Result<libc::c_int, i32> {
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and len are live locals of the sizes passed.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            std::ptr::addr_of_mut!(v).cast(),
            &mut len,
        )
    };
    if r < 0 {
        Err(errno())
    } else {
        Ok(v)
    }
}

fn is_blocking(fd: &OwnedFd) -> bool {
    // SAFETY: integer arguments only.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    fl >= 0 && fl & libc::O_NONBLOCK == 0
}

/// A pathname socket, opened `O_PATH` inside the child's root (symlinks followed there,
/// magic links refused), and the path it really is. Connecting through
/// `/proc/self/fd/N` reaches exactly the socket that was judged.
fn resolve_unix(tid: libc::pid_t, path: &Path) -> Result<(OwnedFd, PathBuf), i32> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
    let raw = |e: rustix::io::Errno| e.raw_os_error();
    let root = rustix::fs::open(
        format!("/proc/{tid}/root"),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(raw)?;
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::fs::read_link(format!("/proc/{tid}/cwd"))
            .map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?
            .join(path)
    };
    let fd = openat2(
        &root,
        &full,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(raw)?;
    let st = rustix::fs::fstat(&fd).map_err(raw)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Socket {
        return Err(libc::ECONNREFUSED);
    }
    let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?;
    Ok((fd, real))
}

fn sockaddr_un(path: &str) -> Vec<u8> {
    let mut v = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    v.extend_from_slice(path.as_bytes());
    v.push(0);
    v
}

fn raw_connect(sock: &OwnedFd, name: &[u8]) -> Result<(), i32> {
    // SAFETY: name is a live buffer of the length passed.
    let r = unsafe {
        libc::connect(
            sock.as_raw_fd(),
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// One message to send: the destination (as the supervisor will pass it), data, control.
struct Message {
    name: Option<Vec<u8>>,
    data: Vec<u8>,
    control: Vec<u8>,
    /// Descriptors taken from the child for SCM_RIGHTS; closed after the send.
    _fds: Vec<OwnedFd>,
    dest: Option<Destination>,
    /// The opened pathname socket the name points at, kept open until the send.
    _unix: Option<OwnedFd>,
}

/// What goes back to the program.
enum Answer {
    Value(i64),
    Errno(i32),
}

struct Shared {
    listener: OwnedFd,
    policy: ConnectPolicy,
    idle: AtomicUsize,
    workers: AtomicUsize,
    judged: AtomicU64,
    refused: AtomicU64,
    reported: AtomicU64,
}

impl Shared {
    fn recv(&self) -> io::Result<libc::seccomp_notif> {
        // SAFETY: seccomp_notif is plain data; the kernel requires it zeroed.
        let mut n: libc::seccomp_notif = unsafe { zeroed() };
        // SAFETY: n is a live, correctly sized seccomp_notif.
        let r = unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                std::ptr::addr_of_mut!(n),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n)
    }

    fn respond(&self, id: u64, answer: Answer) {
        let (val, error) = match answer {
            Answer::Value(v) => (v, 0),
            Answer::Errno(e) => (0, -e),
        };
        let mut resp = libc::seccomp_notif_resp {
            id,
            val,
            error,
            flags: 0,
        };
        // SAFETY: resp is a live, correctly sized seccomp_notif_resp. ENOENT (the thread
        // was killed meanwhile) needs nothing done.
        unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                std::ptr::addr_of_mut!(resp),
            );
        }
    }

    /// Judges, logs and counts. `Ok` means go on and perform the call.
    fn decide(
        &self,
        t: &Target<'_>,
        call: &str,
        dest: &Destination,
        stream: bool,
    ) -> Result<(), i32> {
        self.judged.fetch_add(1, Ordering::Relaxed);
        match self.policy.judge(dest, stream) {
            Ok(()) => Ok(()),
            Err(r) => {
                let report = self.policy.is_report() && !r.floor;
                self.log(t, call, dest, &r, report);
                if report {
                    self.reported.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                } else {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    Err(r.errno)
                }
            }
        }
    }

    fn log(&self, t: &Target<'_>, call: &str, dest: &Destination, r: &Refusal, report: bool) {
        eprintln!(
            "portcullis supervisor: {} {call} to {dest} by pid {} ({}): {}: {}",
            if report {
                "would refuse (report mode, allowed)"
            } else {
                "refused"
            },
            t.tid,
            t.comm(),
            r.code,
            r.reason
        );
    }

    /// Before a call that may block: make sure another thread is receiving.
    fn before_blocking(self: &Arc<Self>) {
        if self.idle.load(Ordering::SeqCst) == 0 {
            spawn_worker(self);
        }
    }

    fn handle(self: &Arc<Self>, n: &libc::seccomp_notif) -> Answer {
        match self.handle_inner(n) {
            Ok(a) => a,
            Err(e) => Answer::Errno(e),
        }
    }

    fn handle_inner(self: &Arc<Self>, n: &libc::seccomp_notif) -> Result<Answer, i32> {
        let tid = n.pid as libc::pid_t;
        let args = n.data.args;
        let t = Target {
            tid,
            id: n.id,
            listener: &self.listener,
            pidfd: pidfd_open(tid, PIDFD_THREAD)?,
        };
        let nr = libc::c_long::from(n.data.nr);
        match nr {
            libc::SYS_connect => self.connect(&t, args),
            libc::SYS_sendto => self.sendto(&t, args),
            libc::SYS_sendmsg => self.sendmsg(&t, args),
            libc::SYS_sendmmsg => self.sendmmsg(&t, args),
            _ => Err(libc::ENOSYS),
        }
    }

    /// The child's socket, its type, and whether it is an IP stream.
    fn socket(t: &Target<'_>, fd: u64) -> Result<(OwnedFd, bool), i32> {
        t.valid()?;
        let sock = pidfd_getfd(&t.pidfd, fd as i32 as RawFd)?;
        let kind = sockopt_int(&sock, libc::SO_TYPE)?;
        Ok((sock, kind == libc::SOCK_STREAM))
    }

    /// Reads a sockaddr and returns (bytes to pass, destination, pathname socket fd).
    fn name(t: &Target<'_>, addr: u64, len: u64) -> Result<(Vec<u8>, Destination), i32> {
        if len > size_of::<libc::sockaddr_storage>() as u64 {
            return Err(libc::EINVAL);
        }
        let bytes = t.read(addr, len as usize)?;
        let dest = Destination::parse(&bytes).map_err(|e| e.0)?;
        Ok((bytes, dest))
    }

    /// For a pathname socket: resolve, and judge the real path; the name to pass becomes
    /// the opened file. For the rest: judge the address as read.
    fn judge_name(
        &self,
        t: &Target<'_>,
        call: &str,
        bytes: Vec<u8>,
        dest: Destination,
        stream: bool,
    ) -> Result<(Vec<u8>, Option<OwnedFd>), i32> {
        match &dest {
            Destination::UnixPath(p) => match resolve_unix(t.tid, p) {
                Ok((fd, real)) => {
                    self.decide(t, call, &Destination::UnixPath(real), stream)?;
                    let name = sockaddr_un(&format!("/proc/self/fd/{}", fd.as_raw_fd()));
                    Ok((name, Some(fd)))
                }
                Err(e) => {
                    // A name that does not resolve reaches nothing: the kernel's answer
                    // (ENOENT…), unlogged (glibc probes /var/run/nscd/socket in every
                    // process), except a container-runtime name, which is logged.
                    let runtime = p.file_name().is_some_and(|n| {
                        super::connect_policy::RUNTIME_SOCKETS
                            .contains(&n.to_string_lossy().as_ref())
                    });
                    if runtime {
                        self.decide(t, call, &dest, stream)?;
                    }
                    Err(e)
                }
            },
            _ => {
                self.decide(t, call, &dest, stream)?;
                Ok((bytes, None))
            }
        }
    }

    fn connect(self: &Arc<Self>, t: &Target<'_>, args: [u64; 6]) -> Result<Answer, i32> {
        let (bytes, dest) = Self::name(t, args[1], args[2])?;
        let (sock, stream) = Self::socket(t, args[0])?; // checks the notification is valid
        let (name, _keep) = self.judge_name(t, "connect", bytes, dest, stream)?;
        if is_blocking(&sock) {
            // A blocking connect holds this thread until it ends (the handshake, or
            // SO_SNDTIMEO); the program's side is interrupted by signals as natively (no
            // WAIT_KILLABLE_RECV). Starting it non-blocking and polling would free the
            // thread sooner but measured +10 µs per loopback connect.
            self.before_blocking();
        }
        raw_connect(&sock, &name).map(|()| Answer::Value(0))
    }

    fn sendto(self: &Arc<Self>, t: &Target<'_>, args: [u64; 6]) -> Result<Answer, i32> {
        let flags = args[3] as i32;
        let len = args[2] as usize;
        let data = t.read(args[1], len.min(MAX_DATA))?;
        let (sock, stream) = if args[4] == 0 {
            // (the filter lets these through; should one arrive, it has no destination)
            Self::socket(t, args[0])?
        } else {
            let (bytes, dest) = Self::name(t, args[4], args[5])?;
            let (sock, stream) = Self::socket(t, args[0])?;
            let (name, keep) = self.judge_name(t, "sendto", bytes, dest, stream)?;
            if !stream && len > MAX_DATA {
                return Err(libc::EMSGSIZE);
            }
            return self.send_one(t, &sock, Some(&name), &data, &[], flags, keep);
        };
        if !stream && len > MAX_DATA {
            return Err(libc::EMSGSIZE);
        }
        self.send_one(t, &sock, None, &data, &[], flags, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn send_one(
        self: &Arc<Self>,
        t: &Target<'_>,
        sock: &OwnedFd,
        name: Option<&[u8]>,
        data: &[u8],
        control: &[u8],
        flags: i32,
        _keep: Option<OwnedFd>,
    ) -> Result<Answer, i32> {
        if is_blocking(sock) && flags & libc::MSG_DONTWAIT == 0 {
            self.before_blocking();
        }
        let n = sendmsg_raw(sock, name, data, control, flags | libc::MSG_NOSIGNAL);
        match n {
            Ok(n) => Ok(Answer::Value(n as i64)),
            Err(e) => {
                if e == libc::EPIPE && flags & libc::MSG_NOSIGNAL == 0 {
                    t.sigpipe();
                }
                Err(e)
            }
        }
    }

    /// Reads one msghdr and what it points at; SCM_RIGHTS descriptors are taken from the
    /// child; other SOL_SOCKET control messages (credentials, marks) are refused, as the
    /// kernel would check them against the supervisor's privileges.
    fn read_msghdr(
        &self,
        t: &Target<'_>,
        pidfd: &OwnedFd,
        addr: u64,
        stream: bool,
    ) -> Result<Message, i32> {
        let raw = t.read(addr, size_of::<libc::msghdr>())?;
        // SAFETY: raw holds size_of::<msghdr>() bytes; msghdr is plain data (pointers are
        // only read as numbers, never dereferenced here).
        let mh: libc::msghdr = unsafe { std::ptr::read_unaligned(raw.as_ptr().cast()) };
        let iovlen = mh.msg_iovlen as usize;
        if iovlen > MAX_IOV {
            return Err(libc::EMSGSIZE);
        }
        let iov_raw = t.read(mh.msg_iov as u64, iovlen * size_of::<libc::iovec>())?;
        let mut data = Vec::new();
        let mut total: usize = 0;
        for i in 0..iovlen {
            // SAFETY: iov_raw holds iovlen iovecs; plain data.
            let iov: libc::iovec = unsafe {
                std::ptr::read_unaligned(iov_raw.as_ptr().add(i * size_of::<libc::iovec>()).cast())
            };
            total = total.saturating_add(iov.iov_len);
            let room = MAX_DATA.saturating_sub(data.len());
            let take = iov.iov_len.min(room);
            if take > 0 {
                data.extend(t.read(iov.iov_base as u64, take)?);
            }
        }
        if total > MAX_DATA && !stream {
            return Err(libc::EMSGSIZE);
        }
        let clen = mh.msg_controllen;
        if clen > MAX_CONTROL {
            return Err(libc::ENOBUFS);
        }
        let mut control = if clen > 0 && !mh.msg_control.is_null() {
            t.read(mh.msg_control as u64, clen)?
        } else {
            Vec::new()
        };
        let fds = translate_control(&mut control, pidfd)?;
        let (name, dest) = if mh.msg_name.is_null() || mh.msg_namelen == 0 {
            (None, None)
        } else {
            let (b, d) = Self::name(t, mh.msg_name as u64, u64::from(mh.msg_namelen))?;
            (Some(b), Some(d))
        };
        Ok(Message {
            name,
            data,
            control,
            _fds: fds,
            dest,
            _unix: None,
        })
    }

    fn judge_message(
        &self,
        t: &Target<'_>,
        call: &str,
        m: &mut Message,
        stream: bool,
    ) -> Result<(), i32> {
        if let (Some(bytes), Some(dest)) = (m.name.take(), m.dest.clone()) {
            let (name, keep) = self.judge_name(t, call, bytes, dest, stream)?;
            m.name = Some(name);
            m._unix = keep;
        }
        Ok(())
    }

    fn sendmsg(self: &Arc<Self>, t: &Target<'_>, args: [u64; 6]) -> Result<Answer, i32> {
        let flags = args[2] as i32;
        let (sock, stream) = Self::socket(t, args[0])?;
        let mut m = self
            .read_msghdr(t, &t.pidfd, args[1], stream)
            .map_err(|e| self.ancillary(t, "sendmsg", e))?;
        t.valid()?;
        self.judge_message(t, "sendmsg", &mut m, stream)?;
        self.send_one(
            t,
            &sock,
            m.name.as_deref(),
            &m.data,
            &m.control,
            flags,
            None,
        )
    }

    fn sendmmsg(self: &Arc<Self>, t: &Target<'_>, args: [u64; 6]) -> Result<Answer, i32> {
        let vlen = (args[2] as usize).min(MAX_MMSG);
        let flags = args[3] as i32;
        let (sock, stream) = Self::socket(t, args[0])?;
        let entry = size_of::<libc::mmsghdr>();
        let mut msgs = Vec::with_capacity(vlen);
        for i in 0..vlen {
            let m = self
                .read_msghdr(t, &t.pidfd, args[1] + (i * entry) as u64, stream)
                .map_err(|e| self.ancillary(t, "sendmmsg", e))?;
            msgs.push(m);
        }
        t.valid()?;
        let mut sent = 0usize;
        for (i, m) in msgs.iter_mut().enumerate() {
            let r = self.judge_message(t, "sendmmsg", m, stream).and_then(|()| {
                self.send_one(
                    t,
                    &sock,
                    m.name.as_deref(),
                    &m.data,
                    &m.control,
                    flags,
                    None,
                )
            });
            match r {
                Ok(Answer::Value(n)) => {
                    let at = args[1] + (i * entry + size_of::<libc::msghdr>()) as u64;
                    t.write(at, &(n as u32).to_ne_bytes())?;
                    sent += 1;
                }
                Ok(Answer::Errno(e)) | Err(e) => {
                    if sent == 0 {
                        return Err(e);
                    }
                    break;
                }
            }
        }
        Ok(Answer::Value(sent as i64))
    }

    /// Logs an ancillary-data refusal (other errors pass through unlogged).
    fn ancillary(&self, t: &Target<'_>, call: &str, e: i32) -> i32 {
        if e == libc::EOPNOTSUPP {
            self.refused.fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "portcullis supervisor: refused {call} by pid {} ({}): supervisor.ancillary: control messages other than SCM_RIGHTS and IP/IPv6/UDP options (credentials, marks, timestamps) would be checked against the supervisor's privileges, so they are refused",
                t.tid,
                t.comm()
            );
        }
        e
    }
}

/// Checks control messages and replaces SCM_RIGHTS descriptors (numbers in the child)
/// by the supervisor's copies of the same files.
fn translate_control(control: &mut [u8], pidfd: &OwnedFd) -> Result<Vec<OwnedFd>, i32> {
    let hdr = size_of::<libc::cmsghdr>();
    let align = |n: usize| (n + size_of::<usize>() - 1) & !(size_of::<usize>() - 1);
    let mut fds = Vec::new();
    let mut off = 0;
    while off + hdr <= control.len() {
        // SAFETY: control holds at least `hdr` bytes at `off`; cmsghdr is plain data.
        let c: libc::cmsghdr =
            unsafe { std::ptr::read_unaligned(control.as_ptr().add(off).cast()) };
        let len = c.cmsg_len;
        if len < hdr || off + len > control.len() {
            return Err(libc::EINVAL);
        }
        let ok = match (c.cmsg_level, c.cmsg_type) {
            (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                let mut p = off + hdr;
                while p + 4 <= off + len {
                    let child_fd = i32::from_ne_bytes([
                        control[p],
                        control[p + 1],
                        control[p + 2],
                        control[p + 3],
                    ]);
                    let mine = pidfd_getfd(pidfd, child_fd)?;
                    control[p..p + 4].copy_from_slice(&mine.as_raw_fd().to_ne_bytes());
                    fds.push(mine);
                    p += 4;
                }
                true
            }
            (libc::SOL_IP, libc::IP_PKTINFO | libc::IP_TTL | libc::IP_TOS) => true,
            (
                libc::SOL_IPV6,
                libc::IPV6_PKTINFO | libc::IPV6_HOPLIMIT | libc::IPV6_TCLASS | libc::IPV6_DONTFRAG,
            ) => true,
            (libc::SOL_UDP, libc::UDP_SEGMENT) => true,
            _ => false,
        };
        if !ok {
            return Err(libc::EOPNOTSUPP);
        }
        off += align(len);
    }
    Ok(fds)
}

fn sendmsg_raw(
    sock: &OwnedFd,
    name: Option<&[u8]>,
    data: &[u8],
    control: &[u8],
    flags: i32,
) -> Result<usize, i32> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; zeroed is valid (no name, no iov, no control).
    let mut mh: libc::msghdr = unsafe { zeroed() };
    if let Some(n) = name {
        mh.msg_name = n.as_ptr() as *mut libc::c_void;
        mh.msg_namelen = n.len() as libc::socklen_t;
    }
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    if !control.is_empty() {
        mh.msg_control = control.as_ptr() as *mut libc::c_void;
        mh.msg_controllen = control.len();
    }
    // SAFETY: every pointer in mh refers to a buffer borrowed for the call.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &mh, flags) };
    if n < 0 {
        Err(errno())
    } else {
        Ok(n as usize)
    }
}

fn spawn_worker(shared: &Arc<Shared>) {
    if shared.workers.fetch_add(1, Ordering::SeqCst) >= MAX_WORKERS {
        shared.workers.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let s = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("portcullis-supervisor".to_owned())
        .stack_size(256 * 1024)
        .spawn(move || worker(&s));
    if spawned.is_err() {
        shared.workers.fetch_sub(1, Ordering::SeqCst);
    }
}

fn worker(shared: &Arc<Shared>) {
    loop {
        shared.idle.fetch_add(1, Ordering::SeqCst);
        let got = shared.recv();
        let was_idle = shared.idle.fetch_sub(1, Ordering::SeqCst);
        match got {
            Ok(n) => {
                if was_idle == 1 {
                    // the last receiver took this one: keep one receiving
                    spawn_worker(shared);
                }
                let answer = shared.handle(&n);
                shared.respond(n.id, answer);
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => continue,
            Err(_) => break,
        }
        if shared.idle.load(Ordering::SeqCst) >= KEEP_IDLE {
            break;
        }
    }
    shared.workers.fetch_sub(1, Ordering::SeqCst);
}

fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { zeroed() };
    // SAFETY: set is a live sigset_t.
    unsafe {
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
    }
    set
}

fn write_all(fd: &OwnedFd, bytes: &[u8]) -> bool {
    rustix::io::write(fd, bytes).is_ok_and(|n| n == bytes.len())
}

fn read_exact(fd: &OwnedFd, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        match rustix::io::read(fd, &mut buf[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
    true
}

/// Forks; the child installs the notifying filter, hands the listener over, and runs
/// `child` (which applies the lockdown and execs, returning a message only on failure);
/// the parent supervises until the child exits, then returns how it ended and the counts.
///
/// `ids`: the `(uid, gid)` the child's lockdown switches to ([`super::Lockdown::switch_ids`]);
/// the supervisor switches to them too once it holds the listener (all its capabilities go
/// with root), so it needs no `CAP_SYS_PTRACE` to read the child's memory and lends no
/// privilege when it connects for the child.
///
/// Call it from a single-threaded process (`portcullis exec` before anything else).
/// Refuses with `lockdown.threads` otherwise, and with `lockdown.unsupported` when the
/// kernel lacks seccomp user notification or `pidfd_getfd`.
///
/// ```no_run
/// use std::os::unix::process::CommandExt;
/// use portcullis::lockdown::{supervisor, Lockdown};
/// let lockdown = Lockdown::builder().read(["/usr", "/etc"]).exec(["/usr/bin/curl"]).build()?;
/// let ids = lockdown.switch_ids()?;
/// let (exit, counts) = supervisor::run(lockdown.connect_policy(), ids, || {
///     if let Err(e) = lockdown.apply() {
///         return e.to_string();
///     }
///     std::process::Command::new("/usr/bin/curl").arg("https://example.com/").exec().to_string()
/// })?;
/// eprintln!("{} refused", counts.refused);
/// supervisor::exit_like(exit);
/// # Ok::<(), portcullis::lockdown::LockdownError>(())
/// ```
pub fn run<F: FnOnce() -> String>(
    policy: ConnectPolicy,
    ids: Option<(u32, u32)>,
    child: F,
) -> Result<(Exit, Counts), LockdownError> {
    let threads = super::sys::thread_count().unwrap_or(0);
    if threads != 1 {
        return Err(LockdownError::Threads {
            count: threads,
            abi: super::sys::landlock_abi(),
        });
    }
    let failed = |step: &'static str| {
        move |e: rustix::io::Errno| LockdownError::Failed {
            step,
            source: io::Error::from_raw_os_error(e.raw_os_error()),
        }
    };
    let (up_r, up_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(failed("pipe"))?;
    let (ack_r, ack_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(failed("pipe"))?;
    let mut wait = FORWARDED.to_vec();
    wait.push(libc::SIGCHLD);
    let blocked = sigset(&wait);
    // SAFETY: sigset_t is plain data.
    let mut old: libc::sigset_t = unsafe { zeroed() };
    // SAFETY: both sets are live; the process has one thread.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &blocked, &mut old) };
    // SAFETY: the process has one thread, so the child is a faithful copy; it only runs
    // this function's code and then `child`, and leaves by exec or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        // SAFETY: restores the mask saved above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        return Err(LockdownError::Failed {
            step: "fork",
            source: io::Error::last_os_error(),
        });
    }
    if pid == 0 {
        drop(up_r);
        drop(ack_w);
        let code: i32 = match install_listener() {
            Ok(fd) => fd,
            Err(e) => -e.raw_os_error().unwrap_or(libc::EINVAL),
        };
        let mut ack = [0u8; 1];
        if !write_all(&up_w, &code.to_ne_bytes()) || code < 0 || !read_exact(&ack_r, &mut ack) {
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(125) };
        }
        // SAFETY: closing the child's copy of the listener; the parent holds its own.
        unsafe { libc::close(code) };
        drop(up_w);
        drop(ack_r);
        // SAFETY: restores the mask the program should start with.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        let message = child();
        eprintln!("{message}");
        // SAFETY: as above.
        unsafe { libc::_exit(126) };
    }
    drop(up_w);
    drop(ack_r);
    let mut buf = [0u8; 4];
    let got = read_exact(&up_r, &mut buf);
    let code = i32::from_ne_bytes(buf);
    let listener = if got && code >= 0 {
        pidfd_open(pid, 0).and_then(|pidfd| pidfd_getfd(&pidfd, code))
    } else if got {
        Err(-code)
    } else {
        Err(libc::ECHILD)
    };
    let listener = match listener {
        Ok(l) => l,
        Err(e) => {
            // SAFETY: integer arguments only; reaps the child we made.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
                libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            }
            return Err(LockdownError::Unsupported {
                missing: format!(
                    "the connect supervisor (seccomp user notification and pidfd_getfd, Linux 5.19+): {}",
                    io::Error::from_raw_os_error(e)
                ),
            });
        }
    };
    // Wake the supervisor on the notifying thread's CPU (Linux 6.6+): a connect is a
    // synchronous round trip, and this saves a cross-CPU wake-up each way. Optional.
    const SECCOMP_IOCTL_NOTIF_SET_FLAGS: libc::Ioctl = 0x4008_2104; // _IOW('!', 4, __u64)
    const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: libc::c_ulong = 1;
    // SAFETY: the flag is passed by value; no memory is involved.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
        )
    };
    if let Some((uid, gid)) = ids.filter(|&(u, _)| u != super::sys::uid()) {
        if let Err(source) = super::sys::switch_user(uid, gid) {
            // SAFETY: integer arguments only; reaps the child we made.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            return Err(LockdownError::Failed {
                step: "supervisor user switch",
                source,
            });
        }
    }
    let _ = write_all(&ack_w, b"k");
    drop(ack_w);
    // SAFETY: integer arguments only. Orphans of the program are reparented to us and reaped.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let shared = Arc::new(Shared {
        listener,
        policy,
        idle: AtomicUsize::new(0),
        workers: AtomicUsize::new(0),
        judged: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        reported: AtomicU64::new(0),
    });
    for _ in 0..KEEP_IDLE {
        spawn_worker(&shared);
    }
    let exit = supervise_signals(pid, &blocked);
    let counts = Counts {
        judged: shared.judged.load(Ordering::Relaxed),
        refused: shared.refused.load(Ordering::Relaxed),
        reported: shared.reported.load(Ordering::Relaxed),
    };
    Ok((exit, counts))
}

/// Waits for signals: forwards the forwardable ones sent by a process (a terminal's
/// SIGINT already reached the whole foreground group, the program included), reaps
/// children, returns when the program exits.
fn supervise_signals(child: libc::pid_t, set: &libc::sigset_t) -> Exit {
    loop {
        // SAFETY: siginfo_t is plain data.
        let mut info: libc::siginfo_t = unsafe { zeroed() };
        // SAFETY: set and info are live.
        let sig = unsafe { libc::sigwaitinfo(set, &mut info) };
        if sig < 0 {
            continue;
        }
        if sig == libc::SIGCHLD {
            loop {
                let mut status = 0;
                // SAFETY: status is a live int.
                let p = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                if p <= 0 {
                    break;
                }
                if p == child {
                    if libc::WIFSIGNALED(status) {
                        return Exit::Signal(libc::WTERMSIG(status));
                    }
                    return Exit::Code(libc::WEXITSTATUS(status));
                }
            }
        } else if info.si_code <= 0 {
            // SI_USER, SI_QUEUE, SI_TKILL: from a process, not the terminal
            // SAFETY: integer arguments only.
            unsafe { libc::kill(child, sig) };
        }
    }
}

/// Ends this process the way the program ended: its exit code, or the same signal.
pub fn exit_like(exit: Exit) -> ! {
    if let Exit::Signal(s) = exit {
        // SAFETY: resetting a disposition and unblocking: integer arguments and a live set.
        unsafe {
            libc::signal(s, libc::SIG_DFL);
            let set = sigset(&[s]);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(s);
        }
    }
    std::process::exit(exit.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_jumps_stay_inside() {
        let p = program();
        for (i, ins) in p.iter().enumerate() {
            if ins.code == 0x15 || ins.code == 0x35 {
                assert!(i + 1 + usize::from(ins.jt) < p.len(), "{i}");
                assert!(i + 1 + usize::from(ins.jf) < p.len(), "{i}");
            }
        }
        assert_eq!(p.last().map(|i| i.k), Some(libc::SECCOMP_RET_USER_NOTIF));
    }

    #[test]
    fn control_messages_other_than_rights_and_ip_options_are_refused() {
        let pidfd = pidfd_open(std::process::id() as i32, 0).unwrap();
        // SCM_CREDENTIALS: refused
        let hdr = size_of::<libc::cmsghdr>();
        let mut c = vec![0u8; hdr + 12];
        // SAFETY: test buffer of the right size.
        unsafe {
            let h = c.as_mut_ptr().cast::<libc::cmsghdr>();
            (*h).cmsg_len = hdr + 12;
            (*h).cmsg_level = libc::SOL_SOCKET;
            (*h).cmsg_type = libc::SCM_CREDENTIALS;
        }
        assert_eq!(
            translate_control(&mut c, &pidfd).unwrap_err(),
            libc::EOPNOTSUPP
        );
        // SCM_RIGHTS of fd 0: replaced by our own copy
        let mut r = vec![0u8; hdr + 4];
        // SAFETY: as above.
        unsafe {
            let h = r.as_mut_ptr().cast::<libc::cmsghdr>();
            (*h).cmsg_len = hdr + 4;
            (*h).cmsg_level = libc::SOL_SOCKET;
            (*h).cmsg_type = libc::SCM_RIGHTS;
        }
        let fds = translate_control(&mut r, &pidfd).unwrap();
        assert_eq!(fds.len(), 1);
        assert_eq!(&r[hdr..], &fds[0].as_raw_fd().to_ne_bytes());
        // a length that runs past the buffer
        // SAFETY: as above.
        unsafe { (*r.as_mut_ptr().cast::<libc::cmsghdr>()).cmsg_len = hdr + 400 };
        assert_eq!(translate_control(&mut r, &pidfd).unwrap_err(), libc::EINVAL);
    }

    #[test]
    fn names_for_pathname_sockets() {
        let v = sockaddr_un("/proc/self/fd/7");
        assert_eq!(&v[2..], b"/proc/self/fd/7\0");
    }
}
