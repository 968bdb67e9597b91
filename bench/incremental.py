"""vigil's incremental-run benchmark: on a 91-day demo warehouse (50,000 sessions a day, size M)
written as hive-partitioned Parquet datasets (one `<column>_day=YYYY-MM-DD/` folder per day for
the sessions and the orders; attribution, which has no date column of its own, one file), the run
for day 91 (2025-04-01):

  full         without a partition cache: every partition read;
  incremental  with the partition cache left by the run for day 90 (2025-03-31, made once with
               day 91's partitions moved out of the datasets): only the partitions of the last
               `recompute_days` days (7 by default, and 0) and changed ones are read.

Both go through the same entry point, the `incremental` example of the vigil crate
(cli/examples/incremental.rs: config load, source, `runner::evaluate_cached`, no reports), whose
cache is a file (until `vigil run --state FILE` keeps it in the state store). Each incremental run
starts from a copy of the day-90 cache. `--runs` runs each (median, min-max reported); the
findings and every metric of each incremental run must equal the full run's (the benchmark stops
otherwise). It also reports where the time goes: per table scan time and partitions read/reused,
and the cache's load/save time and size.

Usage: python3 bench/incremental.py [--runs 3] [--work DIR] [--sessions-per-day 50000]
Needs: cargo. Honours CARGO_TARGET_DIR. The warehouse is kept in WORK and reused when present.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
DAYS = 91
END = "2025-04-01"
PREVIOUS = "2025-03-31"
# The dataset folders of the tables partitioned by day, and their partition key.
PARTITIONED = {"fct_sessions": "session_start_day", "fct_orders": "order_ts_day"}


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(map(str, command))}\n{done.stderr}")
    return done


def build() -> tuple[Path, Path, Path]:
    for args in (["-p", "vigil", "--bin", "vigil", "--example", "incremental"],
                 ["-p", "vigil-source-parquet", "--example", "csv2parquet"]):
        subprocess.run(["cargo", "build", "--release", "-q", *args], cwd=ROOT, check=True)
    release = TARGET / "release"
    return release / "vigil", release / "examples" / "incremental", release / "examples" / "csv2parquet"


def warehouse(vigil: Path, csv2parquet: Path, work: Path, sessions: int) -> tuple[Path, Path]:
    """The partitioned Parquet warehouse and its config, written once."""
    folder, config = work / "warehouse", work / "vigil.yml"
    if (work / "done").exists():
        return folder, config
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    start = time.perf_counter()
    run([vigil, "demo", "--out", work / "csv", "--days", DAYS, "--sessions-per-day", sessions,
         "--end-date", END])
    run([csv2parquet, work / "csv" / "warehouse", folder,
         "--partition-by", "session_start", "--partition-by", "order_ts"])
    shutil.copy(work / "csv" / "vigil.yml", config)
    shutil.rmtree(work / "csv")
    (work / "done").touch()
    print(f"warehouse written in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return folder, config


def move_last_day(folder: Path, aside: Path, back: bool) -> None:
    """Moves day 91's partitions out of the datasets, or back (files keep their mtimes)."""
    for table, key in PARTITIONED.items():
        inside = folder / table / f"{key}={END}"
        outside = aside / table
        aside.mkdir(parents=True, exist_ok=True)
        if back:
            if outside.exists():
                outside.rename(inside)
        elif inside.exists():
            inside.rename(outside)


def timed(command: list) -> tuple[float, dict]:
    """Runs the example; returns its wall time and its JSON line, with its CPU seconds (user +
    system, from the children's resource usage: less sensitive than the wall time to other work
    on the machine) as `cpu`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = run(command)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, out


def summary(walls: list[float]) -> dict:
    return {"median": statistics.median(walls), "min": min(walls), "max": max(walls), "runs": walls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sessions-per-day", type=int, default=50_000)
    parser.add_argument("--work", type=Path, default=TARGET / "bench" / "incremental-M")
    args = parser.parse_args()
    vigil, incremental, csv2parquet = build()
    load_before = os.getloadavg()
    work = args.work
    folder, config = warehouse(vigil, csv2parquet, work, args.sessions_per_day)
    aside = work / "aside"
    move_last_day(folder, aside, back=True)  # after an interrupted benchmark
    base = [incremental, folder, config]

    # The run for day 90 leaves the cache (every partition read and stored).
    warm = work / "cache-day90.bin"
    warm.unlink(missing_ok=True)
    move_last_day(folder, aside, back=False)
    try:
        warm_wall, warm_out = timed([*base, PREVIOUS, "--cache", warm])
    finally:
        move_last_day(folder, aside, back=True)
    print(f"day-90 run storing the cache: {warm_wall:.2f} s, {warm_out['cache_bytes']:,} bytes",
          file=sys.stderr)

    reference = work / "findings-full.txt"
    results = {"full": [], "incremental": {7: [], 0: []}}
    cpu = {"full": [], 7: [], 0: []}
    details = {}
    for i in range(args.runs):
        findings = work / f"findings-full-{i}.txt"
        wall, out = timed([*base, END, "--findings", findings])
        results["full"].append(wall)
        cpu["full"].append(out["cpu"])
        details["full"] = out
        if i == 0:
            shutil.copy(findings, reference)
        elif findings.read_text() != reference.read_text():
            sys.exit(f"two full runs differ: {findings} vs {reference}")
        for days in (7, 0):
            cache = work / "cache-run.bin"
            shutil.copy(warm, cache)
            findings = work / f"findings-incremental-{days}-{i}.txt"
            wall, out = timed([*base, END, "--cache", cache, "--recompute-days", days,
                               "--findings", findings])
            results["incremental"][days].append(wall)
            cpu[days].append(out["cpu"])
            details[f"incremental-{days}"] = out
            if findings.read_text() != reference.read_text():
                sys.exit(f"incremental (recompute_days {days}) findings differ from the full "
                         f"run's: {findings} vs {reference}")

    full = summary(results["full"])
    full_cpu = statistics.median(cpu["full"])
    rows = [("full (no cache)", full, full_cpu, details["full"])]
    for days in (7, 0):
        rows.append((f"incremental, recompute_days {days}", summary(results["incremental"][days]),
                     statistics.median(cpu[days]), details[f"incremental-{days}"]))
    print(f"\nDay {DAYS} ({END}) of a {DAYS}-day partitioned Parquet warehouse, "
          f"{args.sessions_per_day:,} sessions/day, {os.cpu_count()} cores, "
          f"median of {args.runs} runs; findings and metrics identical to the full run.\n")
    print(f"Load average before and after: {load_before}, {os.getloadavg()}.\n")
    print("| run | median s | min-max s | speedup | CPU s | CPU ratio | sessions read/reused "
          "| sessions scan s | orders s | attribution s | cache load+save s | cache MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, s, c, d in rows:
        t = d["tables"]
        print(f"| {name} | {s['median']:.3f} | {s['min']:.3f}-{s['max']:.3f} "
              f"| {full['median'] / s['median']:.1f}x | {c:.3f} | {full_cpu / c:.1f}x "
              f"| {t['sessions']['read']}/{t['sessions']['reused']} "
              f"| {t['sessions']['seconds']:.3f} | {t['orders']['seconds']:.3f} "
              f"| {t['attribution']['seconds']:.3f} | {d['load'] + d['save']:.3f} "
              f"| {d['cache_bytes'] / 2**20:.1f} |")
    print("\nFull scans with cache (reasons):")
    for table, t in details["incremental-7"]["tables"].items():
        if t["full_scan_reason"]:
            print(f"  {table}: {t['full_scan_reason']}")
    (work / "results.json").write_text(json.dumps(
        {"runs": args.runs, "sessions_per_day": args.sessions_per_day, "cores": os.cpu_count(),
         "load_average": [load_before, os.getloadavg()],
         "cpu_seconds": {"full": cpu["full"], **{f"incremental-{d}": cpu[d] for d in (7, 0)}},
         "warm_run_seconds": warm_wall, "seconds": {"full": full, **{
             f"incremental-{d}": summary(results["incremental"][d]) for d in (7, 0)}},
         "last_run": details}, indent=2))


if __name__ == "__main__":
    main()
