//! vigil's Spark source: `--warehouse sc://host:port[/;param=value;...]`, a Spark Connect
//! server.
//!
//! Each table's requests become one Spark SQL query (planned by [`vigil_engine::sql`] in the
//! [`dialect::Spark`] dialect) executed by the cluster; only aggregates come back. A table's
//! relation is its file's stem or its `relation:` (optionally `database.table`) in the
//! session's current catalog and database. Every table is read in a session of its own with
//! the time zone pinned to UTC and ANSI mode off (casts the planner guards return NULL).
//!
//! Parameters of the location besides Spark Connect's own (`token`, `user_id`, `use_ssl`,
//! ...): `database=NAME` (the database relations are looked up in), `timeout=SECONDS` (a
//! table's query, default 600) and `connect_timeout=SECONDS` (default 30). A cluster that
//! cannot be reached, a query that fails or does not finish in time is a failure of the
//! source (the run stops with exit 2); a missing relation is a finding. A token is never
//! printed.

// The client's error type is large and its API returns it: every closure over its calls would
// trip this lint.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use chrono::NaiveDate;
use spark_connect::expression::Expression;
use spark_connect::row::Value as SparkValue;
use spark_connect::types::DataType;
use spark_connect::{lit_double, lit_string, SparkSession};
use vigil_engine::config::TableConfig;
use vigil_engine::scan::pushed::{assemble, bind, FailedLookup};
use vigil_engine::scan::{ScanInput, TableProblem, TableScan};
use vigil_engine::source::{redact, RowSink, SchemeRegistration, Source};
use vigil_engine::sql::{self, Join, Kind, Param, Relation, Value};

pub mod dialect;

use dialect::Spark;

inventory::submit! {
    SchemeRegistration {
        schemes: &["sc"],
        connect,
    }
}

/// A Spark Connect server as a warehouse.
pub struct SparkSource {
    /// The session that checked the server; each table's query runs in a new one.
    session: SparkSession,
    shown: String,
    database: Option<String>,
    timeout: Duration,
}

/// The parameters vigil reads from a location; the rest go to the Spark Connect client.
const OWN_PARAMS: [&str; 3] = ["database", "timeout", "connect_timeout"];

/// A location's vigil parameters taken out: the client's location and `name -> value`.
fn split_location(location: &str) -> (String, BTreeMap<String, String>) {
    let Some((base, params)) = location.split_once(";") else {
        return (location.to_string(), BTreeMap::new());
    };
    let mut own = BTreeMap::new();
    let mut kept = Vec::new();
    for param in params.split(';').filter(|p| !p.is_empty()) {
        match param.split_once('=') {
            Some((k, v)) if OWN_PARAMS.contains(&k) => {
                own.insert(k.to_string(), v.to_string());
            }
            _ => kept.push(param),
        }
    }
    let client = if kept.is_empty() {
        base.trim_end_matches('/').to_string()
    } else {
        format!("{base};{}", kept.join(";"))
    };
    (client, own)
}

/// A number of seconds from a location parameter.
fn seconds(
    own: &BTreeMap<String, String>,
    name: &str,
    default: u64,
    shown: &str,
) -> Result<Duration, String> {
    match own.get(name) {
        None => Ok(Duration::from_secs(default)),
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("{shown}: {name} must be a number of seconds, not `{s}`")),
    }
}

/// Runs `work` on a thread of its own and waits at most `limit` for it; on time out the
/// session's operations are interrupted and the thread is left to end on its own.
fn bounded<T: Send + 'static>(
    limit: Duration,
    session: Option<&SparkSession>,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    match rx.recv_timeout(limit) {
        Ok(result) => result,
        Err(_) => {
            if let Some(session) = session.cloned() {
                // Interrupting may itself wait on an unreachable server: not here.
                std::thread::spawn(move || {
                    let _ = session.interrupt_all();
                });
            }
            Err(format!("no answer within {} s", limit.as_secs_f64()))
        }
    }
}

/// A client error as people read it: its first line, without the server's stack trace.
fn explain(e: &spark_connect::SparkError) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("").trim();
    let mut shown: String = first.chars().take(600).collect();
    if shown.len() < first.len() {
        shown.push_str("...");
    }
    shown
}

/// Opens the source and checks that the server answers.
fn connect(location: &str) -> Result<Box<dyn Source>, String> {
    let shown = redact(location);
    let (client, own) = split_location(location);
    let timeout = seconds(&own, "timeout", 600, &shown)?;
    let connect_timeout = seconds(&own, "connect_timeout", 30, &shown)?;
    let database = own.get("database").cloned();
    // A refused or unroutable address is said at once (the client would retry for minutes).
    reachable(&client, connect_timeout)
        .map_err(|e| format!("cannot connect to the Spark Connect server at {shown}: {e}"))?;
    let session = bounded(connect_timeout, None, move || {
        let session = SparkSession::builder()
            .remote(&client)
            .get_or_create()
            .map_err(|e| explain(&e))?;
        session.version().map_err(|e| explain(&e))?;
        Ok(session)
    })
    .map_err(|e| format!("cannot connect to the Spark Connect server at {shown}: {e}"))?;
    let source = SparkSource {
        session,
        shown,
        database,
        timeout,
    };
    // The database must exist: a misspelt one would make every table "missing".
    source
        .session()
        .map_err(|e| format!("{}: {e}", source.shown))?;
    Ok(Box::new(source))
}

/// Whether a TCP connection to the location's host and port opens within `limit`.
fn reachable(location: &str, limit: Duration) -> Result<(), String> {
    let authority = location
        .trim_start_matches("sc://")
        .split(['/', ';', '?'])
        .next()
        .unwrap_or("");
    // Spark Connect's default port.
    let address = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:15002")
    };
    let addresses: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| format!("{address}: {e}"))?
        .collect();
    let mut last = format!("{address} has no address");
    for at in addresses {
        match TcpStream::connect_timeout(&at, limit) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{at}: {e}"),
        }
    }
    Err(last)
}

/// Whether an error says that a relation does not exist.
fn not_found(message: &str) -> bool {
    message.contains("TABLE_OR_VIEW_NOT_FOUND")
}

/// A session of its own for one table: UTC, ANSI off, the location's database.
fn configure(session: &SparkSession, database: Option<&str>) -> Result<(), String> {
    let mut statements = vec![
        "SET spark.sql.session.timeZone = UTC".to_string(),
        "SET spark.sql.ansi.enabled = false".to_string(),
    ];
    if let Some(database) = database {
        statements.push(format!("USE {}", relation_sql(database)));
    }
    for statement in statements {
        session
            .sql(&statement)
            .and_then(|df| df.collect())
            .map_err(|e| explain(&e))?;
    }
    Ok(())
}

/// A relation's name as Spark SQL: each dotted part quoted.
fn relation_sql(name: &str) -> String {
    use vigil_engine::sql::Dialect;
    let spark = Spark { file_order: false };
    name.split('.')
        .map(|part| spark.quote(part))
        .collect::<Vec<_>>()
        .join(".")
}

/// The kind of a Spark column type.
fn kind(data_type: &DataType) -> Kind {
    match data_type {
        DataType::String { .. } | DataType::Char { .. } | DataType::Varchar { .. } => Kind::Text,
        DataType::Byte | DataType::Short | DataType::Integer | DataType::Long => Kind::Integer,
        DataType::Float | DataType::Double => Kind::Float,
        DataType::Decimal { .. } => Kind::Decimal,
        DataType::Timestamp => Kind::TimestampTz,
        DataType::TimestampNtz => Kind::Timestamp,
        DataType::Date => Kind::Date,
        _ => Kind::Other,
    }
}

/// A relation as the cluster sees it, and whether its rows have a file order.
struct Found {
    relation: Relation,
    file_order: bool,
}

/// A table's relation, its joins, the lookups it cannot join and whether every relation has
/// a file order.
struct Tables {
    relation: Relation,
    joins: Vec<Join>,
    failed: Vec<FailedLookup>,
    file_order: bool,
}

/// One session's view of the cluster.
struct Cluster {
    session: SparkSession,
}

impl Cluster {
    /// The relation's typed columns, `None` when it does not exist.
    fn relation(&self, name: &str) -> Result<Option<Found>, String> {
        let quoted = relation_sql(name);
        let schema = match self
            .session
            .sql(&format!("SELECT * FROM {quoted}"))
            .and_then(|df| df.schema())
        {
            Ok(schema) => schema,
            Err(e) if not_found(&e.to_string()) => return Ok(None),
            Err(e) => return Err(explain(&e)),
        };
        let DataType::Struct { fields } = schema else {
            return Err(format!("{name} has no columns"));
        };
        let columns = fields
            .iter()
            .map(|f| (f.name.clone(), kind(&f.data_type)))
            .collect();
        // Files' relations know each row's file and position.
        let file_order = self
            .session
            .sql(&format!(
                "SELECT t._metadata.file_path, t._metadata.row_index FROM {quoted} t"
            ))
            .and_then(|df| df.schema())
            .is_ok();
        Ok(Some(Found {
            relation: Relation {
                name: name.to_string(),
                columns,
            },
            file_order,
        }))
    }

    /// The relation of a table, its joins and the lookups it cannot join, `None` when the
    /// relation does not exist. A lookup joins only when the looked-up relation has its key
    /// and every column it takes, as the CSV scan's lookup index.
    fn tables(&self, table: &TableConfig, input: &ScanInput<'_>) -> Result<Option<Tables>, String> {
        let Some(found) = self.relation(table.relation())? else {
            return Ok(None);
        };
        // Whether each looked-up relation has a file order, by name.
        let mut ordered = BTreeMap::new();
        let (joins, failed) = sql::joins(table, input.tables, |name| {
            Ok::<_, String>(self.relation(name)?.map(|other| {
                ordered.insert(name.to_string(), other.file_order);
                other.relation
            }))
        })?;
        let file_order = found.file_order
            && joins
                .iter()
                .all(|j| ordered.get(&j.relation.name).copied().unwrap_or(false));
        Ok(Some(Tables {
            relation: found.relation,
            joins,
            failed,
            file_order,
        }))
    }

    /// Runs a planned query of `columns` columns with its parameters; its answer must arrive
    /// whole (see [`with_end_marker`]).
    fn query(
        &self,
        text: &str,
        columns: usize,
        params: &[Param],
    ) -> Result<Vec<Vec<Value>>, String> {
        let rows = self
            .session
            .sql_with_args(
                &with_end_marker(text, columns),
                Vec::new(),
                named_args(params),
            )
            .and_then(|df| df.collect())
            .map_err(|e| explain(&e))?;
        complete(
            rows.into_iter()
                .map(|row| row.into_values().into_iter().map(value).collect())
                .collect(),
        )
    }
}

/// A query whose answer ends with a marker row: a Connect server ends a result stream after
/// `spark.connect.execute.reattachable.senderMaxStreamDuration` (2 minutes by default) for the
/// client to reattach, and the Rust client takes that end for the whole answer. Sorted last,
/// the marker proves that every row before it arrived.
fn with_end_marker(sql: &str, columns: usize) -> String {
    let nulls = vec!["NULL"; columns].join(", ");
    format!(
        "SELECT * FROM (SELECT q.*, 0 AS vigil_end FROM ({sql}) q UNION ALL SELECT {nulls}, 1) \
         ORDER BY vigil_end"
    )
}

/// The rows of an answer of [`with_end_marker`] without the marker, or why it is not whole.
fn complete(mut rows: Vec<Vec<Value>>) -> Result<Vec<Vec<Value>>, String> {
    if rows.last().and_then(|row| row.last()) != Some(&Value::Int(1)) {
        return Err(format!(
            "the answer stopped after {} rows, before its end: the Connect server ends a result \
             stream after spark.connect.execute.reattachable.senderMaxStreamDuration (2 minutes \
             by default) and this client does not reattach; raise that setting on the server \
             above the longest table query",
            rows.len()
        ));
    }
    rows.pop();
    for row in &mut rows {
        row.pop();
    }
    Ok(rows)
}

/// The planner's parameters as Spark's named parameters `:p1`, `:p2`, ...
fn named_args(params: &[Param]) -> HashMap<String, Expression> {
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let literal = match p {
                Param::Text(t) => lit_string(t),
                Param::Number(n) => lit_double(*n),
            };
            (format!("p{}", i + 1), literal.expression().clone())
        })
        .collect()
}

/// A result value as the planner decodes it.
fn value(v: SparkValue) -> Value {
    match v {
        SparkValue::Null => Value::Null,
        SparkValue::Byte(i) => Value::Int(i.into()),
        SparkValue::Short(i) => Value::Int(i.into()),
        SparkValue::Integer(i) => Value::Int(i.into()),
        SparkValue::Long(i) => Value::Int(i),
        SparkValue::Float(f) => Value::Float(f.into()),
        SparkValue::Double(f) => Value::Float(f),
        SparkValue::Decimal { value, .. } => value.parse().map_or(Value::Null, Value::Float),
        SparkValue::String(s) => Value::Text(s),
        SparkValue::Date(days) => NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(days.into())))
            .map_or(Value::Null, Value::Date),
        SparkValue::List(items) => Value::TextArray(
            items
                .into_iter()
                .map(|item| match item {
                    SparkValue::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
        ),
        other => Value::Text(format!("{other:?}")),
    }
}

impl SparkSource {
    /// A new session of the server, configured for a table's query.
    fn session(&self) -> Result<SparkSession, String> {
        let session = self.session.new_session();
        let database = self.database.clone();
        let configured = session.clone();
        bounded(self.timeout, Some(&session), move || {
            configure(&configured, database.as_deref())
        })?;
        Ok(session)
    }

    /// Runs `work` on a new session's view of the cluster within the timeout.
    fn with_cluster<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Cluster) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let session = self.session()?;
        let cluster = Cluster {
            session: session.clone(),
        };
        bounded(self.timeout, Some(&session), move || work(&cluster))
            .map_err(|e| format!("the Spark cluster at {}: {e}", self.shown))
    }
}

impl Source for SparkSource {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn scan(&self, name: &str, table: &TableConfig, input: ScanInput<'_>) -> TableScan {
        let owned = table.clone();
        let tables = input.tables.cloned();
        let requests = input.requests.to_vec();
        let found = self.with_cluster(move |cluster| {
            let input = ScanInput {
                tables: tables.as_ref(),
                ..ScanInput::default()
            };
            let Some(found) = cluster.tables(&owned, &input)? else {
                return Ok(None);
            };
            let header = sql::header(&found.relation, &found.joins);
            let binding = bind(header, &owned, &requests, &found.failed);
            let dialect = Spark {
                file_order: found.file_order,
            };
            let query = sql::plan(&dialect, &owned, &found.relation, &found.joins, &binding);
            let rows = cluster.query(&query.sql, query.columns, &query.params)?;
            let types = sql::column_types(&found.relation, &found.joins);
            Ok(Some((binding, query.decode(&rows), types)))
        });
        let unbound = || bind(Vec::new(), table, input.requests, &[]);
        let (binding, computed, types) = match found {
            Ok(Some((binding, computed, types))) => (binding, Ok(computed), types),
            Ok(None) => (unbound(), Err(TableProblem::Missing), Vec::new()),
            Err(e) => (unbound(), Err(TableProblem::Source(e)), Vec::new()),
        };
        let location = PathBuf::from(table.relation());
        let mut scan = assemble(name, location, binding, computed, input);
        if let Ok(stats) = &mut scan.outcome {
            stats.column_types = types;
        }
        scan
    }

    fn header(&self, table: &TableConfig) -> Result<Vec<String>, TableProblem> {
        let owned = table.clone();
        match self.with_cluster(move |cluster| cluster.tables(&owned, &ScanInput::default())) {
            Ok(Some(tables)) => Ok(sql::header(&tables.relation, &tables.joins)),
            Ok(None) => Err(TableProblem::Missing),
            Err(e) => Err(TableProblem::Source(e)),
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
        let session = self.session().map_err(TableProblem::Source)?;
        let cluster = Cluster { session };
        let input = ScanInput {
            tables: Some(tables),
            ..ScanInput::default()
        };
        let Some(found) = cluster
            .tables(table, &input)
            .map_err(TableProblem::Source)?
        else {
            return Err(TableProblem::Missing);
        };
        let dialect = Spark {
            file_order: found.file_order,
        };
        let (query, params) =
            sql::partition_rows(&dialect, table, &found.relation, &found.joins, day);
        let header: Vec<Option<&str>> = found
            .relation
            .columns
            .iter()
            .map(|(c, _)| Some(c.as_str()))
            .collect();
        if sink.row(&header).is_break() {
            return Ok(());
        }
        // The rows stream through a channel from a thread of their own, so that a cluster
        // that stops answering is a time out, not a hang.
        // `None` ends the rows.
        let (tx, rx) = mpsc::sync_channel::<Result<Option<Vec<Option<String>>>, String>>(1024);
        let session = cluster.session.clone();
        std::thread::spawn(move || {
            let rows = match session
                .sql_with_args(&query, Vec::new(), named_args(&params))
                .and_then(|df| df.to_local_iterator(false))
            {
                Ok(rows) => rows,
                Err(e) => {
                    let _ = tx.send(Err(explain(&e)));
                    return;
                }
            };
            for row in rows {
                let cells = row
                    .map(|row| {
                        Some(
                            row.values()
                                .iter()
                                .map(|v| v.as_str().map(str::to_string))
                                .collect(),
                        )
                    })
                    .map_err(|e| explain(&e));
                let failed = cells.is_err();
                if tx.send(cells).is_err() || failed {
                    return;
                }
            }
            let _ = tx.send(Ok(None));
        });
        loop {
            match rx.recv_timeout(self.timeout) {
                Ok(Ok(Some(cells))) => {
                    let cells: Vec<Option<&str>> = cells.iter().map(Option::as_deref).collect();
                    if sink.row(&cells).is_break() {
                        break;
                    }
                }
                Ok(Ok(None)) => return Ok(()),
                Ok(Err(e)) => return Err(TableProblem::Source(e)),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(TableProblem::Source("the rows stopped coming".into()))
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = cluster.session.interrupt_all();
                    return Err(TableProblem::Source(format!(
                        "no row within {} s",
                        self.timeout.as_secs_f64()
                    )));
                }
            }
        }
        // The rest of the rows are not wanted.
        let _ = cluster.session.interrupt_all();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vigil_parameters_are_taken_out_of_the_location() {
        let (client, own) =
            split_location("sc://h:15002/;database=sales;token=abc;timeout=5;user_id=me");
        assert_eq!(client, "sc://h:15002/;token=abc;user_id=me");
        assert_eq!(own["database"], "sales");
        assert_eq!(own["timeout"], "5");
        let (client, own) = split_location("sc://h:15002/;database=sales");
        assert_eq!(client, "sc://h:15002");
        assert_eq!(own.len(), 1);
        assert_eq!(split_location("sc://h:15002").0, "sc://h:15002");
    }

    #[test]
    fn an_answer_without_its_end_marker_is_not_taken_for_whole() {
        let marked = with_end_marker("SELECT 1 AS a, 2 AS b", 2);
        assert!(marked.ends_with("UNION ALL SELECT NULL, NULL, 1) ORDER BY vigil_end"));
        let row = |a: i64, end: i64| vec![Value::Int(a), Value::Int(end)];
        assert_eq!(
            complete(vec![row(7, 0), row(8, 0), vec![Value::Null, Value::Int(1)]]),
            Ok(vec![vec![Value::Int(7)], vec![Value::Int(8)]])
        );
        let cut = complete(vec![row(7, 0)]).unwrap_err();
        assert!(cut.starts_with("the answer stopped after 1 rows"), "{cut}");
        assert!(complete(Vec::new()).is_err());
    }

    #[test]
    fn an_unreachable_server_is_exit_2_in_seconds_without_the_token() {
        let started = std::time::Instant::now();
        // Port 1 on loopback: refused at once.
        let err = connect("sc://127.0.0.1:1/;token=s3cret;connect_timeout=20")
            .err()
            .expect("no server on port 1");
        assert!(
            err.starts_with("cannot connect to the Spark Connect server at sc://127.0.0.1:1"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("refused"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{err}");
    }
}
