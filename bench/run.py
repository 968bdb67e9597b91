"""vigil's benchmark: vigil against DuckDB and pandas on the same CSVs, in the same run.

For each size it writes a 90-day demo warehouse with `vigil demo` (Puffy's columns: long URLs
and user agents), then times, each `--runs` times (the median is reported), wall time and peak
RSS of:
  1. `vigil run` with the five builtin rules, default scope and `--scope all`;
  2. DuckDB (all cores) computing the aggregates those rules need (duckdb_aggregates.py);
  3. pandas reading the same CSVs (pandas_read.py; sizes S and M only).

Usage: python3 bench/run.py [--sizes S,M,L] [--runs 3] [--work DIR]
Needs: cargo, and `pip install duckdb pandas`.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"S": 10_000, "M": 50_000, "L": 200_000}
DAYS = 90
END = "2025-03-31"


def measure(command: list[str]) -> tuple[float, int]:
    """Runs a command; returns its wall time in seconds and its peak RSS in MiB."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit(f"failed: {' '.join(command)}\n{stderr}")
    return wall, usage.ru_maxrss // 1024


def warehouse(vigil: Path, work: Path, size: str) -> Path:
    folder = work / size
    done = folder / "done"
    if not done.exists():
        print(f"generating {size}: {DAYS} days x {SIZES[size]:,} sessions/day", flush=True)
        subprocess.run(
            [str(vigil), "demo", "--out", str(folder), "--days", str(DAYS),
             "--sessions-per-day", str(SIZES[size]), "--end-date", END, "--seed", "1"],
            check=True, stdout=subprocess.DEVNULL,
        )
        config = (folder / "vigil.yml").read_text().replace("quarantine_on_error: true", "quarantine_on_error: false")
        (folder / "vigil.yml").write_text(config)
        done.write_text("")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="S,M,L")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default=str(ROOT / "target" / "bench"))
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "vigil"], cwd=ROOT, check=True)
    vigil = ROOT / "target" / "release" / "vigil"
    python = sys.executable
    here = Path(__file__).resolve().parent

    results = []
    for size in args.sizes.split(","):
        folder = warehouse(vigil, work, size)
        wh = folder / "warehouse"
        rows = sum(1 for _ in open(wh / "fct_sessions.csv", "rb")) - 1
        mib = sum(f.stat().st_size for f in wh.glob("*.csv")) / 2**20
        run = [str(vigil), "run", "--warehouse_dir", str(wh), "--rules", str(folder / "vigil.yml"),
               "--output_dir", str(folder / "reports"), "--expected_run_date", END]
        tools = {
            "vigil (default scope)": run,
            "vigil (--scope all)": run + ["--scope", "all"],
            "duckdb": [python, str(here / "duckdb_aggregates.py"), str(wh)],
        }
        if size in ("S", "M"):
            tools["pandas (read + group)"] = [python, str(here / "pandas_read.py"), str(wh)]
        for tool, command in tools.items():
            samples = [measure(command) for _ in range(args.runs)]
            walls = [w for w, _ in samples]
            wall = statistics.median(walls)
            results.append({
                "size": size, "session_rows": rows, "csv_mib": round(mib), "tool": tool,
                "wall_s": round(wall, 3), "min_s": round(min(walls), 3), "max_s": round(max(walls), 3),
                "peak_rss_mib": max(r for _, r in samples), "ns_per_row": round(wall / rows * 1e9, 1),
            })
            print(f"{size} {tool}: {wall:.3f} s", flush=True)

    (work / "results.json").write_text(json.dumps(results, indent=2))
    print()
    print("| size | session rows | CSV MiB | tool | wall s (median) | min-max s | peak RSS MiB | ns/row |")
    print("|---|---:|---:|---|---:|---|---:|---:|")
    for r in results:
        print(f"| {r['size']} | {r['session_rows']:,} | {r['csv_mib']:,} | {r['tool']} | {r['wall_s']:.3f} | "
              f"{r['min_s']:.3f}-{r['max_s']:.3f} | {r['peak_rss_mib']:,} | {r['ns_per_row']} |")
    print()
    for size in args.sizes.split(","):
        by_tool = {r["tool"]: r["wall_s"] for r in results if r["size"] == size}
        ours = by_tool["vigil (default scope)"]
        line = f"{size}: vigil/duckdb = {ours / by_tool['duckdb']:.2f}"
        if "pandas (read + group)" in by_tool:
            line += f", pandas/vigil = {by_tool['pandas (read + group)'] / ours:.1f}x"
        print(line)


if __name__ == "__main__":
    main()
