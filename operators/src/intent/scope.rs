//! An out-of-scope signal beside the softmax confidence: how close a text's embedding is to the
//! nearest class centroid (cosine similarity to the normalised mean of each label's training
//! embeddings). A softmax spreads its mass over the known labels whatever the input, so an
//! utterance about something else can still get a confident label; its embedding, though, lies
//! far from every class. A model trained with `in_scope_keep` stores the centroids
//! (`centroids.safetensors`) and a threshold: the similarity that keeps that share of its own
//! training examples, each measured against its class centroid *without itself*
//! (leave-one-out, so the threshold is not fitted to points the centroids already contain).
//! Below the threshold the prediction abstains: its confidence becomes 0, so the session hands
//! the turn off or asks (the low-confidence paths), and `in_scope` says why.

use crate::{Error, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// The file of the centroids in a model folder.
pub const CENTROIDS_FILE: &str = "centroids.safetensors";

/// Class centroids and the in-scope threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// One normalised centroid per label, in label order.
    centroids: Vec<Vec<f32>>,
    /// Below this similarity a text is out of scope.
    pub threshold: f32,
}

fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Scope {
    /// Centroids of `embeddings` (normalised rows) by `targets`, and the threshold that keeps
    /// `keep` (0–1) of the examples by their leave-one-out similarity.
    pub fn fit(embeddings: &[Vec<f32>], targets: &[usize], labels: usize, keep: f64) -> Result<Scope> {
        let dim = embeddings.first().map(Vec::len).ok_or_else(|| Error::Training("no embeddings for the centroids".into()))?;
        let mut sums = vec![vec![0f32; dim]; labels];
        let mut counts = vec![0usize; labels];
        for (x, &t) in embeddings.iter().zip(targets) {
            sums[t].iter_mut().zip(x).for_each(|(s, v)| *s += v);
            counts[t] += 1;
        }
        let centroids: Vec<Vec<f32>> = sums.iter().map(|s| normalised(s.clone())).collect();
        let mut similarities: Vec<f32> = embeddings
            .iter()
            .zip(targets)
            .map(|(x, &t)| {
                let own = if counts[t] > 1 {
                    let without: Vec<f32> = sums[t].iter().zip(x).map(|(s, v)| s - v).collect();
                    dot(&normalised(without), x)
                } else {
                    -1.0
                };
                centroids.iter().enumerate().filter(|(k, _)| *k != t).map(|(_, c)| dot(c, x)).fold(own, f32::max)
            })
            .collect();
        similarities.sort_by(f32::total_cmp);
        let drop = ((1.0 - keep.clamp(0.0, 1.0)) * similarities.len() as f64).floor() as usize;
        let threshold = similarities.get(drop.min(similarities.len().saturating_sub(1))).copied().unwrap_or(-1.0);
        Ok(Scope { centroids, threshold })
    }

    /// The cosine similarity of a normalised embedding to its nearest centroid.
    pub fn similarity(&self, embedding: &[f32]) -> f32 {
        self.centroids.iter().map(|c| dot(c, embedding)).fold(-1.0, f32::max)
    }

    /// Whether a text with this similarity is in scope.
    pub fn in_scope(&self, similarity: f32) -> bool {
        similarity >= self.threshold
    }

    /// Writes the centroids and the threshold.
    pub fn save(&self, path: &Path) -> Result<()> {
        let labels = self.centroids.len();
        let dim = self.centroids.first().map(Vec::len).unwrap_or(0);
        let flat: Vec<f32> = self.centroids.iter().flatten().copied().collect();
        let tensors: HashMap<String, Tensor> = [
            ("centroids".to_string(), Tensor::from_vec(flat, (labels, dim), &Device::Cpu)?),
            ("threshold".to_string(), Tensor::from_vec(vec![self.threshold], 1, &Device::Cpu)?),
        ]
        .into_iter()
        .collect();
        candle_core::safetensors::save(&tensors, path)?;
        Ok(())
    }

    /// Reads what [`save`](Self::save) wrote, for a model of `labels` labels of width `dim`.
    pub fn load(path: &Path, labels: usize, dim: usize) -> Result<Scope> {
        let bad = |message: String| Error::Model { dir: path.to_path_buf(), message };
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)?;
        let centroids = tensors.get("centroids").ok_or_else(|| bad("no centroids tensor".into()))?.to_vec2::<f32>()?;
        if centroids.len() != labels || centroids.iter().any(|c| c.len() != dim) {
            return Err(bad(format!("centroids are not {labels} × {dim}")));
        }
        let threshold = tensors.get("threshold").ok_or_else(|| bad("no threshold tensor".into()))?.to_vec1::<f32>()?;
        let threshold = *threshold.first().ok_or_else(|| bad("empty threshold".into()))?;
        Ok(Scope { centroids, threshold })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_from_every_class_is_out_of_scope() {
        let e = |x: f32, y: f32, z: f32| normalised(vec![x, y, z]);
        let embeddings = vec![e(1.0, 0.1, 0.0), e(1.0, -0.1, 0.0), e(1.0, 0.0, 0.1), e(0.1, 1.0, 0.0), e(-0.1, 1.0, 0.0), e(0.0, 1.0, 0.1)];
        let targets = vec![0, 0, 0, 1, 1, 1];
        let scope = Scope::fit(&embeddings, &targets, 2, 1.0).expect("fit");
        assert!(scope.in_scope(scope.similarity(&e(1.0, 0.05, 0.0))));
        assert!(!scope.in_scope(scope.similarity(&e(0.0, 0.0, 1.0))), "orthogonal to both classes");
        let path = std::env::temp_dir().join(format!("scope-{}.safetensors", std::process::id()));
        scope.save(&path).expect("save");
        assert_eq!(Scope::load(&path, 2, 3).expect("load"), scope);
        let _ = std::fs::remove_file(path);
    }
}
