"""The aggregates vigil computes, computed by DuckDB (all cores) from the same files.

Every metric request vigil's rules make (read from a `vigil run --metrics-out` file, or a JSON
list of requests) is translated to SQL with vigil's semantics (see aggspec.py): one GROUP BY
GROUPING SETS query per table, as vigil makes one pass per table, each request an aggregate with
its FILTER; a looked-up table is joined on its key (first row per key, in file order). Reads the
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
OPS = {"lt": "<", "le": "<=", "eq": "=", "ne": "<>", "ge": ">=", "gt": ">"}


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def double(v: float) -> str:
    return f"CAST({lit(repr(float(v)))} AS DOUBLE)"


def base_type(t: str) -> str:
    return t.split("(")[0].strip().upper()


class Cell:
    """A column of the row being aggregated: its SQL name, DuckDB type and, for a looked-up
    column, the SQL that says whether the lookup found a row (an absent cell otherwise)."""

    def __init__(self, sql: str, type_: str, found: str = "TRUE"):
        self.sql, self.type, self.found = sql, base_type(type_), found

    def empty(self) -> str:
        if self.type == "VARCHAR":
            return f"({self.sql} IS NULL OR {self.sql} IN ('', 'NULL', 'null'))"
        return f"({self.sql} IS NULL)"

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

    def text(self) -> str:
        return self.sql if self.type == "VARCHAR" else f"CAST({self.sql} AS VARCHAR)"

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


def condition(cell: Cell, op: str, arg) -> str:
    if op == "equals":
        if arg == "":
            return f"({cell.found} AND ({cell.sql} IS NULL OR {cell.text()} = ''))"
        return f"coalesce({cell.text()} = {lit(arg)}, false)"
    if op == "contains_ignore_case":
        if arg == "":
            return f"({cell.found})"
        return f"coalesce(contains(lower({cell.text()}), {lit(arg.lower())}), false)"
    if op == "empty":
        return cell.empty()
    if op == "not_empty":
        return f"(NOT {cell.empty()})"
    if op == "compare":
        cmp, value = arg
        return f"coalesce({cell.number()} {OPS[cmp]} {double(value)}, false)"
    raise aggspec.Unsupported(f"filter op {op}")


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

    date = table["date_column"]
    day = cells[date].day(table["naive_timestamps"]) if date in cells else "CAST(NULL AS DATE)"

    results, todo = aggspec.computable(requests, cells, date, name)
    if not todo:
        return results

    dims = aggspec.dimensions(todo)
    totals = any(aggspec.grouping(r)[0] == "total" for r in todo)

    # The cells the requests read, projected once as __c<j> (and whether a looked-up cell's row
    # was found as __f<j>).
    used = sorted({c for r in todo for c in aggspec.columns(r)})
    projected = [f"{day} AS __day"] + (["t.__rn AS __rn"] if dup_requests else [])
    renamed: dict[str, Cell] = {}
    for j, c in enumerate(used):
        projected += [f"{cells[c].sql} AS __c{j}", f"{cells[c].found} AS __f{j}"]
        renamed[c] = Cell(f"__c{j}", cells[c].type, f"__f{j}")
    cells = renamed
    prepared = []
    for k, d in enumerate(dims):
        cell = cells[d]
        prepared.append(f"CASE WHEN {cell.empty()} THEN '' ELSE {cell.text()} END AS __d{k}")
    aggregates = []
    for i, r in enumerate(todo):
        kind, arg = aggspec.measure(r)
        g, dim = aggspec.grouping(r)
        f = " AND ".join(condition(cells[c], op, a) for c, op, a in aggspec.conditions(r)) or "TRUE"
        if kind == "rows":
            agg = f"count(*) FILTER (WHERE {f})"
        elif kind == "distinct":
            c = cells[arg]
            agg = f"count(DISTINCT {c.sql}) FILTER (WHERE {f} AND NOT {c.empty()})"
        elif kind == "sum":
            agg = f"coalesce(sum({cells[arg].number()}) FILTER (WHERE {f}), 0)"
        elif kind == "numeric":
            agg = f"count(*) FILTER (WHERE {f} AND {cells[arg].number()} IS NOT NULL)"
        elif kind == "nulls":
            agg = f"count(*) FILTER (WHERE {f} AND {cells[arg].empty()})"
        elif kind == "non_numeric":
            c = cells[arg]
            agg = f"count(*) FILTER (WHERE {f} AND NOT {c.empty()} AND {c.number()} IS NULL)"
        elif kind == "where":
            c = cells[arg["column"]]
            value = aggspec.number(arg["value"])
            agg = f"count(*) FILTER (WHERE {f} AND coalesce({c.number()} {OPS[arg['cmp']]} {double(value)}, false))"
        elif kind == "duplicates":
            # Among the rows the request counts (its filter; a day unless a total), in file
            # order, rows whose value (empty ones equal) an earlier row had.
            c = cells[arg]
            counted = f"({f})" if g == "total" else f"({f} AND __day IS NOT NULL)"
            value = f"CASE WHEN {c.empty()} THEN NULL ELSE {c.text()} END"
            prepared.append(
                f"{counted} AND row_number() OVER (PARTITION BY {counted}, {value} ORDER BY __rn) > 1 AS __dup{i}")
            agg = f"count(*) FILTER (WHERE __dup{i})"
        else:
            raise aggspec.Unsupported(f"measure {kind}")
        aggregates.append(f"{agg} AS a{i}")
        if g == "day_by":
            aggregates.append(f"count(*) FILTER (WHERE {f}) AS p{i}")
        else:
            aggregates.append(f"0 AS p{i}")

    keys = ["__day"] + [f"__d{k}" for k in range(len(dims))]
    sets = ["(__day)"] + [f"(__day, __d{k})" for k in range(len(dims))] + (["()"] if totals else [])
    with_ = f"WITH {', '.join(ctes)} " if ctes else ""
    rows_sql = f"SELECT {', '.join(projected)} FROM {relation} t {' '.join(joins)}"
    if prepared:
        rows_sql = f"SELECT *, {', '.join(prepared)} FROM ({rows_sql})"
    sql = (
        f"{with_}SELECT GROUPING({', '.join(keys)}) AS __g, {', '.join(keys)}, {', '.join(aggregates)} "
        f"FROM ({rows_sql}) GROUP BY GROUPING SETS ({', '.join(sets)})"
    )
    if os.environ.get("BENCH_SHOW_SQL"):
        print(sql, file=sys.stderr)
    rows = con.execute(sql).fetchall()

    n = len(dims)
    day_set = (1 << n) - 1
    total_set = (1 << (n + 1)) - 1
    dim_set = {d: day_set & ~(1 << (n - 1 - k)) for k, d in enumerate(dims)}
    days = sorted(row[1] for row in rows if row[0] == day_set and row[1] is not None)
    span = aggspec.span_days(days[0], days[-1]) if days else []
    first = 2 + n
    for i, r in enumerate(todo):
        kind, _ = aggspec.measure(r)
        g, dim = aggspec.grouping(r)
        a, p = first + 2 * i, first + 2 * i + 1
        if g == "total":
            value = next((row[a] for row in rows if row[0] == total_set), 0)
            results[aggspec.key(r)] = {"total": float(value or 0)}
        elif g == "day":
            values = {row[1]: row[a] for row in rows if row[0] == day_set and row[1] is not None}
            results[aggspec.key(r)] = aggspec.daily(span, values)
        else:
            k = dims.index(dim)
            by: dict = {}
            for row in rows:
                if row[0] == dim_set[dim] and row[1] is not None and row[p] > 0:
                    by.setdefault(row[1], {})[row[2 + k]] = row[a]
            results[aggspec.key(r)] = aggspec.daily_by(span, by)
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
