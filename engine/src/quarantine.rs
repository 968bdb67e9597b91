//! The quarantine snapshot: on ERROR, a copy of the warehouse's CSV files (mtimes kept) and a
//! `REASON.txt`, built in a hidden temporary folder and renamed into place, so a half-written
//! snapshot never exists and an earlier snapshot is never overwritten. The warehouse itself is
//! only read.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// File in the reports folder that holds the path of the run's snapshot.
pub const PATH_FILE: &str = "quarantine_path.txt";

/// Where snapshots go: an absolute target as is, a relative one under the warehouse folder's
/// parent (as the reference monitor resolves it).
pub fn resolve_target(warehouse: &Path, target: &Path) -> io::Result<PathBuf> {
    if target.is_absolute() {
        return Ok(target.to_path_buf());
    }
    let warehouse = std::path::absolute(warehouse)?;
    let parent = warehouse.parent().unwrap_or(&warehouse);
    Ok(parent.join(target))
}

/// Writes a snapshot of `warehouse` under `target` and returns its folder,
/// `warehouse_quarantine_<UTC %Y%m%dT%H%M%SZ>` (with `_2`, `_3`, ... when that name is taken).
pub fn snapshot(
    warehouse: &Path,
    target: &Path,
    reason: &str,
    copy_files: bool,
    now: DateTime<Utc>,
) -> io::Result<PathBuf> {
    fs::create_dir_all(target)?;
    let stamp = now.format("%Y%m%dT%H%M%SZ");
    let tmp = target.join(format!(
        ".warehouse_quarantine_{stamp}.partial-{}-{}",
        std::process::id(),
        now.timestamp_subsec_nanos()
    ));
    let built = build(warehouse, &tmp, reason, copy_files)
        .and_then(|()| place(&tmp, target, &stamp.to_string()));
    if built.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    built
}

fn build(warehouse: &Path, tmp: &Path, reason: &str, copy_files: bool) -> io::Result<()> {
    fs::create_dir(tmp)?;
    if copy_files {
        let mut entries: Vec<_> = fs::read_dir(warehouse)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let is_csv = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            if is_csv && entry.file_type()?.is_file() {
                let dest = tmp.join(entry.file_name());
                fs::copy(&path, &dest)?;
                let modified = entry.metadata()?.modified()?;
                fs::File::options()
                    .write(true)
                    .open(&dest)?
                    .set_modified(modified)?;
            }
        }
    }
    fs::write(tmp.join("REASON.txt"), reason)
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

    #[test]
    fn copies_csv_files_byte_for_byte_with_mtimes_and_a_reason() {
        let wh = warehouse();
        let target = tempfile::tempdir().unwrap();
        let now = DateTime::parse_from_rfc3339("2025-03-09T06:00:00Z")
            .unwrap()
            .to_utc();
        let snap = snapshot(wh.path(), target.path(), "because", true, now).unwrap();
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
            "because"
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
    fn same_second_runs_get_distinct_folders() {
        let wh = warehouse();
        let target = tempfile::tempdir().unwrap();
        let now = DateTime::parse_from_rfc3339("2025-03-09T06:00:00Z")
            .unwrap()
            .to_utc();
        let first = snapshot(wh.path(), target.path(), "1", true, now).unwrap();
        let second = snapshot(wh.path(), target.path(), "2", false, now).unwrap();
        assert_ne!(first, second);
        assert!(second.ends_with("warehouse_quarantine_20250309T060000Z_2"));
        assert_eq!(fs::read_to_string(first.join("REASON.txt")).unwrap(), "1");
        assert!(!second.join("fct_a.csv").exists());
    }

    #[test]
    fn relative_targets_resolve_under_the_warehouse_parent() {
        let resolved = resolve_target(Path::new("/data/wh"), Path::new("quarantine")).unwrap();
        assert_eq!(resolved, Path::new("/data/quarantine"));
        let absolute = resolve_target(Path::new("/data/wh"), Path::new("/q")).unwrap();
        assert_eq!(absolute, Path::new("/q"));
    }

    #[test]
    fn a_missing_warehouse_leaves_no_partial_snapshot() {
        let target = tempfile::tempdir().unwrap();
        let err = snapshot(
            Path::new("/nonexistent/wh"),
            target.path(),
            "r",
            true,
            Utc::now(),
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
