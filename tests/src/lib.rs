//! Support for the integration tests in `tests/` (and the Redis benchmarks): a
//! `redis-server` started on a free loopback port, and the probe that tells whether one
//! is available, a Redis Cluster and a TLS server of its own, and the Redis scenarios
//! every variant runs.

pub mod redis_probe;
pub mod redis_scenarios;
pub mod redis_server;
