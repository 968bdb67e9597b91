#!/usr/bin/env bash
# A real Spark standalone cluster on loopback, for vigil's Spark tests and benchmark:
# one master, two workers (1 core each) and the Spark Connect server submitted to that master.
#
#   scripts/spark-cluster.sh start    install PySpark into a cached venv if needed, start the
#                                     cluster, wait until the Connect port answers
#   scripts/spark-cluster.sh stop     stop every process it started (by process id)
#   scripts/spark-cluster.sh status   what runs, and the Connect URL
#
# Settings (environment): VIGIL_SPARK_HOME (cache folder of the venv; default target/spark),
# VIGIL_SPARK_RUN (folder of this cluster's pids, logs and work dirs; default VIGIL_SPARK_HOME),
# VIGIL_SPARK_VERSION (PySpark from PyPI, default 4.1.1), VIGIL_SPARK_PORT (Connect port,
# default 15002), VIGIL_SPARK_MASTER_PORT (default 7077), VIGIL_SPARK_UI_PORT (the driver's web UI
# and REST API, default 4040), VIGIL_SPARK_WORKER_MEMORY
# (default 2g), VIGIL_SPARK_CONF (more `key=value` settings of the Connect server, space
# separated), VIGIL_SPARK_EXECUTOR_MEMORY (default 1g), VIGIL_SPARK_TIMEOUT (seconds to wait for
# the Connect port, default 180). Needs Java 17 and Python 3 with venv; the pip package has no
# start scripts, so the classes are run directly.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
home="${VIGIL_SPARK_HOME:-$root/target/spark}"
version="${VIGIL_SPARK_VERSION:-4.1.1}"
port="${VIGIL_SPARK_PORT:-15002}"
master_port="${VIGIL_SPARK_MASTER_PORT:-7077}"
worker_memory="${VIGIL_SPARK_WORKER_MEMORY:-2g}"
executor_memory="${VIGIL_SPARK_EXECUTOR_MEMORY:-1g}"
timeout="${VIGIL_SPARK_TIMEOUT:-180}"
ui_port="${VIGIL_SPARK_UI_PORT:-4040}"
run="${VIGIL_SPARK_RUN:-$home}"
venv="$home/venv-$version"
pids="$run/pids"
logs="$run/logs"

say() { echo "spark-cluster: $*" >&2; }

# Whether something accepts TCP connections on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

install() {
    command -v java >/dev/null || { say "java not found: apt-get update && apt-get install -y openjdk-17-jre-headless"; exit 1; }
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import pyspark, sys; sys.exit(pyspark.__version__ != '$version')" 2>/dev/null; then
        say "installing pyspark==$version into $venv (about 500 MB, once)"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet "pyspark==$version"
    fi
}

spark_home() {
    "$venv/bin/python" -c "import os, pyspark; print(os.path.dirname(pyspark.__file__))"
}

# Starts a command in the background with its own log; records its process id under a name.
launch() {
    local name="$1"
    shift
    nohup "$@" >"$logs/$name.log" 2>&1 &
    echo $! >"$pids/$name"
}

stop() {
    [ -d "$pids" ] || return 0
    local name pid
    # The Connect server first, then the workers, then the master.
    for name in connect worker-2 worker-1 master; do
        [ -f "$pids/$name" ] || continue
        pid="$(cat "$pids/$name")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pids/$name"
    done
    say "stopped"
}

start() {
    if listening "$port"; then
        say "port $port is already taken (a cluster running? scripts/spark-cluster.sh stop)"
        exit 1
    fi
    install
    mkdir -p "$pids" "$logs"
    local spark
    spark="$(spark_home)"
    export SPARK_HOME="$spark" SPARK_LOCAL_IP=127.0.0.1 SPARK_LOG_DIR="$logs" SPARK_PID_DIR="$pids"
    local started=$SECONDS
    launch master "$spark/bin/spark-class" org.apache.spark.deploy.master.Master \
        --host 127.0.0.1 --port "$master_port" --webui-port 0
    for _ in $(seq "$timeout"); do listening "$master_port" && break; sleep 1; done
    listening "$master_port" || { say "the master did not start (see $logs/master.log)"; stop; exit 1; }
    for n in 1 2; do
        mkdir -p "$run/work-$n"
        SPARK_WORKER_DIR="$run/work-$n" launch "worker-$n" "$spark/bin/spark-class" \
            org.apache.spark.deploy.worker.Worker "spark://127.0.0.1:$master_port" \
            --host 127.0.0.1 --port 0 --webui-port 0 --cores 1 --memory "$worker_memory" \
            --work-dir "$run/work-$n"
    done
    local extra=() setting
    for setting in ${VIGIL_SPARK_CONF:-}; do extra+=(--conf "$setting"); done
    launch connect "$spark/bin/spark-submit" --master "spark://127.0.0.1:$master_port" \
        "${extra[@]}" \
        --class org.apache.spark.sql.connect.service.SparkConnectServer \
        --conf spark.connect.grpc.binding.address=127.0.0.1 \
        --conf "spark.connect.grpc.binding.port=$port" \
        --conf "spark.executor.memory=$executor_memory" \
        --conf spark.executor.cores=1 \
        --conf spark.sql.shuffle.partitions=4 \
        --conf spark.sql.session.timeZone=UTC \
        --conf "spark.ui.port=$ui_port" \
        --conf spark.port.maxRetries=0 \
        spark-internal
    local deadline=$((SECONDS + timeout))
    until listening "$port"; do
        if [ $SECONDS -ge $deadline ] || ! kill -0 "$(cat "$pids/connect")" 2>/dev/null; then
            say "the Connect server is not listening on $port after $((SECONDS - started)) s (see $logs/connect.log)"
            stop
            exit 1
        fi
        sleep 1
    done
    say "listening: sc://127.0.0.1:$port (master spark://127.0.0.1:$master_port, 2 workers, UI http://127.0.0.1:$ui_port; $((SECONDS - started)) s; logs in $logs)"
}

status() {
    local name
    for name in master worker-1 worker-2 connect; do
        if [ -f "$pids/$name" ] && kill -0 "$(cat "$pids/$name")" 2>/dev/null; then
            echo "$name: running (pid $(cat "$pids/$name"))"
        else
            echo "$name: not running"
        fi
    done
    listening "$port" && echo "connect: sc://127.0.0.1:$port"
    return 0
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
