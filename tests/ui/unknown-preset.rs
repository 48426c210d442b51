#![allow(dead_code)]
use resilience::{resilient, retry};

#[derive(Debug)]
struct MyError;

impl From<resilience::Error> for MyError {
    fn from(_: resilience::Error) -> Self {
        MyError
    }
}

#[resilient(preset = "shopfy")]
async fn typo_in_a_built_in_preset() -> Result<u8, MyError> {
    Ok(1)
}

#[retry(preset = "billing")]
fn a_user_preset_without_its_prefix() -> Result<u8, MyError> {
    Ok(1)
}

#[retry(preset = "user:")]
fn an_empty_user_preset_name() -> Result<u8, MyError> {
    Ok(1)
}

fn main() {}
