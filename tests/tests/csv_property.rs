//! A property test of the engine's CSV scan (`vigil_engine::scan::scan_table`) against a small
//! independent reference reader written here.
//!
//! Random tables (seeded with `fastrand`, the seed printed on failure) with quoted cells,
//! doubled quotes, commas and line breaks (LF or CRLF) inside quotes, LF or CRLF line ends, an
//! optional UTF-8 byte order mark, an optional missing final line break, empty, `NULL` and
//! `null` cells, and ragged rows (short and long) are written to a temporary folder and scanned
//! by the engine at a random worker count in 1..=16 (`set_workers`, process-global, so every
//! case runs in this one test, one after another).
//!
//! The reference is the `csv` crate with `flexible(true)` (RFC 4180 quoting, LF and CRLF
//! records) plus, written here: the byte order mark stripped, a row per record after the
//! header, a malformed row when its field count differs from the header's, a multi-line row
//! when one of its fields holds a line break, a cell empty when absent, empty, `NULL` or
//! `null`, a number as Rust's `f64` parse of the trimmed cell (finite only), a row's day the
//! first 10 characters of its `ts` cell, and daily series over every day from the first to the
//! last (0 on a day without rows), rows without a day left out.
//!
//! Compared: rows, malformed rows, multi-line rows, and the metrics rows per day, distinct ids
//! per day and in total, revenue sums per day, rows and sums per day and channel, null and
//! non-numeric counts in total. The amounts are exact in binary (integers, halves, quarters),
//! so sums must be equal in any order of addition.
//!
//! The engine reads a file on several threads only from 32 MiB (`PARALLEL_MIN_BYTES`, private
//! to the engine, and whether a scan went parallel is not visible from outside), so besides
//! the many small tables, a few tables of about 33 MiB are generated (in a second or two
//! each) with multi-line cells spread through them, and scanned with 2 to 16 workers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use vigil_engine::api::prelude::NaiveDate;
use vigil_engine::metric::{Measure, MetricRequest, MetricValue};
use vigil_engine::scan::{scan_table, set_workers, ScanInput};
use vigil_engine::testing::table;

/// Small random tables checked.
const SMALL_CASES: u64 = 300;

/// Tables above the engine's 32 MiB parallel threshold checked.
const LARGE_CASES: u64 = 2;

/// The table's name.
const TABLE: &str = "orders";

/// The header.
const COLUMNS: [&str; 5] = ["ts", "id", "amount", "channel", "note"];

/// Values of `id` (a small pool: distinct counts matter), with empty and null cells.
const IDS: [&str; 10] = ["A", "B", "C", "a", "7", "", "NULL", "null", "A,B", "x\"y"];

/// Values of `amount`: exact in binary, with empty, null and text cells.
const AMOUNTS: [&str; 12] = [
    "12", "-5", "3.5", "0", "0.25", "1e3", "", "NULL", "null", "abc", " 4 ", "1,5",
];

/// Values of `channel` (the dimension).
const CHANNELS: [&str; 8] = ["web", "app", "ads", "", "NULL", "we\"b", "a,pp", "w\neb"];

/// One generated table: its bytes.
struct Generated {
    bytes: Vec<u8>,
}

/// A cell written to the file: quoted when it must be (or at random), quotes doubled.
fn write_cell(out: &mut String, cell: &str, rng: &mut fastrand::Rng) {
    let must = cell.contains([',', '"', '\n', '\r']);
    if must || rng.u8(..10) == 0 {
        out.push('"');
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(cell);
    }
}

/// A `note` cell: text with commas, quotes and line breaks (LF or CRLF) now and then.
fn note(rng: &mut fastrand::Rng, multiline_percent: u8, breaks: &str) -> String {
    let mut text = String::new();
    for _ in 0..rng.usize(0..4) {
        match rng.u8(..100) {
            n if n < multiline_percent => text.push_str(breaks),
            n if n < 30 => text.push(','),
            n if n < 40 => text.push('"'),
            n if n < 45 => text.push_str("\"\""),
            _ => text.push_str(["ok", "x", "late", "NULL", "é"][rng.usize(..5)]),
        }
    }
    text
}

/// A random table of `rows` rows over `days` days of March 2025.
fn generate(rng: &mut fastrand::Rng, rows: usize, multiline_percent: u8) -> Generated {
    let crlf = rng.bool();
    let end = if crlf { "\r\n" } else { "\n" };
    let breaks = if rng.bool() { "\r\n" } else { "\n" };
    let days = rng.u32(1..=5);
    let mut text = String::with_capacity(rows * 80);
    if rng.u8(..4) == 0 {
        text.push('\u{feff}');
    }
    text.push_str(&COLUMNS.join(","));
    for _ in 0..rows {
        text.push_str(end);
        let ts = format!(
            "2025-03-{:02}T{:02}:{:02}:{:02}Z",
            1 + rng.u32(..days),
            rng.u32(..24),
            rng.u32(..60),
            rng.u32(..60)
        );
        let mut cells = vec![
            ts,
            IDS[rng.usize(..IDS.len())].to_string(),
            AMOUNTS[rng.usize(..AMOUNTS.len())].to_string(),
            CHANNELS[rng.usize(..CHANNELS.len())].to_string(),
            note(rng, multiline_percent, breaks),
        ];
        match rng.u8(..100) {
            // Short: the date stays, so no line is blank.
            0..=3 => cells.truncate(rng.usize(1..5)),
            4..=6 => cells.extend((0..rng.usize(1..3)).map(|i| format!("extra{i}"))),
            _ => {}
        }
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            write_cell(&mut text, cell, rng);
        }
    }
    if rng.bool() {
        text.push_str(end);
    }
    Generated {
        bytes: text.into_bytes(),
    }
}

/// A large table (about 33 MiB) quickly: random rows of a few shapes, a multi-line note now and
/// then, until the size is passed.
fn generate_large(rng: &mut fastrand::Rng) -> Generated {
    let target = (33 << 20) + rng.usize(..(1 << 20));
    let mut text = String::with_capacity(target + 1024);
    text.push_str(&COLUMNS.join(","));
    text.push('\n');
    let mut row = String::new();
    while text.len() < target {
        row.clear();
        let _ = write!(
            row,
            "2025-03-{:02}T{:02}:00:00Z,",
            1 + rng.u32(..5),
            rng.u32(..24)
        );
        write_cell(&mut row, IDS[rng.usize(..IDS.len())], rng);
        row.push(',');
        write_cell(&mut row, AMOUNTS[rng.usize(..AMOUNTS.len())], rng);
        row.push(',');
        write_cell(&mut row, CHANNELS[rng.usize(..CHANNELS.len())], rng);
        match rng.u16(..1000) {
            0 => row.push_str(",\"multi\nline, \"\"quoted\"\"\nnote\"\n"),
            1 => row.push('\n'), // short: four fields
            2 => row.push_str(",long,extra\n"),
            _ => row.push_str(",plain note text to make the row longer\n"),
        }
        text.push_str(&row);
    }
    Generated {
        bytes: text.into_bytes(),
    }
}

/// What the reference reader finds.
#[derive(Debug, Default)]
struct Reference {
    rows: u64,
    malformed: u64,
    multiline: u64,
    rows_per_day: BTreeMap<NaiveDate, f64>,
    distinct_ids_per_day: BTreeMap<NaiveDate, f64>,
    distinct_ids: f64,
    sum_per_day: BTreeMap<NaiveDate, f64>,
    rows_per_day_channel: BTreeMap<NaiveDate, BTreeMap<String, f64>>,
    sum_per_day_channel: BTreeMap<NaiveDate, BTreeMap<String, f64>>,
    nulls: f64,
    non_numeric: f64,
}

/// Empty, `NULL` or `null` (or absent).
fn empty(cell: Option<&str>) -> bool {
    matches!(cell, None | Some("" | "NULL" | "null"))
}

/// A number, as Rust reads the trimmed cell (finite only).
fn number(cell: Option<&str>) -> Option<f64> {
    let n: f64 = cell?.trim().parse().ok()?;
    n.is_finite().then_some(n)
}

/// Reads a table with the `csv` crate and computes what the engine is asked for.
fn reference(bytes: &[u8]) -> Reference {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(bytes);
    let mut records = reader.records();
    let header = records.next().expect("a header").expect("utf-8");
    let mut out = Reference::default();
    let mut ids_per_day: BTreeMap<NaiveDate, BTreeSet<String>> = BTreeMap::new();
    let mut ids: BTreeSet<String> = BTreeSet::new();
    for record in records {
        let record = record.expect("the reference reads every record");
        out.rows += 1;
        if record.len() != header.len() {
            out.malformed += 1;
        }
        if record.iter().any(|f| f.contains('\n') || f.contains('\r')) {
            out.multiline += 1;
        }
        let cell = |i: usize| record.get(i).filter(|_| i < header.len());
        let id = cell(1);
        let amount = cell(2);
        if !empty(id) {
            ids.insert(id.unwrap_or_default().to_string());
        }
        out.nulls += f64::from(u8::from(empty(amount)));
        out.non_numeric += f64::from(u8::from(!empty(amount) && number(amount).is_none()));
        let Some(day) = cell(0)
            .and_then(|c| c.get(..10))
            .and_then(|c| c.parse::<NaiveDate>().ok())
        else {
            continue;
        };
        let channel = if empty(cell(3)) {
            String::new()
        } else {
            cell(3).unwrap_or_default().to_string()
        };
        let value = number(amount).unwrap_or(0.0);
        *out.rows_per_day.entry(day).or_default() += 1.0;
        *out.sum_per_day.entry(day).or_default() += value;
        let set = ids_per_day.entry(day).or_default();
        if !empty(id) {
            set.insert(id.unwrap_or_default().to_string());
        }
        *out.rows_per_day_channel
            .entry(day)
            .or_default()
            .entry(channel.clone())
            .or_default() += 1.0;
        *out.sum_per_day_channel
            .entry(day)
            .or_default()
            .entry(channel)
            .or_default() += value;
    }
    out.distinct_ids = ids.len() as f64;
    out.distinct_ids_per_day = ids_per_day
        .into_iter()
        .map(|(d, s)| (d, s.len() as f64))
        .collect();
    // Every day from the first to the last: 0 (or no channel) on a day without rows.
    if let (Some(&first), Some(&last)) = (
        out.rows_per_day.keys().next(),
        out.rows_per_day.keys().next_back(),
    ) {
        for day in first.iter_days().take_while(|d| *d <= last) {
            out.rows_per_day.entry(day).or_default();
            out.sum_per_day.entry(day).or_default();
            out.distinct_ids_per_day.entry(day).or_default();
            out.rows_per_day_channel.entry(day).or_default();
            out.sum_per_day_channel.entry(day).or_default();
        }
    }
    out
}

/// The requests asked of the engine, in the order [`compare`] reads them.
fn requests() -> Vec<MetricRequest> {
    let id = || "id".to_string();
    let amount = || "amount".to_string();
    vec![
        MetricRequest::daily(TABLE, Measure::Rows),
        MetricRequest::daily(TABLE, Measure::Distinct(id())),
        MetricRequest::total(TABLE, Measure::Distinct(id())),
        MetricRequest::daily(TABLE, Measure::Sum(amount())),
        MetricRequest::daily_by(TABLE, Measure::Rows, "channel"),
        MetricRequest::daily_by(TABLE, Measure::Sum(amount()), "channel"),
        MetricRequest::total(TABLE, Measure::Nulls(amount())),
        MetricRequest::total(TABLE, Measure::NonNumeric(amount())),
    ]
}

/// Scans one table with the engine at `workers` threads; what differs from the reference (and
/// the reference's counts of rows, malformed and multi-line rows, to show the cases cover them).
fn check(bytes: &[u8], workers: usize, seen: &mut [u64; 3]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("orders.csv"), bytes).expect("write");
    let config = table("orders.csv", Some("ts"));
    let requests = requests();
    set_workers(workers);
    let scan = scan_table(
        TABLE,
        &config,
        dir.path(),
        ScanInput {
            requests: &requests,
            ..ScanInput::default()
        },
    );
    let want = reference(bytes);
    seen[0] += want.rows;
    seen[1] += want.malformed;
    seen[2] += want.multiline;
    let mut problems = Vec::new();
    let stats = match &scan.outcome {
        Ok(stats) => stats,
        Err(e) => return vec![format!("the engine could not read the table: {e}")],
    };
    let mut same = |what: &str, engine: String, reference: String| {
        if engine != reference {
            problems.push(format!("{what}: engine {engine}, reference {reference}"));
        }
    };
    same("rows", stats.rows.to_string(), want.rows.to_string());
    same(
        "malformed rows",
        stats.malformed_rows.to_string(),
        want.malformed.to_string(),
    );
    same(
        "multi-line rows",
        stats.multiline.records.to_string(),
        want.multiline.to_string(),
    );
    let value = |i: usize| match scan.metrics.iter().find(|(r, _)| r == &requests[i]) {
        Some((_, Ok(v))) => Some(v.clone()),
        _ => None,
    };
    let daily = |i: usize| match value(i) {
        Some(MetricValue::Daily(s)) => format!("{s:?}"),
        other => format!("{other:?}"),
    };
    let total = |i: usize| match value(i) {
        Some(MetricValue::Total(x)) => format!("{x:?}"),
        other => format!("{other:?}"),
    };
    let by = |i: usize| match value(i) {
        Some(MetricValue::DailyBy(s)) => format!("{s:?}"),
        other => format!("{other:?}"),
    };
    same("rows per day", daily(0), format!("{:?}", want.rows_per_day));
    same(
        "distinct ids per day",
        daily(1),
        format!("{:?}", want.distinct_ids_per_day),
    );
    same("distinct ids", total(2), format!("{:?}", want.distinct_ids));
    same("sum per day", daily(3), format!("{:?}", want.sum_per_day));
    same(
        "rows per day and channel",
        by(4),
        format!("{:?}", want.rows_per_day_channel),
    );
    same(
        "sum per day and channel",
        by(5),
        format!("{:?}", want.sum_per_day_channel),
    );
    same("empty amounts", total(6), format!("{:?}", want.nulls));
    same("text amounts", total(7), format!("{:?}", want.non_numeric));
    problems
}

/// Shows a table's start, escaped, for a failure message.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(600)]);
    format!("{text:?}")
}

#[test]
fn the_csv_scan_agrees_with_a_reference_reader_at_any_worker_count() {
    let seed: u64 = std::env::var("VIGIL_CSV_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c5f0);
    let mut failures = Vec::new();
    let (mut small, mut large) = ([0u64; 3], [0u64; 3]);
    for case in 0..SMALL_CASES {
        let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ case);
        let rows = rng.usize(0..200);
        let multiline = rng.u8(0..10);
        let generated = generate(&mut rng, rows, multiline);
        let workers = rng.usize(1..=16);
        let problems = check(&generated.bytes, workers, &mut small);
        if !problems.is_empty() && failures.len() < 5 {
            failures.push(format!(
                "case {case} (seed {seed}, case {case}, {workers} worker(s)):\n- {}\ntable: {}",
                problems.join("\n- "),
                shown(&generated.bytes)
            ));
        }
    }
    for case in 0..LARGE_CASES {
        let mut rng =
            fastrand::Rng::with_seed(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (1000 + case));
        let generated = generate_large(&mut rng);
        assert!(generated.bytes.len() >= 32 << 20, "large enough to split");
        let workers = rng.usize(2..=16);
        let problems = check(&generated.bytes, workers, &mut large);
        if !problems.is_empty() {
            failures.push(format!(
                "large case {case} ({} bytes, {workers} worker(s)):\n- {}",
                generated.bytes.len(),
                problems.join("\n- ")
            ));
        }
    }
    set_workers(0);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The cases did exercise what they are meant to: [rows, malformed, multi-line].
    for (what, seen) in [("small", small), ("large", large)] {
        assert!(
            seen.iter().all(|n| *n > 0),
            "the {what} tables had rows, malformed and multi-line rows: {seen:?}"
        );
    }
    eprintln!("checked rows/malformed/multi-line: small {small:?}, large {large:?}");
}
