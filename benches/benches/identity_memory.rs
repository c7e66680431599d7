//! Memory under a flood of distinct chains: verifies 1,000,000 distinct presented chains
//! through one `TrustStore` whose cache holds 10,000, printing resident memory (VmRSS) as
//! it goes. The cache is bounded, so RSS must plateau once the cache is full instead of
//! growing with the number of chains seen.
//!
//! Minting a million certificates would take longer than verifying them, so the bench mints
//! a pool once: `INTERMEDIATES` re-issues of one intermediate (same name and key, distinct
//! serials, so each is a valid issuer) and `LEAVES` leaves signed by that key. Presenting
//! leaf `i % LEAVES` with intermediate `i / LEAVES` gives `LEAVES * INTERMEDIATES` distinct
//! presented chains, each a cache miss and a full verification (Ed25519, the cheapest to
//! verify), each a different cache key.
//!
//! `cargo bench -p portcullis-benches --bench identity_memory`; set
//! `PORTCULLIS_MEMORY_CHAINS` (default 1000000) and `PORTCULLIS_MEMORY_CAPACITY` (default
//! 10000) to change the run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // bench setup

use std::time::{Duration, Instant, UNIX_EPOCH};

use portcullis::identity::TrustStore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

const LEAVES: usize = 1000;
const INTERMEDIATES: usize = 1000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Resident set size of this process in KiB, from /proc/self/status.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Portcullis Memory Bench");
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str, serial: u64) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2040, 1, 1);
    p.serial_number = Some(SerialNumber::from(serial));
    p.use_authority_key_identifier_extension = true;
    p
}

struct Pool {
    root_pem: String,
    intermediates: Vec<Vec<u8>>,
    leaves: Vec<Vec<u8>>,
}

fn mint_pool() -> Pool {
    let alg = &rcgen::PKCS_ED25519;
    let root_key = KeyPair::generate_for(alg).unwrap();
    let root = ca_params("Memory Root", 1).self_signed(&root_key).unwrap();
    let inter_key = KeyPair::generate_for(alg).unwrap();
    let intermediates: Vec<_> = (0..INTERMEDIATES)
        .map(|i| {
            ca_params("Memory Intermediate", 1000 + i as u64)
                .signed_by(&inter_key, &root, &root_key)
                .unwrap()
        })
        .collect();
    let leaf_key = KeyPair::generate_for(alg).unwrap();
    let leaves = (0..LEAVES)
        .map(|i| {
            let mut p = CertificateParams::default();
            p.distinguished_name = name(&format!("client-{i}"));
            p.subject_alt_names = vec![
                SanType::DnsName(format!("client-{i}.example.org").try_into().unwrap()),
                SanType::URI(
                    format!("spiffe://example.org/ns/bench/sa/client-{i}")
                        .try_into()
                        .unwrap(),
                ),
            ];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.is_ca = IsCa::ExplicitNoCa;
            p.not_before = rcgen::date_time_ymd(2021, 1, 1);
            p.not_after = rcgen::date_time_ymd(2035, 1, 1);
            p.serial_number = Some(SerialNumber::from(100_000 + i as u64));
            p.use_authority_key_identifier_extension = true;
            // Any re-issue of the intermediate names the same issuer and key.
            p.signed_by(&leaf_key, &intermediates[0], &inter_key)
                .unwrap()
                .der()
                .to_vec()
        })
        .collect();
    Pool {
        root_pem: root.pem(),
        intermediates: intermediates.iter().map(|c| c.der().to_vec()).collect(),
        leaves,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that does not match skips the run.
    if let Some(filter) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        if !"identity_memory".contains(&filter) {
            return;
        }
    }
    let chains = env_usize("PORTCULLIS_MEMORY_CHAINS", 1_000_000).min(LEAVES * INTERMEDIATES);
    let capacity = env_usize("PORTCULLIS_MEMORY_CAPACITY", 10_000);
    let at = UNIX_EPOCH + Duration::from_secs(1_748_736_000); // 2025-06-01

    let rss_start = rss_kib();
    let pool = mint_pool();
    let store = TrustStore::builder()
        .ca_pem(pool.root_pem.as_bytes())
        .cache_capacity(capacity)
        .build()
        .unwrap();
    let rss_pool = rss_kib();
    println!(
        "identity_memory: {chains} distinct chains, cache capacity {capacity}; \
         RSS at start {rss_start} KiB, after minting the pool {rss_pool} KiB"
    );
    println!(
        "{:>10} {:>10} {:>10} {:>12}",
        "verified", "cached", "RSS KiB", "verify/s"
    );

    let started = Instant::now();
    let mut window_start = Instant::now();
    let report_every = (chains / 20).max(1);
    let mut samples: Vec<(usize, u64)> = Vec::new();
    for i in 0..chains {
        let leaf = &pool.leaves[i % LEAVES];
        let inter = &pool.intermediates[i / LEAVES];
        let id = store
            .verify_shared(leaf, &[inter.as_slice()], at)
            .expect("every pooled chain verifies");
        std::hint::black_box(id);
        let done = i + 1;
        if done == capacity || done % report_every == 0 {
            let rss = rss_kib();
            let rate = if done % report_every == 0 {
                let r = report_every as f64 / window_start.elapsed().as_secs_f64();
                window_start = Instant::now();
                format!("{r:.0}")
            } else {
                "-".to_owned() // the sample taken when the cache first fills
            };
            println!("{done:>10} {:>10} {rss:>10} {rate:>12}", store.cached_len());
            samples.push((done, rss));
        }
    }
    let elapsed = started.elapsed();
    let rss_end = rss_kib();
    assert!(store.cached_len() <= capacity);
    // Plateau: memory after the cache first filled versus memory at the end.
    let at_full = samples
        .iter()
        .find(|(n, _)| *n >= capacity)
        .map_or(rss_pool, |(_, r)| *r);
    let peak = samples.iter().map(|(_, r)| *r).max().unwrap_or(rss_end);
    println!(
        "identity_memory: {chains} verified in {:.1} s; cache {} / {capacity}; \
         RSS when the cache first filled {at_full} KiB, peak {peak} KiB, end {rss_end} KiB \
         (growth after full: {} KiB); about {} bytes per cache entry",
        elapsed.as_secs_f64(),
        store.cached_len(),
        peak.saturating_sub(at_full),
        (at_full.saturating_sub(rss_pool) * 1024) / capacity.max(1) as u64,
    );
}
