//! The bot's reply to a user turn while the bot owns the dialogue: answer, ask for a missing
//! slot (and complete the waiting answer when a later turn brings it), clarify, or hand over
//! to a human.

use crate::session::{SessionConfig, TurnAnalysis};
use std::collections::BTreeMap;
use switchboard_schemas::session::DialogueState;
use switchboard_schemas::{HandoffReason, Locale};

/// How the session decided to reply to a turn.
pub(crate) enum Reply {
    Answer { text: String, intent: String, confidence: f32 },
    Handoff { reason: HandoffReason, detail: String },
}

/// The console's one-line detail of a handoff.
fn handoff_detail(reason: HandoffReason, locale: Locale) -> String {
    match (reason, locale) {
        (HandoffReason::UserAsked, Locale::ZhCn) => "用户要求人工客服".into(),
        (HandoffReason::UserAsked, Locale::En) => "the user asked for a human agent".into(),
        (HandoffReason::LowConfidence, Locale::ZhCn) => "意图置信度低于阈值".into(),
        (HandoffReason::LowConfidence, Locale::En) => "intent confidence below the threshold".into(),
        (HandoffReason::RepeatedlyUnresolved, Locale::ZhCn) => "连续多轮未能解决".into(),
        (HandoffReason::RepeatedlyUnresolved, Locale::En) => "several unresolved turns in a row".into(),
        (HandoffReason::ProcessingFailed, _) => "processing failed".into(),
        (HandoffReason::Timeout, _) => "no answer in time".into(),
    }
}

/// The bot's reply to `turn`, updating the dialogue's unresolved count and waiting answer.
pub(crate) fn decide(config: &SessionConfig, state: &mut DialogueState, turn: &TurnAnalysis) -> Reply {
    let locale = turn.locale;
    let handoff = |state: &mut DialogueState, reason| {
        state.unresolved = 0;
        state.pending = None;
        Reply::Handoff { reason, detail: handoff_detail(reason, locale) }
    };
    if turn.asks_for_human {
        return handoff(state, HandoffReason::UserAsked);
    }
    // A pending answer waiting for slots is completed when the slots have arrived.
    if let Some((pending, intent)) = state.pending.clone() {
        if let Ok(text) = crate::render::render(&pending.template, &state.slots) {
            state.pending = None;
            state.unresolved = 0;
            return Reply::Answer { text, intent, confidence: turn.confidence.max(pending.score) };
        }
        // Still missing: a turn that supplies nothing new and has no strong intent of its own
        // asks again (and counts as unresolved).
        if turn.slots.is_empty() && turn.confidence < config.handoff_threshold {
            state.unresolved += 1;
            if state.unresolved >= config.max_unresolved {
                return handoff(state, HandoffReason::RepeatedlyUnresolved);
            }
            let missing = missing_slots(&pending.required_slots, &state.slots);
            let text = missing
                .first()
                .map(|s| crate::render::ask_for_slot(s, locale))
                .unwrap_or_else(|| crate::render::clarify(locale));
            return Reply::Answer { text, intent, confidence: turn.confidence };
        }
    }
    if turn.confidence < config.handoff_threshold {
        return handoff(state, HandoffReason::LowConfidence);
    }
    match &turn.retrieved {
        None => {
            state.unresolved += 1;
            if state.unresolved >= config.max_unresolved {
                return handoff(state, HandoffReason::RepeatedlyUnresolved);
            }
            Reply::Answer { text: crate::render::clarify(locale), intent: turn.intent.clone(), confidence: turn.confidence }
        }
        Some(found) => match crate::render::render(&found.template, &state.slots) {
            Ok(text) => {
                state.unresolved = 0;
                state.pending = None;
                Reply::Answer { text, intent: turn.intent.clone(), confidence: turn.confidence }
            }
            Err(_) => {
                let missing = missing_slots(&found.required_slots, &state.slots);
                state.pending = Some((found.clone(), turn.intent.clone()));
                let text = missing
                    .first()
                    .map(|s| crate::render::ask_for_slot(s, locale))
                    .unwrap_or_else(|| crate::render::clarify(locale));
                Reply::Answer { text, intent: turn.intent.clone(), confidence: turn.confidence }
            }
        },
    }
}

fn missing_slots(required: &[String], have: &BTreeMap<String, String>) -> Vec<String> {
    required.iter().filter(|s| !have.contains_key(*s)).cloned().collect()
}

/// Whether the text asks for a human agent (转人工, 人工客服, "agent", "human", …).
pub fn asks_for_human(text: &str) -> bool {
    const ZH: [&str; 8] = ["转人工", "人工客服", "人工服务", "找人工", "要人工", "真人客服", "找真人", "接人工"];
    if ZH.iter().any(|k| text.contains(k)) {
        return true;
    }
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty()).collect();
    let has = |w: &str| words.contains(&w);
    (has("agent") || has("human") || has("representative") || has("operator"))
        && !has("not")
        && !words.windows(2).any(|p| p == ["no", "agent"] || p == ["no", "human"])
        || lower.contains("real person")
}
