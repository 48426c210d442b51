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
//! assert_eq!(headers::parse_ratelimit_remaining("17")?, 17);
//! assert_eq!(headers::parse_ratelimit_reset("30")?, Duration::from_secs(30));
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

/// `Retry-After`: delta-seconds (`120`) or an HTTP date, relative to `now` (a date in
/// the past gives zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Result<Duration, HeaderError> {
    let s = value.trim();
    if s.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'-' || b == b'+') {
        return parse_uint(RETRY_AFTER, value).map(Duration::from_secs);
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

/// `RateLimit-Reset`: seconds until the window resets. Parameters after `;` are ignored.
pub fn parse_ratelimit_reset(value: &str) -> Result<Duration, HeaderError> {
    let item = value.split(';').next().unwrap_or(value);
    parse_uint(RATELIMIT_RESET, item)
        .map(Duration::from_secs)
        .map_err(|e| HeaderError::new(RATELIMIT_RESET, e.reason, value))
}

/// What `sync_from_headers` read and applied, and the values it could not read.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SyncReport {
    /// The Shopify call limit applied (fill level set; capacity adopted as burst).
    pub call_limit: Option<CallLimit>,
    /// `RateLimit-Remaining` applied (fill level set to it, clamped to the burst).
    pub remaining: Option<u64>,
    /// `RateLimit-Reset` read (used to pause when `remaining` is 0).
    pub reset: Option<Duration>,
    /// The pause applied from `Retry-After` (or from `RateLimit-Reset` with nothing
    /// remaining).
    pub paused_for: Option<Duration>,
    /// Recognised headers whose values were refused, and values that could not be
    /// applied (e.g. a capacity the limiter cannot adopt).
    pub errors: Vec<HeaderError>,
}

impl SyncReport {
    /// Whether anything was applied.
    pub fn applied_anything(&self) -> bool {
        self.call_limit.is_some() || self.remaining.is_some() || self.paused_for.is_some()
    }
}

/// The recognised headers, parsed.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) call_limit: Option<CallLimit>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) remaining: Option<u64>,
    pub(crate) reset: Option<Duration>,
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
        for (name, value) in headers {
            let name = name.trim();
            let is = |h: &str| name.eq_ignore_ascii_case(h);
            if is(SHOPIFY_CALL_LIMIT) {
                keep(&mut p.call_limit, &mut p.errors, parse_shopify_call_limit(value));
            } else if is(RETRY_AFTER) {
                keep(&mut p.retry_after, &mut p.errors, parse_retry_after(value, wall_now));
            } else if is(RATELIMIT_REMAINING) {
                keep(&mut p.remaining, &mut p.errors, parse_ratelimit_remaining(value));
            } else if is(RATELIMIT_RESET) {
                keep(&mut p.reset, &mut p.errors, parse_ratelimit_reset(value));
            }
        }
        p
    }
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
    fn shopify_call_limit_reads_used_and_capacity() {
        assert_eq!(parse_shopify_call_limit("32/40"), Ok(CallLimit { used: 32, capacity: 40 }));
        assert_eq!(parse_shopify_call_limit(" 1 / 80 "), Ok(CallLimit { used: 1, capacity: 80 }));
        assert_eq!(parse_shopify_call_limit("41/40").map(|c| c.remaining()), Ok(0));
    }

    #[test]
    fn ratelimit_headers_ignore_parameters() {
        assert_eq!(parse_ratelimit_remaining("50;w=60"), Ok(50));
        assert_eq!(parse_ratelimit_reset("30"), Ok(Duration::from_secs(30)));
    }

    #[test]
    fn bad_values_are_errors_naming_header_reason_and_value() {
        type Parser = fn(&str) -> Option<HeaderError>;
        let retry_after: Parser = |v| parse_retry_after(v, now()).err();
        let call_limit: Parser = |v| parse_shopify_call_limit(v).err();
        let remaining: Parser = |v| parse_ratelimit_remaining(v).err();
        let reset: Parser = |v| parse_ratelimit_reset(v).err();
        let http_date =
            "expected delta-seconds or an HTTP date, e.g. `120` or `Wed, 21 Oct 2015 07:28:00 GMT`";
        let integer = "expected a non-negative integer";
        let cases: &[(Parser, &[(&str, &str)])] = &[
            (
                retry_after,
                &[
                    ("", "empty value"),
                    ("-5", "negative value"),
                    ("1.5", integer),
                    ("+5", integer),
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
            (reset, &[("1e3", integer), ("\u{0}", integer)]),
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
            "0123456789/-+;., :GMTWedOct\u{e9}\u{1F600}\t\0xyz".chars().collect();
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
            let _ = parse_ratelimit_reset(&s);
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
