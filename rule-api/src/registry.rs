//! Rule registration: the typed [`RuleSpec`] a rule crate implements, and the const
//! [`RuleRegistration`] that [`register_rule!`](crate::register_rule) submits through
//! `inventory`. The engine builds its registry from these (and from plugins' descriptions).

use std::fmt;

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

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

/// A rule's description as data: what `vigil rules` and `explain` show and what a plugin
/// sends. Built from [`RuleMeta`] and the params' JSON schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RuleInfo {
    /// Stable id.
    pub id: String,
    /// Markdown docs; the first non-empty line is the summary.
    pub docs: String,
    /// The severity of the rule's main check.
    pub default_severity: Severity,
    /// A YAML example of the rule's config section.
    pub example: String,
    /// The cargo package that registered the rule.
    pub package: String,
    /// The JSON schema (draft-07) of the rule's params: a root schema whose named subschemas
    /// are under its own `definitions` (refs `#/definitions/<name>`).
    pub params_schema: Value,
}

impl RuleInfo {
    /// The first non-empty line of the docs.
    pub fn summary(&self) -> &str {
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

/// Why a rule's params were refused, located where possible.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ParamsError {
    /// Dotted path of the offending key inside the rule's section (`tables.sessions.floor`,
    /// `models[1]`); empty for the section as a whole.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// Whether the offending key itself (an unknown field) is meant, rather than its value.
    #[serde(default)]
    pub at_key: bool,
}

impl ParamsError {
    /// An error about the section as a whole.
    pub fn new(message: impl Into<String>) -> Self {
        ParamsError {
            path: String::new(),
            message: message.into(),
            at_key: false,
        }
    }

    /// An error about the value of one field (dotted path inside the section), e.g.
    /// `ParamsError::at("max_violation_rate", "is a share between 0 and 1")`.
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        ParamsError {
            path: path.into(),
            message: message.into(),
            at_key: false,
        }
    }
}

impl ParamsError {
    /// The same error for a section nested under `prefix` (`zero_revenue_spike`).
    pub fn under(self, prefix: &str) -> Self {
        let path = match self.path.as_str() {
            "" => prefix.to_string(),
            path => format!("{prefix}.{path}"),
        };
        ParamsError { path, ..self }
    }
}

impl From<String> for ParamsError {
    fn from(message: String) -> Self {
        ParamsError::new(message)
    }
}

impl From<&str> for ParamsError {
    fn from(message: &str) -> Self {
        ParamsError::new(message)
    }
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParamsError {}

/// The typed half of a rule: implemented once per rule type, next to `register_rule!`.
pub trait RuleSpec: Rule + Described + Sized + 'static {
    /// The rule's config section, deserialized strictly (deny unknown fields, documented fields).
    type Params: DeserializeOwned + JsonSchema;

    /// Builds the rule from its params; an `Err` is a config error shown at the rule's section
    /// (or at the field [`ParamsError::at`] names).
    fn new(params: Self::Params) -> Result<Self, ParamsError>;
}

/// Builds a rule from its params as JSON (`null`: the section is empty, use the defaults).
pub type BuildFn = fn(Value) -> Result<Box<dyn Rule>, ParamsError>;

/// What `register_rule!` submits: const data and function pointers only.
#[derive(Clone, Copy)]
pub struct RuleRegistration {
    /// Id, docs, default severity, example.
    pub meta: RuleMeta,
    /// The cargo package that registered the rule.
    pub package: &'static str,
    /// The JSON schema of the params (a root schema with its own `definitions`).
    pub params_schema: fn() -> Value,
    /// Builds the rule from its params.
    pub build: BuildFn,
}

impl RuleRegistration {
    /// The registration of rule type `R`, registered by package `package`.
    pub const fn of<R: RuleSpec>(package: &'static str) -> Self {
        RuleRegistration {
            meta: R::META,
            package,
            params_schema: params_schema::<R::Params>,
            build: |params| {
                let params: R::Params = parse_params(params)?;
                R::new(params).map(|r| Box::new(r) as Box<dyn Rule>)
            },
        }
    }

    /// The rule's description as data.
    pub fn info(&self) -> RuleInfo {
        RuleInfo {
            id: self.meta.id.to_string(),
            docs: self.meta.docs.to_string(),
            default_severity: self.meta.default_severity,
            example: self.meta.example.to_string(),
            package: self.package.to_string(),
            params_schema: (self.params_schema)(),
        }
    }
}

impl fmt::Debug for RuleRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleRegistration")
            .field("id", &self.meta.id)
            .field("package", &self.package)
            .finish_non_exhaustive()
    }
}

inventory::collect!(RuleRegistration);

/// The rules registered with `register_rule!` in this binary (or, inside a plugin, in it).
pub fn registered() -> impl Iterator<Item = &'static RuleRegistration> {
    inventory::iter::<RuleRegistration>.into_iter()
}

/// The JSON schema (draft-07) of a params type: a root schema with its named subschemas under
/// its own `definitions`.
pub fn params_schema<P: JsonSchema>() -> Value {
    let mut schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<P>()
        .to_value();
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
    }
    schema
}

/// Reads a section or list whose empty value (the key with nothing after it) means the same as
/// the key left out: its default. Pair `#[serde(default, deserialize_with = "empty_is_default")]`
/// with `#[schemars(with = "Option<T>")]` so that the schema accepts the empty value too.
pub fn empty_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    empty_or(d, T::default)
}

/// Like [`empty_is_default`], for a field whose default is not its type's (a non-empty list or
/// mapping): `default` gives it, e.g. `|| Params::default().steps`.
pub fn empty_or<'de, D, T>(d: D, default: impl FnOnce() -> T) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_else(default))
}

/// Deserializes params from JSON (`null` = all defaults), with the path of the offending key.
pub fn parse_params<P: DeserializeOwned>(params: Value) -> Result<P, ParamsError> {
    let params = match params {
        Value::Null => Value::Object(Default::default()),
        other => other,
    };
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = match e.path().to_string() {
            p if p == "." => String::new(),
            p => p,
        };
        let message = e.into_inner().to_string();
        let (path, bad_key) = name_bad_key(path, &message);
        ParamsError {
            at_key: bad_key || message.starts_with("unknown field"),
            path,
            message,
        }
    })
}

/// `serde_path_to_error` prints a map key it could not read as `?` (`metrics.?`): puts the key
/// in when the message quotes it (an unknown variant), else leaves it out. Also says whether
/// the path ends at such a key.
pub fn name_bad_key(path: String, message: &str) -> (String, bool) {
    let Some(parent) = path.strip_suffix('?') else {
        return (path, false);
    };
    let parent = parent.trim_end_matches('.');
    let quoted = message
        .strip_prefix("unknown variant `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(key, _)| key);
    let path = match quoted {
        Some(key) if parent.is_empty() => key.to_string(),
        Some(key) => format!("{parent}.{key}"),
        None => parent.to_string(),
    };
    (path, true)
}

/// Registers a rule type with vigil. Put it next to the rule's type, with the rule's docs:
///
/// ```ignore
/// vigil_rule_api::register_rule! {
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
