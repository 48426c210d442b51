//! A registry's observers: a copy-on-write list read without a lock, and the union of
//! their topics, read with one relaxed load at every report site.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::{Event, EventKind, Interest, Layer, log};

type Callback = Arc<dyn Fn(&Event) + Send + Sync>;

struct Observer {
    id: u64,
    interest: Interest,
    callback: Callback,
}

struct Inner {
    /// The union of every observer's interest.
    interest: AtomicU32,
    /// Replaced whole on every (un)subscribe, so reporting never takes a lock.
    observers: ArcSwap<Vec<Arc<Observer>>>,
    /// Serialises (un)subscribes.
    edit: Mutex<()>,
    next_id: AtomicU64,
}

/// Where instances report their events: one per [`Registry`](crate::registry::Registry)
/// (subscribe with [`Registry::subscribe`](crate::registry::Registry::subscribe)), plus
/// the process default that instances built by hand use. Cloning shares it.
#[derive(Clone)]
pub(crate) struct Hub(Arc<Inner>);

impl Hub {
    /// A hub with no observer.
    pub(crate) fn new() -> Hub {
        Hub(Arc::new(Inner {
            interest: AtomicU32::new(0),
            observers: ArcSwap::from_pointee(Vec::new()),
            edit: Mutex::new(()),
            next_id: AtomicU64::new(0),
        }))
    }

    /// The process default: the hub of [`registry()`](crate::registry()) and of every
    /// instance built by hand.
    #[inline]
    pub(crate) fn global() -> &'static Hub {
        static GLOBAL: OnceLock<Hub> = OnceLock::new();
        GLOBAL.get_or_init(Hub::new)
    }

    /// Whether some observer wants a topic of `interest`.
    #[inline(always)]
    pub(crate) fn wants(&self, interest: Interest) -> bool {
        self.0.interest.load(Ordering::Relaxed) & interest.bits() != 0
    }

    /// Whether an event of `topic` at `level` goes anywhere (an observer or `tracing`).
    #[inline(always)]
    pub(crate) fn enabled(&self, topic: Interest, level: tracing::Level) -> bool {
        self.wants(topic) || log::enabled(level)
    }

    /// Report an event of `layer` instance `name`: `build` (giving the clock time and the
    /// kind) runs only when an observer wants `topic` or `tracing` has `level` enabled.
    #[inline(always)]
    pub(crate) fn report(
        &self,
        layer: Layer,
        name: &Arc<str>,
        topic: Interest,
        level: tracing::Level,
        build: impl FnOnce() -> (Duration, EventKind),
    ) {
        if self.enabled(topic, level) {
            self.emit_built(layer, name, build);
        }
    }

    /// The cold half of [`report`](Self::report).
    #[inline(never)]
    pub(crate) fn emit_built(
        &self,
        layer: Layer,
        name: &Arc<str>,
        build: impl FnOnce() -> (Duration, EventKind),
    ) {
        let (at, kind) = build();
        self.emit(&Event::new(layer, name.clone(), at, kind));
    }

    /// [`report`](Self::report) about one key of a keyed instance.
    #[inline]
    pub(crate) fn report_key(
        &self,
        layer: Layer,
        name: &Arc<str>,
        key: Option<&dyn fmt::Debug>,
        topic: Interest,
        level: tracing::Level,
        build: impl FnOnce() -> (Duration, EventKind),
    ) {
        if self.wants(topic) || log::enabled(level) {
            let (at, kind) = build();
            let event = Event::new(layer, name.clone(), at, kind);
            match key {
                Some(key) => self.emit(&event.with_key(format!("{key:?}"))),
                None => self.emit(&event),
            }
        }
    }

    /// Deliver `event` to the observers that want its topic, then to `tracing`.
    pub(crate) fn emit(&self, event: &Event) {
        let topic = event.kind.interest();
        if self.wants(topic) {
            // A callback may (un)subscribe: it replaces the list, not the one this guard
            // keeps alive.
            let observers = self.0.observers.load();
            for o in observers.iter().filter(|o| o.interest.intersects(topic)) {
                (o.callback)(event);
            }
        }
        log::record(event);
    }

    /// Call `f` on every event of the topics in `interest` until the subscription drops.
    pub(crate) fn subscribe(
        &self,
        interest: Interest,
        f: impl Fn(&Event) + Send + Sync + 'static,
    ) -> Subscription {
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        let observer = Arc::new(Observer { id, interest, callback: Arc::new(f) });
        self.edit(|list| list.push(observer));
        Subscription { hub: self.clone(), id }
    }

    fn edit(&self, change: impl FnOnce(&mut Vec<Arc<Observer>>)) {
        let _edit = self.0.edit.lock();
        let mut list: Vec<Arc<Observer>> = self.0.observers.load().iter().cloned().collect();
        change(&mut list);
        let union = list.iter().fold(Interest::NONE, |acc, o| acc | o.interest);
        self.0.observers.store(Arc::new(list));
        self.0.interest.store(union.bits(), Ordering::Relaxed);
        if self.same(Hub::global()) {
            crate::telemetry::set(crate::telemetry::CALLS, union.intersects(Interest::CALLS));
        }
    }

    /// Whether `self` and `other` are the same hub.
    pub(crate) fn same(&self, other: &Hub) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The topics some observer wants.
    #[inline(always)]
    pub(crate) fn interest(&self) -> Interest {
        Interest::from_bits(self.0.interest.load(Ordering::Relaxed))
    }
}

impl Default for Hub {
    /// The process default hub ([`Hub::global`]).
    fn default() -> Self {
        Hub::global().clone()
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("observers", &self.0.observers.load().len())
            .field("interest", &self.interest())
            .finish()
    }
}

/// Keeps a subscription alive; dropping it unsubscribes.
#[must_use = "dropping the subscription unsubscribes at once"]
pub struct Subscription {
    hub: Hub,
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
        let id = self.id;
        self.hub.edit(|list| list.retain(|o| o.id != id));
    }
}
