//! Records the compiler version and the target for the plugin fingerprint.

use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=VIGIL_RUSTC_VERSION={version}");
    println!("cargo:rustc-env=VIGIL_TARGET={target}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
