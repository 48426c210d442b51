//! Parsers for the rate-limit headers servers send, used by `sync_from_headers`.
//!
//! Every parser accepts any string and never panics: bad input is a [`HeaderError`]
//! naming the header, the problem and the (truncated) value.
//!
//! ```
//! use resilience::rate_limit::headers::{self, CallLimit};
//! use std::time::{Duration, SystemTime};
//!
//! assert_eq!(headers::parse_shopify_call_limit("32/40")?, CallLimit { used: 32, capacity: 40 });
//! assert_eq!(headers::parse_retry_after("120", SystemTime::now())?, Duration::from_secs(120));
//! assert_eq!(headers::parse_retry_after("2.0", SystemTime::now())?, Duration::from_secs(2));
//! assert_eq!(headers::parse_ratelimit_remaining("17")?, 17);
//! assert_eq!(headers::parse_ratelimit_reset("30", SystemTime::now())?, Duration::from_secs(30));
//! let q = headers::parse_ratelimit("\"default\";r=0;t=10", SystemTime::now())?;
//! assert_eq!((q.remaining, q.reset), (0, Some(Duration::from_secs(10))));
//!
//! let err = headers::parse_shopify_call_limit("forty").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "invalid `X-Shopify-Shop-Api-Call-Limit` header \"forty\": expected `used/capacity`, e.g. `32/40`"
//! );
//! # Ok::<(), headers::HeaderError>(())
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

/// `Retry-After`.
pub const RETRY_AFTER: &str = "Retry-After";
/// `X-Shopify-Shop-Api-Call-Limit`.
pub const SHOPIFY_CALL_LIMIT: &str = "X-Shopify-Shop-Api-Call-Limit";
/// `RateLimit-Remaining` (IETF draft).
pub const RATELIMIT_REMAINING: &str = "RateLimit-Remaining";
/// `RateLimit-Reset` (IETF draft).
pub const RATELIMIT_RESET: &str = "RateLimit-Reset";
/// `RateLimit-Limit` (older IETF draft).
pub const RATELIMIT_LIMIT: &str = "RateLimit-Limit";
/// `RateLimit` (IETF draft: a list of policies with `r` remaining and `t` seconds to reset).
pub const RATELIMIT: &str = "RateLimit";
/// `RateLimit-Policy` (IETF draft: a list of policies with `q` quota and `w` window).
pub const RATELIMIT_POLICY: &str = "RateLimit-Policy";
/// `X-RateLimit-Remaining` (GitHub and many others).
pub const X_RATELIMIT_REMAINING: &str = "X-RateLimit-Remaining";
/// `X-RateLimit-Reset` (GitHub: an epoch time; others: seconds).
pub const X_RATELIMIT_RESET: &str = "X-RateLimit-Reset";
/// `X-RateLimit-Limit`.
pub const X_RATELIMIT_LIMIT: &str = "X-RateLimit-Limit";

/// A reset value of at least this many seconds (about 10 years) is an epoch time, not a
/// number of seconds from now.
pub const EPOCH_THRESHOLD: Duration = Duration::from_secs(10 * 365 * 86_400);
/// How far from the clock's wall time an epoch reset may lie (ahead, or behind) before it
/// is refused as nonsense: one day. A reset less than this in the past means "now".
pub const MAX_EPOCH_SKEW: Duration = Duration::from_secs(86_400);

const SECONDS: &str = "expected non-negative seconds, e.g. `120` or `2.5`";

/// Longest part of a bad value kept in a [`HeaderError`].
const MAX_SHOWN: usize = 64;

/// A header value that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderError {
    header: &'static str,
    reason: &'static str,
    value: String,
}

impl HeaderError {
    fn new(header: &'static str, reason: &'static str, value: &str) -> HeaderError {
        let mut shown: String = value.chars().take(MAX_SHOWN).collect();
        if shown.len() < value.len() {
            shown.push('…');
        }
        HeaderError { header, reason, value: shown }
    }

    pub(crate) fn unusable(
        header: &'static str,
        reason: &'static str,
        value: impl fmt::Display,
    ) -> HeaderError {
        HeaderError::new(header, reason, &value.to_string())
    }

    /// The header's name.
    pub fn header(&self) -> &'static str {
        self.header
    }

    /// What was wrong.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The offending value, truncated to 64 characters.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid `{}` header {:?}: {}", self.header, self.value, self.reason)
    }
}

impl std::error::Error for HeaderError {}

/// Shopify's `X-Shopify-Shop-Api-Call-Limit: used/capacity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CallLimit {
    /// Permits in use.
    pub used: u32,
    /// Bucket capacity.
    pub capacity: u32,
}

impl CallLimit {
    /// Permits left (`capacity - used`, at least 0).
    pub fn remaining(&self) -> u32 {
        self.capacity.saturating_sub(self.used)
    }
}

impl fmt::Display for CallLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.used, self.capacity)
    }
}

/// Parses a non-negative decimal integer (surrounding whitespace allowed).
fn parse_uint(header: &'static str, value: &str) -> Result<u64, HeaderError> {
    let s = value.trim();
    if s.is_empty() {
        return Err(HeaderError::new(header, "empty value", value));
    }
    if s.starts_with('-') {
        return Err(HeaderError::new(header, "negative value", value));
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return Err(HeaderError::new(header, "expected a non-negative integer", value));
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| HeaderError::new(header, "number too large", value))?;
    }
    Ok(n)
}

/// Parses non-negative decimal seconds, `120` or `2.5` (surrounding whitespace allowed;
/// digits past the nanosecond are dropped).
fn parse_seconds(header: &'static str, value: &str) -> Result<Duration, HeaderError> {
    let s = value.trim();
    if s.is_empty() {
        return Err(HeaderError::new(header, "empty value", value));
    }
    if s.starts_with('-') {
        return Err(HeaderError::new(header, "negative value", value));
    }
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(HeaderError::new(header, SECONDS, value));
    }
    let secs = parse_uint(header, int).map_err(|e| HeaderError::new(header, e.reason, value))?;
    let mut nanos: u32 = 0;
    let mut scale: u32 = 100_000_000;
    for b in frac.unwrap_or("").bytes().take(9) {
        nanos += u32::from(b - b'0') * scale;
        scale /= 10;
    }
    Ok(Duration::new(secs, nanos))
}

/// Reads a reset value (in seconds) as a delta from now, or, from [`EPOCH_THRESHOLD`]
/// on, as an epoch time against `now`: refused when more than [`MAX_EPOCH_SKEW`] ahead
/// or behind; a time less than that in the past means "now".
fn reset_from(
    header: &'static str,
    value: &str,
    secs: Duration,
    now: SystemTime,
) -> Result<Duration, HeaderError> {
    if secs < EPOCH_THRESHOLD {
        return Ok(secs);
    }
    let Some(at) = SystemTime::UNIX_EPOCH.checked_add(secs) else {
        return Err(HeaderError::new(header, "epoch time out of range", value));
    };
    match at.duration_since(now) {
        Ok(d) if d > MAX_EPOCH_SKEW => {
            Err(HeaderError::new(header, "epoch time more than a day ahead of the clock", value))
        }
        Ok(d) => Ok(d),
        Err(e) if e.duration() > MAX_EPOCH_SKEW => {
            Err(HeaderError::new(header, "epoch time more than a day in the past", value))
        }
        Err(_) => Ok(Duration::ZERO),
    }
}

/// A reset header's value: seconds from now or an epoch time (see [`EPOCH_THRESHOLD`]).
fn parse_reset(
    header: &'static str,
    value: &str,
    now: SystemTime,
) -> Result<Duration, HeaderError> {
    let item = value.split(';').next().unwrap_or(value);
    let secs =
        parse_seconds(header, item).map_err(|e| HeaderError::new(header, e.reason, value))?;
    reset_from(header, value, secs, now)
}

/// `Retry-After`: delta-seconds (`120`, or decimal like Shopify's `2.0`) or an HTTP
/// date, relative to `now` (a date in the past gives zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Result<Duration, HeaderError> {
    let s = value.trim();
    if s.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'-' || b == b'+') {
        return parse_seconds(RETRY_AFTER, value);
    }
    if s.is_empty() {
        return Err(HeaderError::new(RETRY_AFTER, "empty value", value));
    }
    match httpdate::parse_http_date(s) {
        Ok(at) => Ok(at.duration_since(now).unwrap_or(Duration::ZERO)),
        Err(_) => Err(HeaderError::new(
            RETRY_AFTER,
            "expected delta-seconds or an HTTP date, e.g. `120` or `Wed, 21 Oct 2015 07:28:00 GMT`",
            value,
        )),
    }
}

/// `X-Shopify-Shop-Api-Call-Limit: used/capacity` (capacity at least 1).
pub fn parse_shopify_call_limit(value: &str) -> Result<CallLimit, HeaderError> {
    const H: &str = SHOPIFY_CALL_LIMIT;
    let Some((used, capacity)) = value.split_once('/') else {
        return Err(HeaderError::new(H, "expected `used/capacity`, e.g. `32/40`", value));
    };
    let num = |part: &str| -> Result<u32, HeaderError> {
        let n = parse_uint(H, part).map_err(|e| HeaderError::new(H, e.reason, value))?;
        u32::try_from(n).map_err(|_| HeaderError::new(H, "number too large", value))
    };
    let limit = CallLimit { used: num(used)?, capacity: num(capacity)? };
    if limit.capacity == 0 {
        return Err(HeaderError::new(H, "capacity must be at least 1", value));
    }
    Ok(limit)
}

/// `RateLimit-Remaining`: permits left in the current window. Structured-field
/// parameters after `;` are ignored.
pub fn parse_ratelimit_remaining(value: &str) -> Result<u64, HeaderError> {
    let item = value.split(';').next().unwrap_or(value);
    parse_uint(RATELIMIT_REMAINING, item)
        .map_err(|e| HeaderError::new(RATELIMIT_REMAINING, e.reason, value))
}

/// `RateLimit-Reset`: time until the window resets, as seconds (`30`, `2.5`) or, from
/// [`EPOCH_THRESHOLD`] on, as an epoch time read against `now` (refused when more than
/// [`MAX_EPOCH_SKEW`] away). Parameters after `;` are ignored.
///
/// ```
/// use resilience::rate_limit::headers::parse_ratelimit_reset;
/// use std::time::{Duration, SystemTime};
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert_eq!(parse_ratelimit_reset("30", now), Ok(Duration::from_secs(30)));
/// assert_eq!(parse_ratelimit_reset("1700000030", now), Ok(Duration::from_secs(30)));
/// assert!(parse_ratelimit_reset("1795954842", now).is_err()); // years ahead
/// ```
pub fn parse_ratelimit_reset(value: &str, now: SystemTime) -> Result<Duration, HeaderError> {
    parse_reset(RATELIMIT_RESET, value, now)
}

/// `X-RateLimit-Remaining`: permits left in the current window.
pub fn parse_x_ratelimit_remaining(value: &str) -> Result<u64, HeaderError> {
    parse_uint(X_RATELIMIT_REMAINING, value)
}

/// `X-RateLimit-Reset`: an epoch time (GitHub) or seconds from now, told apart as by
/// [`parse_ratelimit_reset`].
///
/// ```
/// use resilience::rate_limit::headers::parse_x_ratelimit_reset;
/// use std::time::{Duration, SystemTime};
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert_eq!(parse_x_ratelimit_reset("1700000060", now), Ok(Duration::from_secs(60)));
/// assert_eq!(parse_x_ratelimit_reset("60", now), Ok(Duration::from_secs(60)));
/// ```
pub fn parse_x_ratelimit_reset(value: &str, now: SystemTime) -> Result<Duration, HeaderError> {
    parse_reset(X_RATELIMIT_RESET, value, now)
}

/// `RateLimit-Limit` (older IETF draft, e.g. `100` or `100, 100;w=60`) or
/// `X-RateLimit-Limit`: the quota of the current window (the first list member).
fn parse_limit(header: &'static str, value: &str) -> Result<u64, HeaderError> {
    let item = value.split([',', ';']).next().unwrap_or(value);
    parse_uint(header, item).map_err(|e| HeaderError::new(header, e.reason, value))
}

/// Splits `s` at `sep` outside double-quoted strings (with `\` escapes inside them);
/// `None` when a string is not terminated.
fn split_outside_quotes(s: &str, sep: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    (!quoted).then_some(parts)
}

/// The policies of a structured-field list (`"name";k=v;k=v, ...`), each as its
/// parameters `(key, value)`; an empty member, an unnamed policy or an unterminated
/// string is an error.
fn policies<'v>(
    header: &'static str,
    value: &'v str,
) -> Result<Vec<Vec<(&'v str, &'v str)>>, HeaderError> {
    if value.trim().is_empty() {
        return Err(HeaderError::new(header, "empty value", value));
    }
    let unterminated = || HeaderError::new(header, "unterminated string", value);
    let mut out = Vec::new();
    for member in split_outside_quotes(value, ',').ok_or_else(unterminated)? {
        let mut parts = split_outside_quotes(member, ';').ok_or_else(unterminated)?.into_iter();
        if parts.next().is_none_or(|name| name.trim().is_empty()) {
            return Err(HeaderError::new(
                header,
                "expected a policy, e.g. `\"default\";r=50;t=30`",
                value,
            ));
        }
        out.push(
            parts
                .map(|p| p.split_once('=').unwrap_or((p, "")))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect(),
        );
    }
    Ok(out)
}

/// One policy's integer parameter `key`.
fn param(
    header: &'static str,
    value: &str,
    params: &[(&str, &str)],
    key: &str,
) -> Result<Option<u64>, HeaderError> {
    match params.iter().rev().find(|(k, _)| *k == key) {
        Some((_, v)) => {
            parse_uint(header, v).map(Some).map_err(|e| HeaderError::new(header, e.reason, value))
        }
        None => Ok(None),
    }
}

/// What the IETF `RateLimit` field says: permits left and time to the reset, of its
/// most restrictive policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Permits left (`r`).
    pub remaining: u64,
    /// Time until the window resets (`t`), when sent.
    pub reset: Option<Duration>,
}

/// `RateLimit: "default";r=50;t=30` (draft-ietf-httpapi-ratelimit-headers): a list of
/// policies, each with `r` (remaining, required) and `t` (seconds to the reset, read like
/// [`parse_ratelimit_reset`] against `now`); other parameters are ignored. Of several
/// policies the most restrictive is kept: the fewest remaining, then the latest reset.
///
/// ```
/// use resilience::rate_limit::headers::{parse_ratelimit, Quota};
/// use std::time::{Duration, SystemTime};
///
/// let q = parse_ratelimit("\"burst\";r=5;t=1, \"daily\";r=0;t=3600", SystemTime::now())?;
/// assert_eq!(q, Quota { remaining: 0, reset: Some(Duration::from_secs(3600)) });
/// # Ok::<(), resilience::rate_limit::HeaderError>(())
/// ```
pub fn parse_ratelimit(value: &str, now: SystemTime) -> Result<Quota, HeaderError> {
    const H: &str = RATELIMIT;
    let mut best: Option<Quota> = None;
    for params in policies(H, value)? {
        let Some(remaining) = param(H, value, &params, "r")? else {
            return Err(HeaderError::new(H, "policy without `r` (remaining)", value));
        };
        let reset = match param(H, value, &params, "t")? {
            Some(t) => Some(reset_from(H, value, Duration::from_secs(t), now)?),
            None => None,
        };
        let q = Quota { remaining, reset };
        best = Some(match best {
            Some(b)
                if (b.remaining, std::cmp::Reverse(b.reset))
                    <= (q.remaining, std::cmp::Reverse(q.reset)) =>
            {
                b
            }
            _ => q,
        });
    }
    best.ok_or_else(|| HeaderError::new(H, "empty value", value))
}

/// What the IETF `RateLimit-Policy` field says: the quota and its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Permits per window (`q`).
    pub quota: u64,
    /// The window (`w`), when sent.
    pub window: Option<Duration>,
}

/// `RateLimit-Policy: "default";q=100;w=60`: a list of policies, each with `q` (quota,
/// required) and `w` (window in seconds). Of several policies the most restrictive is
/// kept: the lowest quota per second of window (a policy without `w` compares by `q`).
///
/// ```
/// use resilience::rate_limit::headers::{parse_ratelimit_policy, Policy};
/// use std::time::Duration;
///
/// let p = parse_ratelimit_policy("\"default\";q=100;w=60")?;
/// assert_eq!(p, Policy { quota: 100, window: Some(Duration::from_secs(60)) });
/// # Ok::<(), resilience::rate_limit::HeaderError>(())
/// ```
pub fn parse_ratelimit_policy(value: &str) -> Result<Policy, HeaderError> {
    const H: &str = RATELIMIT_POLICY;
    let mut best: Option<Policy> = None;
    for params in policies(H, value)? {
        let Some(quota) = param(H, value, &params, "q")? else {
            return Err(HeaderError::new(H, "policy without `q` (quota)", value));
        };
        let window = param(H, value, &params, "w")?.map(Duration::from_secs);
        let p = Policy { quota, window };
        let tighter = |a: &Policy, b: &Policy| match (a.window, b.window) {
            (Some(wa), Some(wb)) => {
                u128::from(a.quota) * u128::from(wb.as_secs())
                    < u128::from(b.quota) * u128::from(wa.as_secs())
            }
            _ => a.quota < b.quota,
        };
        best = Some(match best {
            Some(b) if !tighter(&p, &b) => b,
            _ => p,
        });
    }
    best.ok_or_else(|| HeaderError::new(H, "empty value", value))
}

/// What `sync_from_headers` read and applied, and the values it could not read.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SyncReport {
    /// The Shopify call limit applied (fill level set; capacity adopted as burst).
    pub call_limit: Option<CallLimit>,
    /// The permits left that were applied (fill level lowered to it, clamped to the
    /// burst): the fewest of `RateLimit-Remaining`, `X-RateLimit-Remaining` and the
    /// `RateLimit` field's `r`.
    pub remaining: Option<u64>,
    /// The latest reset read (`RateLimit-Reset`, `X-RateLimit-Reset`, the `RateLimit`
    /// field's `t`), as time from now; used to pause when its `remaining` is 0.
    pub reset: Option<Duration>,
    /// The server's quota per window, read but not applied: the lowest of
    /// `RateLimit-Limit`, `X-RateLimit-Limit` and the `RateLimit-Policy` field's `q`.
    pub limit: Option<u64>,
    /// The pause applied from `Retry-After` (or from a reset with nothing remaining),
    /// at most the limiter's [`max_pause`](super::RateLimitConfig::max_pause).
    pub paused_for: Option<Duration>,
    /// Recognised headers whose values were refused, values that could not be applied
    /// (e.g. a capacity the limiter cannot adopt), and a pause cut to `max_pause`.
    pub errors: Vec<HeaderError>,
}

impl SyncReport {
    /// Whether anything was applied.
    pub fn applied_anything(&self) -> bool {
        self.call_limit.is_some() || self.remaining.is_some() || self.paused_for.is_some()
    }
}

/// One family's remaining count and reset (with the reset header's name).
#[derive(Debug, Default, Clone, Copy)]
struct Family {
    remaining: Option<u64>,
    reset: Option<(Duration, &'static str)>,
}

/// The recognised headers, parsed.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) call_limit: Option<CallLimit>,
    pub(crate) retry_after: Option<Duration>,
    /// The fewest permits left any family reports.
    pub(crate) remaining: Option<u64>,
    /// The latest reset any family reports.
    pub(crate) reset: Option<Duration>,
    /// The latest reset of a family reporting nothing remaining, and its header.
    pub(crate) reset_pause: Option<(Duration, &'static str)>,
    pub(crate) limit: Option<u64>,
    pub(crate) errors: Vec<HeaderError>,
}

impl Parsed {
    /// Reads the recognised headers (names case-insensitive; others ignored; a repeated
    /// header: the last valid value wins).
    pub(crate) fn read<'h>(
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
        wall_now: SystemTime,
    ) -> Parsed {
        let mut p = Parsed::default();
        // The older IETF draft's fields, the `X-RateLimit-*` family, the `RateLimit` field.
        let [mut draft, mut x, mut ietf] = [Family::default(); 3];
        let mut limits: [Option<u64>; 3] = [None; 3];
        let e = &mut p.errors;
        for (name, value) in headers {
            let name = name.trim();
            let is = |h: &str| name.eq_ignore_ascii_case(h);
            let with = |h: &'static str| move |d: Duration| (d, h);
            if is(SHOPIFY_CALL_LIMIT) {
                keep(&mut p.call_limit, e, parse_shopify_call_limit(value));
            } else if is(RETRY_AFTER) {
                keep(&mut p.retry_after, e, parse_retry_after(value, wall_now));
            } else if is(RATELIMIT_REMAINING) {
                keep(&mut draft.remaining, e, parse_ratelimit_remaining(value));
            } else if is(RATELIMIT_RESET) {
                let r = parse_ratelimit_reset(value, wall_now).map(with(RATELIMIT_RESET));
                keep(&mut draft.reset, e, r);
            } else if is(RATELIMIT_LIMIT) {
                keep(&mut limits[0], e, parse_limit(RATELIMIT_LIMIT, value));
            } else if is(X_RATELIMIT_REMAINING) {
                keep(&mut x.remaining, e, parse_x_ratelimit_remaining(value));
            } else if is(X_RATELIMIT_RESET) {
                let r = parse_x_ratelimit_reset(value, wall_now).map(with(X_RATELIMIT_RESET));
                keep(&mut x.reset, e, r);
            } else if is(X_RATELIMIT_LIMIT) {
                keep(&mut limits[1], e, parse_limit(X_RATELIMIT_LIMIT, value));
            } else if is(RATELIMIT) {
                if let Some(q) = keep_ok(e, parse_ratelimit(value, wall_now)) {
                    ietf = Family {
                        remaining: Some(q.remaining),
                        reset: q.reset.map(with(RATELIMIT)),
                    };
                }
            } else if is(RATELIMIT_POLICY) {
                keep(&mut limits[2], e, parse_ratelimit_policy(value).map(|p| p.quota));
            }
        }
        let families = [draft, x, ietf];
        p.remaining = families.iter().filter_map(|f| f.remaining).min();
        p.reset = families.iter().filter_map(|f| f.reset).map(|(d, _)| d).max();
        p.reset_pause = families
            .iter()
            .filter(|f| f.remaining == Some(0))
            .filter_map(|f| f.reset)
            .max_by_key(|&(d, _)| d);
        p.limit = limits.into_iter().flatten().min();
        p
    }
}

fn keep_ok<T>(errors: &mut Vec<HeaderError>, r: Result<T, HeaderError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

fn keep<T>(slot: &mut Option<T>, errors: &mut Vec<HeaderError>, r: Result<T, HeaderError>) {
    match r {
        Ok(v) => *slot = Some(v),
        Err(e) => errors.push(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480) // Wed, 21 Oct 2015 07:28:00 GMT
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 120 ", now()), Ok(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("0", now()), Ok(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now()),
            Ok(Duration::from_secs(30))
        );
        // A date in the past means "now".
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now()), Ok(Duration::ZERO));
    }

    #[test]
    fn retry_after_reads_decimal_seconds() {
        assert_eq!(parse_retry_after("2.0", now()), Ok(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 1.5 ", now()), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("0.0000000019", now()), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn resets_tell_a_delta_from_an_epoch() {
        let at = |s: u64| (SystemTime::UNIX_EPOCH + Duration::from_secs(s)).duration_since(now());
        let epoch = 1_445_412_480;
        assert_eq!(parse_ratelimit_reset("30", now()), Ok(Duration::from_secs(30)));
        assert_eq!(
            parse_x_ratelimit_reset(&format!("{}", epoch + 30), now()),
            Ok(Duration::from_secs(30))
        );
        assert_eq!(at(epoch + 30).ok(), Some(Duration::from_secs(30)));
        // Slightly in the past: now.
        assert_eq!(parse_x_ratelimit_reset(&format!("{}", epoch - 5), now()), Ok(Duration::ZERO));
        // Just under the threshold: still a delta.
        let below = EPOCH_THRESHOLD.as_secs() - 1;
        assert_eq!(
            parse_ratelimit_reset(&below.to_string(), now()),
            Ok(Duration::from_secs(below))
        );
        let reason = |v: &str| parse_ratelimit_reset(v, now()).err().map(|e| e.reason());
        assert_eq!(reason("1795954842"), Some("epoch time more than a day ahead of the clock"));
        assert_eq!(
            reason(&EPOCH_THRESHOLD.as_secs().to_string()),
            Some("epoch time more than a day in the past")
        );
        assert_eq!(reason("18446744073709551615"), Some("epoch time out of range"));
    }

    #[test]
    fn ietf_fields_keep_the_most_restrictive_policy() {
        let q = parse_ratelimit("\"default\";r=50;t=30", now());
        assert_eq!(q, Ok(Quota { remaining: 50, reset: Some(Duration::from_secs(30)) }));
        let q = parse_ratelimit("\"a\";r=0;t=5, b;r=0;t=9;pk=:YWJj:, \"c,;\";r=3", now());
        assert_eq!(q, Ok(Quota { remaining: 0, reset: Some(Duration::from_secs(9)) }));
        assert_eq!(parse_ratelimit("x;r=7", now()), Ok(Quota { remaining: 7, reset: None }));
        let p = parse_ratelimit_policy("\"hour\";q=1000;w=3600, \"sec\";q=10;w=1");
        assert_eq!(p, Ok(Policy { quota: 1000, window: Some(Duration::from_secs(3600)) }));
        let reason = |v: &str| parse_ratelimit(v, now()).err().map(|e| e.reason());
        assert_eq!(reason(""), Some("empty value"));
        assert_eq!(reason("\"default\";t=30"), Some("policy without `r` (remaining)"));
        assert_eq!(reason("\"default;r=1"), Some("unterminated string"));
        assert_eq!(reason("\"a\\\";r=1"), Some("unterminated string"));
        let escaped = parse_ratelimit("\"a\\\"b;c\";r=4, \"d\\\\\";r=6", now());
        assert_eq!(escaped, Ok(Quota { remaining: 4, reset: None }));
        assert_eq!(reason("a;r=1,,b;r=2"), Some("expected a policy, e.g. `\"default\";r=50;t=30`"));
        assert_eq!(reason("a;r=-1"), Some("negative value"));
        assert_eq!(
            reason("a;r=1;t=1795954842"),
            Some("epoch time more than a day ahead of the clock")
        );
        assert_eq!(
            parse_ratelimit_policy("a;w=60").err().map(|e| e.reason()),
            Some("policy without `q` (quota)")
        );
    }

    #[test]
    fn read_merges_families_and_pauses_on_the_exhausted_one() {
        let p = Parsed::read(
            [
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", "1445412540"),
                ("X-RateLimit-Limit", "5000"),
                ("RateLimit", "\"default\";r=3;t=120"),
                ("RateLimit-Policy", "\"default\";q=100;w=60"),
            ],
            now(),
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.remaining, Some(0));
        assert_eq!(p.reset, Some(Duration::from_secs(120)));
        assert_eq!(p.reset_pause, Some((Duration::from_secs(60), X_RATELIMIT_RESET)));
        assert_eq!(p.limit, Some(100));
    }

    #[test]
    fn shopify_call_limit_reads_used_and_capacity() {
        assert_eq!(parse_shopify_call_limit("32/40"), Ok(CallLimit { used: 32, capacity: 40 }));
        assert_eq!(parse_shopify_call_limit(" 1 / 80 "), Ok(CallLimit { used: 1, capacity: 80 }));
        assert_eq!(parse_shopify_call_limit("41/40").map(|c| c.remaining()), Ok(0));
    }

    #[test]
    fn ratelimit_headers_ignore_parameters() {
        assert_eq!(parse_ratelimit_remaining("50;w=60"), Ok(50));
        assert_eq!(parse_ratelimit_reset("30;w=60", now()), Ok(Duration::from_secs(30)));
    }

    #[test]
    fn bad_values_are_errors_naming_header_reason_and_value() {
        type Parser = fn(&str) -> Option<HeaderError>;
        let retry_after: Parser = |v| parse_retry_after(v, now()).err();
        let call_limit: Parser = |v| parse_shopify_call_limit(v).err();
        let remaining: Parser = |v| parse_ratelimit_remaining(v).err();
        let reset: Parser = |v| parse_ratelimit_reset(v, now()).err();
        let x_reset: Parser = |v| parse_x_ratelimit_reset(v, now()).err();
        let x_remaining: Parser = |v| parse_x_ratelimit_remaining(v).err();
        let x_limit: Parser = |v| parse_limit(X_RATELIMIT_LIMIT, v).err();
        let policy: Parser = |v| parse_ratelimit_policy(v).err();
        let http_date =
            "expected delta-seconds or an HTTP date, e.g. `120` or `Wed, 21 Oct 2015 07:28:00 GMT`";
        let integer = "expected a non-negative integer";
        let cases: &[(Parser, &[(&str, &str)])] = &[
            (
                retry_after,
                &[
                    ("", "empty value"),
                    ("-5", "negative value"),
                    ("1.", SECONDS),
                    ("1.5.0", SECONDS),
                    ("+5", SECONDS),
                    ("99999999999999999999999", "number too large"),
                    ("soon", http_date),
                    ("Wed, 32 Oct 2015 07:28:00 GMT", http_date),
                ],
            ),
            (
                call_limit,
                &[
                    ("32", "expected `used/capacity`, e.g. `32/40`"),
                    ("32/0", "capacity must be at least 1"),
                    ("/40", "empty value"),
                    ("32/40/50", integer),
                    ("-1/40", "negative value"),
                    ("1/4294967296", "number too large"),
                    ("３２/40", integer),
                ],
            ),
            (
                remaining,
                &[
                    ("", "empty value"),
                    ("-1", "negative value"),
                    ("ten", integer),
                    ("18446744073709551616", "number too large"),
                ],
            ),
            (reset, &[(".5", SECONDS), ("1e3", SECONDS), ("\u{0}", SECONDS)]),
            (x_reset, &[("-0", "negative value")]),
            (x_remaining, &[("many", integer)]),
            (x_limit, &[("lots", integer)]),
            (policy, &[("a;q=x", integer)]),
        ];
        for (parse, table) in cases {
            for (value, reason) in *table {
                let err = parse(value);
                assert_eq!(err.as_ref().map(HeaderError::reason), Some(*reason), "value {value:?}");
                assert_eq!(err.as_ref().map(HeaderError::value), Some(*value), "value {value:?}");
            }
        }
    }

    #[test]
    fn long_values_are_truncated_in_errors() {
        let long = "x".repeat(1000);
        let err = parse_ratelimit_remaining(&long).err();
        assert_eq!(err.map(|e| e.value().chars().count()), Some(MAX_SHOWN + 1));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet: Vec<char> =
            "0123456789/-+;., :GMTWedOct\u{e9}\u{1F600}\t\0xyz\"\\=rtqw".chars().collect();
        for i in 0..20_000 {
            let len = rng.usize(0..40);
            let s: String = if i % 2 == 0 {
                (0..len).map(|_| alphabet[rng.usize(0..alphabet.len())]).collect()
            } else {
                let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            };
            let _ = parse_retry_after(&s, now());
            let _ = parse_shopify_call_limit(&s);
            let _ = parse_ratelimit_remaining(&s);
            let _ = parse_ratelimit_reset(&s, now());
            let _ = parse_x_ratelimit_reset(&s, now());
            let _ = parse_ratelimit(&s, now());
            let _ = parse_ratelimit_policy(&s);
            let p =
                Parsed::read([(SHOPIFY_CALL_LIMIT, s.as_str()), (s.as_str(), s.as_str())], now());
            assert!(p.errors.len() <= 2);
        }
    }

    #[test]
    fn read_is_case_insensitive_and_ignores_unknown_headers() {
        let p = Parsed::read(
            [
                ("x-shopify-shop-api-call-limit", "39/40"),
                ("RETRY-AFTER", "2"),
                ("content-type", "text/plain"),
                ("ratelimit-remaining", "nope"),
            ],
            now(),
        );
        assert_eq!(p.call_limit, Some(CallLimit { used: 39, capacity: 40 }));
        assert_eq!(p.retry_after, Some(Duration::from_secs(2)));
        assert_eq!(p.remaining, None);
        assert_eq!(p.errors.len(), 1);
    }
}
