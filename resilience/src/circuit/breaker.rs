//! [`CircuitBreaker`]: the lock-free state machine.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::CircuitState;
use super::classifier::CallOutcome;
use super::config::CircuitBreakerConfig;
use super::permit::{CallPermit, ClosedCall, PermitKind};
use super::shared::Shared;
use super::stats::CircuitStats;
use super::window::FailureWindow;
use super::word::Word;
use crate::backend::{CircuitCall, SharedState, StateStore};
use crate::clock::{SharedClock, as_nanos, default_clock};
use crate::events::{Event, EventKind, Hub, Interest, Layer, StateTransition};
use crate::striped::{Packed, StripedCounter};
use crate::sync::{AtomicBool, AtomicU32, AtomicU64, Mutex, Ordering};
use crate::{ConfigError, Error};

const NONE: u64 = u64::MAX;

/// A circuit breaker: stops calling a failing service for a while, then probes it.
///
/// Share it as `Arc<CircuitBreaker>`; every method takes `&self`. A call through a
/// closed breaker takes no lock and allocates nothing (a few atomic operations); state
/// transitions, which are rare, serialise on a mutex.
///
/// Each permit remembers the generation of the state it was taken in (every transition
/// starts a new one). An outcome reported after the circuit moved on, such as a slow call
/// admitted while closed that fails after the circuit opened, updates the stats but not
/// the state machine. An `Open` circuit turns `HalfOpen` lazily, on the first call after
/// its open period; [`state`](Self::state) reports `Open` until then.
///
/// ```
/// use std::time::Duration;
/// use resilience::Error;
/// use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig, CircuitState};
///
/// let config = CircuitBreakerConfig::builder().failure_threshold(2).build()?;
/// let breaker = CircuitBreaker::new("inventory-db", config);
///
/// for _ in 0..2 {
///     let r: Result<(), Error> = breaker.call(|| Err(Error::timeout(Duration::from_secs(1))));
///     assert!(r.is_err());
/// }
/// assert_eq!(breaker.state(), CircuitState::Open);
/// let rejected: Result<(), Error> = breaker.call(|| Ok(()));
/// assert!(matches!(rejected, Err(Error::CircuitOpen { .. })));
/// # Ok::<(), resilience::ConfigError>(())
/// ```
// `repr(C)`: the fields every call reads come first, the success counter (written on
// every call by the thread that owns its inline slot) last, with the rarely written
// statistics between, so that a thread counting a success never writes the cache line
// of the state word that every other thread reads.
#[repr(C)]
pub struct CircuitBreaker {
    word: AtomicU64,
    /// Where this breaker reports its events.
    hub: Hub,
    consecutive: AtomicU32,
    /// Whether the policy trips on a failure rate (has a window), mirrored out of
    /// `policy` so that a success under a consecutive-failures policy skips loading it.
    rate_window: AtomicBool,
    /// Slow-call threshold in nanoseconds, 0 when not configured (read on admission).
    slow_call: AtomicU64,
    /// Clock time (nanos) when the current open period ends.
    open_until: AtomicU64,
    name: Arc<str>,
    clock: SharedClock,
    policy: ArcSwap<Policy>,
    failures: AtomicU64,
    ignored: AtomicU64,
    rejections: AtomicU64,
    slow_calls: AtomicU64,
    transitions: AtomicU64,
    state_since: AtomicU64,
    last_transition: AtomicU64,
    /// Serialises transitions; holds the jitter RNG.
    transition: Mutex<fastrand::Rng>,
    /// The circuit in a state store (`Backend::Redis`, or `with_store`).
    shared: Option<Shared>,
    /// Striped (slots packed: a breaker is kept by the million, see [`Packed`]): every
    /// call through a closed breaker counts here.
    successes: StripedCounter<Packed>,
}

/// The config plus the structures derived from it, swapped whole by `reconfigure`.
struct Policy {
    config: CircuitBreakerConfig,
    /// The failure-rate window (only when the config trips on a rate).
    window: Option<Arc<FailureWindow>>,
}

impl Policy {
    fn new(config: CircuitBreakerConfig, previous: Option<&Policy>) -> Self {
        let window = config.failure_rate().map(|_| {
            previous
                .filter(|p| p.config.window() == config.window())
                .and_then(|p| p.window.clone())
                .unwrap_or_else(|| Arc::new(FailureWindow::new(config.window())))
        });
        Policy { config, window }
    }
}

impl CircuitBreaker {
    /// A closed breaker named `name` on the default clock.
    pub fn new(name: impl Into<Arc<str>>, config: CircuitBreakerConfig) -> Self {
        Self::with_clock(name, config, default_clock())
    }

    /// A closed breaker named `name` reading time from `clock`.
    ///
    /// A config with a shared [`Backend`](crate::Backend) gets its circuit from the
    /// process's store for that backend (a config the store cannot keep is logged as an
    /// error and the breaker stays local).
    pub fn with_clock(
        name: impl Into<Arc<str>>,
        config: CircuitBreakerConfig,
        clock: SharedClock,
    ) -> Self {
        let name = name.into();
        let shared = match crate::backend::process_store(config.backend()) {
            Some(store) => match Self::shared_in(store, &name, &config) {
                Ok(shared) => shared,
                Err(e) => {
                    tracing::error!(name = %name, error = %e, "the circuit cannot be shared: it stays local");
                    None
                }
            },
            None => None,
        };
        Self::assemble(name, config, clock, shared)
    }

    /// A breaker whose circuit lives in `store`, shared with every breaker using the same
    /// name there, whatever `config.backend()` says (its [`FailMode`](crate::FailMode)
    /// applies when it is `Backend::Redis`; otherwise it fails open). A store that shares
    /// no circuits gives a local breaker.
    ///
    /// Errors: a config the store cannot keep.
    pub fn with_store(
        name: impl Into<Arc<str>>,
        config: CircuitBreakerConfig,
        store: &dyn StateStore,
    ) -> Result<Self, ConfigError> {
        let name = name.into();
        let shared = Self::shared_in(store, &name, &config)?;
        Ok(Self::assemble(name, config, default_clock(), shared))
    }

    fn shared_in(
        store: &dyn StateStore,
        name: &str,
        config: &CircuitBreakerConfig,
    ) -> Result<Option<Shared>, ConfigError> {
        let fail = crate::backend::fail_mode(config.backend());
        Ok(store.circuit(name, config)?.map(|circuit| Shared { circuit, fail }))
    }

    fn assemble(
        name: Arc<str>,
        config: CircuitBreakerConfig,
        clock: SharedClock,
        shared: Option<Shared>,
    ) -> Self {
        let now = as_nanos(clock.now());
        let rate_window = config.failure_rate().is_some();
        // A shared breaker takes the slow path too: that is where it asks its store.
        let slow = rate_window || config.slow_call().is_some() || shared.is_some();
        CircuitBreaker {
            shared,
            name,
            slow_call: AtomicU64::new(config.slow_call().map_or(0, as_nanos)),
            policy: ArcSwap::from_pointee(Policy::new(config, None)),
            clock,
            word: AtomicU64::new(Word::new(CircuitState::Closed, 0).with_slow(slow).0),
            open_until: AtomicU64::new(0),
            rate_window: AtomicBool::new(rate_window),
            consecutive: AtomicU32::new(0),
            successes: StripedCounter::new(),
            failures: AtomicU64::new(0),
            ignored: AtomicU64::new(0),
            rejections: AtomicU64::new(0),
            slow_calls: AtomicU64::new(0),
            transitions: AtomicU64::new(0),
            state_since: AtomicU64::new(now),
            last_transition: AtomicU64::new(NONE),
            transition: Mutex::new(fastrand::Rng::new()),
            hub: Hub::default(),
        }
    }

    /// Report events to `hub` instead of the process default (for a registry's instances).
    pub(crate) fn with_hub(mut self, hub: Hub) -> Self {
        self.hub = hub;
        self
    }

    /// The breaker's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The current state (an expired `Open` turns `HalfOpen` on the next call).
    pub fn state(&self) -> CircuitState {
        self.load().state()
    }

    /// The current config.
    pub fn config(&self) -> CircuitBreakerConfig {
        self.policy.load().config.clone()
    }

    #[inline(always)]
    fn load(&self) -> Word {
        Word(self.word.load(Ordering::Acquire))
    }

    /// Ask to make one call. The returned permit must be given the call's outcome
    /// ([`CallPermit::success`], [`CallPermit::failure`], ...); dropping it unused counts
    /// as ignored and frees its half-open probe slot.
    ///
    /// Rejects with [`Error::CircuitOpen`] while open (with the time left in the open
    /// period), forced open (`retry_after` zero), or half-open with every probe slot
    /// taken (`retry_after` zero).
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<CallPermit<'_>, Error> {
        // Hot path: closed, no slow-call threshold (so no clock read).
        let w = self.load();
        if w.is_fast_closed() && !self.hub.wants(Interest::CALLS) {
            return Ok(CallPermit::new(self, w.generation(), PermitKind::Closed, None));
        }
        self.try_acquire_slow()
    }

    /// The call drivers' admission: a closed call under a config that neither times it
    /// nor records it in a window, admitted on one load of the state word with no permit
    /// built; `None` means "take a permit" ([`try_acquire_slow`](Self::try_acquire_slow)).
    #[inline(always)]
    pub(super) fn admit_fast(&self) -> Option<ClosedCall<'_>> {
        let w = self.load();
        (w.is_fast_closed() && !self.hub.wants(Interest::CALLS))
            .then(|| ClosedCall::new(self, w.generation()))
    }

    #[inline(never)]
    pub(super) fn try_acquire_slow(&self) -> Result<CallPermit<'_>, Error> {
        loop {
            let w = self.load();
            match w.state() {
                CircuitState::Closed | CircuitState::Disabled => {
                    let kind = if w.state() == CircuitState::Closed {
                        PermitKind::Closed
                    } else {
                        PermitKind::Disabled
                    };
                    return Ok(CallPermit::new(self, w.generation(), kind, self.start_time()));
                }
                CircuitState::ForcedOpen => return Err(self.reject(Duration::ZERO)),
                CircuitState::Open => {
                    let now = self.clock.now();
                    let until = Duration::from_nanos(self.open_until.load(Ordering::Acquire));
                    if now < until {
                        return Err(self.reject(until - now));
                    }
                    self.transition_from(w, CircuitState::HalfOpen);
                }
                CircuitState::HalfOpen => {
                    let max = self.policy.load().config.half_open_max_calls();
                    if w.probes() >= max {
                        return Err(self.reject(Duration::ZERO));
                    }
                    let taken = w.with_counters(w.probes().saturating_add(1), w.successes());
                    if self
                        .word
                        .compare_exchange(w.0, taken.0, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        let start = self.start_time();
                        return Ok(CallPermit::new(self, w.generation(), PermitKind::Probe, start));
                    }
                }
            }
        }
    }

    /// Clock time at admission, read only when a slow-call threshold is configured or an
    /// observer wants call durations.
    fn start_time(&self) -> Option<Duration> {
        (self.slow_call.load(Ordering::Relaxed) != 0 || self.hub.wants(Interest::CALLS))
            .then(|| self.clock.now())
    }

    pub(super) fn reject(&self, retry_after: Duration) -> Error {
        self.rejections.fetch_add(1, Ordering::Relaxed);
        // A closed local view under an open shared circuit counts as open.
        let state = match self.load().state() {
            s @ (CircuitState::ForcedOpen | CircuitState::HalfOpen) => s,
            _ => CircuitState::Open,
        };
        self.hub.report(
            Layer::CircuitBreaker,
            &self.name,
            Interest::REJECTIONS,
            tracing::Level::DEBUG,
            || {
                let reason = match state {
                    CircuitState::ForcedOpen => "forced open",
                    CircuitState::HalfOpen => "half-open, every probe slot taken",
                    _ => "circuit open",
                };
                let retry_after = (!retry_after.is_zero()).then_some(retry_after);
                (self.clock.now(), EventKind::Rejected { retry_after, reason })
            },
        );
        Error::circuit_rejected(self.name.clone(), retry_after, state)
    }

    /// Apply the outcome of a call admitted at `generation` (called by the permit).
    #[inline(always)]
    pub(super) fn on_outcome(
        &self,
        generation: u32,
        kind: PermitKind,
        started: Option<Duration>,
        outcome: CallOutcome,
    ) {
        if kind == PermitKind::Closed && outcome == CallOutcome::Success && started.is_none() {
            self.closed_success(generation);
        } else {
            self.on_outcome_slow(generation, kind, started, outcome);
        }
    }

    /// A success of an untimed call admitted closed at `generation`.
    #[inline(always)]
    pub(super) fn closed_success(&self, generation: u32) {
        // Hot path: no slow-call threshold and no window (the `slow` bit, read now so
        // that a reconfigure during the call applies to its outcome): a success only
        // ends the run of failures (it can never trip), so the policy need not be
        // loaded, and it is counted with a plain store in this thread's slot.
        let w = self.load();
        if w.is_slow() {
            return self.on_outcome_slow(
                generation,
                PermitKind::Closed,
                None,
                CallOutcome::Success,
            );
        }
        self.successes.incr();
        if self.consecutive.load(Ordering::Relaxed) != 0
            && w.generation() == generation
            && w.is_closed()
        {
            self.consecutive.store(0, Ordering::Relaxed);
        }
    }

    #[inline(never)]
    pub(super) fn on_outcome_slow(
        &self,
        generation: u32,
        kind: PermitKind,
        started: Option<Duration>,
        mut outcome: CallOutcome,
    ) {
        let duration = started.map(|start| self.clock.now().saturating_sub(start));
        if let (CallOutcome::Success, Some(d)) = (outcome, duration) {
            let limit = self.slow_call.load(Ordering::Relaxed);
            if limit != 0 && as_nanos(d) > limit {
                self.slow_calls.fetch_add(1, Ordering::Relaxed);
                outcome = CallOutcome::Failure;
            }
        }
        if let (Some(start), Some(duration)) = (started, duration)
            && self.hub.wants(Interest::CALLS)
        {
            let kind = EventKind::CallRecorded { outcome, duration };
            self.hub.emit_built(Layer::CircuitBreaker, &self.name, || (start + duration, kind));
        }
        match outcome {
            CallOutcome::Success => self.successes.incr(),
            CallOutcome::Failure => {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
            CallOutcome::Ignored => {
                self.ignored.fetch_add(1, Ordering::Relaxed);
            }
        }
        match kind {
            PermitKind::Disabled => {}
            PermitKind::Closed => self.closed_outcome(generation, outcome),
            PermitKind::Probe => self.probe_outcome(generation, outcome),
        }
    }

    fn closed_outcome(&self, generation: u32, outcome: CallOutcome) {
        let w = self.load();
        if outcome == CallOutcome::Ignored
            || w.generation() != generation
            || w.state() != CircuitState::Closed
        {
            return;
        }
        let failed = outcome == CallOutcome::Failure;
        if !failed && !self.rate_window.load(Ordering::Relaxed) {
            // Hot path: under a consecutive-failures policy a success only ends the run
            // of failures (it can never trip), so the policy need not be loaded.
            if self.consecutive.load(Ordering::Relaxed) != 0 {
                self.consecutive.store(0, Ordering::Relaxed);
            }
            return;
        }
        let policy = self.policy.load();
        let consecutive = if failed {
            self.bump_consecutive()
        } else {
            if self.consecutive.load(Ordering::Relaxed) != 0 {
                self.consecutive.store(0, Ordering::Relaxed);
            }
            0
        };
        let trip = match (&policy.window, policy.config.failure_rate()) {
            (Some(window), Some(rate)) => {
                let now = if window.needs_time() { self.clock.now() } else { Duration::ZERO };
                window.record(now, failed);
                let c = window.counts(now);
                failed
                    && c.total >= u64::from(policy.config.min_calls())
                    && c.failures as f64 >= rate * c.total as f64
            }
            _ => policy.config.failure_threshold().is_some_and(|t| consecutive >= t),
        };
        if trip {
            self.transition_from(w, CircuitState::Open);
        }
    }

    fn bump_consecutive(&self) -> u32 {
        let prev = self
            .consecutive
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_add(1)));
        prev.unwrap_or_else(|n| n).saturating_add(1)
    }

    fn probe_outcome(&self, generation: u32, outcome: CallOutcome) {
        let mut w = self.load();
        loop {
            if w.generation() != generation || w.state() != CircuitState::HalfOpen {
                return; // the probe slot belonged to an earlier half-open period
            }
            let probes = w.probes().saturating_sub(1);
            let next = match outcome {
                CallOutcome::Failure => {
                    self.bump_consecutive();
                    self.transition_from(w, CircuitState::Open);
                    return;
                }
                CallOutcome::Ignored => w.with_counters(probes, w.successes()),
                CallOutcome::Success => w.with_counters(probes, w.successes().saturating_add(1)),
            };
            match self.word.compare_exchange(w.0, next.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    if outcome == CallOutcome::Success {
                        self.consecutive.store(0, Ordering::Relaxed);
                        let needed = self.policy.load().config.success_threshold();
                        if next.successes() >= needed {
                            self.transition_from(next, CircuitState::Closed);
                        }
                    }
                    return;
                }
                Err(actual) => w = Word(actual),
            }
        }
    }

    /// Move from the state of `seen` to `to`, unless another transition got there first.
    fn transition_from(&self, seen: Word, to: CircuitState) {
        let event = {
            let mut rng = self.transition.lock();
            let w = self.load();
            if w.generation() != seen.generation() || w.state() != seen.state() {
                return;
            }
            self.enter(w, to, &mut rng)
        };
        // Subscribers run after the lock is released, so one may act on this breaker.
        if let Some(event) = event {
            self.emit_transition(event);
        }
    }

    /// Operator transition: always starts a new generation.
    fn force(&self, to: CircuitState) {
        let event = {
            let mut rng = self.transition.lock();
            let w = self.load();
            self.enter(w, to, &mut rng)
        };
        if let Some(event) = event {
            self.emit_transition(event);
        }
    }

    fn emit_transition(&self, t: StateTransition) {
        let (name, at) = (t.name.clone(), t.at);
        self.hub.emit(&Event::new(Layer::CircuitBreaker, name, at, EventKind::Transition(t)));
    }

    /// Enter `to` from `w` (under the transition lock).
    fn enter(&self, w: Word, to: CircuitState, rng: &mut fastrand::Rng) -> Option<StateTransition> {
        let from = w.state();
        let now = self.clock.now();
        let policy = self.policy.load();
        let failure_rate = policy.window.as_ref().and_then(|win| win.counts(now).rate());
        let consecutive_failures = self.consecutive.load(Ordering::Acquire);
        let mut open_for = None;
        match to {
            CircuitState::Open => {
                let d = jittered(
                    policy.config.recovery_timeout(),
                    policy.config.recovery_jitter(),
                    rng,
                );
                let until = as_nanos(now).saturating_add(as_nanos(d));
                self.open_until.store(until, Ordering::Release);
                open_for = Some(d);
            }
            CircuitState::Closed => {
                self.consecutive.store(0, Ordering::Release);
                if let Some(win) = &policy.window {
                    win.clear();
                }
            }
            CircuitState::HalfOpen | CircuitState::ForcedOpen | CircuitState::Disabled => {}
        }
        // Generations change only under the transition lock, so a plain store is safe:
        // concurrent probe updates compare-and-swap against the old word and fail.
        let next = Word::new(to, w.generation().wrapping_add(1)).with_slow(w.is_slow());
        self.word.store(next.0, Ordering::Release);
        if from == to {
            return None;
        }
        let at = as_nanos(now);
        self.transitions.fetch_add(1, Ordering::Relaxed);
        self.state_since.store(at, Ordering::Relaxed);
        self.last_transition.store(at, Ordering::Relaxed);
        let mut event = StateTransition::new(self.name.clone(), from, to, now);
        event.consecutive_failures = consecutive_failures;
        event.failure_rate = failure_rate;
        event.open_for = open_for;
        Some(event)
    }

    /// Close the circuit and forget the window, consecutive failures and in-flight
    /// outcomes (stats counters are kept).
    ///
    /// On a [shared](Self::is_shared) breaker this acts on this process's breaker only;
    /// [`reset_shared`](Self::reset_shared) also closes the shared circuit.
    pub fn reset(&self) {
        self.force(CircuitState::Closed);
    }

    /// Back to new: [`reset`](Self::reset), then every stats counter zeroed and the time
    /// in state read again from the clock (for `Registry::reset_all`).
    pub(crate) fn renew(&self) {
        let _transition = self.transition.lock();
        let w = self.load();
        let policy = self.policy.load();
        self.consecutive.store(0, Ordering::Release);
        if let Some(win) = &policy.window {
            win.clear();
        }
        let next =
            Word::new(CircuitState::Closed, w.generation().wrapping_add(1)).with_slow(w.is_slow());
        self.word.store(next.0, Ordering::Release);
        self.successes.reset();
        for counter in [&self.failures, &self.ignored, &self.rejections, &self.slow_calls] {
            counter.store(0, Ordering::Relaxed);
        }
        self.transitions.store(0, Ordering::Relaxed);
        self.open_until.store(0, Ordering::Release);
        self.state_since.store(as_nanos(self.clock.now()), Ordering::Relaxed);
        self.last_transition.store(NONE, Ordering::Relaxed);
    }

    /// Open the circuit until [`reset`](Self::reset): every call is rejected with
    /// `retry_after` zero.
    ///
    /// On a [shared](Self::is_shared) breaker this acts on this process's breaker only:
    /// its calls are rejected, other processes sharing the circuit are not affected.
    pub fn force_open(&self) {
        self.force(CircuitState::ForcedOpen);
    }

    /// Let every call through and count nothing toward tripping, until
    /// [`reset`](Self::reset). Stats still count the calls.
    ///
    /// On a [shared](Self::is_shared) breaker this acts on this process's breaker only:
    /// its calls go through without asking the shared circuit and report nothing to it,
    /// other processes sharing the circuit are not affected.
    pub fn disable(&self) {
        self.force(CircuitState::Disabled);
    }

    /// Replace the config, keeping the state, the stats counters and the consecutive
    /// failures. The window is kept when its shape is unchanged, otherwise a new empty
    /// one starts. The new thresholds apply from the next outcome on; the current open
    /// period keeps its end.
    pub fn reconfigure(&self, config: CircuitBreakerConfig) {
        let _guard = self.transition.lock();
        let policy = Policy::new(config, Some(&self.policy.load()));
        self.slow_call.store(policy.config.slow_call().map_or(0, as_nanos), Ordering::Relaxed);
        self.rate_window.store(policy.window.is_some(), Ordering::Relaxed);
        let slow =
            policy.window.is_some() || policy.config.slow_call().is_some() || self.is_shared();
        self.policy.store(Arc::new(policy));
        // Keeps state, generation and probe counters: a concurrent probe's
        // compare-and-swap fails once and retries on the new word.
        let _ = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| Some(Word(w).with_slow(slow).0));
    }

    /// A snapshot of the counters and state.
    pub fn stats(&self) -> CircuitStats {
        let w = self.load();
        let now = self.clock.now();
        let policy = self.policy.load();
        let successes = self.successes.sum();
        let failures = self.failures.load(Ordering::Relaxed);
        let ignored = self.ignored.load(Ordering::Relaxed);
        let since = Duration::from_nanos(self.state_since.load(Ordering::Relaxed));
        let last = self.last_transition.load(Ordering::Relaxed);
        CircuitStats {
            name: self.name.to_string(),
            state: w.state(),
            calls: successes.saturating_add(failures).saturating_add(ignored),
            successes,
            failures,
            ignored,
            rejections: self.rejections.load(Ordering::Relaxed),
            slow_calls: self.slow_calls.load(Ordering::Relaxed),
            failure_rate: policy.window.as_ref().and_then(|win| win.counts(now).rate()),
            consecutive_failures: self.consecutive.load(Ordering::Relaxed),
            time_in_state: now.saturating_sub(since),
            last_transition: (last != NONE).then(|| Duration::from_nanos(last)),
            transitions: self.transitions.load(Ordering::Relaxed),
        }
    }

    /// Reseed the recovery-jitter RNG (tests assert exact sequences).
    #[cfg(test)]
    pub(crate) fn seed_jitter(&self, seed: u64) {
        *self.transition.lock() = fastrand::Rng::with_seed(seed);
    }

    /// The state the store holds for this breaker's shared circuit, read now (blocking;
    /// for Redis one round trip). `Ok(None)` for a local breaker.
    pub fn shared_state(&self) -> Result<Option<SharedState>, Error> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        let config = self.config();
        let call = CircuitCall::new(&self.name, &config, &self.clock);
        shared
            .circuit
            .state(&call)
            .map(Some)
            .map_err(|e| Error::backend_unavailable(self.name.clone(), e.into_reason()))
    }

    /// The operator's [`reset`](Self::reset) for the whole fleet: closes the shared
    /// circuit in its store (every breaker sharing it sees it closed, its failures
    /// forgotten), then this breaker. On a local breaker, the same as `reset`.
    ///
    /// Errors: [`Error::BackendUnavailable`] when the store cannot be reached (this
    /// breaker is then left as it was).
    pub fn reset_shared(&self) -> Result<(), Error> {
        if let Some(shared) = &self.shared {
            let config = self.config();
            let call = CircuitCall::new(&self.name, &config, &self.clock);
            shared
                .circuit
                .reset(&call)
                .map_err(|e| Error::backend_unavailable(self.name.clone(), e.into_reason()))?;
        }
        self.reset();
        Ok(())
    }

    /// Whether the circuit is shared through a state store (such a breaker never takes
    /// the fast path: every call through `call`/`run` asks the store).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    pub(super) fn shared(&self) -> Option<&Shared> {
        self.shared.as_ref()
    }

    pub(super) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub(super) fn count_rejection(&self) {
        self.rejections.fetch_add(1, Ordering::Relaxed);
    }

    /// Clock time at admission when a slow-call threshold is configured.
    pub(super) fn slow_call_start(&self) -> Option<Duration> {
        self.start_time()
    }

    /// `outcome`, or a failure for a success slower than the slow-call threshold.
    pub(super) fn slow_adjusted(
        &self,
        started: Option<Duration>,
        outcome: CallOutcome,
    ) -> CallOutcome {
        let limit = self.slow_call.load(Ordering::Relaxed);
        match (outcome, started) {
            (CallOutcome::Success, Some(start))
                if limit != 0 && as_nanos(self.clock.now().saturating_sub(start)) > limit =>
            {
                CallOutcome::Failure
            }
            _ => outcome,
        }
    }

    /// The clock time at which the current open period ends.
    #[cfg(test)]
    pub(crate) fn open_until(&self) -> Duration {
        Duration::from_nanos(self.open_until.load(Ordering::Acquire))
    }
}

/// `timeout` shortened by a uniform random fraction of at most `jitter`: uniform in
/// `[timeout·(1 - jitter), timeout]`.
fn jittered(timeout: Duration, jitter: f64, rng: &mut fastrand::Rng) -> Duration {
    if jitter <= 0.0 {
        return timeout;
    }
    let factor = 1.0 - jitter.min(1.0) * rng.f64();
    // `as` saturates; the product never exceeds `timeout`.
    Duration::from_nanos((as_nanos(timeout) as f64 * factor) as u64)
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("config", &self.policy.load().config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::Window;
    use crate::clock::{Clock, ManualClock};

    #[cfg(not(resilience_loom))]
    #[test]
    fn the_breaker_is_small_and_its_success_counter_sits_apart_from_the_state_word() {
        #[cfg(target_pointer_width = "64")]
        assert!(size_of::<CircuitBreaker>() <= 256, "{} bytes", size_of::<CircuitBreaker>());
        // The owner of the counter's inline slot writes it on every call; every thread
        // reads the state word: never in one cache line (nor one adjacent pair).
        let word = std::mem::offset_of!(CircuitBreaker, word);
        let successes = std::mem::offset_of!(CircuitBreaker, successes);
        assert!(successes >= word + 128, "word at {word}, successes at {successes}");
    }

    fn tripping(jitter: f64) -> (ManualClock, CircuitBreaker) {
        let clock = ManualClock::new();
        let config = CircuitBreakerConfig::builder()
            .failure_threshold(1)
            .recovery_timeout(Duration::from_secs(100))
            .recovery_jitter(jitter)
            .success_threshold(1)
            .build();
        let config = config.unwrap_or_default();
        (clock.clone(), CircuitBreaker::with_clock("breaker-unit", config, clock.shared()))
    }

    fn trip(b: &CircuitBreaker) {
        if let Ok(p) = b.try_acquire() {
            p.failure();
        }
        assert_eq!(b.state(), CircuitState::Open);
    }

    /// Records each outcome through a permit of `b`, for the calls `b` admits.
    fn record_each(b: &CircuitBreaker, outcomes: &[CallOutcome]) {
        for &outcome in outcomes {
            if let Ok(p) = b.try_acquire() {
                p.record(outcome);
            }
        }
    }

    /// Trip at a 50 % failure rate over the last 4 calls, once `min_calls` ran.
    fn half_of_four(min_calls: u32) -> CircuitBreakerConfig {
        let config = CircuitBreakerConfig::builder()
            .failure_rate(0.5)
            .window(Window::Count(4))
            .min_calls(min_calls)
            .build();
        config.unwrap_or_default()
    }

    /// Open periods drawn with jitter, relative to the trip time.
    fn open_periods(b: &CircuitBreaker, clock: &ManualClock, n: usize) -> Vec<Duration> {
        (0..n)
            .map(|_| {
                b.reset();
                let at = clock.now();
                trip(b);
                b.open_until() - at
            })
            .collect()
    }

    #[test]
    fn success_fast_path_still_ends_a_run_of_failures() {
        let config = CircuitBreakerConfig::builder().failure_threshold(2).build();
        let b = CircuitBreaker::new("breaker-fast-path", config.unwrap_or_default());
        record_each(&b, &[CallOutcome::Failure, CallOutcome::Success, CallOutcome::Failure]);
        // Failure, success, failure: never two in a row, so still closed.
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.stats().consecutive_failures, 1);
    }

    #[test]
    fn successes_reach_the_window_after_reconfiguring_to_a_rate() {
        let b = CircuitBreaker::new("breaker-fast-path-rate", CircuitBreakerConfig::default());
        b.reconfigure(half_of_four(4));
        record_each(&b, &[CallOutcome::Success, CallOutcome::Success, CallOutcome::Success]);
        if let Ok(p) = b.try_acquire() {
            p.failure();
        }
        // 1 failure in 4 calls is 25 %: the successes were counted, so it stays closed.
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.stats().failure_rate, Some(0.25));
    }

    #[test]
    fn a_success_in_flight_across_a_reconfigure_reaches_the_new_window() {
        let b = CircuitBreaker::new("breaker-in-flight", CircuitBreakerConfig::default());
        let in_flight = b.try_acquire();
        b.reconfigure(half_of_four(1));
        if let Ok(p) = in_flight {
            p.success(); // admitted before, reported after: counted in the new window
        }
        assert_eq!(b.stats().failure_rate, Some(0.0));
        let r = b.call(|| Ok::<(), Error>(())); // the driver's path: also recorded
        assert!(r.is_ok());
        assert_eq!(b.stats().successes, 2);
        let r = b.call(|| Err::<(), Error>(Error::timeout(Duration::from_secs(1))));
        assert!(r.is_err());
        assert_eq!(b.stats().failure_rate, Some(1.0 / 3.0));
    }

    #[test]
    fn the_slow_call_threshold_survives_transitions_and_reconfigures() {
        let clock = ManualClock::new();
        let config = CircuitBreakerConfig::builder()
            .failure_threshold(1)
            .slow_call(Duration::from_secs(1))
            .build();
        let b = CircuitBreaker::with_clock(
            "breaker-slow-bit",
            config.unwrap_or_default(),
            clock.shared(),
        );
        trip(&b);
        b.reset();
        let slow = b.call(|| {
            clock.advance(Duration::from_secs(2));
            Ok::<(), Error>(())
        });
        assert!(slow.is_ok());
        let s = b.stats();
        assert_eq!((s.slow_calls, s.failures, s.state), (1, 2, CircuitState::Open));
        // Reconfigured without a threshold: closed calls take the fast path again.
        b.reconfigure(CircuitBreakerConfig::default());
        b.reset();
        assert!(b.load().is_fast_closed());
        let r = b.call(|| {
            clock.advance(Duration::from_secs(2));
            Ok::<(), Error>(())
        });
        assert!(r.is_ok());
        assert_eq!(b.stats().slow_calls, 1);
    }

    #[test]
    fn a_panicking_call_on_the_fast_path_counts_as_ignored() {
        let b = CircuitBreaker::new("breaker-fast-panic", CircuitBreakerConfig::default());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            b.call(|| -> Result<(), Error> { std::panic::resume_unwind(Box::new("op failed")) })
        }));
        assert!(caught.is_err());
        let s = b.stats();
        assert_eq!((s.calls, s.ignored, s.successes), (1, 1, 0));
    }

    #[test]
    fn successes_from_many_threads_are_all_counted() {
        let b = CircuitBreaker::new("breaker-many-threads", CircuitBreakerConfig::default());
        std::thread::scope(|s| {
            for _ in 0..12 {
                s.spawn(|| {
                    for _ in 0..500 {
                        let _ = b.call(|| Ok::<(), Error>(()));
                    }
                });
            }
        });
        assert_eq!(b.stats().successes, 6_000);
    }

    #[test]
    fn jitter_is_seeded_and_exact() {
        let (clock, b) = tripping(0.5);
        b.seed_jitter(7);
        let got = open_periods(&b, &clock, 5);
        let mut rng = fastrand::Rng::with_seed(7);
        let want: Vec<Duration> =
            (0..5).map(|_| jittered(Duration::from_secs(100), 0.5, &mut rng)).collect();
        assert_eq!(got, want);
        // Not all equal: the fleet does not probe in lockstep.
        assert!(got.iter().any(|d| *d != got[0]));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let (clock, b) = tripping(0.3);
        for d in open_periods(&b, &clock, 200) {
            assert!(d >= Duration::from_secs(70) && d <= Duration::from_secs(100), "{d:?}");
        }
    }

    #[test]
    fn no_jitter_means_exact_timeout() {
        let (clock, b) = tripping(0.0);
        assert_eq!(open_periods(&b, &clock, 3), vec![Duration::from_secs(100); 3]);
    }

    #[test]
    fn full_jitter_formula_bounds() {
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(10), 1.0, &mut rng);
            assert!(d <= Duration::from_secs(10));
        }
        assert_eq!(jittered(Duration::MAX, 0.0, &mut rng), Duration::MAX);
    }

    #[test]
    fn a_subscriber_may_act_on_the_breaker_that_notified_it() {
        let config = CircuitBreakerConfig::builder().failure_threshold(1).build();
        let breaker = Arc::new(CircuitBreaker::new(
            "breaker-reentrant-subscriber",
            config.unwrap_or_default(),
        ));
        let name = breaker.name().clone();
        let target = Arc::downgrade(&breaker);
        let _sub = crate::events::subscribe(Interest::TRANSITIONS, move |e| {
            let EventKind::Transition(t) = &e.kind else { return };
            if t.name == name
                && t.to == CircuitState::Open
                && let Some(b) = target.upgrade()
            {
                b.reset(); // a transition from inside a subscriber must not deadlock
            }
        });
        let r = breaker.call(|| Err::<(), Error>(Error::timeout(Duration::from_secs(1))));
        assert!(r.is_err());
        assert_eq!(breaker.state(), CircuitState::Closed, "the subscriber closed it again");
        assert_eq!(breaker.stats().transitions, 2, "closed -> open -> closed");
    }
}

/// Model checks of the state word and the half-open probe permits
/// (`RUSTFLAGS="--cfg resilience_loom" cargo test -p resilience --release --lib loom`): every
/// interleaving of a few threads, on the real breaker.
#[cfg(all(test, resilience_loom))]
mod loom_tests {
    use std::sync::Arc;

    use loom::thread;

    use super::*;
    use crate::clock::ManualClock;

    const RECOVERY: Duration = Duration::from_secs(10);

    fn breaker(threshold: u32, probes: u32, successes: u32) -> (ManualClock, Arc<CircuitBreaker>) {
        let clock = ManualClock::new();
        let config = CircuitBreakerConfig::builder()
            .failure_threshold(threshold)
            .recovery_timeout(RECOVERY)
            .half_open_max_calls(probes)
            .success_threshold(successes)
            .build()
            .unwrap_or_default();
        let b = CircuitBreaker::with_clock("loom", config, clock.shared());
        (clock, Arc::new(b))
    }

    /// One call through `b` that fails, if `b` admits it.
    fn fail_once(b: &CircuitBreaker) {
        if let Ok(p) = b.try_acquire() {
            p.failure();
        }
    }

    /// Runs `f` on a new model thread with its own handle on `b`.
    fn spawn_on<T: 'static>(
        b: &Arc<CircuitBreaker>,
        f: impl FnOnce(&CircuitBreaker) -> T + 'static,
    ) -> thread::JoinHandle<T> {
        let b = Arc::clone(b);
        thread::spawn(move || f(&b))
    }

    /// Trips `b` (threshold 1) and lets its open period pass.
    fn half_open_soon(clock: &ManualClock, b: &CircuitBreaker) {
        fail_once(b);
        assert_eq!(b.state(), CircuitState::Open);
        clock.advance(RECOVERY);
    }

    #[test]
    fn loom_concurrent_failures_open_the_circuit_once() {
        loom::model(|| {
            let (_clock, b) = breaker(2, 1, 1);
            let handles: Vec<_> = (0..2).map(|_| spawn_on(&b, fail_once)).collect();
            for h in handles {
                let _ = h.join();
            }
            let s = b.stats();
            assert_eq!(s.state, CircuitState::Open);
            assert_eq!(s.transitions, 1, "one transition, whoever got there first");
            assert_eq!(b.load().generation(), 1);
        });
    }

    /// `threads` callers race for `max` probe slots; returns how many got one.
    fn race_for_probes(threads: usize, max: u32) {
        let (clock, b) = breaker(1, max, 3);
        half_open_soon(&clock, &b);
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                spawn_on(&b, |b| match b.try_acquire() {
                    Ok(p) => {
                        let probe = p.is_probe();
                        std::mem::forget(p); // keep the slot taken
                        Some(probe)
                    }
                    Err(_) => None,
                })
            })
            .collect();
        let admitted: Vec<bool> =
            handles.into_iter().filter_map(|h| h.join().ok().flatten()).collect();
        assert_eq!(admitted, vec![true; max as usize], "exactly half_open_max_calls probes");
        let w = b.load();
        assert_eq!((w.state(), w.probes()), (CircuitState::HalfOpen, max));
    }

    #[test]
    fn loom_half_open_admits_exactly_max_probes() {
        loom::model(|| race_for_probes(2, 1));
    }

    #[test]
    fn loom_half_open_admits_exactly_max_probes_three_callers() {
        // Three threads: bound the preemptions so the search stays minutes, not hours.
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| race_for_probes(3, 2));
    }

    #[test]
    fn loom_a_dropped_probe_returns_its_permit() {
        loom::model(|| {
            let (clock, b) = breaker(1, 1, 1);
            half_open_soon(&clock, &b);
            let dropper = spawn_on(&b, |b| {
                if let Ok(p) = b.try_acquire() {
                    drop(p); // cancelled: counts as ignored, frees the slot
                }
            });
            let other = spawn_on(&b, |b| b.try_acquire().map(std::mem::forget).is_ok());
            let _ = dropper.join();
            let other_holds = other.join().unwrap_or(false);
            let w = b.load();
            assert_eq!(w.state(), CircuitState::HalfOpen);
            assert_eq!(w.probes(), u32::from(other_holds), "no slot leaked");
            if !other_holds {
                assert!(b.try_acquire().is_ok(), "the freed slot is available again");
            }
        });
    }

    #[test]
    fn loom_probe_success_and_failure_race_to_one_state() {
        loom::model(|| {
            let (clock, b) = breaker(1, 2, 1);
            half_open_soon(&clock, &b);
            let (Ok(good), Ok(bad)) = (b.try_acquire(), b.try_acquire()) else {
                unreachable!("two probe slots")
            };
            std::mem::forget(good);
            std::mem::forget(bad);
            let generation = b.load().generation();
            let report = |outcome| {
                spawn_on(&b, move |b| b.on_outcome(generation, PermitKind::Probe, None, outcome))
            };
            let ok = report(CallOutcome::Success);
            let failed = report(CallOutcome::Failure);
            let _ = ok.join();
            let _ = failed.join();
            let w = b.load();
            // Success first closes (and the late failure belongs to an old generation);
            // failure first re-opens (and the late success is ignored). Never both, never
            // a half-open state with a leaked probe.
            assert!(matches!(w.state(), CircuitState::Closed | CircuitState::Open), "{w:?}");
            assert_eq!(w.generation(), generation + 1, "exactly one transition out of half-open");
            assert_eq!((w.probes(), w.successes()), (0, 0));
        });
    }

    #[test]
    fn loom_reset_races_a_probe() {
        loom::model(|| {
            let (clock, b) = breaker(1, 1, 1);
            half_open_soon(&clock, &b);
            let prober = spawn_on(&b, fail_once);
            b.reset();
            let _ = prober.join();
            let w = b.load();
            // Either the reset came last (closed) or the probe was admitted before it and
            // its failure, from an older generation, changed nothing after it.
            assert!(matches!(w.state(), CircuitState::Closed | CircuitState::Open), "{w:?}");
            assert_eq!(w.probes(), 0);
        });
    }
}
