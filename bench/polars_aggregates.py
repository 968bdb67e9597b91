"""The aggregates vigil computes, computed by polars (all cores) from the same files.

Every metric request vigil's rules make (read from a `vigil run --metrics-out` file, or a JSON
list of requests) is translated to polars expressions with vigil's semantics (see aggspec.py):
per table, the columns the requests read are loaded once (`scan_parquet`, projected; a looked-up
table left-joined on its key, first row per key), then one group_by per grouping (day, day and
each dimension, total) computes every request of that grouping. Reads the `.parquet` files of a
Parquet warehouse (the benchmark's use), or CSVs as text (every cell a string, as vigil reads
them). Writes the values in `--metrics-out`'s shape, for bench/check.py.

Usage: python3 polars_aggregates.py WAREHOUSE_DIR --config vigil.yml --requests metrics.json
       [--out values.json]
"""

import argparse
import sys

import polars as pl

import aggspec

SPACES = " \t\n\r\x0c"
# vigil's strict timestamps: a date, optionally a time and a zone.
STAMP = (r"^(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?"
         r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?)?$")


class Cell:
    """A column of the rows being aggregated: its name, polars type and whether it is present
    (a looked-up column is absent when the lookup found no row)."""

    def __init__(self, name: str, dtype, found: pl.Expr = pl.lit(True)):
        self.name, self.dtype, self.found = name, dtype, found

    @property
    def col(self) -> pl.Expr:
        return pl.col(self.name)

    def empty(self) -> pl.Expr:
        if self.dtype == pl.String:
            return self.col.is_null() | self.col.is_in(["", "NULL", "null"])
        return self.col.is_null()

    def number(self) -> pl.Expr:
        c = self.col
        if self.dtype.is_integer() or self.dtype.is_decimal():
            return c.cast(pl.Float64)
        if self.dtype.is_float():
            return pl.when(c.is_finite()).then(c.cast(pl.Float64))
        if self.dtype == pl.String:
            parsed = c.str.strip_chars(SPACES).cast(pl.Float64, strict=False)
            return pl.when(parsed.is_finite()).then(parsed)
        return pl.lit(None, dtype=pl.Float64)

    def text(self) -> pl.Expr:
        return self.col if self.dtype == pl.String else self.col.cast(pl.String)

    def day(self, naive: str) -> pl.Expr:
        """The UTC day, null when the cell has none (vigil's strict ISO-8601 / RFC 3339)."""
        c = self.col
        if isinstance(self.dtype, pl.Datetime):
            if self.dtype.time_zone is not None:
                return c.dt.convert_time_zone("UTC").dt.date()
            return c.dt.date() if naive == "utc" else pl.lit(None, dtype=pl.Date)
        if self.dtype == pl.Date:
            return c
        if self.dtype == pl.String:
            g = c.str.strip_chars(SPACES).str.extract_groups(STAMP)
            date = g.struct.field("1").str.to_date("%Y-%m-%d", strict=False)
            num = lambda i: g.struct.field(str(i)).cast(pl.Int64)
            hour, minute, second = num(2), num(3), num(4).fill_null(0)
            zoned = g.struct.field("5").is_not_null() | g.struct.field("6").is_not_null()
            sign = pl.when(g.struct.field("6") == "-").then(-1).otherwise(1)
            offset = sign * (num(7).fill_null(0) * 60 + num(8).fill_null(0))
            moved = (date.cast(pl.Datetime("us")) + pl.duration(hours=hour, minutes=minute - offset.fill_null(0))).dt.date()
            timed = hour.is_not_null() & (hour <= 23) & (minute <= 59) & (second <= 59)
            ok_time = zoned | pl.lit(naive == "utc")
            return (pl.when(hour.is_null()).then(date)
                    .when(timed & ok_time).then(moved)
                    .otherwise(pl.lit(None, dtype=pl.Date)))
        return pl.lit(None, dtype=pl.Date)


def scan(path: str, fmt: str) -> pl.LazyFrame:
    if fmt == "parquet":
        return pl.scan_parquet(path)
    return pl.scan_csv(path, infer_schema=False)


def condition(cell: Cell, op: str, arg) -> pl.Expr:
    if op == "equals":
        if arg == "":
            return cell.found & (cell.col.is_null() | (cell.text() == ""))
        return (cell.text() == arg).fill_null(False)
    if op == "contains_ignore_case":
        if arg == "":
            return cell.found
        return cell.text().str.to_lowercase().str.contains(arg.lower(), literal=True).fill_null(False)
    if op == "empty":
        return cell.empty()
    if op == "not_empty":
        return ~cell.empty()
    if op == "compare":
        cmp, value = arg
        return compare(cell.number(), cmp, value).fill_null(False)
    raise aggspec.Unsupported(f"filter op {op}")


def compare(x: pl.Expr, cmp: str, value: float) -> pl.Expr:
    return {"lt": x < value, "le": x <= value, "eq": x == value, "ne": x != value,
            "ge": x >= value, "gt": x > value}[cmp]


def table_metrics(warehouse: str, layout: dict, name: str, requests: list[dict]) -> dict:
    """Computes the requests of one table; returns {request key: value or unavailable reason}."""
    table = layout[name]
    path, fmt = aggspec.table_file(warehouse, table)
    lf = scan(path, fmt)
    own = lf.collect_schema()
    cells: dict[str, Cell] = {c: Cell(c, t) for c, t in own.items()}
    for i, lookup in enumerate(table["lookups"]):
        looked = layout[lookup["table"]]
        llf = scan(*aggspec.table_file(warehouse, looked))
        ltypes = llf.collect_schema()
        fk, wanted = lookup["foreign_key"], lookup["columns"]
        if lookup["key"] not in own or any(c not in ltypes for c in [fk, *wanted]):
            continue  # as in vigil, a lookup with a missing column brings no column at all
        names = {c: f"{lookup['table']}.{c}" for c in wanted}
        right = (llf.select(pl.col(fk).cast(pl.String).alias(f"__k{i}"),
                            *[pl.col(c).alias(n) for c, n in names.items()])
                 .unique(subset=f"__k{i}", keep="first", maintain_order=True)
                 .with_columns(pl.lit(True).alias(f"__found{i}")))
        lf = (lf.with_columns(pl.col(lookup["key"]).cast(pl.String).alias(f"__key{i}"))
              .join(right, left_on=f"__key{i}", right_on=f"__k{i}", how="left", maintain_order="left"))
        found = pl.col(f"__found{i}").fill_null(False)
        for c, n in names.items():
            cells[n] = Cell(n, ltypes[c], found)

    date = table["date_column"]
    results, todo = aggspec.computable(requests, cells, date, name)
    if not todo:
        return results

    day = cells[date].day(table["naive_timestamps"]) if date in cells else pl.lit(None, dtype=pl.Date)
    dims = aggspec.dimensions(todo)
    prepared = [day.alias("__day")]
    for k, d in enumerate(dims):
        prepared.append(pl.when(cells[d].empty()).then(pl.lit("")).otherwise(cells[d].text()).alias(f"__d{k}"))
    used = sorted({c for r in todo for c in aggspec.columns(r)})
    # Found flags of looked-up cells, kept for filters on them.
    found_cols = sorted({n for n in lf.collect_schema().names() if n.startswith("__found")})
    aggs: dict[str, list[pl.Expr]] = {}
    for i, r in enumerate(todo):
        kind, arg = aggspec.measure(r)
        g, dim = aggspec.grouping(r)
        conds = [condition(cells[c], op, a) for c, op, a in aggspec.conditions(r)]
        f = pl.all_horizontal(conds) if conds else None
        ff = f if f is not None else pl.lit(True)
        if kind == "rows":
            agg = ff.sum() if f is not None else pl.len()
        elif kind == "distinct":
            c = cells[arg]
            agg = c.col.filter(ff & ~c.empty()).n_unique()
        elif kind == "sum":
            agg = cells[arg].number().filter(ff).sum()
        elif kind == "numeric":
            agg = (ff & cells[arg].number().is_not_null()).sum()
        elif kind == "nulls":
            agg = (ff & cells[arg].empty()).sum()
        elif kind == "non_numeric":
            c = cells[arg]
            agg = (ff & ~c.empty() & c.number().is_null()).sum()
        elif kind == "where":
            c = cells[arg["column"]]
            agg = (ff & compare(c.number(), arg["cmp"], aggspec.number(arg["value"])).fill_null(False)).sum()
        elif kind == "duplicates":
            # Among the rows the request counts (its filter; a day unless a total), in file
            # order, rows whose value (empty ones equal) an earlier row had.
            c = cells[arg]
            counted = ff if g == "total" else ff & pl.col("__day").is_not_null()
            value = pl.when(c.empty()).then(pl.lit("0")).otherwise(pl.lit("1") + c.text())
            group = pl.concat_str([pl.when(counted).then(pl.lit("1")).otherwise(pl.lit("0")), value])
            prepared_dup = (counted & ~group.is_first_distinct()).alias(f"__dup{i}")
            aggs.setdefault("__dups", []).append(prepared_dup)
            agg = pl.col(f"__dup{i}").sum()
        else:
            raise aggspec.Unsupported(f"measure {kind}")
        set_ = "total" if g == "total" else "day" if g == "day" else f"__d{dims.index(dim)}"
        aggs.setdefault(set_, []).append(agg.alias(f"a{i}"))
        if g == "day_by":
            aggs[set_].append((ff.sum() if f is not None else pl.len()).alias(f"p{i}"))

    frame = lf.select(*[cells[c].col for c in used], *[pl.col(c) for c in found_cols], *prepared)
    if "__dups" in aggs:
        frame = frame.with_columns(aggs.pop("__dups"))
    frame = frame.collect()

    dated = frame.filter(pl.col("__day").is_not_null())
    first, last = dated["__day"].min(), dated["__day"].max()
    span = aggspec.span_days(first, last)
    outputs = {}
    for set_, exprs in aggs.items():
        if set_ == "total":
            outputs[set_] = frame.select(exprs).row(0, named=True)
        elif set_ == "day":
            outputs[set_] = {row["__day"]: row for row in dated.group_by("__day").agg(exprs).iter_rows(named=True)}
        else:
            outputs[set_] = dated.group_by(["__day", set_]).agg(exprs).iter_rows(named=True)
            outputs[set_] = list(outputs[set_])
    for i, r in enumerate(todo):
        g, dim = aggspec.grouping(r)
        if g == "total":
            results[aggspec.key(r)] = {"total": float(outputs["total"][f"a{i}"] or 0)}
        elif g == "day":
            results[aggspec.key(r)] = aggspec.daily(span, {d: row[f"a{i}"] for d, row in outputs["day"].items()})
        else:
            set_ = f"__d{dims.index(dim)}"
            by: dict = {}
            for row in outputs[set_]:
                if row[f"p{i}"] > 0:
                    by.setdefault(row["__day"], {})[row[set_]] = row[f"a{i}"]
            results[aggspec.key(r)] = aggspec.daily_by(span, by)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("warehouse")
    parser.add_argument("--config", required=True, help="the vigil config (tables, lookups, date columns)")
    parser.add_argument("--requests", required=True, help="a --metrics-out file or a JSON list of requests")
    parser.add_argument("--out", help="write the values here (--metrics-out shape)")
    args = parser.parse_args()

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
        values.update(table_metrics(args.warehouse, layout, name, reqs))
    aggspec.write(args.out, [(r, values[aggspec.key(r)]) for r in requests], "polars")


if __name__ == "__main__":
    try:
        main()
    except aggspec.Unsupported as e:
        sys.exit(f"polars_aggregates: cannot compute {e}")
