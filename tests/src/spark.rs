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
        Cluster::own("")
    }

    /// A new cluster of its own whose Connect server has the settings `conf` (`key=value`,
    /// space separated), stopped when the value is dropped.
    pub fn own(conf: &str) -> Cluster {
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
            .env("VIGIL_SPARK_CONF", conf)
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

    /// Sends a statement whose failure the caller checks otherwise.
    fn attempt(&self, statement: &str) {
        if let Ok(frame) = self.session.sql(statement) {
            let _ = frame.collect();
        }
    }

    /// Registers every table of a Parquet warehouse folder (`x.parquet` files and hive-partitioned
    /// `x/` datasets) as table `x` of database `db` (created anew), and returns the location
    /// vigil reads it at.
    pub fn register(&self, db: &str, parquet: &Path) -> String {
        self.sql(&format!("DROP DATABASE IF EXISTS {db} CASCADE"));
        self.sql(&format!("CREATE DATABASE IF NOT EXISTS {db}"));
        let mut entries: Vec<PathBuf> = std::fs::read_dir(parquet)
            .expect("read the Parquet folder")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).expect("a name");
            let stem = name.strip_suffix(".parquet").unwrap_or(name);
            let location = path.display().to_string().replace('\'', "\\'");
            let name = format!("{db}.`{stem}`");
            let create =
                format!("CREATE TABLE IF NOT EXISTS {name} USING parquet LOCATION '{location}'");
            self.attempt(&create);
            if path.is_dir() {
                // A partitioned dataset's partitions enter the catalog.
                self.sql(&format!("MSCK REPAIR TABLE {name}"));
            }
            // A server that ends result streams early (a test's) may have dropped a statement
            // midway: until the table is there (its schema comes by analysis, not by a
            // stream), the statements are sent again.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !self
                .session
                .table(&name)
                .is_ok_and(|frame| frame.schema().is_ok())
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{name} was not created"
                );
                std::thread::sleep(std::time::Duration::from_millis(200));
                self.attempt(&format!("CREATE DATABASE IF NOT EXISTS {db}"));
                self.attempt(&create);
            }
        }
        format!("{}/;database={db}", self.url)
    }

    /// A document of the driver's REST API.
    fn rest(&self, path: &str) -> serde_json::Value {
        let url = format!("{}/api/v1/{path}", self.ui);
        let body = ureq::get(&url)
            .call()
            .and_then(|mut r| r.body_mut().read_to_string())
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
    }

    /// The id of the Connect server's application (`app-...`).
    pub fn application(&self) -> String {
        let applications = self.rest("applications");
        let app = applications[0]["id"].as_str().expect("an application id");
        app.to_string()
    }

    /// The tasks each executor of the Connect server's application ran (the driver aside).
    pub fn tasks_per_executor(&self) -> Vec<(String, u64)> {
        let app = self.application();
        self.rest(&format!("applications/{app}/executors"))
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

/// A TCP forwarder on a free loopback port to another address, whose connections can be cut at
/// once (a Connect server that goes away mid-run, as a client sees it).
pub struct Proxy {
    /// The port it listens on.
    pub port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    streams: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    /// Forwards connections to `target` (`host:port`).
    pub fn to(target: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("an address").port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let streams = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (target, accept_cut, accept_streams) =
            (target.to_string(), cut.clone(), streams.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if accept_cut.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused from now on
                }
                let Ok(server) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                let pairs = [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ];
                accept_streams.lock().unwrap().extend([client, server]);
                for (from, to) in pairs {
                    if let (Ok(mut from), Ok(mut to)) = (from, to) {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    }
                }
            }
        });
        Proxy { port, cut, streams }
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for stream in self.streams.lock().unwrap().iter() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}
