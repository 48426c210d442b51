//! One process-wide word saying whether anything listens to whole calls: `tracing` (for
//! the `resilience.call` span), an observer of [`Interest::CALLS`] on the process default
//! hub, or the metrics' counting. A call loads it once (relaxed) and, when it is zero,
//! runs bare: no span, no clock read, no metric cell.
//!
//! Each source keeps its own bit current, the way `tracing` keeps a callsite's cached
//! `Interest`:
//!
//! - [`SPANS`]: a callsite of this module with the metadata of the `resilience.call` span
//!   is registered with `tracing` on the first call. `tracing` asks every dispatcher about
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
/// The span's mirror callsite is not registered with `tracing` yet.
pub(crate) const UNREGISTERED: u8 = 8;

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

/// Registers the span's mirror callsite with `tracing` (once; [`SPANS`] is current from
/// then on) and returns the word.
#[cold]
#[inline(never)]
pub(crate) fn register() -> u8 {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing_core::callsite::register(&MIRROR);
        set(UNREGISTERED, false);
    });
    word()
}

/// A callsite with the `resilience.call` span's metadata, whose interest `tracing` keeps
/// in [`SPANS`].
struct Mirror;

static MIRROR: Mirror = Mirror;

/// The fields of the `resilience.call` span (`trace::CallSite::span`), in its order.
static FIELDS: &[&str] = &["name", "layers", "error.type", "otel.status_code"];

static META: Metadata<'static> = Metadata::new(
    "resilience.call",
    "resilience",
    Level::INFO,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(FIELDS, Identifier(&MIRROR)),
    Kind::SPAN,
);

impl Callsite for Mirror {
    fn set_interest(&self, interest: Interest) {
        set(SPANS, !interest.is_never());
    }

    fn metadata(&self) -> &Metadata<'_> {
        &META
    }
}

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
    fn the_mirror_has_the_metadata_of_the_call_span() {
        let keep = std::sync::Arc::new(Keep::default());
        tracing::subscriber::with_default(keep.clone(), || {
            let site = crate::trace::CallSite::new("f", "retry");
            drop(site.span("f"));
        });
        let spans = keep.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let [span] = spans.as_slice() else { panic!("one span, got {}", spans.len()) };
        assert_eq!(span.name(), META.name());
        assert_eq!(span.target(), META.target());
        assert_eq!(span.level(), META.level());
        assert!(span.is_span() && META.is_span());
        let fields = |m: &Metadata<'_>| m.fields().iter().map(|f| f.name()).collect::<Vec<_>>();
        assert_eq!(fields(span), fields(&META));
    }
}
