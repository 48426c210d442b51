//! The spans of a protected call and its whole-call event, for the code the attribute
//! macros generate (re-exported by `__private`; not public API).
//!
//! Every call gets a `resilience.call` span (fields `name`, `layers`) and every attempt of
//! a retried call a child `resilience.attempt` span (field `attempt`); a failed call or
//! attempt records `error.type` and `otel.status_code = "ERROR"`, the fields
//! `tracing-opentelemetry` maps to OpenTelemetry's error conventions. The spans are built
//! with a level (`INFO`). Whether anything listens to a call (a dispatcher that may record
//! the span, an observer of whole calls, the metrics) is one process-wide word
//! (`crate::telemetry`) that mirrors `tracing`'s cached interest in the span's callsite:
//! when nothing does, a call runs bare after one relaxed load, with a subscriber that
//! filters the spans out as well as with none.
//!
//! A call reports [`EventKind::CallFinished`] (its outcome and duration) to the process
//! default hub when an observer wants [`Interest::CALLS`](crate::events::Interest::CALLS);
//! otherwise it reads no clock.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use tracing::{Level, Span, field};

use crate::__private::{Owner, type_path};
use crate::clock::default_clock_ref;
use crate::events::{CallEnd, EventKind, Hub, Layer};
use crate::telemetry;
use crate::{Error, Fault};

/// One protected function: its name and its layers, a `static` in the expansion (not
/// public API).
#[derive(Debug)]
pub struct CallSite {
    name: &'static str,
    layers: &'static str,
    /// The name spans and events carry, made once.
    event_name: OnceLock<Arc<str>>,
    /// Where the metrics count this function's calls.
    #[cfg(feature = "metrics")]
    cells: OnceLock<Arc<crate::metrics::CallCells>>,
}

impl CallSite {
    /// A call site: `name` is the function's path (a method's name alone: the owner passed
    /// with each call prefixes it with `Self`'s path), `layers` its layers, outermost
    /// first, comma-separated (`"retry,circuit_breaker"`).
    pub const fn new(name: &'static str, layers: &'static str) -> Self {
        CallSite {
            name,
            layers,
            event_name: OnceLock::new(),
            #[cfg(feature = "metrics")]
            cells: OnceLock::new(),
        }
    }

    /// The call's name: `name`, prefixed with the owner's path for a method (read once).
    #[inline(always)]
    fn name(&'static self, owner: impl Owner) -> &'static Arc<str> {
        match self.event_name.get() {
            Some(name) => name,
            None => self.resolve_name(owner),
        }
    }

    #[cold]
    #[inline(never)]
    fn resolve_name(&'static self, owner: impl Owner) -> &'static Arc<str> {
        let name: Arc<str> = match owner() {
            Some(ty) => format!("{}::{}", type_path(ty), self.name).into(),
            None => self.name.into(),
        };
        self.event_name.get_or_init(|| name)
    }

    /// The call's span when a dispatcher may record it, else a disabled one.
    #[inline(always)]
    fn span_if(&self, listening: u8, name: &str) -> Span {
        if listening & telemetry::SPANS != 0 { self.span(name) } else { Span::none() }
    }

    /// The call's span. Its metadata is the mirror callsite's in `crate::telemetry`
    /// (checked by a test there): keep the two alike.
    #[inline(always)]
    pub(crate) fn span(&self, name: &str) -> Span {
        tracing::span!(
            target: "resilience",
            Level::INFO,
            "resilience.call",
            name,
            layers = self.layers,
            "error.type" = field::Empty,
            otel.status_code = field::Empty,
        )
    }
}

/// The start of a call, when an observer wants whole calls (a reading of the default
/// clock, the events' time) or the metrics count them (of the cheapest clock).
#[inline(always)]
fn start(listening: u8) -> Option<Start> {
    if listening & telemetry::CALLS != 0 {
        return Some(Start { at: default_clock_ref().now_nanos(), events: true });
    }
    #[cfg(feature = "metrics")]
    if listening & telemetry::METRICS != 0 {
        return Some(Start { at: crate::clock::cheap_now_nanos(), events: false });
    }
    None
}

/// When a call started (in nanoseconds: a duration is one subtraction), and on which
/// clock.
#[derive(Debug, Clone, Copy)]
struct Start {
    at: u64,
    /// On the default clock, for an event: the end is read on the same clock.
    events: bool,
}

impl Start {
    /// The end of the call on the clock of its start, and its duration, in nanoseconds.
    #[inline]
    fn end(self) -> (u64, u64) {
        #[cfg(feature = "metrics")]
        let now = if self.events {
            default_clock_ref().now_nanos()
        } else {
            crate::clock::cheap_now_nanos()
        };
        #[cfg(not(feature = "metrics"))]
        let now = default_clock_ref().now_nanos();
        (now, now.saturating_sub(self.at))
    }
}

/// Runs a sync call inside its `resilience.call` span (not public API).
#[inline(always)]
pub fn traced<T, E>(
    site: &'static CallSite,
    owner: impl Owner,
    body: impl FnOnce() -> Result<T, Fault<E>>,
) -> Result<T, Fault<E>> {
    let listening = telemetry::word();
    if listening == 0 {
        return body();
    }
    traced_slow(site, owner, listening, body)
}

/// [`traced`], then `finish` on the result (not public API): on the bare path the body's
/// result goes to `finish` directly, not through the observed path's return slot.
#[inline(always)]
pub fn traced_then<T, E, R>(
    site: &'static CallSite,
    owner: impl Owner,
    body: impl FnOnce() -> Result<T, Fault<E>>,
    finish: impl FnOnce(Result<T, Fault<E>>) -> R,
) -> R {
    let listening = telemetry::word();
    if listening == 0 {
        return finish(body());
    }
    finish(traced_slow(site, owner, listening, body))
}

#[inline(never)]
fn traced_slow<T, E>(
    site: &'static CallSite,
    owner: impl Owner,
    listening: u8,
    body: impl FnOnce() -> Result<T, Fault<E>>,
) -> Result<T, Fault<E>> {
    observed_call(site, owner, listening, body)
}

/// [`traced_slow`], then `finish` on the result, in one call out of line: a caller whose
/// bare path does not go through `Fault` keeps the observed path's result and its
/// conversion out of its own frame.
#[inline(never)]
pub(crate) fn traced_slow_then<T, E, R>(
    site: &'static CallSite,
    owner: impl Owner,
    listening: u8,
    body: impl FnOnce() -> Result<T, Fault<E>>,
    finish: fn(Result<T, Fault<E>>) -> R,
) -> R {
    finish(observed_call(site, owner, listening, body))
}

/// The body of an observed sync call: its span, its clock reads and its count.
#[inline(always)]
fn observed_call<T, E>(
    site: &'static CallSite,
    owner: impl Owner,
    listening: u8,
    body: impl FnOnce() -> Result<T, Fault<E>>,
) -> Result<T, Fault<E>> {
    let listening = registered(listening);
    if listening == 0 {
        return body();
    }
    let name = site.name(owner);
    let started = start(listening);
    // Only the metrics or an observer of whole calls: no span to build, enter or drop.
    let result = if listening & telemetry::SPANS != 0 {
        let span = site.span(name);
        let result = {
            let _entered = span.enter();
            body()
        };
        record_error_if(&span, &result);
        result
    } else {
        body()
    };
    if let Some(start) = started {
        count(site, name, start, end(&result));
    }
    result
}

/// The word once the span's mirror callsite is registered (the first observed call
/// registers it).
#[inline(always)]
fn registered(listening: u8) -> u8 {
    if listening & telemetry::UNREGISTERED != 0 { telemetry::register() } else { listening }
}

/// Runs an async call inside its `resilience.call` span (not public API).
///
/// A future of its own rather than an `async fn`: it holds the body once, pinned in
/// place, so wrapping a call adds a few words to its future, never a second copy of it.
#[inline(always)]
pub fn traced_async<T, E, F>(site: &'static CallSite, owner: impl Owner, body: F) -> Traced<F>
where
    F: Future<Output = Result<T, Fault<E>>>,
{
    let listening = telemetry::word();
    let observed = if listening == 0 { None } else { observe(site, owner, listening) };
    Traced { body, observed }
}

#[inline(never)]
fn observe(site: &'static CallSite, owner: impl Owner, listening: u8) -> Option<Observed> {
    let listening = registered(listening);
    if listening == 0 {
        return None;
    }
    let name = site.name(owner);
    Some(Observed { site, name, span: site.span_if(listening, name), started: start(listening) })
}

/// What an observed call carries besides its body.
#[derive(Debug)]
struct Observed {
    site: &'static CallSite,
    name: &'static Arc<str>,
    span: Span,
    started: Option<Start>,
}

pin_project_lite::pin_project! {
    /// The future of [`traced_async`] (not public API).
    #[derive(Debug)]
    pub struct Traced<F> {
        #[pin]
        body: F,
        observed: Option<Observed>,
    }
}

impl<T, E, F: Future<Output = Result<T, Fault<E>>>> Future for Traced<F> {
    type Output = Result<T, Fault<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(observed) = this.observed.as_ref() else {
            return this.body.poll(cx);
        };
        let result = {
            let _entered = observed.span.enter();
            std::task::ready!(this.body.poll(cx))
        };
        finish(observed.site, observed.name, &observed.span, observed.started, &result);
        Poll::Ready(result)
    }
}

/// The span of attempt `attempt` (1-based) of a retried call (not public API): a
/// disabled one, without asking `tracing`, when no dispatcher may record it.
#[inline(always)]
pub(crate) fn attempt_span(attempt: u32) -> Span {
    if telemetry::word() & (telemetry::ATTEMPT_SPANS | telemetry::UNREGISTERED) == 0 {
        return Span::none();
    }
    attempt_span_of(attempt)
}

/// The span of attempt `attempt`. Its metadata is the mirror callsite's in
/// `crate::telemetry` (checked by a test there): keep the two alike.
#[inline(always)]
pub(crate) fn attempt_span_of(attempt: u32) -> Span {
    tracing::span!(
        target: "resilience",
        Level::INFO,
        "resilience.attempt",
        attempt,
        error.r#type = field::Empty,
        otel.status_code = field::Empty,
    )
}

/// Runs a sync attempt inside `span`.
#[inline(always)]
fn attempt<T, E>(span: Span, run: impl FnOnce() -> Result<T, Fault<E>>) -> Result<T, Fault<E>> {
    let result = {
        let _entered = span.enter();
        run()
    };
    if !span.is_disabled() {
        record_error(&span, &result);
    }
    result
}

/// Runs sync attempt `attempt` (1-based) of a retried call inside its
/// `resilience.attempt` span; when no dispatcher may record the span, runs it bare,
/// without building one.
#[inline(always)]
pub(crate) fn attempt_numbered<T, E>(
    attempt: u32,
    run: impl FnOnce() -> Result<T, Fault<E>>,
) -> Result<T, Fault<E>> {
    if telemetry::word() & (telemetry::ATTEMPT_SPANS | telemetry::UNREGISTERED) == 0 {
        return run();
    }
    attempt_observed(attempt, run)
}

/// [`attempt_numbered`] when the span may be recorded.
#[inline(never)]
fn attempt_observed<T, E>(
    attempt: u32,
    run: impl FnOnce() -> Result<T, Fault<E>>,
) -> Result<T, Fault<E>> {
    self::attempt(attempt_span_of(attempt), run)
}

/// Runs an async attempt inside `span` (not public API). A future of its own, like
/// [`traced_async`]'s: the attempt is held once.
#[inline(always)]
pub fn attempt_async<T, E, F>(span: Span, run: F) -> Attempt<F>
where
    F: Future<Output = Result<T, Fault<E>>>,
{
    Attempt { run, span }
}

pin_project_lite::pin_project! {
    /// The future of [`attempt_async`] (not public API).
    #[derive(Debug)]
    pub struct Attempt<F> {
        #[pin]
        run: F,
        span: Span,
    }
}

impl<T, E, F: Future<Output = Result<T, Fault<E>>>> Future for Attempt<F> {
    type Output = Result<T, Fault<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.span.is_disabled() {
            return this.run.poll(cx);
        }
        let result = {
            let _entered = this.span.enter();
            std::task::ready!(this.run.poll(cx))
        };
        record_error(this.span, &result);
        Poll::Ready(result)
    }
}

/// A fallback answered the call's final error: reported under the call's name, as its
/// whole-call events are (not public API).
#[cold]
#[inline(never)]
pub fn fallback_used(site: &'static CallSite, owner: impl Owner, rejected: bool) {
    crate::fallback::report(site.name(owner), rejected);
}

#[inline(always)]
fn finish<T, E>(
    site: &'static CallSite,
    name: &'static Arc<str>,
    span: &Span,
    started: Option<Start>,
    result: &Result<T, Fault<E>>,
) {
    record_error_if(span, result);
    if let Some(start) = started {
        count(site, name, start, end(result));
    }
}

/// Counts a finished call for the metrics and reports it to the observers of whole
/// calls, as `start` says who wants it.
#[inline(never)]
fn count(
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))] site: &'static CallSite,
    name: &'static Arc<str>,
    start: Start,
    outcome: CallEnd,
) {
    let (now, nanos) = start.end();
    #[cfg(feature = "metrics")]
    if crate::metrics::active() {
        crate::metrics::count_call(&site.cells, name, outcome, nanos);
    }
    if start.events {
        Hub::global().emit_built(Layer::Call, name, || {
            let duration = Duration::from_nanos(nanos);
            (Duration::from_nanos(now), EventKind::CallFinished { outcome, duration })
        });
    }
}

/// Records a failed call's or attempt's error on its span, when the span is recorded.
#[inline(always)]
fn record_error_if<T, E>(span: &Span, result: &Result<T, Fault<E>>) {
    if result.is_err() && !span.is_disabled() {
        record_error(span, result);
    }
}

#[cold]
#[inline(never)]
fn record_error<T, E>(span: &Span, result: &Result<T, Fault<E>>) {
    if let Some(error) = error_type(result) {
        span.record("error.type", error);
        span.record("otel.status_code", "ERROR");
    }
}

fn end<T, E>(result: &Result<T, Fault<E>>) -> CallEnd {
    match result {
        Ok(_) => CallEnd::Success,
        Err(Fault::Inner(_)) => CallEnd::Failure,
        Err(Fault::Rejected(Error::Timeout { .. })) => CallEnd::Timeout,
        Err(Fault::Rejected(_)) => CallEnd::Rejected,
    }
}

/// OpenTelemetry's `error.type`: the error type's path for the operation's own error, a
/// short low-cardinality name for a rejection.
fn error_type<T, E>(result: &Result<T, Fault<E>>) -> Option<&'static str> {
    match result {
        Ok(_) => None,
        Err(Fault::Inner(_)) => Some(std::any::type_name::<E>()),
        Err(Fault::Rejected(e)) => Some(match e {
            Error::CircuitOpen { .. } => "circuit_open",
            Error::RateLimited { .. } => "rate_limited",
            Error::Timeout { .. } => "timeout",
            Error::BulkheadFull { .. } => "bulkhead_full",
            Error::BackendUnavailable { .. } => "backend_unavailable",
            Error::BlockingPoolFull { .. } => "blocking_pool_full",
            Error::Config(_) => "config",
        }),
    }
}
