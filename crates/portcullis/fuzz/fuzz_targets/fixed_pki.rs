//! The committed test PKI (`data/`) and a trust store built from it, shared by the targets
//! that carry certificates (`#[path]`-included, so each target stays one binary).
#![allow(dead_code)] // each target uses a subset

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis::identity::{decode, Identity, TrustStore};

pub const CA: &[u8] = include_bytes!("../data/ca.pem");
pub const INTERMEDIATE: &[u8] = include_bytes!("../data/intermediate.pem");
pub const LEAF: &[u8] = include_bytes!("../data/leaf.pem");
pub const LEAF_NAME: &str = "worker.fuzz.test";
pub const LEAF_SPIFFE: &str = "spiffe://fuzz.test/worker";

/// A store that knows only the root: the peer must present the intermediate.
pub fn store() -> &'static TrustStore {
    static STORE: OnceLock<TrustStore> = OnceLock::new();
    STORE.get_or_init(|| {
        TrustStore::builder()
            .ca_pem(CA)
            .cache_capacity(64)
            .build()
            .unwrap()
    })
}

/// 2030-01-01T00:00:00Z, inside the test PKI's validity.
pub fn at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

/// Verifies what a source extracted; a success must be the one leaf the test
/// intermediate signed, whatever the carrier did to the bytes on the way.
pub fn verify_extracted(leaf: &[u8], chain: &[Vec<u8>]) -> Option<Identity> {
    let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    match store().verify(leaf, &refs, at()) {
        Ok(id) => {
            assert_eq!(id.common_name.as_deref(), Some(LEAF_NAME));
            assert_eq!(id.spiffe_id.as_deref(), Some(LEAF_SPIFFE));
            Some(id)
        }
        Err(e) => {
            assert!(portcullis::ErrorCode::code(&e).starts_with("cert."));
            None
        }
    }
}

/// Every certificate a source hands back is one complete DER frame.
pub fn assert_frames(leaf: &[u8], chain: &[Vec<u8>]) {
    for der in std::iter::once(leaf).chain(chain.iter().map(Vec::as_slice)) {
        assert_eq!(
            decode::decode_der(der).as_deref().ok(),
            Some(der),
            "not one DER frame"
        );
    }
}
