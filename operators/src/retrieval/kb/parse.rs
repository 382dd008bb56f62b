//! Reading knowledge-base files: JSON Lines, a JSON array or YAML, every problem collected.

use std::collections::HashMap;
use std::path::Path;

use super::entry::{KbEntry, KbFormat, RawEntry, MAX_REPORTED_PROBLEMS};
use super::error::{KbError, KbProblem, Location, ProblemKind};
use super::validate::validate;

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
