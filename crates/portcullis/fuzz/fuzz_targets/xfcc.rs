//! Fuzzes the Envoy `x-forwarded-client-cert` carrier (the XFCC grammar, strict
//! URL-unescaping, `Hash`/`Cert`/`Chain` consistency) through `CertSource::extract`, then
//! verifies what it extracted against the committed test PKI.
//!
//! Invariants: nothing panics; errors carry `cert.` codes; an extracted leaf and chain are
//! complete DER frames within the certificate cap; a `Hash` in the nearest element matches
//! the leaf; only the nearest (last) element counts, so an element a client prepends never
//! changes the result; the same header from an untrusted peer is always refused; a verified
//! result is the one leaf the test intermediate signed.
#![no_main]

#[path = "fixed_pki.rs"]
mod fixed_pki;

use std::sync::OnceLock;

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
        CertSource::new(SourceKind::Envoy, proxies)
            .unwrap()
            .with_limits(limits)
            .unwrap()
    })
}

fn sha256_hex(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `hash` value of the last element, if the header is simple enough to find it
/// without a parser (no quotes): an independent re-check of the Hash rule.
fn simple_last_hash(header: &str) -> Option<String> {
    if header.contains('"') {
        return None;
    }
    let last = header.rsplit(',').next()?;
    last.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("hash")
            .then(|| v.trim().to_owned())
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let src = source();
    let lookup = |name: &str| (name == src.header()).then_some(header);
    let result = src.extract(lookup, Some("10.1.2.3"));
    match &result {
        Ok(p) => {
            fixed_pki::assert_frames(&p.leaf, &p.chain);
            assert!(1 + p.chain.len() <= MAX_CERTS);
            if let Some(hash) = simple_last_hash(header) {
                assert!(
                    hash.eq_ignore_ascii_case(&sha256_hex(&p.leaf)),
                    "Hash {hash} accepted"
                );
            }
            fixed_pki::verify_extracted(&p.leaf, &p.chain);
        }
        Err(e) => assert!(e.code().starts_with("cert."), "{}", e.code()),
    }
    if !header.trim().is_empty() {
        let refused = src.extract(lookup, Some("192.0.2.1")).unwrap_err();
        assert_eq!(refused.code(), "cert.untrusted_proxy");
        let refused = src.extract(lookup, None).unwrap_err();
        assert_eq!(refused.code(), "cert.untrusted_proxy");
    }
    // A client-supplied element in front of the proxy's own changes nothing.
    let prefixed = format!("By=spiffe://client/evil;Hash=00;Cert=\"x\",{header}");
    let lookup2 = |name: &str| (name == src.header()).then_some(prefixed.as_str());
    match (src.extract(lookup2, Some("10.1.2.3")), &result) {
        (Ok(a), Ok(b)) => assert_eq!(&a, b),
        (Err(_), Err(_)) => {}
        (a, b) => {
            // Only the size cap may tell the two apart (the prefix makes the header longer).
            let longer = a.as_ref().err().map(|e| e.code());
            assert_eq!(
                longer,
                Some("cert.header_too_large"),
                "prefix changed {b:?} into {a:?}"
            );
        }
    }
});
