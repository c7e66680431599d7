//! axum: the [`ClientIdentity`] extractor and an mTLS accept loop.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{refusal_response, ClientIdentity, ConnectionInfo};

/// How long a client has for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The rejection of the [`ClientIdentity`] extractor when no [`ClientCertLayer`](super::ClientCertLayer)
/// put one in the request (the layer is missing, or the route is in its skip table): a
/// detail-free `401`, with code `cert.missing` in a `tracing` event.
#[derive(Clone, Copy, Debug)]
pub struct MissingClientIdentity;

impl IntoResponse for MissingClientIdentity {
    fn into_response(self) -> Response {
        tracing::warn!(
            target: "portcullis",
            status = 401u16,
            code = "cert.missing",
            "refused: the handler asks for ClientIdentity but no ClientCertLayer verified this request"
        );
        refusal_response(StatusCode::UNAUTHORIZED)
    }
}

/// `ClientIdentity` as an axum extractor; `Option<ClientIdentity>` for routes the layer
/// skips.
///
/// ```
/// use portcullis::tower::ClientIdentity;
/// async fn whoami(caller: ClientIdentity) -> String {
///     caller.identity().spiffe_id.clone().unwrap_or_default()
/// }
/// let app: axum::Router = axum::Router::new().route("/whoami", axum::routing::get(whoami));
/// ```
impl<S: Send + Sync> FromRequestParts<S> for ClientIdentity {
    type Rejection = MissingClientIdentity;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientIdentity>()
            .cloned()
            .ok_or(MissingClientIdentity)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ClientIdentity {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<ClientIdentity>().cloned())
    }
}

/// Serves `app` over TLS on `listener`, HTTP/1.1, one task per connection, forever.
///
/// Each connection's [`ConnectionInfo`] (socket peer and the certificates the client
/// presented) is put in every request's extensions, where
/// [`ClientCertLayer`](super::ClientCertLayer) finds it. Build `tls` with
/// [`ClientVerifier`](crate::identity::tls::ClientVerifier) as its client-certificate
/// verifier, so a chain the trust store refuses ends the handshake and the layer's check
/// is a cache hit. Handshakes get 10 s, request headers 30 s; failures are `tracing`
/// events (target `portcullis`, DEBUG), not errors: one bad client stops nothing.
///
/// ```no_run
/// # async fn run(tls: std::sync::Arc<rustls::ServerConfig>, app: axum::Router) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// portcullis::tower::serve_tls(listener, tls, app).await;
/// # Ok(()) }
/// ```
pub async fn serve_tls(listener: TcpListener, tls: Arc<rustls::ServerConfig>, app: axum::Router) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // EMFILE and friends pass; back off instead of spinning.
                tracing::warn!(target: "portcullis", error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::debug!(target: "portcullis", %peer, error = %err, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::debug!(target: "portcullis", %peer, "TLS handshake timed out");
                    return;
                }
            };
            let certificates = stream
                .get_ref()
                .1
                .peer_certificates()
                .map(<[_]>::to_vec)
                .unwrap_or_default();
            let info = ConnectionInfo::new(Some(peer), certificates);
            let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(info.clone());
                let mut app = app.clone();
                async move { tower_service::Service::call(&mut app, req).await }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(err) = served {
                tracing::debug!(target: "portcullis", %peer, error = %err, "connection ended with an error");
            }
        });
    }
}
