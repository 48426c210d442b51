//! The core layers know no storage backend: circuits, limiters and the registry reach
//! shared state only through the `backend::StateStore` interface, so they compile and
//! read the same with the `redis` feature on or off.

use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            found.push(path);
        }
    }
    found
}

/// Every line of the core layers' sources containing `needle`, as `file:line: text`.
fn core_lines_with(needles: &[&str]) -> (usize, Vec<String>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../resilience/src");
    let mut files = 0;
    let mut hits = Vec::new();
    for layer in ["circuit", "rate_limit", "registry"] {
        for file in sources(&src.join(layer)) {
            files += 1;
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for (n, line) in text.lines().enumerate() {
                if needles.iter().any(|needle| line.contains(needle)) {
                    hits.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    (files, hits)
}

#[test]
fn no_redis_feature_gates_in_circuit_rate_limit_or_registry() {
    let (files, hits) = core_lines_with(&[r#"feature = "redis""#, r#"feature="redis""#]);
    assert!(files >= 20, "the core sources were found ({files} files)");
    assert!(
        hits.is_empty(),
        "feature gates on the Redis backend in the core layers:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_core_layers_do_not_use_the_redis_module() {
    let (files, hits) = core_lines_with(&["crate::redis", "super::redis", "redis::"]);
    assert!(files >= 20, "the core sources were found ({files} files)");
    assert!(hits.is_empty(), "uses of the Redis backend in the core layers:\n{}", hits.join("\n"));
}
