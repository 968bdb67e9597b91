//! A progress line on stderr for scans that take more than a second, only when stderr is a
//! terminal (never in logs or CI output).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Runs `work` with a byte counter; while it runs longer than a second, shows the share of
/// `total` bytes counted so far.
pub fn with_progress<T>(total: u64, work: impl FnOnce(&AtomicU64) -> T) -> T {
    let counter = AtomicU64::new(0);
    if total == 0 || !std::io::stderr().is_terminal() {
        return work(&counter);
    }
    let finished = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            let mut shown = false;
            while !finished.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if start.elapsed() >= Duration::from_secs(1) {
                    let done = counter.load(Ordering::Relaxed).min(total);
                    eprint!(
                        "\rvigil: scanning {:>3}% of {:.1} GB",
                        done * 100 / total,
                        total as f64 / 1e9
                    );
                    let _ = std::io::stderr().flush();
                    shown = true;
                }
            }
            if shown {
                eprint!("\r\x1b[2K");
            }
        });
        let out = work(&counter);
        finished.store(true, Ordering::Relaxed);
        out
    })
}
