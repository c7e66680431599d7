//! The file's shape, as serde reads it. Every table denies unknown keys; values that later
//! checks may refuse keep their spans so the refusal can point at them.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSpec {
    #[serde(default)]
    pub(super) trust_store: BTreeMap<String, Spanned<TrustStoreSpec>>,
    #[serde(default)]
    pub(super) source: BTreeMap<String, Spanned<SourceSpec>>,
    #[serde(default)]
    pub(super) access: Vec<Spanned<RuleSpec>>,
    #[serde(default)]
    pub(super) egress: BTreeMap<String, Spanned<EgressSpec>>,
    #[serde(default)]
    pub(super) root: BTreeMap<String, Spanned<RootSpec>>,
    #[serde(default)]
    pub(super) command: BTreeMap<String, Spanned<CommandSpec>>,
    #[serde(default)]
    pub(super) rack: Option<Spanned<RackSpec>>,
    #[serde(default)]
    pub(super) guard: Option<Spanned<GuardSpec>>,
    #[serde(default)]
    pub(super) lockdown: BTreeMap<String, Spanned<super::lockdown::LockdownSpec>>,
}

/// One path or a list of paths, each with the span it was written at (`None`: the single
/// string form, whose span is the whole value's).
#[derive(Debug, Default)]
pub(super) struct PathList(pub(super) Vec<(String, Option<Range<usize>>)>);

impl PathList {
    /// The paths with their spans, the single-string form taking `outer`.
    pub(super) fn spanned(&self, outer: &Range<usize>) -> Vec<(String, Range<usize>)> {
        self.0
            .iter()
            .map(|(p, s)| (p.clone(), s.clone().unwrap_or_else(|| outer.clone())))
            .collect()
    }
}

impl<'de> Deserialize<'de> for PathList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PathListVisitor;
        impl<'de> Visitor<'de> for PathListVisitor {
            type Value = PathList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a path or a list of paths")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PathList, E> {
                Ok(PathList(vec![(v.to_owned(), None)]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PathList, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    let span = item.span();
                    out.push((item.into_inner(), Some(span)));
                }
                Ok(PathList(out))
            }
        }
        deserializer.deserialize_any(PathListVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TrustStoreSpec {
    pub(super) ca: Spanned<PathList>,
    pub(super) intermediates: Option<Spanned<PathList>>,
    pub(super) crls: Option<Spanned<PathList>>,
    pub(super) usage: Option<Spanned<String>>,
    pub(super) cache_size: Option<usize>,
    pub(super) require_spiffe: Option<bool>,
    pub(super) deny_unknown_revocation: Option<bool>,
    pub(super) max_intermediates: Option<usize>,
    /// CRL distribution points (`http://`) fetched through `crl_egress`.
    pub(super) crl_urls: Option<Vec<Spanned<String>>>,
    /// Also fetch the CRLs named by the configured CAs' distribution points.
    pub(super) crl_distribution_points: Option<bool>,
    /// The `[egress.NAME]` policy CRL fetches must pass.
    pub(super) crl_egress: Option<Spanned<String>>,
    pub(super) crl_max_bytes: Option<usize>,
    /// Refresh in the background before nextUpdate (default true).
    pub(super) crl_refresh: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SourceSpec {
    pub(super) kind: Spanned<String>,
    #[serde(default)]
    pub(super) trusted_proxies: Vec<Spanned<String>>,
    pub(super) header: Option<Spanned<String>>,
    pub(super) chain_header: Option<Spanned<String>>,
    pub(super) max_cert_bytes: Option<Spanned<usize>>,
    pub(super) max_chain_bytes: Option<Spanned<usize>>,
    pub(super) max_certs: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleSpec {
    pub(super) store: Option<Spanned<String>>,
    pub(super) issuer: Option<String>,
    pub(super) subject: Option<String>,
    pub(super) cn: Option<String>,
    pub(super) dns: Option<String>,
    pub(super) spiffe_id: Option<String>,
    pub(super) spiffe_trust_domain: Option<String>,
    pub(super) spiffe_prefix: Option<String>,
    pub(super) grants: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EgressSpec {
    pub(super) schemes: Option<Vec<Spanned<String>>>,
    pub(super) ports: Option<Vec<Spanned<u16>>>,
    #[serde(default)]
    pub(super) allow_hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) deny_hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_cidrs: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) deny_cidrs: Vec<Spanned<String>>,
    pub(super) strict: Option<bool>,
    pub(super) allow_nat64: Option<bool>,
    pub(super) allow_6to4: Option<bool>,
    pub(super) allow_teredo: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RootSpec {
    pub(super) path: Spanned<String>,
    pub(super) symlinks: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommandSpec {
    pub(super) program: Spanned<String>,
    #[serde(default)]
    pub(super) args: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) params: BTreeMap<String, Spanned<ParamSpec>>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    pub(super) chdir: Option<Spanned<String>>,
    pub(super) chdir_root: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<f64>>,
    pub(super) max_output: Option<usize>,
    pub(super) allow_interpreter: Option<bool>,
    pub(super) rlimits: Option<RlimitsSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ParamSpec {
    #[serde(rename = "type")]
    pub(super) kind: Spanned<String>,
    pub(super) values: Option<Spanned<Vec<String>>>,
    pub(super) choices: Option<Spanned<BTreeMap<String, String>>>,
    pub(super) pattern: Option<Spanned<String>>,
    pub(super) min: Option<Spanned<i64>>,
    pub(super) max: Option<Spanned<i64>>,
    pub(super) root: Option<Spanned<String>>,
    pub(super) max_len: Option<usize>,
    pub(super) allow_leading_dash: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RlimitsSpec {
    pub(super) cpu_seconds: Option<u64>,
    pub(super) address_space: Option<u64>,
    pub(super) file_size: Option<u64>,
    pub(super) processes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RackSpec {
    pub(super) trust_store: Spanned<String>,
    pub(super) source: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) require: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) skip: Vec<String>,
    pub(super) reload_interval: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GuardSpec {
    pub(super) egress: Option<Spanned<String>>,
    pub(super) spawn: Option<Spanned<String>>,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) programs: Option<Spanned<Vec<String>>>,
}
