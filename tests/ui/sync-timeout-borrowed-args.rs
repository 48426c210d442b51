use resilience::timeout;

#[derive(Debug)]
struct MyError;

impl From<resilience::Error> for MyError {
    fn from(_: resilience::Error) -> Self {
        MyError
    }
}

struct Client;

impl Client {
    #[timeout(1s)]
    fn get(&self, path: &str) -> Result<usize, MyError> {
        Ok(path.len())
    }
}

fn main() {
    let _ = Client.get("/");
}
