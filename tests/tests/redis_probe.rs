//! The build script's Redis probe: the tests that need a Redis are ignored exactly when
//! none is available, so a test that could not do its work never reports `ok`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use resilience_tests::redis_probe::{
    cluster_tools_on_path, redis_server_on_path, tls_tools_on_path, url_set,
};
use resilience_tests::redis_server::RedisServer;

#[test]
fn the_redis_tests_are_ignored_exactly_when_no_redis_is_available() {
    let url = url_set();
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
    assert_eq!(cfg!(resilience_no_redis_cluster), !cluster_tools_on_path());
    assert_eq!(cfg!(resilience_no_redis_tls), !tls_tools_on_path());
}

#[test]
#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
fn a_redis_test_that_runs_has_a_redis() {
    let server = RedisServer::shared().expect("the probe found a Redis, so one is reachable");
    assert!(server.ping(), "{} answers PING", server.url());
}
