//! Loopback upstreams for the service-integration tests: tiny HTTP/1.1 servers on std
//! threads that count the connections they accept, so a test can assert that a refused
//! destination never saw a packet. Every server closes each connection after one response.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset
#![allow(clippy::unwrap_used)] // test fixtures

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Builds the raw response for a request path.
pub type Routes = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// A running upstream.
pub struct Upstream {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Upstream {
    /// Connections accepted so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// Starts an upstream on `ip` (an ephemeral port) answering with `routes`.
pub fn upstream(ip: &str, routes: Routes) -> Upstream {
    let listener = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let routes = Arc::clone(&routes);
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
                let _ = stream.write_all(routes(&path).as_bytes());
            });
        }
    });
    Upstream { addr, hits }
}

/// An upstream that answers every path with `200 denied-upstream` (and counts).
pub fn counting(ip: &str) -> Upstream {
    upstream(ip, Arc::new(|_| response("200 OK", &[], "denied-upstream")))
}

/// A complete HTTP/1.1 response that closes the connection.
pub fn response(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}

/// A chunked response (no content-length), so a body cap cannot rely on the header.
pub fn chunked(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    )
}

type Answers = Vec<(String, Vec<IpAddr>)>;

/// A stub resolver: fixed answers per name; unknown names fail. Records every lookup.
#[derive(Clone, Default)]
pub struct StubDns {
    answers: Arc<Mutex<Answers>>,
    pub lookups: Arc<Mutex<Vec<String>>>,
}

impl StubDns {
    pub fn with(self, name: &str, ips: &[&str]) -> Self {
        self.answers.lock().unwrap().push((
            name.to_owned(),
            ips.iter().map(|i| i.parse().unwrap()).collect(),
        ));
        self
    }

    pub fn resolve(&self, name: &str) -> std::io::Result<Vec<IpAddr>> {
        self.lookups.lock().unwrap().push(name.to_owned());
        self.answers
            .lock()
            .unwrap()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, ips)| ips.clone())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such name"))
    }

    pub fn lookup_count(&self, name: &str) -> usize {
        self.lookups
            .lock()
            .unwrap()
            .iter()
            .filter(|n| *n == name)
            .count()
    }
}

/// A rebinding resolver: the first lookup answers `first`, every later one `later`.
pub fn rebinding(
    first: &[&str],
    later: &[&str],
) -> impl Fn(&str) -> std::io::Result<Vec<IpAddr>> + Send + Sync + 'static {
    let first: Vec<IpAddr> = first.iter().map(|i| i.parse().unwrap()).collect();
    let later: Vec<IpAddr> = later.iter().map(|i| i.parse().unwrap()).collect();
    let calls = AtomicUsize::new(0);
    move |_name: &str| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Ok(first.clone())
        } else {
            Ok(later.clone())
        }
    }
}

/// A current-thread tokio runtime (the crate's tokio features: rt, net, time).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
