//! Property: for any template and any values it accepts, the argv has exactly the
//! template's shape, and no element starts with `-` unless the template put the dash there
//! or allowed it for that parameter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis::command::{CommandTemplate, Param};
use portcullis::ErrorCode;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Kind {
    Literal,
    Integer(i64, i64),
    OneOf(Vec<(String, String)>),
    Pattern(&'static str),
}

#[derive(Debug, Clone)]
struct ParamDesc {
    kind: Kind,
    allow_dash: bool,
    max_len: usize,
}

#[derive(Debug, Clone)]
enum ArgDesc {
    Fixed(String),
    Slot {
        param: usize,
        prefix: String,
        suffix: String,
    },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Literal),
        (-50i64..50, 0i64..50).prop_map(|(lo, span)| Kind::Integer(lo, lo + span)),
        prop::collection::vec(("-?[a-z;]{1,4}", "-{0,2}[a-z:]{1,6}"), 1..4).prop_map(|pairs| {
            let mut seen = Vec::new();
            Kind::OneOf(
                pairs
                    .into_iter()
                    .filter(|(k, _)| {
                        let fresh = !seen.contains(k);
                        seen.push(k.clone());
                        fresh
                    })
                    .collect(),
            )
        }),
        prop::sample::select(vec![
            "[a-z]+",
            "[-a-z0-9 ;|$()]*",
            "(?s).*",
            "-?[0-9]+",
            "a|-b"
        ])
        .prop_map(Kind::Pattern),
    ]
}

fn param() -> impl Strategy<Value = ParamDesc> {
    (kind(), any::<bool>(), 1usize..12).prop_map(|(kind, allow_dash, max_len)| ParamDesc {
        kind,
        allow_dash,
        max_len,
    })
}

fn template() -> impl Strategy<Value = (Vec<ParamDesc>, Vec<ArgDesc>)> {
    prop::collection::vec(param(), 1..4).prop_flat_map(|params| {
        let n = params.len();
        let arg = prop_oneof![
            "-{0,2}[a-z=]{0,4}".prop_map(ArgDesc::Fixed),
            (
                0..n,
                "([a-z]{1,2}=|-{1,2}[a-z]{1,3}=?)?",
                "(-?[a-z.]{0,3})?"
            )
                .prop_map(|(param, prefix, suffix)| {
                    ArgDesc::Slot {
                        param,
                        prefix,
                        suffix,
                    }
                }),
        ];
        (Just(params), prop::collection::vec(arg, 0..6))
    })
}

fn build(
    params: &[ParamDesc],
    args: &[ArgDesc],
) -> Result<CommandTemplate, portcullis::command::CommandError> {
    let mut b = CommandTemplate::builder("/bin/echo");
    let mut used = vec![false; params.len()];
    for arg in args {
        match arg {
            ArgDesc::Fixed(text) => b = b.arg(text.clone()),
            ArgDesc::Slot {
                param,
                prefix,
                suffix,
            } => {
                used[*param] = true;
                // Braces are not generated, so this parses to exactly prefix{pN}suffix.
                b = b.arg_template(format!("{prefix}{{p{param}}}{suffix}"));
            }
        }
    }
    for (i, p) in params.iter().enumerate() {
        if !used[i] {
            continue; // the template below gets an extra placeholder for it
        }
        let mut param = match &p.kind {
            Kind::Literal => Param::literal(),
            Kind::Integer(lo, hi) => Param::integer(*lo..=*hi),
            Kind::OneOf(pairs) => Param::one_of(pairs.clone()),
            Kind::Pattern(re) => Param::pattern(re).unwrap(),
        }
        .max_len(p.max_len);
        if p.allow_dash {
            param = param.allow_leading_dash();
        }
        b = b.param(format!("p{i}"), param);
    }
    b.build()
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "-{0,2}[a-z0-9;:|$() ]{0,8}",
        "-?[0-9]{1,3}",
        "[a-z]{1,4}",
        "\\PC{0,6}",
        Just(String::new()),
        Just("--privileged".to_owned()),
        Just("a\nb".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn accepted_values_keep_the_template_shape(
        (params, args) in template(),
        values in prop::collection::vec(value(), 4),
        use_keys in prop::collection::vec(any::<prop::sample::Index>(), 4),
    ) {
        let template = match build(&params, &args) {
            Ok(t) => t,
            // Generated one_of choices/targets may start with '-' without allow_dash:
            // the template is then refused when built, which is the point.
            Err(e) => { prop_assert_eq!(e.code(), "command.bad_template"); return Ok(()); }
        };
        // Half the time pick a one_of key, so accepted values are common.
        let names: Vec<String> = template.param_names().map(str::to_owned).collect();
        let chosen: Vec<(String, String)> = names.iter().map(|name| {
            let i: usize = name[1..].parse().unwrap();
            let v = match &params[i].kind {
                Kind::OneOf(pairs) if use_keys[i].index(2) == 0 => pairs[use_keys[i].index(pairs.len())].0.clone(),
                _ => values[i].clone(),
            };
            (name.clone(), v)
        }).collect();

        match template.argv(chosen.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            Err(e) => {
                let code = e.code();
                prop_assert!(
                    ["command.invalid_value", "command.option_injection", "command.control_char", "command.too_long"].contains(&code),
                    "unexpected {}", code
                );
            }
            Ok(argv) => {
                prop_assert_eq!(argv.len(), 1 + args.len());
                prop_assert_eq!(argv[0].as_str(), "/bin/echo");
                for (element, arg) in argv[1..].iter().zip(&args) {
                    prop_assert!(!element.contains(['\0', '\r', '\n']));
                    match arg {
                        ArgDesc::Fixed(text) => prop_assert_eq!(element, text),
                        ArgDesc::Slot { param, prefix, suffix } => {
                            prop_assert!(element.starts_with(prefix.as_str()));
                            prop_assert!(element.ends_with(suffix.as_str()));
                            prop_assert!(element.len() >= prefix.len() + suffix.len());
                            let inner = &element[prefix.len()..element.len() - suffix.len()];
                            let p = &params[*param];
                            prop_assert!(inner.len() <= p.max_len);
                            if element.starts_with('-') {
                                prop_assert!(
                                    prefix.starts_with('-') || p.allow_dash,
                                    "element {:?} starts with '-' but the template did not allow it", element
                                );
                            }
                            if !p.allow_dash {
                                prop_assert!(!inner.starts_with('-'));
                            }
                            match &p.kind {
                                Kind::OneOf(pairs) => prop_assert!(pairs.iter().any(|(_, t)| t == inner)),
                                Kind::Integer(lo, hi) => {
                                    let n: i64 = inner.parse().unwrap();
                                    prop_assert!(*lo <= n && n <= *hi);
                                    prop_assert_eq!(inner, n.to_string());
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
    }
}

fn echo_pattern(pattern: &str) -> Option<CommandTemplate> {
    let param = Param::pattern(pattern).ok()?;
    CommandTemplate::builder("/bin/echo")
        .placeholder("v")
        .param("v", param)
        .build()
        .ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any text is a pattern that builds or is refused (`command.bad_template`), never a
    /// panic, and a built one judges any value.
    #[test]
    fn any_pattern_builds_or_is_refused(pattern in r"[\\\[\]\(\)\{\}\?\+\*\|\^\$:&~#,\-a-dikswxzAZ0-9 ٣ａ]{0,24}", value in r"\PC{0,8}") {
        match Param::pattern(&pattern) {
            Err(e) => prop_assert_eq!(e.code(), "command.bad_template"),
            Ok(param) => {
                let t = CommandTemplate::builder("/bin/echo").placeholder("v").param("v", param).build().unwrap();
                let _ = t.argv([("v", value.as_str())]);
            }
        }
    }

    /// Patterns built from Ruby's ASCII classes (`\d \w \h \s`, in and out of brackets,
    /// with or without `(?i)`/`(?x)`) accept only ASCII, whatever the value. (A letter range
    /// such as `[a-z]` is not in the mix: under `(?i)` it takes the Kelvin sign, as in Ruby.)
    #[test]
    fn rubys_ascii_classes_accept_only_ascii(
        flags in prop::sample::select(vec!["", "(?i)", "(?x)", "(?ix)", "(?i:"]),
        pieces in prop::collection::vec(prop::sample::select(vec![
            r"\d", r"\w", r"\h", r"\s", r"[\w.]", r"[\d_]", r"[\w\d]", r"(?i:\w)", r"(?i)[\h]",
            r"[[:xdigit:]]", "a", "[0-9]", r"\w+", r"\d{,2}", r"(?:\w|\h)",
        ]), 1..5),
        value in r"(\PC|[\u{212A}\u{17F}١٣ａ０])(\PC|[\u{212A}\u{17F}١٣ａ０]){0,5}",
    ) {
        let close = if flags.ends_with(':') { ")" } else { "" };
        let pattern = format!("{flags}(?:{}){close}+", pieces.concat());
        let t = echo_pattern(&pattern).expect("these pieces all build");
        if let Ok(argv) = t.argv([("v", value.as_str())]) {
            prop_assert!(argv[1].is_ascii(), "{} accepted {:?}", pattern, argv[1]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// A `#!` script that is accepted takes its arguments as data, whatever options its
    /// interpreter line gives: a value naming an executable never runs as the script, and
    /// a value holding shell code never runs as a command string. Checked by running it.
    #[test]
    fn accepted_scripts_take_arguments_as_data(
        interpreter in prop::sample::select(vec![
            "/bin/sh", "/bin/bash", "/bin/dash", "/usr/bin/env sh", "/usr/bin/env -S bash",
        ]),
        option in prop_oneof![
            3 => r"[-+][aefuxvnBCEhk]{1,3}",
            2 => r"[-+][a-zA-Z]{1,3}",
            3 => prop::sample::select(vec!["-", "--", "--rcfile", "--init-file", "--posix", "--norc", "-o", "-O", "-c", "-s"])
                .prop_map(str::to_owned),
        ],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let evil = dir.path().join("evil");
        std::fs::write(&evil, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        let script = dir.path().join("job");
        let separator = if interpreter.contains("-S") { " " } else if interpreter.contains("env") { "" } else { " " };
        let option = if interpreter.contains("env") && !interpreter.contains("-S") { String::new() } else { option };
        std::fs::write(&script, format!("#!{interpreter}{separator}{option}\nprintf '%s|' \"$@\"\n")).unwrap();
        for file in [&evil, &script] {
            std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
        let built = CommandTemplate::builder(script.to_str().unwrap())
            .placeholder("a")
            .placeholder("b")
            .param("a", Param::literal())
            .param("b", Param::literal())
            .build();
        if let Ok(t) = built {
            let code = format!("$(touch {})", marker.display());
            let out = t.run([("a", evil.to_str().unwrap()), ("b", code.as_str())]).unwrap();
            prop_assert!(!marker.exists(), "#!{} {}: an argument ran (stdout {:?})", interpreter, option, String::from_utf8_lossy(&out.stdout));
        }
    }
}
