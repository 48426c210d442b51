#![allow(dead_code, unused_imports)]
use std::time::Duration;

use resilience::timeout;

#[derive(Debug)]
struct MyError;

impl From<resilience::Error> for MyError {
    fn from(_: resilience::Error) -> Self {
        MyError
    }
}

#[timeout(Duration::from_secs(5))]
async fn call_expression() -> Result<u8, MyError> {
    Ok(1)
}

#[timeout(5 s)]
async fn unit_after_a_space() -> Result<u8, MyError> {
    Ok(1)
}

const NOT_A_DURATION: u64 = 5;

#[timeout(NOT_A_DURATION)]
async fn const_of_another_type() -> Result<u8, MyError> {
    Ok(1)
}

fn main() {}
