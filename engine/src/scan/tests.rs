use super::*;
use crate::metric::{Cmp, Filter, Measure, Number};
use crate::timestamp::NaiveTimestamps;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn orders_config() -> TableConfig {
    TableConfig {
        file: "orders.csv".into(),
        relation: None,
        date_column: Some("order_ts".into()),
        required_columns: vec!["transaction_id".into(), "revenue".into(), "channel".into()],
        naive_timestamps: NaiveTimestamps::Reject,
        max_unparsable_dates: 0,
        max_empty_dates: 0,
        max_multiline_rows: 0,
        lookups: Vec::new(),
    }
}

const ORDERS: &str = "\
transaction_id,order_ts,revenue,source
A,2025-03-01T10:00:00Z,100.5,direct
B,2025-03-01 23:30:00-02:00,-5,\"google, ads\"
A,2025-03-01T12:00:00.123+00:00,0,direct
C,2025-03-03T08:00:00Z,,direct
D,2025-03-03T09:00:00Z,abc,
E,2025-03-03 25:00:00Z,7,direct
F,not a date,8,direct
G,2025-03-03T10:00:00,9,direct
,2025-03-03T11:00:00Z,NULL,direct
short,2025-03-03T11:30:00Z
";

fn scan(text: &str, config: &TableConfig, requests: &[MetricRequest]) -> TableScan {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(&config.file), text).unwrap();
    scan_table(
        "orders",
        config,
        dir.path(),
        ScanInput {
            requests,
            ..ScanInput::default()
        },
    )
}

fn value(scan: &TableScan, request: &MetricRequest) -> MetricValue {
    scan.metrics
        .iter()
        .find(|(r, _)| r == request)
        .map(|(_, v)| v.clone().expect("metric computed"))
        .expect("metric present")
}

fn series(pairs: &[(&str, f64)]) -> MetricValue {
    MetricValue::Daily(pairs.iter().map(|(d, v)| (day(d), *v)).collect())
}

#[test]
fn table_health_counts_every_row_and_every_bad_date() {
    let s = scan(ORDERS, &orders_config(), &[]);
    let stats = s.outcome.unwrap();
    assert_eq!(stats.rows, 10);
    assert_eq!(stats.missing_columns, ["channel"]);
    assert_eq!(stats.malformed_rows, 1);
    let dates = stats.dates.unwrap();
    // B is 01:30 UTC on 03-02; E has hour 25; F has no date; G is naive.
    assert_eq!(
        dates.rows_by_day,
        BTreeMap::from([
            (day("2025-03-01"), 2),
            (day("2025-03-02"), 1),
            (day("2025-03-03"), 4)
        ])
    );
    assert_eq!(
        dates.unparsable,
        BTreeMap::from([(None, 1), (Some(day("2025-03-03")), 2)])
    );
    assert_eq!(dates.naive, 1);
    assert_eq!(
        dates.samples,
        ["2025-03-03 25:00:00Z", "not a date", "2025-03-03T10:00:00"]
    );
    assert_eq!(dates.span(), Some((day("2025-03-01"), day("2025-03-03"))));
}

#[test]
fn computes_each_measure_per_day_with_zero_filled_gaps() {
    let rows = MetricRequest::daily("orders", Measure::Rows);
    let distinct = MetricRequest::daily("orders", Measure::Distinct("transaction_id".into()));
    let sum = MetricRequest::daily("orders", Measure::Sum("revenue".into()));
    let numeric = MetricRequest::daily("orders", Measure::Numeric("revenue".into()));
    let nulls = MetricRequest::daily("orders", Measure::Nulls("revenue".into()));
    let text = MetricRequest::daily("orders", Measure::NonNumeric("revenue".into()));
    let negative = MetricRequest::daily(
        "orders",
        Measure::Where {
            column: "revenue".into(),
            cmp: Cmp::Lt,
            value: Number(0.0),
        },
    );
    let requests = [&rows, &distinct, &sum, &numeric, &nulls, &text, &negative].map(Clone::clone);
    let s = scan(ORDERS, &orders_config(), &requests);
    assert_eq!(
        value(&s, &rows),
        series(&[
            ("2025-03-01", 2.0),
            ("2025-03-02", 1.0),
            ("2025-03-03", 4.0)
        ])
    );
    assert_eq!(
        value(&s, &distinct),
        series(&[
            ("2025-03-01", 1.0),
            ("2025-03-02", 1.0),
            ("2025-03-03", 3.0)
        ])
    );
    assert_eq!(
        value(&s, &sum),
        series(&[
            ("2025-03-01", 100.5),
            ("2025-03-02", -5.0),
            ("2025-03-03", 0.0)
        ])
    );
    assert_eq!(
        value(&s, &numeric),
        series(&[
            ("2025-03-01", 2.0),
            ("2025-03-02", 1.0),
            ("2025-03-03", 0.0)
        ])
    );
    // C (empty), the NULL cell and the short row's absent cell are nulls; D is text.
    assert_eq!(
        value(&s, &nulls),
        series(&[
            ("2025-03-01", 0.0),
            ("2025-03-02", 0.0),
            ("2025-03-03", 3.0)
        ])
    );
    assert_eq!(
        value(&s, &text),
        series(&[
            ("2025-03-01", 0.0),
            ("2025-03-02", 0.0),
            ("2025-03-03", 1.0)
        ])
    );
    assert_eq!(
        value(&s, &negative),
        series(&[
            ("2025-03-01", 0.0),
            ("2025-03-02", 1.0),
            ("2025-03-03", 0.0)
        ])
    );
}

#[test]
fn totals_include_rows_without_a_day_and_duplicates_count_repeats() {
    let rows = MetricRequest::total("orders", Measure::Rows);
    let dups = MetricRequest::total("orders", Measure::Duplicates("transaction_id".into()));
    let zero = MetricRequest::total(
        "orders",
        Measure::Where {
            column: "revenue".into(),
            cmp: Cmp::Eq,
            value: Number(0.0),
        },
    );
    let s = scan(
        ORDERS,
        &orders_config(),
        &[rows.clone(), dups.clone(), zero.clone()],
    );
    assert_eq!(value(&s, &rows), MetricValue::Total(10.0));
    assert_eq!(value(&s, &dups), MetricValue::Total(1.0));
    assert_eq!(value(&s, &zero), MetricValue::Total(1.0));
}

#[test]
fn groups_by_a_dimension_with_quoted_commas() {
    let by_source = MetricRequest::daily_by("orders", Measure::Sum("revenue".into()), "source");
    let s = scan(ORDERS, &orders_config(), std::slice::from_ref(&by_source));
    let MetricValue::DailyBy(v) = value(&s, &by_source) else {
        panic!("not grouped")
    };
    assert_eq!(
        v[&day("2025-03-01")],
        BTreeMap::from([("direct".to_string(), 100.5)])
    );
    assert_eq!(
        v[&day("2025-03-02")],
        BTreeMap::from([("google, ads".to_string(), -5.0)])
    );
    assert_eq!(
        v[&day("2025-03-03")],
        BTreeMap::from([("direct".to_string(), 0.0), (String::new(), 0.0)])
    );
}

#[test]
fn missing_columns_make_only_their_metrics_unavailable() {
    let ok = MetricRequest::daily("orders", Measure::Rows);
    let bad = MetricRequest::daily("orders", Measure::Sum("purchases".into()));
    let s = scan(ORDERS, &orders_config(), &[ok.clone(), bad.clone()]);
    assert!(s.metrics.iter().any(|(r, v)| r == &ok && v.is_ok()));
    let reason = s
        .metrics
        .iter()
        .find(|(r, _)| r == &bad)
        .unwrap()
        .1
        .clone()
        .unwrap_err();
    assert_eq!(reason, "column `purchases` is missing from orders.csv");
}

#[test]
fn missing_empty_and_header_only_files_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let config = orders_config();
    let rows = MetricRequest::daily("orders", Measure::Rows);
    let input = ScanInput {
        requests: std::slice::from_ref(&rows),
        ..ScanInput::default()
    };
    let missing = scan_table("orders", &config, dir.path(), input);
    assert_eq!(missing.outcome, Err(TableProblem::Missing));
    assert!(missing.metrics[0]
        .1
        .as_ref()
        .unwrap_err()
        .contains("is missing"));

    let empty = scan("", &config, std::slice::from_ref(&rows));
    assert_eq!(empty.outcome, Err(TableProblem::Empty));

    let header_only = scan(
        "transaction_id,order_ts,revenue\n",
        &config,
        std::slice::from_ref(&rows),
    );
    assert_eq!(
        value(&header_only, &rows),
        MetricValue::Daily(BTreeMap::new())
    );
    let stats = header_only.outcome.unwrap();
    assert_eq!(stats.rows, 0);
    assert_eq!(stats.dates.unwrap().span(), None);
}

#[test]
fn a_table_without_date_column_serves_totals_only() {
    let config = TableConfig {
        date_column: None,
        ..orders_config()
    };
    let total = MetricRequest::total("orders", Measure::Rows);
    let daily = MetricRequest::daily("orders", Measure::Rows);
    let s = scan(ORDERS, &config, &[total.clone(), daily.clone()]);
    assert_eq!(value(&s, &total), MetricValue::Total(10.0));
    let reason = s
        .metrics
        .iter()
        .find(|(r, _)| r == &daily)
        .unwrap()
        .1
        .clone()
        .unwrap_err();
    assert_eq!(
        reason,
        "table file orders.csv has no date_column configured"
    );
}

#[test]
fn a_lookup_brings_date_and_revenue_and_counts_misses() {
    let orders_text = "transaction_id,order_ts,revenue\nA,2025-03-01T10:00:00Z,100\nB,2025-03-02T10:00:00Z,50\nA,2025-03-05T10:00:00Z,999\n";
    let attribution_text = "transaction_id,model,attributed_source\nA,first_click,google\nA,last_click,direct\nB,Last_Click,google\nZ,last_click,meta\n,last_click,none\n";
    let orders = TableConfig {
        file: "orders.csv".into(),
        relation: None,
        date_column: Some("order_ts".into()),
        required_columns: vec![],
        naive_timestamps: NaiveTimestamps::Reject,
        max_unparsable_dates: 0,
        max_empty_dates: 0,
        max_multiline_rows: 0,
        lookups: Vec::new(),
    };
    let export = Export {
        key: "transaction_id".into(),
        columns: vec!["order_ts".into(), "revenue".into()],
    };
    let source = scan_source(
        "orders",
        &orders,
        "orders.csv".into(),
        Ok(orders_text.as_bytes()),
        ScanInput {
            export: Some(&export),
            ..ScanInput::default()
        },
    );
    let index = source.index.expect("orders exports an index");
    assert_eq!(index.problem, None);
    // The first row of a duplicated key wins.
    let a = index.rows.get(b"A").expect("key A");
    assert_eq!(
        (a.value(0), a.value(1)),
        (Some(&b"2025-03-01T10:00:00Z"[..]), Some(&b"100"[..]))
    );

    let attribution = TableConfig {
        file: "attribution.csv".into(),
        date_column: Some("orders.order_ts".into()),
        lookups: vec![crate::config::attribution_lookup("order_ts")],
        ..orders.clone()
    };
    let last_click = Filter::contains_ignore_case("model", "last");
    let by_channel = MetricRequest::daily_by(
        "attribution",
        Measure::Sum("orders.revenue".into()),
        "attributed_source",
    )
    .filtered(last_click);
    let scan = scan_source(
        "attribution",
        &attribution,
        "attribution.csv".into(),
        Ok(attribution_text.as_bytes()),
        ScanInput {
            requests: std::slice::from_ref(&by_channel),
            lookups: &[(&index, "transaction_id")],
            ..ScanInput::default()
        },
    );
    let stats = scan.outcome.as_ref().unwrap();
    assert_eq!(
        stats.lookup_misses,
        BTreeMap::from([("orders".to_string(), 1)])
    );
    assert_eq!(stats.missing_columns, Vec::<String>::new());
    let MetricValue::DailyBy(v) = value(&scan, &by_channel) else {
        panic!("not grouped")
    };
    assert_eq!(
        v,
        BTreeMap::from([
            (
                day("2025-03-01"),
                BTreeMap::from([("direct".to_string(), 100.0)])
            ),
            (
                day("2025-03-02"),
                BTreeMap::from([("google".to_string(), 50.0)])
            ),
        ])
    );
}

#[test]
fn a_failed_lookup_makes_looked_up_metrics_unavailable() {
    let index = LookupIndex {
        table: "orders".into(),
        columns: vec!["revenue".into()],
        problem: Some("table file orders.csv is missing".into()),
        ..LookupIndex::default()
    };
    let config = TableConfig {
        file: "attribution.csv".into(),
        relation: None,
        date_column: None,
        required_columns: vec![],
        naive_timestamps: NaiveTimestamps::Reject,
        max_unparsable_dates: 0,
        max_empty_dates: 0,
        max_multiline_rows: 0,
        lookups: Vec::new(),
    };
    let total = MetricRequest::total("attribution", Measure::Sum("orders.revenue".into()));
    let scan = scan_source(
        "attribution",
        &config,
        "attribution.csv".into(),
        Ok("transaction_id\nA\n".as_bytes()),
        ScanInput {
            requests: std::slice::from_ref(&total),
            lookups: &[(&index, "transaction_id")],
            ..ScanInput::default()
        },
    );
    assert_eq!(
        scan.metrics[0].1,
        Err("`orders.revenue` cannot be looked up: table file orders.csv is missing".into())
    );
}

#[test]
fn parallel_segments_give_exactly_the_sequential_result() {
    use crate::demo::{generate, DemoSpec, Fault, Magnitude, Tables};
    let spec = DemoSpec {
        end: day("2025-03-31"),
        days: 12,
        sessions_per_day: 2000,
        seed: 3,
        faults: vec![Fault::UnparsableTimestamps, Fault::NullSpike],
        magnitude: Magnitude::Gross,
    };
    let mut tables = Tables {
        sessions: Vec::new(),
        orders: Vec::new(),
        attribution: Vec::new(),
    };
    generate(&spec, &mut tables).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.csv"), &tables.sessions).unwrap();
    let config = TableConfig {
        file: "s.csv".into(),
        relation: None,
        date_column: Some("session_start".into()),
        required_columns: vec!["session_id".into()],
        naive_timestamps: NaiveTimestamps::Reject,
        max_unparsable_dates: 0,
        max_empty_dates: 0,
        max_multiline_rows: 0,
        lookups: Vec::new(),
    };
    let requests = [
        MetricRequest::daily("s", Measure::Rows),
        MetricRequest::daily("s", Measure::Distinct("session_id".into())),
        MetricRequest::daily_by(
            "s",
            Measure::Distinct("session_id".into()),
            "marketing_source",
        ),
        MetricRequest::daily("s", Measure::Nulls("client_id".into())),
        MetricRequest::total("s", Measure::Sum("duration_sec".into())),
        MetricRequest::daily(
            "s",
            Measure::Where {
                column: "purchases".into(),
                cmp: Cmp::Gt,
                value: Number(0.0),
            },
        ),
        MetricRequest::daily_by("s", Measure::Rows, "user_agent"),
    ];
    let input = ScanInput {
        requests: &requests,
        ..ScanInput::default()
    };
    let path = dir.path().join("s.csv");
    let sequential = scan_source(
        "s",
        &config,
        path.clone(),
        Ok(tables.sessions.as_slice()),
        input,
    );
    // 9 and 16 workers ask for more segments than the seeker samples by default (128).
    for workers in [2, 3, 4, 9, 16] {
        let parallel = scan_parallel("s", &config, &path, input, workers).expect("the file splits");
        assert_eq!(parallel.outcome, sequential.outcome, "{workers} workers");
        for (request, value) in &sequential.metrics {
            let theirs = &parallel
                .metrics
                .iter()
                .find(|(r, _)| r == request)
                .unwrap()
                .1;
            match (value, theirs) {
                (Ok(MetricValue::Total(a)), Ok(MetricValue::Total(b))) => {
                    assert!((a - b).abs() <= 1e-9 * a.abs(), "{request}: {a} vs {b}")
                }
                _ => assert_eq!(value, theirs, "{request}"),
            }
        }
    }
    let stats = sequential.outcome.unwrap();
    assert_eq!(stats.dates.as_ref().unwrap().rows_by_day.len(), 12);
    assert!(stats.dates.unwrap().unparsable_total() > 0);
}

#[test]
fn workers_read_their_own_run_then_the_end_of_the_longest_run_left() {
    let runs = SegmentRuns::new(10, 3);
    // Runs: 0..3, 3..6, 6..10.
    assert_eq!(runs.next(0), Some(0));
    assert_eq!(runs.next(2), Some(6));
    assert_eq!(runs.next(2), Some(7));
    assert_eq!(runs.next(0), Some(1));
    assert_eq!(runs.next(0), Some(2));
    // Worker 0 is done with its run: the longest left is 3..6, then (a tie) 3..5, then 8..10.
    assert_eq!(runs.next(0), Some(5));
    assert_eq!(runs.next(0), Some(4));
    assert_eq!(runs.next(0), Some(9));
    // Worker 1 reads what is left of its run, then the last segment of worker 2's.
    assert_eq!(runs.next(1), Some(3));
    assert_eq!(runs.next(1), Some(8));
    assert_eq!(runs.next(2), None);
    assert_eq!(runs.next(0), None);
}

#[test]
fn dimension_values_that_differ_only_in_invalid_bytes_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let config = orders_config();
    let mut text = b"transaction_id,order_ts,revenue,source\n".to_vec();
    for (id, source) in [
        ("A", &b"x\xff"[..]),
        ("B", b"x\xfe"),
        ("C", b"x\xfe"),
        ("D", b"x"),
    ] {
        text.extend_from_slice(format!("{id},2025-03-01T10:00:00Z,1,").as_bytes());
        text.extend_from_slice(source);
        text.push(b'\n');
    }
    std::fs::write(dir.path().join(&config.file), text).unwrap();
    let request = MetricRequest::daily_by("orders", Measure::Rows, "source");
    let scan = scan_table(
        "orders",
        &config,
        dir.path(),
        ScanInput {
            requests: std::slice::from_ref(&request),
            ..ScanInput::default()
        },
    );
    let MetricValue::DailyBy(series) = value(&scan, &request) else {
        panic!("a per-dimension series");
    };
    assert_eq!(
        series[&day("2025-03-01")],
        BTreeMap::from([
            ("x".to_string(), 1.0),
            ("x\\xFE".to_string(), 2.0),
            ("x\\xFF".to_string(), 1.0)
        ])
    );
}

#[test]
fn a_row_over_several_lines_is_counted_with_where_it_starts() {
    let text = "transaction_id,order_ts,revenue,source\n\
                A,2025-03-01T10:00:00Z,1,direct\n\
                B,2025-03-01T10:00:00Z,1,\"two\nlines\"\n\
                C,2025-03-01T10:00:00Z,1,\"three\n\nlines\"\n";
    let scan = scan(text, &orders_config(), &[]);
    let multiline = scan.outcome.unwrap().multiline;
    assert_eq!(
        multiline,
        Multiline {
            records: 2,
            first: Some(71),
            most_breaks: 2,
            first_line: Some(3),
        }
    );
}

#[test]
fn a_scan_until_a_day_reads_as_if_the_later_rows_were_not_there() {
    // The first row is dated after the cut and holds an id met again before it; a later row
    // runs over two lines, another lacks a field; one row has no date.
    let text = "\
transaction_id,order_ts,revenue,source
X,2025-03-04T00:00:00Z,1,direct
A,2025-03-01T10:00:00Z,1,direct
X,2025-03-02T10:00:00Z,2,direct
A,2025-03-02T11:00:00Z,3,direct
Y,2025-03-05T10:00:00Z,4,\"two
lines\"
short,2025-03-05T11:00:00Z
Z,,5,direct
";
    let config = crate::testing::table("orders.csv", Some("order_ts"));
    let duplicates = MetricRequest::daily("orders", Measure::Duplicates("transaction_id".into()));
    let sum = MetricRequest::daily("orders", Measure::Sum("revenue".into()));
    let requests = [duplicates.clone(), sum.clone()];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(&config.file), text).unwrap();
    let read = |until: Option<&str>| {
        scan_table(
            "orders",
            &config,
            dir.path(),
            ScanInput {
                requests: &requests,
                until: until.map(day),
                ..ScanInput::default()
            },
        )
    };
    let cut = read(Some("2025-03-02"));
    let stats = cut.outcome.as_ref().unwrap();
    assert_eq!((stats.rows, stats.malformed_rows), (4, 0));
    assert_eq!(stats.multiline, Multiline::default());
    let dates = stats.dates.as_ref().unwrap();
    assert_eq!(dates.nulls, 1);
    assert_eq!(
        dates.rows_by_day,
        BTreeMap::from([(day("2025-03-01"), 1), (day("2025-03-02"), 2)])
    );
    assert_eq!(
        value(&cut, &duplicates),
        series(&[("2025-03-01", 0.0), ("2025-03-02", 1.0)])
    );
    assert_eq!(
        value(&cut, &sum),
        series(&[("2025-03-01", 1.0), ("2025-03-02", 5.0)])
    );
    // Read whole, the later rows count: X of 03-02 is a duplicate of the first row.
    let whole = read(None);
    let stats = whole.outcome.as_ref().unwrap();
    assert_eq!((stats.rows, stats.malformed_rows), (7, 1));
    assert_eq!(stats.multiline.records, 1);
    assert_eq!(
        value(&whole, &duplicates),
        series(&[
            ("2025-03-01", 0.0),
            ("2025-03-02", 2.0),
            ("2025-03-03", 0.0),
            ("2025-03-04", 0.0),
            ("2025-03-05", 0.0)
        ])
    );
}
