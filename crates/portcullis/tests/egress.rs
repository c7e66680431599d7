//! Hostile tests for the egress policy: range edges, IPv4 spellings, IPv6 embeddings,
//! URL tricks, host patterns, DNS answers, redirects, and URLs that must stay allowed.
#![allow(clippy::unwrap_used, clippy::panic)] // test/bench helpers outside #[test] fns; a failure here is a test failure

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use portcullis::egress::{EgressError, EgressPolicy};
use portcullis::ErrorCode;
use url::Url;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn code(r: Result<impl std::fmt::Debug, EgressError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

/// A resolver that answers from a fixed table and fails for unknown names.
fn dns(
    table: &'static [(&'static str, &'static [&'static str])],
) -> impl Fn(&str) -> io::Result<Vec<IpAddr>> {
    move |host: &str| {
        table
            .iter()
            .find(|(name, _)| *name == host)
            .map(|(_, addrs)| addrs.iter().map(|a| ip(a)).collect())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "NXDOMAIN"))
    }
}

fn no_dns(host: &str) -> io::Result<Vec<IpAddr>> {
    panic!("resolver must not be called for {host}")
}

fn http_policy() -> EgressPolicy {
    EgressPolicy::builder()
        .schemes(["http", "https"])
        .build()
        .unwrap()
}

#[test]
fn ipv4_range_edges() {
    let policy = EgressPolicy::default();
    // (address, expected code): first and last of each range, and the neighbours outside.
    let table: &[(&str, &str)] = &[
        ("0.0.0.0", "egress.reserved_address"),
        ("0.255.255.255", "egress.reserved_address"),
        ("1.0.0.0", "ok"),
        ("9.255.255.255", "ok"),
        ("10.0.0.0", "egress.reserved_address"),
        ("10.255.255.255", "egress.reserved_address"),
        ("11.0.0.0", "ok"),
        ("100.63.255.255", "ok"),
        ("100.64.0.0", "egress.reserved_address"),
        ("100.127.255.255", "egress.reserved_address"),
        ("100.128.0.0", "ok"),
        ("126.255.255.255", "ok"),
        ("127.0.0.0", "egress.reserved_address"),
        ("127.255.255.255", "egress.reserved_address"),
        ("128.0.0.0", "ok"),
        ("169.253.255.255", "ok"),
        ("169.254.0.0", "egress.reserved_address"),
        ("169.254.255.255", "egress.reserved_address"),
        ("169.255.0.0", "ok"),
        ("172.15.255.255", "ok"),
        ("172.16.0.0", "egress.reserved_address"),
        ("172.31.255.255", "egress.reserved_address"),
        ("172.32.0.0", "ok"),
        ("191.255.255.255", "ok"),
        ("192.0.0.0", "egress.reserved_address"),
        ("192.0.0.255", "egress.reserved_address"),
        ("192.0.1.0", "ok"),
        ("192.0.1.255", "ok"),
        ("192.0.2.0", "egress.reserved_address"),
        ("192.0.2.255", "egress.reserved_address"),
        ("192.0.3.0", "ok"),
        ("192.88.98.255", "ok"),
        ("192.88.99.0", "egress.reserved_address"),
        ("192.88.99.255", "egress.reserved_address"),
        ("192.88.100.0", "ok"),
        ("192.167.255.255", "ok"),
        ("192.168.0.0", "egress.reserved_address"),
        ("192.168.255.255", "egress.reserved_address"),
        ("192.169.0.0", "ok"),
        ("198.17.255.255", "ok"),
        ("198.18.0.0", "egress.reserved_address"),
        ("198.19.255.255", "egress.reserved_address"),
        ("198.20.0.0", "ok"),
        ("198.51.99.255", "ok"),
        ("198.51.100.0", "egress.reserved_address"),
        ("198.51.100.255", "egress.reserved_address"),
        ("198.51.101.0", "ok"),
        ("203.0.112.255", "ok"),
        ("203.0.113.0", "egress.reserved_address"),
        ("203.0.113.255", "egress.reserved_address"),
        ("203.0.114.0", "ok"),
        ("223.255.255.255", "ok"),
        ("224.0.0.0", "egress.reserved_address"),
        ("239.255.255.255", "egress.reserved_address"),
        ("240.0.0.0", "egress.reserved_address"),
        ("255.255.255.255", "egress.reserved_address"),
        // metadata, including the public-space Azure WireServer
        ("169.254.169.254", "egress.metadata"),
        ("169.254.170.2", "egress.metadata"),
        ("169.254.0.23", "egress.metadata"),
        ("100.100.100.200", "egress.metadata"),
        ("192.0.0.192", "egress.metadata"),
        ("168.63.129.16", "egress.metadata"),
        ("168.63.129.15", "ok"),
        ("168.63.129.17", "ok"),
        ("169.254.169.253", "egress.reserved_address"),
        ("169.254.169.255", "egress.reserved_address"),
        // public addresses that must stay allowed
        ("8.8.8.8", "ok"),
        ("1.1.1.1", "ok"),
        ("93.184.216.34", "ok"),
        ("151.101.1.69", "ok"),
    ];
    for (addr, expected) in table {
        assert_eq!(code(policy.check_ip(ip(addr))), *expected, "{addr}");
    }
}

#[test]
fn ipv6_range_edges() {
    let policy = EgressPolicy::builder()
        .allow_nat64(true)
        .allow_teredo(true)
        .allow_6to4(true)
        .build()
        .unwrap();
    let table: &[(&str, &str)] = &[
        ("::", "egress.reserved_address"),
        ("::1", "egress.reserved_address"),
        ("::2", "egress.reserved_address"), // compatible 0.0.0.2
        ("100::", "egress.reserved_address"),
        ("100::ffff:ffff:ffff:ffff", "egress.reserved_address"),
        ("100:0:0:1::", "egress.reserved_address"),
        ("100:0:0:2::", "egress.reserved_address"), // outside 2000::/3
        ("2001::", "egress.reserved_address"), // Teredo, client ffff.ffff.. xor → 255.255.255.255
        (
            "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
            "egress.reserved_address",
        ),
        ("2001:200::", "ok"),
        ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "ok"),
        ("2001:db8::", "egress.reserved_address"),
        (
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            "egress.reserved_address",
        ),
        ("2001:db9::", "ok"),
        ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ok"),
        ("3fff::", "egress.reserved_address"),
        (
            "3fff:0fff:ffff:ffff:ffff:ffff:ffff:ffff",
            "egress.reserved_address",
        ),
        ("3fff:1000::", "ok"),
        (
            "5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "egress.reserved_address",
        ), // outside 2000::/3
        ("5f00::", "egress.reserved_address"),
        (
            "5fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "egress.reserved_address",
        ),
        (
            "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "egress.reserved_address",
        ),
        ("2000::", "ok"),
        ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ok"),
        ("4000::", "egress.reserved_address"),
        (
            "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "egress.reserved_address",
        ),
        ("fc00::", "egress.reserved_address"),
        (
            "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "egress.reserved_address",
        ),
        ("fe80::", "egress.reserved_address"),
        (
            "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "egress.reserved_address",
        ),
        ("fec0::", "egress.reserved_address"),
        (
            "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "egress.reserved_address",
        ),
        ("ff00::", "egress.reserved_address"),
        ("ff02::1", "egress.reserved_address"),
        (
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "egress.reserved_address",
        ),
        ("fd00:ec2::254", "egress.metadata"),
        ("fd00:ec2::253", "egress.reserved_address"),
        // public IPv6 that must stay allowed
        ("2606:4700:4700::1111", "ok"),
        ("2a00:1450:4001:80b::200e", "ok"),
        ("2620:fe::fe", "ok"),
    ];
    for (addr, expected) in table {
        assert_eq!(code(policy.check_ip(ip(addr))), *expected, "{addr}");
    }
}

#[test]
fn ipv6_embeddings_are_judged_as_ipv4() {
    // The tunnels are refused wholesale by default (see six_to_four_and_teredo_...); with
    // them turned on, what they carry is judged.
    let policy = EgressPolicy::builder()
        .allow_6to4(true)
        .allow_teredo(true)
        .build()
        .unwrap();
    // (address, expected code, embedded v4 that must appear in the message)
    let table: &[(&str, &str, &str)] = &[
        ("::ffff:127.0.0.1", "egress.reserved_address", "127.0.0.1"),
        ("::ffff:7f00:1", "egress.reserved_address", "127.0.0.1"),
        (
            "::ffff:169.254.169.254",
            "egress.metadata",
            "169.254.169.254",
        ),
        ("::ffff:10.0.0.1", "egress.reserved_address", "10.0.0.1"),
        ("::ffff:0:10.0.0.1", "egress.reserved_address", "10.0.0.1"),
        ("::127.0.0.1", "egress.reserved_address", "127.0.0.1"),
        ("::169.254.169.254", "egress.metadata", "169.254.169.254"),
        ("64:ff9b::127.0.0.1", "egress.reserved_address", "127.0.0.1"),
        ("64:ff9b::a9fe:a9fe", "egress.metadata", "169.254.169.254"),
        ("64:ff9b:1::10.0.0.1", "egress.reserved_address", "10.0.0.1"),
        // RFC 6052 /48 layout: 169.254 in bytes 6-7, 169.254 in bytes 9-10
        (
            "64:ff9b:1:a9fe:a9:fe00::",
            "egress.metadata",
            "169.254.169.254",
        ),
        ("2002:7f00:1::", "egress.reserved_address", "127.0.0.1"),
        ("2002:a9fe:a9fe::1", "egress.metadata", "169.254.169.254"),
        (
            "2002:c0a8:101:1::1",
            "egress.reserved_address",
            "192.168.1.1",
        ),
        // Teredo: client = !last32; !0x80fffffe = 127.0.0.1
        (
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "egress.reserved_address",
            "127.0.0.1",
        ),
        (
            "2001:0:4136:e378:8000:63bf:5601:5601",
            "egress.metadata",
            "169.254.169.254",
        ),
    ];
    for (addr, expected, v4) in table {
        let err = policy.check_ip(ip(addr)).unwrap_err();
        assert_eq!(err.code(), *expected, "{addr}");
        assert!(err.to_string().contains(v4), "{addr}: {err}");
    }
    // the same embeddings of a public address pass (no over-blocking)
    for addr in [
        "::ffff:93.184.216.34",
        "64:ff9b::93.184.216.34",
        "64:ff9b:1::93.184.216.34",
        "2002:5db8:d822::1",
        "2001:0:4136:e378:8000:63bf:a247:27dd", // !0xa24727dd = 93.184.216.34
    ] {
        assert_eq!(code(policy.check_ip(ip(addr))), "ok", "{addr}");
    }
    // unknown layout inside the local-use NAT64 prefix is denied
    assert_eq!(
        code(policy.check_ip(ip("64:ff9b:1:1:1:1:1:1"))),
        "egress.reserved_address"
    );
}

#[test]
fn nat64_can_be_disabled() {
    let policy = EgressPolicy::builder().allow_nat64(false).build().unwrap();
    let err = policy.check_ip(ip("64:ff9b::93.184.216.34")).unwrap_err();
    assert_eq!(err.code(), "egress.reserved_address");
    assert!(err.to_string().contains("allow_nat64"), "{err}");
    assert_eq!(
        code(policy.check_ip(ip("64:ff9b:1::93.184.216.34"))),
        "egress.reserved_address"
    );
    // still metadata, whatever the NAT64 setting
    assert_eq!(
        code(policy.check_ip(ip("64:ff9b::a9fe:a9fe"))),
        "egress.metadata"
    );
    // an explicit allow of the NAT64 prefix re-opens it, but never for metadata
    let policy = EgressPolicy::builder()
        .allow_nat64(false)
        .allow_cidrs(["64:ff9b::/96"])
        .build()
        .unwrap();
    assert_eq!(code(policy.check_ip(ip("64:ff9b::93.184.216.34"))), "ok");
    assert_eq!(
        code(policy.check_ip(ip("64:ff9b::a9fe:a9fe"))),
        "egress.metadata"
    );
}

#[test]
fn precedence_deny_metadata_allow_reserved_public() {
    let policy = EgressPolicy::builder()
        .allow_cidrs([
            "10.0.0.0/8",
            "169.254.0.0/16",
            "8.8.8.0/24",
            "100.100.100.200/32",
        ])
        .deny_cidrs(["10.1.0.0/16", "8.8.8.8", "93.184.216.0/24"])
        .build()
        .unwrap();
    let table: &[(&str, &str)] = &[
        ("10.1.2.3", "egress.denied_cidr"),     // deny beats allow
        ("10.2.0.1", "ok"),                     // allow beats reserved
        ("169.254.1.1", "ok"),                  // allow beats reserved
        ("169.254.169.254", "egress.metadata"), // metadata beats a broader allow
        ("100.100.100.200", "ok"),              // metadata named explicitly
        ("8.8.8.8", "egress.denied_cidr"),      // deny beats allow
        ("8.8.8.9", "ok"),
        ("93.184.216.34", "egress.denied_cidr"), // deny beats public
        ("192.168.1.1", "egress.reserved_address"), // reserved, not allowed
        ("1.1.1.1", "ok"),                       // public
        ("::ffff:10.1.2.3", "egress.denied_cidr"), // deny applies through embeddings
        ("::ffff:10.2.0.1", "ok"),
        ("2002:0a01:0203::", "egress.denied_cidr"), // deny beats the tunnel refusal
        ("2002:0a02:0001::", "egress.ipv6_tunnel"), // an allowed v4 is not a reason to tunnel
    ];
    for (addr, expected) in table {
        assert_eq!(code(policy.check_ip(ip(addr))), *expected, "{addr}");
    }
    // deny beats metadata-named-explicitly too
    let policy = EgressPolicy::builder()
        .allow_cidrs(["169.254.169.254/32"])
        .deny_cidrs(["169.254.0.0/16"])
        .build()
        .unwrap();
    assert_eq!(
        code(policy.check_ip(ip("169.254.169.254"))),
        "egress.denied_cidr"
    );
    let err = policy.check_ip(ip("169.254.169.254")).unwrap_err();
    assert!(err.to_string().contains("169.254.0.0/16"), "{err}");
}

#[test]
fn messages_name_address_and_range() {
    let policy = EgressPolicy::default();
    let err = policy.check_ip(ip("10.9.8.7")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("10.9.8.7") && msg.contains("10.0.0.0/8"),
        "{msg}"
    );
    let err = policy.check_ip(ip("::ffff:169.254.169.254")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("IPv4-mapped") && msg.contains("169.254.169.254/32"),
        "{msg}"
    );
    let err = policy
        .check_with(
            "https://internal.example/",
            &dns(&[("internal.example", &["10.0.0.5"])]),
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("internal.example") && msg.contains("10.0.0.5"),
        "{msg}"
    );
}

#[test]
fn every_ipv4_spelling_is_judged_as_its_address() {
    // 6to4 judged as what it carries here; by default it is refused outright.
    let policy = EgressPolicy::builder()
        .schemes(["http", "https"])
        .allow_6to4(true)
        .build()
        .unwrap();
    for url in [
        "http://127.0.0.1/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.1/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://127.0.1/",
        "http://0177.1/",
        "http://0x7f.0.0.01/",
        "http://017700000001/",
        "http://0x7F.0x00.0x00.0x01/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[0:0:0:0:0:ffff:127.0.0.1]/",
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::127.0.0.1]/",
        "http://[2002:7f00:1::]/",
        "http://127.0.0.1./",
    ] {
        assert_eq!(
            code(policy.check_with(url, &no_dns)),
            "egress.reserved_address",
            "{url}"
        );
    }
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://0251.0376.0251.0376/",
        "http://169.254.43518/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[fd00:ec2::254]/",
    ] {
        assert_eq!(
            code(policy.check_with(url, &no_dns)),
            "egress.metadata",
            "{url}"
        );
    }
    // the canonical URL is what the caller gets
    let dest = http_policy()
        .check_with("http://1572395042/x", &no_dns)
        .unwrap();
    assert_eq!(dest.url.as_str(), "http://93.184.216.34/x");
    assert_eq!(dest.addrs, vec![ip("93.184.216.34")]);
    assert_eq!(dest.host, "93.184.216.34");
}

#[test]
fn strict_mode_url_tricks() {
    let policy = http_policy();
    let table: &[(&str, &str)] = &[
        ("http://user:pass@93.184.216.34/", "egress.userinfo"),
        ("http://@93.184.216.34/", "egress.userinfo"),
        ("http://good.example@evil.example/", "egress.userinfo"),
        ("http://good.example%40evil.example/", "egress.encoded_host"),
        ("http://evil.example\\@good.example/", "egress.backslash"),
        ("http://evil.example\\good.example/", "egress.backslash"),
        ("http:\\\\evil.example/", "egress.backslash"),
        ("http://evil.example\t/", "egress.control_char"),
        ("http://ev\nil.example/", "egress.control_char"),
        (" http://evil.example/", "egress.control_char"),
        ("http://evil.example/ ", "egress.control_char"),
        ("http://evil.example/\u{0}", "egress.control_char"),
        ("http://evil.example/a\u{a0}b", "egress.control_char"),
        ("http://ex%61mple.com/", "egress.encoded_host"),
        ("http://%31%32%37.0.0.1/", "egress.encoded_host"),
        ("http://example\u{3002}com/", "egress.encoded_host"),
        ("http://example\u{ff0e}com/", "egress.encoded_host"),
        ("http://example\u{ff61}com/", "egress.encoded_host"),
        ("http://not a url/", "egress.control_char"),
        ("http:///", "egress.bad_url"),
        ("http://1.2.3.4.5/", "egress.bad_url"),
        ("http://256.0.0.1/", "egress.bad_url"),
        ("http://[::1/", "egress.bad_url"),
        ("", "egress.bad_url"),
        ("relative/path", "egress.bad_url"),
    ];
    for (url, expected) in table {
        assert_eq!(code(policy.check_with(url, &no_dns)), *expected, "{url:?}");
    }
    // too long
    let long = format!("https://93.184.216.34/{}", "a".repeat(9000));
    assert_eq!(code(policy.check_url(&long)), "egress.bad_url");
}

#[test]
fn fragment_and_query_tricks_judge_the_real_host() {
    let policy = EgressPolicy::builder()
        .schemes(["http", "https"])
        .allow_hosts(["good.example"])
        .build()
        .unwrap();
    let resolver = dns(&[
        ("good.example", &["93.184.216.34"]),
        ("evil.example", &["6.6.6.6"]),
    ]);
    assert_eq!(
        code(policy.check_with("http://evil.example#@good.example", &resolver)),
        "egress.host_not_allowed"
    );
    assert_eq!(
        code(policy.check_with("http://evil.example?@good.example", &resolver)),
        "egress.host_not_allowed"
    );
    assert_eq!(
        code(policy.check_with("http://evil.example/good.example", &resolver)),
        "egress.host_not_allowed"
    );
    assert_eq!(
        code(policy.check_with("http://good.example.evil.example/", &resolver)),
        "egress.host_not_allowed"
    );
    let dest = policy
        .check_with("http://good.example#@evil.example", &resolver)
        .unwrap();
    assert_eq!(dest.host, "good.example");
    let dest = policy
        .check_with("http://good.example/?next=http://evil.example/", &resolver)
        .unwrap();
    assert_eq!(dest.addrs, vec![ip("93.184.216.34")]);
}

#[test]
fn lax_mode_still_judges_the_parsed_host() {
    let policy = EgressPolicy::builder()
        .schemes(["http"])
        .strict(false)
        .build()
        .unwrap();
    // the parser repairs these; the address is still judged
    assert_eq!(
        code(policy.check_with("http://%31%32%37.0.0.1/", &no_dns)),
        "egress.reserved_address"
    );
    assert_eq!(
        code(policy.check_with("http://user@127.0.0.1/", &no_dns)),
        "egress.reserved_address"
    );
    assert_eq!(
        code(policy.check_with(" http:\\\\127.0.0.1\\", &no_dns)),
        "egress.reserved_address"
    );
    assert_eq!(
        code(policy.check_with("http://\u{ff11}\u{ff12}\u{ff17}\u{3002}0.0.1/", &no_dns)),
        "egress.reserved_address"
    );
    assert_eq!(
        code(policy.check_with("http://user@93.184.216.34/", &no_dns)),
        "ok"
    );
}

#[test]
fn host_patterns() {
    let policy = EgressPolicy::builder()
        .allow_hosts([
            "api.example.com",
            "*.example.org",
            "BÜCHER.de.",
            "93.184.216.34",
            "[2606:4700::1111]",
        ])
        .deny_hosts(["*.bad.example.org", "legacy.example.org"])
        .build()
        .unwrap();
    let resolver = |_: &str| -> io::Result<Vec<IpAddr>> { Ok(vec![ip("93.184.216.34")]) };
    let table: &[(&str, &str)] = &[
        ("https://api.example.com/", "ok"),
        ("https://API.Example.COM/", "ok"),
        ("https://api.example.com./", "ok"),
        (
            "https://api.example.com.evil.com/",
            "egress.host_not_allowed",
        ),
        ("https://evilapi.example.com/", "egress.host_not_allowed"),
        ("https://x.api.example.com/", "egress.host_not_allowed"),
        ("https://example.com/", "egress.host_not_allowed"),
        ("https://a.example.org/", "ok"),
        ("https://a.b.example.org/", "ok"),
        ("https://A.EXAMPLE.ORG./", "ok"),
        ("https://example.org/", "egress.host_not_allowed"),
        ("https://evilexample.org/", "egress.host_not_allowed"),
        ("https://.example.org/", "egress.bad_url"), // empty label
        ("https://example.org.evil.com/", "egress.host_not_allowed"),
        ("https://x.bad.example.org/", "egress.host_denied"),
        ("https://legacy.example.org/", "egress.host_denied"),
        ("https://bücher.de/", "ok"),
        ("https://xn--bcher-kva.de/", "ok"),
        ("https://BÜCHER.DE./", "ok"),
        ("https://bucher.de/", "egress.host_not_allowed"),
        ("https://93.184.216.34/", "ok"),
        ("https://1572395042/", "ok"),
        ("https://93.184.216.35/", "egress.host_not_allowed"),
        ("https://[2606:4700::1111]/", "ok"),
        ("https://[2606:4700::1112]/", "egress.host_not_allowed"),
        ("https://metadata.google.internal/", "egress.metadata"),
    ];
    for (url, expected) in table {
        assert_eq!(code(policy.check_with(url, &resolver)), *expected, "{url}");
    }
    let dest = policy
        .check_with("https://BÜCHER.de./x", &resolver)
        .unwrap();
    assert_eq!(dest.host, "xn--bcher-kva.de");
}

#[test]
fn metadata_names() {
    let resolver = |_: &str| -> io::Result<Vec<IpAddr>> { Ok(vec![ip("93.184.216.34")]) };
    let open = http_policy();
    for url in [
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.GOOGLE.INTERNAL./",
        "http://metadata/",
        "http://metadata.goog/",
        "http://instance-data/",
        "http://instance-data.ec2.internal/",
    ] {
        assert_eq!(
            code(open.check_with(url, &resolver)),
            "egress.metadata",
            "{url}"
        );
    }
    // a wildcard does not open a metadata name; an exact entry does
    let wildcard = EgressPolicy::builder()
        .schemes(["http"])
        .allow_hosts(["*.google.internal"])
        .build()
        .unwrap();
    assert_eq!(
        code(wildcard.check_with("http://metadata.google.internal/", &resolver)),
        "egress.metadata"
    );
    let exact = EgressPolicy::builder()
        .schemes(["http"])
        .allow_hosts(["metadata.google.internal"])
        .build()
        .unwrap();
    assert_eq!(
        code(exact.check_with("http://metadata.google.internal/", &resolver)),
        "ok"
    );
    // ...but its address is still judged
    let to_meta = |_: &str| -> io::Result<Vec<IpAddr>> { Ok(vec![ip("169.254.169.254")]) };
    assert_eq!(
        code(exact.check_with("http://metadata.google.internal/", &to_meta)),
        "egress.metadata"
    );
}

#[test]
fn schemes_and_ports() {
    let resolver = |_: &str| -> io::Result<Vec<IpAddr>> { Ok(vec![ip("93.184.216.34")]) };
    let default = EgressPolicy::default();
    let table: &[(&str, &str)] = &[
        ("https://example.com/", "ok"),
        ("https://example.com:443/", "ok"),
        ("HTTPS://example.com/", "ok"),
        ("http://example.com/", "egress.scheme"),
        ("https://example.com:8443/", "egress.port"),
        ("https://example.com:80/", "egress.port"),
        ("ftp://example.com/", "egress.scheme"),
        ("file:///etc/passwd", "egress.scheme"),
        ("gopher://example.com:70/", "egress.scheme"),
        ("javascript:alert(1)", "egress.scheme"),
        ("data:text/plain,hi", "egress.scheme"),
        ("dict://example.com:11211/", "egress.scheme"),
        ("https://example.com:0/", "egress.port"),
        ("https://example.com:65536/", "egress.bad_url"),
    ];
    for (url, expected) in table {
        assert_eq!(code(default.check_with(url, &resolver)), *expected, "{url}");
    }
    let http = http_policy();
    assert_eq!(
        code(http.check_with("http://example.com/", &resolver)),
        "ok"
    );
    assert_eq!(
        code(http.check_with("http://example.com:8080/", &resolver)),
        "egress.port"
    );
    let ports = EgressPolicy::builder().ports([8443]).build().unwrap();
    assert_eq!(
        code(ports.check_with("https://example.com:8443/", &resolver)),
        "ok"
    );
    assert_eq!(
        code(ports.check_with("https://example.com/", &resolver)),
        "egress.port"
    );
}

#[test]
fn invalid_policies_are_refused() {
    for builder in [
        EgressPolicy::builder().schemes(["ftp"]),
        EgressPolicy::builder().schemes(Vec::<String>::new()),
        EgressPolicy::builder().ports([0]),
        EgressPolicy::builder().ports([]),
        EgressPolicy::builder().allow_hosts(["*"]),
        EgressPolicy::builder().allow_hosts(["a.*.example"]),
        EgressPolicy::builder().allow_hosts(["*.*.example"]),
        EgressPolicy::builder().allow_hosts(["*.10.0.0.1"]),
        EgressPolicy::builder().allow_hosts([""]),
        EgressPolicy::builder().deny_hosts(["bad host"]),
        EgressPolicy::builder().allow_cidrs(["10.0.0.0/33"]),
        EgressPolicy::builder().deny_cidrs(["nonsense"]),
    ] {
        assert_eq!(code(builder.build()), "egress.invalid_policy");
    }
    // host bits in a CIDR are truncated, bare addresses are /32 or /128
    let policy = EgressPolicy::builder()
        .allow_cidrs(["10.1.2.3/16", "fd00::1"])
        .build()
        .unwrap();
    assert_eq!(code(policy.check_ip(ip("10.1.200.1"))), "ok");
    assert_eq!(code(policy.check_ip(ip("fd00::1"))), "ok");
    assert_eq!(
        code(policy.check_ip(ip("fd00::2"))),
        "egress.reserved_address"
    );
}

#[test]
fn dns_answers_must_all_pass() {
    let policy = EgressPolicy::default();
    let resolver = dns(&[
        (
            "good.example",
            &["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
        ),
        ("mixed.example", &["93.184.216.34", "10.0.0.1"]),
        ("mixed6.example", &["93.184.216.34", "::ffff:127.0.0.1"]),
        ("meta.example", &["169.254.169.254"]),
        ("loop.example", &["::1"]),
        ("empty.example", &[]),
        ("dup.example", &["93.184.216.34", "93.184.216.34"]),
    ]);
    let dest = policy
        .check_with("https://good.example/", &resolver)
        .unwrap();
    assert_eq!(dest.addrs.len(), 2);
    assert_eq!(dest.socket_addrs()[0].port(), 443);
    assert_eq!(
        code(policy.check_with("https://mixed.example/", &resolver)),
        "egress.reserved_address"
    );
    assert_eq!(
        code(policy.check_with("https://mixed6.example/", &resolver)),
        "egress.reserved_address"
    );
    assert_eq!(
        code(policy.check_with("https://meta.example/", &resolver)),
        "egress.metadata"
    );
    assert_eq!(
        code(policy.check_with("https://loop.example/", &resolver)),
        "egress.reserved_address"
    );
    assert_eq!(
        code(policy.check_with("https://empty.example/", &resolver)),
        "egress.resolve_failed"
    );
    assert_eq!(
        code(policy.check_with("https://nxdomain.example/", &resolver)),
        "egress.resolve_failed"
    );
    assert_eq!(
        policy
            .check_with("https://dup.example/", &resolver)
            .unwrap()
            .addrs
            .len(),
        1
    );
    // allow_cidrs opens the internal answer; deny_cidrs closes a public one
    let internal = EgressPolicy::builder()
        .allow_cidrs(["10.0.0.0/24"])
        .build()
        .unwrap();
    assert_eq!(
        internal
            .check_with("https://mixed.example/", &resolver)
            .unwrap()
            .addrs
            .len(),
        2
    );
    let deny = EgressPolicy::builder()
        .deny_cidrs(["93.184.216.0/24"])
        .build()
        .unwrap();
    assert_eq!(
        code(deny.check_with("https://good.example/", &resolver)),
        "egress.denied_cidr"
    );
}

#[test]
fn resolver_is_asked_for_the_normalised_name() {
    let policy = EgressPolicy::default();
    let seen = std::cell::RefCell::new(Vec::new());
    let resolver = |host: &str| -> io::Result<Vec<IpAddr>> {
        seen.borrow_mut().push(host.to_owned());
        Ok(vec![ip("93.184.216.34")])
    };
    policy
        .check_with("https://WWW.Bücher.DE./", &resolver)
        .unwrap();
    policy
        .check_with("https://93.184.216.34/", &resolver)
        .unwrap();
    assert_eq!(*seen.borrow(), vec!["www.xn--bcher-kva.de".to_owned()]);
}

#[test]
fn redirects_are_rechecked_hop_by_hop() {
    let policy = EgressPolicy::builder()
        .schemes(["http", "https"])
        .allow_hosts(["api.example.com", "cdn.example.com"])
        .build()
        .unwrap();
    let resolver = dns(&[
        ("api.example.com", &["93.184.216.34"]),
        ("cdn.example.com", &["151.101.1.69"]),
    ]);
    let from = Url::parse("https://api.example.com/v1/items?page=2").unwrap();
    let table: &[(&str, &str)] = &[
        ("/v1/other", "ok"),
        ("other", "ok"),
        ("?page=3", "ok"),
        ("https://cdn.example.com/x", "ok"),
        ("//cdn.example.com/x", "ok"),
        ("http://cdn.example.com/x", "egress.downgrade"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "egress.downgrade",
        ),
        (
            "https://169.254.169.254/latest/meta-data/",
            "egress.host_not_allowed",
        ),
        ("https://evil.example.com/", "egress.host_not_allowed"),
        ("https://api.example.com:8443/", "egress.port"),
        ("https://user@cdn.example.com/", "egress.userinfo"),
        ("https:\\\\evil.example.com", "egress.backslash"),
        ("ftp://cdn.example.com/", "egress.scheme"),
        ("https://[::1", "egress.bad_url"),
    ];
    for (location, expected) in table {
        assert_eq!(
            code(policy.check_redirect_with(&from, location, &resolver)),
            *expected,
            "{location}"
        );
    }
    let dest = policy
        .check_redirect_with(&from, "../v2/x#frag", &resolver)
        .unwrap();
    assert_eq!(dest.url.as_str(), "https://api.example.com/v2/x#frag");

    // Without a host allowlist, internal targets are refused by address.
    let open = http_policy();
    let from = Url::parse("http://93.184.216.34/start").unwrap();
    let internal = dns(&[("internal.example", &["192.168.0.10"])]);
    for (location, expected) in [
        ("http://127.0.0.1/", "egress.reserved_address"),
        ("http://2130706433/", "egress.reserved_address"),
        ("http://[::ffff:127.0.0.1]/", "egress.reserved_address"),
        ("//169.254.169.254/latest/meta-data/", "egress.metadata"),
        ("http://metadata.google.internal/", "egress.metadata"),
        ("http://internal.example/", "egress.reserved_address"),
        ("https://internal.example/", "egress.reserved_address"),
        ("/same-host", "ok"),
    ] {
        assert_eq!(
            code(open.check_redirect_with(&from, location, &internal)),
            expected,
            "{location}"
        );
    }
}

#[test]
fn legitimate_urls_stay_allowed() {
    let policy = EgressPolicy::default();
    let resolver = dns(&[
        (
            "example.com",
            &["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
        ),
        ("api.github.com", &["140.82.121.6"]),
        ("xn--bcher-kva.de", &["81.169.145.78"]),
        ("s3.us-east-1.amazonaws.com", &["52.216.0.1"]),
        ("a-b_c.example.com", &["93.184.216.34"]),
    ]);
    for url in [
        "https://example.com",
        "https://example.com/",
        "https://example.com/path/to?query=1&x=%2F#frag",
        "https://example.com/a%20b",
        "https://example.com/?redirect=http://127.0.0.1/",
        "https://example.com/?q=a\\b",
        "https://EXAMPLE.com:443/",
        "https://api.github.com/repos/x/y",
        "https://bücher.de/",
        "https://s3.us-east-1.amazonaws.com/bucket/key",
        "https://a-b_c.example.com/",
        "https://[2606:4700:4700::1111]/dns-query",
        "https://1.1.1.1/",
        "https://[::ffff:93.184.216.34]/",
        "https://[64:ff9b::93.184.216.34]/",
        "https://168.63.129.17/",
        "https://100.128.0.1/",
        "https://172.32.0.1/",
        "https://192.169.0.1/",
    ] {
        let result = policy.check_with(url, &resolver);
        assert!(result.is_ok(), "{url}: {:?}", result.err());
    }
}

#[test]
fn destination_pins_every_checked_answer() {
    let policy = EgressPolicy::default();
    let resolver = dns(&[(
        "example.com",
        &["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    )]);
    let dest = policy
        .check_with("https://example.com:443/x", &resolver)
        .unwrap();
    assert_eq!(dest.host, "example.com");
    assert_eq!(dest.port, 443);
    assert_eq!(dest.url.as_str(), "https://example.com/x");
    assert_eq!(
        dest.addrs,
        vec![
            IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34)),
            IpAddr::V6(
                "2606:2800:220:1:248:1893:25c8:1946"
                    .parse::<Ipv6Addr>()
                    .unwrap()
            )
        ]
    );
    // the two-phase API gives the same result
    let pending = policy.check_url("https://example.com:443/x").unwrap();
    assert_eq!(pending.resolve_name(), Some("example.com"));
    let again = policy
        .check_answers(pending, resolver("example.com").unwrap())
        .unwrap();
    assert_eq!(again, dest);
    // a bad answer fed to the second phase is still judged
    let pending = policy.check_url("https://example.com/").unwrap();
    assert_eq!(
        code(policy.check_answers(pending, vec![ip("10.0.0.1")])),
        "egress.reserved_address"
    );
}

#[test]
fn error_codes_are_distinct_and_stable() {
    let policy = http_policy();
    let codes: Vec<&str> = [
        "http://user@x.example/",
        "http://x.example\\y/",
        "http://x.example/\t",
        "http://%78.example/",
        "ftp://x.example/",
        "http://x.example:81/",
        "http://127.0.0.1/",
        "http://169.254.169.254/",
        "::",
    ]
    .iter()
    .map(|u| code(policy.check_with(u, &no_dns)))
    .collect();
    assert_eq!(
        codes,
        [
            "egress.userinfo",
            "egress.backslash",
            "egress.control_char",
            "egress.encoded_host",
            "egress.scheme",
            "egress.port",
            "egress.reserved_address",
            "egress.metadata",
            "egress.bad_url",
        ]
    );
}

#[test]
fn the_name_is_resolved_once_and_the_answers_are_pinned() {
    // A rebinding resolver: public on the first query, loopback afterwards. The check asks
    // once, and the Destination carries that answer; the caller never resolves again.
    let calls = std::cell::Cell::new(0);
    let rebinding = |_: &str| -> io::Result<Vec<IpAddr>> {
        calls.set(calls.get() + 1);
        Ok(vec![if calls.get() == 1 {
            ip("93.184.216.34")
        } else {
            ip("127.0.0.1")
        }])
    };
    let policy = EgressPolicy::default();
    let dest = policy
        .check_with("https://rebind.example/", &rebinding)
        .unwrap();
    assert_eq!(calls.get(), 1);
    assert_eq!(dest.addrs, vec![ip("93.184.216.34")]);
    // the second (rebound) answer is refused when asked again
    assert_eq!(
        code(policy.check_with("https://rebind.example/", &rebinding)),
        "egress.reserved_address"
    );
}

#[test]
fn websocket_schemes_and_their_downgrade() {
    let policy = EgressPolicy::builder()
        .schemes(["wss", "ws"])
        .build()
        .unwrap();
    let resolver = |_: &str| -> io::Result<Vec<IpAddr>> { Ok(vec![ip("93.184.216.34")]) };
    assert_eq!(
        policy
            .check_with("wss://example.com/socket", &resolver)
            .unwrap()
            .port,
        443
    );
    assert_eq!(
        policy
            .check_with("ws://example.com/socket", &resolver)
            .unwrap()
            .port,
        80
    );
    assert_eq!(
        code(policy.check_with("https://example.com/", &resolver)),
        "egress.scheme"
    );
    let from = Url::parse("wss://example.com/a").unwrap();
    assert_eq!(
        code(policy.check_redirect_with(&from, "ws://example.com/b", &resolver)),
        "egress.downgrade"
    );
}

#[test]
fn strict_checks_happen_before_the_parser_repairs_the_input() {
    // Each of these parses to an innocent-looking URL; strict mode refuses the raw text.
    let policy = http_policy();
    for (raw, repaired_host) in [
        ("http://@93.184.216.34/", "93.184.216.34"),
        ("http://93.184.216.34\t/", "93.184.216.34"),
        ("http:\\\\93.184.216.34\\", "93.184.216.34"),
        ("http://%39%33.184.216.34/", "93.184.216.34"),
    ] {
        let parsed = Url::parse(raw).unwrap();
        assert_eq!(parsed.host_str(), Some(repaired_host), "{raw:?}");
        assert!(policy.check_with(raw, &no_dns).is_err(), "{raw:?}");
    }
}

#[test]
fn policies_and_destinations_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<EgressPolicy>();
    assert_send_sync::<portcullis::egress::Destination>();
    assert_send_sync::<EgressError>();
}

#[test]
fn mapped_answers_are_pinned_as_the_ipv4_they_were_judged_as() {
    let policy = http_policy();
    let literal = policy
        .check_with("http://[::ffff:93.184.216.34]/", &no_dns)
        .unwrap();
    assert_eq!(literal.addrs, vec![ip("93.184.216.34")]);
    let resolver = dns(&[(
        "dual.example",
        &["::ffff:93.184.216.34", "93.184.216.34", "2606:4700::1111"],
    )]);
    let named = policy
        .check_with("http://dual.example/", &resolver)
        .unwrap();
    assert_eq!(
        named.addrs,
        vec![ip("93.184.216.34"), ip("2606:4700::1111")]
    );
    // NAT64 is not a mapping: the gateway address is what the socket must reach.
    let nat64 = policy
        .check_with("http://[64:ff9b::5db8:d822]/", &no_dns)
        .unwrap();
    assert_eq!(nat64.addrs, vec![ip("64:ff9b::5db8:d822")]);
}

#[test]
fn host_rules_see_every_trailing_dot_spelling() {
    // Resolvers read "vault.corp.example.." as "vault.corp.example": a name with an empty
    // label must not dodge a deny rule, a metadata name or an allow rule. One trailing dot
    // (the DNS root) stays a legitimate spelling of the same name.
    let resolver = |_: &str| -> io::Result<Vec<IpAddr>> { Ok(vec![ip("93.184.216.34")]) };
    let deny = EgressPolicy::builder()
        .schemes(["http", "https"])
        .deny_hosts(["vault.corp.example", "*.secret.example"])
        .build()
        .unwrap();
    let allow = EgressPolicy::builder()
        .schemes(["http", "https"])
        .allow_hosts(["api.example.com", "*.cdn.example.com"])
        .build()
        .unwrap();
    let lax = EgressPolicy::builder()
        .schemes(["http", "https"])
        .deny_hosts(["vault.corp.example"])
        .strict(false)
        .build()
        .unwrap();
    let table: &[(&EgressPolicy, &str, &str)] = &[
        (&deny, "http://vault.corp.example/", "egress.host_denied"),
        (&deny, "http://vault.corp.example./", "egress.host_denied"),
        (&deny, "http://VAULT.corp.example./", "egress.host_denied"),
        (&deny, "http://vault.corp.example../", "egress.bad_url"),
        (&deny, "http://vault.corp.example.../", "egress.bad_url"),
        (&deny, "http://vault.corp.example..:80/", "egress.bad_url"),
        (&deny, "http://vault..corp.example/", "egress.bad_url"),
        (&deny, "http://.vault.corp.example/", "egress.bad_url"),
        (&deny, "http://x.secret.example../", "egress.bad_url"),
        (&deny, "http://x.secret.example./", "egress.host_denied"),
        (
            &deny,
            "http://metadata.google.internal./",
            "egress.metadata",
        ),
        (
            &deny,
            "http://metadata.google.internal../",
            "egress.bad_url",
        ),
        (&deny, "http://metadata..google.internal/", "egress.bad_url"),
        (&deny, "http://metadata../", "egress.bad_url"),
        (&deny, "http://instance-data../", "egress.bad_url"),
        (&deny, "http://../", "egress.bad_url"),
        (&allow, "https://api.example.com/", "ok"),
        (&allow, "https://api.example.com./", "ok"),
        (&allow, "https://api.example.com../", "egress.bad_url"),
        (&allow, "https://a.cdn.example.com./", "ok"),
        (&allow, "https://a.cdn.example.com../", "egress.bad_url"),
        (&allow, "https://a..cdn.example.com/", "egress.bad_url"),
        // lax mode: the parser decodes %2e and IDNA maps full stops; same rule after it
        (&lax, "http://vault.corp.example%2e%2e/", "egress.bad_url"),
        (
            &lax,
            "http://vault.corp.example\u{3002}\u{3002}/",
            "egress.bad_url",
        ),
        (
            &lax,
            "http://vault.corp.example\u{3002}/",
            "egress.host_denied",
        ),
        (&lax, "http://vault.corp.example../", "egress.bad_url"),
    ];
    for (policy, url, expected) in table {
        assert_eq!(code(policy.check_with(url, &resolver)), *expected, "{url}");
    }
    let err = deny
        .check_with("http://vault.corp.example../", &resolver)
        .unwrap_err();
    assert!(err.to_string().contains("empty label"), "{err}");
    // a redirect is the same URL check
    let from = Url::parse("http://93.184.216.34/").unwrap();
    assert_eq!(
        code(deny.check_redirect_with(&from, "//vault.corp.example../", &resolver)),
        "egress.bad_url"
    );
    // the resolver and the Destination see the name without the root dot
    let dest = allow
        .check_with("https://API.example.com./x", &resolver)
        .unwrap();
    assert_eq!(dest.host, "api.example.com");
}

#[test]
fn host_patterns_follow_the_same_name_rule() {
    for bad in [
        "vault.corp.example..",
        "vault..corp.example",
        ".vault.corp.example",
        "*..example.com",
        "*.example.com..",
        "..",
        ".",
    ] {
        for builder in [
            EgressPolicy::builder().deny_hosts([bad]),
            EgressPolicy::builder().allow_hosts([bad]),
        ] {
            let err = builder.build().unwrap_err();
            assert_eq!(err.code(), "egress.invalid_policy", "{bad}");
        }
    }
    // one trailing dot in a pattern is the same name
    let policy = EgressPolicy::builder()
        .deny_hosts(["vault.corp.example.", "*.secret.example."])
        .build()
        .unwrap();
    let resolver = |_: &str| -> io::Result<Vec<IpAddr>> { Ok(vec![ip("93.184.216.34")]) };
    for url in [
        "https://vault.corp.example/",
        "https://vault.corp.example./",
        "https://a.secret.example/",
    ] {
        assert_eq!(
            code(policy.check_with(url, &resolver)),
            "egress.host_denied",
            "{url}"
        );
    }
}

#[test]
fn six_to_four_and_teredo_are_refused_wholesale_by_default() {
    let policy = EgressPolicy::default();
    // (address, carried IPv4 that the message names)
    for (addr, v4) in [
        ("2002:808:808::", "8.8.8.8"),
        ("2002:5db8:d822::1", "93.184.216.34"),
        ("2002:7f00:1::", "127.0.0.1"),
        ("2002::", "0.0.0.0"),
        ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "255.255.255.255"),
        ("2001:0:4136:e378:8000:63bf:a247:27dd", "93.184.216.34"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),
        ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "0.0.0.0"),
    ] {
        let err = policy.check_ip(ip(addr)).unwrap_err();
        assert_eq!(err.code(), "egress.ipv6_tunnel", "{addr}");
        let text = err.to_string();
        assert!(text.contains(v4), "{addr}: {text}");
        let option = if addr.starts_with("2002") {
            "allow_6to4"
        } else {
            "allow_teredo"
        };
        assert!(text.contains(option), "{addr}: {text}");
    }
    // as URL literals and as DNS answers too
    assert_eq!(
        code(policy.check_url("https://[2002:808:808::]/")),
        "egress.ipv6_tunnel"
    );
    let to_6to4 = |_: &str| -> io::Result<Vec<IpAddr>> { Ok(vec![ip("2002:808:808::1")]) };
    let err = policy
        .check_with("https://six.example/", &to_6to4)
        .unwrap_err();
    assert_eq!(err.code(), "egress.ipv6_tunnel");
    assert!(err.to_string().contains("six.example"), "{err}");
    // metadata and deny_cidrs keep their own, earlier verdicts
    assert_eq!(
        code(policy.check_ip(ip("2002:a9fe:a9fe::"))),
        "egress.metadata"
    );
    // the neighbours of the tunnel prefixes are not tunnels
    assert_eq!(code(policy.check_ip(ip("2003::1"))), "ok");
    assert_eq!(
        code(policy.check_ip(ip("2001:1::1"))),
        "egress.reserved_address"
    );
    // each carrier is its own option
    let six = EgressPolicy::builder().allow_6to4(true).build().unwrap();
    assert_eq!(code(six.check_ip(ip("2002:808:808::"))), "ok");
    assert_eq!(
        code(six.check_ip(ip("2002:7f00:1::"))),
        "egress.reserved_address"
    );
    assert_eq!(
        code(six.check_ip(ip("2001:0:4136:e378:8000:63bf:a247:27dd"))),
        "egress.ipv6_tunnel"
    );
    let teredo = EgressPolicy::builder().allow_teredo(true).build().unwrap();
    assert_eq!(
        code(teredo.check_ip(ip("2001:0:4136:e378:8000:63bf:a247:27dd"))),
        "ok"
    );
    assert_eq!(
        code(teredo.check_ip(ip("2002:808:808::"))),
        "egress.ipv6_tunnel"
    );
    // an allow_cidrs entry over the IPv6 form re-opens the carrier, never what it carries
    let reopened = EgressPolicy::builder()
        .allow_cidrs(["2002::/16", "2001::/32"])
        .build()
        .unwrap();
    assert_eq!(code(reopened.check_ip(ip("2002:808:808::"))), "ok");
    assert_eq!(
        code(reopened.check_ip(ip("2002:7f00:1::"))),
        "egress.reserved_address"
    );
    assert_eq!(
        code(reopened.check_ip(ip("2001:0:4136:e378:8000:63bf:80ff:fffe"))),
        "egress.reserved_address"
    );
}

#[test]
fn disabling_a_carrier_never_opens_what_it_carries() {
    // allow_nat64: false plus an allow_cidrs entry for the NAT64 prefix used to wave
    // 64:ff9b::7f00:1 (127.0.0.1) through, while NAT64 on refused it.
    let on = EgressPolicy::default();
    let off_reopened = EgressPolicy::builder()
        .allow_nat64(false)
        .allow_cidrs(["64:ff9b::/96", "64:ff9b:1::/48"])
        .build()
        .unwrap();
    let off_host = EgressPolicy::builder()
        .allow_nat64(false)
        .allow_cidrs(["64:ff9b::7f00:1/128"])
        .build()
        .unwrap();
    for addr in [
        "64:ff9b::7f00:1",
        "64:ff9b::10.0.0.1",
        "64:ff9b::192.168.1.1",
        "64:ff9b:1::127.0.0.1",
        "64:ff9b::a9fe:a9fe",
    ] {
        let expected = code(on.check_ip(ip(addr)));
        assert_ne!(expected, "ok", "{addr}");
        assert_eq!(code(off_reopened.check_ip(ip(addr))), expected, "{addr}");
        assert_eq!(code(off_host.check_ip(ip(addr))), expected, "{addr}");
    }
    assert_eq!(
        code(off_reopened.check_ip(ip("64:ff9b::93.184.216.34"))),
        "ok"
    );
    // the IPv4 address itself opens it, in every spelling
    let v4_allowed = EgressPolicy::builder()
        .allow_nat64(false)
        .allow_cidrs(["64:ff9b::/96", "10.0.0.0/8"])
        .build()
        .unwrap();
    assert_eq!(code(v4_allowed.check_ip(ip("64:ff9b::10.0.0.1"))), "ok");
    assert_eq!(code(v4_allowed.check_ip(ip("10.0.0.1"))), "ok");
}

#[test]
fn destination_request_target_is_the_canonical_path_and_query() {
    let policy = EgressPolicy::default();
    for (url, target) in [
        ("https://93.184.216.34", "/"),
        ("https://93.184.216.34/a|b", "/a|b"),
        ("https://93.184.216.34/%zz", "/%zz"),
        ("https://93.184.216.34/a b", "/a%20b"),
        ("https://93.184.216.34/x/../y?q=1&r=%zz#f", "/y?q=1&r=%zz"),
        ("https://93.184.216.34/?", "/?"),
        ("https://93.184.216.34/\u{e9}", "/%C3%A9"),
    ] {
        let strictness = EgressPolicy::builder().strict(false).build().unwrap();
        let dest = strictness.check_with(url, &no_dns).unwrap();
        assert_eq!(dest.request_target(), target, "{url}");
        if !url.contains(' ') {
            assert_eq!(
                policy.check_with(url, &no_dns).unwrap().request_target(),
                target
            );
        }
    }
}
