//! The one place that parses YAML. Every error carries the line, column and key path.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor,
};

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
        let (path, _) = vigil_rule_api::registry::name_bad_key(path, &message);
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
    check_depth(text, MAX_DEPTH)?;
    let mut track = serde_path_to_error::Track::new();
    let de = serde_yaml::Deserializer::from_str(text);
    let de = serde_path_to_error::Deserializer::new(de, &mut track);
    seed.deserialize(de).map_err(|inner| {
        let mut error =
            YamlError::from_tracked(serde_path_to_error::Error::new(track.path(), inner));
        // YAML forbids tabs for indentation; its parser says only that a character is wrong
        // (on the tab's line or the next).
        let tab_indented = |line: usize| {
            text.lines().nth(line).is_some_and(|l| {
                l.chars()
                    .take_while(|c| c.is_whitespace())
                    .any(|c| c == '\t')
            })
        };
        if let Some(line) = error.line {
            if (line.saturating_sub(2)..line).any(tab_indented) {
                error
                    .message
                    .push_str(" (a tab: YAML indents with spaces only)");
            }
        }
        if error.message.contains("more than one document") {
            // The `---` that starts the second document (the first may open with one too).
            // (or the content after a `...` that ended the first).
            let marker = |l: &str, m: &str| {
                l == m || l.starts_with(&format!("{m} ")) || l.starts_with(&format!("{m}\t"))
            };
            let mut content = false;
            let mut ended = false;
            let second = text.lines().position(|l| {
                let blank = l.trim().is_empty() || l.trim_start().starts_with('#');
                let second = (marker(l, "---") && content) || (ended && !blank);
                ended |= marker(l, "...");
                content |= marker(l, "---") || !blank;
                second
            });
            error.path = String::new();
            error.line = second.map(|n| n + 1);
            error.column = second.map(|_| 1);
            error.message =
                "a config is one YAML document; a second one starts here with `---`".into();
        }
        if error.message.contains("repetition limit exceeded") {
            error.path = String::new();
            error.message = "aliases expand too much (each `*alias` repeats its anchor's \
                             content): write the values out"
                .into();
        }
        error
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

/// The rule ids listed under `rules:`, each checked to be one of `known` (an error points at
/// the first that is not); `None` when `rules` is left out or left empty.
pub fn check_rule_ids(text: &str, known: &[&str]) -> Result<Option<Vec<String>>, YamlError> {
    tracked(
        text,
        Focus {
            section: "rules",
            inner: RuleIds { known },
        },
    )
    .map(Option::flatten)
}

/// The section `rules.<id>` as JSON (`null` when empty or absent).
pub fn rule_section(text: &str, id: &str) -> Result<serde_json::Value, YamlError> {
    tracked(
        text,
        Focus {
            section: "rules",
            inner: Focus {
                section: id,
                inner: PhantomData::<serde_json::Value>,
            },
        },
    )
    .map(|found| found.flatten().unwrap_or(serde_json::Value::Null))
}

/// A rule's refusal of its params, located in the text: at the field it names (at the key
/// itself for an unknown field), else at the rule's key under `rules:`.
pub fn params_error(
    text: &str,
    id: &str,
    error: &vigil_rule_api::registry::ParamsError,
) -> YamlError {
    locate_error(text, &format!("rules.{id}"), error)
}

/// Parses a whole document into `T` through the JSON data model, as a JSON schema sees it: a
/// plain `123` is a number and an empty value is null, never text. Errors are located by their
/// key path (at the key itself for an unknown field).
pub fn parse_as_json<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    let value: serde_json::Value = parse(text)?;
    vigil_rule_api::registry::parse_params(value).map_err(|e| locate_error(text, "", &e))
}

/// An error about the node at `error.path` under `prefix` (a dotted path, or empty for the
/// document), located in the text: at the key for an unknown field or a section as a whole.
fn locate_error(
    text: &str,
    prefix: &str,
    error: &vigil_rule_api::registry::ParamsError,
) -> YamlError {
    let shown = match (prefix, error.path.as_str()) {
        (prefix, "") => prefix.to_string(),
        ("", path) => path.to_string(),
        (prefix, path) => format!("{prefix}.{path}"),
    };
    let at_key = error.at_key || error.path.is_empty();
    let (line, column) = locate(text, &parse_path(&shown), at_key);
    YamlError {
        line,
        column,
        path: shown,
        message: enrich_serde_message(&error.message),
    }
}

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Splits `tables.sessions.floor` or `models[1]` into segments.
fn parse_path(path: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !key.is_empty() {
            segments.push(Segment::Key(key.to_string()));
        }
        while let Some(open) = rest.strip_prefix('[') {
            let close = open.find(']').unwrap_or(open.len());
            if let Ok(i) = open[..close].parse() {
                segments.push(Segment::Index(i));
            }
            rest = open.get(close + 1..).unwrap_or("");
        }
    }
    segments
}

/// The marker error raised at the located node.
const HERE: &str = "\u{0}vigil-located";

/// The line and column of the node at `path` (of its key when `at_key`), or of the deepest
/// existing node on the way.
fn locate(text: &str, path: &[Segment], at_key: bool) -> (Option<usize>, Option<usize>) {
    match tracked(text, Locate { path, at_key }) {
        Err(e) if e.message.contains(HERE) => (e.line, e.column),
        _ => (None, None),
    }
}

/// The deepest nesting of mappings and lists a document may have.
pub const MAX_DEPTH: usize = 64;

/// Refuses a document nested deeper than `max` mappings and lists, before any parser walks it
/// (a document of 200,000 nested brackets took minutes). Counts flow brackets outside quotes
/// and comments, and block indentation (one level per indented line deeper than its parent).
pub fn check_depth(text: &str, max: usize) -> Result<(), YamlError> {
    let too_deep = |line: usize, chars_before: usize| YamlError {
        line: Some(line + 1),
        column: Some(chars_before + 1),
        path: String::new(),
        message: format!("the config nests deeper than {max} levels"),
    };
    let mut flow = 0usize;
    let mut indents: Vec<usize> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let content = line.trim_start_matches(' ');
        if flow == 0 && !content.is_empty() && !content.starts_with('#') {
            let indent = line.len() - content.len();
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
            if indents.len() > max {
                return Err(too_deep(n, indent));
            }
        }
        let mut quote: Option<char> = None;
        for (c, ch) in line.char_indices() {
            match (quote, ch) {
                (Some(q), ch) if ch == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(ch),
                (None, '#') if c == 0 || line[..c].ends_with([' ', '\t']) => break,
                (None, '[' | '{') => {
                    flow += 1;
                    if flow + indents.len() > max {
                        return Err(too_deep(n, line[..c].chars().count()));
                    }
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(())
}

/// An error at the node of `path` (a dotted key path) in `text`, located where it exists.
pub fn error_at(text: &str, path: &str, message: String) -> YamlError {
    let (line, column) = locate(text, &parse_path(path), false);
    YamlError {
        line,
        column,
        path: path.to_string(),
        message,
    }
}

/// Refuses `.nan`, `.inf` and `-.inf` anywhere in a document: every setting that takes a number
/// takes a finite one (a NaN threshold would switch its check off without a word).
pub fn check_finite(text: &str) -> Result<(), YamlError> {
    tracked(text, Finite)
}

/// Visits every value, failing at the first non-finite number.
struct Finite;

impl<'de> DeserializeSeed<'de> for Finite {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Finite {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // A key read as a value, so that the error's path names it.
        while map.next_key::<serde_yaml::Value>()?.is_some() {
            map.next_value_seed(Finite)?;
        }
        Ok(())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Finite)?.is_some() {}
        Ok(())
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let (_, variant): (IgnoredAny, _) = data.variant()?;
        de::VariantAccess::newtype_variant_seed(variant, Finite)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        if v.is_finite() {
            return Ok(());
        }
        Err(E::custom(format!(
            "`{}` is not a number vigil can compare with: write a finite number",
            if v.is_nan() {
                ".nan"
            } else if v > 0.0 {
                ".inf"
            } else {
                "-.inf"
            }
        )))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Walks to a node and fails there, so that the YAML parser names its position.
struct Locate<'p> {
    path: &'p [Segment],
    at_key: bool,
}

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Segment::Key(want), rest)) = self.path.split_first() else {
            return Err(de::Error::custom(HERE));
        };
        let fail_at_key = rest.is_empty() && self.at_key;
        while let Some(found) = map.next_key_seed(KeyMatch {
            want,
            fail: fail_at_key,
        })? {
            if found {
                return map.next_value_seed(Locate {
                    path: rest,
                    at_key: self.at_key,
                });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(de::Error::custom(HERE))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Segment::Index(want), rest)) = self.path.split_first() else {
            return Err(de::Error::custom(HERE));
        };
        let mut i = 0;
        loop {
            if i == *want {
                return match seq.next_element_seed(Locate {
                    path: rest,
                    at_key: self.at_key,
                })? {
                    Some(()) => Ok(()),
                    None => Err(de::Error::custom(HERE)),
                };
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(de::Error::custom(HERE));
            }
            i += 1;
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }
}

/// A map key: whether it is the one wanted; fails at the key itself when `fail`.
struct KeyMatch<'w> {
    want: &'w str,
    fail: bool,
}

impl<'de> DeserializeSeed<'de> for KeyMatch<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for KeyMatch<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        if key == self.want && self.fail {
            return Err(E::custom(HERE));
        }
        Ok(key == self.want)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
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
    type Value = Option<Vec<String>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        // `any`: asked for a map, the YAML parser reads an empty value as an empty map.
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RuleIds<'_> {
    type Value = Option<Vec<String>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping from rule id to the rule's settings")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ids = Vec::new();
        while let Some(id) = map.next_key_seed(KnownId { known: self.known })? {
            map.next_value::<IgnoredAny>()?;
            ids.push(id);
        }
        Ok(Some(ids))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    use vigil_rule_api::registry::{parse_params, ParamsError};

    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params {
        #[serde(default)]
        floor: u32,
        #[serde(default)]
        tables: Vec<String>,
    }

    /// Parses `rules.<id>` into `Params` as the registry does, errors located.
    fn section(text: &str, id: &str) -> Result<Params, YamlError> {
        let params = rule_section(text, id)?;
        parse_params::<Params>(params).map_err(|e| params_error(text, id, &e))
    }

    #[test]
    fn locates_unknown_keys_with_path_and_suggestion() {
        let text = "version: 1\nrules:\n  fresh:\n    floor: 1\n    tabels: [a]\n";
        let err = section(text, "fresh").unwrap_err();
        assert_eq!((err.line, err.column), (Some(5), Some(5)));
        assert_eq!(err.path, "rules.fresh.tabels");
        assert!(err.message.starts_with("unknown field `tabels`"), "{err}");
        assert!(err.message.ends_with("did you mean `tables`?"), "{err}");
    }

    #[test]
    fn locates_type_errors_at_the_value() {
        let text = "rules:\n  fresh:\n    floor: lots\n";
        let err = section(text, "fresh").unwrap_err();
        assert_eq!(
            (err.line, err.column, err.path.as_str()),
            (Some(3), Some(12), "rules.fresh.floor")
        );
        assert_eq!(err.message, "invalid type: string \"lots\", expected u32");
        let text = "rules:\n  fresh:\n    tables: [a, 3]\n";
        let err = section(text, "fresh").unwrap_err();
        assert_eq!(err.path, "rules.fresh.tables[1]");
        assert_eq!((err.line, err.column), (Some(3), Some(17)));
    }

    #[test]
    fn a_map_key_that_cannot_be_read_is_named_in_the_path() {
        #[allow(dead_code)]
        #[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
        #[serde(rename_all = "snake_case")]
        enum Metric {
            Sessions,
        }
        #[allow(dead_code)]
        #[derive(Debug, Deserialize)]
        struct Metrics {
            metrics: std::collections::BTreeMap<Metric, u32>,
        }
        let text = "metrics:\n  sessions: 1\n  profit: 2\n";
        let err = parse::<Metrics>(text).unwrap_err();
        assert_eq!(err.path, "metrics.profit");
        assert_eq!((err.line, err.column), (Some(3), Some(3)));
        let json: serde_json::Value = parse(text).unwrap();
        let err = parse_params::<Metrics>(json).unwrap_err();
        assert_eq!((err.path.as_str(), err.at_key), ("metrics.profit", true));
    }

    #[test]
    fn a_rules_own_errors_point_at_its_key_or_at_the_field_it_names() {
        // Not the first rule: the error must land on `fresh`, not on `other`.
        let text = "rules:\n  other: {}\n  fresh:\n    floor: 3\n";
        let err = params_error(text, "fresh", &ParamsError::new("floor too high"));
        assert_eq!(err.path, "rules.fresh");
        assert_eq!(err.message, "floor too high");
        assert_eq!((err.line, err.column), (Some(3), Some(3)));
        let err = params_error(text, "fresh", &ParamsError::at("floor", "at most 2"));
        assert_eq!(err.path, "rules.fresh.floor");
        assert_eq!((err.line, err.column), (Some(4), Some(12)));
    }

    #[test]
    fn empty_section_means_defaults_and_absent_section_means_null() {
        let text = "rules:\n  fresh:\n  other: {}\n";
        assert_eq!(section(text, "fresh").unwrap().floor, 0);
        assert_eq!(
            rule_section(text, "missing").unwrap(),
            serde_json::Value::Null
        );
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
        assert_eq!(ids, Some(vec!["revenue".to_string()]));
        assert_eq!(check_rule_ids("version: 1\n", &[]).unwrap(), None);
        assert_eq!(check_rule_ids("rules:\n", &[]).unwrap(), None);
        assert_eq!(
            check_rule_ids("rules: {}\n", &[]).unwrap(),
            Some(Vec::new())
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = top_level_keys("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.line.is_some(), "{err:?}");
    }
}
