//! Property tests: an IPv4 address gets the same verdict in every spelling that carries it.
#![allow(clippy::unwrap_used, clippy::panic)] // test/bench helpers outside #[test] fns; a failure here is a test failure

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use portcullis::egress::{EgressError, EgressPolicy};
use portcullis::ErrorCode;
use proptest::prelude::*;

fn verdict<T>(r: Result<T, EgressError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

fn policies() -> Vec<EgressPolicy> {
    vec![
        EgressPolicy::builder().schemes(["http"]).build().unwrap(),
        EgressPolicy::builder()
            .schemes(["http"])
            .allow_cidrs([
                "10.0.0.0/8",
                "169.254.0.0/16",
                "100.64.0.0/10",
                "127.0.0.1/32",
            ])
            .deny_cidrs(["10.1.0.0/16", "8.8.0.0/16", "203.0.113.7"])
            .build()
            .unwrap(),
    ]
}

/// Random addresses, biased towards the edges of the interesting ranges.
fn ipv4() -> impl Strategy<Value = u32> {
    let interesting: Vec<u32> = [
        "0.0.0.0",
        "10.0.0.0",
        "10.1.0.0",
        "100.64.0.0",
        "100.100.100.200",
        "127.0.0.0",
        "169.254.0.0",
        "169.254.169.254",
        "169.254.170.2",
        "172.16.0.0",
        "192.0.0.0",
        "192.0.0.192",
        "192.0.2.0",
        "192.88.99.0",
        "192.168.0.0",
        "198.18.0.0",
        "198.51.100.0",
        "203.0.113.0",
        "224.0.0.0",
        "240.0.0.0",
        "168.63.129.16",
        "8.8.0.0",
    ]
    .iter()
    .map(|s| u32::from(s.parse::<Ipv4Addr>().unwrap()))
    .collect();
    prop_oneof![
        any::<u32>(),
        (proptest::sample::select(interesting), -300i64..300)
            .prop_map(|(base, delta)| (base as i64 + delta).clamp(0, u32::MAX as i64) as u32),
    ]
}

fn v6(prefix: [u8; 12], v4: Ipv4Addr) -> IpAddr {
    let mut b = [0u8; 16];
    b[..12].copy_from_slice(&prefix);
    b[12..].copy_from_slice(&v4.octets());
    IpAddr::V6(Ipv6Addr::from(b))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn every_spelling_gets_the_same_verdict(n in ipv4()) {
        let v4 = Ipv4Addr::from(n);
        let o = v4.octets();
        let mapped = v6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], v4);
        let nat64 = v6([0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0], v4);
        let nat64_local = v6([0, 0x64, 0xff, 0x9b, 0, 1, 0, 0, 0, 0, 0, 0], v4);
        let six_to_four = IpAddr::V6(Ipv6Addr::from([0x20, 0x02, o[0], o[1], o[2], o[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
        let x = !n;
        let teredo = IpAddr::V6(Ipv6Addr::from([
            0x20, 0x01, 0, 0, 0x41, 0x36, 0xe3, 0x78, 0x80, 0, 0x63, 0xbf,
            (x >> 24) as u8, (x >> 16) as u8, (x >> 8) as u8, x as u8,
        ]));
        for policy in policies() {
            let plain = verdict(policy.check_ip(IpAddr::V4(v4)));
            for other in [mapped, nat64, nat64_local, six_to_four, teredo] {
                prop_assert_eq!(verdict(policy.check_ip(other)), plain, "{} as {}", v4, other);
            }
            // URL spellings: integer, hex, octal, the IPv6 literals
            for url in [
                format!("http://{v4}/"),
                format!("http://{n}/"),
                format!("http://{n:#x}/"),
                format!("http://0{n:o}/"),
                format!("http://{}.{}/", o[0], n & 0x00ff_ffff),
                format!("http://[{mapped}]/"),
                format!("http://[{nat64}]/"),
                format!("http://[{six_to_four}]/"),
            ] {
                prop_assert_eq!(verdict(policy.check_url(&url)), plain, "{}", url);
            }
        }
    }

    #[test]
    fn arbitrary_input_never_panics(input in "\\PC{0,60}", location in "[ -~]{0,40}") {
        let policy = EgressPolicy::builder().schemes(["http", "https"]).build().unwrap();
        let _ = policy.check_url(&input);
        let _ = policy.check_url(&format!("http://{input}"));
        let from = url::Url::parse("https://example.com/a/b").unwrap();
        let _ = policy.check_redirect_url(&from, &location);
    }
}
