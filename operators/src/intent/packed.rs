//! A BERT forward pass for the CPU over *packed* batches.
//!
//! candle's `BertModel` takes a padded (texts × longest) batch, so every dense layer also
//! computes the padding: on short customer-service utterances of mixed length that is most of
//! the work. Here the tokens of all texts are stacked into one (tokens × hidden) matrix, so
//! the dense layers (nearly all the arithmetic) see no padding at all, and attention runs per
//! text over exactly its own tokens. GELU uses a rational erf that vectorises (a few ulp from
//! libm's) instead of a scalar libm call per activation.
//!
//! The weights and the maths are those of `candle_transformers::models::bert::BertModel`
//! (same tensor names, same layer norms, same softmax), so the embeddings agree with it —
//! and with sentence-transformers — to float rounding; `tests/packed_encoder.rs` checks it.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Tensor};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};
use candle_transformers::models::bert::{Config, HiddenAct};
use rayon::prelude::*;

/// The arithmetic of the dense layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats throughout (matches sentence-transformers to float rounding).
    #[default]
    F32,
    /// Weights quantised to 8 bits per value (blocks of 32 with one scale, `Q8_0`) and
    /// activations quantised per row on the fly, multiplied with integer dot products where
    /// the CPU has them (AVX512-VNNI or AVX-VNNI) and the layer's shape fits their tiles
    /// (input width a multiple of 256, output a multiple of 16); other layers stay f32.
    Int8,
}

impl Precision {
    /// The precision `SWITCHBOARD_ENCODER_PRECISION` names: unset, empty or `f32` is
    /// [`Precision::F32`], `int8` is [`Precision::Int8`]; anything else is an error naming it.
    pub fn from_env() -> std::result::Result<Self, String> {
        match std::env::var("SWITCHBOARD_ENCODER_PRECISION").as_deref() {
            Err(_) | Ok("") | Ok("f32") => Ok(Precision::F32),
            Ok("int8") => Ok(Precision::Int8),
            Ok(other) => Err(format!("SWITCHBOARD_ENCODER_PRECISION is {other:?}: f32 or int8")),
        }
    }
}

/// The weights of a dense layer.
enum Weights {
    /// Stored transposed, (in × out) row-major, so the matrix product reads them in the
    /// layout the GEMM packs fastest.
    F32(Tensor),
    /// Quantised (out × in), multiplied by candle's repacked integer kernels.
    Int8(QMatMul),
}

/// A dense layer.
struct Dense {
    weights: Weights,
    bias: Option<Tensor>,
}

/// Whether this CPU has the integer dot-product instructions (AVX512-VNNI or AVX-VNNI) that
/// candle's repacked 8-bit kernels use; without them [`Precision::Int8`] keeps every layer f32.
pub fn has_int8_kernels() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni"))
            || (is_x86_feature_detected!("avxvnni") && is_x86_feature_detected!("avx2"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether a layer `inputs` wide into `outputs` runs on those kernels (their tiles: input a
/// multiple of 256, output of 16); anything else in 8 bits would be slower than the f32 GEMM.
fn int8_kernel(inputs: usize, outputs: usize) -> bool {
    has_int8_kernels() && inputs.is_multiple_of(256) && outputs.is_multiple_of(16)
}

impl Dense {
    fn new(weight: &Tensor, bias: Option<&Tensor>, precision: Precision) -> candle_core::Result<Self> {
        let (outputs, inputs) = weight.dims2()?;
        let weights = if precision == Precision::Int8 && int8_kernel(inputs, outputs) {
            Weights::Int8(QMatMul::from_qtensor(QTensor::quantize(weight, GgmlDType::Q8_0)?)?)
        } else {
            Weights::F32(weight.t()?.contiguous()?)
        };
        Ok(Dense { weights, bias: bias.cloned() })
    }

    fn from_linear(linear: &Linear, precision: Precision) -> candle_core::Result<Self> {
        Self::new(linear.weight(), linear.bias(), precision)
    }

    fn is_int8(&self) -> bool {
        matches!(self.weights, Weights::Int8(_))
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = match &self.weights {
            Weights::F32(weight_t) => x.matmul(weight_t)?,
            Weights::Int8(weights) => weights.forward(x)?,
        };
        match &self.bias {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        }
    }
}

/// One transformer layer, with query, key and value fused into one projection.
struct Layer {
    qkv: Dense,
    attention_output: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    output_norm: LayerNorm,
}

/// The activation between the two feed-forward projections.
#[derive(Debug, Clone, Copy)]
enum Activation {
    /// 0.5·x·(1 + erf(x/√2)).
    GeluErf,
    /// The tanh approximation.
    GeluTanh,
    /// max(0, x).
    Relu,
}

/// A BERT encoder evaluated over packed batches on the CPU.
pub struct PackedBert {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
    max_positions: usize,
    activation: Activation,
}

/// One text of a packed batch: its token ids and token type ids.
pub struct PackedText<'a> {
    /// Token ids, without padding.
    pub ids: &'a [u32],
    /// Token type ids, as long as `ids`.
    pub type_ids: &'a [u32],
}

impl PackedBert {
    /// Loads the weights `BertModel::load` would load (with or without a `bert.` or
    /// `<model_type>.` prefix), with the dense layers in `precision`.
    pub fn load(vb: VarBuilder, config: &Config, precision: Precision) -> candle_core::Result<Self> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else if let Some(model_type) =
            config.model_type.as_ref().filter(|t| vb.contains_tensor(&format!("{t}.embeddings.word_embeddings.weight")))
        {
            vb.pp(model_type)
        } else {
            vb
        };
        let activation = match config.hidden_act {
            HiddenAct::Gelu => Activation::GeluErf,
            HiddenAct::GeluApproximate => Activation::GeluTanh,
            HiddenAct::Relu => Activation::Relu,
        };
        let h = config.hidden_size;
        let e = vb.pp("embeddings");
        let word_embeddings = embedding(config.vocab_size, h, e.pp("word_embeddings"))?;
        let position_embeddings = embedding(config.max_position_embeddings, h, e.pp("position_embeddings"))?;
        let token_type_embeddings = embedding(config.type_vocab_size, h, e.pp("token_type_embeddings"))?;
        let embedding_norm = layer_norm(h, config.layer_norm_eps, e.pp("LayerNorm"))?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for index in 0..config.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{index}"));
            let attention = l.pp("attention");
            let [q, k, v] = ["query", "key", "value"].map(|name| linear(h, h, attention.pp("self").pp(name)));
            let (q, k, v) = (q?, k?, v?);
            let weight = Tensor::cat(&[q.weight(), k.weight(), v.weight()], 0)?;
            let bias = match (q.bias(), k.bias(), v.bias()) {
                (Some(qb), Some(kb), Some(vb)) => Some(Tensor::cat(&[qb, kb, vb], 0)?),
                _ => None,
            };
            layers.push(Layer {
                qkv: Dense::new(&weight, bias.as_ref(), precision)?,
                attention_output: Dense::from_linear(&linear(h, h, attention.pp("output").pp("dense"))?, precision)?,
                attention_norm: layer_norm(h, config.layer_norm_eps, attention.pp("output").pp("LayerNorm"))?,
                intermediate: Dense::from_linear(&linear(h, config.intermediate_size, l.pp("intermediate").pp("dense"))?, precision)?,
                output: Dense::from_linear(&linear(config.intermediate_size, h, l.pp("output").pp("dense"))?, precision)?,
                output_norm: layer_norm(h, config.layer_norm_eps, l.pp("output").pp("LayerNorm"))?,
            });
        }
        Ok(PackedBert {
            word_embeddings,
            position_embeddings,
            token_type_embeddings,
            embedding_norm,
            layers,
            heads: config.num_attention_heads,
            hidden: h,
            max_positions: config.max_position_embeddings,
            activation,
        })
    }

    /// How many dense layers run in 8 bits, of how many.
    pub fn int8_layers(&self) -> (usize, usize) {
        let dense: Vec<&Dense> =
            self.layers.iter().flat_map(|l| [&l.qkv, &l.attention_output, &l.intermediate, &l.output]).collect();
        (dense.iter().filter(|d| d.is_int8()).count(), dense.len())
    }

    /// Mean-pooled, L2-normalised sentence embeddings of `texts`, one per text, in order.
    pub fn embed(&self, texts: &[PackedText<'_>]) -> candle_core::Result<Vec<Vec<f32>>> {
        let device = self.word_embeddings.embeddings().device().clone();
        let mut ids = Vec::new();
        let mut types = Vec::new();
        let mut positions = Vec::new();
        let mut spans = Vec::with_capacity(texts.len());
        for text in texts {
            let len = text.ids.len().min(self.max_positions);
            spans.push((ids.len(), len));
            ids.extend_from_slice(&text.ids[..len]);
            types.extend_from_slice(&text.type_ids[..len.min(text.type_ids.len())]);
            types.resize(ids.len(), 0);
            positions.extend(0..len as u32);
        }
        let tokens = ids.len();
        if tokens == 0 {
            return Ok(texts.iter().map(|_| vec![0.0; self.hidden]).collect());
        }
        let ids = Tensor::from_vec(ids, tokens, &device)?;
        let types = Tensor::from_vec(types, tokens, &device)?;
        let positions = Tensor::from_vec(positions, tokens, &device)?;
        let embedded = ((self.word_embeddings.forward(&ids)? + self.token_type_embeddings.forward(&types)?)?
            + self.position_embeddings.forward(&positions)?)?;
        let mut x = self.embedding_norm.forward(&embedded)?; // (tokens, hidden)
        let mut context = vec![0f32; tokens * self.hidden];
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x)?.flatten_all()?.to_vec1::<f32>()?; // (tokens, 3·hidden)
            attention(&qkv, &spans, self.hidden, self.heads, &mut context);
            let attended = Tensor::from_slice(&context, (tokens, self.hidden), &device)?;
            let attended = (layer.attention_output.forward(&attended)? + &x)?;
            let attended = layer.attention_norm.forward(&attended)?;
            let inner = layer.intermediate.forward(&attended)?;
            let width = inner.dim(1)?;
            let mut activations = inner.flatten_all()?.to_vec1::<f32>()?;
            activate(&mut activations, self.activation);
            let inner = Tensor::from_vec(activations, (tokens, width), &device)?;
            let out = (layer.output.forward(&inner)? + &attended)?;
            x = layer.output_norm.forward(&out)?;
        }
        let hidden = x.flatten_all()?.to_vec1::<f32>()?;
        Ok(spans.iter().map(|&(start, len)| mean_normalised(&hidden[start * self.hidden..(start + len) * self.hidden], self.hidden)).collect())
    }
}

/// Scaled dot-product attention of every text over its own tokens, all heads; writes the
/// (tokens × hidden) context. `qkv` rows are [query | key | value].
fn attention(qkv: &[f32], spans: &[(usize, usize)], hidden: usize, heads: usize, context: &mut [f32]) {
    let head_dim = hidden / heads;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let row = 3 * hidden;
    // Split the output into one slice per text, then work on texts in parallel.
    let mut slices = Vec::with_capacity(spans.len());
    let mut rest = context;
    for &(_, len) in spans {
        let (mine, tail) = rest.split_at_mut(len * hidden);
        slices.push(mine);
        rest = tail;
    }
    slices.into_par_iter().zip(spans.par_iter()).for_each(|(out, &(start, len))| {
        let mut scores = vec![0f32; len];
        for head in 0..heads {
            let offset = head * head_dim;
            for i in 0..len {
                let q = &qkv[(start + i) * row + offset..][..head_dim];
                let mut max = f32::NEG_INFINITY;
                for (j, score) in scores.iter_mut().enumerate() {
                    let k = &qkv[(start + j) * row + hidden + offset..][..head_dim];
                    *score = dot(q, k) * scale;
                    max = max.max(*score);
                }
                let mut sum = 0f32;
                for score in scores.iter_mut() {
                    *score = (*score - max).exp();
                    sum += *score;
                }
                let target = &mut out[i * hidden + offset..][..head_dim];
                target.fill(0.0);
                for (j, p) in scores.iter().enumerate() {
                    let v = &qkv[(start + j) * row + 2 * hidden + offset..][..head_dim];
                    let weight = p / sum;
                    for (t, v) in target.iter_mut().zip(v) {
                        *t += weight * v;
                    }
                }
            }
        }
    });
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators so the compiler can keep them in vector registers.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        sum += a[i] * b[i];
    }
    sum
}

/// Applies the activation in place, in parallel chunks.
fn activate(values: &mut [f32], activation: Activation) {
    values.par_chunks_mut(16 * 1024).for_each(|chunk| activate_chunk(chunk, activation));
}

/// One chunk of [`activate`], compiled for AVX2 and FMA where the CPU has them (the baseline
/// x86-64 target has neither, and `mul_add` would become a call to libm's `fmaf`).
fn activate_chunk(chunk: &mut [f32], activation: Activation) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for (checked above).
        unsafe { activate_chunk_avx2(chunk, activation) };
        return;
    }
    activate_chunk_portable(chunk, activation);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn activate_chunk_avx2(chunk: &mut [f32], activation: Activation) {
    activate_chunk_portable(chunk, activation);
}

#[inline(always)]
fn activate_chunk_portable(chunk: &mut [f32], activation: Activation) {
    match activation {
        Activation::GeluErf => {
            for x in chunk.iter_mut() {
                *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
        Activation::GeluTanh => {
            for x in chunk.iter_mut() {
                let inner = 0.797_884_6 * (*x + 0.044_715 * *x * *x * *x);
                *x = 0.5 * *x * (1.0 + inner.tanh());
            }
        }
        Activation::Relu => {
            for x in chunk.iter_mut() {
                *x = x.max(0.0);
            }
        }
    }
}

/// erf(x) for f32 as a rational function of x² on [-4, 4] (erf is ±1 to f32 precision beyond):
/// branch-free, so loops over it vectorise. The coefficients are the ones Eigen and XLA use;
/// the error is a few ulp (the tests compare it with libm).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2.mul_add(-2.726_142_3e-10, 2.770_681_4e-8);
    p = x2.mul_add(p, -2.101_024e-6);
    p = x2.mul_add(p, -5.692_506_4e-5);
    p = x2.mul_add(p, -7.349_906_3e-4);
    p = x2.mul_add(p, -2.954_6e-3);
    p = x2.mul_add(p, -1.609_603_3e-2);
    let p = x * p;
    let mut q = x2.mul_add(-1.456_607_2e-5, -2.133_740_6e-4);
    q = x2.mul_add(q, -1.682_827e-3);
    q = x2.mul_add(q, -7.373_329_4e-3);
    q = x2.mul_add(q, -1.426_474e-2);
    p / q
}

/// The mean of a text's token vectors, L2-normalised (the sentence-transformers pooling).
fn mean_normalised(rows: &[f32], hidden: usize) -> Vec<f32> {
    let count = (rows.len() / hidden).max(1) as f32;
    let mut mean = vec![0f32; hidden];
    for token in rows.chunks_exact(hidden) {
        for (m, v) in mean.iter_mut().zip(token) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= count);
    let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    mean.iter_mut().for_each(|m| *m /= norm);
    mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rational_erf_matches_libm_to_a_few_ulp() {
        let mut worst = 0f64;
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            let want = libm_erf(f64::from(x));
            worst = worst.max((f64::from(erf(x)) - want).abs());
        }
        assert!(worst < 1e-6, "largest error {worst}");
    }

    /// erf in f64 by its Taylor series (|x| ≤ 3) or continued fraction (beyond).
    fn libm_erf(x: f64) -> f64 {
        if x.abs() > 3.0 {
            // erfc by the continued fraction, accurate far past f32 here.
            let z = x.abs();
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = (k as f64 / 2.0) / (z + f);
            }
            let erfc = (-z * z).exp() / (std::f64::consts::PI.sqrt() * (z + f));
            return x.signum() * (1.0 - erfc);
        }
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn mean_pooling_normalises() {
        let v = mean_normalised(&[3.0, 0.0, 0.0, 4.0], 2);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6, "{v:?}");
    }
}
