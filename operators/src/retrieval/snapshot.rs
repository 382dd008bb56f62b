//! Knowledge-base snapshots: the entries plus one embedding per example question, versioned by
//! content and persisted so that a process can load them without re-embedding.
//!
//! Layout under a snapshot root folder:
//!
//! ```text
//! <root>/current                      the active version (one line), replaced atomically
//! <root>/<version>/manifest.json      format, version, per-locale encoder/dim/rows/checksum
//! <root>/<version>/entries.json       the entries, a JSON array
//! <root>/<version>/vectors.<locale>.f32  rows × dim little-endian f32, row-major
//! ```
//!
//! The version is the hex SHA-256 (first 128 bits) of the entries and the encoder names per
//! locale ([`content_version`]), so the same knowledge base embedded with the same models always
//! gets the same version folder. A version folder is written under a temporary name and renamed
//! into place; `current` is written to a temporary file and renamed over the old one, so a
//! process polling it ([`SnapshotWatcher`]) never sees a half-written snapshot.
//!
//! Vector rows of a locale follow the entries of that locale in order, and within an entry its
//! questions in order ([`QuestionRef`]), so the files need no row table.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switchboard_schemas::Locale;

use super::kb::KbEntry;
use super::sha256::{hex, Sha256};
use crate::intent::Encoder;

/// The snapshot folder format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Name of the file naming the active version.
pub const CURRENT_FILE: &str = "current";

/// Texts embedded per call to [`Embedder::embed`] while building.
const EMBED_BATCH: usize = 32;

/// Something that turns texts into fixed-width vectors: the [`Encoder`], or a stand-in in tests.
pub trait Embedder {
    /// A name identifying the model (it goes into the snapshot version).
    fn name(&self) -> &str;
    /// Width of the vectors.
    fn dim(&self) -> usize;
    /// One vector per text, in order.
    fn embed(&self, texts: &[&str]) -> crate::Result<Vec<Vec<f32>>>;
}

impl Embedder for Encoder {
    fn name(&self) -> &str {
        Encoder::name(self)
    }
    fn dim(&self) -> usize {
        Encoder::dim(self)
    }
    fn embed(&self, texts: &[&str]) -> crate::Result<Vec<Vec<f32>>> {
        Encoder::embed(self, texts)
    }
}

/// Which question a vector row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuestionRef {
    /// Index into [`Snapshot::entries`].
    pub entry_index: u32,
    /// Index into that entry's `questions`.
    pub question_index: u32,
}

/// The question vectors of one locale.
#[derive(Debug, Clone, PartialEq)]
pub struct LocaleVectors {
    /// The locale.
    pub locale: Locale,
    /// The encoder that made the vectors.
    pub encoder: String,
    /// Vector width.
    pub dim: usize,
    /// Row `i` of `data` is the vector of `rows[i]`.
    pub rows: Vec<QuestionRef>,
    /// `rows.len() × dim` L2-normalised values, row-major.
    pub data: Vec<f32>,
}

impl LocaleVectors {
    /// Row `i`'s vector.
    ///
    /// # Panics
    ///
    /// If `i` is not below `rows.len()` (or `data` is shorter than `rows.len() × dim`).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// A versioned, embedded knowledge base.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Content hash of the entries and encoder names ([`content_version`]).
    pub version: String,
    /// The entries, in knowledge-base order.
    pub entries: Vec<KbEntry>,
    /// One block of question vectors per locale that has entries, `zh-CN` before `en`.
    pub locales: Vec<LocaleVectors>,
}

/// Why a snapshot could not be built, saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Entries of this locale exist but no encoder was given for it.
    #[error("no encoder for locale {}", .0.as_str())]
    NoEncoder(Locale),
    /// The encoder failed.
    #[error("embedding {} questions: {source}", locale.as_str())]
    Embed {
        /// The locale being embedded.
        locale: Locale,
        /// The encoder's error.
        source: Box<crate::Error>,
    },
    /// The encoder returned the wrong number of vectors, a wrong width or non-finite values.
    #[error("encoder {encoder}: {message}")]
    BadEmbedding {
        /// The encoder's name.
        encoder: String,
        /// What was wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A snapshot file is malformed or inconsistent with the others.
    #[error("{}: {message}", path.display())]
    Corrupt {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The root has no `current` file.
    #[error("{}: no current snapshot", root.display())]
    NoCurrent {
        /// The snapshot root.
        root: PathBuf,
    },
    /// A version string that is not lower-case hex (refused as a folder name).
    #[error("invalid snapshot version `{0}`")]
    BadVersion(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, message: impl Into<String>) -> SnapshotError {
    SnapshotError::Corrupt {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The locales in snapshot order.
const LOCALES: [Locale; 2] = [Locale::ZhCn, Locale::En];

/// The content version of `entries` embedded with `encoders` (locale, encoder name; order
/// does not matter): lower-case hex, 32 characters. Computable without embedding anything, so
/// a builder can tell whether a snapshot for a knowledge base already exists.
pub fn content_version(entries: &[KbEntry], encoders: &[(Locale, &str)]) -> String {
    let encoders: BTreeMap<&str, &str> = encoders.iter().map(|(l, e)| (l.as_str(), *e)).collect();
    let mut h = Sha256::new();
    h.update(format!("switchboard-kb-snapshot/{FORMAT_VERSION}\n").as_bytes());
    for (locale, encoder) in &encoders {
        h.update(format!("encoder {locale}={encoder}\n").as_bytes());
    }
    for e in entries {
        // serde_json of a struct is deterministic (field order, no maps).
        let line = serde_json::to_string(e).unwrap_or_default();
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    hex(&h.finish()[..16])
}

/// The row table of `locale`: its entries in order, each entry's questions in order.
fn rows_of(entries: &[KbEntry], locale: Locale) -> Vec<QuestionRef> {
    let mut rows = Vec::new();
    for (e, entry) in entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.locale == locale)
    {
        for q in 0..entry.questions.len() {
            rows.push(QuestionRef {
                entry_index: e as u32,
                question_index: q as u32,
            });
        }
    }
    rows
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

fn check_version(version: &str) -> Result<(), SnapshotError> {
    let ok = !version.is_empty()
        && version.len() <= 64
        && version
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::BadVersion(version.to_owned()))
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: u32,
    version: String,
    entries: usize,
    locales: Vec<ManifestLocale>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestLocale {
    locale: Locale,
    encoder: String,
    dim: usize,
    rows: usize,
    file: String,
    sha256: String,
}

fn vectors_file(locale: Locale) -> String {
    format!("vectors.{}.f32", locale.as_str())
}

impl Snapshot {
    /// Embeds every example question with its locale's encoder and versions the result.
    ///
    /// `encoder_for` gives the encoder of a locale (`zh-CN` entries with the zh encoder, `en`
    /// with the en one); it may return `None` for a locale without entries. Vectors are
    /// L2-normalised again after embedding.
    pub fn build<'a, E, F>(entries: Vec<KbEntry>, encoder_for: F) -> Result<Snapshot, SnapshotError>
    where
        E: Embedder + ?Sized + 'a,
        F: Fn(Locale) -> Option<&'a E>,
    {
        let mut locales = Vec::new();
        for locale in LOCALES {
            let rows = rows_of(&entries, locale);
            if rows.is_empty() {
                continue;
            }
            let encoder = encoder_for(locale).ok_or(SnapshotError::NoEncoder(locale))?;
            let dim = encoder.dim();
            let bad = |message: String| SnapshotError::BadEmbedding {
                encoder: encoder.name().to_owned(),
                message,
            };
            let mut data = Vec::with_capacity(rows.len() * dim);
            let texts: Vec<&str> = rows
                .iter()
                .map(|r| {
                    entries[r.entry_index as usize].questions[r.question_index as usize].as_str()
                })
                .collect();
            for batch in texts.chunks(EMBED_BATCH) {
                let vectors = encoder.embed(batch).map_err(|e| SnapshotError::Embed {
                    locale,
                    source: Box::new(e),
                })?;
                if vectors.len() != batch.len() {
                    return Err(bad(format!(
                        "{} vectors for {} texts",
                        vectors.len(),
                        batch.len()
                    )));
                }
                for mut v in vectors {
                    if v.len() != dim {
                        return Err(bad(format!("vector of width {} (expected {dim})", v.len())));
                    }
                    if v.iter().any(|x| !x.is_finite()) {
                        return Err(bad("non-finite value in a vector".into()));
                    }
                    normalise(&mut v);
                    data.extend_from_slice(&v);
                }
            }
            locales.push(LocaleVectors {
                locale,
                encoder: encoder.name().to_owned(),
                dim,
                rows,
                data,
            });
        }
        Ok(Snapshot::assemble(entries, locales))
    }

    /// A snapshot from vectors made elsewhere: `vectors` holds, per locale, the encoder name,
    /// the width and the row-major vectors in row order (see [`QuestionRef`]).
    ///
    /// Fails when a locale with entries has no vectors or a block has the wrong size.
    pub fn from_vectors(
        entries: Vec<KbEntry>,
        vectors: Vec<(Locale, String, usize, Vec<f32>)>,
    ) -> Result<Snapshot, SnapshotError> {
        let mut locales = Vec::new();
        for locale in LOCALES {
            let rows = rows_of(&entries, locale);
            let Some((_, encoder, dim, mut data)) = vectors.iter().find(|v| v.0 == locale).cloned()
            else {
                if rows.is_empty() {
                    continue;
                }
                return Err(SnapshotError::NoEncoder(locale));
            };
            if dim == 0 || data.len() != rows.len() * dim {
                return Err(SnapshotError::BadEmbedding {
                    encoder,
                    message: format!(
                        "{} values for {} rows of width {dim}",
                        data.len(),
                        rows.len()
                    ),
                });
            }
            data.chunks_exact_mut(dim).for_each(normalise);
            if !rows.is_empty() {
                locales.push(LocaleVectors {
                    locale,
                    encoder,
                    dim,
                    rows,
                    data,
                });
            }
        }
        Ok(Snapshot::assemble(entries, locales))
    }

    fn assemble(entries: Vec<KbEntry>, locales: Vec<LocaleVectors>) -> Snapshot {
        let names: Vec<(Locale, &str)> = locales
            .iter()
            .map(|l| (l.locale, l.encoder.as_str()))
            .collect();
        let version = content_version(&entries, &names);
        Snapshot {
            version,
            entries,
            locales,
        }
    }

    /// The vectors of `locale`, if it has entries.
    pub fn locale(&self, locale: Locale) -> Option<&LocaleVectors> {
        self.locales.iter().find(|l| l.locale == locale)
    }

    /// The encoder name per locale, `zh-CN` first.
    pub fn encoders(&self) -> Vec<(Locale, &str)> {
        self.locales
            .iter()
            .map(|l| (l.locale, l.encoder.as_str()))
            .collect()
    }

    /// Writes the snapshot to `<root>/<version>/` (unless that folder already exists, as the
    /// content is the same) and returns that folder. Does not change `current`.
    pub fn save(&self, root: impl AsRef<Path>) -> Result<PathBuf, SnapshotError> {
        let root = root.as_ref();
        check_version(&self.version)?;
        let dir = root.join(&self.version);
        if dir.join("manifest.json").is_file() {
            return Ok(dir);
        }
        std::fs::create_dir_all(root).map_err(io_error(root))?;
        let tmp = root.join(format!(
            ".tmp-{}-{}-{}",
            self.version,
            std::process::id(),
            nanos()
        ));
        let result = self.write_folder(&tmp).and_then(|()| {
            match std::fs::rename(&tmp, &dir) {
                Ok(()) => Ok(()),
                // Another writer got there first with the same content.
                Err(_) if dir.join("manifest.json").is_file() => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    Ok(())
                }
                Err(e) => Err(SnapshotError::Io {
                    path: dir.clone(),
                    source: e,
                }),
            }
        });
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result.map(|()| dir)
    }

    fn write_folder(&self, dir: &Path) -> Result<(), SnapshotError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let entries_path = dir.join("entries.json");
        let entries = serde_json::to_vec(&self.entries)
            .map_err(|e| corrupt(&entries_path, format!("cannot serialise entries: {e}")))?;
        write_synced(&entries_path, &entries)?;
        let mut manifest_locales = Vec::new();
        for l in &self.locales {
            let file = vectors_file(l.locale);
            let mut bytes = Vec::with_capacity(l.data.len() * 4);
            for x in &l.data {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
            let mut h = Sha256::new();
            h.update(&bytes);
            write_synced(&dir.join(&file), &bytes)?;
            manifest_locales.push(ManifestLocale {
                locale: l.locale,
                encoder: l.encoder.clone(),
                dim: l.dim,
                rows: l.rows.len(),
                file,
                sha256: hex(&h.finish()),
            });
        }
        let manifest = Manifest {
            format: FORMAT_VERSION,
            version: self.version.clone(),
            entries: self.entries.len(),
            locales: manifest_locales,
        };
        let manifest_path = dir.join("manifest.json");
        let bytes = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| corrupt(&manifest_path, format!("cannot serialise manifest: {e}")))?;
        // The manifest goes last: a folder with a manifest is complete.
        write_synced(&manifest_path, &bytes)
    }

    /// Saves the snapshot ([`Snapshot::save`]) and makes it the active one ([`set_current`]).
    pub fn publish(&self, root: impl AsRef<Path>) -> Result<PathBuf, SnapshotError> {
        let dir = self.save(root.as_ref())?;
        set_current(root.as_ref(), &self.version)?;
        Ok(dir)
    }

    /// Loads the snapshot in a version folder, checking the manifest, the checksums and that
    /// the content still hashes to its version.
    pub fn load(dir: impl AsRef<Path>) -> Result<Snapshot, SnapshotError> {
        let dir = dir.as_ref();
        let manifest_path = dir.join("manifest.json");
        let bytes = std::fs::read(&manifest_path).map_err(io_error(&manifest_path))?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(&manifest_path, format!("bad manifest: {e}")))?;
        if manifest.format != FORMAT_VERSION {
            return Err(corrupt(
                &manifest_path,
                format!("format {} (expected {FORMAT_VERSION})", manifest.format),
            ));
        }
        check_version(&manifest.version)?;

        let entries_path = dir.join("entries.json");
        let bytes = std::fs::read(&entries_path).map_err(io_error(&entries_path))?;
        let entries: Vec<KbEntry> = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(&entries_path, format!("bad entries: {e}")))?;
        if entries.len() != manifest.entries {
            return Err(corrupt(
                &entries_path,
                format!(
                    "{} entries, manifest says {}",
                    entries.len(),
                    manifest.entries
                ),
            ));
        }

        let mut locales = Vec::new();
        for locale in LOCALES {
            let rows = rows_of(&entries, locale);
            let Some(m) = manifest.locales.iter().find(|m| m.locale == locale) else {
                if rows.is_empty() {
                    continue;
                }
                return Err(corrupt(
                    &manifest_path,
                    format!("no vectors for locale {}", locale.as_str()),
                ));
            };
            if m.rows != rows.len() || m.dim == 0 {
                return Err(corrupt(
                    &manifest_path,
                    format!(
                        "locale {}: {} rows of width {}, entries have {} questions",
                        locale.as_str(),
                        m.rows,
                        m.dim,
                        rows.len()
                    ),
                ));
            }
            if m.file != vectors_file(locale) {
                return Err(corrupt(
                    &manifest_path,
                    format!("unexpected vectors file `{}`", m.file),
                ));
            }
            let path = dir.join(&m.file);
            let bytes = std::fs::read(&path).map_err(io_error(&path))?;
            if bytes.len() != m.rows * m.dim * 4 {
                return Err(corrupt(
                    &path,
                    format!("{} bytes, expected {}", bytes.len(), m.rows * m.dim * 4),
                ));
            }
            let mut h = Sha256::new();
            h.update(&bytes);
            if hex(&h.finish()) != m.sha256 {
                return Err(corrupt(&path, "checksum mismatch"));
            }
            let data: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            locales.push(LocaleVectors {
                locale,
                encoder: m.encoder.clone(),
                dim: m.dim,
                rows,
                data,
            });
        }
        if let Some(extra) = manifest
            .locales
            .iter()
            .find(|m| rows_of(&entries, m.locale).is_empty())
        {
            return Err(corrupt(
                &manifest_path,
                format!(
                    "vectors for locale {} without entries",
                    extra.locale.as_str()
                ),
            ));
        }
        let snapshot = Snapshot::assemble(entries, locales);
        if snapshot.version != manifest.version {
            return Err(corrupt(
                dir,
                format!(
                    "content hashes to {}, manifest says {}",
                    snapshot.version, manifest.version
                ),
            ));
        }
        Ok(snapshot)
    }

    /// Loads the active snapshot of `root` (the version named by `<root>/current`).
    pub fn load_current(root: impl AsRef<Path>) -> Result<Snapshot, SnapshotError> {
        let root = root.as_ref();
        let version =
            current_version(root)?.ok_or_else(|| SnapshotError::NoCurrent { root: root.into() })?;
        Snapshot::load(root.join(version))
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), SnapshotError> {
    let mut file = std::fs::File::create(path).map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

/// The version `<root>/current` names, or `None` when there is no such file.
pub fn current_version(root: impl AsRef<Path>) -> Result<Option<String>, SnapshotError> {
    let path = root.as_ref().join(CURRENT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let version = text.trim().to_owned();
            check_version(&version)?;
            Ok(Some(version))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SnapshotError::Io { path, source: e }),
    }
}

/// Makes `version` the active snapshot of `root`: writes a temporary file and renames it over
/// `<root>/current`. The version folder must exist.
pub fn set_current(root: impl AsRef<Path>, version: &str) -> Result<(), SnapshotError> {
    let root = root.as_ref();
    check_version(version)?;
    let dir = root.join(version);
    if !dir.join("manifest.json").is_file() {
        return Err(corrupt(&dir, "no saved snapshot with this version"));
    }
    let tmp = root.join(format!(
        ".{CURRENT_FILE}.tmp-{}-{}",
        std::process::id(),
        nanos()
    ));
    write_synced(&tmp, format!("{version}\n").as_bytes())?;
    std::fs::rename(&tmp, root.join(CURRENT_FILE)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        SnapshotError::Io {
            path: root.join(CURRENT_FILE),
            source: e,
        }
    })
}

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
