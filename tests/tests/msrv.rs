//! The declared minimum supported Rust version holds: it is at least the floor the code
//! needs (let-chains are stable since 1.88, and so is the `redis` dependency's own
//! minimum), and clippy's `msrv` (which drives `incompatible_msrv`) agrees with it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

/// The oldest toolchain the code compiles on: let-chains (`if let .. && ..`) are stable
/// since 1.88, and `redis` 1.8 declares `rust-version = "1.88"`.
const FLOOR: (u32, u32) = (1, 88);

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn read_toml(name: &str) -> Option<toml::Table> {
    let text = std::fs::read_to_string(workspace_root().join(name)).ok()?;
    Some(text.parse::<toml::Table>().unwrap_or_else(|e| panic!("{name} parses: {e}")))
}

fn parse_version(text: &str) -> (u32, u32) {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap());
    let major = parts.next().unwrap();
    let minor = parts.next().unwrap_or(0);
    (major, minor)
}

fn declared_rust_version() -> String {
    let manifest = read_toml("Cargo.toml").expect("the workspace Cargo.toml exists");
    manifest["workspace"]["package"]["rust-version"]
        .as_str()
        .expect("workspace.package.rust-version is a string")
        .to_owned()
}

#[test]
fn declared_rust_version_is_at_least_the_let_chain_floor() {
    let declared = declared_rust_version();
    assert!(
        parse_version(&declared) >= FLOOR,
        "rust-version = {declared:?} is older than {}.{}, the version the code needs",
        FLOOR.0,
        FLOOR.1
    );
}

#[test]
fn every_member_inherits_the_workspace_rust_version() {
    for member in ["resilience", "resilience-macros", "tests", "examples", "benches"] {
        let manifest = read_toml(&format!("{member}/Cargo.toml")).unwrap();
        let inherited = manifest["package"]["rust-version"]
            .as_table()
            .and_then(|t| t.get("workspace"))
            .and_then(toml::Value::as_bool);
        assert_eq!(inherited, Some(true), "{member} sets rust-version.workspace = true");
    }
}

#[test]
fn clippy_msrv_agrees_with_rust_version() {
    let declared = declared_rust_version();
    // Without an `msrv` key clippy reads `rust-version` itself; with one, they must match.
    if let Some(clippy) = read_toml("clippy.toml")
        && let Some(msrv) = clippy.get("msrv")
    {
        let msrv = msrv.as_str().expect("clippy.toml msrv is a string");
        assert_eq!(
            parse_version(msrv),
            parse_version(&declared),
            "clippy.toml msrv = {msrv:?} but rust-version = {declared:?}"
        );
    }
}
