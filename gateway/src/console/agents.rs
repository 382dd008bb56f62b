//! The human-agent side of the console: `GET /console/api/agents?minutes=N&prefix=P` answers
//! [`AgentsReport`], computed here (pure, no I/O) from the ownership events the session operator
//! writes to `switchboard.events`; the SQL and the handler are in `agents_api`.
//!
//! # What is read
//!
//! The sink writes an `ownership_changed` row with the new owner (`bot`, `waiting`, `agent`) in
//! `text`, the reason (`handoff`, `claimed`, `returned`, `closed`, `wait_timeout`) in `reason` and
//! the agent concerned in `agent` (the new owner on a claim, the previous one on a return or a
//! close, empty when the dialogue was waiting); `agent_said` and `agent_action_refused` rows name
//! their agent in `agent` (a refusal's action is in `text`); an `agent_close` row is the agent's
//! own close, which its `ownership_changed` answers (`in_reply_to` = the close's `event_id`).
//!
//! The rows of the window and of [`LOOKBACK`] before it (so that a wait or a claim that began
//! earlier is known) are replayed per dialogue in time order through the states bot → waiting →
//! agent → bot. Within one millisecond, the transition valid from the current state goes first
//! (e.g. a wait timeout before the new handoff of the same instant).
//!
//! # Definitions
//!
//! Counts are of transitions whose time falls in the window `[from_ms, to_ms]`; a time
//! (claim, first reply) is counted when its ending event does.
//!
//! - **Queue length** at the end of each minute of the window (for the current minute: now): the
//!   dialogues whose last transition before that instant made them `waiting`.
//! - **Handoffs**: transitions to `waiting`.
//! - **Time to claim**: from a dialogue's transition to `waiting` to the claim that ends that wait.
//!   A claim of a dialogue the bot owned (an agent stepping in) counts as a claim, without a time.
//! - **Time to first reply**: from a claim to the claiming agent's first `agent_said` in that
//!   dialogue while it still owns it.
//! - **Resolved**: closed by the owning agent (an `ownership_changed` reason `closed` answering an
//!   `agent_close`). **Returned**: given back to the bot by the owning agent. **Closed idle with
//!   agent**: the dialogue ended idle while an agent owned it (neither resolved nor abandoned).
//! - **Abandoned**: a wait that ended without an agent: back to the bot by the wait timeout
//!   (`wait_timeout`), the dialogue closed while waiting (`closed` with no agent: the user left),
//!   or still waiting at the end of the window after [`ABANDON_AFTER`] or more.
//! - Percentiles are nearest-rank over the exact values: P = the ⌈p·n⌉-th smallest.
//! - Per agent: claims, claims refused (another agent had it, `already_claimed`…), replies
//!   (`agent_said`), returned, resolved (closed), closed idle, median time to first reply, and
//!   the dialogues the agent owns at the end of the window.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// How far before the window's start ownership events are read, so that a wait or an agent's
/// ownership that began earlier is known (the session closes an idle dialogue after 30 minutes
/// by default, so a wait or claim older than this is rare).
pub const LOOKBACK: Duration = Duration::from_secs(2 * 3600);
/// A dialogue still waiting at the end of the window counts as abandoned once it has waited
/// this long.
pub const ABANDON_AFTER: Duration = Duration::from_secs(5 * 60);
/// Most ownership rows read for one report (the newest; `truncated` says when more existed).
pub const MAX_AGENT_ROWS: u64 = 100_000;
/// Most agents listed (most claims first).
pub const MAX_AGENTS: usize = 100;

const MINUTE_MS: u64 = 60_000;

/// `GET /console/api/agents`: the human-agent side of the service over a window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentsReport {
    /// Window length, minutes.
    pub minutes: u32,
    /// The dialogue-id prefix filtered on (empty: all dialogues).
    pub prefix: String,
    /// Start of the window, Unix ms.
    pub from_ms: u64,
    /// End of the window (when computed), Unix ms.
    pub to_ms: u64,
    /// How far before `from_ms` ownership events were read, ms ([`LOOKBACK`]).
    pub lookback_ms: u64,
    /// A wait this long at the end of the window counts as abandoned, ms ([`ABANDON_AFTER`]).
    pub abandon_after_ms: u64,
    /// Whether more than [`MAX_AGENT_ROWS`] rows existed (the oldest were left out).
    pub truncated: bool,
    /// Queue length at the end of each minute of the window, oldest first.
    pub queue: Vec<QueuePoint>,
    /// Dialogues waiting for an agent at the end of the window.
    pub waiting_now: u64,
    /// Transitions to waiting in the window.
    pub handoffs: u64,
    /// Claims accepted in the window.
    pub claims: u64,
    /// Claims refused in the window.
    pub claims_refused: u64,
    /// Messages agents sent in the window (`agent_said`).
    pub replies: u64,
    /// Time from the start of a wait to its claim.
    pub time_to_claim: Timing,
    /// Time from a claim to the agent's first reply.
    pub time_to_first_reply: Timing,
    /// How handoffs ended in the window.
    pub outcomes: Outcomes,
    /// Per agent (at most [`MAX_AGENTS`]), most claims first, then by name.
    pub agents: Vec<AgentStats>,
}

/// The queue at the end of one minute.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueuePoint {
    /// Start of the minute, Unix ms.
    pub minute_ms: u64,
    /// Dialogues waiting at the end of that minute (for the current minute: now).
    pub waiting: u64,
}

/// Percentiles of a duration.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Timing {
    /// Durations measured.
    pub count: u64,
    /// Median, ms (`null` without measurements).
    pub p50_ms: Option<u64>,
    /// 99th percentile, ms (`null` without measurements).
    pub p99_ms: Option<u64>,
    /// Largest, ms (`null` without measurements).
    pub max_ms: Option<u64>,
}

/// How handoffs ended in the window.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Outcomes {
    /// Closed by the owning agent.
    pub resolved: u64,
    /// Given back to the bot by the owning agent.
    pub returned: u64,
    /// Ended idle while an agent owned the dialogue.
    pub closed_idle_with_agent: u64,
    /// `abandoned_wait_timeout + abandoned_closed_waiting + abandoned_still_waiting`.
    pub abandoned: u64,
    /// Back to the bot because nobody claimed in time.
    pub abandoned_wait_timeout: u64,
    /// The dialogue closed while waiting.
    pub abandoned_closed_waiting: u64,
    /// Still waiting at the end of the window, for [`ABANDON_AFTER`] or more.
    pub abandoned_still_waiting: u64,
}

/// One agent's figures in the window.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AgentStats {
    /// The agent's account name.
    pub agent: String,
    /// Claims accepted.
    pub claims: u64,
    /// Claims refused.
    pub claims_refused: u64,
    /// Messages sent (`agent_said`).
    pub replies: u64,
    /// Dialogues given back to the bot.
    pub returned: u64,
    /// Dialogues closed (resolved).
    pub closed: u64,
    /// Owned dialogues that ended idle.
    pub closed_idle: u64,
    /// Median time from claim to first reply, ms (`null` without one).
    pub first_reply_p50_ms: Option<u64>,
    /// Dialogues the agent owns at the end of the window.
    pub owning_now: u64,
}

/// One row read from `events` for the report.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, clickhouse::Row)]
pub(crate) struct OwnershipRow {
    pub(crate) dialogue_id: String,
    pub(crate) kind: String,
    pub(crate) occurred_at_ms: u64,
    #[serde(with = "clickhouse::serde::uuid")]
    pub(crate) event_id: uuid::Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    pub(crate) in_reply_to: uuid::Uuid,
    /// The new owner of an `ownership_changed`, the action of a refusal; empty otherwise.
    pub(crate) text: String,
    pub(crate) reason: String,
    pub(crate) agent: String,
}

/// The window a report covers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReportWindow {
    pub(crate) minutes: u32,
    pub(crate) prefix: String,
    pub(crate) from_ms: u64,
    pub(crate) to_ms: u64,
}

/// One transition (or agent act) of a dialogue, as read.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    ToWaiting,
    Claimed(String),
    Said(String),
    Returned(String),
    /// Closed: by the owning agent (`by_agent`), idle with an agent, or while waiting (no agent).
    Closed {
        agent: String,
        by_agent: bool,
    },
    WaitTimeout,
    ClaimRefused(String),
}

impl Step {
    /// Order within one millisecond when several steps are valid.
    fn rank(&self) -> u8 {
        match self {
            Step::WaitTimeout => 0,
            Step::ToWaiting => 1,
            Step::Claimed(_) => 2,
            Step::Said(_) => 3,
            Step::Returned(_) => 4,
            Step::Closed { .. } => 5,
            Step::ClaimRefused(_) => 6,
        }
    }

    fn valid_from(&self, state: &State) -> bool {
        match (self, state) {
            (Step::ToWaiting, State::Bot) => true,
            (Step::Claimed(_), State::Bot | State::Waiting { .. }) => true,
            (Step::Said(a), State::Agent { agent, .. }) => a == agent,
            (Step::Returned(_), State::Agent { .. }) => true,
            (Step::Closed { agent, .. }, State::Waiting { .. }) => agent.is_empty(),
            (Step::Closed { agent, .. }, State::Agent { .. }) => !agent.is_empty(),
            (Step::WaitTimeout, State::Waiting { .. }) => true,
            (Step::ClaimRefused(_), _) => true,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Bot,
    Waiting { since: u64 },
    Agent { agent: String, since: u64, replied: bool },
}

/// The step a row stands for; `None` for rows that are no step (an agent's close input, an
/// unknown combination).
fn step_of(row: &OwnershipRow, agent_closes: &HashSet<uuid::Uuid>) -> Option<Step> {
    let agent = row.agent.clone();
    match row.kind.as_str() {
        "agent_said" => Some(Step::Said(agent)),
        "agent_action_refused" if row.text == "claim" => Some(Step::ClaimRefused(agent)),
        "ownership_changed" => match (row.text.as_str(), row.reason.as_str()) {
            ("waiting", _) => Some(Step::ToWaiting),
            ("agent", _) => Some(Step::Claimed(agent)),
            ("bot", "returned") => Some(Step::Returned(agent)),
            ("bot", "closed") => {
                let by_agent = !agent.is_empty() && agent_closes.contains(&row.in_reply_to);
                Some(Step::Closed { agent, by_agent })
            }
            ("bot", "wait_timeout") => Some(Step::WaitTimeout),
            _ => None,
        },
        _ => None,
    }
}

/// The `p` percentile (0 < p ≤ 1) of sorted values, nearest rank; `None` when empty.
pub(crate) fn nearest_rank(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// The [`Timing`] of some durations.
pub(crate) fn timing(mut values: Vec<u64>) -> Timing {
    values.sort_unstable();
    Timing {
        count: values.len() as u64,
        p50_ms: nearest_rank(&values, 0.5),
        p99_ms: nearest_rank(&values, 0.99),
        max_ms: values.last().copied(),
    }
}

/// Orders one dialogue's steps: by time, and within one millisecond the step valid from the
/// state reached so far first (by rank among the valid ones, else by rank).
fn order_steps(mut steps: Vec<(u64, Step)>) -> Vec<(u64, Step)> {
    steps.sort_by_key(|(at, step)| (*at, step.rank()));
    let mut ordered = Vec::with_capacity(steps.len());
    let mut state = State::Bot;
    let mut rest = steps.into_iter().peekable();
    while let Some(first) = rest.next() {
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|s| s.0 == group[0].0) {
            group.push(next);
        }
        while !group.is_empty() {
            let pick = group.iter().position(|(_, s)| s.valid_from(&state)).unwrap_or(0);
            let (at, step) = group.remove(pick);
            state = next_state(&state, &step, at);
            ordered.push((at, step));
        }
    }
    ordered
}

/// The state after `step` at `at` (the session decided it, so it is applied as read).
fn next_state(state: &State, step: &Step, at: u64) -> State {
    match step {
        Step::ToWaiting => match state {
            State::Waiting { since } => State::Waiting { since: *since },
            _ => State::Waiting { since: at },
        },
        Step::Claimed(agent) => State::Agent { agent: agent.clone(), since: at, replied: false },
        Step::Said(agent) => match state {
            State::Agent { agent: owner, since, .. } if owner == agent => {
                State::Agent { agent: owner.clone(), since: *since, replied: true }
            }
            other => other.clone(),
        },
        Step::Returned(_) | Step::Closed { .. } | Step::WaitTimeout => State::Bot,
        Step::ClaimRefused(_) => state.clone(),
    }
}

/// The report of `window` from the rows read (any order; rows after `to_ms` are ignored).
pub(crate) fn compute_report(rows: &[OwnershipRow], window: &ReportWindow, truncated: bool) -> AgentsReport {
    let (from_ms, to_ms) = (window.from_ms, window.to_ms);
    let in_window = |at: u64| at >= from_ms && at <= to_ms;
    let agent_closes: HashSet<uuid::Uuid> =
        rows.iter().filter(|r| r.kind == "agent_close").map(|r| r.event_id).collect();
    let mut dialogues: BTreeMap<&str, Vec<(u64, Step)>> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.occurred_at_ms <= to_ms) {
        if let Some(step) = step_of(row, &agent_closes) {
            dialogues.entry(&row.dialogue_id).or_default().push((row.occurred_at_ms, step));
        }
    }

    let mut report = AgentsReport {
        minutes: window.minutes,
        prefix: window.prefix.clone(),
        from_ms,
        to_ms,
        lookback_ms: LOOKBACK.as_millis() as u64,
        abandon_after_ms: ABANDON_AFTER.as_millis() as u64,
        truncated,
        queue: Vec::new(),
        waiting_now: 0,
        handoffs: 0,
        claims: 0,
        claims_refused: 0,
        replies: 0,
        time_to_claim: Timing::default(),
        time_to_first_reply: Timing::default(),
        outcomes: Outcomes::default(),
        agents: Vec::new(),
    };
    let mut agents: HashMap<String, AgentStats> = HashMap::new();
    let mut first_replies: HashMap<String, Vec<u64>> = HashMap::new();
    let (mut to_claim, mut to_reply) = (Vec::new(), Vec::new());
    // Queue changes: (time, +1 when a wait starts, -1 when it ends).
    let mut queue_changes: Vec<(u64, i64)> = Vec::new();
    fn agent_mut<'a>(agents: &'a mut HashMap<String, AgentStats>, name: &str) -> &'a mut AgentStats {
        agents.entry(name.to_string()).or_insert_with(|| AgentStats { agent: name.to_string(), ..Default::default() })
    }

    for steps in dialogues.into_values() {
        let mut state = State::Bot;
        for (at, step) in order_steps(steps) {
            let counted = in_window(at);
            match (&step, &state) {
                (Step::ToWaiting, State::Waiting { .. }) => {}
                (Step::ToWaiting, _) => report.handoffs += u64::from(counted),
                (Step::Claimed(agent), previous) => {
                    if counted {
                        report.claims += 1;
                        agent_mut(&mut agents, agent).claims += 1;
                    }
                    if let (State::Waiting { since }, true) = (previous, counted) {
                        to_claim.push(at.saturating_sub(*since));
                    }
                }
                (Step::Said(agent), previous) => {
                    if counted {
                        report.replies += 1;
                        agent_mut(&mut agents, agent).replies += 1;
                    }
                    if let State::Agent { agent: owner, since, replied: false } = previous {
                        if owner == agent && counted {
                            to_reply.push(at.saturating_sub(*since));
                            first_replies.entry(agent.clone()).or_default().push(at.saturating_sub(*since));
                        }
                    }
                }
                (Step::Returned(agent), _) => {
                    if counted {
                        report.outcomes.returned += 1;
                        agent_mut(&mut agents, agent).returned += 1;
                    }
                }
                (Step::Closed { agent, by_agent }, _) => {
                    if counted {
                        if agent.is_empty() {
                            report.outcomes.abandoned_closed_waiting += 1;
                        } else if *by_agent {
                            report.outcomes.resolved += 1;
                            agent_mut(&mut agents, agent).closed += 1;
                        } else {
                            report.outcomes.closed_idle_with_agent += 1;
                            agent_mut(&mut agents, agent).closed_idle += 1;
                        }
                    }
                }
                (Step::WaitTimeout, _) => {
                    report.outcomes.abandoned_wait_timeout += u64::from(counted);
                }
                (Step::ClaimRefused(agent), _) => {
                    if counted {
                        report.claims_refused += 1;
                        agent_mut(&mut agents, agent).claims_refused += 1;
                    }
                }
            }
            let next = next_state(&state, &step, at);
            match (matches!(state, State::Waiting { .. }), matches!(next, State::Waiting { .. })) {
                (false, true) => queue_changes.push((at, 1)),
                (true, false) => queue_changes.push((at, -1)),
                _ => {}
            }
            state = next;
        }
        match state {
            State::Waiting { since } => {
                report.waiting_now += 1;
                if to_ms.saturating_sub(since) >= ABANDON_AFTER.as_millis() as u64 {
                    report.outcomes.abandoned_still_waiting += 1;
                }
            }
            State::Agent { agent, .. } => agent_mut(&mut agents, &agent).owning_now += 1,
            State::Bot => {}
        }
    }

    let o = &mut report.outcomes;
    o.abandoned = o.abandoned_wait_timeout + o.abandoned_closed_waiting + o.abandoned_still_waiting;
    report.time_to_claim = timing(to_claim);
    report.time_to_first_reply = timing(to_reply);
    report.queue = queue_series(queue_changes, from_ms, to_ms);
    let mut agents: Vec<AgentStats> = agents
        .into_values()
        .map(|mut a| {
            a.first_reply_p50_ms = first_replies.remove(&a.agent).and_then(|v| timing(v).p50_ms);
            a
        })
        .collect();
    agents.sort_by(|a, b| b.claims.cmp(&a.claims).then_with(|| a.agent.cmp(&b.agent)));
    agents.truncate(MAX_AGENTS);
    report.agents = agents;
    report
}

/// The queue length at the end of every minute from the one holding `from_ms` to the one
/// holding `to_ms` (for that last minute: at `to_ms`), from the waits' starts (+1) and ends (-1).
/// A change at the very instant a minute ends belongs to the next minute.
pub(crate) fn queue_series(mut changes: Vec<(u64, i64)>, from_ms: u64, to_ms: u64) -> Vec<QueuePoint> {
    changes.sort_unstable();
    let mut points = Vec::new();
    let (mut level, mut next) = (0i64, 0usize);
    let mut minute = from_ms - from_ms % MINUTE_MS;
    while minute <= to_ms {
        let end = (minute + MINUTE_MS).min(to_ms + 1);
        while let Some((_, delta)) = changes.get(next).filter(|(at, _)| *at < end) {
            level += delta;
            next += 1;
        }
        points.push(QueuePoint { minute_ms: minute, waiting: level.max(0) as u64 });
        minute += MINUTE_MS;
    }
    points
}

#[cfg(test)]
#[path = "agents_tests.rs"]
mod tests;
