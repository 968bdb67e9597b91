//! `vigil validate`, `rules`, `explain` and `schema`.

use std::fs;

use vigil_tests::{puffy, repo_root, vigil};

fn validate_text(text: &str) -> vigil_tests::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.yml");
    fs::write(&path, text).unwrap();
    let out = vigil(["validate".as_ref(), path.as_os_str()]);
    vigil_tests::Output {
        stderr: out.stderr.replace(&path.display().to_string(), "vigil.yml"),
        ..out
    }
}

#[test]
fn rules_left_empty_run_every_rule_as_when_left_out_and_an_empty_mapping_runs_none() {
    let all = "rules: anomaly, drift, freshness, funnel, revenue;";
    for text in ["version: 1\n", "version: 1\nrules:\n", "rules: ~\n"] {
        let out = validate_text(text);
        assert!(out.stdout.contains(all), "{text:?}: {out:?}");
    }
    let none = validate_text("rules: {}\n");
    assert!(none.stdout.contains("rules: none;"), "{none:?}");
}

#[test]
fn the_reference_config_validates_unchanged() {
    let path = puffy().join("monitoring_rules.reference.yml");
    let out = vigil(["validate".as_ref(), "--rules".as_ref(), path.as_os_str()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("valid (reference monitor format)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("tables: attribution, orders, sessions"));
}

#[test]
fn a_misspelt_engine_key_is_located_with_a_suggestion() {
    let out = validate_text("version: 1\noperations:\n  quarantine_on_eror: true\n");
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr.lines().next().unwrap(),
        "vigil: error: vigil.yml:3:3: operations.quarantine_on_eror: unknown field \
         `quarantine_on_eror`, expected one of `quarantine_on_error`, `quarantine_target_dir`, \
         `copy_warehouse`, `quarantine_max_bytes`, `quarantine_keep_last`, \
         `quarantine_max_total_bytes`; did you mean `quarantine_on_error`?"
    );
}

#[test]
fn a_misspelt_rule_param_is_located_inside_the_rule_section() {
    let text = "rules:\n  freshness:\n    tables:\n      sessions:\n        min_per_dya: 10\n";
    let out = validate_text(text);
    assert_eq!(out.code, 2);
    let line = out.stderr.lines().next().unwrap();
    assert!(
        line.starts_with("vigil: error: vigil.yml:5:9: rules.freshness.tables.sessions.min_per_dya: unknown field `min_per_dya`"),
        "{line}"
    );
    assert!(line.ends_with("did you mean `min_per_day`?"), "{line}");
}

#[test]
fn an_unknown_rule_id_is_located_with_a_suggestion() {
    let out = validate_text("rules:\n  freshnes: {}\n");
    assert_eq!(out.code, 2);
    let line = out.stderr.lines().next().unwrap();
    assert!(
        line.starts_with("vigil: error: vigil.yml:2:3: rules"),
        "{line}"
    );
    assert!(
        line.contains("unknown rule `freshnes`; did you mean `freshness`?"),
        "{line}"
    );
}

#[test]
fn a_misspelt_reference_key_is_located_too() {
    let text = fs::read_to_string(puffy().join("monitoring_rules.reference.yml"))
        .unwrap()
        .replace("min_orders_per_day", "min_order_per_day");
    let out = validate_text(&text);
    assert_eq!(out.code, 2);
    let line = out.stderr.lines().next().unwrap();
    assert!(
        line.starts_with(
            "vigil: error: vigil.yml:37:3: freshness.min_order_per_day: unknown field"
        ),
        "{line}"
    );
    assert!(
        line.ends_with("did you mean `min_orders_per_day`?"),
        "{line}"
    );
}

#[test]
fn wrong_types_values_and_tables_are_explained() {
    let bad_type = validate_text("run:\n  expected_lag_days: one\n");
    assert!(
        bad_type
            .stderr
            .contains("vigil.yml:2:22: run.expected_lag_days: invalid type: string \"one\""),
        "{}",
        bad_type.stderr
    );
    let bad_enum = validate_text("run:\n  scope: everything\n");
    assert!(
        bad_enum
            .stderr
            .contains("run.scope: unknown variant `everything`"),
        "{}",
        bad_enum.stderr
    );
    let bad_table = validate_text("tables:\n  orders:\n    file: o.csv\nrules:\n  freshness: {}\n");
    assert_eq!(bad_table.code, 2);
    assert!(
        bad_table
            .stderr
            .contains("rules.freshness: the rule needs table `sessions`, which is not configured"),
        "{}",
        bad_table.stderr
    );
    let empty = validate_text("");
    assert!(
        empty.stderr.contains("vigil.yml: the config is empty"),
        "{}",
        empty.stderr
    );
    let syntax = validate_text("rules: [unclosed\n");
    assert_eq!(syntax.code, 2);
    assert!(syntax.stderr.contains("vigil.yml:"), "{}", syntax.stderr);
    let version = validate_text("version: 2\n");
    assert!(
        version.stderr.contains("unsupported config version 2"),
        "{}",
        version.stderr
    );
}

#[test]
fn rules_lists_the_builtin_rules_with_their_origin() {
    let out = vigil(["rules"]);
    assert_eq!(out.code, 0);
    let ids: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids, ["anomaly", "drift", "freshness", "funnel", "revenue"]);
    assert!(
        out.stdout
            .contains("freshness  ERROR  Latest partition is the expected one"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.lines().all(|l| l.ends_with("[builtin]")));
    let json: serde_json::Value =
        serde_json::from_str(&vigil(["rules", "--format", "json"]).stdout).unwrap();
    assert_eq!(json[2]["id"], "freshness");
    assert_eq!(json[2]["origin"], "builtin");
    assert_eq!(json[1]["default_severity"], "WARN");
}

#[test]
fn explain_works_for_every_rule() {
    for id in ["anomaly", "drift", "freshness", "funnel", "revenue"] {
        let out = vigil(["explain", id]);
        assert_eq!(out.code, 0, "{id}");
        assert!(
            out.stdout.starts_with(&format!("# {id}\n")),
            "{}",
            out.stdout
        );
        for section in ["## What it checks", "## Why", "## Params", "## Example"] {
            assert!(out.stdout.contains(section), "{id} lacks {section}");
        }
    }
}

#[test]
fn explain_prints_docs_params_and_example() {
    let out = vigil(["explain", "freshness"]);
    assert_eq!(out.code, 0);
    let text = out.stdout;
    assert!(
        text.starts_with("# freshness\n\nDefault severity: ERROR · origin: builtin\n"),
        "{text}"
    );
    assert!(text.contains("## What it checks"));
    assert!(
        text.contains("| `tables` | map of TableFreshness |"),
        "{text}"
    );
    assert!(text.contains("### TableFreshness"));
    assert!(
        text.contains(
            "| `min_per_day` | integer | `0` | Minimum volume of a day; 0 disables the floor. |"
        ),
        "{text}"
    );
    assert!(
        text.contains("## Example\n\n```yaml\nrules:\n  freshness:\n    tables:\n"),
        "{text}"
    );

    let unknown = vigil(["explain", "freshnes"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown
        .stderr
        .contains("unknown rule `freshnes`; did you mean `freshness`?"));
}

#[test]
fn schema_command_prints_the_checked_in_schema() {
    let printed = vigil(["schema"]);
    assert_eq!(printed.code, 0);
    let checked_in = fs::read_to_string(repo_root().join("schema/vigil.schema.json")).unwrap();
    assert!(
        printed.stdout == checked_in,
        "schema/vigil.schema.json is stale; see tests/tests/generated.rs"
    );
}

#[test]
fn a_rules_own_param_check_points_at_that_rules_field() {
    // `drift` is not the first rule: the error must land on its field, not on `freshness`.
    let out = validate_text("rules:\n  freshness: {}\n  drift:\n    abs_change_threshold: 1.5\n");
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr.lines().next().unwrap(),
        "vigil: error: vigil.yml:4:27: rules.drift.abs_change_threshold: is a share change \
         between 0 and 1"
    );
}

#[test]
fn a_misspelt_column_is_refused_by_validate_with_the_warehouse_and_is_an_error_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vigil.yml");
    fs::write(
        &config,
        "rules:\n  freshness:\n    tables:\n      sessions: {count_distinct: sesion_id, min_per_day: 1}\n",
    )
    .unwrap();
    // Without data the config is valid: the column can only be checked against a header.
    let plain = vigil(["validate".as_ref(), config.as_os_str()]);
    assert_eq!(plain.code, 0, "{plain:?}");
    let warehouse = puffy().join("warehouse");
    let checked = vigil([
        "validate".as_ref(),
        config.as_os_str(),
        "--warehouse".as_ref(),
        warehouse.as_os_str(),
    ]);
    assert_eq!(checked.code, 2, "{checked:?}");
    let sessions = warehouse.join("fct_sessions.csv");
    assert!(
        checked.stderr.contains(&format!(
            "rules.freshness: rule `freshness` reads column `sesion_id` of table `sessions`, \
             which {} does not have; did you mean `session_id`?",
            sessions.display()
        )),
        "{}",
        checked.stderr
    );

    let out = dir.path().join("reports");
    let run = vigil_tests::vigil_run(
        &warehouse,
        &config,
        &out,
        "2025-03-08",
        &["--fail_on_error"],
    );
    assert_eq!(run.code, 1, "{run:?}");
    let report = vigil_tests::json_report(&out);
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "freshness:unknown_column")
        .unwrap_or_else(|| panic!("{}", report["findings"]));
    assert_eq!(finding["severity"], "ERROR");
    assert_eq!(finding["context"]["did_you_mean"], "session_id");
}

#[test]
fn validate_with_the_warehouse_checks_lookup_keys_and_columns_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vigil.yml");
    fs::write(
        &config,
        "tables:\n  orders: {file: fct_orders.csv, date_column: order_ts}\n  attribution:\n    \
         file: fct_attribution.csv\n    date_column: orders.order_ts\n    lookups: [{table: \
         orders, key: transaction_idd, columns: [order_ts, revenu]}]\nrules: {}\n",
    )
    .unwrap();
    assert_eq!(vigil(["validate".as_ref(), config.as_os_str()]).code, 0);
    let warehouse = puffy().join("warehouse");
    let checked = vigil([
        "validate".as_ref(),
        config.as_os_str(),
        "--warehouse".as_ref(),
        warehouse.as_os_str(),
    ]);
    assert_eq!(checked.code, 2, "{checked:?}");
    let in_table = |file: &str| warehouse.join(file).display().to_string();
    let expected = [
        format!(
            "tables.attribution.lookups[0]: column `transaction_idd` is not in {}; did you mean \
             `transaction_id`?",
            in_table("fct_attribution.csv")
        ),
        format!(
            "tables.attribution.lookups[0]: column `revenu` is not in {}; did you mean `revenue`?",
            in_table("fct_orders.csv")
        ),
    ];
    for line in expected {
        assert!(checked.stderr.contains(&line), "{line}\n{}", checked.stderr);
    }
}

#[test]
fn a_date_column_taken_through_a_lookup_needs_that_lookup() {
    let out = validate_text(
        "tables:\n  orders: {file: fct_orders.csv}\n  payments: {file: p.csv, date_column: orders.paid_at}\nrules: {}\n",
    );
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr.lines().next().unwrap(),
        "vigil: error: vigil.yml:3:40: tables.payments.date_column: `orders.paid_at` is a column \
         taken through a lookup, but this table has no lookup of `orders`: add `lookups: \
         [{table: orders, key: ..., columns: [paid_at]}]`"
    );
    let out = validate_text(
        "tables:\n  orders: {file: fct_orders.csv}\n  payments:\n    file: p.csv\n    date_column: orders.paid_at\n    lookups: [{table: orders, key: id, columns: [order_ts]}]\nrules: {}\n",
    );
    assert!(
        out.stderr.contains(
            "vigil.yml:5:18: tables.payments.date_column: the lookup of `orders` does not take \
             `paid_at`: add it to its `columns`"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn settings_under_which_a_check_can_never_report_are_warnings_at_their_key() {
    let out = validate_text(
        "rules:\n  anomaly:\n    baseline: {window_days: 28, min_points: 7, seasonality: day_of_week}\n  revenue:\n    null_rates: {max: {client_id: 1}}\n  drift:\n    top_channels: 0\n",
    );
    assert_eq!(out.code, 0, "{out:?}");
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        warnings,
        [
            "vigil: warning: vigil.yml:3:45: rules.anomaly.baseline.min_points: a baseline needs \
             7 day(s) of the judged weekday but with `day_of_week` a window of 28 days holds \
             only 4: with scope `partition` no day is ever judged",
            "vigil: warning: vigil.yml:5:35: rules.revenue.null_rates.max.client_id: is 1: a \
             null rate is never above it, so this check never fires",
            "vigil: warning: vigil.yml:7:19: rules.drift.top_channels: is 0: no channel is \
             monitored",
        ]
    );
    let freshness = validate_text(
        "rules:\n  freshness:\n    tables:\n      orders: {allowed_missing_days: 7}\n",
    );
    assert_eq!(
        freshness.stderr.trim(),
        "vigil: warning: vigil.yml:4:38: rules.freshness.tables.orders.allowed_missing_days: is \
         7 but with scope `partition` the completeness window holds 7 day(s): no day is ever \
         reported missing"
    );
    // The examples and every rule's own example warn of nothing.
    let puffy_example = vigil([
        "validate".as_ref(),
        repo_root().join("schema/examples/puffy.yml").as_os_str(),
    ]);
    assert_eq!(puffy_example.stderr, "");
    for entry in vigil_tests::registry().iter() {
        let indented: String = entry
            .info
            .example
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect();
        let out = validate_text(&format!("rules:\n  {}:\n{indented}", entry.info.id));
        assert_eq!(
            (out.code, out.stderr.as_str()),
            (0, ""),
            "{}",
            entry.info.id
        );
    }
}

#[test]
fn validate_with_the_warehouse_names_a_missing_table_file_and_passes_a_good_config() {
    let warehouse = puffy().join("warehouse");
    let good = repo_root().join("schema/examples/puffy.yml");
    let ok = vigil([
        "validate".as_ref(),
        good.as_os_str(),
        "--warehouse".as_ref(),
        warehouse.as_os_str(),
    ]);
    assert_eq!(ok.code, 0, "{ok:?}");
    let empty = tempfile::tempdir().unwrap();
    let missing = vigil([
        "validate".as_ref(),
        good.as_os_str(),
        "--warehouse".as_ref(),
        empty.path().as_os_str(),
    ]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("fct_sessions.csv does not exist"),
        "{}",
        missing.stderr
    );
}

#[test]
fn settings_that_would_switch_a_check_off_or_hang_a_run_are_refused_where_they_are() {
    let cases = [
        (
            "rules:\n  anomaly:\n    z_threshold: .nan\n",
            "vigil.yml:3:18: rules.anomaly.z_threshold: `.nan` is not a number vigil can compare \
             with: write a finite number",
        ),
        (
            "rules:\n  drift:\n    abs_change_threshold: -.inf\n",
            "vigil.yml:3:27: rules.drift.abs_change_threshold: `-.inf` is not a number vigil can \
             compare with: write a finite number",
        ),
        (
            "alert_routing:\n  timeout_seconds: .inf\n",
            "vigil.yml:2:20: alert_routing.timeout_seconds: `.inf` is not a number vigil can \
             compare with: write a finite number",
        ),
        (
            "alert_routing:\n  timeout_seconds: 0\n",
            "vigil.yml:2:20: alert_routing.timeout_seconds: is 0 but must be above 0 and at most \
             3600",
        ),
        (
            "alert_routing:\n  deadline_seconds: 7200\n",
            "vigil.yml:2:21: alert_routing.deadline_seconds: is 7200 but must be above 0 and at \
             most 3600",
        ),
        (
            "alert_routing:\n  retry_backoff_seconds: 1e9\n",
            "vigil.yml:2:26: alert_routing.retry_backoff_seconds: is 1000000000 but must be from \
             0 to 600",
        ),
        (
            "rules:\n  anomaly:\n    baseline: {window_days: 0}\n",
            "vigil.yml:3:29: rules.anomaly.baseline.window_days: must be at least 1: a window of \
             0 days never holds a baseline",
        ),
        (
            "rules:\n  funnel:\n    baseline:\n      window_days: 5\n      min_points: 6\n",
            "vigil.yml:5:19: rules.funnel.baseline.min_points: is 6 but the window has only 5 \
             day(s): no day could ever be judged",
        ),
        (
            "rules:\n  drift:\n    baseline: {window_days: 3, min_points: 4}\n",
            "vigil.yml:3:44: rules.drift.baseline.min_points: is 4 but the window has only 3 \
             day(s): no day could ever be judged",
        ),
    ];
    for (text, expected) in cases {
        let out = validate_text(&format!("version: 1\n{text}"));
        assert_eq!(out.code, 2, "{text}: {out:?}");
        // One line down: the `version: 1` line comes first.
        let expected = {
            let (line, rest) = expected
                .strip_prefix("vigil.yml:")
                .unwrap()
                .split_once(':')
                .unwrap();
            format!(
                "vigil: error: vigil.yml:{}:{rest}",
                line.parse::<u32>().unwrap() + 1
            )
        };
        assert_eq!(out.stderr.lines().next().unwrap(), expected, "{text}");
    }
    // The reference format is checked too.
    let reference = std::fs::read_to_string(puffy().join("monitoring_rules.reference.yml"))
        .unwrap()
        .replacen("z_score_threshold: 3.0", "z_score_threshold: .nan", 1);
    assert!(
        reference.contains(".nan"),
        "the reference config has a z_score_threshold"
    );
    let out = validate_text(&reference);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("`.nan` is not a number"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_config_too_deep_too_large_or_not_a_file_is_refused_at_once() {
    let started = std::time::Instant::now();
    let deep = format!(
        "version: 1\nrules:\n  freshness: {}{}\n",
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    let out = validate_text(&deep);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(
        out.stderr.lines().next().unwrap(),
        "vigil: error: vigil.yml:3:76: the config nests deeper than 64 levels"
    );
    let indented: String = (0..100)
        .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
        .collect();
    let out = validate_text(&indented);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("vigil.yml:65:129: the config nests deeper than 64 levels"),
        "{}",
        out.stderr
    );
    let large = format!("version: 1\n# {}\n", "x".repeat(2 << 20));
    let out = validate_text(&large);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("the config is larger than 1024 KiB; vigil reads configs up to that size"),
        "{}",
        out.stderr
    );
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("vigil.yml");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = vigil(["validate".as_ref(), fifo.as_os_str()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("cannot read config: not a regular file"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
