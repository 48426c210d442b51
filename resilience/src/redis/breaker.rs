//! [`RedisCircuit`]: a circuit's state kept in Redis, with a local view that rejects
//! without a round trip while the shared circuit is open.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use super::backend::{RedisBackend, Unavailable};
use super::handle::BackendHandle;
use super::scripts;
use crate::backend::{
    Admission, BoxFuture, CircuitCall, SharedCircuit, SharedState, StoreError, Ticket,
};
use crate::circuit::{CallOutcome, CircuitBreakerConfig, Window};
use crate::clock::as_nanos;

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
pub(crate) struct RedisCircuit {
    backend: BackendHandle,
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

impl fmt::Debug for RedisCircuit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCircuit")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The script's generation and probe token as a ticket.
fn ticket(generation: i64, probe: i64) -> Ticket {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ticket { generation: n(generation), probe: n(probe) }
}

/// A ticket's values as the script's arguments.
fn from_ticket(t: Ticket) -> (i64, i64) {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    (n(t.generation), n(t.probe))
}

fn unavailable(reason: Unavailable) -> StoreError {
    StoreError::new(reason)
}

impl RedisCircuit {
    pub(super) fn new(backend: BackendHandle) -> Self {
        RedisCircuit {
            backend,
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
            // One hash tag for the three keys: one Cluster slot, one node per script.
            let h = format!("{{{}:cb:{name}}}", backend.prefix());
            let l = format!("{h}:window");
            let p = format!("{h}:probes");
            [h, l, p]
        });
        [h.as_str(), l.as_str(), p.as_str()]
    }

    /// The backend, or why there is none (the view is then unknown).
    fn backend(&self) -> Result<&std::sync::Arc<RedisBackend>, StoreError> {
        self.backend.get().map_err(|reason| {
            self.state.store(UNKNOWN, Ordering::Release);
            unavailable(reason)
        })
    }

    /// What the local view decides without Redis: `Some(Rejected)` while the shared
    /// circuit is open, `Some(Admitted)` while it is closed and fresh, `None` when Redis
    /// must be asked.
    fn view(&self, call: &CircuitCall<'_>, backend: &RedisBackend) -> Option<Admission> {
        let now = as_nanos(call.clock.now());
        if self.recoveries.load(Ordering::Acquire) != backend.recoveries() {
            return None;
        }
        match self.state.load(Ordering::Acquire) {
            OPEN => {
                let until = self.open_until.load(Ordering::Acquire);
                (now < until)
                    .then(|| Admission::Rejected { retry_after: Duration::from_nanos(until - now) })
            }
            CLOSED => {
                let age = now.saturating_sub(self.synced_at.load(Ordering::Acquire));
                (age < as_nanos(backend.sync_interval())).then(|| {
                    let generation = self.generation.load(Ordering::Acquire);
                    Admission::Admitted(Ticket { generation, probe: 0 })
                })
            }
            _ => None,
        }
    }

    /// Records a reply `{state, generation, open_remaining_µs, decision, token}` in the
    /// view; returns `(generation, decision, token)`.
    fn learn(
        &self,
        call: &CircuitCall<'_>,
        backend: &RedisBackend,
        reply: &[i64],
    ) -> Option<(i64, i64, i64)> {
        let &[state, generation, remaining, decision, token] = reply else {
            return None;
        };
        let now = as_nanos(call.clock.now());
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
                name = %call.name,
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

    fn decide(
        &self,
        call: &CircuitCall<'_>,
        backend: &RedisBackend,
        reply: Result<Vec<i64>, Unavailable>,
    ) -> Result<Admission, StoreError> {
        let reply = match reply {
            Ok(r) => r,
            Err(reason) => {
                self.state.store(UNKNOWN, Ordering::Release);
                return Err(unavailable(reason));
            }
        };
        match self.learn(call, backend, &reply) {
            Some((generation, 0, _)) => Ok(Admission::Admitted(ticket(generation, 0))),
            Some((generation, 1, token)) => Ok(Admission::Admitted(ticket(generation, token))),
            Some(_) => {
                let until = self.open_until.load(Ordering::Acquire);
                let left = until.saturating_sub(as_nanos(call.clock.now()));
                Ok(Admission::Rejected { retry_after: Duration::from_nanos(left) })
            }
            None => {
                self.state.store(UNKNOWN, Ordering::Release);
                Err(StoreError::new(format!("unexpected script reply {reply:?}")))
            }
        }
    }

    /// The report of a call, or `None` when there is nothing to tell Redis (an ignored
    /// call that held no probe slot).
    fn report_args(
        &self,
        call: &CircuitCall<'_>,
        ticket: Ticket,
        outcome: CallOutcome,
    ) -> Option<[i64; 15]> {
        let (generation, probe) = from_ticket(ticket);
        let outcome = match outcome {
            CallOutcome::Success => 0,
            CallOutcome::Failure => 1,
            CallOutcome::Ignored if probe > 0 => -1,
            CallOutcome::Ignored => return None,
        };
        Some(self.args(call.config, REPORT, generation, outcome, probe))
    }

    /// Learns from a report's reply; a report Redis did not answer leaves the view
    /// unknown (the next call asks).
    fn after_report(
        &self,
        call: &CircuitCall<'_>,
        backend: &RedisBackend,
        reply: Result<Vec<i64>, Unavailable>,
    ) {
        match reply {
            Ok(reply) => {
                self.learn(call, backend, &reply);
            }
            Err(_) => self.state.store(UNKNOWN, Ordering::Release),
        }
    }
}

impl SharedCircuit for RedisCircuit {
    fn admit(&self, call: &CircuitCall<'_>) -> Result<Admission, StoreError> {
        let backend = self.backend()?;
        if let Some(decided) = self.view(call, backend) {
            return Ok(decided);
        }
        let keys = self.keys(backend, call.name);
        let reply = backend.eval_blocking::<Vec<i64>>(
            scripts::circuit(),
            &keys,
            &self.args(call.config, ACQUIRE, 0, -1, 0),
        );
        self.decide(call, backend, reply)
    }

    fn admit_async<'a>(
        &'a self,
        call: CircuitCall<'a>,
    ) -> BoxFuture<'a, Result<Admission, StoreError>> {
        Box::pin(async move {
            let backend = self.backend()?;
            if let Some(decided) = self.view(&call, backend) {
                return Ok(decided);
            }
            let keys = self.keys(backend, call.name);
            let args = self.args(call.config, ACQUIRE, 0, -1, 0);
            let reply = backend.eval_async::<Vec<i64>>(scripts::circuit(), &keys, &args).await;
            self.decide(&call, backend, reply)
        })
    }

    fn report(&self, call: &CircuitCall<'_>, ticket: Ticket, outcome: CallOutcome) {
        let (Some(args), Ok(backend)) =
            (self.report_args(call, ticket, outcome), self.backend.get())
        else {
            return;
        };
        let keys = self.keys(backend, call.name);
        let reply = backend.eval_blocking::<Vec<i64>>(scripts::circuit(), &keys, &args);
        self.after_report(call, backend, reply);
    }

    fn report_async<'a>(
        &'a self,
        call: CircuitCall<'a>,
        ticket: Ticket,
        outcome: CallOutcome,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let (Some(args), Ok(backend)) =
                (self.report_args(&call, ticket, outcome), self.backend.get())
            else {
                return;
            };
            let keys = self.keys(backend, call.name);
            let reply = backend.eval_async::<Vec<i64>>(scripts::circuit(), &keys, &args).await;
            self.after_report(&call, backend, reply);
        })
    }

    fn state(&self, call: &CircuitCall<'_>) -> Result<SharedState, StoreError> {
        let backend = self.backend()?;
        let keys = self.keys(backend, call.name);
        let reply = backend
            .eval_blocking::<Vec<i64>>(
                scripts::circuit(),
                &keys,
                &self.args(call.config, READ, 0, -1, 0),
            )
            .map_err(unavailable)?;
        self.learn(call, backend, &reply);
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

    fn reset(&self, call: &CircuitCall<'_>) -> Result<(), StoreError> {
        let backend = self.backend()?;
        let keys = self.keys(backend, call.name);
        // A circuit without keys is closed with nothing counted: the state of a fresh
        // deployment.
        let deleted = backend.del_blocking(&keys).map_err(unavailable);
        self.state.store(UNKNOWN, Ordering::Release);
        deleted
    }
}
