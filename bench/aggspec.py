"""What the benchmark's engines share: the warehouse layout of a vigil config, the metric
requests to compute (as vigil's `--metrics-out` writes them), and the values file they write.

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
