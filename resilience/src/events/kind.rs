//! What an event says: its layer, its kind, and the topic it belongs to.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::sync::Arc;
use std::time::Duration;

use super::StateTransition;
use crate::circuit::CallOutcome;

/// The kind of instance that reports an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layer {
    /// A [`CircuitBreaker`](crate::CircuitBreaker).
    CircuitBreaker,
    /// A [`RateLimiter`](crate::RateLimiter) or [`KeyedRateLimiter`](crate::KeyedRateLimiter).
    RateLimiter,
    /// A [`Bulkhead`](crate::Bulkhead).
    Bulkhead,
    /// A [`RetryPolicy`](crate::RetryPolicy).
    Retry,
    /// A timeout (the [`timeout`](mod@crate::timeout) helpers and `#[timeout]`).
    Timeout,
    /// A config file loaded into a registry (the event's name is the file's path).
    Config,
    /// A whole protected call through a stack of layers (a function under the attribute
    /// macros; the event's name is the function's path, `module::function`).
    Call,
    /// A [`Hedge`](crate::hedge::Hedge).
    Hedge,
    /// A fallback (the [`fallback`](mod@crate::fallback) layer: `#[fallback]`,
    /// [`Pipeline::fallback`](crate::Pipeline::fallback), the tower `FallbackLayer`).
    Fallback,
}

impl Layer {
    /// `"circuit_breaker"`, `"rate_limiter"`, `"bulkhead"`, `"retry"`, `"timeout"`,
    /// `"config"`, `"call"`, `"hedge"` or `"fallback"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::CircuitBreaker => "circuit_breaker",
            Layer::RateLimiter => "rate_limiter",
            Layer::Bulkhead => "bulkhead",
            Layer::Retry => "retry",
            Layer::Timeout => "timeout",
            Layer::Config => "config",
            Layer::Call => "call",
            Layer::Hedge => "hedge",
            Layer::Fallback => "fallback",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a retry returned the last outcome instead of trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// Every attempt the policy allows was made.
    AttemptsExhausted,
    /// The next sleep would end past the deadline of the whole call (the policy's
    /// `deadline`, or an enclosing call's if that one comes first).
    Deadline,
    /// The retry budget refused the retry (see [`EventKind::BudgetExhausted`]).
    BudgetExhausted,
}

impl GiveUpReason {
    /// `"attempts_exhausted"`, `"deadline"` (the deadline of the whole call would pass
    /// before the next attempt) or `"budget_exhausted"`.
    pub fn as_str(self) -> &'static str {
        match self {
            GiveUpReason::AttemptsExhausted => "attempts_exhausted",
            GiveUpReason::Deadline => "deadline",
            GiveUpReason::BudgetExhausted => "budget_exhausted",
        }
    }
}

/// How a whole protected call ended (the payload of [`EventKind::CallFinished`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallEnd {
    /// It returned `Ok`.
    Success,
    /// The operation's own error reached the caller.
    Failure,
    /// A layer refused the call (open circuit, rate limit, full bulkhead, config error).
    Rejected,
    /// The call ran past its time limit.
    Timeout,
}

impl CallEnd {
    /// `"success"`, `"failure"`, `"rejected"` or `"timeout"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallEnd::Success => "success",
            CallEnd::Failure => "failure",
            CallEnd::Rejected => "rejected",
            CallEnd::Timeout => "timeout",
        }
    }
}

/// What happened. Each kind belongs to one topic ([`interest`](Self::interest)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// A circuit changed state (topic [`Interest::TRANSITIONS`]).
    Transition(StateTransition),
    /// A call through a circuit breaker finished and was counted (topic
    /// [`Interest::CALLS`]). `duration` is measured on the breaker's clock from
    /// admission to outcome.
    CallRecorded {
        /// How the breaker counted it.
        outcome: CallOutcome,
        /// How long the call took.
        duration: Duration,
    },
    /// A call was refused without running: by an open circuit, an empty rate limiter or
    /// a full bulkhead, as [`Event::layer`](super::Event::layer) says (topic
    /// [`Interest::REJECTIONS`]).
    Rejected {
        /// When trying again may succeed, if the layer knows.
        retry_after: Option<Duration>,
        /// Why, in a few words (`"circuit open"`, `"wait queue full"`, ...).
        reason: &'static str,
    },
    /// A call through a retry policy returned its last outcome (topic
    /// [`Interest::CALLS`]).
    RetryFinished {
        /// Attempts made, the first included.
        attempts: u32,
        /// Whether the returned outcome is `Ok`.
        succeeded: bool,
    },
    /// A whole protected call returned (topic [`Interest::CALLS`]; reported by
    /// [`Layer::Call`]). `duration` is measured on the default clock.
    CallFinished {
        /// How it ended.
        outcome: CallEnd,
        /// How long the call took, every layer included.
        duration: Duration,
    },
    /// A call waited for a rate-limiter permit or a bulkhead slot, then went on (topic
    /// [`Interest::WAITS`]).
    Waited {
        /// How long it waited.
        waited: Duration,
    },
    /// An attempt of a call through a retry policy finished (topic
    /// [`Interest::ATTEMPTS`]).
    Attempt {
        /// 1-based attempt number.
        attempt: u32,
        /// Whether it returned `Ok` (a value may still be retried by a predicate).
        succeeded: bool,
    },
    /// The retry will sleep `delay`, then make attempt `attempt + 1` (topic
    /// [`Interest::RETRIES`]).
    RetryScheduled {
        /// The attempt that failed, 1-based.
        attempt: u32,
        /// The most attempts the policy makes.
        max_attempts: u32,
        /// The sleep before the next attempt.
        delay: Duration,
        /// What failed, as its `Debug` text.
        error: Arc<str>,
    },
    /// The retry returns the last outcome, a failure it would otherwise retry (topic
    /// [`Interest::RETRIES`]).
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// Why it stopped.
        reason: GiveUpReason,
    },
    /// A retry budget refused a retry (topic [`Interest::REJECTIONS`]).
    BudgetExhausted {
        /// The budget's name.
        budget: Arc<str>,
        /// The attempt that failed and was not retried.
        attempt: u32,
    },
    /// A call ran past its time limit and was abandoned (topic [`Interest::TIMEOUTS`]).
    TimedOut {
        /// The limit.
        limit: Duration,
    },
    /// An adaptive bulkhead moved its limit after a window of calls (topic
    /// [`Interest::LIMITS`]).
    LimitChanged {
        /// The limit before.
        from: u32,
        /// The limit now.
        to: u32,
        /// The window's average latency.
        rtt: Duration,
        /// The lowest window average seen: the latency with nothing queued.
        rtt_noload: Duration,
    },
    /// A hedge started: the attempts of a call had not succeeded after the delay (topic
    /// [`Interest::RETRIES`]; reported by [`Layer::Hedge`]).
    HedgeStarted {
        /// 1-based number of the hedge (the first attempt is not one).
        hedge: u32,
        /// Time since the call started.
        after: Duration,
    },
    /// A hedge succeeded before the first attempt and the other hedges, which are
    /// cancelled (topic [`Interest::RETRIES`]; reported by [`Layer::Hedge`]).
    HedgeWon {
        /// 1-based number of the winning hedge.
        attempt: u32,
        /// Time since the call started.
        after: Duration,
    },
    /// A fallback answered a call's final error: the caller gets the handler's answer
    /// instead (topic [`Interest::FALLBACKS`]; reported by [`Layer::Fallback`]).
    FallbackUsed {
        /// Whether the error was a layer's refusal (open circuit, rate limit, full
        /// bulkhead, timeout) rather than the operation's own.
        rejected: bool,
    },
    /// A config file was applied to the registry's instances (topic [`Interest::CONFIG`]).
    ConfigApplied,
    /// A config file was refused: nothing of it was applied, the previous config stays
    /// (topic [`Interest::CONFIG`]).
    ConfigRejected {
        /// What is wrong with it.
        error: Arc<str>,
    },
}

impl EventKind {
    /// The topic this kind belongs to.
    pub fn interest(&self) -> Interest {
        match self {
            EventKind::Transition(_) => Interest::TRANSITIONS,
            EventKind::CallRecorded { .. }
            | EventKind::RetryFinished { .. }
            | EventKind::CallFinished { .. } => Interest::CALLS,
            EventKind::Rejected { .. } | EventKind::BudgetExhausted { .. } => Interest::REJECTIONS,
            EventKind::Waited { .. } => Interest::WAITS,
            EventKind::Attempt { .. } => Interest::ATTEMPTS,
            EventKind::RetryScheduled { .. }
            | EventKind::GaveUp { .. }
            | EventKind::HedgeStarted { .. }
            | EventKind::HedgeWon { .. } => Interest::RETRIES,
            EventKind::TimedOut { .. } => Interest::TIMEOUTS,
            EventKind::LimitChanged { .. } => Interest::LIMITS,
            EventKind::FallbackUsed { .. } => Interest::FALLBACKS,
            EventKind::ConfigApplied | EventKind::ConfigRejected { .. } => Interest::CONFIG,
        }
    }

    /// A snake_case name for the kind: `"transition"`, `"call_recorded"`, `"granted"`,
    /// `"retry_finished"`, `"call_finished"`, `"rejected"`, `"waited"`, `"attempt"`,
    /// `"retry_scheduled"`, `"gave_up"`, `"budget_exhausted"`, `"timed_out"`,
    /// `"limit_changed"`, `"hedge_started"`, `"hedge_won"`, `"fallback_used"`,
    /// `"config_applied"`, `"config_rejected"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::Transition(_) => "transition",
            EventKind::CallRecorded { .. } => "call_recorded",
            EventKind::RetryFinished { .. } => "retry_finished",
            EventKind::CallFinished { .. } => "call_finished",
            EventKind::Rejected { .. } => "rejected",
            EventKind::Waited { .. } => "waited",
            EventKind::Attempt { .. } => "attempt",
            EventKind::RetryScheduled { .. } => "retry_scheduled",
            EventKind::GaveUp { .. } => "gave_up",
            EventKind::BudgetExhausted { .. } => "budget_exhausted",
            EventKind::TimedOut { .. } => "timed_out",
            EventKind::LimitChanged { .. } => "limit_changed",
            EventKind::HedgeStarted { .. } => "hedge_started",
            EventKind::HedgeWon { .. } => "hedge_won",
            EventKind::FallbackUsed { .. } => "fallback_used",
            EventKind::ConfigApplied => "config_applied",
            EventKind::ConfigRejected { .. } => "config_rejected",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::Transition(t) => write!(f, "{} -> {}", t.from, t.to),
            EventKind::CallRecorded { outcome, duration } => {
                write!(f, "call recorded as {outcome:?} after {duration:?}")
            }
            EventKind::RetryFinished { attempts, succeeded: true } => {
                write!(f, "succeeded after {attempts} attempts")
            }
            EventKind::RetryFinished { attempts, succeeded: false } => {
                write!(f, "failed after {attempts} attempts")
            }
            EventKind::CallFinished { outcome, duration } => {
                write!(f, "call finished ({}) after {duration:?}", outcome.as_str())
            }
            EventKind::Rejected { retry_after: Some(d), reason } => {
                write!(f, "rejected ({reason}), retry after {d:?}")
            }
            EventKind::Rejected { retry_after: None, reason } => write!(f, "rejected ({reason})"),
            EventKind::Waited { waited } => write!(f, "waited {waited:?}"),
            EventKind::Attempt { attempt, succeeded: true } => write!(f, "attempt {attempt} ok"),
            EventKind::Attempt { attempt, succeeded: false } => {
                write!(f, "attempt {attempt} failed")
            }
            EventKind::RetryScheduled { attempt, max_attempts, delay, error } => {
                write!(
                    f,
                    "attempt {attempt}/{max_attempts} failed ({error}), retrying in {delay:?}"
                )
            }
            EventKind::GaveUp { attempts, reason } => {
                write!(f, "gave up after {attempts} attempts: {}", reason.as_str())
            }
            EventKind::BudgetExhausted { budget, attempt } => {
                write!(f, "retry budget '{budget}' refused a retry after attempt {attempt}")
            }
            EventKind::TimedOut { limit } => write!(f, "timed out after {limit:?}"),
            EventKind::LimitChanged { from, to, rtt, rtt_noload } => {
                write!(f, "limit {from} -> {to} (rtt {rtt:?}, no-load rtt {rtt_noload:?})")
            }
            EventKind::HedgeStarted { hedge, after } => {
                write!(f, "hedge {hedge} started after {after:?}")
            }
            EventKind::HedgeWon { attempt, after } => {
                write!(f, "hedge {attempt} answered first after {after:?}")
            }
            EventKind::FallbackUsed { rejected: true } => {
                f.write_str("fallback answered a rejection")
            }
            EventKind::FallbackUsed { rejected: false } => {
                f.write_str("fallback answered an error")
            }
            EventKind::ConfigApplied => f.write_str("config applied"),
            EventKind::ConfigRejected { error } => {
                write!(f, "config rejected, nothing applied: {error}")
            }
        }
    }
}

/// A set of event topics an observer wants. Combine with `|`.
///
/// ```
/// use resilience::events::Interest;
///
/// let interest = Interest::TRANSITIONS | Interest::REJECTIONS;
/// assert!(interest.contains(Interest::REJECTIONS));
/// assert!(!interest.contains(Interest::CALLS));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interest(u32);

impl Interest {
    /// No topic.
    pub const NONE: Interest = Interest(0);
    /// Circuit state transitions ([`EventKind::Transition`]).
    pub const TRANSITIONS: Interest = Interest(1);
    /// Every call a layer counts: a circuit breaker's outcomes with their durations
    /// ([`EventKind::CallRecorded`]), a
    /// retry's results ([`EventKind::RetryFinished`]) and whole protected calls
    /// ([`EventKind::CallFinished`]). The busiest topic: subscribing makes each breaker
    /// call and each protected call read the clock twice (what metrics subscribe to).
    pub const CALLS: Interest = Interest(1 << 1);
    /// Rejections by breakers, limiters and bulkheads, and retry budget refusals.
    pub const REJECTIONS: Interest = Interest(1 << 2);
    /// Limiter and bulkhead waits.
    pub const WAITS: Interest = Interest(1 << 3);
    /// Each attempt of a retried call.
    pub const ATTEMPTS: Interest = Interest(1 << 4);
    /// Retries scheduled and retries giving up; hedges started and hedges that won.
    pub const RETRIES: Interest = Interest(1 << 5);
    /// Timeouts.
    pub const TIMEOUTS: Interest = Interest(1 << 6);
    /// Config files applied or refused.
    pub const CONFIG: Interest = Interest(1 << 7);
    /// Adaptive limits moving ([`EventKind::LimitChanged`]).
    pub const LIMITS: Interest = Interest(1 << 8);
    /// Fallbacks answering a call's final error ([`EventKind::FallbackUsed`]).
    pub const FALLBACKS: Interest = Interest(1 << 9);
    /// Every topic.
    pub const ALL: Interest = Interest((1 << 10) - 1);

    /// Whether every topic of `other` is in `self`.
    pub fn contains(self, other: Interest) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `self` and `other` share a topic.
    pub fn intersects(self, other: Interest) -> bool {
        self.0 & other.0 != 0
    }

    /// `self` without the topics of `other`.
    pub fn without(self, other: Interest) -> Interest {
        Interest(self.0 & !other.0)
    }

    pub(crate) fn bits(self) -> u32 {
        self.0
    }

    pub(crate) fn from_bits(bits: u32) -> Interest {
        Interest(bits & Interest::ALL.0)
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        Interest(self.0 | rhs.0)
    }
}

impl BitOrAssign for Interest {
    fn bitor_assign(&mut self, rhs: Interest) {
        self.0 |= rhs.0;
    }
}
