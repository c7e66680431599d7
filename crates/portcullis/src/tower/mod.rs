//! The caller's certificate and permissions in front of a tower (or axum) service.
//!
//! Enabled by the `tower` feature (the `axum` feature adds the [`ClientIdentity`] extractor
//! and [`serve_tls`], an mTLS accept loop). Off by default; never in the gem.
//!
//! [`ClientCertLayer`] does what the Rack middleware `Portcullis::Rack::ClientCert` does,
//! with the same core objects:
//!
//! 1. A path in the skip table ([`SkipRoutes`]) passes through untouched.
//! 2. The presented chain comes either from the TLS connection (a [`ConnectionInfo`] in the
//!    request extensions, put there by [`serve_tls`] or your own accept loop; the rustls
//!    handshake already ran [`ClientVerifier`](crate::identity::tls::ClientVerifier) on it),
//!    or from a forwarded header through a [`CertSource`], honoured only when the socket
//!    peer is one of its trusted proxies. A certificate header that appears twice is
//!    refused.
//! 3. The chain is verified with [`TrustStore::verify_shared`] (a cache hit after the
//!    handshake or the first request).
//! 4. The identity's permissions come from the [`AccessPolicy`]; the route's required
//!    permissions from [`RouteRequirements`] (the same `require:` table as Rack).
//! 5. The request goes on with a [`ClientIdentity`] (identity and permissions) in its
//!    extensions.
//!
//! Refusals are `401` (no certificate, or one that does not verify) or `403` (a permission
//! missing, or a certificate header from a peer that is not a trusted proxy), with a
//! `text/plain` body of `unauthorized` or `forbidden` and nothing else. The stable code and
//! the reason are in a `tracing` event (target `portcullis`, level WARN, fields `status`,
//! `code`, `method`, `path`).
//!
//! ```
//! use portcullis::config::Config;
//! use portcullis::tower::ClientCertLayer;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # write_ca(dir.path());
//! let config = Config::from_str(r#"
//! [trust_store.clients]
//! ca = "ca.pem"
//!
//! [[access]]
//! spiffe_trust_domain = "example.org"
//! grants = ["reports:read"]
//!
//! [rack]
//! trust_store = "clients"
//! require = { "/reports" = "reports:read" }
//! skip = ["/up"]
//! "#, dir.path())?;
//! let layer = ClientCertLayer::from_config(&config)?;
//! // Router::new().route(...).layer(layer)
//! # Ok(()) }
//! # fn write_ca(dir: &std::path::Path) {
//! #     let ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
//! #     let mut ca = ca; ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
//! #     let key = rcgen::KeyPair::generate().unwrap();
//! #     std::fs::write(dir.join("ca.pem"), ca.self_signed(&key).unwrap().pem()).unwrap();
//! # }
//! ```
//!
//! Put the layer on the outermost router: it reads the request path as received (a nested
//! router sees a shortened one). What it cannot see: anything a handler does after the
//! check (egress, files: use [`crate::egress`] and [`crate::fs`] there), and requests
//! served by routes it does not wrap.

#[cfg(feature = "axum")]
mod axum;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, Request, Response, StatusCode};
use rustls_pki_types::CertificateDer;

use crate::authz::{AccessPolicy, AuthzError, RouteRequirements, SkipRoutes};
use crate::config::{Config, ConfigError, Location, UNNAMED};
use crate::identity::source::{CertSource, PresentedCertificate, SourceError, SourceKind};
use crate::identity::{Identity, TrustStore};
use crate::ErrorCode;

#[cfg(feature = "axum")]
pub use self::axum::{serve_tls, MissingClientIdentity};

/// The connection a request arrived on: the socket peer and the certificates the client
/// presented in the TLS handshake (leaf first). Put it in the request extensions from the
/// accept loop ([`serve_tls`] does).
///
/// ```
/// use portcullis::tower::ConnectionInfo;
/// let info = ConnectionInfo::new(Some("127.0.0.1:4000".parse().unwrap()), Vec::new());
/// assert!(info.peer_certificates().is_empty());
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    remote_addr: Option<SocketAddr>,
    peer_certificates: Arc<[CertificateDer<'static>]>,
}

impl ConnectionInfo {
    /// The socket peer and the handshake's peer certificates (as
    /// `rustls::ServerConnection::peer_certificates` returns them; empty for none).
    pub fn new(
        remote_addr: Option<SocketAddr>,
        peer_certificates: Vec<CertificateDer<'static>>,
    ) -> Self {
        Self {
            remote_addr,
            peer_certificates: peer_certificates.into(),
        }
    }

    /// The socket peer address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The peer certificates, leaf first.
    pub fn peer_certificates(&self) -> &[CertificateDer<'static>] {
        &self.peer_certificates
    }
}

/// A verified caller, in the request extensions of every request [`ClientCertLayer`] let
/// through (and the axum extractor of the same name).
///
/// ```
/// # fn handler(req: http::Request<()>) {
/// use portcullis::tower::ClientIdentity;
/// if let Some(caller) = req.extensions().get::<ClientIdentity>() {
///     println!("{:?} may {:?}", caller.identity().spiffe_id, caller.permissions());
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ClientIdentity {
    identity: Arc<Identity>,
    permissions: Arc<[String]>,
}

impl ClientIdentity {
    /// The verified identity.
    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    /// Every permission the access policy grants this identity.
    pub fn permissions(&self) -> &[String] {
        &self.permissions
    }

    /// Whether the policy grants `permission`.
    pub fn has(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

#[derive(Clone, Debug)]
struct Settings {
    store: Arc<TrustStore>,
    source: Option<Arc<CertSource>>,
    policy: Option<Arc<AccessPolicy>>,
    require: RouteRequirements,
    skip: SkipRoutes,
    permissions: PermissionCache,
}

/// Most identities whose permissions are remembered; the table is cleared when full.
const PERMISSION_CACHE_CAPACITY: usize = 10_000;

/// Permissions by verified identity. The access policy is immutable and the trust store's
/// cache hands back the same `Arc<Identity>` for the same chain, so the identity's address
/// is the key; the entry holds that `Arc`, so the address cannot be reused by another
/// identity while the entry exists.
#[derive(Debug, Default)]
struct PermissionCache {
    map: Mutex<HashMap<usize, Granted>>,
}

/// The identity (held, so its address stays its own) and what the policy grants it.
type Granted = (Arc<Identity>, Arc<[String]>);

impl Clone for PermissionCache {
    /// A changed layer (new policy) starts with an empty cache.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PermissionCache {
    fn get(&self, identity: &Arc<Identity>, policy: Option<&AccessPolicy>) -> Arc<[String]> {
        let Some(policy) = policy else {
            return Arc::new([]);
        };
        let key = Arc::as_ptr(identity) as usize;
        let mut map = match self.map.lock() {
            Ok(map) => map,
            // A panic elsewhere while holding the lock leaves a map that is still consistent.
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((held, permissions)) = map.get(&key) {
            if Arc::ptr_eq(held, identity) {
                return Arc::clone(permissions);
            }
        }
        let permissions: Arc<[String]> = policy.permissions(identity).into();
        if map.len() >= PERMISSION_CACHE_CAPACITY {
            map.clear();
        }
        map.insert(key, (Arc::clone(identity), Arc::clone(&permissions)));
        permissions
    }
}

/// A [`tower_layer::Layer`] that verifies the caller and checks route permissions; see the
/// [module documentation](self).
///
/// ```
/// use std::sync::Arc;
/// use portcullis::authz::{AccessPolicy, RouteRequirements, SkipRoutes};
/// use portcullis::identity::TrustStore;
/// use portcullis::tower::ClientCertLayer;
/// # fn store() -> Arc<TrustStore> { unimplemented!() }
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = ClientCertLayer::new(store())
///     .policy(Arc::new(AccessPolicy::new(vec![])?))
///     .require(RouteRequirements::new([("/admin", vec!["admin"])])?)
///     .skip(SkipRoutes::new(["/up"])?);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClientCertLayer {
    settings: Arc<Settings>,
}

impl ClientCertLayer {
    /// Verifies chains from the TLS connection with `store`; no access policy (every
    /// permission is missing), no route requirements, nothing skipped.
    pub fn new(store: Arc<TrustStore>) -> Self {
        Self {
            settings: Arc::new(Settings {
                store,
                source: None,
                policy: None,
                require: RouteRequirements::default(),
                skip: SkipRoutes::default(),
                permissions: PermissionCache::default(),
            }),
        }
    }

    /// Takes the chain from `source` instead: a forwarded header (trusted proxies checked
    /// against the socket peer), or, for [`SourceKind::Tls`], the TLS connection.
    #[must_use]
    pub fn source(mut self, source: Arc<CertSource>) -> Self {
        let tls = source.kind() == SourceKind::Tls;
        Arc::make_mut(&mut self.settings).source = (!tls).then_some(source);
        self
    }

    /// The access policy that maps identities to permissions.
    #[must_use]
    pub fn policy(mut self, policy: Arc<AccessPolicy>) -> Self {
        Arc::make_mut(&mut self.settings).policy = Some(policy);
        self
    }

    /// The permissions each route requires.
    #[must_use]
    pub fn require(mut self, require: RouteRequirements) -> Self {
        Arc::make_mut(&mut self.settings).require = require;
        self
    }

    /// Paths that need no certificate.
    #[must_use]
    pub fn skip(mut self, skip: SkipRoutes) -> Self {
        Arc::make_mut(&mut self.settings).skip = skip;
        self
    }

    /// The layer the `[rack]` table of `portcullis.toml` describes: its trust store, its
    /// source (or the TLS connection), the access policy for that store, `require` and
    /// `skip`. Errors: `config.unknown_name` when the file has no `[rack]` table.
    ///
    /// A snapshot: the layer shares the configuration's trust store, so
    /// [`Config::reload_crls`] reaches it, but `reload_interval` is not watched and a
    /// reloaded file (`ConfigHandle::reload`) needs a new layer.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let rack = config.rack().ok_or_else(|| ConfigError::UnknownName {
            kind: "[rack] table",
            name: "rack".to_owned(),
            file: file_name(config),
            defined: Vec::new(),
        })?;
        let store = Arc::clone(config.trust_store(&rack.trust_store)?);
        let policy = Arc::clone(config.access_policy_for(&rack.trust_store)?);
        // Both tables were compiled when the file was loaded; these cannot fail there.
        let require = RouteRequirements::new(
            rack.require
                .iter()
                .map(|(route, permission)| (route.as_str(), vec![permission.as_str()])),
        )
        .map_err(|e| config_error(config, "require", &e))?;
        let skip = SkipRoutes::new(&rack.skip).map_err(|e| config_error(config, "skip", &e))?;
        let mut layer = Self::new(store).policy(policy).require(require).skip(skip);
        if let Some(name) = &rack.source {
            layer = layer.source(Arc::clone(config.source(name)?));
        }
        Ok(layer)
    }
}

fn config_error(config: &Config, key: &str, err: &AuthzError) -> ConfigError {
    ConfigError::InvalidValue {
        at: Location::in_text(&file_name(config), "", 0),
        message: format!("[rack] {key}: {err}"),
        cause: Some(err.code()),
    }
}

fn file_name(config: &Config) -> String {
    config
        .path()
        .map_or_else(|| UNNAMED.to_owned(), |p| p.display().to_string())
}

impl<S> tower_layer::Layer<S> for ClientCertLayer {
    type Service = ClientCert<S>;

    fn layer(&self, inner: S) -> ClientCert<S> {
        ClientCert {
            inner,
            settings: Arc::clone(&self.settings),
        }
    }
}

/// The service [`ClientCertLayer`] wraps around `S`.
#[derive(Clone, Debug)]
pub struct ClientCert<S> {
    inner: S,
    settings: Arc<Settings>,
}

/// Why a request was turned away (logged, never sent to the client).
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn cert(err: &dyn ErrorCode) -> Self {
        // 401, or 403 for a header from a peer that is no trusted proxy: the core's table
        // (`crate::Answer`), the same the Ruby middleware answers by.
        let status =
            StatusCode::from_u16(err.answer().status()).unwrap_or(StatusCode::UNAUTHORIZED);
        Self {
            status,
            code: err.code(),
            message: err.to_string(),
        }
    }
}

/// The detail-free refusal response, and the tracing event with the reason.
fn refuse<B: From<&'static str>>(
    refusal: &Refusal,
    method: &http::Method,
    path: &str,
) -> Response<B> {
    tracing::warn!(
        target: "portcullis",
        status = refusal.status.as_u16(),
        code = refusal.code,
        method = %method,
        path = ?path,
        "refused: {}",
        refusal.message
    );
    refusal_response(refusal.status)
}

pub(crate) fn refusal_response<B: From<&'static str>>(status: StatusCode) -> Response<B> {
    let body = if status == StatusCode::FORBIDDEN {
        "forbidden\n"
    } else {
        "unauthorized\n"
    };
    let mut response = Response::new(B::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl Settings {
    fn authorize<B>(&self, req: &Request<B>) -> Result<ClientIdentity, Refusal> {
        let identity = self.verify(req)?;
        let permissions = self.permissions.get(&identity, self.policy.as_deref());
        let missing = self
            .require
            .missing(req.method().as_str(), req.uri().path(), &permissions);
        if !missing.is_empty() {
            let who = identity
                .spiffe_id
                .clone()
                .unwrap_or_else(|| identity.subject.to_string());
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                code: "authz.forbidden",
                message: format!(
                    "{who} lacks {} for {} {}",
                    missing.join(", "),
                    req.method(),
                    req.uri().path()
                ),
            });
        }
        Ok(ClientIdentity {
            identity,
            permissions,
        })
    }

    /// Verifies the chain as presented: from the connection, or from the forwarded header.
    fn verify<B>(&self, req: &Request<B>) -> Result<Arc<Identity>, Refusal> {
        let connection = req.extensions().get::<ConnectionInfo>();
        let now = SystemTime::now();
        let Some(source) = &self.source else {
            let certs = connection
                .map(ConnectionInfo::peer_certificates)
                .unwrap_or_default();
            let Some((leaf, chain)) = certs.split_first() else {
                return Err(Refusal::cert(&SourceError::Missing {
                    header: "the TLS connection".to_owned(),
                }));
            };
            // Borrowed, not copied: the common case (TLS, cache hit) allocates only this.
            let chain: Vec<&[u8]> = chain.iter().map(AsRef::as_ref).collect();
            return self
                .store
                .verify_shared(leaf.as_ref(), &chain, now)
                .map_err(|e| Refusal::cert(&e));
        };
        let presented = self.forwarded(req, source, connection)?;
        let chain: Vec<&[u8]> = presented.chain.iter().map(Vec::as_slice).collect();
        self.store
            .verify_shared(&presented.leaf, &chain, now)
            .map_err(|e| Refusal::cert(&e))
    }

    /// The chain from the forwarded header, if the socket peer may send it.
    fn forwarded<B>(
        &self,
        req: &Request<B>,
        source: &CertSource,
        connection: Option<&ConnectionInfo>,
    ) -> Result<PresentedCertificate, Refusal> {
        let peer = connection
            .and_then(ConnectionInfo::remote_addr)
            .or_else(|| axum_peer(req))
            .map(|a| a.ip().to_string());
        let headers = req.headers();
        let names = [Some(source.header()), source.chain_header()];
        for name in names.into_iter().flatten() {
            if let Some(reason) = unusable(headers, name) {
                if !source.trusted_proxies().contains_peer(peer.as_deref()) {
                    return Err(Refusal::cert(&SourceError::UntrustedProxy {
                        header: name.to_owned(),
                        peer: peer.unwrap_or_else(|| "unknown".to_owned()),
                    }));
                }
                return Err(Refusal::cert(&SourceError::BadEncoding {
                    header: name.to_owned(),
                    kind: source.kind(),
                    reason: reason.to_owned(),
                }));
            }
        }
        source
            .extract(
                |name| headers.get(name).and_then(|v| v.to_str().ok()),
                peer.as_deref(),
            )
            .map_err(|e| Refusal::cert(&e))
    }
}

/// A certificate header that cannot be read as one value: sent twice (a client's copy next
/// to the proxy's), or not visible ASCII.
fn unusable(headers: &HeaderMap, name: &str) -> Option<&'static str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return Some("the header is present more than once");
    }
    if first.to_str().is_err() {
        return Some("the header value is not visible ASCII");
    }
    None
}

#[cfg(feature = "axum")]
fn axum_peer<B>(req: &Request<B>) -> Option<SocketAddr> {
    req.extensions()
        .get::<::axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
}

#[cfg(not(feature = "axum"))]
fn axum_peer<B>(_req: &Request<B>) -> Option<SocketAddr> {
    None
}

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for ClientCert<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<&'static str>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let settings = &self.settings;
        if !settings.skip.is_empty() && settings.skip.skips(req.uri().path()) {
            return ResponseFuture::inner(self.inner.call(req));
        }
        match settings.authorize(&req) {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                ResponseFuture::inner(self.inner.call(req))
            }
            Err(refusal) => {
                ResponseFuture::refused(refuse(&refusal, req.method(), req.uri().path()))
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`ClientCert`]: the inner service's, or an immediate refusal.
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: Option<F>,
        refused: Option<Response<B>>,
    }
}

impl<F, B> ResponseFuture<F, B> {
    fn inner(future: F) -> Self {
        Self {
            inner: Some(future),
            refused: None,
        }
    }

    fn refused(response: Response<B>) -> Self {
        Self {
            inner: None,
            refused: Some(response),
        }
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("refused", &self.refused.as_ref().map(Response::status))
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.inner.as_pin_mut() {
            Some(inner) => inner.poll(cx),
            None => match this.refused.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after completion: the refusal was already returned.
                None => Poll::Pending,
            },
        }
    }
}
