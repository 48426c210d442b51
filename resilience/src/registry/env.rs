//! What a registry gives the instances it creates: its event hub and its state store.

use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::backend::StateStore;
use crate::events::Hub;

/// What a registry gives the instances it creates (not public API).
#[doc(hidden)]
pub struct Env {
    pub(crate) hub: Hub,
    /// The store for instances with a shared `Backend`; `None`: the process store of
    /// their backend.
    store: RwLock<Option<Arc<dyn StateStore>>>,
}

impl Env {
    pub(crate) fn new(hub: Hub) -> Self {
        Env { hub, store: RwLock::new(None) }
    }

    /// The registry's own store, if one was set.
    pub(crate) fn store(&self) -> Option<Arc<dyn StateStore>> {
        self.store.read().clone()
    }

    pub(crate) fn set_store(&self, store: Arc<dyn StateStore>) {
        *self.store.write() = Some(store);
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env").field("own_store", &self.store.read().is_some()).finish()
    }
}

/// Creates an instance with a shared backend in the registry's own store, falling back
/// (with an error in the log) to `local` when the store cannot keep the config or when
/// the registry has no store of its own.
/// The instance gets a clone of `name` (one name allocation, shared with the registry).
pub(crate) fn in_store<T, C>(
    env: &Env,
    name: &Arc<str>,
    config: C,
    shared: bool,
    with_store: impl FnOnce(Arc<str>, C, &dyn StateStore) -> Result<T, crate::ConfigError>,
    local: impl FnOnce(Arc<str>, C) -> T,
) -> T
where
    C: Clone,
{
    if let (true, Some(store)) = (shared, env.store()) {
        match with_store(name.clone(), config.clone(), &*store) {
            Ok(instance) => return instance,
            Err(e) => {
                tracing::error!(name = &**name, error = %e, "the registry's store cannot keep this config: the instance stays local")
            }
        }
    }
    local(name.clone(), config)
}
