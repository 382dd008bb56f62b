//! Fill-gaps backfill: of what a replay produced, only the outputs of turns the live run has no
//! outcome for (a turn that was skipped, dead-lettered or lost) are written into the live
//! database. Everything the live run recorded stays exactly as it is: no event id it holds is
//! written again (so no row of it is replaced, not even by an equal one), and no turn it
//! answered gets a second outcome, even where the replay, starting without the live session
//! state, decided differently.

use crate::clickhouse::ClickHouseSink;
use crate::Result;
use std::collections::HashSet;
use switchboard_schemas::{Event, EventBody};
use uuid::Uuid;

/// Most dialogue ids in one lookup query (each id is a literal in the query text).
const DIALOGUES_PER_QUERY: usize = 2_000;

/// What the live database holds for some dialogues.
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    /// Every event id recorded.
    pub events: HashSet<Uuid>,
    /// Every turn with an outcome: the `in_reply_to` of every recorded event that has one.
    pub answered: HashSet<Uuid>,
}

/// The input an output of the graph belongs to: the turn it answers (`in_reply_to`), or the
/// event itself for an input recorded as it came (a `user_said`, an agent's action) and for
/// events no turn caused (a dialogue's close, a dead letter).
pub fn cause(event: &Event) -> Uuid {
    let in_reply_to = match &event.body {
        EventBody::IntentRecognized(b) => Some(b.in_reply_to),
        EventBody::KnowledgeRetrieved(b) => Some(b.in_reply_to),
        EventBody::AnswerGenerated(b) => Some(b.in_reply_to),
        EventBody::HandoffRequested(b) => Some(b.in_reply_to),
        EventBody::OwnershipChanged(b) => Some(b.in_reply_to),
        EventBody::TurnQueued(b) => Some(b.in_reply_to),
        EventBody::AgentSaid(b) => Some(b.in_reply_to),
        EventBody::AgentActionRefused(b) => Some(b.in_reply_to),
        EventBody::UserSaid(_)
        | EventBody::DialogueClosed(_)
        | EventBody::DeadLetter(_)
        | EventBody::AgentClaim(_)
        | EventBody::AgentMessage(_)
        | EventBody::AgentReturn(_)
        | EventBody::AgentClose(_) => None,
    };
    match in_reply_to {
        Some(id) if !id.0.is_nil() => id.0,
        _ => event.event_id.0,
    }
}

/// The events of `events` that fill a gap of `recorded`: not recorded themselves, and
/// belonging to an input the live run has no outcome for.
pub fn gaps_only(events: Vec<Event>, recorded: &Recorded) -> Vec<Event> {
    events
        .into_iter()
        .filter(|e| !recorded.events.contains(&e.event_id.0) && !recorded.answered.contains(&cause(e)))
        .collect()
}

impl ClickHouseSink {
    /// What the `events` table holds for `dialogues` (rows not yet merged included: a row is
    /// recorded as soon as its insert was acknowledged).
    pub async fn recorded(&self, dialogues: &[String]) -> Result<Recorded> {
        let mut recorded = Recorded::default();
        for chunk in dialogues.chunks(DIALOGUES_PER_QUERY) {
            let rows = self
                .client()
                .query("SELECT event_id, in_reply_to FROM events WHERE dialogue_id IN (SELECT arrayJoin(?))")
                .bind(chunk)
                .fetch_all::<RecordedRow>()
                .await
                .map_err(|e| self.error(e))?;
            for row in rows {
                recorded.events.insert(row.event_id);
                if !row.in_reply_to.is_nil() {
                    recorded.answered.insert(row.in_reply_to);
                }
            }
        }
        Ok(recorded)
    }
}

#[derive(Debug, ::clickhouse::Row, serde::Deserialize)]
struct RecordedRow {
    #[serde(with = "::clickhouse::serde::uuid")]
    event_id: Uuid,
    #[serde(with = "::clickhouse::serde::uuid")]
    in_reply_to: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_schemas::{AnswerGenerated, EventId, Locale, UserSaid};

    fn said(dialogue: &str, msg: &str) -> Event {
        Event::new(
            dialogue,
            1_000,
            EventBody::UserSaid(UserSaid { client_msg_id: msg.into(), user_id: "u".into(), locale: Locale::ZhCn, text: "退货".into() }),
        )
    }

    fn answer(to: &Event, text: &str) -> Event {
        Event::caused_by(
            to,
            text,
            1_001,
            EventBody::AnswerGenerated(AnswerGenerated {
                in_reply_to: to.event_id,
                client_msg_id: "m".into(),
                text: text.into(),
                intent: "return_goods".into(),
                confidence: 0.9,
                latency_ms: 1,
            }),
        )
    }

    #[test]
    fn only_turns_without_an_outcome_are_written_and_nothing_recorded_is_rewritten() {
        let answered = said("d1", "m1");
        let live_answer = answer(&answered, "live");
        let gap = said("d1", "m2");
        let recorded = Recorded {
            events: [answered.event_id.0, live_answer.event_id.0].into_iter().collect(),
            answered: [answered.event_id.0].into_iter().collect(),
        };
        // The replay decided differently for the answered turn (another role, another id):
        // still not written, the turn has its outcome. The gap turn and its answer are.
        let replayed = vec![answered.clone(), answer(&answered, "replay"), live_answer.clone(), gap.clone(), answer(&gap, "replay")];
        let written = gaps_only(replayed, &recorded);
        let ids: Vec<EventId> = written.iter().map(|e| e.event_id).collect();
        assert_eq!(ids, vec![gap.event_id, answer(&gap, "replay").event_id]);
        assert_eq!(cause(&written[1]), gap.event_id.0);
    }
}
