//! A run remembers: the state store keeps runs, findings, judged and computed metrics, each
//! table's columns, incidents and silences between runs ([`store`]); the incident lifecycle
//! decides what a run opens, keeps, resolves and sends ([`incident`]).
//!
//! A finding's *fingerprint* names its rule, check and subject (a channel, a column), never
//! its date: the same problem on the next day is the same incident.

pub mod db;
pub mod incident;
mod sqlite;
pub mod store;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::config::StateConfig;
use crate::rule::{Finding, Severity};
use crate::scan::TableScan;

/// The environment variable that names the state store, a file or a database URL (below
/// `--state`, above `state.path`).
pub const STATE_ENV: &str = "VIGIL_STATE";

/// The rule id of the findings the state store adds (schema changes).
pub const STATE_RULE: &str = "state";

/// Characters of a PagerDuty `dedup_key`.
pub const MAX_DEDUP_KEY: usize = 255;

/// A finding's fingerprint: `rule/check`, then `/subject` when it has one.
pub fn fingerprint(f: &Finding) -> String {
    match &f.subject {
        Some(subject) => format!("{}/{}/{subject}", f.rule, f.check),
        None => format!("{}/{}", f.rule, f.check),
    }
}

/// The alert dedup key of a fingerprint: `vigil:<warehouse id>:<fingerprint>`, at most
/// [`MAX_DEDUP_KEY`] bytes (a longer key keeps its start and ends with a hash of the whole, so
/// it stays unique and the same on every run).
pub fn dedup_key(warehouse_id: &str, fingerprint: &str) -> String {
    let key = format!("vigil:{warehouse_id}:{fingerprint}");
    if key.len() <= MAX_DEDUP_KEY {
        return key;
    }
    let hash = format!("~{:016x}", fnv1a(key.as_bytes()));
    let mut end = MAX_DEDUP_KEY - hash.len();
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{hash}", &key[..end])
}

/// FNV-1a, 64 bits: a hash that never changes between runs, versions or platforms.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The warehouse's id in the store and in dedup keys: `state.warehouse_id`, else a hash of the
/// location as shown (no password), so two warehouses never share incidents.
pub fn warehouse_id(config: &StateConfig, described: &str) -> String {
    config
        .warehouse_id
        .clone()
        .unwrap_or_else(|| format!("{:012x}", fnv1a(described.as_bytes()) >> 16))
}

/// Where a state store is: a SQLite file, or a database URL such as `postgres://...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    File(PathBuf),
    /// A database URL (shown without its password).
    Url(String),
}

impl Location {
    /// A URL when `text` has a scheme (`postgres://...`), else a file.
    pub fn parse(text: &OsStr) -> Location {
        match text.to_str() {
            Some(url) if url.contains("://") => Location::Url(url.to_string()),
            _ => Location::File(PathBuf::from(text)),
        }
    }

    /// The file of a SQLite store.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Location::File(path) => Some(path),
            Location::Url(_) => None,
        }
    }
}

impl fmt::Display for Location {
    /// The file, or the URL with any password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Url(url) => f.write_str(&crate::source::redact(url)),
        }
    }
}

/// The store: `--state`, else `VIGIL_STATE`, else `state.path` (a file relative to the reports
/// folder, or a database URL).
pub fn store_location(
    flag: Option<&Path>,
    env: Option<String>,
    config: &StateConfig,
    output_dir: &Path,
) -> Location {
    if let Some(flag) = flag {
        return Location::parse(flag.as_os_str());
    }
    if let Some(env) = env.filter(|v| !v.is_empty()) {
        return Location::parse(OsStr::new(&env));
    }
    match Location::parse(OsStr::new(&config.path)) {
        Location::File(path) => Location::File(output_dir.join(path)),
        url => url,
    }
}

/// The findings of tables whose columns changed since the warehouse's last run that read
/// them: columns added, removed, removed-and-added pairs that look like a rename (same
/// position or similar names), and columns whose type changed (where the source has types:
/// Parquet, PostgreSQL).
pub fn schema_changes(
    previous: &BTreeMap<String, Vec<(String, String)>>,
    scans: &[TableScan],
    severity: Severity,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for scan in scans {
        let (Ok(stats), Some(before)) = (&scan.outcome, previous.get(&scan.table)) else {
            continue;
        };
        let now: Vec<(String, String)> = stats
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    c.clone(),
                    stats.column_types.get(i).cloned().unwrap_or_default(),
                )
            })
            .collect();
        if let Some(finding) = schema_change(&scan.table, before, &now, severity) {
            findings.push(finding);
        }
    }
    findings
}

/// The schema-change finding of one table, if its columns changed.
fn schema_change(
    table: &str,
    before: &[(String, String)],
    now: &[(String, String)],
    severity: Severity,
) -> Option<Finding> {
    let names = |cols: &[(String, String)]| -> Vec<String> {
        cols.iter().map(|(n, _)| n.clone()).collect()
    };
    let (was, is) = (names(before), names(now));
    let retyped: Vec<(String, String, String)> = now
        .iter()
        .filter_map(|(name, kind)| {
            let (_, old) = before.iter().find(|(n, _)| n == name)?;
            (!kind.is_empty() && !old.is_empty() && old != kind)
                .then(|| (name.clone(), old.clone(), kind.clone()))
        })
        .collect();
    if was == is && retyped.is_empty() {
        return None;
    }
    let mut removed: Vec<&String> = was.iter().filter(|c| !is.contains(c)).collect();
    let mut added: Vec<&String> = is.iter().filter(|c| !was.contains(c)).collect();
    let mut renamed = Vec::new();
    for r in removed.clone() {
        let at = was.iter().position(|c| c == r);
        let similar = added.iter().position(|a| {
            is.iter().position(|c| c == *a) == at
                || strsim::normalized_damerau_levenshtein(&a.to_lowercase(), &r.to_lowercase())
                    >= 0.6
        });
        if let Some(i) = similar {
            renamed.push((r, added.remove(i)));
            removed.retain(|c| *c != r);
        }
    }
    let list = |cols: &[&String]| {
        cols.iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("added {}", list(&added)));
    }
    if !removed.is_empty() {
        parts.push(format!("removed {}", list(&removed)));
    }
    if !renamed.is_empty() {
        let pairs: Vec<String> = renamed
            .iter()
            .map(|(r, a)| format!("`{r}` -> `{a}`"))
            .collect();
        parts.push(format!("renamed (it looks like) {}", pairs.join(", ")));
    }
    if !retyped.is_empty() {
        let changes: Vec<String> = retyped
            .iter()
            .map(|(c, old, new)| format!("`{c}` {old} -> {new}"))
            .collect();
        parts.push(format!("retyped {}", changes.join(", ")));
    }
    if parts.is_empty() {
        parts.push("the same columns in another order".into());
    }
    Some(
        Finding::new(
            severity,
            STATE_RULE,
            format!("schema:{table}_columns_changed"),
            format!(
                "Table {table} changed its columns since the last run: {}",
                parts.join("; ")
            ),
        )
        .context(json!({
            "table": table,
            "added": added,
            "removed": removed,
            "renamed": renamed.iter().map(|(r, a)| json!({"from": r, "to": a})).collect::<Vec<_>>(),
            "retyped": retyped.iter().map(|(c, old, new)| json!({"column": c, "from": old, "to": new})).collect::<Vec<_>>(),
            "before": was,
            "now": is,
        })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn schema_changes_name_added_removed_renamed_and_retyped_columns() {
        let before = cols(&[
            ("id", "Int64"),
            ("revenue", "Float64"),
            ("ts", "Utf8"),
            ("old", "Utf8"),
        ]);
        let now = cols(&[
            ("id", "Utf8"),
            ("order_revenue", "Float64"),
            ("ts", "Utf8"),
            ("new_flag", "Boolean"),
        ]);
        let f = schema_change("orders", &before, &now, Severity::Warn).unwrap();
        assert_eq!(f.check, "schema:orders_columns_changed");
        assert_eq!(
            f.message,
            "Table orders changed its columns since the last run: renamed (it looks like) \
             `revenue` -> `order_revenue`, `old` -> `new_flag`; retyped `id` Int64 -> Utf8"
        );
        // CSV has no types: only names count.
        let csv = cols(&[("id", ""), ("revenue", ""), ("ts", ""), ("old", "")]);
        assert!(schema_change("orders", &before, &csv, Severity::Warn).is_none());
        assert!(schema_change("orders", &before, &before, Severity::Warn).is_none());
        let dropped = cols(&[("id", "Int64"), ("ts", "Utf8")]);
        let f = schema_change("orders", &before, &dropped, Severity::Warn).unwrap();
        assert!(
            f.message.ends_with("removed `revenue`, `old`"),
            "{}",
            f.message
        );
    }

    #[test]
    fn a_store_is_a_file_or_a_url_shown_without_its_password() {
        let config = StateConfig::default();
        let out = Path::new("reports");
        assert_eq!(
            store_location(None, None, &config, out),
            Location::File(PathBuf::from("reports/vigil-state.sqlite"))
        );
        let url = "postgres://vigil:s3cret@db:5432/state";
        let at = store_location(None, Some(url.into()), &config, out);
        assert_eq!(at, Location::Url(url.into()));
        assert_eq!(at.to_string(), "postgres://vigil:***@db:5432/state");
        let flag = store_location(
            Some(Path::new("/tmp/s.sqlite")),
            Some(url.into()),
            &config,
            out,
        );
        assert_eq!(flag.file(), Some(Path::new("/tmp/s.sqlite")));
        let configured = StateConfig {
            path: "postgresql://db/state".into(),
            ..StateConfig::default()
        };
        assert_eq!(
            store_location(None, Some(String::new()), &configured, out),
            Location::Url("postgresql://db/state".into())
        );
    }

    #[test]
    fn dedup_keys_are_bounded_unique_and_stable() {
        let short = dedup_key("wh1", "drift/anomaly:channel_share/direct");
        assert_eq!(short, "vigil:wh1:drift/anomaly:channel_share/direct");
        let long_a = dedup_key("wh1", &format!("r/{}a", "é".repeat(200)));
        let long_b = dedup_key("wh1", &format!("r/{}b", "é".repeat(200)));
        assert!(long_a.len() <= MAX_DEDUP_KEY && long_b.len() <= MAX_DEDUP_KEY);
        assert_ne!(long_a, long_b);
        assert_eq!(long_a, dedup_key("wh1", &format!("r/{}a", "é".repeat(200))));
    }
}
