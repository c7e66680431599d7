//! The interpreters an executable needs: the `#!` line of a script, the `PT_INTERP` of an
//! ELF file (the dynamic loader). The kernel opens both for execution, so a program allowed
//! in `exec` is useless unless they are allowed too.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The interpreter `path` names, if any (not followed further).
pub(super) fn interpreter(path: &Path) -> Option<PathBuf> {
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .ok()?
        .take(4096)
        .read_to_end(&mut head)
        .ok()?;
    if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|&b| b == b'\n').next()?;
        let line = std::str::from_utf8(line).ok()?.trim();
        let program = line.split_ascii_whitespace().next()?;
        return Some(PathBuf::from(program));
    }
    elf_interp(path, &head)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// PT_INTERP of a 64-bit little-endian ELF file (x86_64, aarch64, riscv64).
fn elf_interp(path: &Path, head: &[u8]) -> Option<PathBuf> {
    const PT_INTERP: u32 = 3;
    if head.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = usize::try_from(u64_at(head, 0x20)?).ok()?;
    let phentsize = usize::from(u16_at(head, 0x36)?);
    let phnum = usize::from(u16_at(head, 0x38)?);
    for i in 0..phnum.min(64) {
        let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let kind = u32::from_le_bytes(head.get(at..at + 4)?.try_into().ok()?);
        if kind != PT_INTERP {
            continue;
        }
        let offset = u64_at(head, at + 8)?;
        let size = u64_at(head, at + 32)?.min(4096);
        let mut buf = vec![0u8; usize::try_from(size).ok()?];
        let mut f = std::fs::File::open(path).ok()?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset)).ok()?;
        f.read_exact(&mut buf).ok()?;
        let name = buf.split(|&b| b == 0).next()?;
        return Some(PathBuf::from(std::str::from_utf8(name).ok()?));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_loader_and_shebang() {
        if let Some(ld) = interpreter(Path::new("/bin/ls")) {
            assert!(ld.to_string_lossy().contains("ld-"), "{ld:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/usr/bin/env  ruby -w\nputs 1\n").unwrap();
        assert_eq!(interpreter(&script), Some(PathBuf::from("/usr/bin/env")));
        std::fs::write(&script, "\x7fELF\x02\x01 truncated").unwrap();
        assert_eq!(interpreter(&script), None);
        std::fs::write(&script, "plain").unwrap();
        assert_eq!(interpreter(&script), None);
    }
}
