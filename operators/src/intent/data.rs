//! Labelled utterances: JSONL loading, text normalisation and stratified splits.

use crate::{Error, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One labelled utterance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The utterance.
    pub text: String,
    /// Its intent label.
    pub label: String,
}

impl Example {
    /// Builds an example from anything string-like.
    pub fn new(text: impl Into<String>, label: impl Into<String>) -> Self {
        Example {
            text: text.into(),
            label: label.into(),
        }
    }
}

/// Reads a JSONL file of `{"text": "…", "label": "…"}` objects, one per line. Blank lines are
/// skipped; extra fields are ignored. A line that is not JSON, is not an object, or lacks a
/// non-empty string `text` or `label` fails with [`Error::Data`] naming the file and the
/// 1-based line.
pub fn load_examples(path: impl AsRef<Path>) -> Result<Vec<Example>> {
    let path = path.as_ref();
    let content = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_examples(&content, path)
}

/// Parses JSONL content as [`load_examples`] does; `origin` names the source in errors.
pub fn parse_examples(content: &str, origin: impl AsRef<Path>) -> Result<Vec<Example>> {
    let origin = origin.as_ref();
    let bad = |line: usize, message: String| Error::Data {
        path: origin.to_path_buf(),
        line,
        message,
    };
    let mut examples = Vec::new();
    for (i, raw) in content.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim_start_matches('\u{feff}').trim();
        if trimmed.is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|e| bad(line, format!("invalid JSON: {e}")))?;
        let object = value.as_object().ok_or_else(|| {
            bad(
                line,
                "expected a JSON object with \"text\" and \"label\"".into(),
            )
        })?;
        let field = |name: &str| -> Result<String> {
            match object.get(name) {
                None | Some(serde_json::Value::Null) => {
                    Err(bad(line, format!("missing \"{name}\"")))
                }
                Some(serde_json::Value::String(s)) if s.trim().is_empty() => {
                    Err(bad(line, format!("empty \"{name}\"")))
                }
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(bad(
                    line,
                    format!("\"{name}\" must be a string, got {other}"),
                )),
            }
        };
        let text = field("text")?;
        let label = field("label")?.trim().to_string();
        examples.push(Example { text, label });
    }
    Ok(examples)
}

/// The normal form used as the prediction-cache key and fed to the encoder: full-width ASCII
/// (U+FF01–U+FF5E) and the ideographic space become half-width, ASCII letters are lower-cased,
/// whitespace runs collapse to one space, and the ends are trimmed.
pub fn normalize_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        let c = match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn groups<L: Ord>(labels: &[L]) -> BTreeMap<&L, Vec<usize>> {
    let mut groups: BTreeMap<&L, Vec<usize>> = BTreeMap::new();
    for (i, label) in labels.iter().enumerate() {
        groups.entry(label).or_default().push(i);
    }
    groups
}

/// How many of a label's `count` examples go to validation: `round(count × fraction)`, at
/// least 1 when `count ≥ 3` (and the fraction is positive), none below 3, never all but one.
pub fn validation_count(count: usize, fraction: f64) -> usize {
    if count < 3 || fraction <= 0.0 {
        return 0;
    }
    ((count as f64 * fraction).round() as usize)
        .max(1)
        .min(count - 2)
}

/// Splits example indices into (train, validation), stratified by label: each label sends
/// [`validation_count`] of its examples, chosen by a `seed`ed shuffle, to validation. Both
/// lists are sorted.
pub fn stratified_split<L: Ord>(
    labels: &[L],
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut validation) = (Vec::new(), Vec::new());
    for (_, mut members) in groups(labels) {
        members.shuffle(&mut rng);
        let n_val = validation_count(members.len(), fraction);
        validation.extend_from_slice(&members[..n_val]);
        train.extend_from_slice(&members[n_val..]);
    }
    train.sort_unstable();
    validation.sort_unstable();
    (train, validation)
}

/// Assigns each example a fold in `0..k`, stratified by label: each label's examples are
/// shuffled (`seed`) and dealt round-robin over the folds, each label starting where the
/// previous one stopped so that fold sizes stay within one of each other. A label with at
/// least `k` examples appears in every fold; one with at least 2 appears in every fold's
/// training complement.
pub fn stratified_folds<L: Ord>(labels: &[L], k: usize, seed: u64) -> Vec<usize> {
    let k = k.max(1);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fold_of = vec![0; labels.len()];
    let mut next = 0usize;
    for (_, mut members) in groups(labels) {
        members.shuffle(&mut rng);
        for i in members {
            fold_of[i] = next % k;
            next += 1;
        }
    }
    fold_of
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_width_case_and_space() {
        assert_eq!(
            normalize_text("  ＨＥＬＬＯ\u{3000}　World \t 退货！ "),
            "hello world 退货!"
        );
        assert_eq!(normalize_text("我要  退货"), "我要 退货");
    }

    #[test]
    fn parse_reports_line() {
        let err = parse_examples(
            "{\"text\":\"a\",\"label\":\"x\"}\n\n{\"text\":\"\",\"label\":\"x\"}",
            "f.jsonl",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("f.jsonl:3") && err.contains("empty \"text\""),
            "{err}"
        );
    }

    #[test]
    fn split_counts() {
        assert_eq!(validation_count(2, 0.15), 0);
        assert_eq!(validation_count(3, 0.15), 1);
        assert_eq!(validation_count(20, 0.15), 3);
        let labels = ["a", "a", "a", "b", "b", "c", "c", "c", "c", "c", "c", "c"];
        let (train, val) = stratified_split(&labels, 0.15, 7);
        assert_eq!(train.len() + val.len(), labels.len());
        assert_eq!(val.len(), 2);
        let folds = stratified_folds(&labels, 3, 1);
        for f in 0..3 {
            assert!(folds.iter().filter(|&&x| x == f).count() == 4);
        }
    }
}
