//! The run: plan every rule's metrics, scan each table once, turn table health into findings,
//! evaluate every rule (a failing or panicking rule becomes an ERROR finding; the others go on),
//! and sort the findings.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use chrono::NaiveDate;
use serde_json::json;

use crate::api::protocol::panic_message;
use crate::config::{table_ctx, Config, StateConfig, TableConfig};
use crate::metric::{MetricRequest, MetricValue, Metrics};
use crate::rule::{Finding, Observation, Rule, RuleError, RunCtx, Scope, Severity, Step, Unit};
use crate::scan::cache::PartitionCache;
use crate::scan::{Export, LookupIndex, ScanInput, TableProblem, TableScan};
use crate::source::Source;
use crate::suggest::closest;

/// The rule id of findings about the tables themselves.
pub const ENGINE: &str = "engine";

/// Everything a run found.
#[derive(Debug)]
pub struct Evaluation {
    /// The partition judged.
    pub expected_date: NaiveDate,
    /// The scope used.
    pub scope: Scope,
    /// One scan per configured table, in name order.
    pub scans: Vec<TableScan>,
    /// All findings, most severe first (then by check and date).
    pub findings: Vec<Finding>,
    /// The metrics the rules judged for the expected partition, by name.
    pub observations: Vec<Observation>,
}

impl Evaluation {
    /// The first table whose source failed (an unreachable cluster, a query that did not
    /// finish), with the error: such a run saw no warehouse and must not be judged.
    pub fn source_failure(&self) -> Option<(&str, &str)> {
        self.scans.iter().find_map(|scan| match &scan.outcome {
            Err(crate::scan::TableProblem::Source(e)) => Some((scan.table.as_str(), e.as_str())),
            _ => None,
        })
    }

    /// Number of findings of a severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// Adds a finding per table whose columns changed since the previous run (`previous`:
    /// each table's columns then, as the state store keeps them), at
    /// `state.schema_change_severity` (none when it is off).
    pub fn add_schema_changes(
        &mut self,
        config: &StateConfig,
        previous: &BTreeMap<String, Vec<(String, String)>>,
    ) {
        if let Some(severity) = config.schema_change_severity.severity() {
            let changes = crate::state::schema_changes(previous, &self.scans, severity);
            self.findings.extend(changes);
            sort_findings(&mut self.findings);
        }
    }
}

/// Runs every configured rule over the warehouse's source.
pub fn evaluate(
    config: &Config,
    source: &dyn Source,
    expected_date: NaiveDate,
    scope: Scope,
) -> Evaluation {
    evaluate_cached(config, source, expected_date, scope, None)
}

/// [`evaluate`] with the partial results of the partitions of partitioned tables kept in
/// `cache` between runs (an incremental run): unchanged partitions older than
/// `run.recompute_days` reuse them (see [`crate::scan::incremental`]).
pub fn evaluate_cached(
    config: &Config,
    source: &dyn Source,
    expected_date: NaiveDate,
    scope: Scope,
    cache: Option<&dyn PartitionCache>,
) -> Evaluation {
    let rules = configured_rules(config);
    let tables: Vec<&TableConfig> = config.tables.values().collect();
    let window = config.run.window(expected_date);
    crate::progress::with_progress(source.size_hint(&tables), |progress| {
        evaluate_with(
            &rules,
            &config.tables,
            expected_date,
            scope,
            source.joins_lookups(),
            |name, table, input| {
                let input = ScanInput {
                    progress: Some(progress),
                    window: Some(window),
                    cache,
                    expected_date: Some(expected_date),
                    recompute_days: config.run.recompute_days,
                    ..input
                };
                source.scan(name, table, input)
            },
        )
    })
}

/// The config's rules with their ids, in config order, as [`evaluate_with`] takes them.
pub fn configured_rules(config: &Config) -> Vec<(&str, &dyn Rule)> {
    config
        .rules
        .iter()
        .map(|r| (r.id.as_str(), r.rule.as_ref()))
        .collect()
}

/// Runs `rules` over tables read by `scan`: one call per configured table, in parallel; tables
/// that look up another are read after it and get its index, unless the source joins lookups
/// itself (`joins_lookups`).
pub fn evaluate_with<S>(
    rules: &[(&str, &dyn Rule)],
    tables: &BTreeMap<String, TableConfig>,
    expected_date: NaiveDate,
    scope: Scope,
    joins_lookups: bool,
    scan: S,
) -> Evaluation
where
    S: Fn(&str, &TableConfig, ScanInput<'_>) -> TableScan + Sync,
{
    let lookback = rules.iter().map(|(_, r)| r.lookback_days()).max();
    let cx = table_ctx(tables, expected_date, scope).with_lookback(lookback.unwrap_or(0));
    let mut findings = Vec::new();
    let mut observations: Vec<Observation> = Vec::new();
    let mut requests: BTreeMap<&str, Vec<MetricRequest>> =
        tables.keys().map(|t| (t.as_str(), Vec::new())).collect();
    let mut planned = Vec::new();
    for &(id, rule) in rules {
        match guarded(id, Step::Plan, || rule.plan(&cx)) {
            Ok(plan) => {
                for request in &plan {
                    if let Some(list) = requests.get_mut(request.table.as_str()) {
                        if !list.contains(request) {
                            list.push(request.clone());
                        }
                    }
                }
                planned.push((id, rule, plan));
            }
            Err(finding) => findings.push(*finding),
        }
    }

    let mut exports: BTreeMap<&str, Export> = BTreeMap::new();
    let handed_over = tables.values().filter(|_| !joins_lookups);
    for lookup in handed_over.flat_map(|t| &t.lookups) {
        let export = exports
            .entry(lookup.table.as_str())
            .or_insert_with(|| Export {
                key: lookup.foreign_key().to_string(),
                columns: Vec::new(),
            });
        for column in &lookup.columns {
            if !export.columns.contains(column) {
                export.columns.push(column.clone());
            }
        }
    }
    // Each looked-up table hands its index over when its scan ends (also when it fails); a
    // table that looks it up waits for it, then reads while the others still do. A lookup of a
    // table that is not configured, or that itself looks up, finds nothing.
    let handovers: BTreeMap<&str, OnceLock<Option<LookupIndex>>> = exports
        .keys()
        .filter(|t| tables.get(**t).is_some_and(|c| c.lookups.is_empty()))
        .map(|t| (*t, OnceLock::new()))
        .collect();
    let (scan, handovers) = (&scan, &handovers);
    // In table name order, as `tables` is.
    let mut scans: Vec<TableScan> = parallel(tables.iter().map(|(name, table)| {
        let requests = &requests[name.as_str()];
        let export = exports
            .get(name.as_str())
            .filter(|_| table.lookups.is_empty());
        move || {
            let lookups: Vec<(&LookupIndex, &str)> = table
                .lookups
                .iter()
                .filter_map(|l| {
                    let index = handovers.get(l.table.as_str())?.wait().as_ref()?;
                    Some((index, l.key.as_str()))
                })
                .collect();
            let mut handover = Handover {
                cell: handovers.get(name.as_str()),
                index: None,
            };
            let input = ScanInput {
                requests,
                export,
                lookups: &lookups,
                progress: None,
                tables: Some(tables),
                ..ScanInput::default()
            };
            let mut scanned = scan(name, table, input);
            handover.index = scanned.index.take();
            scanned
        }
    }));

    let mut metrics = Metrics::default();
    let mut headers: BTreeMap<&str, Header<'_>> = BTreeMap::new();
    for scan in &mut scans {
        findings.extend(non_finite(scan));
    }
    for scan in &scans {
        findings.extend(table_findings(
            scan,
            &tables[&scan.table],
            &cx,
            &mut observations,
        ));
        for (request, value) in &scan.metrics {
            metrics.insert(request.clone(), value.clone());
        }
        if let Ok(stats) = &scan.outcome {
            headers.insert(
                &scan.table,
                Header {
                    columns: &stats.columns,
                    reported: &stats.missing_columns,
                },
            );
        }
    }
    let plans: Vec<(&str, &[MetricRequest])> = planned
        .iter()
        .map(|(id, _, plan)| (*id, plan.as_slice()))
        .collect();
    for unknown in unknown_columns(&plans, tables, &headers) {
        findings.push(unknown.finding(&scans));
    }
    for (id, rule, _) in planned {
        match guarded(id, Step::Evaluate, || rule.evaluate(&cx, &metrics)) {
            Ok(evaluated) => {
                findings.extend(evaluated.findings);
                observations.extend(evaluated.observations);
            }
            Err(finding) => findings.push(*finding),
        }
    }
    let mut findings = merge_skips(findings);
    sort_findings(&mut findings);
    observations.sort_by(|a, b| a.metric.cmp(&b.metric));
    Evaluation {
        expected_date,
        scope,
        scans,
        findings,
        observations,
    }
}

/// The columns a table offers, and those already reported missing (required columns).
#[derive(Clone, Copy, Debug)]
pub struct Header<'a> {
    /// The header's names.
    pub columns: &'a [String],
    /// Required columns already reported as missing (`<table>:required_columns`).
    pub reported: &'a [String],
}

/// A column a rule reads that its table does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownColumn {
    /// The rule.
    pub rule: String,
    /// The table.
    pub table: String,
    /// The column as the rule names it.
    pub column: String,
    /// The closest column the table does have, if any is close.
    pub suggestion: Option<String>,
}

impl UnknownColumn {
    /// The message, with "did you mean".
    pub fn message(&self, file: &str) -> String {
        let hint = self
            .suggestion
            .as_ref()
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        format!(
            "rule `{}` reads column `{}` of table `{}`, which {file} does not have{hint}",
            self.rule, self.column, self.table
        )
    }

    /// The ERROR finding `<rule>:unknown_column`.
    fn finding(&self, scans: &[TableScan]) -> Finding {
        let file = scans
            .iter()
            .find(|s| s.table == self.table)
            .map_or(self.table.clone(), |s| s.path.display().to_string());
        Finding::new(
            Severity::Error,
            &self.rule,
            format!("{}:unknown_column", self.rule),
            self.message(&file),
        )
        .about(format!("{}.{}", self.table, self.column))
        .context(json!({
            "table": self.table,
            "column": self.column,
            "did_you_mean": self.suggestion,
        }))
    }
}

/// The columns that rules read (their plans' measures, dimensions and filters) and that their
/// tables do not have: own columns against the header, `<table>.<column>` against the table's
/// lookups. Tables without a header (missing, unreadable) and required columns already
/// reported are left out; each (rule, table, column) once.
pub fn unknown_columns(
    plans: &[(&str, &[MetricRequest])],
    tables: &BTreeMap<String, TableConfig>,
    headers: &BTreeMap<&str, Header<'_>>,
) -> Vec<UnknownColumn> {
    let mut out: Vec<UnknownColumn> = Vec::new();
    for (rule, plan) in plans {
        for request in *plan {
            let (Some(config), Some(header)) = (
                tables.get(&request.table),
                headers.get(request.table.as_str()),
            ) else {
                continue;
            };
            let looked_up: Vec<String> = config
                .lookups
                .iter()
                .flat_map(|l| l.columns.iter().map(move |c| format!("{}.{c}", l.table)))
                .collect();
            for column in request.columns() {
                let known = header.columns.iter().any(|c| c == column)
                    || looked_up.iter().any(|c| c == column)
                    || header.reported.iter().any(|c| c == column);
                let seen = out
                    .iter()
                    .any(|u| u.rule == *rule && u.table == request.table && u.column == column);
                if known || seen {
                    continue;
                }
                let candidates = header.columns.iter().chain(&looked_up).map(String::as_str);
                out.push(UnknownColumn {
                    rule: rule.to_string(),
                    table: request.table.clone(),
                    column: column.to_string(),
                    suggestion: crate::suggest::closest(column, candidates).map(str::to_string),
                });
            }
        }
    }
    out
}

/// Hands a table's lookup index to the tables waiting for it when dropped, so that they never
/// wait for a scan that panicked (they then find nothing).
struct Handover<'a> {
    cell: Option<&'a OnceLock<Option<LookupIndex>>>,
    index: Option<LookupIndex>,
}

impl Drop for Handover<'_> {
    fn drop(&mut self) {
        if let Some(cell) = self.cell {
            let _ = cell.set(self.index.take());
        }
    }
}

/// Runs jobs on their own threads and returns their results in order.
fn parallel<T: Send, F: FnOnce() -> T + Send>(jobs: impl Iterator<Item = F>) -> Vec<T> {
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs.map(|job| s.spawn(job)).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a table scan panicked"))
            .collect()
    })
}

/// Runs one rule step, turning an error or a panic into an ERROR finding `<rule>:<step>` (the
/// step that failed: a rule that panicked while it was built fails at `build`).
fn guarded<T>(
    rule: &str,
    step: Step,
    f: impl FnOnce() -> Result<T, RuleError>,
) -> Result<T, Box<Finding>> {
    let (step, failure) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(RuleError::Panicked { step, message })) => (
            step,
            format!("rule `{rule}` panicked in {}: {message}", step.as_str()),
        ),
        Ok(Err(error)) => (
            step,
            format!("rule `{rule}` failed to {}: {error}", step.as_str()),
        ),
        Err(panic) => (
            step,
            format!(
                "rule `{rule}` panicked in {}: {}",
                step.as_str(),
                panic_message(panic.as_ref())
            ),
        ),
    };
    Err(Box::new(Finding::new(
        Severity::Error,
        rule,
        format!("{rule}:{}", step.as_str()),
        failure,
    )))
}

/// Merges the skip findings of one rule that share a reason (one missing file can skip a dozen
/// checks) into one `<rule>:skipped` finding listing the checks.
fn merge_skips(findings: Vec<Finding>) -> Vec<Finding> {
    let skip_key = |f: &Finding| -> Option<(String, String)> {
        let context = f.context.as_ref()?;
        let reason = context.get("reason")?.as_str()?;
        context.get("skipped")?;
        Some((f.rule.clone(), reason.to_string()))
    };
    let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut out = Vec::new();
    for f in findings {
        match skip_key(&f) {
            Some(key) => {
                let checks = f
                    .context
                    .as_ref()
                    .and_then(|c| c["skipped"].as_array().cloned());
                let entry = groups.entry(key).or_default();
                entry.extend(
                    checks
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c.as_str().map(str::to_string)),
                );
            }
            None => out.push(f),
        }
    }
    for ((rule, reason), checks) in groups {
        let check = match checks.as_slice() {
            [one] => format!("{one}_skipped"),
            _ => format!("{rule}:skipped"),
        };
        let list: Vec<String> = checks.iter().map(|c| format!("`{c}`")).collect();
        let what = if checks.len() == 1 { "Check" } else { "Checks" };
        out.push(
            Finding::new(
                Severity::Warn,
                &rule,
                check,
                format!("{what} {} skipped: {reason}", list.join(", ")),
            )
            .context(json!({"skipped": checks, "reason": reason})),
        );
    }
    out
}

/// Sorts as the reference does: most severe first, then by check id, then by date (undated
/// last); ties keep their order.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.check.cmp(&b.check))
            .then_with(|| {
                (a.partition_date.is_none(), a.partition_date)
                    .cmp(&(b.partition_date.is_none(), b.partition_date))
            })
    });
}

/// Turns every metric of a table with a value that is not a finite number (a sum beyond the
/// largest double, say; for a per-dimension metric, also the day's values added up) into an
/// unavailable metric, so no rule judges an infinity, and reports
/// them in one ERROR `<table>:non_finite_values`.
fn non_finite(scan: &mut TableScan) -> Option<Finding> {
    let mut broken = Vec::new();
    for (request, value) in &mut scan.metrics {
        let Ok(computed) = value else { continue };
        let mut days: Vec<Option<NaiveDate>> = match computed {
            MetricValue::Total(v) => (!v.is_finite()).then_some(None).into_iter().collect(),
            MetricValue::Daily(series) => series
                .iter()
                .filter(|(_, v)| !v.is_finite())
                .map(|(d, _)| Some(*d))
                .collect(),
            // Rules add a day's values up (shares of a total): that sum must be finite too.
            MetricValue::DailyBy(series) => series
                .iter()
                .filter(|(_, dims)| !dims.values().sum::<f64>().is_finite())
                .map(|(d, _)| Some(*d))
                .collect(),
        };
        if days.is_empty() {
            continue;
        }
        days.dedup();
        let when: Vec<String> = days
            .iter()
            .map(|d| d.map_or("the whole table".to_string(), |d| d.to_string()))
            .collect();
        *value = Err(format!(
            "its value is not a finite number on {} (a sum beyond ±1.8e308)",
            when.join(", ")
        ));
        broken.push((request.to_string(), when));
    }
    if broken.is_empty() {
        return None;
    }
    let listed: Vec<String> = broken
        .iter()
        .map(|(request, when)| format!("{request} on {}", when.join(", ")))
        .collect();
    Some(
        Finding::new(
            Severity::Error,
            ENGINE,
            format!("{}:non_finite_values", scan.table),
            format!(
                "{} metric(s) of `{}` are not finite numbers and cannot be judged: {}",
                broken.len(),
                scan.table,
                listed.join("; ")
            ),
        )
        .context(json!({"metrics": broken.iter().map(|(r, w)| json!({"metric": r, "days": w})).collect::<Vec<_>>()})),
    )
}

/// Findings about a table itself: missing or empty file, missing columns, bad dates, bad rows.
/// The checks with a count and a limit that ran on a read table (required columns, empty and
/// out-of-window dates, lookup misses) are pushed onto `observations` too, passing or not, so
/// that the reports list them.
fn table_findings(
    scan: &TableScan,
    config: &crate::config::TableConfig,
    cx: &RunCtx,
    observations: &mut Vec<Observation>,
) -> Vec<Finding> {
    let table = &scan.table;
    let file = scan.path.display();
    let mut ran = |check: &str, value: u64, max: u64, of: &str| {
        observations.push(
            Observation::check(
                format!("{table}:{check}"),
                cx.expected_date,
                value as f64,
                f64::NEG_INFINITY,
                max as f64,
            )
            .unit(Unit::count(of)),
        );
    };
    let finding = |severity, check: &str, message: String| {
        Finding::new(severity, ENGINE, format!("{table}:{check}"), message)
    };
    let stats = match &scan.outcome {
        Ok(stats) => stats,
        Err(problem) => {
            let (check, message) = match problem {
                TableProblem::Missing => {
                    ("missing_file", format!("Table file {file} does not exist"))
                }
                TableProblem::Empty => (
                    "empty_file",
                    format!("Table file {file} is empty: no header row, no data"),
                ),
                TableProblem::Unreadable(e) => (
                    "unreadable_file",
                    format!("Table file {file} cannot be read: {e}"),
                ),
                TableProblem::Source(e) => (
                    "source_failed",
                    format!("Table {file} cannot be read, the source failed: {e}"),
                ),
            };
            return vec![finding(Severity::Error, check, message)
                .context(json!({"file": scan.path.display().to_string()}))];
        }
    };
    let mut out = Vec::new();
    if !config.required_columns.is_empty() {
        ran(
            "required_columns",
            stats.missing_columns.len() as u64,
            0,
            "missing columns",
        );
    }
    if let Some(dates) = &stats.dates {
        ran("empty_dates", dates.nulls, config.max_empty_dates, "rows");
        let far = dates.out_of_window.as_ref().map_or(0, |far| far.rows);
        ran("out_of_window_dates", far, 0, "rows");
    }
    if !stats.missing_columns.is_empty() {
        // A near miss (`Session_Start`, ` session_id `) is named.
        let listed: Vec<String> = stats
            .missing_columns
            .iter()
            .map(
                |c| match closest(c, stats.columns.iter().map(String::as_str)) {
                    Some(near) => format!("{c} (did you mean `{near}`?)"),
                    None => c.clone(),
                },
            )
            .collect();
        out.push(
            finding(
                Severity::Error,
                "required_columns",
                format!(
                    "Missing required columns in {file}: {}; checks that need them are skipped",
                    listed.join(", ")
                ),
            )
            .context(json!({"missing": stats.missing_columns, "columns": stats.columns})),
        );
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut duplicated: Vec<&str> = Vec::new();
    for column in &stats.columns {
        let count = seen.entry(column).or_default();
        *count += 1;
        if *count == 2 {
            duplicated.push(column);
        }
    }
    if !duplicated.is_empty() {
        // One vigil reads is an ERROR: only the first of the columns is read.
        let read: Vec<&str> = scan
            .metrics
            .iter()
            .flat_map(|(r, _)| r.columns())
            .chain(config.required_columns.iter().map(String::as_str))
            .chain(config.date_column.as_deref())
            .collect();
        let severity = if duplicated.iter().any(|d| read.contains(d)) {
            Severity::Error
        } else {
            Severity::Warn
        };
        out.push(
            finding(
                severity,
                "duplicate_columns",
                format!(
                    "{file} has more than one column named {}: vigil reads only the first of each",
                    duplicated
                        .iter()
                        .map(|d| format!("`{d}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .context(json!({"duplicated": duplicated})),
        );
    }
    if let Some(far) = stats.dates.as_ref().and_then(|d| d.out_of_window) {
        let column = stats.dates.as_ref().map_or("", |d| d.column.as_str());
        out.push(
            finding(
                Severity::Error,
                "out_of_window_dates",
                format!(
                    "{} row(s) of {file} have a `{column}` from {} to {}, outside the run's \
                     window {} to {} (run.max_history_days, run.max_future_days): they are left \
                     out of every daily metric",
                    far.rows, far.first, far.last, far.window.0, far.window.1
                ),
            )
            .value(far.rows as f64)
            .threshold(0.0)
            .context(json!({
                "column": column,
                "first": far.first.to_string(),
                "last": far.last.to_string(),
                "window": [far.window.0.to_string(), far.window.1.to_string()],
            })),
        );
    }
    let multiline = &stats.multiline;
    if multiline.records > config.max_multiline_rows {
        let line = multiline
            .first_line
            .map_or(String::new(), |l| format!(", the first on line {l}"));
        out.push(
            finding(
                Severity::Error,
                "multiline_rows",
                format!(
                    "{} row(s) of {file} run over more than one line{line} (up to {} line \
                     break(s) in one row): a quote that is not closed merges the rows after it; \
                     if line breaks inside cells are expected, raise max_multiline_rows",
                    multiline.records, multiline.most_breaks
                ),
            )
            .value(multiline.records as f64)
            .threshold(config.max_multiline_rows as f64)
            .context(json!({
                "first_line": multiline.first_line,
                "most_line_breaks": multiline.most_breaks,
            })),
        );
    }
    if let Some(dates) = stats
        .dates
        .as_ref()
        .filter(|d| d.nulls > config.max_empty_dates)
    {
        out.push(
            finding(
                Severity::Error,
                "empty_dates",
                format!(
                    "{} row(s) of {file} have an empty `{}` and are left out of every daily metric",
                    dates.nulls, dates.column
                ),
            )
            .value(dates.nulls as f64)
            .threshold(config.max_empty_dates as f64)
            .context(json!({"column": dates.column})),
        );
    }
    if let Some(dates) = &stats.dates {
        for (day, &count) in &dates.unparsable {
            if count <= config.max_unparsable_dates || !day.is_none_or(|d| cx.judges(d)) {
                continue;
            }
            let when = day.map_or("with no readable date".to_string(), |d| format!("on {d}"));
            let mut f = finding(
                Severity::Error,
                "unparsable_dates",
                format!(
                    "{count} row(s) {when} have an unparsable `{}` and are left out of every daily metric",
                    dates.column
                ),
            )
            .value(count as f64)
            .threshold(config.max_unparsable_dates as f64)
            .context(json!({
                "column": dates.column,
                "naive_timestamps_rejected": dates.naive,
                "samples": dates.samples,
            }));
            f.partition_date = *day;
            out.push(f);
        }
    }
    for (looked_up, &misses) in &stats.lookup_misses {
        ran(
            "lookup_misses",
            misses,
            0,
            &format!("rows not found in {looked_up}"),
        );
        if misses > 0 {
            out.push(
                finding(
                    Severity::Warn,
                    "lookup_misses",
                    format!(
                        "{misses} row(s) of {file} have a key not found in `{looked_up}`; they have no looked-up values"
                    ),
                )
                .value(misses as f64)
                .threshold(0.0)
                .context(json!({"looked_up_table": looked_up})),
            );
        }
    }
    if stats.malformed_rows > 0 {
        out.push(
            finding(
                Severity::Warn,
                "malformed_rows",
                format!(
                    "{} row(s) of {file} do not have {} fields; their missing cells read as empty",
                    stats.malformed_rows,
                    stats.columns.len()
                ),
            )
            .value(stats.malformed_rows as f64)
            .threshold(0.0),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::config::LookupConfig;
    use crate::scan::scan_source;
    use crate::testing::{day, table};

    /// Runs the `attribution` table, which looks up `orders` (whose scan panics if
    /// `orders_panics`); returns attribution's rows per day of `orders.order_ts`, or `None` when
    /// the run panicked. Fails if the run does not end within a minute.
    fn run_with_orders(orders_panics: bool) -> Option<BTreeMap<NaiveDate, u64>> {
        let mut attribution = table("a.csv", Some("orders.order_ts"));
        attribution.lookups = vec![LookupConfig {
            table: "orders".into(),
            key: "transaction_id".into(),
            foreign_key: None,
            columns: vec!["order_ts".into()],
        }];
        let tables = BTreeMap::from([
            ("attribution".to_string(), attribution),
            ("orders".to_string(), table("o.csv", Some("order_ts"))),
        ]);
        let data = BTreeMap::from([
            (
                "orders",
                "transaction_id,order_ts\nT1,2025-03-01T10:00:00Z\nT2,2025-03-02T10:00:00Z\n",
            ),
            (
                "attribution",
                "transaction_id,model\nT1,last_click\nT2,last_click\nT2,first_click\n",
            ),
        ]);
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let eval = catch_unwind(AssertUnwindSafe(|| {
                evaluate_with(
                    &[],
                    &tables,
                    day("2025-03-02"),
                    Scope::Partition,
                    false,
                    |name, config, input| {
                        if orders_panics && name == "orders" {
                            panic!("the orders scan fails");
                        }
                        let source = Ok::<_, TableProblem>(data[name].as_bytes());
                        scan_source(name, config, PathBuf::from(&config.file), source, input)
                    },
                )
            }));
            let rows = eval.ok().map(|eval| {
                let scan = eval
                    .scans
                    .iter()
                    .find(|s| s.table == "attribution")
                    .unwrap();
                let stats = scan.outcome.as_ref().unwrap();
                stats.dates.as_ref().unwrap().rows_by_day.clone()
            });
            let _ = done.send(rows);
        });
        finished
            .recv_timeout(Duration::from_secs(60))
            .expect("the run finished instead of waiting for a handover")
    }

    #[test]
    fn a_looking_table_gets_the_index_of_the_table_it_looks_up() {
        let rows = run_with_orders(false).expect("no panic");
        assert_eq!(
            rows,
            BTreeMap::from([(day("2025-03-01"), 1), (day("2025-03-02"), 2)])
        );
    }

    #[test]
    fn a_looking_table_does_not_wait_for_a_scan_that_panicked() {
        assert_eq!(run_with_orders(true), None);
    }
}
