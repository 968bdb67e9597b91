//! The state store in a PostgreSQL database (`--state postgres://user@host:port/db`), for
//! teams that run vigil from several machines: the store's tables live in the schema
//! `vigil_state` (created on the first run), whose table `vigil_version` says it is vigil's
//! and which version it is. A schema of that name that is not vigil's, or a newer version, is
//! refused, never recreated. Commits take a transaction-level advisory lock, so runs at once
//! write one after the other (waiting at most the busy timeout). The password comes from the
//! URL or `PGPASSWORD` and is never printed.

use std::collections::HashMap;

use postgres::error::SqlState;
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls, Statement};
use vigil_engine::source::redact;
use vigil_engine::state::db::{
    Cell, Db, DbError, DbErrorKind, Dialect, Param, Row, StoreRegistration, BUSY_TIMEOUT,
    MIGRATIONS, POSTGRES_SCHEMA,
};

use crate::{client_config, explain, whereabouts};

inventory::submit! {
    StoreRegistration {
        schemes: &["postgres", "postgresql"],
        connect,
    }
}

/// What `vigil_version.application` says in vigil's schema.
const APPLICATION: &str = "vigil";

/// The advisory lock a write transaction takes ("VIGL").
const LOCK_KEY: i64 = 0x5649_474C;

/// A state store in a PostgreSQL database.
pub struct PostgresStore {
    client: Client,
    /// The prepared statements, by their SQL.
    statements: HashMap<String, Statement>,
}

/// Connects to the store at `url`; with `create` false, a database without the schema is
/// [`DbErrorKind::Missing`].
fn connect(url: &str, create: bool) -> Result<Box<dyn Db>, DbError> {
    let open = |m: String| DbError::new(DbErrorKind::Open, m);
    let config = client_config(url, &redact(url)).map_err(open)?;
    let client = config.connect(NoTls).map_err(|e| {
        open(format!(
            "cannot connect to {}: {}",
            whereabouts(&config),
            explain(&e)
        ))
    })?;
    let mut store = PostgresStore {
        client,
        statements: HashMap::new(),
    };
    store
        .client
        .batch_execute(&format!(
            "SET search_path TO {POSTGRES_SCHEMA}; SET lock_timeout = '{}s'",
            BUSY_TIMEOUT.as_secs()
        ))
        .map_err(|e| store.error(&e))?;
    if !create && !store.schema_exists()? {
        return Err(DbError::new(DbErrorKind::Missing, "it does not exist"));
    }
    Ok(Box::new(store))
}

impl PostgresStore {
    /// What a driver error means for the user.
    fn error(&self, e: &postgres::Error) -> DbError {
        let kind = match e.code() {
            Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE => DbErrorKind::Busy,
            _ if e.is_closed() => DbErrorKind::Open,
            _ => DbErrorKind::Other,
        };
        DbError::new(kind, explain(e))
    }

    fn schema_exists(&mut self) -> Result<bool, DbError> {
        let found = self.count(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[POSTGRES_SCHEMA.into()],
        )?;
        Ok(found > 0)
    }

    /// A count from a query.
    fn count(&mut self, sql: &str, params: &[Param<'_>]) -> Result<i64, DbError> {
        let rows = self.query(sql, params)?;
        rows.first().map_or(Ok(0), |r| r.int(0))
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, DbError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).map_err(|e| self.error(&e))?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn create_version_table(&mut self) -> Result<(), DbError> {
        self.client
            .batch_execute(&format!(
                "CREATE TABLE vigil_version (application TEXT NOT NULL, version BIGINT NOT NULL);
                 INSERT INTO vigil_version VALUES ('{APPLICATION}', 0);"
            ))
            .map_err(|e| self.error(&e))
    }
}

/// A parameter as the driver binds it (a NULL keeps its type).
fn bound<'a>(p: &'a Param<'a>) -> &'a (dyn ToSql + Sync) {
    match p {
        Param::Int(v) => v,
        Param::Real(v) => v,
        Param::Text(v) => v,
        Param::Bytes(v) => v,
    }
}

/// A result cell by its column type.
fn cell(row: &postgres::Row, i: usize) -> Result<Cell, postgres::Error> {
    let t = row.columns()[i].type_();
    let cell = if *t == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?.map(Cell::Int)
    } else if *t == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?
            .map(|v| Cell::Int(v.into()))
    } else if *t == Type::INT2 {
        row.try_get::<_, Option<i16>>(i)?
            .map(|v| Cell::Int(v.into()))
    } else if *t == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)?
            .map(|v| Cell::Int(v.into()))
    } else if *t == Type::FLOAT8 {
        row.try_get::<_, Option<f64>>(i)?.map(Cell::Real)
    } else if *t == Type::FLOAT4 {
        row.try_get::<_, Option<f32>>(i)?
            .map(|v| Cell::Real(v.into()))
    } else if *t == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(i)?.map(Cell::Bytes)
    } else {
        row.try_get::<_, Option<String>>(i)?.map(Cell::Text)
    };
    Ok(cell.unwrap_or(Cell::Null))
}

impl Db for PostgresStore {
    fn migrate_in_transaction(&mut self) -> Result<(), DbError> {
        let foreign = |what: &str| {
            DbError::new(
                DbErrorKind::NotAStore,
                format!("its schema `{POSTGRES_SCHEMA}` {what}, it is not vigil's"),
            )
        };
        let version = if self.schema_exists()? {
            let versioned = self.count(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relname = 'vigil_version'",
                &[POSTGRES_SCHEMA.into()],
            )? > 0;
            if versioned {
                let rows = self.query("SELECT application, version FROM vigil_version", &[])?;
                match rows.as_slice() {
                    [row] if row.text(0)? == APPLICATION => row.int(1)?,
                    _ => return Err(foreign("has another `vigil_version` table")),
                }
            } else {
                let objects = self.count(
                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1",
                    &[POSTGRES_SCHEMA.into()],
                )?;
                if objects > 0 {
                    return Err(foreign("holds tables without a `vigil_version` table"));
                }
                self.create_version_table()?;
                0
            }
        } else {
            self.execute(&format!("CREATE SCHEMA {POSTGRES_SCHEMA}"), &[])?;
            self.create_version_table()?;
            0
        };
        let pending = Dialect::Postgres.pending(version)?;
        for migration in &pending {
            self.client
                .batch_execute(migration)
                .map_err(|e| self.error(&e))?;
        }
        if !pending.is_empty() {
            self.execute(
                "UPDATE vigil_version SET version = $1",
                &[i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX).into()],
            )?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        let statement = self.statement(sql)?;
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(bound).collect();
        self.client
            .execute(&statement, &values)
            .map_err(|e| self.error(&e))
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError> {
        let statement = self.statement(sql)?;
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(bound).collect();
        let rows = self
            .client
            .query(&statement, &values)
            .map_err(|e| self.error(&e))?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| cell(row, i))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Row)
            })
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(&e))
    }

    fn begin(&mut self) -> Result<(), DbError> {
        self.client
            .batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({LOCK_KEY})"))
            .map_err(|e| self.error(&e))
    }

    fn commit(&mut self) -> Result<(), DbError> {
        self.client
            .batch_execute("COMMIT")
            .map_err(|e| self.error(&e))
    }

    fn rollback(&mut self) -> Result<(), DbError> {
        self.client
            .batch_execute("ROLLBACK")
            .map_err(|e| self.error(&e))
    }
}
