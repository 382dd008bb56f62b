//! The intent classifier: a small head (multinomial logistic regression, or a one-hidden-layer
//! MLP) trained on frozen, L2-normalised sentence embeddings from an [`Encoder`], with
//! temperature-scaled confidences and an LRU cache of predictions.
//!
//! This module gathers, under their historical paths, the classifier's parts:
//! inference ([`IntentModel`], in `intent::model`), training ([`train`] and its variants, in
//! `intent::train`), evaluation ([`cross_validate`], [`evaluate`], in `intent::eval`), the data
//! helpers of [`super::data`] and the metrics of [`super::metrics`].
//!
//! ```no_run
//! use switchboard_operators::intent::classifier::{load_examples, train, IntentModel, TrainOptions};
//! # fn main() -> switchboard_operators::Result<()> {
//! let examples = load_examples("operators/data/intents/train.zh.jsonl")?;
//! let (model, report) = train(&examples, "m3e-small", &TrainOptions::default(), true)?;
//! model.save("models/intent-zh")?;
//! let model = IntentModel::load("models/intent-zh")?;
//! let predictions = model.classify(&["我要退货", "快递到哪了"])?;
//! # let _ = (report, predictions);
//! # Ok(()) }
//! ```
//!
//! # Model folder
//!
//! `head.safetensors` (the head's weights: `out.weight` `(labels, in)`, `out.bias`, and for an
//! MLP `hidden.weight` `(hidden, dim)`, `hidden.bias`) and `model.json`
//! (see [`ModelMeta`]).
//!
//! [`Encoder`]: super::Encoder

pub use super::data::{
    load_examples, normalize_text, parse_examples, stratified_folds, stratified_split,
    validation_count, Example,
};
pub use super::eval::{cross_validate, evaluate};
pub use super::metrics::{
    pick_threshold, threshold_curve, threshold_point, EvalReport, LabelStats, ThresholdPoint,
};
pub use super::model::{
    CacheStats, IntentModel, ModelMeta, Prediction, DEFAULT_CACHE_CAPACITY, HEAD_FILE,
    MAX_ENCODE_BATCH, META_FILE, MODEL_FORMAT, TOP_K,
};
pub use super::train::{train, train_on_embeddings, train_with_encoder, TrainOptions, TrainReport};
