//! Test doubles for running the graph without a broker, ClickHouse or model files.
//!
//! [`KeywordUnderstand`] is a deterministic [`Understand`]: it classifies by keyword, retrieves a
//! fixed answer per intent and reports fixed versions, so tests of the graph (sessions, slot
//! filling, handoffs, idle closes, dead letters, worker counts) run in process in milliseconds.
//! [`user_said_record`], [`event_record`] (agents' actions, timeout handoffs) and [`raw_record`]
//! make the source records such tests feed.

use std::sync::Mutex;
use switchboard_operators::understand::{model_component, Understand, Understanding, Versions, KB_COMPONENT};
use switchboard_schemas::session::RetrievedAnswer;
use switchboard_schemas::{encode, Event, EventBody, Locale, SourceRecord, UserSaid};

/// One keyword rule: a turn whose (masked) text contains `keyword` gets `intent` with
/// `confidence`, and the knowledge-base answer `template` when there is one.
#[derive(Debug, Clone)]
pub struct KeywordRule {
    /// The text to look for (case-insensitive for ASCII).
    pub keyword: &'static str,
    /// The intent it means.
    pub intent: &'static str,
    /// Its confidence.
    pub confidence: f32,
    /// The answer template (with `{slot}` placeholders), or none: retrieval finds nothing.
    pub template: Option<&'static str>,
}

/// The rules of [`KeywordUnderstand::demo`]: a return that needs the order number, a parcel
/// question that needs the tracking number, an answer without slots, an intent the knowledge
/// base has no answer for (the bot clarifies) and one it is unsure about (a handoff).
pub const DEMO_RULES: &[KeywordRule] = &[
    KeywordRule { keyword: "退货", intent: "return_goods", confidence: 0.95, template: Some("好的，订单 {order_id} 的退货申请已提交。") },
    KeywordRule { keyword: "return", intent: "return_goods", confidence: 0.95, template: Some("Return for order {order_id} is registered.") },
    KeywordRule { keyword: "快递", intent: "track_parcel", confidence: 0.9, template: Some("快递 {tracking_no} 正在派送中。") },
    KeywordRule { keyword: "parcel", intent: "track_parcel", confidence: 0.9, template: Some("Parcel {tracking_no} is out for delivery.") },
    KeywordRule { keyword: "营业时间", intent: "opening_hours", confidence: 0.92, template: Some("客服时间为每天 9:00–21:00。") },
    KeywordRule { keyword: "hours", intent: "opening_hours", confidence: 0.92, template: Some("We answer from 9:00 to 21:00 every day.") },
    KeywordRule { keyword: "发票", intent: "invoice", confidence: 0.8, template: None },
    KeywordRule { keyword: "invoice", intent: "invoice", confidence: 0.8, template: None },
    KeywordRule { keyword: "天气", intent: "out_of_scope", confidence: 0.3, template: None },
    KeywordRule { keyword: "weather", intent: "out_of_scope", confidence: 0.3, template: None },
];

/// A deterministic keyword understanding (see the module documentation). Text that matches no
/// rule is `unknown` with confidence 0.1 (a low-confidence handoff under the default threshold).
#[derive(Debug)]
pub struct KeywordUnderstand {
    rules: Vec<KeywordRule>,
    versions: Mutex<(String, String)>,
}

impl KeywordUnderstand {
    /// The [`DEMO_RULES`], model version `kw-1` and knowledge-base version `kb-1`.
    pub fn demo() -> Self {
        Self::new(DEMO_RULES.to_vec())
    }

    /// These rules, model version `kw-1` and knowledge-base version `kb-1`.
    pub fn new(rules: Vec<KeywordRule>) -> Self {
        KeywordUnderstand { rules, versions: Mutex::new(("kw-1".into(), "kb-1".into())) }
    }

    /// Announces new versions (what a retrained model or a new knowledge base would do).
    pub fn set_versions(&self, model: &str, kb: &str) {
        *self.versions.lock().unwrap_or_else(|p| p.into_inner()) = (model.into(), kb.into());
    }

    /// What the rules say of one text, with these versions.
    pub fn classify(&self, text: &str, model_version: &str, kb_version: &str) -> Understanding {
        let lower = text.to_lowercase();
        let rule = self.rules.iter().find(|r| lower.contains(&r.keyword.to_lowercase()));
        match rule {
            Some(rule) => Understanding {
                intent: rule.intent.into(),
                confidence: rule.confidence,
                model_version: model_version.into(),
                retrieved: rule.template.map(|template| RetrievedAnswer {
                    entry_id: format!("kw-{}", rule.intent),
                    score: 0.9,
                    template: template.into(),
                    required_slots: switchboard_operators::render::template_slots(template)
                        .map(|slots| slots.into_iter().map(String::from).collect())
                        .unwrap_or_default(),
                }),
                kb_version: kb_version.into(),
            },
            None => Understanding {
                intent: "unknown".into(),
                confidence: 0.1,
                model_version: model_version.into(),
                retrieved: None,
                kb_version: kb_version.into(),
            },
        }
    }
}

impl Understand for KeywordUnderstand {
    fn available_versions(&self) -> Versions {
        let (model, kb) = self.versions.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut versions = Versions::new();
        for locale in [Locale::ZhCn, Locale::En] {
            versions.insert(model_component(locale), model.clone());
        }
        versions.insert(KB_COMPONENT.into(), kb);
        versions
    }

    fn understand(
        &self,
        batch: &[(Locale, &str)],
        versions: &Versions,
    ) -> Result<Vec<Understanding>, switchboard_operators::Error> {
        let current = self.available_versions();
        let kb = versions.get(KB_COMPONENT).or_else(|| current.get(KB_COMPONENT)).cloned().unwrap_or_default();
        Ok(batch
            .iter()
            .map(|(locale, text)| {
                let component = model_component(*locale);
                let model = versions.get(&component).or_else(|| current.get(&component)).cloned().unwrap_or_default();
                self.classify(text, &model, &kb)
            })
            .collect())
    }
}

/// A `user.said` record at (`partition`, `offset`) with record time `at_ms`: the event a
/// gateway would produce for this say, with an id derived from its position (deterministic).
pub fn user_said_record(partition: i32, offset: i64, at_ms: i64, dialogue_id: &str, locale: Locale, text: &str) -> SourceRecord {
    let body = EventBody::UserSaid(UserSaid {
        client_msg_id: format!("m-{partition}-{offset}"),
        user_id: format!("u-{dialogue_id}"),
        locale,
        text: text.into(),
    });
    event_record(partition, offset, at_ms, dialogue_id, body)
}

/// A `user.said` record at (`partition`, `offset`) with record time `at_ms` holding an event
/// with this body (an agent's action, a gateway's timeout handoff, …), with an id derived from
/// its position (deterministic).
pub fn event_record(partition: i32, offset: i64, at_ms: i64, dialogue_id: &str, body: EventBody) -> SourceRecord {
    raw_record(partition, offset, at_ms, Some(dialogue_id), encode(&record_event(partition, offset, at_ms, dialogue_id, body)))
}

/// The event [`event_record`] holds.
pub fn record_event(partition: i32, offset: i64, at_ms: i64, dialogue_id: &str, body: EventBody) -> Event {
    let mut event = Event::new(dialogue_id, at_ms, body);
    let mut id = [0u8; 16];
    id[..6].copy_from_slice(&at_ms.max(0).to_be_bytes()[2..]);
    id[6] = 0x70;
    id[8] = 0x80;
    id[10..12].copy_from_slice(&(partition as u16).to_be_bytes());
    id[12..16].copy_from_slice(&(offset as u32).to_be_bytes());
    event.event_id = switchboard_schemas::EventId::from_bytes(id);
    event
}

/// A `user.said` record with these raw value bytes (for malformed input).
pub fn raw_record(partition: i32, offset: i64, at_ms: i64, key: Option<&str>, value: Vec<u8>) -> SourceRecord {
    SourceRecord {
        topic: switchboard_schemas::topics::USER_SAID.into(),
        partition,
        offset,
        timestamp_ms: at_ms,
        key: key.map(String::from),
        value,
    }
}
