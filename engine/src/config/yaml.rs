//! The one place that parses YAML. Every error carries the line, column and key path.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor,
};
use serde::Deserialize;

use crate::suggest::{closest, enrich_serde_message};

/// A YAML error located in the source text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted key path, e.g. `rules.freshness.tables` (empty at the top level).
    pub path: String,
    /// What is wrong, with a suggestion where one is likely.
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl YamlError {
    fn from_tracked(e: serde_path_to_error::Error<serde_yaml::Error>) -> Self {
        let path = match e.path().to_string() {
            p if p == "." => String::new(),
            p => p,
        };
        let inner = e.into_inner();
        let location = inner.location();
        let mut message = inner.to_string();
        if let Some(loc) = &location {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        // serde_yaml prefixes its own path: the full path, or its parent for an unknown key.
        let parent = path.rfind(['.', '[']).map_or("", |i| &path[..i]);
        for prefix in [path.as_str(), parent] {
            if !prefix.is_empty() {
                if let Some(stripped) = message.strip_prefix(&format!("{prefix}: ")) {
                    message = stripped.to_string();
                    break;
                }
            }
        }
        YamlError {
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            path,
            message: enrich_serde_message(&message),
        }
    }
}

fn tracked<'de, T>(text: &'de str, seed: T) -> Result<T::Value, YamlError>
where
    T: DeserializeSeed<'de>,
{
    let mut track = serde_path_to_error::Track::new();
    let de = serde_yaml::Deserializer::from_str(text);
    let de = serde_path_to_error::Deserializer::new(de, &mut track);
    seed.deserialize(de).map_err(|inner| {
        YamlError::from_tracked(serde_path_to_error::Error::new(track.path(), inner))
    })
}

/// Parses a whole document into `T`.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    tracked(text, PhantomData::<T>)
}

/// The top-level keys of a document, or `None` when it is empty or not a mapping.
pub fn top_level_keys(text: &str) -> Result<Option<Vec<String>>, YamlError> {
    let value: serde_yaml::Value = parse(text)?;
    Ok(value.as_mapping().map(|m| {
        m.keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect()
    }))
}

/// The entries of the top-level `plugins:` list, if any.
pub fn plugin_list(text: &str) -> Result<Vec<String>, YamlError> {
    tracked(
        text,
        Focus {
            section: "plugins",
            inner: PhantomData::<Vec<String>>,
        },
    )
    .map(Option::unwrap_or_default)
}

/// Checks that every key under `rules:` is one of `known`, pointing at the first that is not.
pub fn check_rule_ids(text: &str, known: &[&str]) -> Result<Vec<String>, YamlError> {
    tracked(
        text,
        Focus {
            section: "rules",
            inner: RuleIds { known },
        },
    )
    .map(Option::unwrap_or_default)
}

/// Deserializes `rules.<id>` with `build`, which may reject the params with a message; errors
/// point into that section.
pub fn parse_rule_section<P, R>(
    text: &str,
    id: &str,
    build: impl FnOnce(P) -> Result<R, String>,
) -> Result<Option<R>, YamlError>
where
    P: DeserializeOwned,
{
    let section = Build {
        build,
        params: PhantomData::<P>,
    };
    tracked(
        text,
        Focus {
            section: "rules",
            inner: Focus {
                section: id,
                inner: section,
            },
        },
    )
    .map(|found| found.flatten().flatten())
}

/// Deserializes only the value of key `section` of a mapping, skipping the other keys.
struct Focus<'s, S> {
    section: &'s str,
    inner: S,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Focus<'_, S> {
    type Value = Option<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Focus<'_, S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut inner = Some(self.inner);
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            match inner.take() {
                Some(seed) if key == self.section => found = Some(map.next_value_seed(seed)?),
                other => {
                    inner = other;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

/// Reads the keys of the `rules:` mapping, refusing unknown rule ids at the key.
struct RuleIds<'k> {
    known: &'k [&'k str],
}

impl<'de> DeserializeSeed<'de> for RuleIds<'_> {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RuleIds<'_> {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping from rule id to the rule's settings")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ids = Vec::new();
        while let Some(id) = map.next_key_seed(KnownId { known: self.known })? {
            map.next_value::<IgnoredAny>()?;
            ids.push(id);
        }
        Ok(ids)
    }
}

struct KnownId<'k> {
    known: &'k [&'k str],
}

impl<'de> DeserializeSeed<'de> for KnownId<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        // Checked inside the scalar's visitor, so the error carries the key's own position.
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KnownId<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a rule id")
    }

    fn visit_str<E: de::Error>(self, id: &str) -> Result<Self::Value, E> {
        if self.known.contains(&id) {
            return Ok(id.to_string());
        }
        let hint = closest(id, self.known.iter().copied())
            .map(|best| format!("; did you mean `{best}`?"))
            .unwrap_or_default();
        Err(E::custom(format_args!(
            "unknown rule `{id}`{hint} (registered rules: {}; a plugin's rules need its --plugin)",
            self.known.join(", ")
        )))
    }
}

/// Deserializes a rule's params and builds the rule from them.
struct Build<F, P> {
    build: F,
    params: PhantomData<P>,
}

impl<'de, P, R, F> DeserializeSeed<'de> for Build<F, P>
where
    P: DeserializeOwned,
    F: FnOnce(P) -> Result<R, String>,
{
    type Value = Option<R>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        // An empty section (`freshness:`) means "all defaults", like `freshness: {}`.
        let params = Option::<P>::deserialize(d)?;
        let params = match params {
            Some(p) => p,
            None => serde_json::from_value(serde_json::Value::Object(Default::default()))
                .map_err(de::Error::custom)?,
        };
        (self.build)(params).map(Some).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params {
        #[serde(default)]
        floor: u32,
        #[serde(default)]
        tables: Vec<String>,
    }

    #[test]
    fn locates_unknown_keys_with_path_and_suggestion() {
        let text = "version: 1\nrules:\n  fresh:\n    floor: 1\n    tabels: [a]\n";
        let err = parse_rule_section::<Params, _>(text, "fresh", Ok).unwrap_err();
        assert_eq!((err.line, err.column), (Some(5), Some(5)));
        assert_eq!(err.path, "rules.fresh.tabels");
        assert!(err.message.starts_with("unknown field `tabels`"), "{err}");
        assert!(err.message.ends_with("did you mean `tables`?"), "{err}");
    }

    #[test]
    fn locates_type_errors() {
        let text = "rules:\n  fresh:\n    floor: lots\n";
        let err = parse_rule_section::<Params, _>(text, "fresh", Ok).unwrap_err();
        assert_eq!(
            (err.line, err.column, err.path.as_str()),
            (Some(3), Some(12), "rules.fresh.floor")
        );
        assert_eq!(err.message, "invalid type: string \"lots\", expected u32");
    }

    #[test]
    fn build_errors_point_at_the_section() {
        let text = "rules:\n  fresh:\n    floor: 3\n";
        let err = parse_rule_section::<Params, ()>(text, "fresh", |_| Err("floor too high".into()))
            .unwrap_err();
        assert_eq!(err.path, "rules.fresh");
        assert_eq!(err.message, "floor too high");
        assert_eq!((err.line, err.column), (Some(2), Some(3)));
    }

    #[test]
    fn empty_section_means_defaults_and_absent_section_means_none() {
        let text = "rules:\n  fresh:\n  other: {}\n";
        let built = parse_rule_section::<Params, _>(text, "fresh", |p| Ok(p.floor)).unwrap();
        assert_eq!(built, Some(0));
        let absent = parse_rule_section::<Params, _>(text, "missing", |p| Ok(p.floor)).unwrap();
        assert_eq!(absent, None);
    }

    #[test]
    fn unknown_rule_ids_are_refused_at_the_key() {
        let text = "rules:\n  freshness: {}\n  revnue: {}\n";
        let err = check_rule_ids(text, &["freshness", "revenue"]).unwrap_err();
        assert_eq!((err.line, err.column), (Some(3), Some(3)));
        assert!(
            err.message
                .contains("unknown rule `revnue`; did you mean `revenue`?"),
            "{err}"
        );
        let ids = check_rule_ids("rules:\n  revenue:\n", &["revenue"]).unwrap();
        assert_eq!(ids, ["revenue"]);
        assert!(check_rule_ids("version: 1\n", &[]).unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = top_level_keys("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.line.is_some(), "{err:?}");
    }
}
