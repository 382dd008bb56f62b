//! The snapshot a [`QdrantIndex`](super::QdrantIndex) searches: its collections and row tables.

use std::collections::{HashMap, HashSet};

use switchboard_operators::retrieval::snapshot::{QuestionRef, Snapshot};
use switchboard_schemas::Locale;

use super::error::QdrantError;
use super::naming::{collection_name, validate_version};

/// One locale of the bound snapshot.
#[derive(Debug)]
pub(super) struct LocaleBinding {
    /// The collection.
    pub(super) collection: String,
    /// Vector width.
    pub(super) dim: usize,
    /// The question of each point (point id = row index).
    pub(super) rows: Vec<QuestionRef>,
    /// Most questions of one entry of this locale.
    pub(super) max_questions: usize,
}

/// The snapshot a [`QdrantIndex`](super::QdrantIndex) searches.
#[derive(Debug)]
pub(super) struct Binding {
    /// The snapshot version.
    pub(super) version: String,
    /// The collections, per locale.
    pub(super) locales: HashMap<Locale, LocaleBinding>,
    /// Points in all.
    pub(super) len: usize,
}

/// Checks `snapshot` and describes its collections (named with `prefix`).
pub(super) fn binding_of(prefix: &str, snapshot: &Snapshot) -> Result<Binding, QdrantError> {
    validate_version(&snapshot.version)?;
    let mut locales = HashMap::new();
    let mut len = 0;
    for block in &snapshot.locales {
        if block.dim == 0 || block.data.len() != block.rows.len().saturating_mul(block.dim) {
            return Err(QdrantError::Inconsistent(format!(
                "locale {}: {} values for {} rows of width {}",
                block.locale.as_str(),
                block.data.len(),
                block.rows.len(),
                block.dim
            )));
        }
        if locales.contains_key(&block.locale) {
            return Err(QdrantError::Inconsistent(format!(
                "two vector blocks for locale {}",
                block.locale.as_str()
            )));
        }
        let mut per_entry: HashMap<u32, usize> = HashMap::new();
        let mut seen = HashSet::with_capacity(block.rows.len());
        for row in &block.rows {
            let fits = snapshot
                .entries
                .get(row.entry_index as usize)
                .is_some_and(|e| {
                    e.locale == block.locale && (row.question_index as usize) < e.questions.len()
                });
            if !fits || !seen.insert(*row) {
                return Err(QdrantError::Inconsistent(format!(
                    "row for entry {} question {}, which is not a (single) {} question",
                    row.entry_index,
                    row.question_index,
                    block.locale.as_str()
                )));
            }
            *per_entry.entry(row.entry_index).or_default() += 1;
        }
        len += block.rows.len();
        locales.insert(
            block.locale,
            LocaleBinding {
                collection: collection_name(prefix, &snapshot.version, block.locale),
                dim: block.dim,
                rows: block.rows.clone(),
                max_questions: per_entry.values().copied().max().unwrap_or(1),
            },
        );
    }
    Ok(Binding {
        version: snapshot.version.clone(),
        locales,
        len,
    })
}
