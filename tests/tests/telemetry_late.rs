//! Whoever starts listening after calls ran unobserved sees the next call: a `tracing`
//! subscriber (scoped, then the global default), an observer of whole calls, the
//! metrics. A call reads one process-wide word saying whether anything listens and runs
//! bare when nothing does; each of these must reach that word. A subscriber that filters
//! the spans out leaves it clear.
//!
//! Its own test binary: it sets the process-global subscriber and recorder, in order.

use std::sync::{Arc, Mutex};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use prometheus_parse::{Scrape, Value};
use resilience::circuit_breaker;
use resilience::events::{CallEnd, EventKind, Interest};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest as SpanInterest;
use tracing::{Event, Metadata, Subscriber};

#[derive(Debug, PartialEq)]
enum AppError {
    Resilience(resilience::Error),
}

impl From<resilience::Error> for AppError {
    fn from(e: resilience::Error) -> Self {
        AppError::Resilience(e)
    }
}

#[circuit_breaker(name = "late", failure_threshold = 10)]
fn late() -> Result<u32, AppError> {
    Ok(1)
}

/// Keeps the name and `name` field of every span it enables; `wants_calls` says
/// whether it enables `resilience.call` (it enables nothing else).
#[derive(Clone)]
struct Spans {
    wants_calls: bool,
    seen: Arc<Mutex<Vec<(&'static str, String)>>>,
}

impl Spans {
    fn new(wants_calls: bool) -> Spans {
        Spans { wants_calls, seen: Arc::default() }
    }

    fn seen(&self) -> Vec<(&'static str, String)> {
        self.seen.lock().unwrap().clone()
    }
}

struct NameField<'a>(&'a mut String);

impl tracing::field::Visit for NameField<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "name" {
            *self.0 = format!("{value:?}");
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "name" {
            *self.0 = value.to_owned();
        }
    }
}

impl Subscriber for Spans {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> SpanInterest {
        if self.enabled(metadata) { SpanInterest::always() } else { SpanInterest::never() }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.wants_calls && metadata.name() == "resilience.call"
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut name = String::new();
        attrs.record(&mut NameField(&mut name));
        let mut seen = self.seen.lock().unwrap();
        seen.push((attrs.metadata().name(), name));
        Id::from_u64(seen.len() as u64)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The count of the whole-call histogram of `late` ending in success.
fn late_successes(scrape: &Scrape) -> Option<u64> {
    let sample = scrape.samples.iter().find(|s| {
        s.metric == "resilience_call_duration_seconds"
            && s.labels.get("name") == Some("telemetry_late::late")
            && s.labels.get("outcome") == Some("success")
    })?;
    match &sample.value {
        Value::Histogram(buckets) => {
            buckets.iter().find(|b| b.less_than.is_infinite()).map(|b| b.count as u64)
        }
        other => panic!("a histogram expected, got {other:?}"),
    }
}

#[test]
fn listeners_that_arrive_after_unobserved_calls_see_the_next_call() {
    // Nothing listens yet.
    for _ in 0..3 {
        assert_eq!(late(), Ok(1));
    }

    // A subscriber that filters the call spans out records none.
    let filtering = Spans::new(false);
    tracing::subscriber::with_default(filtering.clone(), || assert_eq!(late(), Ok(1)));
    assert!(filtering.seen().is_empty(), "{:?}", filtering.seen());

    // A scoped subscriber that wants them sees the next call's.
    let scoped = Spans::new(true);
    tracing::subscriber::with_default(scoped.clone(), || assert_eq!(late(), Ok(1)));
    assert_eq!(scoped.seen(), [("resilience.call", "telemetry_late::late".to_owned())]);

    // An observer of whole calls subscribed now sees the next call end.
    let ends = Arc::new(Mutex::new(Vec::new()));
    let sink = ends.clone();
    let observer = resilience::events::subscribe(Interest::CALLS, move |event| {
        if let EventKind::CallFinished { outcome, .. } = &event.kind {
            sink.lock().unwrap().push((event.name.to_string(), *outcome));
        }
    });
    assert_eq!(late(), Ok(1));
    assert_eq!(*ends.lock().unwrap(), [("telemetry_late::late".to_owned(), CallEnd::Success)]);
    drop(observer);

    // The metrics installed now count the next call (and only it).
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            resilience::metrics::DURATION_BUCKETS,
        )
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();
    let metrics = resilience::metrics::install();
    assert_eq!(late(), Ok(1));
    resilience::metrics::collect();
    let scrape = Scrape::parse(handle.render().lines().map(|l| Ok(l.to_owned()))).unwrap();
    assert_eq!(late_successes(&scrape), Some(1), "{}", handle.render());
    drop(metrics);

    // A global default subscriber set last sees the next call's span.
    let global = Spans::new(true);
    tracing::subscriber::set_global_default(global.clone()).unwrap();
    assert_eq!(late(), Ok(1));
    assert_eq!(global.seen(), [("resilience.call", "telemetry_late::late".to_owned())]);
}
