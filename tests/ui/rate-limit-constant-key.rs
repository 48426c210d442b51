#![allow(dead_code)]
use resilience::rate_limit;

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

fn main() {}
