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

fn cached(id: &str) -> Result<String, AppError> {
    Ok(id.to_owned())
}

#[circuit_breaker(fallback = cached)]
fn title(id: u64) -> Result<String, AppError> {
    Ok(id.to_string())
}

fn main() {
    let _ = title(1);
}
