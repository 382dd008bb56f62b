//! Dialogue ownership: the pure rules of who may do what, and the events the session emits when
//! the owner changes. The session operator ([`crate::session::Sessions`]), keyed by dialogue,
//! applies them one input at a time in partition order, so it is the only writer of a
//! dialogue's owner and the first claim in that order wins, whatever gateway sent it.
//!
//! - A handoff (any bot decision, or a `handoff_requested` that came as input, e.g. a gateway's
//!   answer timeout) moves a dialogue the bot owns to *waiting*.
//! - A claim takes a waiting dialogue, or one the bot owns (an agent may step in); a dialogue
//!   an agent already owns refuses it (`already_claimed`), one that is not open too
//!   (`not_waiting`).
//! - Only the owning agent may write, return the dialogue to the bot or close it (`not_owner`).
//! - While waiting or with an agent, user turns are queued for the agent, never answered.
//! - A wait longer than `wait_timeout_ms` follows [`OnWaitTimeout`].
//!
//! ```
//! use switchboard_operators::ownership::judge;
//! use switchboard_schemas::session::Ownership;
//! use switchboard_schemas::{AgentAction, RefusalReason};
//! let with_li = Ownership::Agent { agent: "li".into(), since_ms: 0 };
//! assert_eq!(judge(Some(&Ownership::Bot), "li", AgentAction::Claim), Ok(()));
//! assert_eq!(judge(Some(&with_li), "wang", AgentAction::Claim), Err(RefusalReason::AlreadyClaimed));
//! assert_eq!(judge(Some(&with_li), "wang", AgentAction::Message), Err(RefusalReason::NotOwner));
//! assert_eq!(judge(None, "li", AgentAction::Claim), Err(RefusalReason::NotWaiting));
//! ```

use switchboard_schemas::clarify::{WAIT_APOLOGY_EN, WAIT_APOLOGY_ZH};
use switchboard_schemas::session::Ownership;
use switchboard_schemas::{
    AgentAction, AgentActionRefused, Event, EventBody, EventId, HandoffReason, Locale, Owner, OwnershipChanged,
    OwnershipReason, RefusalReason, SCHEMA_VERSION,
};

/// The id role of the ownership change a user turn or an input handoff causes beside its reply.
pub const OWNERSHIP_ROLE: &str = "ownership";
/// The id role of a wait timeout's ownership change, derived from the event that began the wait.
pub const WAIT_TIMEOUT_ROLE: &str = "wait-timeout";
/// The id role of the ownership change of a dialogue that closes while not with the bot,
/// derived from the dialogue's last event like its close.
pub const CLOSED_ROLE: &str = "ownership-closed";

/// Default of `wait_timeout_ms`: two minutes.
pub const DEFAULT_WAIT_TIMEOUT_MS: i64 = 120_000;

/// What happens to a dialogue that waited for an agent longer than `wait_timeout_ms`
/// (configuration `on_wait_timeout`: `back_to_bot`, the default, or `stay_queued`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnWaitTimeout {
    /// It stays queued until an agent claims it or it closes idle; nothing is emitted.
    StayQueued,
    /// It goes back to the bot (`ownership_changed`, reason `wait_timeout`), and the bot's next
    /// answer starts with an apology ([`apology`]).
    #[default]
    BackToBot,
}

/// The action an agent's input event asks for, with the agent's name; `None` for other kinds.
pub fn action_of(body: &EventBody) -> Option<(AgentAction, &str)> {
    match body {
        EventBody::AgentClaim(b) => Some((AgentAction::Claim, &b.agent)),
        EventBody::AgentMessage(b) => Some((AgentAction::Message, &b.agent)),
        EventBody::AgentReturn(b) => Some((AgentAction::Return, &b.agent)),
        EventBody::AgentClose(b) => Some((AgentAction::Close, &b.agent)),
        _ => None,
    }
}

/// Whether `agent` may do `action` on a dialogue owned as `owner` (`None`: the dialogue is not
/// open), and if not, why.
pub fn judge(owner: Option<&Ownership>, agent: &str, action: AgentAction) -> Result<(), RefusalReason> {
    match (action, owner) {
        (AgentAction::Claim, None) => Err(RefusalReason::NotWaiting),
        (AgentAction::Claim, Some(Ownership::Agent { .. })) => Err(RefusalReason::AlreadyClaimed),
        (AgentAction::Claim, Some(Ownership::Bot | Ownership::Waiting { .. })) => Ok(()),
        (AgentAction::Message | AgentAction::Return | AgentAction::Close, Some(Ownership::Agent { agent: owner, .. }))
            if owner == agent =>
        {
            Ok(())
        }
        (AgentAction::Message | AgentAction::Return | AgentAction::Close, _) => Err(RefusalReason::NotOwner),
    }
}

/// When the wait of a dialogue owned as `owner` runs out, if it is waiting and the rule is
/// [`OnWaitTimeout::BackToBot`] (a wait that stays queued has no deadline).
pub fn wait_deadline(owner: &Ownership, wait_timeout_ms: i64, rule: OnWaitTimeout) -> Option<i64> {
    match (owner, rule) {
        (Ownership::Waiting { since_ms, .. }, OnWaitTimeout::BackToBot) => Some(since_ms.saturating_add(wait_timeout_ms)),
        _ => None,
    }
}

/// The apology the bot's first answer after a timed-out wait starts with.
pub fn apology(locale: Locale) -> &'static str {
    match locale {
        Locale::ZhCn => WAIT_APOLOGY_ZH,
        Locale::En => WAIT_APOLOGY_EN,
    }
}

/// `text` with the apology in front.
pub fn with_apology(locale: Locale, text: &str) -> String {
    match locale {
        Locale::ZhCn => format!("{}{text}", apology(locale)),
        Locale::En => format!("{} {text}", apology(locale)),
    }
}

/// An event of `dialogue_id` caused by the event `cause`, with an id derived from it and `role`
/// (so re-processing the cause yields the same id).
pub fn derived_event(dialogue_id: &str, cause: EventId, role: &str, at: i64, body: EventBody) -> Event {
    Event {
        event_id: EventId::derived(cause, role),
        dialogue_id: dialogue_id.to_string(),
        schema_version: SCHEMA_VERSION,
        occurred_at: at,
        body,
    }
}

/// What an ownership change says.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The new owner.
    pub owner: Owner,
    /// The agent concerned (the new owner on a claim, the previous one on a return or close).
    pub agent: Option<String>,
    /// Why.
    pub reason: OwnershipReason,
    /// The handoff's reason, for a handoff.
    pub handoff_reason: Option<HandoffReason>,
}

impl Change {
    /// Handed off for `reason`: now waiting.
    pub fn handoff(reason: HandoffReason) -> Self {
        Change { owner: Owner::Waiting, agent: None, reason: OwnershipReason::Handoff, handoff_reason: Some(reason) }
    }

    /// Claimed by `agent`.
    pub fn claimed(agent: &str) -> Self {
        Change { owner: Owner::Agent, agent: Some(agent.into()), reason: OwnershipReason::Claimed, handoff_reason: None }
    }

    /// Back to the bot, for `reason`, from `agent` if an agent had it.
    pub fn to_bot(reason: OwnershipReason, agent: Option<&str>) -> Self {
        Change { owner: Owner::Bot, agent: agent.map(String::from), reason, handoff_reason: None }
    }

    /// The `ownership_changed` event replying to `cause`.
    pub fn event(self, dialogue_id: &str, cause: EventId, role: &str, at: i64) -> Event {
        derived_event(
            dialogue_id,
            cause,
            role,
            at,
            EventBody::OwnershipChanged(OwnershipChanged {
                in_reply_to: cause,
                owner: self.owner,
                agent: self.agent,
                reason: self.reason,
                handoff_reason: self.handoff_reason,
            }),
        )
    }
}

/// The refusal of an agent's action `action` (event `cause`), naming the current owner.
pub fn refused(cause: &Event, agent: &str, action: AgentAction, reason: RefusalReason, owner: Option<&str>, at: i64) -> Event {
    Event::caused_by(
        cause,
        crate::session::REPLY_ROLE,
        at,
        EventBody::AgentActionRefused(AgentActionRefused {
            in_reply_to: cause.event_id,
            agent: agent.to_string(),
            action,
            reason,
            owner: owner.map(String::from),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting() -> Ownership {
        Ownership::Waiting { since_ms: 1_000, reason: HandoffReason::UserAsked, cause: EventId::from_bytes([1; 16]) }
    }

    fn with(agent: &str) -> Ownership {
        Ownership::Agent { agent: agent.into(), since_ms: 2_000 }
    }

    #[test]
    fn claims_take_waiting_or_bot_dialogues_and_never_an_owned_one() {
        assert_eq!(judge(Some(&waiting()), "li", AgentAction::Claim), Ok(()));
        assert_eq!(judge(Some(&Ownership::Bot), "li", AgentAction::Claim), Ok(()));
        assert_eq!(judge(Some(&with("li")), "wang", AgentAction::Claim), Err(RefusalReason::AlreadyClaimed));
        assert_eq!(judge(Some(&with("li")), "li", AgentAction::Claim), Err(RefusalReason::AlreadyClaimed));
        assert_eq!(judge(None, "li", AgentAction::Claim), Err(RefusalReason::NotWaiting));
    }

    #[test]
    fn only_the_owner_writes_returns_and_closes() {
        for action in [AgentAction::Message, AgentAction::Return, AgentAction::Close] {
            assert_eq!(judge(Some(&with("li")), "li", action), Ok(()), "{action:?}");
            assert_eq!(judge(Some(&with("li")), "wang", action), Err(RefusalReason::NotOwner), "{action:?}");
            assert_eq!(judge(Some(&waiting()), "li", action), Err(RefusalReason::NotOwner), "{action:?}");
            assert_eq!(judge(Some(&Ownership::Bot), "li", action), Err(RefusalReason::NotOwner), "{action:?}");
            assert_eq!(judge(None, "li", action), Err(RefusalReason::NotOwner), "{action:?}");
        }
    }

    #[test]
    fn only_a_wait_going_back_to_the_bot_has_a_deadline() {
        assert_eq!(wait_deadline(&waiting(), 500, OnWaitTimeout::BackToBot), Some(1_500));
        assert_eq!(wait_deadline(&waiting(), 500, OnWaitTimeout::StayQueued), None);
        assert_eq!(wait_deadline(&with("li"), 500, OnWaitTimeout::BackToBot), None);
        assert_eq!(wait_deadline(&Ownership::Bot, 500, OnWaitTimeout::BackToBot), None);
    }

    #[test]
    fn the_apology_comes_first_in_the_dialogues_language() {
        assert!(with_apology(Locale::ZhCn, "好的。").starts_with(WAIT_APOLOGY_ZH));
        assert!(with_apology(Locale::En, "OK.").ends_with(" OK."));
        let rule: OnWaitTimeout = serde_json::from_str("\"stay_queued\"").expect("snake_case");
        assert_eq!(rule, OnWaitTimeout::StayQueued);
        assert_eq!(OnWaitTimeout::default(), OnWaitTimeout::BackToBot);
    }
}
