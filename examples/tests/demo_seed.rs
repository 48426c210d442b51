//! The demo is deterministic: every random choice of a seeded run comes from the seed, so
//! one seed prints one result.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn demo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_demo")).args(args).output().expect("the demo runs");
    assert!(out.status.success(), "demo {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("the demo prints UTF-8")
}

#[test]
fn one_seed_prints_one_result() {
    for args in [&["--seed", "7"][..], &["--seed", "42", "--calls", "200", "--failure-rate", "0.3"]]
    {
        let first = demo(args);
        for _ in 0..3 {
            assert_eq!(demo(args), first, "demo {args:?} printed a different result");
        }
    }
}

#[test]
fn another_seed_prints_another_result() {
    // The first line names the seed; the results follow.
    let results =
        |seed: &str| demo(&["--seed", seed]).lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_ne!(results("7"), results("8"));
}
