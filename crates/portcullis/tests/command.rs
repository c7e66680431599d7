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
        "/usr/bin/env",
        "/usr/bin/python3",
        "/usr/bin/perl",
        "/usr/bin/ruby",
        "/usr/bin/awk",
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

#[test]
fn interpreter_behind_an_innocent_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A symlink whose own name says nothing: the resolved target (dash/bash) is judged.
    let link = dir.path().join("deploy-tool");
    std::os::unix::fs::symlink("/bin/sh", &link).unwrap();
    assert_eq!(
        code(CommandTemplate::builder(link.to_str().unwrap()).build()),
        "command.interpreter"
    );
    // A copy of a shell under an innocent name is not caught by name; a script is caught
    // by its #! line.
    for shebang in [
        "#!/bin/sh\n",
        "#!/usr/bin/env python3\n",
        "#! /bin/bash -e\n",
    ] {
        let script = dir.path().join("run-me");
        std::fs::write(&script, format!("{shebang}echo hi\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = CommandTemplate::builder(script.to_str().unwrap())
            .build()
            .unwrap_err();
        assert_eq!(err.code(), "command.interpreter", "{shebang:?}");
        CommandTemplate::builder(script.to_str().unwrap())
            .allow_interpreter(true)
            .build()
            .unwrap();
    }
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
    let ssh = CommandTemplate::builder("/usr/bin/ssh")
        .placeholder("host")
        .arg("uptime")
        .param("host", Param::pattern(r"[A-Za-z0-9.=-]+").unwrap())
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
