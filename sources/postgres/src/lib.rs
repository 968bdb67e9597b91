//! vigil's PostgreSQL source: `--warehouse postgres://user@host:port/db` (or `postgresql://`).
//!
//! Each table's requests become one query (planned by [`vigil_engine::sql`]) run in a
//! read-only transaction with a statement timeout; only aggregates come back. A table's
//! relation is its file's stem or its `relation:` (optionally `schema.table`); its lookups are
//! joins. The location may carry `statement_timeout=SECONDS` (default 300) and any libpq
//! parameter the `postgres` crate reads (`connect_timeout`, default 10 s; `sslmode`, ...). A
//! password comes from the URL, `PGPASSWORD` or `VIGIL_WAREHOUSE`, and is never printed.
//!
//! It also holds state stores (`--state postgres://...`) in a database's schema `vigil_state`
//! (see [`state`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDate;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::Type;
use postgres::{Client, NoTls, Row};
use vigil_engine::config::TableConfig;
use vigil_engine::scan::pushed::{assemble, bind, FailedLookup};
use vigil_engine::scan::{ScanInput, TableProblem, TableScan};
use vigil_engine::source::{redact, RowSink, SchemeRegistration, Source};
use vigil_engine::sql::{self, Join, Kind, Param, Relation, Value};

pub mod state;

inventory::submit! {
    SchemeRegistration {
        schemes: &["postgres", "postgresql"],
        connect,
    }
}

/// A PostgreSQL database as a warehouse.
pub struct PostgresSource {
    config: postgres::Config,
    shown: String,
    statement_timeout: Duration,
}

/// Opens the source and checks that the database answers.
fn connect(location: &str) -> Result<Box<dyn Source>, String> {
    let shown = redact(location);
    let (location, statement_timeout) = take_param(location, "statement_timeout");
    let statement_timeout = match statement_timeout {
        None => Duration::from_secs(300),
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("{shown}: statement_timeout must be a number of seconds"))?,
    };
    let config = client_config(&location, &shown)?;
    let source = PostgresSource {
        shown,
        statement_timeout,
        config,
    };
    source.client()?;
    Ok(Box::new(source))
}

/// The connection settings of a location shown as `shown`: a connect timeout of 10 s unless
/// it sets one, the password from `PGPASSWORD` unless it has one.
fn client_config(location: &str, shown: &str) -> Result<postgres::Config, String> {
    let mut config = postgres::Config::from_str(location).map_err(|e| {
        format!(
            "{shown} is not a PostgreSQL location: {}",
            scrub(&e.to_string(), location)
        )
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_password().is_none() {
        if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        }
    }
    Ok(config)
}

/// Where the server is, for messages: host, port, database, user (never the password).
fn whereabouts(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(h) => h.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "PostgreSQL at {host}:{port}, database `{}` as user `{}`",
        config.get_dbname().unwrap_or("(default)"),
        config.get_user().unwrap_or("(default)")
    )
}

/// The location without parameter `name`, and its value.
fn take_param(location: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = location.split_once('?') else {
        return (location.to_string(), None);
    };
    let mut value = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.split_once('=') {
            Some((k, v)) if k == name => {
                value = Some(v.to_string());
                false
            }
            _ => true,
        })
        .collect();
    let location = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (location, value)
}

/// A message with the location's password (if any) taken out.
fn scrub(message: &str, location: &str) -> String {
    match postgres::Config::from_str(location).ok().and_then(|c| {
        c.get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }) {
        Some(password) if !password.is_empty() => message.replace(&password, "***"),
        _ => message.to_string(),
    }
}

impl PostgresSource {
    /// A new connection.
    fn client(&self) -> Result<Client, String> {
        self.config.connect(NoTls).map_err(|e| {
            format!(
                "cannot connect to {}: {}",
                whereabouts(&self.config),
                explain(&e)
            )
        })
    }

    /// The relation's typed columns, `None` when it does not exist.
    fn relation(
        tx: &mut postgres::Transaction<'_>,
        name: &str,
    ) -> Result<Option<Relation>, postgres::Error> {
        let quoted = name
            .split('.')
            .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(".");
        let exists: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&quoted])?
            .get(0);
        if !exists {
            return Ok(None);
        }
        let rows = tx.query(
            "SELECT a.attname::text, t.typname::text FROM pg_attribute a \
             JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&quoted],
        )?;
        let columns = rows
            .iter()
            .map(|r| {
                let kind = match r.get::<_, String>(1).as_str() {
                    "text" | "varchar" | "bpchar" | "name" | "citext" => Kind::Text,
                    "int2" | "int4" | "int8" => Kind::Integer,
                    "float4" | "float8" => Kind::Float,
                    "numeric" => Kind::Decimal,
                    "timestamptz" => Kind::TimestampTz,
                    "timestamp" => Kind::Timestamp,
                    "date" => Kind::Date,
                    _ => Kind::Other,
                };
                (r.get::<_, String>(0), kind)
            })
            .collect();
        Ok(Some(Relation {
            name: name.to_string(),
            columns,
        }))
    }

    /// The relation of a table, its joins and the lookups it cannot join, `None` when the
    /// relation does not exist. A lookup joins only when the looked-up relation has its key
    /// and every column it takes, as the CSV scan's lookup index.
    fn tables(
        tx: &mut postgres::Transaction<'_>,
        table: &TableConfig,
        input: &ScanInput<'_>,
    ) -> Result<Option<Tables>, postgres::Error> {
        let Some(relation) = Self::relation(tx, table.relation())? else {
            return Ok(None);
        };
        let (joins, failed) = sql::joins(table, input.tables, |name| Self::relation(tx, name))?;
        Ok(Some(Tables {
            relation,
            joins,
            failed,
        }))
    }

    /// A read-only transaction with the statement timeout.
    fn transaction<'c>(
        &self,
        client: &'c mut Client,
    ) -> Result<postgres::Transaction<'c>, postgres::Error> {
        let mut tx = client.build_transaction().read_only(true).start()?;
        tx.batch_execute(&format!(
            "SET LOCAL statement_timeout = {}",
            self.statement_timeout.as_millis().max(1)
        ))?;
        Ok(tx)
    }
}

/// A table's relation, its joins and the lookups it cannot join.
struct Tables {
    relation: Relation,
    joins: Vec<Join>,
    failed: Vec<FailedLookup>,
}

/// A driver error as people read it: the server's message when it sent one.
fn explain(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// A result row's values.
fn values(row: &Row) -> Vec<Value> {
    (0..row.len())
        .map(|i| {
            let t = row.columns()[i].type_();
            let value = if *t == Type::INT8 {
                row.get::<_, Option<i64>>(i).map(Value::Int)
            } else if *t == Type::INT4 {
                row.get::<_, Option<i32>>(i).map(|v| Value::Int(v.into()))
            } else if *t == Type::FLOAT8 {
                row.get::<_, Option<f64>>(i).map(Value::Float)
            } else if *t == Type::DATE {
                row.get::<_, Option<chrono::NaiveDate>>(i).map(Value::Date)
            } else if *t == Type::TEXT_ARRAY {
                row.get::<_, Option<Vec<Option<String>>>>(i)
                    .map(Value::TextArray)
            } else {
                row.get::<_, Option<String>>(i).map(Value::Text)
            };
            value.unwrap_or(Value::Null)
        })
        .collect()
}

impl Source for PostgresSource {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn scan(&self, name: &str, table: &TableConfig, input: ScanInput<'_>) -> TableScan {
        let location = PathBuf::from(table.relation());
        let run = || -> Result<Result<TableScan, TableProblem>, String> {
            let mut client = self.client()?;
            let mut tx = self
                .transaction(&mut client)
                .map_err(|e| format!("{}: {}", whereabouts(&self.config), explain(&e)))?;
            let found = Self::tables(&mut tx, table, &input)
                .map_err(|e| format!("{}: {}", whereabouts(&self.config), explain(&e)))?;
            let Some(Tables {
                relation,
                joins,
                failed,
            }) = found
            else {
                return Ok(Err(TableProblem::Missing));
            };
            let header = sql::header(&relation, &joins);
            let types = sql::column_types(&relation, &joins);
            let binding = bind(header, table, input.requests, &failed);
            let query = sql::plan(&sql::Postgres, table, &relation, &joins, &binding);
            let params: Vec<Box<dyn postgres::types::ToSql + Sync>> = query
                .params
                .iter()
                .map(|p| match p {
                    Param::Text(t) => Box::new(t.clone()) as Box<dyn postgres::types::ToSql + Sync>,
                    Param::Number(n) => Box::new(*n),
                })
                .collect();
            let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                params.iter().map(|p| p.as_ref()).collect();
            let computed = tx
                .query(&query.sql, &refs)
                .map(|rows| query.decode(&rows.iter().map(values).collect::<Vec<_>>()))
                .map_err(|e| TableProblem::Source(format!("the query failed: {}", explain(&e))));
            let _ = tx.rollback();
            let mut scan = assemble(name, location.clone(), binding, computed, input);
            if let Ok(stats) = &mut scan.outcome {
                stats.column_types = types;
            }
            Ok(Ok(scan))
        };
        let problem = match run() {
            Ok(Ok(scan)) => return scan,
            Ok(Err(problem)) => problem,
            // The server itself failed (not this table): the run cannot judge.
            Err(message) => TableProblem::Source(message),
        };
        assemble(
            name,
            location,
            bind(Vec::new(), table, input.requests, &[]),
            Err(problem),
            input,
        )
    }

    fn header(&self, table: &TableConfig) -> Result<Vec<String>, TableProblem> {
        let mut client = self.client().map_err(TableProblem::Source)?;
        let mut tx = self
            .transaction(&mut client)
            .map_err(|e| TableProblem::Source(explain(&e)))?;
        match Self::tables(&mut tx, table, &ScanInput::default()) {
            Ok(Some(tables)) => Ok(sql::header(&tables.relation, &tables.joins)),
            Ok(None) => Err(TableProblem::Missing),
            Err(e) => Err(TableProblem::Source(explain(&e))),
        }
    }

    fn joins_lookups(&self) -> bool {
        true
    }

    fn export_rows(
        &self,
        table: &TableConfig,
        tables: &BTreeMap<String, TableConfig>,
        day: Option<NaiveDate>,
        sink: &mut dyn RowSink,
    ) -> Result<(), TableProblem> {
        let failed = |e: postgres::Error| {
            TableProblem::Source(format!("{}: {}", whereabouts(&self.config), explain(&e)))
        };
        let mut client = self.client().map_err(TableProblem::Source)?;
        let cancel = client.cancel_token();
        let mut tx = self.transaction(&mut client).map_err(failed)?;
        // Timestamps with time zone as text in UTC, which the CSV grammar reads back.
        tx.batch_execute("SET LOCAL TimeZone = 'UTC'")
            .map_err(failed)?;
        let input = ScanInput {
            tables: Some(tables),
            ..ScanInput::default()
        };
        let Some(found) = Self::tables(&mut tx, table, &input).map_err(failed)? else {
            return Err(TableProblem::Missing);
        };
        let (query, params) =
            sql::partition_rows(&sql::Postgres, table, &found.relation, &found.joins, day);
        let header: Vec<Option<&str>> = found
            .relation
            .columns
            .iter()
            .map(|(c, _)| Some(c.as_str()))
            .collect();
        if sink.row(&header).is_break() {
            return Ok(());
        }
        let params: Vec<String> = params
            .into_iter()
            .map(|p| match p {
                Param::Text(t) => t,
                Param::Number(n) => n.to_string(),
            })
            .collect();
        let mut rows = tx.query_raw(&query, &params).map_err(failed)?;
        while let Some(row) = rows.next().map_err(failed)? {
            let cells: Vec<Option<&str>> = (0..row.len()).map(|i| row.get(i)).collect();
            if sink.row(&cells).is_break() {
                // Stop the server rather than read the rest of the rows.
                let _ = cancel.cancel_query(NoTls);
                return Ok(());
            }
        }
        drop(rows);
        let _ = tx.rollback();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vigil_parameters_are_taken_out_of_the_location() {
        assert_eq!(
            take_param(
                "postgres://h/db?statement_timeout=5&sslmode=disable",
                "statement_timeout"
            ),
            (
                "postgres://h/db?sslmode=disable".to_string(),
                Some("5".to_string())
            )
        );
        assert_eq!(
            take_param("postgres://h/db?statement_timeout=5", "statement_timeout"),
            ("postgres://h/db".to_string(), Some("5".to_string()))
        );
    }

    #[test]
    fn an_unreachable_server_is_named_without_the_password() {
        let started = std::time::Instant::now();
        // Port 1 on loopback: refused at once.
        let err = connect("postgres://vigil:s3cret@127.0.0.1:1/wh?connect_timeout=3")
            .err()
            .unwrap();
        assert!(
            err.starts_with(
                "cannot connect to PostgreSQL at 127.0.0.1:1, database `wh` as user `vigil`"
            ),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
