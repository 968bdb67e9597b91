"""What the benchmark's engines share: the warehouse layout of a vigil config, the metric
requests to compute (as vigil's `--metrics-out` writes them), and the values file they write;
for the SQL engines (duckdb_aggregates.py, postgres_aggregates.py, spark_aggregates.py), the
one query per table (`sql_query`: GROUP BY GROUPING SETS, each request an aggregate with its
FILTER) and the decoding of its rows (`sql_decode`), with a dialect for what differs (SqlCell,
SqlDialect: cells, constants, the grouping function).

A request is the JSON of vigil's `MetricRequest` (rule-api/src/metric.rs):
  {"table", "measure", "grouping", "filter"}
  measure:  "rows" | {"distinct"|"sum"|"numeric"|"nulls"|"non_numeric"|"duplicates": column}
            | {"where": {"column", "cmp", "value"}}
  grouping: "total" | "day" | {"day_by": dimension}
  filter:   null | {"all": [{"column", "op"}]}, op: {"equals": text}
            | {"contains_ignore_case": text} | "empty" | "not_empty" | {"compare": [cmp, value]}
A value is {"total": x} | {"daily": [[day, x], ...]} | {"daily_by": [[day, [[dim, x], ...]], ...]},
or the entry holds "unavailable": reason instead of "value".

What the measures mean, as vigil computes them (the engines must match this exactly):
  * a cell is empty when absent (short row, lookup not found), empty, `NULL` or `null`;
  * it holds a number when, trimmed of spaces, it parses as a finite number;
  * distinct counts non-empty values; sum adds numeric cells; numeric, nulls, non_numeric count
    cells; where counts numeric cells comparing so with the constant;
  * duplicates counts rows whose value (empty cells equal to each other) appeared in an earlier
    row, in file order, among the rows the request counts (those that pass its filter and, when
    grouped by day, have a day);
  * a day is the UTC day of the table's date column (a date, or a timestamp with an offset;
    timestamps without one count only with `naive_timestamps: utc`); `total` counts every row,
    `day` and `day_by` only rows with a day;
  * `daily` holds every day of the table's span (first to last day with rows, any filter
    aside), 0 where nothing counted; `daily_by` holds every day of the span, each with the
    dimension values (empty ones as "") of the rows that passed the filter that day;
  * a looked-up column `<table>.<column>` comes from the first row (file order) of the looked-up
    table with the row's non-empty key; a table dated by a looked-up column has no day when the
    key is not found.
"""

import datetime as dt
import json
import math
import os
from pathlib import Path

import yaml

# vigil's layout when a config has no `tables` (the Puffy warehouse).
DEFAULT_TABLES = {
    "sessions": {"file": "fct_sessions.csv", "date_column": "session_start"},
    "orders": {"file": "fct_orders.csv", "date_column": "order_ts"},
    "attribution": {
        "file": "fct_attribution.csv",
        "date_column": "orders.order_ts",
        "lookups": [{"table": "orders", "key": "transaction_id", "columns": ["order_ts", "revenue"]}],
    },
}

COUNT_MEASURES = {"rows", "distinct", "numeric", "nulls", "non_numeric", "duplicates", "where"}


class Unsupported(Exception):
    """A request this engine cannot compute: the check fails on it rather than skipping it."""


def tables(config_path: str) -> dict:
    """The tables of a vigil config: name -> {file, date_column, lookups, naive_timestamps}."""
    config = yaml.safe_load(Path(config_path).read_text()) or {}
    found = config.get("tables") or DEFAULT_TABLES
    out = {}
    for name, t in found.items():
        out[name] = {
            "file": t["file"],
            "relation": t.get("relation") or Path(t["file"]).stem,
            "date_column": t.get("date_column"),
            "naive_timestamps": t.get("naive_timestamps", "reject"),
            "lookups": [
                {"table": l["table"], "key": l["key"], "foreign_key": l.get("foreign_key") or l["key"],
                 "columns": list(l["columns"])}
                for l in t.get("lookups") or []
            ],
        }
    return out


def table_file(warehouse: str, table: dict) -> tuple[str, str]:
    """The table's file in the warehouse folder and its format: the CSV, else
    `<relation>.parquet` (as vigil finds them)."""
    csv = os.path.join(warehouse, table["file"])
    if os.path.isfile(csv):
        return csv, "csv"
    parquet = os.path.join(warehouse, table["relation"] + ".parquet")
    if os.path.isfile(parquet):
        return parquet, "parquet"
    raise FileNotFoundError(f"{warehouse}: neither {table['file']} nor {table['relation']}.parquet")


def load_requests(path: str) -> list[dict]:
    """The requests of a `--metrics-out` file (or a plain JSON list of requests), in order."""
    data = json.loads(Path(path).read_text())
    if isinstance(data, list):
        return data
    return [entry["request"] for entries in data.values() for entry in entries]


def key(request: dict) -> str:
    """A request's identity."""
    return json.dumps(request, sort_keys=True)


def measure(request: dict) -> tuple[str, object]:
    """(kind, argument): ("rows", None), ("distinct", column), ("where", {column, cmp, value})."""
    m = request["measure"]
    if isinstance(m, str):
        return m, None
    (kind, arg), = m.items()
    return kind, arg


def grouping(request: dict) -> tuple[str, str | None]:
    """("total", None), ("day", None) or ("day_by", dimension)."""
    g = request["grouping"]
    if isinstance(g, str):
        return g, None
    (kind, dim), = g.items()
    return kind, dim


def conditions(request: dict) -> list[tuple[str, str, object]]:
    """The filter's conditions as (column, op, argument)."""
    f = request.get("filter")
    out = []
    for c in (f or {}).get("all", []):
        op = c["op"]
        if isinstance(op, str):
            out.append((c["column"], op, None))
        else:
            (name, arg), = op.items()
            if name == "compare":
                arg = (arg[0], number(arg[1]))
            out.append((c["column"], name, arg))
    return out


def number(v) -> float:
    """A constant as vigil writes it (a number, or "inf", "-inf", "NaN")."""
    return float(v) if not isinstance(v, str) else {"inf": math.inf, "-inf": -math.inf, "NaN": math.nan}[v]


def columns(request: dict) -> list[str]:
    """Every column a request reads."""
    kind, arg = measure(request)
    out = []
    if kind == "where":
        out.append(arg["column"])
    elif arg is not None:
        out.append(arg)
    g, dim = grouping(request)
    if dim is not None:
        out.append(dim)
    out += [c for c, _, _ in conditions(request)]
    return out


def computable(requests: list[dict], cells, date: str, name: str) -> tuple[dict, list[dict]]:
    """Splits requests into those a table's cells can answer and, by key, the reasons the
    others cannot (a missing column, or no date column for a per-day request)."""
    results: dict[str, object] = {}
    todo = []
    for r in requests:
        missing = [c for c in columns(r) if c not in cells]
        if missing:
            results[key(r)] = f"no column {', '.join(missing)} in {name}"
        elif grouping(r)[0] != "total" and date not in cells:
            results[key(r)] = f"no date column {date} in {name}"
        else:
            todo.append(r)
    return results, todo


def dimensions(requests: list[dict]) -> list[str]:
    """The dimension columns of the per-day-and-dimension requests, in first-seen order."""
    dims: list[str] = []
    for r in requests:
        g, dim = grouping(r)
        if g == "day_by" and dim not in dims:
            dims.append(dim)
    return dims


def span_days(first: dt.date | None, last: dt.date | None) -> list[dt.date]:
    if first is None or last is None:
        return []
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def day_text(day) -> str:
    return day.isoformat() if hasattr(day, "isoformat") else str(day)


def daily(span: list, values: dict) -> dict:
    """A `daily` value: every day of the span, 0 where `values` has none."""
    series = {day_text(d): 0.0 for d in span}
    for d, v in values.items():
        series[day_text(d)] = float(v or 0)
    return {"daily": sorted(series.items())}


def daily_by(span: list, values: dict) -> dict:
    """A `daily_by` value: every day of the span, each with its {dimension value: x}."""
    series = {day_text(d): {} for d in span}
    for d, dims in values.items():
        series.setdefault(day_text(d), {}).update({k: float(v or 0) for k, v in dims.items()})
    return {"daily_by": [[d, sorted(dims.items())] for d, dims in sorted(series.items())]}


def write(path: str | None, results: list[tuple[dict, dict | str]], engine: str) -> None:
    """Writes the values in `--metrics-out`'s shape (a str value means unavailable) or, without a
    path, prints a summary."""
    by_table: dict[str, list] = {}
    for request, value in results:
        entry = {"request": request}
        if isinstance(value, str):
            entry["unavailable"] = value
        else:
            entry["value"] = value
        by_table.setdefault(request["table"], []).append(entry)
    if path:
        Path(path).write_text(json.dumps(by_table, indent=1) + "\n")
    else:
        n = sum(len(v) for v in by_table.values())
        print(f"{engine}: {n} metrics of {len(by_table)} tables")


# --- What the SQL engines share (DuckDB, PostgreSQL, Spark): one GROUP BY GROUPING SETS query per
# table, each request an aggregate with its FILTER, and the decoding of its rows. A dialect
# gives the cells (empty, text, number, day in its types) and its few differing functions.

OPS = {"lt": "<", "le": "<=", "eq": "=", "ne": "<>", "ge": ">=", "gt": ">"}


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqlCell:
    """A column of the rows being aggregated: its SQL, its type (upper case, without
    parameters) and, for a looked-up column, the SQL that says whether the lookup found a row
    (an absent cell otherwise). A dialect subclasses it with `number()` and `day()`."""

    TEXT = "VARCHAR"  # the dialect's text type
    TEXT_TYPES = ("VARCHAR",)

    def __init__(self, sql: str, type_: str, found: str = "TRUE"):
        self.sql, self.type, self.found = sql, type_.split("(")[0].strip().upper(), found

    def moved(self, sql: str, found: str) -> "SqlCell":
        """The same column under another name (projected in a subquery)."""
        return type(self)(sql, self.type, found)

    def is_text(self) -> bool:
        return self.type in self.TEXT_TYPES

    def empty(self) -> str:
        if self.is_text():
            return f"({self.sql} IS NULL OR {self.sql} IN ('', 'NULL', 'null'))"
        return f"({self.sql} IS NULL)"

    def text(self) -> str:
        return self.sql if self.is_text() else f"CAST({self.sql} AS {self.TEXT})"

    def number(self) -> str:
        """The number the cell holds, NULL when none."""
        raise NotImplementedError

    def day(self, naive: str) -> str:
        """The UTC day, NULL when the cell has none."""
        raise NotImplementedError


class SqlDialect:
    """What differs between the SQL engines beyond the cells."""

    cell = SqlCell
    # Whether a NULL text cell stands for an empty string (DuckDB's read_csv reads an empty
    # field as NULL) rather than for an absent cell (vigil's reading of a database NULL).
    null_is_empty_text = True

    def double(self, v: float) -> str:
        """A double constant."""
        raise NotImplementedError

    def literal(self, text: str) -> str:
        """A text constant."""
        return sql_literal(text)

    def grouping(self, keys: list[str]) -> str:
        """The grouping bits of the keys, the first key's the highest (Spark: grouping_id)."""
        return f"GROUPING({', '.join(keys)})"

    def contains(self, text: str, needle: str) -> str:
        """Whether `text` contains the lower-case constant `needle`, after lower-casing it."""
        raise NotImplementedError


def sql_compare(dialect: SqlDialect, number: str, cmp: str, value: float) -> str:
    """Whether a number (NULL: none) compares so with the constant, as an f64 would (a NaN
    constant compares unequal to everything; SQL engines sort NaN above every number)."""
    if math.isnan(value):
        return f"({number} IS NOT NULL)" if cmp == "ne" else "FALSE"
    return f"coalesce({number} {OPS[cmp]} {dialect.double(value)}, false)"


def sql_condition(dialect: SqlDialect, cell: SqlCell, op: str, arg) -> str:
    """A filter condition (never NULL)."""
    if op == "equals":
        if arg == "" and dialect.null_is_empty_text:
            return f"({cell.found} AND ({cell.sql} IS NULL OR {cell.text()} = ''))"
        return f"coalesce({cell.text()} = {dialect.literal(arg)}, false)"
    if op == "contains_ignore_case":
        if arg == "":
            return f"({cell.found})" if dialect.null_is_empty_text else f"({cell.sql} IS NOT NULL)"
        return f"coalesce({dialect.contains(cell.text(), arg.lower())}, false)"
    if op == "empty":
        return cell.empty()
    if op == "not_empty":
        return f"(NOT {cell.empty()})"
    if op == "compare":
        cmp, value = arg
        return sql_compare(dialect, cell.number(), cmp, value)
    raise Unsupported(f"filter op {op}")


def sql_query(dialect: SqlDialect, todo: list[dict], cells: dict, day: str, relation: str,
              order: str | None = None, ctes: list[str] = (), joins: list[str] = ()) -> tuple[str, list[str]]:
    """The one query of a table's requests, and its dimensions (for `sql_decode`).

    `cells`: column -> SqlCell over `t` (the relation) and the joins; `day`: the SQL of a row's
    day; `order`: the SQL of the row's position in file order (needed by duplicates); `ctes`
    and `joins`: the looked-up tables' common table expressions and LEFT JOINs.
    Result columns: GROUPING(...) AS __g, __day, the dimensions __d<k>, then per request its
    value a<i> and (per dimension) the count of rows that passed its filter p<i>."""
    dims = dimensions(todo)
    totals = any(grouping(r)[0] == "total" for r in todo)
    has_dups = any(measure(r)[0] == "duplicates" for r in todo)
    if has_dups and order is None:
        raise Unsupported("duplicates without a row order")

    # The cells the requests read, projected once as __c<j> (and whether a looked-up cell's row
    # was found as __f<j>).
    used = sorted({c for r in todo for c in columns(r)})
    projected = [f"{day} AS __day"] + ([f"{order} AS __rn"] if has_dups else [])
    renamed: dict[str, SqlCell] = {}
    for j, c in enumerate(used):
        projected.append(f"{cells[c].sql} AS __c{j}")
        if cells[c].found != "TRUE":
            projected.append(f"{cells[c].found} AS __f{j}")
            renamed[c] = cells[c].moved(f"__c{j}", f"__f{j}")
        else:
            renamed[c] = cells[c].moved(f"__c{j}", "TRUE")
    cells = renamed
    prepared = []
    for k, d in enumerate(dims):
        cell = cells[d]
        prepared.append(f"CASE WHEN {cell.empty()} THEN '' ELSE {cell.text()} END AS __d{k}")
    aggregates = []
    for i, r in enumerate(todo):
        kind, arg = measure(r)
        g, dim = grouping(r)
        f = " AND ".join(sql_condition(dialect, cells[c], op, a) for c, op, a in conditions(r)) or "TRUE"
        if kind == "rows":
            agg = f"count(*) FILTER (WHERE {f})"
        elif kind == "distinct":
            c = cells[arg]
            agg = f"count(DISTINCT {c.sql}) FILTER (WHERE {f} AND NOT {c.empty()})"
        elif kind == "sum":
            agg = f"coalesce(sum({cells[arg].number()}) FILTER (WHERE {f}), 0)"
        elif kind == "numeric":
            agg = f"count({cells[arg].number()}) FILTER (WHERE {f})"
        elif kind == "nulls":
            agg = f"count(*) FILTER (WHERE {f} AND {cells[arg].empty()})"
        elif kind == "non_numeric":
            c = cells[arg]
            agg = f"count(*) FILTER (WHERE {f} AND NOT {c.empty()} AND {c.number()} IS NULL)"
        elif kind == "where":
            c = cells[arg["column"]]
            test = sql_compare(dialect, c.number(), arg["cmp"], number(arg["value"]))
            agg = f"count(*) FILTER (WHERE {f} AND {test})"
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
            raise Unsupported(f"measure {kind}")
        aggregates.append(f"{agg} AS a{i}")
        if g == "day_by":
            aggregates.append(f"count(*) FILTER (WHERE {f}) AS p{i}")

    keys = ["__day"] + [f"__d{k}" for k in range(len(dims))]
    sets = ["(__day)"] + [f"(__day, __d{k})" for k in range(len(dims))] + (["()"] if totals else [])
    with_ = f"WITH {', '.join(ctes)} " if ctes else ""
    rows_sql = f"SELECT {', '.join(projected)} FROM {relation} t {' '.join(joins)}"
    if prepared:
        rows_sql = f"SELECT *, {', '.join(prepared)} FROM ({rows_sql}) AS __cells"
    sql = (
        f"{with_}SELECT {dialect.grouping(keys)} AS __g, {', '.join(keys)}, {', '.join(aggregates)} "
        f"FROM ({rows_sql}) AS __rows GROUP BY GROUPING SETS ({', '.join(sets)})"
    )
    return sql, dims


def sql_table_query(dialect: SqlDialect, requests: list[dict], cells: dict, table: dict, name: str,
                    relation: str, order: str | None, ctes: list[str], joins: list[str]):
    """A table's requests split by `computable` and the one query of those it can answer:
    (results of the others by key, the requests queried, the SQL or None, its dimensions). The
    day is the UTC day of the table's date column (`SqlCell.day`), NULL without one."""
    date = table["date_column"]
    day = cells[date].day(table["naive_timestamps"]) if date in cells else "CAST(NULL AS DATE)"
    results, todo = computable(requests, cells, date, name)
    if not todo:
        return results, [], None, []
    sql, dims = sql_query(dialect, todo, cells, day, relation, order, ctes, joins)
    return results, todo, sql, dims


def sql_decode(rows: list, todo: list[dict], dims: list[str]) -> dict:
    """The values of `sql_query`'s result rows (days as dates, NULL as None): {key: value}."""
    n = len(dims)
    day_set = (1 << n) - 1
    total_set = (1 << (n + 1)) - 1
    dim_set = {d: day_set & ~(1 << (n - 1 - k)) for k, d in enumerate(dims)}
    days = sorted(row[1] for row in rows if row[0] == day_set and row[1] is not None)
    span = span_days(days[0], days[-1]) if days else []
    results = {}
    at = 2 + n  # the first request's value
    for r in todo:
        g, dim = grouping(r)
        a = at
        at += 2 if g == "day_by" else 1
        if g == "total":
            value = next((row[a] for row in rows if row[0] == total_set), 0)
            results[key(r)] = {"total": float(value or 0)}
        elif g == "day":
            values = {row[1]: row[a] for row in rows if row[0] == day_set and row[1] is not None}
            results[key(r)] = daily(span, values)
        else:
            k = dims.index(dim)
            by: dict = {}
            for row in rows:
                if row[0] == dim_set[dim] and row[1] is not None and row[a + 1] > 0:
                    by.setdefault(row[1], {})[row[2 + k]] = row[a]
            results[key(r)] = daily_by(span, by)
    return results
