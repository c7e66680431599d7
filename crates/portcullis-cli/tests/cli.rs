//! Runs the built `portcullis` binary: every subcommand, exit codes, text and JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/portcullis.toml")
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

/// A fresh demo PKI (and its portcullis.toml) in a temporary directory.
fn demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["pki", "demo", dir.path().to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

#[test]
fn help_on_every_subcommand() {
    for sub in [
        &["--help"][..],
        &["check", "--help"],
        &["verify", "--help"],
        &["url", "--help"],
        &["path", "--help"],
        &["command", "--help"],
        &["pki", "--help"],
        &["pki", "demo", "--help"],
    ] {
        let out = run(sub);
        assert_eq!(code(&out), 0, "{sub:?}");
        assert!(stdout(&out).contains("Usage:"), "{sub:?}: {}", stdout(&out));
    }
    // Usage errors exit 2.
    assert_eq!(code(&run(&[])), 2);
    assert_eq!(code(&run(&["frobnicate"])), 2);
    assert_eq!(code(&run(&["verify", "--store", "x", "leaf.pem"])), 2);
}

#[test]
fn check_summarizes_the_example_and_locates_mistakes() {
    let example = example();
    let out = run(&["check", example.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(text.contains("[egress.partners]"), "{text}");
    assert!(text.contains("hosts: api.partner.example"), "{text}");
    assert!(text.contains("[command.deploy]"), "{text}");

    let out = run(&["check", "--json", example.to_str().unwrap()]);
    let v = json(&out);
    assert_eq!(v["ok"], true);
    let kinds: Vec<&str> = v["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "trust_store",
        "egress",
        "root",
        "command",
        "source",
        "access",
        "rack",
    ] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("portcullis.toml");
    std::fs::write(&bad, "[egress.partners]\nalow_hosts = []\n").unwrap();
    let out = run(&["check", bad.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("portcullis.toml:2:1: unknown key \"alow_hosts\" in [egress.partners]"),
        "{err}"
    );

    let out = run(&["check", "--json", bad.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    let v = json(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], "config.unknown_key");
    assert_eq!(v["error"]["location"]["line"], 2);
    assert_eq!(v["error"]["location"]["column"], 1);

    let out = run(&["check", dir.path().join("missing.toml").to_str().unwrap()]);
    assert_eq!(code(&out), 2);
}

#[test]
fn verify_accepts_the_good_client_and_refuses_the_others() {
    let dir = demo();
    let d = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
    let config = d("portcullis.toml");

    let out = run(&[
        "verify",
        "--config",
        &config,
        "--store",
        "clients",
        &d("client.pem"),
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains("CN=demo-client"));
    assert!(
        stdout(&out).contains("permissions: containers:deploy"),
        "{}",
        stdout(&out)
    );

    let out = run(&[
        "verify",
        "--json",
        "--config",
        &config,
        "--store",
        "clients",
        &d("spiffe-chain.pem"),
    ]);
    assert_eq!(code(&out), 0);
    let v = json(&out);
    assert_eq!(v["allowed"], true);
    assert_eq!(
        v["identity"]["spiffe_id"],
        "spiffe://demo.portcullis.example/ns/ops/sa/deployer"
    );
    assert_eq!(
        v["permissions"],
        serde_json::json!(["admin", "containers:deploy"])
    );

    for (file, expected) in [
        ("revoked.pem", "cert.revoked"),
        ("wrong-issuer.pem", "cert.unknown_issuer"),
    ] {
        let out = run(&[
            "verify",
            "--json",
            "--config",
            &config,
            "--store",
            "clients",
            &d(file),
        ]);
        assert_eq!(code(&out), 1, "{file}");
        let v = json(&out);
        assert_eq!(v["allowed"], false);
        assert_eq!(v["error"]["code"], expected, "{file}");
    }
    // The server certificate is for TLS server authentication, not client.
    let out = run(&[
        "verify",
        "--config",
        &config,
        "--store",
        "clients",
        &d("server.pem"),
    ]);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("refused: cert."), "{}", stdout(&out));

    // An expired check time is refused too.
    let out = run(&[
        "verify",
        "--json",
        "--at",
        "4102444800",
        "--config",
        &config,
        "--store",
        "clients",
        &d("client.pem"),
    ]);
    assert_eq!(json(&out)["error"]["code"], "cert.expired");

    // Unknown store: a configuration error.
    let out = run(&[
        "verify",
        "--json",
        "--config",
        &config,
        "--store",
        "nope",
        &d("client.pem"),
    ]);
    assert_eq!(code(&out), 2);
    assert_eq!(json(&out)["error"]["code"], "config.unknown_name");
}

#[test]
fn url_gives_verdict_canonical_url_and_addresses() {
    let example = example();
    let ex = example.to_str().unwrap();
    let out = run(&[
        "url",
        "--json",
        "--config",
        ex,
        "--policy",
        "partners",
        "--resolve",
        "api.partner.example=93.184.215.14",
        "https://API.partner.example./v1?q=1",
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let v = json(&out);
    let r = &v["results"][0];
    assert_eq!(r["allowed"], true);
    assert_eq!(r["canonical"], "https://api.partner.example./v1?q=1");
    assert_eq!(r["host"], "api.partner.example");
    assert_eq!(r["addresses"][0], "93.184.215.14");

    // DNS rebinding to the metadata address, a reserved IP spelling, a host not listed.
    let out = run(&[
        "url",
        "--json",
        "--config",
        ex,
        "--policy",
        "partners",
        "--resolve",
        "api.partner.example=169.254.169.254",
        "https://api.partner.example/",
        "https://0x7f.1/",
        "https://evil.example/",
    ]);
    assert_eq!(code(&out), 1);
    let v = json(&out);
    assert_eq!(v["allowed"], false);
    let codes: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes[0], "egress.metadata");
    assert!(codes[1].starts_with("egress."), "{codes:?}");
    assert_eq!(codes[2], "egress.host_not_allowed");

    let out = run(&[
        "url",
        "--config",
        ex,
        "--policy",
        "partners",
        "--resolve",
        "nonsense",
        "https://x/",
    ]);
    assert_eq!(code(&out), 2);
}

#[test]
fn url_needs_no_policy_when_the_file_has_one() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.toml");
    std::fs::write(&one, "[egress.only]\nallow_hosts = [\"api.example\"]\n").unwrap();
    let out = run(&[
        "url",
        "--json",
        "--config",
        one.to_str().unwrap(),
        "--resolve",
        "api.example=93.184.215.14",
        "https://api.example/",
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(json(&out)["results"][0]["allowed"], true);

    // Two policies: say which exist instead of guessing.
    let example = example();
    let out = run(&["url", "--config", example.to_str().unwrap(), "https://x/"]);
    assert_eq!(code(&out), 2);
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("--policy") && text.contains("partners") && text.contains("internal"),
        "{text}"
    );
}

#[test]
fn path_says_a_directory_is_not_a_file_to_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let out = run(&[
        "path",
        "--json",
        "--root",
        dir.path().to_str().unwrap(),
        "sub",
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(json(&out)["results"][0]["directory"], true);
    let out = run(&["path", "--root", dir.path().to_str().unwrap(), "sub"]);
    assert!(stdout(&out).contains("read/open refuse it with path.not_a_file"));
}

#[test]
fn path_stays_beneath_the_root() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), b"x").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("evil")).unwrap();
    let root = dir.path().to_str().unwrap();

    let out = run(&["path", "--root", root, "a.txt", "new/file.txt"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains("does not exist yet"));

    for hostile in [
        "../etc/passwd",
        "/etc/passwd",
        "evil",
        "a.txt/../../x",
        "a\\..\\b",
    ] {
        let out = run(&["path", "--json", "--root", root, hostile]);
        assert_eq!(code(&out), 1, "{hostile}: {}", stdout(&out));
        let v = json(&out);
        assert_eq!(v["results"][0]["allowed"], false, "{hostile}");
        assert!(v["results"][0]["error"]["code"]
            .as_str()
            .unwrap()
            .starts_with("path."));
    }

    let example = example();
    let out = run(&[
        "path",
        "--json",
        "--config",
        example.to_str().unwrap(),
        "--root-name",
        "uploads",
        "README.txt",
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(json(&out)["results"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("examples/uploads/README.txt"));
    // --root and --config together is a usage error.
    assert_eq!(
        code(&run(&[
            "path",
            "--root",
            root,
            "--config",
            "x",
            "--root-name",
            "y",
            "a"
        ])),
        2
    );
}

#[test]
fn command_shows_the_argv_and_never_runs_it() {
    let example = example();
    let ex = example.to_str().unwrap();
    let out = run(&[
        "command",
        "--json",
        "--config",
        ex,
        "deploy",
        "image=worker",
        "replicas=3",
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(
        json(&out)["argv"],
        serde_json::json!([
            "/bin/echo",
            "run",
            "--rm",
            "--",
            "registry.example/worker:stable",
            "--replicas=3"
        ])
    );

    for (values, expected) in [
        (
            &["image=--privileged", "replicas=1"][..],
            "command.option_injection",
        ),
        (&["image=worker", "replicas=11"], "command.invalid_value"),
        (&["image=worker"], "command.missing_param"),
        (
            &["image=worker", "replicas=1", "extra=1"],
            "command.unknown_param",
        ),
    ] {
        let mut args = vec!["command", "--json", "--config", ex, "deploy"];
        args.extend_from_slice(values);
        let out = run(&args);
        assert_eq!(code(&out), 1, "{values:?}: {}", stdout(&out));
        assert_eq!(json(&out)["error"]["code"], expected, "{values:?}");
    }
    // A marker file proves nothing ran: `show` would cat it, but we only print argv.
    let out = run(&["command", "--config", ex, "show", "file=README.txt"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("(not run"), "{}", stdout(&out));
    assert!(
        !stdout(&out).contains("Files beneath this directory"),
        "the program ran"
    );

    assert_eq!(
        code(&run(&["command", "--config", ex, "deploy", "novalue"])),
        2
    );
    assert_eq!(code(&run(&["command", "--config", ex, "nope"])), 2);
}

#[test]
fn pki_demo_writes_a_usable_pki() {
    let dir = demo();
    for f in [
        "ca.pem",
        "intermediate.pem",
        "server.pem",
        "server-key.pem",
        "client.pem",
        "revoked.pem",
        "crl.pem",
        "wrong-issuer.pem",
        "spiffe.pem",
        "portcullis.toml",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let out = run(&[
        "check",
        dir.path().join("portcullis.toml").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&[
        "pki",
        "demo",
        "--json",
        dir.path().join("again").to_str().unwrap(),
    ]);
    assert_eq!(json(&out)["ok"], true);
}
