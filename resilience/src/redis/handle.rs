//! [`BackendHandle`]: which Redis a shared limiter or circuit talks to.

use std::sync::{Arc, OnceLock};

use super::backend::{RedisBackend, Unavailable};

/// The backend an instance uses: given at construction, or the process-wide one resolved
/// on first use.
pub(crate) enum BackendHandle {
    Given(Arc<RedisBackend>),
    Global(OnceLock<Arc<RedisBackend>>),
}

impl BackendHandle {
    /// The backend if known already (no lookup).
    pub(crate) fn get_if_resolved(&self) -> Option<&Arc<RedisBackend>> {
        match self {
            BackendHandle::Given(b) => Some(b),
            BackendHandle::Global(cell) => cell.get(),
        }
    }

    /// The backend; a missing global one is looked for again on the next call.
    pub(crate) fn get(&self) -> Result<&Arc<RedisBackend>, Unavailable> {
        match self {
            BackendHandle::Given(b) => Ok(b),
            BackendHandle::Global(cell) => match cell.get() {
                Some(b) => Ok(b),
                None => {
                    let b = super::global()?;
                    Ok(cell.get_or_init(|| b))
                }
            },
        }
    }
}
