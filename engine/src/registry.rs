//! Rule registration: the typed [`RuleSpec`] a rule crate implements, the const
//! [`RuleRegistration`] that `register_rule!` submits through `inventory`, and the [`Registry`]
//! the runtime builds from them (sorted by id, duplicates rejected with both origins named).

use std::fmt;
use std::path::PathBuf;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;

use crate::config::yaml::{self, YamlError};
use crate::legacy::LegacyConfig;
use crate::rule::{Rule, Severity};

/// Static description of a rule, filled by `register_rule!` from the rule's `///` docs.
#[derive(Clone, Copy, Debug)]
pub struct RuleMeta {
    /// Stable id: the rule's config section and the prefix users see in `vigil rules`.
    pub id: &'static str,
    /// The rule's documentation in Markdown; its first line is the one-line summary.
    pub docs: &'static str,
    /// The severity of the rule's main check.
    pub default_severity: Severity,
    /// A YAML example of the rule's config section (the body under `rules.<id>:`).
    pub example: &'static str,
}

impl RuleMeta {
    /// The first line of the docs.
    pub fn summary(&self) -> &'static str {
        self.docs
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
    }
}

/// Id, docs, default severity and example of a rule type; `register_rule!` implements it.
pub trait Described {
    /// The rule's static description.
    const META: RuleMeta;
}

/// The typed half of a rule: implemented once per rule type, next to `register_rule!`.
pub trait RuleSpec: Rule + Described + Sized + 'static {
    /// The rule's config section, deserialized strictly (deny unknown fields, documented fields).
    type Params: DeserializeOwned + JsonSchema;

    /// Builds the rule from its params; an `Err` is a config error shown with the section's path.
    fn new(params: Self::Params) -> Result<Self, String>;

    /// The params equivalent to a reference-format config, or `None` when the reference has no
    /// section for this rule.
    fn from_legacy(legacy: &LegacyConfig) -> Option<Self::Params> {
        let _ = legacy;
        None
    }
}

/// Builds a rule from its section `rules.<id>` of a YAML config text (`None` when absent).
pub type BuildFn = fn(&str) -> Result<Option<Box<dyn Rule>>, YamlError>;

/// Builds a rule with default params.
pub type DefaultBuildFn = fn() -> Result<Box<dyn Rule>, String>;

/// Builds a rule from a reference-format config, if that format configures it.
pub type LegacyBuildFn = fn(&LegacyConfig) -> Option<Result<Box<dyn Rule>, String>>;

/// What `register_rule!` submits: const data and function pointers only.
#[derive(Clone, Copy)]
pub struct RuleRegistration {
    /// Id, docs, default severity, example.
    pub meta: RuleMeta,
    /// The cargo package that registered the rule.
    pub package: &'static str,
    /// The JSON schema of the params.
    pub params_schema: fn(&mut SchemaGenerator) -> Schema,
    /// Builds the rule from its config section.
    pub build: BuildFn,
    /// Builds the rule with default params.
    pub build_default: DefaultBuildFn,
    /// Builds the rule from a reference-format config.
    pub build_legacy: LegacyBuildFn,
}

impl RuleRegistration {
    /// The registration of rule type `R`, registered by package `package`.
    pub const fn of<R: RuleSpec>(package: &'static str) -> Self {
        RuleRegistration {
            meta: R::META,
            package,
            params_schema: |g| g.subschema_for::<R::Params>(),
            build: |text| {
                yaml::parse_rule_section(text, R::META.id, R::new)
                    .map(|built| built.map(|r| Box::new(r) as Box<dyn Rule>))
            },
            build_default: || {
                let params = serde_json::from_value(serde_json::json!({}))
                    .map_err(|e| format!("rule `{}` needs settings: {e}", R::META.id))?;
                R::new(params).map(|r| Box::new(r) as Box<dyn Rule>)
            },
            build_legacy: |legacy| {
                R::from_legacy(legacy).map(|p| R::new(p).map(|r| Box::new(r) as Box<dyn Rule>))
            },
        }
    }
}

inventory::collect!(RuleRegistration);

/// Registers a rule type with vigil. Put it next to the rule's type, with the rule's docs:
///
/// ```ignore
/// vigil_engine::register_rule! {
///     /// One-line summary.
///     ///
///     /// ## What it checks
///     /// ...
///     Freshness {
///         id: "freshness",
///         default_severity: Error,
///         example: "expected_lag_days: 1",
///     }
/// }
/// ```
///
/// The type must implement [`Rule`] and [`RuleSpec`]; this macro implements [`Described`].
#[macro_export]
macro_rules! register_rule {
    (
        $(#[doc = $doc:literal])*
        $ty:ident {
            id: $id:literal,
            default_severity: $sev:ident,
            example: $example:expr $(,)?
        }
    ) => {
        impl $crate::registry::Described for $ty {
            const META: $crate::registry::RuleMeta = $crate::registry::RuleMeta {
                id: $id,
                docs: concat!($($doc, "\n"),*),
                default_severity: $crate::rule::Severity::$sev,
                example: $example,
            };
        }
        $crate::inventory::submit! {
            $crate::registry::RuleRegistration::of::<$ty>(env!("CARGO_PKG_NAME"))
        }
    };
}

/// Where a rule comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Linked into the binary from a cargo package (`vigil-rules-builtin` is "builtin").
    Linked(&'static str),
    /// Loaded at run time from a dynamic library.
    Plugin(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Linked("vigil-rules-builtin") => f.write_str("builtin"),
            Origin::Linked(package) => write!(f, "linked crate {package}"),
            Origin::Plugin(path) => write!(f, "plugin {}", path.display()),
        }
    }
}

/// A registration with its origin.
#[derive(Clone, Copy, Debug)]
pub struct RegisteredRule<'a> {
    /// The registration.
    pub registration: &'a RuleRegistration,
    /// Where it comes from.
    pub origin: &'a Origin,
}

impl fmt::Debug for RuleRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleRegistration")
            .field("id", &self.meta.id)
            .field("package", &self.package)
            .finish_non_exhaustive()
    }
}

/// Two registrations with the same id.
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
    entries: Vec<(RuleRegistration, Origin)>,
}

impl Registry {
    /// The rules linked into this binary through `register_rule!`.
    pub fn linked() -> Result<Self, DuplicateRule> {
        let mut registry = Registry::default();
        for registration in inventory::iter::<RuleRegistration> {
            registry.add(*registration, Origin::Linked(registration.package))?;
        }
        Ok(registry)
    }

    /// Adds a rule, keeping the order by id; refuses a duplicate id.
    pub fn add(
        &mut self,
        registration: RuleRegistration,
        origin: Origin,
    ) -> Result<(), DuplicateRule> {
        let id = registration.meta.id;
        match self.entries.binary_search_by(|(r, _)| r.meta.id.cmp(id)) {
            Ok(existing) => Err(DuplicateRule {
                id: id.to_string(),
                first: self.entries[existing].1.clone(),
                second: origin,
            }),
            Err(at) => {
                self.entries.insert(at, (registration, origin));
                Ok(())
            }
        }
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<RegisteredRule<'_>> {
        self.iter().find(|r| r.registration.meta.id == id)
    }

    /// All rules, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = RegisteredRule<'_>> {
        self.entries
            .iter()
            .map(|(registration, origin)| RegisteredRule {
                registration,
                origin,
            })
    }

    /// All ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.iter().map(|(r, _)| r.meta.id)
    }
}
