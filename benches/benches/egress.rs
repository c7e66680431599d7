//! Egress: IP classification and full URL checks (IP literal, and a name through a stub
//! resolver). Targets: <= 1 us per IP classification.
#![allow(clippy::unwrap_used, clippy::panic)] // test/bench helpers outside #[test] fns; a failure here is a test failure

use std::hint::black_box;
use std::io;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use portcullis::egress::EgressPolicy;

fn policy() -> EgressPolicy {
    EgressPolicy::builder()
        .schemes(["http", "https"])
        .allow_cidrs(["10.20.0.0/16"])
        .deny_cidrs(["203.0.113.0/24"])
        .build()
        .unwrap()
}

fn egress(c: &mut Criterion) {
    let policy = policy();
    let addrs: Vec<IpAddr> = [
        "93.184.216.34",
        "10.20.1.2",
        "192.168.1.1",
        "169.254.169.254",
        "2606:4700:4700::1111",
        "::ffff:127.0.0.1",
        "64:ff9b::5db8:d822",
        "fd00:ec2::254",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();

    let mut group = c.benchmark_group("egress");
    group.throughput(Throughput::Elements(addrs.len() as u64));
    group.bench_function("check_ip x8 (mixed v4/v6/embedded)", |b| {
        b.iter(|| {
            for ip in &addrs {
                let _ = black_box(policy.check_ip(black_box(*ip)));
            }
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("check_ip public v4", |b| {
        let ip: IpAddr = "93.184.216.34".parse().unwrap();
        b.iter(|| black_box(policy.check_ip(black_box(ip))))
    });
    group.bench_function("check_ip public v6", |b| {
        let ip: IpAddr = "2606:4700:4700::1111".parse().unwrap();
        b.iter(|| black_box(policy.check_ip(black_box(ip))))
    });

    let no_dns = |_: &str| -> io::Result<Vec<IpAddr>> { Ok(vec![]) };
    group.bench_function("check_with IP-literal URL", |b| {
        b.iter(|| {
            black_box(
                policy.check_with(black_box("https://93.184.216.34/v1/items?page=2"), &no_dns),
            )
        })
    });
    let answers: Vec<IpAddr> = vec![
        "93.184.216.34".parse().unwrap(),
        "2606:2800:220:1:248:1893:25c8:1946".parse().unwrap(),
    ];
    let stub = |_: &str| -> io::Result<Vec<IpAddr>> { Ok(answers.clone()) };
    group.bench_function("check_with name, stub resolver (2 answers)", |b| {
        b.iter(|| {
            black_box(
                policy.check_with(black_box("https://api.example.com/v1/items?page=2"), &stub),
            )
        })
    });
    group.bench_function("check_with denied decimal loopback", |b| {
        b.iter(|| black_box(policy.check_with(black_box("http://2130706433/"), &no_dns)))
    });
    group.finish();
}

criterion_group!(benches, egress);
criterion_main!(benches);
