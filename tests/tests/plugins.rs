//! Plugins: the example rule crate loaded as a dynamic library and linked statically, and the
//! refusals of libraries that are not compatible plugins.
//!
//! The libraries are built by the tests themselves (cargo into `target/plugin-tests`, gcc for
//! the crafted C libraries), so the suite needs no preparation step.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use vigil_tests::{puffy, puffy_copy, repo_root, vigil, vigil_run};

/// A target folder of its own, so the nested cargo never waits for the outer one's lock.
fn target_dir() -> PathBuf {
    repo_root().join("target/plugin-tests")
}

/// Builds with cargo in the plugin-tests target folder.
fn cargo_build(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--offline", "--locked"])
        .args(args)
        .arg("--target-dir")
        .arg(target_dir())
        .current_dir(repo_root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build {args:?} failed");
}

/// `libvigil_rules_example.so` built with its `dynamic` feature.
fn example_plugin() -> &'static Path {
    static PLUGIN: OnceLock<PathBuf> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        cargo_build(&["-p", "vigil-rules-example", "--features", "dynamic"]);
        let name = format!(
            "{}vigil_rules_example{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        );
        target_dir().join("debug").join(name)
    })
}

/// `libteam_rules.so`: the out-of-tree fixture crate `tests/fixtures/plugins/team-rules`, built
/// with its own lock file (other serde, serde_json and indexmap versions than the host's).
fn team_plugin() -> &'static Path {
    static PLUGIN: OnceLock<PathBuf> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        let target = target_dir().join("team");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--locked", "--manifest-path"])
            .arg(repo_root().join("tests/fixtures/plugins/team-rules/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the team-rules fixture does not build");
        let name = format!(
            "{}team_rules{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        );
        target.join("debug").join(name)
    })
}

/// The version of a package in a lock file.
fn locked_version(lock: &Path, package: &str) -> String {
    let text = std::fs::read_to_string(lock).unwrap();
    let marker = format!("name = \"{package}\"\nversion = \"");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("{package} in {lock:?}"))
        + marker.len();
    text[start..].split('"').next().unwrap().to_string()
}

/// A shared library compiled from C source, for the refusal tests.
fn c_library(dir: &Path, name: &str, source: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let lib = dir.join(format!("lib{name}.so"));
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&c)
        .status()
        .expect("cc runs");
    assert!(status.success());
    lib
}

/// A native config for the Puffy warehouse with the example rule (and a sessions lookup).
fn config_with_example(dir: &Path, plugins: &str) -> PathBuf {
    let path = dir.join("vigil.yml");
    std::fs::write(
        &path,
        format!(
            "{plugins}tables:\n  sessions: {{file: fct_sessions.csv, date_column: session_start}}\n  \
             orders: {{file: fct_orders.csv, date_column: order_ts}}\n  attribution:\n    \
             file: fct_attribution.csv\n    date_column: orders.order_ts\n    lookups:\n      \
             - {{table: orders, key: transaction_id, columns: [order_ts, revenue]}}\n      \
             - {{table: sessions, key: attributed_session_id, foreign_key: session_id, columns: [session_id]}}\n\
             rules:\n  attribution_coverage: {{}}\n  freshness: {{}}\n"
        ),
    )
    .unwrap();
    path
}

fn run(warehouse: &Path, config: &Path, out: &Path, plugin: &Path) -> (i32, Value, String) {
    let plugin = plugin.to_str().expect("a UTF-8 path");
    let result = vigil_run(warehouse, config, out, "2025-03-08", &["--plugin", plugin]);
    let report = std::fs::read_to_string(out.join("monitoring_report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (result.code, report, result.stderr)
}

#[test]
fn the_example_plugin_runs_on_the_puffy_warehouse() {
    let plugin = example_plugin();
    let copy = puffy_copy();
    let warehouse = copy.path().join("warehouse");
    // Damage the attribution of 03-08: drop the first-click rows of its orders.
    let path = warehouse.join("fct_attribution.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !(l.starts_with("ORD-20250308-") && l.contains(",first_click,")))
        .collect();
    assert!(kept.len() < text.lines().count());
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();

    let config = config_with_example(copy.path(), "");
    let out = copy.path().join("reports");
    let (code, report, stderr) = run(&warehouse, &config, &out, plugin);
    assert_eq!(code, 0, "{stderr}");
    let rule = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "attribution_coverage")
        .unwrap();
    assert!(
        rule["origin"].as_str().unwrap().starts_with("plugin /"),
        "{rule}"
    );
    let found: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "attribution_coverage")
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["check"], "attribution:missing_first_click");
    assert_eq!(
        (
            found[0]["partition_date"].as_str(),
            found[0]["value"].as_f64()
        ),
        (Some("2025-03-08"), Some(1.0))
    );

    // The reports name the rule's origin and chart its missing share against its fixed band.
    let md = std::fs::read_to_string(out.join("monitoring_report.md")).unwrap();
    assert!(md.contains("| `attribution_coverage` | plugin /"), "{md}");
    assert!(
        md.contains(
            "| `attribution:missing_first_click` | 100.0 % | exactly 0.0 % | – | – | **flagged** |"
        ),
        "{md}"
    );
    let html = std::fs::read_to_string(out.join("monitoring_report.html")).unwrap();
    assert!(html.contains("<td><code>attribution_coverage</code></td><td>plugin /"));
    assert!(html.contains("value 100.0 % · exactly 0.0 %"), "{html}");
    let observation = report["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["metric"] == "attribution:missing_first_click")
        .unwrap();
    assert_eq!(
        observation["bounds"],
        serde_json::json!({"lower": 0.0, "upper": 0.0})
    );
    assert_eq!(observation["flagged"], true);

    // The pristine warehouse passes the example rule.
    let clean_out = copy.path().join("clean");
    let (code, report, stderr) = run(&puffy().join("warehouse"), &config, &clean_out, plugin);
    assert_eq!(code, 0, "{stderr}");
    assert!(report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["rule"] != "attribution_coverage"));
}

#[test]
fn the_config_can_name_the_plugin_and_validate_needs_it() {
    let plugin = example_plugin();
    let dir = tempfile::tempdir().unwrap();
    let without = config_with_example(dir.path(), "");
    let refused = vigil(["validate".as_ref(), without.as_os_str()]);
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .stderr
            .contains("unknown rule `attribution_coverage`"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("a plugin's rules need its --plugin"),
        "{}",
        refused.stderr
    );

    let with_flag = vigil([
        "--plugin".as_ref(),
        plugin.as_os_str(),
        "validate".as_ref(),
        without.as_os_str(),
    ]);
    assert_eq!(with_flag.code, 0, "{with_flag:?}");

    let listed = config_with_example(dir.path(), &format!("plugins: [{}]\n", plugin.display()));
    let with_list = vigil(["validate".as_ref(), listed.as_os_str()]);
    assert_eq!(with_list.code, 0, "{with_list:?}");
    assert!(
        with_list
            .stdout
            .contains("rules: attribution_coverage, freshness"),
        "{}",
        with_list.stdout
    );

    let missing = config_with_example(dir.path(), "plugins: [plugins/libteam_rules.so]\n");
    let named = vigil(["validate".as_ref(), missing.as_os_str()]);
    assert_eq!(named.code, 2);
    assert!(
        named
            .stderr
            .contains("plugins/libteam_rules.so: cannot be read"),
        "{}",
        named.stderr
    );
}

#[test]
fn rules_explain_and_schema_include_the_plugin() {
    let plugin = example_plugin();
    let rules = vigil(["--plugin".as_ref(), plugin.as_os_str(), "rules".as_ref()]);
    let line = rules
        .stdout
        .lines()
        .find(|l| l.starts_with("attribution_coverage"))
        .unwrap();
    assert!(line.contains("[plugin /"), "{line}");
    let explain = vigil([
        "--plugin".as_ref(),
        plugin.as_os_str(),
        "explain".as_ref(),
        "attribution_coverage".as_ref(),
    ]);
    assert_eq!(explain.code, 0);
    assert!(
        explain
            .stdout
            .contains("| `max_unknown_sessions` | integer | `0` |"),
        "{}",
        explain.stdout
    );
    let schema: Value = serde_json::from_str(
        &vigil(["--plugin".as_ref(), plugin.as_os_str(), "schema".as_ref()]).stdout,
    )
    .unwrap();
    let rules = &schema["definitions"]["ConfigFile"]["properties"]["rules"]["properties"];
    assert!(rules["attribution_coverage"].is_object());
    let params = &rules["attribution_coverage"]["anyOf"][0];
    assert!(params["properties"]["models"].is_object(), "{params}");
    // Made editor-ready like the builtin rules' params: Rust number formats became bounds.
    assert!(!params.to_string().contains("\"format\""), "{params}");
}

#[test]
fn the_same_library_twice_is_loaded_once_and_two_with_one_id_are_refused() {
    let plugin = example_plugin();
    let dir = tempfile::tempdir().unwrap();
    // On the command line and in `plugins:`: one library, loaded once.
    let listed = config_with_example(dir.path(), &format!("plugins: [{}]\n", plugin.display()));
    let once = vigil([
        "--plugin".as_ref(),
        plugin.as_os_str(),
        "validate".as_ref(),
        listed.as_os_str(),
    ]);
    assert_eq!(once.code, 0, "{once:?}");
    // Another file with the same rule id: refused naming both.
    let copy = dir.path().join("libcopy.so");
    std::fs::copy(plugin, &copy).unwrap();
    let twice = vigil([
        "--plugin".as_ref(),
        plugin.as_os_str(),
        "--plugin".as_ref(),
        copy.as_os_str(),
        "rules".as_ref(),
    ]);
    assert_eq!(twice.code, 2);
    assert!(
        twice
            .stderr
            .contains("rule id `attribution_coverage` is registered twice: by plugin /"),
        "{}",
        twice.stderr
    );
    assert!(twice.stderr.contains("libcopy.so"), "{}", twice.stderr);
}

#[test]
fn a_plugin_of_the_previous_protocol_is_refused_naming_both_versions_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let source =
        std::fs::read_to_string(repo_root().join("tests/fixtures/plugins/protocol1.c")).unwrap();
    let lib = c_library(dir.path(), "protocol1", &source);
    let out = vigil(["--plugin".as_ref(), lib.as_os_str(), "rules".as_ref()]);
    assert_eq!(out.code, 2);
    let expected = format!(
        "speaks plugin protocol 1; this vigil speaks protocol 2; rebuild the plugin against \
         vigil-rule-api {}",
        env!("CARGO_PKG_VERSION")
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
}

#[test]
fn a_plugin_of_a_newer_protocol_is_refused_before_anything_else_is_called() {
    let dir = tempfile::tempdir().unwrap();
    // Its call function would crash the process: it must never be reached.
    let lib = c_library(
        dir.path(),
        "future_plugin",
        "unsigned int vigil_plugin_protocol(void) { return 7; }\n\
         void *vigil_plugin_call(void) { *(volatile int *)0 = 1; return 0; }\n",
    );
    let out = vigil(["--plugin".as_ref(), lib.as_os_str(), "rules".as_ref()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(
            "speaks plugin protocol 7; this vigil speaks protocol 2; use a vigil that speaks \
             that protocol"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn a_plugin_that_answers_garbage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lib = c_library(
        dir.path(),
        "garbage",
        "#include <stdlib.h>\n#include <string.h>\n\
         typedef struct { char *ptr; size_t len; size_t cap; } Buffer;\n\
         unsigned int vigil_plugin_protocol(void) { return 2; }\n\
         Buffer vigil_plugin_call(const char *r, size_t n) {\n\
           Buffer b; b.ptr = malloc(4); memcpy(b.ptr, \"{no\", 3); b.len = 3; b.cap = 4; return b; }\n\
         void vigil_plugin_free(Buffer b) { free(b.ptr); }\n",
    );
    let out = vigil(["--plugin".as_ref(), lib.as_os_str(), "rules".as_ref()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("answered something this vigil cannot read"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_shared_library_that_is_no_plugin_gets_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let lib = c_library(dir.path(), "plain", "int answer(void) { return 42; }\n");
    let out = vigil(["--plugin".as_ref(), lib.as_os_str(), "rules".as_ref()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("is not a vigil plugin (it exports no `vigil_plugin_protocol`)"),
        "{}",
        out.stderr
    );
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a library").unwrap();
    let out = vigil(["--plugin".as_ref(), text.as_os_str(), "rules".as_ref()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("cannot be loaded as a shared library"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_example_crate_links_statically_with_the_cli_feature() {
    cargo_build(&["-p", "vigil", "--features", "example"]);
    let binary = target_dir()
        .join("debug")
        .join(format!("vigil{}", std::env::consts::EXE_SUFFIX));
    let output = Command::new(binary).arg("rules").output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("attribution_coverage"))
        .unwrap();
    assert!(
        line.ends_with("[linked crate vigil-rules-example]"),
        "{line}"
    );
}

/// The paid orders of 2025-03-08 without a marketing source, counted from the CSV by hand.
fn paid_orders_without_source_on_0308() -> f64 {
    let text = std::fs::read_to_string(puffy().join("warehouse/fct_orders.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (ts, revenue, source) = (col("order_ts"), col("revenue"), col("marketing_source"));
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|cells| cells[ts].starts_with("2025-03-08"))
        .filter(|cells| cells[revenue].trim().parse::<f64>().is_ok_and(|r| r > 0.0))
        .filter(|cells| matches!(cells[source], "" | "NULL" | "null"))
        .count() as f64
}

#[test]
fn a_plugin_built_with_other_dependency_versions_reports_the_right_severities() {
    let plugin = team_plugin();
    let fixture_lock = repo_root().join("tests/fixtures/plugins/team-rules/Cargo.lock");
    let host_lock = repo_root().join("Cargo.lock");
    for package in ["serde", "serde_json", "indexmap"] {
        assert_ne!(
            locked_version(&fixture_lock, package),
            locked_version(&host_lock, package),
            "the fixture must be built with another {package} than the host"
        );
    }
    let copy = puffy_copy();
    let config = copy.path().join("vigil.yml");
    std::fs::write(&config, "rules:\n  team_severities: {}\n").unwrap();
    let out = copy.path().join("reports");
    let plugin = plugin.to_str().unwrap();
    let result = vigil_run(
        &copy.path().join("warehouse"),
        &config,
        &out,
        "2025-03-08",
        &["--plugin", plugin, "--fail_on_error"],
    );
    assert_eq!(result.code, 1, "{result:?}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("monitoring_report.json")).unwrap())
            .unwrap();
    let expected = paid_orders_without_source_on_0308();
    let found: Vec<(String, String, f64)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["check"].as_str().unwrap().to_string(),
                f["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("ERROR".to_string(), "team:error".to_string(), expected),
            ("WARN".to_string(), "team:warn".to_string(), expected),
            ("INFO".to_string(), "team:info".to_string(), expected),
        ]
    );
    let observation = report["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["metric"] == "team:paid_without_source")
        .unwrap_or_else(|| panic!("{}", report["observations"]));
    assert_eq!(observation["value"].as_f64(), Some(expected));
}

#[test]
fn a_panicking_plugin_is_an_error_finding_and_the_run_goes_on() {
    let plugin = team_plugin().to_str().unwrap();
    let what = |step: &str| match step {
        "build" => "team_panics panics while it is built".to_string(),
        "plan" => "team_panics panics while it plans".to_string(),
        _ => "team_panics panics while it evaluates".to_string(),
    };
    vigil_tests::assert_panics_are_isolated("team_panics", &["--plugin", plugin], what);
}

#[test]
fn plugin_check_prints_protocol_rules_and_params_schema() {
    let plugin = team_plugin();
    let text = vigil(["plugin".as_ref(), "check".as_ref(), plugin.as_os_str()]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.stdout.contains(&format!(
            "protocol 2 (this vigil speaks 2), built with vigil-rule-api {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("rule `team_panics` (ERROR, package team-rules): Panics on purpose"),
        "{}",
        text.stdout
    );
    let json = vigil([
        "plugin".as_ref(),
        "check".as_ref(),
        plugin.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["protocol"], 2);
    let ids: Vec<&str> = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["team_panics", "team_severities"]);
    let schema = &report["rules"][0]["params_schema"];
    assert!(schema["properties"]["at"].is_object(), "{schema}");
    let at = schema["definitions"]["At"].to_string();
    for step in ["build", "plan", "evaluate"] {
        assert!(at.contains(&format!("\"{step}\"")), "{at}");
    }
    // A library this vigil refuses: exit 2 with the reason.
    let dir = tempfile::tempdir().unwrap();
    let source =
        std::fs::read_to_string(repo_root().join("tests/fixtures/plugins/protocol1.c")).unwrap();
    let old = c_library(dir.path(), "protocol1", &source);
    let refused = vigil(["plugin".as_ref(), "check".as_ref(), old.as_os_str()]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("speaks plugin protocol 1"),
        "{}",
        refused.stderr
    );
}

#[test]
fn explain_of_a_plugin_rule_without_its_library_hints_at_plugin() {
    let out = vigil(["explain", "team_panics"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(
            "a plugin's rules need its library: `vigil --plugin PATH explain team_panics`"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn the_template_crate_pulls_in_no_runtime() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            "vigil-rules-example",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(repo_root())
        .output()
        .expect("cargo tree runs");
    assert!(output.status.success());
    let tree = String::from_utf8(output.stdout).unwrap();
    assert!(tree.contains("vigil-rule-api"), "{tree}");
    let packages: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for banned in [
        "vigil-engine",
        "ureq",
        "csv",
        "simd-csv",
        "libloading",
        "postgres",
        "tokio-postgres",
        "rusqlite",
        "parquet",
        "clap",
    ] {
        assert!(!packages.contains(&banned), "{banned} in:\n{tree}");
    }
}

#[test]
fn a_rule_built_through_the_protocol_says_how_far_its_baselines_reach() {
    use vigil_engine::api::protocol::{serve, Call, Envelope, Reply, PROTOCOL_VERSION};
    // The builtin anomaly rule, served as a plugin serves its rules (linked into this binary).
    let build = Envelope {
        protocol: PROTOCOL_VERSION,
        body: Call::Build {
            rule: "anomaly".into(),
            params: serde_json::json!({"baseline": {"window_days": 56, "min_points": 4}}),
        },
    };
    let reply: Envelope<Reply> =
        serde_json::from_slice(&serve(&serde_json::to_vec(&build).unwrap())).unwrap();
    let Reply::Built { lookback_days, .. } = reply.body else {
        panic!("{reply:?}");
    };
    assert_eq!(lookback_days, 56);
    // A plugin built before the field existed answers without it: no lookback.
    let old: Envelope<Reply> =
        serde_json::from_str(r#"{"protocol": 2, "reply": "built", "instance": 3}"#).unwrap();
    assert_eq!(
        old.body,
        Reply::Built {
            instance: 3,
            lookback_days: 0
        }
    );
}
