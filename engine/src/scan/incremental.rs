//! Incremental scans of partitioned tables: a partition (the files of one leaf `key=value/`
//! folder of a Parquet dataset) whose files are unchanged since the previous run, and which is
//! dated before the days always recomputed, reuses the partial result stored for it instead of
//! being read; the others are read, and their partial results stored. Reused and fresh partial
//! results merge exactly as the workers of a full scan do, so the findings are those of a full
//! scan.
//!
//! A stored entry is keyed by the partition's folder; its value holds the partition's identity
//! (every file's relative path, size and modification time in nanoseconds, and a fingerprint of
//! the table's plan: vigil's version and the encoding, the table config, the requests, the
//! header, the index it hands over and the indexes it looks up), then the worker output of the
//! partition: table health counts, unparsable-date samples, one partial value per request and
//! the rows it hands over, then a checksum.
//! An entry that does not match or does not decode is ignored and the partition read.
//!
//! Distinct counts: a day whose rows all sit in one partition (when it is stored) keeps only its
//! counts, any other day its cell hashes; a reused partition whose count-only day has rows in
//! another partition of the run is read again. Order-dependent results merge in file order
//! (partitions are read one worker each, in order): `duplicates` keeps each value with the
//! group of its first row in the partition (a later partition's first row of a value an earlier
//! one holds is a duplicate too), and the index a table hands to another keeps the first row of
//! each key of the partition (the first partition's wins). A distinct count over the whole table
//! needs every cell at once: such a table is scanned fully, with the reason in
//! [`PartitionStats::full_scan_reason`]. A table that looks another up folds a fingerprint of
//! the looked-up index into its identity (reused only while that index is unchanged).

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Days, NaiveDate};
use foldhash::fast::FixedState;

use super::codec::{Reader, Writer};
use super::columns::Plan;
use super::state::{AccKind, Partial};
use super::worker::{Output, Worker};
use super::{
    finish, scan_segments, table_scan, workers, DateStats, ReadSegment, Rows, ScanInput,
    TableProblem, TableScan,
};
use crate::config::TableConfig;
use crate::metric::{Grouping, Measure};

/// The encoding of stored entries: a change makes every stored entry unusable.
const MAGIC: &[u8; 8] = b"vigilpt1";

/// One file of a partition, as its identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionFile {
    /// Its path relative to the table's dataset folder.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time in nanoseconds since 1970 (`None`: unknown, never reused).
    pub modified_ns: Option<i64>,
}

/// A partition of a table: the files of one leaf partition folder, read as consecutive
/// segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// The cache key: the folder relative to the dataset (`session_date=2025-03-01`).
    pub key: String,
    /// The day of the partition, when a partition value is a date (else it is always read).
    pub day: Option<NaiveDate>,
    /// Its files, in reading order.
    pub files: Vec<PartitionFile>,
    /// Its segments (indexes into the table's segments).
    pub segments: Range<usize>,
}

/// How an incremental scan of a partitioned table went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionStats {
    /// Partitions read.
    pub read: usize,
    /// Partitions whose stored result was reused.
    pub reused: usize,
    /// Why the table was read whole without stored results, when it was.
    pub full_scan_reason: Option<String>,
}

/// A partition's output and the days whose distinct counts it holds as counts only.
struct Part {
    output: Output,
    claims: Vec<NaiveDate>,
    reused: bool,
}

/// Computes what `input` asks for from a partitioned table, reusing the results stored in
/// `input.cache` for unchanged partitions dated before `input.expected_date -
/// input.recompute_days`, and storing those of the partitions read. Without a cache it is
/// [`scan_segments`]. `partitions` cover `segments` in order.
#[allow(clippy::too_many_arguments)]
pub fn scan_partitions<S: Sync>(
    name: &str,
    config: &TableConfig,
    path: PathBuf,
    header: Result<Vec<String>, TableProblem>,
    input: ScanInput<'_>,
    segments: &[S],
    partitions: &[Partition],
    read: &ReadSegment<'_, S>,
) -> TableScan {
    // Stored partition results hold every row: a scan cut at a day reads everything.
    let Some(cache) = input.cache.filter(|_| input.until.is_none()) else {
        return scan_segments(name, config, path, header, input, segments, read);
    };
    let columns = match &header {
        Ok(columns) => columns.clone(),
        Err(_) => return scan_segments(name, config, path, header, input, segments, read),
    };
    let plan = Plan::new(columns, config, input);
    let full = |reason: String| {
        let mut scan = scan_segments(
            name,
            config,
            path.clone(),
            header.clone(),
            input,
            segments,
            read,
        );
        scan.partitions = Some(PartitionStats {
            read: partitions.len(),
            reused: 0,
            full_scan_reason: Some(reason),
        });
        scan
    };
    if let Some(reason) = whole_table(&plan) {
        return full(reason);
    }
    if partitions.iter().all(|p| p.day.is_none()) {
        return full("the table is not partitioned by day (no `key=YYYY-MM-DD` folders)".into());
    }
    let fingerprint = fingerprint(name, config, &plan, input);
    let template = Worker::new(&plan, config).finish();
    let kinds: Vec<AccKind> = plan
        .bound
        .iter()
        .zip(&template.partials)
        .map(|(b, partial)| match (partial, &b.request.measure) {
            (Partial::Fused(..), _) => AccKind::Fused,
            (_, Measure::Distinct(_)) => AccKind::Set,
            _ => AccKind::Sum,
        })
        .collect();
    let recomputed_from = input
        .expected_date
        .and_then(|d| d.checked_sub_days(Days::new(u64::from(input.recompute_days))));
    let mut parts: Vec<Option<Part>> = partitions
        .iter()
        .map(|p| {
            let reusable = p.day.zip(recomputed_from).is_some_and(|(d, from)| d < from)
                && p.files.iter().all(|f| f.modified_ns.is_some());
            if !reusable {
                return None;
            }
            let bytes = cache.get(name, &p.key)?;
            let (output, claims) = decode(&bytes, fingerprint, p, &template, &kinds)?;
            Some(Part {
                output,
                claims,
                reused: true,
            })
        })
        .collect();
    let ctx = Reading {
        plan: &plan,
        config,
        segments,
        partitions,
        read,
    };
    let missing: Vec<usize> = (0..parts.len()).filter(|&i| parts[i].is_none()).collect();
    if let Err(problem) = ctx.fill(&mut parts, &missing) {
        return table_scan(name, path, Err(problem), input);
    }
    let days: Vec<BTreeSet<NaiveDate>> = parts.iter().map(|p| days_of(p.as_ref())).collect();
    // A reused day kept as counts only that has rows in another partition: read it again.
    let conflicting: Vec<usize> = (0..parts.len())
        .filter(|&i| {
            parts[i].as_ref().is_some_and(|p| {
                p.claims.iter().any(|d| {
                    days.iter()
                        .enumerate()
                        .any(|(j, other)| j != i && other.contains(d))
                })
            })
        })
        .collect();
    for &i in &conflicting {
        parts[i] = None;
    }
    if let Err(problem) = ctx.fill(&mut parts, &conflicting) {
        return table_scan(name, path, Err(problem), input);
    }
    let mut stats = PartitionStats::default();
    let mut outputs = Vec::with_capacity(parts.len());
    for (i, part) in parts.into_iter().enumerate() {
        let Some(part) = part else {
            unreachable!("every partition is reused or read")
        };
        if part.reused {
            stats.reused += 1;
        } else {
            stats.read += 1;
            let owned = |d: &NaiveDate| {
                days.iter()
                    .enumerate()
                    .all(|(j, other)| j == i || !other.contains(d))
            };
            let bytes = encode(fingerprint, &partitions[i], &part.output, &owned);
            cache.put(name, &partitions[i].key, bytes);
        }
        outputs.push(part.output);
    }
    let mut scan = if outputs.is_empty() {
        // No partition at all: as a full scan of no segment says.
        scan_segments(name, config, path, header, input, segments, read)
    } else {
        table_scan(name, path, Ok(finish(name, plan, outputs)), input)
    };
    scan.partitions = Some(stats);
    scan
}

/// Why the plan's results cannot be put together from partitions, if they cannot.
fn whole_table(plan: &Plan<'_>) -> Option<String> {
    plan.bound
        .iter()
        .find_map(|b| match (&b.request.measure, &b.request.grouping) {
            (Measure::Distinct(c), Grouping::Total) => Some(format!(
                "a distinct count of `{c}` over the whole table needs every row at once"
            )),
            _ => None,
        })
}

/// What reading partitions needs.
struct Reading<'r, 'p, S> {
    plan: &'r Plan<'p>,
    config: &'r TableConfig,
    segments: &'r [S],
    partitions: &'r [Partition],
    read: &'r ReadSegment<'r, S>,
}

impl<S: Sync> Reading<'_, '_, S> {
    /// Reads the partitions at `which` (one worker per partition, on all cores) into `parts`.
    fn fill(&self, parts: &mut [Option<Part>], which: &[usize]) -> Result<(), TableProblem> {
        if which.is_empty() {
            return Ok(());
        }
        let projection = self.plan.own_columns();
        let next = AtomicUsize::new(0);
        let work = || -> Result<Vec<(usize, Output)>, TableProblem> {
            let mut done = Vec::new();
            while let Some(&i) = which.get(next.fetch_add(1, Ordering::Relaxed)) {
                let mut worker = Worker::new(self.plan, self.config);
                for s in self.partitions[i].segments.clone() {
                    let segment = self.segments.get(s).ok_or_else(|| {
                        TableProblem::Unreadable(format!("partition segment {s} is missing"))
                    })?;
                    (self.read)(segment, &projection, &mut |row| worker.fold_record(row))?;
                    worker.end_segment(s);
                }
                done.push((i, worker.finish()));
            }
            Ok(done)
        };
        let threads = workers().min(which.len()).max(1);
        let results: Vec<Result<Vec<(usize, Output)>, TableProblem>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
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
        for result in results {
            for (i, output) in result? {
                parts[i] = Some(Part {
                    output,
                    claims: Vec::new(),
                    reused: false,
                });
            }
        }
        Ok(())
    }
}

/// The days a partition has rows on.
fn days_of(part: Option<&Part>) -> BTreeSet<NaiveDate> {
    part.map(|p| output_days(&p.output)).unwrap_or_default()
}

/// The days a worker output has rows on.
fn output_days(output: &Output) -> BTreeSet<NaiveDate> {
    let mut days: BTreeSet<NaiveDate> = output
        .dates
        .iter()
        .flat_map(|d| d.rows_by_day.keys().copied())
        .collect();
    days.extend(output.partials.iter().flat_map(Partial::days));
    days
}

/// The fingerprint of everything besides the partition's files that its result depends on.
fn fingerprint(
    name: &str,
    config: &TableConfig,
    plan: &Plan<'_>,
    input: ScanInput<'_>,
) -> [u64; 2] {
    let lookups: Vec<String> = input
        .lookups
        .iter()
        .map(|(index, key)| {
            format!(
                "{}|{key}|{:?}|{:?}|{}",
                index.table,
                index.columns,
                index.problem,
                rows_fingerprint(&index.rows)
            )
        })
        .collect();
    let text = format!(
        "{}\n{}\n{name}\n{}\n{}\n{:?}\n{:?}\n{:?}",
        String::from_utf8_lossy(MAGIC),
        env!("CARGO_PKG_VERSION"),
        serde_json::to_string(config).unwrap_or_default(),
        serde_json::to_string(input.requests).unwrap_or_default(),
        plan.header,
        lookups,
        input.export,
    );
    [
        FixedState::with_seed(1).hash_one(&text),
        FixedState::with_seed(2).hash_one(&text),
    ]
}

/// A fingerprint of a lookup index's rows.
fn rows_fingerprint(rows: &Rows) -> u64 {
    FixedState::with_seed(3).hash_one(rows.contents())
}

/// The checksum of an entry's bytes.
fn checksum(bytes: &[u8]) -> u64 {
    FixedState::with_seed(4).hash_one(bytes)
}

/// The stored entry of a partition read: its identity, its output (the distinct cells of the
/// days `owned` answers yes for kept as counts only) and a checksum.
fn encode(
    fingerprint: [u64; 2],
    partition: &Partition,
    output: &Output,
    owned: &dyn Fn(&NaiveDate) -> bool,
) -> Vec<u8> {
    let mut w = Writer::default();
    w.0.extend_from_slice(MAGIC);
    w.word(fingerprint[0]);
    w.word(fingerprint[1]);
    files(&mut w, &partition.files);
    let claims: Vec<NaiveDate> = output_days(output)
        .into_iter()
        .filter(|d| owned(d))
        .collect();
    w.usize(claims.len());
    for d in &claims {
        w.date(*d);
    }
    w.u64(output.rows);
    w.u64(output.malformed_rows);
    w.usize(output.lookup_misses.len());
    for n in &output.lookup_misses {
        w.u64(*n);
    }
    w.option(output.dates.as_ref(), |w, d| {
        w.usize(d.rows_by_day.len());
        for (day, n) in &d.rows_by_day {
            w.date(*day);
            w.u64(*n);
        }
        w.u64(d.nulls);
        w.usize(d.unparsable.len());
        for (day, n) in &d.unparsable {
            w.option(*day, Writer::date);
            w.u64(*n);
        }
        w.u64(d.naive);
    });
    let mut samples = output.samples.clone();
    samples.sort_by_key(|(segment, _)| *segment);
    let samples: Vec<String> = samples
        .into_iter()
        .flat_map(|(_, s)| s)
        .take(super::SAMPLES)
        .collect();
    w.usize(samples.len());
    for s in &samples {
        w.bytes(s.as_bytes());
    }
    w.u64(output.multiline.records);
    w.option(output.multiline.first, Writer::u64);
    w.u64(output.multiline.most_breaks);
    w.usize(output.partials.len());
    let claimed = |d: &NaiveDate| claims.binary_search(d).is_ok();
    for partial in &output.partials {
        partial.encode(&mut w, &claimed);
    }
    w.usize(output.index_rows.len());
    for cells in output.index_rows.rows() {
        for cell in cells {
            w.bytes(cell);
        }
    }
    let sum = checksum(&w.0);
    w.word(sum);
    w.0
}

/// Writes the identity of a partition's files.
fn files(w: &mut Writer, files: &[PartitionFile]) {
    w.usize(files.len());
    for f in files {
        w.bytes(f.path.as_bytes());
        w.u64(f.size);
        w.option(f.modified_ns, Writer::i64);
    }
}

/// The output and claimed days stored in `bytes` for `partition`, when they are intact, of
/// the same identity and of the shape of `template` (a worker output of the plan).
fn decode(
    bytes: &[u8],
    fingerprint: [u64; 2],
    partition: &Partition,
    template: &Output,
    kinds: &[AccKind],
) -> Option<(Output, Vec<NaiveDate>)> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
    if u64::from_le_bytes(sum.try_into().ok()?) != checksum(body) {
        return None;
    }
    let mut expected = Writer::default();
    expected.0.extend_from_slice(MAGIC);
    expected.word(fingerprint[0]);
    expected.word(fingerprint[1]);
    files(&mut expected, &partition.files);
    let rest = body.strip_prefix(expected.0.as_slice())?;
    let mut r = Reader::new(rest);
    let claims: Vec<NaiveDate> = (0..r.count(1)?).map(|_| r.date()).collect::<Option<_>>()?;
    let rows = r.u64()?;
    let malformed_rows = r.u64()?;
    let lookup_misses: Vec<u64> = (0..r.count(1)?).map(|_| r.u64()).collect::<Option<_>>()?;
    if lookup_misses.len() != template.lookup_misses.len() {
        return None;
    }
    let dates = r.option(|r| {
        let mut d = DateStats {
            column: template.dates.as_ref()?.column.clone(),
            ..DateStats::default()
        };
        for _ in 0..r.count(2)? {
            let day = r.date()?;
            d.rows_by_day.insert(day, r.u64()?);
        }
        d.nulls = r.u64()?;
        for _ in 0..r.count(2)? {
            let day = r.option(Reader::date)?;
            d.unparsable.insert(day, r.u64()?);
        }
        d.naive = r.u64()?;
        Some(d)
    })?;
    if dates.is_some() != template.dates.is_some() {
        return None;
    }
    let samples: Vec<String> = (0..r.count(1)?)
        .map(|_| r.string())
        .collect::<Option<_>>()?;
    let mut multiline = template.multiline;
    multiline.records = r.u64()?;
    multiline.first = r.option(Reader::u64)?;
    multiline.most_breaks = r.u64()?;
    if r.count(1)? != template.partials.len() {
        return None;
    }
    let partials: Vec<Partial> = template
        .partials
        .iter()
        .zip(kinds)
        .map(|(t, kind)| Partial::decode(&mut r, t, *kind))
        .collect::<Option<_>>()?;
    let width = template.index_rows.width();
    let mut index_rows = Rows::new(width - 1);
    for _ in 0..r.count(width)? {
        let key = r.bytes()?;
        let values: Vec<&[u8]> = (1..width).map(|_| r.bytes()).collect::<Option<_>>()?;
        index_rows.insert_first(key, values);
    }
    if !r.is_empty() {
        return None;
    }
    let output = Output {
        rows,
        malformed_rows,
        lookup_misses,
        dates,
        samples: vec![(partition.segments.start, samples)],
        partials,
        index_rows,
        multiline,
    };
    Some((output, claims))
}
