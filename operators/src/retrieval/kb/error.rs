//! What can be wrong with a knowledge base, and where.

use std::fmt;
use std::path::PathBuf;

use super::entry::MAX_TEXT_CHARS;
use crate::render::TemplateError;

/// Where an entry (or a problem) sits in a knowledge-base file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number, when known.
    pub line: Option<usize>,
    /// 0-based position of the entry among the file's entries, when the problem is about one.
    pub entry: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(entry) = self.entry {
            write!(f, " (entry #{})", entry + 1)?;
        }
        Ok(())
    }
}

/// What is wrong with an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// The text is not valid JSON/YAML, or does not have the entry's shape (missing or unknown
    /// fields, wrong types).
    #[error("syntax: {0}")]
    Syntax(String),
    /// Another entry already uses this id.
    #[error("duplicate id `{id}` (first defined at {first})")]
    DuplicateId {
        /// The id.
        id: String,
        /// Where it was first defined.
        first: Box<Location>,
    },
    /// The id is empty.
    #[error("empty id")]
    EmptyId,
    /// The intent is empty.
    #[error("empty intent")]
    EmptyIntent,
    /// The locale is neither `zh-CN` nor `en`.
    #[error("unknown locale `{0}` (expected `zh-CN` or `en`)")]
    UnknownLocale(String),
    /// The entry has no example question.
    #[error("no example questions")]
    EmptyQuestions,
    /// Example question number `index` (0-based) is blank.
    #[error("question #{} is blank", .index + 1)]
    BlankQuestion {
        /// 0-based question index.
        index: usize,
    },
    /// The answer is blank.
    #[error("empty answer")]
    EmptyAnswer,
    /// The answer's braces do not form valid `{slot}` placeholders.
    #[error("answer template: {0}")]
    BadTemplate(TemplateError),
    /// The answer uses `{slot}` but `slots` does not list it.
    #[error("answer uses `{{{0}}}` but slots does not list `{0}`")]
    UndeclaredSlot(String),
    /// `slots` lists a slot the answer does not use.
    #[error("slot `{0}` is listed but the answer does not use it")]
    UnusedSlot(String),
    /// `slots` lists a slot twice.
    #[error("slot `{0}` is listed twice")]
    DuplicateSlot(String),
    /// `slots` lists a name that is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("invalid slot name `{0}`")]
    InvalidSlotName(String),
    /// A text field is longer than [`MAX_TEXT_CHARS`] characters.
    #[error("{field} is too long ({chars} characters, at most {MAX_TEXT_CHARS})")]
    TooLong {
        /// Which field (`answer`, `question #2`, …).
        field: String,
        /// Its length in characters.
        chars: usize,
    },
}

/// One problem in a knowledge-base file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KbProblem {
    /// Where.
    pub location: Location,
    /// The entry's id, when it could be read.
    pub id: Option<String>,
    /// What.
    pub kind: ProblemKind,
}

impl fmt::Display for KbProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.location)?;
        if let Some(id) = &self.id {
            write!(f, " [{id}]")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// Why a knowledge base could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file name has no known extension.
    #[error("{}: unknown knowledge-base file type (expected .jsonl, .json, .yaml or .yml)", path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
    },
    /// The entries have problems.
    #[error("{}", format_problems(problems, *total))]
    Invalid {
        /// The first [`MAX_REPORTED_PROBLEMS`](super::MAX_REPORTED_PROBLEMS) problems, in file order.
        problems: Vec<KbProblem>,
        /// How many problems there are in all.
        total: usize,
    },
}

fn format_problems(problems: &[KbProblem], total: usize) -> String {
    let mut out = format!("{total} problem(s) in the knowledge base:");
    for p in problems {
        out.push_str("\n  ");
        out.push_str(&p.to_string());
    }
    if total > problems.len() {
        out.push_str(&format!("\n  … and {} more", total - problems.len()));
    }
    out
}
