//! Fuzz the egress URL checks: no panics on any input, and invariants on success: every
//! pinned address passes `check_ip` on its own, and so does the IPv4 address it carries
//! (a carrier never opens more than the address itself); the canonical URL handed back is
//! itself accepted (checking is idempotent, so callers may re-check `dest.url`); a host
//! name has no empty label (`vault.example..` must not dodge a host rule); a denied name
//! is never accepted in any spelling.
#![no_main]

use std::io;
use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use portcullis::egress::{embedded_ipv4, EgressPolicy, Url};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(input) = std::str::from_utf8(rest) else {
        return;
    };
    let policy = match selector % 5 {
        0 => EgressPolicy::default(),
        1 => EgressPolicy::builder()
            .schemes(["http", "https", "ws", "wss"])
            .build()
            .unwrap(),
        2 => EgressPolicy::builder()
            .schemes(["http", "https"])
            .allow_hosts(["example.com", "*.example.org", "127.0.0.1"])
            .allow_cidrs(["10.0.0.0/8", "169.254.0.0/16"])
            .deny_cidrs(["10.1.0.0/16"])
            .allow_nat64(false)
            .build()
            .unwrap(),
        3 => EgressPolicy::builder()
            .schemes(["http", "https"])
            .strict(false)
            .build()
            .unwrap(),
        // carriers turned off and re-opened by their IPv6 prefix; a denied name
        _ => EgressPolicy::builder()
            .schemes(["http", "https"])
            .deny_hosts(["vault.corp.example", "*.secret.example"])
            .allow_nat64(false)
            .allow_cidrs(["64:ff9b::/96", "2002::/16", "2001::/32"])
            .strict(false)
            .build()
            .unwrap(),
    };
    // The stub resolver answers with addresses taken from the selector byte, so both
    // allowed and denied answers occur.
    let answers: Vec<IpAddr> = match selector / 5 % 6 {
        0 => vec![IpAddr::from([93, 184, 216, 34])],
        1 => vec![
            IpAddr::from([93, 184, 216, 34]),
            IpAddr::from([10, 0, 0, 1]),
        ],
        2 => vec!["::ffff:169.254.169.254".parse().unwrap()],
        3 => vec!["2002:808:808::1".parse().unwrap()],
        4 => vec!["64:ff9b::7f00:1".parse().unwrap()],
        _ => vec![],
    };
    let resolver = |_: &str| -> io::Result<Vec<IpAddr>> { Ok(answers.clone()) };

    // split the input at the first newline: URL, then a redirect Location
    let (url, location) = input.split_once('\n').unwrap_or((input, ""));
    if let Ok(dest) = policy.check_with(url, &resolver) {
        assert!(!dest.addrs.is_empty());
        for ip in &dest.addrs {
            assert!(policy.check_ip(*ip).is_ok(), "pinned {ip} fails check_ip");
            if let IpAddr::V6(v6) = ip {
                if let Some((v4, how)) = embedded_ipv4(*v6) {
                    let alone = policy.check_ip(IpAddr::V4(v4));
                    assert!(alone.is_ok(), "{ip} ({how} {v4}) passes, {v4} alone does not: {alone:?}");
                }
            }
        }
        if dest.url.domain().is_some() {
            assert!(
                !dest.host.split('.').any(str::is_empty),
                "host {:?} with an empty label accepted",
                dest.host
            );
            if selector % 5 == 4 {
                let denied = dest.host == "vault.corp.example" || dest.host.ends_with(".secret.example");
                assert!(!denied, "denied host {:?} accepted from {url:?}", dest.host);
            }
        }
        let again = policy.check_with(dest.url.as_str(), &resolver);
        assert!(
            again.is_ok(),
            "canonical {} refused: {:?}",
            dest.url,
            again.err()
        );
        if let Ok(next) = policy.check_redirect_with(&dest.url, location, &resolver) {
            for ip in &next.addrs {
                assert!(policy.check_ip(*ip).is_ok());
            }
        }
    }
    let base = Url::parse("https://example.com/a/b?c").unwrap();
    let _ = policy.check_redirect_url(&base, input);
});
