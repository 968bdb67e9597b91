"""The aggregates vigil computes, as the hand-written Spark SQL a data engineer would run on a
Spark cluster through Spark Connect (PySpark's client).

Every metric request vigil's rules make (read from a `vigil run --metrics-out` file, or a JSON
list of requests) is translated to Spark SQL with vigil's semantics (see aggspec.py): one plain
GROUP BY GROUPING SETS query per table, each request an aggregate with its FILTER (the query is
built by aggspec.sql_query, shared with duckdb_aggregates.py and postgres_aggregates.py), over
the table's typed columns as Spark reads them from the Parquet files (the types come from the
relation's schema: STRING, BIGINT, DOUBLE, TIMESTAMP, ...); a looked-up table is joined on its
key as text (first row per key in file order: ROW_NUMBER() OVER (PARTITION BY key ORDER BY
_metadata.file_path, _metadata.row_index) = 1, an empty key finds none), and file order for
duplicates is (_metadata.file_path, _metadata.row_index).

Where the typed columns leave no choice the SQL is what vigil's Spark source does too: a NULL is
an absent cell (it neither equals "" nor contains ""), a float is a number unless NaN or
infinite, a TIMESTAMP's day is its date in the session time zone UTC, a TIMESTAMP_NTZ counts only
with `naive_timestamps: utc`; a text cell holds a number per vigil's text-number grammar
(trimmed, `[+-]digits[.digits][e[+-]digits]`, finite, via try_cast) and a text date column is
read with vigil's strict date / timestamp grammar (RLIKE, regexp_extract, make_date). Every
session is set as vigil sets its own: spark.sql.session.timeZone=UTC, spark.sql.ansi.enabled=false
(make_date of an invalid date is NULL), current database the warehouse's.

  --sql-out FILE   writes the tables' statements (one per table, in request order) to FILE, and
                   what decodes their rows to FILE.json (the requests of each, its dimensions,
                   the unavailable ones);
  --out FILE       runs each statement and writes the values in `--metrics-out`'s shape, for
                   bench/check.py (the SQL run is the same text as in --sql-out);
  --run-sql FILE   the timed tool: connects, sets the session, runs FILE's statements one after
                   the other and collects their rows (nothing else: no schema look-up, no
                   decoding); with --out, it then decodes the rows with FILE.json and writes
                   the values (the benchmark checks the very statements it times this way);
  --startup        only the client's start: Python, importing PySpark, the session and its
                   settings (`SELECT 1` to make sure the server answered);
  --register DB DIR  (re)creates database DB with one table per `<stem>.parquet` of DIR
                   (`CREATE TABLE DB.stem USING parquet LOCATION ...`, MSCK REPAIR TABLE for a
                   partitioned `<stem>/` folder), as tests/src/spark.rs does.

Runs under a Python with pyspark[connect] (target/spark/venv-<version>/bin/python, made by
scripts/spark-cluster.sh) and pyyaml.

Usage: python spark_aggregates.py sc://HOST:PORT --database DB --config vigil.yml
       --requests metrics.json [--out values.json] [--sql-out queries.sql]
       python spark_aggregates.py sc://HOST:PORT --database DB --run-sql queries.sql [--out values.json]
       python spark_aggregates.py sc://HOST:PORT --register DB PARQUET_DIR
"""

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import aggspec  # noqa: E402

# Statements in a --sql-out file end with a line holding only this.
END = "\n;\n"
INTEGERS = ("TINYINT", "SMALLINT", "INT", "BIGINT", "BYTE", "SHORT", "INTEGER", "LONG")
FLOATS = ("FLOAT", "DOUBLE", "REAL")
BLANKS = " \t\n\r\x0c"  # vigil's blanks (engine/src/sql.rs)
# vigil's text-number grammar (as the Spark dialect, sources/spark/src/dialect.rs).
NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\z"
# vigil's strict date / timestamp grammar: groups 1-3 date, 4-6 time, 7 zone, 8 sign,
# 9-10 offset (as postgres_aggregates.STAMP; `\z`: Java's `$` also matches before a final
# line terminator).
STAMP = (r"^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?"
         r"([Zz]|([+-])(\d{2})(?::?(\d{2}))?)?)?\z")


def lit(text: str) -> str:
    """A Spark SQL string literal: Spark reads backslash escapes, so a backslash and a quote are
    escaped."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def trimmed(c: str) -> str:
    return f"trim(BOTH {lit(BLANKS)} FROM {c})"


class Cell(aggspec.SqlCell):
    """A cell in Spark's types (DataType.simpleString(), upper case; see aggspec.SqlCell)."""

    TEXT = "STRING"
    TEXT_TYPES = ("STRING", "VARCHAR", "CHAR")

    def number(self) -> str:
        c = self.sql
        if self.type in INTEGERS or self.type == "DECIMAL":
            return f"CAST({c} AS DOUBLE)"
        if self.type in FLOATS:
            return (f"(CASE WHEN isnan({c}) OR abs({c}) = CAST('Infinity' AS DOUBLE) THEN NULL "
                    f"ELSE CAST({c} AS DOUBLE) END)")
        if self.is_text():
            t = trimmed(c)
            return (f"(CASE WHEN {t} RLIKE {lit(NUMBER)} AND abs(try_cast({t} AS DOUBLE)) "
                    f"<> CAST('Infinity' AS DOUBLE) THEN try_cast({t} AS DOUBLE) END)")
        return "CAST(NULL AS DOUBLE)"

    def day(self, naive: str) -> str:
        c = self.sql
        if self.type == "TIMESTAMP":
            return f"CAST({c} AS DATE)"  # the session's time zone is UTC
        if self.type == "DATE":
            return c
        if self.type == "TIMESTAMP_NTZ":
            return f"CAST({c} AS DATE)" if naive == "utc" else "CAST(NULL AS DATE)"
        if self.is_text():
            return text_day(c, naive)
        return "CAST(NULL AS DATE)"


def text_day(c: str, naive: str) -> str:
    """The UTC day of a text cell (NULL when not a valid date or timestamp, or a timestamp
    without a zone unless `naive` is "utc"); make_date of an invalid date is NULL (ANSI off)."""
    t = trimmed(c)
    g = lambda i: f"nullif(regexp_extract({t}, {lit(STAMP)}, {i}), '')"  # noqa: E731
    n = lambda i: f"CAST({g(i)} AS INT)"  # noqa: E731
    z = lambda i: f"coalesce(CAST({g(i)} AS INT), 0)"  # noqa: E731
    date = f"(CASE WHEN {n(1)} >= 1 THEN make_date({n(1)}, {n(2)}, {n(3)}) END)"
    seconds = (f"({n(4)} * 3600 + {n(5)} * 60 + {z(6)} - (CASE WHEN {g(8)} = '-' THEN -1 ELSE 1 END) "
               f"* ({z(9)} * 3600 + {z(10)} * 60))")
    return (
        f"(CASE WHEN NOT coalesce({t} RLIKE {lit(STAMP)}, false) THEN CAST(NULL AS DATE) "
        f"WHEN {g(4)} IS NULL THEN {date} "
        f"WHEN NOT ({n(4)} <= 23 AND {n(5)} <= 59 AND {z(6)} <= 59 AND {z(9)} <= 23 AND {z(10)} <= 59) "
        f"THEN CAST(NULL AS DATE) "
        f"WHEN {g(7)} IS NULL THEN {date if naive == 'utc' else 'CAST(NULL AS DATE)'} "
        f"ELSE date_add({date}, CASE WHEN {seconds} < 0 THEN -1 WHEN {seconds} >= 86400 THEN 1 ELSE 0 END) END)"
    )


class Spark(aggspec.SqlDialect):
    cell = Cell
    null_is_empty_text = False  # a NULL is an absent cell, as vigil's Spark source reads it

    def double(self, v: float) -> str:
        text = "Infinity" if v == float("inf") else "-Infinity" if v == float("-inf") else repr(float(v))
        return f"CAST({lit(text)} AS DOUBLE)"

    def literal(self, text: str) -> str:
        return lit(text)

    def grouping(self, keys: list[str]) -> str:
        return f"grouping_id({', '.join(keys)})"

    def contains(self, text: str, needle: str) -> str:
        return f"instr(lower({text}), {lit(needle)}) > 0"


def relation_sql(name: str) -> str:
    return ".".join(ident(part) for part in name.split("."))


def session(url: str, database: str | None):
    """A Spark Connect session set as vigil sets its own (UTC, ANSI off, the database)."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(url).getOrCreate()
    for statement in ("SET spark.sql.session.timeZone = UTC", "SET spark.sql.ansi.enabled = false",
                      *([f"USE {relation_sql(database)}"] if database else [])):
        spark.sql(statement).collect()
    return spark


def columns(spark, relation: str) -> dict[str, str] | None:
    """{column: Spark type, upper case} of a relation, None when it does not exist."""
    try:
        schema = spark.sql(f"SELECT * FROM {relation_sql(relation)}").schema
    except Exception as e:  # noqa: BLE001 - the client raises AnalysisException subclasses
        if "TABLE_OR_VIEW_NOT_FOUND" in str(e):
            return None
        raise
    return {f.name: f.dataType.simpleString().upper() for f in schema.fields}


def table_sql(spark, layout: dict, name: str, requests: list[dict]) -> tuple[dict, list, str | None, list]:
    """(unavailable results by key, the requests computed, their SQL or None, dimensions)."""
    table = layout[name]
    own = columns(spark, table["relation"])
    if own is None:
        return {aggspec.key(r): f"no relation {table['relation']}" for r in requests}, [], None, []
    cells: dict[str, Cell] = {c: Cell(f"t.{ident(c)}", t) for c, t in own.items()}
    joins, ctes = [], []
    for i, lookup in enumerate(table["lookups"]):
        looked = layout.get(lookup["table"])
        ltypes = columns(spark, looked["relation"]) if looked else None
        fk, key, wanted = lookup["foreign_key"], lookup["key"], lookup["columns"]
        if ltypes is None or key not in own or any(c not in ltypes for c in [fk, *wanted]):
            continue  # as in vigil, a lookup with a missing column brings no column at all
        # Keys compared as text (as vigil does); an empty key finds none.
        fk_sql, key_sql = f"CAST(f.{ident(fk)} AS STRING)", f"CAST(t.{ident(key)} AS STRING)"
        values = "".join(f", f.{ident(c)} AS v{j}" for j, c in enumerate(wanted))
        outer = "".join(f", v{j}" for j in range(len(wanted)))
        ctes.append(
            f"lk{i} AS (SELECT __k{outer} FROM (SELECT {fk_sql} AS __k{values}, ROW_NUMBER() OVER "
            f"(PARTITION BY {fk_sql} ORDER BY f._metadata.file_path, f._metadata.row_index) AS __first "
            f"FROM {relation_sql(looked['relation'])} f WHERE f.{ident(fk)} IS NOT NULL) WHERE __first = 1)")
        joins.append(f"LEFT JOIN lk{i} ON lk{i}.__k = {key_sql} AND {key_sql} <> ''")
        for j, c in enumerate(wanted):
            cells[f"{lookup['table']}.{c}"] = Cell(f"lk{i}.v{j}", ltypes[c], f"(lk{i}.__k IS NOT NULL)")

    return aggspec.sql_table_query(Spark(), requests, cells, table, name, relation_sql(table["relation"]),
                                   "struct(t._metadata.file_path, t._metadata.row_index)", ctes, joins)


def decode(rows: list, dims: list[str]) -> list:
    """Spark's rows as sql_decode wants them (the aggregates as floats, NULL as None)."""
    first = 2 + len(dims)
    return [[int(row[0]), row[1], *row[2:first], *(None if x is None else float(x) for x in row[first:])]
            for row in rows]


def register(url: str, db: str, folder: Path) -> None:
    """(Re)creates database `db` with a table per Parquet file or partitioned folder."""
    spark = session(url, None)
    spark.sql(f"DROP DATABASE IF EXISTS {ident(db)} CASCADE").collect()
    spark.sql(f"CREATE DATABASE {ident(db)}").collect()
    for path in sorted(folder.iterdir()):
        stem = path.name.removesuffix(".parquet")
        if not (path.is_dir() or path.suffix == ".parquet"):
            continue
        spark.sql(f"CREATE TABLE {ident(db)}.{ident(stem)} USING parquet LOCATION {lit(str(path))}").collect()
        if path.is_dir():
            spark.sql(f"MSCK REPAIR TABLE {ident(db)}.{ident(stem)}").collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the Spark Connect server, sc://host:port")
    parser.add_argument("--database", help="the database the relations are in")
    parser.add_argument("--config", help="the vigil config (tables, lookups, date columns)")
    parser.add_argument("--requests", help="a --metrics-out file or a JSON list of requests")
    parser.add_argument("--out", help="run the queries and write the values here (--metrics-out shape)")
    parser.add_argument("--sql-out", help="write the queries here, one statement per table")
    parser.add_argument("--run-sql", help="run this file's statements, collect their rows (the timed tool)")
    parser.add_argument("--startup", action="store_true", help="only start the client and its session")
    parser.add_argument("--register", nargs=2, metavar=("DB", "DIR"))
    args = parser.parse_args()

    if args.register:
        register(args.url, args.register[0], Path(args.register[1]).resolve())
        return
    spark = session(args.url, args.database)
    if args.startup:
        spark.sql("SELECT 1").collect()
        return
    if args.run_sql:
        text = Path(args.run_sql).read_text()
        answers = [spark.sql(statement).collect() for statement in text.split(END) if statement.strip()]
        if args.out:
            plan = json.loads(Path(args.run_sql + ".json").read_text())
            values = dict(plan["unavailable"])
            for rows, (todo, dims) in zip(answers, plan["statements"], strict=True):
                values.update(aggspec.sql_decode(decode(rows, dims), todo, dims))
            aggspec.write(args.out, [(r, values[aggspec.key(r)]) for r in plan["requests"]], "spark")
        return
    if not (args.config and args.requests):
        sys.exit("spark_aggregates: --config and --requests are needed")

    layout = aggspec.tables(args.config)
    requests = aggspec.load_requests(args.requests)
    by_table: dict[str, list] = {}
    for r in requests:
        by_table.setdefault(r["table"], []).append(r)
    values: dict[str, object] = {}
    statements, decoding = [], []
    run = bool(args.out or not args.sql_out)
    for name, reqs in by_table.items():
        if name not in layout:
            values.update({aggspec.key(r): f"no table {name} in the config" for r in reqs})
            continue
        results, todo, sql, dims = table_sql(spark, layout, name, reqs)
        values.update(results)
        if sql is None:
            continue
        statements.append(f"-- {name}: {len(todo)} metrics\n{sql}{END}")
        decoding.append((todo, dims))
        if os.environ.get("BENCH_SHOW_SQL"):
            print(sql, file=sys.stderr)
        if run:
            values.update(aggspec.sql_decode(decode(spark.sql(sql).collect(), dims), todo, dims))
    if args.sql_out:
        Path(args.sql_out).write_text("".join(statements))
        unavailable = {k: v for k, v in values.items() if isinstance(v, str)}
        Path(args.sql_out + ".json").write_text(json.dumps(
            {"requests": requests, "statements": decoding, "unavailable": unavailable}) + "\n")
    if run:
        aggspec.write(args.out, [(r, values[aggspec.key(r)]) for r in requests], "spark")


if __name__ == "__main__":
    try:
        main()
    except aggspec.Unsupported as e:
        sys.exit(f"spark_aggregates: cannot compute {e}")
