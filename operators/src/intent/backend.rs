//! Where intent inference runs: the [`IntentBackend`] seam between
//! [`ModelUnderstanding`](crate::understand::ModelUnderstanding) (caches, retrieval) and the
//! encoder + classifier head, plus its in-process implementation [`LocalIntentBackend`].
//!
//! A backend embeds and classifies a batch of already [normalised](super::normalize_text) texts
//! of one locale, with the newest model version or one named by the caller (a batch pinned to a
//! version), and names, per text, the model version that produced the result. The in-process
//! backend also owns hot reload: it watches each configured model folder and loads a new
//! version between batches, keeping the last [`VERSIONS_KEPT`] versions so that batches pinned
//! to an older one still run on exactly it. The gRPC backend lives in the topology crate
//! (`model_server::client`).
//!
//! # Publishing a new model version
//!
//! The watcher keys on `model.json` (its modification time and size) and on the folder's
//! canonical path, so either of these is picked up safely:
//! - write the files in place with `head.safetensors` first and `model.json` last, each under a
//!   temporary name and renamed ([`IntentModel::save`] does exactly that), or
//! - build the new version in its own folder and atomically re-point a symlink (the configured
//!   path) at it (`ln -s NEW tmp && mv -T tmp CONFIGURED`).
//!
//! A folder that changes while it is being loaded is not swapped in (the stamps of both files
//! are compared before and after the load); the next check tries again.

use super::model::{IntentModel, Prediction, HEAD_FILE, META_FILE};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;
use switchboard_schemas::Locale;

/// Why a backend could not classify a batch: the crate's [`Error`](crate::Error), whose
/// variants [`NoModel`](crate::Error::NoModel), [`Unavailable`](crate::Error::Unavailable),
/// [`BadAnswer`](crate::Error::BadAnswer), [`VersionGone`](crate::Error::VersionGone) and
/// [`Poisoned`](crate::Error::Poisoned) are the backends' own (a model's failure is the model's
/// error itself). The name stays so that backends written against it keep compiling
/// (`BackendError::Unavailable(…)` is `Error::Unavailable(…)`).
pub type BackendError = crate::Error;

/// One classified text.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// Label, calibrated confidence and alternatives.
    pub prediction: Prediction,
    /// The sentence embedding the head saw (empty when not asked for).
    pub vector: Vec<f32>,
    /// The version of the model that produced this result.
    pub model_version: String,
}

/// Embeds and classifies batches of texts per locale; shared by worker threads.
pub trait IntentBackend: Send + Sync {
    /// One [`Classified`] per text, in order, by model `version` of `locale` (None: the
    /// newest). `texts` are already normalised. Each result carries its embedding (the same
    /// vector feeds retrieval).
    fn classify(
        &self,
        locale: Locale,
        texts: &[&str],
        version: Option<&str>,
    ) -> Result<Vec<Classified>, BackendError>;

    /// The newest model version of each locale, sorted by locale name.
    fn versions(&self) -> Vec<(Locale, String)>;

    /// Looks for new model versions now; true when a newest version changed since the last
    /// call. Failures keep the old versions and are logged.
    fn refresh(&self) -> bool;
}

/// What identifies one published model folder: its canonical path and `model.json`'s
/// modification time and size.
type MetaStamp = (PathBuf, SystemTime, u64);

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn meta_stamp(dir: &Path) -> Option<MetaStamp> {
    let canonical = std::fs::canonicalize(dir).ok()?;
    let (modified, len) = file_stamp(&canonical.join(META_FILE))?;
    Some((canonical, modified, len))
}

/// Stamps of both files, to tell whether a folder changed while it was loaded.
fn full_stamp(dir: &Path) -> Option<(MetaStamp, (SystemTime, u64))> {
    let meta = meta_stamp(dir)?;
    let head = file_stamp(&meta.0.join(HEAD_FILE))?;
    Some((meta, head))
}

/// How many versions of each locale's model stay loaded.
pub const VERSIONS_KEPT: usize = 3;

/// One locale's loaded versions, oldest first, newest last (never empty), and the stamp of
/// the newest.
struct LoadedModels {
    versions: Vec<Arc<IntentModel>>,
    stamp: Option<MetaStamp>,
}

/// The in-process backend: one [`IntentModel`] per locale, loaded from its folder and
/// hot-reloaded by [`refresh`](IntentBackend::refresh).
pub struct LocalIntentBackend {
    dirs: HashMap<Locale, PathBuf>,
    models: RwLock<HashMap<Locale, LoadedModels>>,
}

impl LocalIntentBackend {
    /// Loads every configured model folder.
    pub fn load(dirs: HashMap<Locale, PathBuf>) -> Result<Self, crate::Error> {
        let mut models = HashMap::new();
        for (locale, dir) in &dirs {
            let stamp = meta_stamp(dir);
            let model = IntentModel::load(dir)?;
            models.insert(
                *locale,
                LoadedModels {
                    versions: vec![Arc::new(model)],
                    stamp,
                },
            );
        }
        Ok(LocalIntentBackend {
            dirs,
            models: RwLock::new(models),
        })
    }

    /// The model `version` of `locale` (None: the newest). A batch keeps the model it got even
    /// if newer versions are loaded meanwhile.
    pub fn model(
        &self,
        locale: Locale,
        version: Option<&str>,
    ) -> Result<Arc<IntentModel>, BackendError> {
        let models = self
            .models
            .read()
            .map_err(|_| BackendError::Poisoned("intent backend"))?;
        let loaded = models
            .get(&locale)
            .ok_or(BackendError::NoModel(locale.as_str()))?;
        let found = match version {
            None => loaded.versions.last(),
            Some(wanted) => loaded.versions.iter().rev().find(|m| m.version() == wanted),
        };
        found.cloned().ok_or_else(|| BackendError::VersionGone {
            locale: locale.as_str(),
            version: version.unwrap_or_default().to_string(),
        })
    }

    /// The locales with a model.
    pub fn locales(&self) -> Vec<Locale> {
        let mut locales: Vec<Locale> = self.dirs.keys().copied().collect();
        locales.sort_by_key(|l| l.as_str());
        locales
    }

    /// Loads `dir` if its stamp is stable across the load; None when it changed meanwhile.
    fn load_stable(dir: &Path) -> Result<Option<(IntentModel, MetaStamp)>, crate::Error> {
        let Some(before) = full_stamp(dir) else {
            return Ok(None);
        };
        let model = IntentModel::load(&before.0 .0)?;
        if full_stamp(dir).as_ref() != Some(&before) {
            tracing::info!(dir = %dir.display(), "intent model folder changed while loading; will retry");
            return Ok(None);
        }
        Ok(Some((model, before.0)))
    }
}

impl IntentBackend for LocalIntentBackend {
    fn classify(
        &self,
        locale: Locale,
        texts: &[&str],
        version: Option<&str>,
    ) -> Result<Vec<Classified>, BackendError> {
        let model = self.model(locale, version)?;
        let vectors = model.encoder().embed(texts)?;
        let predictions = model.predict_embeddings(&vectors)?;
        let version = model.version();
        Ok(vectors
            .into_iter()
            .zip(predictions)
            .map(|(vector, prediction)| Classified {
                prediction,
                vector,
                model_version: version.to_string(),
            })
            .collect())
    }

    fn versions(&self) -> Vec<(Locale, String)> {
        let Ok(models) = self.models.read() else {
            return Vec::new();
        };
        let mut out: Vec<(Locale, String)> = models
            .iter()
            .filter_map(|(l, m)| {
                m.versions
                    .last()
                    .map(|newest| (*l, newest.version().to_string()))
            })
            .collect();
        out.sort_by_key(|(l, _)| l.as_str());
        out
    }

    fn refresh(&self) -> bool {
        let mut changed = false;
        for locale in self.locales() {
            let Some(dir) = self.dirs.get(&locale) else {
                continue;
            };
            let stamp = meta_stamp(dir);
            let old = self
                .models
                .read()
                .ok()
                .and_then(|m| m.get(&locale).and_then(|l| l.stamp.clone()));
            if stamp.is_none() || stamp == old {
                continue;
            }
            match Self::load_stable(dir) {
                Ok(Some((model, stamp))) => {
                    tracing::info!(
                        locale = locale.as_str(),
                        version = model.version(),
                        "intent model loaded"
                    );
                    if let Ok(mut models) = self.models.write() {
                        let entry = models.entry(locale).or_insert_with(|| LoadedModels {
                            versions: Vec::new(),
                            stamp: None,
                        });
                        entry.stamp = Some(stamp);
                        if entry.versions.last().map(|m| m.version()) != Some(model.version()) {
                            entry.versions.push(Arc::new(model));
                            if entry.versions.len() > VERSIONS_KEPT {
                                entry.versions.remove(0);
                            }
                            changed = true;
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(locale = locale.as_str(), error = %e, "new intent model rejected")
                }
            }
        }
        changed
    }
}
