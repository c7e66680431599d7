//! Identity benchmarks: cold chain verification through `TrustStore` versus calling
//! rustls-webpki directly on the same chain, and a verification-cache hit.
//!
//! "Cold" means the store's cache is disabled (`cache_capacity(0)`), so every iteration
//! parses, builds and signature-checks the whole path.
#![allow(clippy::unwrap_used, missing_docs)] // benchmark setup: a failure is a broken bench

#[path = "../../crates/portcullis/tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::UNIX_EPOCH;

use common::{pki, Alg, LeafSpec};
use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::identity::TrustStore;
use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

struct Chain {
    root_pem: String,
    root_der: Vec<u8>,
    inter: Vec<u8>,
    leaf: Vec<u8>,
}

fn chain(alg: Alg) -> Chain {
    let mut spec = LeafSpec::client("bench-client");
    spec.uris = vec!["spiffe://example.org/ns/bench/sa/client".into()];
    spec.dns = vec!["client.example.org".into()];
    let p = pki(alg, &spec);
    Chain {
        root_pem: p.root.pem(),
        root_der: p.root.der(),
        inter: p.inter.der(),
        leaf: p.leaf.der(),
    }
}

fn bench_alg(c: &mut Criterion, label: &str, alg: Alg) {
    let ch = chain(alg);
    let now = common::now();
    let cold = TrustStore::builder()
        .ca_pem(ch.root_pem.as_bytes())
        .cache_capacity(0)
        .build()
        .unwrap();
    let chain_refs: [&[u8]; 1] = [&ch.inter];
    cold.verify(&ch.leaf, &chain_refs, now).unwrap();

    let root_der = CertificateDer::from(ch.root_der.as_slice());
    let anchors = vec![webpki::anchor_from_trusted_cert(&root_der)
        .unwrap()
        .to_owned()];
    let inters = vec![CertificateDer::from(ch.inter.as_slice())];
    let time = UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap());
    let leaf_der = CertificateDer::from(ch.leaf.as_slice());

    let mut group = c.benchmark_group(format!("identity/{label}"));
    group.bench_function("portcullis_cold_verify", |b| {
        b.iter(|| black_box(cold.verify(black_box(&ch.leaf), &chain_refs, now).unwrap()))
    });
    group.bench_function("webpki_direct", |b| {
        b.iter(|| {
            let ee = EndEntityCert::try_from(black_box(&leaf_der)).unwrap();
            let path = ee
                .verify_for_usage(
                    webpki::ALL_VERIFICATION_ALGS,
                    &anchors,
                    &inters,
                    time,
                    KeyUsage::client_auth(),
                    None,
                    None,
                )
                .unwrap();
            black_box(path.anchor().subject.len())
        })
    });
    let cached = TrustStore::builder()
        .ca_pem(ch.root_pem.as_bytes())
        .build()
        .unwrap();
    cached.verify(&ch.leaf, &chain_refs, now).unwrap();
    group.bench_function("portcullis_cache_hit", |b| {
        b.iter(|| {
            black_box(
                cached
                    .verify(black_box(&ch.leaf), &chain_refs, now)
                    .unwrap(),
            )
        })
    });
    group.bench_function("portcullis_cache_hit_shared", |b| {
        b.iter(|| {
            black_box(
                cached
                    .verify_shared(black_box(&ch.leaf), &chain_refs, now)
                    .unwrap(),
            )
        })
    });
    group.finish();

    paired(label, &cold, &ch, &anchors, &inters, time, now);
}

/// The machine is shared, so load drifts between criterion's sequential runs. This runs
/// the two contenders in alternating short batches and reports the median of the
/// per-round ratios, which cancels most of the drift.
fn paired(
    label: &str,
    cold: &TrustStore,
    ch: &Chain,
    anchors: &[rustls_pki_types::TrustAnchor<'_>],
    inters: &[CertificateDer<'_>],
    time: UnixTime,
    now: std::time::SystemTime,
) {
    use std::time::Instant;
    const BATCH: u32 = 100;
    let chain_refs: [&[u8]; 1] = [&ch.inter];
    let leaf_der = CertificateDer::from(ch.leaf.as_slice());
    let ours = || {
        black_box(cold.verify(black_box(&ch.leaf), &chain_refs, now).unwrap());
    };
    let theirs = || {
        let ee = EndEntityCert::try_from(black_box(&leaf_der)).unwrap();
        let path = ee
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                anchors,
                inters,
                time,
                KeyUsage::client_auth(),
                None,
                None,
            )
            .unwrap();
        black_box(path.anchor().subject.len());
    };
    let time_batch = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..BATCH {
            f();
        }
        start.elapsed().as_secs_f64() * 1e6 / f64::from(BATCH)
    };
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..31 {
        let (x, y) = if round % 2 == 0 {
            let x = time_batch(&ours);
            (x, time_batch(&theirs))
        } else {
            let y = time_batch(&theirs);
            (time_batch(&ours), y)
        };
        a.push(x);
        b.push(y);
        ratios.push(x / y);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|p, q| p.total_cmp(q));
        v[v.len() / 2]
    };
    println!(
        "paired {label}: portcullis cold {:.1} us, webpki direct {:.1} us, median ratio {:.3}x",
        median(&mut a),
        median(&mut b),
        median(&mut ratios)
    );
}

fn identity(c: &mut Criterion) {
    bench_alg(c, "p256_3cert", Alg::P256);
    bench_alg(c, "rsa2048_3cert", Alg::Rsa2048);
}

criterion_group!(benches, identity);
criterion_main!(benches);
