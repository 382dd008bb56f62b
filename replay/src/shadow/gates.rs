//! Rollout gates: `--fail-if 'changed_answers > 2%'`, `--fail-if 'handoff_rate_delta > 0.5pp'`.
//! A gate is `METRIC OP VALUE`: the metric a name of [`METRICS`], the operator one of
//! `> >= < <= == !=`, the value a number; shares (`changed_*`, `*_rate`) take `%` or a fraction,
//! deltas of rates (`*_delta`) are in percentage points (`pp` or a bare number), `turns` is a
//! count. The gate fails when the comparison holds.

use super::compare::Comparison;
use crate::{Error, Result};
use serde::Serialize;

/// What a metric measures, and so which units its value takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// A share of the turns (0..1): `2%` or `0.02`.
    Share,
    /// A difference of two shares in percentage points: `0.5pp` or `0.5`.
    Points,
    /// A number of turns.
    Count,
}

/// Every metric a gate can name, with its unit and what it means.
pub const METRICS: [(&str, &str); 11] = [
    ("changed_turns", "share of turns with any change"),
    ("changed_intents", "share of turns whose intent changed"),
    ("changed_answers", "share of turns whose answer text changed"),
    ("changed_entries", "share of turns whose retrieved knowledge-base entry changed"),
    ("changed_handoffs", "share of turns handed off in one version only"),
    ("changed_outcomes", "share of turns whose kind of reply changed"),
    ("handoff_rate", "the candidate's share of turns handed off"),
    ("clarify_rate", "the candidate's share of turns answered with the clarifying question"),
    ("handoff_rate_delta", "candidate minus current handoff rate, percentage points"),
    ("clarify_rate_delta", "candidate minus current clarify rate, percentage points"),
    ("turns", "user turns compared"),
];

fn unit_of(metric: &str) -> Option<Unit> {
    if !METRICS.iter().any(|(m, _)| *m == metric) {
        return None;
    }
    Some(if metric == "turns" {
        Unit::Count
    } else if metric.ends_with("_delta") {
        Unit::Points
    } else {
        Unit::Share
    })
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        // Compared at a precision far below any unit a gate can name, so that 2% of 50 turns
        // (one turn) equals `2%` however the shares were rounded.
        let (a, b) = ((a * 1e9).round(), (b * 1e9).round());
        match self {
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// A parsed `--fail-if` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// The expression as given.
    pub expr: String,
    metric: String,
    op: Op,
    /// The threshold in the metric's own scale (a share as a fraction, points as points).
    threshold: f64,
}

/// A gate's verdict on a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The expression as given.
    pub gate: String,
    /// The metric's value, written in the gate's unit (`5.26%`, `+1.2pp`, `40`).
    pub value: String,
    /// Whether the gate failed (its comparison holds).
    pub failed: bool,
}

fn bad(expr: &str, why: &str) -> Error {
    let names: Vec<&str> = METRICS.iter().map(|(m, _)| *m).collect();
    Error::Usage(format!("--fail-if `{expr}`: {why} (a gate is METRIC OP VALUE, e.g. `changed_answers > 2%` or `handoff_rate_delta > 0.5pp`; metrics: {})", names.join(", ")))
}

impl Gate {
    /// Parses one `--fail-if` expression; what cannot be a gate is [`Error::Usage`].
    pub fn parse(expr: &str) -> Result<Gate> {
        let text = expr.trim();
        let at = text.find(['<', '>', '=', '!']).ok_or_else(|| bad(expr, "no comparison operator"))?;
        let metric = text[..at].trim();
        let rest = &text[at..];
        let (op, rest) = [(">=", Op::Ge), ("<=", Op::Le), ("==", Op::Eq), ("!=", Op::Ne), (">", Op::Gt), ("<", Op::Lt)]
            .into_iter()
            .find_map(|(s, op)| rest.strip_prefix(s).map(|r| (op, r)))
            .ok_or_else(|| bad(expr, "unknown comparison operator"))?;
        let unit = unit_of(metric).ok_or_else(|| bad(expr, &format!("unknown metric `{metric}`")))?;
        let value = rest.trim();
        let (number, suffix) = match value.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+')) {
            Some(i) => (value[..i].trim(), value[i..].trim()),
            None => (value, ""),
        };
        let number: f64 = number.parse().map_err(|_| bad(expr, &format!("`{value}` is not a number")))?;
        if !number.is_finite() {
            return Err(bad(expr, "the value must be finite"));
        }
        let threshold = match (unit, suffix) {
            (Unit::Share, "%") => number / 100.0,
            (Unit::Share, "") => number,
            (Unit::Points, "pp" | "") => number,
            (Unit::Count, "") => number,
            (Unit::Share, _) => return Err(bad(expr, &format!("{metric} is a share of the turns: write it as N% or a fraction"))),
            (Unit::Points, "%") => {
                return Err(bad(expr, &format!("{metric} is a difference of rates in percentage points: write `pp`, not `%`")))
            }
            (Unit::Points, _) => return Err(bad(expr, &format!("{metric} is in percentage points: write N or Npp"))),
            (Unit::Count, _) => return Err(bad(expr, &format!("{metric} is a number of turns: no unit"))),
        };
        Ok(Gate { expr: expr.trim().to_string(), metric: metric.to_string(), op, threshold })
    }

    /// The metric's value on `c`, in the metric's own scale.
    fn value(&self, c: &Comparison) -> f64 {
        let share = |n: u64| if c.turns == 0 { 0.0 } else { n as f64 / c.turns as f64 };
        match self.metric.as_str() {
            "changed_turns" => share(c.changed.turns),
            "changed_intents" => share(c.changed.intents),
            "changed_answers" => share(c.changed.answers),
            "changed_entries" => share(c.changed.entries),
            "changed_handoffs" => share(c.changed.handoffs),
            "changed_outcomes" => share(c.changed.outcomes),
            "handoff_rate" => c.candidate.handoff_rate,
            "clarify_rate" => c.candidate.clarify_rate,
            "handoff_rate_delta" => (c.candidate.handoff_rate - c.current.handoff_rate) * 100.0,
            "clarify_rate_delta" => (c.candidate.clarify_rate - c.current.clarify_rate) * 100.0,
            _ => c.turns as f64,
        }
    }

    /// Evaluates the gate on a comparison.
    pub fn check(&self, c: &Comparison) -> Verdict {
        let value = self.value(c);
        let shown = match unit_of(&self.metric) {
            Some(Unit::Share) => format!("{:.2}%", value * 100.0),
            Some(Unit::Points) => format!("{value:+.2}pp"),
            _ => format!("{value}"),
        };
        Verdict { gate: self.expr.clone(), value: format!("{} = {shown}", self.metric), failed: self.op.holds(value, self.threshold) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::compare::{Changed, Rates};

    fn comparison(turns: u64, answers: u64, handoff_before: f64, handoff_after: f64) -> Comparison {
        Comparison {
            turns,
            changed: Changed { turns: answers, answers, ..Default::default() },
            current: Rates { handoff_rate: handoff_before, ..Default::default() },
            candidate: Rates { handoff_rate: handoff_after, ..Default::default() },
            confusion: Vec::new(),
            all: Vec::new(),
        }
    }

    #[test]
    fn shares_take_percent_or_fractions_and_fail_when_the_comparison_holds() {
        let c = comparison(50, 2, 0.1, 0.1);
        assert!(Gate::parse("changed_answers > 2%").unwrap().check(&c).failed, "4% > 2%");
        assert!(!Gate::parse("changed_answers>5%").unwrap().check(&c).failed);
        assert!(Gate::parse("changed_answers >= 0.04").unwrap().check(&c).failed, "exactly 4%");
        assert!(!Gate::parse("changed_answers > 4%").unwrap().check(&c).failed, "exactly 4% is not above 4%");
        assert_eq!(Gate::parse("changed_answers > 2%").unwrap().check(&c).value, "changed_answers = 4.00%");
        assert!(Gate::parse("turns < 100").unwrap().check(&c).failed);
    }

    #[test]
    fn deltas_are_percentage_points() {
        let c = comparison(100, 0, 0.10, 0.12);
        let v = Gate::parse("handoff_rate_delta > 0.5pp").unwrap().check(&c);
        assert!(v.failed);
        assert_eq!(v.value, "handoff_rate_delta = +2.00pp");
        assert!(!Gate::parse("handoff_rate_delta > 2.5").unwrap().check(&c).failed);
        assert!(Gate::parse("handoff_rate_delta < -1pp").unwrap().check(&comparison(100, 0, 0.12, 0.10)).failed);
    }

    #[test]
    fn what_is_not_a_gate_is_a_usage_error_that_says_why() {
        for (expr, why) in [
            ("changed_answers", "no comparison operator"),
            ("answers > 2%", "unknown metric `answers`"),
            ("changed_answers > lots", "is not a number"),
            ("changed_answers > 2pp", "share of the turns"),
            ("handoff_rate_delta > 0.5%", "percentage points"),
            ("turns > 5%", "number of turns"),
            ("changed_answers => 2%", "unknown comparison operator"),
        ] {
            let e = Gate::parse(expr).unwrap_err();
            assert!(matches!(e, Error::Usage(_)), "{expr}");
            assert!(e.to_string().contains(why), "{expr}: {e}");
        }
    }
}
