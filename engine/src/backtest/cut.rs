//! The runs of the days of a backtest, each on the warehouse as it stood that day. A table is
//! read once for the whole range when that read can be cut at each day exactly: its metrics
//! are per-day values of measures that only look at their own day's rows, and it has no count
//! that cannot be split by day (no malformed or multi-line row, no lookup miss, no row outside
//! the range's window). Any other table is read again for each day, stopping at the day (see
//! [`ScanInput::until`]); both give what a read of the table without its later rows gives.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use chrono::NaiveDate;

use crate::config::Config;
use crate::metric::{Grouping, Measure, MetricRequest, MetricValue};
use crate::rule::Scope;
use crate::runner::{self, Evaluation};
use crate::scan::{ScanInput, TableScan};
use crate::source::Source;

/// Tables read once, up to the last day of the range, to be cut at each day.
pub struct Shared {
    scans: BTreeMap<String, TableScan>,
}

impl Shared {
    /// Reads every table up to `to` with the rows of every day's window from `from` to `to`,
    /// and keeps the reads that can be cut at a day.
    pub fn read(
        config: &Config,
        source: &dyn Source,
        from: NaiveDate,
        to: NaiveDate,
        scope: Scope,
    ) -> Shared {
        let window = (config.run.window(from).0, config.run.window(to).1);
        let kept = Mutex::new(BTreeMap::new());
        runner::evaluate_with(
            &runner::configured_rules(config),
            &config.tables,
            to,
            scope,
            source.joins_lookups(),
            |name, table, input| {
                let input = ScanInput {
                    window: Some(window),
                    until: Some(to),
                    ..input
                };
                let scan = source.scan(name, table, input);
                if cuttable(&scan) {
                    let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
                    kept.insert(name.to_string(), scan.clone());
                }
                scan
            },
        );
        Shared {
            scans: kept.into_inner().unwrap_or_else(PoisonError::into_inner),
        }
    }
}

/// Whether a table's read can be cut at any day of the range exactly (see the module docs).
fn cuttable(scan: &TableScan) -> bool {
    let Ok(stats) = &scan.outcome else {
        // A missing, empty or unreadable table reads the same every day.
        return true;
    };
    let per_day = |request: &MetricRequest| {
        matches!(request.grouping, Grouping::Day | Grouping::DayBy(_))
            && matches!(
                request.measure,
                Measure::Rows
                    | Measure::Distinct(_)
                    | Measure::Sum(_)
                    | Measure::Numeric(_)
                    | Measure::Nulls(_)
                    | Measure::NonNumeric(_)
                    | Measure::Where { .. }
            )
    };
    stats.malformed_rows == 0
        && stats.multiline.records == 0
        && stats.lookup_misses.values().all(|n| *n == 0)
        && stats
            .dates
            .as_ref()
            .is_none_or(|d| d.out_of_window.is_none())
        && scan.metrics.iter().all(|(request, _)| per_day(request))
}

/// `scan` as a read of its table without the rows dated after `day`, judged with the run
/// window `window` of that day.
fn cut(scan: &TableScan, day: NaiveDate, window: (NaiveDate, NaiveDate)) -> TableScan {
    let mut scan = scan.clone();
    let Ok(stats) = &mut scan.outcome else {
        return scan;
    };
    let Some(dates) = stats.dates.as_mut() else {
        // No date: every row is undated and kept, every daily series empty.
        return scan;
    };
    let later = match day.succ_opt() {
        Some(next) => dates.rows_by_day.split_off(&next),
        None => BTreeMap::new(),
    };
    stats.rows = stats.rows.saturating_sub(later.values().sum());
    dates.keep_within(Some(window));
    let span = dates.span();
    let within = |d: &NaiveDate| crate::scan::DateStats::in_span(span, d);
    for (_, value) in &mut scan.metrics {
        match value {
            Ok(MetricValue::Daily(series)) => series.retain(|d, _| within(d)),
            Ok(MetricValue::DailyBy(series)) => series.retain(|d, _| within(d)),
            _ => {}
        }
    }
    scan
}

/// Whether `scan` computed exactly `requests`.
fn same_requests(scan: &TableScan, requests: &[MetricRequest]) -> bool {
    scan.metrics.len() == requests.len()
        && requests
            .iter()
            .all(|r| scan.metrics.iter().any(|(computed, _)| computed == r))
}

/// The run of `day`: the shared tables cut at the day, the others read up to it.
pub fn evaluate(
    config: &Config,
    source: &dyn Source,
    shared: &Shared,
    day: NaiveDate,
    scope: Scope,
) -> Evaluation {
    let window = config.run.window(day);
    runner::evaluate_with(
        &runner::configured_rules(config),
        &config.tables,
        day,
        scope,
        source.joins_lookups(),
        |name, table, input| match shared
            .scans
            .get(name)
            .filter(|scan| same_requests(scan, input.requests))
        {
            Some(scan) => cut(scan, day, window),
            None => {
                let input = ScanInput {
                    window: Some(window),
                    until: Some(day),
                    ..input
                };
                source.scan(name, table, input)
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::scan_table;
    use crate::testing::{day, table};

    #[test]
    fn a_read_cut_at_a_day_is_the_read_of_the_rows_up_to_it() {
        // Rows of five days out of order, one undated, one unparsable, one far in the past.
        let text = "\
id,ts,channel,revenue
a,2025-03-03T10:00:00Z,direct,5
b,2025-03-01T10:00:00Z,ads,1
c,,direct,2
d,2025-03-05T10:00:00Z,ads,7
a,2025-03-02T10:00:00Z,direct,3
e,2025-03-04 25:00:00Z,ads,4
f,2025-02-20T10:00:00Z,ads,6
b,2025-03-05T11:00:00Z,direct,8
";
        let config = table("t.csv", Some("ts"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.csv"), text).unwrap();
        let requests = [
            MetricRequest::daily("t", Measure::Rows),
            MetricRequest::daily("t", Measure::Distinct("id".into())),
            MetricRequest::daily_by("t", Measure::Sum("revenue".into()), "channel"),
        ];
        let read = |until: NaiveDate, window: (NaiveDate, NaiveDate)| {
            let input = ScanInput {
                requests: &requests,
                window: Some(window),
                until: Some(until),
                ..ScanInput::default()
            };
            scan_table("t", &config, dir.path(), input)
        };
        // Each day's window starts two days before it: the first days fall out of it.
        let window = |d: NaiveDate| (d - chrono::Days::new(2), d + chrono::Days::new(1));
        let shared = read(day("2025-03-05"), (day("2025-02-01"), day("2025-03-06")));
        assert!(cuttable(&shared));
        for d in [
            "2025-03-01",
            "2025-03-02",
            "2025-03-03",
            "2025-03-04",
            "2025-03-05",
        ] {
            let (cut, alone) = (
                cut(&shared, day(d), window(day(d))),
                read(day(d), window(day(d))),
            );
            assert_eq!(cut.outcome, alone.outcome, "{d}");
            assert_eq!(cut.metrics, alone.metrics, "{d}");
        }
        let on_0304 = cut(&shared, day("2025-03-04"), window(day("2025-03-04")));
        let stats = on_0304.outcome.unwrap();
        assert_eq!(stats.rows, 6);
        let far = stats.dates.unwrap().out_of_window.unwrap();
        assert_eq!(
            (far.rows, far.first, far.last),
            (2, day("2025-02-20"), day("2025-03-01"))
        );
    }

    #[test]
    fn a_read_with_counts_that_cannot_be_split_by_day_is_not_cut() {
        let config = table("t.csv", Some("ts"));
        let dir = tempfile::tempdir().unwrap();
        let read = |text: &str, requests: &[MetricRequest]| {
            std::fs::write(dir.path().join("t.csv"), text).unwrap();
            let input = ScanInput {
                requests,
                ..ScanInput::default()
            };
            scan_table("t", &config, dir.path(), input)
        };
        let rows = [MetricRequest::daily("t", Measure::Rows)];
        let clean = "id,ts\na,2025-03-01T10:00:00Z\n";
        assert!(cuttable(&read(clean, &rows)));
        let malformed = "id,ts\na,2025-03-01T10:00:00Z\nb,2025-03-01T11:00:00Z,x\n";
        assert!(!cuttable(&read(malformed, &rows)));
        let multiline = "id,ts\n\"a\nb\",2025-03-01T10:00:00Z\n";
        assert!(!cuttable(&read(multiline, &rows)));
        let total = [MetricRequest::total("t", Measure::Rows)];
        assert!(!cuttable(&read(clean, &total)));
        let duplicates = [MetricRequest::daily("t", Measure::Duplicates("id".into()))];
        assert!(!cuttable(&read(clean, &duplicates)));
    }
}
