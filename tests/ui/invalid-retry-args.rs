#![allow(dead_code)]
use resilience::retry;

#[derive(Debug)]
struct MyError;

impl From<resilience::Error> for MyError {
    fn from(_: resilience::Error) -> Self {
        MyError
    }
}

#[retry(max_attemps = 3)]
fn unknown_argument() -> Result<u8, MyError> {
    Ok(1)
}

#[retry(max_attempts = 3, max_attempts = 4)]
fn duplicate_argument() -> Result<u8, MyError> {
    Ok(1)
}

#[retry(max_attempts = "3", budget = 7, backoff = quadratic, jitter = half)]
fn wrong_literal_types() -> Result<u8, MyError> {
    Ok(1)
}

#[retry(initial_delay = 100, max_delay = 5sec, max_elapsed = 3s)]
fn durations_need_a_known_unit() -> Result<u8, MyError> {
    Ok(1)
}

#[retry(max_attempts = 0, multiplier = 0.5, jitter = proportional(1.5))]
fn out_of_range() -> Result<u8, MyError> {
    Ok(1)
}

#[retry(initial_delay = 2s, max_delay = 1s)]
fn max_delay_below_initial_delay() -> Result<u8, MyError> {
    Ok(1)
}

#[retry(retry_if = 3)]
fn predicate_must_be_a_path_or_closure() -> Result<u8, MyError> {
    Ok(1)
}

fn main() {
    let _ = unknown_argument();
}
