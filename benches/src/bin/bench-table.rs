//! Run the benchmark suite, then print the ratio table.
//!
//! ```text
//! cargo run -p resilience-benches --release --bin bench-table            # quick run + table
//! cargo run -p resilience-benches --release --bin bench-table -- --no-run # table of the last run
//! cargo run -p resilience-benches --release --bin bench-table -- --bench circuit_breaker -- --measurement-time 5
//! ```
//! Arguments before a lone `--` go to `cargo bench` (e.g. `--bench
//! retry`); arguments after it go to criterion (default `--warm-up-time 1
//! --measurement-time 2`).
//!
//! The `redis` bench (groups `redis_acquire_async` and `redis_acquire_blocking`, the
//! Redis-backed limiter against a `PING` on the same backend, target ≤ 1.5×; and
//! `redis_leased_acquire`, a shared limiter spending a lease it holds against governor's
//! `check`, target ≤ 2×) needs a
//! Redis: `RESILIENCE_REDIS_URL`, else a `redis-server` it starts on a free loopback
//! port. Without either it says so and measures nothing, and the table has no such rows.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use resilience_benches::table::{MEMORY_FILE, collect, parse_memory, render};

fn target_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(dir));
    }
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    meta.get("target_directory")?.as_str().map(PathBuf::from)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let no_run = args.iter().any(|a| a == "--no-run");
    let split = args.iter().position(|a| a == "--");
    let (cargo_args, criterion_args) = match split {
        Some(i) => (&args[..i], args[i + 1..].to_vec()),
        None => (
            &args[..],
            vec!["--warm-up-time".into(), "1".into(), "--measurement-time".into(), "2".into()],
        ),
    };
    let cargo_args: Vec<&String> = cargo_args.iter().filter(|a| *a != "--no-run").collect();

    if !no_run {
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["bench", "-p", "resilience-benches"])
            .args(cargo_args)
            .arg("--")
            .args(&criterion_args)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!("bench-table: cargo bench failed ({s})");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("bench-table: cannot run cargo bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    }

    let Some(target) = target_dir() else {
        eprintln!("bench-table: cannot find the cargo target directory (set CARGO_TARGET_DIR)");
        return ExitCode::FAILURE;
    };
    let estimates = match collect(&target.join("criterion")) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("bench-table: no criterion results under {}: {e}", target.display());
            return ExitCode::FAILURE;
        }
    };
    let memory = std::fs::read_to_string(target.join(MEMORY_FILE))
        .map(|t| parse_memory(&t))
        .unwrap_or_default();
    print!("{}", render(&estimates, &memory));
    ExitCode::SUCCESS
}
