//! The state store in a SQLite file (rusqlite, bundled): WAL mode with a busy timeout, so runs
//! at once wait for each other's commit; `PRAGMA application_id` says it is vigil's and
//! `PRAGMA user_version` is its version.

use std::path::Path;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::db::{numbered_for_sqlite, Cell, Db, DbError, DbErrorKind, Param, Row, BUSY_TIMEOUT};

/// `PRAGMA application_id` of a vigil store ("VIGL").
const APPLICATION_ID: i32 = 0x5649_474C;

/// The migrations, in order: the store's version is how many were applied.
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
    errors INTEGER NOT NULL,
    warnings INTEGER NOT NULL,
    infos INTEGER NOT NULL,
    vigil_version TEXT NOT NULL
);
CREATE INDEX runs_by_warehouse ON runs (warehouse_id, expected_date);
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    warehouse_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    check_id TEXT NOT NULL,
    subject TEXT,
    severity TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    runs INTEGER NOT NULL,
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
    value REAL,
    threshold REAL,
    incident_id INTEGER REFERENCES incidents (id),
    silence_id INTEGER
);
CREATE INDEX findings_by_run ON findings (run_id);
CREATE TABLE observations (
    run_id TEXT NOT NULL REFERENCES runs (id),
    metric TEXT NOT NULL,
    day TEXT NOT NULL,
    value REAL,
    center REAL,
    spread REAL,
    z REAL,
    flagged INTEGER NOT NULL
);
CREATE INDEX observations_by_metric ON observations (metric, day);
CREATE TABLE silences (
    id INTEGER PRIMARY KEY,
    check_id TEXT NOT NULL,
    subject TEXT,
    until TEXT NOT NULL,
    reason TEXT NOT NULL,
    created TEXT NOT NULL,
    created_by TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('store', 'config')),
    expiry_reported INTEGER NOT NULL DEFAULT 0,
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
           json_extract(e.value, '$[0]') AS day,
           json_extract(e.value, '$[1]') AS dimension,
           json_extract(e.value, '$[2]') AS value
    FROM metric_series AS s, json_each(s.series) AS e;
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
    bytes BLOB NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (warehouse_id, table_name, key)
);
"];

/// A SQLite state store file.
pub struct Sqlite {
    conn: Connection,
}

impl Sqlite {
    /// Opens the file at `path`, creating it (and its folder) when `create` and it does not
    /// exist.
    pub fn open(path: &Path, create: bool) -> Result<Sqlite, DbError> {
        let open = |e: String| DbError::new(DbErrorKind::Open, e);
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => return Err(open("it is not a regular file".into())),
            Ok(_) => {}
            Err(_) if !create => {
                return Err(DbError::new(DbErrorKind::Missing, "it does not exist"))
            }
            Err(_) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| open(e.to_string()))?;
                }
            }
        }
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open(e.to_string()))?;
        let db = Sqlite { conn };
        db.conn.busy_timeout(BUSY_TIMEOUT).map_err(error)?;
        let _: String = db
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(error)?;
        db.conn
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(error)?;
        Ok(db)
    }

    fn pragma(&self, name: &str) -> Result<i64, DbError> {
        self.conn
            .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(error)
    }

    /// Checks what the file is and migrates it, inside the open transaction.
    fn migrate_in_transaction(&mut self) -> Result<(), DbError> {
        let version = self.pragma("user_version")?;
        let application = self.pragma("application_id")?;
        let objects: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(error)?;
        if application != i64::from(APPLICATION_ID) && (objects > 0 || version != 0) {
            return Err(DbError::new(
                DbErrorKind::NotAStore,
                "it is a SQLite database of something else",
            ));
        }
        let known = MIGRATIONS.len();
        let applied = usize::try_from(version).unwrap_or(usize::MAX);
        if applied > known {
            return Err(DbError::new(
                DbErrorKind::Newer(i32::try_from(version).unwrap_or(i32::MAX)),
                "newer",
            ));
        }
        for migration in &MIGRATIONS[applied..] {
            self.conn.execute_batch(migration).map_err(error)?;
        }
        if applied < known {
            self.conn
                .execute_batch(&format!(
                    "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {known};"
                ))
                .map_err(error)?;
        }
        Ok(())
    }
}

/// Maps a SQLite error to what it means for the user.
fn error(e: rusqlite::Error) -> DbError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => {
            DbError::new(DbErrorKind::NotAStore, "it is not a SQLite database")
        }
        Some(ErrorCode::DatabaseCorrupt) => {
            DbError::new(DbErrorKind::NotAStore, format!("it is corrupt: {e}"))
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            DbError::new(DbErrorKind::Busy, e.to_string())
        }
        _ => DbError::new(DbErrorKind::Other, e.to_string()),
    }
}

fn value(p: &Param<'_>) -> Value {
    match *p {
        Param::Int(v) => v.map_or(Value::Null, Value::Integer),
        Param::Real(v) => v.map_or(Value::Null, Value::Real),
        Param::Text(v) => v.map_or(Value::Null, |s| Value::Text(s.to_string())),
        Param::Bytes(v) => v.map_or(Value::Null, |b| Value::Blob(b.to_vec())),
    }
}

impl Db for Sqlite {
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

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(&numbered_for_sqlite(sql))
            .map_err(error)?;
        let changed = stmt
            .execute(rusqlite::params_from_iter(params.iter().map(value)))
            .map_err(error)?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(&numbered_for_sqlite(sql))
            .map_err(error)?;
        let width = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter().map(value)))
            .map_err(error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(error)? {
            let mut cells = Vec::with_capacity(width);
            for i in 0..width {
                cells.push(match row.get_ref(i).map_err(error)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Real(v),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
                });
            }
            out.push(Row(cells));
        }
        Ok(out)
    }

    fn begin(&mut self) -> Result<(), DbError> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(error)
    }

    fn commit(&mut self) -> Result<(), DbError> {
        self.conn.execute_batch("COMMIT").map_err(error)
    }

    fn rollback(&mut self) -> Result<(), DbError> {
        self.conn.execute_batch("ROLLBACK").map_err(error)
    }
}
