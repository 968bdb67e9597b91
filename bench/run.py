"""vigil's benchmark: vigil against DuckDB, polars and pandas on the same files, in the same run.

For each size it writes a 90-day demo warehouse with `vigil demo` (Puffy's columns: long URLs
and user agents) and, with `--formats ...,parquet`, a Parquet copy of it (one `.parquet` per
table, row groups of 131,072 rows, written by the `csv2parquet` example of
vigil-source-parquet; vigil reads it with the same vigil.yml).

Before timing, once per size and format, it checks the values: `vigil run --metrics-out` writes
every metric vigil computed (default scope and `--scope all`), DuckDB (and polars, on Parquet)
compute the same requests, and check.py compares them (counts exactly, sums within 1e-9
relative). A difference stops the benchmark with the differing requests.

Then it times, `--runs` times each (median reported, with min-max and the maximum peak RSS of
the runs), wall time and peak RSS of:
  CSV:     vigil (default scope, `--scope all`); DuckDB computing every aggregate vigil computes
           with SQL on all cores from read_csv (duckdb_aggregates.py); pandas reading the CSVs
           and grouping a few of them (pandas_read.py; S and M; partial, not checked);
  Parquet: vigil (default scope, `--scope all`); DuckDB from read_parquet; polars from
           scan_parquet (polars_aggregates.py), both computing every aggregate vigil computes.
ns/row divides the wall time by every row read: all rows of all tables.

Results go to stdout as a markdown table and to WORK/results.json, with the machine (cores, CPU
model), the commit (and whether the work tree had uncommitted changes) and the date.

Usage: python3 bench/run.py [--sizes S,M,L] [--runs 3] [--formats csv,parquet] [--work DIR]
Needs: cargo, and `pip install duckdb pandas polars pyyaml`.
"""

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import check  # noqa: E402

SIZES = {"S": 10_000, "M": 50_000, "L": 200_000}
DAYS = 90
END = "2025-03-31"
FORMATS = ("csv", "parquet")
PANDAS_SIZES = ("S", "M")


def measure(command: list[str], ok: tuple = (0,)) -> tuple[float, int]:
    """Runs a command; returns its wall time in seconds and its peak RSS in MiB."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = process.stderr.read().decode() if process.stderr else ""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        sys.exit(f"failed ({code}): {' '.join(command)}\n{stderr}")
    return wall, usage.ru_maxrss // 1024


def run(command: list, ok: tuple = (0,)) -> subprocess.CompletedProcess:
    """Runs a command to completion; stops the benchmark with its output if it fails (vigil
    exits 1 on ERROR findings only with --fail_on_error, not used here)."""
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    if done.returncode not in ok:
        sys.exit(f"failed ({done.returncode}): {' '.join(map(str, command))}\n{done.stdout}{done.stderr}")
    return done


def machine() -> dict:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        if sys.platform == "darwin":
            model = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                   capture_output=True, text=True).stdout.strip() or model
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu_model": model, "memory_gib": memory,
            "os": platform.platform(), "python": platform.python_version()}


def commit() -> dict:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                            capture_output=True, text=True)
    return {"commit": head.stdout.strip() or None,
            "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def versions(vigil: Path) -> dict:
    out = {"vigil": run([vigil, "--version"]).stdout.strip()}
    for package in ("duckdb", "polars", "pandas"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = None
    return out


def csv_warehouse(vigil: Path, work: Path, size: str) -> Path:
    folder = work / size
    if not (folder / "done").exists():
        print(f"generating {size}: {DAYS} days x {SIZES[size]:,} sessions/day", flush=True)
        run([vigil, "demo", "--out", folder, "--days", DAYS, "--sessions-per-day", SIZES[size],
             "--end-date", END, "--seed", "1"])
        config = (folder / "vigil.yml").read_text().replace("quarantine_on_error: true", "quarantine_on_error: false")
        (folder / "vigil.yml").write_text(config)
        (folder / "done").write_text("")
    return folder


def parquet_warehouse(csv2parquet: Path, work: Path, size: str, csv_folder: Path) -> Path:
    folder = work / f"{size}-parquet"
    if not (folder / "done").exists():
        print(f"writing the Parquet copy of {size}", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        run([csv2parquet, csv_folder / "warehouse", folder / "warehouse"])
        shutil.copy(csv_folder / "vigil.yml", folder / "vigil.yml")
        (folder / "done").write_text("")
    return folder


def vigil_command(vigil: Path, folder: Path, output: Path, scope: str | None) -> list[str]:
    command = [str(vigil), "run", "--warehouse_dir", str(folder / "warehouse"),
               "--rules", str(folder / "vigil.yml"), "--output_dir", str(output),
               "--expected_run_date", END, "--no-alerts"]
    return command + (["--scope", scope] if scope else [])


def engine_command(engine: str, folder: Path, requests: Path, out: Path) -> list[str]:
    return [sys.executable, str(HERE / f"{engine}_aggregates.py"), str(folder / "warehouse"),
            "--config", str(folder / "vigil.yml"), "--requests", str(requests), "--out", str(out)]


def engines(fmt: str) -> list[str]:
    return ["duckdb"] if fmt == "csv" else ["duckdb", "polars"]


def verify(vigil: Path, folder: Path, size: str, fmt: str) -> tuple[dict, list[dict]]:
    """Checks the other engines' values against vigil's on this warehouse, both scopes; stops the
    benchmark on a difference. Returns the rows per table (from vigil's report) and the checks."""
    out = folder / "check"
    out.mkdir(exist_ok=True)
    checks = []
    rows = {}
    for scope in ("partition", "all"):
        metrics = out / f"vigil-{scope}.json"
        reports = out / f"reports-{scope}"
        run(vigil_command(vigil, folder, reports, scope) + ["--metrics-out", str(metrics)])
        report = json.loads((reports / "monitoring_report.json").read_text())
        rows = {t["table"]: t.get("rows") for t in report["tables"]}
        for engine in engines(fmt):
            values = out / f"{engine}-{scope}.json"
            run(engine_command(engine, folder, metrics, values))
            label = f"{size} {fmt} scope={scope}: {engine} vs vigil"
            equal = check.check(str(metrics), str(values), label)
            if equal is None:
                sys.exit(f"\nvalues differ ({label}): see the requests above; "
                         f"files: {metrics} and {values}")
            checks.append({"size": size, "format": fmt, "scope": scope, "engine": engine,
                           "against": "vigil", **equal, "equal": True})
    if None in rows.values():
        sys.exit(f"vigil could not read every table of {folder}: {rows}")
    return rows, checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="S,M,L")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", default="csv", help="comma separated: csv, parquet")
    parser.add_argument("--work", default=str(ROOT / "target" / "bench"))
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    formats = args.formats.split(",")
    for s in sizes:
        if s not in SIZES:
            sys.exit(f"unknown size {s}: {', '.join(SIZES)}")
    for f in formats:
        if f not in FORMATS:
            sys.exit(f"unknown format {f}: {', '.join(FORMATS)}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "vigil"], cwd=ROOT, check=True)
    vigil = ROOT / "target" / "release" / "vigil"
    csv2parquet = ROOT / "target" / "release" / "examples" / "csv2parquet"
    if "parquet" in formats:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "vigil-source-parquet",
                        "--example", "csv2parquet"], cwd=ROOT, check=True)

    meta = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **commit(),
        "machine": machine(),
        "versions": versions(vigil),
        "runs": args.runs,
        "days": DAYS,
    }
    print(f"machine: {meta['machine']['cores']} cores, {meta['machine']['cpu_model']}; "
          f"commit {meta['commit']}{' (uncommitted changes)' if meta['dirty'] else ''}", flush=True)

    results, checks = [], []
    for size in sizes:
        csv_folder = csv_warehouse(vigil, work, size)
        for fmt in formats:
            folder = csv_folder if fmt == "csv" else parquet_warehouse(csv2parquet, work, size, csv_folder)
            rows, done = verify(vigil, folder, size, fmt)
            checks += done
            if fmt == "parquet" and "csv" in formats:
                # vigil reads the Parquet copy to the same values as the CSVs.
                for scope in ("partition", "all"):
                    label = f"{size} scope={scope}: vigil on Parquet vs vigil on CSV"
                    ours, theirs = (csv_folder / "check" / f"vigil-{scope}.json",
                                    folder / "check" / f"vigil-{scope}.json")
                    equal = check.check(str(ours), str(theirs), label)
                    if equal is None:
                        sys.exit(f"\nvalues differ ({label})")
                    checks.append({"size": size, "format": "parquet", "scope": scope,
                                   "engine": "vigil", "against": "vigil on CSV", **equal, "equal": True})
            total_rows = sum(rows.values())
            files = [f for f in (folder / "warehouse").iterdir() if f.suffix in (".csv", ".parquet")]
            mib = sum(f.stat().st_size for f in files) / 2**20
            requests = folder / "check" / "vigil-partition.json"
            timed = folder / "timed"
            timed.mkdir(exist_ok=True)
            reader = "read_csv" if fmt == "csv" else "read_parquet"
            tools = {
                "vigil": vigil_command(vigil, folder, folder / "reports", None),
                "vigil --scope all": vigil_command(vigil, folder, folder / "reports", "all"),
                f"DuckDB ({reader})": engine_command("duckdb", folder, requests, timed / "duckdb.json"),
            }
            if fmt == "parquet":
                tools["polars (scan_parquet)"] = engine_command("polars", folder, requests, timed / "polars.json")
            if fmt == "csv" and size in PANDAS_SIZES:
                tools["pandas (read + group, partial)"] = [
                    sys.executable, str(HERE / "pandas_read.py"), str(folder / "warehouse")]
            for tool, command in tools.items():
                samples = [measure(command) for _ in range(args.runs)]
                walls = [w for w, _ in samples]
                wall = statistics.median(walls)
                results.append({
                    "size": size, "format": fmt, "tool": tool, "rows": total_rows,
                    "rows_by_table": rows, "data_mib": round(mib, 1),
                    "runs": args.runs, "wall_s_median": round(wall, 3),
                    "wall_s_min": round(min(walls), 3), "wall_s_max": round(max(walls), 3),
                    "wall_s_all": [round(w, 3) for w in walls],
                    "peak_rss_mib_max": max(r for _, r in samples),
                    "ns_per_row": round(wall / total_rows * 1e9, 1),
                    "values_checked": tool.split(" ")[0].lower() in ("vigil", "duckdb", "polars"),
                    "machine": {k: meta["machine"][k] for k in ("cores", "cpu_model")},
                    "commit": meta["commit"], "dirty": meta["dirty"], "date": meta["date"],
                })
                print(f"{size} {fmt} {tool}: {wall:.3f} s", flush=True)

    out = work / "results.json"
    out.write_text(json.dumps({**meta, "checks": checks, "results": results}, indent=2) + "\n")
    print()
    print(f"{meta['machine']['cores']} cores, {meta['machine']['cpu_model']}; commit "
          f"{(meta['commit'] or '?')[:12]}{' + uncommitted changes' if meta['dirty'] else ''}; {meta['date']}")
    print()
    print(f"| size | format | rows (all tables) | MiB | tool | wall s (median of {args.runs}) | min-max s "
          f"| peak RSS MiB (max of {args.runs}) | ns/row (all tables) |")
    print("|---|---|---:|---:|---|---:|---|---:|---:|")
    for r in results:
        print(f"| {r['size']} | {r['format']} | {r['rows']:,} | {r['data_mib']:,.0f} | {r['tool']} | "
              f"{r['wall_s_median']:.3f} | {r['wall_s_min']:.3f}-{r['wall_s_max']:.3f} | "
              f"{r['peak_rss_mib_max']:,} | {r['ns_per_row']:,} |")
    print()
    for size in sizes:
        for fmt in formats:
            by_tool = {r["tool"]: r["wall_s_median"] for r in results if r["size"] == size and r["format"] == fmt}
            ours = by_tool["vigil"]
            parts = [f"vigil/{t.split(' ')[0]} = {ours / w:.2f}" for t, w in by_tool.items()
                     if t.startswith(("DuckDB", "polars"))]
            parts += [f"pandas/vigil = {w / ours:.1f}x" for t, w in by_tool.items() if t.startswith("pandas")]
            print(f"{size} {fmt}: {', '.join(parts)}")
    print()
    print(f"values: {len(checks)} checks, all equal (" + "; ".join(sorted({
        f"{c['engine']}{' on ' + c['format'] if c['engine'] != 'vigil' else ' on Parquet'} vs {c['against']}"
        for c in checks})) + "; default scope and --scope all); pandas computes only part of the "
          "aggregates and is not checked.")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
