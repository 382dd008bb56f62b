//! Sentence encoders: a candle [`BertModel`] with mean pooling over the attention mask and L2
//! normalisation (the sentence-transformers recipe), loaded from a local model folder.
//!
//! A folder holds `config.json`, `tokenizer.json` and either `model.safetensors` or
//! `pytorch_model.bin`. Nothing is ever downloaded.
//!
//! On the CPU the forward pass runs over packed batches ([`super::packed`]: no padding in the
//! dense layers); on a GPU, or when asked ([`ForwardPass::Padded`]), candle's `BertModel` runs
//! over a padded batch with an attention mask. Both give the same embeddings to float rounding.
//! `SWITCHBOARD_ENCODER_PRECISION=int8` makes the CPU pass [`ForwardPass::PackedInt8`]: 8-bit
//! weights and activations in the dense layers (faster, embeddings a little different; the
//! README gives the held-out accuracy and speed of both).

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use super::packed::Precision;
use candle_transformers::models::bert::{BertModel, Config};
use std::path::{Path, PathBuf};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Longest input, in tokens; longer texts are truncated.
pub const MAX_TOKENS: usize = 128;

/// How a batch goes through the transformer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardPass {
    /// The texts' tokens stacked without padding; attention per text (CPU only).
    Packed,
    /// `Packed` with the dense layers in 8 bits where the CPU has integer dot products for
    /// them ([`super::packed::Precision::Int8`]).
    PackedInt8,
    /// candle's `BertModel` over a padded batch with an attention mask.
    Padded,
}

enum Model {
    Packed(super::packed::PackedBert),
    Padded(BertModel),
}

/// A loaded sentence encoder.
pub struct Encoder {
    model: Model,
    tokenizer: Tokenizer,
    device: Device,
    dim: usize,
    name: String,
}

/// The token ids, type ids and attention mask of a padded batch, `(rows, width)` each.
pub(super) fn padded_batch(encodings: &[tokenizers::Encoding], device: &Device) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let rows = encodings.len();
    let width = encodings.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
    let (mut ids, mut types, mut mask) = (Vec::with_capacity(rows * width), Vec::with_capacity(rows * width), Vec::with_capacity(rows * width));
    for e in encodings {
        ids.extend_from_slice(e.get_ids());
        types.extend_from_slice(e.get_type_ids());
        mask.extend_from_slice(e.get_attention_mask());
    }
    Ok((
        Tensor::from_vec(ids, (rows, width), device)?,
        Tensor::from_vec(types, (rows, width), device)?,
        Tensor::from_vec(mask, (rows, width), device)?,
    ))
}

/// The sentence embedding: hidden states `(rows, width, dim)` averaged over the attention mask
/// `(rows, width)`, then L2-normalised, `(rows, dim)`.
pub(super) fn mean_pool_normalised(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (rows, width, 1)
    let mean = hidden.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&mask.sum(1)?.clamp(1e-9, f64::MAX)?)?;
    let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    mean.broadcast_div(&norms)
}

/// Turns a model name (`m3e-small`, `all-minilm-l6-v2`) or a path into a model folder: a name
/// is looked up under `$SWITCHBOARD_MODELS`, else `./models`, else the source tree's `models/`.
pub fn resolve_model_dir(name_or_dir: &str) -> PathBuf {
    let as_path = Path::new(name_or_dir);
    if as_path.join("config.json").exists() {
        return as_path.to_path_buf();
    }
    if let Ok(root) = std::env::var("SWITCHBOARD_MODELS") {
        return Path::new(&root).join(name_or_dir);
    }
    let local = Path::new("models").join(name_or_dir);
    if local.exists() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models").join(name_or_dir)
}

fn model_error(dir: &Path, message: impl Into<String>) -> Error {
    Error::Model { dir: dir.to_path_buf(), message: message.into() }
}

/// The device inference runs on: the first CUDA GPU when built with `cuda` and one is present.
pub fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(device) = Device::cuda_if_available(0) {
        return device;
    }
    Device::Cpu
}

impl Encoder {
    /// Loads the encoder in `dir` on the default device.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_on(dir, default_device())
    }

    /// Loads the encoder in `dir` on `device`: packed batches on the CPU (in the precision
    /// `SWITCHBOARD_ENCODER_PRECISION` names: `f32`, the default, or `int8`), padded on a GPU.
    pub fn load_on(dir: &Path, device: Device) -> Result<Self> {
        let pass = if !device.is_cpu() {
            ForwardPass::Padded
        } else {
            match Precision::from_env().map_err(|message| model_error(dir, message))? {
                Precision::F32 => ForwardPass::Packed,
                Precision::Int8 => ForwardPass::PackedInt8,
            }
        };
        Self::load_with(dir, device, pass)
    }

    /// Loads the encoder in `dir` on `device` with the given forward pass (`Packed` needs the CPU).
    pub fn load_with(dir: &Path, device: Device, pass: ForwardPass) -> Result<Self> {
        if pass != ForwardPass::Padded && !device.is_cpu() {
            return Err(model_error(dir, "the packed forward pass runs on the CPU only"));
        }
        let config_text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| model_error(dir, format!("cannot read config.json: {e}")))?;
        let config: Config = serde_json::from_str(&config_text)
            .map_err(|e| model_error(dir, format!("config.json is not a BERT config: {e}")))?;
        let dim = serde_json::from_str::<serde_json::Value>(&config_text)
            .ok()
            .and_then(|v| v["hidden_size"].as_u64())
            .ok_or_else(|| model_error(dir, "config.json lacks hidden_size"))? as usize;

        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| model_error(dir, format!("cannot load tokenizer.json: {e}")))?;
        let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(0);
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token: "[PAD]".into(),
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| model_error(dir, format!("tokenizer truncation: {e}")))?;

        let safetensors = dir.join("model.safetensors");
        let pth = dir.join("pytorch_model.bin");
        let vb = if safetensors.exists() {
            let bytes = std::fs::read(&safetensors)
                .map_err(|e| model_error(dir, format!("cannot read model.safetensors: {e}")))?;
            VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)?
        } else if pth.exists() {
            VarBuilder::from_pth(&pth, DType::F32, &device)?
        } else {
            return Err(model_error(dir, "neither model.safetensors nor pytorch_model.bin found"));
        };
        let model = match pass {
            ForwardPass::Packed => Model::Packed(super::packed::PackedBert::load(vb, &config, Precision::F32)?),
            ForwardPass::PackedInt8 => {
                let model = super::packed::PackedBert::load(vb, &config, Precision::Int8)?;
                let (int8, all) = model.int8_layers();
                tracing::info!(model = %dir.display(), int8, dense_layers = all, "encoder loaded with 8-bit dense layers where the CPU has integer kernels for them");
                Model::Packed(model)
            }
            ForwardPass::Padded => Model::Padded(BertModel::load(vb, &config)?),
        };
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Encoder { model, tokenizer, device, dim, name })
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// How many dense layers run in 8 bits, of how many (0 of N unless loaded with
    /// [`ForwardPass::PackedInt8`] on a CPU with integer kernels for them).
    pub fn int8_layers(&self) -> (usize, usize) {
        match &self.model {
            Model::Packed(model) => model.int8_layers(),
            Model::Padded(_) => (0, 0),
        }
    }

    /// The model folder's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Embeds a batch of texts: one L2-normalised vector per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let model = match &self.model {
            Model::Padded(model) => model,
            Model::Packed(model) => {
                let texts: Vec<super::packed::PackedText<'_>> = encodings
                    .iter()
                    .map(|e| {
                        let real = e.get_attention_mask().iter().filter(|m| **m != 0).count();
                        super::packed::PackedText { ids: &e.get_ids()[..real], type_ids: &e.get_type_ids()[..real] }
                    })
                    .collect();
                return Ok(model.embed(&texts)?);
            }
        };
        let (ids, types, mask) = padded_batch(&encodings, &self.device)?;
        let hidden = model.forward(&ids, &types, Some(&mask))?; // (rows, width, dim)
        Ok(mean_pool_normalised(&hidden, &mask)?.to_vec2::<f32>()?)
    }

    /// Embeds one text.
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>> {
        self.embed(&[text])?
            .pop()
            .ok_or_else(|| Error::Tokenizer("empty batch result".into()))
    }
}
