#![allow(dead_code)]
use resilience::rate_limit;

#[derive(Debug)]
struct MyError;

impl From<resilience::Error> for MyError {
    fn from(_: resilience::Error) -> Self {
        MyError
    }
}

#[rate_limit(per_second = 10, per_minute = 600)]
fn per_second_and_per_minute_conflict() -> Result<u8, MyError> {
    Ok(1)
}

#[rate_limit(per_second = 10, burst = 0)]
fn zero_burst() -> Result<u8, MyError> {
    Ok(1)
}

#[rate_limit(burst = 10)]
fn no_rate() -> Result<u8, MyError> {
    Ok(1)
}

#[rate_limit(per_second = 10, on_limit = drop, max_wait = 5)]
fn wrong_values() -> Result<u8, MyError> {
    Ok(1)
}

#[rate_limit(per_second = 10, max_queue = 5)]
fn queue_size_without_queue() -> Result<u8, MyError> {
    Ok(1)
}

#[rate_limit(per_second = 10, backend = "memcached")]
fn unknown_backend() -> Result<u8, MyError> {
    Ok(1)
}

#[rate_limit(per_second = 10, fail_mode = "closed")]
fn fail_mode_without_redis() -> Result<u8, MyError> {
    Ok(1)
}

fn main() {}
