"""A Spark standalone cluster of the benchmark's own, and a byte-counting TCP forwarder.

Cluster: scripts/spark-cluster.sh (1 master, 2 workers of 1 core, the Spark Connect server;
its defaults: 2g per worker, 1g per executor, 4 shuffle partitions, session time zone UTC) with
VIGIL_SPARK_RUN a fresh folder under the benchmark's work folder (pids, logs, the workers' work
dirs, SPARK_LOCAL_DIRS for shuffle and spill files; the server runs there, so its
`spark-warehouse/` lands there too) and free loopback ports
for the Connect server, the master and the driver's UI, so that it never touches a cluster
already running on the default ports. Stopped (by the script, by process id) and its folder
deleted when the `with` block exits, also on failure or Ctrl-C. `conf` adds settings through a
spark-defaults.conf of its own (SPARK_CONF_DIR). The PySpark venv
(VIGIL_SPARK_HOME, default target/spark) is the script's cached one.

Counter: a loopback TCP forwarder between a Spark Connect client and the server, counting the
bytes each way (gRPC over HTTP/2 in clear: frames, headers and Arrow batches as sent on the
wire). The benchmark runs each tool's checked (untimed) run through it to report the bytes the
server returned to the client.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "spark-cluster.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """`with Cluster(work) as c:` starts a cluster; c.url is its Connect location."""

    def __init__(self, work: Path, conf: dict[str, str] | None = None):
        self.work = work
        self.conf = dict(conf or {})
        self.version = os.environ.get("VIGIL_SPARK_VERSION", "4.1.1")
        home = Path(os.environ.get("VIGIL_SPARK_HOME", ROOT / "target" / "spark"))
        self.python = home / f"venv-{self.version}" / "bin" / "python"
        self.run_dir: Path | None = None
        self.env: dict = {}
        self.port = 0
        self.start_s = 0.0

    def _script(self, command: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(SCRIPT), command], env=self.env, cwd=self.run_dir,
                              capture_output=True, text=True)

    def __enter__(self) -> "Cluster":
        self.work.mkdir(parents=True, exist_ok=True)
        self.run_dir = Path(tempfile.mkdtemp(prefix="spark-", dir=self.work))
        self.port = free_port()
        # Extra settings of the Connect server: a spark-defaults.conf in a SPARK_CONF_DIR of the
        # cluster's own (spark-submit reads it; the venv's conf/ is left alone).
        conf_dir = self.run_dir / "conf"
        conf_dir.mkdir()
        (conf_dir / "spark-defaults.conf").write_text("".join(f"{k} {v}\n" for k, v in self.conf.items()))
        self.env = {
            **os.environ,
            "VIGIL_SPARK_RUN": str(self.run_dir),
            "VIGIL_SPARK_PORT": str(self.port),
            "VIGIL_SPARK_MASTER_PORT": str(free_port()),
            "VIGIL_SPARK_UI_PORT": str(free_port()),
            # The master's REST submission port (6066 by default) would clash with another
            # cluster's: off, it is not used.
            "SPARK_MASTER_OPTS": (os.environ.get("SPARK_MASTER_OPTS", "") + " -Dspark.master.rest.enabled=false").strip(),
            # Shuffle and spill files in the cluster's folder, not in /tmp.
            "SPARK_LOCAL_DIRS": str(self.run_dir / "local"),
            "SPARK_CONF_DIR": str(conf_dir),
        }
        start = time.perf_counter()
        done = self._script("start")
        self.start_s = time.perf_counter() - start
        if done.returncode != 0:
            self._cleanup()
            sys.exit(f"spark-cluster.sh start failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return self

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def _cleanup(self) -> None:
        if self.run_dir is not None:
            self._script("stop")
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    def __exit__(self, *exc) -> None:
        self._cleanup()


class Counter:
    """`with Counter(port) as c:` forwards 127.0.0.1:c.port to 127.0.0.1:port, counting bytes:
    c.to_client (server to client) and c.to_server; c.reset() zeroes them."""

    def __init__(self, target: int):
        self.target = target
        self.to_client = 0
        self.to_server = 0
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = False

    def reset(self) -> None:
        with self.lock:
            self.to_client = self.to_server = 0

    def counted(self) -> tuple[int, int]:
        """(to_client, to_server) once a client process has ended (its last bytes forwarded)."""
        time.sleep(0.3)
        with self.lock:
            return self.to_client, self.to_server

    def _pump(self, src: socket.socket, dst: socket.socket, to_client: bool) -> None:
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                dst.sendall(data)
                with self.lock:
                    if to_client:
                        self.to_client += len(data)
                    else:
                        self.to_server += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            for args in ((client, server, False), (server, client, True)):
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def __enter__(self) -> "Counter":
        self.listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.closed = True
        self.listener.close()
