//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`):
//! every circuit, limiter, bulkhead, retry and timeout on whatever exporter the service
//! already runs.
//!
//! The counters and histograms are one more consumer of the [event
//! interface](crate::events): [`install`] subscribes to a registry's events and turns each
//! into an increment of a handle registered once per instance, so a call pays the
//! event's delivery and an atomic add, never a label lookup (the events are the cost: a
//! closed breaker's call reads its clock twice for its duration). The gauges read the
//! instances' stats: [`record_gauges`] sets them from a [`RegistrySnapshot`], so call it
//! before each scrape or on a timer (circuit states are also set at every transition).
//!
//! Install the exporter's recorder first: handles registered before a recorder exists
//! go nowhere.
//!
//! ```
//! let subscription = resilience::metrics::install(); // counters and histograms
//! resilience::metrics::record_gauges(&resilience::registry().snapshot()); // gauges, per scrape
//! # drop(subscription);
//! ```
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
//! | `resilience_timeouts_total` | counter | `name` |
//! | `resilience_call_duration_seconds` | histogram of the whole protected call | `name`, `outcome` = `success` \| `failure` \| `rejected` \| `timeout` |
//!
//! A limiter's `granted` counts calls granted at once and `waited` calls granted after a
//! wait (together the stats' `granted`). `granted` is the one counter set from the
//! limiter's own count by [`record_gauges`] (call it before each scrape): a grant is the
//! hottest path of a limiter, so it is counted there rather than reported as an event.
//! A circuit's `failure` includes slow calls. The
//! whole-call histogram is reported by functions under the attribute macros, named after
//! the function (`module::function`).
//!
//! # Histograms and Prometheus
//!
//! `metrics-exporter-prometheus` renders histograms as summaries unless it is given
//! buckets; give it [`DURATION_BUCKETS`] for the `_seconds` metrics:
//!
//! ```no_run
//! use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
//!
//! PrometheusBuilder::new()
//!     .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), resilience::metrics::DURATION_BUCKETS)?
//!     .install()?;
//! resilience::metrics::install().forever();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

use ::metrics::{Counter, Histogram, Unit, counter, gauge, histogram};

use crate::circuit::{CallOutcome, CircuitState};
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
/// `resilience_timeouts_total`.
pub const TIMEOUTS: &str = "resilience_timeouts_total";
/// `resilience_call_duration_seconds`.
pub const CALL_DURATION: &str = "resilience_call_duration_seconds";

/// The topics the metrics consume.
fn topics() -> Interest {
    Interest::CALLS
        | Interest::TRANSITIONS
        | Interest::REJECTIONS
        | Interest::WAITS
        | Interest::ATTEMPTS
        | Interest::TIMEOUTS
}

/// Records the events of the process default registry ([`registry()`](crate::registry())
/// and every instance built by hand) as metrics, until the subscription drops (keep it
/// with [`Subscription::forever`]). Describes every metric to the installed recorder.
pub fn install() -> Subscription {
    describe();
    crate::events::subscribe(topics(), record)
}

/// [`install`] for the events of `registry`'s instances.
pub fn install_on(registry: &Registry) -> Subscription {
    describe();
    registry.subscribe(topics(), record)
}

/// Sets every gauge from `snapshot` (`registry().snapshot()`): circuit states and
/// failure rates, limiters' available permits and waiting callers, bulkheads' calls in
/// flight and limits. Call it before each scrape, or on a timer.
pub fn record_gauges(snapshot: &RegistrySnapshot) {
    for c in &snapshot.circuits {
        let name = Arc::<str>::from(c.name.as_str());
        set_state(&name, c.state);
        if let Some(rate) = c.failure_rate {
            gauge!(CIRCUIT_BREAKER_FAILURE_RATE, "name" => name).set(rate);
        }
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
    describe_counter!(RETRY_ATTEMPTS, Unit::Count, "Attempts of retried calls, the first included");
    describe_counter!(RETRY_BUDGET_REFUSED, Unit::Count, "Retries a retry budget refused");
    describe_counter!(RATE_LIMITER_PERMITS, Unit::Count, "Rate limiter decisions, by outcome");
    describe_gauge!(RATE_LIMITER_AVAILABLE, Unit::Count, "Permits available now");
    describe_gauge!(RATE_LIMITER_WAITING, Unit::Count, "Callers waiting for permits now");
    describe_histogram!(RATE_LIMITER_WAIT, Unit::Seconds, "Time callers waited for permits");
    describe_gauge!(BULKHEAD_IN_FLIGHT, Unit::Count, "Calls holding a bulkhead permit now");
    describe_gauge!(BULKHEAD_MAX_CONCURRENT, Unit::Count, "The bulkhead's concurrency limit");
    describe_counter!(BULKHEAD_REJECTED, Unit::Count, "Calls a full bulkhead rejected");
    describe_counter!(TIMEOUTS, Unit::Count, "Calls abandoned at their time limit");
    describe_histogram!(CALL_DURATION, Unit::Seconds, "Duration of whole protected calls");
    describe_gauge!(THROTTLE_REQUESTS, Unit::Count, "Requests in an adaptive throttle's window");
    describe_gauge!(THROTTLE_ACCEPTS, Unit::Count, "Accepted requests in the window");
    describe_gauge!(THROTTLE_PROBABILITY, "Probability that the next call is rejected (0-1)");
    describe_counter!(THROTTLE_REJECTED, Unit::Count, "Calls an adaptive throttle rejected");
}

// ----- handles, registered once per instance ---------------------------------------------

/// One instance's handles.
enum Handles {
    Circuit { success: Counter, failure: Counter, ignored: Counter, rejected: Counter },
    Limiter { waited: Counter, rejected: Counter, wait: Histogram },
    Bulkhead { rejected: Counter },
    Retry { calls: [Counter; 4], attempts: Counter },
    Timeout { timeouts: Counter },
    Call { durations: [Histogram; 4] },
    None,
}

impl Handles {
    fn new(layer: Layer, name: &Arc<str>) -> Handles {
        let name = || name.clone();
        match layer {
            Layer::CircuitBreaker => {
                let c = |outcome: &'static str| counter!(CIRCUIT_BREAKER_CALLS, "name" => name(), "outcome" => outcome);
                Handles::Circuit {
                    success: c("success"),
                    failure: c("failure"),
                    ignored: c("ignored"),
                    rejected: c("rejected"),
                }
            }
            Layer::RateLimiter => {
                let c = |outcome: &'static str| counter!(RATE_LIMITER_PERMITS, "name" => name(), "outcome" => outcome);
                Handles::Limiter {
                    waited: c("waited"),
                    rejected: c("rejected"),
                    wait: histogram!(RATE_LIMITER_WAIT, "name" => name()),
                }
            }
            Layer::Bulkhead => {
                Handles::Bulkhead { rejected: counter!(BULKHEAD_REJECTED, "name" => name()) }
            }
            Layer::Retry => {
                let c = |result: &'static str| counter!(RETRY_CALLS, "name" => name(), "result" => result);
                Handles::Retry {
                    calls: [
                        c("success_without_retry"),
                        c("success_with_retry"),
                        c("failed_without_retry"),
                        c("failed_with_retry"),
                    ],
                    attempts: counter!(RETRY_ATTEMPTS, "name" => name()),
                }
            }
            Layer::Timeout => Handles::Timeout { timeouts: counter!(TIMEOUTS, "name" => name()) },
            Layer::Call => {
                let h = |outcome: &'static str| histogram!(CALL_DURATION, "name" => name(), "outcome" => outcome);
                Handles::Call {
                    durations: [h("success"), h("failure"), h("rejected"), h("timeout")],
                }
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
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    CACHE.get_or_init(Cache::new)
}

/// Entries this thread used last: a linear scan of a few keys is cheaper than the shared
/// map's guard and hash on every event.
const RECENT: usize = 8;

/// The next slot to replace, and the entries.
type Recent = (usize, Vec<(Key, Arc<Entry>)>);

thread_local! {
    static RECENT_ENTRIES: std::cell::RefCell<Recent> =
        const { std::cell::RefCell::new((0, Vec::new())) };
}

/// The entry of `event`'s instance: from this thread's recent entries, else the shared
/// map (registering the instance's handles on its first event).
fn entry(event: &Event) -> Arc<Entry> {
    let key = (event.layer, Arc::as_ptr(&event.name) as *const u8 as usize);
    let recent = RECENT_ENTRIES.try_with(|recent| {
        let recent = recent.try_borrow().ok()?;
        recent.1.iter().find(|(k, _)| *k == key).map(|(_, e)| e.clone())
    });
    if let Ok(Some(entry)) = recent {
        return entry;
    }
    let map = cache().pin();
    let entry = match map.get(&key) {
        Some(entry) => entry.clone(),
        None => map
            .get_or_insert_with(key, || {
                let handles = Handles::new(event.layer, &event.name);
                Arc::new(Entry { _name: event.name.clone(), handles })
            })
            .clone(),
    };
    let _ = RECENT_ENTRIES.try_with(|recent| {
        if let Ok(mut recent) = recent.try_borrow_mut() {
            let (next, entries) = &mut *recent;
            if entries.len() < RECENT {
                entries.push((key, entry.clone()));
            } else {
                entries[*next % RECENT] = (key, entry.clone());
                *next = next.wrapping_add(1);
            }
        }
    });
    entry
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
        (
            Handles::Circuit { success, failure, ignored, .. },
            EventKind::CallRecorded { outcome, .. },
        ) => {
            match outcome {
                CallOutcome::Success => success,
                CallOutcome::Failure => failure,
                CallOutcome::Ignored => ignored,
            }
            .increment(1);
        }
        (Handles::Circuit { rejected, .. }, EventKind::Rejected { .. }) => rejected.increment(1),
        (Handles::Limiter { waited, wait, .. }, EventKind::Waited { waited: d }) => {
            waited.increment(1);
            wait.record(d.as_secs_f64());
        }
        (Handles::Limiter { rejected, .. }, EventKind::Rejected { .. }) => rejected.increment(1),
        (Handles::Bulkhead { rejected }, EventKind::Rejected { .. }) => rejected.increment(1),
        (Handles::Retry { attempts, .. }, EventKind::Attempt { .. }) => attempts.increment(1),
        (Handles::Retry { calls, .. }, EventKind::RetryFinished { attempts, succeeded }) => {
            let index = match (*succeeded, *attempts > 1) {
                (true, false) => 0,
                (true, true) => 1,
                (false, false) => 2,
                (false, true) => 3,
            };
            calls[index].increment(1);
        }
        (Handles::Timeout { timeouts }, EventKind::TimedOut { .. }) => timeouts.increment(1),
        (Handles::Call { durations }, EventKind::CallFinished { outcome, duration }) => {
            let index = match outcome {
                CallEnd::Success => 0,
                CallEnd::Failure => 1,
                CallEnd::Rejected => 2,
                CallEnd::Timeout => 3,
            };
            durations[index].record(duration.as_secs_f64());
        }
        _ => {}
    }
}
