use std::future::Future;

use resilience::retry;

#[derive(Debug)]
struct MyError;

impl From<resilience::Error> for MyError {
    fn from(_: resilience::Error) -> Self {
        MyError
    }
}

async fn inner() -> Result<u8, MyError> {
    Ok(1)
}

#[retry]
fn fetch() -> impl Future<Output = Result<u8, MyError>> {
    inner()
}

fn main() {
    let _ = fetch();
}
