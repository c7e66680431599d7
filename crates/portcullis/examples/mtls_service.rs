//! An axum service behind mTLS with the whole boundary from one `portcullis.toml`:
//! `ClientCertLayer` verifies every caller and checks route permissions, `/fetch` goes out
//! through the reqwest integration (checked, pinned, redirects re-checked), and `/files`
//! reads beneath a `SafeRoot`.
//!
//! ```sh
//! cargo run -p portcullis --example mtls_service --features axum,reqwest
//! cargo run -p portcullis --example mtls_service --features axum,reqwest -- --serve
//! ```
//!
//! Without arguments it mints a throwaway PKI and configuration in a temporary directory,
//! starts the service on 127.0.0.1 and a small upstream on 127.0.0.2, calls the service as
//! a client with a certificate, prints what happened and exits. With `--serve` it keeps
//! running and prints `curl` commands. Everything stays on loopback.
//!
//! For your own files set `PORTCULLIS_CONFIG` (a `portcullis.toml` with a `[rack]` table,
//! an `[egress.fetch]` policy and a `[root.files]` root), `SERVER_CERT` and `SERVER_KEY`
//! (PEM) and optionally `LISTEN` (default 127.0.0.1:8443).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::routing::get;
use axum::Router;
use portcullis::config::Config;
use portcullis::egress::reqwest::{client, Client};
use portcullis::fs::SafeRoot;
use portcullis::identity::tls::ClientVerifier;
use portcullis::tower::{serve_tls, ClientCertLayer, ClientIdentity};
use portcullis::ErrorCode;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
struct App {
    http: Client,
    files: Arc<SafeRoot>,
}

fn main() -> Result<(), Error> {
    let serve = std::env::args().any(|a| a == "--serve");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(serve))
}

async fn run(serve: bool) -> Result<(), Error> {
    let (config_path, cert, key, listen, demo) = match std::env::var_os("PORTCULLIS_CONFIG") {
        Some(path) => (
            PathBuf::from(path),
            PathBuf::from(std::env::var("SERVER_CERT")?),
            PathBuf::from(std::env::var("SERVER_KEY")?),
            std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8443".to_owned()),
            None,
        ),
        None => {
            let demo = Demo::new()?;
            let c = demo.dir.path();
            (
                c.join("portcullis.toml"),
                c.join("server.pem"),
                c.join("server-key.pem"),
                "127.0.0.1:0".to_owned(),
                Some(demo),
            )
        }
    };

    // One file drives it all: the trust store, access rules, [rack] routes, egress, root.
    let config = Config::from_path(&config_path)?;
    let layer = ClientCertLayer::from_config(&config)?;
    let rack = config
        .rack()
        .ok_or("portcullis.toml needs a [rack] table")?;
    let store = Arc::clone(config.trust_store(&rack.trust_store)?);
    let state = App {
        http: client(Arc::clone(config.egress("fetch")?))
            .max_body_bytes(64 * 1024)
            .build()?,
        files: Arc::clone(config.root("files")?),
    };

    let app = Router::new()
        .route("/up", get(|| async { "ok\n" }))
        .route("/whoami", get(whoami))
        .route("/fetch", get(fetch))
        .route("/files/{*name}", get(files))
        .with_state(state)
        .layer(layer);

    // The handshake verifies chains with the same store (then the layer's check is a cache hit).
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_client_cert_verifier(Arc::new(ClientVerifier::new(store).allow_anonymous()))
    .with_single_cert(
        CertificateDer::pem_file_iter(&cert)?.collect::<Result<Vec<_>, _>>()?,
        PrivateKeyDer::from_pem_file(&key)?,
    )?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;
    println!(
        "mtls_service: listening on https://{addr} (config {})",
        config_path.display()
    );
    let server = tokio::spawn(serve_tls(listener, Arc::new(tls), app));

    if let Some(demo) = &demo {
        demo.tour(addr).await?;
        if serve {
            demo.print_curl(addr);
        }
    }
    if serve || demo.is_none() {
        server.await?;
    }
    Ok(())
}

async fn whoami(caller: ClientIdentity) -> String {
    format!(
        "{} may {:?}\n",
        caller
            .identity()
            .spiffe_id
            .as_deref()
            .unwrap_or("(no SPIFFE ID)"),
        caller.permissions()
    )
}

/// `GET /fetch?url=…`: the URL is the caller's, so it goes through the egress policy.
async fn fetch(State(app): State<App>, uri: Uri) -> (StatusCode, String) {
    let target = uri
        .query()
        .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "url"))
        .map(|(_, v)| v.into_owned());
    let Some(target) = target else {
        return (StatusCode::BAD_REQUEST, "missing ?url=\n".to_owned());
    };
    let result = async { app.http.get(&target).send().await?.text().await }.await;
    match result {
        Ok(body) => (StatusCode::OK, body),
        // The code is safe to show; the message (addresses, names) stays in the log.
        Err(err) => {
            eprintln!("fetch {target:?} refused: {err}");
            (
                StatusCode::BAD_GATEWAY,
                format!("refused: {}\n", err.code()),
            )
        }
    }
}

/// `GET /files/{name}`: read beneath the root, whatever the name says.
async fn files(
    State(app): State<App>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> (StatusCode, String) {
    match app.files.read(name.as_str()) {
        Ok(bytes) => (StatusCode::OK, String::from_utf8_lossy(&bytes).into_owned()),
        Err(err) if err.code() == "path.not_found" => {
            (StatusCode::NOT_FOUND, "not found\n".to_owned())
        }
        Err(err) => (
            StatusCode::BAD_REQUEST,
            format!("refused: {}\n", err.code()),
        ),
    }
}

/// A throwaway PKI, configuration, file root and upstream.
struct Demo {
    dir: tempfile::TempDir,
    upstream: SocketAddr,
}

impl Demo {
    fn new() -> Result<Self, Error> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let (client_ca, client_ca_key) = ca("Demo Client CA")?;
        let (server_ca, server_ca_key) = ca("Demo Server CA")?;
        std::fs::write(d.join("client-ca.pem"), client_ca.pem())?;
        std::fs::write(d.join("server-ca.pem"), server_ca.pem())?;

        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse()?));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let server = p.signed_by(&key, &server_ca, &server_ca_key)?;
        std::fs::write(d.join("server.pem"), server.pem())?;
        std::fs::write(d.join("server-key.pem"), key.serialize_pem())?;

        for (name, spiffe) in [
            ("reporter", "spiffe://example.org/reporter"),
            ("visitor", "spiffe://partner.example/visitor"),
        ] {
            let mut p = CertificateParams::new(Vec::<String>::new())?;
            p.distinguished_name.push(DnType::CommonName, name);
            p.subject_alt_names.push(SanType::URI(spiffe.try_into()?));
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature]; // an X509-SVID needs it
            p.use_authority_key_identifier_extension = true; // the profile requires an AKI
            let key = KeyPair::generate()?;
            let cert = p.signed_by(&key, &client_ca, &client_ca_key)?;
            std::fs::write(
                d.join(format!("{name}.pem")),
                format!("{}{}", cert.pem(), key.serialize_pem()),
            )?;
        }

        std::fs::create_dir(d.join("files"))?;
        std::fs::write(d.join("files/hello.txt"), "hello from beneath the root\n")?;
        std::fs::write(d.join("secret.txt"), "outside the root\n")?;

        let upstream = std::net::TcpListener::bind("127.0.0.2:0")?;
        let up = upstream.local_addr()?;
        std::thread::spawn(move || {
            for mut stream in upstream.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let body = "hello from the allowed upstream\n";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });

        std::fs::write(
            d.join("portcullis.toml"),
            format!(
                r#"[trust_store.clients]
ca = "client-ca.pem"

[[access]]
spiffe_trust_domain = "example.org"
grants = ["files:read", "fetch"]

[rack]
trust_store = "clients"
require = {{ "/files" = "files:read", "/fetch" = "fetch" }}
skip = ["/up"]

[egress.fetch]
schemes = ["http", "https"]
ports = [80, 443, {port}]
allow_cidrs = ["127.0.0.2/32"]   # the demo upstream, and nothing else internal

[root.files]
path = "files"
"#,
                port = up.port()
            ),
        )?;
        Ok(Self { dir, upstream: up })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn tour(&self, addr: SocketAddr) -> Result<(), Error> {
        let base = format!("https://{addr}");
        let up = self.upstream;
        let denied = format!("http://127.0.0.1:{}/", up.port());
        let mapped = format!("http://[::ffff:127.0.0.1]:{}/", up.port());
        let calls: [(&str, String); 9] = [
            ("reporter", "/whoami".to_owned()),
            ("reporter", "/files/hello.txt".to_owned()),
            ("reporter", "/files/..%2Fsecret.txt".to_owned()),
            ("reporter", format!("/fetch?url=http://{up}/")),
            ("reporter", format!("/fetch?url={denied}")),
            ("reporter", format!("/fetch?url={mapped}")),
            ("visitor", "/files/hello.txt".to_owned()),
            ("none", "/whoami".to_owned()),
            ("none", "/up".to_owned()),
        ];
        for (who, path) in calls {
            let client = self.client(who)?;
            let reply = match client.get(format!("{base}{path}")).send().await {
                Ok(r) => format!("{} {}", r.status().as_u16(), r.text().await?.trim_end()),
                Err(e) => format!("error: {e}"),
            };
            println!("  {who:>8} GET {path:<58} -> {reply}");
        }
        Ok(())
    }

    fn client(&self, who: &str) -> Result<reqwest::Client, Error> {
        let root = reqwest::Certificate::from_pem(&std::fs::read(self.path("server-ca.pem"))?)?;
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root);
        if who != "none" {
            b = b.identity(reqwest::Identity::from_pem(&std::fs::read(
                self.path(&format!("{who}.pem")),
            )?)?);
        }
        Ok(b.build()?)
    }

    fn print_curl(&self, addr: SocketAddr) {
        let d = self.dir.path();
        let tls = format!(
            "--cacert {} --cert {}",
            show(&d.join("server-ca.pem")),
            show(&d.join("reporter.pem"))
        );
        println!("\nTry (Ctrl-C to stop):");
        println!("  curl {tls} https://{addr}/whoami");
        println!("  curl {tls} https://{addr}/files/hello.txt");
        println!(
            "  curl {tls} 'https://{addr}/fetch?url=http://{}/'",
            self.upstream
        );
        println!(
            "  curl --cacert {} https://{addr}/whoami   # no certificate: 401",
            show(&d.join("server-ca.pem"))
        );
    }
}

fn show(p: &Path) -> String {
    p.display().to_string()
}

fn ca(cn: &str) -> Result<(rcgen::Certificate, KeyPair), Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate()?;
    let cert = p.self_signed(&key)?;
    Ok((cert, key))
}
