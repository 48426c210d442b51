//! Fallback: answer a call's final error with a value of its own, as a layer.
//!
//! A fallback is the **outermost** layer: it sees the call's *final* error, after the
//! retry layer gave up and whichever layer refused the call. Placed inside the retry, it
//! would turn every failed attempt into a success and nothing would ever be retried;
//! placed inside the circuit breaker, the breaker would count the fallback's answers as
//! the backend's and never open. Outermost, the other layers see exactly what the
//! operation did, and only the caller sees the fallback's answer.
//!
//! Which final errors it answers is the [`FallbackOn`] policy:
//!
//! | policy | answers |
//! |---|---|
//! | [`Rejections`] | a layer's refusal only: open circuit, rate limit, full bulkhead, timeout ([`Fault::Rejected`]) |
//! | [`AnyError`] | every error, the operation's own included |
//! | a closure `Fn(&E) -> bool` | the errors it returns `true` for (a rejection is seen as `E::from(resilience::Error)`) |
//!
//! The same layer is [`pipeline::layer::fallback`](crate::pipeline::layer::fallback)
//! (one call), [`Pipeline::fallback`](crate::Pipeline::fallback) (around a whole
//! pipeline), `FallbackLayer` in [`tower`](crate::tower) (feature `tower`) and
//! `#[fallback(handler, on = ..)]` on a function (feature `macros`).
//!
//! Each answer is reported as [`EventKind::FallbackUsed`] (topic
//! [`Interest::FALLBACKS`], layer [`Layer::Fallback`]) under the fallback's name: the
//! function's path for `#[fallback]` (as its whole-call events), the pipeline's
//! ([`Pipeline::named`](crate::Pipeline::named)) or the tower layer's
//! (`FallbackLayer::named`, feature `tower`); an unnamed one reports
//! nothing. The metrics count them as `resilience_fallback_used_total`. A call the
//! fallback does not answer reports nothing and costs nothing.
//!
//! ```
//! use resilience::fallback::{AnyError, Rejections};
//! use resilience::pipeline::layer;
//! use resilience::{Error, Fault};
//! use std::time::Duration;
//!
//! let timed_out = || Err::<&str, Fault<Error>>(Fault::Rejected(Error::timeout(Duration::from_secs(1))));
//! let failed = || Err::<&str, Fault<Error>>(Fault::Inner(Error::timeout(Duration::from_secs(1))));
//!
//! // A rejection goes to the fallback; the operation's own error does not.
//! assert_eq!(layer::fallback(&Rejections, |_| Ok("cached"), timed_out), Ok("cached"));
//! assert!(layer::fallback(&Rejections, |_| Ok("cached"), failed).is_err());
//! // With `AnyError` both do.
//! assert_eq!(layer::fallback(&AnyError, |_| Ok("cached"), failed), Ok("cached"));
//! ```

use std::sync::Arc;

use crate::events::{EventKind, Hub, Interest, Layer};
use crate::{Error, Fault};

/// Reports that the fallback called `name` answered an error ([`EventKind::FallbackUsed`]).
/// Only on the fallback's path: an answered call pays it, a successful one never does.
#[cold]
#[inline(never)]
pub(crate) fn report(name: &Arc<str>, rejected: bool) {
    Hub::global().report(Layer::Fallback, name, Interest::FALLBACKS, tracing::Level::DEBUG, || {
        (crate::clock::default_clock().now(), EventKind::FallbackUsed { rejected })
    });
}

/// Which final errors a fallback answers: [`Rejections`], [`AnyError`], or a closure
/// `Fn(&E) -> bool` over the error as the caller would get it.
///
/// ```
/// use resilience::fallback::{AnyError, FallbackOn, Rejections};
/// use resilience::Error;
/// use std::time::Duration;
///
/// let e = Error::timeout(Duration::from_secs(1));
/// assert!(FallbackOn::<Error>::answers(&Rejections, true, &e));
/// assert!(!FallbackOn::<Error>::answers(&Rejections, false, &e));
/// assert!(FallbackOn::<Error>::answers(&AnyError, false, &e));
/// let timeouts = |e: &Error| matches!(e, Error::Timeout { .. });
/// assert!(timeouts.answers(false, &e));
/// ```
pub trait FallbackOn<E> {
    /// Whether the fallback answers `error`; `rejected` says whether a layer made it (a
    /// [`Fault::Rejected`]) rather than the operation.
    fn answers(&self, rejected: bool, error: &E) -> bool;
}

/// A fallback for rejections only: an open circuit, a rate limit, a full bulkhead, a
/// timeout. The operation's own errors reach the caller as they are.
///
/// This is what `#[circuit_breaker(fallback = ..)]` has always done for an open circuit,
/// widened to every layer's refusal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejections;

impl<E> FallbackOn<E> for Rejections {
    #[inline(always)]
    fn answers(&self, rejected: bool, _: &E) -> bool {
        rejected
    }
}

/// A fallback for every final error, the operation's own included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnyError;

impl<E> FallbackOn<E> for AnyError {
    #[inline(always)]
    fn answers(&self, _: bool, _: &E) -> bool {
        true
    }
}

impl<E, P> FallbackOn<E> for P
where
    P: Fn(&E) -> bool,
{
    #[inline(always)]
    fn answers(&self, _: bool, error: &E) -> bool {
        self(error)
    }
}

/// What a fallback makes of a final result (the decision, without the handler's call):
/// `Ok` to return as it is, `Err` to hand to the handler.
///
/// The pure core the drivers ([`pipeline::layer::fallback`](crate::pipeline::layer::fallback),
/// its async twin, the tower layer, the macros) share.
///
/// ```
/// use resilience::fallback::{Rejections, decide};
/// use resilience::{Error, Fault};
/// use std::time::Duration;
///
/// let rejected: Result<u8, Fault<Error>> = Err(Fault::Rejected(Error::timeout(Duration::from_secs(1))));
/// assert!(matches!(decide(&Rejections, rejected), Err(Error::Timeout { .. })));
/// assert_eq!(decide(&Rejections, Ok::<u8, Fault<Error>>(1)), Ok(Ok(1)));
/// ```
#[allow(
    clippy::type_complexity,
    reason = "the nested result is the decision: return this, or hand this error over"
)]
pub fn decide<T, E, O>(on: &O, result: Result<T, Fault<E>>) -> Result<Result<T, E>, E>
where
    E: From<Error>,
    O: FallbackOn<E> + ?Sized,
{
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(fault) => {
            let rejected = matches!(fault, Fault::Rejected(_));
            let error = fault.into_error();
            if on.answers(rejected, &error) { Err(error) } else { Ok(Err(error)) }
        }
    }
}

/// [`decide`], reporting an answered error under `name` (nothing without one).
#[allow(clippy::type_complexity, reason = "as `decide`")]
#[inline]
pub(crate) fn decide_named<T, E, O>(
    on: &O,
    name: Option<&Arc<str>>,
    result: Result<T, Fault<E>>,
) -> Result<Result<T, E>, E>
where
    E: From<Error>,
    O: FallbackOn<E> + ?Sized,
{
    let rejected = matches!(result, Err(Fault::Rejected(_)));
    let decision = decide(on, result);
    if let (Err(_), Some(name)) = (&decision, name) {
        report(name, rejected);
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rejected() -> Result<u32, Fault<Error>> {
        Err(Fault::Rejected(Error::timeout(Duration::from_secs(1))))
    }

    fn failed() -> Result<u32, Fault<Error>> {
        Err(Fault::Inner(Error::timeout(Duration::from_secs(2))))
    }

    #[test]
    fn rejections_answer_only_what_a_layer_refused() {
        assert!(decide(&Rejections, rejected()).is_err());
        assert!(matches!(decide(&Rejections, failed()), Ok(Err(_))));
        assert_eq!(decide(&Rejections, Ok::<u32, Fault<Error>>(3)), Ok(Ok(3)));
    }

    #[test]
    fn any_error_answers_both() {
        assert!(decide(&AnyError, rejected()).is_err());
        assert!(decide(&AnyError, failed()).is_err());
        assert_eq!(decide(&AnyError, Ok::<u32, Fault<Error>>(3)), Ok(Ok(3)));
    }

    #[test]
    fn a_predicate_sees_the_error_as_the_caller_would() {
        let long =
            |e: &Error| matches!(e, Error::Timeout { limit } if *limit > Duration::from_secs(1));
        assert!(matches!(decide(&long, rejected()), Ok(Err(_))));
        assert!(decide(&long, failed()).is_err());
    }
}
