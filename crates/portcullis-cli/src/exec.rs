//! `portcullis exec` (apply a `[lockdown.NAME]`, then execve the command) and
//! `portcullis lockdown explain`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use portcullis::config::Config;
use portcullis::lockdown::Lockdown;
use portcullis::ErrorCode;
use serde_json::json;

use crate::{load, usage, Failure, Outcome, ALLOWED};

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// The lockdown to apply ([lockdown.NAME]); optional when the file defines one.
    #[arg(long)]
    lockdown: Option<String>,
    /// Print the rules, then run the command with the seccomp floor in log mode
    /// (SECCOMP_RET_LOG) and without Landlock, which has no log-only mode on this kernel.
    #[arg(long)]
    dry_run: bool,
    /// The connect supervisor logs each refusal and allows it, except cloud metadata
    /// addresses and container-runtime sockets (the Landlock and seccomp lockdown stays).
    #[arg(long)]
    report: bool,
    /// The program and its arguments (after `--`).
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LockdownCommand {
    /// Print the effective rules of a [lockdown.NAME], the program of `exec` not included.
    Explain {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The lockdown ([lockdown.NAME]); optional when the file defines one.
        #[arg(long)]
        lockdown: Option<String>,
    },
}

fn pick<'a>(config: &'a Config, name: Option<&str>) -> Result<&'a Lockdown, Failure> {
    match name {
        Some(n) => Ok(config.lockdown(n)?.as_ref()),
        None => {
            let names: Vec<&str> = config.lockdown_names().collect();
            match names.as_slice() {
                [one] => Ok(config.lockdown(one)?.as_ref()),
                [] => Err(usage("the file defines no [lockdown.NAME] table; add one (see `portcullis lockdown explain`)")),
                many => Err(usage(format!(
                    "the file defines several lockdowns ({}); choose one with --lockdown NAME",
                    many.join(", ")
                ))),
            }
        }
    }
}

/// `program` as execvp would find it.
fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then(|| std::fs::canonicalize(&p).unwrap_or(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn lockdown_failure(e: &portcullis::lockdown::LockdownError) -> Failure {
    Failure {
        code: e.code(),
        message: e.to_string(),
        location: None,
    }
}

pub(crate) fn explain(cmd: &LockdownCommand) -> Result<Outcome, Failure> {
    let LockdownCommand::Explain { config, lockdown } = cmd;
    let config = load(config)?;
    let l = pick(&config, lockdown.as_deref())?;
    let rules: Vec<_> = l
        .rules()
        .iter()
        .map(|r| json!({ "access": r.access.as_str(), "path": r.path.display().to_string(), "origin": r.origin }))
        .collect();
    Ok(Outcome {
        code: ALLOWED,
        text: l.explain().trim_end().to_owned(),
        json: json!({
            "ok": true,
            "rules": rules,
            "connect_tcp": l.connect_tcp().collect::<Vec<_>>(),
            "bind_tcp": l.bind_tcp().collect::<Vec<_>>(),
            "egress": l.egress_name(),
            "unix_sockets": l.unix_sockets(),
            "text": l.explain(),
        }),
    })
}

/// Applies the lockdown and execs the command; returns only on failure.
pub(crate) fn exec(args: &ExecArgs) -> Result<Outcome, Failure> {
    let config = load(&args.config)?;
    let chosen = pick(&config, args.lockdown.as_deref())?;
    let Some((program, rest)) = args.command.split_first() else {
        return Err(usage("no command given after --"));
    };
    let found = find_program(program).ok_or_else(|| {
        usage(format!(
            "{program}: command not found (looked in PATH); give its full path"
        ))
    })?;
    let lockdown = chosen
        .to_builder()
        .optional(portcullis::lockdown::Access::Exec, "the command", [&found])
        .log_only(args.dry_run)
        .build()
        .map_err(|e| lockdown_failure(&e))?;
    if args.dry_run {
        eprintln!("{}", lockdown.explain().trim_end());
    }
    #[cfg(target_os = "linux")]
    {
        let policy = lockdown.connect_policy();
        let policy = policy.clone().report(policy.is_report() || args.report);
        eprintln!(
            "portcullis supervisor: judging connect/sendto/sendmsg/sendmmsg by {}; unix_sockets {}{}",
            policy
                .egress_name()
                .map_or_else(|| "the default denylist".to_owned(), |n| format!("[egress.{n}]")),
            if lockdown.unix_sockets().is_empty() {
                "none".to_owned()
            } else {
                lockdown.unix_sockets().join(", ")
            },
            if policy.is_report() { "; REPORT MODE: refusals logged and allowed (metadata and runtime sockets still refused)" } else { "" }
        );
        let ids = lockdown.switch_ids().map_err(|e| lockdown_failure(&e))?;
        let run = portcullis::lockdown::supervisor::run(policy, ids, || {
            let status = match lockdown.apply() {
                Ok(s) => s,
                Err(e) => return format!("portcullis exec: {}: {e}", e.code()),
            };
            eprintln!("{}", status.log_line());
            // What was applied, for the program's own status reports (the Rails boot line):
            // informational; the kernel, not this variable, enforces it.
            let err = std::process::Command::new(Path::new(&found))
                .arg0(program)
                .args(rest)
                .env(
                    "PORTCULLIS_LOCKDOWN",
                    format!("{} + connect supervisor", status.log_line()),
                )
                .exec();
            format!(
                "portcullis exec: cannot execute {}: {err} (the lockdown is in force; is the program in `exec` and its libraries in `read`?)",
                found.display()
            )
        });
        let (exit, counts) = run.map_err(|e| lockdown_failure(&e))?;
        eprintln!(
            "portcullis supervisor: {program} ended ({}); {} calls judged, {} refused{}",
            match exit {
                portcullis::lockdown::supervisor::Exit::Code(c) => format!("exit {c}"),
                portcullis::lockdown::supervisor::Exit::Signal(s) => format!("signal {s}"),
                _ => "unknown".to_owned(),
            },
            counts.judged,
            counts.refused,
            if counts.reported > 0 {
                format!(", {} allowed by report mode", counts.reported)
            } else {
                String::new()
            }
        );
        portcullis::lockdown::supervisor::exit_like(exit)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let status = lockdown.apply().map_err(|e| lockdown_failure(&e))?;
        eprintln!("{}", status.log_line());
        let err = std::process::Command::new(Path::new(&found))
            .arg0(program)
            .args(rest)
            .exec();
        Err(Failure {
            code: "exec.failed",
            message: format!(
                "cannot execute {}: {err} (the lockdown is in force; is the program in `exec` and its libraries in `read`?)",
                found.display()
            ),
            location: None,
        })
    }
}
