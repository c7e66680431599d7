//! Fuzzes path building where rustls-webpki gives up: a trust store whose root carries
//! name constraints of every form (dNSName, URI, rfc822Name, directoryName permitted;
//! dNSName, rfc822Name, iPAddress excluded), and a peer that presents any pool of
//! certificates next to the committed key-rollover chain (`data/nc-*.pem`: root ->
//! "Fuzz CA" old key (pathlen 0) -> "Fuzz CA" new key, self-issued -> leaf).
//!
//! Input: a selector byte, then certificates as u16-big-endian-length-prefixed DER
//! chunks; the first chunk is the leaf, the rest the presented pool. Selector bit 0
//! appends the committed chain to the pool; bit 1 verifies for a server name; bit 2
//! uses the store that holds the intermediates itself.
//!
//! Invariants: nothing panics; errors carry `cert.` codes; a chain that verifies is the
//! committed leaf (no forgery through pool tricks, constraint parsing or the fallback path
//! builder), whose path is root-anchored and at most 8 intermediates long; a repeat verify
//! (a cache hit) agrees with the first.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use portcullis::identity::{decode, TrustStore, Usage};
use portcullis::ErrorCode;

const ROOT: &[u8] = include_bytes!("../data/nc-root.pem");
const OLD: &[u8] = include_bytes!("../data/nc-ca-old.pem");
const ROLLOVER: &[u8] = include_bytes!("../data/nc-ca-rollover.pem");
const LEAF: &[u8] = include_bytes!("../data/nc-leaf.pem");

struct Fixture {
    stores: [TrustStore; 2],
    chain: Vec<Vec<u8>>,
    leaf: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let builder = || {
            TrustStore::builder()
                .ca_pem(ROOT)
                .usage(Usage::ClientAuth)
                .cache_capacity(64)
        };
        let with_inters = builder().intermediates(ROLLOVER).intermediates(OLD);
        Fixture {
            stores: [builder().build().unwrap(), with_inters.build().unwrap()],
            chain: vec![
                decode::decode_pem_certificate(ROLLOVER).unwrap(),
                decode::decode_pem_certificate(OLD).unwrap(),
            ],
            leaf: decode::decode_pem_certificate(LEAF).unwrap(),
        }
    })
}

fn at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000) // 2030-01-01
}

fn chunks(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let [hi, lo, rest @ ..] = data {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        let (chunk, tail) = rest.split_at(len);
        out.push(chunk);
        data = tail;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let parts = chunks(rest);
    let Some((leaf, pool)) = parts.split_first() else {
        return;
    };
    let mut presented: Vec<&[u8]> = pool.to_vec();
    if selector & 1 != 0 {
        presented.extend(f.chain.iter().map(Vec::as_slice));
    }
    let store = &f.stores[usize::from(selector & 4 != 0)];
    let verify = || {
        if selector & 2 != 0 {
            store.verify_server(leaf, &presented, "worker.fuzz.test", at())
        } else {
            store.verify(leaf, &presented, at())
        }
    };
    let first = verify();
    match &first {
        Ok(id) => {
            assert_eq!(*leaf, f.leaf.as_slice(), "a forged leaf verified");
            assert_eq!(id.spiffe_id.as_deref(), Some("spiffe://fuzz.test/worker"));
            assert!((2..=10).contains(&id.chain_fingerprints.len()));
        }
        Err(e) => assert!(e.code().starts_with("cert."), "{e}"),
    }
    let second = verify();
    assert_eq!(first.is_ok(), second.is_ok(), "a cache hit changed the verdict");
});
