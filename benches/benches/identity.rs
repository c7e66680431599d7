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
use portcullis_benches::{median, time_batch};
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

    // NO_PAIRED=1 skips the paired rounds (for profiling the criterion benches alone).
    if std::env::var_os("NO_PAIRED").is_none() {
        paired(label, "cold", &cold, &ch, &anchors, &inters, time, now);
        // A new intermediate too: what the first client under it costs.
        let fresh = TrustStore::builder()
            .ca_pem(ch.root_pem.as_bytes())
            .cache_capacity(0)
            .intermediate_memo(false)
            .build()
            .unwrap();
        paired(
            label,
            "cold, intermediate memo off",
            &fresh,
            &ch,
            &anchors,
            &inters,
            time,
            now,
        );
        paired_hit(label, &cached, &ch, now);
    }
}

/// A cache hit against what the cache key cost before the hit path stopped hashing with
/// SHA-256: a SHA-256 over the same presented bytes, measured in alternating batches in
/// the same run so machine load cancels out.
fn paired_hit(label: &str, cached: &TrustStore, ch: &Chain, now: std::time::SystemTime) {
    const BATCH: u32 = 2000;
    let chain_refs: [&[u8]; 1] = [&ch.inter];
    let hit = || {
        black_box(
            cached
                .verify_shared(black_box(&ch.leaf), &chain_refs, now)
                .unwrap(),
        );
    };
    let hit_owned = || {
        black_box(
            cached
                .verify(black_box(&ch.leaf), &chain_refs, now)
                .unwrap(),
        );
    };
    let sha = || {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [black_box(&ch.leaf), &ch.inter] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        black_box(ctx.finish());
    };
    let (mut shared, mut owned, mut digest) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..31 {
        shared.push(time_batch(BATCH, &hit));
        owned.push(time_batch(BATCH, &hit_owned));
        digest.push(time_batch(BATCH, &sha));
    }
    println!(
        "paired hit {label} ({} bytes presented): verify_shared {:.2} us, verify {:.2} us, \
         SHA-256 of the presented bytes alone {:.2} us",
        ch.leaf.len() + ch.inter.len(),
        median(&mut shared),
        median(&mut owned),
        median(&mut digest)
    );
}

/// Cold verification against webpki directly, in alternating batches (see
/// `portcullis_benches::paired`).
#[allow(clippy::too_many_arguments)]
fn paired(
    label: &str,
    what: &str,
    cold: &TrustStore,
    ch: &Chain,
    anchors: &[rustls_pki_types::TrustAnchor<'_>],
    inters: &[CertificateDer<'_>],
    time: UnixTime,
    now: std::time::SystemTime,
) {
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
    let p = portcullis_benches::paired(31, 100, &ours, &theirs);
    println!(
        "paired {label}: portcullis {what} {:.1} us, webpki direct {:.1} us, median ratio {:.3}x",
        p.ours, p.theirs, p.ratio
    );
}

fn identity(c: &mut Criterion) {
    bench_alg(c, "p256_3cert", Alg::P256);
    bench_alg(c, "rsa2048_3cert", Alg::Rsa2048);
}

criterion_group!(benches, identity);
criterion_main!(benches);
