"""The aggregates vigil computes, computed by DuckDB (all cores) from the same files.

Every metric request vigil's rules make (read from a `vigil run --metrics-out` file, or a JSON
list of requests) is translated to SQL with vigil's semantics (see aggspec.py): one GROUP BY
GROUPING SETS query per table, as vigil makes one pass per table, each request an aggregate with
its FILTER (the query is built by aggspec.sql_query, shared with postgres_aggregates.py); a
looked-up table is joined on its key (first row per key, in file order). Reads the
CSVs with `read_csv` (types sniffed by DuckDB) or, in a Parquet warehouse, the `.parquet` files
with `read_parquet`. Writes the values in `--metrics-out`'s shape, for bench/check.py.

Usage: python3 duckdb_aggregates.py WAREHOUSE_DIR --config vigil.yml --requests metrics.json
       [--out values.json] [--threads N]
"""

import argparse
import os
import sys

import duckdb

import aggspec

NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
           "UINTEGER", "UBIGINT", "UHUGEINT", "DECIMAL")
FLOATS = ("FLOAT", "DOUBLE", "REAL")
SPACES = "' ' || chr(9) || chr(10) || chr(12) || chr(13)"
lit, ident = aggspec.sql_literal, aggspec.sql_ident


class Cell(aggspec.SqlCell):
    """A cell in DuckDB's types (see aggspec.SqlCell)."""

    TEXT = "VARCHAR"
    TEXT_TYPES = ("VARCHAR",)

    def number(self) -> str:
        c = self.sql
        if self.type in NUMERIC:
            return f"CAST({c} AS DOUBLE)"
        if self.type in FLOATS:
            return f"(CASE WHEN isfinite({c}) THEN CAST({c} AS DOUBLE) END)"
        if self.type == "VARCHAR":
            parsed = f"TRY_CAST(trim({c}, {SPACES}) AS DOUBLE)"
            return f"(CASE WHEN isfinite({parsed}) THEN {parsed} END)"
        return "CAST(NULL AS DOUBLE)"

    def day(self, naive: str) -> str:
        """The UTC day, NULL when the cell has none (vigil's strict ISO-8601 / RFC 3339)."""
        c = self.sql
        if self.type in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
            return f"CAST({c} AS DATE)"
        if self.type == "DATE":
            return c
        if self.type.startswith("TIMESTAMP"):
            return f"CAST({c} AS DATE)" if naive == "utc" else "CAST(NULL AS DATE)"
        if self.type == "VARCHAR":
            t = f"trim({c}, {SPACES})"
            time = r"[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
            zone = r"([Zz]|[+-]\d{2}(:?\d{2})?)"
            out = (f"CASE WHEN regexp_full_match({t}, '\\d{{4}}-\\d{{2}}-\\d{{2}}') THEN TRY_CAST({t} AS DATE) "
                   f"WHEN regexp_full_match({t}, '\\d{{4}}-\\d{{2}}-\\d{{2}}{time}{zone}') "
                   f"THEN CAST(TRY_CAST({t} AS TIMESTAMPTZ) AS DATE) ")
            if naive == "utc":
                out += (f"WHEN regexp_full_match({t}, '\\d{{4}}-\\d{{2}}-\\d{{2}}{time}') "
                        f"THEN CAST(TRY_CAST({t} AS TIMESTAMP) AS DATE) ")
            return out + "END"
        return "CAST(NULL AS DATE)"


class DuckDB(aggspec.SqlDialect):
    cell = Cell
    null_is_empty_text = True  # read_csv reads an empty field as NULL

    def double(self, v: float) -> str:
        return f"CAST({lit(repr(float(v)))} AS DOUBLE)"

    def contains(self, text: str, needle: str) -> str:
        return f"contains(lower({text}), {lit(needle)})"


def source(path: str, fmt: str, row_numbers: bool) -> str:
    """The table as a relation; `__rn` numbers its rows in file order when asked."""
    if fmt == "parquet":
        if row_numbers:
            return (f"(SELECT * EXCLUDE (file_row_number), file_row_number AS __rn "
                    f"FROM read_parquet({lit(path)}, file_row_number = true))")
        return f"read_parquet({lit(path)})"
    scan = f"read_csv({lit(path)}, header = true)"
    # A window without PARTITION BY or ORDER BY streams in file order.
    return f"(SELECT *, row_number() OVER () AS __rn FROM {scan})" if row_numbers else scan


def types_of(con, relation: str) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}


def table_metrics(con, warehouse: str, layout: dict, name: str, requests: list[dict]) -> dict:
    """Computes the requests of one table; returns {request key: value or unavailable reason}."""
    table = layout[name]
    path, fmt = aggspec.table_file(warehouse, table)
    dup_requests = [r for r in requests if aggspec.measure(r)[0] == "duplicates"]
    relation = source(path, fmt, bool(dup_requests))
    own = types_of(con, relation)
    cells: dict[str, Cell] = {c: Cell(f"t.{ident(c)}", t) for c, t in own.items() if c != "__rn"}
    joins, ctes = [], []
    for i, lookup in enumerate(table["lookups"]):
        looked = layout[lookup["table"]]
        lpath, lfmt = aggspec.table_file(warehouse, looked)
        lrel = source(lpath, lfmt, True)
        ltypes = types_of(con, lrel)
        fk = lookup["foreign_key"]
        wanted = lookup["columns"]
        if lookup["key"] not in own or any(c not in ltypes for c in [fk, *wanted]):
            continue  # as in vigil, a lookup with a missing column brings no column at all
        values = "".join(f", {ident(c)} AS v{j}" for j, c in enumerate(wanted))
        ctes.append(
            f"lk{i} AS (SELECT CAST({ident(fk)} AS VARCHAR) AS __k{values} FROM {lrel} "
            f"QUALIFY row_number() OVER (PARTITION BY CAST({ident(fk)} AS VARCHAR) ORDER BY __rn) = 1)")
        joins.append(f"LEFT JOIN lk{i} ON lk{i}.__k = CAST(t.{ident(lookup['key'])} AS VARCHAR)")
        for j, c in enumerate(wanted):
            cells[f"{lookup['table']}.{c}"] = Cell(f"lk{i}.v{j}", ltypes[c], f"(lk{i}.__k IS NOT NULL)")

    results, todo, sql, dims = aggspec.sql_table_query(
        DuckDB(), requests, cells, table, name, relation, "t.__rn" if dup_requests else None, ctes, joins)
    if sql is None:
        return results
    if os.environ.get("BENCH_SHOW_SQL"):
        print(sql, file=sys.stderr)
    results.update(aggspec.sql_decode(con.execute(sql).fetchall(), todo, dims))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("warehouse")
    parser.add_argument("--config", required=True, help="the vigil config (tables, lookups, date columns)")
    parser.add_argument("--requests", required=True, help="a --metrics-out file or a JSON list of requests")
    parser.add_argument("--out", help="write the values here (--metrics-out shape)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.execute("SET TimeZone = 'UTC'")
    layout = aggspec.tables(args.config)
    requests = aggspec.load_requests(args.requests)
    by_table: dict[str, list] = {}
    for r in requests:
        by_table.setdefault(r["table"], []).append(r)
    values: dict[str, object] = {}
    for name, reqs in by_table.items():
        if name not in layout:
            values.update({aggspec.key(r): f"no table {name} in the config" for r in reqs})
            continue
        values.update(table_metrics(con, args.warehouse, layout, name, reqs))
    aggspec.write(args.out, [(r, values[aggspec.key(r)]) for r in requests], "duckdb")


if __name__ == "__main__":
    try:
        main()
    except aggspec.Unsupported as e:
        sys.exit(f"duckdb_aggregates: cannot compute {e}")
