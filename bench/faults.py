"""vigil's detection benchmark: recall of the twelve `vigil demo` faults at three magnitudes, and
false alarms on clean warehouses, for three configs.

For each seed 1..N it writes demo warehouses (`vigil demo`: 70 days, 3,000 sessions on an average
weekday, about 40 orders a day), each into a temporary folder deleted after use:

- one per fault and magnitude (`--faults F --magnitude M`; the renamed column is binary, so it
  is generated once, at the default magnitude), judged on its last day;
- one clean warehouse, judged on each of its last 30 days as that day's daily run would see it:
  `vigil backtest --from D1 --to D2`, whose day D equals `vigil run --expected_run_date D` on the
  warehouse without the rows dated after D. The last of those days is also the clean run of the
  fault table.

The judged day moves with the seed (2025-03-24 + seed days), so every weekday is judged.

Each warehouse is judged with three configs (faults: `vigil run --no-alerts --no-quarantine
--no-state --threads 1 --expected_run_date D`; clean days: `vigil backtest --jobs 1`):

- native: the demo's `tables:` mapping with `rules:` left empty, so every rule runs with its
  defaults;
- reference: the reference monitor's own config (REFERENCE), read as the reference format;
- demo: the `vigil.yml` the demo writes, tuned for it.

A fault is caught when the run raises a finding of at least WARN whose check belongs to one of
the families EXPECTED names for that fault (a prefix of the check name; a finding of an
unrelated check does not count). The findings of every miss, and every false alarm, go to the
log (`--log`).
False alarms: every WARN and ERROR finding of a clean warehouse-day, per config, by check.

Output: a Markdown table on stdout (recall per fault and magnitude for each config; WARN and
ERROR per 100 clean warehouse-days with the checks responsible; the wall time) and the results
as JSON (`--out`), with the commit, the date and the settings. At most two processes run at
once (`--jobs`, 1 or 2), each vigil run on one thread.

The vigil binary is cargo's release build in its target folder (CARGO_TARGET_DIR when set,
else target/), built first with `cargo build --release -p vigil`.

Usage: python3 bench/faults.py [--seeds 20] [--out target/bench/faults.json]
       [--log target/bench/faults.log] [--jobs 2] [--work DIR]
"""

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "data" / "puffy" / "monitoring_rules.reference.yml"

DAYS = 70
SESSIONS = 3000
CLEAN_DAYS = 30
FIRST_END = dt.date(2025, 3, 24)
MAGNITUDES = ("subtle", "clear", "gross")
CONFIGS = ("native", "reference", "demo")

# The check families (prefixes of check names) that catch each fault: the checks whose job it is
# to see it, including the volume, funnel and revenue anomalies a fault necessarily causes.
EXPECTED = {
    "missing-day": ("completeness:", "freshness:"),
    "partial-load": ("volume:", "freshness:", "completeness:", "anomaly:sessions", "anomaly:orders",
                     "anomaly:revenue"),
    "duplicates": ("orders:duplicate_transactions",),
    "negative-revenue": ("orders:negative_revenue", "orders:invalid_revenue"),
    "zero-revenue-spike": ("orders:zero_revenue",),
    "conversion-drop": ("funnel:", "anomaly:conversion_rate", "anomaly:orders", "anomaly:revenue"),
    "revenue-spike": ("anomaly:revenue", "anomaly:aov", "revenue:aov"),
    "channel-shift-to-direct": ("drift:", "anomaly:channel_"),
    "channel-disappearing": ("drift:", "anomaly:channel_"),
    "null-spike": ("sessions:null_rate:client_id",),
    "unparsable-timestamps": ("sessions:unparsable_dates",),
    "renamed-column": ("orders:required_columns", "revenue:unknown_column", "orders:unknown_column"),
}
# Binary faults: one warehouse, reported under every magnitude.
BINARY = ("renamed-column",)
SEVERITY = {"INFO": 0, "WARN": 1, "ERROR": 2}


def build() -> Path:
    """cargo's release build of vigil (CARGO_TARGET_DIR when set, else target/)."""
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "vigil"], cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    return target / "release" / "vigil"


def run(command: list) -> subprocess.CompletedProcess:
    """Runs a command; stops the benchmark with its output if it fails."""
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(map(str, command))}\n{done.stdout}{done.stderr}")
    return done


def end_date(seed: int) -> dt.date:
    """The judged day of a seed's warehouses."""
    return FIRST_END + dt.timedelta(days=seed)


def demo(vigil: Path, out: Path, seed: int, fault: str | None = None, magnitude: str = "gross") -> Path:
    """Writes a demo warehouse with `fault` at `magnitude` into `out`; returns its folder."""
    command = [vigil, "demo", "--out", out, "--days", DAYS, "--sessions-per-day", SESSIONS,
               "--end-date", end_date(seed), "--seed", seed]
    if fault:
        command += ["--faults", fault, "--magnitude", magnitude]
    run(command)
    return out / "warehouse"


def configs(vigil: Path, work: Path) -> dict[str, Path]:
    """The three configs: native (the demo's tables, every rule with its defaults), the reference
    monitor's, the demo's own."""
    folder = work / "configs"
    demo(vigil, folder, 1)
    shutil.rmtree(folder / "warehouse")
    tuned = (folder / "vigil.yml").read_text()
    native = tuned[:tuned.index("\nrules:\n")] + "\nrules:\n"
    (folder / "native.yml").write_text(native)
    return {"native": folder / "native.yml", "reference": REFERENCE, "demo": folder / "vigil.yml"}


def judge(vigil: Path, warehouse: Path, config: Path, day: dt.date, out: Path) -> list[dict]:
    """The findings of one daily run of `config` on `warehouse`, judging `day`."""
    run([vigil, "run", "--warehouse_dir", warehouse, "--rules", config, "--output_dir", out,
         "--expected_run_date", day, "--no-alerts", "--no-quarantine", "--no-state", "--threads", "1"])
    report = json.loads((out / "monitoring_report.json").read_text())
    shutil.rmtree(out)
    return [{"severity": f["severity"], "check": f["check"], "partition_date": f.get("partition_date"),
             "message": f.get("message")} for f in report["findings"]]


def caught(fault: str, findings: list[dict]) -> bool:
    """Whether a finding of at least WARN comes from a check that should see `fault`."""
    return any(SEVERITY.get(f["severity"], 0) >= 1 and f["check"].startswith(EXPECTED[fault])
               for f in findings)


def fault_task(vigil: Path, cfgs: dict[str, Path], work: Path, seed: int, fault: str,
               magnitude: str) -> dict:
    """Generates one faulty warehouse and judges its last day with each config."""
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        warehouse = demo(vigil, Path(tmp), seed, fault, magnitude)
        findings = {name: judge(vigil, warehouse, config, end_date(seed), Path(tmp) / name)
                    for name, config in cfgs.items()}
    return {"seed": seed, "fault": fault, "magnitude": magnitude,
            "caught": {name: caught(fault, f) for name, f in findings.items()}, "findings": findings}


def judge_days(vigil: Path, cfgs: dict[str, Path], warehouse: Path, days: list[dt.date],
               tmp: Path) -> dict[str, dict[str, list[dict]]]:
    """The findings of each config's daily run on each of `days` (ascending), each run seeing the
    warehouse as of its day: one `vigil backtest` per config (each day's findings equal those of
    `vigil run --expected_run_date D` on the warehouse cut after D; tests/tests/backtest.rs)."""
    result: dict[str, dict[str, list[dict]]] = {}
    for name, config in cfgs.items():
        out = tmp / f"backtest-{name}"
        run([vigil, "backtest", "--warehouse_dir", warehouse, "--rules", config,
             "--from", days[0], "--to", days[-1], "--output_dir", out, "--jobs", "1"])
        report = json.loads((out / "backtest.json").read_text())
        shutil.rmtree(out)
        result[name] = {d["date"]: [{"severity": f["severity"], "check": f["check"],
                                     "partition_date": f.get("partition_date"),
                                     "message": f.get("message")} for f in d["findings"]]
                        for d in report["days"]}
        missing = {str(d) for d in days} - set(result[name])
        if missing:
            raise SystemExit(f"backtest of {warehouse} with {config} lacks the days {sorted(missing)}")
    return result


def clean_task(vigil: Path, cfgs: dict[str, Path], work: Path, seed: int) -> dict:
    """Generates a seed's clean warehouse and judges each of its last CLEAN_DAYS days."""
    end = end_date(seed)
    days = [end - dt.timedelta(days=n) for n in range(CLEAN_DAYS - 1, -1, -1)]
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        warehouse = demo(vigil, Path(tmp), seed)
        by_day = judge_days(vigil, cfgs, warehouse, days, Path(tmp))
    return {"seed": seed, "days": by_day}


def commit() -> dict:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                            capture_output=True, text=True)
    return {"commit": head.stdout.strip() or None,
            "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def summarize(faults: list[dict], clean: list[dict]) -> dict:
    """Recall per config, fault and magnitude; false alarms per config."""
    recall: dict = {c: {} for c in CONFIGS}
    for r in faults:
        magnitudes = MAGNITUDES if r["fault"] in BINARY else (r["magnitude"],)
        for c in CONFIGS:
            for m in magnitudes:
                cell = recall[c].setdefault(r["fault"], {}).setdefault(m, {"caught": 0, "total": 0,
                                                                          "missed_seeds": []})
                cell["total"] += 1
                if r["caught"][c]:
                    cell["caught"] += 1
                else:
                    cell["missed_seeds"].append(r["seed"])
    alarms = {}
    for c in CONFIGS:
        days = 0
        checks: dict[str, Counter] = {}
        seeds: dict[str, set] = {}
        for r in clean:
            for findings in r["days"][c].values():
                days += 1
                for f in findings:
                    if f["severity"] in ("WARN", "ERROR"):
                        checks.setdefault(f["check"], Counter())[f["severity"]] += 1
                        seeds.setdefault(f["check"], set()).add(r["seed"])
        warn = sum(n["WARN"] for n in checks.values())
        error = sum(n["ERROR"] for n in checks.values())
        alarms[c] = {
            "warehouse_days": days, "warn": warn, "error": error,
            "warn_per_100_days": round(100 * warn / days, 2) if days else None,
            "error_per_100_days": round(100 * error / days, 2) if days else None,
            "checks": {k: {"WARN": v["WARN"], "ERROR": v["ERROR"], "seeds": sorted(seeds[k])}
                       for k, v in sorted(checks.items(), key=lambda kv: -sum(kv[1].values()))},
        }
    return {"recall": recall, "false_alarms": alarms}


def markdown(summary: dict, fault_names: list[str], seeds: int) -> str:
    """The recall and false-alarm tables."""
    lines = ["Recall (warehouses caught of " + str(seeds) + " seeds; s/c/g = subtle/clear/gross):", "",
             "| fault | " + " | ".join(f"{c} s/c/g" for c in CONFIGS) + " |",
             "|---|" + "---|" * len(CONFIGS)]
    for fault in fault_names:
        cells = []
        for c in CONFIGS:
            row = summary["recall"][c][fault]
            if fault in BINARY:
                cells.append(f"{row['gross']['caught']} (binary)")
            else:
                cells.append(" / ".join(str(row[m]["caught"]) for m in MAGNITUDES))
        lines.append(f"| {fault} | " + " | ".join(cells) + " |")
    lines += ["", "False alarms on clean warehouses (each of the last " + str(CLEAN_DAYS)
              + " days judged as its own daily run):", "",
              "| config | warehouse-days | WARN / 100 days | ERROR / 100 days | top checks (WARN/ERROR) |",
              "|---|---:|---:|---:|---|"]
    for c in CONFIGS:
        a = summary["false_alarms"][c]
        top = ", ".join(f"`{k}` {v['WARN']}/{v['ERROR']}" for k, v in list(a["checks"].items())[:5]) or "none"
        lines.append(f"| {c} | {a['warehouse_days']} | {a['warn_per_100_days']} | "
                     f"{a['error_per_100_days']} | {top} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20, help="seeds 1..N (default 20)")
    parser.add_argument("--out", default=str(ROOT / "target" / "bench" / "faults.json"))
    parser.add_argument("--log", default=str(ROOT / "target" / "bench" / "faults.log"),
                        help="the findings of every miss, and every false alarm")
    parser.add_argument("--jobs", type=int, choices=(1, 2), default=2)
    parser.add_argument("--work", default="/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir(),
                        help="where the temporary warehouses go (default: /dev/shm when there, else the "
                        "temporary folder; at most ~400 MB at a time)")
    args = parser.parse_args()
    started = time.perf_counter()
    for output in (args.out, args.log):
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    vigil = build()
    work = Path(tempfile.mkdtemp(prefix="vigil-faults-", dir=args.work))
    try:
        cfgs = configs(vigil, work)
        fault_names = list(EXPECTED)
        seeds = range(1, args.seeds + 1)
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            clean_jobs = [pool.submit(clean_task, vigil, cfgs, work, s) for s in seeds]
            fault_jobs = [pool.submit(fault_task, vigil, cfgs, work, s, f, m)
                          for s in seeds for f in fault_names
                          for m in (("gross",) if f in BINARY else MAGNITUDES)]
            clean = [j.result() for j in clean_jobs]
            faults = [j.result() for j in fault_jobs]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarize(faults, clean)
    wall = time.perf_counter() - started
    with open(args.log, "w") as log:
        for r in faults:
            for c in CONFIGS:
                if not r["caught"][c]:
                    log.write(f"MISS seed {r['seed']} {r['fault']} {r['magnitude']} config {c}: "
                              f"expected {', '.join(EXPECTED[r['fault']])}\n")
                    for f in r["findings"][c]:
                        log.write(f"    {f['severity']} {f['check']} {f['partition_date']}: {f['message']}\n")
        for r in clean:
            for c in CONFIGS:
                for day, findings in r["days"][c].items():
                    for f in findings:
                        if f["severity"] in ("WARN", "ERROR"):
                            log.write(f"FALSE ALARM seed {r['seed']} {day} config {c}: {f['severity']} "
                                      f"{f['check']}: {f['message']}\n")
    meta = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **commit(),
            "vigil": run([vigil, "--version"]).stdout.strip(), "seeds": args.seeds, "days": DAYS,
            "sessions_per_day": SESSIONS, "clean_days_judged": CLEAN_DAYS, "jobs": args.jobs,
            "wall_s": round(wall, 1), "expected": EXPECTED}
    Path(args.out).write_text(json.dumps({"meta": meta, **summary, "faults": [
        {k: r[k] for k in ("seed", "fault", "magnitude", "caught")} for r in faults]}, indent=1))
    print(markdown(summary, fault_names, args.seeds))
    print(f"\n{args.seeds} seeds, {len(faults)} faulty and {len(clean)} clean warehouses, "
          f"wall {wall:.0f} s (commit {meta['commit']}{' + changes' if meta['dirty'] else ''})")


if __name__ == "__main__":
    main()
