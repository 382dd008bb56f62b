//! Knowledge-base files: parsing and validation.
//!
//! A knowledge base is a list of entries, each with an id, a locale, an intent, example
//! questions and an answer template (see [`KbEntry`]). Files are either JSON Lines (`.jsonl`,
//! or `.json` holding one object per line or a single JSON array) or YAML (`.yaml`/`.yml`, a
//! top-level list):
//!
//! ```text
//! {"id":"zh-return-goods-001","locale":"zh-CN","intent":"return_goods","questions":["我要退货"],"answer":"好的，订单 {order_id} 的退货申请已提交。","slots":["order_id"]}
//! ```
//!
//! ```yaml
//! - id: zh-return-goods-001
//!   locale: zh-CN
//!   intent: return_goods
//!   questions: [我要退货, 这个东西怎么退]
//!   answer: 好的，订单 {order_id} 的退货申请已提交。
//!   slots: [order_id]
//! ```
//!
//! Parsing never stops at the first problem: every entry is checked and all problems are
//! collected ([`KbError::Invalid`] keeps the first [`MAX_REPORTED_PROBLEMS`] and the total
//! count). Each problem names the file, the line (JSON Lines: the line; YAML: the line where the
//! list item starts, when it can be found) and the entry's position in the file.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switchboard_schemas::Locale;

use crate::render::{is_valid_slot_name, template_slots, TemplateError};

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
        /// The first [`MAX_REPORTED_PROBLEMS`] problems, in file order.
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

/// The on-disk shape of an entry, before validation (the locale is still a string).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    locale: String,
    intent: String,
    questions: Vec<String>,
    answer: String,
    #[serde(default)]
    slots: Vec<String>,
}

/// Reads and validates one knowledge-base file (format from the extension, see [`KbFormat`]).
pub fn parse_kb_file(path: impl AsRef<Path>) -> Result<Vec<KbEntry>, KbError> {
    load_kb(&[path.as_ref()])
}

/// Reads and validates several files as one knowledge base: ids must be unique across all of
/// them. Entries come back in file order, then line order.
pub fn load_kb<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<KbEntry>, KbError> {
    let mut located = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let format = KbFormat::from_path(path)
            .ok_or_else(|| KbError::UnsupportedFormat { path: path.into() })?;
        let text = std::fs::read_to_string(path).map_err(|source| KbError::Io {
            path: path.into(),
            source,
        })?;
        parse_raw(&text, format, path, &mut located, &mut problems);
    }
    let files: Vec<&Path> = paths.iter().map(AsRef::as_ref).collect();
    finish(&files, located, problems)
}

/// Parses and validates knowledge-base text; `path` only names the origin in problems.
pub fn parse_kb_str(
    text: &str,
    format: KbFormat,
    path: impl AsRef<Path>,
) -> Result<Vec<KbEntry>, KbError> {
    let mut located = Vec::new();
    let mut problems = Vec::new();
    parse_raw(text, format, path.as_ref(), &mut located, &mut problems);
    finish(&[path.as_ref()], located, problems)
}

/// Validates already-built entries (e.g. made in code): the same checks as the parsers, with
/// `origin` as the file name and the entry position as location.
pub fn validate_entries(entries: &[KbEntry], origin: impl AsRef<Path>) -> Result<(), KbError> {
    let located = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let raw = RawEntry {
                id: e.id.clone(),
                locale: e.locale.as_str().into(),
                intent: e.intent.clone(),
                questions: e.questions.clone(),
                answer: e.answer.clone(),
                slots: e.slots.clone(),
            };
            (
                raw,
                Location {
                    path: origin.as_ref().into(),
                    line: None,
                    entry: Some(i),
                },
            )
        })
        .collect();
    finish(&[origin.as_ref()], located, Vec::new()).map(|_| ())
}

fn finish(
    files: &[&Path],
    located: Vec<(RawEntry, Location)>,
    mut problems: Vec<KbProblem>,
) -> Result<Vec<KbEntry>, KbError> {
    let mut entries = Vec::with_capacity(located.len());
    let mut seen: HashMap<String, Location> = HashMap::new();
    for (raw, location) in located {
        let id = raw.id.clone();
        if !id.trim().is_empty() {
            if let Some(first) = seen.get(&id) {
                problems.push(KbProblem {
                    location: location.clone(),
                    id: Some(id.clone()),
                    kind: ProblemKind::DuplicateId {
                        id: id.clone(),
                        first: Box::new(first.clone()),
                    },
                });
            } else {
                seen.insert(id, location.clone());
            }
        }
        if let Some(entry) = validate(raw, &location, &mut problems) {
            entries.push(entry);
        }
    }
    if problems.is_empty() {
        return Ok(entries);
    }
    // Files in the given order, then entries in file order (whole-file problems first).
    problems.sort_by_key(|p| {
        let file = files
            .iter()
            .position(|f| *f == p.location.path)
            .unwrap_or(usize::MAX);
        (file, p.location.entry.map_or(0, |e| e + 1))
    });
    let total = problems.len();
    problems.truncate(MAX_REPORTED_PROBLEMS);
    Err(KbError::Invalid { problems, total })
}

/// Splits `text` into raw entries with their locations, recording syntax problems.
fn parse_raw(
    text: &str,
    format: KbFormat,
    path: &Path,
    located: &mut Vec<(RawEntry, Location)>,
    problems: &mut Vec<KbProblem>,
) {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    match format {
        KbFormat::JsonLines if text.trim_start().starts_with('[') => {
            parse_json_array(text, path, located, problems)
        }
        KbFormat::JsonLines => parse_json_lines(text, path, located, problems),
        KbFormat::Yaml => parse_yaml(text, path, located, problems),
    }
}

fn parse_json_lines(
    text: &str,
    path: &Path,
    located: &mut Vec<(RawEntry, Location)>,
    problems: &mut Vec<KbProblem>,
) {
    let mut entry = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let location = Location {
            path: path.into(),
            line: Some(i + 1),
            entry: Some(entry),
        };
        entry += 1;
        match serde_json::from_str::<RawEntry>(line) {
            Ok(raw) => located.push((raw, location)),
            Err(e) => problems.push(KbProblem {
                id: id_hint_json(line),
                location,
                kind: ProblemKind::Syntax(e.to_string()),
            }),
        }
    }
}

fn id_hint_json(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    value.get("id")?.as_str().map(str::to_owned)
}

fn parse_json_array(
    text: &str,
    path: &Path,
    located: &mut Vec<(RawEntry, Location)>,
    problems: &mut Vec<KbProblem>,
) {
    let items: Vec<serde_json::Value> = match serde_json::from_str(text) {
        Ok(items) => items,
        Err(e) => {
            let location = Location {
                path: path.into(),
                line: Some(e.line()),
                entry: None,
            };
            problems.push(KbProblem {
                location,
                id: None,
                kind: ProblemKind::Syntax(e.to_string()),
            });
            return;
        }
    };
    for (i, item) in items.into_iter().enumerate() {
        let location = Location {
            path: path.into(),
            line: None,
            entry: Some(i),
        };
        let id = item.get("id").and_then(|v| v.as_str()).map(str::to_owned);
        match serde_json::from_value::<RawEntry>(item) {
            Ok(raw) => located.push((raw, location)),
            Err(e) => problems.push(KbProblem {
                location,
                id,
                kind: ProblemKind::Syntax(e.to_string()),
            }),
        }
    }
}

fn parse_yaml(
    text: &str,
    path: &Path,
    located: &mut Vec<(RawEntry, Location)>,
    problems: &mut Vec<KbProblem>,
) {
    let value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            let line = e.location().map(|l| l.line());
            let location = Location {
                path: path.into(),
                line,
                entry: None,
            };
            problems.push(KbProblem {
                location,
                id: None,
                kind: ProblemKind::Syntax(e.to_string()),
            });
            return;
        }
    };
    let items = match value {
        serde_yaml::Value::Null => return,
        serde_yaml::Value::Sequence(items) => items,
        _ => {
            let location = Location {
                path: path.into(),
                line: Some(1),
                entry: None,
            };
            let kind = ProblemKind::Syntax("expected a top-level list of entries".into());
            problems.push(KbProblem {
                location,
                id: None,
                kind,
            });
            return;
        }
    };
    let lines = yaml_item_lines(text, items.len());
    for (i, item) in items.into_iter().enumerate() {
        let location = Location {
            path: path.into(),
            line: lines.as_ref().and_then(|l| l.get(i).copied()),
            entry: Some(i),
        };
        let id = item.get("id").and_then(|v| v.as_str()).map(str::to_owned);
        match serde_yaml::from_value::<RawEntry>(item) {
            Ok(raw) => located.push((raw, location)),
            Err(e) => problems.push(KbProblem {
                location,
                id,
                kind: ProblemKind::Syntax(e.to_string()),
            }),
        }
    }
}

/// The 1-based lines where the top-level list items start (`- ` at column 0), when their count
/// matches the parsed item count (otherwise the layout is unusual and lines are not reported).
fn yaml_item_lines(text: &str, count: usize) -> Option<Vec<usize>> {
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l == &"-" || l.starts_with("- ") || l.starts_with("-\t"))
        .map(|(i, _)| i + 1)
        .collect();
    (lines.len() == count).then_some(lines)
}

fn parse_locale(s: &str) -> Option<Locale> {
    [Locale::ZhCn, Locale::En]
        .into_iter()
        .find(|l| l.as_str() == s)
}

/// Checks one entry; returns it when it has no problem.
fn validate(raw: RawEntry, location: &Location, problems: &mut Vec<KbProblem>) -> Option<KbEntry> {
    let before = problems.len();
    let id = (!raw.id.trim().is_empty()).then(|| raw.id.clone());
    let mut report = |kind: ProblemKind| {
        problems.push(KbProblem {
            location: location.clone(),
            id: id.clone(),
            kind,
        });
    };
    fn too_long(field: String, text: &str, report: &mut dyn FnMut(ProblemKind)) {
        let chars = text.chars().count();
        if chars > MAX_TEXT_CHARS {
            report(ProblemKind::TooLong { field, chars });
        }
    }

    if raw.id.trim().is_empty() {
        report(ProblemKind::EmptyId);
    }
    too_long("id".into(), &raw.id, &mut report);
    let locale = parse_locale(&raw.locale);
    if locale.is_none() {
        report(ProblemKind::UnknownLocale(raw.locale.clone()));
    }
    if raw.intent.trim().is_empty() {
        report(ProblemKind::EmptyIntent);
    }
    too_long("intent".into(), &raw.intent, &mut report);
    if raw.questions.is_empty() {
        report(ProblemKind::EmptyQuestions);
    }
    for (index, q) in raw.questions.iter().enumerate() {
        if q.trim().is_empty() {
            report(ProblemKind::BlankQuestion { index });
        }
        too_long(format!("question #{}", index + 1), q, &mut report);
    }
    if raw.answer.trim().is_empty() {
        report(ProblemKind::EmptyAnswer);
    }
    too_long("answer".into(), &raw.answer, &mut report);

    let mut listed: Vec<&str> = Vec::new();
    for slot in &raw.slots {
        if !is_valid_slot_name(slot) {
            report(ProblemKind::InvalidSlotName(slot.clone()));
        } else if listed.contains(&slot.as_str()) {
            report(ProblemKind::DuplicateSlot(slot.clone()));
        } else {
            listed.push(slot);
        }
    }
    match template_slots(&raw.answer) {
        Err(e) => report(ProblemKind::BadTemplate(e)),
        Ok(used) => {
            for name in &used {
                if !listed.contains(name) {
                    report(ProblemKind::UndeclaredSlot((*name).to_owned()));
                }
            }
            for name in &listed {
                if !used.contains(name) {
                    report(ProblemKind::UnusedSlot((*name).to_owned()));
                }
            }
        }
    }

    if problems.len() > before {
        return None;
    }
    Some(KbEntry {
        id: raw.id,
        locale: locale?,
        intent: raw.intent,
        questions: raw.questions,
        answer: raw.answer,
        slots: raw.slots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"id":"zh-1","locale":"zh-CN","intent":"return_goods","questions":["我要退货"],"answer":"订单 {order_id} 已提交。","slots":["order_id"]}"#;

    fn problems(text: &str, format: KbFormat) -> Vec<KbProblem> {
        match parse_kb_str(text, format, "kb.jsonl") {
            Err(KbError::Invalid { problems, .. }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_good_line() {
        let entries = parse_kb_str(GOOD, KbFormat::JsonLines, "kb.jsonl").unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].locale, Locale::ZhCn);
        assert_eq!(entries[0].slots, ["order_id"]);
    }

    #[test]
    fn collects_every_problem_with_lines() {
        let text = format!(
            "{GOOD}\n\n{}\n{}\n{}\n",
            GOOD, // duplicate id on line 3
            r#"{"id":"x","locale":"fr","intent":"a","questions":[],"answer":"{a} {b","slots":["c"]}"#,
            r#"not json"#,
        );
        let p = problems(&text, KbFormat::JsonLines);
        let kinds: Vec<_> = p
            .iter()
            .map(|p| (p.location.line, p.kind.clone()))
            .collect();
        assert!(
            matches!(&kinds[0], (Some(3), ProblemKind::DuplicateId { id, first }) if id == "zh-1" && first.line == Some(1))
        );
        assert!(kinds.contains(&(Some(4), ProblemKind::UnknownLocale("fr".into()))));
        assert!(kinds.contains(&(Some(4), ProblemKind::EmptyQuestions)));
        assert!(kinds.contains(&(
            Some(4),
            ProblemKind::BadTemplate(TemplateError::UnclosedBrace(4))
        )));
        assert!(matches!(
            kinds.last(),
            Some((Some(5), ProblemKind::Syntax(_)))
        ));
        let shown = p[0].to_string();
        assert!(
            shown.starts_with("kb.jsonl:3 (entry #2) [zh-1]: duplicate id"),
            "{shown}"
        );
    }

    #[test]
    fn reports_at_most_the_limit() {
        let bad = r#"{"id":"","locale":"en","intent":"a","questions":["q"],"answer":"a"}"#;
        let text = vec![bad; MAX_REPORTED_PROBLEMS + 7].join("\n");
        match parse_kb_str(&text, KbFormat::JsonLines, "x.jsonl") {
            Err(KbError::Invalid { problems, total }) => {
                assert_eq!(problems.len(), MAX_REPORTED_PROBLEMS);
                assert_eq!(total, MAX_REPORTED_PROBLEMS + 7);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn yaml_lines_point_at_the_item() {
        let text = "- id: a\n  locale: en\n  intent: x\n  questions: [hi]\n  answer: hello\n\
                    - id: b\n  locale: en\n  intent: x\n  questions: []\n  answer: hello {name}\n";
        let p = problems(text, KbFormat::Yaml);
        assert_eq!(p.len(), 2);
        assert!(p
            .iter()
            .all(|p| p.location.line == Some(6) && p.location.entry == Some(1)));
        assert_eq!(p[1].kind, ProblemKind::UndeclaredSlot("name".into()));
    }
}
