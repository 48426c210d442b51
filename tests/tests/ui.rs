//! Compile-error snapshots of the attribute macros (`tests/ui/*.rs` + `.stderr`).
//!
//! Regenerate with `TRYBUILD=overwrite cargo test -p resilience-tests --test ui` and read
//! the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
}
