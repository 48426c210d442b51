//! A TOML file applied to a registry, once or whenever it changes on disk.

use std::path::Path;
use std::sync::Arc;

use crate::ConfigError;
use crate::clock::default_clock;
use crate::events::{Event, EventKind, Layer};
use crate::registry::Registry;

/// Reads `path` and applies it to `registry` (nothing of an invalid file); reports the
/// outcome as an event of the registry (a refused file also as a warning).
pub(crate) fn reload(registry: &Registry, path: &Path) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("file", format!("cannot read {}: {e}", path.display())));
    let result = text.and_then(|text| super::load(registry, &text));
    report(registry, path, &result);
    result
}

fn report(registry: &Registry, path: &Path, result: &Result<(), ConfigError>) {
    let kind = match result {
        Ok(()) => EventKind::ConfigApplied,
        Err(e) => EventKind::ConfigRejected { error: e.to_string().into() },
    };
    let name: Arc<str> = path.display().to_string().into();
    registry.hub().emit(&Event::new(Layer::Config, name, default_clock().now(), kind));
}

/// Keeps [`Registry::watch_toml`] applying its file; dropping it stops watching.
#[cfg(feature = "watch")]
#[must_use = "dropping the watch stops it at once"]
pub struct TomlWatch {
    _watcher: notify::RecommendedWatcher,
}

#[cfg(feature = "watch")]
impl std::fmt::Debug for TomlWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TomlWatch").finish_non_exhaustive()
    }
}

/// Applies `path` now, then again whenever its contents change (an edit in place or a
/// new file renamed over it), on the watcher's own thread.
#[cfg(feature = "watch")]
pub(crate) fn watch(registry: &'static Registry, path: &Path) -> Result<TomlWatch, ConfigError> {
    use notify::{RecursiveMode, Watcher};

    let watch_err = |e: notify::Error| {
        ConfigError::new("file", format!("cannot watch {}: {e}", path.display()))
    };
    let path = std::path::absolute(path)
        .map_err(|e| ConfigError::new("file", format!("cannot resolve {}: {e}", path.display())))?;
    let (Some(dir), Some(file)) = (path.parent(), path.file_name()) else {
        return Err(ConfigError::new("file", format!("{} names no file", path.display())));
    };
    let (dir, file) = (dir.to_path_buf(), file.to_os_string());
    reload(registry, &path)?;
    // The text last read: an event that leaves the contents as they were (a `touch`, the
    // second event of one save) applies nothing again.
    let last = parking_lot::Mutex::new(std::fs::read_to_string(&path).ok());
    let watched = path.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() || !event.paths.iter().any(|p| p.file_name() == Some(&*file)) {
            return;
        }
        // Gone for a moment (between the two halves of a rename): the next event applies.
        let Ok(text) = std::fs::read_to_string(&watched) else { return };
        let mut last = last.lock();
        if last.as_deref() == Some(text.as_str()) {
            return;
        }
        let result = super::load(registry, &text);
        report(registry, &watched, &result);
        *last = Some(text);
    })
    .map_err(watch_err)?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).map_err(watch_err)?;
    Ok(TomlWatch { _watcher: watcher })
}
