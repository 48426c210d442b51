#![allow(dead_code)]
use resilience::{circuit_breaker, retry};

#[derive(Debug)]
enum MyError {
    Busy,
    Resilience(resilience::Error),
}

impl From<resilience::Error> for MyError {
    fn from(e: resilience::Error) -> Self {
        MyError::Resilience(e)
    }
}

fn is_busy(e: MyError) -> bool {
    matches!(e, MyError::Busy)
}

#[retry(retry_if = is_busy)]
fn retried() -> Result<u8, MyError> {
    Ok(1)
}

#[circuit_breaker(failure_if = is_busy)]
fn guarded() -> Result<u8, MyError> {
    Ok(1)
}

#[retry(retry_if = |e: MyError| matches!(e, MyError::Busy))]
fn retried_by_closure() -> Result<u8, MyError> {
    Ok(1)
}

fn main() {}
