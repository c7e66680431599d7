//! Certificate sources: pulling a client certificate out of proxy headers (criterion).
//!
//! The Ruby middleware overhead as a whole is measured by `benches/ruby/rack.rb`.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use portcullis::identity::source::{CertSource, SourceKind, TrustedProxies};

fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~+/=".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn sources(c: &mut Criterion) {
    let certified = rcgen::generate_simple_self_signed(vec!["client.example.org".into()]).unwrap();
    let pem = certified.cert.pem();
    let der = certified.cert.der().to_vec();
    let digest = ring_hex(&der);
    let proxies = || TrustedProxies::new(["10.0.0.0/8"]).unwrap();

    let nginx = CertSource::new(SourceKind::Nginx, proxies()).unwrap();
    let nginx_value = escape(&pem);
    c.bench_function("source/nginx escaped PEM", |b| {
        b.iter(|| {
            nginx
                .extract(|_| Some(nginx_value.as_str()), black_box(Some("10.0.0.5")))
                .unwrap()
        })
    });

    let envoy = CertSource::new(SourceKind::Envoy, proxies()).unwrap();
    let xfcc = format!(
        "By=spiffe://example.org/a;Hash=0000,By=spiffe://example.org/app;Hash={digest};Cert=\"{}\";URI=spiffe://example.org/client",
        escape(&pem)
    );
    c.bench_function("source/envoy XFCC (2 elements, hash check)", |b| {
        b.iter(|| {
            envoy
                .extract(|_| Some(xfcc.as_str()), black_box(Some("10.0.0.5")))
                .unwrap()
        })
    });

    let untrusted = escape(&pem);
    c.bench_function("source/refuse untrusted peer", |b| {
        b.iter(|| {
            nginx
                .extract(|_| Some(untrusted.as_str()), black_box(Some("203.0.113.9")))
                .unwrap_err()
        })
    });
}

fn ring_hex(der: &[u8]) -> String {
    use std::fmt::Write;
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

criterion_group!(benches, sources);
criterion_main!(benches);
