//! Command templates: building argv from untrusted values, and running /bin/true through
//! the template (process group, pidfd, pipes, empty env) against a bare
//! `std::process::Command` spawn + wait.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use portcullis::command::{CommandTemplate, Param};

fn argv(c: &mut Criterion) {
    let deploy = CommandTemplate::builder("/bin/echo")
        .args(["run", "--rm"])
        .arg_template("--name={name}")
        .arg_template("--replicas={n}")
        .end_of_options()
        .placeholder("image")
        .param(
            "image",
            Param::one_of([("worker", "worker:latest"), ("api", "api:stable")]),
        )
        .param("name", Param::pattern("[a-z][a-z0-9-]{0,30}").unwrap())
        .param("n", Param::integer(1..=10))
        .build()
        .unwrap();
    c.bench_function("command/argv (one_of + pattern + integer)", |b| {
        b.iter(|| {
            deploy
                .argv(black_box([
                    ("image", "worker"),
                    ("name", "web-1"),
                    ("n", "3"),
                ]))
                .unwrap()
        })
    });
    c.bench_function("command/argv refused (--privileged)", |b| {
        b.iter(|| {
            deploy
                .argv(black_box([
                    ("image", "--privileged"),
                    ("name", "web-1"),
                    ("n", "3"),
                ]))
                .unwrap_err()
        })
    });
}

fn run(c: &mut Criterion) {
    let mut group = c.benchmark_group("command/run /bin/true");
    group.sample_size(50);
    let t = CommandTemplate::builder("/bin/true").build().unwrap();
    let none: [(&str, &str); 0] = [];
    group.bench_function("CommandTemplate::run", |b| b.iter(|| t.run(none).unwrap()));
    group.bench_function("std Command spawn + wait (no pipes)", |b| {
        b.iter(|| {
            std::process::Command::new("/bin/true")
                .spawn()
                .unwrap()
                .wait()
                .unwrap()
        })
    });
    group.bench_function("std Command output (pipes)", |b| {
        b.iter(|| std::process::Command::new("/bin/true").output().unwrap())
    });
    group.finish();
}

criterion_group!(benches, argv, run);
criterion_main!(benches);
