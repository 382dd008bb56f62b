//! Vector search over question embeddings.
//!
//! [`VectorIndex`] is the backend-neutral interface (object-safe, synchronous; a search that
//! fails, e.g. on a remote store that cannot be reached, says so with a [`VectorStoreError`]);
//! [`ExactIndex`] is the in-process exact implementation: cosine similarity as the dot product of
//! L2-normalised vectors, over contiguous `f32` storage partitioned by (locale, intent), so an
//! intent filter only touches that intent's rows. Other implementations (the Qdrant index of the
//! `switchboard-connectors` crate) live outside this crate.
//!
//! Results are per entry: an entry's score is the best score of its questions. Hits are ordered
//! by score (descending), ties broken by entry index then question index (ascending), so a
//! search is fully deterministic.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use switchboard_schemas::Locale;

use super::snapshot::Snapshot;

/// Which vectors a search may return.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    /// Only entries of this locale.
    pub locale: Locale,
    /// Only entries of this intent, when set.
    pub intent: Option<String>,
}

impl Filter {
    /// All entries of `locale`.
    pub fn locale(locale: Locale) -> Filter {
        Filter {
            locale,
            intent: None,
        }
    }

    /// The entries of `locale` with `intent`.
    pub fn intent(locale: Locale, intent: impl Into<String>) -> Filter {
        Filter {
            locale,
            intent: Some(intent.into()),
        }
    }
}

/// One search result: an entry and the question that matched it best.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Index of the entry (into the snapshot's entries).
    pub entry_index: usize,
    /// Index of the entry's best-matching question.
    pub question_index: usize,
    /// Cosine similarity of the query and that question, in `[-1, 1]`.
    pub score: f32,
}

/// A nearest-neighbour index over question vectors.
pub trait VectorIndex: Send + Sync {
    /// The best `k` entries matching `filter`, best first, one hit per entry (its best question),
    /// or why the search could not be run (a remote store unreachable, a timeout, a missing
    /// collection).
    ///
    /// Ties are broken by entry index, then question index. Returns no hit (and no error) when
    /// `k` is 0, when the query's width is not the locale's, or when the query holds non-finite
    /// values.
    fn try_search(
        &self,
        query: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<Hit>, VectorStoreError>;

    /// [`try_search`](Self::try_search), with a failure logged (`tracing`) and answered with no
    /// hit.
    fn search(&self, query: &[f32], filter: &Filter, k: usize) -> Vec<Hit> {
        self.try_search(query, filter, k).unwrap_or_else(|error| {
            tracing::error!(
                %error,
                locale = filter.locale.as_str(),
                intent = filter.intent.as_deref().unwrap_or(""),
                "vector search failed; returning no hit"
            );
            Vec::new()
        })
    }

    /// Number of vectors held.
    fn len(&self) -> usize;

    /// Whether the index holds no vector.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why an index could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// A vector's width differs from the earlier vectors of its locale.
    #[error("locale {}: vector width {got}, expected {expected}", locale.as_str())]
    DimensionMismatch {
        /// The locale.
        locale: Locale,
        /// Width of the first vector of the locale.
        expected: usize,
        /// Width of the offending vector.
        got: usize,
    },
    /// A zero-width vector.
    #[error("empty vector")]
    EmptyVector,
    /// The same entry was pushed under two (locale, intent) pairs.
    #[error("entry {0} pushed under two different locale/intent pairs")]
    EntrySplit(usize),
    /// The same (entry, question) pair was pushed twice.
    #[error("entry {0} question {1} pushed twice")]
    DuplicateRow(usize, usize),
    /// An entry or question index does not fit in 32 bits.
    #[error("index {0} too large")]
    TooLarge(usize),
    /// A snapshot's vectors do not match its entries.
    #[error("inconsistent snapshot: {0}")]
    Inconsistent(String),
}

/// Why a vector store (an index outside this process, such as Qdrant) could not search or take
/// a snapshot's vectors.
#[derive(Debug, thiserror::Error)]
#[error("{store}: {source}")]
pub struct VectorStoreError {
    store: String,
    transient: bool,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl VectorStoreError {
    /// A failure of the store named `store` (e.g. `qdrant`; the message starts with it).
    /// `transient`: whether trying again later may succeed (the store unreachable, a timeout),
    /// as opposed to a request that cannot succeed (a bad configuration, mismatched data).
    pub fn new(
        store: impl Into<String>,
        transient: bool,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> VectorStoreError {
        VectorStoreError {
            store: store.into(),
            transient,
            source: source.into(),
        }
    }

    /// The store's name.
    pub fn store(&self) -> &str {
        &self.store
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

/// The rows of one (locale, intent).
#[derive(Debug, Clone)]
struct Partition {
    locale: Locale,
    dim: usize,
    /// (entry, question) per row, sorted.
    rows: Vec<(u32, u32)>,
    /// rows.len() × dim, row-major.
    data: Vec<f32>,
}

/// Exact cosine search over normalised vectors (see the module docs).
#[derive(Debug, Clone)]
pub struct ExactIndex {
    partitions: Vec<Partition>,
    by_intent: HashMap<(Locale, String), usize>,
    by_locale: HashMap<Locale, Vec<usize>>,
    dims: HashMap<Locale, usize>,
    len: usize,
}

/// Collects vectors for an [`ExactIndex`].
#[derive(Debug, Default)]
pub struct ExactIndexBuilder {
    partitions: Vec<(String, Partition)>,
    keys: HashMap<(Locale, String), usize>,
    dims: HashMap<Locale, usize>,
    entry_partition: HashMap<u32, usize>,
}

impl ExactIndexBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the vector of question `question_index` of entry `entry_index`. The vector should
    /// be L2-normalised (scores are plain dot products). All vectors of a locale must have the
    /// same width, and all questions of an entry the same (locale, intent).
    pub fn push(
        &mut self,
        locale: Locale,
        intent: &str,
        entry_index: usize,
        question_index: usize,
        vector: &[f32],
    ) -> Result<(), IndexError> {
        if vector.is_empty() {
            return Err(IndexError::EmptyVector);
        }
        let expected = *self.dims.entry(locale).or_insert(vector.len());
        if expected != vector.len() {
            return Err(IndexError::DimensionMismatch {
                locale,
                expected,
                got: vector.len(),
            });
        }
        let e = u32::try_from(entry_index).map_err(|_| IndexError::TooLarge(entry_index))?;
        let q = u32::try_from(question_index).map_err(|_| IndexError::TooLarge(question_index))?;
        let next = self.partitions.len();
        let p = *self.keys.entry((locale, intent.to_owned())).or_insert(next);
        if p == next {
            let partition = Partition {
                locale,
                dim: vector.len(),
                rows: Vec::new(),
                data: Vec::new(),
            };
            self.partitions.push((intent.to_owned(), partition));
        }
        if *self.entry_partition.entry(e).or_insert(p) != p {
            return Err(IndexError::EntrySplit(entry_index));
        }
        let partition = &mut self.partitions[p].1;
        partition.rows.push((e, q));
        partition.data.extend_from_slice(vector);
        Ok(())
    }

    /// The finished index. Rows are sorted by (entry, question) inside each partition.
    pub fn build(self) -> Result<ExactIndex, IndexError> {
        let mut partitions = Vec::with_capacity(self.partitions.len());
        let mut by_intent = HashMap::new();
        let mut by_locale: HashMap<Locale, Vec<usize>> = HashMap::new();
        let mut len = 0;
        for (i, (intent, mut p)) in self.partitions.into_iter().enumerate() {
            if !p.rows.windows(2).all(|w| w[0] < w[1]) {
                let mut order: Vec<usize> = (0..p.rows.len()).collect();
                order.sort_by_key(|&r| p.rows[r]);
                if let Some(w) = order.windows(2).find(|w| p.rows[w[0]] == p.rows[w[1]]) {
                    let (e, q) = p.rows[w[0]];
                    return Err(IndexError::DuplicateRow(e as usize, q as usize));
                }
                let mut data = Vec::with_capacity(p.data.len());
                for &r in &order {
                    data.extend_from_slice(&p.data[r * p.dim..(r + 1) * p.dim]);
                }
                p.rows = order.iter().map(|&r| p.rows[r]).collect();
                p.data = data;
            }
            len += p.rows.len();
            by_intent.insert((p.locale, intent), i);
            by_locale.entry(p.locale).or_default().push(i);
            partitions.push(p);
        }
        Ok(ExactIndex {
            partitions,
            by_intent,
            by_locale,
            dims: self.dims,
            len,
        })
    }
}

impl ExactIndex {
    /// Indexes every question vector of a snapshot.
    pub fn from_snapshot(snapshot: &Snapshot) -> Result<ExactIndex, IndexError> {
        let mut builder = ExactIndexBuilder::new();
        for block in &snapshot.locales {
            if block.dim == 0 || block.data.len() != block.rows.len() * block.dim {
                return Err(IndexError::Inconsistent(format!(
                    "locale {}: {} values for {} rows of width {}",
                    block.locale.as_str(),
                    block.data.len(),
                    block.rows.len(),
                    block.dim
                )));
            }
            for (row, vector) in block.rows.iter().zip(block.data.chunks_exact(block.dim)) {
                let entry = snapshot
                    .entries
                    .get(row.entry_index as usize)
                    .filter(|e| {
                        e.locale == block.locale
                            && (row.question_index as usize) < e.questions.len()
                    })
                    .ok_or_else(|| {
                        IndexError::Inconsistent(format!(
                            "row for entry {} question {}, which is not a {} question",
                            row.entry_index,
                            row.question_index,
                            block.locale.as_str()
                        ))
                    })?;
                builder.push(
                    block.locale,
                    &entry.intent,
                    row.entry_index as usize,
                    row.question_index as usize,
                    vector,
                )?;
            }
        }
        builder.build()
    }

    /// The vector width of `locale`, if it has vectors.
    pub fn dim(&self, locale: Locale) -> Option<usize> {
        self.dims.get(&locale).copied()
    }

    /// Whether any vector has this locale and intent.
    pub fn has_intent(&self, locale: Locale, intent: &str) -> bool {
        self.by_intent.contains_key(&(locale, intent.to_owned()))
    }

    fn scan(partition: &Partition, query: &[f32], top: &mut TopK) {
        let dim = partition.dim;
        let mut current: Option<Candidate> = None;
        let mut offer = |c: Candidate, current: &mut Option<Candidate>| match current {
            Some(best) if best.entry == c.entry => {
                if c.cmp(best) == Ordering::Less {
                    *best = c;
                }
            }
            _ => {
                if let Some(done) = current.replace(c) {
                    top.offer(done);
                }
            }
        };
        // One row at a time: measured faster than interleaving several rows per pass, both in
        // cache and when streaming 100k rows from memory.
        for (&(entry, question), row) in partition.rows.iter().zip(partition.data.chunks_exact(dim))
        {
            offer(
                Candidate {
                    score: dot(query, row),
                    entry,
                    question,
                },
                &mut current,
            );
        }
        if let Some(done) = current {
            top.offer(done);
        }
    }
}

impl VectorIndex for ExactIndex {
    /// Never fails: see [`search`](VectorIndex::search).
    fn try_search(
        &self,
        query: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<Hit>, VectorStoreError> {
        Ok(self.search(query, filter, k))
    }

    fn search(&self, query: &[f32], filter: &Filter, k: usize) -> Vec<Hit> {
        if k == 0
            || self.dims.get(&filter.locale) != Some(&query.len())
            || query.iter().any(|x| !x.is_finite())
        {
            return Vec::new();
        }
        let mut top = TopK::new(k);
        match &filter.intent {
            Some(intent) => {
                if let Some(&p) = self.by_intent.get(&(filter.locale, intent.clone())) {
                    ExactIndex::scan(&self.partitions[p], query, &mut top);
                }
            }
            None => {
                for &p in self.by_locale.get(&filter.locale).into_iter().flatten() {
                    ExactIndex::scan(&self.partitions[p], query, &mut top);
                }
            }
        }
        top.into_hits()
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// Lanes of the dot-product accumulators (enough for the compiler to use vector registers).
const LANES: usize = 8;

/// Dot product with a fixed summation order (so results are reproducible): `LANES`
/// independent accumulators the compiler keeps in vector registers, reduced pairwise.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        // Fixed-size views let the compiler drop bounds checks and vectorise.
        let (Ok(x), Ok(y)) = (<&[f32; LANES]>::try_from(x), <&[f32; LANES]>::try_from(y)) else {
            continue; // unreachable: chunks_exact yields LANES-long chunks
        };
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    reduce(acc) + sum
}

#[inline]
fn reduce(acc: [f32; LANES]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// A scored row; ordered best first (`Less` = better).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: f32,
    entry: u32,
    question: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.entry.cmp(&other.entry))
            .then(self.question.cmp(&other.question))
    }
}

/// The best `k` candidates: a max-heap whose top is the worst kept.
struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(1024) + 1),
        }
    }

    fn offer(&mut self, c: Candidate) {
        if self.heap.len() < self.k {
            self.heap.push(c);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if c < *worst {
                *worst = c;
            }
        }
    }

    fn into_hits(self) -> Vec<Hit> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|c| Hit {
                entry_index: c.entry as usize,
                question_index: c.question as usize,
                score: c.score,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn dot_handles_any_width() {
        for n in [1usize, 7, 8, 9, 33, 512] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot(&a, &b) as f64 - want).abs() < 1e-4, "width {n}");
        }
    }

    #[test]
    fn best_question_per_entry_and_filters() {
        let mut b = ExactIndexBuilder::new();
        b.push(Locale::ZhCn, "a", 0, 0, &unit(&[1.0, 0.0])).unwrap();
        b.push(Locale::ZhCn, "a", 0, 1, &unit(&[0.6, 0.8])).unwrap();
        b.push(Locale::ZhCn, "b", 1, 0, &unit(&[0.8, 0.6])).unwrap();
        b.push(Locale::En, "a", 2, 0, &unit(&[1.0, 0.0, 0.0]))
            .unwrap();
        let index = b.build().unwrap();
        assert_eq!(index.len(), 4);
        let hits = index.search(&[0.0, 1.0], &Filter::locale(Locale::ZhCn), 10);
        assert_eq!(hits.len(), 2);
        assert_eq!((hits[0].entry_index, hits[0].question_index), (0, 1));
        assert_eq!(hits[1].entry_index, 1);
        let hits = index.search(&[0.0, 1.0], &Filter::intent(Locale::ZhCn, "b"), 10);
        assert_eq!(hits.len(), 1);
        assert!(index
            .search(&[0.0, 1.0], &Filter::intent(Locale::ZhCn, "zzz"), 10)
            .is_empty());
        assert!(
            index
                .search(&[0.0, 1.0], &Filter::locale(Locale::En), 10)
                .is_empty(),
            "width"
        );
        assert!(index
            .search(&[f32::NAN, 1.0], &Filter::locale(Locale::ZhCn), 10)
            .is_empty());
        assert!(index
            .search(&[0.0, 1.0], &Filter::locale(Locale::ZhCn), 0)
            .is_empty());
    }

    #[test]
    fn builder_rejects_inconsistent_input() {
        let mut b = ExactIndexBuilder::new();
        b.push(Locale::ZhCn, "a", 0, 0, &[1.0, 0.0]).unwrap();
        assert!(matches!(
            b.push(Locale::ZhCn, "a", 1, 0, &[1.0]),
            Err(IndexError::DimensionMismatch { .. })
        ));
        assert_eq!(
            b.push(Locale::ZhCn, "b", 0, 1, &[1.0, 0.0]),
            Err(IndexError::EntrySplit(0))
        );
        b.push(Locale::ZhCn, "a", 0, 0, &[0.0, 1.0]).unwrap();
        assert_eq!(b.build().unwrap_err(), IndexError::DuplicateRow(0, 0));
    }
}
