//! A real Spark standalone cluster for the tests: one master, two 1-core workers and the Spark
//! Connect server, started by `scripts/spark-cluster.sh` (PySpark from PyPI in a cached venv)
//! on free loopback ports and stopped when the value is dropped; or the cluster `.ci/run`
//! started, named by `VIGIL_SPARK_URL` and `VIGIL_SPARK_UI` (then left running). Without Java
//! or Python the tests fail with the install command; they never pass silently.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use spark_connect::SparkSession;

use crate::repo_root;

/// A running cluster.
pub struct Cluster {
    /// The Spark Connect location, `sc://127.0.0.1:PORT`.
    pub url: String,
    /// The driver's web UI (its REST API counts each executor's tasks).
    pub ui: String,
    /// The folder of the pids and logs of a cluster this value started (stopped on drop).
    started: Option<tempfile::TempDir>,
    session: SparkSession,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn script() -> PathBuf {
    repo_root().join("scripts/spark-cluster.sh")
}

impl Cluster {
    /// The cluster of `VIGIL_SPARK_URL`, else a new one.
    pub fn start() -> Cluster {
        if let Ok(url) = std::env::var("VIGIL_SPARK_URL") {
            let ui = std::env::var("VIGIL_SPARK_UI").expect(
                "VIGIL_SPARK_UI names the driver's web UI of the cluster at VIGIL_SPARK_URL",
            );
            return Cluster::connect(url, ui, None);
        }
        for tool in ["java", "python3"] {
            let found = Command::new(tool).arg("--version").output().is_ok();
            assert!(
                found,
                "{tool} is needed to run a Spark cluster: apt-get update && apt-get install -y \
                 openjdk-17-jre-headless python3-venv"
            );
        }
        let run = tempfile::tempdir().expect("temp dir");
        let (port, ui_port) = (free_port(), free_port());
        let status = Command::new("bash")
            .arg(script())
            .arg("start")
            .env("VIGIL_SPARK_RUN", run.path())
            .env("VIGIL_SPARK_PORT", port.to_string())
            .env("VIGIL_SPARK_MASTER_PORT", free_port().to_string())
            .env("VIGIL_SPARK_UI_PORT", ui_port.to_string())
            .status()
            .expect("bash runs scripts/spark-cluster.sh");
        assert!(
            status.success(),
            "scripts/spark-cluster.sh start failed (logs in {}/logs)",
            run.path().display()
        );
        Cluster::connect(
            format!("sc://127.0.0.1:{port}"),
            format!("http://127.0.0.1:{ui_port}"),
            Some(run),
        )
    }

    fn connect(url: String, ui: String, started: Option<tempfile::TempDir>) -> Cluster {
        let session = SparkSession::builder()
            .remote(&url)
            .get_or_create()
            .unwrap_or_else(|e| panic!("cannot reach the Spark Connect server at {url}: {e}"));
        Cluster {
            url,
            ui,
            started,
            session,
        }
    }

    /// Runs a statement.
    pub fn sql(&self, statement: &str) {
        let frame = self
            .session
            .sql(statement)
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        frame
            .collect()
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    /// Registers every table of a Parquet warehouse folder (`x.parquet` files and hive-partitioned
    /// `x/` datasets) as table `x` of database `db` (created anew), and returns the location
    /// vigil reads it at.
    pub fn register(&self, db: &str, parquet: &Path) -> String {
        self.sql(&format!("DROP DATABASE IF EXISTS {db} CASCADE"));
        self.sql(&format!("CREATE DATABASE {db}"));
        let mut entries: Vec<PathBuf> = std::fs::read_dir(parquet)
            .expect("read the Parquet folder")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).expect("a name");
            let stem = name.strip_suffix(".parquet").unwrap_or(name);
            let location = path.display().to_string().replace('\'', "\\'");
            self.sql(&format!(
                "CREATE TABLE {db}.`{stem}` USING parquet LOCATION '{location}'"
            ));
            if path.is_dir() {
                // A partitioned dataset's partitions enter the catalog.
                self.sql(&format!("MSCK REPAIR TABLE {db}.`{stem}`"));
            }
        }
        format!("{}/;database={db}", self.url)
    }

    /// The tasks each executor of the Connect server's application ran (the driver aside).
    pub fn tasks_per_executor(&self) -> Vec<(String, u64)> {
        let get = |path: &str| -> serde_json::Value {
            let url = format!("{}/api/v1/{path}", self.ui);
            let body = ureq::get(&url)
                .call()
                .and_then(|mut r| r.body_mut().read_to_string())
                .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
        };
        let applications = get("applications");
        let app = applications[0]["id"].as_str().expect("an application id");
        get(&format!("applications/{app}/executors"))
            .as_array()
            .expect("executors")
            .iter()
            .filter(|e| e["id"] != "driver")
            .map(|e| {
                (
                    e["hostPort"].as_str().unwrap_or("?").to_string(),
                    e["totalTasks"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(run) = &self.started {
            let _ = Command::new("bash")
                .arg(script())
                .arg("stop")
                .env("VIGIL_SPARK_RUN", run.path())
                .status();
        }
    }
}
