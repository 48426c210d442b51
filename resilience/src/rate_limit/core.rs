//! What direct and keyed limiters share: limits, policy, clock, and the acquire logic
//! around one [`Bucket`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tracing::debug;

use super::bucket::{Bucket, Limits, Params, Take};
use super::config::{OnLimit, RateLimitConfig};
use super::rate::Rate;
use super::stats::{Tally, Totals};
use crate::clock::{ClockRef, SharedClock, as_nanos};
use crate::events::{EventKind, Hub, Interest, Layer};
use crate::{ConfigError, Error};

/// The decision for one call.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Granted now.
    Go,
    /// Granted once `wait` has passed; the reservation set TAT to `tat` (worth `inc`).
    Sleep { wait: Duration, tat: u64, inc: u64 },
    /// Refused.
    Reject(Error),
    /// The bucket was evicted: look the key up again.
    Evicted,
}

pub(crate) struct Core {
    pub(crate) name: Arc<str>,
    pub(crate) clock: ClockRef,
    pub(crate) params: Params,
    pub(crate) config: Mutex<RateLimitConfig>,
    pub(crate) totals: Totals,
    /// Where this limiter reports its events.
    pub(crate) hub: Hub,
}

impl Core {
    /// The core of a direct limiter.
    pub(crate) fn new(name: Arc<str>, config: RateLimitConfig, clock: SharedClock) -> Core {
        Core::with_totals(name, config, clock, Totals::default())
    }

    /// The core of a keyed limiter: its grant count has no inline slot, which calls on
    /// distinct keys would otherwise all write.
    pub(crate) fn keyed(name: Arc<str>, config: RateLimitConfig, clock: SharedClock) -> Core {
        Core::with_totals(name, config, clock, Totals::without_inline_slot())
    }

    fn with_totals(
        name: Arc<str>,
        config: RateLimitConfig,
        clock: SharedClock,
        totals: Totals,
    ) -> Core {
        Core {
            name,
            clock: ClockRef::of(clock),
            params: Params::new(Limits::of(&config)),
            config: Mutex::new(config),
            totals,
            hub: Hub::default(),
        }
    }

    /// Report an event about `key` (for a keyed limiter).
    pub(crate) fn report(
        &self,
        key: Option<&dyn fmt::Debug>,
        topic: Interest,
        kind: impl FnOnce() -> EventKind,
    ) {
        self.hub.report_key(
            Layer::RateLimiter,
            &self.name,
            key,
            topic,
            tracing::Level::DEBUG,
            || (self.clock.now(), kind()),
        );
    }

    /// Counts a call granted without waiting. Grants are counted, not reported as
    /// events: the hottest path of a limiter stays a load, a compare-and-swap and a count
    /// (metrics read the count from the limiter's stats).
    #[inline(always)]
    pub(crate) fn granted(&self, tally: Tally<'_>) {
        tally.granted();
    }

    #[inline(always)]
    pub(crate) fn now(&self) -> u64 {
        self.clock.now_nanos()
    }

    /// The hot path of `try_acquire` on a direct limiter's bucket (never evicted): takes
    /// `cost` permits if they are available now. `Ok` when granted (and counted);
    /// `Err(Some(wait))` when the bucket would have to refill for `wait` nanoseconds
    /// (nothing consumed, nothing counted); `Err(None)` when the call needs
    /// [`plan`](Self::plan) (a zero cost, a cost above the burst).
    #[inline(always)]
    pub(crate) fn take_now(
        &self,
        bucket: &Bucket,
        tally: Tally<'_>,
        cost: u32,
    ) -> Result<(), Option<u64>> {
        self.take_now_in::<false>(bucket, tally, cost)
    }

    /// [`take_now`](Self::take_now) on a bucket that is evicted when `EVICTABLE` (a keyed
    /// limiter's): an evicted bucket gives `Err(Some(u64::MAX))` (the caller looks the
    /// key up again through [`plan`](Self::plan)).
    #[inline(always)]
    pub(crate) fn take_now_in<const EVICTABLE: bool>(
        &self,
        bucket: &Bucket,
        tally: Tally<'_>,
        cost: u32,
    ) -> Result<(), Option<u64>> {
        if cost == 0 {
            return Err(None);
        }
        let l = self.params.load();
        let inc = l.cost(cost);
        // A cost above the burst is always refused by the bucket: told apart only then.
        match bucket.take_now::<EVICTABLE>(self.now(), inc, l.tau) {
            Ok(()) => {
                self.granted(tally);
                Ok(())
            }
            Err(_) if inc > l.tau => Err(None),
            Err(wait) => Err(Some(wait)),
        }
    }

    /// The rejection `try_acquire` returns after [`take_now`](Self::take_now) found
    /// `wait` nanoseconds to go.
    #[cold]
    #[inline(never)]
    pub(crate) fn reject_now(
        &self,
        tally: Tally<'_>,
        wait: u64,
        key: Option<&dyn fmt::Debug>,
    ) -> Error {
        self.rejection(tally, wait, key, "no permit")
    }

    /// Decides a call of `cost` on `bucket`. With `may_wait` false (`try_acquire`) the
    /// policy is not consulted: no permit means a rejection.
    #[inline]
    pub(crate) fn plan(
        &self,
        bucket: &Bucket,
        tally: Tally<'_>,
        cost: u32,
        may_wait: bool,
        key: Option<&dyn fmt::Debug>,
    ) -> Plan {
        if cost == 0 {
            self.granted(tally);
            return Plan::Go;
        }
        let l = self.params.load();
        let inc = l.cost(cost);
        if inc > l.tau {
            return Plan::Reject(self.cost_error(tally, cost, l.burst(), key));
        }
        let now = self.now();
        match bucket.take(now, inc, l.tau, 0) {
            Take::Granted { .. } => {
                self.granted(tally);
                Plan::Go
            }
            Take::Evicted => Plan::Evicted,
            Take::Denied { wait } if !may_wait => {
                Plan::Reject(self.rejection(tally, wait, key, "no permit"))
            }
            Take::Denied { wait } => self.plan_wait(bucket, tally, now, inc, l, wait, key),
        }
    }

    #[cold]
    #[allow(clippy::too_many_arguments)]
    fn plan_wait(
        &self,
        bucket: &Bucket,
        tally: Tally<'_>,
        now: u64,
        inc: u64,
        l: Limits,
        wait: u64,
        key: Option<&dyn fmt::Debug>,
    ) -> Plan {
        let (on_limit, max_wait, max_queue) = {
            let c = self.config.lock();
            (c.on_limit(), c.max_wait(), c.max_queue())
        };
        // A wait that would end past the deadline of the call is refused like one past
        // `max_wait`: at once, with the time until the permit as `retry_after`.
        let (max_wait, refusal) = match crate::deadline::remaining() {
            Some(left) if left < max_wait => (left, "wait would pass the deadline of the call"),
            _ => (max_wait, "wait would exceed max_wait"),
        };
        let limit = match on_limit {
            OnLimit::Reject => {
                return Plan::Reject(self.rejection(tally, wait, key, "no permit"));
            }
            OnLimit::Wait => None,
            OnLimit::Queue => Some(max_queue),
        };
        if !tally.enter_wait(limit) {
            return Plan::Reject(self.rejection(tally, wait, key, "wait queue full"));
        }
        match bucket.take(now, inc, l.tau, as_nanos(max_wait)) {
            Take::Granted { wait: 0, .. } => {
                tally.leave_wait();
                self.granted(tally);
                Plan::Go
            }
            Take::Granted { wait, tat } => {
                tally.waited();
                let wait = Duration::from_nanos(wait);
                self.report(key, Interest::WAITS, || EventKind::Waited { waited: wait });
                Plan::Sleep { wait, tat, inc }
            }
            Take::Denied { wait } => {
                tally.leave_wait();
                Plan::Reject(self.rejection(tally, wait, key, refusal))
            }
            Take::Evicted => {
                tally.leave_wait();
                Plan::Evicted
            }
        }
    }

    pub(crate) fn rejection(
        &self,
        tally: Tally<'_>,
        wait: u64,
        key: Option<&dyn fmt::Debug>,
        what: &'static str,
    ) -> Error {
        tally.rejected();
        let wait = Duration::from_nanos(wait);
        let retry_after = Some(wait);
        self.report(key, Interest::REJECTIONS, || EventKind::Rejected {
            retry_after,
            reason: what,
        });
        Error::rate_limited(self.name.clone(), wait)
    }

    /// A `cost` above the burst: counted, logged, and a `Config` error.
    #[cold]
    pub(crate) fn cost_error(
        &self,
        tally: Tally<'_>,
        cost: u32,
        burst: u32,
        key: Option<&dyn fmt::Debug>,
    ) -> Error {
        tally.rejected();
        let reason = "cost exceeds the burst";
        self.report(key, Interest::REJECTIONS, || EventKind::Rejected {
            retry_after: None,
            reason,
        });
        Error::Config(ConfigError::new(
            "cost",
            format!(
                "must be at most the burst of rate limiter `{}` ({burst}) (got {cost}); such a call can never be granted",
                self.name,
            ),
        ))
    }

    /// Runs a plan on the current thread: sleeps on the clock when told to wait.
    /// `None`: the bucket was evicted, retry the lookup.
    pub(crate) fn block(&self, plan: Plan, tally: Tally<'_>) -> Option<Result<(), Error>> {
        match plan {
            Plan::Go => Some(Ok(())),
            Plan::Reject(e) => Some(Err(e)),
            Plan::Sleep { wait, .. } => {
                self.clock.sleep(wait);
                tally.leave_wait();
                tally.granted();
                Some(Ok(()))
            }
            Plan::Evicted => None,
        }
    }

    /// Sleeps for a reservation on tokio's timer. If the future is dropped before it
    /// completes, the reservation is given back when no later caller reserved after it.
    #[cfg(feature = "tokio")]
    pub(crate) async fn sleep_async(
        &self,
        bucket: &Bucket,
        tally: Tally<'_>,
        wait: Duration,
        tat: u64,
        inc: u64,
    ) {
        let mut guard = WaitGuard { core: self, bucket, tally, tat, inc, done: false };
        tokio::time::sleep(wait).await;
        guard.done = true;
    }

    /// The current config.
    pub(crate) fn config(&self) -> RateLimitConfig {
        self.config.lock().clone()
    }

    /// Installs `config` and returns the old and new limits, for the caller to rescale
    /// its buckets while still holding the config lock (`apply`).
    pub(crate) fn install(&self, config: RateLimitConfig, apply: impl FnOnce(Limits, Limits)) {
        let mut c = self.config.lock();
        let old = self.params.load();
        let new = Limits::of(&config);
        *c = config;
        self.params.store(new);
        if old != new {
            apply(old, new);
        }
    }

    /// The config with a new rate, validated.
    pub(crate) fn config_with_rate(&self, rate: Rate) -> Result<RateLimitConfig, ConfigError> {
        self.config.lock().with_rate(rate)
    }

    /// The config with a new burst, validated.
    pub(crate) fn config_with_burst(&self, burst: u32) -> Result<RateLimitConfig, ConfigError> {
        self.config.lock().with_burst(burst)
    }
}

/// Leaves the wait queue when the waiter finishes or is dropped.
#[cfg(feature = "tokio")]
struct WaitGuard<'a> {
    core: &'a Core,
    bucket: &'a Bucket,
    tally: Tally<'a>,
    tat: u64,
    inc: u64,
    done: bool,
}

#[cfg(feature = "tokio")]
impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.tally.leave_wait();
        if self.done {
            self.tally.granted();
        } else if self.bucket.give_back(self.tat, self.inc) {
            debug!(name = %self.core.name, "cancelled waiter gave its reservation back");
        } else {
            debug!(name = %self.core.name, "cancelled waiter's reservation stays consumed");
        }
    }
}

impl Core {
    /// Applies parsed headers to `bucket`. `adopt` installs a new burst (direct limiters)
    /// or is `None` (keyed limiters share their burst between keys).
    pub(crate) fn apply_headers(
        &self,
        bucket: &Bucket,
        parsed: super::headers::Parsed,
        adopt: Option<&dyn Fn(u32) -> Result<(), ConfigError>>,
    ) -> super::headers::SyncReport {
        use super::headers::{HeaderError, SyncReport};
        let mut report = SyncReport { errors: parsed.errors, ..SyncReport::default() };
        if let Some(cl) = parsed.call_limit {
            let mut ok = true;
            let differs = cl.capacity != self.params.load().burst();
            let mut adopted = false;
            if let (Some(adopt), true) = (adopt, differs) {
                adopted = adopt(cl.capacity).is_ok();
                if !adopted {
                    ok = false;
                    report.errors.push(HeaderError::unusable(
                        super::headers::SHOPIFY_CALL_LIMIT,
                        "capacity cannot be used as this limiter's burst",
                        cl,
                    ));
                }
            }
            if ok {
                bucket.set_available(
                    self.now(),
                    u64::from(cl.remaining()),
                    self.params.load(),
                    adopted,
                );
                report.call_limit = Some(cl);
            }
        }
        if let Some(r) = parsed.remaining {
            bucket.set_available(self.now(), r, self.params.load(), false);
            report.remaining = Some(r);
        }
        report.reset = parsed.reset;
        report.limit = parsed.limit;
        let retry_after = parsed.retry_after.map(|d| (d, super::headers::RETRY_AFTER));
        let pause = match (retry_after, parsed.reset_pause) {
            (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
        if let Some((mut d, header)) = pause {
            let max_pause = self.config.lock().max_pause();
            if d > max_pause {
                report.errors.push(HeaderError::unusable(
                    header,
                    "pause longer than this limiter's `max_pause`: cut to `max_pause`",
                    format_args!("{d:?}"),
                ));
                d = max_pause;
            }
            self.pause_for(bucket, d);
            report.paused_for = Some(d);
        }
        if !report.errors.is_empty() {
            debug!(name = %self.name, errors = report.errors.len(), "rate limit: unreadable headers ignored");
        }
        report
    }

    pub(crate) fn pause_for(&self, bucket: &Bucket, d: Duration) {
        let now = self.now();
        self.pause_at(bucket, now, now.saturating_add(as_nanos(d)));
    }

    pub(crate) fn pause_at(&self, bucket: &Bucket, now: u64, at: u64) {
        if at > now {
            debug!(name = %self.name, wait = ?Duration::from_nanos(at - now), "rate limit: paused");
        }
        bucket.pause_until(now, at, self.params.load());
    }
}
