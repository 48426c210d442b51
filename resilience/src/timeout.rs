//! Timeouts for async and blocking calls.
//!
//! # Async
//!
//! [`timeout`], [`call_async`] and [`run_async`] put a deadline on a future with
//! `tokio::time::timeout`. When the deadline passes first, the future is **dropped**
//! (cancelled at its current `.await`) and the caller gets [`Error::Timeout`]. They must
//! run inside a tokio runtime with the time driver enabled, and tokio's paused clock
//! controls them in tests.
//!
//! ```
//! use resilience::Error;
//! use std::time::Duration;
//!
//! # #[cfg(not(feature = "tokio"))] fn main() {}
//! # #[cfg(feature = "tokio")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let fast = resilience::timeout::timeout(Duration::from_secs(1), async { 42 }).await;
//! assert_eq!(fast, Ok(42));
//!
//! let slow = resilience::timeout::timeout(Duration::from_millis(10), std::future::pending::<()>());
//! assert_eq!(slow.await, Err(Error::timeout(Duration::from_millis(10))));
//! # }
//! ```
//!
//! # Blocking
//!
//! A blocking function cannot be cancelled from outside, so [`call_blocking`] and
//! [`run_blocking`] run it on a **worker thread** of a bounded pool and wait for its
//! result up to the limit. At the deadline the caller gets [`Error::Timeout`] and goes on; the worker is
//! **not stopped**: it runs to the end and its result is dropped. Use a blocking timeout
//! to bound how long the *caller* waits, not to stop the work (give the work its own
//! deadline, such as a socket timeout, to stop it).
//!
//! That is why the function and its result must be `Send + 'static`: they move to
//! another thread that may outlive the call, so they cannot borrow from the caller's
//! stack. A closure that borrows a local is rejected at compile time; move owned data (or
//! an `Arc`) into it instead.
//!
//! A panic in the worker before the deadline is resumed in the caller with
//! [`std::panic::resume_unwind`], as if the function had been called directly. A panic
//! after the deadline is not seen by the caller (the panic hook still reports it). If
//! the worker thread cannot be spawned, the call fails with [`Error::Config`] naming the
//! reason, and the function does not run.
//!
//! # The worker pool
//!
//! The workers are a pool shared by the process: a call goes to an idle worker, or to a
//! new one while there are fewer than [`max_blocking_workers`] (64 unless
//! [`set_max_blocking_workers`] says otherwise); a worker left without calls for 60 s
//! exits. A timed-out call keeps its worker busy until it returns, so calls that hang
//! forever use the workers up one by one; then every further call is refused at once with
//! [`Error::BlockingPoolFull`] (not retried, and ignored by a circuit breaker) instead of
//! starting yet another thread. Thus 10 000 timed-out calls that never return leave 64
//! threads behind, not 10 000 (a test checks this); [`blocking_workers`] says how many are
//! alive.
//!
//! ```
//! use resilience::Error;
//! use std::time::Duration;
//!
//! let sum = resilience::timeout::call_blocking(Duration::from_secs(5), || 40 + 2);
//! assert_eq!(sum, Ok(42));
//!
//! let (_keep_open, never_sent) = std::sync::mpsc::channel::<()>();
//! let stuck = resilience::timeout::call_blocking(Duration::from_millis(1), move || never_sent.recv());
//! assert_eq!(stuck, Err(Error::timeout(Duration::from_millis(1))));
//! ```
//!
//! # Limits
//!
//! A zero limit times out at once unless the future is ready on its first poll (async)
//! or the worker has already sent its result (blocking; in practice a zero limit times a
//! blocking call out). A limit too large to add to the current instant, such as
//! `Duration::MAX`, means no limit.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

mod pool;

use crate::events::{EventKind, Interest, Layer};
use crate::{ConfigError, Error, Fault};

/// `fut`'s output, or [`Error::Timeout`] if it is not ready within `limit` (`fut` is then
/// dropped).
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub async fn timeout<F: Future>(limit: Duration, fut: F) -> Result<F::Output, Error> {
    match tokio::time::timeout(limit, fut).await {
        Ok(output) => Ok(output),
        Err(_elapsed) => Err(timed_out(limit)),
    }
}

/// [`timeout`] for pipelines: a timeout is [`Fault::Rejected`], the future's own faults
/// pass through.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub async fn run_async<T, E, Fut>(limit: Duration, fut: Fut) -> Result<T, Fault<E>>
where
    Fut: Future<Output = Result<T, Fault<E>>>,
{
    timeout(limit, fut).await?
}

/// [`timeout`] for a fallible future: a timeout reaches the caller as
/// `E::from(Error::Timeout { limit })`.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub async fn call_async<T, E, Fut>(limit: Duration, fut: Fut) -> Result<T, E>
where
    E: From<Error>,
    Fut: Future<Output = Result<T, E>>,
{
    timeout(limit, fut).await?
}

/// Runs `f` on a worker thread of the [pool](self#the-worker-pool) and returns its value,
/// or [`Error::Timeout`] once `limit` has passed. See [Blocking](self#blocking) for what
/// happens to the worker, and [`Error::BlockingPoolFull`] for a call refused because
/// every worker is busy.
pub fn call_blocking<T, F>(limit: Duration, f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    // Capacity 1: the worker's send never blocks, even after the caller has gone.
    let (tx, rx) = mpsc::sync_channel::<std::thread::Result<T>>(1);
    let job = Box::new(move || {
        // The worker outlives a panic of `f`; the caller resumes it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        // Fails only if the caller timed out and dropped the receiver.
        let _ = tx.send(result);
    });
    POOL.submit(job).map_err(|refused| match refused {
        pool::Refused::Full(workers) => Error::blocking_pool_full(workers),
        pool::Refused::Spawn(e) => {
            worker_error(format!("could not start a worker thread for a blocking call: {e}"))
        }
    })?;
    // `recv_timeout` falls back to an unbounded wait when `now + limit` overflows.
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(RecvTimeoutError::Timeout) => Err(timed_out(limit)),
        // Never: the job always sends before it drops the sender.
        Err(RecvTimeoutError::Disconnected) => {
            Err(worker_error("the worker thread ended without a result".into()))
        }
    }
}

/// The pool's maximum of worker threads: the default (64) unless
/// [`set_max_blocking_workers`] changed it.
pub fn max_blocking_workers() -> usize {
    POOL.max()
}

/// Sets the pool's maximum of worker threads, for the whole process (at least 1; default
/// 64). Raising it lets more calls run (or hang) at once; lowering it below the threads
/// alive lets the extra ones exit as they finish their calls, none is stopped.
///
/// ```
/// use resilience::timeout;
/// timeout::set_max_blocking_workers(128)?;
/// assert_eq!(timeout::max_blocking_workers(), 128);
/// assert!(timeout::set_max_blocking_workers(0).is_err());
/// # timeout::set_max_blocking_workers(64)?;
/// # Ok::<(), resilience::ConfigError>(())
/// ```
pub fn set_max_blocking_workers(max: usize) -> Result<(), ConfigError> {
    if max == 0 {
        return Err(ConfigError::new(
            "max_blocking_workers",
            "must be at least 1 (got 0): with no worker no timed blocking call could run",
        ));
    }
    POOL.set_max(max);
    Ok(())
}

/// The worker threads alive now, busy (including with calls that timed out and still
/// run) or waiting for a call; at most [`max_blocking_workers`].
pub fn blocking_workers() -> usize {
    POOL.workers()
}

static POOL: pool::Pool = pool::Pool::new(pool::DEFAULT_MAX_WORKERS, pool::IDLE_TIMEOUT);

/// [`call_blocking`] for pipelines: a timeout is [`Fault::Rejected`], `f`'s own faults
/// pass through.
pub fn run_blocking<T, E, F>(limit: Duration, f: F) -> Result<T, Fault<E>>
where
    T: Send + 'static,
    E: Send + 'static,
    F: FnOnce() -> Result<T, Fault<E>> + Send + 'static,
{
    call_blocking(limit, f)?
}

/// Counts a timeout as an event of the process default hub (a timeout has no name of
/// its own) and returns its error.
#[cold]
fn timed_out(limit: Duration) -> Error {
    let hub = crate::events::Hub::global();
    hub.report(
        Layer::Timeout,
        crate::events::unnamed(),
        Interest::TIMEOUTS,
        tracing::Level::WARN,
        || (crate::clock::default_clock().now(), EventKind::TimedOut { limit }),
    );
    Error::timeout(limit)
}

#[cold]
fn worker_error(message: String) -> Error {
    Error::Config(ConfigError::new("timeout", message))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn blocking_fast_function_returns_its_value() {
        assert_eq!(call_blocking(Duration::from_secs(60), || vec![1, 2, 3]), Ok(vec![1, 2, 3]));
    }

    #[test]
    fn blocking_function_that_never_finishes_times_out() {
        // The one place real time passes (1 ms); only the result is asserted.
        let (keep_open, never_sent) = mpsc::channel::<u32>();
        let limit = Duration::from_millis(1);
        assert_eq!(call_blocking(limit, move || never_sent.recv()), Err(Error::timeout(limit)));
        // Lets the abandoned worker finish.
        drop(keep_open);
    }

    #[test]
    fn blocking_panic_is_resumed_in_the_caller() {
        let caught = std::panic::catch_unwind(|| {
            call_blocking(Duration::MAX, || -> u32 { panic!("worker blew up") })
        });
        let payload = caught.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"worker blew up"));
    }

    #[test]
    fn blocking_max_limit_means_no_limit() {
        assert_eq!(call_blocking(Duration::MAX, || "done"), Ok("done"));
    }

    #[test]
    fn blocking_zero_limit_does_not_panic() {
        // The worker blocks for good, so a zero limit can only time out.
        let (keep_open, never_sent) = mpsc::channel::<u32>();
        let r = call_blocking(Duration::ZERO, move || never_sent.recv());
        assert_eq!(r, Err(Error::timeout(Duration::ZERO)));
        drop(keep_open);
    }

    #[test]
    fn run_blocking_keeps_inner_faults_and_rejects_timeouts() {
        let inner = run_blocking(Duration::MAX, || Err::<(), _>(Fault::Inner("bad row")));
        assert_eq!(inner, Err(Fault::Inner("bad row")));
        let (keep_open, never_sent) = mpsc::channel::<()>();
        let limit = Duration::from_millis(1);
        let timed_out =
            run_blocking(limit, move || never_sent.recv().map_err(|_| Fault::Inner("closed")));
        assert_eq!(timed_out, Err(Fault::Rejected(Error::timeout(limit))));
        drop(keep_open);
    }

    #[cfg(feature = "tokio")]
    mod asynchronous {
        use super::*;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        use tokio::time::{Instant, sleep};

        use crate::test_support::AppError;

        struct SetOnDrop(Arc<AtomicBool>);

        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }

        #[tokio::test(start_paused = true)]
        async fn fires_at_exactly_the_limit() {
            let start = Instant::now();
            let r = timeout(Duration::from_secs(5), sleep(Duration::from_secs(60))).await;
            assert_eq!(r, Err(Error::Timeout { limit: Duration::from_secs(5) }));
            assert_eq!(start.elapsed(), Duration::from_secs(5));
        }

        #[tokio::test(start_paused = true)]
        async fn a_fast_future_passes() {
            let start = Instant::now();
            let r = timeout(Duration::from_secs(5), async {
                sleep(Duration::from_secs(2)).await;
                "ok"
            })
            .await;
            assert_eq!(r, Ok("ok"));
            assert_eq!(start.elapsed(), Duration::from_secs(2));
        }

        #[tokio::test(start_paused = true)]
        async fn the_timed_out_future_is_dropped() {
            let dropped = Arc::new(AtomicBool::new(false));
            let guard = SetOnDrop(dropped.clone());
            let fut = async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            };
            assert!(timeout(Duration::from_secs(1), fut).await.is_err());
            assert!(dropped.load(Ordering::SeqCst));
        }

        #[tokio::test(start_paused = true)]
        async fn zero_limit_passes_a_ready_future_and_fails_a_pending_one_at_once() {
            let start = Instant::now();
            assert_eq!(timeout(Duration::ZERO, async { 1 }).await, Ok(1));
            let pending = timeout(Duration::ZERO, std::future::pending::<()>()).await;
            assert_eq!(pending, Err(Error::timeout(Duration::ZERO)));
            assert_eq!(start.elapsed(), Duration::ZERO);
        }

        #[tokio::test(start_paused = true)]
        async fn max_limit_is_no_limit() {
            let start = Instant::now();
            let years = Duration::from_secs(10 * 365 * 24 * 3600);
            let r = timeout(Duration::MAX, async {
                sleep(years).await;
                "eventually"
            })
            .await;
            assert_eq!(r, Ok("eventually"));
            assert_eq!(start.elapsed(), years);
        }

        #[tokio::test(start_paused = true)]
        async fn a_huge_limit_that_fits_does_not_panic() {
            let limit = Duration::from_secs(100 * 365 * 24 * 3600);
            let r = timeout(limit, async {
                sleep(Duration::from_secs(1)).await;
                1
            })
            .await;
            assert_eq!(r, Ok(1));
        }

        #[tokio::test(start_paused = true)]
        async fn call_async_converts_the_timeout_and_keeps_own_errors() {
            let limit = Duration::from_secs(1);
            let own = call_async(limit, async { Err::<(), _>(AppError::Own("nope")) }).await;
            assert_eq!(own, Err(AppError::Own("nope")));
            let slow = call_async(limit, async {
                sleep(Duration::from_secs(2)).await;
                Ok::<_, AppError>(())
            })
            .await;
            assert_eq!(slow, Err(AppError::Resilience(Error::timeout(limit))));
        }

        #[tokio::test(start_paused = true)]
        async fn run_async_marks_the_timeout_as_rejected() {
            let limit = Duration::from_secs(1);
            let inner = run_async(limit, async { Err::<(), _>(Fault::Inner(3)) }).await;
            assert_eq!(inner, Err(Fault::Inner(3)));
            let slow = run_async(limit, std::future::pending::<Result<(), Fault<u8>>>()).await;
            assert_eq!(slow, Err(Fault::Rejected(Error::timeout(limit))));
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn futures_are_send() {
            let limit = Duration::from_secs(60);
            let a = tokio::spawn(timeout(limit, async { 1 }));
            let b = tokio::spawn(call_async(limit, async { Ok::<_, Error>(2) }));
            let c = tokio::spawn(run_async(limit, async { Ok::<_, Fault<()>>(3) }));
            assert_eq!(a.await.unwrap(), Ok(1));
            assert_eq!(b.await.unwrap(), Ok(2));
            assert_eq!(c.await.unwrap(), Ok(3));
        }
    }
}
