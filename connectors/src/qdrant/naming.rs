//! Collection names and point ids, public so that they can be tested without a server.

use switchboard_operators::retrieval::snapshot::QuestionRef;
use switchboard_schemas::Locale;

use super::error::QdrantError;
use super::names::{MAX_PREFIX_LEN, MAX_VERSION_LEN};

/// The locale's part of a collection name: its wire name in lower case (`zh-cn`, `en`).
pub fn locale_slug(locale: Locale) -> String {
    locale
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn is_name_part(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks a collection prefix: 1 to 64 ASCII letters, digits, `_` or `-`.
pub fn validate_prefix(prefix: &str) -> Result<(), QdrantError> {
    if is_name_part(prefix, MAX_PREFIX_LEN) {
        Ok(())
    } else {
        Err(QdrantError::BadPrefix(prefix.to_owned()))
    }
}

/// Checks that a snapshot version can go into a collection name (1 to 64 ASCII letters,
/// digits, `_` or `-`; snapshot versions are 32 hex digits).
pub fn validate_version(version: &str) -> Result<(), QdrantError> {
    if is_name_part(version, MAX_VERSION_LEN) {
        Ok(())
    } else {
        Err(QdrantError::BadVersion(version.to_owned()))
    }
}

/// The collection holding the vectors of `locale` in snapshot `version`:
/// `{prefix}_{version}_{locale-slug}`. Does not validate its parts ([`validate_prefix`],
/// [`validate_version`]).
pub fn collection_name(prefix: &str, version: &str, locale: Locale) -> String {
    format!("{prefix}_{version}_{}", locale_slug(locale))
}

/// The Qdrant point id of vector row `row` of a locale: the row index itself.
pub fn point_id(row: usize) -> u64 {
    row as u64
}

/// The question of point `id` in a collection whose rows are `rows`, or `None` when the id
/// is not a row index.
pub fn question_of_point(id: u64, rows: &[QuestionRef]) -> Option<QuestionRef> {
    usize::try_from(id).ok().and_then(|i| rows.get(i)).copied()
}
