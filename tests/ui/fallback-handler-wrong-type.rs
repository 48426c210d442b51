use resilience::{fallback, retry};

#[derive(Debug)]
enum AppError {
    Resilience(resilience::Error),
}

impl From<resilience::Error> for AppError {
    fn from(e: resilience::Error) -> Self {
        AppError::Resilience(e)
    }
}

// Returns a `String` where the function returns `Result<u32, AppError>`.
fn cached(id: u64) -> String {
    id.to_string()
}

#[fallback(cached, on = "any")]
#[retry(max_attempts = 2, backoff = constant, initial_delay = 10ms, jitter = none)]
fn count(id: u64) -> Result<u32, AppError> {
    let _ = id;
    Ok(1)
}

// A sync handler for an async fn.
fn cached_sync(id: u64) -> Result<u32, AppError> {
    let _ = id;
    Ok(0)
}

#[fallback(cached_sync)]
async fn count_async(id: u64) -> Result<u32, AppError> {
    let _ = id;
    Ok(1)
}

fn main() {
    let _ = count(1);
    let _ = count_async(1);
}
