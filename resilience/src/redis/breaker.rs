//! [`SharedCircuit`]: a circuit's state kept in Redis, with a local view that rejects
//! without a round trip while the shared circuit is open.

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::backend::{RedisBackend, Unavailable};
use super::handle::BackendHandle;
use super::scripts;
use crate::circuit::{CallOutcome, CircuitBreaker, CircuitBreakerConfig, Window};
use crate::clock::as_nanos;
use crate::{Error, FailMode};

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;
/// Never read from Redis (or invalidated by a recovery): ask before the next call.
const UNKNOWN: u8 = 3;

/// The shortest time a half-open probe holds its shared slot (longer when the open
/// period is).
const PROBE_LEASE: Duration = Duration::from_secs(30);

const READ: i64 = 0;
const ACQUIRE: i64 = 1;
const REPORT: i64 = 2;

/// The shared side of a Redis-backed circuit breaker.
pub(crate) struct SharedCircuit {
    backend: BackendHandle,
    fail: FailMode,
    keys: OnceLock<[String; 3]>,
    /// The last shared state seen (`CLOSED`, `OPEN`, `HALF_OPEN`, `UNKNOWN`).
    state: AtomicU8,
    generation: AtomicU64,
    /// Local clock nanos: when the shared open period ends, and when the view was read.
    open_until: AtomicU64,
    synced_at: AtomicU64,
    /// The backend's recovery count when the view was read: an outage invalidates it.
    recoveries: AtomicU64,
    jitter: parking_lot::Mutex<fastrand::Rng>,
}

impl fmt::Debug for SharedCircuit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCircuit")
            .field("fail", &self.fail)
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// How a call was admitted by the shared circuit.
#[derive(Clone, Copy)]
pub(crate) enum Ticket {
    /// Admitted at `generation`; `probe` is the token of the shared half-open slot it
    /// holds (0: none).
    Shared { generation: i64, probe: i64 },
    /// Redis unavailable, failing open: the local breaker alone decides.
    Local,
}

impl SharedCircuit {
    /// The shared circuit of a breaker built with `config` (`None` for a local one).
    pub(crate) fn for_config(
        config: &CircuitBreakerConfig,
        given: Option<Arc<RedisBackend>>,
    ) -> Option<Arc<Self>> {
        let (backend, fail) = BackendHandle::for_config(config.backend(), given)?;
        Some(Arc::new(SharedCircuit::new(backend, fail)))
    }

    fn new(backend: BackendHandle, fail: FailMode) -> Self {
        SharedCircuit {
            backend,
            fail,
            keys: OnceLock::new(),
            state: AtomicU8::new(UNKNOWN),
            generation: AtomicU64::new(0),
            open_until: AtomicU64::new(0),
            synced_at: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
            jitter: parking_lot::Mutex::new(fastrand::Rng::new()),
        }
    }

    fn keys(&self, backend: &RedisBackend, name: &str) -> [&str; 3] {
        let [h, l, p] = self.keys.get_or_init(|| {
            let h = format!("{}:cb:{name}", backend.prefix());
            let l = format!("{h}:window");
            let p = format!("{h}:probes");
            [h, l, p]
        });
        [h.as_str(), l.as_str(), p.as_str()]
    }

    /// What the local view decides without Redis: `Some(Err)` while the shared circuit
    /// is open, `Some(Ok)` while it is closed and fresh, `None` when Redis must be asked.
    fn view(
        &self,
        breaker: &CircuitBreaker,
        backend: &RedisBackend,
    ) -> Option<Result<Ticket, Error>> {
        let now = as_nanos(breaker.clock_now());
        if self.recoveries.load(Ordering::Acquire) != backend.recoveries() {
            return None;
        }
        match self.state.load(Ordering::Acquire) {
            OPEN => {
                let until = self.open_until.load(Ordering::Acquire);
                (now < until)
                    .then(|| Err(breaker.shared_rejection(Duration::from_nanos(until - now))))
            }
            CLOSED => {
                let age = now.saturating_sub(self.synced_at.load(Ordering::Acquire));
                (age < as_nanos(backend.sync_interval())).then(|| {
                    let generation =
                        i64::try_from(self.generation.load(Ordering::Acquire)).unwrap_or(0);
                    Ok(Ticket::Shared { generation, probe: 0 })
                })
            }
            _ => None,
        }
    }

    /// Records a reply `{state, generation, open_remaining_µs, decision, token}` in the
    /// view; returns `(generation, decision, token)`.
    fn learn(
        &self,
        breaker: &CircuitBreaker,
        backend: &RedisBackend,
        reply: &[i64],
    ) -> Option<(i64, i64, i64)> {
        let &[state, generation, remaining, decision, token] = reply else {
            return None;
        };
        let now = as_nanos(breaker.clock_now());
        let state = u8::try_from(state).ok().filter(|s| *s <= HALF_OPEN)?;
        let before = self.state.swap(state, Ordering::AcqRel);
        let remaining = u64::try_from(remaining).unwrap_or(0).saturating_mul(1000);
        self.open_until.store(now.saturating_add(remaining), Ordering::Release);
        self.generation.store(u64::try_from(generation).unwrap_or(0), Ordering::Release);
        self.synced_at.store(now, Ordering::Release);
        self.recoveries.store(backend.recoveries(), Ordering::Release);
        if before != state && (state == OPEN || before == OPEN) {
            let shown = ["closed", "open", "half-open", "unknown"];
            tracing::info!(
                name = %breaker.name(),
                from = shown[usize::from(before.min(UNKNOWN))],
                to = shown[usize::from(state)],
                "shared circuit changed state"
            );
        }
        Some((generation, decision, token))
    }

    fn args(
        &self,
        config: &CircuitBreakerConfig,
        op: i64,
        generation: i64,
        outcome: i64,
        token: i64,
    ) -> [i64; 15] {
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let (by_rate, threshold) = match (config.failure_threshold(), config.failure_rate()) {
            (Some(n), _) => (0, i64::from(n)),
            (None, Some(r)) => (1, (r * 1_000_000.0).round() as i64),
            (None, None) => (0, i64::MAX),
        };
        let (kind, size, width) = match config.window() {
            Window::Count(n) => (0, i64::from(n), 1),
            Window::Time { duration, buckets } => {
                (1, i64::from(buckets), micros(duration / buckets.max(1)).max(1))
            }
        };
        let recovery = config.recovery_timeout();
        let jitter = config.recovery_jitter();
        let open_for = if jitter > 0.0 {
            recovery.mul_f64(1.0 - jitter * self.jitter.lock().f64())
        } else {
            recovery
        };
        let window_span = match config.window() {
            Window::Time { duration, .. } => duration,
            Window::Count(_) => Duration::ZERO,
        };
        // Keys outlive every period they describe, then expire on their own.
        let ttl = (recovery.max(window_span) * 4).max(Duration::from_secs(60));
        // How long a probe holds its slot: a probe that has not reported by then (its
        // process died, its future was dropped, or it is that slow) gives the slot back.
        let lease = recovery.max(PROBE_LEASE);
        [
            op,
            generation,
            outcome,
            by_rate,
            threshold,
            kind,
            size,
            width,
            i64::from(config.min_calls()),
            micros(open_for),
            i64::from(config.success_threshold()),
            i64::from(config.half_open_max_calls()),
            i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            token,
            micros(lease),
        ]
    }

    fn unavailable(&self, breaker: &CircuitBreaker, reason: &str) -> Result<Ticket, Error> {
        self.state.store(UNKNOWN, Ordering::Release);
        match self.fail {
            FailMode::Open => Ok(Ticket::Local),
            FailMode::Closed => {
                breaker.count_rejection();
                Err(Error::backend_unavailable(breaker.name().clone(), reason))
            }
        }
    }

    fn decide(
        &self,
        breaker: &CircuitBreaker,
        backend: &RedisBackend,
        reply: Result<Vec<i64>, Unavailable>,
    ) -> Result<Ticket, Error> {
        let reply = match reply {
            Ok(r) => r,
            Err(reason) => return self.unavailable(breaker, &reason),
        };
        match self.learn(breaker, backend, &reply) {
            Some((generation, 0, _)) => Ok(Ticket::Shared { generation, probe: 0 }),
            Some((generation, 1, token)) => Ok(Ticket::Shared { generation, probe: token }),
            Some(_) => {
                let until = self.open_until.load(Ordering::Acquire);
                let left = until.saturating_sub(as_nanos(breaker.clock_now()));
                Err(breaker.shared_rejection(Duration::from_nanos(left)))
            }
            None => self.unavailable(breaker, &format!("unexpected script reply {reply:?}")),
        }
    }

    /// Admission, blocking.
    pub(crate) fn admit_blocking(&self, breaker: &CircuitBreaker) -> Result<Ticket, Error> {
        let backend = match self.backend.get() {
            Ok(b) => b,
            Err(reason) => return self.unavailable(breaker, &reason),
        };
        if let Some(decided) = self.view(breaker, backend) {
            return decided;
        }
        let config = breaker.config();
        let keys = self.keys(backend, breaker.name());
        let reply = backend.eval_blocking::<Vec<i64>>(
            scripts::circuit(),
            &keys,
            &self.args(&config, ACQUIRE, 0, -1, 0),
        );
        self.decide(breaker, backend, reply)
    }

    /// Admission, async.
    pub(crate) async fn admit_async(&self, breaker: &CircuitBreaker) -> Result<Ticket, Error> {
        let backend = match self.backend.get() {
            Ok(b) => b,
            Err(reason) => return self.unavailable(breaker, &reason),
        };
        if let Some(decided) = self.view(breaker, backend) {
            return decided;
        }
        let config = breaker.config();
        let keys = self.keys(backend, breaker.name());
        let args = self.args(&config, ACQUIRE, 0, -1, 0);
        let reply = backend.eval_async::<Vec<i64>>(scripts::circuit(), &keys, &args).await;
        self.decide(breaker, backend, reply)
    }

    /// The report of a call, or `None` when there is nothing to tell Redis (an ignored
    /// call that held no probe slot, or a call admitted while Redis was unavailable).
    fn report_args(
        &self,
        breaker: &CircuitBreaker,
        ticket: Ticket,
        outcome: CallOutcome,
    ) -> Option<[i64; 15]> {
        let Ticket::Shared { generation, probe } = ticket else {
            return None;
        };
        let outcome = match outcome {
            CallOutcome::Success => 0,
            CallOutcome::Failure => 1,
            CallOutcome::Ignored if probe > 0 => -1,
            CallOutcome::Ignored => return None,
        };
        Some(self.args(&breaker.config(), REPORT, generation, outcome, probe))
    }

    /// Learns from a report's reply; a report Redis did not answer leaves the view
    /// unknown (the next call asks).
    fn after_report(
        &self,
        breaker: &CircuitBreaker,
        backend: &RedisBackend,
        reply: Result<Vec<i64>, Unavailable>,
    ) {
        match reply {
            Ok(reply) => {
                self.learn(breaker, backend, &reply);
            }
            Err(_) => self.state.store(UNKNOWN, Ordering::Release),
        }
    }

    /// Tells Redis how an admitted call went, blocking.
    pub(crate) fn report_blocking(
        &self,
        breaker: &CircuitBreaker,
        ticket: Ticket,
        outcome: CallOutcome,
    ) {
        let (Some(args), Ok(backend)) =
            (self.report_args(breaker, ticket, outcome), self.backend.get())
        else {
            return;
        };
        let keys = self.keys(backend, breaker.name());
        let reply = backend.eval_blocking::<Vec<i64>>(scripts::circuit(), &keys, &args);
        self.after_report(breaker, backend, reply);
    }

    /// Tells Redis how an admitted call went, async.
    pub(crate) async fn report_async(
        &self,
        breaker: &CircuitBreaker,
        ticket: Ticket,
        outcome: CallOutcome,
    ) {
        let (Some(args), Ok(backend)) =
            (self.report_args(breaker, ticket, outcome), self.backend.get())
        else {
            return;
        };
        let keys = self.keys(backend, breaker.name());
        let reply = backend.eval_async::<Vec<i64>>(scripts::circuit(), &keys, &args).await;
        self.after_report(breaker, backend, reply);
    }

    /// Reads the shared state (no change), blocking: `(state, open_remaining)`.
    pub(crate) fn read_blocking(&self, breaker: &CircuitBreaker) -> Result<SharedState, Error> {
        let backend = self
            .backend
            .get()
            .map_err(|r| Error::backend_unavailable(breaker.name().clone(), r))?;
        let keys = self.keys(backend, breaker.name());
        let reply = backend
            .eval_blocking::<Vec<i64>>(
                scripts::circuit(),
                &keys,
                &self.args(&breaker.config(), READ, 0, -1, 0),
            )
            .map_err(|r| Error::backend_unavailable(breaker.name().clone(), r))?;
        self.learn(breaker, backend, &reply);
        Ok(match reply.first() {
            Some(1) => SharedState::Open {
                retry_after: Duration::from_micros(
                    u64::try_from(reply.get(2).copied().unwrap_or(0)).unwrap_or(0),
                ),
            },
            Some(2) => SharedState::HalfOpen,
            _ => SharedState::Closed,
        })
    }
}

/// The state of a circuit as Redis holds it (see
/// [`CircuitBreaker::shared_state`](crate::CircuitBreaker::shared_state)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SharedState {
    /// Calls flow.
    Closed,
    /// Calls are rejected for `retry_after` more.
    Open {
        /// Time left in the open period.
        retry_after: Duration,
    },
    /// Probes are being let through.
    HalfOpen,
}

/// Runs `op` through the shared circuit and the local breaker (both must admit; the
/// shared circuit first, so that the local slow-call timer starts with the call).
pub(crate) fn run_blocking<T, E>(
    breaker: &CircuitBreaker,
    shared: &Arc<SharedCircuit>,
    outcome_of: impl FnOnce(&Result<T, E>) -> CallOutcome,
    rejected: impl FnOnce(Error) -> E,
    op: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    // An operator's `disable` on this process's breaker lets calls through unasked.
    let ticket = if breaker.is_disabled() {
        Ticket::Local
    } else {
        match shared.admit_blocking(breaker) {
            Ok(t) => t,
            Err(e) => return Err(rejected(e)),
        }
    };
    let permit = match breaker.try_acquire() {
        Ok(p) => p,
        Err(e) => {
            // Give back a shared probe slot this call will not use.
            shared.report_blocking(breaker, ticket, CallOutcome::Ignored);
            return Err(rejected(e));
        }
    };
    let started = breaker.slow_call_start();
    let result = op();
    let raw = outcome_of(&result);
    permit.record(raw);
    shared.report_blocking(breaker, ticket, breaker.slow_adjusted(started, raw));
    result
}

/// Async [`run_blocking`].
pub(crate) async fn run_async<T, E, Fut>(
    breaker: &CircuitBreaker,
    shared: &Arc<SharedCircuit>,
    outcome_of: impl FnOnce(&Result<T, E>) -> CallOutcome,
    rejected: impl FnOnce(Error) -> E,
    op: impl FnOnce() -> Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let ticket = if breaker.is_disabled() {
        Ticket::Local
    } else {
        match shared.admit_async(breaker).await {
            Ok(t) => t,
            Err(e) => return Err(rejected(e)),
        }
    };
    let permit = match breaker.try_acquire() {
        Ok(p) => p,
        Err(e) => {
            shared.report_async(breaker, ticket, CallOutcome::Ignored).await;
            return Err(rejected(e));
        }
    };
    let started = breaker.slow_call_start();
    let result = op().await;
    let raw = outcome_of(&result);
    permit.record(raw);
    shared.report_async(breaker, ticket, breaker.slow_adjusted(started, raw)).await;
    result
}
