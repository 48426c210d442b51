//! One process-wide word saying whether anything listens to whole calls: `tracing` (for
//! the `resilience.call` span), an observer of [`Interest::CALLS`] on the process default
//! hub, or the metrics' counting. A call loads it once (relaxed) and, when it is zero,
//! runs bare: no span, no clock read, no metric cell.
//!
//! Each source keeps its own bit current, the way `tracing` keeps a callsite's cached
//! `Interest`:
//!
//! - [`SPANS`] (and [`ATTEMPT_SPANS`] for the `resilience.attempt` span): a callsite of
//!   this module with the metadata of the `resilience.call` span is registered with
//!   `tracing` on the first call. `tracing` asks every dispatcher about
//!   it, and asks again whenever its interest cache is rebuilt (a global default set, a
//!   scoped default created, `rebuild_interest_cache`), so the bit is set while some
//!   dispatcher might record the span. Until that first registration the word carries
//!   [`UNREGISTERED`], which sends the call down the observed path, where it registers.
//! - [`CALLS`]: set by the process default hub whenever its observers change.
//! - [`METRICS`]: set while a `resilience::metrics::install` subscription lives.
//!
//! The bits are independent (`fetch_or` / `fetch_and`), each written under its source's
//! own serialisation; readers see a stale bit for as long as they would see a stale
//! interest without the word.
//!
//! [`Interest::CALLS`]: crate::events::Interest::CALLS
// Without the attribute macros nothing reads the word (the sources still keep it).
#![cfg_attr(not(feature = "macros"), allow(dead_code))]

use std::sync::Once;
use std::sync::atomic::{AtomicU8, Ordering};

use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::FieldSet;
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_core::{Level, Metadata};

/// Some dispatcher may record the `resilience.call` span.
pub(crate) const SPANS: u8 = 1;
/// An observer of the process default hub wants whole calls.
pub(crate) const CALLS: u8 = 2;
/// The metrics count whole calls and retries.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) const METRICS: u8 = 4;
/// The spans' mirror callsites are not registered with `tracing` yet.
pub(crate) const UNREGISTERED: u8 = 8;
/// Some dispatcher may record the `resilience.attempt` span of a retried call.
pub(crate) const ATTEMPT_SPANS: u8 = 16;

static WORD: AtomicU8 = AtomicU8::new(UNREGISTERED);

/// Who listens: zero when nobody does (one relaxed load).
#[inline(always)]
pub(crate) fn word() -> u8 {
    WORD.load(Ordering::Relaxed)
}

/// Sets or clears `bit`.
#[inline]
pub(crate) fn set(bit: u8, on: bool) {
    if on {
        WORD.fetch_or(bit, Ordering::Relaxed);
    } else {
        WORD.fetch_and(!bit, Ordering::Relaxed);
    }
}

/// Registers the spans' mirror callsites with `tracing` (once; [`SPANS`] and
/// [`ATTEMPT_SPANS`] are current from then on) and returns the word.
#[cold]
#[inline(never)]
pub(crate) fn register() -> u8 {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing_core::callsite::register(&CALL);
        tracing_core::callsite::register(&ATTEMPT);
        set(UNREGISTERED, false);
    });
    word()
}

/// A callsite with a span's metadata, whose interest `tracing` keeps in `bit`.
struct Mirror {
    bit: u8,
    meta: &'static Metadata<'static>,
}

impl Callsite for Mirror {
    fn set_interest(&self, interest: Interest) {
        set(self.bit, !interest.is_never());
    }

    fn metadata(&self) -> &Metadata<'_> {
        self.meta
    }
}

static CALL: Mirror = Mirror { bit: SPANS, meta: &CALL_META };

/// The fields of the `resilience.call` span (`trace::CallSite::span`), in its order.
static CALL_FIELDS: &[&str] = &["name", "layers", "error.type", "otel.status_code"];

static CALL_META: Metadata<'static> = Metadata::new(
    "resilience.call",
    "resilience",
    Level::INFO,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(CALL_FIELDS, Identifier(&CALL)),
    Kind::SPAN,
);

static ATTEMPT: Mirror = Mirror { bit: ATTEMPT_SPANS, meta: &ATTEMPT_META };

/// The fields of the `resilience.attempt` span (`trace::attempt_span`), in its order.
static ATTEMPT_FIELDS: &[&str] = &["attempt", "error.type", "otel.status_code"];

static ATTEMPT_META: Metadata<'static> = Metadata::new(
    "resilience.attempt",
    "resilience",
    Level::INFO,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(ATTEMPT_FIELDS, Identifier(&ATTEMPT)),
    Kind::SPAN,
);

#[cfg(all(test, feature = "macros"))]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Subscriber};

    /// Keeps the metadata of every span it is shown.
    #[derive(Default)]
    struct Keep(Mutex<Vec<&'static Metadata<'static>>>);

    impl Subscriber for Keep {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(span.metadata());
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn the_mirrors_have_the_metadata_of_the_spans() {
        let keep = std::sync::Arc::new(Keep::default());
        tracing::subscriber::with_default(keep.clone(), || {
            let site = crate::trace::CallSite::new("f", "retry");
            drop(site.span("f"));
            drop(crate::trace::attempt_span_of(1));
        });
        let spans = keep.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let [call, attempt] = spans.as_slice() else { panic!("two spans, got {}", spans.len()) };
        let fields = |m: &Metadata<'_>| m.fields().iter().map(|f| f.name()).collect::<Vec<_>>();
        for (span, mirror) in [(call, &CALL_META), (attempt, &ATTEMPT_META)] {
            assert_eq!(span.name(), mirror.name());
            assert_eq!(span.target(), mirror.target());
            assert_eq!(span.level(), mirror.level());
            assert!(span.is_span() && mirror.is_span());
            assert_eq!(fields(span), fields(mirror));
        }
    }
}
