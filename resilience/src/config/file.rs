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
    reload_text(registry, path).map(drop)
}

/// [`reload`], giving back the text it applied.
fn reload_text(registry: &Registry, path: &Path) -> Result<String, ConfigError> {
    let result = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("file", format!("cannot read {}: {e}", path.display())))
        .and_then(|text| super::load(registry, &text).map(|()| text));
    report(registry, path, result.as_ref().map(drop));
    result
}

fn report(registry: &Registry, path: &Path, result: Result<(), &ConfigError>) {
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

/// How long the file must stay quiet after a change before it is read: one save is often
/// several events (truncate, write, rename), and a half-written file must not be read.
#[cfg(feature = "watch")]
const SETTLE: std::time::Duration = std::time::Duration::from_millis(100);

/// Applies `path` now, then again whenever its contents change (an edit in place or a
/// new file renamed over it), on a thread of its own once the file has settled.
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
    let applied = reload_text(registry, &path)?;
    let (changed, changes) = std::sync::mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
            && event.paths.iter().any(|p| p.file_name() == Some(&*file))
        {
            let _ = changed.send(());
        }
    })
    .map_err(watch_err)?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).map_err(watch_err)?;
    let watched = path.clone();
    std::thread::Builder::new()
        .name("resilience-watch-toml".into())
        .spawn(move || apply_changes(registry, &watched, applied, &changes))
        .map_err(|e| ConfigError::new("file", format!("cannot start the watch thread: {e}")))?;
    Ok(TomlWatch { _watcher: watcher })
}

/// Until the watcher is dropped (the channel closes): wait for a change, let the file
/// settle, and apply it if its text differs from the last text read (at first, the text
/// the first load applied).
#[cfg(feature = "watch")]
fn apply_changes(
    registry: &Registry,
    path: &Path,
    applied: String,
    changes: &std::sync::mpsc::Receiver<()>,
) {
    use std::sync::mpsc::RecvTimeoutError;

    // An event that leaves the contents as they were (a `touch`) applies nothing again.
    let mut last = Some(applied);
    while changes.recv().is_ok() {
        loop {
            match changes.recv_timeout(SETTLE) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        // Gone for a moment (between the two halves of a rename): the next event applies.
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        if last.as_deref() == Some(text.as_str()) {
            continue;
        }
        let result = super::load(registry, &text);
        report(registry, path, result.as_ref().map(drop));
        last = Some(text);
    }
}
