//! The agents' desk of one gateway instance: the agent connections it holds and the queue as
//! the `bot.said` stream tells it (dialogues waiting for an agent, dialogues with an agent).
//!
//! Every gateway reads every `bot.said` partition, so every instance keeps the same queue; an
//! instance that starts reads the open queue from ClickHouse (see `socket::initial_queue`) before
//! it follows the stream. Decisions are never made here: the session operator decides who owns a
//! dialogue, and the desk only reports what it decided.

use lru::LruCache;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use switchboard_schemas::ownership::Owner;
use switchboard_schemas::{Event, EventBody, EventId};
use tokio::sync::mpsc;

/// One agent connection's outbox (JSON text frames).
pub(crate) type AgentOutbox = mpsc::UnboundedSender<String>;

/// A dialogue waiting for an agent.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Waiting {
    /// The dialogue.
    pub(crate) dialogue_id: String,
    /// Why it was handed off (`user_asked`, `low_confidence`, `timeout`, …).
    pub(crate) reason: String,
    /// Since when (ms since the epoch, event time).
    pub(crate) since_ms: i64,
    /// The dialogue's language, when known.
    pub(crate) locale: Option<String>,
    /// The intent of its last turn, when known.
    pub(crate) last_intent: Option<String>,
    /// The slots collected so far, when known.
    pub(crate) slots: BTreeMap<String, String>,
}

/// A dialogue an agent owns.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Owned {
    /// The dialogue.
    pub(crate) dialogue_id: String,
    /// The owning agent.
    pub(crate) agent: String,
    /// Since when (ms since the epoch, event time).
    pub(crate) since_ms: i64,
}

struct Conn {
    agent: String,
    tx: AgentOutbox,
}

struct State {
    conns: HashMap<u64, Conn>,
    waiting: BTreeMap<String, Waiting>,
    owned: BTreeMap<String, Owned>,
    seen: LruCache<EventId, ()>,
}

/// The desk.
pub(crate) struct Desk {
    state: Mutex<State>,
}

impl Default for Desk {
    fn default() -> Self {
        Desk {
            state: Mutex::new(State {
                conns: HashMap::new(),
                waiting: BTreeMap::new(),
                owned: BTreeMap::new(),
                seen: LruCache::new(NonZeroUsize::new(50_000).unwrap_or(NonZeroUsize::MIN)),
            }),
        }
    }
}

impl Desk {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an agent connection.
    pub(crate) fn join(&self, id: u64, agent: &str, tx: AgentOutbox) {
        self.lock().conns.insert(id, Conn { agent: agent.to_string(), tx });
    }

    /// Forgets an agent connection.
    pub(crate) fn leave(&self, id: u64) {
        self.lock().conns.remove(&id);
    }

    /// Whether `agent` has a connection on this instance.
    pub(crate) fn is_online(&self, agent: &str) -> bool {
        self.lock().conns.values().any(|c| c.agent == agent)
    }

    /// Sends `frame` to every connection of `agent` on this instance.
    pub(crate) fn send_to(&self, agent: &str, frame: &str) {
        for c in self.lock().conns.values().filter(|c| c.agent == agent) {
            let _ = c.tx.send(frame.to_string());
        }
    }

    /// Agent connections open on this instance.
    pub(crate) fn online(&self) -> usize {
        self.lock().conns.len()
    }

    /// Adds what ClickHouse says is open, for entries the stream has not told of yet.
    pub(crate) fn seed(&self, waiting: Vec<Waiting>, owned: Vec<Owned>) {
        let mut s = self.lock();
        for w in waiting {
            if !s.owned.contains_key(&w.dialogue_id) {
                s.waiting.entry(w.dialogue_id.clone()).or_insert(w);
            }
        }
        for o in owned {
            if !s.waiting.contains_key(&o.dialogue_id) {
                s.owned.entry(o.dialogue_id.clone()).or_insert(o);
            }
        }
    }

    /// Fills in what a waiting entry lacks (locale, last intent, slots).
    pub(crate) fn enrich(&self, dialogue_id: &str, locale: Option<String>, last_intent: Option<String>, slots: BTreeMap<String, String>) {
        let mut s = self.lock();
        if let Some(w) = s.waiting.get_mut(dialogue_id) {
            w.locale = w.locale.take().or(locale);
            w.last_intent = w.last_intent.take().or(last_intent);
            if w.slots.is_empty() {
                w.slots = slots;
            }
        }
        let frame = queue_frame(&s, crate::hub::now_ms());
        broadcast(&s, &frame);
    }

    /// The newest waiting dialogues (at most `limit`) whose details were not looked up yet.
    pub(crate) fn unenriched(&self, limit: usize) -> Vec<String> {
        let s = self.lock();
        let mut missing: Vec<(i64, String)> = s
            .waiting
            .values()
            .filter(|w| w.locale.is_none() && w.last_intent.is_none())
            .map(|w| (w.since_ms, w.dialogue_id.clone()))
            .collect();
        missing.sort_unstable_by(|a, b| b.cmp(a));
        missing.into_iter().take(limit).map(|(_, d)| d).collect()
    }

    /// The `queue` frame now.
    pub(crate) fn queue(&self) -> String {
        queue_frame(&self.lock(), crate::hub::now_ms())
    }

    /// Takes in one `bot.said` event: updates the queue and tells the agents. Returns whether
    /// a waiting entry was added (the caller then looks up its details).
    pub(crate) fn observe(&self, event: &Event) -> bool {
        let mut s = self.lock();
        if !matches!(
            event.body,
            EventBody::OwnershipChanged(_) | EventBody::TurnQueued(_) | EventBody::AgentSaid(_) | EventBody::AgentActionRefused(_)
        ) {
            return false;
        }
        if s.seen.put(event.event_id, ()).is_some() {
            return false;
        }
        let d = event.dialogue_id.clone();
        let mut added = false;
        match &event.body {
            EventBody::OwnershipChanged(o) => {
                match (o.owner, &o.agent) {
                    (Owner::Waiting, _) => {
                        s.owned.remove(&d);
                        let reason = o.handoff_reason.map_or("handoff", |r| r.as_str()).to_string();
                        let w = Waiting {
                            dialogue_id: d.clone(),
                            reason,
                            since_ms: event.occurred_at,
                            locale: None,
                            last_intent: None,
                            slots: BTreeMap::new(),
                        };
                        s.waiting.insert(d.clone(), w);
                        added = true;
                    }
                    (Owner::Agent, Some(agent)) => {
                        s.waiting.remove(&d);
                        s.owned.insert(d.clone(), Owned { dialogue_id: d.clone(), agent: agent.clone(), since_ms: event.occurred_at });
                        let claimed = serde_json::json!({"type": "claimed", "dialogue_id": d, "agent": agent});
                        broadcast(&s, &claimed.to_string());
                    }
                    _ => {
                        s.waiting.remove(&d);
                        s.owned.remove(&d);
                        let released = serde_json::json!({"type": "released", "dialogue_id": d, "reason": o.reason.as_str()});
                        broadcast(&s, &released.to_string());
                    }
                }
                let frame = queue_frame(&s, crate::hub::now_ms());
                broadcast(&s, &frame);
            }
            EventBody::TurnQueued(q) => {
                let frame = serde_json::json!({
                    "type": "user_said", "dialogue_id": d, "text": q.masked_text,
                    "client_msg_id": q.client_msg_id, "event_id": event.event_id.to_string(),
                    "occurred_at": event.occurred_at,
                });
                broadcast(&s, &frame.to_string());
            }
            EventBody::AgentSaid(a) => {
                let frame = serde_json::json!({
                    "type": "agent_said", "dialogue_id": d, "agent": a.agent, "text": a.text,
                    "client_msg_id": a.client_msg_id, "event_id": event.event_id.to_string(),
                    "occurred_at": event.occurred_at,
                });
                broadcast(&s, &frame.to_string());
            }
            EventBody::AgentActionRefused(r) => {
                let message = match r.reason.as_str() {
                    "already_claimed" => format!("already claimed by {}", r.owner.as_deref().unwrap_or("another agent")),
                    "not_owner" => "you do not own this dialogue".to_string(),
                    _ => "the dialogue is not waiting for an agent".to_string(),
                };
                let frame = serde_json::json!({
                    "type": "error", "code": r.reason.as_str(), "message": message,
                    "dialogue_id": d, "action": r.action.as_str(),
                });
                let text = frame.to_string();
                drop(s);
                self.send_to(&r.agent, &text);
                return false;
            }
            _ => {}
        }
        added
    }
}

fn broadcast(s: &State, frame: &str) {
    for c in s.conns.values() {
        let _ = c.tx.send(frame.to_string());
    }
}

fn queue_frame(s: &State, now_ms: i64) -> String {
    let waiting: Vec<serde_json::Value> = s
        .waiting
        .values()
        .map(|w| {
            let mut v = serde_json::to_value(w).unwrap_or_default();
            v["waiting_ms"] = serde_json::json!((now_ms - w.since_ms).max(0));
            v
        })
        .collect();
    let with_agents: Vec<&Owned> = s.owned.values().collect();
    serde_json::json!({"type": "queue", "waiting": waiting, "with_agents": with_agents}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::fixtures::changed;
    use switchboard_schemas::ownership::OwnershipReason;


    #[test]
    fn the_queue_follows_the_sessions_decisions() {
        let desk = Desk::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        desk.join(1, "alice", tx);
        let waiting = changed("d1", Owner::Waiting, None, OwnershipReason::Handoff);
        assert!(desk.observe(&waiting));
        assert!(!desk.observe(&waiting), "a duplicate record changes nothing");
        let q: serde_json::Value = serde_json::from_str(&rx.try_recv().unwrap()).unwrap();
        assert_eq!(q["waiting"][0]["dialogue_id"], "d1");
        assert_eq!(q["waiting"][0]["reason"], "user_asked");
        desk.observe(&changed("d1", Owner::Agent, Some("bob"), OwnershipReason::Claimed));
        let claimed: serde_json::Value = serde_json::from_str(&rx.try_recv().unwrap()).unwrap();
        assert_eq!(claimed, serde_json::json!({"type":"claimed","dialogue_id":"d1","agent":"bob"}));
        let q: serde_json::Value = serde_json::from_str(&rx.try_recv().unwrap()).unwrap();
        assert_eq!(q["waiting"], serde_json::json!([]));
        assert_eq!(q["with_agents"][0]["agent"], "bob");
        desk.observe(&changed("d1", Owner::Bot, None, OwnershipReason::Returned));
        let released: serde_json::Value = serde_json::from_str(&rx.try_recv().unwrap()).unwrap();
        assert_eq!(released["type"], "released");
        desk.leave(1);
        assert_eq!(desk.online(), 0);
    }
}
