//! The CSV executor: reads one table file in one streaming pass and computes every metric
//! requested of it, plus the table's own health (header, required columns, date parsing).

pub mod cache;
mod codec;
mod columns;
pub mod incremental;
mod lookup;
pub mod pushed;
mod state;
mod worker;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::NaiveDate;
use simd_csv::{ZeroCopyReader, ZeroCopyReaderBuilder};

use crate::config::TableConfig;
use crate::metric::{MetricRequest, MetricValue};
use crate::timestamp::{leading_date, DateError, DayParser};
use columns::Plan;
pub use incremental::{scan_partitions, Partition, PartitionFile, PartitionStats};
pub use lookup::{Row, Rows};
pub use worker::{Multiline, Record};

/// How the date column of a table parsed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DateStats {
    /// The date column.
    pub column: String,
    /// Rows per day that parsed.
    pub rows_by_day: BTreeMap<NaiveDate, u64>,
    /// Empty date cells.
    pub nulls: u64,
    /// Unparsable cells per day (when the cell starts with a valid date) or `None` (no day).
    pub unparsable: BTreeMap<Option<NaiveDate>, u64>,
    /// Of the unparsable cells, those rejected only for lacking a UTC offset.
    pub naive: u64,
    /// Up to five unparsable cells, as written.
    pub samples: Vec<String>,
    /// Rows dated outside the run's window of plausible days (left out of `rows_by_day` and of
    /// every daily metric), with their first and last day.
    pub out_of_window: Option<OutOfWindow>,
}

/// Rows whose date is valid but far from the run's partition (`0001-01-01`, `9999-12-31`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfWindow {
    /// The rows.
    pub rows: u64,
    /// Their earliest and latest day.
    pub first: NaiveDate,
    /// Their latest day.
    pub last: NaiveDate,
    /// The window: the first and last plausible day.
    pub window: (NaiveDate, NaiveDate),
}

impl DateStats {
    /// Adds the counts of other segments of the same table (samples are gathered apart).
    fn merge(&mut self, other: DateStats) {
        for (day, n) in other.rows_by_day {
            *self.rows_by_day.entry(day).or_default() += n;
        }
        self.nulls += other.nulls;
        for (day, n) in other.unparsable {
            *self.unparsable.entry(day).or_default() += n;
        }
        self.naive += other.naive;
    }

    /// Moves the rows of days outside `window` (first and last plausible day) out of
    /// `rows_by_day`, counting them: daily series then span only plausible days (a single row
    /// dated 0001-01-01 would otherwise fill 739,000 days).
    pub fn keep_within(&mut self, window: Option<(NaiveDate, NaiveDate)>) {
        let Some((lo, hi)) = window else { return };
        let outside: Vec<(NaiveDate, u64)> = self
            .rows_by_day
            .iter()
            .filter(|(d, _)| **d < lo || **d > hi)
            .map(|(d, n)| (*d, *n))
            .collect();
        let (Some(first), Some(last)) = (outside.first(), outside.last()) else {
            return;
        };
        self.out_of_window = Some(OutOfWindow {
            rows: outside.iter().map(|(_, n)| n).sum(),
            first: first.0,
            last: last.0,
            window: (lo, hi),
        });
        for (day, _) in &outside {
            self.rows_by_day.remove(day);
        }
    }

    /// Whether `day` is within a table's date span (first and last day with rows).
    pub fn in_span(span: Option<(NaiveDate, NaiveDate)>, day: &NaiveDate) -> bool {
        span.is_some_and(|(first, last)| first <= *day && *day <= last)
    }

    /// First and last day with rows.
    pub fn span(&self) -> Option<(NaiveDate, NaiveDate)> {
        Some((
            *self.rows_by_day.keys().next()?,
            *self.rows_by_day.keys().next_back()?,
        ))
    }

    /// Total unparsable cells.
    pub fn unparsable_total(&self) -> u64 {
        self.unparsable.values().sum()
    }
}

/// What reading a table found.
#[derive(Clone, Debug, PartialEq)]
pub struct TableStats {
    /// Data rows (header excluded).
    pub rows: u64,
    /// Header names, in file order.
    pub columns: Vec<String>,
    /// The columns' types as the source declares them (Parquet, PostgreSQL), in header order;
    /// empty for CSV, whose columns have none.
    pub column_types: Vec<String>,
    /// Required columns (and the date column) absent from the header, in config order.
    pub missing_columns: Vec<String>,
    /// Rows whose field count differs from the header's (their missing cells read as null).
    pub malformed_rows: u64,
    /// Per looked-up table, rows whose (non-empty) key was not found in it.
    pub lookup_misses: BTreeMap<String, u64>,
    /// Date parsing, when the table has a date column present in the file.
    pub dates: Option<DateStats>,
    /// Records that run over more than one line (CSV only).
    pub multiline: Multiline,
}

/// Why a table could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableProblem {
    /// The file does not exist.
    Missing,
    /// The file has no header row (0 bytes or blank).
    Empty,
    /// The file could not be read; the message says why.
    Unreadable(String),
    /// The source failed, not the table (a cluster or server that cannot be reached, a query
    /// that fails or does not finish in time): the run cannot judge the warehouse.
    Source(String),
}

impl std::fmt::Display for TableProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableProblem::Missing => f.write_str("does not exist"),
            TableProblem::Empty => f.write_str("is empty: no header row"),
            TableProblem::Unreadable(e) => write!(f, "cannot be read: {e}"),
            TableProblem::Source(e) => write!(f, "cannot be read, the source failed: {e}"),
        }
    }
}

/// One table's scan: its file, its health and its metrics.
#[derive(Clone, Debug)]
pub struct TableScan {
    /// Table name from the config.
    pub table: String,
    /// The file read.
    pub path: PathBuf,
    /// What was found, or why nothing could be.
    pub outcome: Result<TableStats, TableProblem>,
    /// The requested metrics, each computed or with the reason it is unavailable.
    pub metrics: Vec<(MetricRequest, Result<MetricValue, String>)>,
    /// The rows by key that another table looks up, when one does (the runner takes it to hand
    /// it to the tables that look it up).
    pub index: Option<LookupIndex>,
    /// For a partitioned table scanned with a partition cache: partitions read and reused.
    pub partitions: Option<PartitionStats>,
}

/// What another table looks up in this one: its key column and the columns it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// The key column of this table.
    pub key: String,
    /// The columns handed over.
    pub columns: Vec<String>,
}

/// A table's rows by key, for another table's lookup (the first row of each key wins).
#[derive(Clone, Debug, Default)]
pub struct LookupIndex {
    /// The looked-up table; its columns are known as `<table>.<column>`.
    pub table: String,
    /// The exported columns, in order.
    pub columns: Vec<String>,
    /// Exported values by key.
    pub rows: Rows,
    /// Why the index is empty, when the looked-up table could not provide it.
    pub problem: Option<String>,
}

/// What to compute while reading a table.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScanInput<'a> {
    /// The metrics requested of the table.
    pub requests: &'a [MetricRequest],
    /// The index another table needs from this one.
    pub export: Option<&'a Export>,
    /// The indexes of the tables this one looks up, each with the key column of this table.
    pub lookups: &'a [(&'a LookupIndex, &'a str)],
    /// Counts the bytes read, for a progress display.
    pub progress: Option<&'a AtomicU64>,
    /// Every configured table, by name (a source that joins lookups finds the looked-up
    /// tables' relations here).
    pub tables: Option<&'a BTreeMap<String, TableConfig>>,
    /// The first and last plausible day of the run: rows dated outside are counted, not put
    /// in daily metrics.
    pub window: Option<(NaiveDate, NaiveDate)>,
    /// Where the results of unchanged partitions of a partitioned table are kept between runs
    /// (an incremental run); `None` reads every partition and stores nothing.
    pub cache: Option<&'a dyn cache::PartitionCache>,
    /// The run's expected partition: with [`ScanInput::recompute_days`], which partitions are
    /// read again whatever the cache holds.
    pub expected_date: Option<NaiveDate>,
    /// Partitions dated this many days before the expected partition or later are always read
    /// (`run.recompute_days`); older unchanged ones reuse their stored results.
    pub recompute_days: u32,
    /// Rows dated after this day are left out as if the table did not hold them (a backtest's
    /// view of the warehouse on that day): not counted, not in any metric or health count,
    /// still in the index another table looks up (so its rows that take a later date from
    /// this one are left out too). Rows without a usable date are kept.
    pub until: Option<NaiveDate>,
}

/// Files smaller than this are read by one thread.
const PARALLEL_MIN_BYTES: u64 = 32 << 20;

/// Threads a table may be read on (0: one per core).
static WORKERS: AtomicUsize = AtomicUsize::new(0);

/// Reads each table on at most `threads` threads (`vigil run --threads N`); 0 for one per core.
pub fn set_workers(threads: usize) {
    WORKERS.store(threads, std::sync::atomic::Ordering::Relaxed);
}

/// Threads a table is read on.
fn workers() -> usize {
    match WORKERS.load(std::sync::atomic::Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Reads `config.file` under `dir` once and computes what `input` asks for. A large table whose
/// requests do not depend on row order is read in segments on all cores.
pub fn scan_table(name: &str, config: &TableConfig, dir: &Path, input: ScanInput<'_>) -> TableScan {
    let path = dir.join(&config.file);
    let file = match open_table(&path) {
        Ok(file) => file,
        Err(problem) => return scan_source(name, config, path, Err::<File, _>(problem), input),
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let workers = workers();
    let parallel = (size >= PARALLEL_MIN_BYTES && workers > 1)
        .then(|| scan_parallel(name, config, &path, input, workers))
        .flatten();
    let mut scan = parallel.unwrap_or_else(|| scan_source(name, config, path, Ok(file), input));
    if let Ok(stats) = scan.outcome.as_mut() {
        if let Some(offset) = stats.multiline.first {
            stats.multiline.first_line = line_at(&scan.path, offset);
        }
    }
    scan
}

/// The line (1-based) of a byte offset of a file: one more than the line breaks before it.
fn line_at(path: &Path, offset: u64) -> Option<u64> {
    let mut file = File::open(path).ok()?.take(offset);
    let mut buffer = vec![0u8; 1 << 16];
    let mut breaks = 0u64;
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Some(breaks + 1),
            Ok(n) => breaks += memchr::memchr_iter(b'\n', &buffer[..n]).count() as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// The header of `config.file` under `dir` (only the first record is read).
pub fn read_header(config: &TableConfig, dir: &Path) -> Result<Vec<String>, TableProblem> {
    let file = open_table(&dir.join(&config.file))?;
    header(&mut reader(file, true))
}

/// Opens a table file: only a regular file (after links), so that a named pipe cannot block
/// the run and a device such as `/dev/zero` cannot grow its memory without end.
pub fn open_table(path: &Path) -> Result<File, TableProblem> {
    let problem = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => TableProblem::Missing,
        _ => TableProblem::Unreadable(e.to_string()),
    };
    let meta = std::fs::metadata(path).map_err(problem)?;
    if !meta.is_file() {
        let kind = {
            use std::os::unix::fs::FileTypeExt;
            let t = meta.file_type();
            if t.is_dir() {
                "a folder"
            } else if t.is_fifo() {
                "a named pipe"
            } else if t.is_char_device() || t.is_block_device() {
                "a device"
            } else if t.is_socket() {
                "a socket"
            } else {
                "something else"
            }
        };
        return Err(TableProblem::Unreadable(format!(
            "it is {kind}, not a regular file"
        )));
    }
    File::open(path).map_err(problem)
}

/// Computes what `input` asks for from an opened table (or the reason it could not be opened),
/// in one pass; `path` is what findings and reports call it.
pub fn scan_source(
    name: &str,
    config: &TableConfig,
    path: PathBuf,
    source: Result<impl Read, TableProblem>,
    input: ScanInput<'_>,
) -> TableScan {
    let outcome = source.and_then(|source| {
        let mut reader = reader(source, true);
        let plan = Plan::new(header(&mut reader)?, config, input);
        let mut worker = worker::Worker::new(&plan, config);
        worker.read(reader, 0, 0, None, input.progress)?;
        let output = worker.finish();
        Ok(finish(name, plan, vec![output]))
    });
    table_scan(name, path, outcome, input)
}

/// Reads one segment of a table: calls the callback with each row in order; the slice is the
/// projection (the header positions the requests read; other cells may be left absent).
pub type ReadSegment<'a, S> =
    dyn Fn(&S, &[usize], &mut dyn FnMut(&dyn Record)) -> Result<(), TableProblem> + Sync + 'a;

/// Computes what `input` asks for from a table of any format read in segments (Parquet row
/// groups, say): with the same planning, states and merging as the CSV scan, so a value means
/// the same whatever the format. Segments are read on all cores when no request depends on row
/// order, else in order on one. `header` is the table's columns (or why it has none).
pub fn scan_segments<S: Sync>(
    name: &str,
    config: &TableConfig,
    path: PathBuf,
    header: Result<Vec<String>, TableProblem>,
    input: ScanInput<'_>,
    segments: &[S],
    read: &ReadSegment<'_, S>,
) -> TableScan {
    let outcome = header.and_then(|header| {
        let plan = Plan::new(header, config, input);
        let projection = plan.own_columns();
        let workers = if plan.splittable() {
            workers().min(segments.len()).max(1)
        } else {
            1
        };
        let next = AtomicU64::new(0);
        let work = |worker: &mut worker::Worker<'_>| -> Result<(), TableProblem> {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as usize;
                let Some(segment) = segments.get(i) else {
                    return Ok(());
                };
                read(segment, &projection, &mut |row| worker.fold_record(row))?;
                worker.end_segment(i);
            }
        };
        let outputs: Vec<Result<worker::Output, TableProblem>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    let (plan, work) = (&plan, &work);
                    s.spawn(move || {
                        let mut worker = worker::Worker::new(plan, config);
                        work(&mut worker).map(|()| worker.finish())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|panic| {
                        Err(TableProblem::Unreadable(format!(
                            "a reader panicked: {}",
                            crate::api::protocol::panic_message(panic.as_ref())
                        )))
                    })
                })
                .collect()
        });
        let outputs = outputs.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(finish(name, plan, outputs))
    });
    table_scan(name, path, outcome, input)
}

/// Segments per core: a worker reads its own run of segments, then takes segments from the end
/// of the longest run left, so a core slowed by other work (another table, another process)
/// reads fewer of them, and each worker still reads mostly adjacent rows (days shared between
/// workers cost a merge).
const SEGMENTS_PER_WORKER: usize = 16;

/// The segments still to read, as one run of segment numbers per worker.
struct SegmentRuns(Vec<Mutex<Range<usize>>>);

impl SegmentRuns {
    /// `segments` numbers split into `workers` runs of adjacent segments.
    fn new(segments: usize, workers: usize) -> Self {
        SegmentRuns(
            (0..workers)
                .map(|w| Mutex::new(segments * w / workers..segments * (w + 1) / workers))
                .collect(),
        )
    }

    /// The next segment for `worker`: the first of its own run, or else the last of the
    /// longest run left.
    fn next(&self, worker: usize) -> Option<usize> {
        fn lock(run: &Mutex<Range<usize>>) -> MutexGuard<'_, Range<usize>> {
            run.lock().unwrap_or_else(PoisonError::into_inner)
        }
        if let Some(i) = lock(&self.0[worker]).next() {
            return Some(i);
        }
        let mut runs: Vec<&Mutex<Range<usize>>> = self.0.iter().collect();
        runs.sort_by_key(|run| std::cmp::Reverse(lock(run).len()));
        runs.into_iter().find_map(|run| lock(run).next_back())
    }
}

/// Reads a large table in segments on `workers` threads. The segments come from `simd-csv`'s
/// seeker and are checked: each must start exactly where the previous one's reader stopped.
/// `None` when the table is not splittable or a check fails (the caller then reads it in one
/// pass).
fn scan_parallel(
    name: &str,
    config: &TableConfig,
    path: &Path,
    input: ScanInput<'_>,
    workers: usize,
) -> Option<TableScan> {
    let mut header_reader = reader(File::open(path).ok()?, true);
    let plan = Plan::new(header(&mut header_reader).ok()?, config, input);
    if !plan.splittable() {
        return None;
    }
    // The seeker splits into at most as many segments as it sampled records.
    let wanted = workers * SEGMENTS_PER_WORKER;
    let mut seeker = simd_csv::SeekerBuilder::new()
        .sample_size(wanted.max(128) as u64)
        .from_reader(File::open(path).ok()?)
        .ok()??;
    let segments = seeker.segments(wanted).ok()?;
    if segments.len() < 2 {
        return None;
    }
    let workers = workers.min(segments.len());
    let runs = SegmentRuns::new(segments.len(), workers);
    let read_segment = |worker: &mut worker::Worker<'_>, i: usize| {
        let (start, end) = segments[i];
        let mut file = File::open(path).map_err(|e| TableProblem::Unreadable(e.to_string()))?;
        file.seek(SeekFrom::Start(start))
            .map_err(|e| TableProblem::Unreadable(e.to_string()))?;
        let limit = (i + 1 < segments.len()).then(|| end - start);
        worker.read(reader(file, false), i, start, limit, input.progress)
    };
    // Each worker: its output and, per segment it read, where reading stopped.
    type Done = (worker::Output, Vec<(usize, u64)>);
    let results: Vec<Result<Done, TableProblem>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (plan, runs, read_segment) = (&plan, &runs, &read_segment);
                s.spawn(move || {
                    let mut worker = worker::Worker::new(plan, config);
                    let mut stops = Vec::new();
                    while let Some(i) = runs.next(w) {
                        stops.push((i, read_segment(&mut worker, i)?));
                    }
                    Ok((worker.finish(), stops))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|panic| {
                    Err(TableProblem::Unreadable(format!(
                        "a reader panicked: {}",
                        crate::api::protocol::panic_message(panic.as_ref())
                    )))
                })
            })
            .collect()
    });
    let mut outputs = Vec::new();
    let mut stopped_at = vec![None; segments.len()];
    for result in results {
        let (output, stops) = result.ok()?;
        outputs.push(output);
        for (i, stop) in stops {
            stopped_at[i] = Some(stop);
        }
    }
    let contiguous = segments
        .windows(2)
        .zip(&stopped_at)
        .all(|(pair, stop)| *stop == Some(pair[1].0 - pair[0].0));
    if !contiguous {
        return None;
    }
    let scan = finish(name, plan, outputs);
    Some(table_scan(name, path.to_path_buf(), Ok(scan), input))
}

/// A zero-copy reader with the table's settings.
fn reader<R: Read>(source: R, has_headers: bool) -> ZeroCopyReader<R> {
    ZeroCopyReaderBuilder::new()
        .flexible(true)
        .has_headers(has_headers)
        .buffer_capacity(1 << 18)
        .from_reader(source)
}

/// The header names (a leading UTF-8 byte order mark dropped); a file without one is empty.
fn header<R: Read>(reader: &mut ZeroCopyReader<R>) -> Result<Vec<String>, TableProblem> {
    let header = reader
        .byte_headers()
        .map_err(|e| TableProblem::Unreadable(e.to_string()))?;
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = if i == 0 {
                h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h)
            } else {
                h
            };
            String::from_utf8_lossy(h).into_owned()
        })
        .collect();
    if names.iter().all(|h| h.trim().is_empty()) {
        return Err(TableProblem::Empty);
    }
    Ok(names)
}

/// What the workers of a table found, merged.
struct Scanned {
    stats: TableStats,
    metrics: Vec<(MetricRequest, Result<MetricValue, String>)>,
    index: Option<LookupIndex>,
}

/// Merges the workers' outputs (in file order) into the table's stats, metrics and index.
fn finish(name: &str, plan: Plan<'_>, outputs: Vec<worker::Output>) -> Scanned {
    let mut outputs = outputs.into_iter();
    let mut first = outputs.next().expect("at least one worker");
    for output in outputs {
        first.rows += output.rows;
        first.malformed_rows += output.malformed_rows;
        for (a, b) in first.lookup_misses.iter_mut().zip(output.lookup_misses) {
            *a += b;
        }
        if let (Some(a), Some(b)) = (first.dates.as_mut(), output.dates) {
            a.merge(b);
        }
        first.samples.extend(output.samples);
        first.multiline.merge(output.multiline);
        for (a, b) in first.partials.iter_mut().zip(output.partials) {
            a.merge(b);
        }
        // Parts of a table that exports are merged in file order (the first row of a key
        // wins).
        first.index_rows.append(&output.index_rows);
    }
    if let Some(dates) = first.dates.as_mut() {
        // In file order, whichever worker read which segment.
        first.samples.sort_by_key(|(segment, _)| *segment);
        dates.samples = first
            .samples
            .drain(..)
            .flat_map(|(_, samples)| samples)
            .take(SAMPLES)
            .collect();
    }
    if let Some(dates) = first.dates.as_mut() {
        dates.keep_within(plan.window);
    }
    let span = first.dates.as_ref().and_then(DateStats::span);
    let mut metrics = plan.unavailable;
    // Derived partials come from their fused source before the sources are finished.
    let derived: Vec<Option<state::Partial>> = first
        .partials
        .iter()
        .map(|p| match p {
            state::Partial::Derived(source) => Some(first.partials[*source].by_dimension()),
            _ => None,
        })
        .collect();
    metrics.extend(plan.bound.iter().zip(first.partials).zip(derived).map(
        |((b, partial), derived)| {
            (
                b.request.clone(),
                Ok(derived.unwrap_or(partial).finish(span)),
            )
        },
    ));
    let index = plan.export.map(|(export, refs)| {
        let problem = refs.err();
        LookupIndex {
            table: name.to_string(),
            columns: export.columns.clone(),
            rows: if problem.is_none() {
                first.index_rows
            } else {
                Rows::default()
            },
            problem,
        }
    });
    let stats = TableStats {
        rows: first.rows,
        columns: plan.header,
        column_types: Vec::new(),
        missing_columns: plan.missing_columns,
        malformed_rows: first.malformed_rows,
        lookup_misses: input_lookup_names(&plan.lookups)
            .into_iter()
            .zip(first.lookup_misses)
            .collect(),
        dates: first.dates,
        multiline: first.multiline,
    };
    Scanned {
        stats,
        metrics,
        index,
    }
}

fn input_lookup_names(lookups: &[(&LookupIndex, Option<columns::ColumnRef>)]) -> Vec<String> {
    lookups
        .iter()
        .map(|(index, _)| index.table.clone())
        .collect()
}

/// The table's scan; when it could not be read, every request is unavailable with the reason.
fn table_scan(
    name: &str,
    path: PathBuf,
    outcome: Result<Scanned, TableProblem>,
    input: ScanInput<'_>,
) -> TableScan {
    match outcome {
        Ok(scanned) => TableScan {
            table: name.to_string(),
            path,
            outcome: Ok(scanned.stats),
            metrics: scanned.metrics,
            index: scanned.index,
            partitions: None,
        },
        Err(problem) => {
            let reason = match &problem {
                TableProblem::Missing => format!("table file {} is missing", path.display()),
                TableProblem::Empty => format!("table file {} is empty", path.display()),
                TableProblem::Unreadable(e) | TableProblem::Source(e) => {
                    format!("table file {} is unreadable: {e}", path.display())
                }
            };
            let metrics = input
                .requests
                .iter()
                .map(|r| (r.clone(), Err(reason.clone())))
                .collect();
            let index = input.export.map(|e| LookupIndex {
                table: name.to_string(),
                columns: e.columns.clone(),
                problem: Some(reason),
                ..LookupIndex::default()
            });
            TableScan {
                table: name.to_string(),
                path,
                outcome: Err(problem),
                metrics,
                index,
                partitions: None,
            }
        }
    }
}

/// Unparsable date cells kept as samples.
pub const SAMPLES: usize = 5;

/// Parses one date cell, recording an empty or unparsable one in the stats, and the first
/// unparsable ones in `samples` (the caller counts the rows of each day).
fn day_of(
    cell: Option<&[u8]>,
    parser: &mut DayParser,
    config: &TableConfig,
    stats: &mut DateStats,
    samples: &mut Vec<String>,
) -> Option<NaiveDate> {
    let cell = cell.unwrap_or_default();
    if cell.trim_ascii().is_empty() {
        stats.nulls += 1;
        return None;
    }
    match parser.parse(cell, config.naive_timestamps) {
        Ok(day) => Some(day),
        Err(error) => {
            if error == DateError::Naive {
                stats.naive += 1;
            }
            *stats.unparsable.entry(leading_date(cell)).or_default() += 1;
            if samples.len() < SAMPLES {
                samples.push(String::from_utf8_lossy(cell).into_owned());
            }
            None
        }
    }
}

#[cfg(test)]
mod tests;
