"""Checks another engine's values against vigil's, metric by metric.

Compares a values file written by duckdb_aggregates.py or polars_aggregates.py with the
`vigil run --metrics-out` file of the same warehouse: the same requests (no metric missing, none
extra), the same days and dimension values, counts equal exactly and sums within 1e-9 relative.
On any difference it prints each differing request with its first differing values and exits 1.

Usage: python3 check.py VIGIL_METRICS.json OTHER_VALUES.json [--label TEXT] [--show N]
"""

import argparse
import json
import sys
from pathlib import Path

import aggspec

RELATIVE = 1e-9


def entries(path: str) -> dict[str, dict]:
    data = json.loads(Path(path).read_text())
    return {aggspec.key(e["request"]): e for table in data.values() for e in table}


def flatten(value: dict) -> dict[tuple, float]:
    """{(day,) or (day, dim) or (): number}, plus the days of a daily_by (an empty day counts)."""
    (kind, v), = value.items()
    if kind == "total":
        return {(): aggspec.number(v)}
    if kind == "daily":
        return {(day,): aggspec.number(x) for day, x in v}
    out: dict[tuple, float] = {}
    for day, dims in v:
        out[(day, None)] = 0.0  # the day is in the span
        for dim, x in dims:
            out[(day, dim)] = aggspec.number(x)
    return out


def equal(a: float, b: float, exact: bool) -> bool:
    if exact:
        return a == b
    if a == b:
        return True
    return abs(a - b) <= RELATIVE * max(abs(a), abs(b))


def compare(vigil: dict, other: dict) -> tuple[int, list[tuple[dict, list[str]]]]:
    """(values compared, [(request, differences)])."""
    compared = 0
    problems = []
    for k, ours in vigil.items():
        request = ours["request"]
        theirs = other.get(k)
        if theirs is None:
            problems.append((request, ["not computed by the other engine"]))
            continue
        if "value" not in ours or "value" not in theirs:
            if "value" in ours or "value" in theirs:
                problems.append((request, [f"vigil: {ours.get('unavailable', 'a value')}; "
                                           f"other: {theirs.get('unavailable', 'a value')}"]))
            continue
        kind_ours, kind_theirs = next(iter(ours["value"])), next(iter(theirs["value"]))
        if kind_ours != kind_theirs:
            problems.append((request, [f"vigil gives {kind_ours}, other gives {kind_theirs}"]))
            continue
        exact = aggspec.measure(request)[0] in aggspec.COUNT_MEASURES
        a, b = flatten(ours["value"]), flatten(theirs["value"])
        diffs = []
        for point in sorted(set(a) | set(b), key=lambda p: tuple("" if x is None else x for x in p)):
            where = "total" if point == () else " ".join(x for x in point if x is not None)
            if point not in a:
                diffs.append(f"{where}: vigil has none, other {b[point]!r}")
            elif point not in b:
                diffs.append(f"{where}: vigil {a[point]!r}, other has none")
            elif not equal(a[point], b[point], exact):
                diffs.append(f"{where}: vigil {a[point]!r}, other {b[point]!r}")
            compared += 1
        if diffs:
            problems.append((request, diffs))
    for k, theirs in other.items():
        if k not in vigil:
            problems.append((theirs["request"], ["computed by the other engine, not by vigil"]))
    return compared, problems


def check(vigil_path: str, other_path: str, label: str, show: int = 8) -> dict | None:
    """Prints the outcome; returns {"metrics", "values"} compared when all are equal, else None."""
    vigil, other = entries(vigil_path), entries(other_path)
    compared, problems = compare(vigil, other)
    if not problems:
        print(f"check {label}: {len(vigil)} metrics, {compared:,} values equal "
              f"(counts exactly, sums within {RELATIVE:g} relative)", flush=True)
        return {"metrics": len(vigil), "values": compared}
    print(f"CHECK FAILED {label}: {len(problems)} of {len(vigil)} metrics differ "
          f"({vigil_path} vs {other_path})", file=sys.stderr)
    for request, diffs in problems:
        print(f"  request {json.dumps(request)}", file=sys.stderr)
        for d in diffs[:show]:
            print(f"    {d}", file=sys.stderr)
        if len(diffs) > show:
            print(f"    ... {len(diffs) - show} more", file=sys.stderr)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vigil")
    parser.add_argument("other")
    parser.add_argument("--label", default="")
    parser.add_argument("--show", type=int, default=8, help="differences shown per metric")
    args = parser.parse_args()
    sys.exit(0 if check(args.vigil, args.other, args.label or args.other, args.show) is not None else 1)


if __name__ == "__main__":
    main()
