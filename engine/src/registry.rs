//! The rules available to a run: those linked into the binary (`register_rule!`) and those of
//! loaded plugins, sorted by id, duplicates refused with both origins named.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use std::path::Path;

use vigil_rule_api::protocol::panic_message;
use vigil_rule_api::registry::{registered, BuildFn, ParamsError, RuleInfo};
use vigil_rule_api::rule::{Rule, RuleError, Step};

use crate::failed::Failed;
use crate::plugin::{Plugin, PluginError};

/// Where a rule comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Linked into the binary from a cargo package (`vigil-rules-builtin` is "builtin").
    Linked(String),
    /// Loaded at run time from a dynamic library.
    Plugin(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Linked(package) if package == "vigil-rules-builtin" => f.write_str("builtin"),
            Origin::Linked(package) => write!(f, "linked crate {package}"),
            Origin::Plugin(path) => write!(f, "plugin {}", path.display()),
        }
    }
}

/// How a rule is built.
#[derive(Clone)]
enum Builder {
    Linked(BuildFn),
    Plugin(Arc<Plugin>),
}

/// A rule available to the run.
#[derive(Clone)]
pub struct RegisteredRule {
    /// Id, docs, severity, example, params schema.
    pub info: RuleInfo,
    /// Where it comes from.
    pub origin: Origin,
    builder: Builder,
}

impl fmt::Debug for RegisteredRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegisteredRule({}, {})", self.info.id, self.origin)
    }
}

impl RegisteredRule {
    /// Builds the rule from its params (`null`: defaults). Refused params are a config error;
    /// a rule that panics while it is built becomes a rule that reports an ERROR
    /// `<rule>:build` finding when the run plans it.
    pub fn build(&self, params: Value) -> Result<Box<dyn Rule>, ParamsError> {
        match &self.builder {
            Builder::Linked(build) => match catch_unwind(AssertUnwindSafe(|| build(params))) {
                Ok(built) => built,
                Err(panic) => Ok(Box::new(Failed(RuleError::Panicked {
                    step: Step::Build,
                    message: panic_message(panic.as_ref()),
                }))),
            },
            Builder::Plugin(plugin) => plugin.build(&self.info.id, params),
        }
    }
}

/// Two rules with the same id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateRule {
    /// The id both use.
    pub id: String,
    /// Origin of the rule registered first.
    pub first: Origin,
    /// Origin of the rule that was refused.
    pub second: Origin,
}

impl fmt::Display for DuplicateRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule id `{}` is registered twice: by {} and by {}; rule ids must be unique, rename one",
            self.id, self.first, self.second
        )
    }
}

impl std::error::Error for DuplicateRule {}

/// The rules available to a run, sorted by id.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    entries: Vec<RegisteredRule>,
    /// The plugin libraries loaded, canonical paths (each is loaded once).
    plugins: Vec<PathBuf>,
}

impl Registry {
    /// The rules linked into this binary through `register_rule!`.
    pub fn linked() -> Result<Self, DuplicateRule> {
        let mut registry = Registry::default();
        for registration in registered() {
            registry.add(RegisteredRule {
                info: registration.info(),
                origin: Origin::Linked(registration.package.to_string()),
                builder: Builder::Linked(registration.build),
            })?;
        }
        Ok(registry)
    }

    /// Adds a rule, keeping the order by id; refuses a duplicate id.
    pub fn add(&mut self, rule: RegisteredRule) -> Result<(), DuplicateRule> {
        match self
            .entries
            .binary_search_by(|r| r.info.id.as_str().cmp(&rule.info.id))
        {
            Ok(existing) => Err(DuplicateRule {
                id: rule.info.id,
                first: self.entries[existing].origin.clone(),
                second: rule.origin,
            }),
            Err(at) => {
                self.entries.insert(at, rule);
                Ok(())
            }
        }
    }

    /// Loads a plugin library and adds its rules; returns their ids. A library already loaded
    /// (the same file named twice, on the command line and in `plugins:`) adds nothing.
    pub fn load_plugin(&mut self, path: &Path) -> Result<Vec<String>, PluginError> {
        if let Ok(canonical) = path.canonicalize() {
            if self.plugins.contains(&canonical) {
                return Ok(Vec::new());
            }
        }
        let plugin = Plugin::open(path)?;
        let origin = Origin::Plugin(plugin.path.clone());
        let mut ids = Vec::new();
        for info in &plugin.rules {
            ids.push(info.id.clone());
            self.add(RegisteredRule {
                info: info.clone(),
                origin: origin.clone(),
                builder: Builder::Plugin(Arc::clone(&plugin)),
            })
            .map_err(|e| PluginError {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        }
        self.plugins.push(plugin.path.clone());
        Ok(ids)
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&RegisteredRule> {
        self.entries.iter().find(|r| r.info.id == id)
    }

    /// All rules, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = &RegisteredRule> {
        self.entries.iter()
    }

    /// All ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().map(|r| r.info.id.as_str())
    }
}
