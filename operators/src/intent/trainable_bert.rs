//! A BERT encoder built only from differentiable candle operations, for fine-tuning.
//!
//! candle's `BertModel` (and the packed inference path) normalise with the fused layer-norm
//! kernel, which has no backward pass: gradients stop at the first layer norm and no encoder
//! weight would learn. This module computes the same function (post-norm BERT: embeddings, then
//! per layer self-attention and a GELU feed-forward, each followed by a residual layer norm)
//! with the layer norm spelled out, over the weight names of the Hugging Face checkpoints, so
//! that what it trains loads back into the inference paths unchanged.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Embedding, Linear, VarBuilder};

/// The sizes the forward pass needs, read from a BERT `config.json`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sizes {
    pub vocab: usize,
    pub hidden: usize,
    pub heads: usize,
    pub layers: usize,
    pub intermediate: usize,
    pub positions: usize,
    pub type_vocab: usize,
    pub eps: f64,
    /// `hidden_act` is `gelu_new`/`gelu_pytorch_tanh` (tanh approximation) rather than `gelu`.
    pub gelu_tanh: bool,
}

impl Sizes {
    pub(super) fn from_config(config: &serde_json::Value) -> Option<Sizes> {
        let n = |key: &str| config[key].as_u64().map(|v| v as usize);
        Some(Sizes {
            vocab: n("vocab_size")?,
            hidden: n("hidden_size")?,
            heads: n("num_attention_heads")?,
            layers: n("num_hidden_layers")?,
            intermediate: n("intermediate_size")?,
            positions: n("max_position_embeddings")?,
            type_vocab: n("type_vocab_size").unwrap_or(2),
            eps: config["layer_norm_eps"].as_f64().unwrap_or(1e-12),
            gelu_tanh: matches!(config["hidden_act"].as_str(), Some("gelu_new" | "gelu_pytorch_tanh")),
        })
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn load(vb: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        Ok(LayerNorm { weight: vb.get(size, "weight")?, bias: vb.get(size, "bias")?, eps })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred.broadcast_div(&(variance + self.eps)?.sqrt()?)?.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl Layer {
    fn load(vb: VarBuilder, s: &Sizes) -> Result<Self> {
        let attention = vb.pp("attention");
        Ok(Layer {
            query: candle_nn::linear(s.hidden, s.hidden, attention.pp("self").pp("query"))?,
            key: candle_nn::linear(s.hidden, s.hidden, attention.pp("self").pp("key"))?,
            value: candle_nn::linear(s.hidden, s.hidden, attention.pp("self").pp("value"))?,
            attention_out: candle_nn::linear(s.hidden, s.hidden, attention.pp("output").pp("dense"))?,
            attention_norm: LayerNorm::load(attention.pp("output").pp("LayerNorm"), s.hidden, s.eps)?,
            intermediate: candle_nn::linear(s.hidden, s.intermediate, vb.pp("intermediate").pp("dense"))?,
            output: candle_nn::linear(s.intermediate, s.hidden, vb.pp("output").pp("dense"))?,
            output_norm: LayerNorm::load(vb.pp("output").pp("LayerNorm"), s.hidden, s.eps)?,
        })
    }

    /// `x`: (batch, tokens, hidden); `mask_bias`: (batch, 1, 1, tokens), 0 or −10 000.
    fn forward(&self, x: &Tensor, mask_bias: &Tensor, s: &Sizes) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let head_dim = h / s.heads;
        let split = |y: Tensor| y.reshape((b, t, s.heads, head_dim))?.transpose(1, 2)?.contiguous();
        let q = split(self.query.forward(x)?)?;
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let scores = (q.matmul(&k.t()?.contiguous()?)? / (head_dim as f64).sqrt())?.broadcast_add(mask_bias)?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((b, t, h))?;
        let attended = self.attention_norm.forward(&(self.attention_out.forward(&context)? + x)?)?;
        let inner = self.intermediate.forward(&attended)?;
        let inner = if s.gelu_tanh { inner.gelu()? } else { inner.gelu_erf()? };
        self.output_norm.forward(&(self.output.forward(&inner)? + attended)?)
    }
}

/// The encoder; its variables are named as in the checkpoints (`embeddings.…`, `encoder.layer.N.…`).
pub(super) struct TrainableBert {
    words: Embedding,
    positions: Embedding,
    types: Embedding,
    norm: LayerNorm,
    layers: Vec<Layer>,
    sizes: Sizes,
}

impl TrainableBert {
    pub(super) fn load(vb: VarBuilder, s: Sizes) -> Result<Self> {
        let e = vb.pp("embeddings");
        Ok(TrainableBert {
            words: candle_nn::embedding(s.vocab, s.hidden, e.pp("word_embeddings"))?,
            positions: candle_nn::embedding(s.positions, s.hidden, e.pp("position_embeddings"))?,
            types: candle_nn::embedding(s.type_vocab, s.hidden, e.pp("token_type_embeddings"))?,
            norm: LayerNorm::load(e.pp("LayerNorm"), s.hidden, s.eps)?,
            layers: (0..s.layers).map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), &s)).collect::<Result<_>>()?,
            sizes: s,
        })
    }

    /// Hidden states (batch, tokens, hidden) of `ids` and `type_ids` (batch, tokens, u32) with
    /// the attention `mask` (batch, tokens, u32: 1 for a token, 0 for padding).
    pub(super) fn forward(&self, ids: &Tensor, type_ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let positions = Tensor::arange(0u32, t as u32, ids.device())?.unsqueeze(0)?.broadcast_as((b, t))?.contiguous()?;
        let x = (self.words.forward(ids)? + self.types.forward(type_ids)?)?.add(&self.positions.forward(&positions)?)?;
        let mut x = self.norm.forward(&x)?;
        let mask_bias = ((mask.to_dtype(candle_core::DType::F32)? - 1.0)? * 10_000.0)?.reshape((b, 1, 1, t))?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask_bias, &self.sizes)?;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    /// Gradients reach every variable (the fused layer norm of candle's `BertModel` stops them).
    #[test]
    fn every_weight_gets_a_gradient() {
        let sizes = Sizes { vocab: 20, hidden: 8, heads: 2, layers: 2, intermediate: 16, positions: 16, type_vocab: 2, eps: 1e-12, gelu_tanh: false };
        let varmap = VarMap::new();
        let model = TrainableBert::load(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), sizes).expect("model");
        let ids = Tensor::new(&[[1u32, 5, 7, 0], [2, 3, 0, 0]], &Device::Cpu).expect("ids");
        let types = ids.zeros_like().expect("types");
        let mask = Tensor::new(&[[1u32, 1, 1, 0], [1, 1, 0, 0]], &Device::Cpu).expect("mask");
        let loss = model.forward(&ids, &types, &mask).expect("forward").sqr().expect("sqr").sum_all().expect("sum");
        let grads = loss.backward().expect("backward");
        let data = varmap.data().lock().expect("vars");
        let missing: Vec<&String> = data.iter().filter(|(_, v)| grads.get(v.as_tensor()).is_none()).map(|(n, _)| n).collect();
        // The rows of unused token ids get zero gradients, but every tensor gets one.
        assert!(missing.is_empty(), "no gradient for {missing:?}");
    }
}
