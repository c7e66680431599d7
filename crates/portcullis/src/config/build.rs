//! From the parsed file to typed objects, with a location for every refusal.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::spec::{
    CommandSpec, EgressSpec, FileSpec, ParamSpec, PathList, RootSpec, TrustStoreSpec,
};
use super::{
    Config, ConfigError, CrlFile, CrlProbe, GuardSettings, Location, RackSettings, Section,
};
use crate::authz::{AccessPolicy, Match, Rule};
use crate::command::{CommandTemplate, Param, Rlimits};
use crate::egress::EgressPolicy;
use crate::fs::{SafeRoot, SymlinkPolicy};
use crate::identity::source::{CertSource, SourceError, SourceKind, SourceLimits, TrustedProxies};
use crate::identity::{decode, TrustStore, Usage};
use crate::ErrorCode;

/// The text being loaded, for turning spans into locations.
pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
    pub(super) base: &'a Path,
}

impl Ctx<'_> {
    pub(super) fn at(&self, span: &Range<usize>) -> Location {
        Location::in_text(self.file, self.text, span.start)
    }

    pub(super) fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// A serde type complaint in TOML words, naming the key and table it is about:
    /// `invalid type for "allow_hosts" in [egress.partners]: string "x", expected a list`.
    fn explain(&self, message: &str, offset: usize) -> String {
        let (what, detail) = message.split_once(": ").unwrap_or((message, ""));
        let mut detail = detail.to_owned();
        for (serde, toml) in [
            ("expected a sequence", "expected a list"),
            ("expected a map", "expected a table"),
            ("expected u16", "expected an integer from 0 to 65535"),
            ("expected usize", "expected a non-negative integer"),
            ("expected u64", "expected a non-negative integer"),
            ("expected i64", "expected an integer"),
            ("expected f64", "expected a number"),
            ("expected a boolean", "expected true or false"),
        ] {
            if let Some(head) = detail.strip_suffix(serde) {
                detail = format!("{head}{toml}");
            }
        }
        let table = self.table_at(offset);
        match self.key_before(offset) {
            Some(key) => format!("{what} for \"{key}\" in {table}: {detail}"),
            None => format!("{what} in {table}: {detail}"),
        }
    }

    /// The key of a `key = value` line whose value starts at (or contains) `offset`.
    fn key_before(&self, offset: usize) -> Option<String> {
        let before = self.text.get(..offset.min(self.text.len()))?;
        let line = before.rsplit('\n').next()?;
        let (key, _) = line.rsplit_once('=')?;
        let key = key.trim().trim_start_matches('{').trim();
        let key = key
            .rsplit(',')
            .next()
            .unwrap_or(key)
            .trim()
            .trim_start_matches('{')
            .trim();
        (!key.is_empty() && !key.contains(['[', '"', '\''])).then(|| key.to_owned())
    }

    /// The table an offset lies in, as `[egress.partners]`, judged from the nearest header
    /// line above it (or inside it, for a key of the header itself).
    fn table_at(&self, offset: usize) -> String {
        let offset = offset.min(self.text.len());
        let mut line_start = 0;
        let mut found: Option<String> = None;
        for line in self.text.split_inclusive('\n') {
            if line_start > offset {
                break;
            }
            let trimmed = line.trim_start();
            if trimmed.starts_with('[') {
                let lead = line.len() - trimmed.len();
                let header_start = line_start + lead;
                let double = trimmed.starts_with("[[");
                let open = if double { 2 } else { 1 };
                let close = trimmed.find(']').unwrap_or(trimmed.len());
                let inner_end = if offset < line_start + line.len() && offset >= header_start + open
                {
                    // The offset is inside this header: the table is what precedes the key.
                    offset.saturating_sub(header_start).min(close)
                } else {
                    close
                };
                let inner = trimmed
                    .get(open.min(inner_end)..inner_end)
                    .unwrap_or("")
                    .trim()
                    .trim_end_matches('.')
                    .trim();
                found = if inner.is_empty() {
                    None
                } else if double && inner_end == close {
                    Some(format!("[[{inner}]]"))
                } else {
                    Some(format!("[{inner}]"))
                };
            }
            line_start += line.len();
        }
        found.unwrap_or_else(|| "the top level".to_owned())
    }
}

pub(super) fn invalid(at: Location, message: String, cause: Option<impl ErrorCode>) -> ConfigError {
    ConfigError::InvalidValue {
        at,
        message,
        cause: cause.map(|c| c.code()),
    }
}

fn invalid_plain(at: Location, message: String) -> ConfigError {
    ConfigError::InvalidValue {
        at,
        message,
        cause: None,
    }
}

/// Backquoted words of a serde message (`expected one of `a`, `b``).
fn backquoted(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn from_toml(ctx: &Ctx<'_>, err: &toml::de::Error) -> ConfigError {
    let span = err.span().unwrap_or(0..0);
    let at = ctx.at(&span);
    let message = err.message().trim().to_owned();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let key = rest.split('`').next().unwrap_or("").to_owned();
        let expected = rest
            .split_once("expected")
            .map(|(_, list)| backquoted(list))
            .unwrap_or_default();
        return ConfigError::UnknownKey {
            at,
            key,
            table: ctx.table_at(span.start),
            expected,
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        return ConfigError::MissingKey {
            at,
            key: rest.split('`').next().unwrap_or("").to_owned(),
            table: ctx.table_at(span.start),
        };
    }
    if message.starts_with("invalid type") || message.starts_with("invalid length") {
        return ConfigError::InvalidType {
            at,
            message: ctx.explain(&message, span.start),
        };
    }
    if message.starts_with("invalid value") || message.starts_with("unknown variant") {
        return ConfigError::InvalidValue {
            at,
            message: ctx.explain(&message, span.start),
            cause: None,
        };
    }
    ConfigError::Syntax { at, message }
}

/// The largest CA bundle, intermediates or CRL file read (large public CRLs run to tens of
/// megabytes); a path that names a device or a runaway file fails instead of hanging.
pub(super) const MAX_REFERENCED_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads at most `limit` bytes of `path`; more is an error, not a truncation.
pub(super) fn read_capped(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "larger than the {limit} byte limit"
        )));
    }
    Ok(bytes)
}

pub(super) fn read_file(
    path: &Path,
    at: &Location,
    what: &'static str,
) -> Result<Vec<u8>, ConfigError> {
    read_capped(path, MAX_REFERENCED_FILE_BYTES).map_err(|e| ConfigError::MissingFile {
        at: at.clone(),
        what,
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Checks one CRL file in a throwaway store built from `probe` (the store's CA bundles and
/// intermediates, so a CRL they issued must verify under their keys), so a refusal names
/// the file and changes nothing.
pub(super) fn check_crl(
    probe: &CrlProbe,
    crl: &[u8],
    path: &Path,
    at: &Location,
) -> Result<(), ConfigError> {
    let mut builder = TrustStore::builder();
    for ca in &probe.cas {
        builder = builder.ca(ca);
    }
    for i in &probe.intermediates {
        builder = builder.intermediates(i);
    }
    builder
        .crls(crl)
        .cache_capacity(0)
        .build()
        .map(|_| ())
        .map_err(|e| {
            invalid(
                at.clone(),
                format!("CRL {:?} refused: {e}", path.display().to_string()),
                Some(e),
            )
        })
}

pub(super) fn load(text: &str, base: &Path, file: &str) -> Result<Config, ConfigError> {
    let ctx = Ctx { file, text, base };
    let spec: FileSpec = toml::from_str(text).map_err(|e| from_toml(&ctx, &e))?;
    let mut summary = Vec::new();

    // Egress policies are built first (a trust store may fetch its CRLs through one); the
    // summary keeps the file's section order.
    let mut egress = BTreeMap::new();
    let mut egress_sections = Vec::new();
    for (name, policy) in &spec.egress {
        let (built, details) = egress_policy(&ctx, name, policy)?;
        egress.insert(name.clone(), Arc::new(built));
        egress_sections.push(section("egress", name, details));
    }

    let mut trust_stores = BTreeMap::new();
    let mut crl_files = BTreeMap::new();
    let mut crl_refreshers = Vec::new();
    for (name, store) in &spec.trust_store {
        let (built, crls, details) = trust_store(&ctx, name, store, &egress)?;
        let built = Arc::new(built);
        if store.get_ref().crl_refresh != Some(false) && !built.crl_urls().is_empty() {
            let refresher = built.spawn_crl_refresher().map_err(|e| {
                invalid(
                    ctx.at(&store.span()),
                    format!("trust store {name:?}: {e}"),
                    Some(e),
                )
            })?;
            crl_refreshers.push(refresher);
        }
        trust_stores.insert(name.clone(), built);
        if !crls.is_empty() {
            crl_files.insert(name.clone(), crls);
        }
        summary.push(section("trust_store", name, details));
    }

    let mut roots = BTreeMap::new();
    for (name, root_spec) in &spec.root {
        let (built, details) = root(&ctx, root_spec)?;
        roots.insert(name.clone(), Arc::new(built));
        summary.push(section("root", name, details));
    }
    summary.extend(egress_sections);

    let mut commands = BTreeMap::new();
    for (name, command_spec) in &spec.command {
        let (built, details) = command(&ctx, name, command_spec, &roots)?;
        commands.insert(name.clone(), Arc::new(built));
        summary.push(section("command", name, details));
    }

    let sources = sources(&ctx, &spec, &mut summary)?;
    let (access_policy, store_policies) = access(&ctx, &spec, &trust_stores, &mut summary)?;
    let rack = rack(&ctx, &spec, &trust_stores, &sources, &mut summary)?;
    let guard = guard(&ctx, &spec, &egress, &mut summary)?;
    let lockdowns =
        super::lockdown::build_all(&ctx, &spec.lockdown, &egress, &commands, &mut summary)?;

    Ok(Config {
        file: file.to_owned(),
        path: None,
        base_dir: base.to_path_buf(),
        trust_stores,
        crl_files,
        egress,
        roots,
        commands,
        extra: Extra {
            sources,
            access_policy,
            store_policies,
            rack,
            guard,
            lockdowns,
            crl_refreshers,
        },
        summary,
    })
}

fn section(kind: &'static str, name: &str, details: Vec<String>) -> Section {
    Section {
        kind,
        name: name.to_owned(),
        details,
    }
}

fn reference_error<T>(
    ctx: &Ctx<'_>,
    name: &Spanned<String>,
    kind: &str,
    table: &str,
    map: &BTreeMap<String, T>,
) -> ConfigError {
    let defined: Vec<&str> = map.keys().map(String::as_str).collect();
    ConfigError::Reference {
        at: ctx.at(&name.span()),
        message: format!(
            "no {kind} named {:?}; define [{table}.{}] or use one of: {}",
            name.get_ref(),
            name.get_ref(),
            if defined.is_empty() {
                "(none defined)".to_owned()
            } else {
                defined.join(", ")
            }
        ),
    }
}

fn read_list(
    ctx: &Ctx<'_>,
    list: &Spanned<PathList>,
    what: &'static str,
) -> Result<Vec<(PathBuf, Location, Vec<u8>)>, ConfigError> {
    let mut out = Vec::new();
    for (path, span) in list.get_ref().spanned(&list.span()) {
        let at = ctx.at(&span);
        let resolved = ctx.resolve(&path);
        let bytes = read_file(&resolved, &at, what)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(invalid_plain(
                at,
                format!(
                    "{what} {:?} is empty; it must hold at least one certificate",
                    resolved.display().to_string()
                ),
            ));
        }
        out.push((resolved, at, bytes));
    }
    Ok(out)
}

type TrustStoreParts = (TrustStore, Vec<CrlFile>, Vec<String>);

fn trust_store(
    ctx: &Ctx<'_>,
    name: &str,
    spec: &Spanned<TrustStoreSpec>,
    egress: &BTreeMap<String, Arc<EgressPolicy>>,
) -> Result<TrustStoreParts, ConfigError> {
    let table_at = ctx.at(&spec.span());
    let s = spec.get_ref();
    let mut details = Vec::new();
    let usage = match &s.usage {
        None => Usage::ClientAuth,
        Some(u) => match u.get_ref().as_str() {
            "client" | "client_auth" => Usage::ClientAuth,
            "server" | "server_auth" => Usage::ServerAuth,
            other => {
                return Err(invalid_plain(
                    ctx.at(&u.span()),
                    format!("usage {other:?} is not known; expected \"client\" or \"server\""),
                ))
            }
        },
    };
    let cas = read_list(ctx, &s.ca, "CA bundle")?;
    if cas.is_empty() {
        return Err(invalid_plain(
            ctx.at(&s.ca.span()),
            "ca lists no file; name at least one CA bundle".to_owned(),
        ));
    }
    let mut builder = TrustStore::builder().usage(usage);
    for (path, at, bytes) in &cas {
        // Each bundle alone, so a refusal points at the file that caused it.
        TrustStore::builder()
            .ca(bytes)
            .cache_capacity(0)
            .build()
            .map_err(|e| {
                invalid(
                    at.clone(),
                    format!("CA bundle {:?} refused: {e}", path.display().to_string()),
                    Some(e),
                )
            })?;
        builder = builder.ca(bytes);
        details.push(format!("trusts the CAs in {}", path.display()));
    }
    let mut probe = CrlProbe {
        cas: cas.iter().map(|(_, _, b)| b.clone()).collect(),
        intermediates: Vec::new(),
    };
    if let Some(list) = &s.intermediates {
        for (path, at, bytes) in read_list(ctx, list, "intermediates file")? {
            decode::decode_certificates(&bytes).map_err(|e| {
                invalid(
                    at.clone(),
                    format!(
                        "intermediates {:?} refused: {e}",
                        path.display().to_string()
                    ),
                    Some(e),
                )
            })?;
            builder = builder.intermediates(&bytes);
            details.push(format!("uses intermediates from {}", path.display()));
            probe.intermediates.push(bytes);
        }
    }
    let mut crl_files = Vec::new();
    let probe = Arc::new(probe);
    if let Some(list) = &s.crls {
        for (path, at, bytes) in read_list(ctx, list, "CRL")? {
            check_crl(&probe, &bytes, &path, &at)?;
            builder = builder.crls(&bytes);
            details.push(format!("checks revocation against {}", path.display()));
            crl_files.push(CrlFile {
                path,
                at,
                probe: Arc::clone(&probe),
            });
        }
    }
    if let Some(n) = s.cache_size {
        builder = builder.cache_capacity(n);
    }
    if let Some(n) = s.max_intermediates {
        builder = builder.max_intermediates(n);
        details.push(format!("at most {n} intermediates"));
    }
    if s.require_spiffe == Some(true) {
        builder = builder.require_spiffe(true);
        details.push("requires SPIFFE X509-SVIDs".to_owned());
    }
    let urls: Vec<String> = s
        .crl_urls
        .iter()
        .flatten()
        .map(|u| u.get_ref().clone())
        .collect();
    if !urls.is_empty() || s.crl_distribution_points == Some(true) {
        let Some(egress_name) = &s.crl_egress else {
            return Err(invalid_plain(
                table_at,
                format!(
                    "trust store {name:?} fetches CRLs (crl_urls / crl_distribution_points) but \
                     names no crl_egress = \"NAME\" of an [egress.NAME] section to fetch them through"
                ),
            ));
        };
        let policy = egress
            .get(egress_name.get_ref())
            .ok_or_else(|| reference_error(ctx, egress_name, "egress policy", "egress", egress))?;
        builder = builder
            .crl_urls(urls.clone())
            .crl_from_distribution_points(s.crl_distribution_points == Some(true))
            .crl_egress(Arc::clone(policy));
        if let Some(n) = s.crl_max_bytes {
            builder = builder.crl_fetch_limits(n, crate::identity::DEFAULT_FETCH_TIMEOUT);
        }
        details.push(format!(
            "fetches CRLs from {} through egress {:?}{}",
            if urls.is_empty() {
                "the CAs' distribution points".to_owned()
            } else {
                urls.join(", ")
            },
            egress_name.get_ref(),
            if s.crl_refresh == Some(false) {
                ", on request only"
            } else {
                ", refreshed in the background before nextUpdate"
            }
        ));
    }
    if s.deny_unknown_revocation == Some(true) {
        builder = builder.deny_unknown_revocation(true);
        details.push("refuses certificates whose issuer has no CRL".to_owned());
    }
    details.push(format!(
        "verifies for {}",
        if usage == Usage::ServerAuth {
            "TLS server authentication"
        } else {
            "TLS client authentication"
        }
    ));
    let store = builder.build().map_err(|e| {
        invalid(
            table_at,
            format!("trust store {name:?} refused: {e}"),
            Some(e),
        )
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    for crl in store.crls().iter().filter(|c| c.is_lapsed(now)) {
        // Said where `portcullis check` shows it: a lapsed CRL changes what is accepted.
        details.push(format!(
            "WARNING: the CRL of \"{}\" (cRLNumber {}) lapsed at {} (its nextUpdate): {}",
            crl.issuer,
            crl.number,
            crate::identity::rfc3339(crl.next_update),
            if s.deny_unknown_revocation == Some(true) {
                "certificates it covers are refused (cert.revocation_unknown) until a fresh CRL is loaded"
            } else {
                "certificates it covers but does not list are accepted unconfirmed (Identity revocation_warning)"
            }
        ));
    }
    Ok((store, crl_files, details))
}

fn root(ctx: &Ctx<'_>, spec: &Spanned<RootSpec>) -> Result<(SafeRoot, Vec<String>), ConfigError> {
    let s = spec.get_ref();
    let policy = match &s.symlinks {
        None => SymlinkPolicy::Within,
        Some(v) => match v.get_ref().as_str() {
            "within" => SymlinkPolicy::Within,
            "deny" => SymlinkPolicy::Deny,
            other => {
                return Err(invalid_plain(
                    ctx.at(&v.span()),
                    format!("symlinks {other:?} is not known; expected \"within\" or \"deny\""),
                ))
            }
        },
    };
    let at = ctx.at(&s.path.span());
    let dir = ctx.resolve(s.path.get_ref());
    let root = SafeRoot::new(&dir).map_err(|e| match e.code() {
        "path.not_found" | "path.root_missing" => ConfigError::MissingFile {
            at: at.clone(),
            what: "root directory",
            path: dir.display().to_string(),
            reason: e.to_string(),
        },
        _ => invalid(
            at.clone(),
            format!(
                "root directory {:?} refused: {e}",
                dir.display().to_string()
            ),
            Some(e),
        ),
    })?;
    let root = root.with_symlinks(policy);
    let details = vec![
        format!("files beneath {}", root.path().display()),
        match policy {
            SymlinkPolicy::Deny => "no symlinks followed".to_owned(),
            _ => "symlinks followed only while they stay beneath the root".to_owned(),
        },
    ];
    Ok((root, details))
}

fn egress_item(
    ctx: &Ctx<'_>,
    item: &Spanned<String>,
    what: &str,
    apply: impl FnOnce(crate::egress::EgressPolicyBuilder) -> crate::egress::EgressPolicyBuilder,
) -> Result<(), ConfigError> {
    apply(EgressPolicy::builder())
        .build()
        .map(|_| ())
        .map_err(|e| {
            invalid(
                ctx.at(&item.span()),
                format!("{what} {:?} refused: {e}", item.get_ref()),
                Some(e),
            )
        })
}

fn strings(items: &[Spanned<String>]) -> Vec<String> {
    items.iter().map(|s| s.get_ref().clone()).collect()
}

fn egress_policy(
    ctx: &Ctx<'_>,
    name: &str,
    spec: &Spanned<EgressSpec>,
) -> Result<(EgressPolicy, Vec<String>), ConfigError> {
    let s = spec.get_ref();
    let mut builder = EgressPolicy::builder();
    let mut details = Vec::new();
    if let Some(schemes) = &s.schemes {
        for item in schemes {
            let one = item.get_ref().clone();
            egress_item(ctx, item, "scheme", |b| b.schemes([one]))?;
        }
        builder = builder.schemes(strings(schemes));
        details.push(format!("schemes: {}", strings(schemes).join(", ")));
    } else {
        details.push("schemes: https".to_owned());
    }
    if let Some(ports) = &s.ports {
        for item in ports {
            if *item.get_ref() == 0 {
                return Err(invalid_plain(
                    ctx.at(&item.span()),
                    "port 0 is not a port; expected 1-65535".to_owned(),
                ));
            }
        }
        let list: Vec<u16> = ports.iter().map(|p| *p.get_ref()).collect();
        details.push(format!(
            "ports: {}",
            list.iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        builder = builder.ports(list);
    }
    type Apply =
        fn(crate::egress::EgressPolicyBuilder, Vec<String>) -> crate::egress::EgressPolicyBuilder;
    let lists: [(&Vec<Spanned<String>>, &str, Apply); 4] = [
        (&s.allow_hosts, "allow_hosts entry", |b, v| b.allow_hosts(v)),
        (&s.deny_hosts, "deny_hosts entry", |b, v| b.deny_hosts(v)),
        (&s.allow_cidrs, "allow_cidrs entry", |b, v| b.allow_cidrs(v)),
        (&s.deny_cidrs, "deny_cidrs entry", |b, v| b.deny_cidrs(v)),
    ];
    for (items, what, apply) in lists {
        for item in items {
            let one = vec![item.get_ref().clone()];
            egress_item(ctx, item, what, |b| apply(b, one))?;
        }
        builder = apply(builder, strings(items));
    }
    if s.allow_hosts.is_empty() {
        details.push("hosts: any public host".to_owned());
    } else {
        details.push(format!("hosts: {}", strings(&s.allow_hosts).join(", ")));
    }
    if !s.deny_hosts.is_empty() {
        details.push(format!(
            "never hosts: {}",
            strings(&s.deny_hosts).join(", ")
        ));
    }
    if !s.allow_cidrs.is_empty() {
        details.push(format!(
            "also reserved ranges: {}",
            strings(&s.allow_cidrs).join(", ")
        ));
    }
    if !s.deny_cidrs.is_empty() {
        details.push(format!(
            "never addresses: {}",
            strings(&s.deny_cidrs).join(", ")
        ));
    }
    details.push(
        "never private, loopback, link-local or cloud metadata addresses unless listed".to_owned(),
    );
    if let Some(strict) = s.strict {
        builder = builder.strict(strict);
        if !strict {
            details.push("strict URL checks OFF".to_owned());
        }
    }
    if let Some(nat64) = s.allow_nat64 {
        builder = builder.allow_nat64(nat64);
        if !nat64 {
            details.push("NAT64 (64:ff9b::/96) refused".to_owned());
        }
    }
    let six_to_four = s.allow_6to4.unwrap_or(false);
    let teredo = s.allow_teredo.unwrap_or(false);
    builder = builder.allow_6to4(six_to_four).allow_teredo(teredo);
    details.push(match (six_to_four, teredo) {
        (false, false) => "6to4 (2002::/16) and Teredo (2001::/32) refused".to_owned(),
        (true, false) => "6to4 judged as the IPv4 it carries; Teredo refused".to_owned(),
        (false, true) => "Teredo judged as the IPv4 it carries; 6to4 refused".to_owned(),
        (true, true) => "6to4 and Teredo judged as the IPv4 they carry".to_owned(),
    });
    let policy = builder.build().map_err(|e| {
        invalid(
            ctx.at(&spec.span()),
            format!("egress policy {name:?} refused: {e}"),
            Some(e),
        )
    })?;
    Ok((policy, details))
}

fn misplaced<T>(
    ctx: &Ctx<'_>,
    field: &Option<Spanned<T>>,
    key: &str,
    kind: &str,
) -> Result<(), ConfigError> {
    match field {
        Some(v) => Err(invalid_plain(
            ctx.at(&v.span()),
            format!("{key} does not apply to a parameter of type {kind:?}; remove it"),
        )),
        None => Ok(()),
    }
}

const PARAM_TYPES: &str = "\"one_of\", \"pattern\", \"integer\", \"literal\", \"path\"";

fn param(
    ctx: &Ctx<'_>,
    name: &str,
    spec: &Spanned<ParamSpec>,
    roots: &BTreeMap<String, Arc<SafeRoot>>,
) -> Result<(Param, String), ConfigError> {
    let s = spec.get_ref();
    let kind = s.kind.get_ref().as_str();
    let (mut param, described) = match kind {
        "one_of" => {
            misplaced(ctx, &s.pattern, "pattern", kind)?;
            misplaced(ctx, &s.min, "min", kind)?;
            misplaced(ctx, &s.max, "max", kind)?;
            misplaced(ctx, &s.root, "root", kind)?;
            match (&s.values, &s.choices) {
                (Some(values), None) => (
                    Param::one_of_values(values.get_ref().iter().cloned()),
                    format!("one of {}", values.get_ref().join(", ")),
                ),
                (None, Some(choices)) => (
                    Param::one_of(choices.get_ref().iter().map(|(k, v)| (k.clone(), v.clone()))),
                    format!(
                        "one of {}",
                        choices
                            .get_ref()
                            .iter()
                            .map(|(k, v)| format!("{k} (-> {v})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                (Some(_), Some(c)) => {
                    return Err(invalid_plain(
                        ctx.at(&c.span()),
                        format!("parameter {name:?}: give either values or choices, not both"),
                    ))
                }
                (None, None) => {
                    return Err(invalid_plain(
                        ctx.at(&spec.span()),
                        format!("parameter {name:?} of type \"one_of\" needs values = [...] or choices = {{ key = \"argument\" }}"),
                    ))
                }
            }
        }
        "pattern" => {
            misplaced(ctx, &s.values, "values", kind)?;
            misplaced(ctx, &s.choices, "choices", kind)?;
            misplaced(ctx, &s.min, "min", kind)?;
            misplaced(ctx, &s.max, "max", kind)?;
            misplaced(ctx, &s.root, "root", kind)?;
            let pattern = s.pattern.as_ref().ok_or_else(|| {
                invalid_plain(
                    ctx.at(&spec.span()),
                    format!("parameter {name:?} of type \"pattern\" needs pattern = \"...\""),
                )
            })?;
            let p = Param::pattern(pattern.get_ref()).map_err(|e| {
                invalid(
                    ctx.at(&pattern.span()),
                    format!("parameter {name:?}: {e}"),
                    Some(e),
                )
            })?;
            (p, format!("matches ^(?:{})$", pattern.get_ref()))
        }
        "integer" => {
            misplaced(ctx, &s.values, "values", kind)?;
            misplaced(ctx, &s.choices, "choices", kind)?;
            misplaced(ctx, &s.pattern, "pattern", kind)?;
            misplaced(ctx, &s.root, "root", kind)?;
            let min = s.min.as_ref().map_or(i64::MIN, |m| *m.get_ref());
            let max = s.max.as_ref().map_or(i64::MAX, |m| *m.get_ref());
            if min > max {
                let span = s.min.as_ref().map_or(spec.span(), Spanned::span);
                return Err(invalid_plain(
                    ctx.at(&span),
                    format!("parameter {name:?}: min {min} is greater than max {max}"),
                ));
            }
            (Param::integer(min..=max), format!("integer {min}..={max}"))
        }
        "literal" => {
            misplaced(ctx, &s.values, "values", kind)?;
            misplaced(ctx, &s.choices, "choices", kind)?;
            misplaced(ctx, &s.pattern, "pattern", kind)?;
            misplaced(ctx, &s.min, "min", kind)?;
            misplaced(ctx, &s.max, "max", kind)?;
            misplaced(ctx, &s.root, "root", kind)?;
            (Param::literal(), "any text (one argument)".to_owned())
        }
        "path" => {
            misplaced(ctx, &s.values, "values", kind)?;
            misplaced(ctx, &s.choices, "choices", kind)?;
            misplaced(ctx, &s.pattern, "pattern", kind)?;
            misplaced(ctx, &s.min, "min", kind)?;
            misplaced(ctx, &s.max, "max", kind)?;
            let root_name = s.root.as_ref().ok_or_else(|| {
                invalid_plain(
                    ctx.at(&spec.span()),
                    format!("parameter {name:?} of type \"path\" needs root = \"<name of a [root.NAME] table>\""),
                )
            })?;
            let root = roots
                .get(root_name.get_ref())
                .ok_or_else(|| reference_error(ctx, root_name, "root", "root", roots))?;
            (
                Param::path(Arc::clone(root)),
                format!("a file beneath root {:?}", root_name.get_ref()),
            )
        }
        other => {
            return Err(invalid_plain(
                ctx.at(&s.kind.span()),
                format!(
                "parameter {name:?}: type {other:?} is not known; expected one of {PARAM_TYPES}"
            ),
            ))
        }
    };
    if let Some(n) = s.max_len {
        param = param.max_len(n);
    }
    if s.allow_leading_dash == Some(true) {
        param = param.allow_leading_dash();
    }
    Ok((param, described))
}

fn command(
    ctx: &Ctx<'_>,
    name: &str,
    spec: &Spanned<CommandSpec>,
    roots: &BTreeMap<String, Arc<SafeRoot>>,
) -> Result<(CommandTemplate, Vec<String>), ConfigError> {
    let s = spec.get_ref();
    let program = s.program.get_ref();
    let program_at = ctx.at(&s.program.span());
    if !Path::new(program).is_absolute() {
        return Err(invalid_plain(
            program_at,
            format!("program {program:?} is not an absolute path; write the full path of the executable (e.g. \"/usr/bin/{}\"); commands never search PATH", program.rsplit('/').next().unwrap_or(program)),
        ));
    }
    let mut builder = CommandTemplate::builder(program.clone());
    let mut details = Vec::new();
    for arg in &s.args {
        builder = builder.arg_template(arg.get_ref().clone());
    }
    let argv: Vec<String> = std::iter::once(program.clone())
        .chain(s.args.iter().map(|a| a.get_ref().clone()))
        .collect();
    details.push(format!("runs {}", argv.join(" ")));
    for (pname, pspec) in &s.params {
        let (p, described) = param(ctx, pname, pspec, roots)?;
        builder = builder.param(pname.clone(), p);
        details.push(format!("{{{pname}}}: {described}"));
    }
    for (k, v) in &s.env {
        builder = builder.env(k.clone(), v.clone());
    }
    if !s.env.is_empty() {
        details.push(format!(
            "environment: PATH plus {}",
            s.env.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    match (&s.chdir, &s.chdir_root) {
        (Some(_), Some(r)) => {
            return Err(invalid_plain(
                ctx.at(&r.span()),
                "give either chdir or chdir_root, not both".to_owned(),
            ))
        }
        (Some(dir), None) => builder = builder.chdir(ctx.resolve(dir.get_ref())),
        (None, Some(r)) => {
            let root = roots
                .get(r.get_ref())
                .ok_or_else(|| reference_error(ctx, r, "root", "root", roots))?;
            builder = builder.chdir_root(root);
        }
        (None, None) => {}
    }
    if let Some(t) = &s.timeout {
        let secs = *t.get_ref();
        let timeout = Duration::try_from_secs_f64(secs)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                invalid_plain(
                    ctx.at(&t.span()),
                    format!("timeout {secs} is not a positive number of seconds"),
                )
            })?;
        builder = builder.timeout(timeout);
    }
    if let Some(n) = s.max_output {
        builder = builder.max_output(n);
    }
    if let Some(r) = &s.rlimits {
        let mut limits = Rlimits::new();
        if let Some(v) = r.cpu_seconds {
            limits = limits.cpu_seconds(v);
        }
        if let Some(v) = r.address_space {
            limits = limits.address_space(v);
        }
        if let Some(v) = r.file_size {
            limits = limits.file_size(v);
        }
        if let Some(v) = r.processes {
            limits = limits.processes(v);
        }
        builder = builder.rlimits(limits);
    }
    if s.allow_interpreter == Some(true) {
        builder = builder.allow_interpreter(true);
        details.push("may run an interpreter (allow_interpreter)".to_owned());
    }
    let template = builder.build().map_err(|e| {
        let at = match e.code() {
            "command.program" | "command.interpreter" => program_at.clone(),
            _ => ctx.at(&spec.span()),
        };
        invalid(at, format!("command {name:?} refused: {e}"), Some(e))
    })?;
    details.push(format!(
        "timeout {:?}, no shell, empty environment besides PATH",
        template.timeout()
    ));
    Ok((template, details))
}

/// Sections that need the authz and certificate-source capabilities.
#[derive(Debug)]
pub(super) struct Extra {
    pub(super) sources: BTreeMap<String, Arc<CertSource>>,
    /// Rules without a `store`: they apply to identities from every store.
    pub(super) access_policy: Arc<AccessPolicy>,
    /// Per store: the general rules plus the rules limited to that store.
    pub(super) store_policies: BTreeMap<String, Arc<AccessPolicy>>,
    pub(super) rack: Option<RackSettings>,
    pub(super) guard: Option<GuardSettings>,
    pub(super) lockdowns: BTreeMap<String, Arc<crate::lockdown::Lockdown>>,
    /// Background CRL refreshers of the trust stores with CRL URLs; dropped (stopped)
    /// with the configuration.
    #[allow(dead_code)] // held for its Drop: the refresh threads end with the configuration
    pub(super) crl_refreshers: Vec<crate::identity::CrlRefresher>,
}

fn sources(
    ctx: &Ctx<'_>,
    spec: &FileSpec,
    summary: &mut Vec<Section>,
) -> Result<BTreeMap<String, Arc<CertSource>>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, source) in &spec.source {
        let s = source.get_ref();
        let kind: SourceKind = s.kind.get_ref().parse().map_err(|e: SourceError| {
            invalid(
                ctx.at(&s.kind.span()),
                format!("{e}; expected one of \"tls\", \"nginx\", \"envoy\", \"alb\", \"traefik\", \"rfc9440\""),
                Some(e),
            )
        })?;
        for entry in &s.trusted_proxies {
            TrustedProxies::new([entry.get_ref()]).map_err(|e| {
                invalid(
                    ctx.at(&entry.span()),
                    format!("trusted proxy {:?} refused: {e}", entry.get_ref()),
                    Some(e),
                )
            })?;
        }
        let proxies = TrustedProxies::new(strings(&s.trusted_proxies)).map_err(|e| {
            invalid(
                ctx.at(&source.span()),
                format!("source {name:?}: {e}"),
                Some(e),
            )
        })?;
        let mut built = CertSource::new(kind, proxies).map_err(|e| {
            invalid(
                ctx.at(&source.span()),
                format!("source {name:?}: {e}"),
                Some(e),
            )
        })?;
        if let Some(h) = &s.header {
            built = built.with_header(h.get_ref()).map_err(|e| {
                invalid(ctx.at(&h.span()), format!("source {name:?}: {e}"), Some(e))
            })?;
        }
        if let Some(h) = &s.chain_header {
            built = built.with_chain_header(h.get_ref()).map_err(|e| {
                invalid(ctx.at(&h.span()), format!("source {name:?}: {e}"), Some(e))
            })?;
        }
        let defaults = SourceLimits::default();
        let value =
            |v: &Option<Spanned<usize>>, default| v.as_ref().map_or(default, |v| *v.get_ref());
        built = built
            .with_limits(SourceLimits {
                max_cert_bytes: value(&s.max_cert_bytes, defaults.max_cert_bytes),
                max_chain_bytes: value(&s.max_chain_bytes, defaults.max_chain_bytes),
                max_certs: value(&s.max_certs, defaults.max_certs),
            })
            .map_err(|e| {
                // Point at the value that is out of range.
                let key = match &e {
                    SourceError::BadLimit {
                        limit: "max_certs", ..
                    } => s.max_certs.as_ref(),
                    SourceError::BadLimit {
                        limit: "max_cert_bytes",
                        ..
                    } => s.max_cert_bytes.as_ref(),
                    SourceError::BadLimit {
                        limit: "max_chain_bytes",
                        ..
                    } => s.max_chain_bytes.as_ref(),
                    _ => None,
                };
                let span = key.map_or_else(|| source.span(), Spanned::span);
                invalid(ctx.at(&span), format!("source {name:?}: {e}"), Some(e))
            })?;
        let mut details = vec![format!(
            "client certificates from {} ({})",
            kind,
            built.header()
        )];
        if kind.is_forwarded() {
            details.push(format!(
                "honoured only from the proxies {}",
                strings(&s.trusted_proxies).join(", ")
            ));
        }
        summary.push(section("source", name, details));
        out.insert(name.clone(), Arc::new(built));
    }
    Ok(out)
}

/// The general policy and the per-store ones.
type AccessPolicies = (Arc<AccessPolicy>, BTreeMap<String, Arc<AccessPolicy>>);

fn access(
    ctx: &Ctx<'_>,
    spec: &FileSpec,
    stores: &BTreeMap<String, Arc<TrustStore>>,
    summary: &mut Vec<Section>,
) -> Result<AccessPolicies, ConfigError> {
    let mut rules: Vec<(Option<String>, Rule)> = Vec::with_capacity(spec.access.len());
    for (index, rule) in spec.access.iter().enumerate() {
        let r = rule.get_ref();
        if let Some(store) = &r.store {
            if !stores.contains_key(store.get_ref()) {
                return Err(reference_error(
                    ctx,
                    store,
                    "trust store",
                    "trust_store",
                    stores,
                ));
            }
        }
        let built = Rule {
            matcher: Match {
                issuer: r.issuer.clone(),
                subject: r.subject.clone(),
                cn: r.cn.clone(),
                dns: r.dns.clone(),
                spiffe_id: r.spiffe_id.clone(),
                spiffe_trust_domain: r.spiffe_trust_domain.clone(),
                spiffe_prefix: r.spiffe_prefix.clone(),
            },
            grants: r.grants.clone(),
        };
        // Each rule alone first, so a refusal points at the rule that caused it.
        AccessPolicy::new(vec![built.clone()]).map_err(|e| {
            invalid(
                ctx.at(&rule.span()),
                format!("access rule #{} refused: {e}", index + 1),
                Some(e),
            )
        })?;
        let m = &built.matcher;
        let mut who = Vec::new();
        for (label, value) in [
            ("issuer", &m.issuer),
            ("subject", &m.subject),
            ("cn", &m.cn),
            ("dns", &m.dns),
            ("spiffe_id", &m.spiffe_id),
            ("spiffe_trust_domain", &m.spiffe_trust_domain),
            ("spiffe_prefix", &m.spiffe_prefix),
        ] {
            if let Some(v) = value {
                who.push(format!("{label} = {v:?}"));
            }
        }
        let scope = match &r.store {
            Some(s) => format!(" (store {:?})", s.get_ref()),
            None => String::new(),
        };
        summary.push(section(
            "access",
            &format!("#{}", index + 1),
            vec![format!(
                "{}{scope} may {}",
                who.join(" and "),
                built.grants.join(", ")
            )],
        ));
        rules.push((r.store.as_ref().map(|s| s.get_ref().clone()), built));
    }
    let policy_of = |filter: &dyn Fn(&Option<String>) -> bool| {
        AccessPolicy::new(
            rules
                .iter()
                .filter(|(store, _)| filter(store))
                .map(|(_, rule)| rule.clone())
                .collect(),
        )
    };
    let table_at = || Location::in_text(ctx.file, ctx.text, 0);
    let general = policy_of(&|store| store.is_none())
        .map_err(|e| invalid(table_at(), format!("access rules refused: {e}"), Some(e)))?;
    let mut per_store = BTreeMap::new();
    for name in stores.keys() {
        let policy = policy_of(&|store| store.as_deref().map_or(true, |s| s == name))
            .map_err(|e| invalid(table_at(), format!("access rules refused: {e}"), Some(e)))?;
        per_store.insert(name.clone(), Arc::new(policy));
    }
    Ok((Arc::new(general), per_store))
}

fn rack(
    ctx: &Ctx<'_>,
    spec: &FileSpec,
    stores: &BTreeMap<String, Arc<TrustStore>>,
    sources: &BTreeMap<String, Arc<CertSource>>,
    summary: &mut Vec<Section>,
) -> Result<Option<RackSettings>, ConfigError> {
    let Some(rack) = &spec.rack else {
        return Ok(None);
    };
    let r = rack.get_ref();
    if !stores.contains_key(r.trust_store.get_ref()) {
        return Err(reference_error(
            ctx,
            &r.trust_store,
            "trust store",
            "trust_store",
            stores,
        ));
    }
    if let Some(source) = &r.source {
        if !sources.contains_key(source.get_ref()) {
            return Err(reference_error(ctx, source, "source", "source", sources));
        }
    }
    // `require` compiles exactly as the middleware will compile it.
    crate::authz::RouteRequirements::new(
        r.require
            .iter()
            .map(|(route, permission)| (route.as_str(), vec![permission.as_str()])),
    )
    .map_err(|e| invalid_plain(ctx.at(&rack.span()), format!("[rack] require: {e}")))?;
    // `skip` too: canonical "/path" prefixes, as the middleware's skip table takes them.
    crate::authz::SkipRoutes::new(&r.skip)
        .map_err(|e| invalid_plain(ctx.at(&rack.span()), format!("[rack] skip: {e}")))?;
    let granted: Vec<&str> = spec
        .access
        .iter()
        .flat_map(|rule| rule.get_ref().grants.iter().map(String::as_str))
        .collect();
    for (route, permission) in &r.require {
        if !granted.contains(&permission.as_str()) {
            return Err(ConfigError::Reference {
                at: ctx.at(&rack.span()),
                message: format!(
                    "[rack] require {route:?} = {permission:?}, but no [[access]] rule grants {permission:?}; every request there would be refused"
                ),
            });
        }
    }
    let reload_interval = match &r.reload_interval {
        None => None,
        Some(v) => Some(Duration::try_from_secs_f64(*v.get_ref()).map_err(|_| {
            invalid_plain(
                ctx.at(&v.span()),
                format!(
                    "reload_interval {} is not a non-negative number of seconds",
                    v.get_ref()
                ),
            )
        })?),
    };
    let settings = RackSettings {
        trust_store: r.trust_store.get_ref().clone(),
        source: r.source.as_ref().map(|s| s.get_ref().clone()),
        require: r
            .require
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        skip: r.skip.clone(),
        reload_interval,
    };
    let mut details = vec![format!(
        "verifies callers with trust store {:?}, certificates from {}",
        settings.trust_store,
        settings.source.as_deref().unwrap_or("the TLS layer")
    )];
    for (route, permission) in &settings.require {
        details.push(format!("{route} requires {permission}"));
    }
    if !settings.skip.is_empty() {
        details.push(format!(
            "no certificate needed for {}",
            settings.skip.join(", ")
        ));
    }
    summary.push(section("rack", "middleware", details));
    Ok(Some(settings))
}

fn guard(
    ctx: &Ctx<'_>,
    spec: &FileSpec,
    egress: &BTreeMap<String, Arc<EgressPolicy>>,
    summary: &mut Vec<Section>,
) -> Result<Option<GuardSettings>, ConfigError> {
    use crate::guard::{GuardOptions, GuardPolicy, Mode, SpawnRule};
    let Some(table) = &spec.guard else {
        return Ok(None);
    };
    let g = table.get_ref();
    if let Some(name) = &g.egress {
        if !egress.contains_key(name.get_ref()) {
            return Err(reference_error(
                ctx,
                name,
                "egress policy",
                "egress",
                egress,
            ));
        }
    }
    let mode = match &g.mode {
        None => Mode::default(),
        Some(m) => Mode::parse(m.get_ref())
            .map_err(|e| invalid_plain(ctx.at(&m.span()), format!("[guard] {e}")))?,
    };
    let spawn = match &g.spawn {
        None => SpawnRule::default(),
        Some(s) => SpawnRule::parse(s.get_ref())
            .map_err(|e| invalid_plain(ctx.at(&s.span()), format!("[guard] {e}")))?,
    };
    let programs = g.programs.as_ref().map(|p| p.get_ref().clone());
    if let Some(p) = &g.programs {
        // The same check guard! makes, so a file that passes `portcullis check` installs.
        let options = GuardOptions {
            programs: programs.clone(),
            ..GuardOptions::default()
        };
        GuardPolicy::new(Arc::new(EgressPolicy::default()), options)
            .map_err(|e| invalid_plain(ctx.at(&p.span()), format!("[guard] programs: {e}")))?;
    }
    let settings = GuardSettings {
        egress: g.egress.as_ref().map(|e| e.get_ref().clone()),
        mode,
        spawn,
        programs,
    };
    let mut details = vec![
        format!(
            "judges every Ruby connect with {}",
            settings
                .egress
                .as_deref()
                .map_or("the default egress policy".to_owned(), |n| format!(
                    "egress policy {n:?}"
                ))
        ),
        format!("mode {}, spawn rule {}", mode.as_str(), spawn.as_str()),
    ];
    if let Some(p) = &settings.programs {
        details.push(format!("programs: {}", p.join(", ")));
    }
    summary.push(section("guard", "runtime", details));
    Ok(Some(settings))
}
