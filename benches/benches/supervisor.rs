//! The connect supervisor's cost, interleaved: two long-lived processes run the same
//! measured loops on command, one plain and one under `supervisor::run` (seccomp user
//! notification for connect/sendto/sendmsg/sendmmsg, judged by a ConnectPolicy and
//! performed by the supervisor). Rounds alternate between them (and which goes first), so
//! the load of the shared machine falls on both alike; each round reports ns per call,
//! and the medians of the per-round values and of the per-round differences are printed.
//!
//! Loops: loopback TCP `connect` + `accept` + close of both ends (the connect is
//! intercepted); `getpid` (not intercepted; the seccomp action cache skips the program);
//! `send()` on a connected UDP socket plus the `recv` draining it (`sendto` with a NULL
//! address: the BPF program allows it from its registers, no notification).
//!
//! `request`: the syscalls one request to the demo server makes (counted with `perf trace`
//! on Puma 5.6 serving mTLS keep-alive requests: ppoll, recvfrom, getsockopt, setsockopt
//! twice, write twice, getpid), on a connected loopback TCP pair, plus the client's
//! write and read. With `SUPERVISOR_BENCH_LOCKDOWN=1` the supervised side also applies a
//! Lockdown (Landlock, the seccomp floor, no_new_privs, capabilities) as `portcullis exec`
//! does, so the difference is the whole syscall-level cost of running under it.
//!
//! Harness-less (criterion cannot interleave two processes): `cargo bench -p
//! portcullis-benches --bench supervisor [-- ROUNDS]`, connects per round from
//! `SUPERVISOR_BENCH_CONNECTS` (default 2000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench setup: failing fast is right
#![allow(unsafe_code)] // fork/_exit/waitpid and the raw getpid of the measured loop

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use portcullis::egress::EgressPolicy;
use portcullis::lockdown::{supervisor, ConnectPolicy};

const CALLS: u64 = 100_000;

fn connects() -> u64 {
    std::env::var("SUPERVISOR_BENCH_CONNECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// One demo request's syscalls (see the module docs): `client` sends 64 bytes, the server
/// side polls, reads, checks the socket, corks, writes head and body, uncorks, and the
/// client reads the 96 bytes.
fn request(client: &mut TcpStream, server: &TcpStream) {
    use std::os::fd::AsRawFd;
    let fd = server.as_raw_fd();
    let mut buf = [0u8; 256];
    client.write_all(&[b'r'; 64]).unwrap();
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let on: libc::c_int = 1;
    let off: libc::c_int = 0;
    let mut info = [0u8; 232];
    let mut len = info.len() as libc::socklen_t;
    let int = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid fd, pointers to live buffers of the lengths given.
    unsafe {
        libc::ppoll(&mut pfd, 1, std::ptr::null(), std::ptr::null());
        let n = libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        assert_eq!(n, 64);
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        );
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&on as *const libc::c_int).cast(),
            int,
        );
        assert_eq!(libc::write(fd, buf.as_ptr().cast(), 48), 48);
        assert_eq!(libc::write(fd, buf.as_ptr().cast(), 48), 48);
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&off as *const libc::c_int).cast(),
            int,
        );
        std::hint::black_box(libc::syscall(libc::SYS_getpid));
    }
    client.read_exact(&mut buf[..96]).unwrap();
}

fn measure(
    cmd: u8,
    listener: &TcpListener,
    udp: &(UdpSocket, UdpSocket),
    pair: &mut (TcpStream, TcpStream),
) -> u64 {
    let addr = listener.local_addr().unwrap();
    let start = Instant::now();
    let n = match cmd {
        b'c' => {
            for _ in 0..connects() {
                let s = TcpStream::connect(addr).unwrap();
                let (a, _) = listener.accept().unwrap();
                drop(s);
                drop(a);
            }
            connects()
        }
        b'g' => {
            for _ in 0..CALLS {
                // SAFETY: no arguments.
                std::hint::black_box(unsafe { libc::syscall(libc::SYS_getpid) });
            }
            CALLS
        }
        b'r' => {
            for _ in 0..CALLS / 10 {
                request(&mut pair.0, &pair.1);
            }
            CALLS / 10
        }
        b's' => {
            let mut buf = [0u8; 8];
            for _ in 0..CALLS / 10 {
                udp.0.send(b"x").unwrap();
                udp.1.recv(&mut buf).unwrap();
            }
            CALLS / 10
        }
        _ => panic!("unknown command"),
    };
    start.elapsed().as_nanos() as u64 / n
}

/// `pair`: this process's own listener for the request pair (the shared `listener` would
/// let the two processes accept each other's connections).
fn serve(mut ctl: UnixStream, listener: &TcpListener, pair: &TcpListener) -> ! {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    let udp = (a, b);
    let client = TcpStream::connect(pair.local_addr().unwrap()).unwrap();
    client.set_nodelay(true).unwrap();
    let (server, _) = pair.accept().unwrap();
    let mut pair = (client, server);
    let mut cmd = [0u8; 1];
    loop {
        if ctl.read_exact(&mut cmd).is_err() || cmd[0] == b'q' {
            std::process::exit(0);
        }
        let ns = measure(cmd[0], listener, &udp, &mut pair);
        ctl.write_all(&ns.to_ne_bytes()).unwrap();
    }
}

fn ask(ctl: &mut UnixStream, cmd: u8) -> u64 {
    ctl.write_all(&[cmd]).unwrap();
    let mut b = [0u8; 8];
    ctl.read_exact(&mut b).unwrap();
    u64::from_ne_bytes(b)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(15);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let pair_plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let pair_supervised = TcpListener::bind("127.0.0.1:0").unwrap();
    let (mut plain, c1) = UnixStream::pair().unwrap();
    // SAFETY: the process is single-threaded; the child only runs `serve`.
    let p1 = unsafe { libc::fork() };
    if p1 == 0 {
        drop(plain);
        serve(c1, &listener, &pair_plain);
    }
    drop(c1);
    let (mut supervised, c2) = UnixStream::pair().unwrap();
    // SAFETY: as above; this child becomes the supervisor, its child runs `serve`.
    let p2 = unsafe { libc::fork() };
    if p2 == 0 {
        drop(plain);
        drop(supervised);
        let egress = EgressPolicy::builder()
            .allow_cidrs(["127.0.0.0/8"])
            .build()
            .unwrap();
        let policy = ConnectPolicy::new(egress);
        let lockdown = std::env::var_os("SUPERVISOR_BENCH_LOCKDOWN")
            .is_some()
            .then(|| {
                let port = listener.local_addr().unwrap().port();
                let pair_port = pair_supervised.local_addr().unwrap().port();
                portcullis::lockdown::Lockdown::builder()
                    .read(["/"])
                    .connect_tcp([port, pair_port])
                    .build()
                    .unwrap()
            });
        let (exit, counts) = supervisor::run(policy, None, move || {
            if let Some(l) = &lockdown {
                let status = l.apply().unwrap();
                eprintln!("{}", status.log_line());
            }
            serve(c2, &listener, &pair_supervised)
        })
        .unwrap();
        eprintln!(
            "supervised side ended: {exit:?}, {} judged, {} refused",
            counts.judged, counts.refused
        );
        // SAFETY: leaving the forked child.
        unsafe { libc::_exit(0) };
    }
    drop(c2);
    println!(
        "supervisor bench: {rounds} interleaved rounds; {} connects / {CALLS} calls per round",
        connects()
    );
    for (cmd, name) in [
        (b'c', "connect+accept+close"),
        (b'g', "getpid"),
        (b'r', "a demo request's syscalls"),
        (b's', "send+recv (UDP, connected)"),
    ] {
        let (mut a, mut b, mut d, mut r) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // a warm-up round each
        ask(&mut plain, cmd);
        ask(&mut supervised, cmd);
        for i in 0..rounds {
            let (x, y) = if i % 2 == 0 {
                let x = ask(&mut plain, cmd);
                (x, ask(&mut supervised, cmd))
            } else {
                let y = ask(&mut supervised, cmd);
                (ask(&mut plain, cmd), y)
            };
            a.push(x as f64);
            b.push(y as f64);
            d.push(y as f64 - x as f64);
            r.push(y as f64 / x as f64);
        }
        println!(
            "{name:<28} plain {:>8.0} ns  supervised {:>8.0} ns  difference (median of rounds) {:>+8.0} ns  ratio {:.3}  (differences {:.0}..{:.0})",
            median(&mut a),
            median(&mut b),
            median(&mut d.clone()),
            median(&mut r),
            d.iter().cloned().fold(f64::INFINITY, f64::min),
            d.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        );
    }
    let _ = plain.write_all(b"q");
    let _ = supervised.write_all(b"q");
    for p in [p1, p2] {
        let mut st = 0;
        // SAFETY: reaping our own children.
        unsafe { libc::waitpid(p, &mut st, 0) };
    }
}
