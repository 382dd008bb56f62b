//! Knowledge-base entries and file formats.

use std::path::Path;

use serde::{Deserialize, Serialize};
use switchboard_schemas::Locale;

/// Longest id, intent, question or answer, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

/// Most problems [`KbError::Invalid`] keeps (the total count is always reported).
pub const MAX_REPORTED_PROBLEMS: usize = 50;

/// One knowledge-base entry: a set of example questions sharing one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbEntry {
    /// Unique id, e.g. `zh-return-goods-001`.
    pub id: String,
    /// The language of the questions and the answer.
    pub locale: Locale,
    /// The intent label the entry answers.
    pub intent: String,
    /// Example user questions (at least one, none blank).
    pub questions: Vec<String>,
    /// The answer template, with `{slot}` placeholders (see [`crate::render`]).
    pub answer: String,
    /// The slots the answer uses: exactly the placeholders in `answer`.
    #[serde(default)]
    pub slots: Vec<String>,
}

/// The syntax of a knowledge-base file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KbFormat {
    /// One JSON object per line (a `.json` file holding one JSON array is accepted too).
    JsonLines,
    /// A YAML list of entries.
    Yaml,
}

impl KbFormat {
    /// The format a file name implies: `.jsonl`/`.json` or `.yaml`/`.yml` (case-insensitive).
    pub fn from_path(path: &Path) -> Option<KbFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "json" | "ndjson" => Some(KbFormat::JsonLines),
            "yaml" | "yml" => Some(KbFormat::Yaml),
            _ => None,
        }
    }
}

/// The on-disk shape of an entry, before validation (the locale is still a string).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntry {
    pub(super) id: String,
    pub(super) locale: String,
    pub(super) intent: String,
    pub(super) questions: Vec<String>,
    pub(super) answer: String,
    #[serde(default)]
    pub(super) slots: Vec<String>,
}
