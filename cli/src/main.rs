//! The `vigil` binary: the engine's command line with the builtin rules and the sources linked
//! in (and, with the `example` feature, the example rule crate, as a team links its own rule
//! crates; with the `spark` feature, the Spark Connect source).

// Naming the crates keeps the linker from dropping their `inventory` registrations.
use vigil_rules_builtin as _;
#[cfg(feature = "example")]
use vigil_rules_example as _;
use vigil_source_parquet as _;
use vigil_source_postgres as _;
#[cfg(feature = "spark")]
use vigil_source_spark as _;

fn main() -> std::process::ExitCode {
    vigil_engine::cli::main()
}
