//! One map of named instances of a kind, with configs an operator set for names.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::env::Env;
use super::named::Named;
use crate::ConfigError;

pub(crate) struct Slots<T: Named> {
    instances: RwLock<HashMap<Arc<str>, Arc<T>>>,
    configured: RwLock<HashMap<Arc<str>, T::Config>>,
    warned: Mutex<HashSet<Arc<str>>>,
    /// The registry's hub and store, given to every instance created here.
    env: Arc<Env>,
}

impl<T: Named> Slots<T> {
    pub(crate) fn new(env: Arc<Env>) -> Self {
        Slots {
            instances: RwLock::new(HashMap::new()),
            configured: RwLock::new(HashMap::new()),
            warned: Mutex::new(HashSet::new()),
            env,
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<T>> {
        self.instances.read().get(name).cloned()
    }

    /// The names with a config set for them.
    pub(crate) fn configured_names(&self) -> Vec<Arc<str>> {
        self.configured.read().keys().cloned().collect()
    }

    pub(crate) fn configured(&self, name: &str) -> Option<T::Config> {
        self.configured.read().get(name).cloned()
    }

    fn insert_or_get(&self, name: &str, config: T::Config) -> Arc<T> {
        let mut map = self.instances.write();
        if let Some(existing) = map.get(name) {
            return existing.clone();
        }
        let name = Arc::from(name);
        let instance = Arc::new(T::create(&name, config, &self.env));
        map.insert(name, instance.clone());
        instance
    }

    /// Get or create `name`. A config the registry holds for the name wins over `config`;
    /// otherwise an existing instance with a different config is an error.
    pub(crate) fn get_or_create(
        &self,
        name: &str,
        config: T::Config,
    ) -> Result<Arc<T>, ConfigError> {
        let configured = self.configured(name);
        let has_configured = configured.is_some();
        let effective = configured.unwrap_or(config);
        let check = |existing: &Arc<T>| {
            if has_configured || existing.current_config() == effective {
                return Ok(existing.clone());
            }
            Err(ConfigError::new(
                "name",
                format!(
                    "a {} named `{name}` already exists with a different config ({:?}); \
                     use the same config, another name, or change it with the registry's configure method",
                    T::KIND,
                    existing.current_config()
                ),
            ))
        };
        if let Some(existing) = self.get(name) {
            return check(&existing);
        }
        // Check again under the write lock: a racing caller may have created it since.
        let mut map = self.instances.write();
        if let Some(existing) = map.get(name) {
            return check(existing);
        }
        let name = Arc::from(name);
        let instance = Arc::new(T::create(&name, effective, &self.env));
        map.insert(name, instance.clone());
        Ok(instance)
    }

    pub(crate) fn resolve(
        &self,
        name: &str,
        attribute: impl FnOnce() -> Result<T::Config, ConfigError>,
    ) -> Result<Arc<T>, ConfigError> {
        if let Some(configured) = self.configured(name) {
            return Ok(self.get(name).unwrap_or_else(|| self.insert_or_get(name, configured)));
        }
        let wanted = attribute()?;
        if let Some(existing) = self.get(name) {
            if existing.current_config() != wanted && self.warned.lock().insert(Arc::from(name)) {
                tracing::warn!(
                    name,
                    kind = T::KIND,
                    "two call sites declare `{name}` with different configs; the first one created is shared by both"
                );
            }
            return Ok(existing);
        }
        Ok(self.insert_or_get(name, wanted))
    }

    /// Set the config for `name` (wins over attributes) and apply it to a live instance,
    /// keeping its counters.
    pub(crate) fn configure(&self, name: &str, config: T::Config) {
        self.configured.write().insert(Arc::from(name), config.clone());
        if let Some(existing) = self.get(name) {
            existing.apply(config);
        }
    }

    /// Every instance, sorted by name.
    pub(crate) fn all(&self) -> Vec<(Arc<str>, Arc<T>)> {
        let mut v: Vec<_> =
            self.instances.read().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub(crate) fn unknown(&self, name: &str) -> ConfigError {
        let known: Vec<String> = self.all().into_iter().map(|(k, _)| k.to_string()).collect();
        ConfigError::new(
            "name",
            format!(
                "no {} named `{name}` (known: {})",
                T::KIND,
                if known.is_empty() { "none".into() } else { known.join(", ") }
            ),
        )
    }
}
