//! Reference parity: with `--scope all` and the reference config, vigil reproduces the reference
//! monitor's 14 findings on the Puffy warehouse (SPEC section 7, "Parity guidance").

use serde_json::Value;
use vigil_engine::config::Config;
use vigil_engine::rule::Scope;
use vigil_engine::runner::evaluate;
use vigil_engine::source::FolderSource;
use vigil_tests::{puffy, registry};

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * a.abs().max(b.abs())
}

#[test]
fn scope_all_reproduces_the_reference_findings() {
    let puffy = puffy();
    let config = Config::load(&puffy.join("monitoring_rules.reference.yml"), &registry()).unwrap();
    let day = "2025-03-08".parse().unwrap();
    let eval = evaluate(
        &config,
        &FolderSource::new(puffy.join("warehouse")),
        day,
        Scope::All,
    );

    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(puffy.join("../../reference/puffy_reference_report.json"))
            .unwrap(),
    )
    .unwrap();
    let expected = reference["findings"].as_array().unwrap();
    let summary = |f: &vigil_engine::rule::Finding| {
        format!(
            "{} {} {:?}",
            f.severity,
            f.check,
            f.partition_date.map(|d| d.to_string())
        )
    };
    assert_eq!(
        eval.findings.len(),
        expected.len(),
        "vigil found: {:#?}",
        eval.findings.iter().map(summary).collect::<Vec<_>>()
    );
    assert_eq!(reference["counts"]["ERROR"], 2);

    for (ours, theirs) in eval.findings.iter().zip(expected) {
        let what = summary(ours);
        assert_eq!(ours.severity.label(), theirs["severity"], "{what}");
        assert_eq!(ours.check, theirs["check"].as_str().unwrap(), "{what}");
        assert_eq!(
            ours.partition_date.map(|d| d.to_string()).as_deref(),
            theirs["partition_date"].as_str(),
            "{what}"
        );
        assert_eq!(ours.threshold, theirs["threshold"].as_f64(), "{what}");
        let context = ours.context.clone().unwrap_or_default();
        if ours.check == "anomaly:conversion_rate" {
            // The one intended difference: the reference drops the 36 whole-second session
            // timestamps; vigil parses them, which moves this finding's numbers slightly.
            assert!(
                close(ours.value.unwrap(), 0.00964630225080386, 1e-9),
                "{what}: {:?}",
                ours.value
            );
            let pct = context["pct_change"].as_f64().unwrap();
            assert_eq!(format!("{:.2}%", pct * 100.0), "43.39%", "{what}");
            for key in ["baseline_mean", "baseline_std", "z"] {
                let (a, b) = (
                    context[key].as_f64().unwrap(),
                    theirs["context"][key].as_f64().unwrap(),
                );
                assert!(close(a, b, 0.01), "{what}: {key} {a} vs {b}");
            }
            continue;
        }
        match theirs["value"].as_f64() {
            Some(v) => assert!(
                close(ours.value.unwrap(), v, 1e-9),
                "{what}: value {:?} vs {v}",
                ours.value
            ),
            None => assert_eq!(ours.value, None, "{what}"),
        }
        for (key, reference_value) in theirs["context"].as_object().into_iter().flatten() {
            match reference_value.as_f64() {
                Some(v) => {
                    let ours = context[key].as_f64().unwrap_or(f64::NAN);
                    assert!(close(ours, v, 1e-9), "{what}: context.{key} {ours} vs {v}");
                }
                None => assert_eq!(&context[key], reference_value, "{what}: context.{key}"),
            }
        }
    }
}

#[test]
fn the_default_scope_judges_only_the_expected_partition() {
    let puffy = puffy();
    let config = Config::load(&puffy.join("monitoring_rules.reference.yml"), &registry()).unwrap();
    let day = "2025-03-08".parse().unwrap();
    let eval = evaluate(
        &config,
        &FolderSource::new(puffy.join("warehouse")),
        day,
        Scope::Partition,
    );
    let found: Vec<(String, String)> = eval
        .findings
        .iter()
        .map(|f| (f.severity.to_string(), f.check.clone()))
        .collect();
    // Nothing remains: the week-old anomalies are baseline, not alerts; the zero-revenue orders
    // (at most 2 a day) are judged per day; and utm_tagged's revenue share (24% against 8.6%)
    // rests on 20 orders, 2.4 standard errors: chance, not a shift.
    assert_eq!(found, Vec::<(String, String)>::new());
}
