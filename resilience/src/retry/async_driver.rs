//! The async driver: sleeps on tokio's timer.

use std::fmt::Debug;
use std::future::Future;

use super::attempt::{Attempts, Next, View};
use super::hooks::{DefaultHooks, RetryHooks};
use super::policy::RetryPolicy;
use crate::Fault;

impl RetryPolicy {
    /// The async [`call`](Self::call): retries every error, sleeping with
    /// `tokio::time::sleep` (so tokio's paused clock controls it in tests).
    ///
    /// `op` is a closure returning a future (`|| async { ... }`, or `|| client.get(url)`),
    /// called once per attempt. The returned future is `Send` when `op`'s futures are,
    /// so it can be `tokio::spawn`ed. (`AsyncFnMut` would accept `async || ...` too, but
    /// a generic driver over it cannot prove its future `Send` on current compilers.)
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), resilience::ConfigError> {
    /// use resilience::backoff::Backoff;
    /// use resilience::retry::RetryPolicy;
    /// use std::time::Duration;
    ///
    /// let policy = RetryPolicy::builder()
    ///     .backoff(Backoff::constant(Duration::from_secs(1)))
    ///     .build()?;
    /// let mut calls = 0;
    /// let r: Result<u32, &str> = policy
    ///     .call_async(|| {
    ///         calls += 1;
    ///         let n = calls;
    ///         async move { if n < 2 { Err("flaky") } else { Ok(n) } }
    ///     })
    ///     .await;
    /// assert_eq!(r, Ok(2));
    /// # Ok(())
    /// # }
    /// ```
    pub fn call_async<T, E, F, Fut>(&self, op: F) -> impl Future<Output = Result<T, E>>
    where
        E: Debug,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.drive_async(&DefaultHooks, op, View::of_error)
    }

    /// The async [`call_with`](Self::call_with).
    pub fn call_async_with<T, E, H, F, Fut>(
        &self,
        hooks: &H,
        op: F,
    ) -> impl Future<Output = Result<T, E>>
    where
        E: Debug,
        H: RetryHooks<T, E> + ?Sized,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.drive_async(hooks, op, View::of_error)
    }

    /// The async [`run`](Self::run), with the same handling of rejections.
    pub fn run_async<T, E, H, F, Fut>(
        &self,
        hooks: &H,
        op: F,
    ) -> impl Future<Output = Result<T, Fault<E>>>
    where
        E: Debug,
        H: RetryHooks<T, E> + ?Sized,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Fault<E>>>,
    {
        self.drive_async(hooks, op, View::of_fault)
    }

    async fn drive_async<T, X, E, H, F, Fut>(
        &self,
        hooks: &H,
        mut op: F,
        view: fn(&X) -> View<'_, E>,
    ) -> Result<T, X>
    where
        E: Debug,
        H: RetryHooks<T, E> + ?Sized,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, X>>,
    {
        let mut attempts = Attempts::start(&self.inner);
        loop {
            let result = match attempts.deadline() {
                None => op().await,
                Some(deadline) => {
                    let attempt = std::pin::pin!(op());
                    crate::deadline::scope_async(deadline, attempt).await
                }
            };
            match attempts.next(hooks, result, view) {
                Next::Done(result) => return result,
                // Boxed for the same reason as the backoff iterator: a `Sleep` is 112
                // bytes that only a retry needs.
                Next::Retry(delay) => Box::pin(tokio::time::sleep(delay)).await,
            }
        }
    }
}
