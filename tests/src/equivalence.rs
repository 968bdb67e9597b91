//! The same rows read from different sources give the same findings: helpers shared by the
//! source tests (CSV, Parquet, PostgreSQL, Spark).

use std::path::{Path, PathBuf};

use serde_json::Value;

/// How a CSV warehouse is rewritten.
#[derive(Clone, Copy, Debug)]
pub enum Layout {
    /// `fct_x.parquet` files.
    Files,
    /// `fct_x/` datasets, partitioned by the day of the table's date column when it has one.
    Partitioned,
}

/// Rewrites every CSV table of `csv_dir` into `out` as Parquet (small row groups: several per
/// file, read in parallel).
pub fn to_parquet(csv_dir: &Path, out: &Path, layout: Layout) {
    let partitioned: &[(&str, &str, &str)] = match layout {
        Layout::Partitioned => &crate::BY_DAY,
        Layout::Files => &[],
    };
    crate::csv_folder_to_parquet(csv_dir, out, 3000, partitioned);
}

/// Runs vigil and returns its exit code and JSON report.
pub fn run(
    warehouse: &Path,
    config: &Path,
    out: &Path,
    date: &str,
    extra: &[&str],
) -> (i32, Value) {
    let result = crate::vigil_run(warehouse, config, out, date, extra);
    assert!(result.code <= 1, "{result:?}");
    (result.code, crate::json_report(out))
}

/// Two messages are the same: equal text, numbers within 1e-9 relative.
pub fn same_message(a: &str, b: &str) -> bool {
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

/// Two numbers agree within 1e-9 relative.
pub fn close(x: f64, y: f64) -> bool {
    x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
}

/// A message with the warehouse folder and the table files' extensions left out: the one
/// difference between sources is where a table is.
pub fn located(message: &str, warehouse: &Path) -> String {
    message
        .replace(&format!("{}/", warehouse.display()), "")
        .replace(".csv", "")
        .replace(".parquet", "")
}

/// The findings of two reports agree (the tables' locations aside); `what` names the
/// comparison in failures.
pub fn assert_same_findings(csv: (&Value, &Path), other: (&Value, &Path), what: &str) {
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

/// A copy of the Puffy warehouse in `dir/warehouse`.
fn puffy_in(dir: &Path) -> PathBuf {
    let warehouse = dir.join("warehouse");
    std::fs::create_dir(&warehouse).unwrap();
    for entry in std::fs::read_dir(crate::puffy().join("warehouse")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, warehouse.join(path.file_name().unwrap())).unwrap();
    }
    warehouse
}

/// A hostile identifier: it would end a quoted name (in PostgreSQL or Spark) and run SQL.
pub const HOSTILE_COLUMN: &str = "src`\"); DROP TABLE fct_orders; --";
/// A hostile value: it would end a quoted string and run SQL.
pub const HOSTILE_CHANNEL: &str = "x'); DROP TABLE fct_sessions; --";

/// The Puffy warehouse in `dir` with the sessions' channel column renamed [`HOSTILE_COLUMN`]
/// and a third of its values [`HOSTILE_CHANNEL`], and a config that judges that column (a
/// hostile attribution model too): the warehouse and the config.
pub fn hostile_warehouse(dir: &Path) -> (PathBuf, PathBuf) {
    let warehouse = puffy_in(dir);
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
    let config = dir.join("vigil.yml");
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
    (warehouse, config)
}

/// The hostile channel of [`hostile_warehouse`] is a channel like any other in the report.
pub fn assert_hostile_channel_counted(report: &Value) {
    let metric = format!("anomaly:channel_session_share {HOSTILE_CHANNEL}");
    assert!(
        report["daily_metrics"][&metric].is_object(),
        "{}",
        report["daily_metrics"]
    );
}

/// The Puffy warehouse in `dir` with every 7th order's revenue a text at the edges of the
/// number grammar: long exponents, subnormals, values that round to zero or to infinity,
/// spaces, signs, and no numbers.
pub fn edge_numbers_warehouse(dir: &Path) -> PathBuf {
    let edges = [
        "1e-310", "1e00002", "abc", " 12 ", "-0", "1e-400", "1e400", "1e99999", "1e-99999", "+.5",
        "5.", "NaN", "inf", "0x10", "1_000", "2.5E+3", ".", "1e", "-1e-5",
    ];
    let warehouse = puffy_in(dir);
    let orders = warehouse.join("fct_orders.csv");
    let mut reader = csv::Reader::from_path(&orders).unwrap();
    let header = reader.headers().unwrap().clone();
    let revenue = header.iter().position(|h| h == "revenue").unwrap();
    let rewritten = dir.join("orders.csv");
    let mut writer = csv::Writer::from_path(&rewritten).unwrap();
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
    std::fs::rename(rewritten, &orders).unwrap();
    warehouse
}

/// Every metric the Puffy example config computes on the warehouse at `location`, all days
/// (`--metrics-out`), run in `dir` under `name`; no table may be unreadable.
pub fn all_metrics(location: &Path, dir: &Path, name: &str) -> Value {
    let config = crate::repo_root().join("schema/examples/puffy.yml");
    let file = dir.join(format!("{name}.json"));
    let out = dir.join(name);
    let run = crate::vigil_run(
        location,
        &config,
        &out,
        "2025-03-08",
        &["--scope", "all", "--metrics-out", file.to_str().unwrap()],
    );
    assert!(run.code <= 1, "{run:?}");
    let unreadable: Vec<String> = crate::json_report(&out)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"].as_str().unwrap().ends_with("unreadable_file"))
        .map(|f| f["message"].to_string())
        .collect();
    assert!(unreadable.is_empty(), "{name}: {unreadable:?}");
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// The metrics of [`all_metrics`] from CSV and from the source `what` agree (within 1e-9).
pub fn assert_same_metrics(csv: &Value, other: &Value, what: &str) {
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
    let (csv, other) = (entries(csv), entries(other));
    assert_eq!(csv.len(), other.len());
    let differing: Vec<String> = csv
        .iter()
        .zip(&other)
        .filter(|((_, a), (_, b))| !crate::same_json(a, b, 1e-9))
        .map(|((request, a), (_, b))| format!("{request}:\n  CSV {a}\n  {what} {b}"))
        .collect();
    assert!(differing.is_empty(), "{}", differing.join("\n"));
}

/// The rows each table read agree between two reports.
pub fn assert_same_rows(csv: &Value, other: &Value, what: &str) {
    let rows = |report: &Value| -> Vec<(Value, Value)> {
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["table"].clone(), t["rows"].clone()))
            .collect()
    };
    assert_eq!(rows(csv), rows(other), "{what}: rows read");
}

/// Every fault of `vigil demo`, and none.
pub const DEMO_FAULTS: [&str; 13] = [
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

/// Writes a 60-day demo warehouse (400 sessions a day, ending 2025-03-31) with `faults` and its
/// config `vigil.yml` into `dir`; returns the warehouse folder.
pub fn demo(dir: &Path, faults: &str) -> PathBuf {
    crate::write_demo(dir, 60, 400, "2025-03-31", faults);
    dir.join("warehouse")
}
