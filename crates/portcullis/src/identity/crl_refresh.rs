//! CRLs from their distribution points: which URLs a [`TrustStore`] fetches, the last good
//! copy of each, the refresh schedule and the refresh log.
//!
//! A refresh fetches every URL (through the store's [`EgressPolicy`], see
//! [`super::crl_fetch`]), checks each response on its own (it must decode as a CRL and
//! pass the store's CRL rules: a signature that verifies under a configured CA, a
//! cRLNumber not lower than the copy in force), keeps the previous good copy of any URL
//! that failed, and swaps the store's CRL set in one step (which clears the verification
//! cache). A CRL past its nextUpdate is not dropped: it keeps listing what it revoked, and
//! the certificates it covers have an unknown status (`deny_unknown_revocation` refuses
//! them). Every refresh of every URL is logged.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::crl_fetch::Fetcher;
use super::TrustStore;
use crate::egress::EgressPolicy;

/// What happened to one distribution point in one refresh.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CrlRefreshEvent {
    /// The distribution point.
    pub url: String,
    /// When the refresh ran, seconds since the Unix epoch.
    pub at: i64,
    /// `None`: the fetched CRL is in force. `Some(reason)`: the fetch or the CRL failed.
    pub error: Option<String>,
    /// On failure: whether an earlier good copy of this URL's CRL stays in force.
    pub kept_previous: bool,
    /// Bytes fetched (0 on a failed fetch).
    pub bytes: usize,
}

impl std::fmt::Display for CrlRefreshEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error {
            None => write!(f, "CRL refresh {}: ok ({} bytes)", self.url, self.bytes),
            Some(e) if self.kept_previous => write!(
                f,
                "CRL refresh {}: failed ({e}); the last good copy stays in force",
                self.url
            ),
            Some(e) => write!(
                f,
                "CRL refresh {}: failed ({e}); no copy of this CRL is loaded, so what it \
                 covers has an unknown revocation status",
                self.url
            ),
        }
    }
}

/// Called with each refresh event (the default writes one line to standard error).
pub(crate) type CrlRefreshLog = Arc<dyn Fn(&CrlRefreshEvent) + Send + Sync>;

/// How many events [`TrustStore::crl_refresh_log`] remembers.
const LOG_CAPACITY: usize = 64;

/// The store's network CRL sources, set on the builder.
pub(crate) struct CrlSources {
    pub(crate) urls: Vec<String>,
    pub(crate) egress: Arc<EgressPolicy>,
    pub(crate) fetcher: Fetcher,
    pub(crate) log: Option<CrlRefreshLog>,
    /// The CRLs configured as bytes (files), always part of the set.
    pub(crate) fixed: Vec<Vec<u8>>,
    /// Per URL, the last CRL that passed (DER).
    pub(crate) last_good: Mutex<BTreeMap<String, Vec<u8>>>,
    pub(crate) events: Mutex<Vec<CrlRefreshEvent>>,
    /// Serializes refreshes (a manual one and the background one).
    pub(crate) running: Mutex<()>,
    /// Whether the last refresh failed for any URL.
    pub(crate) last_failed: Mutex<bool>,
    pub(crate) schedule: (Duration, Duration, Duration),
}

impl std::fmt::Debug for CrlSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlSources")
            .field("urls", &self.urls)
            .finish()
    }
}

impl CrlSources {
    pub(crate) fn record(&self, event: CrlRefreshEvent) {
        match &self.log {
            Some(log) => log(&event),
            None => eprintln!("portcullis: {event}"),
        }
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if events.len() == LOG_CAPACITY {
            events.remove(0);
        }
        events.push(event);
    }
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// When to refresh next, given the nextUpdate of the CRLs in force (`None`: none has
/// one, or none loaded) and whether the last refresh failed anywhere: a quarter of the time
/// left before the earliest nextUpdate (so a CRL is replaced well before it lapses), at
/// least `floor`, at most `ceiling`; after a failure, within `retry`.
pub(crate) fn next_delay(
    earliest_next_update: Option<i64>,
    now: i64,
    failed: bool,
    floor: Duration,
    ceiling: Duration,
    retry: Duration,
) -> Duration {
    let mut delay = match earliest_next_update {
        Some(next) if next > now => {
            Duration::from_secs(u64::try_from((next - now) / 4).unwrap_or(0))
        }
        Some(_) => floor,
        None => ceiling,
    };
    if failed {
        delay = delay.min(retry);
    }
    delay.clamp(floor, ceiling)
}

/// The background refresher of a store; dropping it stops the thread (promptly: it waits
/// on a condition variable, not in a sleep). The thread holds the store weakly and ends by
/// itself when the store is dropped.
#[derive(Debug)]
pub struct CrlRefresher {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CrlRefresher {
    pub(crate) fn spawn(
        store: &Arc<TrustStore>,
        (floor, ceiling, retry): (Duration, Duration, Duration),
    ) -> std::io::Result<Self> {
        let weak: Weak<TrustStore> = Arc::downgrade(store);
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("portcullis-crl".to_owned())
            .spawn(move || loop {
                let delay = {
                    let Some(store) = weak.upgrade() else {
                        return;
                    };
                    next_delay(
                        store.earliest_next_update(),
                        now_secs(),
                        store.last_crl_refresh_failed(),
                        floor,
                        ceiling,
                        retry,
                    )
                };
                let (lock, cvar) = &*signal;
                let stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                let (stopped, _) = cvar
                    .wait_timeout_while(stopped, delay, |s| !*s)
                    .unwrap_or_else(|p| p.into_inner());
                if *stopped {
                    return;
                }
                drop(stopped);
                let Some(store) = weak.upgrade() else {
                    return;
                };
                store.refresh_crls();
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (also done on drop).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cvar.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for CrlRefresher {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::next_delay;
    use std::time::Duration;

    #[test]
    fn refreshes_well_before_next_update_within_bounds() {
        let (floor, ceiling, retry) = (
            Duration::from_secs(30),
            Duration::from_secs(6 * 3600),
            Duration::from_secs(60),
        );
        let d = |next, failed| next_delay(next, 1000, failed, floor, ceiling, retry);
        assert_eq!(d(Some(1000 + 4 * 3600), false), Duration::from_secs(3600));
        assert_eq!(d(Some(1000 + 40), false), floor);
        assert_eq!(d(Some(500), false), floor); // already lapsed: soon
        assert_eq!(d(None, false), ceiling);
        assert_eq!(d(Some(1000 + 4 * 3600), true), retry);
        assert_eq!(d(Some(1000 + 400 * 86_400), false), ceiling);
    }
}

/// The network CRL options a builder collects.
#[derive(Clone, Default)]
pub(crate) struct CrlNetworkConfig {
    pub(crate) urls: Vec<String>,
    pub(crate) from_distribution_points: bool,
    pub(crate) egress: Option<Arc<EgressPolicy>>,
    pub(crate) fetcher: Fetcher,
    pub(crate) log: Option<CrlRefreshLog>,
    /// Bounds on the background refresh delay; after a failure, retry within `retry`.
    pub(crate) schedule: Option<(Duration, Duration, Duration)>,
}

/// Default refresh bounds: at least every 6 hours, at most every 30 seconds, a failed
/// fetch retried within 5 minutes.
pub(crate) const DEFAULT_SCHEDULE: (Duration, Duration, Duration) = (
    Duration::from_secs(30),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(300),
);

impl std::fmt::Debug for CrlNetworkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlNetworkConfig")
            .field("urls", &self.urls)
            .field("from_distribution_points", &self.from_distribution_points)
            .field("egress", &self.egress.is_some())
            .field("fetcher", &self.fetcher)
            .finish()
    }
}
