//! The quarantine snapshot: on ERROR, what the run judged, kept aside with a `REASON.txt`. A
//! folder warehouse's CSV files (mtimes kept) and its tables' Parquet data are copied; a
//! database's tables export the judged partition's rows as CSV. Everything is bounded by one size
//! limit: what would exceed it is left out and listed. The snapshot is built in a hidden
//! temporary folder and renamed into place, so a half-written snapshot never exists and an
//! earlier one is never overwritten. The warehouse itself is only read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::TableConfig;
use crate::source::{RowSink, Source};

/// File in the reports folder that holds the path of the run's snapshot.
pub const PATH_FILE: &str = "quarantine_path.txt";

/// Where snapshots go: an absolute target as is, a relative one under the warehouse folder's
/// parent (as the reference monitor resolves it) or, for a warehouse that is not a folder,
/// under the config file's folder.
pub fn resolve_target(
    warehouse: Option<&Path>,
    config: &Path,
    target: &Path,
) -> io::Result<PathBuf> {
    if target.is_absolute() {
        return Ok(target.to_path_buf());
    }
    let base = std::path::absolute(warehouse.unwrap_or(config))?;
    let parent = base.parent().unwrap_or(&base);
    Ok(parent.join(target))
}

/// The signal (SIGINT 2, SIGTERM 15) that interrupted the last snapshot, 0 for none.
fn signal_slot() -> &'static Arc<AtomicUsize> {
    static SLOT: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    SLOT.get_or_init(|| Arc::new(AtomicUsize::new(0)))
}

/// The signal that interrupted the last snapshot, if one did: the run should then end with
/// `128 + signal` (130 for SIGINT, 143 for SIGTERM).
pub fn interrupted_by() -> Option<i32> {
    match signal_slot().load(Ordering::Relaxed) {
        0 => None,
        signal => i32::try_from(signal).ok(),
    }
}

/// While it lives, SIGINT and SIGTERM are caught (recorded for [`interrupted_by`]) instead of
/// ending the process, so a snapshot in progress can remove its partial folder; outside a
/// snapshot they end the process as usual.
struct CatchSignals(Vec<signal_hook::SigId>);

impl CatchSignals {
    fn new() -> Self {
        signal_slot().store(0, Ordering::Relaxed);
        let ids = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM]
            .into_iter()
            .filter_map(|signal| {
                signal_hook::flag::register_usize(
                    signal,
                    Arc::clone(signal_slot()),
                    signal as usize,
                )
                .ok()
            })
            .collect();
        CatchSignals(ids)
    }
}

impl Drop for CatchSignals {
    fn drop(&mut self) {
        for id in self.0.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// An error when a signal asked the run to stop.
fn check_signal() -> io::Result<()> {
    match interrupted_by() {
        None => Ok(()),
        Some(signal) => Err(io::Error::new(
            io::ErrorKind::Interrupted,
            format!(
                "interrupted by {}",
                if signal == signal_hook::consts::SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                }
            ),
        )),
    }
}

/// Removes the partial snapshots that runs killed while building one left in `target` (their
/// process is gone); returns them.
pub fn sweep_partials(target: &Path) -> io::Result<Vec<PathBuf>> {
    let mut swept = Vec::new();
    let Ok(entries) = fs::read_dir(target) else {
        return Ok(swept);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, rest)) = name
            .strip_prefix(".warehouse_quarantine_")
            .and_then(|n| n.split_once(".partial-"))
        else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        let alive = pid.parse::<u32>().is_ok_and(|pid| {
            pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
        });
        if !alive {
            fs::remove_dir_all(entry.path())?;
            swept.push(entry.path());
        }
    }
    Ok(swept)
}

/// Writes a snapshot under `target` and returns its folder,
/// `warehouse_quarantine_<UTC %Y%m%dT%H%M%SZ>` (with `_2`, `_3`, ... when that name is taken).
/// `fill` writes the contents into the folder it is given and returns the text of `REASON.txt`.
pub fn snapshot(
    target: &Path,
    now: DateTime<Utc>,
    fill: impl FnOnce(&Path) -> io::Result<String>,
) -> io::Result<PathBuf> {
    fs::create_dir_all(target)?;
    let _catch = CatchSignals::new();
    let stamp = now.format("%Y%m%dT%H%M%SZ");
    let tmp = target.join(format!(
        ".warehouse_quarantine_{stamp}.partial-{}-{}",
        std::process::id(),
        now.timestamp_subsec_nanos()
    ));
    let built = fs::create_dir(&tmp)
        .and_then(|()| fill(&tmp))
        .and_then(|reason| {
            check_signal()?;
            fs::write(tmp.join("REASON.txt"), reason)
        })
        .and_then(|()| place(&tmp, target, &stamp.to_string()));
    if built.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    built
}

/// The bytes a snapshot may still take.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    limit: u64,
    used: u64,
}

impl Budget {
    /// A snapshot of at most `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Budget { limit, used: 0 }
    }

    /// Takes `bytes` if they fit.
    fn take(&mut self, bytes: u64) -> bool {
        let fits = self.used.saturating_add(bytes) <= self.limit;
        if fits {
            self.used += bytes;
        }
        fits
    }

    /// Returns bytes taken for something that was not copied after all.
    fn give_back(&mut self, bytes: u64) {
        self.used = self.used.saturating_sub(bytes);
    }

    fn left_out(&self, what: &str, bytes: u64) -> String {
        format!(
            "{what}: left out: {} would exceed the snapshot limit of {} bytes \
             (operations.quarantine_max_bytes; {} used)",
            if bytes == u64::MAX {
                "its rows".to_string()
            } else {
                format!("its {bytes} bytes")
            },
            self.limit,
            self.used
        )
    }
}

/// What a snapshot holds, one line per item (for `REASON.txt`), and the items left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contents {
    /// One line per item copied or exported.
    pub lines: Vec<String>,
    /// The items not in the snapshot, with why (also in `lines`).
    pub left_out: Vec<String>,
}

impl Contents {
    fn leave_out(&mut self, line: String) {
        self.lines.push(line.clone());
        self.left_out.push(line);
    }
}

/// Copies a warehouse folder into `dir`: every CSV file in it (as the reference monitor does),
/// then the files and dataset folders of `tables` that are not CSV files there, mtimes kept.
pub fn copy_folder(
    warehouse: &Path,
    tables: &[PathBuf],
    dir: &Path,
    budget: &mut Budget,
) -> io::Result<Contents> {
    let mut entries: Vec<_> = fs::read_dir(warehouse)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    let mut items: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry.path();
        let is_csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        // A linked table is copied as the file it links to; a CSV folder is no table.
        if is_csv && !fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            items.push(path);
        }
    }
    let csv: BTreeSet<PathBuf> = items.iter().cloned().collect();
    items.extend(tables.iter().filter(|t| !csv.contains(*t)).cloned());
    let mut contents = Contents::default();
    for path in items {
        let Some(name) = path.file_name() else {
            continue;
        };
        let name_shown = name.to_string_lossy().into_owned();
        // What cannot be copied is listed; the rest of the snapshot is still taken.
        let bytes = match size(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                contents.leave_out(format!("{name_shown}: left out: cannot be read: {e}"));
                continue;
            }
        };
        if !budget.take(bytes) {
            contents.leave_out(budget.left_out(&name_shown, bytes));
            continue;
        }
        let dest = dir.join(name);
        if let Err(e) = copy(&path, &dest) {
            if e.kind() == io::ErrorKind::Interrupted {
                return Err(e);
            }
            budget.give_back(bytes);
            let _ = fs::remove_dir_all(&dest).or_else(|_| fs::remove_file(&dest));
            contents.leave_out(format!("{name_shown}: left out: cannot be copied: {e}"));
            continue;
        }
        contents
            .lines
            .push(format!("{name_shown}: copied ({bytes} bytes)"));
    }
    Ok(contents)
}

/// A file's size, or the total size of the files in a folder; only regular files and folders
/// (after links) are copied, so a named pipe or a device is refused here.
fn size(path: &Path) -> io::Result<u64> {
    let meta = fs::metadata(path)?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    if !meta.is_dir() {
        return Err(io::Error::other("not a regular file"));
    }
    fs::read_dir(path)?.try_fold(0, |total, entry| Ok(total + size(&entry?.path())?))
}

/// Copies a file (mtime kept) or a folder, recursively.
fn copy(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::metadata(from)?;
    if meta.is_dir() {
        fs::create_dir(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            copy(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(());
    }
    // In chunks, so that a signal stops a large copy within one chunk.
    let mut source = fs::File::open(from)?;
    let mut dest = fs::File::create(to)?;
    loop {
        check_signal()?;
        let copied = io::copy(&mut io::Read::take(&mut source, 8 << 20), &mut dest)?;
        if copied == 0 {
            break;
        }
    }
    dest.set_modified(meta.modified()?)
}

/// Exports each table's rows dated `day` (all rows for `None`) from a source without a folder
/// into `dir` as `<file>` (the table's CSV file name), header first. A table whose rows would
/// exceed the budget, or that cannot be read, is left out and listed.
pub fn export_tables(
    source: &dyn Source,
    tables: &BTreeMap<String, TableConfig>,
    day: Option<NaiveDate>,
    dir: &Path,
    budget: &mut Budget,
) -> io::Result<Contents> {
    let mut contents = Contents::default();
    let partition = match day {
        Some(day) => format!("rows of {day}"),
        None => "all rows".to_string(),
    };
    for (name, table) in tables {
        let file = dir.join(&table.file);
        let mut sink = CsvSink {
            out: io::BufWriter::new(fs::File::create(&file)?),
            record: Vec::new(),
            budget: *budget,
            rows: 0,
            over: false,
            error: None,
        };
        let exported = source.export_rows(table, tables, day, &mut sink);
        let CsvSink {
            out,
            budget: after,
            rows,
            over,
            error,
            ..
        } = sink;
        let flushed = out.into_inner().map_err(|e| e.into_error());
        if let Some(e) = error {
            return Err(e);
        }
        flushed?;
        let rows = rows.saturating_sub(1);
        let what = format!("{name} ({})", table.relation());
        let line = match exported {
            Ok(()) if !over => {
                let bytes = after.used - budget.used;
                *budget = after;
                contents.lines.push(format!(
                    "{what}: {rows} {partition} exported to {} ({bytes} bytes)",
                    table.file
                ));
                continue;
            }
            Ok(()) => budget.left_out(&what, u64::MAX),
            Err(problem) => format!("{what}: left out: the table {problem}"),
        };
        fs::remove_file(&file)?;
        contents.leave_out(line);
    }
    Ok(contents)
}

/// Writes exported rows as CSV within a budget.
struct CsvSink {
    out: io::BufWriter<fs::File>,
    /// One record at a time, to know its size before it is written.
    record: Vec<u8>,
    budget: Budget,
    /// Rows written, the header included.
    rows: u64,
    over: bool,
    error: Option<io::Error>,
}

impl RowSink for CsvSink {
    fn row(&mut self, cells: &[Option<&str>]) -> ControlFlow<()> {
        if let Err(e) = check_signal() {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        self.record.clear();
        let mut record = csv::WriterBuilder::new()
            .buffer_capacity(1024)
            .from_writer(&mut self.record);
        let written = record
            .write_record(cells.iter().map(|c| c.unwrap_or("")))
            .and_then(|()| record.flush().map_err(csv::Error::from));
        drop(record);
        if let Err(e) = written {
            self.error = Some(io::Error::other(e));
            return ControlFlow::Break(());
        }
        let bytes = &self.record;
        if !self.budget.take(bytes.len() as u64) {
            self.over = true;
            return ControlFlow::Break(());
        }
        if let Err(e) = self.out.write_all(bytes) {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        self.rows += 1;
        ControlFlow::Continue(())
    }
}

/// Removes the oldest snapshots of `target` beyond the newest `keep_last`, then the oldest
/// until all fit in `max_total_bytes`; the newest is never removed. Returns what was removed.
pub fn prune(
    target: &Path,
    keep_last: Option<u32>,
    max_total_bytes: Option<u64>,
) -> io::Result<Vec<PathBuf>> {
    let mut snapshots: Vec<PathBuf> = fs::read_dir(target)?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("warehouse_quarantine_")
                && e.file_type().is_ok_and(|t| t.is_dir())
        })
        .map(|e| e.path())
        .collect();
    // By name: the UTC timestamp, then `_2`, `_3`... for the same second.
    snapshots.sort_by_key(|p| {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let (stamp, n) = match name.rsplit_once('_') {
            Some((stamp, n)) if stamp.ends_with('Z') => (stamp.to_string(), n.parse().unwrap_or(0)),
            _ => (name, 1u32),
        };
        (stamp, n)
    });
    let mut removed = Vec::new();
    let keep = keep_last.map_or(usize::MAX, |k| (k as usize).max(1));
    while snapshots.len() > keep {
        let oldest = snapshots.remove(0);
        fs::remove_dir_all(&oldest)?;
        removed.push(oldest);
    }
    if let Some(limit) = max_total_bytes {
        let mut sizes: Vec<u64> = snapshots.iter().map(|p| size(p).unwrap_or(0)).collect();
        while snapshots.len() > 1 && sizes.iter().sum::<u64>() > limit {
            let oldest = snapshots.remove(0);
            sizes.remove(0);
            fs::remove_dir_all(&oldest)?;
            removed.push(oldest);
        }
    }
    Ok(removed)
}

/// Renames the finished snapshot to the first free name. A snapshot folder is never empty, so
/// `rename` fails rather than replace a folder that appeared meanwhile.
fn place(tmp: &Path, target: &Path, stamp: &str) -> io::Result<PathBuf> {
    for n in 1u32..=1000 {
        let name = match n {
            1 => format!("warehouse_quarantine_{stamp}"),
            n => format!("warehouse_quarantine_{stamp}_{n}"),
        };
        let dest = target.join(name);
        if dest.exists() {
            continue;
        }
        match fs::rename(tmp, &dest) {
            Ok(()) => return Ok(dest),
            Err(_) if dest.exists() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "more than 1000 snapshots named warehouse_quarantine_{stamp}* in {}",
        target.display()
    )))
}

/// Records the snapshot path in the reports folder, or removes a stale record when this run
/// made no snapshot.
pub fn record_path(output_dir: &Path, snapshot: Option<&Path>) -> io::Result<()> {
    let file = output_dir.join(PATH_FILE);
    match snapshot {
        Some(path) => crate::report::write_atomically(&file, &path.display().to_string()),
        None => match fs::remove_file(&file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warehouse() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("fct_a.csv"), "a,b\n1,2\n").unwrap();
        fs::write(dir.path().join("fct_b.CSV"), "x\n").unwrap();
        fs::write(dir.path().join("notes.txt"), "not data").unwrap();
        fs::create_dir(dir.path().join("sub.csv")).unwrap();
        dir
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn copy_all<'a>(
        wh: &'a Path,
        extra: &[PathBuf],
        limit: u64,
    ) -> impl FnOnce(&Path) -> io::Result<String> + 'a {
        let extra = extra.to_vec();
        move |dir| {
            let contents = copy_folder(wh, &extra, dir, &mut Budget::new(limit))?;
            Ok(contents.lines.join("\n"))
        }
    }

    #[test]
    fn copies_csv_files_byte_for_byte_with_mtimes_and_a_reason() {
        let wh = warehouse();
        let target = tempfile::tempdir().unwrap();
        let now = at("2025-03-09T06:00:00Z");
        let snap = snapshot(target.path(), now, copy_all(wh.path(), &[], u64::MAX)).unwrap();
        assert_eq!(
            snap,
            target.path().join("warehouse_quarantine_20250309T060000Z")
        );
        let mut names: Vec<_> = fs::read_dir(&snap)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["REASON.txt", "fct_a.csv", "fct_b.CSV"]);
        assert_eq!(fs::read(snap.join("fct_a.csv")).unwrap(), b"a,b\n1,2\n");
        assert_eq!(
            fs::read_to_string(snap.join("REASON.txt")).unwrap(),
            "fct_a.csv: copied (8 bytes)\nfct_b.CSV: copied (2 bytes)"
        );
        let mtime = |p: &Path| fs::metadata(p).unwrap().modified().unwrap();
        assert_eq!(
            mtime(&snap.join("fct_a.csv")),
            mtime(&wh.path().join("fct_a.csv"))
        );
        // Nothing partial is left behind.
        let leftovers = fs::read_dir(target.path()).unwrap().count();
        assert_eq!(leftovers, 1);
    }

    #[test]
    fn dataset_folders_are_copied_and_the_limit_leaves_out_what_does_not_fit() {
        let wh = warehouse();
        let dataset = wh.path().join("fct_c");
        fs::create_dir_all(dataset.join("day=2025-03-01")).unwrap();
        fs::write(
            dataset.join("day=2025-03-01/part-0.parquet"),
            "PAR1 data PAR1",
        )
        .unwrap();
        let target = tempfile::tempdir().unwrap();
        // 8 + 2 bytes of CSV fit in 12, the 14-byte dataset does not.
        let snap = snapshot(
            target.path(),
            at("2025-03-09T06:00:00Z"),
            copy_all(wh.path(), std::slice::from_ref(&dataset), 12),
        )
        .unwrap();
        let reason = fs::read_to_string(snap.join("REASON.txt")).unwrap();
        assert!(
            reason.ends_with(
                "fct_c: left out: its 14 bytes would exceed the snapshot limit of 12 bytes \
                 (operations.quarantine_max_bytes; 10 used)"
            ),
            "{reason}"
        );
        assert!(!snap.join("fct_c").exists());
        let snap = snapshot(
            target.path(),
            at("2025-03-09T06:00:00Z"),
            copy_all(wh.path(), std::slice::from_ref(&dataset), 100),
        )
        .unwrap();
        assert_eq!(
            fs::read(snap.join("fct_c/day=2025-03-01/part-0.parquet")).unwrap(),
            b"PAR1 data PAR1"
        );
    }

    #[test]
    fn same_second_runs_get_distinct_folders() {
        let target = tempfile::tempdir().unwrap();
        let now = at("2025-03-09T06:00:00Z");
        let first = snapshot(target.path(), now, |_| Ok("1".into())).unwrap();
        let second = snapshot(target.path(), now, |_| Ok("2".into())).unwrap();
        assert_ne!(first, second);
        assert!(second.ends_with("warehouse_quarantine_20250309T060000Z_2"));
        assert_eq!(fs::read_to_string(first.join("REASON.txt")).unwrap(), "1");
    }

    #[test]
    fn relative_targets_resolve_under_the_warehouse_parent_or_beside_the_reports() {
        let wh = Some(Path::new("/data/wh"));
        let config = Path::new("/var/vigil/reports");
        let resolved = resolve_target(wh, config, Path::new("quarantine")).unwrap();
        assert_eq!(resolved, Path::new("/data/quarantine"));
        let absolute = resolve_target(wh, config, Path::new("/q")).unwrap();
        assert_eq!(absolute, Path::new("/q"));
        assert_eq!(
            resolve_target(None, config, Path::new("q")).unwrap(),
            Path::new("/var/vigil/q")
        );
    }

    #[test]
    fn a_failure_leaves_no_partial_snapshot() {
        let target = tempfile::tempdir().unwrap();
        let err = snapshot(
            target.path(),
            Utc::now(),
            copy_all(Path::new("/nonexistent/wh"), &[], u64::MAX),
        );
        assert!(err.is_err());
        assert_eq!(fs::read_dir(target.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_path_record_is_written_and_removed() {
        let out = tempfile::tempdir().unwrap();
        record_path(out.path(), Some(Path::new("/q/snap"))).unwrap();
        assert_eq!(
            fs::read_to_string(out.path().join(PATH_FILE)).unwrap(),
            "/q/snap"
        );
        record_path(out.path(), None).unwrap();
        assert!(!out.path().join(PATH_FILE).exists());
        record_path(out.path(), None).unwrap();
    }
}
