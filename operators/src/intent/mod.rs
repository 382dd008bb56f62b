//! Intent recognition: sentence encoders (candle BERT) and the classifier on top of them.

pub mod backend;
pub mod classifier;
pub mod data;
pub mod encoder;
mod head;
pub mod metrics;
pub mod packed;

pub use classifier::{
    cross_validate, evaluate, train, train_on_embeddings, train_with_encoder, CacheStats, IntentModel,
    ModelMeta, Prediction, TrainOptions, TrainReport,
};
pub use data::{load_examples, normalize_text, Example};
pub use encoder::{resolve_model_dir, Encoder, ForwardPass};
pub use metrics::{pick_threshold, threshold_curve, threshold_point, EvalReport, LabelStats, ThresholdPoint};
