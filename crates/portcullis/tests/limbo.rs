//! x509-limbo conformance: every testcase in `tests/data/limbo.json.gz` (C2SP/x509-limbo
//! vectors, see /work/shared/limbo/README.md) runs through [`TrustStore`].
//!
//! CLIENT cases verify for TLS client authentication; SERVER cases for server
//! authentication with the expected peer name checked. The test fails on any case whose
//! verdict differs from limbo's (a false accept or a false reject) unless
//! `tests/data/limbo-exceptions.txt` lists the case id with a reason, and on any listed
//! case that no longer fails. Cases our API cannot express are skipped, with the reason
//! printed.
#![allow(clippy::unwrap_used, clippy::panic)] // a harness: a broken fixture is a failed test

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis::identity::{decode, TrustStore, Usage};
use portcullis::ErrorCode;
use serde_json::Value;

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
    false_accepts: usize,
}

/// Seconds since the epoch for limbo's `YYYY-MM-DDTHH:MM:SS+00:00`.
fn parse_time(s: &str) -> SystemTime {
    let num = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    assert!(
        s.ends_with("+00:00") || s.ends_with('Z'),
        "non-UTC time {s}"
    );
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (hh, mm, ss) = (num(11..13), num(14..16), num(17..19));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    UNIX_EPOCH + Duration::from_secs((days * 86_400 + hh * 3600 + mm * 60 + ss) as u64)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Why our API cannot express this case, if it cannot.
fn skip_reason(case: &Value) -> Option<String> {
    if !strings(&case["signature_algorithms"]).is_empty() {
        return Some(
            "signature_algorithms: TrustStore does not restrict algorithms per call".into(),
        );
    }
    let eku = strings(&case["extended_key_usage"]);
    if eku.iter().any(|e| e != "serverAuth" && e != "clientAuth") {
        return Some(format!(
            "extended_key_usage {eku:?}: only clientAuth/serverAuth are modelled"
        ));
    }
    if case["validation_kind"] == "SERVER" {
        let kind = case["expected_peer_name"]["kind"].as_str().unwrap_or("");
        if !matches!(kind, "DNS" | "IP" | "") {
            return Some(format!(
                "peer name kind {kind}: verify_server takes DNS names and IPs"
            ));
        }
    }
    None
}

/// Runs one case: Ok(()) when verification succeeded, Err(code: message) otherwise.
fn run(case: &Value) -> Result<(), String> {
    let server = case["validation_kind"] == "SERVER";
    let mut builder = TrustStore::builder()
        .usage(if server {
            Usage::ServerAuth
        } else {
            Usage::ClientAuth
        })
        .cache_capacity(0);
    if let Some(depth) = case["max_chain_depth"].as_u64() {
        builder = builder.max_intermediates(usize::try_from(depth).unwrap());
    }
    for pem in strings(&case["trusted_certs"]) {
        builder = builder.ca_pem(pem.as_bytes());
    }
    for crl in strings(&case["crls"]) {
        builder = builder.crls(crl.as_bytes());
    }
    let store = builder.build().map_err(|e| format!("{}: {e}", e.code()))?;
    let leaf =
        decode::decode_pem_certificate(case["peer_certificate"].as_str().unwrap().as_bytes())
            .map_err(|e| format!("{}: {e}", e.code()))?;
    let mut chain = Vec::new();
    for pem in strings(&case["untrusted_intermediates"]) {
        chain.extend(
            decode::decode_pem_certificates(pem.as_bytes())
                .map_err(|e| format!("{}: {e}", e.code()))?,
        );
    }
    let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    let at = case["validation_time"]
        .as_str()
        .map_or_else(SystemTime::now, parse_time);
    let name = case["expected_peer_name"]["value"].as_str();
    let result = match (server, name) {
        (true, Some(name)) => store.verify_server(&leaf, &refs, name, at),
        _ => store.verify(&leaf, &refs, at),
    };
    result.map(|_| ()).map_err(|e| format!("{}: {e}", e.code()))
}

fn load_exceptions() -> BTreeMap<String, String> {
    let text = include_str!("data/limbo-exceptions.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            assert!(!reason.trim().is_empty(), "exception {id} has no reason");
            (id.to_owned(), reason.trim().to_owned())
        })
        .collect()
}

#[test]
fn limbo() {
    let gz = include_bytes!("data/limbo.json.gz");
    let mut json = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut json)
        .unwrap();
    let doc: Value = serde_json::from_str(&json).unwrap();
    let cases = doc["testcases"].as_array().unwrap();
    let exceptions = load_exceptions();

    let mut by_ns: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut unlisted = Vec::new();
    let mut stale = Vec::new();
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let ns = id.split("::").next().unwrap_or(id).to_owned();
        let tally = by_ns.entry(ns).or_default();
        if let Some(reason) = skip_reason(case) {
            println!("SKIP {id}: {reason}");
            tally.skipped += 1;
            total.skipped += 1;
            continue;
        }
        let expect_ok = case["expected_result"] == "SUCCESS";
        let outcome = run(case);
        match (expect_ok, &outcome) {
            (true, Ok(())) | (false, Err(_)) => {
                tally.passed += 1;
                total.passed += 1;
                if exceptions.contains_key(id) {
                    stale.push(id.to_owned());
                }
            }
            (true, Err(why)) => {
                tally.failed += 1;
                total.failed += 1;
                match exceptions.get(id) {
                    Some(reason) => {
                        println!("FALSE REJECT (listed) {id}: {why}; listed because: {reason}")
                    }
                    None => {
                        println!("FALSE REJECT {id}: expected SUCCESS, rejected with {why}");
                        unlisted.push(id.to_owned());
                    }
                }
            }
            (false, Ok(())) => {
                tally.failed += 1;
                total.failed += 1;
                tally.false_accepts += 1;
                total.false_accepts += 1;
                match exceptions.get(id) {
                    Some(reason) => println!("FALSE ACCEPT (listed) {id}: {reason}"),
                    None => {
                        println!("FALSE ACCEPT {id}");
                        unlisted.push(id.to_owned());
                    }
                }
            }
        }
    }
    println!();
    for (ns, t) in &by_ns {
        println!(
            "  {ns:<13} {:>3} passed {:>3} failed {:>3} skipped {:>3} false accepts",
            t.passed, t.failed, t.skipped, t.false_accepts
        );
    }
    println!(
        "limbo: {} passed, {} failed, {} skipped, {} false accepts",
        total.passed, total.failed, total.skipped, total.false_accepts
    );
    assert!(
        unlisted.is_empty(),
        "verdicts that differ from limbo's and are not in limbo-exceptions.txt: {unlisted:?}"
    );
    assert!(
        stale.is_empty(),
        "listed in limbo-exceptions.txt but now agree with limbo (remove them): {stale:?}"
    );
}
