//! The build script's Redis probe: the tests that need a Redis are ignored exactly when
//! none is available, so a test that could not do its work never reports `ok`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use resilience_tests::redis_server::RedisServer;

fn redis_server_on_path() -> bool {
    let Some(path) = std::env::var_os("PATH") else { return false };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join("redis-server")))
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

#[test]
fn the_redis_tests_are_ignored_exactly_when_no_redis_is_available() {
    let url = std::env::var_os("RESILIENCE_REDIS_URL").is_some_and(|u| !u.is_empty());
    let binary = redis_server_on_path();
    assert_eq!(
        cfg!(resilience_no_redis),
        !url && !binary,
        "the build's probe disagrees with this environment (URL set: {url}, redis-server on PATH: {binary})"
    );
    assert_eq!(
        cfg!(resilience_no_redis_server),
        !binary,
        "the build's probe disagrees with this environment (redis-server on PATH: {binary})"
    );
}

#[test]
#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
fn a_redis_test_that_runs_has_a_redis() {
    let server = RedisServer::shared().expect("the probe found a Redis, so one is reachable");
    assert!(server.ping(), "{} answers PING", server.url());
}
