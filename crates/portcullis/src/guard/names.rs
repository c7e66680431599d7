//! Which names resolved to which addresses, so a host rule can apply at connect time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// A bounded map from address to the name it was last resolved from. Filled by the
/// resolver hooks; read by the connect hooks. Best effort by nature: an address two names
/// share is attributed to the most recent one, and a full cache starts over. Address rules
/// never depend on it.
///
/// ```
/// use portcullis::guard::NameCache;
/// let names = NameCache::new(16);
/// names.record("API.Example.com.", &["93.184.216.34".parse().unwrap()]);
/// assert_eq!(names.lookup("::ffff:93.184.216.34".parse().unwrap()).as_deref(), Some("api.example.com"));
/// names.record("127.1", &["127.0.0.1".parse().unwrap()]); // IP spellings are not names
/// assert_eq!(names.lookup("127.0.0.1".parse().unwrap()), None);
/// ```
#[derive(Debug)]
pub struct NameCache {
    capacity: usize,
    map: Mutex<HashMap<IpAddr, String>>,
}

impl NameCache {
    /// A cache holding at most `capacity` addresses.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Records that `name` resolved to `addrs`. Names that are IP literals in any spelling
    /// (`127.1`, `0x7f.1`, `[::1]`) are ignored.
    pub fn record(&self, name: &str, addrs: &[IpAddr]) {
        let Some(name) = normalise_name(name) else {
            return;
        };
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() + addrs.len() > self.capacity {
            map.clear();
        }
        for ip in addrs {
            map.insert(ip.to_canonical(), name.clone());
        }
    }

    /// The name `ip` was last resolved from.
    pub fn lookup(&self, ip: IpAddr) -> Option<String> {
        let map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&ip.to_canonical()).cloned()
    }

    /// How many addresses are attributed.
    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no address is attributed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A host name as the host rules compare it: lowercase ASCII (punycode) without a
/// trailing dot; `None` for IP literals in any spelling (`127.1`, `0x7f.1`, `[::1]`) and
/// for text that is no host name.
///
/// ```
/// use portcullis::guard::normalise_name;
/// assert_eq!(normalise_name("API.Example.COM.").as_deref(), Some("api.example.com"));
/// assert_eq!(normalise_name("2130706433"), None);
/// assert_eq!(normalise_name("::ffff:127.0.0.1"), None);
/// ```
pub fn normalise_name(name: &str) -> Option<String> {
    let trimmed = name.trim();
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(trimmed);
    if unbracketed.parse::<IpAddr>().is_ok() {
        return None;
    }
    let without_dot = trimmed.strip_suffix('.').unwrap_or(trimmed);
    match url::Host::parse(without_dot) {
        Ok(url::Host::Domain(d)) if !d.is_empty() => Some(d),
        Ok(_) => None,
        Err(_) => None,
    }
}
