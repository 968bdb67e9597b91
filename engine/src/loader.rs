//! Loading a config file: the native format or the reference monitor's (translated by
//! [`crate::legacy`]), every configured rule built from its params through the [`Registry`],
//! and the checks that need the rules' plans. The config types themselves ([`crate::config`])
//! know nothing of the registry or the reference format.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::config::yaml::{self, YamlError};
use crate::config::{unlocated, Config, ConfigError, ConfigFile, ConfigFormat, ConfiguredRule};
use crate::legacy::LegacyConfig;
use crate::registry::Registry;

/// The plugin libraries a config file lists under `plugins:`, resolved against its folder.
pub fn plugin_paths(path: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let located = |error| ConfigError {
        file: path.to_path_buf(),
        error,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| located(unlocated("", format!("cannot read config: {e}"))))?;
    let base = path.parent().unwrap_or(Path::new(""));
    Ok(yaml::plugin_list(&text)
        .map_err(located)?
        .into_iter()
        .map(|p| base.join(p))
        .collect())
}

/// The largest config file vigil reads.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

impl Config {
    /// Reads and validates a config file (no data access).
    pub fn load(path: &Path, registry: &Registry) -> Result<Config, ConfigError> {
        let refused = |message: String| ConfigError {
            file: path.to_path_buf(),
            error: unlocated("", message),
        };
        // Only a regular file, and at most MAX_CONFIG_BYTES of it: a pipe or a device never
        // ends.
        let file = std::fs::metadata(path)
            .and_then(|meta| match meta.is_file() {
                true => std::fs::File::open(path),
                false => Err(std::io::Error::other("not a regular file")),
            })
            .map_err(|e| refused(format!("cannot read config: {e}")))?;
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(file, MAX_CONFIG_BYTES + 1),
            &mut text,
        )
        .map_err(|e| refused(format!("cannot read config: {e}")))?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(refused(format!(
                "the config is larger than {} KiB; vigil reads configs up to that size",
                MAX_CONFIG_BYTES / 1024
            )));
        }
        Config::from_text(path, &text, registry)
    }

    /// Validates config text that came from `path`.
    pub fn from_text(path: &Path, text: &str, registry: &Registry) -> Result<Config, ConfigError> {
        let located = |error| ConfigError {
            file: path.to_path_buf(),
            error,
        };
        let keys = yaml::top_level_keys(text).map_err(located)?;
        let Some(keys) = keys else {
            let only_comments = text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
            let what = if only_comments {
                "the config is empty; start from schema/examples/puffy.yml"
            } else {
                "the config must be a mapping of sections (tables, rules, operations, ...)"
            };
            return Err(located(unlocated("", what.into())));
        };
        yaml::check_finite(text).map_err(located)?;
        let mut config = if keys.iter().any(|k| k == "schemas") {
            Config::from_reference(path, text, registry)
        } else {
            Config::from_native(path, text, registry)
        }
        .map_err(located)?;
        // A date taken through a lookup is written as the looked-up table writes it.
        let looked_up: Vec<(String, crate::timestamp::NaiveTimestamps)> = config
            .tables
            .iter()
            .filter_map(|(name, table)| {
                let (from, _) = table.date_column.as_deref()?.split_once('.')?;
                let source = table.lookups.iter().find(|l| l.table == from)?;
                Some((
                    name.clone(),
                    config.tables.get(&source.table)?.naive_timestamps,
                ))
            })
            .collect();
        for (name, naive) in looked_up {
            if let Some(table) = config.tables.get_mut(&name) {
                table.naive_timestamps = naive;
            }
        }
        config
            .check_tables()
            .map_err(|e| match e.line {
                Some(_) => e,
                None => yaml::error_at(text, &e.path, e.message),
            })
            .map_err(located)?;
        if let Some((path, message)) = config.alert_routing.out_of_range() {
            return Err(located(yaml::error_at(text, path, message)));
        }
        config.warnings = config.rule_warnings(text);
        Ok(config)
    }

    /// What each rule warns of, located in the text (native format) or named by rule (the
    /// reference format, whose keys the rules do not know). A rule that panics warns of nothing
    /// here; the run reports it.
    fn rule_warnings(&self, text: &str) -> Vec<YamlError> {
        let mut located = Vec::new();
        for configured in &self.rules {
            let warnings = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                configured.rule.warnings()
            }));
            for warning in warnings.unwrap_or_default() {
                located.push(match self.format {
                    ConfigFormat::Native => yaml::params_error(text, &configured.id, &warning),
                    ConfigFormat::Reference => {
                        unlocated("", format!("rule `{}`: {warning}", configured.id))
                    }
                });
            }
        }
        located
    }

    fn from_native(path: &Path, text: &str, registry: &Registry) -> Result<Config, YamlError> {
        let file: ConfigFile = yaml::parse_as_json(text)?;
        let mut rules = Vec::new();
        let known: Vec<&str> = registry.ids().collect();
        if let Some(ids) = yaml::check_rule_ids(text, &known)? {
            for id in ids {
                let entry = registry.get(&id).expect("id checked against the registry");
                let params = yaml::rule_section(text, &id)?;
                let rule = entry
                    .build(params)
                    .map_err(|e| yaml::params_error(text, &id, &e))?;
                rules.push(ConfiguredRule {
                    id,
                    origin: entry.origin.clone(),
                    rule,
                });
            }
        } else {
            for entry in registry.iter() {
                let id = entry.info.id.clone();
                let rule = entry
                    .build(serde_json::Value::Null)
                    .map_err(|e| unlocated(&format!("rules.{id}"), e.to_string()))?;
                rules.push(ConfiguredRule {
                    id,
                    origin: entry.origin.clone(),
                    rule,
                });
            }
        }
        Ok(Config {
            path: path.to_path_buf(),
            format: ConfigFormat::Native,
            run: file.run,
            tables: file.tables,
            rules,
            operations: file.operations,
            alert_routing: file.alert_routing,
            state: file.state,
            warnings: Vec::new(),
        })
    }

    fn from_reference(path: &Path, text: &str, registry: &Registry) -> Result<Config, YamlError> {
        let legacy: LegacyConfig = yaml::parse_as_json(text)?;
        let parts = legacy.into_parts();
        let mut rules = Vec::new();
        for (id, params) in legacy.rule_params() {
            let Some(entry) = registry.get(id) else {
                continue;
            };
            let rule = entry
                .build(params)
                .map_err(|e| unlocated("", format!("rule `{id}`: {e}")))?;
            rules.push(ConfiguredRule {
                id: id.to_string(),
                origin: entry.origin.clone(),
                rule,
            });
        }
        Ok(Config {
            path: path.to_path_buf(),
            format: ConfigFormat::Reference,
            run: parts.run,
            tables: parts.tables,
            rules,
            operations: parts.operations,
            alert_routing: parts.alert_routing,
            state: crate::config::StateConfig::default(),
            warnings: Vec::new(),
        })
    }

    /// Lookups name a configured table without a lookup of its own, with one key per table; a
    /// date column taken through a lookup (`orders.order_ts`) has that lookup; every table a
    /// rule asks for is configured.
    fn check_tables(&self) -> Result<(), YamlError> {
        let mut keys: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, table) in &self.tables {
            for (n, lookup) in table.lookups.iter().enumerate() {
                let path = format!("tables.{name}.lookups[{n}]");
                let problem = match self.tables.get(&lookup.table) {
                    None => Some(format!(
                        "looks up table `{}`, which is not configured{}",
                        lookup.table,
                        crate::suggest::closest(
                            &lookup.table,
                            self.tables.keys().map(String::as_str)
                        )
                        .map(|t| format!("; did you mean `{t}`?"))
                        .unwrap_or_default()
                    )),
                    Some(_) if lookup.table == *name => {
                        Some("a table cannot look itself up".into())
                    }
                    Some(other) if !other.lookups.is_empty() => Some(format!(
                        "looks up `{}`, which has lookups itself; lookups do not chain",
                        lookup.table
                    )),
                    Some(_) => match keys.insert(&lookup.table, lookup.foreign_key()) {
                        Some(key) if key != lookup.foreign_key() => Some(format!(
                            "looks up `{}` by `{}`, but another lookup uses `{key}`",
                            lookup.table,
                            lookup.foreign_key()
                        )),
                        _ => None,
                    },
                };
                if let Some(message) = problem {
                    return Err(unlocated(&path, message));
                }
            }
            // After the lookups: a misspelt lookup is the cause to name.
            if let Some((from, column)) =
                table.date_column.as_deref().and_then(|c| c.split_once('.'))
            {
                let lookup = table.lookups.iter().find(|l| l.table == from);
                let problem = match lookup {
                    None => Some(format!(
                        "`{from}.{column}` is a column taken through a lookup, but this table has \
                         no lookup of `{from}`: add `lookups: [{{table: {from}, key: ..., \
                         columns: [{column}]}}]`"
                    )),
                    Some(l) if !l.columns.iter().any(|c| c == column) => Some(format!(
                        "the lookup of `{from}` does not take `{column}`: add it to its `columns`"
                    )),
                    Some(_) => None,
                };
                if let Some(message) = problem {
                    return Err(unlocated(&format!("tables.{name}.date_column"), message));
                }
            }
        }
        let cx = self.run_ctx(NaiveDate::MIN, self.run.scope);
        for configured in &self.rules {
            // A rule that fails or panics in `plan` is reported by the run as an ERROR finding.
            let plan = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                configured.rule.plan(&cx)
            }));
            for request in plan.ok().and_then(Result::ok).unwrap_or_default() {
                if !self.tables.contains_key(&request.table) {
                    let configured_tables: Vec<&str> =
                        self.tables.keys().map(String::as_str).collect();
                    return Err(unlocated(
                        &format!("rules.{}", configured.id),
                        format!(
                            "the rule needs table `{}`, which is not configured under `tables` \
                             (configured: {})",
                            request.table,
                            configured_tables.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
