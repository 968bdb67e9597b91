//! The state store in a SQLite file (rusqlite, bundled): WAL mode with a busy timeout, so runs
//! at once wait for each other's commit; `PRAGMA application_id` says it is vigil's and
//! `PRAGMA user_version` is its version.

use std::path::Path;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::db::{
    numbered_for_sqlite, Cell, Db, DbError, DbErrorKind, Dialect, Param, Row, BUSY_TIMEOUT,
    MIGRATIONS,
};

/// `PRAGMA application_id` of a vigil store ("VIGL").
const APPLICATION_ID: i32 = 0x5649_474C;

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
        let pending = Dialect::Sqlite.pending(version)?;
        for migration in &pending {
            self.conn.execute_batch(migration).map_err(error)?;
        }
        if !pending.is_empty() {
            let known = MIGRATIONS.len();
            self.conn
                .execute_batch(&format!(
                    "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {known};"
                ))
                .map_err(error)?;
        }
        Ok(())
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
