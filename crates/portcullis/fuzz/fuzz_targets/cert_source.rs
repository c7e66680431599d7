//! Fuzz the certificate sources and the policy builder: no panics on any input, and on
//! success the invariants the middleware relies on: a leaf that is a DER SEQUENCE, the cert
//! count cap respected, the same header from an untrusted peer always refused, and any
//! configured cap either in range or a typed `cert.bad_limit`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::authz::{AccessPolicy, Match, Rule};
use portcullis::identity::source::{
    CertSource, SourceKind, SourceLimits, TrustedProxies, MAX_CERTS_CAP,
};
use portcullis::ErrorCode;

const KINDS: [SourceKind; 6] = [
    SourceKind::Tls,
    SourceKind::Nginx,
    SourceKind::Envoy,
    SourceKind::Alb,
    SourceKind::Traefik,
    SourceKind::Rfc9440,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(input) = std::str::from_utf8(rest) else {
        return;
    };
    let kind = KINDS[usize::from(selector) % KINDS.len()];
    let proxies = TrustedProxies::new(["10.0.0.0/8", "::1"]).unwrap();
    let limits = SourceLimits {
        max_certs: 3,
        ..SourceLimits::default()
    };
    let source = CertSource::new(kind, proxies.clone())
        .unwrap()
        .with_limits(limits)
        .unwrap();
    // Configured caps: any value is a typed refusal or a source, never a panic or an
    // allocation sized by the value (`max_certs: 2**62` once aborted Ruby).
    let wanted = input
        .bytes()
        .take(8)
        .fold(0usize, |acc, b| acc.rotate_left(8) ^ usize::from(b));
    for max_certs in [wanted, wanted % 64, usize::MAX - wanted % 2] {
        let tried = SourceLimits {
            max_certs,
            ..SourceLimits::default()
        };
        match CertSource::new(kind, proxies.clone()).unwrap().with_limits(tried) {
            Ok(s) => assert!((1..=MAX_CERTS_CAP).contains(&s.limits().max_certs)),
            Err(e) => {
                assert_eq!(e.code(), "cert.bad_limit");
                assert!(!(1..=MAX_CERTS_CAP).contains(&max_certs));
            }
        }
    }
    // The input feeds every header or server variable the source reads; a newline splits
    // leaf header from chain header (RFC 9440, SSL_CLIENT_CERT_CHAIN_0).
    let (first, second) = input.split_once('\n').unwrap_or((input, ""));
    let lookup = |name: &str| -> Option<&str> {
        if name == source.header() {
            Some(first)
        } else if name.ends_with('0') || name.ends_with("chain") {
            Some(second).filter(|s| !s.is_empty())
        } else {
            None
        }
    };
    if let Ok(presented) = source.extract(lookup, Some("10.1.2.3")) {
        assert_eq!(presented.leaf.first(), Some(&0x30));
        assert!(presented.chain.len() < 3);
        if kind != SourceKind::Tls {
            let refused = source.extract(lookup, Some("192.0.2.1")).unwrap_err();
            assert_eq!(refused.code(), "cert.untrusted_proxy");
        }
    }

    // The policy builder takes the same text as matcher fields: it refuses or builds,
    // never panics.
    let field = |i: usize| input.split('\n').nth(i).map(str::to_owned);
    let _ = AccessPolicy::new(vec![Rule {
        matcher: Match {
            issuer: field(0).filter(|_| selector & 1 != 0),
            subject: field(1).filter(|_| selector & 2 != 0),
            dns: field(2).filter(|_| selector & 4 != 0),
            spiffe_id: field(3).filter(|_| selector & 8 != 0),
            spiffe_trust_domain: field(4).filter(|_| selector & 16 != 0),
            spiffe_prefix: field(5).filter(|_| selector & 32 != 0),
            cn: field(6).filter(|_| selector & 64 != 0),
        },
        grants: vec![field(7).unwrap_or_else(|| "p".to_owned())],
    }]);
});
