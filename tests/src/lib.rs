//! Support for the integration tests in `tests/` (and the Redis benchmarks): a
//! `redis-server` started on a free loopback port, and the probe that tells whether one
//! is available.

pub mod redis_probe;
pub mod redis_server;
