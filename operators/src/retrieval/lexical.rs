//! Lexical similarity between a user's text and the example questions: TF-IDF cosine over
//! character n-grams, in `[0, 1]`.
//!
//! Features ([`features`]): for CJK text, character unigrams and bigrams of each CJK run; for
//! Latin text, lower-cased words plus character 3-grams of each word padded with `^`/`$` (so
//! `returns` still shares most grams with `return`). Digit runs become a single `<num>` feature
//! and letter+digit codes `<code>`, so order numbers do not dilute the match. Full-width ASCII is
//! folded to half-width first.
//!
//! Weights are `(1 + ln tf) · idf` with the smoothed `idf = ln((1 + N) / (1 + df)) + 1`, where
//! `N` and `df` count the example questions of the same locale. A query feature never seen in
//! the locale gets the largest idf and only lowers the query's norm. An entry's score is the
//! best cosine over its questions.

use std::collections::{BTreeMap, HashMap};

use switchboard_schemas::Locale;

use super::kb::KbEntry;

/// Whether `c` is written without spaces between words (Han, kana, Hangul).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF
        | 0x20000..=0x2FA1F)
}

fn fold(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// The lexical features of `text` (with repetitions; see the module docs).
pub fn features(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cjk_run: Vec<char> = Vec::new();
    let mut word = String::new();
    let flush_cjk = |run: &mut Vec<char>, out: &mut Vec<String>| {
        for (i, c) in run.iter().enumerate() {
            out.push(c.to_string());
            if let Some(next) = run.get(i + 1) {
                out.push([*c, *next].iter().collect());
            }
        }
        run.clear();
    };
    let flush_word = |word: &mut String, out: &mut Vec<String>| {
        if word.is_empty() {
            return;
        }
        let has_digit = word.chars().any(|c| c.is_ascii_digit());
        if has_digit {
            let all_digits = word.chars().all(|c| c.is_ascii_digit());
            out.push(if all_digits {
                "<num>".into()
            } else {
                "<code>".into()
            });
        } else {
            out.push(format!("w:{word}"));
            let padded: Vec<char> = std::iter::once('^')
                .chain(word.chars())
                .chain(Some('$'))
                .collect();
            for gram in padded.windows(3) {
                out.push(format!("g:{}", gram.iter().collect::<String>()));
            }
        }
        word.clear();
    };
    for c in text.chars().map(fold) {
        if is_cjk(c) {
            flush_word(&mut word, &mut out);
            cjk_run.push(c);
        } else if c.is_alphanumeric() {
            flush_cjk(&mut cjk_run, &mut out);
            word.extend(c.to_lowercase());
        } else if (c == '\'' || c == '’') && !word.is_empty() {
            // "doesn't" → "doesnt"
        } else {
            flush_cjk(&mut cjk_run, &mut out);
            flush_word(&mut word, &mut out);
        }
    }
    flush_cjk(&mut cjk_run, &mut out);
    flush_word(&mut word, &mut out);
    out
}

/// A sparse, L2-normalised vector: (feature id, weight) sorted by id.
type Sparse = Vec<(u32, f32)>;

/// Term counts of one question: (feature id, count).
type Counts = Vec<(u32, u32)>;

#[derive(Debug, Clone, Default)]
struct LocaleStats {
    /// idf per feature id seen in this locale.
    idf: HashMap<u32, f32>,
    /// idf of a feature never seen in this locale.
    unseen_idf: f32,
}

/// TF-IDF vectors of every example question, per locale.
#[derive(Debug, Clone, Default)]
pub struct LexicalIndex {
    vocab: HashMap<String, u32>,
    locales: HashMap<Locale, LocaleStats>,
    /// Per entry: its locale and one vector per question.
    entries: Vec<(Locale, Vec<Sparse>)>,
}

/// Feature counts, in feature order: iteration order (and so feature ids and float sums) must
/// not depend on hashing, or two indexes over the same entries could differ in the last bit.
fn term_counts(features: Vec<String>) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for f in features {
        *counts.entry(f).or_insert(0) += 1;
    }
    counts
}

fn tf(count: u32) -> f32 {
    1.0 + (count as f32).ln()
}

impl LexicalIndex {
    /// Indexes the questions of `entries` (entry `i` here is entry `i` there).
    pub fn new(entries: &[KbEntry]) -> LexicalIndex {
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut df: HashMap<Locale, (usize, HashMap<u32, usize>)> = HashMap::new();
        let mut counted: Vec<(Locale, Vec<Counts>)> = Vec::with_capacity(entries.len());
        for entry in entries {
            let (docs, locale_df) = df.entry(entry.locale).or_default();
            let mut questions = Vec::with_capacity(entry.questions.len());
            for q in &entry.questions {
                let mut ids: Counts = Vec::new();
                for (f, n) in term_counts(features(q)) {
                    let next = vocab.len() as u32;
                    let id = *vocab.entry(f).or_insert(next);
                    ids.push((id, n));
                    *locale_df.entry(id).or_insert(0) += 1;
                }
                *docs += 1;
                questions.push(ids);
            }
            counted.push((entry.locale, questions));
        }
        let locales: HashMap<Locale, LocaleStats> = df
            .into_iter()
            .map(|(locale, (docs, df))| {
                let n = docs as f32;
                let idf = df
                    .into_iter()
                    .map(|(id, d)| (id, ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0))
                    .collect();
                (
                    locale,
                    LocaleStats {
                        idf,
                        unseen_idf: (1.0 + n).ln() + 1.0,
                    },
                )
            })
            .collect();
        let entries = counted
            .into_iter()
            .map(|(locale, questions)| {
                let stats = &locales[&locale];
                let vectors = questions
                    .into_iter()
                    .map(|ids| {
                        let weighted = ids.into_iter().map(|(id, n)| {
                            (
                                id,
                                tf(n) * stats.idf.get(&id).copied().unwrap_or(stats.unseen_idf),
                            )
                        });
                        normalised(weighted.collect(), None)
                    })
                    .collect();
                (locale, vectors)
            })
            .collect();
        LexicalIndex {
            vocab,
            locales,
            entries,
        }
    }

    /// Prepares `text` for scoring against entries of `locale`.
    pub fn query(&self, locale: Locale, text: &str) -> LexicalQuery<'_> {
        let Some(stats) = self.locales.get(&locale) else {
            return LexicalQuery {
                index: self,
                locale,
                vector: Vec::new(),
            };
        };
        let mut known = Vec::new();
        let mut unseen_norm2 = 0f32;
        for (f, n) in term_counts(features(text)) {
            match self
                .vocab
                .get(&f)
                .and_then(|id| stats.idf.get(id).map(|idf| (*id, *idf)))
            {
                Some((id, idf)) => known.push((id, tf(n) * idf)),
                None => unseen_norm2 += (tf(n) * stats.unseen_idf).powi(2),
            }
        }
        LexicalQuery {
            index: self,
            locale,
            vector: normalised(known, Some(unseen_norm2)),
        }
    }

    /// The similarity of `text` and entry `entry_index` (0 when the entry is of another locale
    /// or does not exist).
    pub fn similarity(&self, locale: Locale, text: &str, entry_index: usize) -> f32 {
        self.query(locale, text).score(entry_index)
    }
}

/// Sorts by id and divides by the norm (plus `extra_norm2`, the squared weight of features
/// left out).
fn normalised(mut v: Sparse, extra_norm2: Option<f32>) -> Sparse {
    v.sort_unstable_by_key(|&(id, _)| id);
    let norm = (v.iter().map(|(_, w)| w * w).sum::<f32>() + extra_norm2.unwrap_or(0.0)).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|(_, w)| *w /= norm);
    }
    v
}

fn sparse_dot(a: &Sparse, b: &Sparse) -> f32 {
    let (mut i, mut j, mut sum) = (0, 0, 0f32);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sum += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

/// A query's TF-IDF vector, ready to score entries.
#[derive(Debug, Clone)]
pub struct LexicalQuery<'a> {
    index: &'a LexicalIndex,
    locale: Locale,
    vector: Sparse,
}

impl LexicalQuery<'_> {
    /// The best cosine of the query and the questions of entry `entry_index`, in `[0, 1]`.
    pub fn score(&self, entry_index: usize) -> f32 {
        self.best(entry_index).map_or(0.0, |(_, s)| s)
    }

    /// The best-matching question of entry `entry_index` and its score.
    pub fn best(&self, entry_index: usize) -> Option<(usize, f32)> {
        let (locale, questions) = self.index.entries.get(entry_index)?;
        if *locale != self.locale || self.vector.is_empty() {
            return None;
        }
        let mut best: Option<(usize, f32)> = None;
        for (q, v) in questions.iter().enumerate() {
            let s = sparse_dot(&self.vector, v).clamp(0.0, 1.0);
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((q, s));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_split_cjk_and_latin() {
        let f = features("退货 SF123456 Return's ok 2024");
        assert!(f.contains(&"退".to_string()));
        assert!(f.contains(&"退货".to_string()));
        assert!(f.contains(&"<code>".to_string()));
        assert!(f.contains(&"<num>".to_string()));
        assert!(f.contains(&"w:returns".to_string()));
        assert!(f.contains(&"g:^re".to_string()));
        assert!(f.contains(&"g:ok$".to_string()));
        assert_eq!(features("ＡＢＣ"), features("abc"));
    }
}
