//! vigil's Parquet source: a table stored as `fct_sessions.parquet` or as a `fct_sessions/`
//! dataset folder (hive-partitioned, `order_date=2025-03-01/part-0.parquet`) in a warehouse
//! folder without the CSV file.
//!
//! Only the columns the requests read are decoded (column projection), row groups are read on
//! all cores, and every typed value is given to the engine's scan as the text a CSV export of
//! the same table would hold ([`text`]), so each metric means exactly what it means on CSV:
//! timestamps with a time zone become their UTC instant (`...Z`), timestamps without one stay
//! naive (and follow `naive_timestamps`), dates stay dates, numbers are written in their
//! shortest exact form and decimals with their scale. Linking this crate registers the format.
//!
//! Given a partition cache (an incremental run), a dataset is scanned partition by partition
//! (each leaf `key=value/` folder), and unchanged older partitions reuse their stored results
//! (see `vigil_engine::scan::incremental`).

pub mod convert;
mod dataset;
pub mod text;

use std::path::{Path, PathBuf};

use vigil_engine::config::TableConfig;
use vigil_engine::scan::{scan_partitions, ScanInput, TableProblem, TableScan};
use vigil_engine::source::{FolderFormat, FormatRegistration};

pub use dataset::Dataset;

/// The Parquet format of warehouse folders.
pub struct Parquet;

inventory::submit! {
    FormatRegistration(&Parquet)
}

impl FolderFormat for Parquet {
    fn name(&self) -> &'static str {
        "parquet"
    }

    fn find(&self, dir: &Path, relation: &str) -> Option<PathBuf> {
        let file = dir.join(format!("{relation}.parquet"));
        if file.is_file() {
            return Some(file);
        }
        let folder = dir.join(relation);
        folder.is_dir().then_some(folder)
    }

    fn scan(
        &self,
        name: &str,
        table: &TableConfig,
        path: &Path,
        input: ScanInput<'_>,
    ) -> TableScan {
        let dataset = Dataset::open(path);
        let header = dataset
            .as_ref()
            .map(|d| d.header.clone())
            .map_err(Clone::clone);
        let segments = dataset.as_ref().map(Dataset::segments).unwrap_or_default();
        let partitions = dataset
            .as_ref()
            .map(Dataset::partitions)
            .unwrap_or_default();
        let read = |segment: &dataset::Segment,
                    projection: &[usize],
                    fold: &mut dyn FnMut(&dyn vigil_engine::scan::Record)|
         -> Result<(), TableProblem> {
            match &dataset {
                Ok(d) => d.read(segment, projection, fold),
                Err(problem) => Err(problem.clone()),
            }
        };
        let mut scan = scan_partitions(
            name,
            table,
            path.to_path_buf(),
            header,
            input,
            &segments,
            &partitions,
            &read,
        );
        if let (Ok(stats), Ok(d)) = (&mut scan.outcome, &dataset) {
            stats.column_types.clone_from(&d.types);
        }
        scan
    }

    fn header(&self, path: &Path) -> Result<Vec<String>, TableProblem> {
        Dataset::open(path).map(|d| d.header)
    }
}
