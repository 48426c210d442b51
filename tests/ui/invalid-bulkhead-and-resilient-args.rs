#![allow(dead_code)]
use resilience::{bulkhead, resilient};

#[derive(Debug)]
struct MyError;

impl From<resilience::Error> for MyError {
    fn from(_: resilience::Error) -> Self {
        MyError
    }
}

#[bulkhead(max_concurrent = 0, max_wait = 1)]
fn bad_bulkhead() -> Result<u8, MyError> {
    Ok(1)
}

#[resilient]
fn empty_resilient() -> Result<u8, MyError> {
    Ok(1)
}

#[resilient(preset = "api", retry = 3, fallback(x))]
fn layers_are_written_as_lists() -> Result<u8, MyError> {
    Ok(1)
}

#[resilient(retry(max_attempts = 0), rate_limit(per_second = 1, per_minute = 1))]
fn nested_errors() -> Result<u8, MyError> {
    Ok(1)
}

fn main() {}
