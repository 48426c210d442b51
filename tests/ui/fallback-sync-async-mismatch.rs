use resilience::circuit_breaker;

#[derive(Debug)]
enum AppError {
    Resilience(resilience::Error),
}

impl From<resilience::Error> for AppError {
    fn from(e: resilience::Error) -> Self {
        AppError::Resilience(e)
    }
}

fn cached_sync(id: u64) -> Result<String, AppError> {
    Ok(id.to_string())
}

async fn cached_async(id: u64) -> Result<String, AppError> {
    Ok(id.to_string())
}

#[circuit_breaker(fallback = cached_sync)]
async fn title_async(id: u64) -> Result<String, AppError> {
    Ok(id.to_string())
}

#[circuit_breaker(fallback = cached_async)]
fn title_sync(id: u64) -> Result<String, AppError> {
    Ok(id.to_string())
}

fn main() {
    let _ = title_async(1);
    let _ = title_sync(1);
}
