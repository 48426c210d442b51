//! Whether a Redis is available to the tests: the one probe the build script (which turns
//! it into `cfg`s) and the tests that check those `cfg`s both run. Standard library only,
//! since the build script includes this file by path.

use std::path::Path;

/// Whether `RESILIENCE_REDIS_URL` names a server.
pub fn url_set() -> bool {
    std::env::var_os("RESILIENCE_REDIS_URL").is_some_and(|u| !u.is_empty())
}

/// Whether an executable file named `redis-server` is in a directory of `PATH`.
pub fn redis_server_on_path() -> bool {
    on_path("redis-server")
}

/// Whether `redis-server` and `redis-cli` (which joins the nodes) are on `PATH`: what a
/// Redis Cluster of the tests' own needs.
pub fn cluster_tools_on_path() -> bool {
    on_path("redis-server") && on_path("redis-cli")
}

/// Whether `redis-server` and `openssl` (which makes the throwaway certificates) are on
/// `PATH`: what a TLS Redis of the tests' own needs.
pub fn tls_tools_on_path() -> bool {
    on_path("redis-server") && on_path("openssl")
}

/// Whether an executable file named `program` is in a directory of `PATH`.
pub fn on_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else { return false };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
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
