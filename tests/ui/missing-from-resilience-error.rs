use resilience::retry;

#[derive(Debug)]
struct PlainError;

#[retry(max_attempts = 3)]
async fn fetch() -> Result<u8, PlainError> {
    Err(PlainError)
}

fn main() {
    let _ = fetch();
}
