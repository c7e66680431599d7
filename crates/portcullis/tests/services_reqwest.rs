//! `egress::reqwest` against real loopback upstreams: an allowed one on 127.0.0.2 and a
//! denied one on 127.0.0.1 (reserved loopback; only 127.0.0.2/32 is allowed), which counts
//! its connections so every refusal is shown to send nothing.
#![cfg(feature = "reqwest")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures

mod services_common;

use std::sync::Arc;

use portcullis::egress::reqwest::{client, Client, EgressResolver};
use portcullis::egress::EgressPolicy;
use portcullis::ErrorCode;
use services_common::{
    chunked, counting, rebinding, response, runtime, upstream, StubDns, Upstream,
};

struct World {
    allowed: Upstream,
    denied: Upstream,
    policy: Arc<EgressPolicy>,
}

/// The allowed upstream's routes point at the denied one in several ways.
fn world() -> World {
    let denied = counting("127.0.0.1");
    let dport = denied.port();
    let allowed = upstream(
        "127.0.0.2",
        Arc::new(move |path: &str| match path {
            "/ok" => response("200 OK", &[], "hello"),
            "/to-denied" => {
                let loc = format!("http://127.0.0.1:{dport}/secret");
                response("302 Found", &[("location", &loc)], "")
            }
            "/to-denied-spelled" => {
                // 127.0.0.1 as a decimal integer: the WHATWG parser reads it as 127.0.0.1
                let loc = format!("http://2130706433:{dport}/secret");
                response("302 Found", &[("location", &loc)], "")
            }
            "/to-private-name" => {
                let loc = format!("http://private.test:{dport}/secret");
                response("302 Found", &[("location", &loc)], "")
            }
            "/to-ok" => response("301 Moved", &[("location", "/ok")], ""),
            "/loop" => response("302 Found", &[("location", "/loop")], ""),
            "/big" => response("200 OK", &[], &"x".repeat(5000)),
            "/big-chunked" => chunked(&"x".repeat(5000)),
            _ => response("404 Not Found", &[], "no"),
        }),
    );
    let policy = EgressPolicy::builder()
        .schemes(["http"])
        .ports([allowed.port(), dport])
        .allow_cidrs(["127.0.0.2/32"])
        .build()
        .unwrap();
    World {
        allowed,
        denied,
        policy: Arc::new(policy),
    }
}

fn http(w: &World, dns: StubDns) -> Client {
    client(Arc::clone(&w.policy))
        .resolver(move |name: &str| dns.resolve(name))
        .build()
        .unwrap()
}

fn code_of<T: std::fmt::Debug>(r: Result<T, portcullis::egress::reqwest::FetchError>) -> String {
    r.unwrap_err().code().to_owned()
}

#[test]
fn allowed_upstream_by_address_and_by_name() {
    let w = world();
    let dns = StubDns::default().with("upstream.test", &["127.0.0.2"]);
    let c = http(&w, dns.clone());
    runtime().block_on(async {
        let r = c
            .get(&format!("http://{}/ok", w.allowed.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "hello");
        let url = format!("http://upstream.test:{}/ok", w.allowed.port());
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "hello");
        // a checked redirect to an allowed place is followed
        let r = c
            .get(&format!("http://{}/to-ok", w.allowed.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.url().path(), "/ok");
        assert_eq!(r.text().await.unwrap(), "hello");
    });
    assert_eq!(dns.lookup_count("upstream.test"), 1);
    assert_eq!(w.denied.hits(), 0);
}

#[test]
fn redirect_to_a_denied_address_is_refused_before_connecting() {
    let w = world();
    let dns = StubDns::default().with("private.test", &["127.0.0.1"]);
    let c = http(&w, dns.clone());
    runtime().block_on(async {
        for (path, code) in [
            ("/to-denied", "egress.reserved_address"),
            ("/to-denied-spelled", "egress.reserved_address"),
            ("/to-private-name", "egress.reserved_address"),
        ] {
            let r = c
                .get(&format!("http://{}{path}", w.allowed.addr))
                .send()
                .await;
            assert_eq!(code_of(r), code, "{path}");
        }
    });
    assert_eq!(
        dns.lookup_count("private.test"),
        1,
        "the redirect's name went through the resolver"
    );
    assert!(w.allowed.hits() >= 3);
    assert_eq!(w.denied.hits(), 0);
}

#[test]
fn a_name_resolving_to_a_private_address_is_refused() {
    let w = world();
    let dns = StubDns::default()
        .with("private.test", &["127.0.0.1"])
        .with("mixed.test", &["127.0.0.2", "127.0.0.1"])
        .with("mapped.test", &["::ffff:127.0.0.1"]);
    let c = http(&w, dns);
    runtime().block_on(async {
        for name in ["private.test", "mixed.test", "mapped.test"] {
            let r = c
                .get(&format!("http://{name}:{}/", w.denied.port()))
                .send()
                .await;
            assert_eq!(code_of(r), "egress.reserved_address", "{name}");
        }
        let r = c
            .get(&format!("http://nowhere.test:{}/", w.allowed.port()))
            .send()
            .await;
        assert_eq!(code_of(r), "egress.resolve_failed");
    });
    assert_eq!(w.denied.hits(), 0);
}

#[test]
fn a_rebinding_name_is_refused_on_the_next_connect() {
    let w = world();
    let c = client(Arc::clone(&w.policy))
        .resolver(rebinding(&["127.0.0.2"], &["127.0.0.1"]))
        .build()
        .unwrap();
    // Both upstreams share the port space check; aim the name at the denied port too.
    let ok_url = format!("http://rebind.test:{}/ok", w.allowed.port());
    runtime().block_on(async {
        let r = c.get(&ok_url).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "hello");
        // The upstream closed the connection, so this is a new connect and a new lookup.
        let r = c.get(&ok_url).send().await;
        assert_eq!(code_of(r), "egress.reserved_address");
        let r = c
            .get(&format!("http://rebind.test:{}/", w.denied.port()))
            .send()
            .await;
        assert_eq!(code_of(r), "egress.reserved_address");
    });
    assert_eq!(w.denied.hits(), 0);
}

#[test]
fn url_rules_run_before_every_request_through_the_wrapper() {
    let w = world();
    let c = http(&w, StubDns::default().with("upstream.test", &["127.0.0.2"]));
    let d = w.denied.addr;
    let a = w.allowed.addr;
    runtime().block_on(async {
        for (url, code) in [
            (format!("http://{d}/"), "egress.reserved_address"),
            (
                format!("http://0x7f.1:{}/", d.port()),
                "egress.reserved_address",
            ),
            (format!("http://user@{a}/ok"), "egress.userinfo"),
            (format!("http://{a}\\@127.0.0.1/ok"), "egress.backslash"),
            (format!("http://127.0.0.2:{}/", 9), "egress.port"),
            (format!("https://{a}/ok"), "egress.scheme"),
            (format!("http://{a}/o k"), "egress.control_char"),
            ("not-a-url".to_owned(), "egress.bad_url"),
        ] {
            let r = c.get(&url).send().await;
            assert_eq!(code_of(r), code, "{url}");
            let r = c.post(&url).body("x").send().await;
            assert_eq!(code_of(r), code, "POST {url}");
        }
        // A request built elsewhere goes through the same check in execute().
        let raw = reqwest::Request::new(
            reqwest::Method::GET,
            format!("http://{d}/secret").parse().unwrap(),
        );
        assert_eq!(code_of(c.execute(raw).await), "egress.reserved_address");
        let raw = reqwest::Request::new(
            reqwest::Method::GET,
            format!("http://u:p@{a}/ok").parse().unwrap(),
        );
        assert_eq!(code_of(c.execute(raw).await), "egress.userinfo");
    });
    assert_eq!(w.denied.hits(), 0);

    // A host allowlist is checked on the URL and in the resolver.
    let strict = Arc::new(
        EgressPolicy::builder()
            .schemes(["http"])
            .ports([w.allowed.port()])
            .allow_hosts(["upstream.test"])
            .allow_cidrs(["127.0.0.2/32"])
            .build()
            .unwrap(),
    );
    let dns = StubDns::default()
        .with("upstream.test", &["127.0.0.2"])
        .with("other.test", &["127.0.0.2"]);
    let lookups = dns.clone();
    let c = client(strict)
        .resolver(move |n: &str| dns.resolve(n))
        .build()
        .unwrap();
    runtime().block_on(async {
        let r = c
            .get(&format!("http://other.test:{}/ok", w.allowed.port()))
            .send()
            .await;
        assert_eq!(code_of(r), "egress.host_not_allowed");
        let r = c.get(&format!("http://{a}/ok")).send().await;
        assert_eq!(code_of(r), "egress.host_not_allowed");
        let r = c
            .get(&format!("http://upstream.test:{}/ok", w.allowed.port()))
            .send()
            .await;
        assert_eq!(r.unwrap().text().await.unwrap(), "hello");
    });
    assert_eq!(
        lookups.lookup_count("other.test"),
        0,
        "refused before any lookup"
    );
}

/// Why the wrapper exists: reqwest does not ask a resolver about IP literals, so a plain
/// reqwest client with only the EgressResolver reaches a denied literal. (Loopback only.)
#[test]
fn the_resolver_alone_does_not_see_ip_literals() {
    let w = world();
    let resolver = EgressResolver::with_resolver(Arc::clone(&w.policy), |_: &str| Ok(vec![]));
    let plain = reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(Arc::new(resolver))
        .build()
        .unwrap();
    runtime().block_on(async {
        let r = plain
            .get(format!("http://{}/", w.denied.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });
    assert_eq!(w.denied.hits(), 1);
}

#[test]
fn a_nonblocking_resolver_is_checked_the_same_way() {
    let w = world();
    let dns = StubDns::default()
        .with("upstream.test", &["127.0.0.2"])
        .with("private.test", &["127.0.0.1"]);
    let c = client(Arc::clone(&w.policy))
        .nonblocking_resolver(move |n: &str| dns.resolve(n))
        .build()
        .unwrap();
    runtime().block_on(async {
        let r = c
            .get(&format!("http://upstream.test:{}/ok", w.allowed.port()))
            .send()
            .await;
        assert_eq!(r.unwrap().text().await.unwrap(), "hello");
        let r = c
            .get(&format!("http://private.test:{}/", w.denied.port()))
            .send()
            .await;
        assert_eq!(code_of(r), "egress.reserved_address");
        let r = c
            .get(&format!("http://{}/to-private-name", w.allowed.addr))
            .send()
            .await;
        assert_eq!(code_of(r), "egress.reserved_address");
    });
    assert_eq!(w.denied.hits(), 0);
}

#[test]
fn the_resolver_refuses_names_for_any_reqwest_client() {
    let w = world();
    let dns = StubDns::default().with("private.test", &["127.0.0.1"]);
    let resolver =
        EgressResolver::with_resolver(Arc::clone(&w.policy), move |n: &str| dns.resolve(n));
    let plain = reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(Arc::new(resolver))
        .build()
        .unwrap();
    runtime().block_on(async {
        let err = plain
            .get(format!("http://private.test:{}/", w.denied.port()))
            .send()
            .await
            .unwrap_err();
        let err = portcullis::egress::reqwest::FetchError::from(err);
        assert_eq!(err.code(), "egress.reserved_address");
    });
    assert_eq!(w.denied.hits(), 0);
}

#[test]
fn body_cap_and_redirect_limit() {
    let w = world();
    let c = client(Arc::clone(&w.policy))
        .max_body_bytes(1000)
        .max_redirects(3)
        .build()
        .unwrap();
    let a = w.allowed.addr;
    runtime().block_on(async {
        let r = c.get(&format!("http://{a}/big")).send().await.unwrap();
        assert_eq!(code_of(r.bytes().await), "egress.response_too_large");
        let r = c
            .get(&format!("http://{a}/big-chunked"))
            .send()
            .await
            .unwrap();
        assert_eq!(code_of(r.text().await), "egress.response_too_large");
        let mut r = c
            .get(&format!("http://{a}/big-chunked"))
            .send()
            .await
            .unwrap();
        let mut read = 0;
        let err = loop {
            match r.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) => panic!("read {read} bytes past the cap"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.code(), "egress.response_too_large");
        assert!(read <= 1000);
        let r = c.get(&format!("http://{a}/ok")).send().await.unwrap();
        assert_eq!(r.bytes().await.unwrap(), b"hello");
        let r = c.get(&format!("http://{a}/loop")).send().await;
        assert_eq!(code_of(r), "egress.too_many_redirects");
    });
    // no redirects followed at all: the 3xx comes back
    let c = client(Arc::clone(&w.policy))
        .max_redirects(0)
        .build()
        .unwrap();
    runtime().block_on(async {
        let r = c
            .get(&format!("http://{a}/to-denied"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
    });
    assert_eq!(w.denied.hits(), 0);
}

#[test]
fn timeouts_are_reported_with_their_code() {
    // A listener that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let policy = EgressPolicy::builder()
        .schemes(["http"])
        .ports([port])
        .allow_cidrs(["127.0.0.2/32"])
        .build()
        .unwrap();
    let c = client(Arc::new(policy))
        .timeout(std::time::Duration::from_millis(300))
        .build()
        .unwrap();
    runtime().block_on(async {
        let r = c.get(&format!("http://127.0.0.2:{port}/")).send().await;
        assert_eq!(code_of(r), "egress.timeout");
    });
    drop(silent);
}

#[test]
fn from_portcullis_toml() {
    let w = world();
    let toml = format!(
        "[egress.upstream]\nschemes = [\"http\"]\nports = [{}]\nallow_cidrs = [\"127.0.0.2/32\"]\n",
        w.allowed.port()
    );
    let config = portcullis::config::Config::from_str(&toml, "/").unwrap();
    let c = client(Arc::clone(config.egress("upstream").unwrap()))
        .build()
        .unwrap();
    runtime().block_on(async {
        let r = c
            .get(&format!("http://{}/ok", w.allowed.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "hello");
        let r = c
            .get(&format!("http://127.0.0.1:{}/", w.allowed.port()))
            .send()
            .await;
        assert_eq!(code_of(r), "egress.reserved_address");
    });
}
