//! The egress policy inside reqwest: one shared client for every destination.
//!
//! Enabled by the `reqwest` feature (off by default; never in the gem). Three pieces, each
//! usable alone, put together by [`client`]:
//!
//! - [`EgressResolver`], a [`reqwest::dns::Resolve`]: reqwest asks it for the addresses of
//!   every name it connects to, and it answers only with addresses the policy allows (the
//!   host rules run first, then every answer must pass, as in
//!   [`EgressPolicy::check_with`]). reqwest connects to nothing else, so a name that
//!   rebinds to a refused address between two requests is refused on the next connect.
//! - [`redirect_policy`], a [`reqwest::redirect::Policy`] that judges every hop with
//!   [`EgressPolicy::check_redirect_url`] (scheme downgrade, scheme, port, host rules, IP
//!   literals) and stops after a maximum number of hops.
//! - [`Client`], a wrapper around `reqwest::Client` that runs the URL-level rules (strict
//!   parsing, userinfo, scheme, port, host allowlist, IP literals) on every request before
//!   reqwest sees it. reqwest does not call the resolver for an IP literal, so these rules
//!   are what refuses `https://127.0.0.1/`. The wrapper has no way to reach the inner
//!   client: every request goes through [`Client::execute`].
//!
//! The client is built with `no_proxy` (a proxy would resolve the name again), without the
//! `Referer` header, with a connect timeout, a total timeout and a cap on the body that
//! [`Response::bytes`] reads.
//!
//! ```no_run
//! use std::sync::Arc;
//! use portcullis::config::Config;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_path("portcullis.toml")?;
//! let http = portcullis::egress::reqwest::client(Arc::clone(config.egress("partners")?))
//!     .timeout(std::time::Duration::from_secs(10))
//!     .max_body_bytes(1 << 20)
//!     .build()?;
//! let response = http.get("https://api.partner.example/v1/status").send().await?;
//! let body = response.text().await?;
//! # Ok(()) }
//! ```
//!
//! What it does not see: the body of a request or response, and the raw `Location` header
//! (reqwest has already resolved it against the current URL with the same WHATWG parser, so
//! the strict checks judge its canonical form).

use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolving};

use super::{EgressError, EgressPolicy, Resolve, SystemResolver};
use crate::ErrorCode;

/// Default total timeout of a request made with [`client`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default connect timeout of [`client`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on a response body read with [`Response::bytes`] or [`Response::text`].
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Default number of redirects followed.
pub const DEFAULT_MAX_REDIRECTS: usize = 5;

type SharedResolve = Arc<dyn Resolve + Send + Sync>;

/// A [`reqwest::dns::Resolve`] that answers only with addresses `policy` allows.
///
/// The name goes through the policy's host rules (deny list, metadata names, allowlist),
/// then through `resolver` (the system resolver by default; any [`Resolve`], such as a
/// stub in tests), and every answer must pass [`EgressPolicy::check_ip`]: one refused
/// answer refuses the name. Resolution runs on tokio's blocking pool, since [`Resolve`]
/// may block ([`with_nonblocking_resolver`](Self::with_nonblocking_resolver) skips the hop).
///
/// ```
/// use std::sync::Arc;
/// use portcullis::egress::{EgressPolicy, reqwest::EgressResolver};
/// let stub = |_: &str| -> std::io::Result<Vec<std::net::IpAddr>> { Ok(vec!["10.0.0.5".parse().unwrap()]) };
/// let resolver = EgressResolver::with_resolver(Arc::new(EgressPolicy::default()), stub);
/// let client = reqwest::Client::builder().dns_resolver(Arc::new(resolver)).no_proxy().build();
/// assert!(client.is_ok());
/// ```
#[derive(Clone)]
pub struct EgressResolver {
    policy: Arc<EgressPolicy>,
    resolver: SharedResolve,
    blocking: bool,
}

impl fmt::Debug for EgressResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EgressResolver")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl EgressResolver {
    /// Resolves through the operating system ([`SystemResolver`]).
    ///
    /// ```
    /// let r = portcullis::egress::reqwest::EgressResolver::new(Default::default());
    /// assert!(format!("{r:?}").starts_with("EgressResolver"));
    /// ```
    pub fn new(policy: Arc<EgressPolicy>) -> Self {
        Self::with_resolver(policy, SystemResolver)
    }

    /// Resolves through `resolver`.
    ///
    /// ```
    /// use portcullis::egress::{SystemResolver, reqwest::EgressResolver};
    /// let r = EgressResolver::with_resolver(Default::default(), SystemResolver);
    /// assert!(r.policy().check_url("https://example.com/").is_ok());
    /// ```
    pub fn with_resolver<R: Resolve + Send + Sync + 'static>(
        policy: Arc<EgressPolicy>,
        resolver: R,
    ) -> Self {
        Self {
            policy,
            resolver: Arc::new(resolver),
            blocking: true,
        }
    }

    /// Resolves through `resolver` on the runtime's own thread, without the hop to the
    /// blocking pool (about 15 µs saved per lookup): only for resolvers that never block,
    /// such as a stub, an in-memory cache or a service-registry snapshot. A resolver that
    /// does block here stalls the runtime thread.
    ///
    /// ```
    /// use portcullis::egress::reqwest::EgressResolver;
    /// let stub = |_: &str| -> std::io::Result<Vec<std::net::IpAddr>> { Ok(vec!["93.184.216.34".parse().unwrap()]) };
    /// let r = EgressResolver::with_nonblocking_resolver(Default::default(), stub);
    /// assert_eq!(r.resolve_blocking("api.example.com")?.len(), 1);
    /// # Ok::<(), portcullis::egress::EgressError>(())
    /// ```
    pub fn with_nonblocking_resolver<R: Resolve + Send + Sync + 'static>(
        policy: Arc<EgressPolicy>,
        resolver: R,
    ) -> Self {
        Self {
            blocking: false,
            ..Self::with_resolver(policy, resolver)
        }
    }

    /// The policy the answers are checked against.
    pub fn policy(&self) -> &Arc<EgressPolicy> {
        &self.policy
    }

    /// Resolves and checks `host` now, blocking: what [`reqwest::dns::Resolve::resolve`]
    /// does on the blocking pool.
    ///
    /// ```
    /// use portcullis::{ErrorCode, egress::{EgressPolicy, reqwest::EgressResolver}};
    /// let stub = |_: &str| -> std::io::Result<Vec<std::net::IpAddr>> { Ok(vec!["169.254.169.254".parse().unwrap()]) };
    /// let r = EgressResolver::with_resolver(Default::default(), stub);
    /// assert_eq!(r.resolve_blocking("x.example").unwrap_err().code(), "egress.metadata");
    /// ```
    pub fn resolve_blocking(&self, host: &str) -> Result<Vec<SocketAddr>, EgressError> {
        let ips = self.policy.check_host_with(host, &*self.resolver)?;
        // reqwest replaces port 0 with the URL's port.
        Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect())
    }
}

impl reqwest::dns::Resolve for EgressResolver {
    fn resolve(&self, name: Name) -> Resolving {
        if !self.blocking {
            let answer = self.resolve_blocking(name.as_str());
            return Box::pin(async move {
                let addrs = answer?;
                Ok(Box::new(addrs.into_iter()) as Addrs)
            });
        }
        let this = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let joined = tokio::task::spawn_blocking(move || this.resolve_blocking(&host)).await;
            let addrs = match joined {
                Ok(result) => result?,
                Err(join) => return Err(Box::new(join) as Box<dyn StdError + Send + Sync>),
            };
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A redirect policy that judges every hop with [`EgressPolicy::check_redirect_url`] and
/// refuses more than `max_redirects` hops. The new name is resolved (and its addresses
/// checked) by the client's resolver when reqwest connects.
///
/// ```
/// let policy = portcullis::egress::reqwest::redirect_policy(Default::default(), 3);
/// let client = reqwest::Client::builder().redirect(policy).no_proxy().build();
/// assert!(client.is_ok());
/// ```
pub fn redirect_policy(
    policy: Arc<EgressPolicy>,
    max_redirects: usize,
) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        // `previous` starts with the original URL; hops so far = len - 1, this one included = len.
        if attempt.previous().len() > max_redirects {
            let err = FetchError::TooManyRedirects { max: max_redirects };
            return attempt.error(err);
        }
        let Some(from) = attempt.previous().last().cloned() else {
            return attempt.stop();
        };
        let next = attempt.url().as_str().to_owned();
        match policy.check_redirect_url(&from, &next) {
            Ok(_) => attempt.follow(),
            Err(err) => attempt.error(err),
        }
    })
}

/// Why a request through [`Client`] failed. Every variant has a stable [`ErrorCode`].
///
/// ```
/// use portcullis::{ErrorCode, egress::reqwest::FetchError};
/// assert_eq!(FetchError::ResponseTooLarge { max: 10 }.code(), "egress.response_too_large");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The policy refused the URL, a redirect hop, or an address the name resolved to.
    #[error(transparent)]
    Egress(#[from] EgressError),
    /// The response body is larger than the client's cap.
    #[error("response body exceeds the {max}-byte cap; raise max_body_bytes if this response is legitimately that large")]
    ResponseTooLarge {
        /// The cap.
        max: usize,
    },
    /// More redirects than the client follows.
    #[error("more than {max} redirects; refused")]
    TooManyRedirects {
        /// The limit.
        max: usize,
    },
    /// The connect or total timeout elapsed.
    #[error("request timed out: {0}")]
    Timeout(#[source] reqwest::Error),
    /// Any other HTTP or connection failure, as reqwest reports it.
    #[error("HTTP request failed: {0}")]
    Http(#[source] reqwest::Error),
}

impl ErrorCode for FetchError {
    fn code(&self) -> &'static str {
        match self {
            Self::Egress(e) => e.code(),
            Self::ResponseTooLarge { .. } => "egress.response_too_large",
            Self::TooManyRedirects { .. } => "egress.too_many_redirects",
            Self::Timeout(_) => "egress.timeout",
            Self::Http(_) => "egress.http",
        }
    }
}

impl From<reqwest::Error> for FetchError {
    /// Finds a policy refusal (from the resolver or the redirect policy) anywhere in the
    /// error's source chain, so it keeps its own code.
    fn from(err: reqwest::Error) -> Self {
        let mut source: Option<&(dyn StdError + 'static)> = err.source();
        while let Some(e) = source {
            if let Some(egress) = e.downcast_ref::<EgressError>() {
                return Self::Egress(egress.clone());
            }
            if let Some(FetchError::TooManyRedirects { max }) = e.downcast_ref::<FetchError>() {
                return Self::TooManyRedirects { max: *max };
            }
            source = e.source();
        }
        if err.is_timeout() {
            Self::Timeout(err)
        } else {
            Self::Http(err)
        }
    }
}

/// Starts a [`Client`] for `policy` with the defaults ([`DEFAULT_TIMEOUT`],
/// [`DEFAULT_CONNECT_TIMEOUT`], [`DEFAULT_MAX_BODY_BYTES`], [`DEFAULT_MAX_REDIRECTS`],
/// the system resolver, the webpki root certificates).
///
/// ```
/// let http = portcullis::egress::reqwest::client(Default::default()).build()?;
/// assert_eq!(http.max_body_bytes(), portcullis::egress::reqwest::DEFAULT_MAX_BODY_BYTES);
/// # Ok::<(), portcullis::egress::reqwest::FetchError>(())
/// ```
pub fn client(policy: Arc<EgressPolicy>) -> ClientBuilder {
    ClientBuilder {
        policy,
        resolver: Arc::new(SystemResolver),
        blocking_resolver: true,
        timeout: DEFAULT_TIMEOUT,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        max_redirects: DEFAULT_MAX_REDIRECTS,
        identity: None,
        roots: Vec::new(),
        builtin_roots: true,
        user_agent: None,
    }
}

/// Options of a [`Client`]; only the ones that cannot open a way around the policy
/// (no proxy, no resolve override, no custom connector).
pub struct ClientBuilder {
    policy: Arc<EgressPolicy>,
    resolver: SharedResolve,
    blocking_resolver: bool,
    timeout: Duration,
    connect_timeout: Duration,
    max_body_bytes: usize,
    max_redirects: usize,
    identity: Option<reqwest::Identity>,
    roots: Vec<reqwest::Certificate>,
    builtin_roots: bool,
    user_agent: Option<String>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_redirects", &self.max_redirects)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Resolves names through `resolver` instead of the system resolver (every answer is
    /// still checked).
    pub fn resolver<R: Resolve + Send + Sync + 'static>(mut self, resolver: R) -> Self {
        self.resolver = Arc::new(resolver);
        self.blocking_resolver = true;
        self
    }

    /// Like [`resolver`](Self::resolver), for a resolver that never blocks; see
    /// [`EgressResolver::with_nonblocking_resolver`].
    pub fn nonblocking_resolver<R: Resolve + Send + Sync + 'static>(mut self, resolver: R) -> Self {
        self.resolver = Arc::new(resolver);
        self.blocking_resolver = false;
        self
    }

    /// Total time for a request, from connect to the end of the body.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Time allowed for the TCP (and TLS) connect.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Largest response body [`Response::bytes`] and [`Response::text`] read.
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Most redirects followed (each one checked); 0 follows none (a 3xx is returned as is).
    pub fn max_redirects(mut self, max: usize) -> Self {
        self.max_redirects = max;
        self
    }

    /// A client certificate for mTLS to the upstream.
    pub fn identity(mut self, identity: reqwest::Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Trusts `root` for upstream server certificates, in addition to (or, with
    /// [`builtin_roots(false)`](Self::builtin_roots), instead of) the webpki roots.
    pub fn add_root_certificate(mut self, root: reqwest::Certificate) -> Self {
        self.roots.push(root);
        self
    }

    /// Whether the bundled webpki root certificates are trusted (default true).
    pub fn builtin_roots(mut self, enabled: bool) -> Self {
        self.builtin_roots = enabled;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, agent: &str) -> Self {
        self.user_agent = Some(agent.to_owned());
        self
    }

    /// Builds the client. Errors: `egress.http` when reqwest refuses the TLS settings.
    pub fn build(self) -> Result<Client, FetchError> {
        let resolver = EgressResolver {
            policy: Arc::clone(&self.policy),
            resolver: self.resolver,
            blocking: self.blocking_resolver,
        };
        let redirect = if self.max_redirects == 0 {
            reqwest::redirect::Policy::none()
        } else {
            redirect_policy(Arc::clone(&self.policy), self.max_redirects)
        };
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .redirect(redirect)
            .referer(false)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .tls_built_in_root_certs(self.builtin_roots);
        for root in self.roots {
            builder = builder.add_root_certificate(root);
        }
        if let Some(identity) = self.identity {
            builder = builder.identity(identity);
        }
        if let Some(agent) = self.user_agent {
            builder = builder.user_agent(agent);
        }
        let inner = builder.build().map_err(FetchError::Http)?;
        Ok(Client {
            inner,
            policy: self.policy,
            max_body_bytes: self.max_body_bytes,
        })
    }
}

/// A reqwest client that checks every request's URL against the policy before sending it,
/// resolves through [`EgressResolver`] and follows redirects through [`redirect_policy`].
/// Cheap to clone (one connection pool).
///
/// The inner `reqwest::Client` is not reachable: [`Client::execute`] is the only way out.
#[derive(Clone, Debug)]
pub struct Client {
    inner: reqwest::Client,
    policy: Arc<EgressPolicy>,
    max_body_bytes: usize,
}

impl Client {
    /// A `GET` request for `url` (checked when sent).
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(reqwest::Method::GET, url)
    }

    /// A `POST` request for `url` (checked when sent).
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(reqwest::Method::POST, url)
    }

    /// A request for `url`. The raw text is checked here (strict parsing sees what the
    /// caller wrote, before any parser repairs it); a refusal is returned by
    /// [`RequestBuilder::send`].
    pub fn request(&self, method: reqwest::Method, url: &str) -> RequestBuilder {
        let inner = self
            .policy
            .check_url(url)
            .map(|pending| self.inner.request(method, pending.url().clone()));
        RequestBuilder {
            client: self.clone(),
            inner,
        }
    }

    /// Sends a request built elsewhere. Its URL is checked first, like every request's.
    pub async fn execute(&self, request: reqwest::Request) -> Result<Response, FetchError> {
        self.policy.check_url(request.url().as_str())?;
        let response = self.inner.execute(request).await?;
        Ok(Response {
            inner: response,
            max_body_bytes: self.max_body_bytes,
            read: 0,
        })
    }

    /// The policy every request is checked against.
    pub fn policy(&self) -> &Arc<EgressPolicy> {
        &self.policy
    }

    /// The body cap of this client's responses.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }
}

/// A request being built; [`send`](Self::send) checks it and sends it.
#[derive(Debug)]
pub struct RequestBuilder {
    client: Client,
    inner: Result<reqwest::RequestBuilder, EgressError>,
}

impl RequestBuilder {
    fn map(mut self, f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        self.inner = self.inner.map(f);
        self
    }

    /// Adds a header.
    pub fn header(self, name: &str, value: &str) -> Self {
        self.map(|b| b.header(name, value))
    }

    /// Sets the request body.
    pub fn body<B: Into<reqwest::Body>>(self, body: B) -> Self {
        self.map(|b| b.body(body))
    }

    /// Sets `Authorization: Bearer …`.
    pub fn bearer_auth(self, token: &str) -> Self {
        self.map(|b| b.bearer_auth(token))
    }

    /// A shorter total timeout for this request.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.map(|b| b.timeout(timeout))
    }

    /// Checks and sends the request.
    pub async fn send(self) -> Result<Response, FetchError> {
        let request = self.inner?.build()?;
        self.client.execute(request).await
    }
}

/// A response whose body is read under the client's cap.
#[derive(Debug)]
pub struct Response {
    inner: reqwest::Response,
    max_body_bytes: usize,
    read: usize,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> reqwest::StatusCode {
        self.inner.status()
    }

    /// The response headers.
    pub fn headers(&self) -> &reqwest::header::HeaderMap {
        self.inner.headers()
    }

    /// The final URL, after any redirects.
    pub fn url(&self) -> &url::Url {
        self.inner.url()
    }

    /// The next chunk of the body; the chunks read so far count against the cap.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, FetchError> {
        match self.inner.chunk().await? {
            None => Ok(None),
            Some(chunk) if self.read + chunk.len() > self.max_body_bytes => {
                Err(FetchError::ResponseTooLarge {
                    max: self.max_body_bytes,
                })
            }
            Some(chunk) => {
                self.read += chunk.len();
                Ok(Some(chunk.to_vec()))
            }
        }
    }

    /// The whole body, refused once it passes the cap (a `Content-Length` over the cap is
    /// refused before reading).
    pub async fn bytes(mut self) -> Result<Vec<u8>, FetchError> {
        let max = self.max_body_bytes;
        if self.inner.content_length().is_some_and(|n| n > max as u64) {
            return Err(FetchError::ResponseTooLarge { max });
        }
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The body as text (invalid UTF-8 replaced), under the cap.
    pub async fn text(self) -> Result<String, FetchError> {
        let bytes = self.bytes().await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}
