#![allow(dead_code)]
use resilience::{circuit_breaker, rate_limit, retry};

#[derive(Debug)]
struct MyError;

impl From<resilience::Error> for MyError {
    fn from(_: resilience::Error) -> Self {
        MyError
    }
}

#[rate_limit(rate = "10/s")]
fn rate_as_a_string() -> Result<u8, MyError> {
    Ok(1)
}

#[rate_limit(rate = "600/min")]
fn rate_per_minute_as_a_string() -> Result<u8, MyError> {
    Ok(1)
}

#[rate_limit(per_secnd = 10)]
fn typo_in_a_key() -> Result<u8, MyError> {
    Ok(1)
}

#[retry(max_retries = 3)]
fn retries_instead_of_attempts() -> Result<u8, MyError> {
    Ok(1)
}

#[circuit_breaker(threshold = 5)]
fn threshold_without_its_prefix() -> Result<u8, MyError> {
    Ok(1)
}

fn main() {}
