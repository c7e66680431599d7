//! CRLs fetched from their distribution points, against a CRL server on 127.0.0.1: rotation,
//! a newly revoked serial, a server that is down, a CRL signed by the wrong key, an
//! oversized response, a lapsed CRL, the distribution points of the configured CAs, the
//! egress policy in the way, and the background refresher.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use portcullis::egress::EgressPolicy;
use portcullis::identity::{CrlRefreshEvent, TrustStore};
use portcullis::ErrorCode;
use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};

/// What the server answers with.
#[derive(Clone)]
enum Reply {
    Crl(Vec<u8>),
    Status(u16),
    /// A body of this many bytes (garbage), announced with Content-Length.
    Huge(usize),
}

/// A one-path HTTP server on 127.0.0.1 whose reply the test changes as it goes; it counts
/// requests and stops when dropped (bounded: it serves at most 200 requests).
struct CrlServer {
    reply: Arc<Mutex<Reply>>,
    hits: Arc<Mutex<usize>>,
    port: u16,
}

impl CrlServer {
    fn start(reply: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let reply = Arc::new(Mutex::new(reply));
        let hits = Arc::new(Mutex::new(0));
        let (r, h) = (Arc::clone(&reply), Arc::clone(&hits));
        std::thread::spawn(move || {
            for stream in listener.incoming().take(200) {
                let Ok(mut stream) = stream else { continue };
                let mut req = [0u8; 4096];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = stream.read(&mut req);
                *h.lock().unwrap() += 1;
                let reply = r.lock().unwrap().clone();
                let _ = match reply {
                    Reply::Crl(body) => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        stream
                            .write_all(head.as_bytes())
                            .and_then(|()| stream.write_all(&body))
                    }
                    Reply::Status(code) => stream.write_all(
                        format!("HTTP/1.1 {code} Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .as_bytes(),
                    ),
                    Reply::Huge(n) => {
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n");
                        stream.write_all(head.as_bytes()).and_then(|()| {
                            let chunk = vec![0x30u8; 64 * 1024];
                            let mut sent = 0;
                            while sent < n {
                                stream.write_all(&chunk)?;
                                sent += chunk.len();
                            }
                            Ok(())
                        })
                    }
                };
            }
        });
        Self { reply, hits, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/issuing.crl", self.port)
    }

    fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    fn hits(&self) -> usize {
        *self.hits.lock().unwrap()
    }
}

fn loopback_policy(port: u16) -> Arc<EgressPolicy> {
    Arc::new(
        EgressPolicy::builder()
            .schemes(["http"])
            .ports([port])
            .allow_cidrs(["127.0.0.0/8"])
            .build()
            .unwrap(),
    )
}

/// A CRL from `issuer` numbered `number`, revoking `serials`, valid from `this` to `next`
/// (years).
fn crl_at(issuer: &Ca, number: u64, serials: &[u64], this: i32, next: i32) -> Vec<u8> {
    CertificateRevocationListParams {
        this_update: ymd(this, 1, 1),
        next_update: ymd(next, 1, 1),
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: ymd(this, 1, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuer.cert, &issuer.key)
    .unwrap()
    .der()
    .to_vec()
}

fn code<T: std::fmt::Debug>(r: Result<T, portcullis::identity::CertificateError>) -> String {
    r.map(|v| panic!("expected an error, got {v:?}"))
        .unwrap_or_else(|e| e.code().to_owned())
}

struct Setup {
    pki: Pki,
    server: CrlServer,
    log: Arc<Mutex<Vec<CrlRefreshEvent>>>,
}

fn setup() -> Setup {
    let mut spec = LeafSpec::client("crl-client");
    spec.serial = 4242;
    let pki = pki(Alg::P256, &spec);
    let server = CrlServer::start(Reply::Crl(crl_at(&pki.inter, 1, &[], 2024, 2030)));
    Setup {
        pki,
        server,
        log: Arc::new(Mutex::new(Vec::new())),
    }
}

impl Setup {
    fn store(&self, deny_unknown: bool) -> TrustStore {
        let log = Arc::clone(&self.log);
        TrustStore::builder()
            .ca_pem(self.pki.root.pem().as_bytes())
            .intermediates(self.pki.inter.pem().as_bytes())
            .crl_urls([self.server.url()])
            .crl_egress(loopback_policy(self.server.port))
            .crl_fetch_limits(1024 * 1024, Duration::from_secs(5))
            .deny_unknown_revocation(deny_unknown)
            .on_crl_refresh(move |e| log.lock().unwrap().push(e.clone()))
            .build()
            .unwrap()
    }

    fn verify(&self, store: &TrustStore) -> Result<(), String> {
        store
            .verify(&self.pki.leaf.der(), &[], now())
            .map(|_| ())
            .map_err(|e| e.code().to_owned())
    }
}

#[test]
fn rotation_brings_a_newly_revoked_serial_and_every_refresh_is_logged() {
    let s = setup();
    let store = s.store(false);
    assert_eq!(store.crl_urls(), [s.server.url()]);
    assert_eq!(s.verify(&store), Ok(()));
    assert_eq!(s.log.lock().unwrap().len(), 1, "the build fetched once");
    // The CA rotates its CRL: number 2 lists the leaf.
    s.server
        .set(Reply::Crl(crl_at(&s.pki.inter, 2, &[4242], 2024, 2030)));
    assert_eq!(s.verify(&store), Ok(()), "cached, CRLs unchanged");
    let events = store.refresh_crls();
    assert!(events.iter().all(|e| e.error.is_none()), "{events:?}");
    assert_eq!(s.verify(&store), Err("cert.revoked".to_owned()));
    let log = store.crl_refresh_log();
    assert_eq!(log.len(), 2);
    assert!(log[1].to_string().contains("ok"), "{}", log[1]);
    assert_eq!(s.log.lock().unwrap().len(), 2);
}

#[test]
fn a_server_that_is_down_keeps_the_last_good_crl() {
    let s = setup();
    let store = s.store(false);
    s.server
        .set(Reply::Crl(crl_at(&s.pki.inter, 2, &[4242], 2024, 2030)));
    store.refresh_crls();
    assert_eq!(s.verify(&store), Err("cert.revoked".to_owned()));
    for reply in [Reply::Status(503), Reply::Status(404)] {
        s.server.set(reply);
        let events = store.refresh_crls();
        assert!(events[0].error.as_deref().unwrap().contains("HTTP status"));
        assert!(events[0].kept_previous);
        assert!(events[0]
            .to_string()
            .contains("last good copy stays in force"));
        assert_eq!(s.verify(&store), Err("cert.revoked".to_owned()));
    }
    // Nothing listening at all.
    let gone = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = gone.local_addr().unwrap().port();
    drop(gone);
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = Arc::clone(&log);
    let unreachable = TrustStore::builder()
        .ca_pem(s.pki.root.pem().as_bytes())
        .intermediates(s.pki.inter.pem().as_bytes())
        .crl_urls([format!("http://127.0.0.1:{port}/x.crl")])
        .crl_egress(loopback_policy(port))
        .deny_unknown_revocation(true)
        .on_crl_refresh(move |e| l.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let events = log.lock().unwrap().clone();
    assert!(events[0]
        .error
        .as_deref()
        .unwrap()
        .contains("could not connect"));
    assert!(!events[0].kept_previous);
    // No CRL at all: unknown status, refused under deny_unknown_revocation.
    assert_eq!(
        code(unreachable.verify(&s.pki.leaf.der(), &[], now())),
        "cert.revocation_unknown"
    );
}

#[test]
fn a_crl_signed_by_the_wrong_key_is_refused_and_the_good_copy_kept() {
    let s = setup();
    let store = s.store(false);
    // Same issuer name as the intermediate, another key.
    let impostor = intermediate(Alg::P256, &s.pki.root, "Test Intermediate");
    s.server
        .set(Reply::Crl(crl_at(&impostor, 9, &[], 2024, 2030)));
    let events = store.refresh_crls();
    let err = events[0].error.as_deref().unwrap();
    assert!(err.contains("signature"), "{err}");
    assert!(events[0].kept_previous);
    assert_eq!(s.verify(&store), Ok(()));
    // A replay of an older CRL (lower cRLNumber) is refused too.
    s.server
        .set(Reply::Crl(crl_at(&s.pki.inter, 3, &[4242], 2024, 2030)));
    store.refresh_crls();
    assert_eq!(s.verify(&store), Err("cert.revoked".to_owned()));
    s.server
        .set(Reply::Crl(crl_at(&s.pki.inter, 2, &[], 2024, 2030)));
    let events = store.refresh_crls();
    assert!(events[0].error.as_deref().unwrap().contains("cRLNumber"));
    assert_eq!(s.verify(&store), Err("cert.revoked".to_owned()));
    // Garbage is not a CRL.
    s.server.set(Reply::Crl(b"<html>hello</html>".to_vec()));
    let events = store.refresh_crls();
    assert!(events[0].error.as_deref().unwrap().contains("not a CRL"));
}

#[test]
fn an_oversized_response_is_cut_off() {
    let s = setup();
    let store = s.store(false);
    s.server.set(Reply::Huge(8 * 1024 * 1024));
    let events = store.refresh_crls();
    let err = events[0].error.as_deref().unwrap();
    assert!(err.contains("exceeds the 1048576 byte cap"), "{err}");
    assert!(events[0].kept_previous);
    assert_eq!(s.verify(&store), Ok(()));
}

#[test]
fn the_egress_policy_decides_what_may_be_fetched() {
    let s = setup();
    // A policy that does not allow loopback: the store refuses to build with that URL.
    let err = TrustStore::builder()
        .ca_pem(s.pki.root.pem().as_bytes())
        .crl_urls([s.server.url()])
        .crl_egress(Arc::new(
            EgressPolicy::builder()
                .schemes(["http"])
                .ports([s.server.port])
                .build()
                .unwrap(),
        ))
        .build()
        .unwrap_err();
    assert_eq!(err.code(), "cert.bad_trust_store");
    assert!(
        err.to_string().contains("refused by the CRL egress policy"),
        "{err}"
    );
    // URLs without a policy are a configuration error, not an unchecked fetch.
    let err = TrustStore::builder()
        .ca_pem(s.pki.root.pem().as_bytes())
        .crl_urls([s.server.url()])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("egress policy"), "{err}");
    assert_eq!(s.server.hits(), 0, "nothing was fetched");
}

#[test]
fn distribution_points_of_the_configured_cas_are_fetched_when_asked() {
    let server = CrlServer::start(Reply::Status(503));
    let root = root(Alg::P256);
    let url = format!("http://127.0.0.1:{}/root.crl", server.port);
    let inter = intermediate_with(Alg::P256, &root, "DP Intermediate", |p| {
        p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: vec![url.clone()],
        }];
        p.serial_number = Some(SerialNumber::from(777u64));
    });
    let leaf = leaf(Alg::P256, &inter, &LeafSpec::client("dp-client"));
    // The root revokes the intermediate.
    server.set(Reply::Crl(crl_at(&root, 1, &[777], 2024, 2030)));
    let store = TrustStore::builder()
        .ca_pem(root.pem().as_bytes())
        .intermediates(inter.pem().as_bytes())
        .crl_from_distribution_points(true)
        .crl_egress(loopback_policy(server.port))
        .on_crl_refresh(|_| {})
        .build()
        .unwrap();
    assert_eq!(store.crl_urls(), [url]);
    assert_eq!(code(store.verify(&leaf.der(), &[], now())), "cert.revoked");
    // Not asked: nothing fetched.
    let before = server.hits();
    let plain = TrustStore::builder()
        .ca_pem(root.pem().as_bytes())
        .intermediates(inter.pem().as_bytes())
        .crl_egress(loopback_policy(server.port))
        .build()
        .unwrap();
    assert!(plain.crl_urls().is_empty());
    assert!(plain.verify(&leaf.der(), &[], now()).is_ok());
    assert_eq!(server.hits(), before);
}

#[test]
fn the_background_refresher_picks_up_a_rotation_and_stops_when_dropped() {
    let s = setup();
    let log = Arc::clone(&s.log);
    let store = Arc::new(
        TrustStore::builder()
            .ca_pem(s.pki.root.pem().as_bytes())
            .intermediates(s.pki.inter.pem().as_bytes())
            .crl_urls([s.server.url()])
            .crl_egress(loopback_policy(s.server.port))
            .crl_refresh_schedule(
                Duration::from_millis(50),
                Duration::from_millis(50),
                Duration::from_millis(50),
            )
            .on_crl_refresh(move |e| log.lock().unwrap().push(e.clone()))
            .build()
            .unwrap(),
    );
    let refresher = store.spawn_crl_refresher().unwrap();
    s.server
        .set(Reply::Crl(crl_at(&s.pki.inter, 2, &[4242], 2024, 2030)));
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.verify(&store).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the refresher never applied the new CRL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(s.verify(&store), Err("cert.revoked".to_owned()));
    refresher.stop();
    let hits = s.server.hits();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        s.server.hits(),
        hits,
        "the refresher kept fetching after stop"
    );
    // A store without URLs has nothing to refresh.
    let bare = Arc::new(
        TrustStore::builder()
            .ca_pem(s.pki.root.pem().as_bytes())
            .build()
            .unwrap(),
    );
    assert_eq!(
        bare.spawn_crl_refresher().unwrap_err().code(),
        "cert.bad_trust_store"
    );
}

#[test]
fn a_fetched_crl_past_its_next_update_gives_unknown_status() {
    let s = setup();
    // Valid 2024 .. 2025-01-01; the tests verify at 2025-06-01.
    s.server
        .set(Reply::Crl(crl_at(&s.pki.inter, 2, &[], 2024, 2025)));
    // The root's own CRL is a file, current; the intermediate's comes from the URL.
    let strict = TrustStore::builder()
        .ca_pem(s.pki.root.pem().as_bytes())
        .intermediates(s.pki.inter.pem().as_bytes())
        .crls(&crl_at(&s.pki.root, 1, &[], 2024, 2030))
        .crl_urls([s.server.url()])
        .crl_egress(loopback_policy(s.server.port))
        .deny_unknown_revocation(true)
        .on_crl_refresh(|_| {})
        .build()
        .unwrap();
    let err = strict.verify(&s.pki.leaf.der(), &[], now()).unwrap_err();
    assert_eq!(err.code(), "cert.revocation_unknown");
    assert!(err.to_string().contains("lapsed"), "{err}");
    let lenient = s.store(false);
    let id = lenient.verify(&s.pki.leaf.der(), &[], now()).unwrap();
    assert!(id.revocation_warning.unwrap().contains("lapsed"));
    // What a lapsed CRL lists stays revoked.
    s.server
        .set(Reply::Crl(crl_at(&s.pki.inter, 3, &[4242], 2024, 2025)));
    lenient.refresh_crls();
    assert_eq!(s.verify(&lenient), Err("cert.revoked".to_owned()));
}

#[test]
fn portcullis_toml_trust_stores_take_crl_urls_through_an_egress_section() {
    let s = setup();
    s.server
        .set(Reply::Crl(crl_at(&s.pki.inter, 2, &[4242], 2024, 2030)));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("root.pem"), s.pki.root.pem()).unwrap();
    std::fs::write(dir.path().join("inter.pem"), s.pki.inter.pem()).unwrap();
    let text = format!(
        "[egress.crl]\nschemes = [\"http\"]\nports = [{port}]\nallow_cidrs = [\"127.0.0.0/8\"]\n\n\
         [trust_store.clients]\nca = \"root.pem\"\nintermediates = \"inter.pem\"\n\
         crl_urls = [\"{url}\"]\ncrl_egress = \"crl\"\ncrl_refresh = false\n",
        port = s.server.port,
        url = s.server.url()
    );
    let config = portcullis::config::Config::from_str(&text, dir.path()).unwrap();
    let store = config.trust_store("clients").unwrap();
    assert_eq!(store.crl_urls(), [s.server.url()]);
    assert_eq!(
        code(store.verify(&s.pki.leaf.der(), &[], now())),
        "cert.revoked"
    );
    // crl_urls without crl_egress, and a crl_egress naming nothing, are located errors.
    let missing = text.replace("crl_egress = \"crl\"\n", "");
    let err = portcullis::config::Config::from_str(&missing, dir.path()).unwrap_err();
    assert!(err.to_string().contains("crl_egress"), "{err}");
    let dangling = text.replace("crl_egress = \"crl\"", "crl_egress = \"nope\"");
    let err = portcullis::config::Config::from_str(&dangling, dir.path()).unwrap_err();
    assert_eq!(err.code(), "config.reference", "{err}");
}
