//! A Parquet table on disk: one file, or a dataset folder of files in hive partitions
//! (`key=value/` folders, whose values become columns). Files and folders whose names start
//! with `.` or `_` (`_SUCCESS`, `.crc` files) are not part of the data. Anything else that
//! cannot be read (a truncated file, a file that is not Parquet, a folder that is not
//! `key=value`, something that is not a regular file) makes the whole table unreadable, naming
//! each part: no table is read partially.

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use vigil_engine::scan::{Partition, PartitionFile, Record, TableProblem};

use crate::text::{unsupported, Text};

/// Where a header column's values come from in one file.
#[derive(Clone, Debug, PartialEq)]
enum Column {
    /// The file's top-level column at that index.
    File(usize),
    /// A hive partition value (`None`: the default partition, null).
    Partition(Option<Vec<u8>>),
    /// Not in this file.
    Absent,
}

/// One file of the table.
#[derive(Clone, Debug)]
struct Part {
    path: PathBuf,
    /// Its identity for incremental runs, and the values of its partition folders.
    file: PartitionFile,
    partitions: Vec<(String, Option<Vec<u8>>)>,
    /// Per header position, where its values come from.
    columns: Vec<Column>,
    row_groups: usize,
}

/// One unit of reading: a row group of a file.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    part: usize,
    row_group: usize,
}

/// A Parquet table: its columns and its files.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The columns: those of the files in order of first appearance, then partition keys.
    pub header: Vec<String>,
    /// Each header column's type (the first file's Arrow type that has it; `partition key`).
    pub types: Vec<String>,
    parts: Vec<Part>,
}

/// A file found in the dataset, with the partition values of its folders.
struct Found {
    path: PathBuf,
    partitions: Vec<(String, Option<Vec<u8>>)>,
    /// Its path relative to the dataset, size and modification time.
    file: PartitionFile,
}

impl Dataset {
    /// Opens a Parquet file or dataset folder and reads every file's schema.
    pub fn open(path: &Path) -> Result<Dataset, TableProblem> {
        let mut found = Vec::new();
        let mut problems = Vec::new();
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => TableProblem::Missing,
            _ => TableProblem::Unreadable(e.to_string()),
        })?;
        if meta.is_dir() {
            walk(path, path, &mut Vec::new(), &mut found, &mut problems);
        } else if meta.is_file() {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            found.push(Found {
                path: path.to_path_buf(),
                partitions: Vec::new(),
                file: identity(name.into_owned(), &meta),
            });
        } else {
            return Err(TableProblem::Unreadable(
                "not a regular file or folder".into(),
            ));
        }
        let mut header: Vec<String> = Vec::new();
        let mut types: Vec<String> = Vec::new();
        let mut schemas = Vec::new();
        for f in &found {
            match schema(&f.path) {
                Ok((fields, row_groups)) => {
                    for (name, kind) in &fields {
                        if !header.contains(name) {
                            header.push(name.clone());
                            types.push(kind.clone());
                        }
                    }
                    let names: Vec<String> = fields.into_iter().map(|(n, _)| n).collect();
                    schemas.push((names, row_groups));
                }
                Err(e) => problems.push(format!("{}: {e}", f.path.display())),
            }
        }
        if !problems.is_empty() {
            return Err(TableProblem::Unreadable(format!(
                "{} part(s) cannot be read: {}",
                problems.len(),
                problems.join("; ")
            )));
        }
        if found.is_empty() {
            return Err(TableProblem::Empty);
        }
        for f in &found {
            for (key, _) in &f.partitions {
                if !header.contains(key) {
                    header.push(key.clone());
                    types.push("partition key".into());
                }
            }
        }
        let parts = found
            .into_iter()
            .zip(schemas)
            .map(|(f, (names, row_groups))| Part {
                columns: header
                    .iter()
                    .map(|h| match names.iter().position(|n| n == h) {
                        Some(i) => Column::File(i),
                        None => match f.partitions.iter().find(|(k, _)| k == h) {
                            Some((_, value)) => Column::Partition(value.clone()),
                            None => Column::Absent,
                        },
                    })
                    .collect(),
                path: f.path,
                file: f.file,
                partitions: f.partitions,
                row_groups,
            })
            .collect();
        Ok(Dataset {
            header,
            types,
            parts,
        })
    }

    /// Every row group of every file, in file order.
    pub fn segments(&self) -> Vec<Segment> {
        self.parts
            .iter()
            .enumerate()
            .flat_map(|(part, p)| {
                (0..p.row_groups).map(move |row_group| Segment { part, row_group })
            })
            .collect()
    }

    /// The partitions of the table, each the files of one folder (in the order of
    /// [`Dataset::segments`]), keyed by the folder's path in the dataset and dated by the last
    /// of its partition values that is a day (`YYYY-MM-DD`). A single file is one undated
    /// partition.
    pub fn partitions(&self) -> Vec<Partition> {
        let mut out: Vec<Partition> = Vec::new();
        let mut folder_of_last: Option<&str> = None;
        let mut segment = 0;
        for part in &self.parts {
            let folder = part.file.path.rsplit_once('/').map_or("", |(f, _)| f);
            let segments = segment..segment + part.row_groups;
            segment += part.row_groups;
            match out.last_mut() {
                Some(last) if folder_of_last == Some(folder) => {
                    last.files.push(part.file.clone());
                    last.segments.end = segments.end;
                }
                _ => {
                    // A folder whose files are not consecutive (a subfolder sorts between
                    // them) gives several partitions, told apart by their rank.
                    let rank = out
                        .iter()
                        .filter(|p| p.key.split('#').next() == Some(folder))
                        .count();
                    out.push(Partition {
                        key: match rank {
                            0 => folder.to_string(),
                            n => format!("{folder}#{}", n + 1),
                        },
                        day: part.partitions.iter().rev().find_map(|(_, value)| {
                            let text = std::str::from_utf8(value.as_deref()?).ok()?;
                            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
                        }),
                        files: vec![part.file.clone()],
                        segments,
                    });
                    folder_of_last = Some(folder);
                }
            }
        }
        out
    }

    /// Reads the projected columns of one row group and gives each row to `fold`.
    pub fn read(
        &self,
        segment: &Segment,
        projection: &[usize],
        fold: &mut dyn FnMut(&dyn Record),
    ) -> Result<(), TableProblem> {
        let part = &self.parts[segment.part];
        let unreadable = |e: &dyn std::fmt::Display| {
            TableProblem::Unreadable(format!("{}: {e}", part.path.display()))
        };
        let file = File::open(&part.path).map_err(|e| unreadable(&e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| unreadable(&e))?;
        let mut roots: Vec<usize> = projection
            .iter()
            .filter_map(|&h| match part.columns[h] {
                Column::File(i) => Some(i),
                _ => None,
            })
            .collect();
        roots.sort_unstable();
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
        let reader = builder
            .with_projection(mask)
            .with_row_groups(vec![segment.row_group])
            .with_batch_size(8192)
            .build()
            .map_err(|e| unreadable(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| unreadable(&e))?;
            // The batch holds the projected file columns in file order.
            let mut texts: Vec<Text<'_>> = Vec::with_capacity(projection.len());
            let mut slots: Vec<Option<usize>> = vec![None; self.header.len()];
            for &h in projection {
                let text = match &part.columns[h] {
                    Column::File(i) => {
                        let at = roots.iter().position(|r| r == i).expect("projected");
                        Text::of(batch.column(at).as_ref())
                    }
                    Column::Partition(Some(value)) => Text::Constant(value),
                    Column::Partition(None) | Column::Absent => Text::Absent,
                };
                slots[h] = Some(texts.len());
                texts.push(text);
            }
            let mut row = BatchRow {
                texts: &texts,
                slots: &slots,
                row: 0,
            };
            for r in 0..batch.num_rows() {
                row.row = r;
                fold(&row);
            }
        }
        Ok(())
    }
}

/// One row of a batch, cells by header position.
struct BatchRow<'a> {
    texts: &'a [Text<'a>],
    slots: &'a [Option<usize>],
    row: usize,
}

impl Record for BatchRow<'_> {
    fn len(&self) -> usize {
        self.slots.len()
    }

    fn cell(&self, i: usize) -> Option<&[u8]> {
        self.texts[(*self.slots.get(i)?)?].get(self.row)
    }
}

/// A file's top-level column names and its number of row groups; a column whose type has no
/// text form is an error naming it.
fn schema(path: &Path) -> Result<(Vec<(String, String)>, usize), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    for field in builder.schema().fields() {
        if let Some(why) = unsupported(field.data_type()) {
            return Err(format!("column `{}`: {why}", field.name()));
        }
        names.push((field.name().clone(), field.data_type().to_string()));
    }
    Ok((names, builder.metadata().num_row_groups()))
}

/// Collects the files under `dir`, in name order, with the partition values of the folders on
/// the way; records what is not part of a valid dataset.
fn walk(
    root: &Path,
    dir: &Path,
    partitions: &mut Vec<(String, Option<Vec<u8>>)>,
    found: &mut Vec<Found>,
    problems: &mut Vec<String>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let shown = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => match name.split_once('=') {
                Some((key, value)) if !key.is_empty() => {
                    let value = (value != "__HIVE_DEFAULT_PARTITION__").then(|| unescape(value));
                    partitions.push((unescape_str(key), value));
                    walk(root, &path, partitions, found, problems);
                    partitions.pop();
                }
                _ => problems.push(format!("folder `{shown}` is not a partition (`key=value`)")),
            },
            Ok(meta) if meta.is_file() => found.push(Found {
                file: identity(shown, &meta),
                path,
                partitions: partitions.clone(),
            }),
            Ok(_) => problems.push(format!("`{shown}` is not a regular file")),
            Err(e) => problems.push(format!("`{shown}`: {e}")),
        }
    }
}

/// A file's identity: its path in the dataset, size and modification time.
fn identity(path: String, meta: &std::fs::Metadata) -> PartitionFile {
    let modified_ns =
        meta.modified()
            .ok()
            .and_then(|t| match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(after) => i64::try_from(after.as_nanos()).ok(),
                Err(before) => i64::try_from(before.duration().as_nanos()).ok().map(|n| -n),
            });
    PartitionFile {
        path,
        size: meta.len(),
        modified_ns,
    }
}

/// A partition value with its `%XX` escapes decoded.
fn unescape(value: &str) -> Vec<u8> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A partition key with its escapes decoded.
fn unescape_str(key: &str) -> String {
    String::from_utf8_lossy(&unescape(key)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_are_unescaped() {
        assert_eq!(unescape("2025-03-01%2010%3A00"), b"2025-03-01 10:00");
        assert_eq!(unescape("100%"), b"100%");
    }
}
