//! The `vigil` binary: the engine's command line with the builtin rules linked in.

// Naming the crate keeps the linker from dropping its `inventory` registrations.
use vigil_rules_builtin as _;

fn main() -> std::process::ExitCode {
    vigil_engine::cli::main()
}
