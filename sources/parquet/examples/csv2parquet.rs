//! Writes a Parquet copy of a CSV warehouse folder: one `<stem>.parquet` per `<stem>.csv`, typed
//! columns (see `vigil_source_parquet::convert`), row groups of 131,072 rows. Used by
//! `bench/run.py` to time vigil, DuckDB and polars on the same Parquet files.
//!
//! With `--partition-by COLUMN` (repeatable), a table with that column is written instead as a
//! hive-partitioned dataset folder `<stem>/<COLUMN>_day=YYYY-MM-DD/part-0.parquet`, one folder per
//! day of the column (`bench/incremental.py`).
//!
//! Usage: `cargo run --release -p vigil-source-parquet --example csv2parquet -- CSV_DIR OUT_DIR
//! [--partition-by COLUMN]...`

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use vigil_source_parquet::convert::{csv_to_parquet, Options};

/// Rows per row group.
const ROW_GROUP_ROWS: usize = 131_072;

fn convert(csv_dir: &Path, out_dir: &Path, partition_by: &[String]) -> Result<(), String> {
    let mut tables: Vec<PathBuf> = std::fs::read_dir(csv_dir)
        .map_err(|e| format!("{}: {e}", csv_dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|x| x == "csv"))
        .collect();
    if tables.is_empty() {
        return Err(format!("{}: no .csv file", csv_dir.display()));
    }
    tables.sort();
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    // One table at a time: the converter holds a whole table in memory.
    for csv in tables {
        let stem = csv.file_stem().unwrap_or_default().to_string_lossy();
        let header = csv::Reader::from_path(&csv)
            .and_then(|mut r| r.headers().cloned())
            .map_err(|e| format!("{}: {e}", csv.display()))?;
        let column = partition_by
            .iter()
            .find(|c| header.iter().any(|h| h == c.as_str()));
        let options = Options {
            row_group_rows: ROW_GROUP_ROWS,
            partition: column.map(|c| (format!("{c}_day"), c.clone())),
        };
        let out = match column {
            Some(_) => out_dir.join(stem.as_ref()),
            None => out_dir.join(format!("{stem}.parquet")),
        };
        let start = Instant::now();
        let rows =
            csv_to_parquet(&csv, &out, &options).map_err(|e| format!("{}: {e}", csv.display()))?;
        eprintln!(
            "csv2parquet: {} -> {} ({rows} rows, {:.1} s)",
            csv.display(),
            out.display(),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut partition_by = Vec::new();
    while let Some(at) = args.iter().position(|a| a == "--partition-by") {
        if at + 1 >= args.len() {
            eprintln!("csv2parquet: --partition-by needs a column");
            return ExitCode::from(2);
        }
        partition_by.push(args.remove(at + 1));
        args.remove(at);
    }
    let [csv_dir, out_dir] = args.as_slice() else {
        eprintln!("usage: csv2parquet CSV_DIR OUT_DIR [--partition-by COLUMN]...");
        return ExitCode::from(2);
    };
    match convert(Path::new(csv_dir), Path::new(out_dir), &partition_by) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("csv2parquet: {e}");
            ExitCode::FAILURE
        }
    }
}
