//! `GET /events`: the registry's events as Server-Sent Events.
//!
//! Each client has its own subscription and a bounded buffer. The observer runs on the
//! thread of the call that caused the event and only *tries* to push (no lock held while
//! waiting, no await): a full buffer drops the event and counts it, and the client gets a
//! `gap` event with the count once its buffer drains. Dropping the stream (the client
//! went away) drops the subscription.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State as Extract;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::api::State;
use crate::events::{CallEnd, Event, EventKind, Subscription};

/// One client's stream: its buffer, its count of dropped events, its subscription.
struct Client {
    events: mpsc::Receiver<Event>,
    skipped: Arc<AtomicU64>,
    _subscription: Subscription,
}

/// `GET /events`.
pub(crate) async fn events(
    Extract(state): Extract<State>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let inner = state.inner();
    let (tx, rx) = mpsc::channel(inner.config.event_buffer);
    let skipped = Arc::new(AtomicU64::new(0));
    let counter = skipped.clone();
    let subscription = inner.registry.subscribe(inner.config.interest, move |event| {
        if tx.try_send(event.clone()).is_err() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let client = Client { events: rx, skipped, _subscription: subscription };
    let stream = futures_util::stream::unfold(client, |mut client| async move {
        let event = next(&mut client).await?;
        Some((Ok(event), client))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The next SSE event: a buffered event, else the gap left by dropped ones, else wait.
async fn next(client: &mut Client) -> Option<SseEvent> {
    if let Ok(event) = client.events.try_recv() {
        return Some(sse(to_json(&event)));
    }
    let skipped = client.skipped.swap(0, Ordering::Relaxed);
    if skipped > 0 {
        return Some(sse(json!({ "type": "gap", "skipped": skipped })));
    }
    client.events.recv().await.map(|event| sse(to_json(&event)))
}

fn sse(value: Value) -> SseEvent {
    SseEvent::default().data(value.to_string())
}

fn secs(d: Duration) -> Value {
    json!(d.as_secs_f64())
}

/// An event as a JSON object: `type`, `layer`, `name`, `key` (keyed instances), `at`
/// (seconds on the instance's clock) and the kind's own fields.
pub(crate) fn to_json(event: &Event) -> Value {
    let mut object = Map::new();
    object.insert("type".into(), json!(event.kind.as_str()));
    object.insert("layer".into(), json!(event.layer.as_str()));
    object.insert("name".into(), json!(&*event.name));
    if let Some(key) = &event.key {
        object.insert("key".into(), json!(&**key));
    }
    object.insert("at".into(), secs(event.at));
    let fields = match &event.kind {
        EventKind::Transition(t) => json!({
            "from": t.from,
            "to": t.to,
            "consecutive_failures": t.consecutive_failures,
            "failure_rate": t.failure_rate,
            "open_for": t.open_for.map(|d| d.as_secs_f64()),
        }),
        EventKind::CallRecorded { outcome, duration } => {
            json!({ "outcome": format!("{outcome:?}"), "duration": secs(*duration) })
        }
        EventKind::Rejected { retry_after, reason } => {
            json!({ "reason": reason, "retry_after": retry_after.map(|d| d.as_secs_f64()) })
        }
        EventKind::Waited { waited } => json!({ "waited": secs(*waited) }),
        EventKind::Attempt { attempt, succeeded } => {
            json!({ "attempt": attempt, "succeeded": succeeded })
        }
        EventKind::RetryScheduled { attempt, max_attempts, delay, error } => json!({
            "attempt": attempt,
            "max_attempts": max_attempts,
            "delay": secs(*delay),
            "error": &**error,
        }),
        EventKind::GaveUp { attempts, reason } => {
            json!({ "attempts": attempts, "reason": reason.as_str() })
        }
        EventKind::BudgetExhausted { budget, attempt } => {
            json!({ "budget": &**budget, "attempt": attempt })
        }
        EventKind::TimedOut { limit } => json!({ "limit": secs(*limit) }),
        EventKind::LimitChanged { from, to, rtt, rtt_noload } => json!({
            "from": from,
            "to": to,
            "rtt": secs(*rtt),
            "rtt_noload": secs(*rtt_noload),
        }),
        EventKind::HedgeStarted { hedge, after } => {
            json!({ "hedge": hedge, "after": secs(*after) })
        }
        EventKind::HedgeWon { attempt, after } => {
            json!({ "attempt": attempt, "after": secs(*after) })
        }
        EventKind::FallbackUsed { rejected } => json!({ "rejected": rejected }),
        EventKind::ConfigRejected { error } => json!({ "error": &**error }),
        EventKind::ConfigApplied => json!({}),
        EventKind::RetryFinished { attempts, succeeded } => {
            json!({ "attempts": attempts, "succeeded": succeeded })
        }
        EventKind::CallFinished { outcome, duration } => {
            let outcome = match outcome {
                CallEnd::Success => "success",
                CallEnd::Failure => "failure",
                CallEnd::Rejected => "rejected",
                CallEnd::Timeout => "timeout",
            };
            json!({ "outcome": outcome, "duration": secs(*duration) })
        }
    };
    if let Value::Object(fields) = fields {
        object.extend(fields);
    }
    Value::Object(object)
}
