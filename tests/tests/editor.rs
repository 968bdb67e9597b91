//! The editor and `vigil validate` agree: the real `yaml-language-server` (npm, see
//! `tests/editor/package.json`) judges every config of the corpus with the schema from its
//! modeline, and its verdict (any diagnostic of severity Error) equals `vigil validate`'s exit
//! code. Hover shows each field's own documentation. Ajv (strict mode) compiles the schema and
//! validates the examples and every default and snippet in it.
//!
//! The corpus is `tests/editor/configs/*.yml`, named by the verdict it must get (`valid-`,
//! `invalid-`), the configs of the bad-input corpus (`tests/corpus/*/`, refused when their case
//! validates them and expects a refusal), `schema/examples/puffy.yml` and the reference
//! monitor's own config. `unjudgeable-*.yml` (the first comment says why) and
//! `BAD_INPUT_UNJUDGEABLE` are the configs no JSON schema can judge: vigil refuses them while
//! the editor cannot.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use vigil_tests::editor::{file_uri, node, package_file, LanguageServer, INSTALL};
use vigil_tests::{puffy, repo_root, vigil};

/// What a config of the corpus must get.
#[derive(Debug, PartialEq)]
enum Expected {
    Valid,
    Invalid,
    /// No JSON schema can tell; vigil refuses. The reason.
    Unjudgeable(String),
}

/// One config as the editor opens it.
struct Case {
    path: PathBuf,
    text: String,
    expected: Expected,
}

fn schema_path() -> PathBuf {
    repo_root().join("schema/vigil.schema.json")
}

const MODELINE: &str = "# yaml-language-server: $schema=";

/// The text of `path` (as an editor shows it: invalid UTF-8 replaced) with a schema modeline on
/// its first line: its own when it names the schema from where it is, else one added (or put
/// instead of its own) as a user would.
fn with_modeline(path: &Path) -> String {
    let text = String::from_utf8_lossy(&fs::read(path).unwrap()).to_string();
    let own = text.lines().find_map(|l| l.strip_prefix(MODELINE));
    let resolves = own.is_some_and(|target| {
        path.parent()
            .unwrap()
            .join(target)
            .canonicalize()
            .is_ok_and(|t| t == schema_path().canonicalize().unwrap())
    });
    if resolves {
        return text;
    }
    let rest: String = text
        .split_inclusive('\n')
        .filter(|l| !l.starts_with(MODELINE))
        .collect();
    format!("{MODELINE}{}\n{rest}", file_uri(&schema_path()))
}

/// What no JSON schema can judge among the bad-input corpus's configs (`tests/corpus`), which
/// vigil refuses: the folder and why.
const BAD_INPUT_UNJUDGEABLE: &[(&str, &str)] = &[
    ("config-empty-file", EMPTY),
    ("config-only-comments", EMPTY),
    (
        "config-invalid-utf8",
        "not UTF-8: an editor shows replacement characters",
    ),
    ("config-lookup-missing-table", LOOKUP),
    ("config-lookup-missing-table-located", LOOKUP),
    ("config-nan-threshold", NOT_JSON),
    ("config-inf-threshold", NOT_JSON),
    ("config-overflowing-float", NOT_JSON),
    (
        "config-two-documents-located",
        "two YAML documents: the editor judges each on its own",
    ),
];
const EMPTY: &str = "an empty document (null): a schema judges values, not their absence";
const LOOKUP: &str = "a lookup must name a configured table (a reference between values)";
const NOT_JSON: &str = "`.nan`, `.inf` and `1e400` are no JSON numbers: no schema can name them";

/// The configs of the bad-input corpus (`tests/corpus/*/case.yml` with a config of their own),
/// expected valid unless the case validates it and expects a refusal.
fn bad_input_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for entry in fs::read_dir(repo_root().join("tests/corpus")).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(case) = fs::read_to_string(dir.join("case.yml")) else {
            continue;
        };
        let case: serde_yaml::Value = serde_yaml::from_str(&case).unwrap();
        let Some(config) = case["config"].as_str().map(|c| dir.join(c)) else {
            continue;
        };
        if !config.is_file() {
            continue; // `example` or `reference`: already in the corpus
        }
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let validates = case["command"][0].as_str() == Some("validate");
        let refused = validates && case["expect"]["exit"].as_u64() != Some(0);
        let expected = match BAD_INPUT_UNJUDGEABLE.iter().find(|(n, _)| *n == name) {
            Some((_, reason)) => Expected::Unjudgeable(reason.to_string()),
            None if refused => Expected::Invalid,
            None => Expected::Valid,
        };
        cases.push(Case {
            text: with_modeline(&config),
            path: config,
            expected,
        });
    }
    cases
}

fn corpus() -> Vec<Case> {
    let dir = repo_root().join("tests/editor/configs");
    let mut cases: Vec<Case> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yml"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let text = with_modeline(&path);
            let expected = if name.starts_with("valid-") {
                Expected::Valid
            } else if name.starts_with("invalid-") {
                Expected::Invalid
            } else if name.starts_with("unjudgeable-") {
                let reason = text
                    .lines()
                    .find_map(|l| l.strip_prefix("# unjudgeable: "))
                    .unwrap_or_else(|| panic!("{name} says why no schema can judge it"));
                Expected::Unjudgeable(reason.to_string())
            } else {
                panic!("{name}: name a corpus config valid-, invalid- or unjudgeable-");
            };
            Case {
                path,
                text,
                expected,
            }
        })
        .collect();
    cases.extend(bad_input_cases());
    for path in [
        repo_root().join("schema/examples/puffy.yml"),
        puffy().join("monitoring_rules.reference.yml"),
    ] {
        cases.push(Case {
            text: with_modeline(&path),
            path,
            expected: Expected::Valid,
        });
    }
    cases.sort_by(|a, b| a.path.cmp(&b.path));
    cases
}

#[test]
fn the_editor_and_validate_give_the_same_verdict_on_every_config() {
    let cases = corpus();
    assert!(cases.len() >= 40, "the corpus has {} configs", cases.len());
    let mut server = LanguageServer::start(&repo_root());
    let mut problems = Vec::new();
    let (mut agreements, mut unjudgeable) = (0, Vec::new());
    for case in &cases {
        let name = case
            .path
            .strip_prefix(repo_root())
            .unwrap_or(&case.path)
            .display()
            .to_string();
        let editor_errors: Vec<String> = server
            .diagnostics(&case.path, &case.text)
            .iter()
            .filter(|d| d["severity"] == 1)
            .map(|d| {
                let line = d["range"]["start"]["line"].as_u64().unwrap_or(0) + 1;
                format!("{line}: {}", d["message"].as_str().unwrap_or_default())
            })
            .collect();
        server.close(&case.path);
        let out = vigil([
            "validate".as_ref(),
            "--rules".as_ref(),
            case.path.as_os_str(),
        ]);
        let vigil_valid = out.code == 0;
        let editor_valid = editor_errors.is_empty();
        let verdicts = format!(
            "vigil: {}; editor: {editor_errors:?}",
            if vigil_valid {
                "valid".to_string()
            } else {
                out.stderr.trim().to_string()
            }
        );
        match &case.expected {
            Expected::Unjudgeable(reason) => {
                if vigil_valid || !editor_valid {
                    problems.push(format!(
                        "{name} is listed as unjudgeable ({reason}) but {verdicts}"
                    ));
                }
                unjudgeable.push(format!("{name}: {reason}"));
            }
            expected => {
                if vigil_valid != (*expected == Expected::Valid) {
                    problems.push(format!(
                        "{name}: vigil's verdict is not the expected one; {verdicts}"
                    ));
                }
                if vigil_valid == editor_valid {
                    agreements += 1;
                } else {
                    problems.push(format!("{name}: the editor and vigil disagree; {verdicts}"));
                }
            }
        }
    }
    eprintln!(
        "{} configs: {agreements} same verdicts, {} that no schema can judge:\n  {}",
        cases.len(),
        unjudgeable.len(),
        unjudgeable.join("\n  ")
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The hover text of `key` on the line that starts with `prefix` (indentation included), with
/// the schema-source footer left out.
fn hover(server: &mut LanguageServer, path: &Path, text: &str, prefix: &str, key: &str) -> String {
    let line = text
        .lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starts with {prefix:?}"));
    let character = text.lines().nth(line).unwrap().find(key).unwrap() + 1;
    let shown = server.hover(path, line, character);
    shown
        .lines()
        .filter(|l| !l.starts_with("Source: "))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

#[test]
fn hover_shows_each_fields_own_documentation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.yml");
    let text = format!(
        "# yaml-language-server: $schema={}\nrun:\n  expected_lag_days: 1\nrules:\n  anomaly:\n    baseline:\n      window_days: 28\n  freshness:\n    tables:\n      sessions:\n        floor_severity: warn\n",
        file_uri(&schema_path())
    );
    fs::write(&path, &text).unwrap();
    let mut server = LanguageServer::start(dir.path());
    assert!(server.diagnostics(&path, &text).is_empty());
    // Field docs as written above each field in the code (one paragraph, not hard-wrapped).
    let expected = [
        (
            "  expected_lag_days",
            "expected_lag_days",
            "Without `--expected_run_date`, the expected partition is today (UTC) minus this many days.",
        ),
        (
            "  anomaly",
            "anomaly",
            "Daily sessions, orders, revenue, AOV and conversion rate stay near their baseline (builtin); left empty: the rule's defaults.",
        ),
        (
            "      window_days",
            "window_days",
            "Calendar days before the judged day that may form its baseline (the judged day itself is never part of it). With `day_of_week`, use a multiple of 7 (e.g. 56 for 8 weeks).",
        ),
        (
            "    baseline",
            "baseline",
            "How each day's baseline is built. With scope `all`, `window_days` is the number of earlier observations (the reference monitor's `baseline_days`).",
        ),
    ];
    for (prefix, key, doc) in expected {
        assert_eq!(
            hover(&mut server, &path, &text, prefix, key),
            doc,
            "hover of {key}"
        );
    }
    // An enum field: its own doc first, then the documented values.
    let severity = hover(
        &mut server,
        &path,
        &text,
        "        floor_severity",
        "floor_severity",
    );
    assert!(
        severity.starts_with("Severity of a day below the floor.\n"),
        "{severity}"
    );
    assert!(
        severity.contains("* `warn`: Needs a look today; the refresh goes on."),
        "{severity}"
    );
    // The reference format has its own documentation.
    let reference = dir.path().join("monitoring_rules.yml");
    let text = with_modeline(&puffy().join("monitoring_rules.reference.yml"));
    fs::write(&reference, &text).unwrap();
    assert!(server.diagnostics(&reference, &text).is_empty());
    assert_eq!(
        hover(
            &mut server,
            &reference,
            &text,
            "  baseline_days",
            "baseline_days"
        ),
        "Baseline length (the reference counts observations, not days); at least 1."
    );
}

#[test]
fn ajv_strict_mode_compiles_the_schema_and_validates_examples_defaults_and_snippets() {
    package_file("ajv/package.json");
    let script = repo_root().join("tests/editor/ajv-check.js");
    let examples: Vec<PathBuf> = fs::read_dir(repo_root().join("schema/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    assert!(!examples.is_empty());
    let out = node()
        .arg(&script)
        .arg(schema_path())
        .args(&examples)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node: {e}; {INSTALL}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The script reports what it checked: the examples, and defaults and snippets.
    let n = examples.len();
    assert!(
        stdout.contains(&format!("{n} of {n} examples valid")),
        "{stdout}"
    );
    let checked = stdout
        .lines()
        .find_map(|l| l.strip_suffix(" defaults and snippets checked"))
        .and_then(|n| n.parse::<usize>().ok());
    assert!(checked.is_some_and(|n| n > 50), "{stdout}");
}

/// A snippet's text as inserted with its placeholders' defaults (`${1:text}` is `text`).
fn expand_snippet(snippet: &str) -> String {
    let placeholder = regex::Regex::new(r"\$\{\d+:([^}]*)\}|\$\d+").unwrap();
    placeholder.replace_all(snippet, "$1").to_string()
}

/// The labels of the completions at the end of `before` (the document up to the cursor),
/// each checked to insert a config that both the editor and vigil accept.
fn completions_that_validate(
    server: &mut LanguageServer,
    path: &Path,
    before: &str,
) -> Vec<String> {
    let text = format!("{before}\n");
    let line = before.matches('\n').count();
    let character = before.len() - before.rfind('\n').map_or(0, |i| i + 1);
    assert!(server.diagnostics(path, &text).is_empty(), "{text}");
    let items = server.completion(path, line, character);
    server.close(path);
    let mut labels = Vec::new();
    for item in &items {
        let label = item["label"].as_str().unwrap_or_default().to_string();
        let inserted = item["textEdit"]["newText"]
            .as_str()
            .or(item["insertText"].as_str())
            .unwrap_or(&label);
        // As editors insert it: its new lines take the indentation of the cursor's line.
        let indent: String = before[before.rfind('\n').map_or(0, |i| i + 1)..]
            .chars()
            .take_while(|c| *c == ' ')
            .collect();
        let inserted = expand_snippet(inserted).replace('\n', &format!("\n{indent}"));
        let config = format!("{before}{inserted}\n");
        fs::write(path, &config).unwrap();
        let editor_errors: Vec<Value> = server
            .diagnostics(path, &config)
            .into_iter()
            .filter(|d| d["severity"] == 1)
            .collect();
        server.close(path);
        let out = vigil(["validate".as_ref(), path.as_os_str()]);
        assert!(
            editor_errors.is_empty() && out.code == 0,
            "completion {label:?} inserts\n{config}\neditor: {editor_errors:?}\nvigil: {}",
            out.stderr
        );
        labels.push(label);
    }
    labels
}

#[test]
fn completions_and_snippets_insert_configs_that_validate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.yml");
    let head = format!(
        "# yaml-language-server: $schema={}\nversion: 1\n",
        file_uri(&schema_path())
    );
    let mut server = LanguageServer::start(dir.path());
    let sections = completions_that_validate(&mut server, &path, &head);
    for section in [
        "tables",
        "rules",
        "run",
        "operations",
        "alert_routing",
        "state",
    ] {
        assert!(sections.iter().any(|s| s == section), "{sections:?}");
    }
    // No rule: vigil would ask for the tables the rules read (which no schema can judge).
    let tables =
        completions_that_validate(&mut server, &path, &format!("{head}rules: {{}}\ntables: "));
    assert!(
        tables.iter().any(|t| t == "a table with a date column"),
        "{tables:?}"
    );
    let steps = format!("{head}rules:\n  funnel:\n    steps: ");
    let steps = completions_that_validate(&mut server, &path, &steps);
    assert!(steps.iter().any(|s| s == "the default"), "{steps:?}");
    let rules = completions_that_validate(&mut server, &path, &format!("{head}rules:\n  "));
    for id in ["anomaly", "drift", "freshness", "funnel", "revenue"] {
        assert!(rules.iter().any(|r| r == id), "{rules:?}");
    }
}
