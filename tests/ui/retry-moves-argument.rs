use resilience::retry;

#[derive(Debug)]
enum AppError {
    Resilience(resilience::Error),
}

impl From<resilience::Error> for AppError {
    fn from(e: resilience::Error) -> Self {
        AppError::Resilience(e)
    }
}

fn send(body: String) -> Result<usize, AppError> {
    Ok(body.len())
}

#[retry(max_attempts = 3)]
async fn post(body: String) -> Result<usize, AppError> {
    send(body)
}

fn main() {
    let _ = post(String::new());
}
