//! Ranking question-level points into entry-level hits, public so that it can be tested
//! without a server.

use std::collections::HashMap;

use switchboard_operators::retrieval::Hit;

/// How many questions to ask Qdrant for so that the best `k` entries are among them when
/// no entry has more than `max_questions` questions (at least `k`).
pub fn fetch_limit(k: usize, max_questions: usize) -> usize {
    k.saturating_mul(max_questions.max(1))
}

/// Orders hits best first: score descending, then entry index, then question index.
fn hit_order(a: &Hit, b: &Hit) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then(a.entry_index.cmp(&b.entry_index))
        .then(a.question_index.cmp(&b.question_index))
}

/// The best `k` entries among question-level `hits`: one hit per entry (its best question,
/// the lowest question index among equal scores), ordered by score descending, then entry
/// index, then question index — the
/// [`VectorIndex`](switchboard_operators::retrieval::VectorIndex) contract.
pub fn rank_entries(hits: impl IntoIterator<Item = Hit>, k: usize) -> Vec<Hit> {
    if k == 0 {
        return Vec::new();
    }
    let mut best: HashMap<usize, Hit> = HashMap::new();
    for hit in hits {
        best.entry(hit.entry_index)
            .and_modify(|b| {
                if hit_order(&hit, b).is_lt() {
                    *b = hit;
                }
            })
            .or_insert(hit);
    }
    let mut ranked: Vec<Hit> = best.into_values().collect();
    ranked.sort_by(hit_order);
    ranked.truncate(k);
    ranked
}

/// Whether the best `k` entries ranked from `points` — the best questions of a search, asked
/// for with `limit`, out of `total` questions in the collection — cannot change by fetching
/// more questions.
///
/// True when the server returned fewer than `limit` questions or `limit` reached `total` (all
/// matching questions are there), or when the `k`-th entry scores strictly above the lowest
/// question returned (any question not returned scores at most that, so it can neither beat a
/// kept entry nor tie with it).
pub fn ranking_is_final(points: &[Hit], limit: usize, total: usize, k: usize) -> bool {
    if points.len() < limit || limit >= total {
        return true;
    }
    let ranked = rank_entries(points.iter().copied(), k);
    let lowest = points.iter().map(|h| h.score).min_by(|a, b| a.total_cmp(b));
    match (ranked.len() >= k, ranked.last(), lowest) {
        (true, Some(kth), Some(lowest)) => kth.score > lowest,
        _ => false,
    }
}
