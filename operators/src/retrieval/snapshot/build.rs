//! Building a snapshot: embedding every example question with its locale's encoder.

use switchboard_schemas::Locale;

use super::content::{normalise, rows_of, LocaleVectors, Snapshot, LOCALES};
use super::error::SnapshotError;
use crate::intent::Encoder;
use crate::retrieval::kb::KbEntry;

/// Texts embedded per call to [`Embedder::embed`] while building.
const EMBED_BATCH: usize = 32;

/// Something that turns texts into fixed-width vectors: the [`Encoder`], or a stand-in in tests.
pub trait Embedder {
    /// A name identifying the model (it goes into the snapshot version).
    fn name(&self) -> &str;
    /// Width of the vectors.
    fn dim(&self) -> usize;
    /// One vector per text, in order.
    fn embed(&self, texts: &[&str]) -> crate::Result<Vec<Vec<f32>>>;
}

impl Embedder for Encoder {
    fn name(&self) -> &str {
        Encoder::name(self)
    }
    fn dim(&self) -> usize {
        Encoder::dim(self)
    }
    fn embed(&self, texts: &[&str]) -> crate::Result<Vec<Vec<f32>>> {
        Encoder::embed(self, texts)
    }
}

impl Snapshot {
    /// Embeds every example question with its locale's encoder and versions the result.
    ///
    /// `encoder_for` gives the encoder of a locale (`zh-CN` entries with the zh encoder, `en`
    /// with the en one); it may return `None` for a locale without entries. Vectors are
    /// L2-normalised again after embedding.
    pub fn build<'a, E, F>(entries: Vec<KbEntry>, encoder_for: F) -> Result<Snapshot, SnapshotError>
    where
        E: Embedder + ?Sized + 'a,
        F: Fn(Locale) -> Option<&'a E>,
    {
        let mut locales = Vec::new();
        for locale in LOCALES {
            let rows = rows_of(&entries, locale);
            if rows.is_empty() {
                continue;
            }
            let encoder = encoder_for(locale).ok_or(SnapshotError::NoEncoder(locale))?;
            let dim = encoder.dim();
            let bad = |message: String| SnapshotError::BadEmbedding {
                encoder: encoder.name().to_owned(),
                message,
            };
            let mut data = Vec::with_capacity(rows.len() * dim);
            let texts: Vec<&str> = rows
                .iter()
                .map(|r| {
                    entries[r.entry_index as usize].questions[r.question_index as usize].as_str()
                })
                .collect();
            for batch in texts.chunks(EMBED_BATCH) {
                let vectors = encoder.embed(batch).map_err(|e| SnapshotError::Embed {
                    locale,
                    source: Box::new(e),
                })?;
                if vectors.len() != batch.len() {
                    return Err(bad(format!(
                        "{} vectors for {} texts",
                        vectors.len(),
                        batch.len()
                    )));
                }
                for mut v in vectors {
                    if v.len() != dim {
                        return Err(bad(format!("vector of width {} (expected {dim})", v.len())));
                    }
                    if v.iter().any(|x| !x.is_finite()) {
                        return Err(bad("non-finite value in a vector".into()));
                    }
                    normalise(&mut v);
                    data.extend_from_slice(&v);
                }
            }
            locales.push(LocaleVectors {
                locale,
                encoder: encoder.name().to_owned(),
                dim,
                rows,
                data,
            });
        }
        Ok(Snapshot::assemble(entries, locales))
    }
}
