#![allow(dead_code)]
use resilience::{resilient, retry};

#[retry(max_attempts = 3)]
fn generic<E: From<resilience::Error> + std::fmt::Debug>(
    attempt: impl Fn() -> Result<u8, E>,
) -> Result<u8, E> {
    attempt()
}

#[resilient(preset = "api")]
async fn generic_in_where_clause<E>(value: u8) -> Result<u8, E>
where
    E: From<resilience::Error> + std::fmt::Debug + Send,
{
    Ok(value)
}

fn main() {}
