//! One event interface for every layer: what circuit breakers, rate limiters, bulkheads,
//! retries and timeouts do, delivered to observers.
//!
//! Every instance reports to the event hub of the [`Registry`](crate::registry::Registry)
//! that created it (instances built by hand report to the process default, the hub of
//! [`registry()`](crate::registry())). An observer subscribes to the topics it wants
//! ([`Interest`]) and is called synchronously, on the thread that caused the event, after
//! any lock of the instance is released, so it may act on the instance. Keep callbacks
//! short (push to a channel if the work is heavy).
//!
//! An event is built only when someone listens: each report site reads one relaxed
//! atomic (the union of the subscribers' topics) and builds nothing when its topic is not
//! wanted. The `tracing` output is one consumer of the same events (see
//! [the logging policy](#logging)).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig, CircuitState};
//! use resilience::events::{EventKind, Interest};
//! use resilience::registry::Registry;
//! use resilience::Error;
//!
//! let registry = Registry::new();
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let sink = seen.clone();
//! let subscription = registry.subscribe(Interest::TRANSITIONS | Interest::REJECTIONS, move |e| {
//!     sink.lock().unwrap().push(e.kind.clone());
//! });
//!
//! let config = CircuitBreakerConfig::builder().failure_threshold(1).build()?;
//! let breaker = registry.circuit_breakers().get_or_create("events-doc", config)?;
//! let _ = breaker.call(|| Err::<(), Error>(Error::timeout(std::time::Duration::from_secs(1))));
//! let _ = breaker.call(|| Ok::<(), Error>(()));
//!
//! let seen = seen.lock().unwrap();
//! assert!(matches!(&seen[0], EventKind::Transition(t) if t.to == CircuitState::Open));
//! assert!(matches!(&seen[1], EventKind::Rejected { .. }));
//! drop(subscription); // unsubscribes
//! # Ok::<(), resilience::ConfigError>(())
//! ```
//!
//! # Logging
//!
//! Every event is also a `tracing` event (target `resilience`) when that level is
//! enabled. The levels follow one policy: `WARN` says an operator may need to act, once
//! per incident or per failed call, never once per attempt, so a service running at 20 %
//! failures does not flood its logs.
//!
//! | Level   | Events |
//! |---------|--------|
//! | `WARN`  | a circuit opening and other circuit transitions; a retry giving up after the last failure; an exhausted retry budget (the one warning of that call: its give-up is at `DEBUG`); a timeout; a refused config file |
//! | `INFO`  | an applied config file |
//! | `DEBUG` | each scheduled retry (attempt, error, delay); rejections; limiter and bulkhead waits; adaptive limit changes; a fallback answering a call's error |
//!
//! Counted calls and attempts are numbers for observers (metrics), not log lines.

mod hub;
mod kind;
mod log;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::circuit::CircuitState;

pub(crate) use hub::Hub;
pub use hub::Subscription;
pub use kind::{CallEnd, EventKind, GiveUpReason, Interest, Layer};

/// One thing that happened in one named instance.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// The kind of instance that reports it.
    pub layer: Layer,
    /// The instance's name (a retry policy without a name reports `"<unnamed>"`).
    pub name: Arc<str>,
    /// The key, for an event of one key of a keyed instance (its `Debug` text).
    pub key: Option<Arc<str>>,
    /// The reporting instance's clock time of the event.
    pub at: Duration,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// An event record (fields as documented on the struct).
    pub fn new(layer: Layer, name: Arc<str>, at: Duration, kind: EventKind) -> Self {
        Event { layer, name, key: None, at, kind }
    }

    /// The same event, about one key of a keyed instance.
    pub fn with_key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.key = Some(key.into());
        self
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} '{}'", self.layer, self.name)?;
        if let Some(key) = &self.key {
            write!(f, "[{key}]")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// One change of a circuit's state (the payload of [`EventKind::Transition`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StateTransition {
    /// The circuit's name.
    pub name: Arc<str>,
    /// State before.
    pub from: CircuitState,
    /// State after.
    pub to: CircuitState,
    /// Consecutive failures counted when the transition happened.
    pub consecutive_failures: u32,
    /// Failure rate of the window when the transition happened, if the breaker keeps one.
    pub failure_rate: Option<f64>,
    /// How long the circuit will stay open (for transitions to `Open`).
    pub open_for: Option<Duration>,
    /// The breaker clock's time of the transition.
    pub at: Duration,
}

impl StateTransition {
    /// A transition record (fields as documented on the struct).
    pub fn new(name: Arc<str>, from: CircuitState, to: CircuitState, at: Duration) -> Self {
        StateTransition {
            name,
            from,
            to,
            consecutive_failures: 0,
            failure_rate: None,
            open_for: None,
            at,
        }
    }
}

/// The name events carry for an instance without one.
pub(crate) fn unnamed() -> &'static Arc<str> {
    static UNNAMED: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    UNNAMED.get_or_init(|| Arc::from("<unnamed>"))
}

/// Call `f` on every event of the topics in `interest`, reported by instances of the
/// process default registry ([`registry()`](crate::registry())) and by instances built
/// by hand, until the returned [`Subscription`] drops. Same as
/// `registry().subscribe(interest, f)`.
///
/// ```
/// use resilience::events::{self, Interest};
///
/// let subscription = events::subscribe(Interest::ALL, |event| println!("{event}"));
/// drop(subscription);
/// ```
pub fn subscribe(interest: Interest, f: impl Fn(&Event) + Send + Sync + 'static) -> Subscription {
    Hub::global().subscribe(interest, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn transition(name: &Arc<str>) -> Event {
        let t = StateTransition::new(
            name.clone(),
            CircuitState::Closed,
            CircuitState::Open,
            Duration::ZERO,
        );
        Event::new(Layer::CircuitBreaker, name.clone(), Duration::ZERO, EventKind::Transition(t))
    }

    #[test]
    fn subscribers_receive_until_dropped() {
        let hub = Hub::new();
        let hits = Arc::new(AtomicU32::new(0));
        let h = hits.clone();
        let name: Arc<str> = Arc::from("events-test-circuit");
        let sub = hub.subscribe(Interest::TRANSITIONS, move |_| {
            h.fetch_add(1, Ordering::SeqCst);
        });
        assert!(hub.wants(Interest::TRANSITIONS));
        hub.emit(&transition(&name));
        hub.emit(&transition(&name));
        drop(sub);
        assert!(!hub.wants(Interest::TRANSITIONS), "no subscriber left: nothing wanted");
        hub.emit(&transition(&name));
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_subscriber_gets_only_its_topics() {
        let hub = Hub::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let _sub = hub.subscribe(Interest::REJECTIONS, move |e| {
            sink.lock().unwrap().push(e.kind.interest());
        });
        let name: Arc<str> = Arc::from("topics");
        assert!(!hub.wants(Interest::TRANSITIONS));
        assert!(hub.wants(Interest::REJECTIONS));
        hub.emit(&transition(&name));
        hub.emit(&Event::new(
            Layer::RateLimiter,
            name,
            Duration::ZERO,
            EventKind::Rejected { retry_after: Some(Duration::from_secs(1)), reason: "test" },
        ));
        assert_eq!(*seen.lock().unwrap(), vec![Interest::REJECTIONS]);
    }

    #[test]
    fn the_interest_union_follows_subscribers() {
        let hub = Hub::new();
        let a = hub.subscribe(Interest::CALLS, |_| {});
        let b = hub.subscribe(Interest::RETRIES | Interest::CALLS, |_| {});
        assert!(hub.wants(Interest::CALLS) && hub.wants(Interest::RETRIES));
        drop(b);
        assert!(hub.wants(Interest::CALLS) && !hub.wants(Interest::RETRIES));
        drop(a);
        assert!(!hub.wants(Interest::ALL));
    }

    #[test]
    fn a_subscriber_may_subscribe_and_unsubscribe_from_inside_a_callback() {
        let hub = Hub::new();
        let inner: Arc<Mutex<Vec<Subscription>>> = Arc::default();
        let (h, keep) = (hub.clone(), inner.clone());
        let _outer = hub.subscribe(Interest::TRANSITIONS, move |_| {
            let mut subs = keep.lock().unwrap();
            subs.push(h.subscribe(Interest::TRANSITIONS, |_| {}));
            if subs.len() > 1 {
                drop(subs.remove(0));
            }
        });
        let name: Arc<str> = Arc::from("reentrant");
        hub.emit(&transition(&name));
        hub.emit(&transition(&name));
        assert_eq!(inner.lock().unwrap().len(), 1);
    }
}
