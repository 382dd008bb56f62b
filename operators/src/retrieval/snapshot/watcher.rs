//! Polling a snapshot root for a new active version.

use std::path::PathBuf;

use super::content::Snapshot;
use super::error::SnapshotError;
use super::store::current_version;

/// Polls a snapshot root for a new active version.
#[derive(Debug, Clone)]
pub struct SnapshotWatcher {
    root: PathBuf,
    loaded: Option<String>,
}

impl SnapshotWatcher {
    /// A watcher over `root` that has loaded nothing yet (its first successful poll loads the
    /// current snapshot).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SnapshotWatcher {
            root: root.into(),
            loaded: None,
        }
    }

    /// A watcher that already holds `version` (e.g. loaded at start-up).
    pub fn with_loaded(root: impl Into<PathBuf>, version: impl Into<String>) -> Self {
        SnapshotWatcher {
            root: root.into(),
            loaded: Some(version.into()),
        }
    }

    /// The version last handed out.
    pub fn loaded_version(&self) -> Option<&str> {
        self.loaded.as_deref()
    }

    /// Loads the active snapshot if `current` names a version other than the last one handed
    /// out; `Ok(None)` when nothing changed (or there is no `current` yet). After an error the
    /// next poll tries again.
    pub fn poll(&mut self) -> Result<Option<Snapshot>, SnapshotError> {
        let Some(version) = current_version(&self.root)? else {
            return Ok(None);
        };
        if self.loaded.as_deref() == Some(version.as_str()) {
            return Ok(None);
        }
        let snapshot = Snapshot::load(self.root.join(&version))?;
        self.loaded = Some(version);
        Ok(Some(snapshot))
    }
}
