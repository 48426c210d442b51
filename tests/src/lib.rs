//! Support for the integration tests in `tests/` (and the Redis benchmarks): a
//! `redis-server` started on a free loopback port.

pub mod redis_server;
