//! The Rust-service integrations (`--features services`):
//!
//! - `tower::ClientCertLayer` added per request on a verification-cache hit, versus the
//!   bare service (target ≤ 2 µs): chain from the TLS connection, and from an nginx header.
//! - `egress::reqwest::EgressResolver` versus reqwest's stub-able baseline (a bare
//!   `reqwest::dns::Resolve` answering the same stub) and versus reqwest's default resolver
//!   (hyper-util's `GaiResolver`, which reqwest wraps) on `localhost` from `/etc/hosts`.
//!
//! Paired ratios alternate the contenders in short rounds (see `portcullis_benches::paired`).
#![allow(clippy::unwrap_used, missing_docs)] // benchmark setup: a failure is a broken bench

#[path = "../../crates/portcullis/tests/common/mod.rs"]
mod common;

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use common::{pki, Alg, LeafSpec};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response};
use portcullis::authz::{AccessPolicy, Match, RouteRequirements, Rule};
use portcullis::egress::reqwest::EgressResolver;
use portcullis::egress::EgressPolicy;
use portcullis::identity::source::{CertSource, SourceKind, TrustedProxies};
use portcullis::identity::TrustStore;
use portcullis::tower::{ClientCertLayer, ConnectionInfo};
use portcullis_benches::paired;
use rustls_pki_types::CertificateDer;
use tower_layer::Layer;
use tower_service::Service;

/// The service under the layer: answers at once.
#[derive(Clone)]
struct Bare;

impl Service<Request<()>> for Bare {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Self::Future {
        black_box(&req);
        ready(Ok(Response::new(String::new())))
    }
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// Polls a future that is ready at once (both services here are synchronous).
fn now<F: Future>(waker: &Waker, f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(waker);
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("synchronous service"),
    }
}

fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn layer_cost(c: &mut Criterion) {
    let p = pki(
        Alg::P256,
        &LeafSpec::spiffe("spiffe://example.org/reporter"),
    );
    let store = Arc::new(
        TrustStore::builder()
            .ca_pem(p.root.pem().as_bytes())
            .build()
            .unwrap(),
    );
    let rule = |m: Match, grants: &[&str]| Rule {
        matcher: m,
        grants: grants.iter().map(|g| (*g).to_owned()).collect(),
    };
    let policy = Arc::new(
        AccessPolicy::new(vec![
            rule(
                Match {
                    spiffe_trust_domain: Some("example.org".into()),
                    ..Match::default()
                },
                &["reports:read"],
            ),
            rule(
                Match {
                    spiffe_id: Some("spiffe://example.org/admin".into()),
                    ..Match::default()
                },
                &["admin"],
            ),
        ])
        .unwrap(),
    );
    let require = RouteRequirements::new([
        ("/reports", vec!["reports:read"]),
        ("POST /admin", vec!["admin"]),
    ])
    .unwrap();
    let tls_layer = ClientCertLayer::new(Arc::clone(&store))
        .policy(Arc::clone(&policy))
        .require(require.clone());
    let nginx = CertSource::new(
        SourceKind::Nginx,
        TrustedProxies::new(["10.0.0.0/8"]).unwrap(),
    )
    .unwrap();
    let nginx = Arc::new(nginx);
    let header_layer = tls_layer.clone().source(Arc::clone(&nginx));

    let info = ConnectionInfo::new(
        Some("10.0.0.5:40000".parse().unwrap()),
        vec![
            CertificateDer::from(p.leaf.der()),
            CertificateDer::from(p.inter.der()),
        ],
    );
    let header = escape(&format!("{}{}", p.leaf.pem(), p.inter.pem()));
    let request = || {
        let mut req = Request::get("/reports/2024?x=1").body(()).unwrap();
        req.extensions_mut().insert(info.clone());
        req
    };
    let header_request = || {
        let mut req = request();
        req.headers_mut()
            .insert("x-ssl-client-cert", header.parse().unwrap());
        req
    };
    let waker = Waker::from(Arc::new(Noop));
    let mut bare = Bare;
    let mut tls = tls_layer.layer(Bare);
    let mut fwd = header_layer.layer(Bare);
    // Warm the cache; every status must be 200 or the bench measures refusals.
    assert_eq!(now(&waker, tls.call(request())).unwrap().status(), 200);
    assert_eq!(
        now(&waker, fwd.call(header_request())).unwrap().status(),
        200
    );

    c.bench_function("tower/bare service", |b| {
        b.iter(|| now(&waker, bare.call(request())))
    });
    c.bench_function("tower/ClientCertLayer, TLS chain, cache hit", |b| {
        b.iter(|| now(&waker, tls.call(request())))
    });
    c.bench_function("tower/ClientCertLayer, nginx header, cache hit", |b| {
        b.iter(|| now(&waker, fwd.call(header_request())))
    });
    c.bench_function(
        "tower/part: CertSource::extract of the same nginx header",
        |b| {
            b.iter(|| {
                nginx
                    .extract(|_| Some(header.as_str()), black_box(Some("10.0.0.5")))
                    .unwrap()
            })
        },
    );
    c.bench_function("tower/bare service, request with nginx header", |b| {
        b.iter(|| now(&waker, bare.call(header_request())))
    });

    let (tls, bare) = (std::cell::RefCell::new(tls), std::cell::RefCell::new(Bare));
    let fwd = std::cell::RefCell::new(fwd);
    let t = paired(
        41,
        20_000,
        &|| {
            black_box(now(&waker, tls.borrow_mut().call(request())).unwrap());
        },
        &|| {
            black_box(now(&waker, bare.borrow_mut().call(request())).unwrap());
        },
    );
    println!(
        "tower layer (TLS chain, cache hit): {:.3} us vs bare {:.3} us per request: {:.3} us added, {:.2}x",
        t.ours,
        t.theirs,
        t.ours - t.theirs,
        t.ratio
    );
    let h = paired(
        41,
        5_000,
        &|| {
            black_box(now(&waker, fwd.borrow_mut().call(header_request())).unwrap());
        },
        &|| {
            black_box(now(&waker, bare.borrow_mut().call(header_request())).unwrap());
        },
    );
    println!(
        "tower layer (nginx header, cache hit): {:.3} us vs bare {:.3} us per request: {:.3} us added, {:.2}x",
        h.ours,
        h.theirs,
        h.ours - h.theirs,
        h.ratio
    );
}

/// reqwest's way to stub a name without Portcullis: a resolver that answers at once.
struct StubOnly(std::net::SocketAddr);
impl reqwest::dns::Resolve for StubOnly {
    fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let addr = self.0;
        Box::pin(async move { Ok(Box::new(std::iter::once(addr)) as reqwest::dns::Addrs) })
    }
}

fn resolver_cost(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let policy = Arc::new(
        EgressPolicy::builder()
            .allow_cidrs(["127.0.0.1/32", "::1/128"])
            .build()
            .unwrap(),
    );
    let stubbed = EgressResolver::with_resolver(Arc::clone(&policy), |_: &str| {
        Ok(vec!["93.184.216.34".parse().unwrap()])
    });
    let inline = EgressResolver::with_nonblocking_resolver(Arc::clone(&policy), |_: &str| {
        Ok(vec!["93.184.216.34".parse().unwrap()])
    });
    let stub_only = StubOnly("93.184.216.34:0".parse().unwrap());
    let system = EgressResolver::new(Arc::clone(&policy));
    let gai = hyper_util::client::legacy::connect::dns::GaiResolver::new();
    let name = || "api.example.com".parse::<reqwest::dns::Name>().unwrap();
    let localhost = || "localhost".parse::<reqwest::dns::Name>().unwrap();

    let resolve = |r: &dyn reqwest::dns::Resolve, n: reqwest::dns::Name| {
        rt.block_on(r.resolve(n)).unwrap().count()
    };
    assert_eq!(resolve(&stubbed, name()), 1);
    assert!(
        resolve(&system, localhost()) >= 1,
        "localhost must resolve (and pass the policy)"
    );
    let gai_resolve = || {
        let mut g = gai.clone();
        let n: hyper_util::client::legacy::connect::dns::Name = "localhost".parse().unwrap();
        rt.block_on(async { g.call(n).await }).unwrap().count()
    };
    assert!(gai_resolve() >= 1);

    c.bench_function("reqwest resolver/EgressResolver, stub name", |b| {
        b.iter(|| resolve(&stubbed, name()))
    });
    c.bench_function(
        "reqwest resolver/EgressResolver nonblocking, stub name",
        |b| b.iter(|| resolve(&inline, name())),
    );
    c.bench_function("reqwest resolver/bare stub Resolve", |b| {
        b.iter(|| resolve(&stub_only, name()))
    });
    c.bench_function(
        "reqwest resolver/EgressResolver, localhost (getaddrinfo)",
        |b| b.iter(|| resolve(&system, localhost())),
    );
    c.bench_function("reqwest resolver/default GaiResolver, localhost", |b| {
        b.iter(gai_resolve)
    });

    let s = paired(
        31,
        2_000,
        &|| {
            black_box(resolve(&stubbed, name()));
        },
        &|| {
            black_box(resolve(&stub_only, name()));
        },
    );
    println!(
        "EgressResolver (stub) {:.3} us vs bare stub Resolve {:.3} us: {:.2}x",
        s.ours, s.theirs, s.ratio
    );
    let i = paired(
        31,
        20_000,
        &|| {
            black_box(resolve(&inline, name()));
        },
        &|| {
            black_box(resolve(&stub_only, name()));
        },
    );
    println!(
        "EgressResolver nonblocking (stub) {:.3} us vs bare stub Resolve {:.3} us: {:.2}x",
        i.ours, i.theirs, i.ratio
    );
    let g = paired(
        31,
        500,
        &|| {
            black_box(resolve(&system, localhost()));
        },
        &|| {
            black_box(gai_resolve());
        },
    );
    println!(
        "EgressResolver (system, localhost) {:.3} us vs reqwest default (GaiResolver) {:.3} us: {:.2}x",
        g.ours, g.theirs, g.ratio
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = layer_cost, resolver_cost
}
criterion_main!(benches);
