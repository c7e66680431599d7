//! Judging a template's program: is it something that would run its arguments as code
//! (a shell or language interpreter) or as a program (a launcher such as `nice`, `xargs`,
//! `sudo`)? A `#!` script is judged by its interpreter line, not refused for having one.
//!
//! A program is recognised by the name it is written as (argv\[0\], which multi-call
//! binaries such as busybox dispatch on), the name of the file it resolves to, and its
//! identity: a hard link (same device and inode) to a shell, interpreter or launcher in the
//! system's program directories counts as that program. A renamed *copy* elsewhere is not
//! recognised: that is the limit of looking at files rather than at what they do.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{CommandError, SAFE_PATH};

/// What a program does with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Class {
    /// Takes them as data (the default).
    Plain,
    /// GNU `sed`: its script can run shell commands (`e`, `s///e`) unless `--sandbox`.
    Sed,
    /// `find`: `-exec`, `-execdir`, `-ok`, `-okdir` run a program.
    Find,
    /// Runs one of them as a program (`nice`, `env`, `xargs`, `sudo`, `ld.so`, …).
    Launcher,
    /// Runs one of them as code (`sh -c`, `python -c`, a `make` variable, a `dc` file, …).
    Interpreter(Family),
}

/// Interpreter families, for the options a `#!` line may give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Family {
    /// sh, bash, dash, zsh, ksh, …
    Shell,
    /// csh, tcsh
    Csh,
    Python,
    Ruby,
    Perl,
    Node,
    Php,
    Lua,
    Awk,
    Expect,
    /// Its arguments are code whatever the options: `make` (variable assignments), `dc`
    /// and `m4` (files of code), multi-call binaries (busybox: the first is an applet).
    ArgumentsAreCode,
    /// Any other interpreter: a `#!` line may name it, with no options.
    Other,
}

/// Shells that match exactly or with a version suffix (`ksh93`).
const SHELLS: &[&str] = &[
    "sh", "bash", "rbash", "dash", "ash", "zsh", "ksh", "mksh", "pdksh", "yash", "osh",
];
const CSH: &[&str] = &["csh", "tcsh"];
/// Interpreters that match exactly or with a version suffix, by family.
const VERSIONED: &[(&str, Family)] = &[
    ("node", Family::Node),
    ("nodejs", Family::Node),
    ("awk", Family::Awk),
    ("gawk", Family::Awk),
    ("mawk", Family::Awk),
    ("nawk", Family::Awk),
    ("expect", Family::Expect),
    ("make", Family::ArgumentsAreCode),
    ("gmake", Family::ArgumentsAreCode),
    ("bmake", Family::ArgumentsAreCode),
    ("dc", Family::ArgumentsAreCode),
    ("m4", Family::ArgumentsAreCode),
    ("busybox", Family::ArgumentsAreCode),
    ("toybox", Family::ArgumentsAreCode),
    ("fish", Family::Other),
    ("deno", Family::Other),
    ("bun", Family::Other),
    ("pwsh", Family::Other),
    ("tclsh", Family::Other),
    ("wish", Family::Other),
    ("elvish", Family::Other),
    ("nu", Family::Other),
    ("xonsh", Family::Other),
    ("rc", Family::Other),
    ("es", Family::Other),
];
/// Language families that match any name they start (`python3.11`, `perl5.36.0`).
const ANY_SUFFIX: &[(&str, Family)] = &[
    ("python", Family::Python),
    ("pypy", Family::Python),
    ("ruby", Family::Ruby),
    ("jruby", Family::Ruby),
    ("irb", Family::Other),
    ("perl", Family::Perl),
    ("php", Family::Php),
    ("lua", Family::Lua),
];
/// Programs that run one of their arguments as a program. `env` is one (`env sh -c …`).
const LAUNCHERS: &[&str] = &[
    "env",
    "nice",
    "ionice",
    "chrt",
    "taskset",
    "numactl",
    "timeout",
    "nohup",
    "setsid",
    "stdbuf",
    "unbuffer",
    "xargs",
    "flock",
    "chroot",
    "unshare",
    "nsenter",
    "sudo",
    "sudoedit",
    "doas",
    "su",
    "runuser",
    "setpriv",
    "setarch",
    "linux32",
    "linux64",
    "prlimit",
    "time",
    "strace",
    "ltrace",
    "valgrind",
    "gdb",
    "perf",
    "watch",
    "script",
    "systemd-run",
    "firejail",
    "bwrap",
    "nsjail",
    "fakeroot",
    "fakechroot",
    "proot",
    "capsh",
    "pkexec",
    "runcon",
    "chpst",
    "sg",
    "newgrp",
    "cgexec",
    "start-stop-daemon",
    "daemonize",
    "torsocks",
    "proxychains",
    "proxychains4",
    "catchsegv",
    "ssh",
    "socat",
    "run-parts",
    "parallel",
    "entr",
    "eatmydata",
    "faketime",
    "xvfb-run",
    "dbus-launch",
    "dbus-run-session",
    "ssh-agent",
    "schroot",
    "chronic",
    "ifne",
    "sem",
    "at",
    "batch",
    "screen",
    "tmux",
    "trickle",
    "tsocks",
];

/// Where the system keeps programs: a program that is the same file as one of these
/// (a hard link) is judged as that program.
const SYSTEM_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];
/// The dynamic loader runs the program named by its first argument.
const LOADERS: &[&str] = &[
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/ld-linux.so.2",
    "/lib/ld-linux-aarch64.so.1",
    "/lib/ld-linux-armhf.so.3",
    "/lib/ld-musl-x86_64.so.1",
    "/lib/ld-musl-aarch64.so.1",
];

/// The class of a program by file name.
pub(super) fn class_of_name(name: &str) -> Class {
    let versioned = |base: &str| {
        name.strip_prefix(base)
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    };
    if SHELLS.iter().any(|b| versioned(b)) {
        return Class::Interpreter(Family::Shell);
    }
    if CSH.iter().any(|b| versioned(b)) {
        return Class::Interpreter(Family::Csh);
    }
    if let Some((_, family)) = VERSIONED.iter().find(|(b, _)| versioned(b)) {
        return Class::Interpreter(*family);
    }
    if let Some((_, family)) = ANY_SUFFIX.iter().find(|(b, _)| name.starts_with(b)) {
        return Class::Interpreter(*family);
    }
    let loader = name == "ld.so"
        || ((name.starts_with("ld-linux") || name.starts_with("ld-musl")) && name.contains(".so"));
    if LAUNCHERS.contains(&name) || loader || name.starts_with("qemu-") {
        return Class::Launcher;
    }
    match name {
        "sed" | "gsed" => Class::Sed,
        "find" | "gfind" | "bfs" => Class::Find,
        _ => Class::Plain,
    }
}

fn class_of_path(path: &Path) -> Class {
    path.file_name()
        .and_then(|n| n.to_str())
        .map_or(Class::Plain, class_of_name)
}

/// busybox and toybox run the applet named by argv\[0\] (the program as written).
fn is_multi_call(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n == "busybox" || n == "toybox")
}

/// The class of a system program that is the same file as `meta`, with its path. `None`
/// also for a multi-call binary, which is judged by the name it is run as.
fn class_by_identity(meta: &std::fs::Metadata) -> Option<(Class, PathBuf)> {
    if meta.nlink() < 2 {
        return None; // no other name for this file: its own name was judged already
    }
    let same = |path: &Path| {
        std::fs::metadata(path).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
    };
    for loader in LOADERS {
        if same(Path::new(loader)) {
            return Some((Class::Launcher, PathBuf::from(loader)));
        }
    }
    let mut found: Option<(Class, PathBuf)> = None;
    let mut scanned: Vec<PathBuf> = Vec::with_capacity(SYSTEM_DIRS.len());
    for dir in SYSTEM_DIRS {
        // /bin is often a symlink to /usr/bin: read each directory once.
        let Ok(canonical) = std::fs::canonicalize(dir) else {
            continue;
        };
        if scanned.contains(&canonical) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&canonical) else {
            continue;
        };
        scanned.push(canonical);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let class = name.to_str().map_or(Class::Plain, class_of_name);
            if class == Class::Plain || !same(&entry.path()) {
                continue;
            }
            if is_multi_call(&entry.path()) {
                return None;
            }
            if found.as_ref().map_or(true, |(c, _)| class > *c) {
                found = Some((class, entry.path()));
            }
        }
    }
    found
}

/// The most dangerous class among the written path, the resolved file and its identity,
/// with the path that showed it.
fn classify(written: &Path, resolved: &Path, meta: &std::fs::Metadata) -> (Class, PathBuf) {
    if is_multi_call(resolved) && !is_multi_call(written) {
        return (class_of_path(written), written.to_path_buf());
    }
    let mut found = (Class::Plain, resolved.to_path_buf());
    for path in [written, resolved] {
        let class = class_of_path(path);
        if class > found.0 {
            found = (class, path.to_path_buf());
        }
    }
    if found.0 < Class::Launcher {
        if let Some((class, path)) = class_by_identity(meta) {
            if class > found.0 {
                found = (class, path);
            }
        }
    }
    found
}

/// What [`check`] found out about an accepted program.
#[derive(Debug)]
pub(super) struct Checked {
    /// The canonical file to execute.
    pub(super) resolved: PathBuf,
    /// What the program does with its arguments (`Plain`, `Sed` or `Find` once accepted).
    pub(super) class: Class,
}

/// Checks the program path; refuses shells, interpreters and launchers (directly or as
/// the interpreter of a `#!` script) unless `allow_interpreter`.
pub(super) fn check(path: &str, allow_interpreter: bool) -> Result<Checked, CommandError> {
    let refuse = |reason: String| CommandError::Program {
        path: path.to_owned(),
        reason,
    };
    if path.bytes().any(|b| b.is_ascii_control()) {
        return Err(refuse("it contains control characters".to_owned()));
    }
    let written = Path::new(path);
    if !written.is_absolute() {
        return Err(refuse(
            "it is not an absolute path (PATH is never searched)".to_owned(),
        ));
    }
    let (resolved, meta) = executable(written).map_err(refuse)?;
    if allow_interpreter {
        return Ok(Checked {
            resolved,
            class: Class::Plain,
        });
    }
    let interpreter = |shown: &Path, extra: &str| CommandError::Interpreter {
        path: path.to_owned(),
        interpreter: format!("{}{extra}", shown.display()),
    };
    let launcher = |shown: &Path, extra: &str| CommandError::Launcher {
        path: path.to_owned(),
        launcher: format!("{}{extra}", shown.display()),
    };
    let (class, shown) = classify(written, &resolved, &meta);
    match class {
        Class::Interpreter(_) => return Err(interpreter(&shown, "")),
        Class::Launcher => return Err(launcher(&shown, "")),
        Class::Plain | Class::Sed | Class::Find => {}
    }
    if let Some(line) = shebang(&resolved).map_err(refuse)? {
        check_script(path, &line)?;
        // The script's own code is the file; its arguments are data.
        return Ok(Checked {
            resolved,
            class: Class::Plain,
        });
    }
    Ok(Checked { resolved, class })
}

/// Resolves a path to an existing regular file with an execute bit.
fn executable(written: &Path) -> Result<(PathBuf, std::fs::Metadata), String> {
    let resolved =
        std::fs::canonicalize(written).map_err(|e| format!("it cannot be resolved: {e}"))?;
    let meta = std::fs::metadata(&resolved).map_err(|e| format!("it cannot be inspected: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", resolved.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{} has no execute permission", resolved.display()));
    }
    Ok((resolved, meta))
}

/// A `#!` line as the kernel reads it: the interpreter, and the rest of the line (trimmed)
/// as at most one argument.
#[derive(Debug)]
struct Shebang {
    interpreter: String,
    argument: Option<String>,
}

/// The kernel reads this much of a script for its `#!` line (`BINPRM_BUF_SIZE`).
const SHEBANG_MAX: usize = 256;

fn shebang(file: &Path) -> Result<Option<Shebang>, String> {
    let mut head = [0u8; SHEBANG_MAX];
    // An execute-only file cannot be read; the kernel can still run it, so it must be
    // a binary we cannot inspect: judged by its name and identity only.
    let Ok(mut opened) = std::fs::File::open(file) else {
        return Ok(None);
    };
    let mut len = 0;
    while len < head.len() {
        match opened.read(head.get_mut(len..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("it cannot be read: {e}")),
        }
    }
    let Some(line) = head.get(..len).and_then(|h| h.strip_prefix(b"#!")) else {
        return Ok(None);
    };
    let Some(end) = line.iter().position(|&b| b == b'\n') else {
        return Err(format!(
            "its #! line is longer than the {SHEBANG_MAX} bytes the kernel reads"
        ));
    };
    let line = std::str::from_utf8(line.get(..end).unwrap_or_default())
        .map_err(|_| "its #! line is not valid UTF-8".to_owned())?;
    let line = line.trim_matches([' ', '\t']);
    let (interpreter, argument) = match line.split_once([' ', '\t']) {
        Some((interpreter, rest)) => {
            let rest = rest.trim_matches([' ', '\t']);
            (interpreter, (!rest.is_empty()).then(|| rest.to_owned()))
        }
        None => (line, None),
    };
    if interpreter.is_empty() {
        return Err("its #! line names no interpreter".to_owned());
    }
    Ok(Some(Shebang {
        interpreter: interpreter.to_owned(),
        argument,
    }))
}

/// Judges a script by its interpreter: `interpreter [argument] script args…` must not
/// make the arguments code or a program.
fn check_script(path: &str, line: &Shebang) -> Result<(), CommandError> {
    let shown = match &line.argument {
        Some(argument) => format!("{} {argument}", line.interpreter),
        None => line.interpreter.clone(),
    };
    let interpreter = |why: &str| CommandError::Interpreter {
        path: path.to_owned(),
        interpreter: format!("#!{shown} ({why})"),
    };
    let launcher = |why: &str| CommandError::Launcher {
        path: path.to_owned(),
        launcher: format!("#!{shown} ({why})"),
    };
    let program = |reason: String| CommandError::Program {
        path: path.to_owned(),
        reason,
    };
    let written = Path::new(&line.interpreter);
    if !written.is_absolute() {
        return Err(program(format!(
            "its #! interpreter {:?} is not an absolute path (the kernel would look it up in the working directory)",
            line.interpreter
        )));
    }
    let (resolved, meta) = executable(written)
        .map_err(|e| program(format!("its #! interpreter {:?}: {e}", line.interpreter)))?;
    if shebang(&resolved).ok().flatten().is_some() {
        return Err(interpreter("the interpreter is itself a script"));
    }
    let (class, found) = classify(written, &resolved, &meta);
    let options: Vec<String> = line.argument.iter().cloned().collect();
    match class {
        Class::Launcher if found.file_name().is_some_and(|n| n == "env") => {
            let (command, options) = env_command(line.argument.as_deref())
                .map_err(|why| launcher(&format!("env {why}")))?;
            let (resolved, meta) = find_in_safe_path(&command).map_err(|e| {
                program(format!(
                    "the program {command:?} that its #! line runs: {e}"
                ))
            })?;
            if shebang(&resolved).ok().flatten().is_some() {
                return Err(interpreter("env runs a program that is itself a script"));
            }
            let (class, _) = classify(Path::new(&command), &resolved, &meta);
            judge(class, &options).map_err(|why| match class {
                Class::Launcher => launcher(&why),
                _ => interpreter(&why),
            })
        }
        Class::Launcher => Err(launcher("a launcher runs its arguments as a program")),
        _ => judge(class, &options).map_err(|why| interpreter(&why)),
    }
}

/// Whether `class`, given `options` before the script path, takes the script's arguments
/// as data. The reason when it does not.
fn judge(class: Class, options: &[String]) -> Result<(), String> {
    let family = match class {
        Class::Plain | Class::Sed | Class::Find => return Ok(()),
        Class::Launcher => return Err("a launcher runs its arguments as a program".to_owned()),
        Class::Interpreter(family) => family,
    };
    let cluster = |option: &str, signs: &str, letters: &str| {
        let mut chars = option.chars();
        chars.next().is_some_and(|c| signs.contains(c))
            && option.len() > 1
            && chars.all(|c| letters.contains(c))
    };
    for option in options {
        let allowed = match family {
            // No option that runs a string (-c), reads commands elsewhere (-s, -i) or
            // takes an argument (-o, -O), which would make the script path that argument
            // and the first argument the script.
            Family::Shell => {
                matches!(
                    option.as_str(),
                    "-" | "--" | "--posix" | "--norc" | "--noprofile"
                ) || cluster(option, "-+", "aefhklnptuvxBEHPT")
            }
            Family::Csh => cluster(option, "-", "befnvxVX"),
            Family::Python => cluster(option, "-", "BEIOPRSbdqsuvx"),
            Family::Ruby => {
                cluster(option, "-", "wvdlnpaUx")
                    || matches!(
                        option.as_str(),
                        "-W0" | "-W1" | "-W2" | "--disable-gems" | "--jit" | "--yjit"
                    )
            }
            Family::Perl => cluster(option, "-", "wWXTtlnpaU"),
            Family::Node => matches!(
                option.as_str(),
                "--no-warnings" | "--no-deprecation" | "--enable-source-maps" | "--use-strict"
            ),
            Family::Php => cluster(option, "-", "qnHC"),
            Family::Lua => cluster(option, "-", "EW"),
            Family::Awk => matches!(option.as_str(), "-f" | "-E" | "--exec" | "--sandbox"),
            Family::Expect => matches!(option.as_str(), "-f" | "-" | "--" | "-d" | "-n" | "-N"),
            Family::ArgumentsAreCode => {
                return Err("its arguments are code whatever the options".to_owned())
            }
            Family::Other => false,
        };
        if !allowed {
            return Err(format!(
                "the option {option:?} could make the arguments code or a program"
            ));
        }
    }
    Ok(())
}

/// The program a `#!/usr/bin/env …` line runs and the options it gives it, as GNU env
/// reads the one argument the kernel passes (split with `-S`).
fn env_command(argument: Option<&str>) -> Result<(String, Vec<String>), String> {
    let Some(argument) = argument else {
        return Err("with no program would run the script itself".to_owned());
    };
    let split = if let Some(rest) = argument.strip_prefix("--split-string=") {
        Some(rest)
    } else if let Some(rest) = argument.strip_prefix("-S") {
        Some(rest)
    } else {
        // `-vS …`, `-iS…`: options clustered before S.
        argument
            .strip_prefix('-')
            .filter(|a| !a.starts_with('-'))
            .and_then(|a| a.split_once('S'))
            .filter(|(before, _)| before.chars().all(|c| matches!(c, 'i' | 'v' | '0')))
            .map(|(_, rest)| rest)
    };
    let tokens: Vec<String> = match split {
        Some(text) => {
            if text.contains(['\'', '"', '\\', '$', '#']) {
                return Err(
                    "-S with quotes, escapes, variables or comments is not read here; write the #! line without them"
                        .to_owned(),
                );
            }
            text.split_ascii_whitespace().map(str::to_owned).collect()
        }
        None => {
            if argument.contains([' ', '\t']) {
                return Err(format!(
                    "without -S looks for one program named {argument:?}"
                ));
            }
            vec![argument.to_owned()]
        }
    };
    let mut rest = tokens.into_iter().peekable();
    // env's own options, then NAME=VALUE assignments, then the program.
    while let Some(token) = rest.peek() {
        match token.as_str() {
            "-i" | "-0" | "-v" | "--ignore-environment" | "--null" | "--debug" => {}
            "--" => {
                rest.next();
                break;
            }
            "-u" | "-C" | "--unset" | "--chdir" => {
                rest.next();
            }
            t if t.starts_with("--unset=")
                || t.starts_with("--chdir=")
                || (t.starts_with("-u") && t.len() > 2)
                || (t.starts_with("-C") && t.len() > 2) => {}
            t if t.starts_with('-') => {
                return Err(format!("option {t:?} is not understood here"));
            }
            _ => break,
        }
        rest.next();
    }
    while let Some(token) = rest.peek() {
        let Some((name, _)) = token.split_once('=') else {
            break;
        };
        if name == "PATH" {
            return Err("sets PATH, which changes which program runs".to_owned());
        }
        rest.next();
    }
    let Some(command) = rest.next() else {
        return Err("with no program would run the script itself".to_owned());
    };
    Ok((command, rest.collect()))
}

/// Finds a program the way env does with the child's fixed `PATH`.
fn find_in_safe_path(command: &str) -> Result<(PathBuf, std::fs::Metadata), String> {
    if command.contains('/') {
        if !command.starts_with('/') {
            return Err("it is a relative path".to_owned());
        }
        return executable(Path::new(command));
    }
    for dir in SAFE_PATH.split(':') {
        let candidate = Path::new(dir).join(command);
        if let Ok(found) = executable(&candidate) {
            return Ok(found);
        }
    }
    Err(format!("it is not in PATH ({SAFE_PATH})"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{class_of_name, env_command, Class, Family};

    #[test]
    fn names() {
        for name in [
            "sh",
            "bash",
            "dash",
            "zsh",
            "ksh93",
            "csh",
            "tcsh",
            "fish",
            "busybox",
            "node",
            "nodejs",
            "python",
            "python3",
            "python3.11",
            "ruby3.1",
            "perl",
            "perl5.36.0",
            "php8.2",
            "lua5.4",
            "luajit",
            "awk",
            "mawk",
            "tclsh8.6",
            "make",
            "dc",
            "m4",
        ] {
            assert!(
                matches!(class_of_name(name), Class::Interpreter(_)),
                "{name}"
            );
        }
        for name in [
            "env",
            "nice",
            "timeout",
            "nohup",
            "setsid",
            "stdbuf",
            "xargs",
            "flock",
            "chroot",
            "unshare",
            "nsenter",
            "sudo",
            "doas",
            "ld-linux-x86-64.so.2",
            "ld.so",
            "ld-musl-x86_64.so.1",
            "qemu-x86_64",
            "ssh",
            "socat",
        ] {
            assert_eq!(class_of_name(name), Class::Launcher, "{name}");
        }
        assert_eq!(class_of_name("sed"), Class::Sed);
        assert_eq!(class_of_name("find"), Class::Find);
        for name in [
            "shred",
            "sha256sum",
            "bashful",
            "envsubst",
            "echo",
            "git",
            "tar",
            "docker",
            "nodeinfo",
            "cat",
            "sleep",
            "shasum",
            "dashboard",
            "nicely",
            "timeouts",
            "ld",
            "makefile-lint",
            "dcraw",
            "findmnt",
            "sedan",
        ] {
            assert_eq!(class_of_name(name), Class::Plain, "{name}");
        }
        assert_eq!(class_of_name("bash"), Class::Interpreter(Family::Shell));
    }

    #[test]
    fn env_lines() {
        let ok = |arg: &str| env_command(Some(arg)).unwrap();
        assert_eq!(ok("python3"), ("python3".to_owned(), vec![]));
        assert_eq!(
            ok("-S python3 -u"),
            ("python3".to_owned(), vec!["-u".to_owned()])
        );
        assert_eq!(
            ok("-S -i FOO=1 perl -w"),
            ("perl".to_owned(), vec!["-w".to_owned()])
        );
        assert_eq!(
            ok("-vS bash -e"),
            ("bash".to_owned(), vec!["-e".to_owned()])
        );
        assert_eq!(
            ok("--split-string=ruby -w"),
            ("ruby".to_owned(), vec!["-w".to_owned()])
        );
        assert_eq!(ok("-S -u HOME sh"), ("sh".to_owned(), vec![]));
        for bad in [
            "bash -c",
            "-S",
            "-S PATH=/tmp python3",
            "-S 'bash' -c",
            "-S bash\\_-c",
            "-S ${X}",
            "-i",
            "FOO=1",
            "-S -P /tmp python3",
        ] {
            assert!(env_command(Some(bad)).is_err(), "{bad}");
        }
        assert!(env_command(None).is_err());
    }
}
