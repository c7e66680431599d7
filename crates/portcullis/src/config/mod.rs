//! One declarative file for an application's whole boundary: `portcullis.toml`.
//!
//! The file declares named trust stores, certificate sources and trusted proxies, access
//! rules, named egress policies, named roots and named command templates. [`Config`] loads
//! it into the same typed objects the builders make ([`TrustStore`], [`EgressPolicy`],
//! [`SafeRoot`], [`CommandTemplate`], …), so a Rust service and a Ruby app reading the same
//! file enforce the same boundary.
//!
//! Every mistake is a [`ConfigError`] with file, line and column: unknown keys (nothing is
//! silently ignored), wrong types, values a capability refuses (a CIDR that does not parse,
//! a relative command program, an empty CA bundle), files that cannot be read and names
//! that refer to nothing. Relative paths resolve against the file's directory.
//!
//! ```
//! use portcullis::config::Config;
//!
//! let config = Config::from_str(r#"
//! [egress.partners]
//! allow_hosts = ["api.partner.example", "*.cdn.partner.example"]
//!
//! [command.greet]
//! program = "/bin/echo"
//! args = ["--", "{name}"]
//! params.name = { type = "pattern", pattern = "[a-z]+" }
//! "#, "/srv/app/config")?;
//!
//! let partners = config.egress("partners")?;
//! assert!(partners.check_url("https://evil.example/").is_err());
//! let greet = config.command("greet")?;
//! assert_eq!(greet.argv([("name", "ada")]).unwrap(), ["/bin/echo", "--", "ada"]);
//! # Ok::<(), portcullis::config::ConfigError>(())
//! ```
//!
//! [`ConfigHandle`] adds live reload: [`ConfigHandle::reload`] parses the file anew and swaps
//! the new configuration in atomically; a bad file is reported and the old configuration
//! stays in force. [`ConfigHandle::reload_if_changed`] looks at file modification times at
//! most once per interval, for request paths.

mod build;
mod error;
mod handle;
mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use error::{ConfigError, Location};
pub use handle::{ConfigHandle, DEFAULT_CHECK_INTERVAL};

use crate::authz::AccessPolicy;
use crate::command::CommandTemplate;
use crate::egress::EgressPolicy;
use crate::fs::SafeRoot;
use crate::identity::source::CertSource;
use crate::identity::TrustStore;

/// The largest configuration file read; a bigger one is refused (`config.io`).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The name used in locations for text loaded without a file.
pub const UNNAMED: &str = "<string>";

/// One section of a loaded configuration, described for people (`portcullis check`).
///
/// ```
/// let config = portcullis::config::Config::from_str("[egress.web]\n", "/")?;
/// let section = &config.summary()[0];
/// assert_eq!((section.kind, section.name.as_str()), ("egress", "web"));
/// # Ok::<(), portcullis::config::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Section {
    /// `trust_store`, `source`, `access`, `egress`, `root`, `command` or `rack`.
    pub kind: &'static str,
    /// The section's name (the rule number for access rules).
    pub name: String,
    /// What it allows, one fact per line.
    pub details: Vec<String>,
}

/// The `[rack]` table: how the Rack middleware (and any HTTP front end) verifies callers.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let config = portcullis::config::Config::from_str("", dir.path())?;
/// assert!(config.rack().is_none());
/// # Ok::<(), portcullis::config::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RackSettings {
    /// The trust store that verifies callers (a `[trust_store.NAME]` that exists).
    pub trust_store: String,
    /// The certificate source (a `[source.NAME]`); `None`: the TLS layer itself.
    pub source: Option<String>,
    /// Route (`"/admin"`, `"POST /deploy"`) to the permission it requires.
    pub require: Vec<(String, String)>,
    /// Routes that need no certificate (`"/up"`).
    pub skip: Vec<String>,
    /// How often to look for changes of the file and its CRLs; `None`: the default.
    pub reload_interval: Option<Duration>,
}

/// Where a trust store's CRLs come from, for [`Config::reload_crls`].
#[derive(Clone, Debug)]
struct CrlFile {
    path: PathBuf,
    at: Location,
    /// The store's CA bundles and intermediates, to check new CRLs in a throwaway store
    /// before swapping (so a refusal names the file).
    probe: Arc<CrlProbe>,
}

/// What a CRL file is checked against on its own: the certificates that may sign it.
#[derive(Debug, Default)]
struct CrlProbe {
    cas: Vec<Vec<u8>>,
    intermediates: Vec<Vec<u8>>,
}

/// A loaded `portcullis.toml`: typed objects by name. Cheap to share (`Arc` inside); swap
/// whole configurations with [`ConfigHandle`].
///
/// ```
/// use portcullis::{config::Config, ErrorCode};
/// let err = Config::from_str("[root.uploads]\npath = \"no/such/dir\"\n", "/nonexistent").unwrap_err();
/// assert_eq!(err.code(), "config.missing_file");
/// assert!(err.to_string().starts_with("<string>:2:8: root directory"));
/// ```
#[derive(Debug)]
pub struct Config {
    file: String,
    path: Option<PathBuf>,
    base_dir: PathBuf,
    trust_stores: BTreeMap<String, Arc<TrustStore>>,
    crl_files: BTreeMap<String, Vec<CrlFile>>,
    egress: BTreeMap<String, Arc<EgressPolicy>>,
    roots: BTreeMap<String, Arc<SafeRoot>>,
    commands: BTreeMap<String, Arc<CommandTemplate>>,
    extra: build::Extra,
    summary: Vec<Section>,
}

fn lookup<'a, T>(
    map: &'a BTreeMap<String, T>,
    kind: &'static str,
    name: &str,
    file: &str,
) -> Result<&'a T, ConfigError> {
    map.get(name).ok_or_else(|| ConfigError::UnknownName {
        kind,
        name: name.to_owned(),
        file: file.to_owned(),
        defined: map.keys().cloned().collect(),
    })
}

impl Config {
    /// Reads and checks the file at `path`; relative paths inside resolve against its
    /// directory.
    ///
    /// ```
    /// use portcullis::{config::Config, ErrorCode};
    /// let err = Config::from_path("/no/such/portcullis.toml").unwrap_err();
    /// assert_eq!(err.code(), "config.io");
    /// ```
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let bytes =
            build::read_capped(path, MAX_CONFIG_BYTES).map_err(|source| ConfigError::Io {
                file: file.clone(),
                source,
            })?;
        let text = String::from_utf8(bytes).map_err(|e| ConfigError::Io {
            file: file.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
        })?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut config = build::load(&text, &base, &file)?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// Checks `text`; relative paths inside resolve against `base_dir`. Locations name the
    /// file [`UNNAMED`].
    ///
    /// ```
    /// let config = portcullis::config::Config::from_str("", "/")?;
    /// assert!(config.summary().is_empty());
    /// # Ok::<(), portcullis::config::ConfigError>(())
    /// ```
    #[allow(clippy::should_implement_trait)] // takes a base directory too; not `FromStr`
    pub fn from_str(text: &str, base_dir: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::from_str_named(text, base_dir, UNNAMED)
    }

    /// Like [`from_str`](Self::from_str), naming the text `file` in locations.
    ///
    /// ```
    /// use portcullis::config::Config;
    /// let err = Config::from_str_named("x = 1\n", "/", "app.toml").unwrap_err();
    /// assert!(err.to_string().starts_with("app.toml:1:1: unknown key \"x\""));
    /// ```
    pub fn from_str_named(
        text: &str,
        base_dir: impl AsRef<Path>,
        file: &str,
    ) -> Result<Self, ConfigError> {
        build::load(text, base_dir.as_ref(), file)
    }

    /// The file this configuration was read from (`None` for [`from_str`](Self::from_str)).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The directory relative paths were resolved against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The trust store `[trust_store.NAME]`.
    ///
    /// ```
    /// use portcullis::{config::Config, ErrorCode};
    /// let config = Config::from_str("", "/")?;
    /// assert_eq!(config.trust_store("clients").unwrap_err().code(), "config.unknown_name");
    /// # Ok::<(), portcullis::config::ConfigError>(())
    /// ```
    pub fn trust_store(&self, name: &str) -> Result<&Arc<TrustStore>, ConfigError> {
        lookup(&self.trust_stores, "trust store", name, &self.file)
    }

    /// The egress policy `[egress.NAME]`.
    pub fn egress(&self, name: &str) -> Result<&Arc<EgressPolicy>, ConfigError> {
        lookup(&self.egress, "egress policy", name, &self.file)
    }

    /// The root `[root.NAME]`.
    pub fn root(&self, name: &str) -> Result<&Arc<SafeRoot>, ConfigError> {
        lookup(&self.roots, "root", name, &self.file)
    }

    /// The command template `[command.NAME]`.
    pub fn command(&self, name: &str) -> Result<&Arc<CommandTemplate>, ConfigError> {
        lookup(&self.commands, "command", name, &self.file)
    }

    /// The certificate source `[source.NAME]`.
    pub fn source(&self, name: &str) -> Result<&Arc<CertSource>, ConfigError> {
        lookup(&self.extra.sources, "source", name, &self.file)
    }

    /// The access policy of the `[[access]]` rules that name no `store`.
    ///
    /// ```
    /// let config = portcullis::config::Config::from_str("", "/")?;
    /// assert_eq!(config.access_policy().rule_count(), 0); // default deny
    /// # Ok::<(), portcullis::config::ConfigError>(())
    /// ```
    pub fn access_policy(&self) -> &Arc<AccessPolicy> {
        &self.extra.access_policy
    }

    /// The access policy for identities verified by trust store `store`: the rules that
    /// name no store plus the rules limited to this one.
    pub fn access_policy_for(&self, store: &str) -> Result<&Arc<AccessPolicy>, ConfigError> {
        lookup(&self.extra.store_policies, "trust store", store, &self.file)
    }

    /// The `[rack]` table, if the file has one.
    pub fn rack(&self) -> Option<&RackSettings> {
        self.extra.rack.as_ref()
    }

    /// Names of the certificate sources, sorted.
    pub fn source_names(&self) -> impl Iterator<Item = &str> {
        self.extra.sources.keys().map(String::as_str)
    }

    /// Names of the trust stores, sorted.
    pub fn trust_store_names(&self) -> impl Iterator<Item = &str> {
        self.trust_stores.keys().map(String::as_str)
    }

    /// Names of the egress policies, sorted.
    pub fn egress_names(&self) -> impl Iterator<Item = &str> {
        self.egress.keys().map(String::as_str)
    }

    /// Names of the roots, sorted.
    pub fn root_names(&self) -> impl Iterator<Item = &str> {
        self.roots.keys().map(String::as_str)
    }

    /// Names of the command templates, sorted.
    pub fn command_names(&self) -> impl Iterator<Item = &str> {
        self.commands.keys().map(String::as_str)
    }

    /// What the file allows, section by section.
    pub fn summary(&self) -> &[Section] {
        &self.summary
    }

    /// Every CRL file the trust stores load, so callers can watch them.
    pub fn crl_paths(&self) -> impl Iterator<Item = &Path> {
        self.crl_files
            .values()
            .flat_map(|files| files.iter().map(|f| f.path.as_path()))
    }

    /// Re-reads every trust store's CRL files and swaps them into the live stores (clearing
    /// their caches). All files are read and checked first; on any error nothing changes.
    pub fn reload_crls(&self) -> Result<(), ConfigError> {
        type Fresh<'a> = (&'a Arc<TrustStore>, Vec<Vec<u8>>, &'a Location);
        let mut fresh: Vec<Fresh<'_>> = Vec::new();
        for (name, files) in &self.crl_files {
            let store = self.trust_store(name)?;
            let mut blobs = Vec::with_capacity(files.len());
            for f in files {
                let bytes = build::read_file(&f.path, &f.at, "CRL")?;
                build::check_crl(&f.probe, &bytes, &f.path, &f.at)?;
                blobs.push(bytes);
            }
            if let Some(first) = files.first() {
                fresh.push((store, blobs, &first.at));
            }
        }
        // Every file was read and checked above, so a bad one changed nothing.
        for (store, blobs, at) in fresh {
            let refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
            store
                .reload_crls(&refs)
                .map_err(|e| build::invalid(at.clone(), format!("CRLs refused: {e}"), Some(e)))?;
        }
        Ok(())
    }
}
