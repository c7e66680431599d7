//! Fetching CRLs from their distribution points, through an [`EgressPolicy`].
//!
//! CRLs are signed, so RFC 5280 §4.2.1.13 publishes them over plain `http://` (and
//! `https://` only adds a second trust problem); this client speaks HTTP/1.1 `GET` over
//! TCP and nothing else. Every URL (and every redirect) is judged by the policy first, and
//! the connection goes only to the addresses the policy resolved and checked (pinning, so a
//! distribution point cannot be rebound to an internal address). The response is bounded:
//! a total deadline, a cap on header bytes, a cap on body bytes (`max_bytes`), at most
//! three redirects. What comes back is only bytes: the store decodes it and checks the
//! signature against its configured CAs before it replaces anything.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::egress::{Destination, EgressPolicy};

/// Largest CRL accepted by default (big public CAs publish CRLs of a few MiB).
pub const DEFAULT_MAX_CRL_BYTES: usize = 16 * 1024 * 1024;

/// Default total time for one fetch, redirects included.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(15);

const MAX_HEADER_BYTES: usize = 16 * 1024;
const MAX_REDIRECTS: usize = 3;

/// How one distribution point is fetched.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    pub(crate) max_bytes: usize,
    pub(crate) timeout: Duration,
}

impl Default for Fetcher {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_CRL_BYTES,
            timeout: DEFAULT_FETCH_TIMEOUT,
        }
    }
}

impl Fetcher {
    /// GETs `url` and returns the body. The error says what went wrong, for the refresh log.
    pub(crate) fn fetch(&self, policy: &EgressPolicy, url: &str) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + self.timeout;
        let mut dest = policy
            .check(url)
            .map_err(|e| format!("refused by the egress policy: {e}"))?;
        for _ in 0..=MAX_REDIRECTS {
            if dest.url.scheme() != "http" {
                return Err(format!(
                    "{}: only http:// distribution points are fetched (CRLs are signed)",
                    dest.url
                ));
            }
            match self.get(&dest, deadline)? {
                Response::Body(body) => return Ok(body),
                Response::Redirect(location) => {
                    dest = policy
                        .check_redirect(&dest.url, &location)
                        .map_err(|e| format!("redirect to {location:?} refused: {e}"))?;
                }
            }
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    }

    fn get(&self, dest: &Destination, deadline: Instant) -> Result<Response, String> {
        let left = || {
            deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("{}: timed out", dest.url))
        };
        let mut stream = None;
        let mut last = String::new();
        for addr in dest.socket_addrs() {
            match TcpStream::connect_timeout(&addr, left()?) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        let mut stream =
            stream.ok_or_else(|| format!("{}: could not connect ({last})", dest.url))?;
        let host = if dest.host.contains(':') {
            format!("[{}]", dest.host)
        } else {
            dest.host.clone()
        };
        let default_port =
            dest.url.port_or_known_default() == Some(dest.port) && dest.url.port().is_none();
        let host_header = if default_port {
            host
        } else {
            format!("{host}:{}", dest.port)
        };
        let target = match dest.url.query() {
            Some(q) => format!("{}?{q}", dest.url.path()),
            None => dest.url.path().to_owned(),
        };
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {host_header}\r\nAccept: application/pkix-crl, \
             application/x-pkcs7-crl, */*\r\nUser-Agent: portcullis-crl\r\nConnection: close\r\n\r\n"
        );
        stream
            .set_write_timeout(Some(left()?))
            .map_err(|e| e.to_string())?;
        stream
            .write_all(request.as_bytes())
            .map_err(|e| format!("{}: {e}", dest.url))?;

        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let header_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i;
            }
            if buf.len() > MAX_HEADER_BYTES {
                return Err(format!(
                    "{}: response headers exceed {MAX_HEADER_BYTES} bytes",
                    dest.url
                ));
            }
            let n = read_some(&mut stream, &mut chunk, left()?, &dest.url)?;
            if n == 0 {
                return Err(format!(
                    "{}: connection closed before the headers",
                    dest.url
                ));
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        };
        let head = std::str::from_utf8(buf.get(..header_end).unwrap_or(&[]))
            .map_err(|_| format!("{}: response headers are not text", dest.url))?
            .to_owned();
        let mut body: Vec<u8> = buf.get(header_end + 4..).unwrap_or(&[]).to_vec();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap_or("");
        let code: u16 = status
            .strip_prefix("HTTP/1.")
            .and_then(|r| r.get(2..5))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("{}: not an HTTP/1.x response ({status:?})", dest.url))?;
        let mut length = None;
        let mut chunked = false;
        let mut location = None;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => {
                    let n: usize = value
                        .parse()
                        .map_err(|_| format!("{}: bad Content-Length {value:?}", dest.url))?;
                    if length.is_some_and(|l| l != n) {
                        return Err(format!("{}: conflicting Content-Length", dest.url));
                    }
                    length = Some(n);
                }
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "location" => location = Some(value.to_owned()),
                _ => {}
            }
        }
        if matches!(code, 301 | 302 | 303 | 307 | 308) {
            return location
                .map(Response::Redirect)
                .ok_or_else(|| format!("{}: redirect without Location", dest.url));
        }
        if code != 200 {
            return Err(format!("{}: HTTP status {code}", dest.url));
        }
        let too_big = |n: usize| {
            format!(
                "{}: response of {n} bytes or more exceeds the {} byte cap",
                dest.url, self.max_bytes
            )
        };
        if let Some(n) = length {
            if n > self.max_bytes {
                return Err(too_big(n));
            }
        }
        loop {
            if length.is_some_and(|n| body.len() >= n) {
                break;
            }
            if body.len() > self.max_bytes.saturating_add(64) {
                return Err(too_big(body.len()));
            }
            let n = read_some(&mut stream, &mut chunk, left()?, &dest.url)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        }
        if chunked {
            body = dechunk(&body).ok_or_else(|| format!("{}: bad chunked body", dest.url))?;
        }
        if let Some(n) = length {
            if body.len() < n {
                return Err(format!(
                    "{}: body ended after {} of {n} bytes",
                    dest.url,
                    body.len()
                ));
            }
            body.truncate(n);
        }
        if body.len() > self.max_bytes {
            return Err(too_big(body.len()));
        }
        Ok(Response::Body(body))
    }
}

enum Response {
    Body(Vec<u8>),
    Redirect(String),
}

fn read_some(
    stream: &mut TcpStream,
    buf: &mut [u8],
    left: Duration,
    url: &url::Url,
) -> Result<usize, String> {
    stream
        .set_read_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    stream.read(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("{url}: timed out")
        }
        _ => format!("{url}: {e}"),
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a chunked body (extensions and trailers ignored).
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(data.get(..line_end)?).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        data = data.get(line_end + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(
            super::dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").as_deref(),
            Some(&b"abcde"[..])
        );
        assert_eq!(super::dechunk(b"5\r\nab"), None);
        assert_eq!(super::dechunk(b"zz\r\n"), None);
    }
}
