//! What the unit tests of several modules share.

use crate::Error;

/// A service's error type: its own failures, and rejections by the layers.
#[derive(Debug, PartialEq)]
pub(crate) enum AppError {
    Resilience(Error),
    Own(&'static str),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Resilience(e)
    }
}
