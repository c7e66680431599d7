//! Fuzzes the `portcullis.toml` loader (`Config::from_str_named`): TOML syntax, every
//! section's keys and types, and the capability builders it feeds. The base directory is a
//! scratch tree holding the committed test PKI (`pki/ca.pem`, `pki/intermediate.pem`,
//! `pki/crl.pem`) and an `uploads/` directory, so configurations that reference them can
//! load all the way.
//!
//! Invariants: nothing panics; loading is deterministic (same verdict, same message);
//! every error has a `config.` code, and one that carries a location names this file and a
//! line and column inside the text; a loaded configuration hands out every object it lists.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::config::Config;
use portcullis::ErrorCode;

const FILE: &str = "fuzz.toml";

fn base_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("portcullis-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pki")).unwrap();
        std::fs::create_dir_all(dir.join("uploads")).unwrap();
        std::fs::write(dir.join("pki/ca.pem"), include_bytes!("../data/ca.pem")).unwrap();
        std::fs::write(
            dir.join("pki/intermediate.pem"),
            include_bytes!("../data/intermediate.pem"),
        )
        .unwrap();
        std::fs::write(
            dir.join("pki/crl.pem"),
            include_bytes!("../data/intermediate.crl.pem"),
        )
        .unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Device and kernel files are refused by size cap or type, but reading up to the cap
    // from /dev/zero on every input would make the run about I/O, not parsing.
    if ["/dev", "/proc", "/sys"].iter().any(|p| text.contains(p)) {
        return;
    }
    let first = Config::from_str_named(text, base_dir(), FILE);
    let second = Config::from_str_named(text, base_dir(), FILE);
    match (&first, &second) {
        (Ok(config), Ok(_)) => {
            for name in config.trust_store_names() {
                assert!(config.trust_store(name).is_ok(), "{name}");
                assert!(config.access_policy_for(name).is_ok(), "{name}");
            }
            for name in config.egress_names() {
                assert!(config.egress(name).is_ok(), "{name}");
            }
            for name in config.root_names() {
                assert!(config.root(name).is_ok(), "{name}");
            }
            for name in config.command_names() {
                assert!(config.command(name).is_ok(), "{name}");
            }
            for name in config.source_names() {
                assert!(config.source(name).is_ok(), "{name}");
            }
            let _ = config.summary();
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string());
            assert!(a.code().starts_with("config."), "{}", a.code());
            if let Some(at) = a.location() {
                assert_eq!(at.file, FILE);
                assert!(at.line >= 1 && at.line <= text.lines().count() + 1, "{at}");
                assert!(at.column >= 1, "{at}");
                assert!(a.to_string().starts_with(FILE), "{a}");
            }
        }
        _ => panic!(
            "nondeterministic: {:?} then {:?}",
            first.is_ok(),
            second.is_ok()
        ),
    }
});
