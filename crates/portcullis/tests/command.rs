//! CommandTemplate: program checks, template checks, and every value refusal, including
//! the option-injection payloads that real programs (git, tar, ssh, curl, find, docker)
//! would act on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;

use portcullis::command::{CommandError, CommandTemplate, Param};
use portcullis::ErrorCode;

const NO_VALUES: [(&str, &str); 0] = [];

fn code<T: std::fmt::Debug>(result: Result<T, CommandError>) -> &'static str {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => {
            // Every message is non-empty and names the problem; codes are stable.
            assert!(!e.to_string().is_empty());
            e.code()
        }
    }
}

fn echo_with(name: &str, param: Param) -> CommandTemplate {
    CommandTemplate::builder("/bin/echo")
        .placeholder(name)
        .param(name, param)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------- programs

#[test]
fn program_must_be_absolute_existing_regular_executable() {
    assert_eq!(
        code(CommandTemplate::builder("echo").build()),
        "command.program"
    );
    assert_eq!(
        code(CommandTemplate::builder("bin/echo").build()),
        "command.program"
    );
    assert_eq!(
        code(CommandTemplate::builder("").build()),
        "command.program"
    );
    assert_eq!(
        code(CommandTemplate::builder("/nonexistent/program").build()),
        "command.program"
    );
    assert_eq!(
        code(CommandTemplate::builder("/usr/bin").build()),
        "command.program"
    );
    assert_eq!(
        code(CommandTemplate::builder("/bin/echo\n").build()),
        "command.program"
    );

    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("not-executable");
    std::fs::copy("/bin/true", &plain).unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = CommandTemplate::builder(plain.to_str().unwrap())
        .build()
        .unwrap_err();
    assert_eq!(err.code(), "command.program");
    assert!(err.to_string().contains("execute"), "{err}");

    let ok = CommandTemplate::builder("/bin/echo").build().unwrap();
    assert_eq!(ok.program(), "/bin/echo");
    // /bin is a symlink on merged-/usr systems: what runs is the resolved file.
    assert_eq!(
        ok.resolved_program(),
        std::fs::canonicalize("/bin/echo").unwrap()
    );
}

#[test]
fn shells_and_interpreters_are_refused_unless_allowed() {
    for program in [
        "/bin/sh",
        "/bin/bash",
        "/bin/dash",
        "/usr/bin/python3",
        "/usr/bin/perl",
        "/usr/bin/ruby",
        "/usr/bin/awk",
        "/usr/bin/node",
        "/usr/bin/make",
    ] {
        if !std::path::Path::new(program).exists() {
            continue;
        }
        let err = CommandTemplate::builder(program).build().unwrap_err();
        assert_eq!(err.code(), "command.interpreter", "{program}: {err}");
        CommandTemplate::builder(program)
            .allow_interpreter(true)
            .build()
            .unwrap_or_else(|e| panic!("{program} with allow_interpreter: {e}"));
    }
}

/// Launchers run an argument as a program: `/usr/bin/nice /bin/sh -c "echo {m}"` is a
/// shell. Every spelling of the path counts: /bin and /usr/bin, symlinks and hard links
/// under innocent names, the dynamic loader.
#[test]
fn launchers_are_refused_unless_allowed() {
    let mut checked = 0;
    for program in [
        "/usr/bin/env",
        "/bin/env",
        "/usr/bin/nice",
        "/bin/nice",
        "/usr/bin/timeout",
        "/usr/bin/nohup",
        "/usr/bin/setsid",
        "/usr/bin/stdbuf",
        "/usr/bin/xargs",
        "/usr/bin/flock",
        "/usr/sbin/chroot",
        "/usr/bin/unshare",
        "/usr/bin/nsenter",
        "/usr/bin/ionice",
        "/usr/bin/taskset",
        "/usr/bin/chrt",
        "/usr/bin/setpriv",
        "/usr/bin/prlimit",
        "/usr/bin/script",
        "/usr/bin/ssh",
        "/usr/bin/sudo",
        "/usr/bin/doas",
        "/lib64/ld-linux-x86-64.so.2",
    ] {
        if !std::path::Path::new(program).exists() {
            continue;
        }
        checked += 1;
        let err = CommandTemplate::builder(program)
            .args(["/bin/sh", "-c", "echo hi"])
            .build()
            .unwrap_err();
        assert_eq!(err.code(), "command.launcher", "{program}: {err}");
        assert!(err.to_string().contains("as a program"), "{err}");
        CommandTemplate::builder(program)
            .allow_interpreter(true)
            .build()
            .unwrap_or_else(|e| panic!("{program} with allow_interpreter: {e}"));
    }
    assert!(
        checked >= 10,
        "only {checked} launchers found on this machine"
    );

    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("renice-helper");
    std::os::unix::fs::symlink("/usr/bin/nice", &link).unwrap();
    assert_eq!(
        code(CommandTemplate::builder(link.to_str().unwrap()).build()),
        "command.launcher"
    );
    // A hard link has no target to resolve: its identity (device, inode) is that of the
    // system's `nice`. (Same filesystem as /usr/bin here; skip where it is not.)
    let hard = dir.path().join("report");
    if std::fs::hard_link("/usr/bin/nice", &hard).is_ok() {
        assert_eq!(
            code(CommandTemplate::builder(hard.to_str().unwrap()).build()),
            "command.launcher"
        );
    }
    let hard = dir.path().join("lint");
    if std::fs::hard_link("/usr/bin/python3.11", &hard).is_ok() {
        assert_eq!(
            code(CommandTemplate::builder(hard.to_str().unwrap()).build()),
            "command.interpreter"
        );
    }
}

#[test]
fn find_exec_and_sed_without_sandbox_are_refused() {
    for exec in ["-exec", "-execdir", "-ok", "-okdir"] {
        let err = CommandTemplate::builder("/usr/bin/find")
            .args([".", "-name", "*.log", exec, "/bin/sh", "-c", "echo {}", ";"])
            .build()
            .unwrap_err();
        assert_eq!(err.code(), "command.launcher", "{exec}: {err}");
    }
    // A placeholder that could spell -exec: after a '-' prefix, or allowed a leading dash.
    let err = CommandTemplate::builder("/usr/bin/find")
        .args(["."])
        .arg_template("-{pred}")
        .param("pred", Param::pattern("[a-z]+").unwrap())
        .build()
        .unwrap_err();
    assert_eq!(err.code(), "command.launcher", "{err}");
    let err = CommandTemplate::builder("/usr/bin/find")
        .args(["."])
        .placeholder("pred")
        .param("pred", Param::literal().allow_leading_dash())
        .build()
        .unwrap_err();
    assert_eq!(err.code(), "command.launcher", "{err}");
    // find without them is an ordinary program.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.log"), b"").unwrap();
    let find = CommandTemplate::builder("/usr/bin/find")
        .arg(dir.path().to_str().unwrap())
        .args(["-name"])
        .placeholder("glob")
        .param("glob", Param::pattern(r"[\w*.]+").unwrap())
        .build()
        .unwrap();
    let out = find.run([("glob", "*.log")]).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("a.log\n"));

    // GNU sed runs shell commands from its script (`e`, `s///e`) unless --sandbox.
    for args in [
        &["-e", "{script}"][..],
        &["{script}"][..],
        &["-n", "-e", "1p", "--", "--sandbox", "{script}"][..],
    ] {
        let mut b = CommandTemplate::builder("/usr/bin/sed");
        for a in args {
            b = b.arg_template(*a);
        }
        let err = b.param("script", Param::literal()).build().unwrap_err();
        assert_eq!(err.code(), "command.interpreter", "{args:?}: {err}");
        assert!(err.to_string().contains("--sandbox"), "{err}");
    }
    let sed = CommandTemplate::builder("/usr/bin/sed")
        .args(["--sandbox", "-e"])
        .placeholder("script")
        .param("script", Param::literal())
        .build()
        .unwrap();
    let out = sed.run([("script", "1e id")]).unwrap();
    assert!(!out.success(), "sed --sandbox ran e");
    assert!(String::from_utf8_lossy(&out.stderr).contains("sandbox"));
}

/// A `#!` script's code is the file, its arguments are data: it is a program, unless the
/// interpreter line makes the arguments code or a program.
#[test]
fn scripts_are_judged_by_their_interpreter_line() {
    let dir = tempfile::tempdir().unwrap();
    let script = |name: &str, shebang: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{shebang}\nprintf '%s|' \"$@\"\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_owned()
    };
    for shebang in [
        "#!/bin/sh",
        "#! /bin/sh",
        "#!/bin/sh -",
        "#!/bin/sh -e",
        "#!/bin/bash -eu",
        "#!/bin/bash --norc",
        "#!/usr/bin/env sh",
        "#!/usr/bin/env -S sh -e",
        "#!/usr/bin/env -S -i LANG=C sh -eu",
    ] {
        let path = script("ok", shebang);
        let t = CommandTemplate::builder(path.as_str())
            .placeholder("v")
            .param("v", Param::literal())
            .build()
            .unwrap_or_else(|e| panic!("{shebang}: {e}"));
        // The value is data: the shell does not run it.
        let out = t.run([("v", "$(echo pwned); `id`")]).unwrap();
        assert_eq!(out.stdout, b"$(echo pwned); `id`|", "{shebang}");
    }
    for shebang in [
        "#!/usr/bin/python3",
        "#!/usr/bin/python3 -u",
        "#!/usr/bin/env python3",
        "#!/usr/bin/perl -w",
        "#!/usr/bin/ruby -w",
        "#!/usr/bin/awk -f",
        "#!/usr/bin/sed -f",
        "#!/usr/bin/env node",
    ] {
        let interpreter = shebang.trim_start_matches("#!").split(' ').next().unwrap();
        let needed = shebang
            .split(' ')
            .nth(1)
            .filter(|_| interpreter.ends_with("env"));
        if !std::path::Path::new(interpreter).exists()
            || needed.is_some_and(|p| !std::path::Path::new("/usr/bin").join(p).exists())
        {
            continue;
        }
        let path = script("ok2", shebang);
        CommandTemplate::builder(path.as_str())
            .build()
            .unwrap_or_else(|e| panic!("{shebang}: {e}"));
    }
    for (shebang, expected) in [
        ("#!/bin/sh -c", "command.interpreter"),
        ("#!/bin/sh -ec", "command.interpreter"),
        ("#!/bin/sh -xc", "command.interpreter"),
        ("#!/bin/sh\t-c", "command.interpreter"),
        ("#!/bin/bash -o", "command.interpreter"),
        ("#!/bin/bash -s", "command.interpreter"),
        ("#!/bin/bash -i", "command.interpreter"),
        ("#!/bin/bash --rcfile", "command.interpreter"),
        ("#!/bin/sh -e -c", "command.interpreter"),
        ("#!/usr/bin/perl -e", "command.interpreter"),
        ("#!/usr/bin/perl -we", "command.interpreter"),
        ("#!/usr/bin/perl -E", "command.interpreter"),
        ("#!/usr/bin/python3 -c", "command.interpreter"),
        ("#!/usr/bin/python3 -m", "command.interpreter"),
        ("#!/usr/bin/ruby -e", "command.interpreter"),
        ("#!/usr/bin/node -e", "command.interpreter"),
        ("#!/usr/bin/node --eval", "command.interpreter"),
        ("#!/usr/bin/make -f", "command.interpreter"),
        ("#!/usr/bin/env -S bash -c", "command.interpreter"),
        ("#!/usr/bin/env -S perl -e", "command.interpreter"),
        ("#!/usr/bin/env -S make -f", "command.interpreter"),
        ("#!/usr/bin/env bash -c", "command.launcher"),
        ("#!/usr/bin/env -S 'bash' -c", "command.launcher"),
        ("#!/usr/bin/env -S bash\\_-c", "command.launcher"),
        ("#!/usr/bin/env -S ${SHELL}", "command.launcher"),
        ("#!/usr/bin/env -S PATH=/tmp sh", "command.launcher"),
        ("#!/usr/bin/env -S", "command.launcher"),
        ("#!/usr/bin/env", "command.launcher"),
        ("#!/usr/bin/env -S env sh", "command.launcher"),
        ("#!/usr/bin/env -S nice sh", "command.launcher"),
        ("#!/usr/bin/env -S xargs", "command.launcher"),
        ("#!/usr/bin/nice /bin/sh", "command.launcher"),
        ("#!/usr/bin/timeout", "command.launcher"),
        ("#!/usr/bin/xargs", "command.launcher"),
        ("#!/lib64/ld-linux-x86-64.so.2", "command.launcher"),
        ("#!sh", "command.program"),
        ("#!/nonexistent/sh", "command.program"),
        ("#!", "command.program"),
    ] {
        let interpreter = shebang
            .trim_start_matches("#!")
            .split([' ', '\t'])
            .next()
            .unwrap();
        if interpreter.starts_with('/')
            && !interpreter.starts_with("/nonexistent")
            && !std::path::Path::new(interpreter).exists()
        {
            continue;
        }
        let path = script("bad", shebang);
        let err = CommandTemplate::builder(path.as_str()).build().unwrap_err();
        assert_eq!(err.code(), expected, "{shebang}: {err}");
        if expected != "command.program" {
            CommandTemplate::builder(path.as_str())
                .allow_interpreter(true)
                .build()
                .unwrap_or_else(|e| panic!("{shebang} with allow_interpreter: {e}"));
        }
    }
    // A script whose interpreter is itself a script.
    let inner = script("inner", "#!/bin/sh");
    let outer = script("outer", &format!("#!{inner}"));
    assert_eq!(
        code(CommandTemplate::builder(outer.as_str()).build()),
        "command.interpreter"
    );
    // An interpreter line longer than the kernel reads.
    let long = script("long", &format!("#!/bin/sh {}", "-e".repeat(200)));
    assert_eq!(
        code(CommandTemplate::builder(long.as_str()).build()),
        "command.program"
    );
    // A symlink to a shell under an innocent name is the shell.
    let link = dir.path().join("deploy-tool");
    std::os::unix::fs::symlink("/bin/sh", &link).unwrap();
    assert_eq!(
        code(CommandTemplate::builder(link.to_str().unwrap()).build()),
        "command.interpreter"
    );
}

#[test]
fn ordinary_programs_are_not_mistaken_for_interpreters() {
    for program in [
        "/bin/echo",
        "/bin/cat",
        "/usr/bin/git",
        "/bin/tar",
        "/usr/bin/find",
    ] {
        if std::path::Path::new(program).exists() {
            CommandTemplate::builder(program)
                .build()
                .unwrap_or_else(|e| panic!("{program}: {e}"));
        }
    }
}

// ---------------------------------------------------------------- templates

#[test]
fn bad_templates_are_refused_when_built() {
    let cases: Vec<(&str, portcullis::command::CommandTemplateBuilder)> = vec![
        (
            "placeholder without parameter",
            CommandTemplate::builder("/bin/echo").placeholder("x"),
        ),
        (
            "parameter without placeholder",
            CommandTemplate::builder("/bin/echo").param("x", Param::literal()),
        ),
        (
            "two placeholders in one element",
            CommandTemplate::builder("/bin/echo")
                .arg_template("{a}{b}")
                .param("a", Param::literal())
                .param("b", Param::literal()),
        ),
        (
            "parameter declared twice",
            CommandTemplate::builder("/bin/echo")
                .placeholder("x")
                .param("x", Param::literal())
                .param("x", Param::literal()),
        ),
        (
            "parameter name not an identifier",
            CommandTemplate::builder("/bin/echo")
                .placeholder("a-b")
                .param("a-b", Param::literal()),
        ),
        (
            "one_of target that is an option",
            CommandTemplate::builder("/bin/echo")
                .placeholder("image")
                .param("image", Param::one_of([("worker", "--privileged")])),
        ),
        (
            "one_of choice that is an option",
            CommandTemplate::builder("/bin/echo")
                .placeholder("image")
                .param("image", Param::one_of([("-v", "worker")])),
        ),
        (
            "one_of target with a newline",
            CommandTemplate::builder("/bin/echo")
                .placeholder("image")
                .param("image", Param::one_of([("worker", "a\nb")])),
        ),
        (
            "one_of without choices",
            CommandTemplate::builder("/bin/echo")
                .placeholder("image")
                .param("image", Param::one_of(Vec::<(String, String)>::new())),
        ),
        (
            "one_of with a choice twice",
            CommandTemplate::builder("/bin/echo")
                .placeholder("image")
                .param("image", Param::one_of([("a", "x"), ("a", "y")])),
        ),
        (
            "empty integer range",
            CommandTemplate::builder("/bin/echo")
                .placeholder("n")
                .param("n", Param::integer(std::ops::RangeInclusive::new(5, 1))),
        ),
        (
            "NUL in a fixed argument",
            CommandTemplate::builder("/bin/echo").arg("a\0b"),
        ),
        (
            "PATH is fixed",
            CommandTemplate::builder("/bin/echo").env("PATH", "/tmp"),
        ),
        (
            "env name with =",
            CommandTemplate::builder("/bin/echo").env("A=B", "c"),
        ),
        (
            "empty env name",
            CommandTemplate::builder("/bin/echo").env("", "c"),
        ),
        (
            "NUL in env value",
            CommandTemplate::builder("/bin/echo").env("A", "b\0"),
        ),
        (
            "env set twice",
            CommandTemplate::builder("/bin/echo")
                .env("A", "1")
                .env("A", "2"),
        ),
        (
            "relative chdir",
            CommandTemplate::builder("/bin/echo").chdir("tmp"),
        ),
        (
            "missing chdir",
            CommandTemplate::builder("/bin/echo").chdir("/nonexistent/dir"),
        ),
        (
            "chdir to a file",
            CommandTemplate::builder("/bin/echo").chdir("/bin/echo"),
        ),
        (
            "timeout beyond MAX_TIMEOUT",
            CommandTemplate::builder("/bin/echo")
                .timeout(portcullis::command::MAX_TIMEOUT + std::time::Duration::from_secs(1)),
        ),
        (
            "zero timeout",
            CommandTemplate::builder("/bin/echo").timeout(std::time::Duration::ZERO),
        ),
    ];
    for (what, builder) in cases {
        assert_eq!(code(builder.build()), "command.bad_template", "{what}");
    }
    assert_eq!(code(Param::pattern("(unclosed")), "command.bad_template");
}

#[test]
fn arg_template_syntax() {
    let t = CommandTemplate::builder("/bin/echo")
        .arg_template("--name={name}")
        .arg_template("{name}.txt")
        .arg_template("ref={name}^{{commit}}")
        .arg_template("{}") // find's `{}`: not a name, so literal
        .arg_template("{{name}}") // escaped: literal braces
        .arg_template("plain")
        .arg("{name}") // .arg() is always literal
        .param("name", Param::pattern("[a-z]+").unwrap())
        .build()
        .unwrap();
    assert_eq!(
        t.argv([("name", "abc")]).unwrap(),
        [
            "/bin/echo",
            "--name=abc",
            "abc.txt",
            "ref=abc^{commit}",
            "{}",
            "{name}",
            "plain",
            "{name}"
        ]
    );
}

#[test]
fn docker_shaped_template_maps_request_values() {
    let deploy = CommandTemplate::builder("/bin/echo") // docker is not installed here
        .args(["run", "--rm"])
        .end_of_options()
        .placeholder("image")
        .param(
            "image",
            Param::one_of([("worker", "worker:latest"), ("api", "api:stable")]),
        )
        .build()
        .unwrap();
    assert_eq!(
        deploy.argv([("image", "worker")]).unwrap(),
        ["/bin/echo", "run", "--rm", "--", "worker:latest"]
    );
    assert_eq!(
        deploy.argv([("image", "api")]).unwrap(),
        ["/bin/echo", "run", "--rm", "--", "api:stable"]
    );
    // The seed's attack values: options, host mounts, namespace sharing, shell syntax.
    for hostile in [
        "--privileged",
        "-v/:/host",
        "-v",
        "--pid=host",
        "--network=host",
    ] {
        assert_eq!(
            code(deploy.argv([("image", hostile)])),
            "command.option_injection",
            "{hostile}"
        );
    }
    for hostile in [
        "worker;id",
        "worker latest",
        "worker:latest",
        "Worker",
        "",
        "alpine",
    ] {
        assert_eq!(
            code(deploy.argv([("image", hostile)])),
            "command.invalid_value",
            "{hostile}"
        );
    }
}

// ---------------------------------------------------------------- parameters

#[test]
fn missing_unknown_and_duplicate_parameters() {
    let t = CommandTemplate::builder("/bin/echo")
        .placeholder("a")
        .placeholder("b")
        .param("a", Param::literal())
        .param("b", Param::literal())
        .build()
        .unwrap();
    assert_eq!(code(t.argv([("a", "1")])), "command.missing_param");
    assert_eq!(code(t.argv(NO_VALUES)), "command.missing_param");
    assert_eq!(
        code(t.argv([("a", "1"), ("b", "2"), ("c", "3")])),
        "command.unknown_param"
    );
    assert_eq!(
        code(t.argv([("a", "1"), ("b", "2"), ("a", "3")])),
        "command.duplicate_param"
    );
    // A hostile parameter name is quoted and cut short in the message.
    let err = t
        .argv([(
            "a\nFAKE LOG LINE".to_owned() + &"x".repeat(500),
            "1".to_owned(),
        )])
        .unwrap_err();
    assert_eq!(err.code(), "command.unknown_param");
    assert!(!err.to_string().contains('\n'));
    assert!(err.to_string().len() < 300);
    assert_eq!(
        t.argv([("b", "2"), ("a", "1")]).unwrap(),
        ["/bin/echo", "1", "2"]
    );
}

#[test]
fn control_characters_are_refused_for_every_type() {
    let params = [
        Param::literal(),
        Param::pattern("(?s).*").unwrap(),
        Param::one_of_values(["a"]),
        Param::integer(0..=10),
    ];
    for param in params {
        let t = echo_with("v", param);
        for bad in ["a\nb", "a\rb", "a\0b", "\n", "1\n", "a\r\n"] {
            assert_eq!(
                code(t.argv([("v", bad)])),
                "command.control_char",
                "{bad:?}"
            );
        }
    }
}

#[test]
fn length_cap_applies_to_every_type() {
    let t = echo_with("v", Param::literal().max_len(8));
    assert!(t.argv([("v", "12345678")]).is_ok());
    assert_eq!(code(t.argv([("v", "123456789")])), "command.too_long");
    let t = echo_with("v", Param::literal());
    assert!(t
        .argv([("v", "x".repeat(portcullis::command::DEFAULT_MAX_LEN))])
        .is_ok());
    assert_eq!(
        code(t.argv([("v", "x".repeat(portcullis::command::DEFAULT_MAX_LEN + 1))])),
        "command.too_long"
    );
    let t = echo_with("v", Param::integer(..).max_len(3));
    assert_eq!(code(t.argv([("v", "0001")])), "command.too_long");
    // Multi-byte characters count in bytes.
    let t = echo_with("v", Param::literal().max_len(4));
    assert_eq!(code(t.argv([("v", "ééé")])), "command.too_long");
}

#[test]
fn pattern_is_anchored_to_the_whole_value() {
    let t = echo_with("name", Param::pattern("[a-z]+").unwrap());
    assert_eq!(t.argv([("name", "abc")]).unwrap(), ["/bin/echo", "abc"]);
    for bad in ["abc;id", "ABC", "abc def", "", "a/b", "$(id)", "abc`id`"] {
        assert_eq!(
            code(t.argv([("name", bad)])),
            "command.invalid_value",
            "{bad:?}"
        );
    }
    // Alternation is grouped before anchoring: `a|b` does not accept `ab` or `xa`.
    let t = echo_with("v", Param::pattern("a|b").unwrap());
    assert!(t.argv([("v", "a")]).is_ok());
    assert_eq!(code(t.argv([("v", "ab")])), "command.invalid_value");
    assert_eq!(code(t.argv([("v", "xa")])), "command.invalid_value");
    // A pattern that would accept a leading dash still cannot produce an option.
    let t = echo_with("v", Param::pattern("[-a-z]+").unwrap());
    assert_eq!(code(t.argv([("v", "-rf")])), "command.option_injection");
}

/// Patterns mean what Ruby means by them (spec/command_spec.rb checks the same against
/// Ruby's own `Regexp`): ASCII `\d \w \s \h`, also case-insensitively; Unicode POSIX
/// classes; isolated options that reach over `|`; `{` that is no quantifier is a character.
#[test]
fn patterns_are_read_with_rubys_meaning() {
    let accepts = |pattern: &str, value: &str| {
        echo_with("v", Param::pattern(pattern).unwrap())
            .argv([("v", value)])
            .is_ok()
    };
    for (pattern, refused) in [
        (r"\A\d+\z", "１２３"),
        (r"\A\d+\z", "٣"),
        (r"\d+", "১২"),
        (r"\w+", "ａｄｍｉｎ"),
        (r"\w+", "é"),
        (r"[\w.]+", "ａ.b"),
        (r"(?i)\w+", "\u{212A}"),
        (r"(?i)[\w.]+", "\u{212A}"),
        (r"(?i)[\w.]+", "\u{17F}"),
        (r"(?i:\h+)", "\u{FF41}"),
        (r"\s", "\u{A0}"),
        (r"\s", "\u{2028}"),
        (r"[^\W_]+", "ａ"),
        (r"a(?i)b|c", "c"),
        (r"a(?i)b|c", "C"),
        (r"x{ 3}", "xxx"),
        (r"[a b]", "x"),
        (r"(?x)[a\ b]", "x"),
    ] {
        assert!(!accepts(pattern, refused), "{pattern} accepted {refused:?}");
    }
    for (pattern, accepted) in [
        (r"\A\d+\z", "123"),
        (r"\w+", "a_Z9"),
        (r"(?i)\w+", "K"),
        (r"(?i)k", "\u{212A}"), // a literal folds, as in Ruby
        (r"\h+", "c0FFee"),
        (r"\s", "\u{B}"),
        (r"a(?i)b|c", "aC"),
        (r"x{ 3}", "x{ 3}"),
        (r"\d{,2}", "12"),
        (r"(?x)[a b]", " "),
        (r"[[:alpha:]]+", "éa\u{2160}"),
        (r"[[:digit:]]", "٣"),
        (r"[[:punct:]]", "$"),
        (r"[[:space:]]", "\u{A0}"),
        (r"a\b", "a"),
        (r"a\Z", "a"),
    ] {
        assert!(accepts(pattern, accepted), "{pattern} refused {accepted:?}");
    }
    // What the two dialects read differently, with no exact rewrite, is refused.
    for pattern in [
        "a++",
        "a?+",
        "a{2}?",
        "[a-z--c]",
        "[a~~b]",
        r"[a-\w]",
        r"(?i)[^\w]",
        r"(?i)[\w&&a]",
        "[[:letter:]]",
    ] {
        let err = Param::pattern(pattern).unwrap_err();
        assert_eq!(err.code(), "command.bad_template", "{pattern}");
        assert!(err.to_string().contains("refused"), "{pattern}: {err}");
    }
}

#[test]
fn integers_are_strict_and_canonical() {
    let t = echo_with("n", Param::integer(1..=10));
    assert_eq!(t.argv([("n", "1")]).unwrap()[1], "1");
    assert_eq!(t.argv([("n", "10")]).unwrap()[1], "10");
    assert_eq!(t.argv([("n", "007")]).unwrap()[1], "7");
    for bad in [
        "0",
        "11",
        "+5",
        " 5",
        "5 ",
        "0x5",
        "5.0",
        "1e1",
        "",
        "５",
        "1_0",
        "99999999999999999999999",
    ] {
        assert_eq!(
            code(t.argv([("n", bad)])),
            "command.invalid_value",
            "{bad:?}"
        );
    }
    assert_eq!(code(t.argv([("n", "-5")])), "command.option_injection");

    let t = echo_with("n", Param::integer(-10..10).allow_leading_dash());
    assert_eq!(t.argv([("n", "-10")]).unwrap()[1], "-10");
    assert_eq!(t.argv([("n", "-0")]).unwrap()[1], "0");
    assert_eq!(code(t.argv([("n", "10")])), "command.invalid_value");
    assert_eq!(code(t.argv([("n", "--5")])), "command.invalid_value");
    assert_eq!(code(t.argv([("n", "-")])), "command.invalid_value");

    let t = echo_with("n", Param::integer(..));
    assert_eq!(
        t.argv([("n", "9223372036854775807")]).unwrap()[1],
        i64::MAX.to_string()
    );
    assert_eq!(
        code(t.argv([("n", "9223372036854775808")])),
        "command.invalid_value"
    );
}

#[test]
fn one_of_with_plain_values() {
    let t = echo_with("fmt", Param::one_of_values(["json", "text"]));
    assert_eq!(t.argv([("fmt", "json")]).unwrap()[1], "json");
    assert_eq!(code(t.argv([("fmt", "xml")])), "command.invalid_value");
    assert_eq!(code(t.argv([("fmt", "JSON")])), "command.invalid_value");
    // The message lists what is accepted.
    let err = t.argv([("fmt", "xml")]).unwrap_err().to_string();
    assert!(
        err.contains("\"json\"") && err.contains("\"text\""),
        "{err}"
    );
}

#[test]
fn allow_leading_dash_is_per_parameter_and_explicit() {
    let t = CommandTemplate::builder("/bin/echo")
        .placeholder("flag")
        .placeholder("text")
        .param(
            "flag",
            Param::one_of([("verbose", "-v"), ("-q", "--quiet")]).allow_leading_dash(),
        )
        .param("text", Param::literal())
        .build()
        .unwrap();
    assert_eq!(
        t.argv([("flag", "verbose"), ("text", "x")]).unwrap(),
        ["/bin/echo", "-v", "x"]
    );
    assert_eq!(
        t.argv([("flag", "-q"), ("text", "x")]).unwrap(),
        ["/bin/echo", "--quiet", "x"]
    );
    assert_eq!(
        code(t.argv([("flag", "verbose"), ("text", "-x")])),
        "command.option_injection"
    );
}

#[test]
fn prefix_and_suffix_stay_in_one_element() {
    let t = CommandTemplate::builder("/bin/echo")
        .arg_template("--name={name}")
        .param("name", Param::literal())
        .build()
        .unwrap();
    assert_eq!(
        t.argv([("name", "a b --privileged")]).unwrap(),
        ["/bin/echo", "--name=a b --privileged"]
    );
    // The value itself is still checked: `--name=-x` is refused.
    assert_eq!(code(t.argv([("name", "-x")])), "command.option_injection");

    // No prefix and an empty value: the suffix would lead the element.
    let t = CommandTemplate::builder("/bin/echo")
        .arg_template("{name}-backup")
        .param("name", Param::literal())
        .build()
        .unwrap();
    assert_eq!(t.argv([("name", "db")]).unwrap()[1], "db-backup");
    assert_eq!(code(t.argv([("name", "")])), "command.option_injection");
}

// ------------------------------------------ option injection against real programs

/// Each case: a template shaped like real use of the program, and payloads that the real
/// program would act on (run code, write files, leak data) if they became options.
#[test]
fn real_program_option_injection_payloads_are_refused() {
    let git_clone = CommandTemplate::builder("/usr/bin/git")
        .args(["clone", "--depth=1"])
        .end_of_options()
        .placeholder("repo")
        .param(
            "repo",
            Param::pattern(r"https://[a-z0-9.-]+/[A-Za-z0-9_./-]+").unwrap(),
        )
        .build();
    let git_fetch = CommandTemplate::builder("/usr/bin/git")
        .args(["-C", "/srv/repo", "fetch"])
        .placeholder("remote")
        .param("remote", Param::literal())
        .build();
    let git_log = CommandTemplate::builder("/usr/bin/git")
        .args(["log", "--oneline"])
        .placeholder("rev")
        .param("rev", Param::pattern(r"[A-Za-z0-9._/=-]+").unwrap())
        .build();
    let tar = CommandTemplate::builder("/bin/tar")
        .args(["-xf"])
        .placeholder("archive")
        .param("archive", Param::literal())
        .build();
    // ssh runs its trailing arguments as a remote shell command, so it is a launcher: allowed
    // explicitly here, where that command is fixed.
    let ssh = CommandTemplate::builder("/usr/bin/ssh")
        .placeholder("host")
        .arg("uptime")
        .param("host", Param::pattern(r"[A-Za-z0-9.=-]+").unwrap())
        .allow_interpreter(true)
        .build();
    let curl = CommandTemplate::builder("/usr/bin/curl")
        .args(["-sS", "--max-time", "5"])
        .placeholder("url")
        .param("url", Param::literal())
        .build();
    let find = CommandTemplate::builder("/usr/bin/find")
        .args(["/srv/files", "-name"])
        .placeholder("name")
        .arg("-print")
        .param("name", Param::literal())
        .build();

    let cases = [
        (
            git_clone,
            "repo",
            vec![
                "--upload-pack=touch /tmp/pwned",
                "-u",
                "--config=core.sshCommand=id",
            ],
        ),
        (
            git_fetch,
            "remote",
            vec![
                "--upload-pack=touch /tmp/pwned",
                "-c core.sshCommand=touch /tmp/pwned",
                "-c",
            ],
        ),
        (
            git_log,
            "rev",
            vec!["--output=/tmp/pwned", "-c", "--exec=id"],
        ),
        (
            tar,
            "archive",
            vec![
                "--checkpoint-action=exec=sh -c id",
                "--to-command=id",
                "-I",
                "--use-compress-program=id",
            ],
        ),
        (
            ssh,
            "host",
            vec!["-oProxyCommand=touch /tmp/pwned", "-o", "-F/tmp/evil"],
        ),
        (
            curl,
            "url",
            vec![
                "-o",
                "-o/etc/passwd",
                "--output=/tmp/pwned",
                "-K/etc/shadow",
                "--config=/x",
            ],
        ),
        (find, "name", vec!["-exec", "-delete", "-fprint"]),
    ];
    for (template, param, payloads) in cases {
        let Ok(template) = template else { continue }; // program not installed
        for payload in payloads {
            let err = template.argv([(param, payload)]).unwrap_err();
            assert_eq!(
                err.code(),
                "command.option_injection",
                "{} {payload}",
                template.program()
            );
            assert!(err.to_string().contains(param), "{err}");
        }
    }
}

#[test]
fn every_error_code_is_distinct_and_documented() {
    let examples: Vec<CommandError> = vec![
        CommandTemplate::builder("rel").build().unwrap_err(),
        CommandTemplate::builder("/bin/sh").build().unwrap_err(),
        CommandTemplate::builder("/usr/bin/env")
            .build()
            .unwrap_err(),
        echo_with("a", Param::literal())
            .argv(NO_VALUES)
            .unwrap_err(),
        echo_with("a", Param::literal())
            .argv([("a", "1"), ("z", "2")])
            .unwrap_err(),
        echo_with("a", Param::literal())
            .argv([("a", "1"), ("a", "2")])
            .unwrap_err(),
        echo_with("a", Param::integer(1..=2))
            .argv([("a", "3")])
            .unwrap_err(),
        echo_with("a", Param::literal())
            .argv([("a", "-x")])
            .unwrap_err(),
        echo_with("a", Param::literal())
            .argv([("a", "\n")])
            .unwrap_err(),
        echo_with("a", Param::literal().max_len(1))
            .argv([("a", "xx")])
            .unwrap_err(),
        CommandTemplate::builder("/bin/echo")
            .placeholder("x")
            .build()
            .unwrap_err(),
    ];
    let codes: Vec<&str> = examples.iter().map(ErrorCode::code).collect();
    assert_eq!(
        codes,
        [
            "command.program",
            "command.interpreter",
            "command.launcher",
            "command.missing_param",
            "command.unknown_param",
            "command.duplicate_param",
            "command.invalid_value",
            "command.option_injection",
            "command.control_char",
            "command.too_long",
            "command.bad_template",
        ]
    );
    // Run-time codes (timeout, failed, spawn_failed) are exercised in tests/command_run.rs.
}

// ---------------------------------------------------------------- path parameters

mod path_param {
    use super::*;
    use portcullis::fs::{PathError, SafeRoot, SymlinkPolicy};

    fn setup() -> (tempfile::TempDir, std::path::PathBuf, CommandTemplate) {
        let dir = tempfile::tempdir().unwrap();
        let root_dir = dir.path().join("files");
        std::fs::create_dir_all(root_dir.join("sub")).unwrap();
        std::fs::write(root_dir.join("report.txt"), b"report").unwrap();
        std::fs::write(root_dir.join("sub/inner.txt"), b"inner").unwrap();
        std::fs::write(root_dir.join("-rf"), b"dash").unwrap();
        std::fs::write(dir.path().join("secret.txt"), b"secret").unwrap();
        std::os::unix::fs::symlink("../secret.txt", root_dir.join("escape")).unwrap();
        std::os::unix::fs::symlink("sub/inner.txt", root_dir.join("inside")).unwrap();
        let root = SafeRoot::new(&root_dir).unwrap();
        let canonical = root.path().to_path_buf();
        let cat = CommandTemplate::builder("/bin/cat")
            .end_of_options()
            .placeholder("file")
            .param("file", Param::path(root).max_len(64))
            .build()
            .unwrap();
        (dir, canonical, cat)
    }

    fn path_code(err: &CommandError) -> &'static str {
        assert_eq!(err.code(), "command.path", "{err}");
        let source = std::error::Error::source(err).unwrap();
        source.downcast_ref::<PathError>().unwrap().code()
    }

    #[test]
    fn names_beneath_the_root_become_absolute_paths() {
        let (_dir, root, cat) = setup();
        let argv = cat.argv([("file", "report.txt")]).unwrap();
        assert_eq!(
            argv,
            [
                "/bin/cat".to_owned(),
                "--".to_owned(),
                root.join("report.txt").display().to_string()
            ]
        );
        assert_eq!(cat.run([("file", "report.txt")]).unwrap().stdout, b"report");
        assert_eq!(
            cat.run([("file", "sub/../sub/inner.txt")]).unwrap().stdout,
            b"inner"
        );
        // A symlink that stays inside resolves to its target.
        assert_eq!(
            cat.argv([("file", "inside")]).unwrap()[2],
            root.join("sub/inner.txt").display().to_string()
        );
        // A file named "-rf": the raw name is refused, but spelled "./-rf" it becomes an
        // absolute path, which no program reads as an option.
        assert_eq!(
            code(cat.argv([("file", "-rf")])),
            "command.option_injection"
        );
        let argv = cat.argv([("file", "./-rf")]).unwrap();
        assert!(argv[2].starts_with('/'));
        assert_eq!(cat.run([("file", "./-rf")]).unwrap().stdout, b"dash");
    }

    #[test]
    fn names_outside_the_root_are_refused() {
        let (_dir, _root, cat) = setup();
        let cases = [
            ("../secret.txt", "path.escape"),
            ("sub/../../secret.txt", "path.escape"),
            ("/etc/passwd", "path.absolute"),
            ("escape", "path.escape"),
            ("missing.txt", "path.not_found"),
            ("a\\b", "path.backslash"),
        ];
        for (name, expected) in cases {
            let err = cat.argv([("file", name)]).unwrap_err();
            assert_eq!(path_code(&err), expected, "{name}");
            assert!(err.to_string().contains("file"), "{err}");
        }
        assert_eq!(code(cat.argv([("file", "a\nb")])), "command.control_char");
        assert_eq!(
            code(cat.argv([("file", "x".repeat(65))])),
            "command.too_long"
        );
        assert_eq!(
            code(cat.argv([("file", "--help")])),
            "command.option_injection"
        );
    }

    #[test]
    fn the_roots_symlink_policy_applies() {
        let (_dir, root, _cat) = setup();
        let strict = SafeRoot::new(&root)
            .unwrap()
            .with_symlinks(SymlinkPolicy::Deny);
        let cat = CommandTemplate::builder("/bin/cat")
            .placeholder("file")
            .param("file", Param::path(std::sync::Arc::new(strict)))
            .build()
            .unwrap();
        assert_eq!(
            path_code(&cat.argv([("file", "inside")]).unwrap_err()),
            "path.symlink"
        );
        assert!(cat.argv([("file", "report.txt")]).is_ok());
    }

    #[test]
    fn chdir_root_runs_in_the_roots_directory() {
        let (_dir, root, _cat) = setup();
        let pwd = CommandTemplate::builder("/bin/pwd")
            .chdir_root(&SafeRoot::new(&root).unwrap())
            .build()
            .unwrap();
        assert_eq!(
            pwd.run(NO_VALUES).unwrap().stdout,
            format!("{}\n", root.display()).into_bytes()
        );
    }
}
