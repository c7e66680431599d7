//! SafeRoot::open + close against plain `File::open` on the same file, and against the
//! usual "canonicalize, then prefix-check, then open" approach.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench setup: failing fast is right

use std::fs::File;
use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::fs::SafeRoot;

const NAME: &str = "assets/css/site.css";

fn realpath_prefix_open(root: &Path, name: &str) -> Option<File> {
    let full = root.join(name).canonicalize().ok()?;
    // Component-wise (Path::starts_with), i.e. the *correct* prefix check; it still
    // follows symlinks and leaves a window between the check and the open.
    if full.starts_with(root) {
        File::open(full).ok()
    } else {
        None
    }
}

fn open_close(c: &mut Criterion) {
    let scratch = std::env::temp_dir().join(format!("portcullis-fs-bench-{}", std::process::id()));
    std::fs::create_dir_all(scratch.join("assets/css")).unwrap();
    let root_path = scratch.canonicalize().unwrap();
    std::fs::write(root_path.join(NAME), b"body{}").unwrap();
    let full = root_path.join(NAME);
    let safe = SafeRoot::new(&root_path).unwrap();
    let walk = SafeRoot::new(&root_path).unwrap().force_walk(true);

    let mut group = c.benchmark_group("fs_open_close");
    group.bench_function("std_file_open", |b| {
        b.iter(|| drop(black_box(File::open(black_box(&full)).unwrap())))
    });
    group.bench_function("saferoot_open_openat2", |b| {
        b.iter(|| drop(black_box(safe.open(black_box(NAME)).unwrap())))
    });
    group.bench_function("saferoot_open_walk", |b| {
        b.iter(|| drop(black_box(walk.open(black_box(NAME)).unwrap())))
    });
    group.bench_function("realpath_prefix_check_open", |b| {
        b.iter(|| {
            drop(black_box(
                realpath_prefix_open(&root_path, black_box(NAME)).unwrap(),
            ))
        })
    });
    group.bench_function("saferoot_refuse_escape", |b| {
        b.iter(|| black_box(safe.open(black_box("assets/../../etc/passwd")).is_err()))
    });
    group.finish();
    paired(&safe, &full);
    std::fs::remove_dir_all(&root_path).unwrap();
}

/// Criterion runs the variants one after another, so load changes between them land in
/// the ratio: this alternates short batches of the two contenders instead.
fn paired(safe: &SafeRoot, full: &Path) {
    let ours = || drop(black_box(safe.open(black_box(NAME)).unwrap()));
    let theirs = || drop(black_box(File::open(black_box(full)).unwrap()));
    let p = portcullis_benches::paired(41, 2_000, &ours, &theirs);
    println!(
        "paired open+close: SafeRoot::open {:.2} us, File::open {:.2} us, median ratio {:.3}x",
        p.ours, p.theirs, p.ratio
    );
}

criterion_group!(benches, open_close);
criterion_main!(benches);
