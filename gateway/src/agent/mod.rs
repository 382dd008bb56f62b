//! The agent side of the admin listener: the agent page (`/agent`) and, with the agent protocol,
//! the agent WebSocket (`/agent/ws`). Every route here is behind the admin guard (agent and up).

mod desk;
mod history;
mod socket;

/// Events the agent side's tests feed it, as the session would decide them.
#[cfg(test)]
pub(crate) mod fixtures {
    use switchboard_schemas::ownership::{Owner, OwnershipChanged, OwnershipReason};
    use switchboard_schemas::{Event, EventBody, EventId, HandoffReason};

    /// `ownership_changed` of `d` to `owner` (a wait names the `user_asked` handoff).
    pub(crate) fn changed(d: &str, owner: Owner, agent: Option<&str>, reason: OwnershipReason) -> Event {
        Event::new(
            d,
            crate::hub::now_ms(),
            EventBody::OwnershipChanged(OwnershipChanged {
                in_reply_to: EventId::new_v7(),
                owner,
                agent: agent.map(str::to_string),
                reason,
                handoff_reason: (owner == Owner::Waiting).then_some(HandoffReason::UserAsked),
            }),
        )
    }
}

pub(crate) use desk::Desk;
pub(crate) use history::History;

use crate::state::Shared;
use axum::extract::Extension;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// The agent page served at `/agent`.
pub const AGENT_PAGE: &str = include_str!("../../static/agent.html");

/// The agent routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().route("/agent", get(page)).route("/agent/ws", get(socket::upgrade)).with_state(shared)
}

/// The agent side of one instance: the desk and, when ClickHouse is configured, its history.
#[derive(Clone)]
pub(crate) struct AgentSide {
    /// Agent connections and the queue.
    pub(crate) desk: Arc<Desk>,
    /// Reads of the queue, details and transcripts.
    pub(crate) history: Option<Arc<History>>,
}

/// Waiting dialogues whose details are looked up when an agent connects (the newest first).
const ENRICH_ON_JOIN: usize = 200;

impl AgentSide {
    /// A desk, with a history when `clickhouse` is set.
    pub(crate) fn new(clickhouse: Option<&switchboard_schemas::settings::ClickHouseSettings>) -> AgentSide {
        AgentSide { desk: Arc::new(Desk::default()), history: clickhouse.map(|c| Arc::new(History::new(c))) }
    }

    /// Reads the open queue (once, at start) in the background.
    pub(crate) fn load_queue(&self) {
        let Some(history) = self.history.clone() else { return };
        let side = self.clone();
        tokio::spawn(async move {
            match history.open_queue().await {
                Ok((waiting, owned)) => {
                    tracing::info!(waiting = waiting.len(), with_agents = owned.len(), "agent queue loaded");
                    side.desk.seed(waiting, owned);
                    // Details are looked up for the newest when an agent connects.
                    if side.desk.online() > 0 {
                        side.enrich_waiting();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the open agent queue; it fills from bot.said"),
            }
        });
    }

    /// Takes in one `bot.said` event; a newly waiting dialogue gets its details looked up.
    /// The agent who just got a dialogue also gets its transcript.
    pub(crate) fn observe(&self, event: &switchboard_schemas::Event) {
        // Details are looked up only while an agent is there to see them (each lookup reads
        // ClickHouse, and under load many dialogues are handed off); an agent who connects
        // gets the newest ones looked up then ([`AgentSide::enrich_waiting`]).
        if self.desk.observe(event) && self.desk.online() > 0 {
            self.enrich(event.dialogue_id.clone());
        }
        if let switchboard_schemas::EventBody::OwnershipChanged(o) = &event.body {
            if let (switchboard_schemas::Owner::Agent, Some(agent)) = (o.owner, &o.agent) {
                self.send_transcript(agent.clone(), event.dialogue_id.clone());
            }
        }
    }

    fn send_transcript(&self, agent: String, dialogue_id: String) {
        let Some(history) = self.history.clone() else { return };
        if !self.desk.is_online(&agent) {
            return;
        }
        let desk = self.desk.clone();
        tokio::spawn(async move {
            // The rows of the last epoch may still be on their way to ClickHouse; the page asks
            // again (`watch`) whenever it opens the dialogue.
            let frame = socket::transcript_frame(&history, &dialogue_id).await;
            desk.send_to(&agent, &frame);
        });
    }

    /// Looks up the details of the newest waiting dialogues that lack them (when an agent
    /// connects).
    pub(crate) fn enrich_waiting(&self) {
        for dialogue_id in self.desk.unenriched(ENRICH_ON_JOIN) {
            self.enrich(dialogue_id);
        }
    }

    fn enrich(&self, dialogue_id: String) {
        let Some(history) = self.history.clone() else { return };
        let desk = self.desk.clone();
        tokio::spawn(async move {
            match history.details(&dialogue_id).await {
                Ok((locale, intent, slots)) => desk.enrich(&dialogue_id, locale, intent, slots),
                Err(e) => tracing::debug!(dialogue_id, error = %e, "no details for a waiting dialogue"),
            }
        });
    }
}

async fn page(Extension(identity): Extension<crate::admin::Identity>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; \
                     base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
                ),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        AGENT_PAGE.replace("<!--SB-ACCOUNT-->", &crate::admin::account_bar(&identity)),
    )
        .into_response()
}
