use std::net::SocketAddr;
use std::sync::Arc;

use super::*;

fn guard(egress: EgressPolicy, mode: Mode) -> GuardPolicy {
    let options = GuardOptions {
        mode,
        nameservers: vec!["10.255.255.53".parse().unwrap()],
        ..GuardOptions::default()
    };
    GuardPolicy::new(Arc::new(egress), options).unwrap()
}

fn code(v: &Verdict) -> Option<&'static str> {
    match v {
        Verdict::Refused(e) | Verdict::Reported(e) => Some(e.code()),
        _ => None,
    }
}

fn sa(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn loopback_in_every_carrier_is_refused_by_default() {
    let g = guard(EgressPolicy::default(), Mode::Enforce);
    for addr in [
        "127.0.0.1:80",
        "127.255.255.254:80",
        "[::1]:80",
        "[::ffff:127.0.0.1]:80",
        "[::127.0.0.1]:80",
        "[64:ff9b::7f00:1]:80",
        "[2002:7f00:1::]:80",
        "10.0.0.1:80",
        "192.168.1.1:80",
        "[fe80::1]:80",
        "[fc00::1]:80",
    ] {
        let v = g.judge_connect(sa(addr), None);
        // 6to4 is refused wholesale by default (RFC 7526), before its IPv4 is looked at
        let expected = if addr.starts_with("[2002:") {
            "egress.ipv6_tunnel"
        } else {
            "egress.reserved_address"
        };
        assert_eq!(code(&v), Some(expected), "{addr}: {v:?}");
        assert!(matches!(v, Verdict::Refused(_)), "{addr}");
    }
    assert_eq!(
        g.judge_connect(sa("93.184.216.34:25"), None),
        Verdict::Allowed
    );
}

#[test]
fn unspecified_addresses_are_a_floor_even_when_allowed() {
    let open = EgressPolicy::builder()
        .allow_cidrs(["0.0.0.0/0", "::/0"])
        .build()
        .unwrap();
    for mode in [Mode::Enforce, Mode::Report] {
        let g = guard(open.clone(), mode);
        for addr in ["0.0.0.0:80", "0.1.2.3:80", "[::]:80", "[::ffff:0.0.0.0]:80"] {
            let v = g.judge_connect(sa(addr), None);
            assert!(matches!(v, Verdict::Refused(_)), "{addr} {mode:?}: {v:?}");
            assert_eq!(code(&v), Some("egress.reserved_address"));
        }
        assert_eq!(g.judge_connect(sa("127.0.0.1:80"), None), Verdict::Allowed);
    }
}

#[test]
fn report_mode_reports_but_metadata_stays_refused() {
    let g = guard(EgressPolicy::default(), Mode::Report);
    assert!(matches!(
        g.judge_connect(sa("127.0.0.1:80"), None),
        Verdict::Reported(_)
    ));
    for addr in [
        "169.254.169.254:80",
        "[::ffff:169.254.169.254]:80",
        "[fd00:ec2::254]:80",
        "100.100.100.200:80",
    ] {
        let v = g.judge_connect(sa(addr), None);
        assert!(matches!(v, Verdict::Refused(_)), "{addr}: {v:?}");
        assert_eq!(code(&v), Some("egress.metadata"));
    }
    let v = g.judge_connect(sa("93.184.216.34:80"), Some("metadata.google.internal"));
    assert!(matches!(v, Verdict::Refused(_)), "{v:?}");
}

#[test]
fn host_rules_apply_when_the_name_is_known() {
    let egress = EgressPolicy::builder()
        .allow_hosts(["api.example.com"])
        .allow_cidrs(["127.0.0.0/8"])
        .build()
        .unwrap();
    let g = guard(egress, Mode::Enforce);
    assert_eq!(
        g.judge_connect(sa("93.184.216.34:443"), Some("api.example.com")),
        Verdict::Allowed
    );
    let v = g.judge_connect(sa("93.184.216.34:443"), Some("evil.example.com"));
    assert_eq!(code(&v), Some("egress.host_not_allowed"));
    // No name known: with a host allowlist, a bare address must be listed itself.
    let v = g.judge_connect(sa("93.184.216.34:443"), None);
    assert_eq!(code(&v), Some("egress.host_not_allowed"));
    // An allowed name does not open a reserved address.
    let egress = EgressPolicy::builder()
        .allow_hosts(["api.example.com"])
        .build()
        .unwrap();
    let g = guard(egress, Mode::Enforce);
    let v = g.judge_connect(sa("10.0.0.5:443"), Some("api.example.com"));
    assert_eq!(code(&v), Some("egress.reserved_address"));
    let Verdict::Refused(err) = v else { panic!() };
    let text = err.to_string();
    assert!(
        text.contains("10.0.0.5:443")
            && text.contains("api.example.com")
            && text.contains("10.0.0.0/8"),
        "{text}"
    );
}

#[test]
fn dns_to_configured_nameservers_only() {
    let g = guard(EgressPolicy::default(), Mode::Enforce);
    assert_eq!(
        g.judge_connect(sa("10.255.255.53:53"), None),
        Verdict::Nameserver
    );
    assert_eq!(
        g.judge_connect(sa("[::ffff:10.255.255.53]:53"), None),
        Verdict::Nameserver
    );
    assert!(matches!(
        g.judge_connect(sa("10.255.255.53:80"), None),
        Verdict::Refused(_)
    ));
    assert!(matches!(
        g.judge_connect(sa("127.0.0.1:53"), None),
        Verdict::Refused(_)
    ));
}

#[test]
fn sockaddr_families() {
    let g = guard(EgressPolicy::default(), Mode::Enforce);
    let unix = (libc::AF_UNIX as u16).to_ne_bytes();
    assert_eq!(g.judge_sockaddr(&unix, None), Verdict::NotEgress);
    let netlink = (libc::AF_NETLINK as u16).to_ne_bytes();
    assert_eq!(
        code(&g.judge_sockaddr(&netlink, None)),
        Some("egress.address_family")
    );
    assert_eq!(
        code(&g.judge_sockaddr(&[1], None)),
        Some("egress.bad_address")
    );
}

#[test]
fn commands() {
    let g = guard(EgressPolicy::default(), Mode::Enforce);
    assert_eq!(
        g.judge_command(Command::Shell(b"bin/rails db:migrate")),
        Verdict::Allowed
    );
    let v = g.judge_command(Command::Shell(b"convert secret-token.png out.jpg | sh"));
    let Verdict::Refused(err) = v else {
        panic!("{v:?}")
    };
    assert_eq!(err.code(), "command.shell_string");
    let text = err.to_string();
    assert!(
        text.contains("\"convert\"") && !text.contains("secret-token"),
        "{text}"
    );
    assert_eq!(g.judge_command(Command::Argv(b"sh", 2)), Verdict::Allowed);

    let options = GuardOptions {
        programs: Some(vec!["git".into(), "/usr/bin/convert".into()]),
        ..GuardOptions::default()
    };
    let g = GuardPolicy::new(Arc::new(EgressPolicy::default()), options).unwrap();
    assert_eq!(g.judge_command(Command::Argv(b"git", 1)), Verdict::Allowed);
    assert_eq!(
        g.judge_command(Command::Shell(b"git status")),
        Verdict::Allowed
    );
    assert_eq!(
        g.judge_command(Command::Argv(b"/usr/bin/convert", 1)),
        Verdict::Allowed
    );
    for bad in [&b"/tmp/git"[..], b"convert", b"sh"] {
        assert_eq!(
            code(&g.judge_command(Command::Argv(bad, 0))),
            Some("command.program_not_allowed")
        );
    }
    let options = GuardOptions {
        programs: Some(vec![" git".into()]),
        ..GuardOptions::default()
    };
    assert_eq!(
        GuardPolicy::new(Arc::new(EgressPolicy::default()), options)
            .unwrap_err()
            .code(),
        "guard.invalid"
    );
    let g = guard(EgressPolicy::default(), Mode::Report);
    assert!(matches!(
        g.judge_command(Command::Shell(b"a;b")),
        Verdict::Reported(_)
    ));
}
