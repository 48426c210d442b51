#![allow(dead_code)]
use resilience::hedge;

#[derive(Debug)]
struct MyError;

impl From<resilience::Error> for MyError {
    fn from(_: resilience::Error) -> Self {
        MyError
    }
}

#[hedge(delay = 50ms)]
fn lookup(id: &str) -> Result<usize, MyError> {
    Ok(id.len())
}

struct Client {
    calls: u32,
}

impl Client {
    #[hedge(delay = p95)]
    async fn fetch(&mut self) -> Result<u32, MyError> {
        self.calls += 1;
        Ok(self.calls)
    }
}

#[hedge]
async fn fill(buffer: &mut Vec<u8>) -> Result<usize, MyError> {
    buffer.push(1);
    Ok(buffer.len())
}

fn main() {}
