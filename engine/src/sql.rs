//! SQL pushdown planning: the metric requests of one table as **one query** that a database
//! computes, returning only aggregates (per day, per day and dimension value, per table).
//!
//! The query keeps the CSV scan's meaning of every cell: empty cells (absent, empty, `NULL`,
//! `null`), the strict number grammar of text cells, the strict date and timestamp grammar of
//! text date columns (with the unparsable cells counted per day and sampled), the UTC date of a
//! `timestamptz`, `naive_timestamps` for a `timestamp`, lookups as joins with the first row of
//! each key. Identifiers are quoted and constants are bound as parameters. The text is written
//! for PostgreSQL; what differs in another engine goes through [`Dialect`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;

use crate::config::TableConfig;
use crate::metric::{Cmp, FilterOp, Grouping, Measure};
use crate::scan::pushed::{Binding, Bound, Computed, FailedLookup, Grouped};
use crate::scan::{DateStats, SAMPLES};
use crate::timestamp::NaiveTimestamps;

/// A column's type, as far as the meaning of its cells goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text: read with the CSV grammars.
    Text,
    /// Whole numbers.
    Integer,
    /// Floating-point numbers (NaN and infinities are not numbers).
    Float,
    /// Exact decimals.
    Decimal,
    /// A timestamp with time zone: its UTC date.
    TimestampTz,
    /// A timestamp without time zone: naive, per `naive_timestamps`.
    Timestamp,
    /// A date, taken as is.
    Date,
    /// Anything else (booleans, intervals...): text that is neither a number nor a date.
    Other,
}

/// The blanks the CSV grammar trims around a cell.
pub const BLANKS: &str = " \t\n\r\x0c";

/// What differs between SQL engines: quoting, types, regular expressions, date arithmetic,
/// grouping bits and the few aggregates without a common spelling. The planner writes
/// everything else in SQL both PostgreSQL and Spark read.
pub trait Dialect {
    /// A quoted identifier.
    fn quote(&self, name: &str) -> String;
    /// An expression that orders a table's rows as stored (for "an earlier row").
    fn row_order(&self, alias: &str) -> String;
    /// The `n`-th bound parameter (1-based) of a text constant.
    fn text_param(&self, n: usize) -> String;
    /// The `n`-th bound parameter (1-based) of a number constant.
    fn number_param(&self, n: usize) -> String;
    /// A string literal holding `text` as is.
    fn literal(&self, text: &str) -> String;
    /// The text type's name.
    fn text_type(&self) -> &'static str;
    /// The double-precision type's name.
    fn double_type(&self) -> &'static str;
    /// A NULL array of texts.
    fn null_text_array(&self) -> String;
    /// `text` without [`BLANKS`] at both ends, or at the start only.
    fn trim(&self, text: &str, start_only: bool) -> String;
    /// Whether `text` matches the regular expression `pattern` (anchored by the pattern).
    fn matches(&self, text: &str, pattern: &str) -> String;
    /// The `groups` captures of `pattern` in `text` as an array, NULL when it does not match.
    fn captures(&self, text: &str, pattern: &str, groups: usize) -> String;
    /// Capture `i` (1-based) of a captures array, NULL when its group took no part.
    fn capture(&self, captures: &str, i: usize) -> String;
    /// The number of days of month `m` (1-12) of year `y` (integers).
    fn days_in_month(&self, y: &str, m: &str) -> String;
    /// The UTC date of a timestamp with time zone.
    fn utc_date(&self, timestamp: &str) -> String;
    /// A timestamp with time zone as text the CSV grammar reads back as that instant.
    fn zoned_text(&self, timestamp: &str) -> String;
    /// A float column's value as a double, NULL for NaN and the infinities.
    fn finite(&self, number: &str) -> String;
    /// The number a trimmed text holds as Rust's `f64` parse reads it (any exponent; a value
    /// that rounds to infinity is no number, one that rounds to zero is 0, subnormals kept),
    /// NULL when it holds none.
    fn text_number(&self, text: &str) -> String;
    /// The first `n` values of the text `value` in `order` among the group's rows where
    /// `filter` holds, as an array (NULL or empty when none).
    fn first_texts(&self, value: &str, order: &str, filter: &str, n: usize) -> String;
    /// The bits of the grouping `columns` a row's grouping set does not group (the first
    /// column is the highest bit).
    fn grouping(&self, columns: &[String]) -> String;
    /// A query of the first row (in `order`) of each key of `from` (a relation with a `WHERE`):
    /// `key` as `k`, then each `(expression, alias)` of `values`.
    fn first_per_key(
        &self,
        key: &str,
        values: &[(String, String)],
        from: &str,
        order: &str,
    ) -> String;
}

/// PostgreSQL.
pub struct Postgres;

impl Dialect for Postgres {
    fn quote(&self, name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    fn row_order(&self, alias: &str) -> String {
        format!("{alias}.ctid")
    }

    fn text_param(&self, n: usize) -> String {
        format!("CAST(${n} AS TEXT)")
    }

    fn number_param(&self, n: usize) -> String {
        format!("CAST(${n} AS DOUBLE PRECISION)")
    }

    fn literal(&self, text: &str) -> String {
        // Standard-conforming strings: a backslash is itself.
        format!("'{}'", text.replace('\'', "''"))
    }

    fn text_type(&self) -> &'static str {
        "TEXT"
    }

    fn double_type(&self) -> &'static str {
        "DOUBLE PRECISION"
    }

    fn null_text_array(&self) -> String {
        "CAST(NULL AS TEXT[])".into()
    }

    fn trim(&self, text: &str, start_only: bool) -> String {
        let function = if start_only { "ltrim" } else { "btrim" };
        format!("{function}({text}, {})", self.literal(BLANKS))
    }

    fn matches(&self, text: &str, pattern: &str) -> String {
        format!("{text} ~ {}", self.literal(pattern))
    }

    fn captures(&self, text: &str, pattern: &str, _groups: usize) -> String {
        format!("regexp_match({text}, {})", self.literal(pattern))
    }

    fn capture(&self, captures: &str, i: usize) -> String {
        format!("{captures}[{i}]")
    }

    fn days_in_month(&self, y: &str, m: &str) -> String {
        format!("EXTRACT(DAY FROM make_date({y}, {m}, 1) + INTERVAL '1 month - 1 day')")
    }

    fn utc_date(&self, timestamp: &str) -> String {
        format!("CAST({timestamp} AT TIME ZONE 'UTC' AS DATE)")
    }

    fn zoned_text(&self, timestamp: &str) -> String {
        // With the session's time zone UTC (the export sets it): `2025-03-08 10:00:00+00`.
        format!("CAST({timestamp} AS TEXT)")
    }

    fn finite(&self, number: &str) -> String {
        format!(
            "CASE WHEN {number} IN ('NaN', 'Infinity', '-Infinity') THEN NULL \
             ELSE CAST({number} AS DOUBLE PRECISION) END"
        )
    }

    fn text_number(&self, t: &str) -> String {
        // PostgreSQL refuses to cast a subnormal to a double: it is built as a multiple of
        // the smallest; powers of 2 below 1 are not exact in NUMERIC, so the bounds scale the
        // value up instead. Exponents of more than 4 digits (past leading zeros) are beyond
        // NUMERIC: a negative one is 0.
        let n = format!("CAST({t} AS NUMERIC)");
        let mantissa = "[+-]?(\\d+\\.?\\d*|\\.\\d+)";
        format!(
            "CASE WHEN {t} ~ '^{mantissa}([eE][+-]?0*\\d{{1,4}})?$' THEN \
             CASE WHEN abs({n}) >= power(CAST(2 AS NUMERIC), 1024) - power(CAST(2 AS NUMERIC), 970) THEN NULL \
             WHEN abs({n}) * power(CAST(2 AS NUMERIC), 1075) <= 1 THEN CAST(0 AS DOUBLE PRECISION) \
             WHEN abs({n}) * power(CAST(2 AS NUMERIC), 1022) < 1 THEN \
             CAST(round({n} * power(CAST(2 AS NUMERIC), 1074)) AS DOUBLE PRECISION) \
             * power(CAST(2 AS DOUBLE PRECISION), -1074) \
             ELSE CAST({n} AS DOUBLE PRECISION) END \
             WHEN {t} ~ '^{mantissa}[eE]-0*\\d{{5,}}$' THEN CAST(0 AS DOUBLE PRECISION) END"
        )
    }

    fn first_texts(&self, value: &str, order: &str, filter: &str, n: usize) -> String {
        format!(
            "(ARRAY_AGG(CAST({value} AS TEXT) ORDER BY {order}) FILTER (WHERE {filter}))[1:{n}]"
        )
    }

    fn grouping(&self, columns: &[String]) -> String {
        format!("GROUPING({})", columns.join(", "))
    }

    fn first_per_key(
        &self,
        key: &str,
        values: &[(String, String)],
        from: &str,
        order: &str,
    ) -> String {
        let values: String = values
            .iter()
            .map(|(e, alias)| format!(", {e} AS {alias}"))
            .collect();
        format!("SELECT DISTINCT ON (k) {key} AS k{values} FROM {from} ORDER BY k, {order}")
    }
}

/// A relation: its name (possibly `schema.table`) and typed columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Relation {
    /// The name as configured (`fct_sessions`, `analytics.fct_sessions`).
    pub name: String,
    /// Its columns in order.
    pub columns: Vec<(String, Kind)>,
}

impl Relation {
    fn kind(&self, column: &str) -> Option<Kind> {
        self.columns
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, k)| *k)
    }
}

/// A table's lookup joined into its query.
#[derive(Clone, Debug, PartialEq)]
pub struct Join {
    /// The looked-up table's config name (`orders`).
    pub table: String,
    /// The looked-up relation.
    pub relation: Relation,
    /// The key column of this table.
    pub key: String,
    /// The key column of the looked-up relation.
    pub foreign_key: String,
    /// The columns taken (those the looked-up relation has).
    pub columns: Vec<String>,
}

/// A constant bound to the query.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    /// Text.
    Text(String),
    /// A number.
    Number(f64),
}

/// A value of a result row.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    Text(String),
    /// A date.
    Date(NaiveDate),
    /// A text array (the unparsable samples).
    TextArray(Vec<Option<String>>),
}

impl Value {
    fn number(&self) -> f64 {
        match self {
            Value::Int(i) => *i as f64,
            Value::Float(f) => *f,
            _ => 0.0,
        }
    }

    fn date(&self) -> Option<NaiveDate> {
        match self {
            Value::Date(d) => Some(*d),
            _ => None,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// The header a pushed-down table offers: its own columns, then `<table>.<column>` for each
/// joined column.
pub fn header(relation: &Relation, joins: &[Join]) -> Vec<String> {
    relation
        .columns
        .iter()
        .map(|(c, _)| c.clone())
        .chain(
            joins
                .iter()
                .flat_map(|j| j.columns.iter().map(move |c| format!("{}.{c}", j.table))),
        )
        .collect()
}

/// The joins of a table's lookups and the lookups it cannot join. `tables` are the configured
/// tables by name; `relation` finds a relation by name (`None`: it does not exist). A lookup
/// joins only when the looked-up relation has its key and every column it takes, as the CSV
/// scan's lookup index; a lookup of a table that is not configured is left out.
pub fn joins<E>(
    table: &TableConfig,
    tables: Option<&BTreeMap<String, TableConfig>>,
    mut relation: impl FnMut(&str) -> Result<Option<Relation>, E>,
) -> Result<(Vec<Join>, Vec<FailedLookup>), E> {
    let mut joins = Vec::new();
    let mut failed = Vec::new();
    for lookup in &table.lookups {
        let Some(looked) = tables.and_then(|t| t.get(&lookup.table)) else {
            continue;
        };
        let fail = |problem: String| FailedLookup {
            table: lookup.table.clone(),
            columns: lookup.columns.clone(),
            problem,
        };
        let Some(other) = relation(looked.relation())? else {
            failed.push(fail(format!("table file {} is missing", looked.relation())));
            continue;
        };
        let absent = std::iter::once(lookup.foreign_key())
            .chain(lookup.columns.iter().map(String::as_str))
            .find(|c| other.columns.iter().all(|(n, _)| n != c));
        if let Some(column) = absent {
            failed.push(fail(format!(
                "column `{column}` is missing from {}",
                looked.file
            )));
            continue;
        }
        joins.push(Join {
            table: lookup.table.clone(),
            key: lookup.key.clone(),
            foreign_key: lookup.foreign_key().to_string(),
            columns: lookup.columns.clone(),
            relation: other,
        });
    }
    Ok((joins, failed))
}

/// Each column of [`header`] with its type as vigil reads it (`text`, `integer`, ...; a joined
/// column is `lookup`), for the schema-change check.
pub fn column_types(relation: &Relation, joins: &[Join]) -> Vec<String> {
    relation
        .columns
        .iter()
        .map(|(_, kind)| format!("{kind:?}").to_lowercase())
        .chain(
            joins
                .iter()
                .flat_map(|j| j.columns.iter().map(|_| "lookup".to_string())),
        )
        .collect()
}

/// One table's query, its parameters and how to read its rows.
#[derive(Clone, Debug)]
pub struct TableQuery {
    /// The SQL text.
    pub sql: String,
    /// The bound constants, `$1` first.
    pub params: Vec<Param>,
    /// The number of columns of a result row.
    pub columns: usize,
    layout: Layout,
}

/// A request's grouping, its value's column, and for a per-dimension one its presence
/// count's column and its dimension's number.
type RequestAt = (Grouping, usize, Option<(usize, usize)>);

/// Where things are in a result row.
#[derive(Clone, Debug)]
struct Layout {
    /// Dimension columns grouped (header positions), in order.
    dimensions: Vec<usize>,
    /// Per bound request: its grouping, its value's column and, for a per-dimension one, its
    /// presence count's column and its dimension's number.
    requests: Vec<RequestAt>,
    /// The lookups' tables, for their miss counts.
    lookups: Vec<String>,
    /// Whether the table has a date column bound.
    dated: bool,
    date_column: String,
    /// Whether the whole-table set `()` is grouped (else the table's counts are the sums of
    /// the per-day rows).
    whole: bool,
    /// Whether the leading-day set `(dl)` is grouped.
    leading: bool,
}

const GS: usize = 0;
const DAY: usize = 1;
const LEADING_DAY: usize = 2;
const FIRST_DIMENSION: usize = 3;

/// The expression and kind of each header position: the relation's own columns (`t.<col>`),
/// then the joined columns (`j<l>.v<i>`).
struct Sources<'a> {
    dialect: &'a dyn Dialect,
    relation: &'a Relation,
    joins: &'a [Join],
}

impl Sources<'_> {
    fn at(&self, h: usize) -> (String, Kind) {
        let own = self.relation.columns.len();
        if h < own {
            let (name, kind) = &self.relation.columns[h];
            return (format!("t.{}", self.dialect.quote(name)), *kind);
        }
        let mut rest = h - own;
        for (l, join) in self.joins.iter().enumerate() {
            if rest < join.columns.len() {
                let kind = join
                    .relation
                    .kind(&join.columns[rest])
                    .unwrap_or(Kind::Other);
                return (format!("j{l}.v{rest}"), kind);
            }
            rest -= join.columns.len();
        }
        unreachable!("a header position is an own or a joined column")
    }

    /// The lookup a joined header position comes from.
    fn lookup(&self, h: usize) -> Option<usize> {
        let mut rest = h.checked_sub(self.relation.columns.len())?;
        self.joins.iter().position(|j| {
            let here = rest < j.columns.len();
            rest = rest.saturating_sub(j.columns.len());
            here
        })
    }
}

/// A relation's name as SQL: each dotted part quoted.
fn relation_sql(dialect: &dyn Dialect, name: &str) -> String {
    name.split('.')
        .map(|part| dialect.quote(part))
        .collect::<Vec<_>>()
        .join(".")
}

/// The common table expressions every query of a table starts with, ending in `b2`: per row,
/// its storage order `o`, the header positions `used` as `c<h>`, each lookup's key `lk<l>` and
/// whether it was found `lf<l>`, the date cell `dv`, its day `d`, and whether it is empty `de`,
/// unparsable `du` or naive `dn`, with the leading day `dl` of an unparsable cell.
fn base(
    sources: &Sources<'_>,
    table: &TableConfig,
    used: &[usize],
    date_at: Option<usize>,
) -> String {
    let dialect = sources.dialect;
    let q = |name: &str| dialect.quote(name);
    let mut sql = String::from("WITH ");
    // The joins: the first row of each non-empty key.
    let text = dialect.text_type();
    for (l, join) in sources.joins.iter().enumerate() {
        let values: Vec<(String, String)> = join
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("f.{}", q(c)), format!("v{i}")))
            .collect();
        let fk = q(&join.foreign_key);
        let from = format!(
            "{} f WHERE f.{fk} IS NOT NULL",
            relation_sql(dialect, &join.relation.name)
        );
        let first = dialect.first_per_key(
            &format!("CAST(f.{fk} AS {text})"),
            &values,
            &from,
            &dialect.row_order("f"),
        );
        let _ = write!(sql, "j{l} AS ({first}), ");
    }
    // b0: the columns read, the lookups' keys and matches, the trimmed date text.
    let mut b0 = vec![format!("{} AS o", dialect.row_order("t"))];
    for h in used {
        b0.push(format!("{} AS c{h}", sources.at(*h).0));
    }
    let mut from = format!("{} t", relation_sql(dialect, &sources.relation.name));
    for (l, join) in sources.joins.iter().enumerate() {
        let key = format!("CAST(t.{} AS {text})", q(&join.key));
        b0.push(format!("{key} AS lk{l}"));
        b0.push(format!("(j{l}.k IS NOT NULL) AS lf{l}"));
        let _ = write!(from, " LEFT JOIN j{l} ON j{l}.k = {key} AND {key} <> ''");
    }
    // The date cell: its expression, kind, and the lookup it depends on.
    let date = date_at.map(|h| {
        let (expr, kind) = sources.at(h);
        (expr, kind, sources.lookup(h))
    });
    match &date {
        Some((expr, kind, _)) => {
            b0.push(format!("{expr} AS dv"));
            if *kind == Kind::Text {
                b0.push(format!("{} AS ds", dialect.trim(expr, false)));
            }
        }
        None => b0.push(format!("CAST(NULL AS {text}) AS dv")),
    }
    let _ = write!(sql, "b0 AS (SELECT {} FROM {from}), ", b0.join(", "));
    // b1: the day, and whether the date cell is empty, unparsable, naive; its leading day.
    let found = match &date {
        Some((_, _, Some(l))) => format!("lf{l}"),
        _ => "TRUE".into(),
    };
    let (day, empty_date, unparsable, naive, leading) = match &date {
        None => (
            "CAST(NULL AS DATE)".to_string(),
            "FALSE".to_string(),
            "FALSE".to_string(),
            "FALSE".to_string(),
            "CAST(NULL AS DATE)".to_string(),
        ),
        Some((_, kind, _)) => date_parts(dialect, *kind, table.naive_timestamps),
    };
    let _ = write!(
        sql,
        "b1 AS (SELECT b0.*, {m} FROM b0), ",
        m = match date.as_ref().map(|d| d.1) {
            Some(Kind::Text) => format!(
                "{} AS m, {} AS ml",
                dialect.captures("ds", TIMESTAMP, 10),
                dialect.captures(
                    &dialect.trim(&format!("CAST(dv AS {text})"), true),
                    LEADING_DATE,
                    3
                )
            ),
            _ => format!("{0} AS m, {0} AS ml", dialect.null_text_array()),
        }
    );
    let _ = write!(
        sql,
        "b2 AS (SELECT b1.*, CASE WHEN {found} THEN {day} END AS d, ({found} AND {empty_date}) AS de, \
         ({found} AND {unparsable}) AS du, ({found} AND {naive}) AS dn, \
         CASE WHEN {found} AND {unparsable} THEN {leading} END AS dl FROM b1), "
    );
    sql
}

/// The rows of a table's own columns as text, in storage order: those dated `day` (with the
/// run's meaning of its date column), every row for `None` or a table without a date column.
/// For quarantine exports; the one parameter is the day.
pub fn partition_rows(
    dialect: &dyn Dialect,
    table: &TableConfig,
    relation: &Relation,
    joins: &[Join],
    day: Option<NaiveDate>,
) -> (String, Vec<Param>) {
    let sources = Sources {
        dialect,
        relation,
        joins,
    };
    let own: Vec<usize> = (0..relation.columns.len()).collect();
    let date_at = table
        .date_column
        .as_ref()
        .and_then(|c| header(relation, joins).iter().position(|h| h == c));
    let mut sql = base(&sources, table, &own, date_at);
    // `base` ends with ", " before the final SELECT; drop the trailing comma.
    sql.truncate(sql.len() - 2);
    let text = dialect.text_type();
    let columns: Vec<String> = own
        .iter()
        .map(|h| match sources.at(*h).1 {
            Kind::TimestampTz => dialect.zoned_text(&format!("c{h}")),
            _ => format!("CAST(c{h} AS {text})"),
        })
        .collect();
    let _ = write!(
        sql,
        " SELECT {} FROM b2",
        if columns.is_empty() {
            "1".to_string()
        } else {
            columns.join(", ")
        }
    );
    let mut params = Vec::new();
    if let (Some(day), Some(_)) = (day, date_at) {
        params.push(Param::Text(day.format("%Y-%m-%d").to_string()));
        let _ = write!(sql, " WHERE d = CAST({} AS DATE)", dialect.text_param(1));
    }
    sql.push_str(" ORDER BY o");
    (sql, params)
}

/// Plans the one query of a table.
pub fn plan(
    dialect: &dyn Dialect,
    table: &TableConfig,
    relation: &Relation,
    joins: &[Join],
    binding: &Binding,
) -> TableQuery {
    let sources = Sources {
        dialect,
        relation,
        joins,
    };
    let used: Vec<usize> = {
        let mut used: Vec<usize> = binding
            .bound
            .iter()
            .flat_map(|b| {
                b.column
                    .into_iter()
                    .chain(b.dimension)
                    .chain(b.filter.iter().copied())
            })
            .collect();
        used.sort_unstable();
        used.dedup();
        used
    };
    let mut sql = base(&sources, table, &used, binding.date);
    let mut params: Vec<Param> = Vec::new();
    // b3: each request's filter and duplicate flags.
    let mut b3 = vec!["b2.*".to_string()];
    // A constant bound once however many requests use it, so equal filters read the same.
    let bind = |param: Param, params: &mut Vec<Param>| -> usize {
        match params.iter().position(|p| *p == param) {
            Some(at) => at + 1,
            None => {
                params.push(param);
                params.len()
            }
        }
    };
    let text_param = |text: &str, params: &mut Vec<Param>| {
        dialect.text_param(bind(Param::Text(text.to_string()), params))
    };
    let kinds: BTreeMap<usize, Kind> = used.iter().map(|h| (*h, sources.at(*h).1)).collect();
    let col = |h: usize| Cell {
        expr: format!("c{h}"),
        kind: kinds[&h],
        dialect,
    };
    let mut filters: Vec<String> = Vec::new();
    let mut flags: Vec<String> = Vec::new();
    for (i, b) in binding.bound.iter().enumerate() {
        let mut conditions = Vec::new();
        if let Some(filter) = &b.request.filter {
            for (condition, h) in filter.all.iter().zip(&b.filter) {
                let cell = col(*h);
                let test = match &condition.op {
                    FilterOp::Equals(text) => {
                        format!("{} = {}", cell.text(), text_param(text, &mut params))
                    }
                    FilterOp::ContainsIgnoreCase(text) => format!(
                        "position(lower({}) IN lower({})) > 0",
                        text_param(text, &mut params),
                        cell.text()
                    ),
                    FilterOp::Empty => cell.empty(),
                    FilterOp::NotEmpty => format!("NOT ({})", cell.empty()),
                    FilterOp::Compare(cmp, value) => compare(&cell.number(), *cmp, value.0, || {
                        dialect.number_param(bind(Param::Number(value.0), &mut params))
                    }),
                };
                conditions.push(format!("COALESCE({test}, FALSE)"));
            }
        }
        let filter = if conditions.is_empty() {
            "TRUE".to_string()
        } else {
            conditions.join(" AND ")
        };
        // Requests with the same filter share its flag (and so their aggregates).
        match filters.iter().position(|f| *f == filter) {
            Some(same) => flags.push(flags[same].clone()),
            None => {
                b3.push(format!("({filter}) AS f{i}"));
                flags.push(format!("f{i}"));
            }
        }
        filters.push(filter.clone());
        if let (Measure::Duplicates(_), Some(h)) = (&b.request.measure, b.column) {
            let cell = col(h);
            let dated = if b.request.grouping == Grouping::Total {
                "TRUE".to_string()
            } else {
                "d IS NOT NULL".to_string()
            };
            b3.push(format!(
                "(ROW_NUMBER() OVER (PARTITION BY ({filter}), ({dated}), CASE WHEN {} THEN '' ELSE {} END ORDER BY o) > 1) AS u{i}",
                cell.empty(),
                cell.text()
            ));
        }
    }
    // The dimension values, empty cells under ''.
    let mut dimensions: Vec<usize> = binding.bound.iter().filter_map(|b| b.dimension).collect();
    dimensions.sort_unstable();
    dimensions.dedup();
    for h in &dimensions {
        let cell = col(*h);
        b3.push(format!(
            "CASE WHEN {} THEN '' ELSE {} END AS g{h}",
            cell.empty(),
            cell.text()
        ));
    }
    let _ = write!(sql, "b3 AS (SELECT {} FROM b2) ", b3.join(", "));
    // The grouping sets: per day `(d)` and per day and dimension `(d, g)`; the leading day of
    // unparsable cells `(dl)` and the whole table `()` only when needed, as each set computes
    // every aggregate again.
    let date_kind = binding.date.map(|h| sources.at(h).1);
    let may_be_unparsable = match date_kind {
        None | Some(Kind::TimestampTz | Kind::Date) => false,
        Some(Kind::Timestamp) => table.naive_timestamps == NaiveTimestamps::Reject,
        Some(_) => true,
    };
    let leading = may_be_unparsable;
    let whole = date_kind.is_none()
        || may_be_unparsable
        || binding
            .bound
            .iter()
            .any(|b| b.request.grouping == Grouping::Total);
    let mut select = vec![
        String::new(),
        "d".to_string(),
        if leading { "dl" } else { "CAST(NULL AS DATE)" }.to_string(),
    ];
    select.extend(dimensions.iter().map(|h| format!("g{h}")));
    let grouped: Vec<String> = std::iter::once("d".to_string())
        .chain(leading.then(|| "dl".to_string()))
        .chain(dimensions.iter().map(|h| format!("g{h}")))
        .collect();
    select[GS] = format!("{} AS gs", dialect.grouping(&grouped));
    // Table stats.
    select.push("COUNT(*) AS n".into());
    select.push("COUNT(*) FILTER (WHERE de) AS nd".into());
    select.push("COUNT(*) FILTER (WHERE du) AS nu".into());
    select.push("COUNT(*) FILTER (WHERE dn) AS nn".into());
    select.push(if may_be_unparsable {
        format!(
            "{} AS samples",
            dialect.first_texts("dv", "o", "du", SAMPLES)
        )
    } else {
        format!("{} AS samples", dialect.null_text_array())
    });
    for l in 0..joins.len() {
        select.push(format!(
            "COUNT(*) FILTER (WHERE lk{l} IS NOT NULL AND lk{l} <> '' AND NOT lf{l}) AS miss{l}"
        ));
    }
    let mut requests = Vec::new();
    // An aggregate asked for twice (the same measure and filter, other groupings) is computed
    // once.
    let column_of = |expr: String, select: &mut Vec<String>| -> usize {
        match select.iter().position(|s| *s == expr) {
            Some(at) => at,
            None => {
                select.push(expr);
                select.len() - 1
            }
        }
    };
    for (i, b) in binding.bound.iter().enumerate() {
        let value = aggregate(b, &flags[i], &format!("u{i}"), &col);
        let value_at = column_of(
            format!("CAST({value} AS {})", dialect.double_type()),
            &mut select,
        );
        let presence = b.dimension.map(|h| {
            let at = column_of(format!("COUNT(*) FILTER (WHERE {})", flags[i]), &mut select);
            let j = dimensions.iter().position(|x| *x == h).unwrap_or(0);
            (at, j)
        });
        requests.push((b.request.grouping.clone(), value_at, presence));
    }
    let mut sets = vec!["(d)".to_string()];
    if whole {
        sets.insert(0, "()".to_string());
    }
    if leading {
        sets.push("(dl)".to_string());
    }
    sets.extend(dimensions.iter().map(|h| format!("(d, g{h})")));
    let _ = write!(
        sql,
        "SELECT {} FROM b3 GROUP BY GROUPING SETS ({})",
        select.join(", "),
        sets.join(", ")
    );
    TableQuery {
        sql,
        params,
        columns: select.len(),
        layout: Layout {
            dimensions,
            requests,
            lookups: joins.iter().map(|j| j.table.clone()).collect(),
            dated: binding.date.is_some(),
            date_column: table.date_column.clone().unwrap_or_default(),
            whole,
            leading,
        },
    }
}

/// The strict timestamp grammar of the CSV scan: date, optional time (seconds and fraction
/// optional), optional zone. Groups: 1-3 date, 4-6 time, 7 zone, 8 sign, 9-10 offset.
const TIMESTAMP: &str = "^(\\d{4})-(\\d{2})-(\\d{2})(?:[Tt ](\\d{2}):(\\d{2})(?::(\\d{2})(?:[.,]\\d+)?)?([Zz]|([+-])(\\d{2})(?::?(\\d{2}))?)?)?$";

/// The date an unparsable cell starts with (its leading day). Groups: 1-3 date.
const LEADING_DATE: &str = "^(\\d{4})-(\\d{2})-(\\d{2})";

/// A valid date from three text captures of `array` at `y`, `m`, `d` (1-based), else NULL.
fn valid_date(dialect: &dyn Dialect, array: &str, y: usize, m: usize, d: usize) -> String {
    let int = |i: usize| format!("CAST({} AS INTEGER)", dialect.capture(array, i));
    let (y, m, d) = (int(y), int(m), int(d));
    format!(
        "CASE WHEN {y} >= 1 AND {m} BETWEEN 1 AND 12 AND {d} >= 1 AND {d} <= {} \
         THEN make_date({y}, {m}, {d}) END",
        dialect.days_in_month(&y, &m)
    )
}

/// The day, empty, unparsable, naive and leading-day expressions of a date cell `dv` (and
/// `ds`, `m`, `ml` for text).
fn date_parts(
    dialect: &dyn Dialect,
    kind: Kind,
    naive: NaiveTimestamps,
) -> (String, String, String, String, String) {
    let null_date = "CAST(NULL AS DATE)".to_string();
    let typed_empty = "(dv IS NULL)".to_string();
    let not_empty = |empty: &str| format!("(NOT {empty})");
    match kind {
        Kind::TimestampTz => (
            dialect.utc_date("dv"),
            typed_empty,
            "FALSE".into(),
            "FALSE".into(),
            null_date,
        ),
        Kind::Timestamp => match naive {
            NaiveTimestamps::Utc => (
                "CAST(dv AS DATE)".into(),
                typed_empty,
                "FALSE".into(),
                "FALSE".into(),
                null_date,
            ),
            NaiveTimestamps::Reject => (
                null_date,
                typed_empty.clone(),
                not_empty(&typed_empty),
                not_empty(&typed_empty),
                "CAST(dv AS DATE)".into(),
            ),
        },
        Kind::Date => (
            "dv".into(),
            typed_empty,
            "FALSE".into(),
            "FALSE".into(),
            null_date,
        ),
        Kind::Text => {
            let empty = "(dv IS NULL OR ds = '')".to_string();
            let date = valid_date(dialect, "m", 1, 2, 3);
            let m = |i: usize| dialect.capture("m", i);
            let int = |i: usize| format!("COALESCE(CAST({} AS INTEGER), 0)", m(i));
            let time_ok = format!(
                "{} <= 23 AND {} <= 59 AND {} <= 59 AND {} <= 23 AND {} <= 59",
                int(4),
                int(5),
                int(6),
                int(9),
                int(10)
            );
            let ok = format!("(m IS NOT NULL AND {date} IS NOT NULL AND {time_ok})");
            let naive_cell = format!("({ok} AND {} IS NOT NULL AND {} IS NULL)", m(4), m(7));
            let offset = format!(
                "(CASE WHEN {} = '-' THEN -1 ELSE 1 END) * ({} * 3600 + {} * 60)",
                m(8),
                int(9),
                int(10)
            );
            let seconds = format!(
                "({} * 3600 + {} * 60 + {} - {offset})",
                int(4),
                int(5),
                int(6)
            );
            let shifted = format!(
                "{date} + (CASE WHEN {seconds} < 0 THEN -1 WHEN {seconds} >= 86400 THEN 1 ELSE 0 END)"
            );
            let (parsed, naive_rejected) = match naive {
                NaiveTimestamps::Utc => (ok.clone(), "FALSE".to_string()),
                NaiveTimestamps::Reject => (format!("({ok} AND NOT {naive_cell})"), naive_cell),
            };
            (
                format!("CASE WHEN {parsed} THEN {shifted} END"),
                empty.clone(),
                format!("(NOT {empty} AND NOT {parsed})"),
                format!("(NOT {empty} AND {naive_rejected})"),
                valid_date(dialect, "ml", 1, 2, 3),
            )
        }
        Kind::Integer | Kind::Float | Kind::Decimal | Kind::Other => (
            null_date.clone(),
            typed_empty.clone(),
            not_empty(&typed_empty),
            "FALSE".into(),
            null_date,
        ),
    }
}

/// A cell of the base, with its kind.
struct Cell<'a> {
    expr: String,
    kind: Kind,
    dialect: &'a dyn Dialect,
}

impl Cell<'_> {
    /// Whether the cell is empty: absent, empty, `NULL` or `null`.
    fn empty(&self) -> String {
        match self.kind {
            Kind::Text => format!("({0} IS NULL OR {0} IN ('', 'NULL', 'null'))", self.expr),
            _ => format!("({} IS NULL)", self.expr),
        }
    }

    /// The cell as text.
    fn text(&self) -> String {
        match self.kind {
            Kind::Text => self.expr.clone(),
            _ => format!("CAST({} AS {})", self.expr, self.dialect.text_type()),
        }
    }

    /// The number the cell holds (NULL when none), with the CSV scan's grammar for text.
    fn number(&self) -> String {
        let (e, dialect) = (&self.expr, self.dialect);
        let double = dialect.double_type();
        match self.kind {
            Kind::Integer => format!("CAST({e} AS {double})"),
            Kind::Float | Kind::Decimal => dialect.finite(e),
            Kind::Text => dialect.text_number(&dialect.trim(e, false)),
            Kind::TimestampTz | Kind::Timestamp | Kind::Date | Kind::Other => {
                format!("CAST(NULL AS {double})")
            }
        }
    }
}

/// `number <cmp> value` with Rust's meaning of NaN (unequal to everything, ordered with
/// nothing), which SQL engines do not share (PostgreSQL orders NaN above every number);
/// `constant` writes the value when it is a number or an infinity.
fn compare(number: &str, cmp: Cmp, value: f64, constant: impl FnOnce() -> String) -> String {
    if value.is_nan() {
        return match cmp {
            Cmp::Ne => format!("({number} IS NOT NULL)"),
            _ => "FALSE".into(),
        };
    }
    format!("{number} {} {}", cmp.symbol(), constant())
}

/// The aggregate of a request whose rows are flagged by column `f` (and, for duplicates,
/// the repeated keys by column `u`).
fn aggregate<'a>(b: &Bound, f: &str, u: &str, col: &dyn Fn(usize) -> Cell<'a>) -> String {
    let cell = b.column.map(col);
    match (&b.request.measure, cell) {
        (Measure::Rows, _) => format!("COUNT(*) FILTER (WHERE {f})"),
        (Measure::Distinct(_), Some(c)) => format!(
            "COUNT(DISTINCT {}) FILTER (WHERE {f} AND NOT {})",
            c.text(),
            c.empty()
        ),
        (Measure::Sum(_), Some(c)) => {
            format!("COALESCE(SUM({}) FILTER (WHERE {f}), 0)", c.number())
        }
        (Measure::SumSquares(_), Some(c)) => {
            let (n, double) = (c.number(), c.dialect.double_type());
            let bound = |v: f64| format!("CAST({v:e} AS {double})");
            let square = format!(
                "CASE WHEN ABS({n}) < {} THEN 0 WHEN ABS({n}) > {} THEN CAST('Infinity' AS \
                 {double}) ELSE {n} * {n} END",
                bound(crate::metric::SQUARE_MIN),
                bound(crate::metric::SQUARE_MAX)
            );
            format!("COALESCE(SUM({square}) FILTER (WHERE {f}), 0)")
        }
        (Measure::Numeric(_), Some(c)) => format!("COUNT({}) FILTER (WHERE {f})", c.number()),
        (Measure::Nulls(_), Some(c)) => format!("COUNT(*) FILTER (WHERE {f} AND {})", c.empty()),
        (Measure::NonNumeric(_), Some(c)) => format!(
            "COUNT(*) FILTER (WHERE {f} AND NOT {} AND {} IS NULL)",
            c.empty(),
            c.number()
        ),
        (Measure::Duplicates(_), Some(_)) => format!("COUNT(*) FILTER (WHERE {f} AND {u})"),
        (Measure::Where { cmp, value, .. }, Some(c)) => {
            let double = c.dialect.double_type();
            // A constant of the request itself, not user text: a literal is safe.
            let test = compare(&c.number(), *cmp, value.0, || match value.0 {
                v if v.is_finite() => format!("CAST({v:e} AS {double})"),
                v if v > 0.0 => format!("CAST('Infinity' AS {double})"),
                _ => format!("CAST('-Infinity' AS {double})"),
            });
            format!("COUNT(*) FILTER (WHERE {f} AND {test})")
        }
        (_, None) => "0".into(),
    }
}

impl TableQuery {
    /// Reads the result rows into the table's computed metrics and date stats.
    pub fn decode(&self, rows: &[Vec<Value>]) -> Computed {
        let layout = &self.layout;
        let k = layout.dimensions.len();
        // GROUPING(d, [dl,] g...) bits: 1 for an argument not grouped in the row's set.
        let leading = usize::from(layout.leading);
        let bits = 1 + leading + k;
        let all = (1u64 << bits) - 1;
        let d_bit = 1u64 << (bits - 1);
        let dl_bit = if layout.leading {
            1u64 << (bits - 2)
        } else {
            0
        };
        let dim_bit = |j: usize| 1u64 << (bits - 2 - leading - j);
        let total_set = all;
        let day_set = all & !d_bit;
        let leading_set = if layout.leading {
            all & !dl_bit
        } else {
            u64::MAX
        };
        let dim_set = |j: usize| all & !d_bit & !dim_bit(j);
        let stats_at = FIRST_DIMENSION + k;
        let mut computed = Computed {
            rows: 0,
            lookup_misses: layout.lookups.iter().map(|t| (t.clone(), 0)).collect(),
            dates: layout.dated.then(|| DateStats {
                column: layout.date_column.clone(),
                ..DateStats::default()
            }),
            values: layout
                .requests
                .iter()
                .map(|(g, _, _)| match g {
                    Grouping::Total => Grouped::Total(0.0),
                    Grouping::Day => Grouped::Daily(BTreeMap::new()),
                    Grouping::DayBy(_) => Grouped::DailyBy(BTreeMap::new()),
                })
                .collect(),
        };
        for row in rows {
            let gs = row[GS].number() as u64;
            // The table's counts: from the whole-table row, or added up over the day rows.
            if gs == total_set || (!layout.whole && gs == day_set) {
                let count = |at: usize| row[stats_at + at].number() as u64;
                computed.rows += count(0);
                if let Some(dates) = computed.dates.as_mut() {
                    dates.nulls += count(1);
                    dates.naive += count(3);
                    if let Value::TextArray(samples) = &row[stats_at + 4] {
                        dates.samples = samples.iter().flatten().cloned().collect();
                    }
                }
                for (l, table) in layout.lookups.iter().enumerate() {
                    *computed.lookup_misses.entry(table.clone()).or_default() += count(5 + l);
                }
            }
            if gs == leading_set {
                let count = row[stats_at + 2].number() as u64;
                if let (Some(dates), true) = (computed.dates.as_mut(), count > 0) {
                    *dates.unparsable.entry(row[LEADING_DAY].date()).or_default() += count;
                }
            }
            if gs == day_set {
                if let (Some(day), Some(dates)) = (row[DAY].date(), computed.dates.as_mut()) {
                    dates.rows_by_day.insert(day, row[stats_at].number() as u64);
                }
            }
            for ((grouping, at, presence), value) in
                layout.requests.iter().zip(computed.values.iter_mut())
            {
                match (grouping, value) {
                    (Grouping::Total, Grouped::Total(v)) if gs == total_set => {
                        *v = row[*at].number();
                    }
                    (Grouping::Day, Grouped::Daily(series)) if gs == day_set => {
                        if let Some(day) = row[DAY].date() {
                            series.insert(day, row[*at].number());
                        }
                    }
                    (Grouping::DayBy(_), Grouped::DailyBy(series)) => {
                        let Some((p, j)) = *presence else { continue };
                        let Some(day) = row[DAY].date().filter(|_| gs == dim_set(j)) else {
                            continue;
                        };
                        if row[p].number() > 0.0 {
                            let dim = row[FIRST_DIMENSION + j].text().unwrap_or("").to_string();
                            series
                                .entry(day)
                                .or_default()
                                .insert(dim, row[*at].number());
                        }
                    }
                    _ => {}
                }
            }
        }
        computed
    }
}
