//! Scan equivalence: on many random tables, the engine's CSV scan computes exactly the metrics
//! that the rule API's testkit (an independent, row-by-row reference) computes for the same
//! requests: every measure, every grouping, with and without filters.
//!
//! Tables stay within what the testkit reads: no quotes, no commas or newlines inside cells,
//! and dates written as RFC 3339 UTC timestamps (the testkit reads only the leading
//! `YYYY-MM-DD`; the engine's full timestamp grammar is tested in the engine).

use std::fmt::Write as _;
use std::path::PathBuf;

use vigil_engine::api::testkit::TestKit;
use vigil_engine::metric::{
    Cmp, DailyByDimension, Filter, Measure, MetricRequest, MetricValue, Number,
};
use vigil_engine::rule::Scope;
use vigil_engine::scan::{scan_source, ScanInput};
use vigil_engine::testing::table;

/// Random cases checked.
const CASES: u64 = 300;

/// The table's name in both implementations.
const TABLE: &str = "orders";

/// The fixed header of every generated table.
const HEADER: &str = "id,ts,amount,channel,flag";

/// The columns of [`HEADER`], in order.
const COLUMNS: [&str; 5] = ["id", "ts", "amount", "channel", "flag"];

/// Values of `id`: a small pool, so duplicates occur, with empty and `NULL` cells.
const IDS: [&str; 8] = ["A", "B", "C", "D", "a", "", "NULL", "7"];

/// Values of `amount`: numbers of every shape, empty cells and text.
const AMOUNTS: [&str; 17] = [
    "0", "1", "12", "250", "-5", "-0.25", "3.5", "100.125", "1e3", "-2E-2", "", "", "NULL", "null",
    "abc", " 12 ", "12a",
];

/// Values of `channel` (the dimension): with empty and `NULL` cells and near-duplicates.
const CHANNELS: [&str; 8] = ["web", "WEB", "app", "ads", "", "", "NULL", " web"];

/// Values of `flag`.
const FLAGS: [&str; 8] = ["yes", "no", "Y", "1", "0", "", "null", "true"];

/// Texts for `equals` conditions.
const EQUALS: [&str; 9] = ["web", "A", "", "NULL", "0", "yes", "12", " 12 ", "abc"];

/// Texts for `contains_ignore_case` conditions.
const CONTAINS: [&str; 7] = ["we", "A", "", "1", "ul", "b", " "];

/// Constants for numeric comparisons.
const CONSTANTS: [f64; 6] = [-1.0, 0.0, 1.0, 12.0, 100.125, 1000.0];

/// Every comparison.
const CMPS: [Cmp; 6] = [Cmp::Lt, Cmp::Le, Cmp::Eq, Cmp::Ne, Cmp::Ge, Cmp::Gt];

/// A small deterministic generator (xorshift64*), seeded per case.
struct Rng(u64);

impl Rng {
    /// A generator whose stream depends only on `seed` (splitmix64 scrambles it).
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// The next 64 random bits.
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` in 100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A date cell: an RFC 3339 UTC timestamp on one of the `days` days from 2025-03-01 (empty
/// now and then).
fn timestamp(rng: &mut Rng, days: usize) -> String {
    if rng.chance(12) {
        return String::new();
    }
    let day = 1 + rng.below(days);
    let (h, m, s) = (rng.below(24), rng.below(60), rng.below(60));
    let fraction = match rng.below(3) {
        0 => String::new(),
        1 => format!(".{:03}", rng.below(1000)),
        _ => format!(".{:06}", rng.below(1_000_000)),
    };
    format!("2025-03-{day:02}T{h:02}:{m:02}:{s:02}{fraction}Z")
}

/// A random table: the fixed header and 0 to 60 rows, a few of them short (their last cells
/// absent).
fn csv(rng: &mut Rng) -> String {
    let mut text = format!("{HEADER}\n");
    // Tables over one day to five, so single days, gaps and full spans all occur.
    let days = 1 + rng.below(5);
    let rows = rng.below(61);
    for _ in 0..rows {
        let mut cells = vec![
            rng.pick(&IDS).to_string(),
            timestamp(rng, days),
            rng.pick(&AMOUNTS).to_string(),
            rng.pick(&CHANNELS).to_string(),
            rng.pick(&FLAGS).to_string(),
        ];
        if rng.chance(5) {
            // A short row keeps `id` and `ts` (so its line is never blank).
            cells.truncate(2 + rng.below(3));
        }
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    text
}

/// A random measure over the table's columns.
fn measure(rng: &mut Rng) -> Measure {
    let column = rng.pick(&COLUMNS).to_string();
    match rng.below(9) {
        0 => Measure::Rows,
        1 => Measure::Distinct(column),
        2 => Measure::Sum(column),
        3 => Measure::Numeric(column),
        4 => Measure::Nulls(column),
        5 => Measure::NonNumeric(column),
        6 => Measure::Duplicates(column),
        7 => Measure::SumSquares(column),
        _ => Measure::Where {
            column,
            cmp: *rng.pick(&CMPS),
            value: Number(*rng.pick(&CONSTANTS)),
        },
    }
}

/// A random one-condition filter.
fn condition(rng: &mut Rng) -> Filter {
    let column = *rng.pick(&COLUMNS);
    match rng.below(5) {
        0 => Filter::equals(column, *rng.pick(&EQUALS)),
        1 => Filter::contains_ignore_case(column, *rng.pick(&CONTAINS)),
        2 => Filter::empty(column),
        3 => Filter::not_empty(column),
        _ => Filter::compare(column, *rng.pick(&CMPS), *rng.pick(&CONSTANTS)),
    }
}

/// A random filter: one condition, or a numeric comparison AND an empty/equals condition, or
/// three conditions.
fn filter(rng: &mut Rng) -> Filter {
    match rng.below(3) {
        0 => condition(rng),
        1 => {
            let compare = Filter::compare("amount", *rng.pick(&CMPS), *rng.pick(&CONSTANTS));
            let other = match rng.below(3) {
                0 => Filter::empty(*rng.pick(&COLUMNS)),
                1 => Filter::not_empty(*rng.pick(&COLUMNS)),
                _ => Filter::equals(*rng.pick(&["channel", "flag", "id"]), *rng.pick(&EQUALS)),
            };
            compare.and(other)
        }
        _ => condition(rng).and(condition(rng)).and(condition(rng)),
    }
}

/// A random set of 8 to 30 distinct requests of all measures and groupings (`channel` the
/// dimension). Some per-day distinct counts come with the same count per channel, the pair the
/// engine computes in one fused state.
fn requests(rng: &mut Rng) -> Vec<MetricRequest> {
    let mut requests: Vec<MetricRequest> = Vec::new();
    let mut add = |r: MetricRequest| {
        if !requests.contains(&r) {
            requests.push(r);
        }
    };
    let n = 8 + rng.below(23);
    for _ in 0..n {
        let measure = measure(rng);
        let request = match rng.below(3) {
            0 => MetricRequest::total(TABLE, measure),
            1 => MetricRequest::daily(TABLE, measure),
            _ => MetricRequest::daily_by(TABLE, measure, "channel"),
        };
        let request = if rng.chance(40) {
            request.filtered(filter(rng))
        } else {
            request
        };
        if rng.chance(25) {
            // The fused pair: per day and per day and channel, unfiltered, same column.
            let column = rng.pick(&COLUMNS).to_string();
            add(MetricRequest::daily(
                TABLE,
                Measure::Distinct(column.clone()),
            ));
            add(MetricRequest::daily_by(
                TABLE,
                Measure::Distinct(column),
                "channel",
            ));
        }
        add(request);
    }
    requests
}

/// Whether two values of a measure agree: counts exactly, sums within 1e-9 relative.
fn same_number(measure: &Measure, a: f64, b: f64) -> bool {
    match measure {
        Measure::Sum(_) | Measure::SumSquares(_) => {
            a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
        }
        _ => a == b,
    }
}

/// The days of `a` that `b` lacks, described (`None`: there are none).
fn extra_days(a: &DailyByDimension, b: &DailyByDimension, side: &str) -> Option<String> {
    let extra: Vec<_> = a.iter().filter(|(d, _)| !b.contains_key(*d)).collect();
    if extra.is_empty() {
        None
    } else if extra.iter().all(|(_, by)| by.is_empty()) {
        Some(format!("days only in the {side}, without dimension values"))
    } else {
        Some(format!("days only in the {side}"))
    }
}

/// How the engine's value differs from the testkit's (empty: they agree): which days, which
/// dimension values, which numbers. Counts must be equal, sums as [`same_number`] says.
fn differences(measure: &Measure, engine: &MetricValue, testkit: &MetricValue) -> Vec<String> {
    let num = |x: &f64, y: &f64| same_number(measure, *x, *y);
    let mut what: Vec<String> = Vec::new();
    match (engine, testkit) {
        (MetricValue::Total(x), MetricValue::Total(y)) => {
            if !num(x, y) {
                what.push("numbers".into());
            }
        }
        (MetricValue::Daily(x), MetricValue::Daily(y)) => {
            if !x.keys().eq(y.keys()) {
                what.push("days".into());
            }
            if x.iter().any(|(d, v)| y.get(d).is_some_and(|w| !num(v, w))) {
                what.push("numbers".into());
            }
        }
        (MetricValue::DailyBy(x), MetricValue::DailyBy(y)) => {
            what.extend(extra_days(x, y, "engine"));
            what.extend(extra_days(y, x, "testkit"));
            let common = x.iter().filter_map(|(d, bx)| Some((bx, y.get(d)?)));
            if common.clone().any(|(bx, by)| !bx.keys().eq(by.keys())) {
                what.push("dimension values".into());
            }
            let mut numbers = common
                .flat_map(|(bx, by)| bx.iter().filter_map(move |(k, v)| Some((v, by.get(k)?))));
            if numbers.any(|(v, w)| !num(v, w)) {
                what.push("numbers".into());
            }
        }
        _ => what.push("kinds of value".into()),
    }
    what
}

/// One request on which the engine and the testkit disagree.
struct Mismatch {
    /// The kind of request and one thing that differs, for each thing that differs.
    kinds: Vec<String>,
    /// The seed, the request, both results and the table.
    report: String,
}

/// The kind of a request, to show one example of each kind of disagreement: its grouping,
/// and whether it counts distinct values (which the engine computes apart).
fn kind(request: &MetricRequest) -> String {
    let grouping = format!("{:?}", request.grouping);
    let grouping = grouping.split('(').next().unwrap_or_default();
    let measure = match request.measure {
        Measure::Distinct(_) => "Distinct",
        _ => "other measures",
    };
    format!("{measure} by {grouping}")
}

/// Scans one case with the engine and with the testkit; describes every request whose
/// results differ (with the seed, the table and both values).
fn check(seed: u64) -> Vec<Mismatch> {
    let mut rng = Rng::new(seed);
    let text = csv(&mut rng);
    let requests = requests(&mut rng);

    let config = table("orders.csv", Some("ts"));
    let scan = scan_source(
        TABLE,
        &config,
        PathBuf::from(&config.file),
        Ok(text.as_bytes()),
        ScanInput {
            requests: &requests,
            ..ScanInput::default()
        },
    );
    let reference = TestKit::new("2025-03-05", Scope::Partition)
        .table(TABLE, Some("ts"), &text)
        .metrics(&requests);

    let mut mismatches = Vec::new();
    for request in &requests {
        let engine = scan
            .metrics
            .iter()
            .find(|(r, _)| r == request)
            .map(|(_, v)| v.clone());
        let testkit = reference.get(request).cloned();
        let differences = match (&engine, &testkit) {
            (Some(Ok(e)), Ok(t)) => differences(&request.measure, e, t),
            _ => vec!["availability".to_string()],
        };
        if !differences.is_empty() {
            let mut report = String::new();
            let _ = writeln!(report, "seed {seed}: request {request:?}");
            let _ = writeln!(report, "  engine:  {engine:?}");
            let _ = writeln!(report, "  testkit: {testkit:?}");
            let _ = write!(
                report,
                "  table ({} requests in the scan):\n{text}",
                requests.len()
            );
            mismatches.push(Mismatch {
                kinds: differences
                    .iter()
                    .map(|d| format!("{}: {d}", kind(request)))
                    .collect(),
                report,
            });
        }
    }
    mismatches
}

/// The seeds to check: all cases, or only `SCAN_EQUIVALENCE_SEED` when set (to replay one).
fn seeds() -> Vec<u64> {
    match std::env::var("SCAN_EQUIVALENCE_SEED") {
        Ok(seed) => vec![seed.parse().expect("SCAN_EQUIVALENCE_SEED is a number")],
        Err(_) => (0..CASES).collect(),
    }
}

/// The engine's scan and the testkit agree on every request of every random case. A failure
/// shows the first disagreement of each kind of request.
#[test]
fn engine_scan_matches_the_testkit_on_random_tables() {
    let mut mismatches: Vec<Mismatch> = Vec::new();
    let mut failing_seeds = Vec::new();
    let seeds = seeds();
    for &seed in &seeds {
        let found = check(seed);
        if !found.is_empty() {
            failing_seeds.push(seed);
            mismatches.extend(found);
        }
    }
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    let mut examples: Vec<&str> = Vec::new();
    for m in &mismatches {
        for kind in &m.kinds {
            match kinds.iter_mut().find(|(k, _)| k == kind) {
                Some((_, n)) => *n += 1,
                None => {
                    kinds.push((kind, 1));
                    if examples.last() != Some(&m.report.as_str()) {
                        examples.push(&m.report);
                    }
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} request(s) disagree in {} of {} cases (the first seeds: {:?}).\nBy kind: {:#?}\n\
         The first of each kind:\n\n{}",
        mismatches.len(),
        failing_seeds.len(),
        seeds.len(),
        &failing_seeds[..failing_seeds.len().min(20)],
        kinds,
        examples.join("\n")
    );
}
