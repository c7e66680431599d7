//! `tower::ClientCertLayer` in an axum app behind rustls mTLS on 127.0.0.1, configured from
//! a `portcullis.toml`, called with reqwest presenting client certificates: good, revoked,
//! wrong CA, none, a permission missing; and the forwarded-header mode, from a trusted and
//! from an untrusted socket peer. Refusal codes are read from the `tracing` events.
#![cfg(all(feature = "axum", feature = "reqwest"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures

mod common;
mod services_common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::routing::get;
use axum::Router;
use common::{crl, intermediate, leaf, root_named, Alg, Ca, Leaf, LeafSpec};
use portcullis::config::Config;
use portcullis::identity::tls::ClientVerifier;
use portcullis::tower::{serve_tls, ClientCertLayer, ClientIdentity};
use portcullis::ErrorCode;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use services_common::runtime;

// ---- tracing capture: (status, code, path) of every `portcullis` event ----

#[derive(Clone, Debug, Default)]
struct Seen {
    status: u64,
    code: String,
    path: String,
}

fn events() -> &'static Mutex<Vec<Seen>> {
    static EVENTS: OnceLock<Mutex<Vec<Seen>>> = OnceLock::new();
    EVENTS.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl tracing::field::Visit for Seen {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "status" {
            self.status = value;
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "code" {
            self.code = value.to_owned();
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "path" {
            self.path = format!("{value:?}").trim_matches('"').to_owned();
        }
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "portcullis" {
            let mut seen = Seen::default();
            event.record(&mut seen);
            events().lock().unwrap().push(seen);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn capture() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Capture);
    });
}

/// The code of the refusal event logged for `path`.
fn refusal_code(path: &str) -> Option<(u64, String)> {
    events()
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|s| s.path == path)
        .map(|s| (s.status, s.code.clone()))
}

// ---- PKI and configuration ----

struct Pki {
    inter: Ca,
    good: Leaf,
    revoked: Leaf,
    nobody: Leaf,
    stranger: Leaf, // from another CA
    server_ca: Ca,
    server: Leaf,
    dir: tempfile::TempDir,
}

fn spiffe(id: &str, serial: u64) -> LeafSpec {
    let mut spec = LeafSpec::spiffe(id);
    spec.serial = serial;
    spec
}

fn pki() -> Pki {
    let root = root_named(Alg::P256, "Client Root");
    let inter = intermediate(Alg::P256, &root, "Client Intermediate");
    let good = leaf(
        Alg::P256,
        &inter,
        &spiffe("spiffe://example.org/reporter", 0x2001),
    );
    let revoked = leaf(
        Alg::P256,
        &inter,
        &spiffe("spiffe://example.org/former", 0x2002),
    );
    let nobody = leaf(
        Alg::P256,
        &inter,
        &spiffe("spiffe://other.org/nobody", 0x2003),
    );
    let other_root = root_named(Alg::P256, "Other Root");
    let stranger = leaf(
        Alg::P256,
        &other_root,
        &spiffe("spiffe://example.org/reporter", 0x2001),
    );
    let server_ca = root_named(Alg::P256, "Server Root");
    let mut server_spec = LeafSpec::server("localhost");
    server_spec.ips = vec!["127.0.0.1".parse().unwrap()];
    let server = leaf(Alg::P256, &server_ca, &server_spec);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), root.pem()).unwrap();
    std::fs::write(dir.path().join("root.crl"), crl(&root, &[])).unwrap();
    std::fs::write(dir.path().join("inter.crl"), crl(&inter, &[0x2002])).unwrap();
    Pki {
        inter,
        good,
        revoked,
        nobody,
        stranger,
        server_ca,
        server,
        dir,
    }
}

const STORE_AND_RULES: &str = r#"
[trust_store.clients]
ca = "ca.pem"
crls = ["root.crl", "inter.crl"]

[[access]]
spiffe_trust_domain = "example.org"
grants = ["reports:read"]
"#;

fn config(dir: &Path, rack_extra: &str) -> Config {
    let text = format!(
        "{STORE_AND_RULES}\n{rack_extra}\n[rack]\ntrust_store = \"clients\"\nrequire = {{ \"/reports\" = \"reports:read\" }}\nskip = [\"/up\"]\n{}",
        if rack_extra.is_empty() { "" } else { "source = \"edge\"\n" }
    );
    std::fs::write(dir.join("portcullis.toml"), &text).unwrap();
    Config::from_path(dir.join("portcullis.toml")).unwrap()
}

/// The app: `/reports/{case}` counts how often a handler ran.
fn app(layer: ClientCertLayer, reached: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route(
            "/reports/{case}",
            get(move |caller: ClientIdentity| {
                let reached = Arc::clone(&reached);
                async move {
                    reached.fetch_add(1, Ordering::SeqCst);
                    assert!(caller.has("reports:read"));
                    caller.identity().spiffe_id.clone().unwrap_or_default()
                }
            }),
        )
        .route(
            "/whoami",
            get(|caller: ClientIdentity| async move {
                format!(
                    "{:?} {:?}",
                    caller.identity().spiffe_id,
                    caller.permissions()
                )
            }),
        )
        .route(
            "/up",
            get(|caller: Option<ClientIdentity>| async move {
                if caller.is_some() {
                    "someone"
                } else {
                    "anonymous"
                }
            }),
        )
        .route(
            "/up/strict",
            get(|_caller: ClientIdentity| async { "never" }),
        )
        .layer(layer)
}

fn pem_identity(leaf: &Leaf, inter: Option<&Ca>) -> reqwest::Identity {
    let mut pem = leaf.pem();
    if let Some(inter) = inter {
        pem.push_str(&inter.pem());
    }
    pem.push_str(&leaf.key.serialize_pem());
    reqwest::Identity::from_pem(pem.as_bytes()).unwrap()
}

struct Reply {
    status: u16,
    body: String,
}

async fn call(client: &reqwest::Client, url: &str) -> Result<Reply, reqwest::Error> {
    let r = client.get(url).send().await?;
    let status = r.status().as_u16();
    let body = r.text().await?;
    Ok(Reply { status, body })
}

#[test]
fn axum_behind_rustls_mtls() {
    capture();
    let p = pki();
    let config = config(p.dir.path(), "");
    let store = Arc::clone(config.trust_store("clients").unwrap());
    let layer = ClientCertLayer::from_config(&config).unwrap();
    let reached = Arc::new(AtomicUsize::new(0));
    let app = app(layer, Arc::clone(&reached));

    let verifier = Arc::new(ClientVerifier::new(store).allow_anonymous());
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_client_cert_verifier(verifier)
    .with_single_cert(
        vec![CertificateDer::from(p.server.der())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(p.server.key.serialize_der())),
    )
    .unwrap();

    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(serve_tls(listener, Arc::new(tls), app));

    let server_root = reqwest::Certificate::from_pem(p.server_ca.pem().as_bytes()).unwrap();
    let client_with = |identity: Option<reqwest::Identity>| {
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(server_root.clone());
        if let Some(identity) = identity {
            b = b.identity(identity);
        }
        b.build().unwrap()
    };
    let base = format!("https://{addr}");

    rt.block_on(async {
        // good: the chain (leaf + intermediate) verified in the handshake and by the layer
        let good = client_with(Some(pem_identity(&p.good, Some(&p.inter))));
        let r = call(&good, &format!("{base}/reports/good")).await.unwrap();
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "spiffe://example.org/reporter")
        );
        let r = call(&good, &format!("{base}/whoami")).await.unwrap();
        assert_eq!(
            r.body,
            "Some(\"spiffe://example.org/reporter\") [\"reports:read\"]"
        );
        let r = call(&good, &format!("{base}/up")).await.unwrap();
        assert_eq!(
            r.body, "anonymous",
            "skipped routes are not verified at all"
        );
        assert_eq!(reached.load(Ordering::SeqCst), 1);

        // revoked and wrong CA: the handshake refuses them; no handler runs
        for (name, identity) in [
            ("revoked", pem_identity(&p.revoked, Some(&p.inter))),
            ("wrong-ca", pem_identity(&p.stranger, None)),
        ] {
            let client = client_with(Some(identity));
            let r = call(&client, &format!("{base}/reports/{name}")).await;
            assert!(r.is_err(), "{name}: {:?}", r.map(|r| r.status));
        }
        assert_eq!(reached.load(Ordering::SeqCst), 1);

        // none: the handshake allows anonymous clients; the layer answers 401
        let anonymous = client_with(None);
        let r = call(&anonymous, &format!("{base}/reports/none"))
            .await
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (401, "unauthorized\n"));
        assert_eq!(
            refusal_code("/reports/none"),
            Some((401, "cert.missing".to_owned()))
        );
        let r = call(&anonymous, &format!("{base}/up")).await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "anonymous"));
        // the extractor on a skipped route refuses on its own
        let r = call(&anonymous, &format!("{base}/up/strict"))
            .await
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (401, "unauthorized\n"));

        // a permission missing: verified, but 403 with nothing in the body
        let nobody = client_with(Some(pem_identity(&p.nobody, Some(&p.inter))));
        let r = call(&nobody, &format!("{base}/reports/missing"))
            .await
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (403, "forbidden\n"));
        assert_eq!(
            refusal_code("/reports/missing"),
            Some((403, "authz.forbidden".to_owned()))
        );
        // every spelling of the route needs the same permission
        for path in [
            "/%72eports/x",
            "//reports/x",
            "/REPORTS/x",
            "/x/../reports/x",
            "/reports;a/x",
        ] {
            let r = call(&nobody, &format!("{base}{path}")).await.unwrap();
            assert_eq!(r.status, 403, "{path}");
        }
        // paths needing nothing still need a verified certificate
        let r = call(&nobody, &format!("{base}/whoami")).await.unwrap();
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "Some(\"spiffe://other.org/nobody\") []")
        );
        // a client certificate header over TLS is not read when the source is the connection
        let r = anonymous
            .get(format!("{base}/reports/header-over-tls"))
            .header("x-ssl-client-cert", escape(&p.good.pem()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    });
    assert_eq!(reached.load(Ordering::SeqCst), 1);
}

/// nginx `$ssl_client_escaped_cert` style: every byte but unreserved ones %-escaped.
fn escape(pem: &str) -> String {
    pem.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn forwarded_header_checked_against_the_socket_peer() {
    capture();
    let p = pki();
    let edge = "[source.edge]\nkind = \"nginx\"\ntrusted_proxies = [\"127.0.0.1\"]\n";
    let config = config(p.dir.path(), edge);
    let layer = ClientCertLayer::from_config(&config).unwrap();
    let reached = Arc::new(AtomicUsize::new(0));
    let app = app(layer, Arc::clone(&reached));

    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let from = |ip: &str| {
        reqwest::Client::builder()
            .no_proxy()
            .local_address(Some(ip.parse().unwrap()))
            .build()
            .unwrap()
    };
    let proxy = from("127.0.0.1");
    let stranger = from("127.0.0.3");
    let good_chain = escape(&format!("{}{}", p.good.pem(), p.inter.pem()));
    let base = format!("http://{addr}");

    rt.block_on(async {
        let send = |client: &reqwest::Client, path: &str, values: &[String]| {
            let mut req = client.get(format!("{base}{path}"));
            for v in values {
                req = req.header("x-ssl-client-cert", v.as_str());
            }
            req.send()
        };
        let r = send(
            &proxy,
            "/reports/fwd-good",
            std::slice::from_ref(&good_chain),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "spiffe://example.org/reporter");

        // the same header from a peer that is not a trusted proxy: 403, nothing verified
        let r = send(
            &stranger,
            "/reports/fwd-untrusted",
            std::slice::from_ref(&good_chain),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(r.text().await.unwrap(), "forbidden\n");
        assert_eq!(
            refusal_code("/reports/fwd-untrusted"),
            Some((403, "cert.untrusted_proxy".to_owned()))
        );
        // a doubled header from an untrusted peer is still an untrusted-proxy refusal
        let twice = [good_chain.clone(), good_chain.clone()];
        let r = send(&stranger, "/reports/fwd-untrusted-twice", &twice)
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        // without a header the stranger is simply unauthenticated
        let r = send(&stranger, "/reports/fwd-none", &[]).await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            refusal_code("/reports/fwd-none"),
            Some((401, "cert.missing".to_owned()))
        );

        for (path, values, code) in [
            (
                "/reports/fwd-revoked",
                vec![escape(&format!("{}{}", p.revoked.pem(), p.inter.pem()))],
                "cert.revoked",
            ),
            (
                "/reports/fwd-wrong-ca",
                vec![escape(&p.stranger.pem())],
                "cert.unknown_issuer",
            ),
            ("/reports/fwd-twice", twice.to_vec(), "cert.bad_encoding"),
            (
                "/reports/fwd-garbage",
                vec!["%ZZnot-a-cert".to_owned()],
                "cert.bad_encoding",
            ),
            ("/reports/fwd-none-trusted", vec![], "cert.missing"),
        ] {
            let r = send(&proxy, path, &values).await.unwrap();
            assert_eq!(r.status(), 401, "{path}");
            assert_eq!(r.text().await.unwrap(), "unauthorized\n", "{path}");
            assert_eq!(refusal_code(path), Some((401, code.to_owned())), "{path}");
        }
        let nobody = escape(&format!("{}{}", p.nobody.pem(), p.inter.pem()));
        let r = send(&proxy, "/reports/fwd-missing", &[nobody])
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(
            refusal_code("/reports/fwd-missing"),
            Some((403, "authz.forbidden".to_owned()))
        );
    });
    assert_eq!(reached.load(Ordering::SeqCst), 1);
}

#[test]
fn from_config_needs_a_rack_table() {
    let config = Config::from_str("", "/").unwrap();
    let err = ClientCertLayer::from_config(&config).unwrap_err();
    assert_eq!(err.code(), "config.unknown_name");
}

/// The reqwest wrapper as an mTLS client of an HTTPS upstream on 127.0.0.2 (served by
/// `serve_tls` with a mandatory `ClientVerifier`): client certificate, redirect downgrade to
/// `http`, redirect to a denied address.
#[test]
fn reqwest_wrapper_with_mtls_upstream_and_https_redirects() {
    let p = pki();
    let config = config(p.dir.path(), "");
    let store = Arc::clone(config.trust_store("clients").unwrap());
    let mut spec = LeafSpec::server("upstream.test");
    spec.ips = vec!["127.0.0.2".parse().unwrap()];
    let upstream_cert = leaf(Alg::P256, &p.server_ca, &spec);
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_client_cert_verifier(Arc::new(ClientVerifier::new(store)))
    .with_single_cert(
        vec![CertificateDer::from(upstream_cert.der())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(upstream_cert.key.serialize_der())),
    )
    .unwrap();

    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.2:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let downgrade = format!("http://127.0.0.2:{port}/hello");
    let loopback = format!("https://127.0.0.1:{port}/hello");
    let upstream = Router::new()
        .route(
            "/hello",
            get(|caller: ClientIdentity| async move {
                format!(
                    "hello {}",
                    caller.identity().spiffe_id.clone().unwrap_or_default()
                )
            }),
        )
        .route(
            "/downgrade",
            get(move || async move { axum::response::Redirect::to(&downgrade) }),
        )
        .route(
            "/to-loopback",
            get(move || async move { axum::response::Redirect::to(&loopback) }),
        )
        .layer(ClientCertLayer::from_config(&config).unwrap());
    rt.spawn(serve_tls(listener, Arc::new(tls), upstream));

    let policy = Arc::new(
        portcullis::egress::EgressPolicy::builder()
            .schemes(["https", "http"])
            .ports([port])
            .allow_cidrs(["127.0.0.2/32"])
            .build()
            .unwrap(),
    );
    let server_root = || reqwest::Certificate::from_pem(p.server_ca.pem().as_bytes()).unwrap();
    let with_cert = portcullis::egress::reqwest::client(Arc::clone(&policy))
        .builtin_roots(false)
        .add_root_certificate(server_root())
        .identity(pem_identity(&p.good, Some(&p.inter)))
        .build()
        .unwrap();
    let without = portcullis::egress::reqwest::client(policy)
        .builtin_roots(false)
        .add_root_certificate(server_root())
        .build()
        .unwrap();
    let base = format!("https://127.0.0.2:{port}");
    rt.block_on(async {
        let r = with_cert
            .get(&format!("{base}/hello"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.text().await.unwrap(),
            "hello spiffe://example.org/reporter"
        );
        let err = with_cert
            .get(&format!("{base}/downgrade"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), "egress.downgrade");
        let err = with_cert
            .get(&format!("{base}/to-loopback"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), "egress.reserved_address");
        // the upstream requires a client certificate: the handshake fails
        let err = without
            .get(&format!("{base}/hello"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), "egress.http");
    });
}
