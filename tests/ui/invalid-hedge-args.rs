#![allow(dead_code)]
use resilience::{hedge, resilient};

#[derive(Debug)]
struct MyError;

impl From<resilience::Error> for MyError {
    fn from(_: resilience::Error) -> Self {
        MyError
    }
}

#[hedge(delay = 50)]
async fn no_unit() -> Result<u8, MyError> {
    Ok(1)
}

#[hedge(delay = p100)]
async fn percentile_out_of_range() -> Result<u8, MyError> {
    Ok(1)
}

#[hedge(delay = fast)]
async fn neither() -> Result<u8, MyError> {
    Ok(1)
}

#[hedge(max_hedges = 0, budget = 1.5)]
async fn bad_counts() -> Result<u8, MyError> {
    Ok(1)
}

#[hedge(deley = 50ms)]
async fn unknown_key() -> Result<u8, MyError> {
    Ok(1)
}

#[resilient(hedge = p95)]
async fn hedge_is_a_layer() -> Result<u8, MyError> {
    Ok(1)
}

fn main() {}
