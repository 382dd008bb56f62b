//! One search: ask Qdrant for enough questions, then rank entries locally.

use qdrant_client::qdrant::{
    Condition, Filter as QdrantFilter, QueryPointsBuilder, SearchParamsBuilder,
};
use switchboard_operators::retrieval::{Filter, Hit};

use super::binding::Binding;
use super::connection::Connection;
use super::error::QdrantError;
use super::names::FIELD_INTENT;
use super::naming::question_of_point;
use super::ranking::{fetch_limit, rank_entries, ranking_is_final};

/// The best `k` entries of `binding`'s collection for `filter`'s locale (see the module docs).
pub(super) fn search(
    conn: &Connection,
    binding: &Binding,
    query: &[f32],
    filter: &Filter,
    k: usize,
) -> Result<Vec<Hit>, QdrantError> {
    let Some(locale) = binding.locales.get(&filter.locale) else {
        return Ok(Vec::new());
    };
    if locale.dim != query.len() || query.iter().any(|x| !x.is_finite()) {
        return Ok(Vec::new());
    }
    let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Ok(Vec::new());
    }
    let total = locale.rows.len();
    if total == 0 {
        return Ok(Vec::new());
    }
    let exact = conn.settings.exact;
    let client = &conn.client;
    let mut limit = fetch_limit(k, locale.max_questions).min(total);
    let points = conn.runtime.block_on(async {
        loop {
            let mut request = QueryPointsBuilder::new(locale.collection.as_str())
                .query(query.to_vec())
                .limit(limit as u64)
                .with_payload(false)
                .params(SearchParamsBuilder::default().exact(exact));
            if let Some(intent) = &filter.intent {
                request = request.filter(QdrantFilter::must([Condition::matches(
                    FIELD_INTENT,
                    intent.clone(),
                )]));
            }
            let response = client
                .query(request)
                .await
                .map_err(QdrantError::request(format!("query {}", locale.collection)))?;
            let points: Vec<Hit> = response
                .result
                .iter()
                .filter_map(|p| {
                    let id = match p.id.as_ref()?.point_id_options.as_ref()? {
                        qdrant_client::qdrant::point_id::PointIdOptions::Num(n) => *n,
                        qdrant_client::qdrant::point_id::PointIdOptions::Uuid(_) => return None,
                    };
                    let Some(q) = question_of_point(id, &locale.rows) else {
                        tracing::warn!(
                            collection = %locale.collection,
                            point = id,
                            "Qdrant returned a point that is no row of the snapshot"
                        );
                        return None;
                    };
                    Some(Hit {
                        entry_index: q.entry_index as usize,
                        question_index: q.question_index as usize,
                        score: p.score * norm,
                    })
                })
                .collect();
            if ranking_is_final(&points, limit, total, k) {
                return Ok::<Vec<Hit>, QdrantError>(points);
            }
            limit = limit.saturating_mul(2).min(total);
        }
    })??;
    Ok(rank_entries(points, k))
}
