"""The aggregates vigil computes, as the hand-written SQL a DBA would run on PostgreSQL.

Every metric request vigil's rules make (read from a `vigil run --metrics-out` file, or a JSON
list of requests) is translated to SQL with vigil's semantics (see aggspec.py): one plain
GROUP BY GROUPING SETS query per table, each request an aggregate with its FILTER (the query is
built by aggspec.sql_query, shared with duckdb_aggregates.py), over the table's typed columns as
PostgreSQL holds them; a looked-up table is joined on its key (first row per key in storage
order: DISTINCT ON ... ORDER BY key, ctid). The column types come from the server's catalog.

Where the typed columns leave no choice the SQL is what vigil's PostgreSQL source does too: a
NULL is an absent cell (so it neither equals "" nor contains ""), a float is a number unless
NaN or infinite, a timestamptz's day is its UTC date, a timestamp counts only with
`naive_timestamps: utc`; a text cell holds a number per vigil's text-number grammar (trimmed,
`[+-]digits[.digits][e[+-]digits]`, exponent of at most 4 digits, as vigil's own SQL) and a
text date column is read with vigil's strict date / timestamp grammar.

  --sql-out FILE   writes the tables' statements (one per table, in request order) to FILE:
                   the benchmark times `psql -f FILE` on them;
  --out FILE       runs each statement with psql and writes the values in `--metrics-out`'s
                   shape, for bench/check.py (the SQL run is the same text as in --sql-out).

Usage: python3 postgres_aggregates.py postgres://USER@HOST:PORT/DB --config vigil.yml
       --requests metrics.json [--out values.json] [--sql-out queries.sql] [--psql PATH]
"""

import argparse
import csv
import datetime as dt
import io
import os
import shutil
import subprocess
import sys

import aggspec

lit, ident = aggspec.sql_literal, aggspec.sql_ident

INTEGERS = ("INT2", "INT4", "INT8")
FLOATS = ("FLOAT4", "FLOAT8", "NUMERIC")
SPACES = r"E' \t\n\r\f'"
# vigil's text-number grammar on PostgreSQL (engine/src/sql.rs, Cell::number).
NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,4})?$"
# vigil's strict date / timestamp grammar (engine/src/sql.rs, TIMESTAMP): groups 1-3 date,
# 4-6 time, 7 zone, 8 sign, 9-10 offset.
STAMP = (r"^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?"
         r"([Zz]|([+-])(\d{2})(?::?(\d{2}))?)?)?$")


class Cell(aggspec.SqlCell):
    """A cell in PostgreSQL's types (`pg_type.typname`, upper case; see aggspec.SqlCell)."""

    TEXT = "TEXT"
    TEXT_TYPES = ("TEXT", "VARCHAR", "BPCHAR", "NAME", "CITEXT")

    def number(self) -> str:
        c = self.sql
        if self.type in INTEGERS:
            return f"CAST({c} AS DOUBLE PRECISION)"
        if self.type in FLOATS:
            # NaN sorts above every number in PostgreSQL: this keeps finite values only.
            return (f"(CASE WHEN {c} > '-Infinity' AND {c} < 'Infinity' "
                    f"THEN CAST({c} AS DOUBLE PRECISION) END)")
        if self.is_text():
            t = f"btrim({c}, {SPACES})"
            n = f"CAST({t} AS NUMERIC)"
            return (f"(CASE WHEN {t} ~ {lit(NUMBER)} THEN CASE "
                    f"WHEN abs({n}) >= 1.7976931348623157e308 THEN NULL "
                    f"WHEN abs({n}) < 1e-300 THEN CAST(0 AS DOUBLE PRECISION) "
                    f"ELSE CAST({n} AS DOUBLE PRECISION) END END)")
        return "CAST(NULL AS DOUBLE PRECISION)"

    def day(self, naive: str) -> str:
        c = self.sql
        if self.type == "TIMESTAMPTZ":
            return f"CAST({c} AT TIME ZONE 'UTC' AS DATE)"
        if self.type == "DATE":
            return c
        if self.type == "TIMESTAMP":
            return f"CAST({c} AS DATE)" if naive == "utc" else "CAST(NULL AS DATE)"
        if self.is_text():
            return text_day(c, naive)
        return "CAST(NULL AS DATE)"


def text_day(c: str, naive: str) -> str:
    """The UTC day of a text cell (NULL when not a valid date or timestamp, or a timestamp
    without a zone unless `naive` is "utc"), as one scalar subquery over its regexp match."""
    n = lambda i: f"CAST(m[{i}] AS INTEGER)"  # noqa: E731
    z = lambda i: f"coalesce(CAST(m[{i}] AS INTEGER), 0)"  # noqa: E731
    date = f"make_date({n(1)}, {n(2)}, {n(3)})"
    seconds = (f"({n(4)} * 3600 + {n(5)} * 60 + {z(6)} - (CASE WHEN m[8] = '-' THEN -1 ELSE 1 END) "
               f"* ({z(9)} * 3600 + {z(10)} * 60))")
    return (
        f"(SELECT CASE WHEN m IS NULL THEN NULL "
        f"WHEN NOT ({n(1)} >= 1 AND {n(2)} BETWEEN 1 AND 12 AND {n(3)} >= 1) THEN NULL "
        f"WHEN {n(3)} > EXTRACT(DAY FROM make_date({n(1)}, {n(2)}, 1) + INTERVAL '1 month - 1 day') THEN NULL "
        f"WHEN m[4] IS NULL THEN {date} "
        f"WHEN NOT ({n(4)} <= 23 AND {n(5)} <= 59 AND {z(6)} <= 59 AND {z(9)} <= 23 AND {z(10)} <= 59) THEN NULL "
        f"WHEN m[7] IS NULL THEN {date if naive == 'utc' else 'CAST(NULL AS DATE)'} "
        f"ELSE {date} + (CASE WHEN {seconds} < 0 THEN -1 WHEN {seconds} >= 86400 THEN 1 ELSE 0 END) END "
        f"FROM (SELECT regexp_match(btrim({c}, {SPACES}), {lit(STAMP)}) AS m) AS __m)"
    )


class Postgres(aggspec.SqlDialect):
    cell = Cell
    null_is_empty_text = False  # a database NULL is an absent cell, as vigil reads it

    def double(self, v: float) -> str:
        text = "Infinity" if v == float("inf") else "-Infinity" if v == float("-inf") else repr(float(v))
        return f"CAST({lit(text)} AS DOUBLE PRECISION)"

    def contains(self, text: str, needle: str) -> str:
        return f"strpos(lower({text}), {lit(needle)}) > 0"


def relation_sql(name: str) -> str:
    return ".".join(ident(part) for part in name.split("."))


class Psql:
    """Runs SQL through psql on one database."""

    def __init__(self, psql: str, url: str):
        self.command = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url]

    def rows(self, sql: str) -> list[list[str]]:
        """The rows of one statement as text (NULL as "")."""
        done = subprocess.run(self.command + ["--csv", "-t", "-f", "-"], input=sql,
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"postgres_aggregates: psql failed: {done.stderr}\n{sql[:2000]}")
        return list(csv.reader(io.StringIO(done.stdout)))

    def columns(self, relation: str) -> dict[str, str] | None:
        """{column: typname upper case} of a relation, None when it does not exist."""
        quoted = lit(relation_sql(relation))
        rows = self.rows(
            f"SELECT a.attname, upper(t.typname) FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            f"WHERE to_regclass({quoted}) IS NOT NULL AND a.attrelid = to_regclass({quoted}) "
            f"AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum")
        return {r[0]: r[1] for r in rows} or None


def table_sql(db: Psql, layout: dict, name: str, requests: list[dict]) -> tuple[dict, list, str | None, list]:
    """(unavailable results by key, the requests computed, their SQL or None, dimensions)."""
    table = layout[name]
    own = db.columns(table["relation"])
    if own is None:
        return {aggspec.key(r): f"no relation {table['relation']}" for r in requests}, [], None, []
    cells: dict[str, Cell] = {c: Cell(f"t.{ident(c)}", t) for c, t in own.items()}
    joins, ctes = [], []
    for i, lookup in enumerate(table["lookups"]):
        looked = layout.get(lookup["table"])
        ltypes = db.columns(looked["relation"]) if looked else None
        fk, key, wanted = lookup["foreign_key"], lookup["key"], lookup["columns"]
        if ltypes is None or key not in own or any(c not in ltypes for c in [fk, *wanted]):
            continue  # as in vigil, a lookup with a missing column brings no column at all
        # Keys of one type are compared as they are, else as text; an empty text key finds none.
        same = own[key] == ltypes[fk]
        fk_sql, key_sql = (f"f.{ident(fk)}", f"t.{ident(key)}") if same else (
            f"CAST(f.{ident(fk)} AS TEXT)", f"CAST(t.{ident(key)} AS TEXT)")
        values = "".join(f", f.{ident(c)} AS v{j}" for j, c in enumerate(wanted))
        ctes.append(f"lk{i} AS (SELECT DISTINCT ON ({fk_sql}) {fk_sql} AS __k{values} "
                    f"FROM {relation_sql(looked['relation'])} f WHERE {fk_sql} IS NOT NULL "
                    f"ORDER BY {fk_sql}, f.ctid)")
        text_key = not same or Cell("", own[key]).is_text()
        joins.append(f"LEFT JOIN lk{i} ON lk{i}.__k = {key_sql}" + (f" AND {key_sql} <> ''" if text_key else ""))
        for j, c in enumerate(wanted):
            cells[f"{lookup['table']}.{c}"] = Cell(f"lk{i}.v{j}", ltypes[c], f"(lk{i}.__k IS NOT NULL)")

    return aggspec.sql_table_query(Postgres(), requests, cells, table, name,
                                   relation_sql(table["relation"]), "t.ctid", ctes, joins)


def decode(rows: list[list[str]], dims: list[str], todo: list[dict]) -> list:
    """psql's CSV rows as sql_decode wants them: the grouping as an integer, the day as a date
    (None for NULL), the dimensions as text, the aggregates as floats."""
    first = 2 + len(dims)
    out = []
    for row in rows:
        out.append([int(row[0]), dt.date.fromisoformat(row[1]) if row[1] else None, *row[2:first],
                    *(float(x) if x != "" else None for x in row[first:])])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the database, as a libpq URL (postgres://user@host:port/db)")
    parser.add_argument("--config", required=True, help="the vigil config (tables, lookups, date columns)")
    parser.add_argument("--requests", required=True, help="a --metrics-out file or a JSON list of requests")
    parser.add_argument("--out", help="run the queries and write the values here (--metrics-out shape)")
    parser.add_argument("--sql-out", help="write the queries here, one statement per table")
    parser.add_argument("--psql", default=shutil.which("psql") or "psql")
    args = parser.parse_args()

    db = Psql(args.psql, args.url)
    layout = aggspec.tables(args.config)
    requests = aggspec.load_requests(args.requests)
    by_table: dict[str, list] = {}
    for r in requests:
        by_table.setdefault(r["table"], []).append(r)
    values: dict[str, object] = {}
    statements = []
    run = bool(args.out or not args.sql_out)
    for name, reqs in by_table.items():
        if name not in layout:
            values.update({aggspec.key(r): f"no table {name} in the config" for r in reqs})
            continue
        results, todo, sql, dims = table_sql(db, layout, name, reqs)
        values.update(results)
        if sql is None:
            continue
        statements.append(f"-- {name}: {len(todo)} metrics\n{sql};\n")
        if os.environ.get("BENCH_SHOW_SQL"):
            print(sql, file=sys.stderr)
        if run:
            values.update(aggspec.sql_decode(decode(db.rows(sql), dims, todo), todo, dims))
    if args.sql_out:
        with open(args.sql_out, "w") as f:
            f.write("".join(statements))
    if run:
        aggspec.write(args.out, [(r, values[aggspec.key(r)]) for r in requests], "postgres")


if __name__ == "__main__":
    try:
        main()
    except aggspec.Unsupported as e:
        sys.exit(f"postgres_aggregates: cannot compute {e}")
