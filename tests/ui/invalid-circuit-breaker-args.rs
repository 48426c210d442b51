#![allow(dead_code)]
use resilience::circuit_breaker;

#[derive(Debug)]
struct MyError;

impl From<resilience::Error> for MyError {
    fn from(_: resilience::Error) -> Self {
        MyError
    }
}

#[circuit_breaker(failure_threshold = 5, failure_rate = 0.5)]
fn threshold_and_rate_conflict() -> Result<u8, MyError> {
    Ok(1)
}

#[circuit_breaker(window = 100, min_calls = 10)]
fn window_without_rate() -> Result<u8, MyError> {
    Ok(1)
}

#[circuit_breaker(failure_rate = 1.5, recovery_timeout = 30, name = shopify)]
fn wrong_values() -> Result<u8, MyError> {
    Ok(1)
}

#[circuit_breaker(failure_treshold = 5)]
fn unknown_argument() -> Result<u8, MyError> {
    Ok(1)
}

#[circuit_breaker(failure_rate = 0.5, window = 5, min_calls = 10)]
fn window_smaller_than_min_calls() -> Result<u8, MyError> {
    Ok(1)
}

fn main() {}
