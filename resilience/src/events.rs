//! Subscribe to circuit-breaker state transitions.
//!
//! Every transition of every breaker (automatic or by an operator) is delivered to each
//! subscriber, synchronously, on the thread that caused it. Keep callbacks short (push to
//! a channel if the work is heavy). Transitions are also emitted as `tracing` events.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use resilience::events::{self, StateTransition};
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let sink = seen.clone();
//! let subscription = events::subscribe(move |t: &StateTransition| {
//!     sink.lock().unwrap().push((t.name.to_string(), t.from, t.to));
//! });
//! // ... breakers transition ...
//! drop(subscription); // unsubscribes
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use crate::circuit::CircuitState;

/// One change of a circuit's state.
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

type Listener = Arc<dyn Fn(&StateTransition) + Send + Sync>;

struct Listeners {
    count: AtomicUsize,
    next_id: AtomicU64,
    list: RwLock<Vec<(u64, Listener)>>,
}

static LISTENERS: Listeners = Listeners {
    count: AtomicUsize::new(0),
    next_id: AtomicU64::new(0),
    list: RwLock::new(Vec::new()),
};

/// Call `f` on every circuit state transition until the returned [`Subscription`] drops.
pub fn subscribe(f: impl Fn(&StateTransition) + Send + Sync + 'static) -> Subscription {
    let id = LISTENERS.next_id.fetch_add(1, Ordering::Relaxed);
    let mut list = LISTENERS.list.write();
    list.push((id, Arc::new(f)));
    LISTENERS.count.store(list.len(), Ordering::Release);
    Subscription { id }
}

/// Deliver `t` to every subscriber. Cheap when nobody subscribed.
pub(crate) fn emit(t: &StateTransition) {
    if LISTENERS.count.load(Ordering::Acquire) == 0 {
        return;
    }
    // Clone the list so a callback may subscribe or unsubscribe without deadlocking.
    let listeners: Vec<Listener> = LISTENERS.list.read().iter().map(|(_, l)| l.clone()).collect();
    for l in listeners {
        l(t);
    }
}

/// Keeps a subscription alive; dropping it unsubscribes.
#[must_use = "dropping the subscription unsubscribes at once"]
pub struct Subscription {
    id: u64,
}

impl Subscription {
    /// Keep the subscription for the rest of the process.
    pub fn forever(self) {
        std::mem::forget(self);
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("id", &self.id).finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut list = LISTENERS.list.write();
        list.retain(|(id, _)| *id != self.id);
        LISTENERS.count.store(list.len(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn subscribers_receive_until_dropped() {
        let hits = Arc::new(AtomicU32::new(0));
        let h = hits.clone();
        let name: Arc<str> = Arc::from("events-test-circuit");
        let n2 = name.clone();
        let sub = subscribe(move |t| {
            if t.name == n2 {
                h.fetch_add(1, Ordering::SeqCst);
            }
        });
        let t = StateTransition::new(
            name.clone(),
            CircuitState::Closed,
            CircuitState::Open,
            Duration::ZERO,
        );
        emit(&t);
        emit(&t);
        drop(sub);
        emit(&t);
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }
}
