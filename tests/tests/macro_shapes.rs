//! Every function shape the attributes accept, sync and async.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use resilience::{Error, circuit_breaker, registry, retry, timeout};

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

/// Generic functions: type and lifetime parameters, `where` clauses, `impl Trait`. An
/// error type parameter without a `Classify` bound says which errors to retry.
#[retry(max_attempts = 3, initial_delay = 1ms, retry_if = |_| true)]
async fn generic<'a, T, E>(items: &'a [T], calls: &AtomicU32) -> Result<&'a T, E>
where
    T: Sync,
    E: From<Error> + From<u32> + std::fmt::Debug,
{
    let n = calls.fetch_add(1, Ordering::SeqCst);
    items.get(n as usize + 1).ok_or(E::from(n))
}

#[derive(Debug, PartialEq)]
enum Generic {
    Missing(u32),
    Resilience(Error),
}

impl From<u32> for Generic {
    fn from(n: u32) -> Self {
        Generic::Missing(n)
    }
}

impl From<Error> for Generic {
    fn from(e: Error) -> Self {
        Generic::Resilience(e)
    }
}

#[retry(max_attempts = 2, initial_delay = 1ms)]
fn impl_trait_args(prefix: impl AsRef<str>, n: impl Fn() -> u32) -> Result<String, AppError> {
    Ok(format!("{}{}", prefix.as_ref(), n()))
}

#[tokio::test(start_paused = true)]
async fn generic_functions_and_impl_trait_arguments() {
    let calls = AtomicU32::new(0);
    let items = [10, 20];
    assert_eq!(generic::<_, Generic>(&items, &calls).await, Ok(&20));
    let calls = AtomicU32::new(0);
    assert_eq!(generic::<_, Generic>(&items[..1], &calls).await, Err(Generic::Missing(2)));
    assert_eq!(impl_trait_args("n=", || 4), Ok("n=4".to_owned()));
}

fn parse(s: &str) -> Result<u32, AppError> {
    s.parse().map_err(|_| AppError::Flaky(0))
}

/// `?`, early `return`, and closures with `?` inside keep their meaning.
#[retry(max_attempts = 3, initial_delay = 1ms)]
fn control_flow(input: &str, calls: &AtomicU32) -> Result<u32, AppError> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    if input.is_empty() {
        return Ok(0);
    }
    let sum_of = |parts: &[&str]| -> Result<u32, AppError> {
        let mut total = 0;
        for p in parts {
            total += parse(p)?;
        }
        Ok(total)
    };
    let parts: Vec<&str> = input.split('+').collect();
    let total = sum_of(&parts)?;
    if n < 2 {
        return Err(AppError::Flaky(n));
    }
    Ok(total)
}

#[test]
fn question_mark_return_and_closures_work_in_the_body() {
    let calls = AtomicU32::new(0);
    assert_eq!(control_flow("", &calls), Ok(0), "early return");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let calls = AtomicU32::new(0);
    assert_eq!(control_flow("1+2", &calls), Ok(3), "an early Err return is retried");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let calls = AtomicU32::new(0);
    assert_eq!(control_flow("1+x", &calls), Err(AppError::Flaky(0)), "`?` in a closure");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// Native `async fn` in traits and `#[async_trait]` methods.
trait Store {
    async fn get(&self, key: u32) -> Result<u32, AppError>;
}

#[async_trait::async_trait]
trait BoxedStore {
    async fn get(&self, key: u32) -> Result<u32, AppError>;
    async fn put(&mut self, key: u32, value: String) -> Result<usize, AppError>;
}

struct Memory {
    calls: AtomicU32,
    values: Vec<String>,
}

impl Store for Memory {
    #[retry(max_attempts = 3, initial_delay = 1ms)]
    async fn get(&self, key: u32) -> Result<u32, AppError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n < 2 { Err(AppError::Flaky(n)) } else { Ok(key + n) }
    }
}

#[async_trait::async_trait]
impl BoxedStore for Memory {
    #[retry(max_attempts = 3, initial_delay = 1ms)]
    #[circuit_breaker(name = "macro-shapes-async-trait")]
    async fn get(&self, key: u32) -> Result<u32, AppError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n % 2 == 1 { Err(AppError::Flaky(n)) } else { Ok(key * 100 + n) }
    }

    #[retry(max_attempts = 3, initial_delay = 1ms)]
    async fn put(&mut self, key: u32, value: String) -> Result<usize, AppError> {
        self.values.push(format!("{key}={value}"));
        if self.values.len() < 2 { Err(AppError::Flaky(key)) } else { Ok(self.values.len()) }
    }
}

#[tokio::test(start_paused = true)]
async fn trait_methods_native_and_async_trait() {
    let mut memory = Memory { calls: AtomicU32::new(0), values: Vec::new() };
    assert_eq!(Store::get(&memory, 1).await, Ok(3));
    memory.calls.store(0, Ordering::SeqCst);
    assert_eq!(BoxedStore::get(&memory, 1).await, Ok(102));
    assert_eq!(BoxedStore::put(&mut memory, 7, "x".into()).await, Ok(2));
    assert_eq!(memory.values, ["7=x", "7=x"]);
    assert_eq!(registry().circuit_breakers().stats("macro-shapes-async-trait").unwrap().calls, 2);

    let boxed: Box<dyn BoxedStore + Send + Sync> = Box::new(memory);
    let handle = tokio::spawn(async move { boxed.get(2).await });
    assert!(handle.await.unwrap().is_ok());
}

/// A sync `#[timeout]` moves owned arguments to the worker; under `#[retry]` each attempt
/// gets a clone.
#[retry(max_attempts = 3, initial_delay = 1ms)]
#[timeout(10s)]
fn sync_timeout_under_retry(url: String, calls: Arc<AtomicU32>) -> Result<usize, AppError> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    if n < 3 { Err(AppError::Flaky(n)) } else { Ok(url.len()) }
}

#[test]
fn sync_timeout_arguments_are_cloned_per_attempt() {
    let calls = Arc::new(AtomicU32::new(0));
    assert_eq!(sync_timeout_under_retry("https://x".into(), calls.clone()), Ok(9));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}
