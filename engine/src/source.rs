//! Sources: where a warehouse's tables are read from, chosen by the warehouse location.
//!
//! A source turns the metric requests of one table into a [`TableScan`] (metrics plus the
//! table's health). The engine owns the planning and the CSV scan; other formats and engines
//! live in their own crates and register here through `inventory`, so linking a source crate
//! into the binary is all it takes:
//! - a folder: per table, its CSV file, else a registered [`FolderFormat`] (Parquet);
//! - a URL (`postgres://...`): the source registered for its scheme ([`SchemeRegistration`]).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::config::TableConfig;
use crate::scan::{read_header, scan_table, ScanInput, TableProblem, TableScan};

/// Where a warehouse's tables come from.
pub trait Source: Sync {
    /// The location as people may see it (never a password).
    fn describe(&self) -> String;

    /// Computes a table's requests and health.
    fn scan(&self, name: &str, table: &TableConfig, input: ScanInput<'_>) -> TableScan;

    /// The table's columns (for `validate --warehouse`), or why it has none.
    fn header(&self, table: &TableConfig) -> Result<Vec<String>, TableProblem>;

    /// Whether the source resolves lookups itself (a SQL join): the runner then hands over no
    /// lookup index, and looked-up columns arrive in the table's own rows.
    fn joins_lookups(&self) -> bool {
        false
    }

    /// The folder the tables are files in, for a source that has one (quarantine copies it).
    fn folder(&self) -> Option<&Path> {
        None
    }

    /// The files or dataset folders that hold a table in the source's folder (quarantine copies
    /// them); `None` when the table is not a file here.
    fn table_files(&self, table: &TableConfig) -> Option<PathBuf> {
        let _ = table;
        None
    }

    /// Sends a table's own columns, then its rows dated `day` (every row for `None` or a table
    /// without a date column) as text cells, `None` for NULL, to `sink` until it breaks. For a
    /// source without a folder, whose quarantine exports rows instead of copying files.
    fn export_rows(
        &self,
        table: &TableConfig,
        tables: &BTreeMap<String, TableConfig>,
        day: Option<NaiveDate>,
        sink: &mut dyn RowSink,
    ) -> Result<(), TableProblem> {
        let _ = (table, tables, day, sink);
        Err(TableProblem::Unreadable(format!(
            "{} cannot export rows",
            self.describe()
        )))
    }

    /// Bytes the scan of these tables will read, for the progress line (0: unknown).
    fn size_hint(&self, tables: &[&TableConfig]) -> u64 {
        let _ = tables;
        0
    }
}

/// Takes exported rows, the header first.
pub trait RowSink {
    /// Takes one row; `Break` when no more are wanted.
    fn row(&mut self, cells: &[Option<&str>]) -> ControlFlow<()>;
}

/// A table format read from a warehouse folder beside CSV (Parquet, say).
pub trait FolderFormat: Sync {
    /// The format's name in messages (`parquet`).
    fn name(&self) -> &'static str;

    /// The table's data in `dir` in this format (a file or a dataset folder), if present.
    fn find(&self, dir: &Path, relation: &str) -> Option<PathBuf>;

    /// Computes a table's requests and health from its data at `path`.
    fn scan(&self, name: &str, table: &TableConfig, path: &Path, input: ScanInput<'_>)
        -> TableScan;

    /// The table's columns at `path`.
    fn header(&self, path: &Path) -> Result<Vec<String>, TableProblem>;
}

/// What a format crate submits to be found in warehouse folders.
pub struct FormatRegistration(pub &'static dyn FolderFormat);

inventory::collect!(FormatRegistration);

/// Opens a source from a URL location.
pub type ConnectFn = fn(&str) -> Result<Box<dyn Source>, String>;

/// What a source crate submits to handle locations with its URL schemes.
pub struct SchemeRegistration {
    /// The schemes, e.g. `["postgres", "postgresql"]`.
    pub schemes: &'static [&'static str],
    /// Opens the source (connect, check the location); the error never holds a password.
    pub connect: ConnectFn,
}

inventory::collect!(SchemeRegistration);

/// A warehouse location that cannot be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceError(pub String);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceError {}

/// Opens the source of a location: a `scheme://` URL handled by a registered source, or a
/// folder.
pub fn open(location: &str) -> Result<Box<dyn Source>, SourceError> {
    if let Some((scheme, _)) = location.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        let registered = inventory::iter::<SchemeRegistration>
            .into_iter()
            .find(|r| r.schemes.contains(&scheme.as_str()));
        return match registered {
            Some(r) => (r.connect)(location).map_err(SourceError),
            None => {
                let known: Vec<&str> = inventory::iter::<SchemeRegistration>
                    .into_iter()
                    .flat_map(|r| r.schemes.iter().copied())
                    .collect();
                Err(SourceError(format!(
                    "no source for `{scheme}://` locations in this vigil (it reads folders{})",
                    if known.is_empty() {
                        String::new()
                    } else {
                        format!(" and {}", known.join("://, ") + "://")
                    }
                )))
            }
        };
    }
    let dir = PathBuf::from(location);
    if !dir.is_dir() {
        return Err(SourceError(format!(
            "warehouse folder {} does not exist or is not a folder",
            dir.display()
        )));
    }
    Ok(Box::new(FolderSource { dir }))
}

/// A folder of table files: CSV, or a registered format.
#[derive(Clone, Debug)]
pub struct FolderSource {
    dir: PathBuf,
}

impl FolderSource {
    /// The tables of `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FolderSource { dir: dir.into() }
    }

    /// Where a table's data is: its CSV file if it exists, else the first registered format
    /// that finds it (`None`: none does; the CSV file is then reported missing).
    fn locate(&self, table: &TableConfig) -> Option<(PathBuf, &'static dyn FolderFormat)> {
        if self.dir.join(&table.file).exists() {
            return None;
        }
        inventory::iter::<FormatRegistration>
            .into_iter()
            .find_map(|f| Some((f.0.find(&self.dir, table.relation())?, f.0)))
    }
}

impl Source for FolderSource {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn scan(&self, name: &str, table: &TableConfig, input: ScanInput<'_>) -> TableScan {
        match self.locate(table) {
            Some((path, format)) => format.scan(name, table, &path, input),
            None => scan_table(name, table, &self.dir, input),
        }
    }

    fn header(&self, table: &TableConfig) -> Result<Vec<String>, TableProblem> {
        match self.locate(table) {
            Some((path, format)) => format.header(&path),
            None => read_header(table, &self.dir),
        }
    }

    fn folder(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn table_files(&self, table: &TableConfig) -> Option<PathBuf> {
        match self.locate(table) {
            Some((path, _)) => Some(path),
            None => Some(self.dir.join(&table.file)).filter(|p| p.exists()),
        }
    }

    fn size_hint(&self, tables: &[&TableConfig]) -> u64 {
        tables
            .iter()
            .filter_map(|t| std::fs::metadata(self.dir.join(&t.file)).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// A location with any password or token in it replaced by `***`, for messages and reports:
/// the user info's password, and `password=`/`token=` parameters after `?` or `;`.
pub fn redact(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = secret_params(tail, '?', '&');
    let tail = secret_params(&tail, ';', ';');
    format!("{scheme}://{authority}{tail}")
}

/// `password=...` and `token=...` after `start`, in parameters separated by `separator`,
/// replaced by `***`.
fn secret_params(tail: &str, start: char, separator: char) -> String {
    let Some((path, params)) = tail.split_once(start) else {
        return tail.to_string();
    };
    let params: Vec<String> = params
        .split(separator)
        .map(|kv| match kv.split_once('=') {
            Some((k, _))
                if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("token") =>
            {
                format!("{k}=***")
            }
            _ => kv.to_string(),
        })
        .collect();
    format!("{path}{start}{}", params.join(&separator.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://vigil:s3cret@db.example:5432/wh?sslmode=disable&password=x"),
            "postgres://vigil:***@db.example:5432/wh?sslmode=disable&password=***"
        );
        assert_eq!(redact("postgres://db/wh"), "postgres://db/wh");
        assert_eq!(
            redact("sc://spark:15002/;user_id=me;token=s3cret;database=sales"),
            "sc://spark:15002/;user_id=me;token=***;database=sales"
        );
        assert_eq!(redact("/data/warehouse"), "/data/warehouse");
    }

    #[test]
    fn an_unknown_scheme_or_folder_is_refused_clearly() {
        let err = open("ftp://host/x").err().unwrap();
        assert!(
            err.0.starts_with("no source for `ftp://` locations"),
            "{err}"
        );
        let err = open("/nonexistent/warehouse").err().unwrap();
        assert!(err.0.contains("does not exist or is not a folder"), "{err}");
    }
}
