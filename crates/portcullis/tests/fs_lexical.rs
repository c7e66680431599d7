//! The lexical gate: every class of hostile spelling gets its own code, before any syscall.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures: a failed setup step should abort the test

use portcullis::fs::{check_name, SafeRoot, MAX_COMPONENT_BYTES, MAX_PATH_BYTES};
use portcullis::ErrorCode;

fn code(name: &[u8]) -> &'static str {
    match check_name(name) {
        Ok(()) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn accepts_ordinary_relative_names() {
    for name in [
        &b"a"[..],
        b"a.txt",
        b"css/site.css",
        b"a/../b",
        b"./a",
        b"a/./b",
        b"a//b",
        b"a/",
        b".",
        b"a/..",
        b"%2e%2e/secret", // never URL-decoded: a literal directory named `%2e%2e`
        b"..a",
        b"a..",
        b"...",
        b"caf\xc3\xa9",
        b"ab:c", // a colon after the second byte is not a drive
        b"1:x",  // only letters are drive letters
    ] {
        assert_eq!(code(name), "ok", "{:?}", String::from_utf8_lossy(name));
    }
}

#[test]
fn each_hostile_class_has_its_code() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "path.empty"),
        (b"a\0b", "path.nul"),
        (b"\0", "path.nul"),
        (b"a\nb", "path.control"),
        (b"a\rb", "path.control"),
        (b"\x1b[31m", "path.control"),
        (b"a\x7fb", "path.control"),
        (b"a\tb", "path.control"),
        (b"\xff\xfe", "path.not_utf8"),
        (b"caf\xe9", "path.not_utf8"),
        (b"a\\b", "path.backslash"),
        (b"..\\..\\windows", "path.backslash"),
        (b"C:", "path.drive"),
        (b"a:b", "path.drive"), // drive-relative on Windows
        (b"c:/windows/win.ini", "path.drive"),
        (b"C:\\x", "path.drive"),
        (b"//server/share", "path.drive"),
        (b"\\\\server\\share", "path.drive"),
        (b"/etc/passwd", "path.absolute"),
        (b"/", "path.absolute"),
        (b"..", "path.escape"),
        (b"../etc/passwd", "path.escape"),
        (b"../public2/secret", "path.escape"),
        (b"a/../../b", "path.escape"),
        (b"a/b/../../..", "path.escape"),
        (b"./..", "path.escape"),
        (b"a/./../..", "path.escape"),
    ];
    for (name, expected) in cases {
        assert_eq!(code(name), *expected, "{:?}", String::from_utf8_lossy(name));
    }
}

#[test]
fn length_limits() {
    let component = "x".repeat(MAX_COMPONENT_BYTES);
    assert_eq!(code(component.as_bytes()), "ok");
    let long_component = "x".repeat(MAX_COMPONENT_BYTES + 1);
    assert_eq!(code(long_component.as_bytes()), "path.too_long");
    assert_eq!(
        code(format!("a/{long_component}/b").as_bytes()),
        "path.too_long"
    );
    let path = "a/".repeat(MAX_PATH_BYTES / 2);
    assert_eq!(path.len(), MAX_PATH_BYTES);
    assert_eq!(code(path.as_bytes()), "ok");
    let too_long = format!("{path}a");
    assert_eq!(code(too_long.as_bytes()), "path.too_long");
}

#[test]
fn messages_name_the_input_escaped() {
    let err = check_name(b"../etc/passwd").unwrap_err();
    assert!(err.to_string().contains("\"../etc/passwd\""), "{err}");
    // Control characters are shown escaped, so a message cannot forge log lines.
    let err = check_name(b"a\nFAKE LOG LINE").unwrap_err();
    assert!(!err.to_string().contains('\n'), "{err}");
    assert!(err.to_string().contains("a\\nFAKE"), "{err}");
}

#[test]
fn every_operation_applies_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let root = SafeRoot::new(dir.path()).unwrap();
    let name = "../x";
    assert_eq!(root.open(name).unwrap_err().code(), "path.escape");
    assert_eq!(root.read(name).unwrap_err().code(), "path.escape");
    assert_eq!(
        root.write(name, b"x", false).unwrap_err().code(),
        "path.escape"
    );
    assert_eq!(root.mkdir_p(name).unwrap_err().code(), "path.escape");
    assert_eq!(root.metadata(name).unwrap_err().code(), "path.escape");
    assert_eq!(root.read_dir(name).unwrap_err().code(), "path.escape");
    assert_eq!(root.remove(name).unwrap_err().code(), "path.escape");
    assert_eq!(root.join(name).unwrap_err().code(), "path.escape");
    assert_eq!(
        root.resolve_for_argv(name).unwrap_err().code(),
        "path.escape"
    );
    // Byte and OsStr input reach the same gate.
    assert_eq!(
        root.open(&b"a\xffb"[..]).unwrap_err().code(),
        "path.not_utf8"
    );
    use std::os::unix::ffi::OsStrExt;
    let os = std::ffi::OsStr::from_bytes(b"a\0b");
    assert_eq!(root.open(os).unwrap_err().code(), "path.nul");
}
