//! Prometheus metrics, served as text at `GET /metrics`.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A label set with one `reason` (or `outcome`) label.
type Reason = [(&'static str, &'static str); 1];

/// The gateway's metrics (all prefixed `switchboard_gateway_`).
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// Connections refused with `server_busy`.
    pub connections_refused: Counter,
    /// Dialogues held (connected or waiting for a resume).
    pub dialogues: Gauge,
    /// Says produced or accepted and not yet replied to (this instance).
    pub says_pending: Gauge,
    /// Says the broker acknowledged.
    pub says_accepted: Counter,
    /// Client frames refused with an error, by error code.
    says_rejected: Family<Reason, Counter>,
    /// Retried says (same dialogue and client_msg_id) that were not produced again.
    pub says_deduplicated: Counter,
    /// Answer frames delivered to a connection.
    pub answers_delivered: Counter,
    /// Handoff frames delivered to a connection, by reason.
    handoffs_delivered: Family<Reason, Counter>,
    /// Says that got no answer within the answer timeout.
    pub answer_timeouts: Counter,
    /// bot.said records, by what happened to them.
    bot_said_records: Family<Reason, Counter>,
    /// Time from produce to broker acknowledgement, in seconds.
    pub produce_latency: Histogram,
    reply_received_ms: Histogram,
    /// Admin logins, by outcome (accepted, refused, throttled).
    logins: Family<Reason, Counter>,
    /// Hellos and connections refused by an access rule, by reason.
    access_refused: Family<Reason, Counter>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard_gateway");
        let connections = Gauge::default();
        registry.register("connections", "Open WebSocket connections", connections.clone());
        let connections_refused = Counter::default();
        registry.register("connections_refused", "Connections refused with server_busy", connections_refused.clone());
        let dialogues = Gauge::default();
        registry.register("dialogues", "Dialogues held (connected or waiting for a resume)", dialogues.clone());
        let says_pending = Gauge::default();
        registry.register(
            "says_pending",
            "Says handed to the broker and not yet replied to (admission control refuses new ones above the limit)",
            says_pending.clone(),
        );
        let says_accepted = Counter::default();
        registry.register("says_accepted", "Says acknowledged by the broker", says_accepted.clone());
        let says_rejected = Family::<Reason, Counter>::default();
        registry.register(
            "says_rejected",
            "Client frames answered with an error frame, by error code",
            says_rejected.clone(),
        );
        let says_deduplicated = Counter::default();
        registry.register(
            "says_deduplicated",
            "Retried says (same dialogue and client_msg_id) not produced again",
            says_deduplicated.clone(),
        );
        let answers_delivered = Counter::default();
        registry.register("answers_delivered", "Answer frames delivered to a connection", answers_delivered.clone());
        let handoffs_delivered = Family::<Reason, Counter>::default();
        registry.register(
            "handoffs_delivered",
            "Handoff frames delivered to a connection, by reason",
            handoffs_delivered.clone(),
        );
        let answer_timeouts = Counter::default();
        registry.register(
            "answer_timeouts",
            "Says that got no answer within the answer timeout",
            answer_timeouts.clone(),
        );
        let bot_said_records = Family::<Reason, Counter>::default();
        registry.register(
            "bot_said_records",
            "bot.said records read, by outcome (routed, not_held, duplicate_event, already_answered, ignored_kind, undecodable)",
            bot_said_records.clone(),
        );
        let produce_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "kafka_produce_seconds",
            "Time from producing a user turn to the broker's acknowledgement",
            produce_latency.clone(),
        );
        let reply_received_ms = Histogram::new(exponential_buckets(0.5, 2.0, 16));
        registry.register(
            "reply_received_ms",
            "Per answered turn, ms from receiving the user's turn to reading its reply from bot.said",
            reply_received_ms.clone(),
        );
        let logins = Family::<Reason, Counter>::default();
        registry.register("admin_logins", "Admin logins, by outcome (accepted, refused, throttled)", logins.clone());
        let access_refused = Family::<Reason, Counter>::default();
        registry.register(
            "access_refused",
            "Connections and hellos refused by an access rule, by reason (resume_token, id_token, \
             address_connections, address_hellos, address_dialogues)",
            access_refused.clone(),
        );
        Metrics {
            registry,
            logins,
            access_refused,
            connections,
            connections_refused,
            dialogues,
            says_pending,
            says_accepted,
            says_rejected,
            says_deduplicated,
            answers_delivered,
            handoffs_delivered,
            answer_timeouts,
            bot_said_records,
            produce_latency,
            reply_received_ms,
        }
    }

    /// Counts a client frame refused with `code`.
    pub fn rejected(&self, code: crate::protocol::ErrorCode) {
        self.says_rejected.get_or_create(&[("reason", code.as_str())]).inc();
    }

    /// Counts a delivered handoff frame.
    pub fn handoff_delivered(&self, reason: &'static str) {
        self.handoffs_delivered.get_or_create(&[("reason", reason)]).inc();
    }

    /// Counts an admin login by outcome.
    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Counts a connection or hello refused by an access rule.
    pub fn access_refused(&self, reason: &'static str) {
        self.access_refused.get_or_create(&[("reason", reason)]).inc();
    }

    /// Counts a bot.said record by outcome.
    pub fn bot_said(&self, outcome: &'static str) {
        self.bot_said_records.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// For a routed answer or handoff: ms from receiving the user's turn (the reply's time less
    /// its latency) to reading the reply from `bot.said`.
    pub fn reply_received(&self, event: &switchboard_schemas::Event) {
        let Some(said_at) = event.turn_said_at() else { return };
        let now = crate::hub::now_ms();
        self.reply_received_ms.observe((now - said_at).max(0) as f64);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// The `Content-Type` of [`Metrics::render`]'s output.
    pub const CONTENT_TYPE: &'static str = prometheus_text::CONTENT_TYPE;
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.connections.inc();
        m.rejected(ErrorCode::RateLimited);
        m.produce_latency.observe(0.003);
        let text = m.render();
        assert!(text.contains("switchboard_gateway_connections 1"), "{text}");
        assert!(text.contains(r#"switchboard_gateway_says_rejected_total{reason="rate_limited"} 1"#), "{text}");
        assert!(text.contains("switchboard_gateway_kafka_produce_seconds_bucket"), "{text}");
    }
}
