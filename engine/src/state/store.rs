//! The SQLite state store: runs, their findings and judged metrics, every computed daily metric
//! value, incidents, silences, each table's columns, and the partial results of partitions.
//!
//! A run reads what it needs at its start ([`Store::previous`]) and writes everything in one
//! transaction at its end ([`Store::commit`]), so a killed run leaves the previous state. The
//! file is in WAL mode with a busy timeout, so runs at once wait for each other's commit instead
//! of failing or corrupting it. A file that is not a vigil store, is corrupt, or was written by
//! a newer vigil is an error naming it, never recreated.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};
use serde_json::{json, Value};

use super::fingerprint;
use super::incident::{Incident, Lifecycle, Notice, Silence, Status};
use crate::metric::MetricValue;
use crate::rule::{Observation, Severity};
use crate::runner::Evaluation;
use crate::scan::cache::PartitionCache;

/// `PRAGMA application_id` of a vigil store ("VIGL").
const APPLICATION_ID: i32 = 0x5649_474C;

/// How long a run waits for another run's commit.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The migrations, in order: the store's version is how many were applied.
const MIGRATIONS: &[&str] = &[r"
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

/// The store version this vigil writes (and the newest it reads).
pub const VERSION: i32 = MIGRATIONS.len() as i32;

/// Why the store cannot be used. Every variant names the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateError {
    /// `vigil silence list` or `history` on a store that does not exist.
    Missing(PathBuf),
    /// The file cannot be opened or created.
    Open(PathBuf, String),
    /// The file is not a vigil state store, or is corrupt.
    NotAStore(PathBuf, String),
    /// The store was written by a newer vigil.
    Newer(PathBuf, i32),
    /// Another run held the store longer than the busy timeout.
    Busy(PathBuf),
    /// A query failed.
    Sql(PathBuf, String),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Missing(p) => write!(
                f,
                "state store {} does not exist (a `vigil run` with the same --state or --output_dir creates it)",
                p.display()
            ),
            StateError::Open(p, e) => write!(f, "cannot open the state store {}: {e}", p.display()),
            StateError::NotAStore(p, e) => write!(
                f,
                "{} is not a usable vigil state store ({e}); vigil never recreates it: move it away to start a new history, or restore it from a backup",
                p.display()
            ),
            StateError::Newer(p, v) => write!(
                f,
                "the state store {} was written by a newer vigil (store version {v}, this vigil reads up to {VERSION}); upgrade vigil",
                p.display()
            ),
            StateError::Busy(p) => write!(
                f,
                "the state store {} stayed locked by another vigil for {} s; try again when it finishes",
                p.display(),
                BUSY_TIMEOUT.as_secs()
            ),
            StateError::Sql(p, e) => write!(f, "state store {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for StateError {}

/// What a run reads from the store before it judges.
#[derive(Clone, Debug, Default)]
pub struct Previous {
    /// The open incidents of the warehouse.
    pub open: Vec<Incident>,
    /// The silences not removed (stored and declared in the config).
    pub silences: Vec<Silence>,
    /// The expected partition of the warehouse's latest run.
    pub latest: Option<NaiveDate>,
    /// Each table's columns (name, type; the type empty where the source has none) at the
    /// warehouse's latest run that read it.
    pub columns: BTreeMap<String, Vec<(String, String)>>,
}

/// Which notices reached every destination they were routed to.
#[derive(Clone, Debug, Default)]
pub struct Delivered {
    /// Fingerprints whose opening alert was delivered.
    pub opened: HashSet<String>,
    /// Fingerprints whose "still failing" reminder was delivered.
    pub reminded: HashSet<String>,
}

/// Everything a run writes.
pub struct RunRecord<'a> {
    /// The run id.
    pub run_id: &'a str,
    /// The warehouse id.
    pub warehouse_id: &'a str,
    /// The warehouse location as shown (no password).
    pub warehouse: &'a str,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// A hash of the config file's bytes.
    pub config_hash: &'a str,
    /// The run's verdict.
    pub verdict: &'a str,
    /// The evaluation.
    pub eval: &'a Evaluation,
    /// What the run did to the incidents.
    pub lifecycle: &'a Lifecycle,
    /// Which notices were delivered.
    pub delivered: &'a Delivered,
    /// The partition results the run read or computed.
    pub cache: Option<&'a CacheView<'a>>,
}

/// One run in `vigil history`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RunRow {
    /// The run id.
    pub id: String,
    /// The warehouse id.
    pub warehouse_id: String,
    /// When it started (RFC 3339).
    pub started: String,
    /// The partition it judged.
    pub expected_date: String,
    /// Its verdict.
    pub verdict: String,
    /// ERROR, WARN and INFO findings.
    pub counts: [u32; 3],
}

/// One incident in `vigil history`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct IncidentRow {
    /// The incident id.
    pub id: i64,
    /// The warehouse id.
    pub warehouse_id: String,
    /// `open` or `resolved`.
    pub status: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// Its check.
    pub check: String,
    /// Its latest severity.
    pub severity: String,
    /// The partition it was first seen on.
    pub first_seen: String,
    /// The partition it was last seen on.
    pub last_seen: String,
    /// Daily runs it fired in.
    pub runs: u32,
    /// The partition of the run that resolved it.
    pub resolved_on: Option<String>,
    /// Its latest message.
    pub message: String,
}

/// A judged metric's value as an earlier run saw it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoredPoint {
    /// The partition the run judged.
    pub day: NaiveDate,
    /// The value it judged.
    pub value: f64,
    /// Whether it was flagged.
    pub flagged: bool,
}

/// The state store.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

impl Store {
    /// Opens the store at `path`, creating it (and its folder) when `create` and it does not
    /// exist, and migrating it to [`VERSION`].
    pub fn open(path: &Path, create: bool) -> Result<Store, StateError> {
        let path = path.to_path_buf();
        match std::fs::metadata(&path) {
            Ok(m) if !m.is_file() => {
                return Err(StateError::Open(path, "it is not a regular file".into()))
            }
            Ok(_) => {}
            Err(_) if !create => return Err(StateError::Missing(path)),
            Err(_) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| StateError::Open(path.clone(), e.to_string()))?;
                }
            }
        }
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| StateError::Open(path.clone(), e.to_string()))?;
        let store = Store {
            conn: Mutex::new(conn),
            path,
        };
        store.prepare()?;
        Ok(store)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Maps a SQLite error to what it means for the user.
    fn error(&self, e: rusqlite::Error) -> StateError {
        let path = self.path.clone();
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => {
                StateError::NotAStore(path, "it is not a SQLite database".into())
            }
            Some(ErrorCode::DatabaseCorrupt) => {
                StateError::NotAStore(path, format!("it is corrupt: {e}"))
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StateError::Busy(path),
            _ => StateError::Sql(path, e.to_string()),
        }
    }

    /// Sets the connection up, checks what the file is and migrates it.
    fn prepare(&self) -> Result<(), StateError> {
        let mut conn = self.conn();
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| self.error(e))?;
        let _: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| self.error(e))?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(|e| self.error(e))?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.error(e))?;
        let version: i32 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.error(e))?;
        let application: i32 = tx
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| self.error(e))?;
        let objects: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| self.error(e))?;
        if application != APPLICATION_ID && (objects > 0 || version != 0) {
            return Err(StateError::NotAStore(
                self.path.clone(),
                "it is a SQLite database of something else".into(),
            ));
        }
        if version > VERSION {
            return Err(StateError::Newer(self.path.clone(), version));
        }
        for migration in &MIGRATIONS[usize::try_from(version).unwrap_or(0)..] {
            tx.execute_batch(migration).map_err(|e| self.error(e))?;
        }
        if version < VERSION {
            tx.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {VERSION};"
            ))
            .map_err(|e| self.error(e))?;
        }
        tx.commit().map_err(|e| self.error(e))
    }

    /// What a run of `warehouse_id` needs to know: open incidents, silences (the stored ones
    /// and `declared` in the config), the latest run's partition and each table's columns.
    pub fn previous(
        &self,
        warehouse_id: &str,
        declared: &[Silence],
    ) -> Result<Previous, StateError> {
        let conn = self.conn();
        let e = |e| self.error(e);
        let mut open = Vec::new();
        let mut stmt = conn
            .prepare(
                "SELECT id, fingerprint, rule, check_id, subject, severity, first_seen, last_seen,
                        runs, notified, reminded, message
                 FROM incidents WHERE warehouse_id = ?1 AND status = 'open' ORDER BY id",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map([warehouse_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, u32>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, String>(11)?,
                ))
            })
            .map_err(e)?;
        for row in rows {
            let (
                id,
                fp,
                rule,
                check,
                subject,
                severity,
                first,
                last,
                runs,
                notified,
                reminded,
                message,
            ) = row.map_err(e)?;
            open.push(Incident {
                id: Some(id),
                fingerprint: fp,
                rule,
                check,
                subject,
                severity: self.severity(&severity)?,
                first_seen: self.date(&first)?,
                last_seen: self.date(&last)?,
                runs,
                notified: notified.map(|s| self.severity(&s)).transpose()?,
                reminded: reminded.map(|s| self.date(&s)).transpose()?,
                message,
            });
        }
        drop(stmt);
        let mut silences = self.silences_in(&conn, false)?;
        for d in declared {
            if !silences.iter().any(|s| same_silence(s, d)) {
                silences.push(d.clone());
            }
        }
        let latest: Option<String> = conn
            .query_row(
                "SELECT max(expected_date) FROM runs WHERE warehouse_id = ?1",
                [warehouse_id],
                |r| r.get(0),
            )
            .map_err(e)?;
        let mut columns = BTreeMap::new();
        let mut stmt = conn
            .prepare("SELECT table_name, columns FROM table_columns WHERE warehouse_id = ?1")
            .map_err(e)?;
        let rows = stmt
            .query_map([warehouse_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(e)?;
        for row in rows {
            let (table, list) = row.map_err(e)?;
            let list: Vec<(String, String)> = serde_json::from_str(&list).map_err(|err| {
                StateError::NotAStore(self.path.clone(), format!("columns of {table}: {err}"))
            })?;
            columns.insert(table, list);
        }
        Ok(Previous {
            open,
            silences,
            latest: latest.map(|d| self.date(&d)).transpose()?,
            columns,
        })
    }

    fn severity(&self, s: &str) -> Result<Severity, StateError> {
        match s {
            "ERROR" => Ok(Severity::Error),
            "WARN" => Ok(Severity::Warn),
            "INFO" => Ok(Severity::Info),
            other => Err(StateError::NotAStore(
                self.path.clone(),
                format!("unknown severity `{other}`"),
            )),
        }
    }

    fn date(&self, s: &str) -> Result<NaiveDate, StateError> {
        s.parse()
            .map_err(|_| StateError::NotAStore(self.path.clone(), format!("`{s}` is not a date")))
    }

    /// The silences (with `all`, removed ones too), stored order.
    fn silences_in(&self, conn: &Connection, all: bool) -> Result<Vec<Silence>, StateError> {
        let e = |e| self.error(e);
        let sql = if all {
            "SELECT id, check_id, subject, until, reason, created_by, expiry_reported, origin
             FROM silences ORDER BY id"
        } else {
            "SELECT id, check_id, subject, until, reason, created_by, expiry_reported, origin
             FROM silences WHERE removed IS NULL ORDER BY id"
        };
        let mut stmt = conn.prepare(sql).map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, bool>(6)?,
                    r.get::<_, String>(7)?,
                ))
            })
            .map_err(e)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, check, subject, until, reason, created_by, reported, origin) =
                row.map_err(e)?;
            out.push(Silence {
                id: Some(id),
                check,
                subject,
                until: self.date(&until)?,
                reason,
                created_by,
                expiry_reported: reported,
                origin: if origin == "config" {
                    "config"
                } else {
                    "store"
                },
            });
        }
        Ok(out)
    }

    /// Adds a silence; returns its id.
    pub fn add_silence(&self, silence: &Silence, now: DateTime<Utc>) -> Result<i64, StateError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO silences (check_id, subject, until, reason, created, created_by, origin)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                silence.check,
                silence.subject,
                silence.until.to_string(),
                silence.reason,
                now.to_rfc3339(),
                silence.created_by,
                silence.origin
            ],
        )
        .map_err(|e| self.error(e))?;
        Ok(conn.last_insert_rowid())
    }

    /// The silences not removed.
    pub fn silences(&self) -> Result<Vec<Silence>, StateError> {
        let conn = self.conn();
        self.silences_in(&conn, false)
    }

    /// Removes a silence (kept, marked removed); `false` when no such silence is active.
    pub fn remove_silence(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StateError> {
        let changed = self
            .conn()
            .execute(
                "UPDATE silences SET removed = ?2 WHERE id = ?1 AND removed IS NULL",
                params![id, now.to_rfc3339()],
            )
            .map_err(|e| self.error(e))?;
        Ok(changed == 1)
    }

    /// The runs since `since` (all warehouses), oldest first.
    pub fn runs(&self, since: Option<NaiveDate>) -> Result<Vec<RunRow>, StateError> {
        let conn = self.conn();
        let e = |e| self.error(e);
        let mut stmt = conn
            .prepare(
                "SELECT id, warehouse_id, started, expected_date, verdict, errors, warnings, infos
                 FROM runs WHERE expected_date >= ?1 ORDER BY started, id",
            )
            .map_err(e)?;
        let since = since.map_or(String::new(), |d| d.to_string());
        let rows = stmt
            .query_map([since], |r| {
                Ok(RunRow {
                    id: r.get(0)?,
                    warehouse_id: r.get(1)?,
                    started: r.get(2)?,
                    expected_date: r.get(3)?,
                    verdict: r.get(4)?,
                    counts: [r.get(5)?, r.get(6)?, r.get(7)?],
                })
            })
            .map_err(e)?;
        rows.collect::<Result<_, _>>().map_err(e)
    }

    /// The incidents seen since `since` whose check (or fingerprint) is `check`, oldest first.
    pub fn incidents(
        &self,
        check: Option<&str>,
        since: Option<NaiveDate>,
    ) -> Result<Vec<IncidentRow>, StateError> {
        let conn = self.conn();
        let e = |e| self.error(e);
        let mut stmt = conn
            .prepare(
                "SELECT id, warehouse_id, status, fingerprint, check_id, severity, first_seen,
                        last_seen, runs, resolved_on, message
                 FROM incidents
                 WHERE last_seen >= ?1 AND (?2 IS NULL OR check_id = ?2 OR fingerprint = ?2)
                 ORDER BY id",
            )
            .map_err(e)?;
        let since = since.map_or(String::new(), |d| d.to_string());
        let rows = stmt
            .query_map(params![since, check], |r| {
                Ok(IncidentRow {
                    id: r.get(0)?,
                    warehouse_id: r.get(1)?,
                    status: r.get(2)?,
                    fingerprint: r.get(3)?,
                    check: r.get(4)?,
                    severity: r.get(5)?,
                    first_seen: r.get(6)?,
                    last_seen: r.get(7)?,
                    runs: r.get(8)?,
                    resolved_on: r.get(9)?,
                    message: r.get(10)?,
                })
            })
            .map_err(e)?;
        rows.collect::<Result<_, _>>().map_err(e)
    }

    /// The values earlier runs of `warehouse_id` judged for `metrics` (the latest run of each
    /// partition), oldest first.
    pub fn judged(
        &self,
        warehouse_id: &str,
        metrics: &BTreeSet<&str>,
    ) -> Result<BTreeMap<String, Vec<StoredPoint>>, StateError> {
        let conn = self.conn();
        let e = |e| self.error(e);
        let mut stmt = conn
            .prepare(
                "SELECT o.metric, o.day, o.value, o.flagged
                 FROM observations AS o JOIN runs AS r ON r.id = o.run_id
                 WHERE r.warehouse_id = ?1
                 ORDER BY o.metric, o.day, r.started",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map([warehouse_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<f64>>(2)?,
                    r.get::<_, bool>(3)?,
                ))
            })
            .map_err(e)?;
        let mut out: BTreeMap<String, Vec<StoredPoint>> = BTreeMap::new();
        for row in rows {
            let (metric, day, value, flagged) = row.map_err(e)?;
            if !metrics.contains(metric.as_str()) {
                continue;
            }
            let point = StoredPoint {
                day: self.date(&day)?,
                value: value.unwrap_or(f64::NAN),
                flagged,
            };
            let points = out.entry(metric).or_default();
            // A later run of the same partition replaces the earlier one.
            match points.last_mut() {
                Some(last) if last.day == point.day => *last = point,
                _ => points.push(point),
            }
        }
        Ok(out)
    }

    /// Writes a run in one transaction: the run, its findings and judged metrics, the metric
    /// series that changed, the tables' columns, the incidents, the silences declared in the
    /// config and the expiries reported, and the partition results.
    pub fn commit(&self, record: &RunRecord<'_>, declared: &[Silence]) -> Result<(), StateError> {
        let mut conn = self.conn();
        let e = |e| self.error(e);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e)?;
        let eval = record.eval;
        let finished = Utc::now();
        tx.execute(
            "INSERT INTO runs (id, warehouse_id, warehouse, started, finished, config_hash,
                               expected_date, scope, verdict, errors, warnings, infos,
                               vigil_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                record.run_id,
                record.warehouse_id,
                record.warehouse,
                record.started.to_rfc3339(),
                finished.to_rfc3339(),
                record.config_hash,
                eval.expected_date.to_string(),
                eval.scope.as_str(),
                record.verdict,
                eval.count(Severity::Error),
                eval.count(Severity::Warn),
                eval.count(Severity::Info),
                env!("CARGO_PKG_VERSION"),
            ],
        )
        .map_err(e)?;
        // Incidents first: findings point at them.
        let mut ids: BTreeMap<&str, i64> = BTreeMap::new();
        let day = eval.expected_date.to_string();
        for (print, t) in &record.lifecycle.tracked {
            let i = &t.incident;
            let delivered_open =
                t.notice == Some(Notice::Open) && record.delivered.opened.contains(print);
            let notified = if delivered_open {
                Some(i.severity)
            } else {
                i.notified
            };
            let reminded = if delivered_open
                || (t.notice == Some(Notice::Remind) && record.delivered.reminded.contains(print))
            {
                Some(eval.expected_date)
            } else {
                i.reminded
            };
            let notified = notified.map(Severity::label);
            let reminded = reminded.map(|d| d.to_string());
            match (i.id, t.status) {
                (Some(id), Status::Resolved) => {
                    tx.execute(
                        "UPDATE incidents SET status = 'resolved', resolved_run = ?2,
                                resolved_on = ?3 WHERE id = ?1",
                        params![id, record.run_id, day],
                    )
                    .map_err(e)?;
                }
                (Some(id), _) => {
                    tx.execute(
                        "UPDATE incidents SET severity = ?2, last_seen = ?3, runs = ?4,
                                last_run = ?5, notified = ?6, reminded = ?7, message = ?8
                         WHERE id = ?1",
                        params![
                            id,
                            i.severity.label(),
                            i.last_seen.to_string(),
                            i.runs,
                            record.run_id,
                            notified,
                            reminded,
                            i.message
                        ],
                    )
                    .map_err(e)?;
                    ids.insert(print, id);
                }
                (None, _) => {
                    // Another run may have opened it meanwhile: then this run's finding joins it.
                    let id: i64 = tx
                        .query_row(
                            "INSERT INTO incidents (warehouse_id, fingerprint, rule, check_id,
                                 subject, severity, status, first_seen, last_seen, runs,
                                 opened_run, last_run, notified, reminded, message)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?7, 1, ?8, ?8, ?9, ?10,
                                     ?11)
                             ON CONFLICT (warehouse_id, fingerprint) WHERE status = 'open'
                             DO UPDATE SET last_run = excluded.last_run
                             RETURNING id",
                            params![
                                record.warehouse_id,
                                print,
                                i.rule,
                                i.check,
                                i.subject,
                                i.severity.label(),
                                day,
                                record.run_id,
                                notified,
                                reminded,
                                i.message
                            ],
                            |r| r.get(0),
                        )
                        .map_err(e)?;
                    ids.insert(print, id);
                }
            }
        }
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO findings (run_id, fingerprint, severity, rule, check_id, subject,
                         partition_date, message, value, threshold, incident_id, silence_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .map_err(e)?;
            for f in &eval.findings {
                let print = fingerprint(f);
                let silence = record
                    .lifecycle
                    .tracked
                    .get(&print)
                    .and_then(|t| t.silence.as_ref())
                    .and_then(|s| s.id);
                insert
                    .execute(params![
                        record.run_id,
                        print,
                        f.severity.label(),
                        f.rule,
                        f.check,
                        f.subject,
                        f.partition_date.map(|d| d.to_string()),
                        f.message,
                        f.value.filter(|v| v.is_finite()),
                        f.threshold.filter(|v| v.is_finite()),
                        ids.get(print.as_str()),
                        silence
                    ])
                    .map_err(e)?;
            }
            let mut insert = tx
                .prepare(
                    "INSERT INTO observations (run_id, metric, day, value, center, spread, z,
                         flagged) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(e)?;
            for o in &eval.observations {
                insert
                    .execute(observation_row(record.run_id, o))
                    .map_err(e)?;
            }
            let mut upsert = tx
                .prepare(
                    "INSERT INTO metric_series (warehouse_id, table_name, request, series, run_id)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (warehouse_id, table_name, request) DO UPDATE
                     SET series = excluded.series, run_id = excluded.run_id
                     WHERE series IS NOT excluded.series",
                )
                .map_err(e)?;
            let mut columns = tx
                .prepare(
                    "INSERT INTO table_columns (warehouse_id, table_name, columns, run_id)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (warehouse_id, table_name) DO UPDATE
                     SET columns = excluded.columns, run_id = excluded.run_id",
                )
                .map_err(e)?;
            for scan in &eval.scans {
                for (request, value) in &scan.metrics {
                    if let Ok(value) = value {
                        upsert
                            .execute(params![
                                record.warehouse_id,
                                scan.table,
                                request.to_string(),
                                series(value).to_string(),
                                record.run_id
                            ])
                            .map_err(e)?;
                    }
                }
                if let Ok(stats) = &scan.outcome {
                    let typed: Vec<(&String, &str)> = stats
                        .columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c, stats.column_types.get(i).map_or("", String::as_str)))
                        .collect();
                    let list = serde_json::to_string(&typed).unwrap_or_default();
                    columns
                        .execute(params![
                            record.warehouse_id,
                            scan.table,
                            list,
                            record.run_id
                        ])
                        .map_err(e)?;
                }
            }
        }
        let stored = self.silences_in(&tx, true)?;
        for d in declared {
            if !stored.iter().any(|s| same_silence(s, d)) {
                tx.execute(
                    "INSERT INTO silences (check_id, subject, until, reason, created, created_by,
                         origin) VALUES (?1, ?2, ?3, ?4, ?5, 'config', 'config')",
                    params![
                        d.check,
                        d.subject,
                        d.until.to_string(),
                        d.reason,
                        finished.to_rfc3339()
                    ],
                )
                .map_err(e)?;
            }
        }
        for s in &record.lifecycle.expired {
            tx.execute(
                "UPDATE silences SET expiry_reported = 1
                 WHERE check_id = ?1 AND subject IS ?2 AND until = ?3 AND reason = ?4",
                params![s.check, s.subject, s.until.to_string(), s.reason],
            )
            .map_err(e)?;
        }
        if let Some(cache) = record.cache {
            cache.write(&tx, record.run_id).map_err(e)?;
        }
        tx.commit().map_err(e)
    }
}

/// Whether two silences say the same (a config silence and its stored copy).
fn same_silence(a: &Silence, b: &Silence) -> bool {
    a.check == b.check && a.subject == b.subject && a.until == b.until && a.reason == b.reason
}

fn observation_row(run_id: &str, o: &Observation) -> [rusqlite::types::Value; 8] {
    use rusqlite::types::Value as V;
    let real = |v: Option<f64>| v.filter(|v| v.is_finite()).map_or(V::Null, V::Real);
    [
        V::Text(run_id.to_string()),
        V::Text(o.metric.clone()),
        V::Text(o.day.to_string()),
        real(Some(o.value)),
        real(o.baseline.map(|b| b.0)),
        real(o.baseline.map(|b| b.1)),
        real(o.z),
        V::Integer(i64::from(o.flagged)),
    ]
}

/// A metric value as stored: a JSON list of `[day, dimension, value]` (day and dimension
/// `null` where the grouping has none; a non-finite value `null`).
fn series(value: &MetricValue) -> Value {
    let num = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    match value {
        MetricValue::Total(x) => json!([[null, null, num(*x)]]),
        MetricValue::Daily(s) => Value::Array(
            s.iter()
                .map(|(d, x)| json!([d.to_string(), null, num(*x)]))
                .collect(),
        ),
        MetricValue::DailyBy(s) => Value::Array(
            s.iter()
                .flat_map(|(d, by)| {
                    by.iter()
                        .map(move |(k, x)| json!([d.to_string(), k, num(*x)]))
                })
                .collect(),
        ),
    }
}

/// The store's partition results for one run of one warehouse: reads go to the store, writes
/// wait for the run's commit.
pub struct CacheView<'a> {
    store: &'a Store,
    warehouse_id: String,
    /// Keys read or stored, by table.
    touched: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// Values stored, written at the commit.
    puts: Mutex<Vec<(String, String, Vec<u8>)>>,
}

impl<'a> CacheView<'a> {
    /// The partition results of `warehouse_id` in `store`.
    pub fn new(store: &'a Store, warehouse_id: &str) -> Self {
        CacheView {
            store,
            warehouse_id: warehouse_id.to_string(),
            touched: Mutex::new(BTreeMap::new()),
            puts: Mutex::new(Vec::new()),
        }
    }

    fn touch(&self, table: &str, key: &str) {
        self.touched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(table.to_string())
            .or_default()
            .insert(key.to_string());
    }

    /// Writes the stored values and forgets the keys of touched tables this run did not use.
    fn write(&self, tx: &rusqlite::Transaction<'_>, run_id: &str) -> rusqlite::Result<()> {
        let puts = std::mem::take(&mut *self.puts.lock().unwrap_or_else(PoisonError::into_inner));
        let mut insert = tx.prepare(
            "INSERT INTO partition_cache (warehouse_id, table_name, key, bytes, run_id)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (warehouse_id, table_name, key) DO UPDATE
             SET bytes = excluded.bytes, run_id = excluded.run_id",
        )?;
        for (table, key, bytes) in puts {
            insert.execute(params![self.warehouse_id, table, key, bytes, run_id])?;
        }
        let touched = self.touched.lock().unwrap_or_else(PoisonError::into_inner);
        let mut keys = tx.prepare(
            "SELECT key FROM partition_cache WHERE warehouse_id = ?1 AND table_name = ?2",
        )?;
        let mut delete = tx.prepare(
            "DELETE FROM partition_cache WHERE warehouse_id = ?1 AND table_name = ?2 AND key = ?3",
        )?;
        for (table, used) in touched.iter() {
            let stale: Vec<String> = keys
                .query_map(params![self.warehouse_id, table], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?
                .into_iter()
                .filter(|k| !used.contains(k))
                .collect();
            for key in stale {
                delete.execute(params![self.warehouse_id, table, key])?;
            }
        }
        Ok(())
    }
}

impl PartitionCache for CacheView<'_> {
    fn get(&self, table: &str, key: &str) -> Option<Vec<u8>> {
        self.touch(table, key);
        self.store
            .conn()
            .query_row(
                "SELECT bytes FROM partition_cache
                 WHERE warehouse_id = ?1 AND table_name = ?2 AND key = ?3",
                params![self.warehouse_id, table, key],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten()
    }

    fn put(&self, table: &str, key: &str, bytes: Vec<u8>) {
        self.touch(table, key);
        self.puts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((table.to_string(), key.to_string(), bytes));
    }
}
