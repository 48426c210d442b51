//! [`BackendHandle`]: which Redis a shared limiter or circuit talks to.

use std::sync::{Arc, OnceLock};

use super::backend::{RedisBackend, Unavailable};
use crate::FailMode;

/// The backend an instance uses: given at construction, or the process-wide one resolved
/// on first use.
pub(crate) enum BackendHandle {
    Given(Arc<RedisBackend>),
    Global(OnceLock<Arc<RedisBackend>>),
}

impl BackendHandle {
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

    /// The backend an instance with `config`'s backend uses.
    pub(crate) fn for_config(
        backend: crate::Backend,
        given: Option<Arc<RedisBackend>>,
    ) -> Option<(BackendHandle, FailMode)> {
        match backend {
            crate::Backend::Local => None,
            crate::Backend::Redis(fail) => Some((
                given.map_or_else(|| BackendHandle::Global(OnceLock::new()), BackendHandle::Given),
                fail,
            )),
        }
    }
}
