use resilience::{fallback, timeout};

#[derive(Debug)]
enum AppError {
    Resilience(resilience::Error),
}

impl From<resilience::Error> for AppError {
    fn from(e: resilience::Error) -> Self {
        AppError::Resilience(e)
    }
}

fn cached() -> Result<u32, AppError> {
    Ok(0)
}

#[fallback(cached, on = "sometimes")]
fn bad_on() -> Result<u32, AppError> {
    Ok(1)
}

#[fallback(cached, onn = "any")]
fn typo() -> Result<u32, AppError> {
    Ok(1)
}

#[fallback(on = "any")]
fn no_handler() -> Result<u32, AppError> {
    Ok(1)
}

#[fallback(cached, on = |e: AppError| true)]
fn predicate_by_value() -> Result<u32, AppError> {
    Ok(1)
}

fn plain() -> u32 {
    0
}

#[fallback(plain, on = |e: &AppError| true)]
fn predicate_without_result() -> u32 {
    1
}

#[timeout(1s)]
#[fallback(cached)]
async fn fallback_below() -> Result<u32, AppError> {
    Ok(1)
}

fn main() {}
