//! [`ConfigHandle`]: the configuration in force, swapped atomically on reload.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::{Config, ConfigError};

/// How often [`ConfigHandle::reload_if_changed`] looks at the files by default.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// What the files looked like when last loaded: (path, modification time, length).
type Stamp = Vec<(PathBuf, Option<SystemTime>, Option<u64>)>;

fn stamp<'a>(paths: impl Iterator<Item = &'a Path>) -> Stamp {
    paths
        .map(|p| {
            let meta = std::fs::metadata(p).ok();
            (
                p.to_path_buf(),
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.as_ref().map(std::fs::Metadata::len),
            )
        })
        .collect()
}

#[derive(Debug)]
struct Watch {
    last_check: Instant,
    config_file: Stamp,
    crl_files: Stamp,
}

/// A configuration file kept in force: readers take the current [`Config`] (an `Arc`, so a
/// request keeps one consistent configuration even while a reload happens); reloads parse
/// anew and swap atomically, and a bad file leaves the old configuration in place.
///
/// ```
/// use portcullis::{config::ConfigHandle, ErrorCode};
/// let dir = tempfile::tempdir().unwrap();
/// let file = dir.path().join("portcullis.toml");
/// std::fs::write(&file, "[egress.web]\n").unwrap();
/// let handle = ConfigHandle::open(&file)?;
/// assert!(handle.current().egress("web").is_ok());
///
/// std::fs::write(&file, "[egress.web]\nallow_cidrs = [\"10.0.0.0/33\"]\n").unwrap();
/// let err = handle.reload().unwrap_err();
/// assert_eq!(err.code(), "config.invalid_value");
/// assert!(handle.current().egress("web").is_ok()); // the old configuration stays
/// # Ok::<(), portcullis::config::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct ConfigHandle {
    path: PathBuf,
    current: RwLock<Arc<Config>>,
    watch: Mutex<Watch>,
    interval: Duration,
}

impl ConfigHandle {
    /// Loads `path`; fails if the first load fails (there is no old configuration to keep).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref().to_path_buf();
        let config = Config::from_path(&path)?;
        let watch = Watch {
            last_check: Instant::now(),
            config_file: stamp(std::iter::once(path.as_path())),
            crl_files: stamp(config.crl_paths()),
        };
        Ok(Self {
            path,
            current: RwLock::new(Arc::new(config)),
            watch: Mutex::new(watch),
            interval: DEFAULT_CHECK_INTERVAL,
        })
    }

    /// Sets how often [`reload_if_changed`](Self::reload_if_changed) looks at the files
    /// (default [`DEFAULT_CHECK_INTERVAL`]; zero: on every call).
    #[must_use]
    pub fn with_check_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The file this handle loads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<Config> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Parses the file anew and, if it is good, swaps it in. On error the old configuration
    /// stays in force and the error says what is wrong with the new file.
    pub fn reload(&self) -> Result<Arc<Config>, ConfigError> {
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        self.reload_locked(&mut watch)
    }

    fn reload_locked(&self, watch: &mut Watch) -> Result<Arc<Config>, ConfigError> {
        // Stamp before reading: a write that lands during the read is seen next time.
        watch.config_file = stamp(std::iter::once(self.path.as_path()));
        let fresh = Arc::new(Config::from_path(&self.path)?);
        watch.crl_files = stamp(fresh.crl_paths());
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&fresh);
        Ok(fresh)
    }

    /// Re-reads the CRL files of the configuration in force into its trust stores. On error
    /// the old CRLs stay.
    pub fn reload_crls(&self) -> Result<(), ConfigError> {
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        let config = self.current();
        watch.crl_files = stamp(config.crl_paths());
        config.reload_crls()
    }

    /// Looks at the modification times (and sizes) of the file and of the CRL files, at most
    /// once per interval: reloads the whole configuration if the file changed, or only the
    /// CRLs if only they changed. Returns whether anything was reloaded. A bad new file is
    /// reported once (until it changes again) and the old configuration stays.
    pub fn reload_if_changed(&self) -> Result<bool, ConfigError> {
        self.check(true)
    }

    /// Like [`reload_if_changed`](Self::reload_if_changed) but looks at the files now,
    /// whatever the interval, for callers that throttle themselves (the Rack middleware).
    pub fn reload_if_changed_now(&self) -> Result<bool, ConfigError> {
        self.check(false)
    }

    fn check(&self, throttle: bool) -> Result<bool, ConfigError> {
        let mut watch = match self.watch.try_lock() {
            Ok(w) => w,
            // Another thread is checking or reloading right now; nothing to add.
            Err(_) => return Ok(false),
        };
        if throttle && watch.last_check.elapsed() < self.interval {
            return Ok(false);
        }
        watch.last_check = Instant::now();
        if stamp(std::iter::once(self.path.as_path())) != watch.config_file {
            return self.reload_locked(&mut watch).map(|_| true);
        }
        let config = self.current();
        let crls = stamp(config.crl_paths());
        if crls != watch.crl_files {
            watch.crl_files = crls;
            config.reload_crls()?;
            return Ok(true);
        }
        Ok(false)
    }
}
