//! HTTP types in the core (feature `http`): [`Classify`] and [`RetryAfter`] for
//! [`http::StatusCode`] and [`http::Response`], and
//! rate-limiter re-sync from an [`http::HeaderMap`].
//!
//! A response is classified by its status ([`http_status`]): 408, 425 and the 5xx
//! (except 501, 505 and 511) are transient, the other 4xx permanent, and 429 throttled;
//! a 503 that carries a `Retry-After` header is throttled too (the server said when to
//! come back: retried after that, not counted as a failure by a circuit breaker). A
//! status that is not an error (1xx, 2xx, 3xx) has no class ([`response_class`] is
//! `None`); as a [`Classify`] value it reads as permanent, which is never retried and
//! counts as a success.
//!
//! ```
//! use http::{Response, StatusCode};
//! use resilience::{Classify, ErrorClass, RetryAfter};
//! use std::time::Duration;
//!
//! assert_eq!(StatusCode::BAD_GATEWAY.class(), ErrorClass::Transient);
//! assert_eq!(StatusCode::NOT_FOUND.class(), ErrorClass::Permanent);
//!
//! let busy = Response::builder().status(503).header("retry-after", "2").body(())?;
//! assert_eq!(busy.class(), ErrorClass::Throttled);
//! assert_eq!(busy.retry_after(), Some(Duration::from_secs(2)));
//! assert_eq!(resilience::http::response_class(&Response::new(())), None);
//! # Ok::<(), http::Error>(())
//! ```
//!
//! A limiter re-syncs from a response's headers in every format
//! [`RateLimiter::sync_from_headers`] reads (Shopify's call limit, `Retry-After`,
//! `X-RateLimit-*` with a reset in seconds or as an epoch time, the IETF `RateLimit` and
//! `RateLimit-Policy` fields) with [`RateLimiter::sync_from_header_map`]:
//!
//! ```
//! use http::HeaderMap;
//! use resilience::rate_limit::{RateLimitConfig, RateLimiter};
//!
//! let limiter = RateLimiter::new("docs-http-sync", RateLimitConfig::builder().per_second(10).burst(50).build()?);
//! let mut headers = HeaderMap::new();
//! headers.insert("x-ratelimit-remaining", "7".parse()?);
//! headers.insert("x-ratelimit-limit", "5000".parse()?);
//! let report = limiter.sync_from_header_map(&headers);
//! assert_eq!((report.remaining, report.limit), (Some(7), Some(5000)));
//! assert_eq!(limiter.available(), 7);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::time::{Duration, SystemTime};

use ::http::header::RETRY_AFTER;
use ::http::{HeaderMap, Response, StatusCode};

use crate::classify::{Classify, ErrorClass, RetryAfter, http_status};
use crate::rate_limit::headers::parse_retry_after;
use crate::rate_limit::{KeyedRateLimiter, RateLimiter, SyncReport};

/// The class of an HTTP status: [`http_status`] of its code, `None` for a status that is
/// not an error.
///
/// ```
/// use http::StatusCode;
/// use resilience::ErrorClass;
/// use resilience::http::status_class;
///
/// assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), Some(ErrorClass::Transient));
/// assert_eq!(status_class(StatusCode::OK), None);
/// ```
#[inline]
pub fn status_class(status: StatusCode) -> Option<ErrorClass> {
    http_status(status.as_u16())
}

/// The class of a response: its status's ([`status_class`]), except that a 503 carrying
/// a `Retry-After` header is [throttled](ErrorClass::Throttled); `None` for a response
/// that is not an error.
///
/// ```
/// use http::Response;
/// use resilience::ErrorClass;
/// use resilience::http::response_class;
///
/// let plain = Response::builder().status(503).body(())?;
/// assert_eq!(response_class(&plain), Some(ErrorClass::Transient));
/// let hinted = Response::builder().status(503).header("Retry-After", "1").body(())?;
/// assert_eq!(response_class(&hinted), Some(ErrorClass::Throttled));
/// let limited = Response::builder().status(429).body(())?;
/// assert_eq!(response_class(&limited), Some(ErrorClass::Throttled));
/// # Ok::<(), http::Error>(())
/// ```
pub fn response_class<B>(response: &Response<B>) -> Option<ErrorClass> {
    class_of(response.status(), response.headers())
}

/// The class of a status with its headers, as [`response_class`].
#[inline]
pub(crate) fn class_of(status: StatusCode, headers: &HeaderMap) -> Option<ErrorClass> {
    if status == StatusCode::SERVICE_UNAVAILABLE && headers.contains_key(RETRY_AFTER) {
        return Some(ErrorClass::Throttled);
    }
    status_class(status)
}

/// The wait a `Retry-After` header asks for: delta-seconds (`120`, or decimal like
/// `2.0`) or an HTTP date read against the system clock; the last valid value of a
/// repeated header. `None` without a readable one.
///
/// ```
/// use http::HeaderMap;
/// use resilience::http::retry_after;
/// use std::time::Duration;
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(retry_after(&headers), None);
/// headers.insert("retry-after", "1.5".parse()?);
/// assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
/// # Ok::<(), http::header::InvalidHeaderValue>(())
/// ```
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

/// [`retry_after`] against the wall time `now`.
pub(crate) fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    headers
        .get_all(RETRY_AFTER)
        .iter()
        .rev()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| parse_retry_after(v, now).ok())
}

/// The headers of `headers` as `(name, value)` pairs, the form
/// [`RateLimiter::sync_from_headers`] reads. A value that is not visible ASCII (which no
/// rate-limit header is) is skipped.
///
/// ```
/// use http::HeaderMap;
/// use resilience::http::header_pairs;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("ratelimit", "\"default\";r=5;t=30".parse()?);
/// let pairs: Vec<(&str, &str)> = header_pairs(&headers).collect();
/// assert_eq!(pairs, [("ratelimit", "\"default\";r=5;t=30")]);
/// # Ok::<(), http::header::InvalidHeaderValue>(())
/// ```
pub fn header_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers.iter().filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
}

/// By status ([`status_class`]); a status that is not an error is
/// [permanent](ErrorClass::Permanent): never retried, a success for a circuit breaker.
#[diagnostic::do_not_recommend]
impl Classify for StatusCode {
    fn class(&self) -> ErrorClass {
        status_class(*self).unwrap_or(ErrorClass::Permanent)
    }
}

/// A bare status carries no hint.
#[diagnostic::do_not_recommend]
impl RetryAfter for StatusCode {}

/// By status and headers ([`response_class`]); a response that is not an error is
/// [permanent](ErrorClass::Permanent): never retried, a success for a circuit breaker.
#[diagnostic::do_not_recommend]
impl<B> Classify for Response<B> {
    fn class(&self) -> ErrorClass {
        response_class(self).unwrap_or(ErrorClass::Permanent)
    }
}

/// The response's `Retry-After` header ([`retry_after`]).
#[diagnostic::do_not_recommend]
impl<B> RetryAfter for Response<B> {
    fn retry_after(&self) -> Option<Duration> {
        retry_after(self.headers())
    }
}

impl RateLimiter {
    /// [`sync_from_headers`](Self::sync_from_headers) from an [`http::HeaderMap`]
    /// (feature `http`): every format it reads, with the same rules (a server's count only
    /// lowers the level, a pause is cut to `max_pause`, bad values are reported and change
    /// nothing). A value that is not visible ASCII is skipped.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use resilience::rate_limit::{RateLimitConfig, RateLimiter};
    ///
    /// let limiter = RateLimiter::new("docs-header-map", RateLimitConfig::builder().per_second(2).burst(40).build()?);
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-shopify-shop-api-call-limit", "32/40".parse()?);
    /// assert!(limiter.sync_from_header_map(&headers).errors.is_empty());
    /// assert_eq!(limiter.available(), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync_from_header_map(&self, headers: &HeaderMap) -> SyncReport {
        self.sync_from_headers(header_pairs(headers))
    }
}

impl<K> KeyedRateLimiter<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// [`sync_from_headers`](Self::sync_from_headers) of `key`'s bucket from an
    /// [`http::HeaderMap`] (feature `http`).
    ///
    /// ```
    /// use http::HeaderMap;
    /// use resilience::rate_limit::{KeyedRateLimiter, RateLimitConfig};
    ///
    /// let per_host: KeyedRateLimiter =
    ///     KeyedRateLimiter::new("docs-keyed-header-map", RateLimitConfig::builder().per_second(5).burst(10).build()?);
    /// let mut headers = HeaderMap::new();
    /// headers.insert("ratelimit", "\"default\";r=3;t=1".parse()?);
    /// per_host.sync_from_header_map("api.example.com", &headers);
    /// assert_eq!(per_host.available("api.example.com"), 3);
    /// assert_eq!(per_host.available("other.example.com"), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync_from_header_map<Q>(&self, key: &Q, headers: &HeaderMap) -> SyncReport
    where
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K> + fmt::Debug,
        K: Borrow<Q>,
    {
        self.sync_from_headers(key, header_pairs(headers))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::circuit::CallOutcome;
    use crate::clock::{Clock, ManualClock};
    use crate::rate_limit::RateLimitConfig;
    use ErrorClass::{Permanent, Throttled, Transient};

    fn response(status: u16, headers: &[(&'static str, &str)]) -> Response<()> {
        let mut b = Response::builder().status(status);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn statuses_follow_the_table() {
        for code in [408, 425, 500, 502, 503, 504] {
            let s = StatusCode::from_u16(code).unwrap();
            assert_eq!(s.class(), Transient, "{code}");
            assert_eq!(s.breaker_outcome(), CallOutcome::Failure, "{code}");
        }
        assert_eq!(StatusCode::TOO_MANY_REQUESTS.class(), Throttled);
        for code in [400, 401, 403, 404, 409, 422, 501] {
            assert_eq!(StatusCode::from_u16(code).unwrap().class(), Permanent, "{code}");
        }
        for code in [200, 204, 301] {
            let s = StatusCode::from_u16(code).unwrap();
            assert_eq!(status_class(s), None);
            assert!(!s.is_transient());
            assert_eq!(s.breaker_outcome(), CallOutcome::Success);
        }
    }

    #[test]
    fn a_503_with_retry_after_is_throttled_and_ignored_by_a_breaker() {
        let r = response(503, &[("Retry-After", "3")]);
        assert_eq!(r.class(), Throttled);
        assert!(r.is_transient());
        assert_eq!(r.breaker_outcome(), CallOutcome::Ignored);
        assert_eq!(RetryAfter::retry_after(&r), Some(Duration::from_secs(3)));
        let plain = response(503, &[]);
        assert_eq!(plain.class(), Transient);
        assert_eq!(RetryAfter::retry_after(&plain), None);
        let limited = response(429, &[("retry-after", "0.5")]);
        assert_eq!(limited.class(), Throttled);
        assert_eq!(RetryAfter::retry_after(&limited), Some(Duration::from_millis(500)));
        assert_eq!(response(200, &[]).class(), Permanent);
        assert_eq!(response_class(&response(200, &[("Retry-After", "1")])), None);
    }

    #[test]
    fn retry_after_reads_dates_and_skips_bad_values() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let r = response(429, &[("Retry-After", "Wed, 21 Oct 2015 07:28:30 GMT")]);
        assert_eq!(retry_after_at(r.headers(), now), Some(Duration::from_secs(30)));
        let r = response(429, &[("Retry-After", "7"), ("Retry-After", "soon")]);
        assert_eq!(retry_after_at(r.headers(), now), Some(Duration::from_secs(7)));
        let r = response(429, &[("Retry-After", "soon")]);
        assert_eq!(retry_after_at(r.headers(), now), None);
    }

    #[test]
    fn header_map_sync_reads_every_format() {
        let clock = ManualClock::with_wall_time(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        let config = RateLimitConfig::builder().per_second(1).burst(100).build().unwrap();
        let limiter = RateLimiter::with_clock("http-sync", config, clock.shared());
        let epoch_reset = clock.wall_now().duration_since(SystemTime::UNIX_EPOCH).unwrap()
            + Duration::from_secs(60);
        let r = response(
            200,
            &[
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", &epoch_reset.as_secs().to_string()),
                ("X-RateLimit-Limit", "5000"),
                ("RateLimit", "\"default\";r=3;t=120"),
                ("RateLimit-Policy", "\"default\";q=100;w=60"),
            ],
        );
        let report = limiter.sync_from_header_map(r.headers());
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.remaining, Some(0));
        assert_eq!(report.limit, Some(100));
        assert_eq!(report.paused_for, Some(Duration::from_secs(60)));
        assert_eq!(limiter.available(), 0);
    }

    #[test]
    fn non_ascii_values_are_skipped_not_misread() {
        let mut headers = HeaderMap::new();
        headers
            .insert("x-ratelimit-remaining", ::http::HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        headers.insert("ratelimit-remaining", "4".parse().unwrap());
        assert_eq!(header_pairs(&headers).count(), 1);
        let config = RateLimitConfig::builder().per_second(1).burst(10).build().unwrap();
        let limiter = RateLimiter::with_clock("http-skip", config, ManualClock::new().shared());
        let report = limiter.sync_from_header_map(&headers);
        assert_eq!(report.remaining, Some(4));
        assert!(report.errors.is_empty());
    }
}
