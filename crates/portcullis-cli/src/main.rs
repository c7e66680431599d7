//! `portcullis`: check a `portcullis.toml` and try certificates, URLs, paths and commands
//! against it, without running anything.
//!
//! Exit codes: 0 allowed (or the file is valid), 1 refused, 2 usage or configuration error.
//! Human-readable output by default; `--json` for scripts.

mod pki;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use portcullis::config::{Config, ConfigError};
use portcullis::egress::{Resolve, SystemResolver};
use portcullis::fs::{SafeRoot, SymlinkPolicy};
use portcullis::identity::{decode, Identity};
use portcullis::ErrorCode;
use serde_json::{json, Value};

/// Exit code when everything asked about is allowed.
const ALLOWED: u8 = 0;
/// Exit code when something was refused.
const REFUSED: u8 = 1;
/// Exit code for usage and configuration errors.
const USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Check a portcullis.toml and try inputs against it",
    long_about = "Check a portcullis.toml and try certificates, URLs, paths and commands against it.\n\nExit codes: 0 allowed (or valid), 1 refused, 2 usage or configuration error."
)]
struct Cli {
    /// Print JSON instead of text (one object on stdout).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Subcommands,
}

#[derive(Debug, Subcommand)]
enum Subcommands {
    /// Validate a configuration file and summarize what it allows.
    Check {
        /// The configuration file (portcullis.toml).
        file: PathBuf,
    },
    /// Verify a client certificate chain with a configured trust store.
    Verify(VerifyArgs),
    /// Check URLs against an egress policy (real DNS unless --resolve).
    Url(UrlArgs),
    /// Check names beneath a root directory.
    Path(PathArgs),
    /// Show the argv a command template would run with these values (never runs it).
    Command(CommandArgs),
    /// Development certificates.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// The trust store to verify with ([trust_store.NAME]).
    #[arg(long)]
    store: String,
    /// Verify as of this time (seconds since the Unix epoch) instead of now.
    #[arg(long)]
    at: Option<i64>,
    /// The leaf certificate (PEM or DER); further PEM blocks in it are chain certificates.
    leaf: PathBuf,
    /// Chain certificates (intermediates) the client would present.
    chain: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct UrlArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// The egress policy to check with ([egress.NAME]); optional when the file has one.
    #[arg(long)]
    policy: Option<String>,
    /// Answer DNS for HOST with IP instead of asking the resolver (repeatable).
    #[arg(long, value_name = "HOST=IP")]
    resolve: Vec<String>,
    /// The URLs to check.
    #[arg(required = true)]
    urls: Vec<String>,
}

#[derive(Debug, Args)]
struct PathArgs {
    /// The root directory.
    #[arg(long, conflicts_with_all = ["config", "root_name"])]
    root: Option<PathBuf>,
    /// With --root: refuse names that go through any symlink.
    #[arg(long, requires = "root")]
    deny_symlinks: bool,
    /// The configuration file (with --root-name).
    #[arg(long, requires = "root_name")]
    config: Option<PathBuf>,
    /// The root to use ([root.NAME]).
    #[arg(long, requires = "config")]
    root_name: Option<String>,
    /// The names to check, relative to the root.
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(Debug, Args)]
struct CommandArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// The command template ([command.NAME]).
    name: String,
    /// Parameter values as key=value.
    values: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Mint a throwaway CA, intermediate, server and client certificates (good, revoked with
    /// a CRL, wrong issuer, SPIFFE) and a portcullis.toml using them, into DIR.
    Demo {
        /// The directory to write into (created if missing).
        dir: PathBuf,
    },
}

/// What a subcommand produced: text for people, JSON for scripts, and the exit code.
struct Outcome {
    code: u8,
    text: String,
    json: Value,
}

/// A usage or configuration error: exit 2.
struct Failure {
    code: &'static str,
    message: String,
    location: Option<Value>,
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        let location = e
            .location()
            .map(|l| json!({ "file": l.file, "line": l.line, "column": l.column }));
        Self {
            code: e.code(),
            message: e.to_string(),
            location,
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: "usage",
        message: message.into(),
        location: None,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Subcommands::Check { file } => check(&file),
        Subcommands::Verify(args) => verify(&args),
        Subcommands::Url(args) => url(&args),
        Subcommands::Path(args) => path(&args),
        Subcommands::Command(args) => command(&args),
        Subcommands::Pki {
            command: PkiCommand::Demo { dir },
        } => pki::demo(&dir).map(|files| Outcome {
            code: ALLOWED,
            text: format!(
                "wrote a throwaway PKI to {} (for development only; the keys are not protected):\n{}",
                dir.display(),
                files
                    .iter()
                    .map(|(name, what)| format!("  {name:<22} {what}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            json: json!({
                "ok": true,
                "dir": dir.display().to_string(),
                "files": files.iter().map(|(n, w)| json!({ "name": n, "description": w })).collect::<Vec<_>>(),
            }),
        }),
    };
    let mut out = io::stdout().lock();
    match result {
        Ok(outcome) => {
            let printed = if cli.json {
                writeln!(out, "{}", outcome.json)
            } else {
                writeln!(out, "{}", outcome.text)
            };
            if printed.is_err() {
                return ExitCode::from(USAGE);
            }
            ExitCode::from(outcome.code)
        }
        Err(failure) => {
            if cli.json {
                let _ = writeln!(
                    out,
                    "{}",
                    json!({ "ok": false, "error": { "code": failure.code, "message": failure.message, "location": failure.location } })
                );
            } else {
                let _ = writeln!(io::stderr(), "portcullis: {}", failure.message);
            }
            ExitCode::from(USAGE)
        }
    }
}

fn load(path: &Path) -> Result<Config, Failure> {
    Config::from_path(path).map_err(Failure::from)
}

fn check(file: &Path) -> Result<Outcome, Failure> {
    let config = load(file)?;
    let mut text = format!("{}: OK", file.display());
    if config.summary().is_empty() {
        text.push_str(" (empty: it allows nothing)");
    }
    let mut sections = Vec::new();
    for s in config.summary() {
        let header = match s.kind {
            "access" => format!("[[access]] {}", s.name),
            "rack" => "[rack]".to_owned(),
            kind => format!("[{kind}.{}]", s.name),
        };
        text.push_str(&format!("\n\n{header}"));
        for d in &s.details {
            text.push_str(&format!("\n  - {d}"));
        }
        sections.push(json!({ "kind": s.kind, "name": s.name, "details": s.details }));
    }
    Ok(Outcome {
        code: ALLOWED,
        text,
        json: json!({ "ok": true, "file": file.display().to_string(), "sections": sections }),
    })
}

/// `code: message`, without repeating a code the message already starts with.
fn describe(err: &dyn ErrorCode) -> String {
    let message = err.to_string();
    if message.starts_with(err.code()) {
        message
    } else {
        format!("{}: {message}", err.code())
    }
}

fn refusal(err: &dyn ErrorCode) -> Value {
    json!({ "code": err.code(), "message": err.to_string() })
}

fn identity_json(id: &Identity) -> Value {
    json!({
        "subject": id.subject.to_string(),
        "issuer": id.issuer.to_string(),
        "common_name": id.common_name,
        "dns_names": id.dns_names,
        "uris": id.uris,
        "emails": id.emails,
        "ips": id.ips.iter().map(IpAddr::to_string).collect::<Vec<_>>(),
        "spiffe_id": id.spiffe_id,
        "serial": id.serial,
        "fingerprint": id.fingerprint,
        "not_before": id.not_before,
        "not_after": id.not_after,
        "revocation_warning": id.revocation_warning,
    })
}

fn read_certs(path: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    let bytes =
        std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    decode::decode_certificates(&bytes).map_err(|e| usage(format!("{}: {e}", path.display())))
}

fn verify(args: &VerifyArgs) -> Result<Outcome, Failure> {
    let config = load(&args.config)?;
    let store = config.trust_store(&args.store)?;
    let mut leaf_file = read_certs(&args.leaf)?.into_iter();
    let leaf = leaf_file
        .next()
        .ok_or_else(|| usage(format!("{} holds no certificate", args.leaf.display())))?;
    let mut chain: Vec<Vec<u8>> = leaf_file.collect();
    for c in &args.chain {
        chain.extend(read_certs(c)?);
    }
    let chain_refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    let at = match args.at {
        None => SystemTime::now(),
        Some(s) => UNIX_EPOCH + Duration::from_secs(u64::try_from(s).unwrap_or(0)),
    };
    match store.verify(&leaf, &chain_refs, at) {
        Ok(id) => {
            let permissions = permissions(&config, &args.store, &id);
            let mut text = format!("allowed: {}", id.subject);
            text.push_str(&format!("\n  issuer:      {}", id.issuer));
            if let Some(spiffe) = &id.spiffe_id {
                text.push_str(&format!("\n  spiffe id:   {spiffe}"));
            }
            if !id.dns_names.is_empty() {
                text.push_str(&format!("\n  dns names:   {}", id.dns_names.join(", ")));
            }
            text.push_str(&format!("\n  serial:      {}", id.serial));
            text.push_str(&format!("\n  fingerprint: {}", id.fingerprint));
            if let Some(warning) = &id.revocation_warning {
                text.push_str(&format!("\n  WARNING:     {warning}"));
            }
            text.push_str(&format!(
                "\n  permissions: {}",
                if permissions.is_empty() {
                    "(none)".to_owned()
                } else {
                    permissions.join(", ")
                }
            ));
            Ok(Outcome {
                code: ALLOWED,
                text,
                json: json!({ "allowed": true, "identity": identity_json(&id), "permissions": permissions }),
            })
        }
        Err(e) => Ok(Outcome {
            code: REFUSED,
            text: format!("refused: {}", describe(&e)),
            json: json!({ "allowed": false, "error": refusal(&e) }),
        }),
    }
}

/// The permissions the `[[access]]` rules grant this identity from this store.
fn permissions(config: &Config, store: &str, id: &Identity) -> Vec<String> {
    config
        .access_policy_for(store)
        .map(|policy| policy.permissions(id))
        .unwrap_or_default()
}

/// Answers from `--resolve host=ip` first, the system resolver for everything else.
struct StubResolver {
    answers: BTreeMap<String, Vec<IpAddr>>,
}

impl Resolve for StubResolver {
    fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        match self.answers.get(&host.to_ascii_lowercase()) {
            Some(ips) => Ok(ips.clone()),
            None => SystemResolver.resolve(host),
        }
    }
}

fn url(args: &UrlArgs) -> Result<Outcome, Failure> {
    let config = load(&args.config)?;
    let policy = match &args.policy {
        Some(name) => config.egress(name)?,
        None => {
            let names: Vec<&str> = config.egress_names().collect();
            match names.as_slice() {
                [only] => config.egress(only)?,
                [] => {
                    return Err(usage(format!(
                        "{} defines no [egress.NAME] policy",
                        args.config.display()
                    )))
                }
                many => {
                    return Err(usage(format!(
                        "{} defines {} egress policies; choose one with --policy ({})",
                        args.config.display(),
                        many.len(),
                        many.join(", ")
                    )))
                }
            }
        }
    };
    let mut answers: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    for entry in &args.resolve {
        let (host, ip) = entry
            .split_once('=')
            .ok_or_else(|| usage(format!("--resolve {entry:?}: expected HOST=IP")))?;
        let ip: IpAddr = ip
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .map_err(|_| usage(format!("--resolve {entry:?}: {ip:?} is not an IP address")))?;
        answers
            .entry(host.trim_end_matches('.').to_ascii_lowercase())
            .or_default()
            .push(ip);
    }
    let resolver = StubResolver { answers };
    let mut code = ALLOWED;
    let mut lines = Vec::new();
    let mut results = Vec::new();
    for u in &args.urls {
        match policy.check_with(u, &resolver) {
            Ok(dest) => {
                let addrs: Vec<String> = dest.addrs.iter().map(IpAddr::to_string).collect();
                lines.push(format!(
                    "allowed: {u}\n  canonical: {}\n  connect to: {} port {}",
                    dest.url,
                    addrs.join(", "),
                    dest.port
                ));
                results.push(json!({
                    "url": u, "allowed": true, "canonical": dest.url.as_str(),
                    "host": dest.host, "port": dest.port, "addresses": addrs,
                }));
            }
            Err(e) => {
                code = REFUSED;
                lines.push(format!("refused: {u}\n  {}", describe(&e)));
                results.push(json!({ "url": u, "allowed": false, "error": refusal(&e) }));
            }
        }
    }
    Ok(Outcome {
        code,
        text: lines.join("\n"),
        json: json!({ "allowed": code == ALLOWED, "results": results }),
    })
}

fn path(args: &PathArgs) -> Result<Outcome, Failure> {
    let loaded;
    let opened;
    let root: &SafeRoot = match (&args.root, &args.config, &args.root_name) {
        (Some(dir), _, _) => {
            let policy = if args.deny_symlinks {
                SymlinkPolicy::Deny
            } else {
                SymlinkPolicy::Within
            };
            opened = SafeRoot::new(dir)
                .map_err(|e| usage(format!("--root {}: {e}", dir.display())))?
                .with_symlinks(policy);
            &opened
        }
        (None, Some(file), Some(name)) => {
            loaded = load(file)?;
            loaded.root(name)?
        }
        _ => return Err(usage("give --root DIR, or --config FILE --root-name NAME")),
    };
    let mut code = ALLOWED;
    let mut lines = Vec::new();
    let mut results = Vec::new();
    for name in &args.names {
        match root.resolve_for_argv(name.as_str()) {
            Ok(resolved) => {
                // As SafeRoot#read and #open say: a directory is not a file to read, though a
                // command's path parameter and #entries take it.
                let directory = resolved.is_dir();
                let note = if directory {
                    " (a directory: read/open refuse it with path.not_a_file; path parameters and entries take it)"
                } else {
                    ""
                };
                lines.push(format!(
                    "allowed: {name}{note}\n  resolves to: {}",
                    resolved.display()
                ));
                results.push(json!({ "name": name, "allowed": true, "exists": true, "directory": directory, "path": resolved.display().to_string() }));
            }
            Err(e) if e.code() == "path.not_found" => {
                // Not there yet: what a create would do is decided by the name's own checks.
                match root.join(name.as_str()) {
                    Ok(joined) => {
                        lines.push(format!(
                            "allowed: {name} (does not exist yet)\n  would be: {}",
                            joined.display()
                        ));
                        results.push(json!({ "name": name, "allowed": true, "exists": false, "path": joined.display().to_string() }));
                    }
                    Err(e) => {
                        code = REFUSED;
                        lines.push(format!("refused: {name}\n  {}", describe(&e)));
                        results
                            .push(json!({ "name": name, "allowed": false, "error": refusal(&e) }));
                    }
                }
            }
            Err(e) => {
                code = REFUSED;
                lines.push(format!("refused: {name}\n  {}", describe(&e)));
                results.push(json!({ "name": name, "allowed": false, "error": refusal(&e) }));
            }
        }
    }
    Ok(Outcome {
        code,
        text: lines.join("\n"),
        json: json!({ "allowed": code == ALLOWED, "root": root.path().display().to_string(), "results": results }),
    })
}

fn command(args: &CommandArgs) -> Result<Outcome, Failure> {
    let config = load(&args.config)?;
    let template = config.command(&args.name)?;
    let mut values = Vec::new();
    for v in &args.values {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| usage(format!("{v:?}: expected key=value")))?;
        values.push((k.to_owned(), val.to_owned()));
    }
    match template.argv(values.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(argv) => Ok(Outcome {
            code: ALLOWED,
            text: format!(
                "allowed: {}\n  argv: {}\n  (not run; no shell; timeout {:?})",
                args.name,
                argv.iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                template.timeout()
            ),
            json: json!({ "allowed": true, "argv": argv }),
        }),
        Err(e) => Ok(Outcome {
            code: REFUSED,
            text: format!("refused: {}\n  {}", args.name, describe(&e)),
            json: json!({ "allowed": false, "error": refusal(&e) }),
        }),
    }
}
