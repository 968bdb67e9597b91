"""A PostgreSQL server for the benchmark, as the Rust tests start one (tests/src/pg.rs).

`Server` runs `initdb` and `pg_ctl` of the newest PostgreSQL installed under
/usr/lib/postgresql (as the `postgres` OS user via `runuser` when run as root) in a temporary
folder, on a free loopback port, trust authentication, with the benchmark's settings
(`SETTINGS`, the same for every tool); it is stopped (`pg_ctl stop -m immediate`) and its folder
removed on `stop()`, on leaving a `with` block, on an exception, or at interpreter exit.

`load_warehouse` loads every `*.csv` of a warehouse folder into a typed table named after the
file's stem, as the tests do: the type of each column is inferred from its cells with vigil's
rules (sources/parquet/src/convert.rs `infer_columns`: the narrowest of BIGINT, DOUBLE
PRECISION, TIMESTAMPTZ, TIMESTAMP, DATE that every non-empty cell fits, else TEXT; `""`, `NULL`
and `null` are empty), empty cells of typed columns become NULL (and so do empty text cells, as
COPY reads an unquoted empty field as NULL, as in the tests), short rows are padded; rows go
in file order (so `ctid` order is file order): psql's `\copy` of the file itself when no row
needs rewriting (no short or long row, no `NULL` / `null` cell in a typed column; FORCE_NULL on
every column makes every empty field NULL, as the rewrite does), else the rewritten rows
streamed to `COPY ... FROM STDIN`; then `ANALYZE`.

Usage (by hand): python3 pgserver.py WAREHOUSE_DIR   (starts a server, loads, prints the URL
and the column types, waits for Enter, stops)
"""

import atexit
import csv
import datetime as dt
import functools
import io
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

# The server settings of the benchmark (2 cores, 24 GB): the same for vigil, the hand-written
# queries and pandas. fsync and full_page_writes are off only to load faster (nothing timed
# writes).
SETTINGS = {
    "shared_buffers": "2GB",
    "work_mem": "256MB",
    "maintenance_work_mem": "1GB",
    "effective_cache_size": "16GB",
    "max_parallel_workers_per_gather": "2",
    "max_parallel_workers": "2",
    "max_worker_processes": "8",
    "random_page_cost": "1.1",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "max_wal_size": "8GB",
}

csv.field_size_limit(sys.maxsize)


def binaries() -> Path:
    """The bin folder of the newest PostgreSQL installed."""
    found = sorted((p / "bin" for p in Path("/usr/lib/postgresql").glob("*")
                    if (p / "bin" / "initdb").exists()), key=lambda p: int(p.parent.name)
                   if p.parent.name.isdigit() else 0)
    if not found:
        sys.exit("PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
                 "apt-get update && apt-get install -y postgresql")
    return found[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Server:
    """A running server; `url(db)` for vigil, `psql(db)` for the command line of psql."""

    def __init__(self, settings: dict | None = None):
        self.bin = binaries()
        self.as_postgres = os.geteuid() == 0
        self.settings = dict(SETTINGS if settings is None else settings)
        self.dir = Path(tempfile.mkdtemp(prefix="vigil-bench-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.running = False
        atexit.register(self.stop)
        try:
            if self.as_postgres:
                subprocess.run(["chown", "-R", "postgres:postgres", str(self.dir)], check=True)
            self._server("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                         "--no-sync", "-E", "UTF8", "--locale=C")
            options = [f"-p {self.port}", f"-k {self.dir}", "-c listen_addresses=127.0.0.1"]
            options += [f"-c {k}={v}" for k, v in self.settings.items()]
            self._server("pg_ctl", "-D", str(self.data), "-o", " ".join(options),
                         "-l", str(self.dir / "server.log"), "-w", "start")
            self.running = True
            self.version = self.query("postgres", "SHOW server_version")[0][0]
            self.version_full = self.query("postgres", "SELECT version()")[0][0]
        except BaseException:
            self.stop()
            raise

    def _server(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            log = self.dir / "server.log"
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}{tail}")

    def stop(self) -> None:
        """Stops the server (immediate shutdown) and removes its folder; safe to call twice."""
        if self.running:
            self.running = False
            try:
                self._server("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except RuntimeError as e:
                print(f"warning: {e}", file=sys.stderr)
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def psql(self, db: str) -> list[str]:
        """psql's command line for database `db` (no psqlrc, stop on the first error)."""
        return [str(self.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                "-p", str(self.port), "-U", "postgres", "-d", db]

    def sql(self, db: str, sql: str) -> None:
        done = subprocess.run(self.psql(db) + ["-c", sql], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed on {sql[:500]}: {done.stderr}")

    def query(self, db: str, sql: str) -> list[list[str]]:
        """The rows of a query, as text (CSV output of psql; NULL as an empty string)."""
        done = subprocess.run(self.psql(db) + ["--csv", "-t", "-c", sql], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed on {sql[:500]}: {done.stderr}")
        return list(csv.reader(done.stdout.splitlines()))

    def load_warehouse(self, db: str, folder: Path, log=print) -> dict[str, list[tuple[str, str]]]:
        """Creates database `db` and loads every `*.csv` of `folder` (see the module's doc);
        returns {table: [(column, SQL type)]}."""
        self.sql("postgres", f"CREATE DATABASE {quote(db)}")
        out = {}
        for file in sorted(Path(folder).glob("*.csv")):
            out[file.stem] = load_table(self, db, file)
            log(f"  loaded {file.stem}: " + ", ".join(f"{c} {t}" for c, t in out[file.stem]))
        self.sql(db, "ANALYZE")
        return out


# vigil's type inference of CSV columns (sources/parquet/src/convert.rs), with the grammars of
# Rust's i64 / f64 parsers and chrono's RFC 3339 and `%Y-%m-%d[T ]%H:%M:%S%.f` / `%Y-%m-%d`.
EMPTY = ("", "NULL", "null")
INT = re.compile(r"[+-]?\d+")
FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
ZONED = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))")
NAIVE = re.compile(r"(\d{4,})-(\d{1,2})-(\d{1,2})[T ](\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d+)?")
DATE = re.compile(r"(\d{4,})-(\d{1,2})-(\d{1,2})")


@functools.lru_cache(maxsize=4096)
def _valid_date(y: str, m: str, d: str) -> bool:
    try:
        dt.date(int(y), int(m), int(d))
    except ValueError:
        return False
    return True


def _valid(y, m, d, hh="0", mm="0", ss="0") -> bool:
    return _valid_date(y, m, d) and int(hh) <= 23 and int(mm) <= 59 and int(ss) <= 60


def fits_int(c: str) -> bool:
    return bool(INT.fullmatch(c)) and -2**63 <= int(c) < 2**63


def fits_float(c: str) -> bool:
    return bool(FLOAT.fullmatch(c)) and math.isfinite(float(c))


def fits_zoned(c: str) -> bool:
    m = ZONED.fullmatch(c.replace(" ", "T", 1))
    return bool(m) and _valid(*m.group(1, 2, 3, 4, 5, 6)) and (
        m.group(9) is None or (int(m.group(9)) <= 23 and int(m.group(10)) <= 59))


def fits_naive(c: str) -> bool:
    m = NAIVE.fullmatch(c)
    return bool(m) and _valid(*m.group(1, 2, 3, 4, 5, 6))


def fits_date(c: str) -> bool:
    m = DATE.fullmatch(c)
    return bool(m) and _valid(*m.group(1, 2, 3))


KINDS = [("BIGINT", fits_int), ("DOUBLE PRECISION", fits_float), ("TIMESTAMPTZ", fits_zoned),
         ("TIMESTAMP", fits_naive), ("DATE", fits_date)]


def infer_columns(file: Path) -> list[tuple[str, str]]:
    """[(column, SQL type)] of a CSV file: the narrowest type every non-empty cell fits."""
    return scan_csv(file)[0]


def scan_csv(file: Path) -> tuple[list[tuple[str, str]], bool]:
    """The columns' types, and whether COPY can read the file as it is: every row as wide as
    the header and no `NULL` / `null` cell in a typed column (else the rows are rewritten)."""
    with open(file, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        if header:
            header[0] = header[0].lstrip("\ufeff")
        fits = [[k for k, _ in KINDS] for _ in header]
        tests = dict(KINDS)
        seen = [False] * len(header)
        words = [False] * len(header)  # a NULL / null cell
        width = len(header)
        ragged = False
        for row in reader:
            if len(row) != width:
                ragged = True
            for i in range(min(width, len(row))):
                cell = row[i]
                if not fits[i]:
                    continue
                if cell in EMPTY:
                    if cell:
                        words[i] = True
                    continue
                seen[i] = True
                # Test only the kinds still possible (most columns settle within a few rows);
                # an integer is also a float, so a cell that fits the first kind keeps the rest
                # when the rest is just the float kind.
                kinds = fits[i]
                if tests[kinds[0]](cell):
                    if len(kinds) == 1 or kinds[1:] == ["DOUBLE PRECISION"] and kinds[0] == "BIGINT":
                        continue
                    fits[i] = [kinds[0]] + [k for k in kinds[1:] if tests[k](cell)]
                else:
                    fits[i] = [k for k in kinds[1:] if tests[k](cell)]
    columns = [(h, fits[i][0] if seen[i] and fits[i] else "TEXT") for i, h in enumerate(header)]
    as_is = width > 1 and not ragged and not any(w and t != "TEXT" for w, (_, t) in zip(words, columns))
    return columns, as_is


def load_table(server: Server, db: str, file: Path) -> list[tuple[str, str]]:
    """Creates the typed table of one CSV file and copies its rows in (file order): with psql's
    \\copy of the file itself when it can (every empty field NULL, as the rewrite gives), else
    by streaming the rewritten rows (short rows padded, empty cells of typed columns NULL)."""
    columns, as_is = scan_csv(file)
    table = quote(file.stem)
    definitions = ", ".join(f"{quote(c)} {t}" for c, t in columns)
    server.sql(db, f"CREATE TABLE {table} ({definitions})")
    if as_is:
        names = ", ".join(quote(c) for c, _ in columns)
        path = str(Path(file).resolve()).replace("'", "''")
        server.sql(db, f"\\copy {table} FROM '{path}' WITH (FORMAT csv, HEADER true, FORCE_NULL ({names}))")
        return columns
    typed = [t != "TEXT" for _, t in columns]
    width = len(columns)
    errors = tempfile.TemporaryFile()
    copy = subprocess.Popen(
        server.psql(db) + ["-c", f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER false)"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
    stream = io.TextIOWrapper(copy.stdin, encoding="utf-8", newline="", write_through=False)
    try:
        with open(file, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader, None)
            writer = csv.writer(stream, lineterminator="\n")
            for row in reader:
                if len(row) != width:
                    row = (row + [""] * width)[:width]
                for i in range(width):
                    if typed[i] and row[i] in EMPTY:
                        row[i] = ""
                writer.writerow(row)
        stream.close()
    except BrokenPipeError:
        pass
    if copy.wait() != 0:
        errors.seek(0)
        raise RuntimeError(f"COPY into {file.stem} failed: {errors.read().decode(errors='replace')}")
    return columns


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with Server() as server:
        server.load_warehouse("warehouse", Path(sys.argv[1]))
        print(f"PostgreSQL {server.version}: {server.url('warehouse')}")
        print(" ".join(server.psql("warehouse")))
        input("Enter stops the server: ")


if __name__ == "__main__":
    main()
