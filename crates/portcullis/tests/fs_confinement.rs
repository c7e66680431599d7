//! SafeRoot on disk: a hostile fixture tree, run through both resolvers (openat2 and the
//! forced component walk) under both symlink policies; then every operation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test fixtures: a failed setup step should abort the test

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use portcullis::fs::{CreateOptions, SafeRoot, SymlinkPolicy};
use portcullis::ErrorCode;

const MARKER: &str = "PORTCULLIS-OUTSIDE-MARKER-7f3a9c";

/// tmp/
///   outside/secret.txt      (MARKER)          public2/secret   (MARKER, sibling prefix)
///   public/                 (the root)
struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let root = base.join("public");
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/secret.txt"), MARKER).unwrap();
        std::fs::create_dir_all(base.join("public2")).unwrap();
        std::fs::write(base.join("public2/secret"), MARKER).unwrap();
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        std::fs::write(root.join("index.html"), "INDEX").unwrap();
        std::fs::write(root.join("sub/file.txt"), "SUBFILE").unwrap();
        std::fs::write(root.join("sub/deeper/x.txt"), "DEEP").unwrap();
        let links: &[(&str, String)] = &[
            ("sub/up", "..".into()),     // back to the root: fine to traverse
            ("sub/up2", "../..".into()), // above the root
            ("top_up", "..".into()),
            ("to_outside", "../outside".into()),
            ("secret_link", "../outside/secret.txt".into()),
            ("abs_inside", root.join("index.html").display().to_string()),
            (
                "abs_outside",
                base.join("outside/secret.txt").display().to_string(),
            ),
            ("loop_a", "loop_b".into()),
            ("loop_b", "loop_a".into()),
            ("self_loop", "self_loop".into()),
            ("proc_root", "/proc/self/root".into()),
            (
                "proc_rel",
                "../../../../../../../../../../proc/self/root".into(),
            ),
            ("root_link", ".".into()),
            ("file_link", "index.html".into()),
            ("dir_link", "sub".into()),
            ("chain", "dir_link/up/file_link".into()),
            ("dangling_out", "../outside/new.txt".into()),
            ("dangling_in", "created_via_link.txt".into()),
            ("empty_dir_link", "sub/deeper".into()),
        ];
        for (name, target) in links {
            symlink(target, root.join(name)).unwrap();
        }
        let status = std::process::Command::new("mkfifo")
            .arg(root.join("fifo"))
            .status()
            .unwrap();
        assert!(status.success());
        Fixture {
            _tmp: tmp,
            base,
            root,
        }
    }

    fn roots(&self) -> Vec<(String, SafeRoot)> {
        let mut out = Vec::new();
        for policy in [SymlinkPolicy::Within, SymlinkPolicy::Deny] {
            for walk in [false, true] {
                let root = SafeRoot::new(&self.root)
                    .unwrap()
                    .with_symlinks(policy)
                    .force_walk(walk);
                let label = format!("{policy:?}/{}", if walk { "walk" } else { "openat2" });
                out.push((label, root));
            }
        }
        out
    }

    /// (dev, ino) of every file outside the root.
    fn outside_inodes(&self) -> HashSet<(u64, u64)> {
        [
            self.base.join("outside/secret.txt"),
            self.base.join("public2/secret"),
            self.base.join("outside"),
            self.base.clone(),
            PathBuf::from("/"),
        ]
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).unwrap();
            (m.dev(), m.ino())
        })
        .collect()
    }
}

/// (name, result under :within, result under :deny); a result is file content or a code.
const OPEN_CASES: &[(&str, &str, &str)] = &[
    ("index.html", "INDEX", "INDEX"),
    ("sub/file.txt", "SUBFILE", "SUBFILE"),
    ("sub/../index.html", "INDEX", "INDEX"),
    ("./sub//deeper/./x.txt", "DEEP", "DEEP"),
    ("sub/up/index.html", "INDEX", "path.symlink"),
    (
        "sub/up/../outside/secret.txt",
        "path.escape",
        "path.symlink",
    ),
    ("sub/up2/outside/secret.txt", "path.escape", "path.symlink"),
    ("top_up/outside/secret.txt", "path.escape", "path.symlink"),
    ("to_outside/secret.txt", "path.escape", "path.symlink"),
    ("secret_link", "path.escape", "path.symlink"),
    ("abs_inside", "path.escape", "path.symlink"),
    ("abs_outside", "path.escape", "path.symlink"),
    ("loop_a", "path.symlink", "path.symlink"),
    ("self_loop", "path.symlink", "path.symlink"),
    ("proc_root/etc/passwd", "path.escape", "path.symlink"),
    ("proc_root", "path.escape", "path.symlink"),
    ("proc_rel/etc/passwd", "path.escape", "path.symlink"),
    ("root_link/index.html", "INDEX", "path.symlink"),
    ("root_link/../public2/secret", "path.escape", "path.symlink"),
    (
        "root_link/root_link/../outside/secret.txt",
        "path.escape",
        "path.symlink",
    ),
    ("file_link", "INDEX", "path.symlink"),
    ("chain", "INDEX", "path.symlink"),
    ("dir_link/file.txt", "SUBFILE", "path.symlink"),
    ("dir_link/", "path.not_a_file", "path.symlink"),
    ("file_link/", "path.not_a_directory", "path.symlink"),
    (
        "index.html/",
        "path.not_a_directory",
        "path.not_a_directory",
    ),
    (
        "index.html/x",
        "path.not_a_directory",
        "path.not_a_directory",
    ),
    ("sub", "path.not_a_file", "path.not_a_file"),
    (".", "path.not_a_file", "path.not_a_file"),
    ("sub/..", "path.not_a_file", "path.not_a_file"),
    ("fifo", "path.not_a_file", "path.not_a_file"),
    ("missing.txt", "path.not_found", "path.not_found"),
    ("sub/missing/x", "path.not_found", "path.not_found"),
    ("dangling_out", "path.escape", "path.symlink"),
    ("../public2/secret", "path.escape", "path.escape"),
    ("../outside/secret.txt", "path.escape", "path.escape"),
    (
        "%2e%2e/outside/secret.txt",
        "path.not_found",
        "path.not_found",
    ),
];

fn outcome(root: &SafeRoot, name: &str, outside: &HashSet<(u64, u64)>) -> String {
    match root.open(name) {
        Ok(mut file) => {
            let m = file.metadata().unwrap();
            assert!(
                !outside.contains(&(m.dev(), m.ino())),
                "{name} opened a file outside the root"
            );
            let mut s = String::new();
            file.read_to_string(&mut s).unwrap();
            assert_ne!(s, MARKER, "{name} read the outside marker");
            s
        }
        Err(e) => e.code().to_owned(),
    }
}

#[test]
fn fixture_tree_under_both_resolvers_and_policies() {
    let fx = Fixture::new();
    let outside = fx.outside_inodes();
    let mut failures = Vec::new();
    for (label, root) in fx.roots() {
        for (name, within, deny) in OPEN_CASES {
            let expected = match root.symlinks() {
                SymlinkPolicy::Deny => deny,
                _ => within,
            };
            let got = outcome(&root, name, &outside);
            if got != *expected {
                failures.push(format!("{label} {name:?}: expected {expected}, got {got}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn metadata_and_argv_paths_follow_the_same_rules() {
    let fx = Fixture::new();
    for (label, root) in fx.roots() {
        let deny = root.symlinks() == SymlinkPolicy::Deny;
        assert!(root.metadata("sub").unwrap().is_dir(), "{label}");
        assert_eq!(root.metadata("index.html").unwrap().len(), 5, "{label}");
        for name in [
            "to_outside",
            "abs_outside",
            "proc_root",
            "top_up",
            "secret_link",
        ] {
            let code = root.metadata(name).unwrap_err().code();
            assert_eq!(
                code,
                if deny { "path.symlink" } else { "path.escape" },
                "{label} {name}"
            );
            assert!(root.resolve_for_argv(name).is_err(), "{label} {name}");
        }
        let argv = root.resolve_for_argv("sub/file.txt").unwrap();
        assert_eq!(argv, fx.root.join("sub/file.txt"), "{label}");
        if !deny {
            // The argv path is where the link led, not the link's name.
            let argv = root.resolve_for_argv("dir_link/file.txt").unwrap();
            assert_eq!(argv, fx.root.join("sub/file.txt"), "{label}");
        }
    }
}

#[test]
fn writes_through_escaping_links_create_nothing_outside() {
    let fx = Fixture::new();
    for (label, root) in fx.roots() {
        let deny = root.symlinks() == SymlinkPolicy::Deny;
        let refused = if deny { "path.symlink" } else { "path.escape" };
        for name in [
            "dangling_out",
            "to_outside/new.txt",
            "top_up/outside/new.txt",
        ] {
            let err = root.create(name, CreateOptions::new()).unwrap_err();
            assert_eq!(err.code(), refused, "{label} {name}");
        }
        assert!(!fx.base.join("outside/new.txt").exists(), "{label}");
        assert_eq!(
            root.mkdir_p("to_outside/made").unwrap_err().code(),
            refused,
            "{label}"
        );
        assert!(!fx.base.join("outside/made").exists(), "{label}");
        // Truncating the secret through a link must not happen either.
        assert!(root.create("secret_link", CreateOptions::new()).is_err());
        assert_eq!(
            std::fs::read_to_string(fx.base.join("outside/secret.txt")).unwrap(),
            MARKER
        );
        // Removing through a link to outside is refused; the link itself can be removed.
        assert_eq!(
            root.remove("to_outside/secret.txt").unwrap_err().code(),
            refused,
            "{label}"
        );
        assert!(fx.base.join("outside/secret.txt").exists());
        if deny {
            assert_eq!(
                root.create("dangling_in", CreateOptions::new())
                    .unwrap_err()
                    .code(),
                "path.symlink"
            );
        } else {
            root.write("dangling_in", b"via link", false).unwrap();
            assert_eq!(
                std::fs::read(fx.root.join("created_via_link.txt")).unwrap(),
                b"via link"
            );
            std::fs::remove_file(fx.root.join("created_via_link.txt")).unwrap();
        }
    }
}

#[test]
fn sibling_prefix_is_not_inside() {
    let fx = Fixture::new();
    let root = SafeRoot::new(&fx.root).unwrap();
    // The seed's check: a string prefix test says yes...
    let joined = fx.root.join("../public2/secret");
    assert!(joined
        .to_string_lossy()
        .starts_with(&*fx.root.to_string_lossy()));
    // ...SafeRoot says no.
    assert_eq!(
        root.open("../public2/secret").unwrap_err().code(),
        "path.escape"
    );
}

#[test]
fn create_strips_execute_bits_and_respects_exclusive_and_append() {
    let dir = tempfile::tempdir().unwrap();
    for walk in [false, true] {
        let root = SafeRoot::new(dir.path()).unwrap().force_walk(walk);
        let name = format!("run-{walk}.sh");
        let mut f = root
            .create(&name, CreateOptions::new().mode(0o7777).exclusive(true))
            .unwrap();
        f.write_all(b"#!/bin/sh\n").unwrap();
        let mode = std::fs::metadata(dir.path().join(&name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7111, 0, "execute/special bits stripped: {mode:o}");
        let default_name = format!("default-{walk}");
        root.write(&default_name, b"a", false).unwrap();
        let mode = std::fs::metadata(dir.path().join(&default_name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & !0o640 & 0o7777,
            0,
            "default is at most 0640: {mode:o}"
        );
        assert_eq!(
            root.write(&default_name, b"b", true).unwrap_err().code(),
            "path.exists"
        );
        root.create(&default_name, CreateOptions::new().append(true))
            .unwrap()
            .write_all(b"c")
            .unwrap();
        assert_eq!(root.read(&default_name).unwrap(), b"ac");
        root.write(&default_name, b"d", false).unwrap();
        assert_eq!(root.read(&default_name).unwrap(), b"d");
        assert_eq!(
            root.create(".", CreateOptions::new()).unwrap_err().code(),
            "path.not_a_file"
        );
        assert_eq!(
            root.create("newdir/", CreateOptions::new())
                .unwrap_err()
                .code(),
            "path.not_a_file"
        );
    }
}

#[test]
fn mkdir_p_read_dir_remove() {
    let dir = tempfile::tempdir().unwrap();
    for walk in [false, true] {
        let root = SafeRoot::new(dir.path()).unwrap().force_walk(walk);
        let top = format!("tree-{walk}");
        root.mkdir_p(format!("{top}/a/b/c")).unwrap();
        root.mkdir_p(format!("{top}/a/b/c")).unwrap(); // idempotent
        root.mkdir_p(format!("{top}/a/../d")).unwrap();
        let mode = std::fs::metadata(dir.path().join(&top).join("a/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & !0o750 & 0o7777, 0, "at most 0750: {mode:o}");
        root.write(format!("{top}/a/f.txt"), b"x", false).unwrap();
        assert_eq!(root.read_dir(format!("{top}/a")).unwrap(), ["b", "f.txt"]);
        assert_eq!(root.read_dir(&top).unwrap(), ["a", "d"]);
        assert_eq!(
            root.read_dir(format!("{top}/a/f.txt")).unwrap_err().code(),
            "path.not_a_directory"
        );
        assert_eq!(
            root.mkdir_p(format!("{top}/a/f.txt/x")).unwrap_err().code(),
            "path.not_a_directory"
        );
        root.remove(format!("{top}/a/f.txt")).unwrap();
        root.remove(format!("{top}/a/b/c")).unwrap();
        assert!(!dir.path().join(&top).join("a/b/c").exists());
        assert_eq!(
            root.remove(format!("{top}/a/missing")).unwrap_err().code(),
            "path.not_found"
        );
        assert!(root.remove(format!("{top}/a")).is_err(), "not empty");
        for refused in [".", "x/..", "a/"] {
            assert_eq!(root.remove(refused).unwrap_err().code(), "path.not_a_file");
        }
    }
}

#[test]
fn remove_takes_the_link_not_its_target() {
    let fx = Fixture::new();
    let root = SafeRoot::new(&fx.root).unwrap();
    root.remove("secret_link").unwrap();
    root.remove("file_link").unwrap();
    assert!(fx.base.join("outside/secret.txt").exists());
    assert!(fx.root.join("index.html").exists());
    assert!(fx.root.join("secret_link").symlink_metadata().is_err());
}

#[test]
fn store_upload_uses_the_content_hash_and_the_allowlist() {
    let dir = tempfile::tempdir().unwrap();
    let root = SafeRoot::new(dir.path()).unwrap();
    let allowed = [".png", "JPG", ".pdf"];
    let name = root
        .store_upload("../../etc/cron.d/Evil.PNG", b"content", &allowed)
        .unwrap();
    // sha256("content")
    assert_eq!(
        name,
        "ed7002b439e9ac845f22357d822bac1444730fbdb6016d3ec9432297b9ec9f73.png"
    );
    assert_eq!(std::fs::read(dir.path().join(&name)).unwrap(), b"content");
    let again = root
        .store_upload("other-name.png", b"content", &allowed)
        .unwrap();
    assert_eq!(again, name, "same content, same name");
    let jpg = root.store_upload("a.b.JpG", b"jpeg", &allowed).unwrap();
    assert!(jpg.ends_with(".jpg"));
    for (bad, ext) in [
        ("shell.php", "php"),
        ("shell.png.php", "php"),
        ("noext", ""),
        ("trailing.", ""),
        ("x.pn\u{0}g", "pn\u{0}g"),
    ] {
        let err = root.store_upload(bad, b"x", &allowed).unwrap_err();
        assert_eq!(err.code(), "path.extension", "{bad}");
        assert!(err.to_string().contains(&format!("{ext:?}")), "{err}");
    }
    let mut entries = root.read_dir(".").unwrap();
    entries.sort();
    assert_eq!(entries.len(), 2, "no temporary files left: {entries:?}");
}

#[test]
fn join_is_lexical_and_for_display() {
    let dir = tempfile::tempdir().unwrap();
    let root = SafeRoot::new(dir.path()).unwrap();
    assert_eq!(root.join(".").unwrap(), root.path());
    assert_eq!(root.join("a/b/../c/").unwrap(), root.path().join("a/c"));
    assert_eq!(root.join("/etc").unwrap_err().code(), "path.absolute");
}

#[test]
fn root_handle_survives_the_root_being_renamed() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    std::fs::create_dir(&a).unwrap();
    std::fs::write(a.join("f"), "kept").unwrap();
    let root = SafeRoot::new(&a).unwrap();
    std::fs::rename(&a, tmp.path().join("b")).unwrap();
    std::fs::create_dir(&a).unwrap();
    std::fs::write(a.join("f"), "impostor").unwrap();
    assert_eq!(root.read("f").unwrap(), b"kept");
    assert!(root.resolve_for_argv("f").is_err(), "the old path lies now");
}

#[test]
fn new_refuses_missing_and_non_directories() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    assert_eq!(
        SafeRoot::new(dir.path().join("file")).unwrap_err().code(),
        "path.not_a_directory"
    );
    assert_eq!(
        SafeRoot::new(dir.path().join("nope")).unwrap_err().code(),
        "path.root_missing"
    );
}

/// One thread keeps swapping `swap/` (a real directory) for a symlink to `/`; another
/// opens `swap/<path of the outside marker>` through SafeRoot. Inside, that path holds an
/// "INSIDE" file; outside, the marker. The marker must never be read.
fn race(walk: bool) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let fx = Fixture::new();
    let marker = fx.base.join("outside/secret.txt");
    let relative = marker.strip_prefix("/").unwrap().to_path_buf();
    let swap = fx.root.join("swap");
    let real = fx.root.join("swap.real");
    std::fs::create_dir_all(real.join(relative.parent().unwrap())).unwrap();
    std::fs::write(real.join(&relative), "INSIDE").unwrap();
    let link = fx.root.join("swap.link");
    symlink("/", &link).unwrap();
    let relink = fx.root.join("swap.rel");
    symlink("../../../../../../../../../../../..", &relink).unwrap();
    std::fs::rename(&real, &swap).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let (swap, real, link, relink) = (swap.clone(), real.clone(), link.clone(), relink.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // directory -> absolute symlink -> directory -> relative symlink -> directory
                std::fs::rename(&swap, &real).unwrap();
                std::fs::rename(&link, &swap).unwrap();
                std::fs::rename(&swap, &link).unwrap();
                std::fs::rename(&real, &swap).unwrap();
                std::fs::rename(&swap, &real).unwrap();
                std::fs::rename(&relink, &swap).unwrap();
                std::fs::rename(&swap, &relink).unwrap();
                std::fs::rename(&real, &swap).unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let root = SafeRoot::new(&fx.root).unwrap().force_walk(walk);
    let name = Path::new("swap").join(&relative);
    let outside = fx.outside_inodes();
    let (mut inside, mut refused) = (0u32, 0u32);
    for _ in 0..5000 {
        match root.open(&name) {
            Ok(mut f) => {
                let m = f.metadata().unwrap();
                assert!(!outside.contains(&(m.dev(), m.ino())), "opened outside");
                let mut s = String::new();
                f.read_to_string(&mut s).unwrap();
                assert_eq!(s, "INSIDE");
                inside += 1;
            }
            Err(e) => {
                assert!(
                    matches!(e.code(), "path.escape" | "path.not_found" | "path.symlink"),
                    "{e}"
                );
                refused += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 0);
    // Both outcomes must have happened for the race to have been exercised at all.
    assert!(
        inside > 0 && refused > 0,
        "inside={inside} refused={refused} swaps={swaps}"
    );
}

#[test]
fn race_swapping_a_directory_for_a_symlink_openat2() {
    race(false);
}

#[test]
fn race_swapping_a_directory_for_a_symlink_walk() {
    race(true);
}

mod property {
    use super::*;
    use proptest::prelude::*;

    /// root/{a/{a, links…}, links…}; outside: base/a, base/outside/a.
    struct Tree {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        outside: HashSet<(u64, u64)>,
    }

    fn tree() -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let root = base.join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/a"), "in").unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/a"), MARKER).unwrap();
        std::fs::write(base.join("a"), MARKER).unwrap();
        for (dir, up) in [(root.clone(), ".."), (root.join("a"), "../..")] {
            symlink(up, dir.join("l_up")).unwrap();
            symlink(".", dir.join("l_dot")).unwrap();
            symlink(format!("{up}/outside"), dir.join("l_out")).unwrap();
            symlink(base.join("outside"), dir.join("l_abs")).unwrap();
            symlink("/proc/self/root", dir.join("l_proc")).unwrap();
        }
        let outside = [
            base.join("a"),
            base.join("outside/a"),
            base.join("outside"),
            base.clone(),
        ]
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).unwrap();
            (m.dev(), m.ino())
        })
        .collect();
        Tree {
            _tmp: tmp,
            root,
            outside,
        }
    }

    fn token() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            ".", "..", "/", "a", "\0", "\\", "l_up", "l_dot", "l_out", "l_abs", "l_proc",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn no_generated_name_opens_outside(tokens in prop::collection::vec(token(), 1..14)) {
            thread_local!(static TREE: Tree = tree());
            let name: String = tokens.concat();
            TREE.with(|t| {
                for policy in [SymlinkPolicy::Within, SymlinkPolicy::Deny] {
                    for walk in [false, true] {
                        let root = SafeRoot::new(&t.root).unwrap().with_symlinks(policy).force_walk(walk);
                        for m in [root.open(&name).map(|f| f.metadata().unwrap()), root.metadata(&name)].into_iter().flatten() {
                            prop_assert!(
                                !t.outside.contains(&(m.dev(), m.ino())),
                                "{name:?} reached outside ({policy:?}, walk={walk})"
                            );
                        }
                    }
                }
                Ok(())
            })?;
        }

        #[test]
        fn both_resolvers_agree(tokens in prop::collection::vec(token(), 1..14)) {
            thread_local!(static TREE: Tree = tree());
            let name: String = tokens.concat();
            TREE.with(|t| {
                for policy in [SymlinkPolicy::Within, SymlinkPolicy::Deny] {
                    let fast = SafeRoot::new(&t.root).unwrap().with_symlinks(policy);
                    let walk = SafeRoot::new(&t.root).unwrap().with_symlinks(policy).force_walk(true);
                    let key = |r: Result<std::fs::Metadata, portcullis::fs::PathError>| match r {
                        Ok(m) => format!("{}:{}", m.dev(), m.ino()),
                        Err(e) => e.code().to_owned(),
                    };
                    prop_assert_eq!(key(fast.metadata(&name)), key(walk.metadata(&name)), "{:?} {:?}", name, policy);
                }
                Ok(())
            })?;
        }
    }
}

#[test]
fn walk_bounds_the_descriptors_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let deep = vec!["d"; 300].join("/");
    std::fs::create_dir_all(dir.path().join(&deep)).unwrap();
    std::fs::write(dir.path().join(&deep).join("f"), "deep").unwrap();
    let name = format!("{deep}/f");
    let fast = SafeRoot::new(dir.path()).unwrap();
    assert_eq!(fast.read(&name).unwrap(), b"deep");
    let walk = SafeRoot::new(dir.path()).unwrap().force_walk(true);
    assert_eq!(walk.read(&name).unwrap_err().code(), "path.too_long");
    let shallow = format!("{}/f", vec!["d"; 200].join("/"));
    assert!(walk
        .metadata(shallow.trim_end_matches("/f"))
        .unwrap()
        .is_dir());
}
