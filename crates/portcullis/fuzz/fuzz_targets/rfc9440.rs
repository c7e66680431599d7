//! Fuzzes the RFC 9440 `client-cert` / `client-cert-chain` carrier (RFC 8941 byte
//! sequences `:base64:`, comma-separated chain) through `CertSource::extract`, then
//! verifies what it extracted against the committed test PKI.
//!
//! Input: the `client-cert` value, then optionally `\n` and the `client-cert-chain` value.
//! Invariants: nothing panics; errors carry `cert.` codes; on success the leaf is exactly
//! the base64 the header carried between its colons (decoded independently here), the
//! chain has one certificate per list member, every certificate is one complete DER frame;
//! the same headers from an untrusted peer are always refused; a verified result is the one
//! leaf the test intermediate signed.
#![no_main]

#[path = "fixed_pki.rs"]
mod fixed_pki;

use std::sync::OnceLock;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use portcullis::identity::source::{CertSource, SourceKind, SourceLimits, TrustedProxies};
use portcullis::ErrorCode;

const MAX_CERTS: usize = 4;

fn source() -> &'static CertSource {
    static SOURCE: OnceLock<CertSource> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let proxies = TrustedProxies::new(["10.0.0.0/8", "::1"]).unwrap();
        let limits = SourceLimits {
            max_certs: MAX_CERTS,
            ..SourceLimits::default()
        };
        CertSource::new(SourceKind::Rfc9440, proxies)
            .unwrap()
            .with_limits(limits)
            .unwrap()
    })
}

/// RFC 8941 byte sequence, decoded the plain way: `:` standard base64 `:`, padding
/// optional (RFC 8941 4.2.7 asks parsers not to insist on it).
fn sf_binary(item: &str) -> Option<Vec<u8>> {
    let inner = item.trim().strip_prefix(':')?.strip_suffix(':')?;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(inner.trim_end_matches('='))
        .ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (cert, chain) = input.split_once('\n').unwrap_or((input, ""));
    let src = source();
    let chain_header = src.chain_header().unwrap();
    let lookup = |name: &str| {
        if name == src.header() {
            Some(cert)
        } else if name == chain_header {
            Some(chain)
        } else {
            None
        }
    };
    match src.extract(lookup, Some("::1")) {
        Ok(p) => {
            fixed_pki::assert_frames(&p.leaf, &p.chain);
            assert_eq!(
                sf_binary(cert).as_deref(),
                Some(p.leaf.as_slice()),
                "leaf bytes differ"
            );
            if chain.trim().is_empty() {
                assert!(p.chain.is_empty());
            } else {
                let members: Vec<&str> = chain.split(',').collect();
                assert_eq!(members.len(), p.chain.len());
                for (member, der) in members.iter().zip(&p.chain) {
                    assert_eq!(sf_binary(member).as_deref(), Some(der.as_slice()));
                }
            }
            assert!(1 + p.chain.len() <= MAX_CERTS);
            fixed_pki::verify_extracted(&p.leaf, &p.chain);
        }
        Err(e) => assert!(e.code().starts_with("cert."), "{}", e.code()),
    }
    if !cert.trim().is_empty() || !chain.trim().is_empty() {
        let refused = src.extract(lookup, Some("203.0.113.7")).unwrap_err();
        assert_eq!(refused.code(), "cert.untrusted_proxy");
    }
});
