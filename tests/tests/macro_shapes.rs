//! Every function shape the attributes accept, sync and async.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use resilience::{Error, circuit_breaker, retry, timeout};

#[derive(Debug, PartialEq)]
enum AppError {
    Flaky(u32),
    Resilience(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Resilience(e)
    }
}

#[retry(max_attempts = 3, initial_delay = 1ms, jitter = none)]
fn sync_free(calls: &AtomicU32) -> Result<u32, AppError> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    if n < 3 { Err(AppError::Flaky(n)) } else { Ok(n) }
}

#[test]
fn sync_free_function_is_retried() {
    let calls = AtomicU32::new(0);
    assert_eq!(sync_free(&calls), Ok(3));
}

struct Client {
    calls: AtomicU32,
    log: Vec<u32>,
}

impl Client {
    #[retry(max_attempts = 3, initial_delay = 1ms, jitter = none)]
    async fn by_ref(&self, fail_until: u32) -> Result<u32, AppError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::task::yield_now().await;
        if n < fail_until { Err(AppError::Flaky(n)) } else { Ok(n) }
    }

    #[retry(max_attempts = 3, initial_delay = 1ms, jitter = none)]
    async fn by_mut(&mut self, fail_until: u32) -> Result<u32, AppError> {
        let n = self.log.len() as u32 + 1;
        self.log.push(n);
        tokio::task::yield_now().await;
        if n < fail_until { Err(AppError::Flaky(n)) } else { Ok(n) }
    }

    #[circuit_breaker(name = "macro-shapes-by-value")]
    async fn by_value(self) -> Result<u32, AppError> {
        Ok(self.calls.load(Ordering::SeqCst))
    }

    #[retry(max_attempts = 2, initial_delay = 1ms)]
    #[timeout(1s)]
    async fn by_arc(self: Arc<Self>, extra: impl Into<u32> + Copy) -> Result<u32, AppError> {
        Ok(self.calls.load(Ordering::SeqCst) + extra.into())
    }

    #[retry(max_attempts = 2, initial_delay = 1ms)]
    fn returns_future(&self) -> impl Future<Output = Result<u32, AppError>> + '_ {
        async move { Ok(self.calls.load(Ordering::SeqCst)) }
    }
}

#[tokio::test(start_paused = true)]
async fn methods_of_every_receiver() {
    let client = Client { calls: AtomicU32::new(0), log: Vec::new() };
    assert_eq!(client.by_ref(2).await, Ok(2));
    let mut client = client;
    assert_eq!(client.by_mut(3).await, Ok(3));
    assert_eq!(client.log, [1, 2, 3]);
    assert_eq!(client.returns_future().await, Ok(2));
    let client = Arc::new(client);
    assert_eq!(client.clone().by_arc(5u8).await, Ok(7));
    let client = Arc::try_unwrap(client).ok().unwrap();
    assert_eq!(client.by_value().await, Ok(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_are_send() {
    let client = Arc::new(Client { calls: AtomicU32::new(0), log: Vec::new() });
    let c = client.clone();
    let handle = tokio::spawn(async move { c.by_ref(1).await });
    assert_eq!(handle.await.unwrap(), Ok(1));
    let handle = tokio::spawn(async move {
        let mut c = Client { calls: AtomicU32::new(0), log: Vec::new() };
        c.by_mut(1).await
    });
    assert_eq!(handle.await.unwrap(), Ok(1));
}
