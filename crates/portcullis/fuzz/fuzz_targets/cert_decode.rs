//! Fuzzes certificate decoding (PEM, DER, URL-escaped PEM, bare base64 DER, CRLs) and then
//! `TrustStore::verify` on whatever decodes, against a fixed trust store built from the
//! committed test PKI in `data/`.
//!
//! Invariants: nothing panics; decoder errors are `cert.bad_encoding`; every decoded
//! certificate is one complete DER frame; verify errors carry a `cert.` code; a chain that
//! verifies names the one leaf the test intermediate signed (no forgery); a repeat verify
//! (a cache hit) agrees with the first one; `decode::input_form` never calls text DER.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use portcullis::identity::decode;
use portcullis::identity::TrustStore;
use portcullis::ErrorCode;

const CA: &[u8] = include_bytes!("../data/ca.pem");
const INTERMEDIATE: &[u8] = include_bytes!("../data/intermediate.pem");
const CRL: &[u8] = include_bytes!("../data/intermediate.crl.pem");
const LEAF_NAME: &str = "worker.fuzz.test";
const LEAF_SPIFFE: &str = "spiffe://fuzz.test/worker";

/// Two stores: one bare (the peer must present the intermediate), one that knows the
/// intermediate and checks the leaf against the intermediate's (empty) CRL. Unknown
/// status is allowed there: the root issued no CRL, so denying it would refuse every
/// chain and leave the success path unfuzzed.
fn stores() -> &'static [TrustStore; 2] {
    static STORES: OnceLock<[TrustStore; 2]> = OnceLock::new();
    STORES.get_or_init(|| {
        let bare = TrustStore::builder()
            .ca_pem(CA)
            .cache_capacity(64)
            .build()
            .unwrap();
        let full = TrustStore::builder()
            .ca_pem(CA)
            .intermediates(INTERMEDIATE)
            .crls(CRL)
            .cache_capacity(64)
            .build()
            .unwrap();
        [bare, full]
    })
}

fn intermediate_der() -> &'static [u8] {
    static DER: OnceLock<Vec<u8>> = OnceLock::new();
    DER.get_or_init(|| decode::decode_pem_certificate(INTERMEDIATE).unwrap())
}

fn check_decoded(
    result: Result<Vec<Vec<u8>>, portcullis::identity::CertificateError>,
) -> Vec<Vec<u8>> {
    match result {
        Ok(certs) => {
            assert!(!certs.is_empty());
            for der in &certs {
                assert!(der.len() <= decode::MAX_CERT_BYTES);
                assert_eq!(
                    decode::decode_der(der).as_deref().ok(),
                    Some(der.as_slice())
                );
            }
            certs
        }
        Err(e) => {
            assert_eq!(e.code(), "cert.bad_encoding", "{e}");
            Vec::new()
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let text = std::str::from_utf8(input).ok();
    // How a configured input is classified (the Ruby `ca:` strings): DER only when it is
    // one well-formed long-form frame or binary starting as DER; a path is one line of
    // text; PEM text holds a BEGIN line.
    match decode::input_form(input) {
        Some(decode::InputForm::Path) => {
            let t = text.unwrap();
            assert!(!decode::is_der(input) && !t.contains("-----BEGIN"));
            assert!(!t.is_empty() && !t.contains(['\n', '\r', '\0']));
        }
        Some(decode::InputForm::Pem) => assert!(!decode::is_der(input)),
        Some(decode::InputForm::Der) => assert!(input.first() == Some(&0x30)),
        None => assert!(!decode::is_der(input)),
        Some(_) => {}
    }
    if decode::is_der(input) {
        assert!(text.is_none(), "DER is never valid UTF-8 text");
    }
    let certs = match selector % 8 {
        0 => check_decoded(decode::decode_certificates(input)),
        1 => check_decoded(decode::decode_pem_certificates(input)),
        2 => check_decoded(decode::decode_der(input).map(|d| vec![d])),
        3 => match text {
            Some(t) => check_decoded(decode::decode_url_escaped_pem(t)),
            None => return,
        },
        4 => match text {
            Some(t) => check_decoded(decode::decode_base64_der(t).map(|d| vec![d])),
            None => return,
        },
        5 => {
            let crls = check_decoded(decode::decode_crls(input));
            // A CRL that decodes may still be rejected by the store; never a panic.
            let refs: Vec<&[u8]> = crls.iter().map(Vec::as_slice).collect();
            if !refs.is_empty() {
                let store = TrustStore::builder()
                    .ca_pem(CA)
                    .cache_capacity(4)
                    .build()
                    .unwrap();
                let _ = store.reload_crls(&refs);
            }
            return;
        }
        6 => check_decoded(decode::decode_certificate(input).map(|d| vec![d])),
        _ => {
            // The leaf as raw DER, the committed intermediate presented after it: lets the
            // fuzzer mutate a real leaf and reach path building and signature checks.
            let _ = stores()[1].verify(input, &[intermediate_der()], at());
            return;
        }
    };
    let Some((leaf, rest)) = certs.split_first() else {
        return;
    };
    let mut chain: Vec<&[u8]> = rest.iter().map(Vec::as_slice).collect();
    if selector & 0x10 != 0 {
        chain.push(intermediate_der());
    }
    let store = &stores()[usize::from(selector >> 5 & 1)];
    let first = store.verify(leaf, &chain, at());
    match &first {
        Ok(id) => {
            // Only the committed intermediate can sign, and it signed one leaf.
            assert_eq!(id.common_name.as_deref(), Some(LEAF_NAME));
            assert_eq!(id.spiffe_id.as_deref(), Some(LEAF_SPIFFE));
            assert_eq!(id.chain_fingerprints.len(), 3);
        }
        Err(e) => assert!(e.code().starts_with("cert."), "{}", e.code()),
    }
    let again = store.verify(leaf, &chain, at());
    assert_eq!(first.is_ok(), again.is_ok());
    if let (Ok(a), Ok(b)) = (&first, &again) {
        assert_eq!(a, b);
    }
    if selector & 0x40 != 0 {
        let name = if selector & 0x80 != 0 {
            LEAF_NAME
        } else {
            "other.fuzz.test"
        };
        if let Ok(id) = store.verify_server(leaf, &chain, name, at()) {
            assert_eq!(name, LEAF_NAME);
            assert_eq!(id.common_name.as_deref(), Some(LEAF_NAME));
        }
    }
});

fn at() -> SystemTime {
    // 2030-01-01T00:00:00Z, inside the test PKI's validity.
    UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}
