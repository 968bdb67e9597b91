//! The state store: runs, their findings and judged metrics, every computed daily metric
//! value, incidents, silences, each table's columns, and the partial results of partitions; in
//! a SQLite file or a PostgreSQL database, through the same queries ([`super::db`]).
//!
//! A run reads what it needs at its start ([`Store::previous`]) and writes everything in one
//! transaction at its end ([`Store::commit`]), so a killed run leaves the previous state. Runs
//! at once wait for each other's commit instead of failing or corrupting the store. A store
//! that is not one, is corrupt, or was written by a newer vigil is an error naming it, never
//! recreated.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use super::db::MIGRATIONS;
use super::db::{self, Db, DbError, DbErrorKind, Param, Row, BUSY_TIMEOUT};
use super::fingerprint;
use super::incident::{Incident, Lifecycle, Notice, Silence, Status};
use super::sqlite::Sqlite;
use super::Location;
use crate::metric::MetricValue;
use crate::rule::Severity;
use crate::runner::Evaluation;
use crate::scan::cache::PartitionCache;

/// The store version this vigil writes (and the newest it reads).
pub const VERSION: i32 = MIGRATIONS.len() as i32;

/// Why the store cannot be used. Every variant names the store (a file, or a database URL
/// without its password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateError {
    /// `vigil silence list` or `history` on a store that does not exist.
    Missing(Location),
    /// The store cannot be opened, created or reached.
    Open(Location, String),
    /// The store is not a vigil state store, or is corrupt.
    NotAStore(Location, String),
    /// The store was written by a newer vigil.
    Newer(Location, i32),
    /// Another run held the store longer than the busy timeout.
    Busy(Location),
    /// A query failed.
    Sql(Location, String),
}

impl StateError {
    /// What a database error means for the store at `location`.
    fn of(location: &Location, e: DbError) -> StateError {
        let at = location.clone();
        match e.kind {
            DbErrorKind::Missing => StateError::Missing(at),
            DbErrorKind::Open => StateError::Open(at, e.message),
            DbErrorKind::NotAStore => StateError::NotAStore(at, e.message),
            DbErrorKind::Newer(v) => StateError::Newer(at, v),
            DbErrorKind::Busy => StateError::Busy(at),
            DbErrorKind::Other => StateError::Sql(at, e.message),
        }
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Missing(p) => write!(
                f,
                "state store {p} does not exist (a `vigil run` with the same --state or --output_dir creates it)"
            ),
            StateError::Open(p, e) => write!(f, "cannot open the state store {p}: {e}"),
            StateError::NotAStore(p, e) => write!(
                f,
                "{p} is not a usable vigil state store ({e}); vigil never recreates it: move it away to start a new history, or restore it from a backup"
            ),
            StateError::Newer(p, v) => write!(
                f,
                "the state store {p} was written by a newer vigil (store version {v}, this vigil reads up to {VERSION}); upgrade vigil"
            ),
            StateError::Busy(p) => write!(
                f,
                "the state store {p} stayed locked by another vigil for {} s; try again when it finishes",
                BUSY_TIMEOUT.as_secs()
            ),
            StateError::Sql(p, e) => write!(f, "state store {p}: {e}"),
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
    location: Location,
    db: Mutex<Box<dyn Db>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({})", self.location)
    }
}

/// A store's text that is not what vigil writes.
fn damaged(what: String) -> DbError {
    DbError::new(DbErrorKind::NotAStore, what)
}

fn severity(s: &str) -> Result<Severity, DbError> {
    match s {
        "ERROR" => Ok(Severity::Error),
        "WARN" => Ok(Severity::Warn),
        "INFO" => Ok(Severity::Info),
        other => Err(damaged(format!("unknown severity `{other}`"))),
    }
}

fn date(s: &str) -> Result<NaiveDate, DbError> {
    s.parse()
        .map_err(|_| damaged(format!("`{s}` is not a date")))
}

/// A count as a 64-bit integer parameter.
fn count(n: usize) -> Param<'static> {
    Param::Int(Some(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// A finite number, else NULL.
fn finite(v: Option<f64>) -> Param<'static> {
    Param::Real(v.filter(|v| v.is_finite()))
}

impl Store {
    /// Opens the store at `location` (a SQLite file, or a database URL such as
    /// `postgres://...`), creating it when `create` and it does not exist, and migrating it to
    /// [`VERSION`].
    pub fn open(location: &Location, create: bool) -> Result<Store, StateError> {
        let opened: Result<Box<dyn Db>, DbError> = match location {
            Location::File(path) => {
                Sqlite::open(path, create).map(|db| Box::new(db) as Box<dyn Db>)
            }
            Location::Url(url) => db::connect(url, create),
        };
        let mut db = opened.map_err(|e| StateError::of(location, e))?;
        db.migrate().map_err(|e| StateError::of(location, e))?;
        Ok(Store {
            location: location.clone(),
            db: Mutex::new(db),
        })
    }

    /// Where the store is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    fn db(&self) -> MutexGuard<'_, Box<dyn Db>> {
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the connection; its error names the store.
    fn with<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T, DbError>) -> Result<T, StateError> {
        let mut db = self.db();
        f(db.as_mut()).map_err(|e| StateError::of(&self.location, e))
    }

    /// Runs `f` in one write transaction: all of it is committed, or nothing.
    fn transaction<T>(
        &self,
        f: impl FnOnce(&mut dyn Db) -> Result<T, DbError>,
    ) -> Result<T, StateError> {
        self.with(|db| {
            db.begin()?;
            let done = f(db).and_then(|v| db.commit().map(|()| v));
            if done.is_err() {
                let _ = db.rollback();
            }
            done
        })
    }

    /// What a run of `warehouse_id` needs to know: open incidents, silences (the stored ones
    /// and `declared` in the config), the latest run's partition and each table's columns.
    pub fn previous(
        &self,
        warehouse_id: &str,
        declared: &[Silence],
    ) -> Result<Previous, StateError> {
        self.with(|db| {
            let rows = db.query(
                "SELECT id, fingerprint, rule, check_id, subject, severity, first_seen, last_seen,
                        runs, notified, reminded, message
                 FROM incidents WHERE warehouse_id = $1 AND status = 'open' ORDER BY id",
                &[warehouse_id.into()],
            )?;
            let open = rows
                .iter()
                .map(|r| {
                    Ok(Incident {
                        id: Some(r.int(0)?),
                        fingerprint: r.text(1)?,
                        rule: r.text(2)?,
                        check: r.text(3)?,
                        subject: r.opt_text(4)?,
                        severity: severity(&r.text(5)?)?,
                        first_seen: date(&r.text(6)?)?,
                        last_seen: date(&r.text(7)?)?,
                        runs: r.count(8)?,
                        notified: r.opt_text(9)?.map(|s| severity(&s)).transpose()?,
                        reminded: r.opt_text(10)?.map(|s| date(&s)).transpose()?,
                        message: r.text(11)?,
                    })
                })
                .collect::<Result<Vec<_>, DbError>>()?;
            let mut silences = silences_in(db, false)?;
            for d in declared {
                if !silences.iter().any(|s| same_silence(s, d)) {
                    silences.push(d.clone());
                }
            }
            let latest = db.query(
                "SELECT max(expected_date) FROM runs WHERE warehouse_id = $1",
                &[warehouse_id.into()],
            )?;
            let latest = match latest.first() {
                Some(row) => row.opt_text(0)?.map(|d| date(&d)).transpose()?,
                None => None,
            };
            let mut columns = BTreeMap::new();
            let rows = db.query(
                "SELECT table_name, columns FROM table_columns WHERE warehouse_id = $1",
                &[warehouse_id.into()],
            )?;
            for row in rows {
                let (table, list) = (row.text(0)?, row.text(1)?);
                let list: Vec<(String, String)> = serde_json::from_str(&list)
                    .map_err(|err| damaged(format!("columns of {table}: {err}")))?;
                columns.insert(table, list);
            }
            Ok(Previous {
                open,
                silences,
                latest,
                columns,
            })
        })
    }

    /// Adds a silence; returns its id.
    pub fn add_silence(&self, silence: &Silence, now: DateTime<Utc>) -> Result<i64, StateError> {
        let (until, now) = (silence.until.to_string(), now.to_rfc3339());
        self.with(|db| {
            let rows = db.query(
                "INSERT INTO silences (check_id, subject, until, reason, created, created_by, origin)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    (&silence.check).into(),
                    (&silence.subject).into(),
                    until.as_str().into(),
                    (&silence.reason).into(),
                    now.as_str().into(),
                    (&silence.created_by).into(),
                    silence.origin.into(),
                ],
            )?;
            rows.first()
                .ok_or_else(|| DbError::new(DbErrorKind::Other, "the insert returned no id"))?
                .int(0)
        })
    }

    /// The silences not removed.
    pub fn silences(&self) -> Result<Vec<Silence>, StateError> {
        self.with(|db| silences_in(db, false))
    }

    /// Removes a silence (kept, marked removed); `false` when no such silence is active.
    pub fn remove_silence(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StateError> {
        let now = now.to_rfc3339();
        let changed = self.with(|db| {
            db.execute(
                "UPDATE silences SET removed = $2 WHERE id = $1 AND removed IS NULL",
                &[id.into(), now.as_str().into()],
            )
        })?;
        Ok(changed == 1)
    }

    /// The runs since `since` (all warehouses), oldest first.
    pub fn runs(&self, since: Option<NaiveDate>) -> Result<Vec<RunRow>, StateError> {
        let since = since.map_or(String::new(), |d| d.to_string());
        self.with(|db| {
            db.query(
                "SELECT id, warehouse_id, started, expected_date, verdict, errors, warnings, infos
                 FROM runs WHERE expected_date >= $1 ORDER BY started, id",
                &[since.as_str().into()],
            )?
            .iter()
            .map(|r| {
                Ok(RunRow {
                    id: r.text(0)?,
                    warehouse_id: r.text(1)?,
                    started: r.text(2)?,
                    expected_date: r.text(3)?,
                    verdict: r.text(4)?,
                    counts: [r.count(5)?, r.count(6)?, r.count(7)?],
                })
            })
            .collect()
        })
    }

    /// The incidents seen since `since` whose check (or fingerprint) is `check`, oldest first.
    pub fn incidents(
        &self,
        check: Option<&str>,
        since: Option<NaiveDate>,
    ) -> Result<Vec<IncidentRow>, StateError> {
        let since = since.map_or(String::new(), |d| d.to_string());
        self.with(|db| {
            db.query(
                "SELECT id, warehouse_id, status, fingerprint, check_id, severity, first_seen,
                        last_seen, runs, resolved_on, message
                 FROM incidents
                 WHERE last_seen >= $1
                   AND (CAST($2 AS TEXT) IS NULL OR check_id = $2 OR fingerprint = $2)
                 ORDER BY id",
                &[since.as_str().into(), check.into()],
            )?
            .iter()
            .map(|r| {
                Ok(IncidentRow {
                    id: r.int(0)?,
                    warehouse_id: r.text(1)?,
                    status: r.text(2)?,
                    fingerprint: r.text(3)?,
                    check: r.text(4)?,
                    severity: r.text(5)?,
                    first_seen: r.text(6)?,
                    last_seen: r.text(7)?,
                    runs: r.count(8)?,
                    resolved_on: r.opt_text(9)?,
                    message: r.text(10)?,
                })
            })
            .collect()
        })
    }

    /// The values earlier runs of `warehouse_id` judged for `metrics` (the latest run of each
    /// partition), oldest first.
    pub fn judged(
        &self,
        warehouse_id: &str,
        metrics: &BTreeSet<&str>,
    ) -> Result<BTreeMap<String, Vec<StoredPoint>>, StateError> {
        self.with(|db| {
            let rows = db.query(
                "SELECT o.metric, o.day, o.value, o.flagged
                 FROM observations AS o JOIN runs AS r ON r.id = o.run_id
                 WHERE r.warehouse_id = $1
                 ORDER BY o.metric, o.day, r.started",
                &[warehouse_id.into()],
            )?;
            let mut out: BTreeMap<String, Vec<StoredPoint>> = BTreeMap::new();
            for row in rows {
                let metric = row.text(0)?;
                if !metrics.contains(metric.as_str()) {
                    continue;
                }
                let point = StoredPoint {
                    day: date(&row.text(1)?)?,
                    value: row.opt_real(2)?.unwrap_or(f64::NAN),
                    flagged: row.int(3)? != 0,
                };
                let points = out.entry(metric).or_default();
                // A later run of the same partition replaces the earlier one.
                match points.last_mut() {
                    Some(last) if last.day == point.day => *last = point,
                    _ => points.push(point),
                }
            }
            Ok(out)
        })
    }

    /// Writes a run in one transaction: the run, its findings and judged metrics, the metric
    /// series that changed, the tables' columns, the incidents, the silences declared in the
    /// config and the expiries reported, and the partition results.
    pub fn commit(&self, record: &RunRecord<'_>, declared: &[Silence]) -> Result<(), StateError> {
        self.transaction(|db| write_run(db, record, declared))
    }
}

/// The silences (with `all`, removed ones too), stored order.
fn silences_in(db: &mut dyn Db, all: bool) -> Result<Vec<Silence>, DbError> {
    let sql = if all {
        "SELECT id, check_id, subject, until, reason, created_by, expiry_reported, origin
         FROM silences ORDER BY id"
    } else {
        "SELECT id, check_id, subject, until, reason, created_by, expiry_reported, origin
         FROM silences WHERE removed IS NULL ORDER BY id"
    };
    db.query(sql, &[])?
        .iter()
        .map(|r| {
            Ok(Silence {
                id: Some(r.int(0)?),
                check: r.text(1)?,
                subject: r.opt_text(2)?,
                until: date(&r.text(3)?)?,
                reason: r.text(4)?,
                created_by: r.text(5)?,
                expiry_reported: r.int(6)? != 0,
                origin: if r.text(7)? == "config" {
                    "config"
                } else {
                    "store"
                },
            })
        })
        .collect()
}

/// The statements of [`Store::commit`], inside its transaction.
fn write_run(db: &mut dyn Db, record: &RunRecord<'_>, declared: &[Silence]) -> Result<(), DbError> {
    let eval = record.eval;
    let finished = Utc::now().to_rfc3339();
    let started = record.started.to_rfc3339();
    let day = eval.expected_date.to_string();
    db.execute(
        "INSERT INTO runs (id, warehouse_id, warehouse, started, finished, config_hash,
                           expected_date, scope, verdict, errors, warnings, infos,
                           vigil_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[
            record.run_id.into(),
            record.warehouse_id.into(),
            record.warehouse.into(),
            started.as_str().into(),
            finished.as_str().into(),
            record.config_hash.into(),
            day.as_str().into(),
            eval.scope.as_str().into(),
            record.verdict.into(),
            count(eval.count(Severity::Error)),
            count(eval.count(Severity::Warn)),
            count(eval.count(Severity::Info)),
            env!("CARGO_PKG_VERSION").into(),
        ],
    )?;
    // Incidents first: findings point at them.
    let mut ids: BTreeMap<&str, i64> = BTreeMap::new();
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
                db.execute(
                    "UPDATE incidents SET status = 'resolved', resolved_run = $2,
                            resolved_on = $3 WHERE id = $1",
                    &[id.into(), record.run_id.into(), day.as_str().into()],
                )?;
            }
            (Some(id), _) => {
                let last_seen = i.last_seen.to_string();
                db.execute(
                    "UPDATE incidents SET severity = $2, last_seen = $3, runs = $4,
                            last_run = $5, notified = $6, reminded = $7, message = $8
                     WHERE id = $1",
                    &[
                        id.into(),
                        i.severity.label().into(),
                        last_seen.as_str().into(),
                        i64::from(i.runs).into(),
                        record.run_id.into(),
                        notified.into(),
                        (&reminded).into(),
                        (&i.message).into(),
                    ],
                )?;
                ids.insert(print, id);
            }
            (None, _) => {
                // Another run may have opened it meanwhile: then this run's finding joins it.
                let rows = db.query(
                    "INSERT INTO incidents (warehouse_id, fingerprint, rule, check_id,
                         subject, severity, status, first_seen, last_seen, runs,
                         opened_run, last_run, notified, reminded, message)
                     VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $7, 1, $8, $8, $9, $10,
                             $11)
                     ON CONFLICT (warehouse_id, fingerprint) WHERE status = 'open'
                     DO UPDATE SET last_run = excluded.last_run
                     RETURNING id",
                    &[
                        record.warehouse_id.into(),
                        print.into(),
                        (&i.rule).into(),
                        (&i.check).into(),
                        (&i.subject).into(),
                        i.severity.label().into(),
                        day.as_str().into(),
                        record.run_id.into(),
                        notified.into(),
                        (&reminded).into(),
                        (&i.message).into(),
                    ],
                )?;
                let id = rows
                    .first()
                    .ok_or_else(|| DbError::new(DbErrorKind::Other, "the insert returned no id"))?
                    .int(0)?;
                ids.insert(print, id);
            }
        }
    }
    for f in &eval.findings {
        let print = fingerprint(f);
        let silence = record
            .lifecycle
            .tracked
            .get(&print)
            .and_then(|t| t.silence.as_ref())
            .and_then(|s| s.id);
        let partition = f.partition_date.map(|d| d.to_string());
        db.execute(
            "INSERT INTO findings (run_id, fingerprint, severity, rule, check_id, subject,
                 partition_date, message, value, threshold, incident_id, silence_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                record.run_id.into(),
                print.as_str().into(),
                f.severity.label().into(),
                (&f.rule).into(),
                (&f.check).into(),
                (&f.subject).into(),
                (&partition).into(),
                (&f.message).into(),
                finite(f.value),
                finite(f.threshold),
                ids.get(print.as_str()).copied().into(),
                silence.into(),
            ],
        )?;
    }
    for o in &eval.observations {
        let day = o.day.to_string();
        db.execute(
            "INSERT INTO observations (run_id, metric, day, value, center, spread, z,
                 flagged) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                record.run_id.into(),
                (&o.metric).into(),
                day.as_str().into(),
                finite(Some(o.value)),
                finite(o.baseline.map(|b| b.0)),
                finite(o.baseline.map(|b| b.1)),
                finite(o.z),
                i64::from(o.flagged).into(),
            ],
        )?;
    }
    for scan in &eval.scans {
        for (request, value) in &scan.metrics {
            if let Ok(value) = value {
                let (request, series) = (request.to_string(), series(value).to_string());
                db.execute(
                    "INSERT INTO metric_series (warehouse_id, table_name, request, series, run_id)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (warehouse_id, table_name, request) DO UPDATE
                     SET series = excluded.series, run_id = excluded.run_id
                     WHERE metric_series.series IS DISTINCT FROM excluded.series",
                    &[
                        record.warehouse_id.into(),
                        (&scan.table).into(),
                        request.as_str().into(),
                        series.as_str().into(),
                        record.run_id.into(),
                    ],
                )?;
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
            db.execute(
                "INSERT INTO table_columns (warehouse_id, table_name, columns, run_id)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (warehouse_id, table_name) DO UPDATE
                 SET columns = excluded.columns, run_id = excluded.run_id",
                &[
                    record.warehouse_id.into(),
                    (&scan.table).into(),
                    list.as_str().into(),
                    record.run_id.into(),
                ],
            )?;
        }
    }
    let stored = silences_in(db, true)?;
    for d in declared {
        if !stored.iter().any(|s| same_silence(s, d)) {
            let until = d.until.to_string();
            db.execute(
                "INSERT INTO silences (check_id, subject, until, reason, created, created_by,
                     origin) VALUES ($1, $2, $3, $4, $5, 'config', 'config')",
                &[
                    (&d.check).into(),
                    (&d.subject).into(),
                    until.as_str().into(),
                    (&d.reason).into(),
                    finished.as_str().into(),
                ],
            )?;
        }
    }
    for s in &record.lifecycle.expired {
        let until = s.until.to_string();
        db.execute(
            "UPDATE silences SET expiry_reported = 1
             WHERE check_id = $1 AND subject IS NOT DISTINCT FROM $2 AND until = $3
               AND reason = $4",
            &[
                (&s.check).into(),
                (&s.subject).into(),
                until.as_str().into(),
                (&s.reason).into(),
            ],
        )?;
    }
    if let Some(cache) = record.cache {
        cache.write(db, record.run_id)?;
    }
    Ok(())
}

/// Whether two silences say the same (a config silence and its stored copy).
fn same_silence(a: &Silence, b: &Silence) -> bool {
    a.check == b.check && a.subject == b.subject && a.until == b.until && a.reason == b.reason
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
    fn write(&self, db: &mut dyn Db, run_id: &str) -> Result<(), DbError> {
        let puts = std::mem::take(&mut *self.puts.lock().unwrap_or_else(PoisonError::into_inner));
        for (table, key, bytes) in &puts {
            db.execute(
                "INSERT INTO partition_cache (warehouse_id, table_name, key, bytes, run_id)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (warehouse_id, table_name, key) DO UPDATE
                 SET bytes = excluded.bytes, run_id = excluded.run_id",
                &[
                    (&self.warehouse_id).into(),
                    table.into(),
                    key.into(),
                    bytes.as_slice().into(),
                    run_id.into(),
                ],
            )?;
        }
        let touched = self.touched.lock().unwrap_or_else(PoisonError::into_inner);
        for (table, used) in touched.iter() {
            let keys = db.query(
                "SELECT key FROM partition_cache WHERE warehouse_id = $1 AND table_name = $2",
                &[(&self.warehouse_id).into(), table.into()],
            )?;
            for row in keys {
                let key = row.text(0)?;
                if !used.contains(&key) {
                    db.execute(
                        "DELETE FROM partition_cache
                         WHERE warehouse_id = $1 AND table_name = $2 AND key = $3",
                        &[
                            (&self.warehouse_id).into(),
                            table.into(),
                            key.as_str().into(),
                        ],
                    )?;
                }
            }
        }
        Ok(())
    }
}

impl PartitionCache for CacheView<'_> {
    fn get(&self, table: &str, key: &str) -> Option<Vec<u8>> {
        self.touch(table, key);
        let rows: Vec<Row> = self
            .store
            .with(|db| {
                db.query(
                    "SELECT bytes FROM partition_cache
                     WHERE warehouse_id = $1 AND table_name = $2 AND key = $3",
                    &[(&self.warehouse_id).into(), table.into(), key.into()],
                )
            })
            .ok()?;
        rows.first()?.bytes(0).ok()
    }

    fn put(&self, table: &str, key: &str, bytes: Vec<u8>) {
        self.touch(table, key);
        self.puts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((table.to_string(), key.to_string(), bytes));
    }
}
