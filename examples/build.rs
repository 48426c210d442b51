//! Finds out once, at build time, whether the dashboard's browser test can run, so it is
//! reported as ignored (with the reason) where no browser is installed instead of passing.
//!
//! - `resilience_no_chromium`: no `chromium` binary on `PATH`.
//!
//! With `RESILIENCE_CHROMIUM_REQUIRED=1` (set by CI) a missing browser fails the build, so
//! the test can never be skipped there.

use std::path::Path;

// A build script fails the build by panicking; that is what CI wants here.
#[allow(clippy::panic)]
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=RESILIENCE_CHROMIUM_REQUIRED");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rustc-check-cfg=cfg(resilience_no_chromium)");

    let found = chromium_on_path();
    let required = std::env::var("RESILIENCE_CHROMIUM_REQUIRED").is_ok_and(|v| v == "1");
    if required && !found {
        panic!(
            "RESILIENCE_CHROMIUM_REQUIRED=1 but there is no `chromium` binary on PATH: the \
             dashboard's browser test would be skipped (install chromium)"
        );
    }
    if !found {
        println!("cargo::rustc-cfg=resilience_no_chromium");
        println!("cargo::warning=no `chromium` on PATH: the dashboard's browser test is ignored");
    }
}

/// Whether an executable file named `chromium` is in a directory of `PATH`.
fn chromium_on_path() -> bool {
    let Some(path) = std::env::var_os("PATH") else { return false };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join("chromium")))
}

#[cfg(unix)]
fn is_executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    file.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(file: &Path) -> bool {
    file.is_file() || file.with_extension("exe").is_file()
}
