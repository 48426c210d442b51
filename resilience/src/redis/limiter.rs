//! [`RemoteBucket`]: a limiter's bucket kept in Redis, one atomic script per acquire.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::backend::{RedisBackend, Unavailable};
use super::handle::BackendHandle;
use super::scripts;
use crate::clock::as_nanos;
use crate::events::{EventKind, Interest};
use crate::rate_limit::OnLimit;
use crate::rate_limit::core::Core;
use crate::rate_limit::stats::Tally;
use crate::{Error, FailMode};

/// What the caller does next.
pub(crate) enum Remote {
    /// Redis decided (granted, after any wait, or refused).
    Done(Result<(), Error>),
    /// Redis is unavailable and the instance fails open: use the local bucket.
    Local,
}

/// The shared side of a Redis-backed limiter (direct or keyed).
pub(crate) struct RemoteBucket {
    backend: BackendHandle,
    fail: FailMode,
    /// `{prefix}:rl:{name}`; keyed buckets append `:{key:?}`.
    key: OnceLock<String>,
}

impl fmt::Debug for RemoteBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteBucket").field("fail", &self.fail).finish_non_exhaustive()
    }
}

/// How long the caller may wait for its permits.
#[derive(Clone, Copy)]
pub(crate) enum May {
    /// `try_acquire`: never.
    NotWait,
    /// `acquire`: per the limiter's policy.
    Wait,
}

impl RemoteBucket {
    /// The shared bucket of a limiter built with `config` (`None` for a local one), on
    /// `given` or else the process-wide backend.
    pub(crate) fn for_config(
        config: &crate::RateLimitConfig,
        given: Option<Arc<RedisBackend>>,
    ) -> Option<Box<Self>> {
        let (backend, fail) = BackendHandle::for_config(config.backend(), given)?;
        Some(Box::new(RemoteBucket { backend, fail, key: OnceLock::new() }))
    }

    fn base_key(&self, backend: &RedisBackend, name: &str) -> &str {
        self.key.get_or_init(|| format!("{}:rl:{name}", backend.prefix()))
    }

    /// Asks Redis (blocking): the script's reply, or why Redis did not answer.
    fn ask_blocking(
        &self,
        name: &str,
        key: Option<&dyn fmt::Debug>,
        args: &[i64],
    ) -> Result<i64, Unavailable> {
        let backend = self.backend.get()?;
        let base = self.base_key(backend, name);
        match key {
            None => backend.eval_blocking(scripts::limiter(), &[base], args),
            Some(k) => backend.eval_blocking(scripts::limiter(), &[&keyed(base, k)], args),
        }
    }

    /// Blocking acquire: one script round trip, then a sleep on the limiter's clock if
    /// Redis reserved a later slot.
    pub(crate) fn acquire_blocking(
        &self,
        core: &Core,
        tally: Tally<'_>,
        key: Option<&dyn fmt::Debug>,
        cost: u32,
        may: May,
    ) -> Remote {
        let ask = match Ask::new(core, tally, key, cost, may) {
            Ok(ask) => ask,
            Err(done) => return Remote::Done(done),
        };
        let answer = self.ask_blocking(&core.name, key, &ask.args);
        match ask.decide(self.fail, answer, key) {
            Decided::Sleep(wait) => {
                core.clock.sleep(wait);
                ask.finish_wait();
                Remote::Done(Ok(()))
            }
            Decided::Done(r) => Remote::Done(r),
            Decided::Local => Remote::Local,
        }
    }

    /// Async acquire: one script round trip, then a sleep on tokio's timer if Redis
    /// reserved a later slot. A dropped waiter's reservation stays consumed.
    pub(crate) async fn acquire_async(
        &self,
        core: &Core,
        tally: Tally<'_>,
        key: Option<&(dyn fmt::Debug + Sync)>,
        cost: u32,
    ) -> Remote {
        // Only `Sync` references live across the await.
        let ask = match Ask::new(core, tally, key.map(|k| k as &dyn fmt::Debug), cost, May::Wait) {
            Ok(ask) => ask,
            Err(done) => return Remote::Done(done),
        };
        let answer = match self.backend.get() {
            Ok(backend) => {
                let base = self.base_key(backend, &core.name);
                match key {
                    None => backend.eval_async(scripts::limiter(), &[base], &ask.args).await,
                    Some(k) => {
                        let k = keyed(base, k);
                        backend.eval_async(scripts::limiter(), &[&k], &ask.args).await
                    }
                }
            }
            Err(e) => Err(e),
        };
        match ask.decide(self.fail, answer, key.map(|k| k as &dyn fmt::Debug)) {
            Decided::Sleep(wait) => {
                let guard = LeaveOnDrop(&ask);
                tokio::time::sleep(wait).await;
                std::mem::forget(guard);
                ask.finish_wait();
                Remote::Done(Ok(()))
            }
            Decided::Done(r) => Remote::Done(r),
            Decided::Local => Remote::Local,
        }
    }
}

/// One acquire in flight.
struct Ask<'a> {
    core: &'a Core,
    tally: Tally<'a>,
    /// The script's ARGV: increment (ns), capacity (ns), max_wait (µs), ttl (ms).
    args: [i64; 4],
    /// The process's queue was full: the call was refused a reservation.
    queue_full: bool,
}

enum Decided {
    Sleep(Duration),
    Done(Result<(), Error>),
    Local,
}

impl<'a> Ask<'a> {
    /// `Err` with the result when Redis need not be asked: a zero cost, a cost above
    /// the burst.
    fn new(
        core: &'a Core,
        tally: Tally<'a>,
        key: Option<&dyn fmt::Debug>,
        cost: u32,
        may: May,
    ) -> Result<Self, Result<(), Error>> {
        let config = core.config();
        if cost == 0 {
            tally.granted();
            return Err(Ok(()));
        }
        if cost > config.burst() {
            return Err(Err(core.cost_error(tally, cost, config.burst(), key)));
        }
        let max_wait: i64 = match (may, config.on_limit()) {
            (May::NotWait, _) | (_, OnLimit::Reject) => 0,
            (May::Wait, _) => config
                .max_wait()
                .map_or(-1, |w| i64::try_from(w.as_micros()).unwrap_or(i64::MAX).max(1)),
        };
        // `Queue`: while `max_queue` callers of this process wait, a call takes only what
        // is free now. Nobody counts as waiting before Redis has reserved a slot for it.
        let queue_full = matches!(may, May::Wait)
            && config.on_limit() == OnLimit::Queue
            && tally.waiting() >= u64::try_from(config.max_queue()).unwrap_or(u64::MAX);
        let max_wait = if queue_full { 0 } else { max_wait };
        // In nanoseconds of the bucket's time: what `cost` permits add to the arrival
        // time, and how far ahead of now it may run (a full burst). Both are at most
        // 365 days (the config's bound), well inside an i64.
        let interval = u128::from(as_nanos(config.rate().interval()));
        let inc = interval * u128::from(cost);
        let cap = interval * u128::from(config.burst());
        // The key outlives a grant without a wait by at most one burst's refill time
        // (plus a millisecond for rounding): long enough to keep the reservation.
        let ttl = cap.div_ceil(1_000_000) + 1;
        let [inc, cap, ttl] = [inc, cap, ttl].map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let args = [inc, cap, max_wait, ttl];
        Ok(Ask { core, tally, args, queue_full })
    }

    fn decide(
        &self,
        fail: FailMode,
        answer: Result<i64, Unavailable>,
        key: Option<&dyn fmt::Debug>,
    ) -> Decided {
        let (core, tally) = (self.core, self.tally);
        match answer {
            Ok(0) => {
                tally.granted();
                Decided::Done(Ok(()))
            }
            Ok(wait) if wait > 0 => {
                tally.waited();
                tally.enter_wait(None);
                let wait = Duration::from_micros(wait.unsigned_abs());
                core.report(key, Interest::WAITS, || EventKind::Waited { waited: wait });
                Decided::Sleep(wait)
            }
            Ok(refused) => {
                let wait = refused.unsigned_abs().saturating_mul(1000);
                let what = if self.queue_full {
                    "rejected: wait queue full"
                } else {
                    "rejected by the shared bucket"
                };
                Decided::Done(Err(core.rejection(tally, wait, key, what)))
            }
            Err(reason) => self.unavailable(fail, &reason),
        }
    }

    fn unavailable(&self, fail: FailMode, reason: &str) -> Decided {
        match fail {
            FailMode::Open => Decided::Local,
            FailMode::Closed => {
                self.tally.rejected();
                Decided::Done(Err(Error::backend_unavailable(self.core.name.clone(), reason)))
            }
        }
    }

    fn finish_wait(&self) {
        self.tally.leave_wait();
        self.tally.granted();
    }
}

/// The Redis key of a keyed limiter's bucket: the limiter's plus the key's `Debug` form.
fn keyed(base: &str, key: &dyn fmt::Debug) -> String {
    format!("{base}:{key:?}")
}

/// Leaves the wait count if a waiting future is dropped.
struct LeaveOnDrop<'a, 'b>(&'a Ask<'b>);

impl Drop for LeaveOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.tally.leave_wait();
    }
}
