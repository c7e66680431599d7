//! Resolve-and-pin with nothing but std: check a URL, then connect only to the checked
//! addresses. Runs offline: it starts a tiny HTTP server on 127.0.0.1 and a stub resolver
//! maps `upstream.test` to it.
//!
//! ```sh
//! cargo run -p portcullis --example egress_fetch
//! ```
//!
//! With reqwest or hyper, the same `Destination` feeds the client's resolve override; see
//! the "Using a Destination with an HTTP client" section of the `portcullis::egress` docs
//! (reqwest `ClientBuilder::resolve_to_addrs`, `no_proxy`, `redirect::Policy::none`). This
//! example sticks to std so the crate's dev-dependencies stay light.

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use portcullis::egress::{Destination, EgressPolicy};
use portcullis::ErrorCode;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    thread::spawn(move || serve(&listener));

    let policy = EgressPolicy::builder()
        .schemes(["http", "https"])
        .ports([80, 443, port])
        .allow_cidrs(["127.0.0.1/32"]) // the local upstream, and nothing else internal
        .build()?;
    let resolver = |host: &str| -> io::Result<Vec<IpAddr>> {
        match host {
            "upstream.test" => Ok(vec![IpAddr::from([127, 0, 0, 1])]),
            "internal.test" => Ok(vec![IpAddr::from([10, 0, 0, 7])]),
            _ => Err(io::Error::new(io::ErrorKind::NotFound, "NXDOMAIN")),
        }
    };

    let dest = policy.check_with(&format!("http://upstream.test:{port}/hello"), &resolver)?;
    println!("allowed: {} -> {:?}", dest.url, dest.socket_addrs());
    println!("{}", fetch(&dest)?);

    for url in [
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://2130706434/".to_owned(), // 127.0.0.2: loopback, and not the allowed /32
        "http://[::ffff:127.0.0.2]/".to_owned(),
        format!("http://internal.test:{port}/"),
        "http://user@upstream.test/".to_owned(),
    ] {
        match policy.check_with(&url, &resolver) {
            Ok(dest) => println!("allowed: {url} -> {:?}", dest.addrs),
            Err(e) => println!("refused: {url}\n  {}: {e}", e.code()),
        }
    }
    Ok(())
}

/// HTTP/1.1 GET over a TcpStream connected to a checked address; the name goes into the
/// Host header only. (For TLS, hand the same stream to rustls with `dest.host` as the
/// server name.)
fn fetch(dest: &Destination) -> io::Result<String> {
    let mut stream = TcpStream::connect(&dest.socket_addrs()[..])?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let path = match dest.url.query() {
        Some(q) => format!("{}?{q}", dest.url.path()),
        None => dest.url.path().to_owned(),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {}:{}\r\nconnection: close\r\n\r\n",
        dest.host, dest.port
    );
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.take(64 * 1024).read_to_string(&mut response)?;
    Ok(response)
}

fn serve(listener: &TcpListener) {
    for mut stream in listener.incoming().flatten() {
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(buf.get(..n).unwrap_or_default()),
            }
        }
        let request = String::from_utf8_lossy(&request);
        let host = request
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .unwrap_or("?")
            .to_owned();
        let body = format!("hello from the pinned upstream (host header: {host})\n");
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes());
    }
}
