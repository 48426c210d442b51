#![allow(dead_code)]
use resilience::{circuit_breaker, rate_limit, resilient};

#[derive(Debug)]
struct MyError;

impl From<resilience::Error> for MyError {
    fn from(_: resilience::Error) -> Self {
        MyError
    }
}

#[rate_limit(per_second = 2, key = "shop")]
async fn orders(shop: &str) -> Result<usize, MyError> {
    Ok(shop.len())
}

#[circuit_breaker(failure_threshold = 3, key = 7)]
async fn refunds(shop: &str) -> Result<usize, MyError> {
    Ok(shop.len())
}

#[resilient(preset = "shopify", key = "shop")]
async fn products(shop: &str) -> Result<usize, MyError> {
    Ok(shop.len())
}

fn main() {}
