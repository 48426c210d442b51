//! Hedged requests: when a call is slow, start another attempt and keep the first
//! success ("The Tail at Scale", Dean and Barroso).
//!
//! A [`Hedge`] runs the first attempt of a call; if it has not finished after the
//! [delay](HedgeDelay), it starts another one (a *hedge*) beside it, up to
//! [`max_hedges`](HedgeConfig::max_hedges), each a delay after the previous one. The
//! first attempt to succeed wins and the others are cancelled by dropping their futures.
//! The delay is fixed, or a percentile of the latencies of the instance's recent first
//! attempts (`p95`: hedge the slowest 5 %), kept in a bounded lock-free histogram.
//!
//! Hedges are extra load, and a dependency that is slow for everyone must not get twice
//! the traffic: every call deposits into a budget (a [`RetryBudget`]) and every hedge
//! withdraws from it, so hedges add at most the budget's ratio (10 % by default) to the
//! calls of its window. When the budget refuses, the call goes on with the attempts it
//! has.
//!
//! Hedging needs attempts that run at the same time, so it is async only
//! ([`Hedge::call_async`], feature `tokio`), and the operation is called once per attempt:
//! it must be able to build a fresh future each time (the attribute `#[hedge]` requires
//! the function's arguments to be `Clone` or references for that reason).
//!
//! **Where it sits in the fixed order**: retry → **hedge** → circuit breaker → rate limit
//! → bulkhead → timeout. Like Polly's hedging strategy it is outside the circuit breaker:
//! each hedge passes the breaker, takes its own rate-limit permit and bulkhead slot (it is
//! real load) and has its own per-attempt timeout, and an open circuit refuses hedges as
//! it refuses first attempts. It is inside the retry: a retry re-runs a whole hedged
//! attempt, so hedging never multiplies the retries themselves.
//!
//! ```
//! use std::time::Duration;
//! use resilience::Error;
//! use resilience::hedge::{Hedge, HedgeConfig, HedgeDelay};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), resilience::ConfigError> {
//! let config = HedgeConfig::builder()
//!     .delay(HedgeDelay::Fixed(Duration::from_millis(50)))
//!     .budget(resilience::retry::RetryBudgetConfig::builder().ratio(1.0).min_retries_per_sec(10).build()?)
//!     .build()?;
//! let hedge = Hedge::new("docs-replicas", config);
//! let mut attempt = 0;
//! let start = tokio::time::Instant::now();
//! let r: Result<&str, Error> = hedge
//!     .call_async(|| {
//!         attempt += 1;
//!         let slow = attempt == 1;
//!         async move {
//!             let took = if slow { 1_000 } else { 20 };
//!             tokio::time::sleep(Duration::from_millis(took)).await;
//!             Ok(if slow { "first" } else { "hedge" })
//!         }
//!     })
//!     .await;
//! assert_eq!(r, Ok("hedge"));
//! assert_eq!(start.elapsed(), Duration::from_millis(70));
//! assert_eq!(hedge.stats().hedges_won, 1);
//! # Ok(())
//! # }
//! ```

// Without `tokio` there is no driver to take the decisions.
#![cfg_attr(not(feature = "tokio"), allow(dead_code))]

mod config;
#[cfg(feature = "tower")]
pub(crate) mod service;
mod sketch;

#[cfg(feature = "tokio")]
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

pub use config::{HedgeConfig, HedgeConfigBuilder, HedgeDelay};
use sketch::LatencySketch;

use crate::clock::{SharedClock, as_nanos, default_clock};
use crate::events::{EventKind, Hub, Interest, Layer};
use crate::retry::RetryBudget;

/// What a [`Hedge`] has done (see [`Hedge::stats`]).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct HedgeStats {
    /// The hedge's name.
    pub name: String,
    /// Calls made through it.
    pub calls: u64,
    /// Hedges started (attempts beside the first).
    pub hedges: u64,
    /// Calls a hedge answered first.
    pub hedges_won: u64,
    /// Hedges not started because the budget refused them.
    pub budget_refusals: u64,
    /// The delay a call made now waits before its first hedge, in seconds; `None` while a
    /// percentile has too few latencies to go by (such calls are not hedged).
    pub delay_secs: Option<f64>,
    /// Latencies of first attempts recorded for the percentile.
    pub latencies_recorded: u64,
}

/// Hedged requests for one named dependency: see the [module docs](self).
///
/// Making a call takes no lock and allocates nothing while the first attempt answers
/// before the delay; each hedge started is one boxed future.
pub struct Hedge {
    name: Arc<str>,
    config: Mutex<HedgeConfig>,
    /// Hot copies of the config: the fixed delay in nanoseconds (`u64::MAX` for a
    /// percentile) and the most hedges per call.
    fixed_nanos: AtomicU64,
    max_hedges: AtomicU32,
    sketch: LatencySketch,
    budget: RetryBudget,
    clock: SharedClock,
    hub: Hub,
    calls: AtomicU64,
    hedges: AtomicU64,
    won: AtomicU64,
}

const PERCENTILE: u64 = u64::MAX;

impl Hedge {
    /// A hedge named `name` on the process default clock.
    pub fn new(name: impl Into<Arc<str>>, config: HedgeConfig) -> Self {
        Self::with_clock(name, config, default_clock())
    }

    /// A hedge named `name` reading `clock` for its latencies and its budget's window.
    pub fn with_clock(name: impl Into<Arc<str>>, config: HedgeConfig, clock: SharedClock) -> Self {
        let name = name.into();
        let budget = RetryBudget::with_clock(name.clone(), config.budget().clone(), clock.clone());
        let hedge = Hedge {
            name,
            fixed_nanos: AtomicU64::new(PERCENTILE),
            max_hedges: AtomicU32::new(config.max_hedges()),
            sketch: LatencySketch::new(0.95),
            budget,
            clock,
            hub: Hub::global().clone(),
            calls: AtomicU64::new(0),
            hedges: AtomicU64::new(0),
            won: AtomicU64::new(0),
            config: Mutex::new(config.clone()),
        };
        hedge.store_hot(&config);
        hedge
    }

    pub(crate) fn with_hub(mut self, hub: Hub) -> Self {
        self.hub = hub;
        self
    }

    fn store_hot(&self, config: &HedgeConfig) {
        match config.delay() {
            HedgeDelay::Fixed(d) => self.fixed_nanos.store(as_nanos(d), Ordering::Relaxed),
            HedgeDelay::Percentile(p) => {
                self.sketch.set_quantile(p / 100.0);
                self.fixed_nanos.store(PERCENTILE, Ordering::Relaxed);
            }
        }
        self.max_hedges.store(config.max_hedges(), Ordering::Relaxed);
    }

    /// The hedge's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The current configuration.
    pub fn config(&self) -> HedgeConfig {
        self.config.lock().clone()
    }

    /// Replaces the configuration, keeping the counters and the recorded latencies.
    pub fn reconfigure(&self, config: HedgeConfig) {
        let mut current = self.config.lock();
        self.budget.reconfigure(config.budget().clone());
        self.store_hot(&config);
        *current = config;
    }

    /// Zeroes the counters, forgets the latencies and empties the budget's window.
    pub fn reset(&self) {
        self.sketch.reset();
        self.budget.reset();
        self.calls.store(0, Ordering::Relaxed);
        self.hedges.store(0, Ordering::Relaxed);
        self.won.store(0, Ordering::Relaxed);
    }

    /// How long a call made now gives its attempts before the next hedge: the fixed
    /// delay, or the percentile of recent latencies (`None` until enough are recorded).
    pub fn delay(&self) -> Option<Duration> {
        match self.fixed_nanos.load(Ordering::Relaxed) {
            PERCENTILE => self.sketch.percentile(),
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// The counters now.
    pub fn stats(&self) -> HedgeStats {
        HedgeStats {
            name: self.name.to_string(),
            calls: self.calls.load(Ordering::Relaxed),
            hedges: self.hedges.load(Ordering::Relaxed),
            hedges_won: self.won.load(Ordering::Relaxed),
            budget_refusals: self.budget.stats().exhausted,
            delay_secs: self.delay().map(|d| d.as_secs_f64()),
            latencies_recorded: self.sketch.recorded(),
        }
    }

    // ----- the decisions the drivers take ----------------------------------------------

    /// A call starts: counted, and deposited into the budget. Returns the delay before
    /// its first hedge and the time it started.
    pub(crate) fn begin(&self) -> (Option<Duration>, Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.budget.deposit();
        let delay = if self.max_hedges.load(Ordering::Relaxed) == 0 { None } else { self.delay() };
        (delay, self.clock.now())
    }

    /// Whether hedge number `hedge` (1-based) of a call started at `start` may start now:
    /// within `max_hedges` and the budget. A started hedge is counted and reported.
    pub(crate) fn try_hedge(&self, hedge: u32, start: Duration) -> bool {
        if hedge > self.max_hedges.load(Ordering::Relaxed) || !self.budget.try_withdraw() {
            return false;
        }
        self.hedges.fetch_add(1, Ordering::Relaxed);
        self.hub.report(Layer::Hedge, &self.name, Interest::RETRIES, tracing::Level::DEBUG, || {
            let now = self.clock.now();
            (now, EventKind::HedgeStarted { hedge, after: now.saturating_sub(start) })
        });
        true
    }

    /// The first attempt of a call started at `start` answered (either way): its latency
    /// goes into the percentile. A first attempt cancelled because a hedge won is not
    /// recorded.
    pub(crate) fn first_answered(&self, start: Duration) {
        self.sketch.record(self.clock.now().saturating_sub(start));
    }

    /// Attempt `attempt` (0 is the first, then the hedges) of a call started at `start`
    /// succeeded first.
    pub(crate) fn won(&self, attempt: u32, start: Duration) {
        if attempt == 0 {
            return;
        }
        self.won.fetch_add(1, Ordering::Relaxed);
        self.hub.report(Layer::Hedge, &self.name, Interest::RETRIES, tracing::Level::DEBUG, || {
            let now = self.clock.now();
            (now, EventKind::HedgeWon { attempt, after: now.saturating_sub(start) })
        });
    }

    // ----- the async driver -------------------------------------------------------------

    /// Run the future `op()` makes; while no attempt has succeeded, start another one
    /// after each [delay](Self::delay), within `max_hedges` and the budget. The first
    /// `Ok` is returned and the other attempts are dropped. An `Err` is returned once no
    /// attempt is left in flight (the last one to fail); an attempt that fails does not
    /// start a hedge by itself (that is a retry's job).
    ///
    /// The first attempt is polled in place: a call whose first attempt answers before
    /// the delay takes no lock and allocates nothing.
    #[cfg(feature = "tokio")]
    pub async fn call_async<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        drive::run(self, op).await
    }
}

impl std::fmt::Debug for Hedge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hedge")
            .field("name", &self.name)
            .field("config", &*self.config.lock())
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(feature = "tokio")]
mod drive {
    //! The async driver: the first attempt polled in place, hedges in boxes started by a
    //! timer.

    use std::future::{Future, poll_fn};
    use std::pin::{Pin, pin};
    use std::task::Poll;

    use super::Hedge;

    pub(super) async fn run<T, E, F, Fut>(hedge: &Hedge, mut op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let (delay, start) = hedge.begin();
        let mut first = pin!(op());
        let Some(delay) = delay else {
            let r = first.await;
            hedge.first_answered(start);
            return r;
        };
        let mut timer = pin!(tokio::time::sleep(delay));
        let mut first_done = false;
        let mut hedges: Vec<Option<Pin<Box<Fut>>>> = Vec::new();
        let mut in_flight = 1usize;
        let mut hedging = true;
        let mut last_err = None;
        poll_fn(|cx| {
            loop {
                if !first_done && let Poll::Ready(r) = first.as_mut().poll(cx) {
                    first_done = true;
                    hedge.first_answered(start);
                    match r {
                        Ok(v) => {
                            hedge.won(0, start);
                            return Poll::Ready(Ok(v));
                        }
                        Err(e) => {
                            in_flight -= 1;
                            last_err = Some(e);
                        }
                    }
                }
                for (i, slot) in hedges.iter_mut().enumerate() {
                    let Some(f) = slot else { continue };
                    if let Poll::Ready(r) = f.as_mut().poll(cx) {
                        *slot = None;
                        match r {
                            Ok(v) => {
                                hedge.won(i as u32 + 1, start);
                                return Poll::Ready(Ok(v));
                            }
                            Err(e) => {
                                in_flight -= 1;
                                last_err = Some(e);
                            }
                        }
                    }
                }
                if in_flight == 0
                    && let Some(e) = last_err.take()
                {
                    return Poll::Ready(Err(e));
                }
                if !hedging || timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let number = hedges.len() as u32 + 1;
                if !hedge.try_hedge(number, start) {
                    hedging = false;
                    return Poll::Pending;
                }
                hedges.push(Some(Box::pin(op())));
                in_flight += 1;
                let next = tokio::time::Instant::now() + delay;
                timer.as_mut().reset(next);
                // Loop: poll the new hedge (and the timer, re-armed) at once.
            }
        })
        .await
    }
}

#[cfg(all(test, feature = "tokio"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use tokio::time::{Instant, sleep};

    use super::*;
    use crate::retry::RetryBudgetConfig;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A hedge with a fixed delay and a budget that never refuses.
    fn fixed(delay: u64, max_hedges: u32) -> Hedge {
        let budget = RetryBudgetConfig::builder().ratio(1.0).min_retries_per_sec(1000).build();
        let config = HedgeConfig::builder()
            .delay(HedgeDelay::Fixed(ms(delay)))
            .max_hedges(max_hedges)
            .budget(budget.unwrap())
            .build();
        Hedge::new("h", config.unwrap()).with_hub(Hub::new())
    }

    /// Attempt `i` (0-based) takes `latencies[i]` ms and returns `Ok(i)` or, if listed in
    /// `failing`, `Err(i)`.
    async fn run(
        hedge: &Hedge,
        latencies: &'static [u64],
        failing: &'static [usize],
    ) -> (Result<usize, usize>, Duration, usize) {
        let start = Instant::now();
        let mut made = 0;
        let r = hedge
            .call_async(|| {
                let i = made;
                made += 1;
                async move {
                    sleep(ms(latencies[i])).await;
                    if failing.contains(&i) { Err(i) } else { Ok(i) }
                }
            })
            .await;
        (r, start.elapsed(), made)
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_attempt_within_the_delay_starts_no_hedge() {
        let hedge = fixed(50, 1);
        assert_eq!(run(&hedge, &[10, 10], &[]).await, (Ok(0), ms(10), 1));
        let s = hedge.stats();
        assert_eq!((s.calls, s.hedges, s.hedges_won), (1, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_first_attempt_is_hedged_and_the_faster_hedge_wins() {
        let hedge = fixed(50, 1);
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let _sub =
            hedge.hub.subscribe(Interest::RETRIES, move |e| seen.lock().push(e.kind.clone()));
        assert_eq!(run(&hedge, &[1_000, 20], &[]).await, (Ok(1), ms(70), 2));
        let s = hedge.stats();
        assert_eq!((s.calls, s.hedges, s.hedges_won), (1, 1, 1));
        assert_eq!(
            *events.lock(),
            vec![
                EventKind::HedgeStarted { hedge: 1, after: ms(50) },
                EventKind::HedgeWon { attempt: 1, after: ms(70) }
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_attempt_still_wins_when_it_answers_before_the_hedge() {
        let hedge = fixed(50, 1);
        assert_eq!(run(&hedge, &[60, 100], &[]).await, (Ok(0), ms(60), 2));
        assert_eq!(hedge.stats().hedges_won, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_attempt_waits_for_the_others_and_the_first_success_wins() {
        let hedge = fixed(50, 1);
        // The hedge fails at 60 ms; the first attempt succeeds at 100 ms.
        assert_eq!(run(&hedge, &[100, 10], &[1]).await, (Ok(0), ms(100), 2));
        // Both fail: the last error is returned when none is left in flight.
        assert_eq!(run(&hedge, &[100, 10], &[0, 1]).await, (Err(0), ms(100), 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_before_the_delay_returns_at_once_without_a_hedge() {
        let hedge = fixed(50, 1);
        assert_eq!(run(&hedge, &[10, 10], &[0]).await, (Err(0), ms(10), 1));
        assert_eq!(hedge.stats().hedges, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn hedges_start_one_delay_apart_up_to_max_hedges() {
        let hedge = fixed(50, 2);
        // Attempts start at 0, 50 and 100 ms; the third answers first, at 110 ms.
        assert_eq!(run(&hedge, &[1_000, 1_000, 10, 0], &[]).await, (Ok(2), ms(110), 3));
        // Nobody answers early: no fourth attempt.
        assert_eq!(run(&hedge, &[300, 300, 300, 0], &[]).await, (Ok(0), ms(300), 3));
        assert_eq!(hedge.stats().hedges, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn the_losing_attempts_are_dropped() {
        struct Guard(Arc<AtomicUsize>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let hedge = fixed(50, 2);
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut made = 0u64;
        let r: Result<u64, ()> = hedge
            .call_async(|| {
                made += 1;
                let guard = Guard(dropped.clone());
                let took = if made == 2 { 10 } else { 1_000 };
                async move {
                    sleep(ms(took)).await;
                    drop(guard);
                    Ok(made)
                }
            })
            .await;
        assert_eq!(r, Ok(2));
        // The winner finished; the first attempt and nothing else was dropped unfinished,
        // and the second hedge never started (the winner answered at 60 ms, before 100 ms).
        assert_eq!((made, dropped.load(Ordering::Relaxed)), (2, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_bounds_the_extra_load() {
        // The default budget: 10 % of the calls of the window, no floor.
        let config = HedgeConfig::builder().delay(HedgeDelay::Fixed(ms(10))).build().unwrap();
        let hedge = Hedge::new("slow", config).with_hub(Hub::new());
        for _ in 0..200 {
            // Uniformly slow: every call would be hedged.
            let _ = run(&hedge, &[20, 20], &[]).await;
        }
        let s = hedge.stats();
        assert_eq!(s.calls, 200);
        // 200 calls within the 10 s window: 10 % of them.
        assert_eq!(s.hedges, 20, "{s:?}");
        assert_eq!(s.hedges + s.budget_refusals, 200);
    }

    #[tokio::test(start_paused = true)]
    async fn a_percentile_delay_waits_for_enough_latencies_then_follows_them() {
        let config = HedgeConfig::builder()
            .delay(HedgeDelay::Percentile(90.0))
            .budget(RetryBudgetConfig::builder().ratio(1.0).build().unwrap())
            .build()
            .unwrap();
        let hedge = Hedge::new("p90", config).with_hub(Hub::new());
        assert_eq!(hedge.delay(), None);
        for _ in 0..19 {
            assert_eq!(run(&hedge, &[10, 10], &[]).await.2, 1);
        }
        assert_eq!(hedge.delay(), None, "19 latencies are not enough");
        // Slow calls before the percentile is known are not hedged.
        assert_eq!(run(&hedge, &[500, 10], &[]).await, (Ok(0), ms(500), 1));
        let delay = hedge.delay().unwrap();
        assert!(delay > ms(10) && delay < ms(12), "{delay:?}");
        // Now a slow first attempt is hedged at the p90 of what was seen.
        let (r, took, made) = run(&hedge, &[500, 10], &[]).await;
        assert_eq!((r, made), (Ok(1), 2));
        // The timer fires on a millisecond tick.
        assert!(took >= delay + ms(10) && took <= delay + ms(11), "{took:?}");
        assert_eq!(hedge.stats().latencies_recorded, 20, "the cancelled first attempt is not");
    }

    #[test]
    fn reconfigure_and_reset() {
        let hedge = Hedge::new("r", HedgeConfig::default());
        let config = HedgeConfig::builder().delay(HedgeDelay::Fixed(ms(7))).build().unwrap();
        hedge.reconfigure(config.clone());
        assert_eq!((hedge.config(), hedge.delay()), (config, Some(ms(7))));
        hedge.reset();
        assert_eq!(hedge.stats().calls, 0);
    }
}
