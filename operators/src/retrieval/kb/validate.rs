//! Checking one knowledge-base entry.

use switchboard_schemas::Locale;

use super::entry::{KbEntry, RawEntry, MAX_TEXT_CHARS};
use super::error::{KbProblem, Location, ProblemKind};
use crate::render::{is_valid_slot_name, template_slots};

/// Checks one entry; returns it when it has no problem.
pub(super) fn validate(
    raw: RawEntry,
    location: &Location,
    problems: &mut Vec<KbProblem>,
) -> Option<KbEntry> {
    let before = problems.len();
    let id = (!raw.id.trim().is_empty()).then(|| raw.id.clone());
    let mut report = |kind: ProblemKind| {
        problems.push(KbProblem {
            location: location.clone(),
            id: id.clone(),
            kind,
        });
    };
    fn too_long(field: String, text: &str, report: &mut dyn FnMut(ProblemKind)) {
        let chars = text.chars().count();
        if chars > MAX_TEXT_CHARS {
            report(ProblemKind::TooLong { field, chars });
        }
    }

    if raw.id.trim().is_empty() {
        report(ProblemKind::EmptyId);
    }
    too_long("id".into(), &raw.id, &mut report);
    let locale = Locale::parse(&raw.locale);
    if locale.is_none() {
        report(ProblemKind::UnknownLocale(raw.locale.clone()));
    }
    if raw.intent.trim().is_empty() {
        report(ProblemKind::EmptyIntent);
    }
    too_long("intent".into(), &raw.intent, &mut report);
    if raw.questions.is_empty() {
        report(ProblemKind::EmptyQuestions);
    }
    for (index, q) in raw.questions.iter().enumerate() {
        if q.trim().is_empty() {
            report(ProblemKind::BlankQuestion { index });
        }
        too_long(format!("question #{}", index + 1), q, &mut report);
    }
    if raw.answer.trim().is_empty() {
        report(ProblemKind::EmptyAnswer);
    }
    too_long("answer".into(), &raw.answer, &mut report);

    let mut listed: Vec<&str> = Vec::new();
    for slot in &raw.slots {
        if !is_valid_slot_name(slot) {
            report(ProblemKind::InvalidSlotName(slot.clone()));
        } else if listed.contains(&slot.as_str()) {
            report(ProblemKind::DuplicateSlot(slot.clone()));
        } else {
            listed.push(slot);
        }
    }
    match template_slots(&raw.answer) {
        Err(e) => report(ProblemKind::BadTemplate(e)),
        Ok(used) => {
            for name in &used {
                if !listed.contains(name) {
                    report(ProblemKind::UndeclaredSlot((*name).to_owned()));
                }
            }
            for name in &listed {
                if !used.contains(name) {
                    report(ProblemKind::UnusedSlot((*name).to_owned()));
                }
            }
        }
    }

    if problems.len() > before {
        return None;
    }
    Some(KbEntry {
        id: raw.id,
        locale: locale?,
        intent: raw.intent,
        questions: raw.questions,
        answer: raw.answer,
        slots: raw.slots,
    })
}
