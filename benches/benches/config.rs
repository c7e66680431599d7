//! What live reload costs on the request path: `ConfigHandle::reload_if_changed` between
//! checks (the common case), when the interval has passed and nothing changed (stat calls),
//! and a full load of the committed example.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench setup: failing fast is right

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::config::{Config, ConfigHandle};

fn config(c: &mut Criterion) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/portcullis.toml");
    let mut group = c.benchmark_group("config");
    group.bench_function("load_example", |b| {
        b.iter(|| black_box(Config::from_path(black_box(&example)).unwrap()))
    });
    let gated = ConfigHandle::open(&example).unwrap();
    group.bench_function("reload_if_changed_within_interval", |b| {
        b.iter(|| black_box(gated.reload_if_changed().unwrap()))
    });
    let every = ConfigHandle::open(&example)
        .unwrap()
        .with_check_interval(Duration::ZERO);
    group.bench_function("reload_if_changed_stat_unchanged", |b| {
        b.iter(|| black_box(every.reload_if_changed().unwrap()))
    });
    group.bench_function("current", |b| b.iter(|| black_box(gated.current())));
    group.finish();
}

criterion_group!(benches, config);
criterion_main!(benches);
