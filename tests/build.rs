//! Finds out once, at build time, whether the Redis tests can run, so a test that cannot
//! do its work is reported as ignored (with the reason) instead of passing.
//!
//! - `resilience_no_redis`: neither `RESILIENCE_REDIS_URL` is set nor a `redis-server`
//!   binary is on `PATH`: no test that needs a Redis can run.
//! - `resilience_no_redis_server`: no `redis-server` binary on `PATH`: tests that start,
//!   kill and restart a server of their own cannot run (a `RESILIENCE_REDIS_URL` alone is
//!   not enough for them).
//! - `resilience_no_redis_cluster`: no `redis-server` or no `redis-cli` on `PATH`: the
//!   tests on a Redis Cluster of their own cannot run.
//! - `resilience_no_redis_tls`: no `redis-server` or no `openssl` on `PATH`: the tests on
//!   a TLS Redis of their own cannot run.
//!
//! With `RESILIENCE_REDIS_REQUIRED=1` (set by CI) a missing Redis fails the build, so
//! those tests can never be skipped there.

#[path = "src/redis_probe.rs"]
mod redis_probe;

use redis_probe::{cluster_tools_on_path, redis_server_on_path, tls_tools_on_path, url_set};

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/redis_probe.rs");
    println!("cargo::rerun-if-env-changed=RESILIENCE_REDIS_URL");
    println!("cargo::rerun-if-env-changed=RESILIENCE_REDIS_REQUIRED");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rustc-check-cfg=cfg(resilience_no_redis)");
    println!("cargo::rustc-check-cfg=cfg(resilience_no_redis_server)");
    println!("cargo::rustc-check-cfg=cfg(resilience_no_redis_cluster)");
    println!("cargo::rustc-check-cfg=cfg(resilience_no_redis_tls)");

    let url = url_set();
    let binary = redis_server_on_path();
    let required = std::env::var("RESILIENCE_REDIS_REQUIRED").is_ok_and(|v| v == "1");

    if required && !binary {
        panic!(
            "RESILIENCE_REDIS_REQUIRED=1 but there is no `redis-server` binary on PATH: \
             the Redis tests would be skipped (install redis-server)"
        );
    }
    let (cluster, tls) = (cluster_tools_on_path(), tls_tools_on_path());
    if required && !(cluster && tls) {
        panic!(
            "RESILIENCE_REDIS_REQUIRED=1 but `redis-cli` or `openssl` is missing from PATH: \
             the Redis Cluster and TLS tests would be skipped"
        );
    }
    if !cluster {
        println!("cargo::rustc-cfg=resilience_no_redis_cluster");
        println!(
            "cargo::warning=no `redis-server` and `redis-cli` on PATH: the Redis Cluster tests are ignored"
        );
    }
    if !tls {
        println!("cargo::rustc-cfg=resilience_no_redis_tls");
        println!(
            "cargo::warning=no `redis-server` and `openssl` on PATH: the Redis TLS tests are ignored"
        );
    }
    if !binary {
        println!("cargo::rustc-cfg=resilience_no_redis_server");
        println!(
            "cargo::warning=no `redis-server` on PATH: the Redis tests that run a server of \
             their own are ignored"
        );
    }
    if !binary && !url {
        println!("cargo::rustc-cfg=resilience_no_redis");
        println!(
            "cargo::warning=no `redis-server` on PATH and RESILIENCE_REDIS_URL is unset: \
             the Redis tests are ignored"
        );
    }
}
