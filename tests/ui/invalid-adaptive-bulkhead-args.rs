#![allow(dead_code)]
use resilience::bulkhead;

#[derive(Debug)]
struct MyError;

impl From<resilience::Error> for MyError {
    fn from(_: resilience::Error) -> Self {
        MyError
    }
}

#[bulkhead(adaptive = "tcp", min_limit = 0)]
fn bad_algorithm() -> Result<u8, MyError> {
    Ok(1)
}

#[bulkhead(adaptive = gradient, algorithm = "vegas", adaptve = "aimd")]
fn unknown_keys() -> Result<u8, MyError> {
    Ok(1)
}

#[bulkhead(adaptive = "aimd", max_concurrent = 10, min_limit = 8, max_limit = 4)]
fn conflicting_limits() -> Result<u8, MyError> {
    Ok(1)
}

#[bulkhead(max_limit = 100)]
fn bounds_without_adaptive() -> Result<u8, MyError> {
    Ok(1)
}

fn main() {}
