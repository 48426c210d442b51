#![allow(dead_code)]
use resilience::timeout;

#[derive(Debug)]
struct MyError;

impl From<resilience::Error> for MyError {
    fn from(_: resilience::Error) -> Self {
        MyError
    }
}

#[timeout(5)]
async fn duration_without_unit() -> Result<u8, MyError> {
    Ok(1)
}

#[timeout(5sec)]
async fn unknown_unit() -> Result<u8, MyError> {
    Ok(1)
}

#[timeout]
async fn missing_duration() -> Result<u8, MyError> {
    Ok(1)
}

#[timeout(0ms)]
async fn zero_duration() -> Result<u8, MyError> {
    Ok(1)
}

#[timeout(limit = 5s)]
async fn unknown_argument() -> Result<u8, MyError> {
    Ok(1)
}

fn main() {}
