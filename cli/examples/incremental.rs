//! One run of vigil's rules over a warehouse, optionally incremental with a partition cache kept
//! in a file between runs (until `vigil run --state FILE` keeps it in the state store). Used by
//! `bench/incremental.py` to time an incremental run against a full one.
//!
//! Usage: `incremental WAREHOUSE CONFIG DATE [--cache FILE] [--recompute-days N]
//! [--findings FILE]`. Prints one JSON line: the seconds of each step, each table's scan time
//! and partitions read and reused, and the cache's size. `--findings` writes the findings and
//! every metric, to compare runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use vigil_engine::config::{Config, TableConfig};
use vigil_engine::registry::Registry;
use vigil_engine::rule::Scope;
use vigil_engine::runner::evaluate_cached;
use vigil_engine::scan::cache::PartitionCache;
use vigil_engine::scan::{ScanInput, TableProblem, TableScan};
use vigil_engine::source::Source;
use vigil_engine::testing::MemoryCache;
// Naming the crates keeps the linker from dropping their `inventory` registrations.
use vigil_rules_builtin as _;
use vigil_source_parquet as _;

/// A source that times each table's scan.
struct Timed<'a> {
    inner: &'a dyn Source,
    seconds: Mutex<BTreeMap<String, f64>>,
}

impl Source for Timed<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn scan(&self, name: &str, table: &TableConfig, input: ScanInput<'_>) -> TableScan {
        let start = Instant::now();
        let scan = self.inner.scan(name, table, input);
        let took = start.elapsed().as_secs_f64();
        if let Ok(mut seconds) = self.seconds.lock() {
            seconds.insert(name.to_string(), took);
        }
        scan
    }

    fn header(&self, table: &TableConfig) -> Result<Vec<String>, TableProblem> {
        self.inner.header(table)
    }

    fn joins_lookups(&self) -> bool {
        self.inner.joins_lookups()
    }

    fn size_hint(&self, tables: &[&TableConfig]) -> u64 {
        self.inner.size_hint(tables)
    }
}

/// Reads a cache file: per entry, the table, the key and the bytes, each length-prefixed.
fn load(path: &Path, cache: &MemoryCache) -> Result<(), String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut rest = bytes.as_slice();
    let mut field = || -> Result<Vec<u8>, String> {
        let (len, tail) = rest
            .split_first_chunk::<8>()
            .ok_or("cache file truncated")?;
        let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|e| e.to_string())?;
        let (value, tail) = tail.split_at_checked(len).ok_or("cache file truncated")?;
        rest = tail;
        Ok(value.to_vec())
    };
    loop {
        let table = match field() {
            Ok(table) => table,
            Err(_) => return Ok(()),
        };
        let key = field()?;
        let value = field()?;
        cache.insert(
            &String::from_utf8_lossy(&table),
            &String::from_utf8_lossy(&key),
            value,
        );
    }
}

/// Writes every entry of the cache to a file; returns its size.
fn save(path: &Path, cache: &MemoryCache) -> Result<usize, String> {
    let mut out = Vec::new();
    for ((table, key), value) in cache.entries() {
        for field in [table.as_bytes(), key.as_bytes(), &value] {
            out.extend_from_slice(&(field.len() as u64).to_le_bytes());
            out.extend_from_slice(field);
        }
    }
    std::fs::write(path, &out).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(out.len())
}

/// The value following a flag.
fn flag(args: &[String], name: &str) -> Option<String> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

fn run(args: &[String]) -> Result<(), String> {
    let [warehouse, config, date, ..] = args else {
        return Err("usage: incremental WAREHOUSE CONFIG DATE [--cache FILE] [--recompute-days N] [--findings FILE]".into());
    };
    let start = Instant::now();
    let registry = Registry::linked().map_err(|e| format!("{e:?}"))?;
    let mut config = Config::load(Path::new(config), &registry).map_err(|e| format!("{e:?}"))?;
    if let Some(days) = flag(args, "--recompute-days") {
        config.run.recompute_days = days.parse().map_err(|e| format!("--recompute-days: {e}"))?;
    }
    let date = date.parse().map_err(|e| format!("{date}: {e}"))?;
    let source = vigil_engine::source::open(warehouse).map_err(|e| e.to_string())?;
    let cache_file = flag(args, "--cache").map(PathBuf::from);
    let cache = MemoryCache::default();
    if let Some(path) = &cache_file {
        load(path, &cache)?;
    }
    let loaded = start.elapsed().as_secs_f64();
    let timed = Timed {
        inner: source.as_ref(),
        seconds: Mutex::new(BTreeMap::new()),
    };
    let evaluating = Instant::now();
    let used: Option<&dyn PartitionCache> = cache_file.as_ref().map(|_| &cache as _);
    let eval = evaluate_cached(&config, &timed, date, Scope::Partition, used);
    let evaluated = evaluating.elapsed().as_secs_f64();
    let saving = Instant::now();
    let cache_bytes = match &cache_file {
        Some(path) => save(path, &cache)?,
        None => 0,
    };
    let saved = saving.elapsed().as_secs_f64();
    if let Some(path) = flag(args, "--findings") {
        let text = format!(
            "{:#?}\n{}",
            eval.findings,
            vigil_engine::report::json::metrics(&eval)
        );
        std::fs::write(&path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    let seconds = timed.seconds.lock().map(|s| s.clone()).unwrap_or_default();
    let tables: Vec<String> = eval
        .scans
        .iter()
        .map(|scan| {
            let p = scan.partitions.clone().unwrap_or_default();
            format!(
                "\"{}\": {{\"seconds\": {:.4}, \"read\": {}, \"reused\": {}, \"full_scan_reason\": {:?}}}",
                scan.table,
                seconds.get(&scan.table).copied().unwrap_or(0.0),
                p.read,
                p.reused,
                p.full_scan_reason.unwrap_or_default()
            )
        })
        .collect();
    println!(
        "{{\"load\": {loaded:.4}, \"evaluate\": {evaluated:.4}, \"save\": {saved:.4}, \"total\": {:.4}, \"cache_bytes\": {cache_bytes}, \"findings\": {}, \"tables\": {{{}}}}}",
        start.elapsed().as_secs_f64(),
        eval.findings.len(),
        tables.join(", ")
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("incremental: {e}");
            ExitCode::FAILURE
        }
    }
}
