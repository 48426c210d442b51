//! Error classification: is a failure worth retrying, and is it the service's fault?
//!
//! A *transient* failure (a timeout, a dropped connection, HTTP 503) may well succeed if
//! tried again; a *permanent* one (HTTP 404, a malformed request, a permission error)
//! will fail the same way every time, and retrying it only adds load; a *throttled* one
//! (HTTP 429) is the service asking the caller to slow down: retried after its hint,
//! but no sign that the service is failing. Implement
//! [`Classify`] (and [`RetryAfter`] for server hints) on your error type: the attribute
//! macros and [`Pipeline`](crate::Pipeline)'s `call`, `call_blocking` and `call_async`
//! then retry its transient errors only, and a [`RetryPolicy`](crate::retry::RetryPolicy)
//! does with [`Classified`](crate::retry::Classified) hooks. The tables here classify
//! common errors: [`http_status`] and [`io_error_kind`].
//!
//! The class also decides how a circuit breaker counts the error
//! ([`Classify::breaker_outcome`]): a transient error is the service failing, a permanent
//! one is the service answering (the caller's request was wrong: it counts as a
//! success), a throttled one counts as neither. The attribute macros, `Pipeline` and
//! [`CircuitBreaker::call_classified`](crate::CircuitBreaker::call_classified) count this
//! way for an error type that implements [`Classify`]; explicit `failure_if` /
//! `ignore_if` predicates take precedence. An error type without `Classify` has every
//! error counted as a failure.
//!
//! ```
//! use resilience::classify::{http_status, Classify, ErrorClass, RetryAfter};
//! use std::time::Duration;
//!
//! #[derive(Debug)]
//! struct HttpError {
//!     status: u16,
//!     retry_after: Option<Duration>,
//! }
//!
//! impl Classify for HttpError {
//!     fn class(&self) -> ErrorClass {
//!         http_status(self.status).unwrap_or(ErrorClass::Permanent)
//!     }
//! }
//!
//! impl RetryAfter for HttpError {
//!     fn retry_after(&self) -> Option<Duration> {
//!         self.retry_after
//!     }
//! }
//!
//! assert!(HttpError { status: 503, retry_after: None }.is_transient());
//! assert!(!HttpError { status: 404, retry_after: None }.is_transient());
//! ```

use std::io::ErrorKind;
use std::time::Duration;

use crate::circuit::CallOutcome;
use crate::{Error, Fault};

/// Whether a failure may go away if the call is tried again, and whether it is the
/// service's fault.
///
/// | class | retried | a circuit breaker counts it as |
/// |---|---|---|
/// | `Transient` | yes | a failure |
/// | `Permanent` | no | a success (the service answered) |
/// | `Throttled` | yes, after its hint | neither ([`CallOutcome::Ignored`]) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// May succeed on a later attempt: retry it. The service is failing.
    Transient,
    /// Will fail the same way again: do not retry. The request was wrong, not the
    /// service.
    Permanent,
    /// The service (or a rate limiter) asked the caller to slow down, like HTTP 429:
    /// retry it after its [`RetryAfter`] hint, but it says nothing about the service's
    /// health.
    Throttled,
}

impl ErrorClass {
    /// Whether the retry loop retries this class: `Transient` and `Throttled`.
    pub fn is_retryable(self) -> bool {
        !matches!(self, ErrorClass::Permanent)
    }

    /// How a circuit breaker counts an error of this class: `Transient` is a failure,
    /// `Permanent` a success (the service answered), `Throttled` neither.
    ///
    /// ```
    /// use resilience::ErrorClass;
    /// use resilience::circuit::CallOutcome;
    /// assert_eq!(ErrorClass::Transient.breaker_outcome(), CallOutcome::Failure);
    /// assert_eq!(ErrorClass::Permanent.breaker_outcome(), CallOutcome::Success);
    /// assert_eq!(ErrorClass::Throttled.breaker_outcome(), CallOutcome::Ignored);
    /// ```
    pub fn breaker_outcome(self) -> CallOutcome {
        match self {
            ErrorClass::Transient => CallOutcome::Failure,
            ErrorClass::Permanent => CallOutcome::Success,
            ErrorClass::Throttled => CallOutcome::Ignored,
        }
    }
}

/// An error that knows whether it is worth retrying.
///
/// [`Pipeline::call`](crate::Pipeline::call), [`call_async`](crate::Pipeline::call_async)
/// and [`call_blocking`](crate::Pipeline::call_blocking) require it (with [`RetryAfter`]):
/// they retry transient errors only, as the attribute macros do for an error type that
/// implements it. For an error type that cannot say, retry every error with
/// `call_with(&DefaultHooks, ..)` ([`DefaultHooks`](crate::retry::DefaultHooks)), or
/// choose with [`Hooks`](crate::retry::Hooks).
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not say which errors are worth retrying: it does not implement `resilience::Classify`",
    label = "the error type needs `impl resilience::Classify for {Self}`",
    note = "implement `Classify` (and `RetryAfter`, empty when the error carries no hint) so that only transient errors are retried, as the attributes do",
    note = "or retry every error: `pipeline.call_with(&resilience::retry::DefaultHooks, ..)` (`call_async_with`, `call_blocking_with`)"
)]
pub trait Classify {
    /// The class of this error.
    fn class(&self) -> ErrorClass;

    /// Whether the retry loop retries this error: its class is `Transient` or `Throttled`
    /// ([`ErrorClass::is_retryable`]).
    fn is_transient(&self) -> bool {
        self.class().is_retryable()
    }

    /// How a circuit breaker counts this error when no `failure_if` / `ignore_if` says
    /// otherwise: by default from its class ([`ErrorClass::breaker_outcome`]: transient
    /// is a failure, permanent a success, throttled neither). Override it for an error
    /// whose class and effect on the breaker differ.
    fn breaker_outcome(&self) -> CallOutcome {
        self.class().breaker_outcome()
    }
}

/// An error that may carry the server's "try again in ..." hint (an HTTP `Retry-After`
/// header, a gRPC `RetryInfo`, a rate limiter's estimate).
///
/// The method defaults to no hint, so an error type that [classifies](Classify) itself
/// but carries no hint implements it with an empty `impl RetryAfter for MyError {}`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not say whether it carries a server hint: it does not implement `resilience::RetryAfter`",
    label = "the error type needs `impl resilience::RetryAfter for {Self}`",
    note = "an error without a \"retry after\" hint implements it empty: `impl resilience::RetryAfter for {Self} {{}}`",
    note = "or retry every error: `pipeline.call_with(&resilience::retry::DefaultHooks, ..)` (`call_async_with`, `call_blocking_with`)"
)]
pub trait RetryAfter {
    /// How long to wait before the next attempt, when known (default: never known).
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// The class of an HTTP status code, or `None` for a status that is not an error
/// (1xx, 2xx, 3xx) or not a status at all (below 100, 600 and above).
///
/// * Throttled: 429 Too Many Requests (retried after its hint; a circuit breaker ignores
///   it).
/// * Transient: 408 Request Timeout, 425 Too Early, and every
///   5xx (500, 502, 503, 504 and the rest: a server error says nothing about the
///   request being wrong) **except** 501 Not Implemented, 505 HTTP Version Not Supported
///   and 511 Network Authentication Required, which will not change on their own.
/// * Permanent: every other 4xx (400, 401, 403, 404, 405, 409, 410, 422, ...): the request
///   itself must change before it can succeed.
///
/// ```
/// use resilience::classify::{http_status, ErrorClass};
/// assert_eq!(http_status(503), Some(ErrorClass::Transient));
/// assert_eq!(http_status(422), Some(ErrorClass::Permanent));
/// assert_eq!(http_status(429), Some(ErrorClass::Throttled));
/// assert_eq!(http_status(200), None);
/// ```
#[inline]
pub fn http_status(code: u16) -> Option<ErrorClass> {
    match code {
        429 => Some(ErrorClass::Throttled),
        408 | 425 => Some(ErrorClass::Transient),
        501 | 505 | 511 => Some(ErrorClass::Permanent),
        400..=499 => Some(ErrorClass::Permanent),
        500..=599 => Some(ErrorClass::Transient),
        _ => None,
    }
}

/// The class of an I/O error kind.
///
/// Transient: the network and timing kinds (`ConnectionRefused`, `ConnectionReset`,
/// `ConnectionAborted`, `NotConnected`, `HostUnreachable`, `NetworkUnreachable`,
/// `NetworkDown`, `AddrInUse`, `AddrNotAvailable` (ephemeral ports exhausted),
/// `BrokenPipe`, `TimedOut`, `Interrupted`, `WouldBlock`, `UnexpectedEof`, `ResourceBusy`).
/// Everything else is permanent (`NotFound`, `PermissionDenied`, `InvalidInput`,
/// `InvalidData`, `Unsupported`, `AlreadyExists`, `OutOfMemory`, `Other`, and kinds
/// added to the standard library later): an error the retry loop does not understand is
/// not retried.
///
/// ```
/// use resilience::classify::{io_error_kind, ErrorClass};
/// use std::io::ErrorKind;
/// assert_eq!(io_error_kind(ErrorKind::ConnectionReset), ErrorClass::Transient);
/// assert_eq!(io_error_kind(ErrorKind::PermissionDenied), ErrorClass::Permanent);
/// ```
pub fn io_error_kind(kind: ErrorKind) -> ErrorClass {
    match kind {
        ErrorKind::ConnectionRefused
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::NotConnected
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable
        | ErrorKind::NetworkDown
        | ErrorKind::AddrInUse
        | ErrorKind::AddrNotAvailable
        | ErrorKind::BrokenPipe
        | ErrorKind::TimedOut
        | ErrorKind::Interrupted
        | ErrorKind::WouldBlock
        | ErrorKind::UnexpectedEof
        | ErrorKind::ResourceBusy => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

/// By kind ([`io_error_kind`]); an `io::Error` made from a resilience [`Error`] (a
/// rejection reaching an `io::Result` function) is classified as that `Error`.
impl Classify for std::io::Error {
    fn class(&self) -> ErrorClass {
        match rejection(self) {
            Some(e) => e.class(),
            None => io_error_kind(self.kind()),
        }
    }
}

/// No hint, unless the `io::Error` carries a resilience [`Error`] with one.
impl RetryAfter for std::io::Error {
    fn retry_after(&self) -> Option<Duration> {
        rejection(self).and_then(Error::retry_after)
    }
}

/// The resilience [`Error`] an `io::Error` was made from, if any.
fn rejection(e: &std::io::Error) -> Option<&Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Error>())
}

/// `Timeout`, `BulkheadFull`, `BackendUnavailable` and `BlockingPoolFull` are transient;
/// `RateLimited` is throttled; `CircuitOpen` (the breaker decides when to try again, not
/// the retry loop) and `Config` are permanent.
impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::RateLimited { .. } => ErrorClass::Throttled,
            Error::Timeout { .. }
            | Error::BulkheadFull { .. }
            | Error::BackendUnavailable { .. }
            | Error::BlockingPoolFull { .. } => ErrorClass::Transient,
            Error::CircuitOpen { .. } | Error::Config(_) => ErrorClass::Permanent,
        }
    }
}

/// [`Error::retry_after`].
impl RetryAfter for Error {
    fn retry_after(&self) -> Option<Duration> {
        Error::retry_after(self)
    }
}

/// The class of the inner error or of the rejection.
impl<E: Classify> Classify for Fault<E> {
    fn class(&self) -> ErrorClass {
        match self {
            Fault::Inner(e) => e.class(),
            Fault::Rejected(e) => e.class(),
        }
    }
}

/// The hint of the inner error or of the rejection.
impl<E: RetryAfter> RetryAfter for Fault<E> {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Fault::Inner(e) => e.retry_after(),
            Fault::Rejected(e) => RetryAfter::retry_after(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ErrorClass::{Permanent, Throttled, Transient};

    #[test]
    fn http_table() {
        for code in [408, 425, 500, 502, 503, 504, 507, 520, 599] {
            assert_eq!(http_status(code), Some(Transient), "{code}");
        }
        // Retried like a transient error, ignored by a circuit breaker.
        assert_eq!(http_status(429), Some(Throttled));
        assert!(Throttled.is_retryable());
        for code in [400, 401, 403, 404, 405, 409, 410, 422, 451, 499, 501, 505, 511] {
            assert_eq!(http_status(code), Some(Permanent), "{code}");
        }
        for code in [0, 99, 100, 200, 204, 301, 304, 399, 600, u16::MAX] {
            assert_eq!(http_status(code), None, "{code}");
        }
    }

    #[test]
    fn io_table() {
        use ErrorKind::*;
        for k in [
            ConnectionRefused,
            ConnectionReset,
            ConnectionAborted,
            NotConnected,
            HostUnreachable,
            NetworkUnreachable,
            NetworkDown,
            AddrInUse,
            AddrNotAvailable,
            BrokenPipe,
            TimedOut,
            Interrupted,
            WouldBlock,
            UnexpectedEof,
            ResourceBusy,
        ] {
            assert_eq!(io_error_kind(k), Transient, "{k:?}");
        }
        for k in [
            NotFound,
            PermissionDenied,
            InvalidInput,
            InvalidData,
            Unsupported,
            AlreadyExists,
            OutOfMemory,
            WriteZero,
            Other,
        ] {
            assert_eq!(io_error_kind(k), Permanent, "{k:?}");
        }
        let e = std::io::Error::from(TimedOut);
        assert!(e.is_transient());
        assert_eq!(RetryAfter::retry_after(&e), None);
    }

    #[test]
    fn resilience_errors() {
        let s = Duration::from_secs(1);
        assert_eq!(Error::timeout(s).class(), Transient);
        assert_eq!(Error::rate_limited("r", s).class(), Throttled);
        assert!(Error::rate_limited("r", s).is_transient(), "retried");
        assert_eq!(Error::bulkhead_full("b", 4).class(), Transient);
        assert_eq!(Error::circuit_open("c", s).class(), Permanent);
        let cfg = Error::Config(crate::ConfigError::new("x", "bad"));
        assert_eq!(cfg.class(), Permanent);
        assert_eq!(RetryAfter::retry_after(&Error::rate_limited("r", s)), Some(s));
        assert_eq!(RetryAfter::retry_after(&Error::timeout(s)), None);
    }

    #[test]
    fn faults_delegate() {
        let s = Duration::from_secs(2);
        let inner: Fault<std::io::Error> = Fault::Inner(ErrorKind::ConnectionReset.into());
        assert_eq!(inner.class(), Transient);
        let rejected: Fault<std::io::Error> = Fault::Rejected(Error::rate_limited("r", s));
        assert_eq!(rejected.class(), Throttled);
        assert!(rejected.is_transient());
        assert_eq!(rejected.retry_after(), Some(s));
        let open: Fault<std::io::Error> = Fault::Rejected(Error::circuit_open("c", s));
        assert!(!open.is_transient());
    }

    #[test]
    fn breaker_counts_by_class() {
        assert_eq!(Transient.breaker_outcome(), CallOutcome::Failure);
        assert_eq!(Permanent.breaker_outcome(), CallOutcome::Success);
        assert_eq!(Throttled.breaker_outcome(), CallOutcome::Ignored);
        let reset = std::io::Error::from(ErrorKind::ConnectionReset);
        assert_eq!(reset.breaker_outcome(), CallOutcome::Failure);
        let denied = std::io::Error::from(ErrorKind::PermissionDenied);
        assert_eq!(denied.breaker_outcome(), CallOutcome::Success);
    }
}
