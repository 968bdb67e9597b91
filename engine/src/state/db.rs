//! The database under the state store, so the store's queries are written once for every
//! database: SQLite in the engine ([`super::sqlite`]), PostgreSQL in the source crate that links
//! its driver, registered here for its URL schemes ([`StoreRegistration`]).
//!
//! Queries are written with numbered placeholders `$1..$n` in the SQL both databases speak
//! (`IS [NOT] DISTINCT FROM`, `ON CONFLICT ... DO UPDATE`, `RETURNING`); SQLite's side rewrites
//! them to `?1..?n` ([`numbered_for_sqlite`]). Parameters carry their type even when NULL
//! ([`Param`]), integers are 64-bit. Each database has its own DDL (the migrations below for
//! PostgreSQL, [`super::sqlite`] for SQLite): the same tables, views and indexes, version for
//! version.

use std::fmt;
use std::time::Duration;

/// How long a run waits for another run's commit (then the store is busy).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// A query parameter. Its type is known even when it is NULL (PostgreSQL's driver needs the
/// type of a NULL).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Param<'a> {
    /// A 64-bit integer (`BIGINT` in PostgreSQL).
    Int(Option<i64>),
    /// A double (`DOUBLE PRECISION`).
    Real(Option<f64>),
    /// Text.
    Text(Option<&'a str>),
    /// Bytes (`BLOB`, `BYTEA`).
    Bytes(Option<&'a [u8]>),
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(v: Option<i64>) -> Self {
        Param::Int(v)
    }
}

impl From<Option<f64>> for Param<'_> {
    fn from(v: Option<f64>) -> Self {
        Param::Real(v)
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(Some(v))
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Param::Text(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Param::Text(v)
    }
}

impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Param::Text(v.as_deref())
    }
}

impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(v: &'a [u8]) -> Self {
        Param::Bytes(Some(v))
    }
}

/// A value read back.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// NULL.
    Null,
    /// An integer (a boolean reads as 0 or 1).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// A row read back: its cells in the order of the query's columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Row(pub Vec<Cell>);

impl Row {
    fn cell(&self, i: usize) -> Result<&Cell, DbError> {
        self.0
            .get(i)
            .ok_or_else(|| DbError::new(DbErrorKind::Other, format!("no column {i} in the row")))
    }

    fn unexpected(&self, i: usize, wanted: &str) -> DbError {
        DbError::new(
            DbErrorKind::NotAStore,
            format!(
                "column {i} holds {:?} where {wanted} was expected",
                self.0.get(i)
            ),
        )
    }

    /// Text that may be NULL.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, DbError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s.clone())),
            _ => Err(self.unexpected(i, "text")),
        }
    }

    /// Text.
    pub fn text(&self, i: usize) -> Result<String, DbError> {
        self.opt_text(i)?.ok_or_else(|| self.unexpected(i, "text"))
    }

    /// An integer that may be NULL.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(*v)),
            _ => Err(self.unexpected(i, "an integer")),
        }
    }

    /// An integer.
    pub fn int(&self, i: usize) -> Result<i64, DbError> {
        self.opt_int(i)?
            .ok_or_else(|| self.unexpected(i, "an integer"))
    }

    /// A count (a non-negative integer that fits 32 bits).
    pub fn count(&self, i: usize) -> Result<u32, DbError> {
        u32::try_from(self.int(i)?).map_err(|_| self.unexpected(i, "a count"))
    }

    /// A number that may be NULL (an integer reads as a number).
    pub fn opt_real(&self, i: usize) -> Result<Option<f64>, DbError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Real(v) => Ok(Some(*v)),
            #[allow(clippy::cast_precision_loss)]
            Cell::Int(v) => Ok(Some(*v as f64)),
            _ => Err(self.unexpected(i, "a number")),
        }
    }

    /// Bytes.
    pub fn bytes(&self, i: usize) -> Result<Vec<u8>, DbError> {
        match self.cell(i)? {
            Cell::Bytes(b) => Ok(b.clone()),
            _ => Err(self.unexpected(i, "bytes")),
        }
    }
}

/// What a database error means to the store's user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbErrorKind {
    /// The store does not exist (and was not to be created).
    Missing,
    /// The database cannot be opened or reached.
    Open,
    /// It is not a database, not a vigil store, or it is corrupt.
    NotAStore,
    /// It was written by a newer vigil: its store version.
    Newer(i32),
    /// Another run held it longer than the busy timeout.
    Busy,
    /// Anything else (a failed query).
    Other,
}

/// A database error: what it means and the database's message (never a password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbError {
    /// What it means.
    pub kind: DbErrorKind,
    /// The message.
    pub message: String,
}

impl DbError {
    /// An error of `kind`.
    pub fn new(kind: DbErrorKind, message: impl Into<String>) -> Self {
        DbError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DbError {}

/// A connection to the database that holds a state store. Statements use `$1..$n`
/// placeholders; a statement outside [`Db::begin`]..[`Db::commit`] commits on its own.
pub trait Db: Send {
    /// Checks that the database is a vigil store (or empty), refuses a newer one, and applies the
    /// missing migrations, in one transaction.
    fn migrate(&mut self) -> Result<(), DbError> {
        self.begin()?;
        match self.migrate_in_transaction() {
            Ok(()) => self.commit(),
            Err(e) => {
                let _ = self.rollback();
                Err(e)
            }
        }
    }

    /// The work of [`Db::migrate`] inside its open transaction.
    fn migrate_in_transaction(&mut self) -> Result<(), DbError>;

    /// Runs a statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError>;

    /// Runs a query; returns its rows.
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError>;

    /// Starts a write transaction, waiting (up to the busy timeout) for other writers to commit.
    fn begin(&mut self) -> Result<(), DbError>;

    /// Commits the transaction.
    fn commit(&mut self) -> Result<(), DbError>;

    /// Rolls the transaction back.
    fn rollback(&mut self) -> Result<(), DbError>;
}

/// Opens a state store database at a URL: connects, and with `create` false fails with
/// [`DbErrorKind::Missing`] when the database holds no store.
pub type ConnectDbFn = fn(url: &str, create: bool) -> Result<Box<dyn Db>, DbError>;

/// What a database crate submits to hold state stores at URLs with its schemes.
pub struct StoreRegistration {
    /// The schemes, e.g. `["postgres", "postgresql"]`.
    pub schemes: &'static [&'static str],
    /// Connects; the error never holds a password.
    pub connect: ConnectDbFn,
}

inventory::collect!(StoreRegistration);

/// Connects to the state store at `url` through the database registered for its scheme.
pub fn connect(url: &str, create: bool) -> Result<Box<dyn Db>, DbError> {
    let scheme = url
        .split_once("://")
        .map_or("", |(s, _)| s)
        .to_ascii_lowercase();
    match inventory::iter::<StoreRegistration>
        .into_iter()
        .find(|r| r.schemes.contains(&scheme.as_str()))
    {
        Some(r) => (r.connect)(url, create),
        None => Err(DbError::new(
            DbErrorKind::Open,
            format!("this vigil keeps no state store at `{scheme}://` locations (give a file)"),
        )),
    }
}

/// A statement's `$n` placeholders as SQLite's `?n` (SQLite numbers `$n` by first appearance,
/// as a named parameter). Quoted strings and identifiers are left as they are.
pub fn numbered_for_sqlite(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('?');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

/// The PostgreSQL schema that holds a store.
pub const POSTGRES_SCHEMA: &str = "vigil_state";

/// The migrations, in order (a store's version is how many were applied), written once for
/// both databases: `{id}`, `{int}`, `{real}`, `{bytes}` and the `daily_metrics` view's `{day}`,
/// `{dimension}`, `{value}` and `{elements}` take each database's spelling ([`Dialect::ddl`]).
/// PostgreSQL runs them with `search_path` set to [`POSTGRES_SCHEMA`].
pub const MIGRATIONS: &[&str] = &[r"
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    warehouse_id TEXT NOT NULL,
    warehouse TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    expected_date TEXT NOT NULL,
    scope TEXT NOT NULL,
    verdict TEXT NOT NULL,
    errors {int} NOT NULL,
    warnings {int} NOT NULL,
    infos {int} NOT NULL,
    vigil_version TEXT NOT NULL
);
CREATE INDEX runs_by_warehouse ON runs (warehouse_id, expected_date);
CREATE TABLE incidents (
    id {id},
    warehouse_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    check_id TEXT NOT NULL,
    subject TEXT,
    severity TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    runs {int} NOT NULL,
    opened_run TEXT NOT NULL,
    last_run TEXT NOT NULL,
    resolved_run TEXT,
    resolved_on TEXT,
    notified TEXT,
    reminded TEXT,
    message TEXT NOT NULL
);
CREATE UNIQUE INDEX one_open_incident ON incidents (warehouse_id, fingerprint)
    WHERE status = 'open';
CREATE TABLE findings (
    run_id TEXT NOT NULL REFERENCES runs (id),
    fingerprint TEXT NOT NULL,
    severity TEXT NOT NULL,
    rule TEXT NOT NULL,
    check_id TEXT NOT NULL,
    subject TEXT,
    partition_date TEXT,
    message TEXT NOT NULL,
    value {real},
    threshold {real},
    incident_id {int} REFERENCES incidents (id),
    silence_id {int}
);
CREATE INDEX findings_by_run ON findings (run_id);
CREATE TABLE observations (
    run_id TEXT NOT NULL REFERENCES runs (id),
    metric TEXT NOT NULL,
    day TEXT NOT NULL,
    value {real},
    center {real},
    spread {real},
    z {real},
    flagged {int} NOT NULL
);
CREATE INDEX observations_by_metric ON observations (metric, day);
CREATE TABLE silences (
    id {id},
    check_id TEXT NOT NULL,
    subject TEXT,
    until TEXT NOT NULL,
    reason TEXT NOT NULL,
    created TEXT NOT NULL,
    created_by TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('store', 'config')),
    expiry_reported {int} NOT NULL DEFAULT 0,
    removed TEXT
);
CREATE TABLE metric_series (
    warehouse_id TEXT NOT NULL,
    table_name TEXT NOT NULL,
    request TEXT NOT NULL,
    series TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (warehouse_id, table_name, request)
);
CREATE VIEW daily_metrics AS
    SELECT s.warehouse_id, s.table_name, s.request, s.run_id,
           {day} AS day,
           {dimension} AS dimension,
           {value} AS value
    FROM metric_series AS s, {elements};
CREATE TABLE table_columns (
    warehouse_id TEXT NOT NULL,
    table_name TEXT NOT NULL,
    columns TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (warehouse_id, table_name)
);
CREATE TABLE partition_cache (
    warehouse_id TEXT NOT NULL,
    table_name TEXT NOT NULL,
    key TEXT NOT NULL,
    bytes {bytes} NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (warehouse_id, table_name, key)
);
"];

/// A database's spelling of the migrations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: `INTEGER PRIMARY KEY` ids, `REAL`, `BLOB`, the view over `json_each`.
    Sqlite,
    /// PostgreSQL: 64-bit integers, identity ids, `DOUBLE PRECISION`, `BYTEA`, the view over
    /// `jsonb`.
    Postgres,
}

impl Dialect {
    /// A migration in this database's spelling.
    pub fn ddl(self, template: &str) -> String {
        let words: [(&str, &str); 8] = match self {
            Dialect::Sqlite => [
                ("{id}", "INTEGER PRIMARY KEY"),
                ("{int}", "INTEGER"),
                ("{real}", "REAL"),
                ("{bytes}", "BLOB"),
                ("{day}", "json_extract(e.value, '$[0]')"),
                ("{dimension}", "json_extract(e.value, '$[1]')"),
                ("{value}", "json_extract(e.value, '$[2]')"),
                ("{elements}", "json_each(s.series) AS e"),
            ],
            Dialect::Postgres => [
                (
                    "{id}",
                    "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                ),
                ("{int}", "BIGINT"),
                ("{real}", "DOUBLE PRECISION"),
                ("{bytes}", "BYTEA"),
                ("{day}", "e.value ->> 0"),
                ("{dimension}", "e.value ->> 1"),
                ("{value}", "(e.value ->> 2)::double precision"),
                (
                    "{elements}",
                    "jsonb_array_elements(s.series::jsonb) AS e (value)",
                ),
            ],
        };
        words
            .iter()
            .fold(template.to_string(), |ddl, (token, word)| {
                ddl.replace(token, word)
            })
    }

    /// The migrations a store at `version` still needs, in this spelling; a store written by a
    /// newer vigil is [`DbErrorKind::Newer`].
    pub fn pending(self, version: i64) -> Result<Vec<String>, DbError> {
        let applied = usize::try_from(version).unwrap_or(usize::MAX);
        if applied > MIGRATIONS.len() {
            return Err(DbError::new(
                DbErrorKind::Newer(i32::try_from(version).unwrap_or(i32::MAX)),
                "newer",
            ));
        }
        Ok(MIGRATIONS[applied..].iter().map(|m| self.ddl(m)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_keep_their_numbers_for_sqlite() {
        assert_eq!(
            numbered_for_sqlite("UPDATE t SET a = $2, b = '$1', \"$3\" = $10 WHERE id = $1"),
            "UPDATE t SET a = ?2, b = '$1', \"$3\" = ?10 WHERE id = ?1"
        );
        assert_eq!(
            numbered_for_sqlite("SELECT 'it''s $1', $1"),
            "SELECT 'it''s $1', ?1"
        );
    }

    #[test]
    fn rows_read_typed_and_refuse_other_types() {
        let row = Row(vec![
            Cell::Int(3),
            Cell::Null,
            Cell::Text("x".into()),
            Cell::Int(-1),
        ]);
        assert_eq!(row.count(0), Ok(3));
        assert_eq!(row.opt_text(1), Ok(None));
        assert_eq!(row.opt_real(0), Ok(Some(3.0)));
        assert_eq!(row.text(2), Ok("x".to_string()));
        assert_eq!(row.int(2).unwrap_err().kind, DbErrorKind::NotAStore);
        assert_eq!(row.count(3).unwrap_err().kind, DbErrorKind::NotAStore);
        assert_eq!(row.text(7).unwrap_err().kind, DbErrorKind::Other);
    }
}
