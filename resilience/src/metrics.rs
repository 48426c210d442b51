//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`):
//! every circuit, limiter, bulkhead, retry and timeout on whatever exporter the service
//! already runs.
//!
//! **A call pays no more than its own counting.** What happens on every call is counted
//! by the instances themselves, in atomics, and handed to the recorder when the metrics
//! are collected: a circuit's calls are its stats (what `registry().snapshot()` shows,
//! so the two agree at any quiet moment); a retry policy counts its calls and attempts,
//! and a function under the attribute macros its durations, in cells found once per
//! policy and call site (two relaxed adds per call, no allocation: the whole-call
//! histogram is kept in fixed buckets of [`DURATION_BUCKETS`], with the exact sum of each
//! bucket). What happens rarely (a transition, a rejection, a wait, a timeout, a refused
//! retry) is one more consumer of the [event interface](crate::events), recorded at once
//! through handles registered once per instance. Other subscribers of the events get
//! them unchanged.
//!
//! [`install`] subscribes to the rare events and switches the counting on;
//! [`collect`] (or [`record_gauges`] with a snapshot) hands the counts to the recorder
//! and sets the gauges. Call it before each scrape (the admin router's `/metrics` does),
//! or let [`spawn_collector`] call it on a timer for an exporter that serves scrapes by
//! itself. Install the exporter's recorder first: handles registered before a recorder
//! exists go nowhere.
//!
//! ```
//! let subscription = resilience::metrics::install(); // rare events, and counting on
//! resilience::metrics::collect(); // per scrape, or on a timer (`spawn_collector`)
//! # drop(subscription);
//! ```
//!
//! Counters and gauges set at collection come from the [`registry()`](crate::registry())'s
//! instances (every instance the attribute macros, [`Pipeline`](crate::Pipeline), the
//! tower layers and a config file make); a breaker or limiter built by hand with `new`
//! reports its rejections, waits and transitions, but its calls and grants are exported
//! once it is in a registry. Retry and whole-call counts are process-wide.
//!
//! # Names and labels
//!
//! Names and labels are part of the public interface. Every metric carries `name`, the
//! instance's name; the key of a keyed limiter is never a label. Durations are in
//! seconds.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `resilience_circuit_breaker_calls_total` | counter | `name`, `outcome` = `success` \| `failure` \| `ignored` \| `rejected` |
//! | `resilience_circuit_breaker_state` | gauge, 1 for the current state and 0 for the others | `name`, `state` = `closed` \| `open` \| `half_open` \| `forced_open` \| `disabled` |
//! | `resilience_circuit_breaker_failure_rate` | gauge, 0–1, when the window has enough calls | `name` |
//! | `resilience_circuit_breaker_transitions_total` | counter | `name`, `from`, `to` |
//! | `resilience_adaptive_throttle_requests` / `resilience_adaptive_throttle_accepts` | gauges, in the window (set by [`record_gauges`]) | `name` |
//! | `resilience_adaptive_throttle_rejection_probability` | gauge, 0–1 (set by [`record_gauges`]) | `name` |
//! | `resilience_adaptive_throttle_rejected_total` | counter (set by [`record_gauges`]) | `name` |
//! | `resilience_retry_calls_total` | counter | `name`, `result` = `success_without_retry` \| `success_with_retry` \| `failed_without_retry` \| `failed_with_retry` |
//! | `resilience_retry_attempts_total` | counter (every attempt, the first included) | `name` |
//! | `resilience_retry_budget_refused_total` | counter | `name` (the budget's) |
//! | `resilience_rate_limiter_permits_total` | counter | `name`, `outcome` = `granted` \| `waited` \| `rejected` |
//! | `resilience_rate_limiter_available_permits` | gauge | `name` |
//! | `resilience_rate_limiter_waiting` | gauge | `name` |
//! | `resilience_rate_limiter_wait_seconds` | histogram | `name` |
//! | `resilience_bulkhead_in_flight` / `resilience_bulkhead_max_concurrent` | gauges | `name` |
//! | `resilience_bulkhead_rejected_total` | counter | `name` |
//! | `resilience_bulkhead_rtt_seconds` / `resilience_bulkhead_rtt_noload_seconds` | gauges, an adaptive bulkhead's last window latency and its lowest | `name` |
//! | `resilience_bulkhead_limit_changes_total` | counter, an adaptive bulkhead's limit moves | `name` |
//! | `resilience_timeouts_total` | counter | `name` |
//! | `resilience_call_duration_seconds` | histogram of the whole protected call | `name`, `outcome` = `success` \| `failure` \| `rejected` \| `timeout` |
//! | `resilience_hedge_calls_total` / `resilience_hedge_hedges_total` / `resilience_hedge_won_total` / `resilience_hedge_budget_refused_total` | counters, set from the hedge's stats by [`record_gauges`] | `name` |
//! | `resilience_hedge_delay_seconds` | gauge: the delay a call made now waits before its first hedge | `name` |
//! | `resilience_fallback_used_total` | counter: a fallback answered the call's final error | `name`, `cause` = `rejected` (a layer's refusal) \| `error` (the operation's own) |
//!
//! A limiter's `granted` counts calls granted at once and `waited` calls granted after a
//! wait (together the stats' `granted`). A circuit's `failure` includes slow calls. The
//! whole-call histogram is reported by functions under the attribute macros, named after
//! the function (`module::function`), and so is a `#[fallback]`'s count (a
//! [`Pipeline`](crate::Pipeline)'s and a tower `FallbackLayer`'s are named with their
//! `named`; an unnamed fallback is not counted).
//!
//! # Histograms and Prometheus
//!
//! `metrics-exporter-prometheus` renders histograms as summaries unless it is given
//! buckets; give it [`DURATION_BUCKETS`] for the `_seconds` metrics, the boundaries the
//! durations are counted in. Each collection hands every bucket's new samples to the
//! exporter as the bucket's mean, so its buckets, `_count` and `_sum` are exact (the
//! exporter still stores those samples until its next render: collect at least as often
//! as it is scraped, so that this memory stays bounded by the calls between scrapes).
//!
//! ```no_run
//! use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
//! use std::time::Duration;
//!
//! PrometheusBuilder::new()
//!     .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), resilience::metrics::DURATION_BUCKETS)?
//!     .install()?;
//! resilience::metrics::install().forever();
//! resilience::metrics::spawn_collector(Duration::from_secs(5)).forever();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::metrics::{Counter, Histogram, Unit, counter, gauge, histogram};
use parking_lot::Mutex;

use crate::circuit::CircuitState;
use crate::clock::as_nanos;
use crate::events::{CallEnd, Event, EventKind, Interest, Layer, Subscription};
use crate::registry::{Registry, RegistrySnapshot};

/// Bucket boundaries in seconds for the `_seconds` histograms, suited to network calls:
/// 1 ms to 30 s.
pub const DURATION_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// `resilience_circuit_breaker_calls_total`.
pub const CIRCUIT_BREAKER_CALLS: &str = "resilience_circuit_breaker_calls_total";
/// `resilience_circuit_breaker_state`.
pub const CIRCUIT_BREAKER_STATE: &str = "resilience_circuit_breaker_state";
/// `resilience_circuit_breaker_failure_rate`.
pub const CIRCUIT_BREAKER_FAILURE_RATE: &str = "resilience_circuit_breaker_failure_rate";
/// `resilience_circuit_breaker_transitions_total`.
pub const CIRCUIT_BREAKER_TRANSITIONS: &str = "resilience_circuit_breaker_transitions_total";
/// `resilience_hedge_calls_total`.
pub const HEDGE_CALLS: &str = "resilience_hedge_calls_total";
/// `resilience_hedge_hedges_total`.
pub const HEDGE_HEDGES: &str = "resilience_hedge_hedges_total";
/// `resilience_hedge_won_total`.
pub const HEDGE_WON: &str = "resilience_hedge_won_total";
/// `resilience_hedge_budget_refused_total`.
pub const HEDGE_BUDGET_REFUSED: &str = "resilience_hedge_budget_refused_total";
/// `resilience_hedge_delay_seconds`.
pub const HEDGE_DELAY: &str = "resilience_hedge_delay_seconds";
/// `resilience_retry_calls_total`.
pub const RETRY_CALLS: &str = "resilience_retry_calls_total";
/// `resilience_retry_attempts_total`.
pub const RETRY_ATTEMPTS: &str = "resilience_retry_attempts_total";
/// `resilience_retry_budget_refused_total`.
pub const RETRY_BUDGET_REFUSED: &str = "resilience_retry_budget_refused_total";
/// `resilience_rate_limiter_permits_total`.
pub const RATE_LIMITER_PERMITS: &str = "resilience_rate_limiter_permits_total";
/// `resilience_rate_limiter_available_permits`.
pub const RATE_LIMITER_AVAILABLE: &str = "resilience_rate_limiter_available_permits";
/// `resilience_rate_limiter_waiting`.
pub const RATE_LIMITER_WAITING: &str = "resilience_rate_limiter_waiting";
/// `resilience_rate_limiter_wait_seconds`.
pub const RATE_LIMITER_WAIT: &str = "resilience_rate_limiter_wait_seconds";
/// `resilience_bulkhead_in_flight`.
pub const BULKHEAD_IN_FLIGHT: &str = "resilience_bulkhead_in_flight";
/// `resilience_bulkhead_max_concurrent`.
pub const BULKHEAD_MAX_CONCURRENT: &str = "resilience_bulkhead_max_concurrent";
/// `resilience_bulkhead_rejected_total`.
pub const BULKHEAD_REJECTED: &str = "resilience_bulkhead_rejected_total";
/// `resilience_bulkhead_rtt_seconds`.
pub const BULKHEAD_RTT: &str = "resilience_bulkhead_rtt_seconds";
/// `resilience_bulkhead_rtt_noload_seconds`.
pub const BULKHEAD_RTT_NOLOAD: &str = "resilience_bulkhead_rtt_noload_seconds";
/// `resilience_bulkhead_limit_changes_total`.
pub const BULKHEAD_LIMIT_CHANGES: &str = "resilience_bulkhead_limit_changes_total";
/// `resilience_timeouts_total`.
pub const TIMEOUTS: &str = "resilience_timeouts_total";
/// `resilience_fallback_used_total`.
pub const FALLBACK_USED: &str = "resilience_fallback_used_total";
/// `resilience_call_duration_seconds`.
pub const CALL_DURATION: &str = "resilience_call_duration_seconds";

/// The topics the metrics consume: none reported on every call (calls and attempts are
/// counted by the instances themselves).
fn topics() -> Interest {
    Interest::TRANSITIONS
        | Interest::REJECTIONS
        | Interest::WAITS
        | Interest::TIMEOUTS
        | Interest::FALLBACKS
}

/// Records the metrics of the process default registry ([`registry()`](crate::registry())
/// and every instance built by hand) until the subscription drops (keep it with
/// [`Subscription::forever`]); [`collect`] (or [`spawn_collector`]) hands the counts of
/// calls to the recorder. Describes every metric to the installed recorder.
pub fn install() -> Subscription {
    describe();
    let active = Active::new();
    crate::events::subscribe(topics(), move |event| {
        let _counting = &active;
        record(event);
    })
}

/// [`install`] for the events of `registry`'s instances (the counts of retries and of
/// whole calls are process-wide: they are the call sites', not a registry's).
pub fn install_on(registry: &Registry) -> Subscription {
    describe();
    let active = Active::new();
    registry.subscribe(topics(), move |event| {
        let _counting = &active;
        record(event);
    })
}

/// Hands everything counted to the recorder: [`record_gauges`] of
/// `registry().snapshot()`. Call it before each scrape, or let [`spawn_collector`] call
/// it on a timer.
pub fn collect() {
    record_gauges(&crate::registry().snapshot());
}

/// Runs [`collect`] every `period` on a thread of its own until the returned
/// [`Collector`] drops: for an exporter that scrapes by itself
/// (`metrics-exporter-prometheus`'s HTTP listener), so that each scrape is at most one
/// period behind the calls.
///
/// ```no_run
/// use std::time::Duration;
///
/// let subscription = resilience::metrics::install();
/// let collector = resilience::metrics::spawn_collector(Duration::from_secs(5));
/// # drop((subscription, collector));
/// ```
pub fn spawn_collector(period: Duration) -> Collector {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("resilience-metrics".into())
        .spawn(move || {
            while !flag.load(Ordering::Acquire) {
                collect();
                std::thread::park_timeout(period);
            }
        })
        .ok();
    Collector { stop, thread }
}

/// The thread of [`spawn_collector`]: it stops (after one last [`collect`]) when this
/// drops; [`forever`](Self::forever) keeps it for the rest of the process.
#[must_use = "dropping the collector stops it at once"]
#[derive(Debug)]
pub struct Collector {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    /// Keep collecting for the rest of the process.
    pub fn forever(self) {
        std::mem::forget(self);
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
        collect();
    }
}

/// Hands everything counted to the recorder, the instances' from `snapshot`
/// (`registry().snapshot()`): circuits' calls, states and failure rates, limiters'
/// grants, available permits and waiting callers, bulkheads' calls in flight and
/// limits; then every retry policy's and call site's counts (process-wide). Call it
/// before each scrape, or on a timer; [`collect`] is this with the default registry.
pub fn record_gauges(snapshot: &RegistrySnapshot) {
    for c in &snapshot.circuits {
        let name = Arc::<str>::from(c.name.as_str());
        circuit_calls(&name, [c.successes, c.failures, c.ignored, c.rejections]);
        set_state(&name, c.state);
        if let Some(rate) = c.failure_rate {
            gauge!(CIRCUIT_BREAKER_FAILURE_RATE, "name" => name).set(rate);
        }
    }
    for c in &snapshot.keyed_circuits {
        let name = Arc::<str>::from(c.name.as_str());
        circuit_calls(&name, [c.successes, c.failures, c.ignored, c.rejections]);
    }
    for l in &snapshot.rate_limiters {
        let name = Arc::<str>::from(l.name.as_str());
        // Grants without a wait are counted by the limiter, not reported one by one.
        counter!(RATE_LIMITER_PERMITS, "name" => name.clone(), "outcome" => "granted")
            .absolute(l.granted.saturating_sub(l.waited));
        gauge!(RATE_LIMITER_AVAILABLE, "name" => name.clone()).set(f64::from(l.available));
        gauge!(RATE_LIMITER_WAITING, "name" => name).set(l.waiting as f64);
    }
    record_throttles(snapshot);
    for b in &snapshot.bulkheads {
        let name = Arc::<str>::from(b.name.as_str());
        gauge!(BULKHEAD_IN_FLIGHT, "name" => name.clone()).set(f64::from(b.in_flight));
        gauge!(BULKHEAD_MAX_CONCURRENT, "name" => name).set(f64::from(b.max_concurrent));
    }
    record_adaptive(snapshot);
    record_hedges(snapshot);
    flush();
}

/// The adaptive bulkheads' measurements: their limit is `max_concurrent` above.
fn record_adaptive(snapshot: &RegistrySnapshot) {
    for b in &snapshot.bulkheads {
        let Some(a) = &b.adaptive else { continue };
        let name = Arc::<str>::from(b.name.as_str());
        if let Some(rtt) = a.rtt {
            gauge!(BULKHEAD_RTT, "name" => name.clone()).set(rtt.as_secs_f64());
        }
        if let Some(rtt) = a.rtt_noload {
            gauge!(BULKHEAD_RTT_NOLOAD, "name" => name.clone()).set(rtt.as_secs_f64());
        }
        counter!(BULKHEAD_LIMIT_CHANGES, "name" => name).absolute(a.limit_changes);
    }
}

/// A circuit's calls by outcome (`success`, `failure`, `ignored`, `rejected`), from its
/// stats: a call through a breaker is counted by the breaker, not reported as an event.
fn circuit_calls(name: &Arc<str>, counts: [u64; 4]) {
    for (outcome, count) in ["success", "failure", "ignored", "rejected"].into_iter().zip(counts) {
        counter!(CIRCUIT_BREAKER_CALLS, "name" => name.clone(), "outcome" => outcome)
            .absolute(count);
    }
}

/// The hedges' counters and delay, from their stats.
fn record_hedges(snapshot: &RegistrySnapshot) {
    for h in &snapshot.hedges {
        let name = Arc::<str>::from(h.name.as_str());
        counter!(HEDGE_CALLS, "name" => name.clone()).absolute(h.calls);
        counter!(HEDGE_HEDGES, "name" => name.clone()).absolute(h.hedges);
        counter!(HEDGE_WON, "name" => name.clone()).absolute(h.hedges_won);
        counter!(HEDGE_BUDGET_REFUSED, "name" => name.clone()).absolute(h.budget_refusals);
        if let Some(delay) = h.delay_secs {
            gauge!(HEDGE_DELAY, "name" => name).set(delay);
        }
    }
}

/// The adaptive throttles' gauges and rejection counter, from their stats.
fn record_throttles(snapshot: &RegistrySnapshot) {
    for t in &snapshot.throttles {
        let name = Arc::<str>::from(t.name.as_str());
        gauge!(THROTTLE_REQUESTS, "name" => name.clone()).set(t.requests as f64);
        gauge!(THROTTLE_ACCEPTS, "name" => name.clone()).set(t.accepts as f64);
        gauge!(THROTTLE_PROBABILITY, "name" => name.clone()).set(t.rejection_probability);
        counter!(THROTTLE_REJECTED, "name" => name).absolute(t.rejections);
    }
}

const THROTTLE_REQUESTS: &str = "resilience_adaptive_throttle_requests";
const THROTTLE_ACCEPTS: &str = "resilience_adaptive_throttle_accepts";
const THROTTLE_PROBABILITY: &str = "resilience_adaptive_throttle_rejection_probability";
const THROTTLE_REJECTED: &str = "resilience_adaptive_throttle_rejected_total";

const STATES: [CircuitState; 5] = [
    CircuitState::Closed,
    CircuitState::Open,
    CircuitState::HalfOpen,
    CircuitState::ForcedOpen,
    CircuitState::Disabled,
];

fn state_label(state: CircuitState) -> &'static str {
    match state {
        CircuitState::Closed => "closed",
        CircuitState::Open => "open",
        CircuitState::HalfOpen => "half_open",
        CircuitState::ForcedOpen => "forced_open",
        CircuitState::Disabled => "disabled",
    }
}

fn set_state(name: &Arc<str>, state: CircuitState) {
    for s in STATES {
        let value = if s == state { 1.0 } else { 0.0 };
        gauge!(CIRCUIT_BREAKER_STATE, "name" => name.clone(), "state" => state_label(s)).set(value);
    }
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        CIRCUIT_BREAKER_CALLS,
        Unit::Count,
        "Calls through a circuit breaker, by outcome"
    );
    describe_gauge!(CIRCUIT_BREAKER_STATE, "1 for the circuit's current state, 0 for the others");
    describe_gauge!(CIRCUIT_BREAKER_FAILURE_RATE, "Failure rate of the circuit's window (0-1)");
    describe_counter!(CIRCUIT_BREAKER_TRANSITIONS, Unit::Count, "Circuit state transitions");
    describe_counter!(RETRY_CALLS, Unit::Count, "Calls through a retry policy, by result");
    describe_counter!(HEDGE_CALLS, Unit::Count, "Calls through a hedge");
    describe_counter!(HEDGE_HEDGES, Unit::Count, "Hedges started besides first attempts");
    describe_counter!(HEDGE_WON, Unit::Count, "Calls a hedge answered first");
    describe_counter!(HEDGE_BUDGET_REFUSED, Unit::Count, "Hedges the hedge budget refused");
    describe_gauge!(HEDGE_DELAY, Unit::Seconds, "Delay before a call's first hedge");
    describe_counter!(RETRY_ATTEMPTS, Unit::Count, "Attempts of retried calls, the first included");
    describe_counter!(RETRY_BUDGET_REFUSED, Unit::Count, "Retries a retry budget refused");
    describe_counter!(RATE_LIMITER_PERMITS, Unit::Count, "Rate limiter decisions, by outcome");
    describe_gauge!(RATE_LIMITER_AVAILABLE, Unit::Count, "Permits available now");
    describe_gauge!(RATE_LIMITER_WAITING, Unit::Count, "Callers waiting for permits now");
    describe_histogram!(RATE_LIMITER_WAIT, Unit::Seconds, "Time callers waited for permits");
    describe_gauge!(BULKHEAD_IN_FLIGHT, Unit::Count, "Calls holding a bulkhead permit now");
    describe_gauge!(BULKHEAD_MAX_CONCURRENT, Unit::Count, "The bulkhead's concurrency limit");
    describe_counter!(BULKHEAD_REJECTED, Unit::Count, "Calls a full bulkhead rejected");
    describe_gauge!(BULKHEAD_RTT, Unit::Seconds, "An adaptive bulkhead's last window latency");
    describe_gauge!(
        BULKHEAD_RTT_NOLOAD,
        Unit::Seconds,
        "An adaptive bulkhead's lowest window latency (nothing queued)"
    );
    describe_counter!(BULKHEAD_LIMIT_CHANGES, Unit::Count, "Adaptive bulkhead limit changes");
    describe_counter!(TIMEOUTS, Unit::Count, "Calls abandoned at their time limit");
    describe_counter!(FALLBACK_USED, Unit::Count, "Final errors a fallback answered, by cause");
    describe_histogram!(CALL_DURATION, Unit::Seconds, "Duration of whole protected calls");
    describe_gauge!(THROTTLE_REQUESTS, Unit::Count, "Requests in an adaptive throttle's window");
    describe_gauge!(THROTTLE_ACCEPTS, Unit::Count, "Accepted requests in the window");
    describe_gauge!(THROTTLE_PROBABILITY, "Probability that the next call is rejected (0-1)");
    describe_counter!(THROTTLE_REJECTED, Unit::Count, "Calls an adaptive throttle rejected");
}

// ----- handles, registered once per instance ---------------------------------------------

/// One instance's handles, for what its events report.
enum Handles {
    Limiter { waited: Counter, rejected: Counter, wait: Arc<Buckets> },
    Bulkhead { rejected: Counter },
    Timeout { timeouts: Counter },
    Fallback { rejected: Counter, error: Counter },
    None,
}

impl Handles {
    fn new(layer: Layer, name: &Arc<str>) -> Handles {
        let name = || name.clone();
        match layer {
            Layer::RateLimiter => {
                let c = |outcome: &'static str| counter!(RATE_LIMITER_PERMITS, "name" => name(), "outcome" => outcome);
                let wait = Arc::new(Buckets::new());
                cells().waits.lock().push((name(), wait.clone()));
                Handles::Limiter { waited: c("waited"), rejected: c("rejected"), wait }
            }
            Layer::Bulkhead => {
                Handles::Bulkhead { rejected: counter!(BULKHEAD_REJECTED, "name" => name()) }
            }
            Layer::Timeout => Handles::Timeout { timeouts: counter!(TIMEOUTS, "name" => name()) },
            Layer::Fallback => {
                let c = |cause: &'static str| counter!(FALLBACK_USED, "name" => name(), "cause" => cause);
                Handles::Fallback { rejected: c("rejected"), error: c("error") }
            }
            _ => Handles::None,
        }
    }
}

/// An instance's handles, with the name they were registered for (kept alive, so the
/// name's address is never reused for another name while the entry exists).
struct Entry {
    _name: Arc<str>,
    handles: Handles,
}

/// The handles of every instance seen, keyed by its layer and the address of its name
/// (each instance shares one `Arc<str>` with its events).
type Key = (Layer, usize);
type Cache = papaya::HashMap<Key, Arc<Entry>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::new)
}

/// The entry of `event`'s instance (registering the instance's handles on its first
/// event). Events the metrics consume are off the call's hot path: a rejection, a wait,
/// a timeout.
fn entry(event: &Event) -> Arc<Entry> {
    let key = (event.layer, Arc::as_ptr(&event.name) as *const u8 as usize);
    let map = cache().pin();
    match map.get(&key) {
        Some(entry) => entry.clone(),
        None => map
            .get_or_insert_with(key, || {
                let handles = Handles::new(event.layer, &event.name);
                Arc::new(Entry { _name: event.name.clone(), handles })
            })
            .clone(),
    }
}

/// Turns one event into metrics.
fn record(event: &Event) {
    match &event.kind {
        EventKind::Transition(t) => {
            let from = state_label(t.from);
            let to = state_label(t.to);
            counter!(CIRCUIT_BREAKER_TRANSITIONS, "name" => event.name.clone(), "from" => from, "to" => to)
                .increment(1);
            set_state(&event.name, t.to);
            if let Some(rate) = t.failure_rate {
                gauge!(CIRCUIT_BREAKER_FAILURE_RATE, "name" => event.name.clone()).set(rate);
            }
            return;
        }
        EventKind::BudgetExhausted { budget, .. } => {
            counter!(RETRY_BUDGET_REFUSED, "name" => budget.clone()).increment(1);
            return;
        }
        _ => {}
    }
    let entry = entry(event);
    match (&entry.handles, &event.kind) {
        (Handles::Limiter { waited, wait, .. }, EventKind::Waited { waited: d }) => {
            waited.increment(1);
            wait.record(*d);
        }
        (Handles::Limiter { rejected, .. }, EventKind::Rejected { .. }) => rejected.increment(1),
        (Handles::Bulkhead { rejected }, EventKind::Rejected { .. }) => rejected.increment(1),
        (Handles::Timeout { timeouts }, EventKind::TimedOut { .. }) => timeouts.increment(1),
        (Handles::Fallback { rejected, error }, EventKind::FallbackUsed { rejected: r }) => {
            if *r { rejected } else { error }.increment(1);
        }
        _ => {}
    }
}

// ----- counted on the call path ------------------------------------------------------------

/// Live [`install`]s: while there is one, retries and whole calls count into their cells.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Whether the call path counts for the metrics: one relaxed load.
#[inline(always)]
pub(crate) fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed) != 0
}

/// Held by an installed subscription's callback: counting stops when the last drops.
struct Active;

/// Serialises the changes of [`ACTIVE`] with the telemetry word's metrics bit.
static ACTIVE_EDIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Active {
    fn new() -> Active {
        let _edit = ACTIVE_EDIT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if ACTIVE.fetch_add(1, Ordering::Relaxed) == 0 {
            crate::telemetry::set(crate::telemetry::METRICS, true);
        }
        Active
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        let _edit = ACTIVE_EDIT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if ACTIVE.fetch_sub(1, Ordering::Relaxed) == 1 {
            crate::telemetry::set(crate::telemetry::METRICS, false);
        }
    }
}

/// Upper bounds of [`DURATION_BUCKETS`] in nanoseconds (checked against it by a test).
const BOUNDS_NANOS: [u64; 14] = [
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
];

/// The buckets of [`DURATION_BUCKETS`], and one above the last.
const BUCKETS: usize = BOUNDS_NANOS.len() + 1;

/// A duration histogram counted in place: per bucket of [`DURATION_BUCKETS`], the
/// samples and the sum of their nanoseconds, so that recording is two relaxed adds and
/// allocates nothing. [`flush`](Self::flush) hands the new samples to the recorder's
/// histogram, each bucket's as its mean `count` times: the bucket counts and the sum
/// come out exact.
pub(crate) struct Buckets {
    counts: [AtomicU64; BUCKETS],
    sums: [AtomicU64; BUCKETS],
    /// Counts and sums already handed over.
    flushed: Mutex<[(u64, u64); BUCKETS]>,
}

impl Buckets {
    fn new() -> Buckets {
        Buckets {
            counts: [const { AtomicU64::new(0) }; BUCKETS],
            sums: [const { AtomicU64::new(0) }; BUCKETS],
            flushed: Mutex::new([(0, 0); BUCKETS]),
        }
    }

    #[inline]
    fn record(&self, duration: Duration) {
        self.record_nanos(as_nanos(duration));
    }

    #[inline]
    fn record_nanos(&self, nanos: u64) {
        let i = BOUNDS_NANOS.iter().position(|&bound| nanos <= bound).unwrap_or(BUCKETS - 1);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sums[i].fetch_add(nanos, Ordering::Relaxed);
    }

    fn flush(&self, histogram: &Histogram) {
        let mut flushed = self.flushed.lock();
        for (i, done) in flushed.iter_mut().enumerate() {
            let count = self.counts[i].load(Ordering::Relaxed);
            let sum = self.sums[i].load(Ordering::Relaxed);
            let new = count.saturating_sub(done.0);
            if new == 0 {
                continue;
            }
            let mean = sum.saturating_sub(done.1) as f64 / new as f64 / 1e9;
            // Inside the bucket even when a sample counted between the two loads skews
            // the mean: the bucket counts stay exact.
            let low = if i == 0 { 0.0 } else { DURATION_BUCKETS[i - 1].next_up() };
            let high = DURATION_BUCKETS.get(i).copied().unwrap_or(f64::MAX);
            let mean = mean.clamp(low, high);
            histogram.record_many(mean, usize::try_from(new).unwrap_or(usize::MAX));
            *done = (count, sum);
        }
    }
}

/// Whole calls of one function (a name) by outcome: `success`, `failure`, `rejected`,
/// `timeout`.
pub(crate) struct CallCells {
    outcomes: [Buckets; 4],
}

impl std::fmt::Debug for CallCells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let calls: Vec<u64> = self
            .outcomes
            .iter()
            .map(|b| b.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum())
            .collect();
        f.debug_struct("CallCells").field("calls", &calls).finish()
    }
}

/// Calls of one retry policy name: results (`success_without_retry`,
/// `success_with_retry`, `failed_without_retry`, `failed_with_retry`), and the attempts
/// past the first (a call's first attempt is its result's count).
pub(crate) struct RetryCells {
    results: [AtomicU64; 4],
    retries: AtomicU64,
}

impl std::fmt::Debug for RetryCells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryCells")
            .field("results", &self.results)
            .field("retries", &self.retries)
            .finish()
    }
}

/// Every name's cells, by name: created on a name's first counted call, kept for the
/// process (as the recorder keeps its metrics).
#[derive(Default)]
struct Cells {
    calls: Mutex<HashMap<Arc<str>, Arc<CallCells>>>,
    retries: Mutex<HashMap<Arc<str>, Arc<RetryCells>>>,
    waits: Mutex<Vec<(Arc<str>, Arc<Buckets>)>>,
}

fn cells() -> &'static Cells {
    static CELLS: OnceLock<Cells> = OnceLock::new();
    CELLS.get_or_init(Cells::default)
}

/// Counts a whole call of the function `name` that ended `outcome` after `nanos`
/// nanoseconds; `slot` keeps the call site's cells.
#[inline]
pub(crate) fn count_call(
    slot: &OnceLock<Arc<CallCells>>,
    name: &Arc<str>,
    outcome: CallEnd,
    nanos: u64,
) {
    let cells = match slot.get() {
        Some(cells) => cells,
        None => call_cells(slot, name),
    };
    let index = match outcome {
        CallEnd::Success => 0,
        CallEnd::Failure => 1,
        CallEnd::Rejected => 2,
        CallEnd::Timeout => 3,
    };
    cells.outcomes[index].record_nanos(nanos);
}

#[cold]
#[inline(never)]
fn call_cells<'s>(slot: &'s OnceLock<Arc<CallCells>>, name: &Arc<str>) -> &'s Arc<CallCells> {
    slot.get_or_init(|| {
        let mut calls = cells().calls.lock();
        let new = || Arc::new(CallCells { outcomes: std::array::from_fn(|_| Buckets::new()) });
        calls.entry(name.clone()).or_insert_with(new).clone()
    })
}

/// Counts a call through the retry policy `name` that made `attempts` attempts;
/// `slot` keeps the policy's cells.
#[inline]
pub(crate) fn count_retry(
    slot: &OnceLock<Arc<RetryCells>>,
    name: &Arc<str>,
    attempts: u32,
    succeeded: bool,
) {
    let cells = match slot.get() {
        Some(cells) => cells,
        None => retry_cells(slot, name),
    };
    let index = match (succeeded, attempts > 1) {
        (true, false) => 0,
        (true, true) => 1,
        (false, false) => 2,
        (false, true) => 3,
    };
    cells.results[index].fetch_add(1, Ordering::Relaxed);
    if attempts > 1 {
        cells.retries.fetch_add(u64::from(attempts - 1), Ordering::Relaxed);
    }
}

#[cold]
#[inline(never)]
fn retry_cells<'s>(slot: &'s OnceLock<Arc<RetryCells>>, name: &Arc<str>) -> &'s Arc<RetryCells> {
    slot.get_or_init(|| {
        let mut retries = cells().retries.lock();
        let new = || {
            Arc::new(RetryCells {
                results: [const { AtomicU64::new(0) }; 4],
                retries: AtomicU64::new(0),
            })
        };
        retries.entry(name.clone()).or_insert_with(new).clone()
    })
}

/// Hands the cells' counts to the recorder: counters set to their totals, histograms
/// given their new samples.
fn flush() {
    let cells = cells();
    let calls: Vec<_> = cells.calls.lock().iter().map(|(n, c)| (n.clone(), c.clone())).collect();
    for (name, call) in calls {
        for (outcome, buckets) in
            ["success", "failure", "rejected", "timeout"].into_iter().zip(&call.outcomes)
        {
            buckets.flush(&histogram!(CALL_DURATION, "name" => name.clone(), "outcome" => outcome));
        }
    }
    let retries: Vec<_> =
        cells.retries.lock().iter().map(|(n, c)| (n.clone(), c.clone())).collect();
    for (name, retry) in retries {
        let results = [
            "success_without_retry",
            "success_with_retry",
            "failed_without_retry",
            "failed_with_retry",
        ];
        for (result, count) in results.into_iter().zip(&retry.results) {
            counter!(RETRY_CALLS, "name" => name.clone(), "result" => result)
                .absolute(count.load(Ordering::Relaxed));
        }
        // Retries first: a call counted between the two loads adds its first attempt only.
        let retries = retry.retries.load(Ordering::Relaxed);
        let calls: u64 = retry.results.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        counter!(RETRY_ATTEMPTS, "name" => name).absolute(calls.saturating_add(retries));
    }
    let waits = cells.waits.lock().clone();
    for (name, buckets) in waits {
        buckets.flush(&histogram!(RATE_LIMITER_WAIT, "name" => name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nanosecond_bounds_are_the_duration_buckets() {
        assert_eq!(BOUNDS_NANOS.len(), DURATION_BUCKETS.len());
        for (nanos, secs) in BOUNDS_NANOS.iter().zip(DURATION_BUCKETS) {
            assert_eq!(*nanos as f64 / 1e9, *secs);
            assert_eq!(as_nanos(Duration::from_secs_f64(*secs)), *nanos);
        }
    }

    /// A histogram that keeps what it is given.
    #[derive(Default)]
    struct Samples(Mutex<Vec<(f64, usize)>>);

    impl ::metrics::HistogramFn for Samples {
        fn record(&self, value: f64) {
            self.0.lock().push((value, 1));
        }

        fn record_many(&self, value: f64, count: usize) {
            self.0.lock().push((value, count));
        }
    }

    #[test]
    fn a_flush_hands_over_each_buckets_new_samples_with_their_exact_sum() {
        let buckets = Buckets::new();
        for ms in [1, 2, 3, 3, 40] {
            buckets.record(Duration::from_millis(ms));
        }
        let samples = Arc::new(Samples::default());
        let histogram = Histogram::from_arc(samples.clone());
        buckets.flush(&histogram);
        // Per bucket (<= 1 ms, <= 2.5 ms, <= 5 ms, <= 50 ms): its mean, as many times as
        // it has samples.
        let expected = vec![(0.001, 1), (0.002, 1), (0.003, 2), (0.04, 1)];
        assert_eq!(*samples.0.lock(), expected);
        buckets.flush(&histogram);
        assert_eq!(*samples.0.lock(), expected, "nothing new, nothing handed over");
        buckets.record(Duration::from_millis(4));
        buckets.flush(&histogram);
        assert_eq!(samples.0.lock().last(), Some(&(0.004, 1)), "only the new sample");
    }

    #[test]
    fn a_duration_on_a_bound_counts_in_that_bucket() {
        let buckets = Buckets::new();
        buckets.record(Duration::from_millis(1));
        buckets.record(Duration::from_micros(1001));
        buckets.record(Duration::from_secs(31));
        assert_eq!(buckets.counts[0].load(Ordering::Relaxed), 1);
        assert_eq!(buckets.counts[1].load(Ordering::Relaxed), 1);
        assert_eq!(buckets.counts[BUCKETS - 1].load(Ordering::Relaxed), 1);
        assert_eq!(buckets.sums[1].load(Ordering::Relaxed), 1_001_000);
    }
}
