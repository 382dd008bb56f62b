//! The [`Retriever`]: vector search over a snapshot's question embeddings, re-scored with
//! lexical similarity: `score = w · cosine + (1 − w) · lexical`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use switchboard_schemas::Locale;

use super::index::{ExactIndex, Filter, IndexError, VectorIndex, VectorStoreError};
use super::kb::KbEntry;
use super::lexical::LexicalIndex;
use super::snapshot::Snapshot;

/// Tuning of a [`Retriever`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrieverConfig {
    /// Weight `w` of the vector score; the lexical score gets `1 − w`. Default 0.7.
    pub vector_weight: f32,
    /// Least combined score [`Retriever::retrieve`] accepts, per locale. Default zh-CN 0.59,
    /// en 0.32 (see [`Thresholds`]).
    pub threshold: Thresholds,
    /// How many entries the vector search returns for re-scoring. Default 50.
    pub candidates: usize,
}

impl Default for RetrieverConfig {
    fn default() -> Self {
        RetrieverConfig {
            vector_weight: 0.7,
            threshold: Thresholds::default(),
            candidates: 50,
        }
    }
}

/// A retrieval threshold per locale. The encoders score on different scales: m3e-small gives
/// even unrelated Chinese sentences cosines around 0.6, MiniLM gives good English paraphrases
/// 0.3–0.5. The defaults keep about 95 % of the correct answers to the demo evaluation
/// paraphrases (their 5th-percentile score: zh-CN 0.594, en 0.323) and reject half (zh-CN) and
/// about 85 % (en) of the out-of-scope utterances; `operators/tests/retrieval_eval.rs` prints
/// the distributions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// For `zh-CN`.
    pub zh_cn: f32,
    /// For `en`.
    pub en: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            zh_cn: 0.59,
            en: 0.32,
        }
    }
}

impl Thresholds {
    /// The same threshold for every locale.
    pub fn all(threshold: f32) -> Self {
        Thresholds {
            zh_cn: threshold,
            en: threshold,
        }
    }

    /// The threshold of `locale`.
    pub fn of(&self, locale: Locale) -> f32 {
        match locale {
            Locale::ZhCn => self.zh_cn,
            Locale::En => self.en,
        }
    }
}

/// A retrieved entry with its scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retrieved<'a> {
    /// Index of the entry in the snapshot.
    pub entry_index: usize,
    /// The entry.
    pub entry: &'a KbEntry,
    /// The entry's question closest to the query vector (the lexically closest one when there
    /// was no query vector).
    pub question_index: usize,
    /// The combined score, in `[0, 1]`.
    pub score: f32,
    /// Best cosine similarity over the entry's questions, clamped to `[0, 1]`.
    pub vector_score: f32,
    /// Best lexical similarity over the entry's questions, in `[0, 1]`.
    pub lexical_score: f32,
    /// True when an intent was given but the knowledge base has no entry for it in this locale,
    /// so all entries of the locale were searched.
    pub intent_fallback: bool,
}

/// Finds the best knowledge-base entry for a user's turn (see the module docs).
///
/// Deterministic: the same snapshot, configuration and inputs give the same result.
pub struct Retriever {
    snapshot: Snapshot,
    index: Arc<dyn VectorIndex>,
    lexical: LexicalIndex,
    config: RetrieverConfig,
    intents: HashSet<(Locale, String)>,
    /// Entry indices per locale and per (locale, intent), for lexical-only scoring.
    by_locale: HashMap<Locale, Vec<usize>>,
    by_intent: HashMap<(Locale, String), Vec<usize>>,
}

impl std::fmt::Debug for Retriever {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retriever")
            .field("version", &self.snapshot.version)
            .field("entries", &self.snapshot.entries.len())
            .field("vectors", &self.index.len())
            .field("config", &self.config)
            .finish()
    }
}

impl Retriever {
    /// A retriever over `snapshot` with an [`ExactIndex`].
    pub fn new(snapshot: Snapshot, config: RetrieverConfig) -> Result<Retriever, IndexError> {
        let index = ExactIndex::from_snapshot(&snapshot)?;
        Ok(Retriever::with_index(snapshot, Arc::new(index), config))
    }

    /// A retriever over `snapshot` using `index`, which must hold the snapshot's vectors (with
    /// the snapshot's entry indices).
    pub fn with_index(
        snapshot: Snapshot,
        index: Arc<dyn VectorIndex>,
        config: RetrieverConfig,
    ) -> Retriever {
        let lexical = LexicalIndex::new(&snapshot.entries);
        let mut by_locale: HashMap<Locale, Vec<usize>> = HashMap::new();
        let mut by_intent: HashMap<(Locale, String), Vec<usize>> = HashMap::new();
        for (i, e) in snapshot.entries.iter().enumerate() {
            by_locale.entry(e.locale).or_default().push(i);
            by_intent
                .entry((e.locale, e.intent.clone()))
                .or_default()
                .push(i);
        }
        let intents = by_intent.keys().cloned().collect();
        Retriever {
            snapshot,
            index,
            lexical,
            config,
            intents,
            by_locale,
            by_intent,
        }
    }

    /// The snapshot searched.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The configuration.
    pub fn config(&self) -> &RetrieverConfig {
        &self.config
    }

    /// Whether the knowledge base has an entry for `intent` in `locale`.
    pub fn has_intent(&self, locale: Locale, intent: &str) -> bool {
        self.intents.contains(&(locale, intent.to_owned()))
    }

    /// The best entry for `text` (with its embedding `query_vector`, made by the locale's
    /// encoder), or `None` when its score is below the threshold.
    ///
    /// Only entries of `locale` are searched, and only those of `intent` when given and the
    /// knowledge base has any (otherwise all entries of the locale, with
    /// [`Retrieved::intent_fallback`] set). An empty `query_vector` means no embedding is
    /// available: entries are then scored lexically only (`score = lexical_score`).
    ///
    /// A failed vector search (see [`try_retrieve`](Self::try_retrieve)) is logged and finds
    /// nothing.
    pub fn retrieve(
        &self,
        locale: Locale,
        intent: Option<&str>,
        text: &str,
        query_vector: &[f32],
    ) -> Option<Retrieved<'_>> {
        self.rank(locale, intent, text, query_vector, 1)
            .into_iter()
            .next()
            .filter(|r| r.score >= self.config.threshold.of(locale))
    }

    /// [`retrieve`](Self::retrieve), or the error of a vector search that could not be run
    /// (only an index outside the process fails).
    pub fn try_retrieve(
        &self,
        locale: Locale,
        intent: Option<&str>,
        text: &str,
        query_vector: &[f32],
    ) -> Result<Option<Retrieved<'_>>, VectorStoreError> {
        Ok(self
            .try_rank(locale, intent, text, query_vector, 1)?
            .into_iter()
            .next()
            .filter(|r| r.score >= self.config.threshold.of(locale)))
    }

    /// The best `n` entries, best first, without the threshold (for evaluation and logging).
    /// Ties are broken by entry index. A failed vector search (see
    /// [`try_rank`](Self::try_rank)) is logged and ranks nothing.
    pub fn rank(
        &self,
        locale: Locale,
        intent: Option<&str>,
        text: &str,
        query_vector: &[f32],
        n: usize,
    ) -> Vec<Retrieved<'_>> {
        self.try_rank(locale, intent, text, query_vector, n)
            .unwrap_or_else(|error| {
                tracing::error!(
                    %error,
                    version = %self.snapshot.version,
                    locale = locale.as_str(),
                    intent = intent.unwrap_or(""),
                    "vector search failed; retrieving nothing"
                );
                Vec::new()
            })
    }

    /// [`rank`](Self::rank), or the error of a vector search that could not be run.
    pub fn try_rank(
        &self,
        locale: Locale,
        intent: Option<&str>,
        text: &str,
        query_vector: &[f32],
        n: usize,
    ) -> Result<Vec<Retrieved<'_>>, VectorStoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let intent_known = intent.filter(|i| self.has_intent(locale, i));
        let intent_fallback = intent.is_some() && intent_known.is_none();
        let lexical = self.lexical.query(locale, text);
        let w = self.config.vector_weight.clamp(0.0, 1.0);

        let mut results: Vec<Retrieved<'_>> = if query_vector.is_empty() {
            let scope = match intent_known {
                Some(i) => self.by_intent.get(&(locale, i.to_owned())),
                None => self.by_locale.get(&locale),
            };
            scope
                .into_iter()
                .flatten()
                .filter_map(|&e| {
                    let (question_index, lexical_score) = lexical.best(e)?;
                    Some(Retrieved {
                        entry_index: e,
                        entry: self.snapshot.entries.get(e)?,
                        question_index,
                        score: lexical_score,
                        vector_score: 0.0,
                        lexical_score,
                        intent_fallback,
                    })
                })
                .collect()
        } else {
            let filter = Filter {
                locale,
                intent: intent_known.map(str::to_owned),
            };
            self.index
                .try_search(query_vector, &filter, self.config.candidates.max(n))?
                .into_iter()
                .filter_map(|hit| {
                    let entry = self.snapshot.entries.get(hit.entry_index)?;
                    let vector_score = hit.score.clamp(0.0, 1.0);
                    let lexical_score = lexical.score(hit.entry_index);
                    Some(Retrieved {
                        entry_index: hit.entry_index,
                        entry,
                        question_index: hit.question_index,
                        score: w * vector_score + (1.0 - w) * lexical_score,
                        vector_score,
                        lexical_score,
                        intent_fallback,
                    })
                })
                .collect()
        };
        results.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.entry_index.cmp(&b.entry_index))
        });
        results.truncate(n);
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::FRAC_1_SQRT_2;

    fn entry(id: &str, locale: Locale, intent: &str, questions: &[&str]) -> KbEntry {
        KbEntry {
            id: id.into(),
            locale,
            intent: intent.into(),
            questions: questions.iter().map(|q| q.to_string()).collect(),
            answer: format!("answer {id}"),
            slots: vec![],
        }
    }

    /// Entries with 2-d vectors: question vectors at the given angles (degrees).
    fn retriever(config: RetrieverConfig) -> Retriever {
        let entries = vec![
            entry("a", Locale::ZhCn, "return_goods", &["我要退货", "怎么退货"]),
            entry("b", Locale::ZhCn, "return_goods", &["退货运费谁出"]),
            entry("c", Locale::ZhCn, "invoice", &["开发票"]),
            entry("d", Locale::En, "invoice", &["i need an invoice"]),
        ];
        let zh: Vec<f32> = [0.0f32, 10.0, 80.0, 45.0]
            .iter()
            .flat_map(|d| [d.to_radians().cos(), d.to_radians().sin()])
            .collect();
        let snapshot = Snapshot::from_vectors(
            entries,
            vec![
                (Locale::ZhCn, "fake-zh".into(), 2, zh),
                (Locale::En, "fake-en".into(), 3, vec![1.0, 0.0, 0.0]),
            ],
        )
        .unwrap();
        Retriever::new(snapshot, config).unwrap()
    }

    #[test]
    fn combines_vector_and_lexical_scores() {
        let r = retriever(RetrieverConfig::default());
        let hit = r
            .retrieve(Locale::ZhCn, Some("return_goods"), "我要退货", &[1.0, 0.0])
            .unwrap();
        assert_eq!(hit.entry.id, "a");
        assert!((hit.vector_score - 1.0).abs() < 1e-6);
        assert!((hit.lexical_score - 1.0).abs() < 1e-6);
        assert!((hit.score - 1.0).abs() < 1e-6);
        assert!(!hit.intent_fallback);
    }

    #[test]
    fn intent_filter_and_fallback() {
        let r = retriever(RetrieverConfig::default());
        // Query vector points at c (45°) but the intent restricts to return_goods.
        let ranked = r.rank(
            Locale::ZhCn,
            Some("return_goods"),
            "x",
            &[FRAC_1_SQRT_2, FRAC_1_SQRT_2],
            5,
        );
        assert!(ranked.iter().all(|h| h.entry.intent == "return_goods"));
        let fallback = r.rank(
            Locale::ZhCn,
            Some("no_such_intent"),
            "开发票",
            &[FRAC_1_SQRT_2, FRAC_1_SQRT_2],
            5,
        );
        assert_eq!(fallback[0].entry.id, "c");
        assert!(fallback[0].intent_fallback);
        assert_eq!(fallback.len(), 3, "all zh entries, no en one");
    }

    #[test]
    fn threshold_rejects_weak_matches() {
        let r = retriever(RetrieverConfig {
            threshold: Thresholds::all(0.99),
            ..Default::default()
        });
        assert!(r
            .retrieve(Locale::ZhCn, None, "天气怎么样", &[0.0, -1.0])
            .is_none());
        let r = retriever(RetrieverConfig::default());
        assert!(r
            .retrieve(Locale::ZhCn, None, "天气怎么样", &[0.0, -1.0])
            .is_none());
    }

    #[test]
    fn lexical_only_without_a_vector() {
        let r = retriever(RetrieverConfig::default());
        let hit = r
            .retrieve(Locale::ZhCn, None, "退货运费谁出呢", &[])
            .unwrap();
        assert_eq!(hit.entry.id, "b");
        assert_eq!(hit.vector_score, 0.0);
        assert_eq!(hit.score, hit.lexical_score);
    }
}
