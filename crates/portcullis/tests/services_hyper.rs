//! `egress::hyper::PinnedConnector` under hyper-util's legacy client, against an allowed
//! upstream on 127.0.0.2 and a denied one on 127.0.0.1 that counts its connections.
#![cfg(feature = "hyper")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures

mod services_common;

use std::error::Error as _;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis::egress::hyper::{ConnectError, PinnedConnector};
use portcullis::egress::EgressPolicy;
use portcullis::ErrorCode;
use services_common::{counting, rebinding, response, runtime, upstream, StubDns, Upstream};

fn upstreams() -> (Upstream, Upstream, Arc<EgressPolicy>) {
    let denied = counting("127.0.0.1");
    let allowed = upstream(
        "127.0.0.2",
        Arc::new(|_: &str| response("200 OK", &[], "hello")),
    );
    let policy = EgressPolicy::builder()
        .schemes(["http"])
        .ports([allowed.port(), denied.port()])
        .allow_cidrs(["127.0.0.2/32"])
        .build()
        .unwrap();
    (allowed, denied, Arc::new(policy))
}

type HttpClient = Client<PinnedConnector, String>;

fn http(connector: PinnedConnector) -> HttpClient {
    Client::builder(TokioExecutor::new()).build(connector)
}

async fn get(client: &HttpClient, url: &str) -> Result<String, String> {
    let uri: http::Uri = url.parse().unwrap();
    match client.get(uri).await {
        Ok(response) => {
            let body = response.into_body().collect().await.unwrap().to_bytes();
            Ok(String::from_utf8(body.to_vec()).unwrap())
        }
        Err(err) => {
            // The connector's error travels as the source of hyper-util's error.
            let mut source = err.source();
            while let Some(e) = source {
                if let Some(c) = e.downcast_ref::<ConnectError>() {
                    return Err(c.code().to_owned());
                }
                source = e.source();
            }
            panic!("no ConnectError in {err:?}");
        }
    }
}

#[test]
fn connects_to_checked_addresses_only() {
    let (allowed, denied, policy) = upstreams();
    let dns = StubDns::default()
        .with("upstream.test", &["127.0.0.2"])
        .with("private.test", &["127.0.0.1"])
        .with("mixed.test", &["127.0.0.2", "127.0.0.1"]);
    let lookups = dns.clone();
    let client = http(PinnedConnector::new(policy).with_resolver(move |n: &str| dns.resolve(n)));
    let (a, d) = (allowed.port(), denied.port());
    runtime().block_on(async {
        assert_eq!(
            get(&client, &format!("http://127.0.0.2:{a}/"))
                .await
                .unwrap(),
            "hello"
        );
        assert_eq!(
            get(&client, &format!("http://upstream.test:{a}/"))
                .await
                .unwrap(),
            "hello"
        );
        for url in [
            format!("http://127.0.0.1:{d}/"),
            format!("http://2130706433:{d}/"),
            format!("http://[::ffff:127.0.0.1]:{d}/"),
            format!("http://private.test:{d}/"),
            format!("http://mixed.test:{d}/"),
        ] {
            assert_eq!(
                get(&client, &url).await.unwrap_err(),
                "egress.reserved_address",
                "{url}"
            );
        }
        assert_eq!(
            get(&client, &format!("http://127.0.0.2:{}/", 9))
                .await
                .unwrap_err(),
            "egress.port"
        );
        assert_eq!(
            get(&client, &format!("https://127.0.0.2:{a}/"))
                .await
                .unwrap_err(),
            "egress.scheme"
        );
        assert_eq!(
            get(&client, &format!("http://nowhere.test:{a}/"))
                .await
                .unwrap_err(),
            "egress.resolve_failed"
        );
    });
    assert_eq!(lookups.lookup_count("private.test"), 1);
    assert_eq!(denied.hits(), 0);
    assert!(allowed.hits() >= 2);
}

#[test]
fn a_rebinding_name_is_refused_on_the_next_connection() {
    let (allowed, denied, policy) = upstreams();
    let connector =
        PinnedConnector::new(policy).with_resolver(rebinding(&["127.0.0.2"], &["127.0.0.1"]));
    let client = http(connector);
    let url = format!("http://rebind.test:{}/", allowed.port());
    runtime().block_on(async {
        assert_eq!(get(&client, &url).await.unwrap(), "hello");
        // The upstream closes each connection, so the next request connects (and resolves) anew.
        assert_eq!(
            get(&client, &url).await.unwrap_err(),
            "egress.reserved_address"
        );
        let url = format!("http://rebind.test:{}/", denied.port());
        assert_eq!(
            get(&client, &url).await.unwrap_err(),
            "egress.reserved_address"
        );
    });
    assert_eq!(denied.hits(), 0);
}

#[test]
fn destination_and_connect_failure() {
    // A port that is allowed but has nothing listening on 127.0.0.2.
    let closed = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let policy = Arc::new(
        EgressPolicy::builder()
            .schemes(["http"])
            .ports([port])
            .allow_cidrs(["127.0.0.2/32"])
            .build()
            .unwrap(),
    );
    let connector = PinnedConnector::new(Arc::clone(&policy))
        .with_resolver(|_: &str| Ok(vec!["127.0.0.2".parse().unwrap()]));
    runtime().block_on(async {
        let dest = connector
            .destination(&format!("http://svc.test:{port}/").parse().unwrap())
            .await
            .unwrap();
        assert_eq!(
            dest.socket_addrs(),
            vec![format!("127.0.0.2:{port}").parse().unwrap()]
        );
        let client = http(connector);
        let err = get(&client, &format!("http://svc.test:{port}/"))
            .await
            .unwrap_err();
        assert_eq!(err, "egress.connect_failed");
    });
}
