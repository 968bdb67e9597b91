"""vigil's incremental-run benchmark: on a 91-day demo warehouse (50,000 sessions a day, size M)
written as hive-partitioned Parquet datasets (one `<column>_day=YYYY-MM-DD/` folder per day for
the sessions and the orders; attribution, which has no date column of its own, one file), the
daily run for day 91 (2025-04-01), through the real command line:

  full         `vigil run --no-state`: every partition read;
  incremental  `vigil run --state FILE` with the state store left by the run for day 90
               (2025-03-31, made once with day 91's partitions moved out of the datasets): only
               the partitions of the last `run.recompute_days` days (7 by default, and 0) and
               changed ones are read; the rest come from the store.

Both write the four reports (the demo config has no alert destination; no quarantine). Each incremental run starts from a copy of the day-90 store. `--runs`
runs each (median, min-max reported, and CPU seconds, steadier than wall time when the machine
has other work); the findings and judged metrics of each incremental run must equal the full
run's (the benchmark stops otherwise). It also reports the partitions read and reused per table
and the store's size.

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


def build() -> tuple[Path, Path]:
    for args in (["-p", "vigil", "--bin", "vigil"],
                 ["-p", "vigil-source-parquet", "--example", "csv2parquet"]):
        subprocess.run(["cargo", "build", "--release", "-q", *args], cwd=ROOT, check=True)
    release = TARGET / "release"
    return release / "vigil", release / "examples" / "csv2parquet"


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


def timed(command: list, reports: Path) -> tuple[float, float, dict]:
    """Runs vigil; returns its wall time, its CPU seconds (user + system, from the children's
    resource usage) and its JSON report."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        sys.exit(f"failed ({done.returncode}): {' '.join(map(str, command))}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = json.loads((reports / "monitoring_report.json").read_text())
    return wall, cpu, report


def judged(report: dict) -> list:
    """What must be equal between a full and an incremental run."""
    findings = [[f[k] for k in ("severity", "check", "subject", "partition_date", "message",
                                "value", "threshold")] for f in report["findings"]]
    return [findings, report["observations"], report["daily_metrics"]]


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=TARGET / "bench" / "incremental-M")
    parser.add_argument("--sessions-per-day", type=int, default=50_000)
    args = parser.parse_args()
    vigil, csv2parquet = build()
    work = args.work
    folder, config = warehouse(vigil, csv2parquet, work, args.sessions_per_day)
    configs = {}
    for days in (7, 0):
        configs[days] = work / f"vigil-recompute-{days}.yml"
        configs[days].write_text(config.read_text() + f"run:\n  recompute_days: {days}\n")

    def command(date: str, reports: Path, *extra) -> list:
        return [vigil, "run", "--warehouse", folder, "--rules", configs[7],
                "--output_dir", reports, "--expected_run_date", date, "--no-quarantine",
                *extra]

    # The run for day 90 leaves the store (every partition read and stored).
    warm = work / "state-day90.sqlite"
    if not warm.exists():
        aside = work / "aside"
        move_last_day(folder, aside, back=False)
        try:
            wall, _, _ = timed(command(PREVIOUS, work / "reports-90", "--state", warm),
                               work / "reports-90")
        finally:
            move_last_day(folder, aside, back=True)
        print(f"day-90 run storing the state: {wall:.2f} s, {warm.stat().st_size:,} bytes",
              file=sys.stderr)
    results = {"full": [], 7: [], 0: []}
    cpu = {"full": [], 7: [], 0: []}
    partitions = {}
    for i in range(args.runs):
        wall, seconds, full = timed(command(END, work / "reports-full", "--no-state"),
                                    work / "reports-full")
        results["full"].append(wall)
        cpu["full"].append(seconds)
        for days in (7, 0):
            state = work / "state-run.sqlite"
            shutil.copy(warm, state)
            reports = work / f"reports-{days}"
            cmd = [c if c != configs[7] else configs[days]
                   for c in command(END, reports, "--state", state)]
            # Each incremental run commits like a daily run (runs, findings, partitions).
            wall, seconds, report = timed(cmd, reports)
            results[days].append(wall)
            cpu[days].append(seconds)
            if judged(report) != judged(full):
                sys.exit(f"incremental (recompute_days {days}) findings or metrics differ from "
                         f"the full run's: compare {reports} with {work / 'reports-full'}")
            partitions[days] = {t["table"]: t.get("partitions") for t in report["tables"]}
        print(f"round {i + 1}: full {results['full'][-1]:.2f} s, incremental(7) "
              f"{results[7][-1]:.2f} s, incremental(0) {results[0][-1]:.2f} s", file=sys.stderr)
    full = statistics.median(results["full"])
    print(f"\nday-91 run of a {DAYS}-day partitioned Parquet warehouse "
          f"({args.sessions_per_day:,} sessions/day), {args.runs} runs, load average "
          f"{os.getloadavg()[0]:.1f}; findings and judged metrics identical in every run\n")
    print("| run | wall s (median) | min-max s | speedup | CPU s | sessions read/reused |"
          " orders read/reused |")
    print("|---|---:|---|---:|---:|---|---|")
    for key, name in (("full", "full (`--no-state`)"),
                      (7, "incremental, `recompute_days: 7`"),
                      (0, "incremental, `recompute_days: 0`")):
        s = summary(results[key])
        shown = partitions.get(key, {})
        cell = lambda t: ("all" if not shown.get(t) else
                          f"{shown[t]['read']} / {shown[t]['reused']}")
        print(f"| {name} | {s['median']:.3f} | {s['min']:.3f}-{s['max']:.3f} "
              f"| {full / s['median']:.1f}x | {statistics.median(cpu[key]):.2f} "
              f"| {cell('sessions')} | {cell('orders')} |")
    (work / "results.json").write_text(json.dumps(
        {"wall": {str(k): summary(v) for k, v in results.items()},
         "cpu": {str(k): summary(v) for k, v in cpu.items()},
         "partitions": {str(k): v for k, v in partitions.items()}}, indent=2))


if __name__ == "__main__":
    main()
