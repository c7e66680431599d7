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

/// Policies under which every carrier is judged as the IPv4 it carries (6to4 and Teredo are
/// refused wholesale by default; `tunnels_are_refused_by_default` covers that).
fn policies() -> Vec<EgressPolicy> {
    vec![
        EgressPolicy::builder()
            .schemes(["http"])
            .allow_6to4(true)
            .allow_teredo(true)
            .build()
            .unwrap(),
        // every carrier turned off, then re-opened by an allow over its IPv6 prefix: the
        // IPv4 inside must still get the plain verdict (re-opening never opens more)
        EgressPolicy::builder()
            .schemes(["http"])
            .allow_nat64(false)
            .allow_cidrs(["64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32"])
            .build()
            .unwrap(),
        EgressPolicy::builder()
            .schemes(["http"])
            .allow_6to4(true)
            .allow_teredo(true)
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
    fn tunnels_are_refused_by_default(n in ipv4(), tail in any::<u64>()) {
        let v4 = Ipv4Addr::from(n);
        let o = v4.octets();
        let t = tail.to_be_bytes();
        let six_to_four = IpAddr::V6(Ipv6Addr::from([0x20, 0x02, o[0], o[1], o[2], o[3], t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], 0, 1]));
        let x = !n;
        let teredo = IpAddr::V6(Ipv6Addr::from([
            0x20, 0x01, 0, 0, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7],
            (x >> 24) as u8, (x >> 16) as u8, (x >> 8) as u8, x as u8,
        ]));
        let policy = EgressPolicy::default();
        let plain = verdict(policy.check_ip(IpAddr::V4(v4)));
        for carried in [six_to_four, teredo] {
            let got = verdict(policy.check_ip(carried));
            // metadata keeps its earlier, more specific verdict; everything else is the tunnel
            let expected = if plain == "egress.metadata" { plain } else { "egress.ipv6_tunnel" };
            prop_assert_eq!(got, expected, "{} as {}", v4, carried);
        }
        prop_assert_eq!(verdict(policy.check_url(&format!("https://[{six_to_four}]/"))),
            if plain == "egress.metadata" { plain } else { "egress.ipv6_tunnel" });
    }

    #[test]
    fn no_spelling_of_a_denied_name_passes(
        front in proptest::option::of("[a-z0-9]{1,8}"),
        leading in 0usize..3,
        middle in 0usize..3,
        trailing in 0usize..5,
        upper in any::<bool>(),
    ) {
        let policy = EgressPolicy::builder()
            .schemes(["http"])
            .deny_hosts(["vault.corp.example", "*.secret.example"])
            .build()
            .unwrap();
        let dots = |n: usize| ".".repeat(n);
        let resolver = |_: &str| -> std::io::Result<Vec<IpAddr>> { Ok(vec![IpAddr::from([93, 184, 216, 34])]) };
        for base in ["vault.corp.example", "secret.example"] {
            let mut name = match &front {
                Some(f) => format!("{}{f}.{}{base}", dots(leading), dots(middle)),
                None => format!("{}{base}", dots(leading)),
            };
            name.push_str(&dots(trailing));
            if upper {
                name = name.to_uppercase();
            }
            let got = verdict(policy.check_with(&format!("http://{name}/"), &resolver));
            let empty_label = leading > 0 || (front.is_some() && middle > 0) || trailing > 1;
            let denied = base == "vault.corp.example" && front.is_none() || base == "secret.example" && front.is_some();
            let expected = if empty_label { "egress.bad_url" } else if denied { "egress.host_denied" } else { "ok" };
            prop_assert_eq!(got, expected, "{}", name);
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
