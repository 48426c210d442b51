//! The span tree of protected calls, seen by a recording subscriber: one
//! `resilience.call` span per call (`name`, `layers`), one child `resilience.attempt`
//! span per attempt (`attempt`), `error.type` on what failed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use resilience::{Error, circuit_breaker, retry};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Debug, PartialEq)]
enum AppError {
    Down,
    Resilience(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Resilience(e)
    }
}

/// One recorded span: its name, its parent's id and its fields as text.
#[derive(Debug, Clone)]
struct SpanRecord {
    id: u64,
    name: &'static str,
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Fields<'a>(Option<&'a mut BTreeMap<String, String>>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if let Some(map) = self.0.as_mut() {
            map.insert(field.name().to_owned(), format!("{value:?}"));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(map) = self.0.as_mut() {
            map.insert(field.name().to_owned(), value.to_owned());
        }
    }
}

/// Records every span of target `resilience` with its parent (the span entered on this
/// thread when it was created).
#[derive(Clone, Default)]
struct Recorder {
    spans: Arc<Mutex<Vec<SpanRecord>>>,
    stack: Arc<Mutex<Vec<u64>>>,
    next: Arc<AtomicU64>,
}

impl Recorder {
    fn spans(&self) -> Vec<SpanRecord> {
        self.spans.lock().unwrap().clone()
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "resilience" && metadata.is_span()
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(Some(&mut fields)));
        let parent = attrs.parent().map(Id::into_u64).or_else(|| {
            if attrs.is_contextual() { self.stack.lock().unwrap().last().copied() } else { None }
        });
        self.spans.lock().unwrap().push(SpanRecord {
            id,
            name: attrs.metadata().name(),
            parent,
            fields,
        });
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = self.spans.lock().unwrap();
        if let Some(s) = spans.iter_mut().find(|s| s.id == span.into_u64()) {
            values.record(&mut Fields(Some(&mut s.fields)));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, span: &Id) {
        self.stack.lock().unwrap().push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut stack = self.stack.lock().unwrap();
        if let Some(i) = stack.iter().rposition(|&s| s == span.into_u64()) {
            stack.remove(i);
        }
    }
}

#[retry(max_attempts = 3, backoff = constant, initial_delay = 10ms, jitter = none)]
#[circuit_breaker(name = "spans-retried", failure_threshold = 10)]
async fn retried(calls: &AtomicU32) -> Result<u32, AppError> {
    match calls.fetch_add(1, Ordering::SeqCst) {
        0 | 1 => Err(AppError::Down),
        n => Ok(n),
    }
}

#[circuit_breaker(name = "spans-open", failure_threshold = 1)]
fn guarded(fail: bool) -> Result<u32, AppError> {
    if fail { Err(AppError::Down) } else { Ok(1) }
}

fn field<'a>(span: &'a SpanRecord, name: &str) -> Option<&'a str> {
    span.fields.get(name).map(String::as_str)
}

#[test]
fn a_call_that_retried_twice_then_succeeded_has_three_attempt_spans_under_its_call_span() {
    let recorder = Recorder::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let calls = AtomicU32::new(0);
    let result =
        tracing::subscriber::with_default(recorder.clone(), || runtime.block_on(retried(&calls)));
    assert_eq!(result, Ok(2));

    let spans = recorder.spans();
    let names: Vec<_> = spans.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        ["resilience.call", "resilience.attempt", "resilience.attempt", "resilience.attempt"]
    );
    let call = &spans[0];
    assert_eq!(call.parent, None);
    assert_eq!(field(call, "name"), Some("spans::retried"));
    assert_eq!(field(call, "layers"), Some("retry,circuit_breaker"));
    assert_eq!(field(call, "error.type"), None, "the call succeeded");
    for (i, attempt) in spans[1..].iter().enumerate() {
        assert_eq!(attempt.parent, Some(call.id), "attempt {} is a child of the call", i + 1);
        assert_eq!(field(attempt, "attempt"), Some((i + 1).to_string().as_str()));
    }
    let error = std::any::type_name::<AppError>();
    assert_eq!(field(&spans[1], "error.type"), Some(error));
    assert_eq!(field(&spans[2], "error.type"), Some(error));
    assert_eq!(field(&spans[1], "otel.status_code"), Some("ERROR"));
    assert_eq!(field(&spans[3], "error.type"), None, "the third attempt succeeded");
}

#[test]
fn a_call_rejected_by_an_open_circuit_is_one_call_span_with_error_type_circuit_open() {
    // Opened under a subscriber of its own: the process's first call registers the
    // spans' callsites with `tracing`, and while one dispatcher is registered `tracing`
    // asks only the registering thread's default about them, so a first call from a
    // thread without a subscriber would hide the spans from the other test's scoped
    // subscriber (a limit of `tracing`'s per-callsite interest cache).
    let opening = tracing::subscriber::with_default(Recorder::default(), || guarded(true));
    assert_eq!(opening, Err(AppError::Down), "opens the circuit");
    let recorder = Recorder::default();
    let result = tracing::subscriber::with_default(recorder.clone(), || guarded(false));
    assert!(matches!(result, Err(AppError::Resilience(Error::CircuitOpen { .. }))));

    let spans = recorder.spans();
    assert_eq!(spans.len(), 1, "{spans:?}");
    let call = &spans[0];
    assert_eq!(call.name, "resilience.call");
    assert_eq!(field(call, "name"), Some("spans::guarded"));
    assert_eq!(field(call, "layers"), Some("circuit_breaker"));
    assert_eq!(field(call, "error.type"), Some("circuit_open"));
    assert_eq!(field(call, "otel.status_code"), Some("ERROR"));
}
