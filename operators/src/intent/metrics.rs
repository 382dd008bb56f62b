//! Classification metrics: accuracy, per-label precision/recall/F1, macro-F1, and the
//! accuracy/coverage trade-off of a confidence threshold (the hand-off threshold).

use super::model::Prediction;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Precision, recall and F1 of one label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelStats {
    /// Of the examples predicted as this label, the share that carry it (0 when none is).
    pub precision: f64,
    /// Of the examples that carry this label, the share predicted as it (0 when none does).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// How many gold examples carry this label.
    pub support: usize,
}

/// The scores of a set of predictions against gold labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Share of examples whose predicted label equals the gold one.
    pub accuracy: f64,
    /// Mean F1 over the labels present in the gold set.
    pub macro_f1: f64,
    /// Number of examples scored.
    pub n: usize,
    /// Stats for every label seen in the gold set or in the predictions.
    pub per_label: BTreeMap<String, LabelStats>,
}

impl EvalReport {
    /// Scores `predicted` against `gold` (same length, same order; extra items of the longer
    /// one are ignored). An empty input gives accuracy and macro-F1 of 0.
    pub fn compute<G: AsRef<str>, P: AsRef<str>>(gold: &[G], predicted: &[P]) -> EvalReport {
        #[derive(Default)]
        struct Counts {
            tp: usize,
            predicted: usize,
            support: usize,
        }
        let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
        let mut correct = 0;
        let n = gold.len().min(predicted.len());
        for (g, p) in gold.iter().zip(predicted) {
            let (g, p) = (g.as_ref(), p.as_ref());
            counts.entry(g.to_string()).or_default().support += 1;
            counts.entry(p.to_string()).or_default().predicted += 1;
            if g == p {
                correct += 1;
                counts.entry(g.to_string()).or_default().tp += 1;
            }
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let mut per_label = BTreeMap::new();
        let (mut f1_sum, mut gold_labels) = (0.0, 0usize);
        for (label, c) in counts {
            let precision = ratio(c.tp, c.predicted);
            let recall = ratio(c.tp, c.support);
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            if c.support > 0 {
                f1_sum += f1;
                gold_labels += 1;
            }
            per_label.insert(
                label,
                LabelStats {
                    precision,
                    recall,
                    f1,
                    support: c.support,
                },
            );
        }
        EvalReport {
            accuracy: ratio(correct, n),
            macro_f1: if gold_labels == 0 {
                0.0
            } else {
                f1_sum / gold_labels as f64
            },
            n,
            per_label,
        }
    }
}

/// What answering only the predictions with confidence ≥ a threshold gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdPoint {
    /// The confidence threshold.
    pub threshold: f32,
    /// Share of all predictions whose confidence is ≥ the threshold (answered, not handed off).
    pub coverage: f64,
    /// Accuracy among the answered predictions; 1.0 when none is answered (none is wrong).
    pub accuracy: f64,
    /// Number of answered predictions.
    pub answered: usize,
    /// Number of predictions in all.
    pub n: usize,
}

/// Accuracy and coverage of the predictions with confidence ≥ `threshold`. A gold label the
/// model does not know (an out-of-scope example) counts as wrong whenever it is answered, so
/// mixing in-scope and out-of-scope examples measures the hand-off trade-off directly.
pub fn threshold_point<G: AsRef<str>>(
    predictions: &[Prediction],
    gold: &[G],
    threshold: f32,
) -> ThresholdPoint {
    let n = predictions.len().min(gold.len());
    let (mut answered, mut correct) = (0usize, 0usize);
    for (p, g) in predictions.iter().zip(gold) {
        if p.confidence >= threshold {
            answered += 1;
            if p.label == g.as_ref() {
                correct += 1;
            }
        }
    }
    ThresholdPoint {
        threshold,
        coverage: if n == 0 {
            0.0
        } else {
            answered as f64 / n as f64
        },
        accuracy: if answered == 0 {
            1.0
        } else {
            correct as f64 / answered as f64
        },
        answered,
        n,
    }
}

/// [`threshold_point`] for each of `thresholds`.
pub fn threshold_curve<G: AsRef<str>>(
    predictions: &[Prediction],
    gold: &[G],
    thresholds: &[f32],
) -> Vec<ThresholdPoint> {
    thresholds
        .iter()
        .map(|&t| threshold_point(predictions, gold, t))
        .collect()
}

/// The lowest threshold (hence the highest coverage) among `points` whose answered accuracy
/// reaches `min_accuracy` with at least one prediction answered; `None` if none does.
pub fn pick_threshold(points: &[ThresholdPoint], min_accuracy: f64) -> Option<ThresholdPoint> {
    points
        .iter()
        .filter(|p| p.answered > 0 && p.accuracy >= min_accuracy)
        .min_by(|a, b| a.threshold.total_cmp(&b.threshold))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_over_gold_labels() {
        let r = EvalReport::compute(&["a", "a", "b", "b"], &["a", "b", "b", "c"]);
        assert_eq!(r.n, 4);
        assert!((r.accuracy - 0.5).abs() < 1e-12);
        // a: p=1 r=.5 f1=2/3; b: p=.5 r=.5 f1=.5; c not in gold.
        assert!((r.macro_f1 - (2.0 / 3.0 + 0.5) / 2.0).abs() < 1e-12);
        assert_eq!(r.per_label["c"].support, 0);
    }

    #[test]
    fn threshold_trade_off() {
        let p = |label: &str, confidence: f32| Prediction {
            label: label.into(),
            confidence,
            top: vec![],
            in_scope: None,
        };
        let preds = [p("a", 0.9), p("b", 0.4), p("a", 0.7)];
        let gold = ["a", "a", "oos"];
        let t = threshold_point(&preds, &gold, 0.5);
        assert_eq!(t.answered, 2);
        assert!((t.coverage - 2.0 / 3.0).abs() < 1e-12 && (t.accuracy - 0.5).abs() < 1e-12);
        let curve = threshold_curve(&preds, &gold, &[0.0, 0.5, 0.8, 0.95]);
        assert_eq!(pick_threshold(&curve, 1.0).map(|p| p.threshold), Some(0.8));
    }
}
