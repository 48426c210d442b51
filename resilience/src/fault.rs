//! [`Fault`]: what a layer sees from the layers inside it.

use crate::Error;

/// The error side of a call as seen between resilience layers.
///
/// Inside a pipeline (retry around a breaker around a limiter...), a layer must tell the
/// user's error apart from a rejection made by an inner layer: a retry does not retry a
/// [`Error::CircuitOpen`], a breaker does not count a [`Error::RateLimited`] as a failure
/// of the service. `Fault` keeps the two apart until the outermost layer turns it into the
/// user's `E` with [`Fault::into_error`].
///
/// ```
/// use resilience::{Error, Fault};
///
/// let f: Fault<std::io::Error> = Fault::Rejected(Error::timeout(std::time::Duration::from_secs(1)));
/// assert!(f.rejection().is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault<E> {
    /// The wrapped operation itself returned this error.
    Inner(E),
    /// A resilience layer refused the call or cut it short.
    Rejected(Error),
}

impl<E> Fault<E> {
    /// The user's error type, converting rejections with `E::from`.
    pub fn into_error(self) -> E
    where
        E: From<Error>,
    {
        match self {
            Fault::Inner(e) => e,
            Fault::Rejected(e) => E::from(e),
        }
    }

    /// The rejection, when a layer made it.
    pub fn rejection(&self) -> Option<&Error> {
        match self {
            Fault::Rejected(e) => Some(e),
            Fault::Inner(_) => None,
        }
    }

    /// The operation's own error, when it returned one.
    pub fn inner(&self) -> Option<&E> {
        match self {
            Fault::Inner(e) => Some(e),
            Fault::Rejected(_) => None,
        }
    }
}

impl<E> From<Error> for Fault<E> {
    fn from(e: Error) -> Self {
        Fault::Rejected(e)
    }
}
