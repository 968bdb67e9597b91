//! A real PostgreSQL server for the tests: `initdb` and `pg_ctl` from the machine's PostgreSQL
//! (as the `postgres` user when the tests run as root), on a free loopback port, in a
//! temporary folder, stopped when the value is dropped. Without PostgreSQL binaries the tests
//! fail with the install command; they never pass silently.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_source_parquet::convert::{infer_columns, is_empty_cell, Kind};

/// A running server.
pub struct Server {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// The folder of the newest installed PostgreSQL's binaries.
fn binaries() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| Some(e.ok()?.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|bin| bin.join("initdb").exists());
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed: \
             apt-get update && apt-get install -y postgresql"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Server {
    /// Starts a fresh server.
    pub fn start() -> Server {
        let bin = binaries();
        let as_postgres = is_root();
        let dir = tempfile::tempdir().expect("temp dir");
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown of the server folder failed");
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let server = Server {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = server.dir.path().join("data");
        server.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "--no-sync".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
            ],
        );
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            server.dir.path().display()
        );
        let log = server.dir.path().join("server.log");
        server.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        );
        server
    }

    /// Runs a server program (as `postgres` when root).
    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let path = self.bin.join(program);
        let output = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(args)
                .output()
        } else {
            Command::new(&path).args(args).output()
        }
        .unwrap_or_else(|e| panic!("{} does not run: {e}", path.display()));
        assert!(
            output.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The location of database `db` for `vigil --warehouse`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL (psql commands included) in database `db`; panics on an error.
    pub fn sql(&self, db: &str, sql: &str) {
        let output = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .arg("-c")
            .arg(sql)
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "psql failed on {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Creates database `db` and loads every `fct_*.csv` of `csv_dir` into a typed table of the
    /// file's stem (integers, floats, timestamps with or without time zone, dates, else text).
    pub fn load_warehouse(&self, db: &str, csv_dir: &Path) {
        self.sql("postgres", &format!("CREATE DATABASE \"{db}\""));
        let mut files: Vec<PathBuf> = std::fs::read_dir(csv_dir)
            .expect("warehouse folder")
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .collect();
        files.sort();
        for file in files {
            self.load_table(db, &file);
        }
    }

    /// Loads one CSV file into a typed table named after its stem (with COPY).
    pub fn load_table(&self, db: &str, file: &Path) {
        let stem = file.file_stem().unwrap().to_str().unwrap().to_string();
        let columns = infer_columns(file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let definitions: Vec<String> = columns
            .iter()
            .map(|(name, kind)| {
                let sql_type = match kind {
                    Kind::Int => "BIGINT",
                    Kind::Float => "DOUBLE PRECISION",
                    Kind::Zoned => "TIMESTAMPTZ",
                    Kind::Naive => "TIMESTAMP",
                    Kind::Date => "DATE",
                    Kind::Text => "TEXT",
                };
                format!("{} {sql_type}", quote(name))
            })
            .collect();
        // Typed columns hold empty cells as NULL (COPY reads an unquoted empty field as NULL).
        let cleaned = self.dir.path().join(format!("{stem}.load.csv"));
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(file)
            .expect("csv");
        let mut writer = csv::Writer::from_path(&cleaned).expect("write csv");
        writer
            .write_record(columns.iter().map(|(n, _)| n.as_str()))
            .unwrap();
        for record in reader.records() {
            let record = record.expect("record");
            let cells: Vec<&str> = columns
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| {
                    let cell = record.get(i).unwrap_or("");
                    if *kind != Kind::Text && is_empty_cell(cell) {
                        ""
                    } else {
                        cell
                    }
                })
                .collect();
            writer.write_record(cells).unwrap();
        }
        writer.flush().unwrap();
        drop(writer);
        self.sql(
            db,
            &format!("CREATE TABLE {} ({})", quote(&stem), definitions.join(", ")),
        );
        self.sql(
            db,
            &format!(
                "\\copy {} FROM '{}' WITH (FORMAT csv, HEADER true)",
                quote(&stem),
                cleaned.display()
            ),
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let path = self.bin.join("pg_ctl");
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let _ = command
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
