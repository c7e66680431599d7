//! The egress policy as a connector for hyper-util's legacy `Client`.
//!
//! Enabled by the `hyper` feature (off by default; never in the gem). [`PinnedConnector`]
//! is a `tower::Service<Uri>`: for every new connection it checks the URI with the policy
//! (strict parsing, scheme, port, host rules), resolves the name once through a [`Resolve`]
//! on tokio's blocking pool, checks every answer, and connects over plain TCP to those
//! addresses only, in order. TLS composes on top (for example `hyper-rustls`'
//! `HttpsConnectorBuilder::wrap_connector`), with the URI's host as the server name.
//!
//! ```no_run
//! use std::sync::Arc;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use portcullis::egress::{EgressPolicy, hyper::PinnedConnector};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let policy = Arc::new(EgressPolicy::builder().schemes(["http"]).ports([80]).build()?);
//! let client: Client<_, String> = Client::builder(TokioExecutor::new()).build(PinnedConnector::new(policy));
//! let response = client.get("http://93.184.216.34/".parse()?).await?;
//! # Ok(()) }
//! ```
//!
//! hyper follows no redirects, so there is none to check; a caller that follows a
//! `Location` itself judges it with [`EgressPolicy::check_redirect_url`] and sends the next
//! request through the same client. The connector sees the scheme and authority of each
//! new connection only: a pooled connection is reused for the same authority without a
//! new check, and the path and headers are not seen.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{Destination, EgressError, EgressPolicy, Resolve, SystemResolver};
use crate::ErrorCode;

/// Default time allowed for one TCP connect attempt of a [`PinnedConnector`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connector that checks, pins and connects. Cheap to clone.
///
/// ```
/// use portcullis::egress::{EgressPolicy, hyper::PinnedConnector};
/// let connector = PinnedConnector::new(Default::default())
///     .with_resolver(|_: &str| Ok(vec!["93.184.216.34".parse().unwrap()]))
///     .connect_timeout(std::time::Duration::from_secs(2));
/// assert!(format!("{connector:?}").starts_with("PinnedConnector"));
/// ```
#[derive(Clone)]
pub struct PinnedConnector {
    policy: Arc<EgressPolicy>,
    resolver: Arc<dyn Resolve + Send + Sync>,
    connect_timeout: Duration,
}

impl fmt::Debug for PinnedConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedConnector")
            .field("policy", &self.policy)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl PinnedConnector {
    /// A connector for `policy` resolving through the system resolver.
    pub fn new(policy: Arc<EgressPolicy>) -> Self {
        Self {
            policy,
            resolver: Arc::new(SystemResolver),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Resolves through `resolver` (every answer is still checked).
    #[must_use]
    pub fn with_resolver<R: Resolve + Send + Sync + 'static>(mut self, resolver: R) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// Time allowed for each connect attempt.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The policy connections are checked against.
    pub fn policy(&self) -> &Arc<EgressPolicy> {
        &self.policy
    }

    /// Checks `uri` and resolves its host (on the blocking pool): the destination a
    /// connection would be made to.
    pub async fn destination(&self, uri: &Uri) -> Result<Destination, ConnectError> {
        let pending = self.policy.check_url(&uri.to_string())?;
        let policy = Arc::clone(&self.policy);
        let resolver = Arc::clone(&self.resolver);
        let dest = tokio::task::spawn_blocking(move || policy.resolve_pending(pending, &*resolver))
            .await
            .map_err(|e| ConnectError::Connect {
                addrs: String::new(),
                source: io::Error::other(e),
            })??;
        Ok(dest)
    }

    async fn connect(self, uri: Uri) -> Result<TokioIo<TcpStream>, ConnectError> {
        let dest = self.destination(&uri).await?;
        let addrs = dest.socket_addrs();
        let mut last: Option<io::Error> = None;
        for addr in &addrs {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    // Latency over throughput for request/response traffic; failure is harmless.
                    let _ = stream.set_nodelay(true);
                    return Ok(TokioIo::new(stream));
                }
                Ok(Err(e)) => last = Some(e),
                Err(_) => last = Some(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
            }
        }
        Err(ConnectError::Connect {
            addrs: show(&addrs),
            source: last.unwrap_or_else(|| io::Error::other("no address")),
        })
    }
}

fn show(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl tower_service::Service<Uri> for PinnedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

/// Why a [`PinnedConnector`] made no connection. Every variant has a stable [`ErrorCode`].
///
/// ```
/// use portcullis::{ErrorCode, egress::hyper::ConnectError};
/// let err = ConnectError::Connect { addrs: "127.0.0.2:1".into(), source: std::io::ErrorKind::ConnectionRefused.into() };
/// assert_eq!(err.code(), "egress.connect_failed");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The policy refused the URI or an address its name resolved to.
    #[error(transparent)]
    Egress(#[from] EgressError),
    /// Every checked address refused the connection or timed out.
    #[error("could not connect to {addrs}: {source}")]
    Connect {
        /// The checked addresses tried, in order.
        addrs: String,
        /// The last failure.
        source: io::Error,
    },
}

impl ErrorCode for ConnectError {
    fn code(&self) -> &'static str {
        match self {
            Self::Egress(e) => e.code(),
            Self::Connect { .. } => "egress.connect_failed",
        }
    }
}
