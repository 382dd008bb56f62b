//! Understanding a batch of turns: the intent classifier and the knowledge retrieval behind
//! one interface, so the graph can batch a whole epoch and tests can use a small double.

use crate::session::RetrievedAnswer;
use switchboard_schemas::Locale;

/// What was understood of one turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Understanding {
    /// Winning intent label.
    pub intent: String,
    /// Calibrated confidence.
    pub confidence: f32,
    /// The classifier version that decided.
    pub model_version: String,
    /// The knowledge-base answer, if one passed the retrieval threshold.
    pub retrieved: Option<RetrievedAnswer>,
    /// The knowledge-base snapshot searched.
    pub kb_version: String,
}

/// Classifies and retrieves for a batch of (locale, PII-masked text) turns.
pub trait Understand: Send + Sync {
    /// One [`Understanding`] per input, in order. Confidences and scores are rounded to four
    /// decimals so that results do not depend on how turns were batched.
    fn understand(&self, batch: &[(Locale, &str)]) -> Result<Vec<Understanding>, String>;
}

/// Rounds a score to four decimals (batched inference differs in the last bits).
pub fn round_score(x: f32) -> f32 {
    (x * 10_000.0).round() / 10_000.0
}
