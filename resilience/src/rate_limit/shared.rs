//! A limiter whose bucket is shared through a [`StateStore`](crate::backend::StateStore):
//! the driver that asks the shared bucket, waits, counts and reports.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::config::OnLimit;
use super::core::Core;
use super::headers::SyncReport;
use super::stats::Tally;
use crate::backend::{BucketRequest, Grant, SharedBucket, StateStore, StoreError};
use crate::events::{EventKind, Interest};
use crate::{ConfigError, Error, FailMode, RateLimitConfig};

/// What the caller does next.
pub(crate) enum Remote {
    /// The shared bucket decided (granted, after any wait, or refused).
    Done(Result<(), Error>),
    /// The store is unreachable and the limiter fails open: use the local bucket.
    Local,
}

/// How long the caller may wait for its permits.
#[derive(Clone, Copy)]
pub(crate) enum May {
    /// `try_acquire`: never.
    NotWait,
    /// `acquire`: per the limiter's policy.
    Wait,
}

/// A limiter's shared bucket and what to do while its store is unreachable.
pub(crate) struct SharedLimit {
    bucket: Arc<dyn SharedBucket>,
    fail: FailMode,
}

impl fmt::Debug for SharedLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedLimit")
            .field("bucket", &self.bucket)
            .field("fail", &self.fail)
            .finish()
    }
}

impl SharedLimit {
    /// The shared bucket `store` keeps for a limiter named `name` with `config`.
    pub(crate) fn in_store(
        store: &dyn StateStore,
        name: &str,
        config: &RateLimitConfig,
    ) -> Result<Option<Self>, ConfigError> {
        let fail = crate::backend::fail_mode(config.backend());
        Ok(store.bucket(name, config)?.map(|bucket| SharedLimit { bucket, fail }))
    }

    /// The shared bucket of the process's store for `config.backend()` (`None`: local;
    /// a config the store cannot keep is logged and stays local).
    pub(crate) fn for_config(name: &str, config: &RateLimitConfig) -> Option<Self> {
        let store = crate::backend::process_store(config.backend())?;
        Self::in_store(store, name, config).unwrap_or_else(|e| {
            tracing::error!(name = %name, error = %e, "the bucket cannot be shared: it stays local");
            None
        })
    }

    /// The fast path of a direct limiter holding a lease: `cost` permits taken now from
    /// the lease, without the config lock, any allocation or I/O. `false` sends the call
    /// the whole way (waiting, refusals, renewals).
    #[inline]
    fn leased(&self, core: &Core, tally: Tally<'_>, cost: u32) -> bool {
        let l = core.params.load();
        if cost == 0 || cost > l.burst() {
            return false;
        }
        let request = BucketRequest {
            name: &core.name,
            key: None,
            cost,
            increment: Duration::from_nanos(l.cost(cost)),
            capacity: Duration::from_nanos(l.tau),
            max_wait: Duration::ZERO,
        };
        let now = matches!(self.bucket.acquire_local(&request), Some(Grant::Now));
        if now {
            core.granted(tally);
        }
        now
    }

    /// Blocking acquire: one request to the store, then a sleep on the limiter's clock
    /// if the store reserved a later slot. Kept out of line: a local limiter's hot path
    /// only tests for the handle.
    #[cold]
    #[inline(never)]
    pub(crate) fn acquire_blocking(
        &self,
        core: &Core,
        tally: Tally<'_>,
        key: Option<&dyn fmt::Debug>,
        cost: u32,
        may: May,
    ) -> Remote {
        if key.is_none() && self.leased(core, tally, cost) {
            return Remote::Done(Ok(()));
        }
        let ask = match Ask::new(core, tally, key, cost, may) {
            Ok(ask) => ask,
            Err(done) => return Remote::Done(done),
        };
        let shown = key.map(|k| format!("{k:?}"));
        let request = ask.request(shown.as_deref());
        // A lease held by this process answers without a round trip.
        let answer = match self.bucket.acquire_local(&request) {
            Some(grant) => Ok(grant),
            None => self.bucket.acquire(&request),
        };
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

    /// Async acquire: one request to the store, then a sleep on tokio's timer if the
    /// store reserved a later slot. A dropped waiter's reservation stays consumed.
    #[cfg(feature = "tokio")]
    pub(crate) async fn acquire_async(
        &self,
        core: &Core,
        tally: Tally<'_>,
        key: Option<&(dyn fmt::Debug + Sync)>,
        cost: u32,
    ) -> Remote {
        if key.is_none() && self.leased(core, tally, cost) {
            return Remote::Done(Ok(()));
        }
        // Only `Sync` references live across the await.
        let ask = match Ask::new(core, tally, key.map(|k| k as &dyn fmt::Debug), cost, May::Wait) {
            Ok(ask) => ask,
            Err(done) => return Remote::Done(done),
        };
        let shown = key.map(|k| format!("{k:?}"));
        let request = ask.request(shown.as_deref());
        // A lease held by this process answers without a round trip (nor a boxed future).
        let answer = match self.bucket.acquire_local(&request) {
            Some(grant) => Ok(grant),
            None => self.bucket.acquire_async(request).await,
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

    /// Holds the shared bucket (of `key`, for a keyed limiter) per `hold`; a store that
    /// cannot be reached is a warn event (the local bucket has been held already).
    pub(crate) fn sync(&self, core: &Core, key: Option<&dyn fmt::Debug>, hold: Hold) {
        let config = core.config();
        let interval = config.rate().interval();
        let capacity = interval.saturating_mul(config.burst());
        let ahead = match hold {
            Hold::Pause(d) => d.saturating_add(capacity.saturating_sub(interval)),
            Hold::Available(n) => {
                let free = interval.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
                capacity.saturating_sub(free)
            }
        };
        let shown = key.map(|k| format!("{k:?}"));
        let request = BucketRequest {
            name: &core.name,
            key: shown.as_deref(),
            cost: 1,
            increment: interval,
            capacity,
            max_wait: Duration::ZERO,
        };
        if let Err(e) = self.bucket.hold(&request, ahead) {
            tracing::warn!(name = %core.name, key = ?shown, reason = %e, "the shared bucket could not be re-synced: only this process's bucket was");
        }
    }

    /// Applies what a header re-sync did to the local bucket to the shared one.
    pub(crate) fn sync_report(
        &self,
        core: &Core,
        key: Option<&dyn fmt::Debug>,
        report: &SyncReport,
    ) {
        let level = [report.call_limit.map(|cl| u64::from(cl.remaining())), report.remaining];
        if let Some(n) = level.into_iter().flatten().min() {
            self.sync(core, key, Hold::Available(n));
        }
        if let Some(d) = report.paused_for {
            self.sync(core, key, Hold::Pause(d));
        }
    }
}

/// How a shared bucket is held back.
#[derive(Clone, Copy)]
pub(crate) enum Hold {
    /// Nothing granted for this long.
    Pause(Duration),
    /// At most this many permits available now.
    Available(u64),
}

/// One acquire in flight.
struct Ask<'a> {
    core: &'a Core,
    tally: Tally<'a>,
    cost: u32,
    increment: Duration,
    capacity: Duration,
    max_wait: Duration,
    /// The process's queue was full: the call was refused a reservation.
    queue_full: bool,
}

enum Decided {
    Sleep(Duration),
    Done(Result<(), Error>),
    Local,
}

impl<'a> Ask<'a> {
    /// `Err` with the result when the store need not be asked: a zero cost, a cost above
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
            core.granted(tally);
            return Err(Ok(()));
        }
        if cost > config.burst() {
            return Err(Err(core.cost_error(tally, cost, config.burst(), key)));
        }
        // `Queue`: while `max_queue` callers of this process wait, a call takes only what
        // is free now. Nobody counts as waiting before the store has reserved a slot.
        let queue_full = matches!(may, May::Wait)
            && config.on_limit() == OnLimit::Queue
            && tally.waiting() >= u64::try_from(config.max_queue()).unwrap_or(u64::MAX);
        let max_wait = match (may, config.on_limit()) {
            _ if queue_full => Duration::ZERO,
            (May::NotWait, _) | (_, OnLimit::Reject) => Duration::ZERO,
            // Never past the deadline of the call in progress (a retry's), if any.
            (May::Wait, _) => crate::deadline::cap(config.max_wait()).max(Duration::from_micros(1)),
        };
        let interval = config.rate().interval();
        Ok(Ask {
            core,
            tally,
            cost,
            increment: interval.saturating_mul(cost),
            capacity: interval.saturating_mul(config.burst()),
            max_wait,
            queue_full,
        })
    }

    fn request<'k>(&'k self, key: Option<&'k str>) -> BucketRequest<'k> {
        BucketRequest {
            name: &self.core.name,
            key,
            cost: self.cost,
            increment: self.increment,
            capacity: self.capacity,
            max_wait: self.max_wait,
        }
    }

    fn decide(
        &self,
        fail: FailMode,
        answer: Result<Grant, StoreError>,
        key: Option<&dyn fmt::Debug>,
    ) -> Decided {
        let (core, tally) = (self.core, self.tally);
        match answer {
            Ok(Grant::Now) => {
                core.granted(tally);
                Decided::Done(Ok(()))
            }
            Ok(Grant::After(wait)) => {
                tally.waited();
                tally.enter_wait(None);
                core.report(key, Interest::WAITS, || EventKind::Waited { waited: wait });
                Decided::Sleep(wait)
            }
            Ok(Grant::Refused { retry_after }) => {
                let wait = crate::clock::as_nanos(retry_after);
                let what = if self.queue_full {
                    "wait queue full"
                } else {
                    "refused by the shared bucket"
                };
                Decided::Done(Err(core.rejection(tally, wait, key, what)))
            }
            Err(e) => match fail {
                FailMode::Open => Decided::Local,
                FailMode::Closed => {
                    self.tally.rejected();
                    let name = self.core.name.clone();
                    Decided::Done(Err(Error::backend_unavailable(name, e.into_reason())))
                }
            },
        }
    }

    fn finish_wait(&self) {
        self.tally.leave_wait();
        self.tally.granted();
    }
}

/// Leaves the wait count if a waiting future is dropped.
#[cfg(feature = "tokio")]
struct LeaveOnDrop<'a, 'b>(&'a Ask<'b>);

#[cfg(feature = "tokio")]
impl Drop for LeaveOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.tally.leave_wait();
    }
}
