//! Writing a snapshot's vectors into its collections.

use qdrant_client::qdrant::{
    vectors_config, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, Distance,
    FieldType, PointStruct, UpsertPointsBuilder, Value, VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant};
use switchboard_operators::retrieval::snapshot::{QuestionRef, Snapshot};

use super::binding::Binding;
use super::error::QdrantError;
use super::names::{
    FIELD_ENTRY_INDEX, FIELD_INTENT, FIELD_LOCALE, FIELD_QUESTION_INDEX, UPSERT_BATCH,
};
use super::naming::point_id;

/// Creates (if needed) and fills the collections of `binding`.
pub(super) async fn sync_collections(
    client: &Qdrant,
    snapshot: &Snapshot,
    binding: &Binding,
) -> Result<(), QdrantError> {
    for block in &snapshot.locales {
        let Some(locale) = binding.locales.get(&block.locale) else {
            continue;
        };
        let name = locale.collection.as_str();
        ensure_collection(client, name, locale.dim).await?;
        client
            .create_field_index(
                CreateFieldIndexCollectionBuilder::new(name, FIELD_INTENT, FieldType::Keyword)
                    .wait(true),
            )
            .await
            .map_err(QdrantError::request(format!("index `intent` of {name}")))?;
        let rows: Vec<(usize, (&QuestionRef, &[f32]))> = block
            .rows
            .iter()
            .zip(block.data.chunks_exact(locale.dim))
            .enumerate()
            .collect();
        for (n, batch) in rows.chunks(UPSERT_BATCH).enumerate() {
            let points: Vec<PointStruct> = batch
                .iter()
                .map(|&(i, (row, vector))| {
                    let intent = snapshot
                        .entries
                        .get(row.entry_index as usize)
                        .map_or("", |e| e.intent.as_str());
                    let payload = Payload::from([
                        (FIELD_ENTRY_INDEX, Value::from(i64::from(row.entry_index))),
                        (
                            FIELD_QUESTION_INDEX,
                            Value::from(i64::from(row.question_index)),
                        ),
                        (FIELD_INTENT, Value::from(intent)),
                        (FIELD_LOCALE, Value::from(block.locale.as_str())),
                    ]);
                    PointStruct::new(point_id(i), vector.to_vec(), payload)
                })
                .collect();
            client
                .upsert_points(UpsertPointsBuilder::new(name, points).wait(true))
                .await
                .map_err(QdrantError::request(format!(
                    "upsert batch {n} into {name}"
                )))?;
        }
    }
    Ok(())
}

/// Creates collection `name` for `dim`-wide cosine vectors unless it exists; an existing one
/// must match.
async fn ensure_collection(client: &Qdrant, name: &str, dim: usize) -> Result<(), QdrantError> {
    let exists = client
        .collection_exists(name)
        .await
        .map_err(QdrantError::request(format!("check collection {name}")))?;
    if !exists {
        let created = client
            .create_collection(
                CreateCollectionBuilder::new(name)
                    .vectors_config(VectorParamsBuilder::new(dim as u64, Distance::Cosine)),
            )
            .await;
        if let Err(e) = created {
            // Another process may have created it in the meantime.
            let exists_now = client.collection_exists(name).await.unwrap_or(false);
            if !exists_now {
                return Err(QdrantError::request(format!("create collection {name}"))(e));
            }
        } else {
            tracing::info!(collection = name, dim, "created Qdrant collection");
            return Ok(());
        }
    }
    let info = client
        .collection_info(name)
        .await
        .map_err(QdrantError::request(format!("read collection {name}")))?;
    let params = info
        .result
        .and_then(|i| i.config)
        .and_then(|c| c.params)
        .and_then(|p| p.vectors_config)
        .and_then(|v| v.config);
    let mismatch = |message: String| QdrantError::CollectionMismatch {
        collection: name.to_owned(),
        message,
    };
    match params {
        Some(vectors_config::Config::Params(p)) => {
            if p.size != dim as u64 {
                return Err(mismatch(format!("vector width {}, expected {dim}", p.size)));
            }
            if p.distance != Distance::Cosine as i32 {
                return Err(mismatch(format!(
                    "distance {:?}, expected cosine",
                    Distance::try_from(p.distance).ok()
                )));
            }
            Ok(())
        }
        _ => Err(mismatch("no single unnamed vector configuration".into())),
    }
}
