//! Fuzzes the lexical gate of `portcullis::fs`: it must never panic, and whatever it
//! accepts must satisfy, by an independent re-check, every rule it claims to enforce.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::fs::{check_name, MAX_COMPONENT_BYTES, MAX_PATH_BYTES};
use portcullis::ErrorCode;

/// The rules, restated as simply as possible.
fn acceptable(name: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(name) else {
        return false;
    };
    if text.is_empty()
        || name.len() > MAX_PATH_BYTES
        || name.iter().any(|&b| b < 0x20 || b == 0x7f)
        || text.contains('\\')
        || text.starts_with('/')
        || (name.len() >= 2 && name[0].is_ascii_alphabetic() && name[1] == b':')
    {
        return false;
    }
    let mut depth: i64 = 0;
    for component in text.split('/') {
        if component.len() > MAX_COMPONENT_BYTES {
            return false;
        }
        match component {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let verdict = check_name(data);
    assert_eq!(
        verdict.is_ok(),
        acceptable(data),
        "{:?}",
        String::from_utf8_lossy(data)
    );
    if let Err(err) = verdict {
        assert!(err.code().starts_with("path."));
        // Messages never carry raw control characters (log injection).
        assert!(!err.to_string().chars().any(|c| c.is_control()));
    }
});
