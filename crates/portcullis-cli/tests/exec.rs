//! `portcullis exec` and `portcullis lockdown explain`, end to end: a Rack app served by
//! Puma under the lockdown answers its requests while a route trying each escape gets the
//! kernel's refusals.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(unsafe_code)] // kill(2) of the process group a test made: no safe wrapper

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An app directory with config/portcullis.toml, tmp/, log/ and the Rack app.
fn app_dir(lockdown: &str) -> tempfile::TempDir {
    app_dir_with("lockdown_app.ru", lockdown)
}

fn app_dir_with(ru: &str, lockdown: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for d in ["config", "tmp", "log"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    std::fs::copy(data(ru), dir.path().join("config.ru")).unwrap();
    // The escape list `make demo` tries too (one list for both).
    let escapes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/escapes.rb");
    std::fs::copy(escapes, dir.path().join("lockdown_escapes.rb")).unwrap();
    std::fs::write(dir.path().join("config/portcullis.toml"), lockdown).unwrap();
    dir
}

fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// `portcullis exec` and everything under it, in its own process group: dropping it
/// stops the server (SIGTERM, which the supervisor forwards), then kills the whole group,
/// so no Puma outlives its test.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let group = -(self.0.id() as libc::pid_t);
        // SAFETY: signalling the process group this test made.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let start = Instant::now();
        while self.0.try_wait().ok().flatten().is_none() && start.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above; whatever is left of the group.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn wait_up(server: &mut Server, port: u16) {
    let start = Instant::now();
    while get(port, "/").is_err() {
        if let Some(status) = server.0.try_wait().unwrap() {
            let mut err = String::new();
            server
                .0
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("server exited ({status}): {err}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn serve(dir: &Path, port: u16, extra: &[&str], env: &[(&str, String)]) -> Server {
    let mut cmd = bin();
    cmd.current_dir(dir)
        .args(["exec", "--config", "config/portcullis.toml"])
        .args(["--", "puma", "-q", "-b"])
        .arg(format!("tcp://127.0.0.1:{port}"))
        .args(["-t", "2:2"])
        .args(extra)
        .arg("config.ru")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Server(cmd.spawn().unwrap())
}

fn have_puma() -> bool {
    Command::new("puma")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn escapes_under(workers: &[&str]) {
    escapes_in("lockdown_app.ru", workers);
}

fn escapes_in(ru: &str, workers: &[&str]) {
    if !have_puma() {
        eprintln!("puma not installed; `make deps` installs it");
        return;
    }
    let port = free_port();
    let dir = app_dir_with(
        ru,
        &format!("[lockdown.web]\npreset = \"ruby\"\nbind_tcp = [{port}]\n"),
    );
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "outside").unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sleeper = Command::new("/bin/sleep").arg("60").spawn().unwrap();
    use std::os::linux::net::SocketAddrExt;
    let abstract_name = format!(
        "portcullis-e2e-{}-{}-{ru}",
        std::process::id(),
        workers.len()
    );
    let addr =
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
    let _abstract = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    let env = [
        ("OUTSIDE_FILE", secret.display().to_string()),
        (
            "CLOSED_PORT",
            closed.local_addr().unwrap().port().to_string(),
        ),
        ("OUTSIDE_PID", sleeper.id().to_string()),
        ("ABSTRACT_NAME", abstract_name.clone()),
    ];
    let mut server = serve(dir.path(), port, workers, &env);
    wait_up(&mut server, port);
    for _ in 0..5 {
        assert_eq!(body(&get(port, "/").unwrap()), "ok\n");
    }
    assert_eq!(body(&get(port, "/thread").unwrap()), "thread ok\n");
    let report: Value = serde_json::from_str(body(&get(port, "/escape").unwrap())).unwrap();
    let expected = [
        ("read /etc/shadow", "Errno::EACCES"),
        ("read outside", "Errno::EACCES"),
        ("write outside", "Errno::EACCES"),
        ("exec /bin/sh", "Errno::EACCES"),
        ("system string", "Errno::EACCES"),
        ("connect other port", "Errno::EACCES"),
        ("mptcp", "Errno::EPERM"),
        ("raw socket", "Errno::EPERM"),
        ("packet socket", "Errno::EPERM"),
        ("unshare(CLONE_NEWUSER)", "Errno::EPERM"),
        ("mount", "Errno::EPERM"),
        ("ptrace", "Errno::EPERM"),
        ("keyctl", "Errno::EPERM"),
        ("bpf", "Errno::EPERM"),
        ("io_uring_setup", "Errno::EPERM"),
        ("userfaultfd", "Errno::EPERM"),
        ("open_by_handle_at", "Errno::EPERM"),
        ("kill outside", "Errno::EPERM"),
        ("abstract unix outside", "Errno::EPERM"),
    ];
    for (name, want) in expected {
        assert_eq!(report[name], want, "{name}: {report}");
    }
    assert_eq!(
        report.as_object().unwrap().len(),
        expected.len(),
        "{report}"
    );
    // still serving after the attempts
    assert_eq!(body(&get(port, "/").unwrap()), "ok\n");
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the outside process was signalled"
    );
    assert!(!outside.path().join("evil").exists());
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    drop(server);
}

#[test]
fn a_rack_app_serves_under_exec_and_every_escape_is_refused() {
    escapes_under(&[]);
}

#[test]
fn a_rails_app_serves_under_exec_and_every_escape_is_refused() {
    escapes_in("lockdown_rails.ru", &[]);
}

#[test]
fn puma_cluster_workers_inherit_the_lockdown() {
    escapes_under(&["-w", "2"]);
}

fn run_in(dir: &Path, args: &[&str]) -> std::process::Output {
    bin().current_dir(dir).args(args).output().unwrap()
}

#[test]
fn explain_prints_the_effective_rules() {
    let dir = app_dir("[lockdown.web]\npreset = \"ruby\"\nconnect_tcp = [5432]\n");
    let out = run_in(
        dir.path(),
        &["lockdown", "explain", "--config", "config/portcullis.toml"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "read  /usr/lib  (ruby preset)",
        "connect_tcp: 5432",
        "open_by_handle_at",
        "clone3 -> ENOSYS",
        "capabilities kept: none",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    let out = run_in(
        dir.path(),
        &[
            "--json",
            "lockdown",
            "explain",
            "--config",
            "config/portcullis.toml",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["connect_tcp"], serde_json::json!([5432]));
    assert!(v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["path"] == "/usr/lib" && r["access"] == "read"));
}

#[test]
fn exec_refuses_what_it_cannot_do() {
    let two = app_dir("[lockdown.a]\nexec = []\n[lockdown.b]\nexec = []\n");
    let out = run_in(
        two.path(),
        &[
            "exec",
            "--config",
            "config/portcullis.toml",
            "--",
            "/usr/bin/true",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("choose one with --lockdown"));
    let out = run_in(
        two.path(),
        &[
            "exec",
            "--config",
            "config/portcullis.toml",
            "--lockdown",
            "c",
            "--",
            "/usr/bin/true",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let none = app_dir("");
    let out = run_in(
        none.path(),
        &[
            "exec",
            "--config",
            "config/portcullis.toml",
            "--",
            "/usr/bin/true",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no [lockdown.NAME]"));
    let out = run_in(
        two.path(),
        &[
            "exec",
            "--config",
            "config/portcullis.toml",
            "--lockdown",
            "a",
            "--",
            "no-such-program-x",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("command not found"));
    let bad = app_dir("[lockdown.a]\nread = [\"/proc/self\"]\n");
    let out = run_in(bad.path(), &["check", "config/portcullis.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("portcullis.toml:2:9"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn exec_runs_the_command_locked_and_dry_run_only_logs() {
    let dir = app_dir("[lockdown.job]\nread = [\"/usr/lib\", \"/etc/ld.so.cache\"]\nexec = []\n");
    let cat = |extra: &[&str]| {
        let mut args = vec!["exec", "--config", "config/portcullis.toml"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "cat", "/etc/passwd"]);
        run_in(dir.path(), &args)
    };
    let locked = cat(&[]);
    let err = String::from_utf8_lossy(&locked.stderr);
    assert_ne!(
        locked.status.code(),
        Some(0),
        "cat read /etc/passwd under the lockdown"
    );
    assert!(
        err.contains("landlock ABI") && err.contains("enforced"),
        "{err}"
    );
    assert!(err.contains("Permission denied"), "{err}");
    let dry = cat(&["--dry-run"]);
    let err = String::from_utf8_lossy(&dry.stderr);
    assert_eq!(dry.status.code(), Some(0), "{err}");
    assert!(String::from_utf8_lossy(&dry.stdout).contains("root:"));
    assert!(
        err.contains("Landlock is NOT applied") && err.contains("SECCOMP_RET_LOG"),
        "{err}"
    );
    assert!(err.contains("seccomp floor log only"), "{err}");
}
