//! A snapshot on disk: version folders under a root, and the root's `current` pointer.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switchboard_schemas::Locale;

use super::content::{rows_of, LocaleVectors, Snapshot, FORMAT_VERSION, LOCALES};
use super::error::{corrupt, io_error, SnapshotError};
use crate::retrieval::kb::KbEntry;
use crate::retrieval::sha256::{hex, Digest, Sha256};

/// Name of the file naming the active version.
pub const CURRENT_FILE: &str = "current";

/// Checks that `version` is lower-case hex (it names a folder).
pub(super) fn check_version(version: &str) -> Result<(), SnapshotError> {
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
                sha256: hex(&h.finalize()),
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
            if hex(&h.finalize()) != m.sha256 {
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
