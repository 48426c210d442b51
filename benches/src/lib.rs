//! Support code for the `resilience` benchmarks: a counting global allocator, a
//! driver that polls a future once with a no-op waker, and a multi-thread timing loop.
//!
//! The benchmarks themselves live in `benches/` (criterion, run with `cargo bench -p
//! resilience-benches`); `bench-table` runs them and prints the ratio table.
//!
//! ```
//! use resilience_benches::poll_once;
//!
//! assert_eq!(poll_once(async { 7 }), Some(7));
//! ```

use std::future::Future;
use std::pin::pin;
use std::sync::Barrier;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

pub mod alloc;
pub mod table;

/// Poll `fut` once with a no-op waker: `Some(output)` if it completed on that poll.
///
/// The async benchmarks and the allocation test measure futures that complete without
/// waiting (a first attempt that succeeds), so one poll is the whole call and no runtime
/// is needed.
pub fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

/// Run `op(thread, i)` for `i` in `0..iters` on each of `threads` threads at once
/// (released together by a barrier) and return the wall time until the last thread
/// finished.
///
/// Divided by `iters` (what criterion's `iter_custom` does), this is the time `threads`
/// concurrent calls take on the shared object: lower means more throughput.
pub fn run_parallel<F: Fn(usize, u64) + Sync>(threads: usize, iters: u64, op: F) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (barrier, op) = (&barrier, &op);
            s.spawn(move || {
                barrier.wait();
                for i in 0..iters {
                    op(t, i);
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Leaving the scope joins every thread.
        start
    })
    .elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn poll_once_completes_a_ready_future() {
        assert_eq!(poll_once(async { 3 }), Some(3));
    }

    #[test]
    fn poll_once_reports_a_pending_future() {
        assert_eq!(poll_once(std::future::pending::<()>()), None);
    }

    #[test]
    fn run_parallel_runs_every_call_on_every_thread() {
        let calls = AtomicU64::new(0);
        let sum = AtomicU64::new(0);
        run_parallel(4, 1_000, |t, i| {
            calls.fetch_add(1, Ordering::Relaxed);
            sum.fetch_add(t as u64 * 10_000 + i, Ordering::Relaxed);
        });
        assert_eq!(calls.load(Ordering::Relaxed), 4_000);
        // Each thread t saw i = 0..1000 once: 4 * 499_500 + 1000 * 10_000 * (0+1+2+3).
        assert_eq!(sum.load(Ordering::Relaxed), 4 * 499_500 + 60_000_000);
    }
}

/// The error type of the benchmarked functions: the attributes need
/// `From<resilience::Error>`, and nothing ever inspects it.
#[derive(Debug)]
pub enum BenchError {
    /// A resilience layer refused the call.
    Resilience(resilience::Error),
}

impl From<resilience::Error> for BenchError {
    fn from(e: resilience::Error) -> Self {
        BenchError::Resilience(e)
    }
}
