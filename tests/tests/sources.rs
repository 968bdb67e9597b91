//! Sources: the same rows as CSV files, as Parquet files, as a hive-partitioned Parquet
//! dataset and in a real PostgreSQL server (typed tables loaded with COPY) give identical
//! findings (severity, check, date, message; numbers within 1e-9
//! relative), on the Puffy warehouse with the native and the reference config (both scopes)
//! and on demo warehouses with each fault. And bad Parquet input is a finding, never a crash.

use std::path::{Path, PathBuf};

use serde_json::Value;
use vigil_tests::pg::Server;
use vigil_tests::{puffy, repo_root, vigil};

/// How a CSV warehouse is rewritten.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// `fct_x.parquet` files.
    Files,
    /// `fct_x/` datasets, partitioned by the day of the table's date column when it has one.
    Partitioned,
}

/// Rewrites every CSV table of `csv_dir` into `out` as Parquet (small row groups: several per
/// file, read in parallel).
fn to_parquet(csv_dir: &Path, out: &Path, layout: Layout) {
    let partitioned: &[(&str, &str, &str)] = match layout {
        Layout::Partitioned => &vigil_tests::BY_DAY,
        Layout::Files => &[],
    };
    vigil_tests::csv_folder_to_parquet(csv_dir, out, 3000, partitioned);
}

/// Runs vigil and returns its exit code and JSON report.
fn run(warehouse: &Path, config: &Path, out: &Path, date: &str, extra: &[&str]) -> (i32, Value) {
    let result = vigil_tests::vigil_run(warehouse, config, out, date, extra);
    assert!(result.code <= 1, "{result:?}");
    (result.code, vigil_tests::json_report(out))
}

/// Two messages are the same: equal text, numbers within 1e-9 relative.
fn same_message(a: &str, b: &str) -> bool {
    fn split(s: &str) -> Vec<(bool, String)> {
        let mut parts: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let numeric = c.is_ascii_digit() || c == '.';
            match parts.last_mut() {
                Some((n, text)) if *n == numeric => text.push(c),
                _ => parts.push((numeric, c.to_string())),
            }
        }
        parts
    }
    let (a, b) = (split(a), split(b));
    a.len() == b.len()
        && a.iter().zip(&b).all(|((na, ta), (_, tb))| {
            ta == tb
                || (*na
                    && match (ta.parse::<f64>(), tb.parse::<f64>()) {
                        (Ok(x), Ok(y)) => close(x, y),
                        _ => false,
                    })
        })
}

fn close(x: f64, y: f64) -> bool {
    x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
}

/// A message with the warehouse folder and the table files' extensions left out: the one
/// difference between sources is where a table is.
fn located(message: &str, warehouse: &Path) -> String {
    message
        .replace(&format!("{}/", warehouse.display()), "")
        .replace(".csv", "")
        .replace(".parquet", "")
}

/// The findings of two reports agree (the tables' locations aside); `what` names the
/// comparison in failures.
fn assert_same_findings(csv: (&Value, &Path), other: (&Value, &Path), what: &str) {
    let ((csv, csv_dir), (other, other_dir)) = (csv, other);
    let a = csv["findings"].as_array().unwrap();
    let b = other["findings"].as_array().unwrap();
    let show = |fs: &[Value]| {
        fs.iter()
            .map(|f| {
                format!(
                    "{} {} {} {}",
                    f["severity"], f["check"], f["partition_date"], f["message"]
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        a.len(),
        b.len(),
        "{what}: CSV\n{}\nvs\n{}",
        show(a),
        show(b)
    );
    for (x, y) in a.iter().zip(b) {
        let key = |f: &Value| {
            (
                f["severity"].clone(),
                f["check"].clone(),
                f["partition_date"].clone(),
            )
        };
        assert_eq!(key(x), key(y), "{what}: CSV\n{}\nvs\n{}", show(a), show(b));
        let mx = located(x["message"].as_str().unwrap(), csv_dir);
        let my = located(y["message"].as_str().unwrap(), other_dir);
        assert!(same_message(&mx, &my), "{what}: {mx}\nvs\n{my}");
        match (x["value"].as_f64(), y["value"].as_f64()) {
            (Some(vx), Some(vy)) => assert!(close(vx, vy), "{what}: {x} vs {y}"),
            (vx, vy) => assert_eq!(vx, vy, "{what}: {x} vs {y}"),
        }
    }
}

/// Where the same rows are read from.
#[derive(Clone, Debug)]
enum Copy {
    Parquet(Layout),
    /// A database of the server, named.
    Postgres(String),
}

/// Runs `config` on the CSV warehouse, on both Parquet layouts of it and on its copy in
/// database `db` of `pg`; the findings agree. Returns the CSV report.
fn assert_equivalent(
    csv_dir: &Path,
    config: &Path,
    date: &str,
    extra: &[&str],
    pg: (&Server, &str),
) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let (code, csv) = run(csv_dir, config, &dir.path().join("csv"), date, extra);
    let (server, db) = pg;
    let copies = [
        Copy::Parquet(Layout::Files),
        Copy::Parquet(Layout::Partitioned),
        Copy::Postgres(db.to_string()),
    ];
    for copy in copies {
        let warehouse = match &copy {
            Copy::Parquet(layout) => {
                let warehouse = dir.path().join(format!("{layout:?}"));
                to_parquet(csv_dir, &warehouse, *layout);
                warehouse
            }
            Copy::Postgres(db) => PathBuf::from(server.url(db)),
        };
        let layout = &copy;
        let out = dir
            .path()
            .join(format!("{layout:?}-reports").replace(['"', '(', ')'], ""));
        let (parquet_code, parquet) = run(&warehouse, config, &out, date, extra);
        let what = format!("{layout:?} {} {date} {extra:?}", config.display());
        assert_eq!(code, parquet_code, "{what}");
        assert_same_findings((&csv, csv_dir), (&parquet, &warehouse), &what);
        let rows = |report: &Value| -> Vec<(Value, Value)> {
            report["tables"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| (t["table"].clone(), t["rows"].clone()))
                .collect()
        };
        assert_eq!(rows(&csv), rows(&parquet), "{what}: rows read");
    }
    csv
}

#[test]
fn puffy_as_parquet_and_in_postgres_gives_the_csv_findings_with_the_native_and_reference_configs() {
    let warehouse = puffy().join("warehouse");
    let server = Server::start();
    server.load_warehouse("puffy", &warehouse);
    let pg = (&server, "puffy");
    let native = repo_root().join("schema/examples/puffy.yml");
    let reference = puffy().join("monitoring_rules.reference.yml");
    let report = assert_equivalent(&warehouse, &native, "2025-03-08", &[], pg);
    assert!(!report["findings"].as_array().unwrap().is_empty());
    assert_equivalent(&warehouse, &reference, "2025-03-08", &[], pg);
    let all = assert_equivalent(
        &warehouse,
        &reference,
        "2025-03-08",
        &["--scope", "all"],
        pg,
    );
    // The reference's 14 findings, reproduced on every source.
    assert_eq!(all["findings"].as_array().unwrap().len(), 14);
}

/// Writes a demo warehouse with `faults` into `dir`.
fn demo(dir: &Path, faults: &str) -> PathBuf {
    let mut args = vec![
        "demo".to_string(),
        "--out".into(),
        dir.display().to_string(),
        "--days".into(),
        "60".into(),
        "--sessions-per-day".into(),
        "400".into(),
        "--end-date".into(),
        "2025-03-31".into(),
    ];
    if !faults.is_empty() {
        args.extend(["--faults".into(), faults.into()]);
    }
    let out = vigil(&args);
    assert_eq!(out.code, 0, "{out:?}");
    dir.join("warehouse")
}

#[test]
fn demo_warehouses_with_each_fault_give_the_same_findings_as_parquet() {
    let faults = [
        "",
        "missing-day",
        "partial-load",
        "duplicates",
        "negative-revenue",
        "zero-revenue-spike",
        "conversion-drop",
        "revenue-spike",
        "channel-shift-to-direct",
        "channel-disappearing",
        "null-spike",
        "unparsable-timestamps",
        "renamed-column",
    ];
    let listed = vigil(["demo", "--help"]).stdout;
    for fault in faults.iter().filter(|f| !f.is_empty()) {
        assert!(
            listed.contains(fault),
            "demo has no fault `{fault}`:\n{listed}"
        );
    }
    let server = Server::start();
    for (n, fault) in faults.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = demo(dir.path(), fault);
        let config = dir.path().join("vigil.yml");
        let db = format!("demo{n}");
        server.load_warehouse(&db, &warehouse);
        assert_equivalent(&warehouse, &config, "2025-03-31", &[], (&server, &db));
    }
}

#[test]
fn bad_parquet_input_is_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("warehouse");
    to_parquet(&puffy().join("warehouse"), &warehouse, Layout::Partitioned);
    let config = repo_root().join("schema/examples/puffy.yml");
    // A truncated file, a file that is not Parquet, a folder that is not a partition.
    let attribution = warehouse.join("fct_attribution.parquet");
    let bytes = std::fs::read(&attribution).unwrap();
    std::fs::write(&attribution, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(
        warehouse.join("fct_sessions/session_date=2025-03-01/extra.parquet"),
        "not parquet",
    )
    .unwrap();
    std::fs::create_dir(warehouse.join("fct_sessions/backup")).unwrap();
    let out = dir.path().join("reports");
    let (_, report) = run(&warehouse, &config, &out, "2025-03-08", &[]);
    let finding = |check: &str| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == check)
            .unwrap_or_else(|| panic!("no {check}: {}", report["findings"]))
            .clone()
    };
    let truncated = finding("attribution:unreadable_file");
    assert_eq!(truncated["severity"], "ERROR");
    let sessions = finding("sessions:unreadable_file");
    let message = sessions["message"].as_str().unwrap();
    assert!(message.contains("2 part(s) cannot be read"), "{message}");
    assert!(message.contains("extra.parquet"), "{message}");
    assert!(
        message.contains("folder `backup` is not a partition (`key=value`)"),
        "{message}"
    );
}

/// The hostile text: an identifier and values that would end a quoted string and run SQL.
const HOSTILE_COLUMN: &str = "src\"); DROP TABLE fct_orders; --";
const HOSTILE_CHANNEL: &str = "x'); DROP TABLE fct_sessions; --";

#[test]
fn hostile_column_and_channel_names_are_data_not_sql() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("warehouse");
    std::fs::create_dir(&warehouse).unwrap();
    for entry in std::fs::read_dir(puffy().join("warehouse")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, warehouse.join(path.file_name().unwrap())).unwrap();
    }
    // Sessions: the channel column gets a hostile name, a third of its values a hostile text.
    let sessions = warehouse.join("fct_sessions.csv");
    let mut reader = csv::Reader::from_path(&sessions).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(|h| {
            if h == "marketing_source" {
                HOSTILE_COLUMN.to_string()
            } else {
                h.to_string()
            }
        })
        .collect();
    let channel = header.iter().position(|h| h == HOSTILE_COLUMN).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let mut writer = csv::Writer::from_path(&sessions).unwrap();
    writer.write_record(&header).unwrap();
    for (n, record) in records.iter().enumerate() {
        let cells: Vec<&str> = record
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == channel && n % 3 == 0 {
                    HOSTILE_CHANNEL
                } else {
                    c
                }
            })
            .collect();
        writer.write_record(cells).unwrap();
    }
    writer.flush().unwrap();
    drop(writer);
    let config = dir.path().join("vigil.yml");
    let quoted = HOSTILE_COLUMN.replace('"', "\\\"");
    std::fs::write(
        &config,
        format!(
            "tables:\n  sessions: {{file: fct_sessions.csv, date_column: session_start}}\n  \
             orders: {{file: fct_orders.csv, date_column: order_ts}}\n  attribution:\n    \
             file: fct_attribution.csv\n    date_column: orders.order_ts\n    lookups:\n      \
             - {{table: orders, key: transaction_id, columns: [order_ts, revenue]}}\n\
             rules:\n  drift:\n    weightings: [sessions, revenue]\n    \
             sessions: {{channel_column: \"{quoted}\"}}\n    \
             attribution: {{model: \"last'); DROP TABLE fct_orders; --\"}}\n    \
             baseline: {{window_days: 7, min_points: 3}}\n  revenue:\n    \
             null_rates: {{table: sessions, max: {{\"{quoted}\": 0.01}}}}\n"
        ),
    )
    .unwrap();
    let server = Server::start();
    server.load_warehouse("hostile", &warehouse);
    let report = assert_equivalent(&warehouse, &config, "2025-03-08", &[], (&server, "hostile"));
    // The hostile channel is a channel like any other, and every table is still there.
    let metric = format!("anomaly:channel_session_share {HOSTILE_CHANNEL}");
    assert!(
        report["daily_metrics"][&metric].is_object(),
        "{}",
        report["daily_metrics"]
    );
    for table in ["fct_sessions", "fct_orders", "fct_attribution"] {
        server.sql("hostile", &format!("SELECT 1 FROM \"{table}\" LIMIT 1"));
    }
}

#[test]
fn text_numbers_and_their_edges_mean_the_same_in_postgres_as_in_csv() {
    // Orders whose revenue is text at the edges of the number grammar: long exponents,
    // subnormals, values that round to zero or to infinity, spaces, signs, and no numbers.
    let edges = [
        "1e-310", "1e00002", "abc", " 12 ", "-0", "1e-400", "1e400", "1e99999", "1e-99999", "+.5",
        "5.", "NaN", "inf", "0x10", "1_000", "2.5E+3", ".", "1e", "-1e-5",
    ];
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("warehouse");
    std::fs::create_dir(&warehouse).unwrap();
    for entry in std::fs::read_dir(puffy().join("warehouse")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), warehouse.join(entry.file_name())).unwrap();
    }
    let orders = warehouse.join("fct_orders.csv");
    let mut reader = csv::Reader::from_path(&orders).unwrap();
    let header = reader.headers().unwrap().clone();
    let revenue = header.iter().position(|h| h == "revenue").unwrap();
    let mut writer = csv::Writer::from_path(dir.path().join("orders.csv")).unwrap();
    writer.write_record(&header).unwrap();
    for (i, record) in reader.records().enumerate() {
        let mut cells: Vec<String> = record.unwrap().iter().map(String::from).collect();
        // Every 7th order, so most days have one.
        if i % 7 == 0 {
            cells[revenue] = edges[(i / 7) % edges.len()].to_string();
        }
        writer.write_record(&cells).unwrap();
    }
    writer.flush().unwrap();
    drop(writer);
    std::fs::rename(dir.path().join("orders.csv"), &orders).unwrap();

    let server = Server::start();
    server.load_warehouse("edges", &warehouse);
    let config = repo_root().join("schema/examples/puffy.yml");
    let metrics = |location: &Path, name: &str| -> Value {
        let file = dir.path().join(format!("{name}.json"));
        let out = dir.path().join(name);
        let run = vigil_tests::vigil_run(
            location,
            &config,
            &out,
            "2025-03-08",
            &["--scope", "all", "--metrics-out", file.to_str().unwrap()],
        );
        assert!(run.code <= 1, "{run:?}");
        let unreadable: Vec<String> = vigil_tests::json_report(&out)["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"].as_str().unwrap().ends_with("unreadable_file"))
            .map(|f| f["message"].to_string())
            .collect();
        assert!(unreadable.is_empty(), "{name}: {unreadable:?}");
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
    };
    let csv = metrics(&warehouse, "csv");
    let pg = metrics(Path::new(&server.url("edges")), "pg");
    assert!(
        csv.to_string().contains("non_numeric"),
        "the config asks for non-numeric counts"
    );
    let entries = |v: &Value| -> Vec<(String, Value)> {
        v.as_object()
            .unwrap()
            .values()
            .flat_map(|list| list.as_array().unwrap().clone())
            .map(|e| (e["request"].to_string(), e["value"].clone()))
            .collect()
    };
    let (csv, pg) = (entries(&csv), entries(&pg));
    assert_eq!(csv.len(), pg.len());
    let differing: Vec<String> = csv
        .iter()
        .zip(&pg)
        .filter(|((_, a), (_, b))| !vigil_tests::same_json(a, b, 1e-9))
        .map(|((request, a), (_, b))| format!("{request}:\n  CSV {a}\n  PostgreSQL {b}"))
        .collect();
    assert!(differing.is_empty(), "{}", differing.join("\n"));
}
