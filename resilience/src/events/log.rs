//! The `tracing` output: one consumer of the events, at the levels the module docs state.

use tracing::{Level, debug, info, warn};

use super::{Event, EventKind, GiveUpReason};

/// Whether `tracing` may record an event at `level` (the cheap, global check).
#[inline(always)]
pub(super) fn enabled(level: Level) -> bool {
    tracing::level_enabled!(level)
}

/// Record `event` as a `tracing` event.
pub(super) fn record(event: &Event) {
    let name = &*event.name;
    let key = event.key.as_deref();
    match &event.kind {
        EventKind::Transition(t) => {
            let (from, to, failures, open_for) = (t.from, t.to, t.consecutive_failures, t.open_for);
            if to.is_open() {
                warn!(target: "resilience", name, %from, %to, failures, ?open_for, "circuit opened");
            } else {
                warn!(target: "resilience", name, %from, %to, failures, ?open_for, "circuit state changed");
            }
        }
        // Counted calls and attempts are numbers for observers (metrics), not log lines.
        EventKind::CallRecorded { .. }
        | EventKind::Attempt { .. }
        | EventKind::RetryFinished { .. }
        | EventKind::CallFinished { .. } => {}
        EventKind::Rejected { retry_after, reason } => match key {
            Some(key) => {
                debug!(target: "resilience", name, key, layer = %event.layer, reason, ?retry_after, "call rejected")
            }
            None => {
                debug!(target: "resilience", name, layer = %event.layer, reason, ?retry_after, "call rejected")
            }
        },
        EventKind::Waited { waited } => match key {
            Some(key) => {
                debug!(target: "resilience", name, key, layer = %event.layer, ?waited, "waiting")
            }
            None => debug!(target: "resilience", name, layer = %event.layer, ?waited, "waiting"),
        },
        EventKind::RetryScheduled { attempt, max_attempts, delay, error } => {
            debug!(target: "resilience", name, attempt, max_attempts, error = %error, ?delay, "retrying after a failure");
        }
        // An exhausted budget has already warned (`BudgetExhausted`): one warning per call.
        EventKind::GaveUp { attempts, reason: reason @ GiveUpReason::BudgetExhausted } => {
            debug!(target: "resilience", name, attempts, reason = reason.as_str(), "retry: giving up, returning the last outcome");
        }
        EventKind::GaveUp { attempts, reason: reason @ GiveUpReason::Deadline } => {
            warn!(target: "resilience", name, attempts, reason = reason.as_str(), "retry: the deadline of the call would pass before the next attempt; giving up, returning the last outcome");
        }
        EventKind::GaveUp { attempts, reason } => {
            warn!(target: "resilience", name, attempts, reason = reason.as_str(), "retry: giving up, returning the last outcome");
        }
        EventKind::BudgetExhausted { budget, attempt } => {
            warn!(target: "resilience", name, budget = &**budget, attempt, "retry budget exhausted: not retrying, returning the last outcome");
        }
        EventKind::TimedOut { limit } => {
            warn!(target: "resilience", name, ?limit, "call timed out");
        }
        EventKind::LimitChanged { from, to, rtt, rtt_noload } => {
            debug!(target: "resilience", name, from, to, ?rtt, ?rtt_noload, "adaptive limit changed");
        }
        EventKind::HedgeStarted { hedge, after } => {
            debug!(target: "resilience", name, hedge, ?after, "hedge started");
        }
        EventKind::HedgeWon { attempt, after } => {
            debug!(target: "resilience", name, attempt, ?after, "hedge answered first");
        }
        EventKind::FallbackUsed { rejected } => {
            debug!(target: "resilience", name, rejected, "fallback answered");
        }
        EventKind::ConfigApplied => info!(target: "resilience", file = name, "config applied"),
        EventKind::ConfigRejected { error } => {
            warn!(target: "resilience", file = name, error = &**error, "config rejected, nothing applied: the previous config stays");
        }
    }
}
