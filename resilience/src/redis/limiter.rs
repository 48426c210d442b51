//! [`RemoteBucket`]: a limiter's bucket kept in Redis, one atomic script per acquire.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::backend::{RedisBackend, Unavailable};
use super::scripts;
use crate::clock::as_nanos;
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
    backend: Backend,
    fail: FailMode,
    /// `{prefix}:rl:{name}`; keyed buckets append `:{key:?}`.
    key: OnceLock<String>,
}

/// The backend an instance uses: given at construction, or the process-wide one resolved
/// on first use.
pub(crate) enum Backend {
    Given(Arc<RedisBackend>),
    Global(OnceLock<Arc<RedisBackend>>),
}

impl Backend {
    /// The backend; a missing global one is looked for again on the next call.
    pub(crate) fn get(&self) -> Result<&Arc<RedisBackend>, Unavailable> {
        match self {
            Backend::Given(b) => Ok(b),
            Backend::Global(cell) => match cell.get() {
                Some(b) => Ok(b),
                None => {
                    let b = super::global()?;
                    Ok(cell.get_or_init(|| b))
                }
            },
        }
    }

    /// The backend an instance with `config`'s backend uses.
    pub(crate) fn for_config(
        backend: crate::Backend,
        given: Option<Arc<RedisBackend>>,
    ) -> Option<(Backend, FailMode)> {
        match backend {
            crate::Backend::Local => None,
            crate::Backend::Redis(fail) => {
                Some((given.map_or_else(|| Backend::Global(OnceLock::new()), Backend::Given), fail))
            }
        }
    }
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
        let (backend, fail) = Backend::for_config(config.backend(), given)?;
        Some(Box::new(RemoteBucket { backend, fail, key: OnceLock::new() }))
    }

    fn base_key(&self, backend: &RedisBackend, name: &str) -> &str {
        self.key.get_or_init(|| format!("{}:rl:{name}", backend.prefix()))
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
        let answer = self.backend.get().and_then(|backend| {
            let k = redis_key(self.base_key(backend, &core.name), key);
            backend.eval_blocking(scripts::limiter(), &[&k], &ask.args)
        });
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
                let k = redis_key(
                    self.base_key(backend, &core.name),
                    key.map(|k| k as &dyn fmt::Debug),
                );
                backend.eval_async(scripts::limiter(), &[&k], &ask.args).await
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
    cost: u32,
    args: [i64; 4],
    /// Entered the local wait count (queue policy).
    queued: bool,
}

enum Decided {
    Sleep(Duration),
    Done(Result<(), Error>),
    Local,
}

impl<'a> Ask<'a> {
    /// `Err` with the result when Redis need not be asked: a zero cost, a cost above
    /// the burst, a full queue.
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
        let queued = matches!(may, May::Wait) && config.on_limit() == OnLimit::Queue;
        if queued && !tally.enter_wait(Some(config.max_queue())) {
            return Err(Err(core.rejection(tally, cost, 0, key, "rejected: wait queue full")));
        }
        let interval = i64::try_from(as_nanos(config.rate().interval())).unwrap_or(i64::MAX);
        let args = [interval, i64::from(config.burst()), i64::from(cost), max_wait];
        Ok(Ask { core, tally, cost, args, queued })
    }

    fn decide(
        &self,
        fail: FailMode,
        answer: Result<Vec<i64>, Unavailable>,
        key: Option<&dyn fmt::Debug>,
    ) -> Decided {
        let (core, tally, cost) = (self.core, self.tally, self.cost);
        match answer.as_deref() {
            Ok([1, 0, ..]) => {
                self.leave();
                tally.granted();
                Decided::Done(Ok(()))
            }
            Ok([1, wait, ..]) => {
                tally.waited();
                if !self.queued {
                    tally.enter_wait(None);
                }
                let wait = Duration::from_micros(u64::try_from(*wait).unwrap_or(0));
                crate::rate_limit::core::log(
                    &core.name,
                    key,
                    cost,
                    wait,
                    "waiting for a shared slot",
                );
                Decided::Sleep(wait)
            }
            Ok([_, wait, ..]) => {
                self.leave();
                let wait = u64::try_from(*wait).unwrap_or(0).saturating_mul(1000);
                Decided::Done(Err(core.rejection(
                    tally,
                    cost,
                    wait,
                    key,
                    "rejected by the shared bucket",
                )))
            }
            Ok(other) => self.unavailable(fail, &format!("unexpected script reply {other:?}")),
            Err(reason) => self.unavailable(fail, reason),
        }
    }

    fn unavailable(&self, fail: FailMode, reason: &str) -> Decided {
        self.leave();
        match fail {
            FailMode::Open => Decided::Local,
            FailMode::Closed => {
                self.tally.rejected();
                Decided::Done(Err(Error::backend_unavailable(self.core.name.clone(), reason)))
            }
        }
    }

    fn leave(&self) {
        if self.queued {
            self.tally.leave_wait();
        }
    }

    fn finish_wait(&self) {
        self.tally.leave_wait();
        self.tally.granted();
    }
}

/// The Redis key of a bucket: the limiter's, or the limiter's plus the key's `Debug` form.
fn redis_key(base: &str, key: Option<&dyn fmt::Debug>) -> String {
    match key {
        Some(k) => format!("{base}:{k:?}"),
        None => base.to_owned(),
    }
}

/// Leaves the wait count if a waiting future is dropped.
struct LeaveOnDrop<'a, 'b>(&'a Ask<'b>);

impl Drop for LeaveOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.tally.leave_wait();
    }
}
