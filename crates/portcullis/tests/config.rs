//! `portcullis.toml`: typed objects by name, every mistake located, live reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{crl, leaf, now, pki, Alg, LeafSpec};
use portcullis::config::{Config, ConfigError, ConfigHandle};
use portcullis::ErrorCode;

/// A directory with a CA bundle (`ca.pem`), an intermediate, an empty CRL and `uploads/`.
struct Fixture {
    dir: tempfile::TempDir,
    pki: common::Pki,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(Alg::P256, &LeafSpec::client("deployer"));
        std::fs::write(dir.path().join("ca.pem"), pki.root.pem()).unwrap();
        std::fs::write(dir.path().join("intermediate.pem"), pki.inter.pem()).unwrap();
        std::fs::write(dir.path().join("crl.der"), crl(&pki.inter, &[])).unwrap();
        std::fs::create_dir(dir.path().join("uploads")).unwrap();
        std::fs::write(dir.path().join("uploads/report.txt"), b"ok").unwrap();
        Self { dir, pki }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn load(&self, text: &str) -> Result<Config, ConfigError> {
        Config::from_str_named(text, self.path(), "portcullis.toml")
    }

    fn err(&self, text: &str) -> ConfigError {
        self.load(text)
            .expect_err("the configuration should be refused")
    }
}

const GOOD: &str = r#"
[trust_store.clients]
ca = "ca.pem"
intermediates = ["intermediate.pem"]
crls = ["crl.der"]
cache_size = 100

[egress.partners]
allow_hosts = ["api.partner.example"]
deny_cidrs = ["93.184.216.0/24"]

[root.uploads]
path = "uploads"
symlinks = "deny"

[command.deploy]
program = "/bin/echo"
args = ["run", "--rm", "--", "{image}", "--replicas={count}"]
params.image = { type = "one_of", choices = { worker = "worker:latest", api = "api:stable" } }
params.count = { type = "integer", min = 1, max = 5 }
env = { LANG = "C.UTF-8" }
timeout = 2.5
max_output = 4096
rlimits = { cpu_seconds = 5 }

[command.show]
program = "/bin/cat"
args = ["--", "{file}"]
params.file = { type = "path", root = "uploads" }
"#;

fn at(err: &ConfigError) -> (usize, usize) {
    let loc = err.location().expect("a location");
    (loc.line, loc.column)
}

#[test]
fn objects_by_name_enforce_what_the_file_says() {
    let f = Fixture::new();
    let config = f.load(GOOD).unwrap();

    let store = config.trust_store("clients").unwrap();
    assert_eq!(store.cache_capacity(), 100);
    let id = store.verify(&f.pki.leaf.der(), &[], now()).unwrap();
    assert_eq!(id.common_name.as_deref(), Some("deployer"));
    // A leaf from another CA is refused.
    let other = pki(Alg::P256, &LeafSpec::client("mallory"));
    let refused = store.verify(&other.leaf.der(), &[], now()).unwrap_err();
    assert!(
        ["cert.unknown_issuer", "cert.bad_signature"].contains(&refused.code()),
        "{refused}"
    );

    let dns = |_: &str| -> std::io::Result<Vec<std::net::IpAddr>> {
        Ok(vec!["1.1.1.1".parse().unwrap()])
    };
    let partners = config.egress("partners").unwrap();
    assert!(partners
        .check_with("https://api.partner.example/x", &dns)
        .is_ok());
    assert_eq!(
        partners
            .check_with("https://evil.example/", &dns)
            .unwrap_err()
            .code(),
        "egress.host_not_allowed"
    );
    let rebind = |_: &str| -> std::io::Result<Vec<std::net::IpAddr>> {
        Ok(vec!["169.254.169.254".parse().unwrap()])
    };
    assert!(partners
        .check_with("https://api.partner.example/", &rebind)
        .is_err());

    let uploads = config.root("uploads").unwrap();
    assert_eq!(uploads.read("report.txt").unwrap(), b"ok");
    assert_eq!(uploads.open("../ca.pem").unwrap_err().code(), "path.escape");

    let deploy = config.command("deploy").unwrap();
    assert_eq!(
        deploy.argv([("image", "worker"), ("count", "3")]).unwrap(),
        [
            "/bin/echo",
            "run",
            "--rm",
            "--",
            "worker:latest",
            "--replicas=3"
        ]
    );
    assert_eq!(
        deploy
            .argv([("image", "--privileged"), ("count", "1")])
            .unwrap_err()
            .code(),
        "command.option_injection"
    );
    assert!(deploy.argv([("image", "worker"), ("count", "6")]).is_err());
    assert_eq!(deploy.timeout(), Duration::from_millis(2500));

    let show = config.command("show").unwrap();
    let argv = show.argv([("file", "report.txt")]).unwrap();
    assert!(argv[2].ends_with("/uploads/report.txt"), "{argv:?}");
    assert!(show.argv([("file", "../ca.pem")]).is_err());

    for err in [
        config.trust_store("nope").unwrap_err(),
        config.egress("nope").unwrap_err(),
        config.root("nope").unwrap_err(),
        config.command("nope").unwrap_err(),
    ] {
        assert_eq!(err.code(), "config.unknown_name");
    }
    assert!(config
        .egress("nope")
        .unwrap_err()
        .to_string()
        .contains("defined: partners"));
    let kinds: Vec<&str> = config.summary().iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        ["trust_store", "root", "egress", "command", "command"]
    );
}

#[test]
fn unknown_keys_are_located_and_list_what_is_expected() {
    let f = Fixture::new();
    let err = f.err("[egress.partners]\nallow_hosts = []\nalow_hosts = [\"x\"]\n");
    assert_eq!(err.code(), "config.unknown_key");
    assert_eq!(at(&err), (3, 1));
    let text = err.to_string();
    assert!(
        text.starts_with("portcullis.toml:3:1: unknown key \"alow_hosts\" in [egress.partners]; expected one of: schemes, ports, allow_hosts"),
        "{text}"
    );

    // A misspelt section at the top level.
    let err = f.err("\n[egres.partners]\n");
    assert_eq!(err.code(), "config.unknown_key");
    assert!(
        err.to_string().contains("\"egres\" in the top level"),
        "{err}"
    );

    // Inside an inline table of a command parameter.
    let err = f.err("[command.x]\nprogram = \"/bin/echo\"\nargs = [\"{a}\"]\nparams.a = { type = \"literal\", maxlen = 3 }\n");
    assert_eq!(err.code(), "config.unknown_key");
    assert_eq!(at(&err).0, 4);
    assert!(err.to_string().contains("max_len"), "{err}");

    // Unknown keys in a trust store and in a root.
    let err = f.err("[trust_store.c]\nca = \"ca.pem\"\nspiffe = true\n");
    assert_eq!((err.code(), at(&err)), ("config.unknown_key", (3, 1)));
    let err = f.err("[root.u]\npath = \"uploads\"\nfollow = true\n");
    assert_eq!((err.code(), at(&err)), ("config.unknown_key", (3, 1)));
}

#[test]
fn wrong_types_and_syntax_are_located() {
    let f = Fixture::new();
    let err = f.err("[egress.p]\nallow_hosts = \"api.example.com\"\n");
    assert_eq!(err.code(), "config.invalid_type");
    assert_eq!(at(&err), (2, 15));
    assert!(
        err.to_string().contains("invalid type for \"allow_hosts\" in [egress.p]: string \"api.example.com\", expected a list"),
        "{err}"
    );

    let err = f.err("[egress.p]\nports = [443, 70000]\n");
    assert_eq!(err.code(), "config.invalid_value");
    assert_eq!(at(&err), (2, 15));

    let err = f.err("[egress.p]\nallow_hosts = [\n");
    assert_eq!(err.code(), "config.syntax");

    let err = f.err("[egress.p]\nstrict = true\nstrict = false\n");
    assert_eq!(err.code(), "config.syntax");
    assert_eq!(at(&err).0, 3);

    let err = f.err("[command.x]\nargs = []\n");
    assert_eq!(err.code(), "config.missing_key");
    assert!(
        err.to_string().contains("\"program\" in [command.x]"),
        "{err}"
    );
}

#[test]
fn values_the_capabilities_refuse_point_at_the_value() {
    let f = Fixture::new();
    let err = f.err("[egress.p]\nallow_cidrs = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n");
    assert_eq!(err.code(), "config.invalid_value");
    assert_eq!(at(&err), (2, 30));
    assert!(err.to_string().contains("10.0.0.0/33"), "{err}");
    assert!(matches!(
        err,
        ConfigError::InvalidValue {
            cause: Some("egress.invalid_policy"),
            ..
        }
    ));

    let err = f.err("[egress.p]\nschemes = [\"https\", \"gopher\"]\n");
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (2, 21)));

    let err = f.err("[command.x]\nprogram = \"echo\"\n");
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (2, 11)));
    assert!(err.to_string().contains("not an absolute path"), "{err}");

    let err = f.err("[command.x]\nprogram = \"/bin/sh\"\nargs = [\"-c\", \"{cmd}\"]\nparams.cmd = { type = \"literal\" }\n");
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (2, 11)));
    assert!(matches!(
        err,
        ConfigError::InvalidValue {
            cause: Some("command.interpreter"),
            ..
        }
    ));

    let err = f.err("[command.x]\nprogram = \"/bin/echo\"\nargs = [\"{n}\"]\nparams.n = { type = \"pattern\", pattern = \"(\" }\n");
    assert_eq!(err.code(), "config.invalid_value");
    assert_eq!(at(&err).0, 4);

    // A key that does not belong to the parameter's type is refused, not ignored.
    let err = f.err("[command.x]\nprogram = \"/bin/echo\"\nargs = [\"{n}\"]\nparams.n = { type = \"one_of\", values = [\"a\"], pattern = \"b\" }\n");
    assert_eq!(err.code(), "config.invalid_value");
    assert!(err.to_string().contains("pattern does not apply"), "{err}");

    let err = f.err(
        "[command.x]\nprogram = \"/bin/echo\"\nargs = [\"{n}\"]\nparams.n = { type = \"regex\" }\n",
    );
    assert_eq!(err.code(), "config.invalid_value");
    assert!(err.to_string().contains("expected one of"), "{err}");

    let err = f.err("[command.x]\nprogram = \"/bin/echo\"\ntimeout = -1\n");
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (3, 11)));

    // A parameter without a placeholder is a template mistake, located at the table.
    let err = f.err("[command.x]\nprogram = \"/bin/echo\"\nparams.n = { type = \"literal\" }\n");
    assert_eq!(err.code(), "config.invalid_value");

    let err = f.err("[trust_store.c]\nca = \"ca.pem\"\nusage = \"both\"\n");
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (3, 9)));

    let err = f.err("[root.u]\npath = \"uploads\"\nsymlinks = \"follow\"\n");
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (3, 12)));
}

#[test]
fn missing_and_empty_files_are_located() {
    let f = Fixture::new();
    let err = f.err("[trust_store.c]\nca = [\"ca.pem\", \"missing.pem\"]\n");
    assert_eq!((err.code(), at(&err)), ("config.missing_file", (2, 17)));
    assert!(err.to_string().contains("missing.pem"), "{err}");

    std::fs::write(f.path().join("empty.pem"), "\n").unwrap();
    let err = f.err("[trust_store.c]\nca = \"empty.pem\"\n");
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (2, 6)));
    assert!(err.to_string().contains("is empty"), "{err}");

    std::fs::write(f.path().join("junk.pem"), "not a certificate\n").unwrap();
    let err = f.err("[trust_store.c]\nca = \"junk.pem\"\n");
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (2, 6)));
    assert!(matches!(
        err,
        ConfigError::InvalidValue {
            cause: Some("cert.bad_trust_store"),
            ..
        }
    ));

    let err = f.err("[trust_store.c]\nca = \"ca.pem\"\ncrls = [\"ca.pem\"]\n");
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (3, 9)));

    let err = f.err("[root.u]\npath = \"nowhere\"\n");
    assert_eq!((err.code(), at(&err)), ("config.missing_file", (2, 8)));

    let err = Config::from_path(f.path().join("absent.toml")).unwrap_err();
    assert_eq!(err.code(), "config.io");
    // Not UTF-8, too large, or a device: refused, not read forever.
    std::fs::write(f.path().join("latin1.toml"), b"# caf\xe9\n").unwrap();
    assert_eq!(
        Config::from_path(f.path().join("latin1.toml"))
            .unwrap_err()
            .code(),
        "config.io"
    );
    let big = format!("# {}\n", "x".repeat(2 * 1024 * 1024));
    std::fs::write(f.path().join("big.toml"), big).unwrap();
    let err = Config::from_path(f.path().join("big.toml")).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    assert_eq!(
        Config::from_path("/dev/zero").unwrap_err().code(),
        "config.io"
    );
    let err = f.err("[trust_store.c]\nca = \"/dev/zero\"\n");
    assert_eq!((err.code(), at(&err)), ("config.missing_file", (2, 6)));
}

#[test]
fn references_to_missing_sections_are_located() {
    let f = Fixture::new();
    let err = f.err("[command.x]\nprogram = \"/bin/cat\"\nargs = [\"{f}\"]\nparams.f = { type = \"path\", root = \"upload\" }\n");
    assert_eq!(err.code(), "config.reference");
    assert_eq!(at(&err), (4, 36));
    assert!(
        err.to_string().contains("no root named \"upload\""),
        "{err}"
    );

    let err = f.err("[command.x]\nprogram = \"/bin/pwd\"\nchdir_root = \"uploads\"\n");
    assert_eq!((err.code(), at(&err)), ("config.reference", (3, 14)));
}

#[test]
fn relative_paths_resolve_against_the_file_directory() {
    let f = Fixture::new();
    let file = f.path().join("portcullis.toml");
    std::fs::write(&file, GOOD).unwrap();
    // Load from another working directory's point of view: only the file's directory counts.
    let config = Config::from_path(&file).unwrap();
    assert_eq!(config.path(), Some(file.as_path()));
    assert_eq!(
        config.root("uploads").unwrap().path(),
        std::fs::canonicalize(f.path().join("uploads")).unwrap()
    );
    let err = Config::from_str(GOOD, "/nonexistent").unwrap_err();
    assert_eq!(err.code(), "config.missing_file");
}

#[test]
fn reload_swaps_good_files_and_keeps_the_old_config_on_bad_ones() {
    let f = Fixture::new();
    let file = f.path().join("portcullis.toml");
    std::fs::write(&file, GOOD).unwrap();
    let handle = ConfigHandle::open(&file)
        .unwrap()
        .with_check_interval(Duration::ZERO);
    let before = handle.current();
    assert!(!handle.reload_if_changed().unwrap());

    std::fs::write(
        &file,
        GOOD.replace("api.partner.example", "api2.partner.example"),
    )
    .unwrap();
    assert!(handle.reload_if_changed().unwrap());
    let dns = |_: &str| -> std::io::Result<Vec<std::net::IpAddr>> {
        Ok(vec!["1.1.1.1".parse().unwrap()])
    };
    assert!(handle
        .current()
        .egress("partners")
        .unwrap()
        .check_with("https://api2.partner.example/", &dns)
        .is_ok());
    // The old Arc is still whole for whoever holds it.
    assert!(before
        .egress("partners")
        .unwrap()
        .check_with("https://api.partner.example/", &dns)
        .is_ok());

    std::fs::write(
        &file,
        format!("{GOOD}\n[egress.broken]\ndeny_cidrs = [\"nope\"]\n"),
    )
    .unwrap();
    let err = handle.reload_if_changed().unwrap_err();
    assert_eq!(err.code(), "config.invalid_value");
    assert!(err.to_string().contains("portcullis.toml:"), "{err}");
    assert!(handle.current().egress("broken").is_err());
    assert!(handle
        .current()
        .egress("partners")
        .unwrap()
        .check_with("https://api2.partner.example/", &dns)
        .is_ok());
    // Reported once per change, not on every check.
    assert!(!handle.reload_if_changed().unwrap());
    assert!(handle.reload().is_err());
}

#[test]
fn crl_files_reload_into_the_live_trust_store() {
    let f = Fixture::new();
    let file = f.path().join("portcullis.toml");
    std::fs::write(&file, GOOD).unwrap();
    let handle = ConfigHandle::open(&file)
        .unwrap()
        .with_check_interval(Duration::ZERO);
    let store = std::sync::Arc::clone(handle.current().trust_store("clients").unwrap());
    let serial = 0x1001; // LeafSpec::client's serial
    assert!(store.verify(&f.pki.leaf.der(), &[], now()).is_ok());

    std::fs::write(f.path().join("crl.der"), crl(&f.pki.inter, &[serial])).unwrap();
    assert!(handle.reload_if_changed().unwrap());
    assert_eq!(
        store
            .verify(&f.pki.leaf.der(), &[], now())
            .unwrap_err()
            .code(),
        "cert.revoked"
    );
    // A corrupt CRL is refused and the revocation stays in force.
    std::fs::write(f.path().join("crl.der"), b"garbage").unwrap();
    let err = handle.reload_crls().unwrap_err();
    assert_eq!(err.code(), "config.invalid_value");
    assert!(err.to_string().contains("crl.der"), "{err}");
    assert_eq!(
        store
            .verify(&f.pki.leaf.der(), &[], now())
            .unwrap_err()
            .code(),
        "cert.revoked"
    );
    // A different leaf from the same intermediate is still fine.
    let mut other = LeafSpec::client("other");
    other.serial = 0x2002;
    let other = leaf(Alg::P256, &f.pki.inter, &other);
    assert!(store.verify(&other.der(), &[], now()).is_ok());
}

#[test]
fn the_committed_example_loads_and_means_what_it_says() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/portcullis.toml");
    let config = Config::from_path(&file).unwrap();
    let names: Vec<&str> = config.command_names().collect();
    assert_eq!(names, ["deploy", "show"]);
    let deploy = config.command("deploy").unwrap();
    assert_eq!(
        deploy.argv([("image", "api"), ("replicas", "2")]).unwrap(),
        [
            "/bin/echo",
            "run",
            "--rm",
            "--",
            "registry.example/api:stable",
            "--replicas=2"
        ]
    );
    let internal = config.egress("internal").unwrap();
    let dns = |_: &str| -> std::io::Result<Vec<std::net::IpAddr>> {
        Ok(vec!["10.20.1.2".parse().unwrap()])
    };
    assert!(internal
        .check_with("http://billing.internal.example/", &dns)
        .is_ok());
    let other_private = |_: &str| -> std::io::Result<Vec<std::net::IpAddr>> {
        Ok(vec!["10.21.1.2".parse().unwrap()])
    };
    assert_eq!(
        internal
            .check_with("http://billing.internal.example/", &other_private)
            .unwrap_err()
            .code(),
        "egress.reserved_address"
    );
    assert!(config.trust_store("clients").is_ok());
    assert!(config.crl_paths().next().is_some());
}

#[test]
fn command_settings_the_core_refuses_are_located() {
    let f = Fixture::new();
    // PATH is fixed by the command capability; setting it is refused, not ignored.
    let err = f.err("[command.x]\nprogram = \"/bin/echo\"\nenv = { PATH = \"/tmp\" }\n");
    assert_eq!(err.code(), "config.invalid_value");
    assert_eq!(at(&err).0, 1);
    assert!(matches!(
        err,
        ConfigError::InvalidValue {
            cause: Some("command.bad_template"),
            ..
        }
    ));

    let err = f.err(
        "[command.x]\nprogram = \"/bin/pwd\"\nchdir = \"uploads\"\nchdir_root = \"uploads\"\n",
    );
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (4, 14)));

    // chdir resolves against the file's directory.
    let config = f
        .load("[command.x]\nprogram = \"/bin/pwd\"\nchdir = \"uploads\"\n")
        .unwrap();
    let out = config
        .command("x")
        .unwrap()
        .run(Vec::<(&str, &str)>::new())
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim_end(),
        std::fs::canonicalize(f.path().join("uploads"))
            .unwrap()
            .to_str()
            .unwrap()
    );

    // A program that does not exist, and a symlink to a shell, are refused at the program.
    let err = f.err("[command.x]\nprogram = \"/nonexistent/tool\"\n");
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (2, 11)));
    std::os::unix::fs::symlink("/bin/sh", f.path().join("innocent")).unwrap();
    let text = format!(
        "[command.x]\nprogram = {:?}\n",
        f.path().join("innocent").to_str().unwrap()
    );
    let err = f.err(&text);
    assert!(
        matches!(
            err,
            ConfigError::InvalidValue {
                cause: Some("command.interpreter"),
                ..
            }
        ),
        "{err}"
    );
}

const EDGE: &str = r#"
[trust_store.clients]
ca = "ca.pem"
intermediates = ["intermediate.pem"]

[trust_store.partners]
ca = "ca.pem"

[source.edge]
kind = "nginx"
trusted_proxies = ["10.0.0.0/8", "127.0.0.1"]
header = "X-Client-Cert"
max_cert_bytes = 8192

[[access]]
cn = "deployer"
grants = ["containers:deploy", "read"]

[[access]]
store = "partners"
cn = "deployer"
grants = ["partners:only"]

[rack]
trust_store = "clients"
source = "edge"
require = { "POST /deploy" = "containers:deploy" }
skip = ["/up"]
reload_interval = 0.5
"#;

#[test]
fn sources_access_rules_and_rack_settings() {
    let f = Fixture::new();
    let config = f.load(EDGE).unwrap();

    let edge = config.source("edge").unwrap();
    assert_eq!(edge.header(), "x-client-cert");
    assert_eq!(edge.limits().max_cert_bytes, 8192);
    assert!(edge.trusted_proxies().contains("10.1.2.3".parse().unwrap()));
    assert!(!edge.trusted_proxies().contains("11.1.2.3".parse().unwrap()));
    assert_eq!(
        config.source("nope").unwrap_err().code(),
        "config.unknown_name"
    );

    let id = config
        .trust_store("clients")
        .unwrap()
        .verify(&f.pki.leaf.der(), &[], now())
        .unwrap();
    let general = config.access_policy();
    assert_eq!(general.permissions(&id), ["containers:deploy", "read"]);
    assert!(!general.allowed(&id, "partners:only"));
    // Rules limited to a store apply only to that store's policy.
    let partners = config.access_policy_for("partners").unwrap();
    assert!(partners.allowed(&id, "partners:only"));
    assert!(!config
        .access_policy_for("clients")
        .unwrap()
        .allowed(&id, "partners:only"));
    assert_eq!(
        config.access_policy_for("nope").unwrap_err().code(),
        "config.unknown_name"
    );
    let other = leaf(Alg::P256, &f.pki.inter, &LeafSpec::client("mallory"));
    let mallory = config
        .trust_store("clients")
        .unwrap()
        .verify(&other.der(), &[], now())
        .unwrap();
    assert!(general.permissions(&mallory).is_empty());

    let rack = config.rack().unwrap();
    assert_eq!(rack.trust_store, "clients");
    assert_eq!(rack.source.as_deref(), Some("edge"));
    assert_eq!(
        rack.require,
        [("POST /deploy".to_owned(), "containers:deploy".to_owned())]
    );
    assert_eq!(rack.skip, ["/up"]);
    assert_eq!(rack.reload_interval, Some(Duration::from_millis(500)));
    let kinds: Vec<&str> = config.summary().iter().map(|s| s.kind).collect();
    assert!(
        kinds.contains(&"source") && kinds.contains(&"access") && kinds.contains(&"rack"),
        "{kinds:?}"
    );
}

#[test]
fn source_access_and_rack_mistakes_are_located() {
    let f = Fixture::new();
    let err = f.err("[source.e]\nkind = \"haproxy\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n");
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (2, 8)));
    assert!(err.to_string().contains("expected one of"), "{err}");

    // A /0 would let anyone assert any certificate; an unparsable entry is refused too.
    let err =
        f.err("[source.e]\nkind = \"envoy\"\ntrusted_proxies = [\"10.0.0.0/8\", \"0.0.0.0/0\"]\n");
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (3, 34)));
    let err = f.err("[source.e]\nkind = \"envoy\"\ntrusted_proxies = [\"10.0.0.300\"]\n");
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (3, 20)));
    // A forwarded header without trusted proxies would trust every peer.
    let err = f.err("[source.e]\nkind = \"nginx\"\n");
    assert_eq!((err.code(), at(&err).0), ("config.invalid_value", 1));
    let err = f.err(
        "[source.e]\nkind = \"nginx\"\ntrusted_proxies = [\"127.0.0.1\"]\nheader = \"x client\"\n",
    );
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (4, 10)));
    let err =
        f.err("[source.e]\nkind = \"nginx\"\ntrusted_proxies = [\"127.0.0.1\"]\nproxies = []\n");
    assert_eq!((err.code(), at(&err)), ("config.unknown_key", (4, 1)));

    // Certificate caps: out of range is a located typed error naming the cap, never an
    // allocation sized by the value (i64::MAX once passed `check` and aborted Ruby).
    for (line, expect_col) in [
        ("max_certs = 9223372036854775807", 13),
        ("max_certs = 50_000_000", 13),
        ("max_certs = 65", 13),
        ("max_certs = 0", 13),
        ("max_cert_bytes = 0", 18),
        ("max_chain_bytes = 4194304", 19),
    ] {
        let err = f.err(&format!("[source.s]\nkind = \"tls\"\n{line}\n"));
        assert_eq!(
            (err.code(), at(&err)),
            ("config.invalid_value", (3, expect_col)),
            "{line}: {err}"
        );
        let key = line.split(' ').next().unwrap();
        assert!(err.to_string().contains(key), "{err}");
        assert!(err.to_string().contains("between 1 and"), "{err}");
    }
    assert!(f
        .load("[source.s]\nkind = \"tls\"\nmax_certs = 64\n")
        .is_ok());
    // Negative values are TOML type errors, located too.
    let err = f.err("[source.s]\nkind = \"tls\"\nmax_certs = -1\n");
    assert_eq!(at(&err).0, 3, "{err}");

    // A rule naming a missing store.
    let err = f.err("[trust_store.clients]\nca = \"ca.pem\"\n\n[[access]]\nstore = \"client\"\ncn = \"x\"\ngrants = [\"y\"]\n");
    assert_eq!((err.code(), at(&err)), ("config.reference", (5, 9)));
    assert!(
        err.to_string().contains("no trust store named \"client\""),
        "{err}"
    );
    assert!(err.to_string().contains("clients"), "{err}");
    // A rule that matches everyone, and a typo'd matcher key.
    let err = f.err("\n[[access]]\ngrants = [\"admin\"]\n");
    assert_eq!((err.code(), at(&err).0), ("config.invalid_value", 2));
    assert!(
        matches!(
            err,
            ConfigError::InvalidValue {
                cause: Some("authz.empty_match"),
                ..
            }
        ),
        "{err}"
    );
    let err = f.err("[[access]]\ncommon_name = \"x\"\ngrants = [\"admin\"]\n");
    assert_eq!((err.code(), at(&err)), ("config.unknown_key", (2, 1)));
    assert!(err.to_string().contains("in [[access]]"), "{err}");
    let err =
        f.err("[[access]]\nspiffe_prefix = \"spiffe://example.org/../x\"\ngrants = [\"admin\"]\n");
    assert_eq!(err.code(), "config.invalid_value");

    // [rack] references.
    let base = "[trust_store.clients]\nca = \"ca.pem\"\n\n[[access]]\ncn = \"d\"\ngrants = [\"deploy\"]\n\n[rack]\n";
    let err = f.err(&format!("{base}trust_store = \"client\"\n"));
    assert_eq!((err.code(), at(&err)), ("config.reference", (9, 15)));
    let err = f.err(&format!(
        "{base}trust_store = \"clients\"\nsource = \"edge\"\n"
    ));
    assert_eq!((err.code(), at(&err)), ("config.reference", (10, 10)));
    let err = f.err(&format!(
        "{base}trust_store = \"clients\"\nrequire = {{ \"/admin\" = \"admn\" }}\n"
    ));
    assert_eq!(err.code(), "config.reference");
    assert!(
        err.to_string()
            .contains("no [[access]] rule grants \"admn\""),
        "{err}"
    );
    // Routes compile as the middleware compiles them (authz::RouteRequirements).
    for (route, reason) in [
        ("admin", "the path starts with /"),
        ("GET POST /x", "must be"),
        ("G3T /x", "method"),
    ] {
        let err = f.err(&format!(
            "{base}trust_store = \"clients\"\nrequire = {{ \"{route}\" = \"deploy\" }}\n"
        ));
        assert_eq!(err.code(), "config.invalid_value", "{route}");
        assert!(err.to_string().contains(reason), "{err}");
    }
    for (route, reason) in [
        ("GET /up", "skip entries take no method"),
        ("up", "starting with /"),
        ("/a/../up", "not canonical"),
    ] {
        let err = f.err(&format!(
            "{base}trust_store = \"clients\"\nskip = [\"{route}\"]\n"
        ));
        assert_eq!(err.code(), "config.invalid_value", "{route}");
        assert!(err.to_string().contains(reason), "{err}");
    }
    let err = f.err(&format!(
        "{base}trust_store = \"clients\"\nreload_interval = -1\n"
    ));
    assert_eq!((err.code(), at(&err)), ("config.invalid_value", (10, 19)));
    assert!(f
        .load(&format!(
            "{base}trust_store = \"clients\"\nrequire = {{ \"/d\" = \"deploy\" }}\n"
        ))
        .is_ok());
}

#[test]
fn hostile_text_gets_a_located_error_and_never_a_panic() {
    let f = Fixture::new();
    let cases = [
        "[",
        "[[",
        "[]",
        "[egress.é]\nallow_hosts = [\"ü\"]\nüber = 1\n",
        "[egress.\"a.b\"]\nalow = 1",
        "  [  egress . p  ]  # comment\n  nope = 1\n",
        "[[access]]\n[[access]]\ncn = \"x\"\ngrants = [\"y\"]\n",
        "[command.x]\nprogram = \"/bin/echo\"\nparams = 5\n",
        "[command.x]\nprogram = \"/bin/echo\"\nparams.a = { type = 5 }\n",
        "[trust_store.c]\nca = [[\"nested\"]]\n",
        "[trust_store.c]\nca = []\n",
        "\u{feff}[egress.p]\nx = 1\n",
        "a = \"\\u0000\"\n",
        "[egress.p]\nports = [1, 2, -3]\n",
        "[rack]\n",
        "[command.x]\nprogram = \"/bin/echo\"\ntimeout = nan\n",
        "[command.x]\nprogram = \"/bin/echo\"\ntimeout = inf\n",
        "[command.x]\nprogram = \"/bin/echo\"\nparams.n = { type = \"integer\", min = 5, max = 1 }\nargs = [\"{n}\"]\n",
    ];
    for text in cases {
        let err = f.err(text);
        let loc = err
            .location()
            .unwrap_or_else(|| panic!("{text:?}: no location: {err}"));
        assert!(
            loc.line >= 1 && loc.line <= text.lines().count().max(1) + 1,
            "{text:?}: {err}"
        );
        assert!(
            err.to_string().starts_with("portcullis.toml:"),
            "{text:?}: {err}"
        );
    }
}

#[test]
fn egress_tunnels_and_host_names_in_the_file() {
    let f = Fixture::new();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let config = f
        .load("[egress.default]\n\n[egress.tunnels]\nallow_6to4 = true\nallow_teredo = true\n\n[egress.six]\nallow_6to4 = true\n")
        .unwrap();
    let six_to_four = ip("2002:808:808::");
    let teredo = ip("2001:0:4136:e378:8000:63bf:a247:27dd");
    let verdict = |name: &str, addr| match config.egress(name).unwrap().check_ip(addr) {
        Ok(()) => "ok",
        Err(e) => e.code(),
    };
    assert_eq!(verdict("default", six_to_four), "egress.ipv6_tunnel");
    assert_eq!(verdict("default", teredo), "egress.ipv6_tunnel");
    assert_eq!(verdict("tunnels", six_to_four), "ok");
    assert_eq!(verdict("tunnels", teredo), "ok");
    assert_eq!(verdict("six", six_to_four), "ok");
    assert_eq!(verdict("six", teredo), "egress.ipv6_tunnel");
    let summary: Vec<String> = config
        .summary()
        .iter()
        .filter(|s| s.kind == "egress")
        .flat_map(|s| s.details.clone())
        .collect();
    assert!(
        summary
            .iter()
            .any(|d| d.contains("6to4 (2002::/16) and Teredo (2001::/32) refused")),
        "{summary:?}"
    );

    let err = f.err("[egress.p]\nallow_6to4 = \"yes\"\n");
    assert_eq!(err.code(), "config.invalid_type");

    // host patterns follow the core's one name rule: no empty label but the root dot
    for pattern in [
        "vault.corp.example..",
        "a..example",
        "*..example.com",
        ".example",
    ] {
        for key in ["deny_hosts", "allow_hosts"] {
            let err = f.err(&format!(
                "[egress.p]\n{key} = [\"ok.example.\", \"{pattern}\"]\n"
            ));
            assert_eq!(err.code(), "config.invalid_value", "{key} {pattern}");
            assert!(
                err.to_string().contains("empty label") || err.to_string().contains("empty host"),
                "{err}"
            );
            assert!(matches!(
                err,
                ConfigError::InvalidValue {
                    cause: Some("egress.invalid_policy"),
                    ..
                }
            ));
        }
    }
}

#[test]
fn crl_files_mid_rotation_keep_the_newest_and_forged_ones_are_named() {
    use common::{crl_with, intermediate, ymd};
    let f = Fixture::new();
    let serial = 0x1001; // LeafSpec::client's serial
    let stale = crl_with(&f.pki.inter, &[], 1, ymd(2025, 1, 1), ymd(2030, 1, 1));
    let fresh = crl_with(&f.pki.inter, &[serial], 2, ymd(2025, 5, 1), ymd(2030, 1, 1));
    // Sorted by name the stale file comes first, as `Dir["crls/*"]` would list them.
    std::fs::write(f.path().join("a-stale.der"), &stale).unwrap();
    std::fs::write(f.path().join("b-fresh.der"), &fresh).unwrap();
    let text = "[trust_store.c]\nca = \"ca.pem\"\nintermediates = [\"intermediate.pem\"]\n\
                crls = [\"a-stale.der\", \"b-fresh.der\"]\n";
    let config = f.load(text).unwrap();
    let store = config.trust_store("c").unwrap();
    assert_eq!(
        store
            .verify(&f.pki.leaf.der(), &[], now())
            .unwrap_err()
            .code(),
        "cert.revoked"
    );
    // A CRL in the intermediate's name but signed by another key names its file.
    let impostor = intermediate(Alg::P256, &f.pki.root, "Test Intermediate");
    let forged = crl_with(&impostor, &[], 9, ymd(2025, 5, 1), ymd(2030, 1, 1));
    std::fs::write(f.path().join("b-fresh.der"), &forged).unwrap();
    let err = f.err(text);
    assert_eq!(err.code(), "config.invalid_value");
    let msg = err.to_string();
    assert!(msg.contains("b-fresh.der"), "{msg}");
    assert!(msg.contains("signature does not verify"), "{msg}");
    // A lapsed CRL is loaded (what it lists stays revoked) and `check` says it lapsed.
    let lapsed = crl_with(&f.pki.inter, &[], 3, ymd(2020, 1, 1), ymd(2020, 2, 1));
    std::fs::write(f.path().join("b-fresh.der"), &lapsed).unwrap();
    let config = f.load(text).unwrap();
    let details: Vec<&String> = config
        .summary()
        .iter()
        .flat_map(|s| s.details.iter())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("lapsed") && d.contains("accepted unconfirmed")),
        "{details:?}"
    );
}

#[test]
fn guard_table_is_validated_like_guard_itself() {
    let f = Fixture::new();
    let ok = f
        .load("[egress.web]\nallow_cidrs = [\"10.0.0.0/8\"]\n[guard]\negress = \"web\"\nspawn = \"no_shell\"\nmode = \"report\"\nprograms = [\"git\", \"/usr/bin/convert\"]\n")
        .unwrap();
    let guard = ok.guard().unwrap();
    assert_eq!(guard.egress.as_deref(), Some("web"));
    assert_eq!(guard.mode, portcullis::guard::Mode::Report);
    assert_eq!(guard.programs.as_deref().unwrap().len(), 2);
    assert!(ok.summary().iter().any(|s| s.kind == "guard"));
    assert!(f.load("[guard]\n").unwrap().guard().is_some());
    assert!(f.load("").unwrap().guard().is_none());

    let err = f.err("[egress.web]\n[guard]\negress = \"wbe\"\n");
    assert_eq!(err.code(), "config.reference");
    assert!(
        err.to_string().contains("wbe") && err.to_string().contains("web"),
        "{err}"
    );
    assert_eq!(at(&err), (3, 10));
    let err = f.err("[guard]\nmode = \"loud\"\n");
    assert!(err.to_string().contains("mode \"loud\""), "{err}");
    assert_eq!(at(&err).0, 2);
    let err = f.err("[guard]\nspawn = \"sometimes\"\n");
    assert!(err.to_string().contains("spawn \"sometimes\""), "{err}");
    let err = f.err("[guard]\nprograms = [\" git\"]\n");
    assert!(err.to_string().contains("programs"), "{err}");
    let err = f.err("[guard]\nmodes = \"report\"\n");
    assert_eq!(err.code(), "config.unknown_key");
}
