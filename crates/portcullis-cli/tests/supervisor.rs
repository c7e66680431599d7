//! The connect supervisor of `portcullis exec`, end to end, on loopback. The policy allows
//! only 127.0.0.2/32 and one UNIX socket; listeners on 127.0.0.1 and a second UNIX socket
//! count the connections that reach them (none may). Each client (curl, Ruby's Net::HTTP,
//! Typhoeus/libcurl in-process, this test binary's own connect calls) runs under
//! `portcullis exec` and reports what it got.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(unsafe_code)] // the race test calls connect(2) on a sockaddr another thread rewrites; TFO needs sendto(2)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
}

/// A listener that answers every connection with a tiny HTTP response and counts them.
struct Counted {
    hits: Arc<AtomicUsize>,
}

fn serve_tcp(ip: &str) -> (u16, Counted) {
    let l = TcpListener::bind((ip, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            h.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || answer(s));
        }
    });
    (port, Counted { hits })
}

fn serve_unix(path: &Path) -> Counted {
    let l = UnixListener::bind(path).unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            h.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || answer(s));
        }
    });
    Counted { hits }
}

fn answer<S: Read + Write>(mut s: S) {
    let mut buf = [0u8; 2048];
    let _ = s.read(&mut buf);
    let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
}

struct World {
    dir: tempfile::TempDir,
    allowed_port: u16,
    denied_port: u16,
    allowed: Counted,
    denied: Counted,
    ok_sock: PathBuf,
    bad_sock: PathBuf,
    ok_unix: Counted,
    bad_unix: Counted,
}

impl World {
    fn new(extra: &str) -> Self {
        Self::build(extra, &[])
    }

    fn with_ports(ports: &[u16]) -> Self {
        Self::build("", ports)
    }

    fn build(extra: &str, ports: &[u16]) -> Self {
        let more: String = ports.iter().map(|p| format!(", {p}")).collect();
        let dir = tempfile::tempdir().unwrap();
        let (allowed_port, allowed) = serve_tcp("127.0.0.2");
        let (denied_port, denied) = serve_tcp("127.0.0.1");
        let ok_sock = dir.path().join("ok.sock");
        let bad_sock = dir.path().join("bad.sock");
        let ok_unix = serve_unix(&ok_sock);
        let bad_unix = serve_unix(&bad_sock);
        let exe = std::env::current_exe().unwrap();
        let exe_dir = exe.parent().unwrap().to_path_buf();
        let toml = format!(
            "[egress.local]\nallow_cidrs = [\"127.0.0.2/32\"]\n\n[lockdown.t]\nread = [\"/usr\", \"/lib\", \"/lib64\", \"/etc\", \"/var/lib\", \"/dev/urandom\", {dir:?}, {exe_dir:?}]\nwrite = [\"/dev/null\"]\nexec = [\"/usr/bin\", {exe:?}]\nconnect_tcp = [{allowed_port}, {denied_port}{more}]\negress = \"local\"\nunix_sockets = [{ok:?}]\n{extra}",
            dir = dir.path(),
            ok = ok_sock,
        );
        std::fs::write(dir.path().join("portcullis.toml"), toml).unwrap();
        World {
            dir,
            allowed_port,
            denied_port,
            allowed,
            denied,
            ok_sock,
            bad_sock,
            ok_unix,
            bad_unix,
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("portcullis.toml")
    }

    fn exec(&self, extra: &[&str], cmd: &[&str]) -> Command {
        let mut c = bin();
        c.arg("exec").arg("--config").arg(self.config());
        c.args(extra).arg("--").args(cmd);
        c
    }

    fn run(&self, cmd: &[&str]) -> Output {
        self.exec(&[], cmd).output().unwrap()
    }

    /// This test binary as the client: `probe` reads PROBE_OPS.
    fn probe(&self, ops: &str) -> Output {
        let exe = std::env::current_exe().unwrap();
        self.exec(
            &[],
            &[
                exe.to_str().unwrap(),
                "--exact",
                "probe",
                "--nocapture",
                "--test-threads=1",
            ],
        )
        .env("PROBE_OPS", ops)
        .output()
        .unwrap()
    }

    fn assert_nothing_denied_reached(&self) {
        assert_eq!(
            self.denied.hits.load(Ordering::SeqCst),
            0,
            "a refused TCP listener was reached"
        );
        assert_eq!(
            self.bad_unix.hits.load(Ordering::SeqCst),
            0,
            "a refused UNIX socket was reached"
        );
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The in-process client: each op on its own line of PROBE_OPS, each result on a line
/// of stdout as `RESULT op => outcome`.
#[test]
fn probe() {
    let Ok(ops) = std::env::var("PROBE_OPS") else {
        return; // only meaningful under `portcullis exec` (see the tests below)
    };
    for op in ops.lines().filter(|l| !l.trim().is_empty()) {
        let (kind, arg) = op.split_once(' ').unwrap_or((op, ""));
        let outcome = match kind {
            "tcp" => {
                match TcpStream::connect_timeout(&arg.parse().unwrap(), Duration::from_secs(5)) {
                    Ok(mut s) => http_over(&mut s),
                    Err(e) => format!("err {}", e.raw_os_error().unwrap_or(0)),
                }
            }
            "unix" => match UnixStream::connect(arg) {
                Ok(mut s) => http_over(&mut s),
                Err(e) => format!("err {}", e.raw_os_error().unwrap_or(0)),
            },
            "resolve" => {
                use std::net::ToSocketAddrs;
                match (arg, 80).to_socket_addrs() {
                    Ok(a) => format!(
                        "ok {}",
                        a.map(|a| a.ip().to_string()).collect::<Vec<_>>().join(",")
                    ),
                    Err(e) => format!("err {e}"),
                }
            }
            "udp" => {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                match s.send_to(b"x", arg) {
                    Ok(n) => format!("ok {n}"),
                    Err(e) => format!("err {}", e.raw_os_error().unwrap_or(0)),
                }
            }
            "race" => race(arg),
            "stall" => stall(arg),
            "mmsg" => mmsg(arg),
            "eintr" => eintr(arg.parse().unwrap()),
            "burst" => {
                let mut it = arg
                    .split_whitespace()
                    .map(|a| a.parse::<SocketAddr>().unwrap());
                let (good, bad) = (it.next().unwrap(), it.next().unwrap());
                let threads: Vec<_> = (0..32)
                    .map(|_| {
                        std::thread::spawn(move || {
                            let (mut ok, mut refused) = (0, 0);
                            for i in 0..20 {
                                let to = if i % 2 == 0 { good } else { bad };
                                match TcpStream::connect(to) {
                                    Ok(mut s) => {
                                        if to == good && http_over(&mut s) == "ok" {
                                            ok += 1;
                                        }
                                    }
                                    Err(e) => {
                                        if to == bad && e.raw_os_error() == Some(13) {
                                            refused += 1;
                                        }
                                    }
                                }
                            }
                            (ok, refused)
                        })
                    })
                    .collect();
                let (ok, refused) = threads
                    .into_iter()
                    .map(|t| t.join().unwrap())
                    .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
                format!("ok {ok} refused {refused}")
            }
            "tfo" => tfo(arg),
            "wait" => {
                println!("READY");
                std::io::stdout().flush().unwrap();
                while !Path::new(arg).exists() {
                    std::thread::sleep(Duration::from_millis(20));
                }
                "waited".to_owned()
            }
            other => format!("unknown op {other}"),
        };
        println!("RESULT {op} => {outcome}");
        std::io::stdout().flush().unwrap();
    }
}

fn http_over<S: Read + Write>(s: &mut S) -> String {
    let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    if out.ends_with("ok") {
        "ok".to_owned()
    } else {
        format!("connected, answer {out:?}")
    }
}

fn sockaddr_in(ip: [u8; 4], port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip),
        },
        sin_zero: [0; 8],
    }
}

/// `race ALLOWED_PORT DENIED_PORT`: one thread flips a shared sockaddr between 127.0.0.2
/// (allowed) and 127.0.0.1 (refused) while this one connects with it in a loop. Reports
/// how many connects succeeded and to whom they were connected.
fn race(arg: &str) -> String {
    let mut it = arg.split_whitespace().map(|p| p.parse::<u16>().unwrap());
    let (allowed_port, denied_port) = (it.next().unwrap(), it.next().unwrap());
    // same port on both sides would be ideal, but the two listeners have their own; the
    // flipper writes address and port together, so either whole address can be seen
    let good = sockaddr_in([127, 0, 0, 2], allowed_port);
    let bad = sockaddr_in([127, 0, 0, 1], denied_port);
    let shared = Box::leak(Box::new(good));
    let ptr = shared as *mut libc::sockaddr_in as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let flipper = std::thread::spawn(move || {
        let p = ptr as *mut libc::sockaddr_in;
        let mut flips = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            // SAFETY: p points at a leaked sockaddr_in that lives for the process.
            unsafe {
                std::ptr::write_volatile(p, if flips % 2 == 0 { bad } else { good });
            }
            flips += 1;
        }
        flips
    });
    let (mut ok, mut refused, mut other, mut wrong_peer) = (0, 0, 0, 0);
    for _ in 0..3000 {
        // SAFETY: plain socket/connect/getpeername/close calls on a descriptor owned here;
        // the sockaddr pointer stays valid (leaked).
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            let r = libc::connect(
                fd,
                ptr as *const libc::sockaddr,
                size_of::<libc::sockaddr_in>() as u32,
            );
            if r == 0 {
                ok += 1;
                let mut peer: libc::sockaddr_in = std::mem::zeroed();
                let mut len = size_of::<libc::sockaddr_in>() as u32;
                libc::getpeername(fd, std::ptr::addr_of_mut!(peer).cast(), &mut len);
                if peer.sin_addr.s_addr != u32::from_ne_bytes([127, 0, 0, 2]) {
                    wrong_peer += 1;
                }
            } else if std::io::Error::last_os_error().raw_os_error() == Some(libc::EACCES) {
                refused += 1;
            } else {
                other += 1;
            }
            libc::close(fd);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    format!("ok {ok} refused {refused} other {other} wrong_peer {wrong_peer} flips {flips}")
}

extern "C" fn on_usr1(_: libc::c_int) {}

/// `eintr SLOW`: a thread's blocking connect to a listener that never answers is
/// interrupted by a signal whose handler has no SA_RESTART: it must return EINTR, as
/// natively (the supervisor's wait does not hold the program's signals back).
fn eintr(slow: u16) -> String {
    // SAFETY: installing a handler that does nothing; sigaction is plain data.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as *const () as usize;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        // SAFETY: pthread_self of this thread; a socket owned here.
        unsafe {
            tx.send(libc::pthread_self() as usize).unwrap();
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            let sa = sockaddr_in([127, 0, 0, 2], slow);
            let r = libc::connect(fd, std::ptr::addr_of!(sa).cast(), size_of_val(&sa) as u32);
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            libc::close(fd);
            if r == 0 {
                0
            } else {
                e
            }
        }
    });
    let thread = rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    // SAFETY: signalling a live thread of this process.
    unsafe { libc::pthread_kill(thread as libc::pthread_t, libc::SIGUSR1) };
    format!("errno {}", t.join().unwrap())
}

/// `mmsg A1 A2`: one `sendmmsg` of two datagrams ("one", "three!") from an unconnected UDP
/// socket, to A1 then A2; reports the count returned (or the errno) and each `msg_len`.
fn mmsg(arg: &str) -> String {
    let addrs: Vec<SocketAddr> = arg.split_whitespace().map(|a| a.parse().unwrap()).collect();
    let sas: Vec<libc::sockaddr_in> = addrs
        .iter()
        .map(|a| match a {
            SocketAddr::V4(v4) => sockaddr_in(v4.ip().octets(), v4.port()),
            SocketAddr::V6(_) => panic!("v4 only"),
        })
        .collect();
    let bodies: [&[u8]; 2] = [b"one", b"three!"];
    let mut iovs: Vec<libc::iovec> = bodies
        .iter()
        .map(|b| libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    // SAFETY: mmsghdr is plain data; every pointer set below refers to a live local.
    let mut msgs: Vec<libc::mmsghdr> = (0..2).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (i, m) in msgs.iter_mut().enumerate() {
        m.msg_hdr.msg_name = std::ptr::addr_of!(sas[i]) as *mut libc::c_void;
        m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
        m.msg_hdr.msg_iov = &mut iovs[i];
        m.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: a socket owned here; msgs and what they point at live across the call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        let n = libc::sendmmsg(fd, msgs.as_mut_ptr(), 2, 0);
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        libc::close(fd);
        if n < 0 {
            format!("err {e}")
        } else {
            format!("sent {n} lens {} {}", msgs[0].msg_len, msgs[1].msg_len)
        }
    }
}

/// `tfo ADDR`: TCP Fast Open, connect and data in one `sendto(MSG_FASTOPEN)`.
fn tfo(arg: &str) -> String {
    let sa: SocketAddr = arg.parse().unwrap();
    let SocketAddr::V4(v4) = sa else {
        return "v4 only".to_owned();
    };
    let addr = sockaddr_in(v4.ip().octets(), v4.port());
    let req = b"GET / HTTP/1.0\r\n\r\n";
    // SAFETY: a socket owned here, buffers alive for the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        let n = libc::sendto(
            fd,
            req.as_ptr().cast(),
            req.len(),
            libc::MSG_FASTOPEN,
            std::ptr::addr_of!(addr).cast(),
            size_of::<libc::sockaddr_in>() as u32,
        );
        if n < 0 {
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            libc::close(fd);
            return format!("err {e}");
        }
        let mut buf = [0u8; 256];
        let mut out = Vec::new();
        loop {
            let r = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if r <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..r as usize]);
        }
        libc::close(fd);
        if out.ends_with(b"ok") {
            format!("ok sent {n}")
        } else {
            format!("sent {n}, answer {:?}", String::from_utf8_lossy(&out))
        }
    }
}

fn results(o: &Output) -> Vec<String> {
    stdout(o)
        .lines()
        .filter_map(|l| l.find("RESULT ").map(|i| l[i + 7..].to_owned()))
        .collect()
}

const EACCES: &str = "err 13";

#[test]
fn rust_connect_calls_are_judged_by_address_and_unix_path() {
    let w = World::new("");
    let ops = format!(
        "tcp 127.0.0.1:{d}\ntcp 127.0.0.2:{a}\ntcp [::ffff:127.0.0.1]:{d}\ntcp [::ffff:127.0.0.2]:{a}\ntcp 169.254.169.254:{a}\nunix {bad}\nunix {ok}\n",
        d = w.denied_port,
        a = w.allowed_port,
        bad = w.bad_sock.display(),
        ok = w.ok_sock.display(),
    );
    let o = w.probe(&ops);
    let r = results(&o);
    let want = [
        EACCES, "ok", EACCES,
        // ::ffff:127.0.0.2 is 127.0.0.2, allowed (the embedded IPv4 is what is judged)
        "ok", // metadata: refused before any packet
        EACCES, EACCES, "ok",
    ];
    assert_eq!(r.len(), want.len(), "{r:?}\n{}", stderr(&o));
    for (got, want) in r.iter().zip(want) {
        assert!(
            got.ends_with(&format!("=> {want}")),
            "{got} (want {want})\n{}",
            stderr(&o)
        );
    }
    w.assert_nothing_denied_reached();
    assert_eq!(w.allowed.hits.load(Ordering::SeqCst), 2);
    assert_eq!(w.ok_unix.hits.load(Ordering::SeqCst), 1);
    // one line per refusal: address, port, family, pid, program name
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.contains("refused connect to 127.0.0.1 port"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("(AF_INET) by pid "), "{line}");
    assert!(line.contains("egress.reserved_address"), "{line}");
    assert!(
        err.contains("(AF_INET6)") && err.contains("egress.metadata"),
        "{err}"
    );
    assert!(err.contains("supervisor.unix_socket"), "{err}");
    assert!(err.contains("calls judged, 4 refused"), "{err}");
}

#[test]
fn curl_is_judged() {
    let w = World::new("");
    let code = |args: &[&str]| {
        let mut cmd = vec![
            "/usr/bin/curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ];
        cmd.extend_from_slice(args);
        let o = w.run(&cmd);
        (stdout(&o), o.status.code(), stderr(&o))
    };
    let (out, status, err) = code(&[&format!("http://127.0.0.2:{}/", w.allowed_port)]);
    assert_eq!((out.as_str(), status), ("200", Some(0)), "{err}");
    for url in [
        format!("http://127.0.0.1:{}/", w.denied_port),
        format!("http://[::ffff:127.0.0.1]:{}/", w.denied_port),
    ] {
        let (out, status, err) = code(&[&url]);
        assert_eq!((out.as_str(), status), ("000", Some(7)), "{url}: {err}");
        assert!(
            err.contains("portcullis supervisor: refused connect to"),
            "{err}"
        );
        assert!(err.contains("(curl)"), "{err}");
    }
    let (out, status, err) = code(&["--unix-socket", w.ok_sock.to_str().unwrap(), "http://x/"]);
    assert_eq!((out.as_str(), status), ("200", Some(0)), "{err}");
    let (out, status, err) = code(&["--unix-socket", w.bad_sock.to_str().unwrap(), "http://x/"]);
    assert_eq!((out.as_str(), status), ("000", Some(7)), "{err}");
    w.assert_nothing_denied_reached();
}

fn have_ruby(lib: &str) -> bool {
    Command::new("ruby")
        .args(["-e", &format!("require {lib:?}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

const RUBY_CLIENTS: &str = r#"
require "socket"
def try
  r = yield
  r.to_s
rescue SystemCallError, IOError, SocketError => e
  e.class.name
rescue StandardError => e
  e.class.name + ": " + e.message
end
kind, a, d, ok, bad = ARGV
ports = { a: a.to_i, d: d.to_i }
case kind
when "net_http"
  require "net/http"
  puts try { Net::HTTP.get_response(URI("http://127.0.0.1:#{ports[:d]}/")).code }
  puts try { Net::HTTP.get_response(URI("http://127.0.0.2:#{ports[:a]}/")).code }
  puts try { Net::HTTP.get_response(URI("http://[::ffff:127.0.0.1]:#{ports[:d]}/")).code }
  puts try { s = UNIXSocket.new(bad); s.write("GET / HTTP/1.0\r\n\r\n"); s.read[-2..] }
  puts try { s = UNIXSocket.new(ok); s.write("GET / HTTP/1.0\r\n\r\n"); s.read[-2..] }
when "typhoeus"
  require "typhoeus"
  show = ->(r) { r.code == 0 ? "code 0 #{r.return_code}" : r.code.to_s }
  puts show.(Typhoeus.get("http://127.0.0.1:#{ports[:d]}/", timeout: 5))
  puts show.(Typhoeus.get("http://127.0.0.2:#{ports[:a]}/", timeout: 5))
  puts show.(Typhoeus.get("http://[::ffff:127.0.0.1]:#{ports[:d]}/", timeout: 5))
  puts show.(Typhoeus.get("http://x/", unix_socket_path: bad, timeout: 5))
  puts show.(Typhoeus.get("http://x/", unix_socket_path: ok, timeout: 5))
when "nonblock"
  [["127.0.0.1", ports[:d]], ["127.0.0.2", ports[:a]]].each do |ip, port|
    puts try {
      s = Socket.new(:INET, :STREAM)
      begin
        s.connect_nonblock(Socket.sockaddr_in(port, ip))
      rescue IO::WaitWritable
        IO.select(nil, [s], nil, 5) or raise "timeout"
        begin
          s.connect_nonblock(Socket.sockaddr_in(port, ip))
        rescue Errno::EISCONN
        end
      end
      s.write("GET / HTTP/1.0\r\n\r\n"); s.read[-2..]
    }
  end
when "fastopen"
  [["127.0.0.1", ports[:d]], ["127.0.0.2", ports[:a]]].each do |ip, port|
    puts try {
      s = Socket.new(:INET, :STREAM)
      req = "GET / HTTP/1.0\r\n\r\n"
      begin
        s.send(req, Socket::MSG_FASTOPEN, Socket.sockaddr_in(port, ip))
      rescue Errno::EINPROGRESS
        # Ruby sockets are non-blocking: without a TFO cookie the kernel sends a bare SYN
        IO.select(nil, [s], nil, 5) or raise "timeout"
        s.write(req)
      end
      s.read[-2..]
    }
  end
when "udp"
  # a, d are UDP ports here; sendto, sendmsg with an address, connect + sendmsg, send_io
  u = Socket.new(:INET, :DGRAM)
  puts try { u.send("x", 0, Socket.sockaddr_in(d, "127.0.0.1")) }
  puts try { u.send("x", 0, Socket.sockaddr_in(a, "127.0.0.2")) }
  puts try { u.sendmsg("x", 0, Socket.sockaddr_in(d, "127.0.0.1")) }
  puts try { u.sendmsg("xy", 0, Socket.sockaddr_in(a, "127.0.0.2")) }
  c = Socket.new(:INET, :DGRAM)
  puts try { c.connect(Socket.sockaddr_in(a, "127.0.0.2")); c.sendmsg("xyz") }
  puts try { UDPSocket.new.send("x", 0, "::ffff:127.0.0.1", d) }
  l, r = UNIXSocket.pair
  puts try { l.send_io(File.open("/dev/null")); r.recv_io.class }
when "resolv"
  require "resolv"
  puts try { Resolv::DNS.new.getaddress(a).to_s }
  puts try { Addrinfo.getaddrinfo(a, 80, :INET, :STREAM).map(&:ip_address).uniq.join(",") }
end
"#;

fn ruby_clients(w: &World, kind: &str) -> (Vec<String>, String) {
    let script = w.dir.path().join("clients.rb");
    std::fs::write(&script, RUBY_CLIENTS).unwrap();
    let o = w.run(&[
        "/usr/bin/ruby",
        script.to_str().unwrap(),
        kind,
        &w.allowed_port.to_string(),
        &w.denied_port.to_string(),
        w.ok_sock.to_str().unwrap(),
        w.bad_sock.to_str().unwrap(),
    ]);
    (stdout(&o).lines().map(str::to_owned).collect(), stderr(&o))
}

#[test]
fn ruby_net_http_is_judged() {
    if !have_ruby("net/http") {
        eprintln!("ruby not installed");
        return;
    }
    let w = World::new("");
    let (got, err) = ruby_clients(&w, "net_http");
    assert_eq!(
        got,
        [
            "Errno::EACCES",
            "200",
            "Errno::EACCES",
            "Errno::EACCES",
            "ok"
        ],
        "{err}"
    );
    w.assert_nothing_denied_reached();
}

#[test]
fn typhoeus_libcurl_in_process_is_judged() {
    if !have_ruby("typhoeus") {
        eprintln!("ruby-typhoeus not installed");
        return;
    }
    let w = World::new("");
    let (got, err) = ruby_clients(&w, "typhoeus");
    assert_eq!(
        got,
        [
            "code 0 couldnt_connect",
            "200",
            "code 0 couldnt_connect",
            "code 0 couldnt_connect",
            "200"
        ],
        "{err}"
    );
    w.assert_nothing_denied_reached();
}

#[test]
fn connect_nonblock_and_tcp_fast_open_are_judged_and_performed() {
    if !have_ruby("socket") {
        return;
    }
    let w = World::new("");
    let (got, err) = ruby_clients(&w, "nonblock");
    assert_eq!(got, ["Errno::EACCES", "ok"], "{err}");
    let (got, err) = ruby_clients(&w, "fastopen");
    assert_eq!(got, ["Errno::EACCES", "ok"], "{err}");
    assert!(err.contains("refused sendto to 127.0.0.1 port"), "{err}");
    let o = w.probe(&format!(
        "tfo 127.0.0.1:{}\ntfo 127.0.0.2:{}\n",
        w.denied_port, w.allowed_port
    ));
    let r = results(&o);
    assert!(r[0].ends_with(EACCES), "{r:?} {}", stderr(&o));
    assert!(r[1].contains("=> ok sent"), "{r:?} {}", stderr(&o));
    w.assert_nothing_denied_reached();
}

fn serve_udp(ip: &str) -> (u16, Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    let u = UdpSocket::bind((ip, 0)).unwrap();
    let port = u.local_addr().unwrap().port();
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = Arc::clone(&got);
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = u.recv_from(&mut buf) {
            g.lock().unwrap().push(buf[..n].to_vec());
        }
    });
    (port, got)
}

#[test]
fn udp_sendto_sendmsg_and_fd_passing() {
    if !have_ruby("socket") {
        return;
    }
    let w = World::new("");
    let (a, allowed) = serve_udp("127.0.0.2");
    let (d, denied) = serve_udp("127.0.0.1");
    let script = w.dir.path().join("clients.rb");
    std::fs::write(&script, RUBY_CLIENTS).unwrap();
    let o = w.run(&[
        "/usr/bin/ruby",
        script.to_str().unwrap(),
        "udp",
        &a.to_string(),
        &d.to_string(),
    ]);
    let got: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(
        got,
        [
            "Errno::EACCES",
            "1",
            "Errno::EACCES",
            "2",
            "3",
            "Errno::EACCES",
            "IO"
        ],
        "{}",
        stderr(&o)
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(denied.lock().unwrap().is_empty());
    let mut seen = allowed.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, [b"x".to_vec(), b"xy".to_vec(), b"xyz".to_vec()]);
    let o = w.probe(&format!(
        "udp 127.0.0.1:{d}\nudp 127.0.0.2:{a}\nmmsg 127.0.0.2:{a} 127.0.0.2:{a}\nmmsg 127.0.0.2:{a} 127.0.0.1:{d}\nmmsg 127.0.0.1:{d} 127.0.0.2:{a}\n"
    ));
    let r = results(&o);
    assert!(r[0].ends_with(EACCES) && r[1].ends_with("=> ok 1"), "{r:?}");
    // sendmmsg: performed message by message, msg_len written back, stops at a refusal
    assert!(r[2].ends_with("=> sent 2 lens 3 6"), "{r:?} {}", stderr(&o));
    assert!(r[3].ends_with("=> sent 1 lens 3 0"), "{r:?}");
    assert!(r[4].ends_with(EACCES), "{r:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(denied.lock().unwrap().is_empty());
    let n = allowed.lock().unwrap().len();
    assert_eq!(n, 3 + 1 + 3, "{:?}", allowed.lock().unwrap());
}

/// A UDP DNS server answering every A query with 127.0.0.2 (and no AAAA).
fn dns_stub(ip: &str) -> Arc<AtomicUsize> {
    let u = UdpSocket::bind((ip, 53)).unwrap();
    let queries = Arc::new(AtomicUsize::new(0));
    let q = Arc::clone(&queries);
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = u.recv_from(&mut buf) {
            q.fetch_add(1, Ordering::SeqCst);
            let req = &buf[..n];
            if n < 17 {
                continue;
            }
            // the question ends after the name's zero byte, then type and class
            let mut i = 12;
            while i < n && req[i] != 0 {
                i += 1 + req[i] as usize;
            }
            let qend = i + 5;
            if qend > n {
                continue;
            }
            let qtype = u16::from_be_bytes([req[i + 1], req[i + 2]]);
            let mut resp = req[..qend].to_vec();
            resp[2] = 0x81;
            resp[3] = 0x80;
            resp[6] = 0;
            resp[7] = u8::from(qtype == 1);
            resp[8..12].fill(0);
            if qtype == 1 {
                resp.extend([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 2]);
            }
            let _ = u.send_to(&resp, from);
        }
    });
    queries
}

fn have_unshare() -> bool {
    Command::new("unshare")
        .args(["-m", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn dns_to_the_resolv_conf_nameserver_still_works() {
    if !have_unshare() {
        eprintln!("unshare -m not permitted here; DNS test skipped");
        return;
    }
    let w = World::new("");
    let queries = dns_stub("127.0.0.77");
    let resolv = w.dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.77\noptions timeout:2 attempts:1\n",
    )
    .unwrap();
    let exe = std::env::current_exe().unwrap();
    let script = w.dir.path().join("clients.rb");
    std::fs::write(&script, RUBY_CLIENTS).unwrap();
    let inner = |cmd: &str| {
        Command::new("unshare")
            .args(["-m", "sh", "-c"])
            .arg(format!(
                "mount --bind {} /etc/resolv.conf && exec {} exec --config {} -- {cmd}",
                resolv.display(),
                env!("CARGO_BIN_EXE_portcullis"),
                w.config().display()
            ))
            .env(
                "PROBE_OPS",
                "resolve portcullis-test.example\nudp 127.0.0.77:54\n",
            )
            .output()
            .unwrap()
    };
    // getaddrinfo (glibc: connect, then sendmmsg for A and AAAA in parallel)
    let o = inner(&format!("{} --exact probe --nocapture", exe.display()));
    let r = results(&o);
    assert_eq!(r.len(), 2, "{}", stderr(&o));
    assert!(r[0].ends_with("=> ok 127.0.0.2"), "{r:?} {}", stderr(&o));
    // the nameserver is exempt on port 53 only
    assert!(r[1].ends_with(EACCES), "{r:?}");
    // Ruby's Resolv (sendto with the address) and Addrinfo.getaddrinfo
    let o = inner(&format!(
        "/usr/bin/ruby {} resolv portcullis-test.example",
        script.display()
    ));
    let got: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(got, ["127.0.0.2", "127.0.0.2"], "{}", stderr(&o));
    assert!(queries.load(Ordering::SeqCst) >= 3);
}

/// A listener on 127.0.0.2 whose accept queue is full: SYNs to it are dropped, so a
/// blocking connect to it waits (until SO_SNDTIMEO).
fn full_listener() -> (u16, Vec<TcpStream>, i32) {
    // SAFETY: socket/bind/listen on a descriptor owned here; the sockaddr is a local.
    let (fd, port) = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        let sa = sockaddr_in([127, 0, 0, 2], 0);
        assert_eq!(
            libc::bind(fd, std::ptr::addr_of!(sa).cast(), size_of_val(&sa) as u32),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut len = size_of_val(&got) as u32;
        libc::getsockname(fd, std::ptr::addr_of_mut!(got).cast(), &mut len);
        (fd, u16::from_be(got.sin_port))
    };
    let mut fill = Vec::new();
    for _ in 0..2 {
        if let Ok(s) = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 2], port)),
            Duration::from_millis(300),
        ) {
            fill.push(s);
        }
    }
    (port, fill, fd)
}

/// `stall SLOW FAST`: four threads make blocking connects to SLOW (SO_SNDTIMEO 4 s), then
/// 32 connects to FAST run one after another; reports how many fast ones succeeded and
/// how many slow ones had returned by then.
fn stall(arg: &str) -> String {
    let mut it = arg.split_whitespace().map(|p| p.parse::<u16>().unwrap());
    let (slow, fast) = (it.next().unwrap(), it.next().unwrap());
    let done = Arc::new(AtomicUsize::new(0));
    let slow_threads: Vec<_> = (0..4)
        .map(|_| {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                // SAFETY: a socket owned here; option and address are locals.
                unsafe {
                    let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                    let tv = libc::timeval {
                        tv_sec: 4,
                        tv_usec: 0,
                    };
                    libc::setsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        libc::SO_SNDTIMEO,
                        std::ptr::addr_of!(tv).cast(),
                        size_of_val(&tv) as u32,
                    );
                    let sa = sockaddr_in([127, 0, 0, 2], slow);
                    libc::connect(fd, std::ptr::addr_of!(sa).cast(), size_of_val(&sa) as u32);
                    libc::close(fd);
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut ok = 0;
    for _ in 0..32 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.2", fast)) {
            if http_over(&mut s) == "ok" {
                ok += 1;
            }
        }
    }
    let slow_done = done.load(Ordering::SeqCst);
    for t in slow_threads {
        let _ = t.join();
    }
    format!("fast {ok} slow_done {slow_done}")
}

#[test]
fn a_slow_connect_does_not_stall_the_others() {
    let (slow, _fill, _fd) = full_listener();
    let w = World::with_ports(&[slow]);
    let o = w.probe(&format!("stall {slow} {}\n", w.allowed_port));
    let r = results(&o);
    // every fast connect was served while the four slow ones were still waiting
    assert!(
        r.first()
            .is_some_and(|l| l.ends_with("=> fast 32 slow_done 0")),
        "{r:?} {}",
        stderr(&o)
    );
}

#[test]
fn a_signal_interrupts_a_blocking_connect_as_natively() {
    let (slow, _fill, _fd) = full_listener();
    let w = World::with_ports(&[slow]);
    let o = w.probe(&format!("eintr {slow}\ntcp 127.0.0.2:{}\n", w.allowed_port));
    let r = results(&o);
    assert!(
        r.first().is_some_and(|l| l.ends_with("=> errno 4")),
        "{r:?} {}",
        stderr(&o)
    );
    assert!(r.get(1).is_some_and(|l| l.ends_with("=> ok")), "{r:?}");
}

#[test]
fn many_threads_connect_at_once() {
    let w = World::new("");
    let o = w.probe(&format!(
        "burst 127.0.0.2:{} 127.0.0.1:{}\n",
        w.allowed_port, w.denied_port
    ));
    let r = results(&o);
    assert!(
        r.first()
            .is_some_and(|l| l.ends_with("=> ok 320 refused 320")),
        "{r:?} {}",
        stderr(&o)
    );
    w.assert_nothing_denied_reached();
    assert!(
        stderr(&o).contains("640 calls judged, 320 refused"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_thread_rewriting_the_sockaddr_never_reaches_the_refused_address() {
    let w = World::new("");
    let o = w.probe(&format!("race {} {}\n", w.allowed_port, w.denied_port));
    let r = results(&o);
    assert_eq!(r.len(), 1, "{}", stderr(&o));
    let nums: Vec<u64> = r[0]
        .split("=> ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let (ok, refused, other, wrong_peer, flips) = (nums[0], nums[1], nums[2], nums[3], nums[4]);
    assert_eq!(wrong_peer, 0, "{}", r[0]);
    assert_eq!(other, 0, "{}", r[0]);
    assert!(
        ok > 0 && refused > 0 && flips > 1000,
        "the race did not race: {}",
        r[0]
    );
    // the decisive check: the refused listener never saw a connection
    w.assert_nothing_denied_reached();
    // every successful connect reached the allowed listener (its accept loop may lag)
    for _ in 0..100 {
        if w.allowed.hits.load(Ordering::SeqCst) as u64 >= ok {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(w.allowed.hits.load(Ordering::SeqCst) as u64, ok);
    w.assert_nothing_denied_reached();
}

#[test]
fn symlinks_cannot_point_an_allowed_name_elsewhere() {
    let w = World::new("");
    let link = w.dir.path().join("link.sock");
    std::os::unix::fs::symlink(&w.bad_sock, &link).unwrap();
    let link_ok = w.dir.path().join("link-ok.sock");
    std::os::unix::fs::symlink(&w.ok_sock, &link_ok).unwrap();
    let o = w.probe(&format!(
        "unix {}\nunix {}\nunix ok.sock\n",
        link.display(),
        link_ok.display()
    ));
    let r = results(&o);
    assert!(r[0].ends_with(EACCES), "{r:?}");
    // a symlink to the allowed socket reaches it: what is judged is where the name leads
    assert!(r[1].ends_with("=> ok"), "{r:?} {}", stderr(&o));
    // relative to the program's working directory (not in the sandbox's cwd: ENOENT)
    assert!(r[2].contains("=> err"), "{r:?}");
    assert!(stderr(&o).contains(&format!(
        "refused connect to {} (AF_UNIX)",
        w.bad_sock.display()
    )));
    w.assert_nothing_denied_reached();
}

#[test]
fn report_mode_logs_and_allows_but_keeps_the_metadata_floor() {
    let w = World::new("");
    let exe = std::env::current_exe().unwrap();
    let o = w
        .exec(
            &["--report"],
            &[exe.to_str().unwrap(), "--exact", "probe", "--nocapture"],
        )
        .env(
            "PROBE_OPS",
            format!("tcp 127.0.0.1:{}\ntcp 169.254.169.254:80\n", w.denied_port),
        )
        .output()
        .unwrap();
    let r = results(&o);
    let err = stderr(&o);
    assert!(r[0].ends_with("=> ok"), "{r:?} {err}");
    assert!(r[1].ends_with(EACCES), "{r:?} {err}");
    assert!(
        err.contains("would refuse (report mode, allowed) connect to 127.0.0.1"),
        "{err}"
    );
    assert!(
        err.contains("refused connect to 169.254.169.254 port 80"),
        "{err}"
    );
    assert_eq!(w.denied.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn killing_the_supervisor_fails_the_next_connect() {
    let w = World::new("");
    let flag = w.dir.path().join("go");
    let exe = std::env::current_exe().unwrap();
    let mut child = w
        .exec(
            &[],
            &[exe.to_str().unwrap(), "--exact", "probe", "--nocapture"],
        )
        .env(
            "PROBE_OPS",
            format!(
                "wait {}\ntcp 127.0.0.2:{}\n",
                flag.display(),
                w.allowed_port
            ),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let l = lines.next().unwrap().unwrap();
        if l.contains("READY") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL to `portcullis exec`, the supervisor
    child.wait().unwrap();
    std::fs::write(&flag, "").unwrap();
    let rest: Vec<String> = lines
        .map_while(Result::ok)
        .filter(|l| l.contains("RESULT"))
        .collect();
    assert_eq!(rest.len(), 2, "{rest:?}");
    // the kernel answers ENOSYS once the listener is gone: fail closed
    assert!(rest[1].ends_with("=> err 38"), "{rest:?}");
    assert_eq!(w.allowed.hits.load(Ordering::SeqCst), 0);
}

#[test]
fn exit_status_and_signals_pass_through() {
    let w = World::new("");
    let o = w.run(&["/bin/sh", "-c", "exit 3"]);
    // /bin/sh is not in exec here: 126 from the child (cannot execute) or 3
    assert!(
        matches!(o.status.code(), Some(3)),
        "{:?} {}",
        o.status,
        stderr(&o)
    );
    let mut child = w
        .exec(&[], &["/usr/bin/sleep", "30"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // SIGTERM to portcullis exec reaches the program; its death by SIGTERM comes back
    // SAFETY: kill(2) on the pid of the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
}

#[test]
fn explain_and_check_show_the_supervisor_config() {
    let w = World::new("");
    let o = bin()
        .args(["lockdown", "explain", "--config"])
        .arg(w.config())
        .output()
        .unwrap();
    let text = stdout(&o);
    assert!(text.contains("connect supervisor"), "{text}");
    assert!(text.contains("[egress.local]"), "{text}");
    assert!(text.contains(w.ok_sock.to_str().unwrap()), "{text}");
    for (bad, want) in [
        (
            "egress = \"nope\"",
            "egress names no egress policy \"nope\"",
        ),
        ("unix_sockets = [\"rel/x.sock\"]", "is not absolute"),
        ("unix_sockets = [\"/run/../x\"]", "contains '..'"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.toml");
        std::fs::write(&p, format!("[lockdown.t]\nread = [\"/usr\"]\n{bad}\n")).unwrap();
        let o = bin().arg("check").arg(&p).output().unwrap();
        assert!(!o.status.success());
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(all.contains(want), "{bad}: {all}");
        assert!(all.contains("p.toml:3:"), "{bad}: {all}");
    }
}

#[test]
fn a_user_switch_moves_the_supervisor_too() {
    let w = World::new("user = \"nobody\"\n");
    let url = format!("http://127.0.0.2:{}/", w.allowed_port);
    let o = w.run(&[
        "/usr/bin/curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!(stdout(&o), "200", "{}", stderr(&o));
    let o = w.run(&[
        "/usr/bin/curl",
        "-sS",
        &format!("http://127.0.0.1:{}/", w.denied_port),
    ]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let mut child = w
        .exec(&[], &["/usr/bin/sleep", "5"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_owned();
    let caps = status
        .lines()
        .find(|l| l.starts_with("CapEff:"))
        .unwrap()
        .to_owned();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        uid.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid}"
    );
    assert!(caps.ends_with("0000000000000000"), "{caps}");
    w.assert_nothing_denied_reached();
}

fn children_states(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let p = task.unwrap().path().join("children");
        for k in std::fs::read_to_string(p)
            .unwrap_or_default()
            .split_whitespace()
        {
            let stat = std::fs::read_to_string(format!("/proc/{k}/stat")).unwrap_or_default();
            out.push(
                stat.rsplit(") ")
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(1)
                    .collect(),
            );
        }
    }
    out
}

#[test]
fn orphans_of_the_program_are_reaped() {
    let w = World::new("");
    // the subshell starts `sleep 1` and exits: the sleep is orphaned and reparented to
    // `portcullis exec` (a subreaper), which must reap it when it ends
    let mut child = w
        .exec(
            &[],
            &[
                "/bin/sh",
                "-c",
                "(/usr/bin/sleep 1 &); exec /usr/bin/sleep 4",
            ],
        )
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let during = children_states(child.id());
    std::thread::sleep(Duration::from_millis(1500));
    let after = children_states(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        during.len(),
        2,
        "the orphan was not reparented to portcullis exec: {during:?}"
    );
    assert_eq!(after.len(), 1, "the orphan was not reaped: {after:?}");
    assert_ne!(after[0], "Z");
}
