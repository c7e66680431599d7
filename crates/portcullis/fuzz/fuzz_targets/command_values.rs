//! Fuzzes command templates: the `{name}` element parser, and value validation for every
//! parameter type. Invariants: nothing panics; an accepted argv has the template's shape;
//! no element holds NUL/CR/LF; no element starts with '-' unless the template put it there;
//! a `path` value always becomes an absolute path beneath its root; Ruby's ASCII `\d` and
//! `\w` accept only ASCII, also case-insensitively and inside classes. Selector 0xfe
//! takes any text as a pattern (translated to Ruby's meaning): it must build or be refused,
//! and an accepted pattern must judge values without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::command::{CommandTemplate, Param};
use portcullis::fs::SafeRoot;
use std::path::PathBuf;
use std::sync::OnceLock;

/// A small tree (a file, a subdirectory, a symlink inside and one out) for `path` values.
fn root_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base =
            std::env::temp_dir().join(format!("portcullis-fuzz-command-{}", std::process::id()));
        let dir = base.join("root");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.txt"), b"a").unwrap();
        std::fs::write(dir.join("sub/b.txt"), b"b").unwrap();
        std::fs::write(base.join("outside.txt"), b"x").unwrap();
        let _ = std::os::unix::fs::symlink("../outside.txt", dir.join("out"));
        let _ = std::os::unix::fs::symlink("sub/b.txt", dir.join("in"));
        std::fs::canonicalize(dir).unwrap()
    })
}

/// One template per parameter type, built once. The program is only checked, never run.
fn templates() -> &'static [(CommandTemplate, &'static [&'static str])] {
    static T: OnceLock<Vec<(CommandTemplate, &'static [&'static str])>> = OnceLock::new();
    T.get_or_init(|| {
        let build = |param: Param, args: &[&str]| {
            let mut b = CommandTemplate::builder("/bin/echo");
            for a in args {
                b = b.arg_template(*a);
            }
            b.param("v", param).build().unwrap()
        };
        const PLAIN: &[&str] = &["run", "--", "{v}"];
        const PREFIXED: &[&str] = &["--name={v}", "{v}-x"];
        vec![
            (build(Param::literal(), PLAIN), PLAIN),
            (build(Param::literal().max_len(16), PREFIXED), PREFIXED),
            (build(Param::integer(-1000..=1000), PLAIN), PLAIN),
            (build(Param::integer(..).allow_leading_dash(), PLAIN), PLAIN),
            (
                build(Param::pattern("[-a-z0-9._/]+").unwrap(), PLAIN),
                PLAIN,
            ),
            (
                build(
                    Param::one_of([("worker", "worker:latest"), ("api", "api:stable")]),
                    PLAIN,
                ),
                PLAIN,
            ),
            (build(Param::pattern(r"\d+").unwrap(), PLAIN), PLAIN),
            (build(Param::pattern(r"(?i)[\w.]+").unwrap(), PLAIN), PLAIN),
            (build(Param::pattern(r"(?i:\w|\h)+").unwrap(), PLAIN), PLAIN),
            // The path template stays last (`is_path` below).
            (
                build(Param::path(SafeRoot::new(root_dir()).unwrap()), PLAIN),
                PLAIN,
            ),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if selector == 0xff {
        // The element parser: any text, as a template argument, must build or be refused.
        let _ = CommandTemplate::builder("/bin/echo")
            .arg_template(text)
            .param("v", Param::literal())
            .build()
            .and_then(|t| t.argv([("v", "x")]));
        return;
    }
    if selector == 0xfe {
        // Any text as a pattern, the rest after the first NUL as a value.
        let (pattern, value) = text.split_once('\0').unwrap_or((text, "x"));
        if let Ok(param) = Param::pattern(pattern) {
            if let Ok(t) = CommandTemplate::builder("/bin/echo")
                .placeholder("v")
                .param("v", param)
                .build()
            {
                let _ = t.argv([("v", value)]);
            }
        }
        return;
    }
    let all = templates();
    let (template, shape) = &all[usize::from(selector) % all.len()];
    let is_path = usize::from(selector) % all.len() == all.len() - 1;
    if let Ok(argv) = template.argv([("v", text)]) {
        if is_path {
            let resolved = std::path::Path::new(&argv[3]);
            assert!(resolved.starts_with(root_dir()), "{resolved:?} escaped");
        }
        let index = usize::from(selector) % all.len();
        if (6..=8).contains(&index) {
            // `\d+`, `(?i)[\w.]+`, `(?i:\w|\h)+`: Ruby's meaning is ASCII only.
            assert!(
                argv[3]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.'),
                "{:?} accepted",
                argv[3]
            );
            if index == 6 {
                assert!(argv[3].bytes().all(|b| b.is_ascii_digit()));
            }
        }
        assert_eq!(argv.len(), shape.len() + 1);
        for (element, arg) in argv[1..].iter().zip(shape.iter()) {
            assert!(!element.contains(['\0', '\r', '\n']));
            if !arg.contains("{v}") {
                assert_eq!(element, arg);
            } else if element.starts_with('-') {
                assert!(
                    arg.starts_with('-') || selector as usize % all.len() == 3,
                    "{element:?}"
                );
            }
        }
    }
});
