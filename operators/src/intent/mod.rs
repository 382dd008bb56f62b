//! Intent recognition: sentence encoders (candle BERT) and the classifier on top of them.
//!
//! * Inference: [`encoder`] (sentence embeddings), [`IntentModel`] (a trained head over an
//!   encoder, with a prediction cache) and [`backend`] (where inference runs, with hot reload).
//! * Training: [`train`] and its variants, and the scoring of models ([`cross_validate`],
//!   [`evaluate`], [`metrics`]) on the labelled examples of [`data`].
//!
//! [`classifier`] keeps the historical paths of all of them.

pub mod backend;
pub mod classifier;
pub mod data;
pub mod encoder;
mod eval;
mod fit;
pub mod finetune;
mod head;
pub mod metrics;
mod model;
pub mod scope;
mod trainable_bert;
pub mod packed;
mod train;

pub use data::{load_examples, normalize_text, Example};
pub use encoder::{resolve_model_dir, Encoder, ForwardPass};
pub use eval::{cross_validate, cross_validate_fine_tuned, evaluate};
pub use finetune::{fine_tune, FineTuneOptions, FineTuneReport};
pub use metrics::{
    pick_threshold, threshold_curve, threshold_point, EvalReport, LabelStats, ThresholdPoint,
};
pub use model::{CacheStats, IntentModel, ModelMeta, Prediction};
pub use train::{
    train, train_fine_tuned, train_on_embeddings, train_with_encoder, training_version, TrainOptions, TrainReport,
};
