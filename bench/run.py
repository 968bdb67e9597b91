"""vigil's benchmark: vigil against DuckDB, polars and pandas on the same files, and against
hand-written SQL and pandas on the same PostgreSQL tables, and against hand-written Spark SQL on
the same Parquet files on a Spark cluster, in the same run.

For each size it writes a 90-day demo warehouse with `vigil demo` (Puffy's columns: long URLs
and user agents) and, with `--formats ...,parquet`, a Parquet copy of it (one `.parquet` per
table, row groups of 131,072 rows, written by the `csv2parquet` example of
vigil-source-parquet; vigil reads it with the same vigil.yml).

With `--formats ...,postgres` it starts a PostgreSQL server of its own (pgserver.py: initdb and
pg_ctl of the newest /usr/lib/postgresql/*/bin, as the `postgres` user when root, in a temporary
folder, on a free loopback port, with the settings of pgserver.SETTINGS, the same for every
tool; stopped at the end, also on failure or Ctrl-C), loads each size's CSVs into typed tables
(types inferred with vigil's rules, COPY in file order, ANALYZE; as tests/src/pg.rs) and drops
the database when that size is done.

With `--formats ...,spark` (vigil built with `--features spark`), per size it writes the Parquet
copy, starts a Spark standalone cluster of its own (sparkcluster.py: scripts/spark-cluster.sh,
1 master, 2 workers of 1 core, the Connect server; VIGIL_SPARK_RUN a fresh folder under the work
folder, free loopback ports, so a cluster on the default ports is left alone; stopped at the
end, also on failure or Ctrl-C) and registers the Parquet files as database `bench_<size>`
(`CREATE TABLE ... USING parquet LOCATION`, external: dropping it leaves the files).

Before timing, once per size and format, it checks the values: `vigil run --metrics-out` writes
every metric vigil computed (default scope and `--scope all`), DuckDB (and polars, on Parquet)
compute the same requests, and check.py compares them (counts exactly, sums within 1e-9
relative). On PostgreSQL, the hand-written SQL (postgres_aggregates.py) is checked against vigil
on PostgreSQL, and vigil on PostgreSQL against vigil on the CSVs; on Spark likewise the
hand-written Spark SQL (spark_aggregates.py) against vigil on Spark, and vigil on Spark against
vigil on the CSVs. A difference stops the benchmark with the differing requests.

Then it times, `--runs` times each (median reported, with min-max and the maximum peak RSS of
the runs), wall time and peak RSS of:
  CSV:     vigil (default scope, `--scope all`); DuckDB computing every aggregate vigil computes
           with SQL on all cores from read_csv (duckdb_aggregates.py); pandas reading the CSVs
           and grouping a few of them (pandas_read.py; S and M; partial, not checked);
  Parquet: vigil (default scope, `--scope all`); DuckDB from read_parquet; polars from
           scan_parquet (polars_aggregates.py), both computing every aggregate vigil computes.
  PostgreSQL: vigil's pushdown (`vigil run --warehouse postgres://... --metrics-out FILE`,
           default scope and `--scope all`: one query per table, only aggregates come back);
           the hand-written SQL of postgres_aggregates.py (one GROUP BY GROUPING SETS query per
           table with FILTERed aggregates, every aggregate vigil computes for that scope) run
           by `psql -f` (the SQL is written before timing; psql's start is timed);
           pandas `read_sql` of the three tables' rows, grouping a few per-day aggregates
           (pandas_sql.py; S and M; partial, not checked).
           Peak RSS is the client's (vigil, psql, python): the server's memory is not counted.
           The vigil/SQL ratio divides vigil's median by the hand-written SQL's (same scope).
           The checks run first, so every tool finds the tables in the server's cache. After
           timing, the last timed vigil run's --metrics-out is checked against the checked run.
           MiB is the tables' size in the database (pg_total_relation_size).
  Spark:   vigil's pushdown (`vigil run --warehouse "sc://127.0.0.1:PORT/;database=bench_<size>"
           --metrics-out FILE`, default scope and `--scope all`: one Spark SQL query per table,
           only aggregates come back); the hand-written Spark SQL of spark_aggregates.py (one
           GROUP BY GROUPING SETS query per table, every aggregate vigil computes for that
           scope; the SQL is written before timing) run by its Python client
           (`spark_aggregates.py --run-sql`: PySpark Connect, the session set as vigil's, each
           statement collected), timed from the Python start, which is also timed alone
           (`--startup`: Python, importing PySpark, the session, `SELECT 1`) and reported.
           Peak RSS is the client's (vigil, python): the cluster's memory is not counted. The
           vigil/hand-written ratio divides vigil's median by the hand-written SQL's (same
           scope). "bytes returned" is what the Connect server sent to the client process over
           TCP (gRPC/HTTP2 framing included), counted by a loopback forwarder
           (sparkcluster.Counter) during the checks, whose runs are the timed commands (vigil
           with the same options, the hand-written SQL's `--run-sql` of the same file, plus
           `--out` to decode what it collected); the start alone gets one extra run. The
           checks run first, so the executors are up and warm for every tool. After timing,
           the last timed vigil run's --metrics-out is checked against the checked run.
           The runs are interleaved (round after round, each tool once a round) and each is
           printed as it ends. MiB is the Parquet files' size.
ns/row divides the wall time by every row read: all rows of all tables.

Each tool's result records the 1/5/15-minute load averages before and after its runs; with
`--quiet-load X` the timing of each size and format first waits (polling every 30 s, at most
`--quiet-wait` minutes) until the 1-minute load average is below X.

Results go to stdout as a markdown table and to WORK/results.json, with the machine (cores, CPU
model), the commit (and whether the work tree had uncommitted changes), the date, the ratios
and, with postgres, the server's version, settings and load time per size; with spark, the
cluster, its start and registration times per size and the bytes returned per tool. Peak RSS is
taken with GNU time when installed (see RSS_METHOD), else from os.wait4.

The binaries are cargo's release builds in its target folder (CARGO_TARGET_DIR when set, else
target/): `cargo build --release -p vigil` (with `--features spark` when timing Spark) and the
`csv2parquet` example. `--csv-work DIR` puts the CSV warehouses elsewhere than `--work` (L's CSVs
take ~7 GB).

Usage: python3 bench/run.py [--sizes S,M,L] [--runs 3] [--formats csv,parquet,postgres,spark]
       [--work DIR] [--csv-work DIR] [--quiet-load 0.6] [--quiet-wait 40]
Needs: cargo, and `pip install duckdb pandas polars pyyaml` (and pyarrow for a Parquet copy of
a CSV over 1 GiB, L's sessions: see chunked_parquet); for postgres, PostgreSQL's server
binaries (apt-get install postgresql) and `pip install pandas sqlalchemy psycopg2-binary`; for
spark, Java 17 and the venv of scripts/spark-cluster.sh (made by its `start`, PySpark with its
Connect client) with `pyyaml` installed into it (target/spark/venv-4.1.1/bin/pip install pyyaml).
"""

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import aggspec  # noqa: E402
import check  # noqa: E402
import pgserver  # noqa: E402
import sparkcluster  # noqa: E402

SIZES = {"S": 10_000, "M": 50_000, "L": 200_000}
DAYS = 90
END = "2025-03-31"
FORMATS = ("csv", "parquet", "postgres", "spark")
PANDAS_SIZES = ("S", "M")


def gnu_time() -> str | None:
    """GNU time, if installed: it measures a command's peak RSS from a small process of its own."""
    for path in ("/usr/bin/time", shutil.which("gtime")):
        if path and os.path.exists(path):
            done = subprocess.run([path, "--version"], capture_output=True, text=True)
            if "GNU" in done.stdout + done.stderr:
                return path
    return None


GNU_TIME = gnu_time()
# How peak RSS is measured. A child's ru_maxrss (os.wait4) starts from the RSS of the process that
# spawned it (Linux records the parent's high-water mark when the child execs): spawned from this
# Python script, a command under ~25 MiB would show the script's RSS. GNU time spawns it from a
# ~1 MiB process instead.
RSS_METHOD = ("GNU time %M (ru_maxrss of the command, spawned by time)" if GNU_TIME else
              "os.wait4 ru_maxrss (floor: the benchmark script's own RSS; install GNU time to lift it)")


def measure(command: list[str], ok: tuple = (0,)) -> tuple[float, int]:
    """Runs a command; returns its wall time in seconds and its peak RSS in MiB."""
    with tempfile.NamedTemporaryFile(mode="r", suffix=".rss") as rss:
        full = [GNU_TIME, "-f", "%M", "-o", rss.name, *command] if GNU_TIME else command
        start = time.perf_counter()
        process = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stderr = process.stderr.read().decode() if process.stderr else ""
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code not in ok:
            sys.exit(f"failed ({code}): {' '.join(command)}\n{stderr}")
        kib = int(rss.read().split()[-1]) if GNU_TIME else usage.ru_maxrss
    return wall, kib // 1024


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


# csv2parquet holds a whole table in memory (~2.2x the CSV: 15 GB for L's 7 GB of sessions): a
# CSV larger than this is converted in chunks of whole row groups and the chunks' row groups
# appended, in order, into one file (chunked_parquet).
CHUNKED_BYTES = 2**30
CHUNK_ROWS = 16 * 131_072  # 16 of csv2parquet's row groups


def parquet_warehouse(csv2parquet: Path, work: Path, size: str, csv_folder: Path) -> Path:
    folder = work / f"{size}-parquet"
    if not (folder / "done").exists():
        print(f"writing the Parquet copy of {size}", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        csvs = sorted((csv_folder / "warehouse").glob("*.csv"))
        large = [c for c in csvs if c.stat().st_size > CHUNKED_BYTES]
        if not large:
            run([csv2parquet, csv_folder / "warehouse", folder / "warehouse"])
        else:
            small = folder / "small-csv"
            small.mkdir(parents=True)
            for c in csvs:
                if c not in large:
                    os.symlink(c, small / c.name)
            run([csv2parquet, small, folder / "warehouse"])
            shutil.rmtree(small)
            for c in large:
                chunked_parquet(csv2parquet, c, folder / "warehouse" / f"{c.stem}.parquet", folder / "chunk")
        shutil.copy(csv_folder / "vigil.yml", folder / "vigil.yml")
        (folder / "done").write_text("")
    return folder


def chunked_parquet(csv2parquet: Path, csv: Path, out: Path, tmp: Path) -> None:
    """csv2parquet of a large CSV in chunks of CHUNK_ROWS records (one line each: the demo's
    CSVs have no line break inside a field), each converted alone, its row groups appended in
    order to `out` by pyarrow (Snappy, dictionary, statistics, as csv2parquet writes them); so
    the rows, their order and the row groups are csv2parquet's, but for the last, shorter row
    group of each chunk. Every chunk must infer the same column types, else it stops."""
    import pyarrow.parquet as pq

    print(f"  {csv.name}: converting in chunks of {CHUNK_ROWS:,} rows", flush=True)
    writer = None
    rows = 0
    try:
        with open(csv, "rb") as f:
            header = f.readline()
            while True:
                shutil.rmtree(tmp, ignore_errors=True)
                (tmp / "csv").mkdir(parents=True)
                n = 0
                with open(tmp / "csv" / csv.name, "wb") as chunk:
                    chunk.write(header)
                    for line in f:
                        chunk.write(line)
                        n += 1
                        if n == CHUNK_ROWS:
                            break
                if n == 0:
                    break
                run([csv2parquet, tmp / "csv", tmp / "parquet"])
                part = pq.ParquetFile(tmp / "parquet" / f"{csv.stem}.parquet")
                if writer is None:
                    writer = pq.ParquetWriter(out, part.schema_arrow, compression="snappy")
                elif part.schema_arrow != writer.schema:
                    sys.exit(f"{csv}: the chunk at row {rows} has other column types:\n"
                             f"{part.schema_arrow}\nthan the first:\n{writer.schema}")
                for g in range(part.num_row_groups):
                    writer.write_table(part.read_row_group(g), row_group_size=CHUNK_ROWS)
                rows += n
                if n < CHUNK_ROWS:
                    break
    finally:
        if writer is not None:
            writer.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"  {csv.name}: {rows:,} rows", flush=True)


def vigil_command(vigil: Path, folder: Path, output: Path, scope: str | None,
                  url: str | None = None) -> list[str]:
    """vigil on the warehouse folder's files or, with `url`, on that database."""
    where = ["--warehouse", url] if url else ["--warehouse_dir", str(folder / "warehouse")]
    command = [str(vigil), "run", *where, "--rules", str(folder / "vigil.yml"),
               "--output_dir", str(output), "--expected_run_date", END, "--no-alerts"]
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


def checked(ours: Path, theirs: Path, label: str, entry: dict) -> dict:
    """check.py on two values files; stops the benchmark on a difference."""
    equal = check.check(str(ours), str(theirs), label)
    if equal is None:
        sys.exit(f"\nvalues differ ({label}): see the requests above; files: {ours} and {theirs}")
    return {**entry, **equal, "equal": True}


def verify_postgres(vigil: Path, csv_folder: Path, folder: Path, url: str, psql: str,
                    size: str) -> tuple[dict, list[dict]]:
    """On the loaded database, both scopes: vigil's values (--metrics-out), the hand-written
    SQL's values (postgres_aggregates.py, which also writes the SQL timed later as
    sql-<scope>.sql) checked against them, and vigil on PostgreSQL checked against vigil on the
    CSVs. Returns the rows per table (from vigil's report) and the checks."""
    out = folder / "check"
    out.mkdir(parents=True, exist_ok=True)
    checks = []
    rows = {}
    for scope in ("partition", "all"):
        metrics = out / f"vigil-{scope}.json"
        reports = out / f"reports-{scope}"
        run(vigil_command(vigil, csv_folder, reports, scope, url) + ["--metrics-out", str(metrics)])
        report = json.loads((reports / "monitoring_report.json").read_text())
        rows = {t["table"]: t.get("rows") for t in report["tables"]}
        values, sql = out / f"sql-{scope}.json", out / f"sql-{scope}.sql"
        run([sys.executable, HERE / "postgres_aggregates.py", url, "--config", csv_folder / "vigil.yml",
             "--requests", metrics, "--out", values, "--sql-out", sql, "--psql", psql])
        base = {"size": size, "format": "postgres", "scope": scope}
        checks.append(checked(metrics, values, f"{size} postgres scope={scope}: hand-written SQL vs vigil",
                              {**base, "engine": "hand-written SQL", "against": "vigil"}))
        checks.append(checked_against_csv(vigil, csv_folder, out, scope, metrics, "PostgreSQL", base))
    if None in rows.values():
        sys.exit(f"vigil could not read every table of the database {url}: {rows}")
    return rows, checks


def checked_against_csv(vigil: Path, csv_folder: Path, out: Path, scope: str, metrics: Path,
                        source: str, base: dict) -> dict:
    """Runs vigil on the CSV folder (`scope`) and checks its metrics equal `metrics`, those of
    vigil on `source` (the check's record carries `base`: size, format, scope)."""
    on_csv = out / f"vigil-csv-{scope}.json"
    run(vigil_command(vigil, csv_folder, out / f"reports-csv-{scope}", scope) + ["--metrics-out", str(on_csv)])
    return checked(on_csv, metrics, f"{base['size']} scope={scope}: vigil on {source} vs vigil on CSV",
                   {**base, "engine": "vigil", "against": "vigil on CSV"})


QUIET = {"load": None, "max_wait_s": 2400, "poll_s": 30}


def wait_quiet() -> dict:
    """With --quiet-load X: waits until the 1-minute load average is below X (polled every 30 s,
    at most --quiet-wait minutes; then times anyway, and says so). Returns what it saw."""
    limit = QUIET["load"]
    seen = {"load_1m_start": round(os.getloadavg()[0], 2)}
    if limit is None:
        return seen
    start = time.perf_counter()
    while os.getloadavg()[0] >= limit:
        if time.perf_counter() - start >= QUIET["max_wait_s"]:
            print(f"the load stayed at or above {limit} for {QUIET['max_wait_s'] / 60:.0f} min: timing anyway",
                  flush=True)
            seen["quiet"] = False
            break
        print(f"waiting for a quiet machine: load {os.getloadavg()[0]:.2f} (want < {limit})", flush=True)
        time.sleep(QUIET["poll_s"])
    else:
        seen["quiet"] = True
    seen["waited_s"] = round(time.perf_counter() - start)
    seen["load_1m_at_timing"] = round(os.getloadavg()[0], 2)
    return seen


def time_tools(tools: dict[str, list[str]], runs: int, base: dict, interleave: bool = False) -> list[dict]:
    """Times each tool `runs` times: median wall time, min-max, maximum peak RSS; records the
    1/5/15-minute load averages before and after each tool's runs (after waiting for a quiet
    machine with --quiet-load). With `interleave` (Spark: minutes a run), round after round,
    each tool once per round, so that a drift of the machine's load falls on every tool alike;
    each run is printed as it ends."""
    results = []
    quiet = wait_quiet()
    load: dict[str, list] = {tool: [[round(x, 2) for x in os.getloadavg()], None] for tool in tools}
    timed: dict[str, list] = {tool: [] for tool in tools}
    if interleave:
        for i in range(runs):
            for tool, command in tools.items():
                timed[tool].append(measure(command))
                load[tool][1] = [round(x, 2) for x in os.getloadavg()]
                print(f"  {base['size']} {base['format']} {tool} run {i + 1}: {timed[tool][-1][0]:.3f} s "
                      f"(peak RSS {timed[tool][-1][1]} MiB; load {os.getloadavg()[0]:.2f})", flush=True)
    for tool, command in tools.items():
        if interleave:
            before, after = load[tool]
            samples = timed[tool]
        else:
            before = [round(x, 2) for x in os.getloadavg()]
            samples = [measure(command) for _ in range(runs)]
            after = [round(x, 2) for x in os.getloadavg()]
        walls = [w for w, _ in samples]
        wall = statistics.median(walls)
        results.append({
            **base, "tool": tool, "runs": runs, "wall_s_median": round(wall, 3),
            "load_before": before, "load_after": after, "quiet_wait": quiet, "interleaved": interleave,
            "wall_s_min": round(min(walls), 3), "wall_s_max": round(max(walls), 3),
            "wall_s_all": [round(w, 3) for w in walls],
            "peak_rss_mib_max": max(r for _, r in samples),
            "ns_per_row": round(wall / base["rows"] * 1e9, 1),
            "values_checked": tool.split(" ")[0].lower() in ("vigil", "duckdb", "polars", "psql", "pyspark"),
        })
        print(f"{base['size']} {base['format']} {tool}: {wall:.3f} s (peak RSS {results[-1]['peak_rss_mib_max']} MiB)",
              flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="S,M,L")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", default="csv", help="comma separated: csv, parquet, postgres, spark")
    parser.add_argument("--work", default=str(ROOT / "target" / "bench"))
    parser.add_argument("--csv-work", help="where the CSV warehouses go (default: --work), e.g. "
                        "another disk for L's ~7 GB")
    parser.add_argument("--quiet-load", type=float, help="before timing, wait until the 1-minute load "
                        "average is below this (every 30 s, at most --quiet-wait minutes)")
    parser.add_argument("--quiet-wait", type=float, default=40)
    args = parser.parse_args()
    QUIET.update(load=args.quiet_load, max_wait_s=args.quiet_wait * 60)
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
    # A kill stops the PostgreSQL server too (its `with` block exits on SystemExit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    csv_work = Path(args.csv_work) if args.csv_work else work
    csv_work.mkdir(parents=True, exist_ok=True)

    # The binaries of cargo's target folder (CARGO_TARGET_DIR when set); vigil with its Spark
    # source when timing Spark.
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    features = ["--features", "spark"] if "spark" in formats else []
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "vigil", *features], cwd=ROOT, check=True)
    vigil = target / "release" / "vigil"
    csv2parquet = target / "release" / "examples" / "csv2parquet"
    if "parquet" in formats or "spark" in formats:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "vigil-source-parquet",
                        "--example", "csv2parquet"], cwd=ROOT, check=True)

    meta = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **commit(),
        "machine": machine(),
        "versions": versions(vigil),
        "runs": args.runs,
        "days": DAYS,
        "peak_rss_method": RSS_METHOD,
        "cargo_features": features[1:],
        "quiet_load": args.quiet_load,
    }
    print(f"machine: {meta['machine']['cores']} cores, {meta['machine']['cpu_model']}; "
          f"commit {meta['commit']}{' (uncommitted changes)' if meta['dirty'] else ''}", flush=True)

    results, checks = [], []
    with contextlib.ExitStack() as stack:
        server = None
        if "postgres" in formats:
            server = stack.enter_context(pgserver.Server())
            meta["postgres"] = {"version": server.version, "version_full": server.version_full,
                                "settings": server.settings, "load_s": {},
                                "note": "peak RSS is the client's; the server's memory is not counted"}
            meta["versions"]["postgresql"] = server.version
            for package in ("sqlalchemy", "psycopg2-binary"):
                try:
                    meta["versions"][package] = importlib.metadata.version(package)
                except importlib.metadata.PackageNotFoundError:
                    meta["versions"][package] = None
            print(f"PostgreSQL {server.version} on port {server.port}: "
                  + ", ".join(f"{k}={v}" for k, v in server.settings.items()), flush=True)
        for size in sizes:
            csv_folder = csv_warehouse(vigil, csv_work, size)
            for fmt in formats:
                if fmt == "postgres":
                    results += bench_postgres(server, vigil, work, size, csv_folder, args.runs, meta, checks)
                    continue
                if fmt == "spark":
                    parquet = parquet_warehouse(csv2parquet, work, size, csv_folder)
                    results += bench_spark(vigil, work, size, csv_folder, parquet, args.runs, meta, checks)
                    continue
                folder = csv_folder if fmt == "csv" else parquet_warehouse(csv2parquet, work, size, csv_folder)
                rows, done = verify(vigil, folder, size, fmt)
                checks += done
                if fmt == "parquet" and "csv" in formats:
                    # vigil reads the Parquet copy to the same values as the CSVs.
                    for scope in ("partition", "all"):
                        label = f"{size} scope={scope}: vigil on Parquet vs vigil on CSV"
                        ours, theirs = (csv_folder / "check" / f"vigil-{scope}.json",
                                        folder / "check" / f"vigil-{scope}.json")
                        checks.append(checked(ours, theirs, label, {
                            "size": size, "format": "parquet", "scope": scope, "engine": "vigil",
                            "against": "vigil on CSV"}))
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
                results += time_tools(tools, args.runs, base(meta, size, fmt, rows, mib))

    ratios, lines = summary(sizes, formats, results)
    out = work / "results.json"
    out.write_text(json.dumps({**meta, "checks": checks, "ratios": ratios, "results": results}, indent=2) + "\n")
    print()
    print(f"{meta['machine']['cores']} cores, {meta['machine']['cpu_model']}; commit "
          f"{(meta['commit'] or '?')[:12]}{' + uncommitted changes' if meta['dirty'] else ''}; {meta['date']}")
    if "postgres" in meta:
        pg = meta["postgres"]
        print(f"PostgreSQL {pg['version']}, same server settings for every tool: "
              + ", ".join(f"{k}={v}" for k, v in pg["settings"].items())
              + "; peak RSS is the client process's (vigil, psql, python): the server's own memory is not counted.")
    if "spark" in meta:
        sp = meta["spark"]
        print(f"Spark {sp['version']} standalone on loopback: {sp['cluster']}; peak RSS is the client "
              f"process's (vigil, python): the cluster's memory is not counted; bytes returned: "
              f"{sp['bytes_method']}")
    print(f"peak RSS: {meta['peak_rss_method']}")
    loads = [r["load_before"][0] for r in results] + [r["load_after"][0] for r in results]
    if loads:
        print(f"1-minute load average around the timed runs: {min(loads):.2f}-{max(loads):.2f}")
    print()
    bytes_column = any("bytes_to_client" in r for r in results)
    print(f"| size | format | rows (all tables) | MiB | tool | wall s (median of {args.runs}) | min-max s "
          f"| peak RSS MiB (max of {args.runs}) | ns/row (all tables) |" + (" bytes returned |" if bytes_column else ""))
    print("|---|---|---:|---:|---|---:|---|---:|---:|" + ("---:|" if bytes_column else ""))
    for r in results:
        returned = f" {r['bytes_to_client']:,} |" if "bytes_to_client" in r else " |"
        print(f"| {r['size']} | {r['format']} | {r['rows']:,} | {r['data_mib']:,.0f} | {r['tool']} | "
              f"{r['wall_s_median']:.3f} | {r['wall_s_min']:.3f}-{r['wall_s_max']:.3f} | "
              f"{r['peak_rss_mib_max']:,} | {r['ns_per_row']:,} |" + (returned if bytes_column else ""))
    print()
    for line in lines:
        print(line)
    print()
    compared = sorted({f"{c['engine']} on {c['format']} vs {c['against']}" for c in checks})
    print(f"values: {len(checks)} checks, all equal ({'; '.join(compared)}; default scope and --scope all); "
          "pandas computes only part of the aggregates and is not checked.")
    print(f"wrote {out}")


def summary(sizes: list[str], formats: list[str], results: list[dict]) -> tuple[list[dict], list[str]]:
    """Per size and format: vigil's wall time over the others' (DuckDB, polars, the hand-written
    SQL of the same scope) and pandas' over vigil's; on PostgreSQL, vigil's peak RSS against the
    goals. Returns them as records and as printed lines."""
    ratios, lines = [], []
    for size in sizes:
        for fmt in formats:
            here = [r for r in results if r["size"] == size and r["format"] == fmt]
            by_tool = {r["tool"]: r["wall_s_median"] for r in here}
            ours = by_tool["vigil"]
            entry = {"size": size, "format": fmt}
            if fmt == "spark":
                entry["vigil_over_sql"] = round(ours / by_tool[SPARK_TOOL], 3)
                entry["vigil_all_over_sql_all"] = round(by_tool["vigil --scope all"] / by_tool[SPARK_ALL_TOOL], 3)
                entry["vigil_peak_rss_mib"] = max(r["peak_rss_mib_max"] for r in here if r["tool"].startswith("vigil"))
                entry["client_start_s"] = by_tool.get(SPARK_START_TOOL)
                parts = [f"vigil/hand-written Spark SQL = {entry['vigil_over_sql']:.2f}, with --scope all "
                         f"{entry['vigil_all_over_sql_all']:.2f} (goal: at most 1.2; the Python client's "
                         f"start, {entry['client_start_s']:.2f} s, is in the hand-written time)",
                         f"vigil peak RSS {entry['vigil_peak_rss_mib']} MiB (the cluster's memory not counted)"]
            elif fmt == "postgres":
                entry["vigil_over_sql"] = round(ours / by_tool[SQL_TOOL], 3)
                entry["vigil_all_over_sql_all"] = round(by_tool["vigil --scope all"] / by_tool[SQL_ALL_TOOL], 3)
                entry["vigil_peak_rss_mib"] = max(r["peak_rss_mib_max"] for r in here if r["tool"].startswith("vigil"))
                parts = [f"vigil/hand-written SQL = {entry['vigil_over_sql']:.2f}, with --scope all "
                         f"{entry['vigil_all_over_sql_all']:.2f} (goal: at most 1.2)",
                         f"vigil peak RSS {entry['vigil_peak_rss_mib']} MiB (goal: under 100 MB; the server's "
                         f"memory not counted)"]
            else:
                parts = []
                for t, w in by_tool.items():
                    if t.startswith(("DuckDB", "polars")):
                        entry[f"vigil_over_{t.split(' ')[0].lower()}"] = round(ours / w, 3)
                        parts.append(f"vigil/{t.split(' ')[0]} = {ours / w:.2f}")
            for t, w in by_tool.items():
                if t.startswith("pandas"):
                    entry["pandas_over_vigil"] = round(w / ours, 3)
                    parts.append(f"pandas/vigil = {w / ours:.1f}x")
            ratios.append(entry)
            lines.append(f"{size} {fmt}: {', '.join(parts)}")
    # Whether vigil's memory on Spark grows with the table.
    spark = [r for r in ratios if r["format"] == "spark"]
    if len(spark) > 1:
        lines.append("vigil's peak RSS via Spark by size: " + ", ".join(
            f"{r['size']} {r['vigil_peak_rss_mib']} MiB" for r in spark))
    return ratios, lines


def base(meta: dict, size: str, fmt: str, rows: dict, mib: float) -> dict:
    """The fields every result of a size and format shares."""
    return {"size": size, "format": fmt, "rows": sum(rows.values()), "rows_by_table": rows,
            "data_mib": round(mib, 1),
            "machine": {k: meta["machine"][k] for k in ("cores", "cpu_model")},
            "commit": meta["commit"], "dirty": meta["dirty"], "date": meta["date"]}


SQL_TOOL = "psql (hand-written SQL)"
SPARK_TOOL = "PySpark Connect (hand-written Spark SQL)"
SPARK_ALL_TOOL = "PySpark Connect (hand-written Spark SQL, --scope all requests)"
SPARK_START_TOOL = "python + PySpark Connect start only (no query)"
# The Connect server ends a reattachable ExecutePlan stream after 2 minutes by default and the
# client must ReattachExecute to get the rest: PySpark does, vigil's client (apache-spark-connect
# 4.2.0) takes the ended stream for the whole answer, so a table query over 2 minutes (L on this
# 2-core machine) comes back empty, as 0 rows, without an error (a vigil bug, reported). The
# benchmark's server keeps the stream open (the same for every tool) so that vigil's values on L
# are whole and checked.
SPARK_CONF = {"spark.connect.execute.reattachable.senderMaxStreamDuration": "1h"}
SQL_ALL_TOOL = "psql (hand-written SQL, --scope all requests)"


def bench_postgres(server: "pgserver.Server", vigil: Path, work: Path, size: str, csv_folder: Path,
                   runs: int, meta: dict, checks: list) -> list[dict]:
    """Loads a size into its own database, checks the values, times the tools, drops it."""
    db = f"bench_{size.lower()}"
    folder = work / f"{size}-postgres"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"loading {size} into PostgreSQL (database {db})", flush=True)
    start = time.perf_counter()
    server.sql("postgres", f"DROP DATABASE IF EXISTS {db}")
    server.load_warehouse(db, csv_folder / "warehouse")
    meta["postgres"]["load_s"][size] = round(time.perf_counter() - start, 1)
    url = server.url(db)
    psql = str(server.bin / "psql")
    rows, done = verify_postgres(vigil, csv_folder, folder, url, psql, size)
    checks += done
    tables = [t["relation"] for t in aggspec.tables(str(csv_folder / "vigil.yml")).values()]
    sizes = server.query(db, "SELECT " + " + ".join(
        f"pg_total_relation_size({aggspec.sql_literal(pgserver.quote(t))})" for t in tables))
    mib = int(sizes[0][0]) / 2**20
    timed = folder / "timed"
    timed.mkdir()
    check_dir = folder / "check"
    tools = {
        "vigil": vigil_command(vigil, csv_folder, folder / "reports", None, url)
        + ["--metrics-out", str(timed / "vigil-partition.json")],
        "vigil --scope all": vigil_command(vigil, csv_folder, folder / "reports", "all", url)
        + ["--metrics-out", str(timed / "vigil-all.json")],
        SQL_TOOL: server.psql(db) + ["-f", str(check_dir / "sql-partition.sql"), "-o", os.devnull],
        SQL_ALL_TOOL: server.psql(db) + ["-f", str(check_dir / "sql-all.sql"), "-o", os.devnull],
    }
    if size in PANDAS_SIZES:
        tools["pandas (read_sql + group, partial)"] = [sys.executable, str(HERE / "pandas_sql.py"), url]
    results = time_tools(tools, runs, base(meta, size, "postgres", rows, mib))
    # The timed runs of vigil computed the values checked above.
    for scope in ("partition", "all"):
        checks.append(checked(check_dir / f"vigil-{scope}.json", timed / f"vigil-{scope}.json",
                              f"{size} postgres scope={scope}: vigil's last timed run vs its checked run",
                              {"size": size, "format": "postgres", "scope": scope,
                               "engine": "vigil (timed run)", "against": "vigil (checked run)"}))
    server.sql("postgres", f"DROP DATABASE {db}")
    return results



def spark_url(cluster: "sparkcluster.Cluster", db: str, port: int | None = None) -> str:
    """vigil's location of database `db` on the cluster (through another port: the counter)."""
    return f"sc://127.0.0.1:{port or cluster.port}/;database={db}"


def verify_spark(cluster: "sparkcluster.Cluster", vigil: Path, csv_folder: Path, folder: Path, db: str,
                 size: str, counter: "sparkcluster.Counter", returned: dict) -> tuple[dict, list[dict]]:
    """On the registered database, both scopes: vigil's values on Spark (--metrics-out), the
    hand-written Spark SQL's values checked against them (spark_aggregates.py writes the SQL,
    timed later, as sql-<scope>.sql, then its `--run-sql` runs it and writes the values), and
    vigil on Spark checked against vigil on the CSVs. vigil's run and the hand-written
    `--run-sql` are the timed commands (plus --out) and go through `counter`: the bytes each got
    back go into `returned` by tool. Returns the rows per table (from vigil's report) and the
    checks."""
    out = folder / "check"
    out.mkdir(parents=True, exist_ok=True)
    checks = []
    rows = {}
    for scope in ("partition", "all"):
        metrics = out / f"vigil-{scope}.json"
        reports = out / f"reports-{scope}"
        vigil_tool, sql_tool = ("vigil", SPARK_TOOL) if scope == "partition" else ("vigil --scope all", SPARK_ALL_TOOL)
        counter.reset()
        run(vigil_command(vigil, csv_folder, reports, scope, spark_url(cluster, db, counter.port))
            + ["--metrics-out", str(metrics)])
        returned[vigil_tool] = counter.counted()
        report = json.loads((reports / "monitoring_report.json").read_text())
        rows = {t["table"]: t.get("rows") for t in report["tables"]}
        values, sql = out / f"sql-{scope}.json", out / f"sql-{scope}.sql"
        run([cluster.python, HERE / "spark_aggregates.py", cluster.url, "--database", db,
             "--config", csv_folder / "vigil.yml", "--requests", metrics, "--sql-out", sql])
        counter.reset()
        run([cluster.python, HERE / "spark_aggregates.py", f"sc://127.0.0.1:{counter.port}", "--database", db,
             "--run-sql", sql, "--out", values])
        returned[sql_tool] = counter.counted()
        base = {"size": size, "format": "spark", "scope": scope}
        checks.append(checked(metrics, values, f"{size} spark scope={scope}: hand-written Spark SQL vs vigil",
                              {**base, "engine": "hand-written Spark SQL", "against": "vigil"}))
        checks.append(checked_against_csv(vigil, csv_folder, out, scope, metrics, "Spark", base))
    if None in rows.values():
        sys.exit(f"vigil could not read every table of the database {db}: {rows}")
    return rows, checks


def bench_spark(vigil: Path, work: Path, size: str, csv_folder: Path, parquet: Path, runs: int,
                meta: dict, checks: list) -> list[dict]:
    """Starts a cluster of its own for this size, registers the Parquet copy as database
    bench_<size>, checks the values, counts the bytes each tool gets back (one untimed run
    each through sparkcluster.Counter), times the tools, stops the cluster."""
    db = f"bench_{size.lower()}"
    folder = work / f"{size}-spark"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with sparkcluster.Cluster(work, SPARK_CONF) as cluster:
        print(f"Spark cluster for {size} at {cluster.url} (started in {cluster.start_s:.0f} s); "
              f"registering {parquet / 'warehouse'} as database {db}", flush=True)
        meta.setdefault("spark", {
            "version": cluster.version, "load_s": {}, "cluster_start_s": {},
            "cluster": "1 master, 2 workers of 1 core (2g), 2 executors of 1g, the Connect server's "
                       "driver; spark.sql.shuffle.partitions=4 (scripts/spark-cluster.sh); "
                       + ", ".join(f"{k}={v}" for k, v in SPARK_CONF.items()),
            "bytes_method": "bytes the Connect server sent to the client process over TCP (gRPC/HTTP2 "
                            "framing included), counted by a loopback forwarder during the checked run of "
                            "the same command",
            "note": "peak RSS is the client's; the cluster's memory is not counted"})
        meta["spark"]["cluster_start_s"][size] = round(cluster.start_s, 1)
        meta["versions"]["pyspark"] = cluster.version
        start = time.perf_counter()
        run([cluster.python, HERE / "spark_aggregates.py", cluster.url, "--register", db, parquet / "warehouse"])
        meta["spark"]["load_s"][size] = round(time.perf_counter() - start, 1)
        # The bytes each tool gets back: its checked run (the timed command) through the counter.
        returned: dict[str, tuple[int, int]] = {}
        with sparkcluster.Counter(cluster.port) as counter:
            rows, done = verify_spark(cluster, vigil, csv_folder, folder, db, size, counter, returned)
            counter.reset()
            run([cluster.python, HERE / "spark_aggregates.py", f"sc://127.0.0.1:{counter.port}",
                 "--database", db, "--startup"])
            returned[SPARK_START_TOOL] = counter.counted()
        for tool, (to_client, to_server) in returned.items():
            print(f"{size} spark {tool}: {to_client:,} bytes returned ({to_server:,} sent)", flush=True)
        checks += done
        mib = sum(f.stat().st_size for f in (parquet / "warehouse").rglob("*.parquet")) / 2**20
        timed = folder / "timed"
        timed.mkdir()
        check_dir = folder / "check"

        hand = [str(cluster.python), str(HERE / "spark_aggregates.py"), cluster.url, "--database", db]
        tools = {
            "vigil": vigil_command(vigil, csv_folder, folder / "reports", None, spark_url(cluster, db))
            + ["--metrics-out", str(timed / "vigil-partition.json")],
            "vigil --scope all": vigil_command(vigil, csv_folder, folder / "reports", "all", spark_url(cluster, db))
            + ["--metrics-out", str(timed / "vigil-all.json")],
            SPARK_TOOL: hand + ["--run-sql", str(check_dir / "sql-partition.sql")],
            SPARK_ALL_TOOL: hand + ["--run-sql", str(check_dir / "sql-all.sql")],
            SPARK_START_TOOL: hand + ["--startup"],
        }
        results = time_tools(tools, runs, base(meta, size, "spark", rows, mib), interleave=True)
        for r in results:
            r["bytes_to_client"], r["bytes_to_server"] = returned[r["tool"]]
            r["values_checked"] = r["tool"] != SPARK_START_TOOL
        # The timed runs of vigil computed the values checked above.
        for scope in ("partition", "all"):
            checks.append(checked(check_dir / f"vigil-{scope}.json", timed / f"vigil-{scope}.json",
                                  f"{size} spark scope={scope}: vigil's last timed run vs its checked run",
                                  {"size": size, "format": "spark", "scope": scope,
                                   "engine": "vigil (timed run)", "against": "vigil (checked run)"}))
        run([cluster.python, "-c", "import sys; from pyspark.sql import SparkSession; "
             "SparkSession.builder.remote(sys.argv[1]).getOrCreate()"
             ".sql(f'DROP DATABASE IF EXISTS `{sys.argv[2]}` CASCADE').collect()", cluster.url, db])
    return results


if __name__ == "__main__":
    main()
