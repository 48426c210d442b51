//! The layer keys of each attribute, with the kind of literal each takes.
//!
//! These are the keys of the runtime's config types (`LayerConfig::KEYS` in
//! `resilience::config`): the attribute hands them over unchanged, and the runtime's
//! `from_entries` reads them, exactly as it reads a TOML table. Adding a key to a layer
//! is one line here. The workspace's `config_keys` test reads this file and fails when
//! the two lists differ, so it holds nothing but plain data.

/// Bounds of a number, checked at compile time.
pub(crate) struct FloatRange {
    pub(crate) low: f64,
    pub(crate) low_inclusive: bool,
    pub(crate) high: f64,
    pub(crate) text: &'static str,
}

/// The literal a key takes. A table entry is `(key, kind, example)`: the example shows
/// the form in error messages (`write `max_attempts = 3``).
pub(crate) enum Kind {
    /// A whole number of at least 1: `max_attempts = 3`.
    Count,
    /// A number in a range: `failure_rate = 0.5`.
    Float(FloatRange),
    /// A duration literal: `initial_delay = 250ms`.
    Duration,
    /// `true` or `false`.
    Bool,
    /// One identifier (or string) among these: `backoff = exponential`.
    Choice(&'static [&'static str]),
    /// A non-empty string: `budget = "shopify"`.
    Text,
    /// `window = 100` (calls) or `window = 60s` (a duration).
    Window,
    /// `jitter = full`, `proportional(0.25)` or `ratio(0.5)`.
    Jitter,
    /// `delay = 50ms` (a duration) or `delay = p95` (a percentile of recent latencies).
    HedgeDelay,
}

const FRACTION: Kind = Kind::Float(FloatRange {
    low: 0.0,
    low_inclusive: false,
    high: 1.0,
    text: "a fraction above 0.0 and at most 1.0, like `0.5` for 50 %",
});

const BACKENDS: &[&str] = &["local", "redis"];
const FAIL_MODES: &[&str] = &["open", "closed"];

pub(crate) const RETRY: &[(&str, Kind, &str)] = &[
    ("max_attempts", Kind::Count, "3"),
    (
        "backoff",
        Kind::Choice(&["constant", "linear", "exponential", "fibonacci", "decorrelated"]),
        "exponential",
    ),
    ("initial_delay", Kind::Duration, "100ms"),
    ("max_delay", Kind::Duration, "10s"),
    (
        "multiplier",
        Kind::Float(FloatRange {
            low: 1.0,
            low_inclusive: true,
            high: 1_000.0,
            text: "a number from 1.0 to 1000.0",
        }),
        "2.0",
    ),
    ("jitter", Kind::Jitter, "full"),
    ("deadline", Kind::Duration, "10s"),
    ("max_elapsed", Kind::Duration, "10s"),
    ("honor_retry_after", Kind::Bool, "false"),
    ("budget", Kind::Text, "\"shopify\""),
];

pub(crate) const CIRCUIT_BREAKER: &[(&str, Kind, &str)] = &[
    ("failure_threshold", Kind::Count, "5"),
    ("failure_rate", FRACTION, "0.5"),
    ("window", Kind::Window, "100"),
    ("min_calls", Kind::Count, "20"),
    ("recovery_timeout", Kind::Duration, "30s"),
    (
        "recovery_jitter",
        Kind::Float(FloatRange {
            low: 0.0,
            low_inclusive: true,
            high: 1.0,
            text: "a fraction from 0.0 to 1.0, like `0.2` to shorten the open period by up to 20 %",
        }),
        "0.2",
    ),
    ("half_open_max_calls", Kind::Count, "1"),
    ("success_threshold", Kind::Count, "2"),
    ("slow_call", Kind::Duration, "2s"),
    ("backend", Kind::Choice(BACKENDS), "\"redis\""),
    ("fail_mode", Kind::Choice(FAIL_MODES), "\"closed\""),
    ("mode", Kind::Choice(&["consecutive", "rate", "adaptive_throttle"]), "\"adaptive_throttle\""),
    (
        "k",
        Kind::Float(FloatRange {
            low: 1.0,
            low_inclusive: true,
            high: 1_000.0,
            text: "a number from 1.0 to 1000.0, like `2.0` (the multiplier of accepted requests the client keeps sending)",
        }),
        "2.0",
    ),
    ("buckets", Kind::Count, "12"),
];

pub(crate) const RATE_LIMIT: &[(&str, Kind, &str)] = &[
    ("per_second", Kind::Count, "2"),
    ("per_minute", Kind::Count, "60"),
    ("burst", Kind::Count, "40"),
    ("on_limit", Kind::Choice(&["wait", "reject", "queue"]), "wait"),
    ("max_wait", Kind::Duration, "5s"),
    ("max_queue", Kind::Count, "100"),
    ("idle_timeout", Kind::Duration, "10min"),
    ("max_pause", Kind::Duration, "15min"),
    ("backend", Kind::Choice(BACKENDS), "\"redis\""),
    ("fail_mode", Kind::Choice(FAIL_MODES), "\"closed\""),
];

pub(crate) const BULKHEAD: &[(&str, Kind, &str)] = &[
    ("max_concurrent", Kind::Count, "10"),
    ("max_wait", Kind::Duration, "1s"),
    ("adaptive", Kind::Choice(&["gradient", "aimd", "vegas"]), "\"gradient\""),
    ("min_limit", Kind::Count, "1"),
    ("max_limit", Kind::Count, "200"),
    ("initial_limit", Kind::Count, "20"),
];

pub(crate) const TIMEOUT: &[(&str, Kind, &str)] = &[("duration", Kind::Duration, "5s")];

pub(crate) const HEDGE: &[(&str, Kind, &str)] = &[
    ("delay", Kind::HedgeDelay, "p95"),
    ("max_hedges", Kind::Count, "1"),
    ("budget", FRACTION, "0.1"),
];
