//! The classification head on frozen sentence embeddings: a linear layer (multinomial logistic
//! regression) or a one-hidden-layer ReLU MLP, its weights file and its forward pass. Training
//! lives in [`super::fit`]. Everything here runs on the CPU: the head is tiny.

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Linear, Module, VarMap};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::Path;

pub(crate) const OUT_WEIGHT: &str = "out.weight";
pub(crate) const OUT_BIAS: &str = "out.bias";
pub(crate) const HIDDEN_WEIGHT: &str = "hidden.weight";
pub(crate) const HIDDEN_BIAS: &str = "hidden.bias";

/// A head: `logits = out(relu(hidden(x)))` or `logits = out(x)`.
pub(crate) struct Head {
    varmap: VarMap,
    hidden: Option<Linear>,
    out: Linear,
    dim: usize,
}

fn lock(varmap: &VarMap) -> std::sync::MutexGuard<'_, HashMap<String, Var>> {
    varmap
        .data()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Head {
    fn from_vars(vars: Vec<(&str, Var)>, dim: usize, hidden_size: usize) -> Result<Head> {
        let varmap = VarMap::new();
        let mut get = HashMap::new();
        {
            let mut data = lock(&varmap);
            for (name, var) in vars {
                get.insert(name.to_string(), var.as_tensor().clone());
                data.insert(name.to_string(), var);
            }
        }
        let linear = |w: &str, b: &str| -> Option<Linear> {
            Some(Linear::new(get.get(w)?.clone(), Some(get.get(b)?.clone())))
        };
        let hidden = if hidden_size > 0 {
            linear(HIDDEN_WEIGHT, HIDDEN_BIAS)
        } else {
            None
        };
        let out = linear(OUT_WEIGHT, OUT_BIAS)
            .ok_or_else(|| Error::Training("head lacks its output layer".into()))?;
        Ok(Head {
            varmap,
            hidden,
            out,
            dim,
        })
    }

    /// A fresh head: zero weights for the linear case (the problem is convex), seeded Kaiming-
    /// uniform / uniform weights for the MLP.
    pub(crate) fn init(dim: usize, hidden_size: usize, n_labels: usize, seed: u64) -> Result<Head> {
        let device = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
        let mut uniform = |n: usize, bound: f64| -> Vec<f32> {
            (0..n)
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect()
        };
        let mut vars = Vec::new();
        let in_out = if hidden_size > 0 {
            let w = uniform(hidden_size * dim, (6.0 / dim as f64).sqrt());
            vars.push((
                HIDDEN_WEIGHT,
                Var::from_vec(w, (hidden_size, dim), &device)?,
            ));
            vars.push((HIDDEN_BIAS, Var::zeros(hidden_size, DType::F32, &device)?));
            let w = uniform(n_labels * hidden_size, 1.0 / (hidden_size as f64).sqrt());
            Var::from_vec(w, (n_labels, hidden_size), &device)?
        } else {
            Var::zeros((n_labels, dim), DType::F32, &device)?
        };
        vars.push((OUT_WEIGHT, in_out));
        vars.push((OUT_BIAS, Var::zeros(n_labels, DType::F32, &device)?));
        Head::from_vars(vars, dim, hidden_size)
    }

    /// The trainable variables (for the optimiser).
    pub(crate) fn vars(&self) -> Vec<Var> {
        lock(&self.varmap).values().cloned().collect()
    }

    /// Loads `head.safetensors`, checking the tensors against the expected shapes.
    pub fn load(path: &Path, dim: usize, hidden_size: usize, n_labels: usize) -> Result<Head> {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let model_error = |message: String| Error::Model {
            dir: dir.clone(),
            message,
        };
        if !path.exists() {
            return Err(model_error(format!("{} not found", path.display())));
        }
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| model_error(format!("cannot read {}: {e}", path.display())))?;
        let mut vars = Vec::new();
        let in_dim = if hidden_size > 0 { hidden_size } else { dim };
        let mut expect = vec![
            (OUT_WEIGHT, vec![n_labels, in_dim]),
            (OUT_BIAS, vec![n_labels]),
        ];
        if hidden_size > 0 {
            expect.push((HIDDEN_WEIGHT, vec![hidden_size, dim]));
            expect.push((HIDDEN_BIAS, vec![hidden_size]));
        }
        for (name, shape) in expect {
            let tensor = tensors.get(name).ok_or_else(|| {
                model_error(format!(
                    "head.safetensors lacks `{name}` (hidden = {hidden_size} in model.json)"
                ))
            })?;
            let got = tensor.dims().to_vec();
            if got != shape {
                let what = match name {
                    OUT_WEIGHT | OUT_BIAS if got.first() != Some(&n_labels) => format!(
                        "label count mismatch: head `{name}` has {} outputs but model.json lists {n_labels} labels",
                        got.first().copied().unwrap_or(0)
                    ),
                    _ => format!(
                        "head `{name}` has shape {got:?}, expected {shape:?} (dim = {dim}, hidden = {hidden_size}, labels = {n_labels})"
                    ),
                };
                return Err(model_error(what));
            }
            vars.push((name, Var::from_tensor(&tensor.to_dtype(DType::F32)?)?));
        }
        Head::from_vars(vars, dim, hidden_size)
    }

    /// Writes the weights as safetensors.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.varmap.save(path)?;
        Ok(())
    }

    /// Raw logits of a `(n, dim)` batch.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.hidden {
            Some(hidden) => self.out.forward(&hidden.forward(x)?.relu()?),
            None => self.out.forward(x),
        }
    }

    /// Raw logits, one row per embedding.
    pub fn logits(&self, embeddings: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        if embeddings.is_empty() {
            return Ok(Vec::new());
        }
        let x = matrix(embeddings.iter(), self.dim)?;
        Ok(self.forward(&x)?.to_vec2::<f32>()?)
    }

    /// A detached copy of every weight (see [`restore`](Self::restore)).
    pub(crate) fn snapshot(&self) -> Result<Vec<(String, Tensor)>> {
        lock(&self.varmap)
            .iter()
            .map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?.detach())))
            .collect()
    }

    /// Puts back the weights of a [`snapshot`](Self::snapshot).
    pub(crate) fn restore(&self, snapshot: &[(String, Tensor)]) -> Result<()> {
        let data = lock(&self.varmap);
        for (name, tensor) in snapshot {
            if let Some(var) = data.get(name) {
                var.set(tensor)?;
            }
        }
        Ok(())
    }
}

/// Stacks rows into a `(rows, dim)` CPU tensor, checking every width.
pub(crate) fn matrix<'a>(rows: impl Iterator<Item = &'a Vec<f32>>, dim: usize) -> Result<Tensor> {
    let mut flat = Vec::new();
    let mut n = 0;
    for row in rows {
        if row.len() != dim {
            return Err(Error::Training(format!(
                "embedding of width {} where {dim} was expected",
                row.len()
            )));
        }
        flat.extend_from_slice(row);
        n += 1;
    }
    Ok(Tensor::from_vec(flat, (n, dim), &Device::Cpu)?)
}

/// Softmax of `logits / temperature`, in f64 for stability.
pub(crate) fn softmax(logits: &[f32], temperature: f64) -> Vec<f64> {
    let scaled: Vec<f64> = logits.iter().map(|&z| f64::from(z) / temperature).collect();
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = scaled.iter().map(|z| (z - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}
