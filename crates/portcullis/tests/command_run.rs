//! Running templates: no shell, exit codes, timeout that kills the whole process group,
//! output cap, empty environment, closed stdin, working directory, rlimits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use portcullis::command::{CommandTemplate, Param, Rlimits, SAFE_PATH};
use portcullis::ErrorCode;

const NO_VALUES: [(&str, &str); 0] = [];

/// A `sh -c SCRIPT` template: only for tests that need a process tree or a trap. The
/// script is fixed; no parameter reaches it.
fn shell(script: &str) -> portcullis::command::CommandTemplateBuilder {
    CommandTemplate::builder("/bin/sh")
        .allow_interpreter(true)
        .args(["-c", script])
}

/// Whether `pid` is gone or only a zombie (reaped later by init, which may not reap in a
/// container). Waits up to five seconds for SIGKILL delivery, which is asynchronous.
fn eventually_dead(pid: u32) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().map(|rest| rest.trim().chars().next()))
            .flatten();
        if matches!(state, None | Some('Z') | Some('X')) {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn shell_metacharacters_reach_the_program_literally() {
    let printf = CommandTemplate::builder("/usr/bin/printf")
        .arg("%s")
        .placeholder("text")
        .param("text", Param::literal())
        .build()
        .unwrap();
    for text in [
        "; id",
        "a; touch /tmp/portcullis-pwned",
        "| cat /etc/passwd",
        "$(id)",
        "`id`",
        "a && b || c",
        "$HOME ${PATH}",
        "* ? [a-z]",
        "'\"\\",
        "> /tmp/x < /etc/passwd",
        "a\tb",
        "%s %n",
    ] {
        let out = printf.run([("text", text)]).unwrap();
        assert!(out.success(), "{text:?}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            text,
            "not passed literally"
        );
    }
    assert!(!std::path::Path::new("/tmp/portcullis-pwned").exists());

    let echo = CommandTemplate::builder("/bin/echo")
        .placeholder("text")
        .param("text", Param::literal())
        .build()
        .unwrap();
    let out = echo.run([("text", "$(id); `id` | id")]).unwrap();
    assert_eq!(out.stdout, b"$(id); `id` | id\n");
}

#[test]
fn exit_codes_and_signals() {
    let t = CommandTemplate::builder("/bin/true").build().unwrap();
    let out = t.run(NO_VALUES).unwrap();
    assert!(out.success());
    assert_eq!(out.code(), Some(0));
    assert!(out.clone().check().is_ok());

    let out = CommandTemplate::builder("/bin/false")
        .build()
        .unwrap()
        .run(NO_VALUES)
        .unwrap();
    assert!(!out.success());
    assert_eq!(out.code(), Some(1));
    assert_eq!(out.check().unwrap_err().code(), "command.failed");

    let out = shell("exit 7").build().unwrap().run(NO_VALUES).unwrap();
    assert_eq!(out.code(), Some(7));
    assert_eq!(out.signal(), None);

    let out = shell("kill -USR1 $$")
        .build()
        .unwrap()
        .run(NO_VALUES)
        .unwrap();
    assert_eq!(out.code(), None);
    assert_eq!(out.signal(), Some(10));
    assert!(!out.success());
    assert!(!out.timed_out);
}

#[test]
fn timeout_kills_a_term_ignoring_process_and_its_children() {
    let t = shell(r#"trap "" TERM; sleep 100 & echo $!; sleep 100"#)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let out = t.run(NO_VALUES).unwrap();
    assert!(out.timed_out);
    assert!(!out.success());
    assert_eq!(out.signal(), Some(9), "killed with SIGKILL");
    assert_eq!(out.clone().check().unwrap_err().code(), "command.timeout");
    let grandchild: u32 = lines(&out.stdout)[0].parse().unwrap();
    assert!(
        eventually_dead(grandchild),
        "background child {grandchild} survived"
    );
}

#[test]
fn timeout_kills_a_program_that_left_its_process_group() {
    // The program moves itself into the test runner's own process group, out of reach of
    // a group kill; the timeout must still kill it (by pid) rather than wait forever.
    let t = CommandTemplate::builder("/usr/bin/perl")
        .allow_interpreter(true)
        .args([
            "-e",
            "$| = 1; setpgrp(0, getpgrp(getppid())) or die qq(setpgrp: $!); print getpgrp(0), qq(\\n); sleep 100",
        ])
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let out = t.run(NO_VALUES).unwrap();
    assert!(out.timed_out, "{out:?}");
    assert_eq!(out.signal(), Some(9));
    let moved_to: i32 = lines(&out.stdout)[0].parse().unwrap();
    assert_eq!(moved_to, rustix::process::getpgrp().as_raw_nonzero().get());
}

#[test]
fn children_left_behind_are_killed_when_the_program_exits() {
    // Without the group kill, the background sleep would hold stdout open until the
    // timeout; with it, the run ends when `sh` exits.
    let t = shell("sleep 100 & echo $!")
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let out = t.run(NO_VALUES).unwrap();
    assert!(!out.timed_out);
    assert!(out.success());
    let grandchild: u32 = lines(&out.stdout)[0].parse().unwrap();
    assert!(
        eventually_dead(grandchild),
        "background child {grandchild} survived"
    );
}

#[test]
fn output_cap_truncates_and_keeps_draining() {
    let t = CommandTemplate::builder("/usr/bin/head")
        .args(["-c", "300000", "/dev/zero"])
        .max_output(1000)
        .build()
        .unwrap();
    let out = t.run(NO_VALUES).unwrap();
    assert_eq!(out.stdout.len(), 1000);
    assert!(out.stdout_truncated && out.truncated());
    assert!(!out.stderr_truncated);
    // Drain-and-discard: the program was neither blocked nor killed by SIGPIPE.
    assert!(out.success(), "{:?}", out.status);

    let out = t.clone().run(NO_VALUES).unwrap();
    assert!(out.truncated());

    let exact = CommandTemplate::builder("/usr/bin/head")
        .args(["-c", "1000", "/dev/zero"])
        .max_output(1000)
        .build()
        .unwrap()
        .run(NO_VALUES)
        .unwrap();
    assert_eq!(exact.stdout.len(), 1000);
    assert!(!exact.truncated());
}

#[test]
fn stdout_and_stderr_are_read_concurrently() {
    // Each stream is far larger than a pipe buffer: reading one after the other deadlocks.
    let out = shell(
        "head -c 2000000 /dev/zero >&2; head -c 2000000 /dev/zero; head -c 100000 /dev/zero >&2",
    )
    .max_output(4_000_000)
    .timeout(Duration::from_secs(20))
    .build()
    .unwrap()
    .run(NO_VALUES)
    .unwrap();
    assert!(!out.timed_out);
    assert_eq!(out.stdout.len(), 2_000_000);
    assert_eq!(out.stderr.len(), 2_100_000);
    assert!(!out.truncated());
}

#[test]
fn environment_is_empty_but_for_the_allowlist() {
    std::env::set_var("PORTCULLIS_PARENT_SECRET", "leaked");
    let expected: BTreeSet<String> = [format!("PATH={SAFE_PATH}"), "GREETING=hello".to_owned()]
        .into_iter()
        .collect();
    let printenv = CommandTemplate::builder("/usr/bin/printenv")
        .env("GREETING", "hello")
        .build()
        .unwrap();
    let seen: BTreeSet<String> = lines(&printenv.run(NO_VALUES).unwrap().stdout)
        .into_iter()
        .collect();
    assert_eq!(seen, expected);

    let env = CommandTemplate::builder("/usr/bin/env")
        .allow_interpreter(true) // env is an interpreter of sorts; here it only prints
        .env("GREETING", "hello")
        .build()
        .unwrap();
    let seen: BTreeSet<String> = lines(&env.run(NO_VALUES).unwrap().stdout)
        .into_iter()
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn stdin_is_closed() {
    let cat = CommandTemplate::builder("/bin/cat")
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let out = cat.run(NO_VALUES).unwrap();
    assert!(!out.timed_out, "cat waited for input");
    assert!(out.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn working_directory_is_fixed() {
    let pwd = CommandTemplate::builder("/bin/pwd").build().unwrap();
    assert_eq!(pwd.run(NO_VALUES).unwrap().stdout, b"/\n");
    let dir = tempfile::tempdir().unwrap();
    let canonical = std::fs::canonicalize(dir.path()).unwrap();
    let pwd = CommandTemplate::builder("/bin/pwd")
        .chdir(&canonical)
        .build()
        .unwrap();
    assert_eq!(
        pwd.run(NO_VALUES).unwrap().stdout,
        format!("{}\n", canonical.display()).into_bytes()
    );
}

#[test]
fn argv0_is_the_program_as_written() {
    // /bin is a symlink here, so the resolved file differs; argv[0] keeps what was written.
    let cmdline = CommandTemplate::builder("/bin/cat")
        .arg("/proc/self/cmdline")
        .build()
        .unwrap()
        .run(NO_VALUES)
        .unwrap()
        .stdout;
    assert_eq!(cmdline, b"/bin/cat\0/proc/self/cmdline\0");
}

#[test]
fn rlimits_are_set_in_the_child() {
    let cat = CommandTemplate::builder("/bin/cat")
        .arg("/proc/self/limits")
        .rlimits(
            Rlimits::new()
                .cpu_seconds(7)
                .address_space(3 * 1024 * 1024 * 1024)
                .file_size(12345)
                .processes(77),
        )
        .build()
        .unwrap();
    let limits = String::from_utf8(cat.run(NO_VALUES).unwrap().stdout).unwrap();
    let row = |name: &str| -> Vec<String> {
        let line = limits.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..]
            .split_whitespace()
            .take(2)
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("Max cpu time"), ["7", "7"]);
    assert_eq!(row("Max address space"), ["3221225472", "3221225472"]);
    assert_eq!(row("Max file size"), ["12345", "12345"]);
    assert_eq!(row("Max processes"), ["77", "77"]);
}

#[test]
fn file_size_limit_stops_a_large_write() {
    let dir = tempfile::tempdir().unwrap();
    let dd = CommandTemplate::builder("/usr/bin/dd")
        .args(["if=/dev/zero", "of=out", "bs=1024", "count=100"])
        .chdir(dir.path())
        .rlimits(Rlimits::new().file_size(10 * 1024))
        .build()
        .unwrap();
    let out = dd.run(NO_VALUES).unwrap();
    assert!(!out.success());
    assert_eq!(out.signal(), Some(25), "SIGXFSZ: {:?}", out.status);
    assert!(std::fs::metadata(dir.path().join("out")).unwrap().len() <= 10 * 1024);
}

#[test]
fn cpu_limit_stops_a_busy_program() {
    let yes = CommandTemplate::builder("/usr/bin/yes")
        .max_output(0)
        .timeout(Duration::from_secs(60))
        .rlimits(Rlimits::new().cpu_seconds(1))
        .build()
        .unwrap();
    let out = yes.run(NO_VALUES).unwrap();
    assert!(!out.timed_out);
    assert!(
        matches!(out.signal(), Some(24) | Some(9)),
        "{:?}",
        out.status
    );
    assert!(out.stdout.is_empty() && out.stdout_truncated);
}

#[test]
fn spawn_failures_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("vanishing");
    std::fs::copy("/bin/true", &program).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let t = CommandTemplate::builder(program.to_str().unwrap())
        .build()
        .unwrap();
    assert!(t.run(NO_VALUES).unwrap().success());
    std::fs::remove_file(&program).unwrap();
    let err = t.run(NO_VALUES).unwrap_err();
    assert_eq!(err.code(), "command.spawn_failed");
    assert!(err.to_string().contains("vanishing"), "{err}");
}

#[test]
fn values_are_checked_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let touch = CommandTemplate::builder("/usr/bin/touch")
        .arg(marker.to_str().unwrap())
        .placeholder("name")
        .param("name", Param::pattern("[a-z]+").unwrap())
        .chdir(dir.path())
        .build()
        .unwrap();
    assert_eq!(
        touch.run([("name", "--help")]).unwrap_err().code(),
        "command.option_injection"
    );
    assert_eq!(
        touch.run([("name", "a;b")]).unwrap_err().code(),
        "command.invalid_value"
    );
    assert!(!marker.exists());
    assert!(touch.run([("name", "ok")]).unwrap().success());
    assert!(marker.exists() && dir.path().join("ok").exists());
}

#[test]
fn runs_in_parallel_threads() {
    let echo = std::sync::Arc::new(
        CommandTemplate::builder("/bin/echo")
            .placeholder("n")
            .param("n", Param::integer(0..=100))
            .build()
            .unwrap(),
    );
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let echo = echo.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let out = echo.run([("n", i.to_string())]).unwrap();
                    assert_eq!(out.stdout, format!("{i}\n").into_bytes());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn cancelling_kills_the_group_and_returns_at_once() {
    use portcullis::command::CancelHandle;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!(
        r#"trap "" TERM; sleep 100 & echo $! > {}; sleep 100"#,
        pid_file.display()
    );
    let t = shell(&script)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let cancel = CancelHandle::new().unwrap();
    let stopper = cancel.clone();
    let watcher = std::thread::spawn(move || {
        // Cancel once the background child exists.
        while std::fs::read_to_string(&pid_file).map_or(true, |s| s.trim().is_empty()) {
            std::thread::sleep(Duration::from_millis(10));
        }
        stopper.cancel();
        std::fs::read_to_string(&pid_file).unwrap()
    });
    let started = Instant::now();
    let err = t.run_cancellable(NO_VALUES, &cancel).unwrap_err();
    // Well before the 60 s timeout: the run stopped because it was cancelled.
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(err.code(), "command.cancelled");
    assert!(err.to_string().contains("/bin/sh"), "{err}");
    assert!(cancel.is_cancelled());
    let grandchild: u32 = watcher.join().unwrap().trim().parse().unwrap();
    assert!(
        eventually_dead(grandchild),
        "background child {grandchild} survived"
    );

    // A handle cancelled before the run: the program never starts.
    let marker = dir.path().join("ran");
    let t = shell(&format!("touch {}", marker.display()))
        .build()
        .unwrap();
    let err = t.run_cancellable(NO_VALUES, &cancel).unwrap_err();
    assert_eq!(err.code(), "command.cancelled");
    assert!(!marker.exists());
    // An uncancelled handle changes nothing.
    let fresh = CancelHandle::new().unwrap();
    assert!(t.run_cancellable(NO_VALUES, &fresh).unwrap().success());
    assert!(marker.exists());
}
