//! What each version did with each user turn, and what changed between the two: the body of a
//! shadow report. Everything here is a pure function of the two event lists, so the same inputs
//! give the same report on any number of workers.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use switchboard_schemas::clarify::{CLARIFY_EN, CLARIFY_ZH};
use switchboard_schemas::{Event, EventBody, EventId};

/// What one version did with one user turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TurnView {
    /// The recognised intent.
    pub intent: Option<String>,
    /// Its calibrated confidence.
    pub confidence: Option<f32>,
    /// The knowledge-base entry retrieved (none when nothing passed the threshold).
    pub entry: Option<String>,
    /// `answer`, `clarify` (the clarifying question), `handoff`, `queued` (an agent owns the
    /// dialogue) or `none` (no reply event: a dead-lettered record).
    pub outcome: &'static str,
    /// The answer text, if the bot answered.
    pub answer: Option<String>,
    /// The handoff reason, if the turn was handed to a human.
    pub handoff: Option<String>,
}

impl TurnView {
    fn settle(&mut self) {
        self.outcome = if self.handoff.is_some() {
            "handoff"
        } else if let Some(text) = &self.answer {
            if text == CLARIFY_ZH || text == CLARIFY_EN { "clarify" } else { "answer" }
        } else if self.outcome == "queued" {
            "queued"
        } else {
            "none"
        };
    }
}

/// One user turn as both versions saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnDiff {
    /// The dialogue.
    pub dialogue_id: String,
    /// The client's message id.
    pub client_msg_id: String,
    /// When it was said (ms, record time).
    pub said_at: i64,
    /// The user's text, PII-masked as the topology stores it.
    pub text: String,
    /// What changed: `intent`, `answer`, `entry`, `handoff`, `outcome` (empty: nothing).
    pub changes: Vec<&'static str>,
    /// The current version's handling.
    pub current: TurnView,
    /// The candidate's.
    pub candidate: TurnView,
}

/// Counts of turns whose field changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Changed {
    /// Turns with any change below.
    pub turns: u64,
    /// Intent differs.
    pub intents: u64,
    /// Answer text differs (or one version answered and the other did not).
    pub answers: u64,
    /// Retrieved entry differs.
    pub entries: u64,
    /// Handed off in one version and not in the other.
    pub handoffs: u64,
    /// The kind of reply differs (answer, clarify, handoff, queued).
    pub outcomes: u64,
}

/// One version's rates over all compared turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rates {
    /// Share of turns handed to a human.
    pub handoff_rate: f64,
    /// Share of turns answered with the clarifying question.
    pub clarify_rate: f64,
    /// Share of turns answered (clarifying questions included).
    pub answer_rate: f64,
}

/// One cell of the intent confusion table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Confusion {
    /// The current version's intent (`-` when it recognised none).
    pub current: String,
    /// The candidate's.
    pub candidate: String,
    /// Turns.
    pub turns: u64,
}

/// The comparison of two runs over the same turns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// User turns compared.
    pub turns: u64,
    /// What changed, in turns.
    pub changed: Changed,
    /// The current version's rates.
    pub current: Rates,
    /// The candidate's rates.
    pub candidate: Rates,
    /// Every (current, candidate) intent pair with its turns, most frequent first.
    pub confusion: Vec<Confusion>,
    /// Every turn, in dialogue and time order.
    pub all: Vec<TurnDiff>,
}

/// One user turn as one run's outputs show it.
#[derive(Debug, Default)]
struct Seen {
    dialogue_id: String,
    client_msg_id: String,
    said_at: i64,
    /// The masked text (the stored `user_said`, else the intent or queue event's copy).
    text: String,
    view: TurnView,
}

/// Each user turn of one run, by the id of its `user_said` event.
fn views(events: &[Event]) -> BTreeMap<EventId, Seen> {
    let mut turns: BTreeMap<EventId, Seen> = BTreeMap::new();
    for e in events {
        if let EventBody::UserSaid(said) = &e.body {
            let seen = turns.entry(e.event_id).or_default();
            seen.dialogue_id = e.dialogue_id.clone();
            seen.client_msg_id = said.client_msg_id.clone();
            seen.said_at = e.occurred_at;
            seen.text = said.text.clone();
        }
    }
    for e in events {
        let (turn, client_msg_id) = match &e.body {
            EventBody::IntentRecognized(b) => (b.in_reply_to, &b.client_msg_id),
            EventBody::KnowledgeRetrieved(b) => (b.in_reply_to, &b.client_msg_id),
            EventBody::AnswerGenerated(b) => (b.in_reply_to, &b.client_msg_id),
            EventBody::HandoffRequested(b) => (b.in_reply_to, &b.client_msg_id),
            EventBody::TurnQueued(b) => (b.in_reply_to, &b.client_msg_id),
            _ => continue,
        };
        let seen = turns.entry(turn).or_default();
        if seen.dialogue_id.is_empty() {
            // A reply to a turn whose say is not among the outputs (e.g. a malformed record's).
            seen.dialogue_id = e.dialogue_id.clone();
            seen.client_msg_id = client_msg_id.clone();
            seen.said_at = e.turn_said_at().unwrap_or(e.occurred_at);
        }
        let view = &mut seen.view;
        match &e.body {
            EventBody::IntentRecognized(b) => {
                view.intent = Some(b.intent.clone());
                view.confidence = Some(b.confidence);
                if seen.text.is_empty() {
                    seen.text = b.masked_text.clone();
                }
            }
            EventBody::KnowledgeRetrieved(b) => view.entry = b.entry_id.clone(),
            EventBody::AnswerGenerated(b) => view.answer = Some(b.text.clone()),
            EventBody::HandoffRequested(b) => view.handoff = Some(b.reason.as_str().to_string()),
            EventBody::TurnQueued(b) => {
                view.outcome = "queued";
                if seen.text.is_empty() {
                    seen.text = b.masked_text.clone();
                }
            }
            _ => {}
        }
    }
    for seen in turns.values_mut() {
        seen.view.settle();
    }
    turns
}

/// What differs between two views of a turn.
fn changes(a: &TurnView, b: &TurnView) -> Vec<&'static str> {
    let mut out = Vec::new();
    if a.intent != b.intent {
        out.push("intent");
    }
    if a.answer != b.answer {
        out.push("answer");
    }
    if a.entry != b.entry {
        out.push("entry");
    }
    if a.handoff.is_some() != b.handoff.is_some() {
        out.push("handoff");
    }
    if a.outcome != b.outcome {
        out.push("outcome");
    }
    out
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn rates<'a>(views: impl Iterator<Item = &'a TurnView>, n: u64) -> Rates {
    let (mut handoffs, mut clarifies, mut answers) = (0, 0, 0);
    for v in views {
        match v.outcome {
            "handoff" => handoffs += 1,
            "clarify" => {
                clarifies += 1;
                answers += 1
            }
            "answer" => answers += 1,
            _ => {}
        }
    }
    Rates { handoff_rate: share(handoffs, n), clarify_rate: share(clarifies, n), answer_rate: share(answers, n) }
}

/// Compares the outputs of the current and the candidate version over the same input.
pub fn compare(current: &[Event], candidate: &[Event]) -> Comparison {
    let mut a = views(current);
    let mut b = views(candidate);
    let ids: BTreeSet<EventId> = a.keys().chain(b.keys()).copied().collect();
    let mut all = Vec::with_capacity(ids.len());
    let mut changed = Changed::default();
    let mut confusion: BTreeMap<(String, String), u64> = BTreeMap::new();
    for id in ids {
        let (sa, sb) = (a.remove(&id).unwrap_or_default(), b.remove(&id).unwrap_or_default());
        let pick = |x: String, y: String| if x.is_empty() { y } else { x };
        let diff = changes(&sa.view, &sb.view);
        for (what, counter) in [
            ("intent", &mut changed.intents),
            ("answer", &mut changed.answers),
            ("entry", &mut changed.entries),
            ("handoff", &mut changed.handoffs),
            ("outcome", &mut changed.outcomes),
        ] {
            if diff.contains(&what) {
                *counter += 1;
            }
        }
        if !diff.is_empty() {
            changed.turns += 1;
        }
        let label = |v: &TurnView| v.intent.clone().unwrap_or_else(|| "-".into());
        *confusion.entry((label(&sa.view), label(&sb.view))).or_default() += 1;
        all.push(TurnDiff {
            dialogue_id: pick(sa.dialogue_id, sb.dialogue_id),
            client_msg_id: pick(sa.client_msg_id, sb.client_msg_id),
            said_at: if sa.said_at != 0 { sa.said_at } else { sb.said_at },
            text: pick(sa.text, sb.text),
            changes: diff,
            current: sa.view,
            candidate: sb.view,
        });
    }
    all.sort_by(|x, y| (&x.dialogue_id, x.said_at, &x.client_msg_id).cmp(&(&y.dialogue_id, y.said_at, &y.client_msg_id)));
    let n = all.len() as u64;
    let mut confusion: Vec<Confusion> =
        confusion.into_iter().map(|((current, candidate), turns)| Confusion { current, candidate, turns }).collect();
    confusion.sort_by(|x, y| y.turns.cmp(&x.turns).then_with(|| (&x.current, &x.candidate).cmp(&(&y.current, &y.candidate))));
    Comparison {
        turns: n,
        current: rates(all.iter().map(|t| &t.current), n),
        candidate: rates(all.iter().map(|t| &t.candidate), n),
        changed,
        confusion,
        all,
    }
}

/// The versions that decided, as the outputs name them: intent model versions by locale and
/// knowledge-base snapshot versions (a run may name several when they changed under it).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Versions {
    /// Locale → model versions.
    pub models: BTreeMap<String, BTreeSet<String>>,
    /// Snapshot versions.
    pub kb: BTreeSet<String>,
}

/// The versions named by `events`.
pub fn versions(events: &[Event]) -> Versions {
    let locales: BTreeMap<EventId, String> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::UserSaid(s) => Some((e.event_id, s.locale.as_str().to_string())),
            _ => None,
        })
        .collect();
    let mut out = Versions::default();
    for e in events {
        match &e.body {
            EventBody::IntentRecognized(b) => {
                let locale = locales.get(&b.in_reply_to).cloned().unwrap_or_else(|| "?".into());
                out.models.entry(locale).or_default().insert(b.model_version.clone());
            }
            EventBody::KnowledgeRetrieved(b) => {
                out.kb.insert(b.kb_version.clone());
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
