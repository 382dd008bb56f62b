//! Unit tests of the agents report's pure computations (`agents.rs`).

use super::*;

const FROM: u64 = 1_764_000_000_000; // a whole minute
const TO: u64 = FROM + 15 * MINUTE_MS - 1;

fn window() -> ReportWindow {
    ReportWindow { minutes: 15, prefix: "p".into(), from_ms: FROM, to_ms: TO }
}

/// Builds rows of one dialogue; ids are sequential so that a close can be referred to.
struct Rows {
    rows: Vec<OwnershipRow>,
    next: u128,
}

impl Rows {
    fn new() -> Self {
        Rows { rows: Vec::new(), next: 1 }
    }

    fn push(
        &mut self,
        d: &str,
        kind: &str,
        at: u64,
        (text, reason): (&str, &str),
        agent: &str,
        reply_to: u128,
    ) -> u128 {
        let id = self.next;
        self.next += 1;
        self.rows.push(OwnershipRow {
            dialogue_id: d.into(),
            kind: kind.into(),
            occurred_at_ms: at,
            event_id: uuid::Uuid::from_u128(id),
            in_reply_to: uuid::Uuid::from_u128(reply_to),
            text: text.into(),
            reason: reason.into(),
            agent: agent.into(),
        });
        id
    }

    fn waiting(&mut self, d: &str, at: u64) {
        self.push(d, "ownership_changed", at, ("waiting", "handoff"), "", 0);
    }
    fn claimed(&mut self, d: &str, at: u64, agent: &str) {
        self.push(d, "ownership_changed", at, ("agent", "claimed"), agent, 0);
    }
    fn said(&mut self, d: &str, at: u64, agent: &str) {
        self.push(d, "agent_said", at, ("", ""), agent, 0);
    }
    fn returned(&mut self, d: &str, at: u64, agent: &str) {
        self.push(d, "ownership_changed", at, ("bot", "returned"), agent, 0);
    }
    fn agent_closed(&mut self, d: &str, at: u64, agent: &str) {
        let close = self.push(d, "agent_close", at, ("", ""), agent, 0);
        self.push(d, "ownership_changed", at, ("bot", "closed"), agent, close);
    }
    fn idle_closed(&mut self, d: &str, at: u64, agent: &str) {
        self.push(d, "ownership_changed", at, ("bot", "closed"), agent, 999);
    }
    fn wait_timeout(&mut self, d: &str, at: u64) {
        self.push(d, "ownership_changed", at, ("bot", "wait_timeout"), "", 0);
    }
    fn refused_claim(&mut self, d: &str, at: u64, agent: &str) {
        self.push(d, "agent_action_refused", at, ("claim", "already_claimed"), agent, 0);
    }
}

#[test]
fn percentiles_are_nearest_rank() {
    assert_eq!(nearest_rank(&[], 0.5), None);
    assert_eq!(nearest_rank(&[7], 0.5), Some(7));
    assert_eq!(nearest_rank(&[7], 0.99), Some(7));
    assert_eq!(nearest_rank(&[10, 20], 0.5), Some(10));
    assert_eq!(nearest_rank(&[10, 20], 0.99), Some(20));
    let hundred: Vec<u64> = (1..=100).collect();
    assert_eq!(nearest_rank(&hundred, 0.5), Some(50));
    assert_eq!(nearest_rank(&hundred, 0.99), Some(99));
    let t = timing(vec![30, 10, 20]);
    assert_eq!(t, Timing { count: 3, p50_ms: Some(20), p99_ms: Some(30), max_ms: Some(30) });
    assert_eq!(timing(vec![]), Timing::default());
}

#[test]
fn the_queue_is_read_at_the_end_of_each_minute() {
    let to = FROM + 2 * MINUTE_MS + 30_000;
    let changes = vec![
        (FROM - 5_000, 1),     // waiting since before the window
        (FROM + 10_000, 1),    // waits 10 s into minute 0 …
        (FROM + 20_000, -1),   // … and is claimed within it
        (FROM + MINUTE_MS, 1), // the instant minute 0 ends: minute 1's
        (FROM + 2 * MINUTE_MS + 29_999, -1),
    ];
    let q = queue_series(changes, FROM + 7_000, to);
    let got: Vec<(u64, u64)> = q.iter().map(|p| (p.minute_ms, p.waiting)).collect();
    assert_eq!(got, [(FROM, 1), (FROM + MINUTE_MS, 2), (FROM + 2 * MINUTE_MS, 1)]);
}

#[test]
fn a_window_of_handoffs_gives_exact_figures() {
    let m = |minutes: u64, s: u64| FROM + minutes * MINUTE_MS + s * 1000;
    let mut r = Rows::new();
    // a: waits 10 s, li claims, replies after 20 s and again, closes it (resolved).
    r.waiting("a", m(1, 0));
    r.claimed("a", m(1, 10), "li");
    r.said("a", m(1, 30), "li");
    r.said("a", m(1, 40), "li");
    r.agent_closed("a", m(2, 0), "li");
    // b: waits 30 s, wang claims (li's claim refused), replies after 40 s, returns it.
    r.waiting("b", m(2, 0));
    r.claimed("b", m(2, 30), "wang");
    r.refused_claim("b", m(2, 31), "li");
    r.said("b", m(3, 10), "wang");
    r.returned("b", m(3, 20), "wang");
    // c: nobody claims: back to the bot by the wait timeout after 2 minutes.
    r.waiting("c", m(4, 0));
    r.wait_timeout("c", m(6, 0));
    // d: waits, the user leaves: closed while waiting.
    r.waiting("d", m(5, 0));
    r.idle_closed("d", m(8, 0), "");
    // e: still waiting at the end, for 9 minutes (abandoned); f: for 1 minute (not yet).
    r.waiting("e", m(6, 0));
    r.waiting("f", m(14, 0));
    // g: claimed before the window (time to claim not counted), first reply inside it.
    r.waiting("g", FROM - 50_000);
    r.claimed("g", FROM - 40_000, "li");
    r.said("g", m(0, 20), "li");
    // h: wang steps into a bot dialogue (no wait), never replies, it ends idle with him.
    r.claimed("h", m(9, 0), "wang");
    r.idle_closed("h", m(12, 0), "wang");
    // i: li owns it at the end of the window.
    r.waiting("i", m(10, 0));
    r.claimed("i", m(10, 5), "li");
    // Outside the window: a later event is ignored.
    r.waiting("z", TO + 1);

    let report = compute_report(&r.rows, &window(), false);
    assert_eq!(report.handoffs, 7, "a b c d e f i");
    assert_eq!(report.claims, 4, "a b h i (g was claimed before the window)");
    assert_eq!(report.claims_refused, 1);
    assert_eq!(report.replies, 4);
    assert_eq!(
        report.time_to_claim,
        Timing { count: 3, p50_ms: Some(10_000), p99_ms: Some(30_000), max_ms: Some(30_000) }
    );
    assert_eq!(
        report.time_to_first_reply,
        Timing { count: 3, p50_ms: Some(40_000), p99_ms: Some(60_000), max_ms: Some(60_000) },
        "a 20 s, b 40 s, g 60 s"
    );
    assert_eq!(
        report.outcomes,
        Outcomes {
            resolved: 1,
            returned: 1,
            closed_idle_with_agent: 1,
            abandoned: 3,
            abandoned_wait_timeout: 1,
            abandoned_closed_waiting: 1,
            abandoned_still_waiting: 1,
        }
    );
    assert_eq!(report.waiting_now, 2, "e and f");
    let queue: Vec<u64> = report.queue.iter().map(|p| p.waiting).collect();
    // End of minute: 0 none (a waits from 1:00 on: the next minute's); 1 none (a claimed);
    // 2 none (b claimed); 3 none; 4 c; 5 c d; 6 d e (c timed out at 6:00); 7 d e; 8 e (d closed
    // at 8:00); 9 e; 10 e (i claimed); 11..13 e; 14 e f.
    assert_eq!(queue, [0, 0, 0, 0, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 2]);
    assert_eq!(report.queue[0].minute_ms, FROM);

    let names: Vec<&str> = report.agents.iter().map(|a| a.agent.as_str()).collect();
    assert_eq!(names, ["li", "wang"], "most claims first (2 each), then by name");
    let li = &report.agents[0];
    assert_eq!(
        li,
        &AgentStats {
            agent: "li".into(),
            claims: 2,
            claims_refused: 1,
            replies: 3,
            returned: 0,
            closed: 1,
            closed_idle: 0,
            first_reply_p50_ms: Some(20_000),
            owning_now: 2,
        },
        "first replies 20 s (a) and 60 s (g); owns g and i"
    );
    let wang = &report.agents[1];
    assert_eq!((wang.claims, wang.replies, wang.returned, wang.closed, wang.closed_idle), (2, 1, 1, 0, 1));
    assert_eq!((wang.first_reply_p50_ms, wang.owning_now), (Some(40_000), 0));
}

#[test]
fn steps_of_one_millisecond_follow_the_state() {
    let mut r = Rows::new();
    // The wait times out and the next handoff comes the same millisecond (listed first).
    r.waiting("a", FROM + 1_000);
    r.waiting("a", FROM + 5_000);
    r.wait_timeout("a", FROM + 5_000);
    // A claim and the agent's reply in the same millisecond (reply listed first).
    r.said("b", FROM + 2_000, "li");
    r.claimed("b", FROM + 2_000, "li");
    r.waiting("b", FROM + 1_500);
    // A return and a new handoff in the same millisecond (handoff listed first, and ranked
    // first: only the state tells that the return came before it).
    r.waiting("c", FROM + 3_000);
    r.claimed("c", FROM + 4_000, "li");
    r.waiting("c", FROM + 8_000);
    r.returned("c", FROM + 8_000, "li");
    let report = compute_report(&r.rows, &window(), true);
    assert!(report.truncated);
    assert_eq!(report.handoffs, 5);
    assert_eq!(report.outcomes.abandoned_wait_timeout, 1);
    assert_eq!(report.outcomes.returned, 1);
    assert_eq!(report.waiting_now, 2, "a waits again after its timeout, c after its return");
    assert_eq!(report.time_to_first_reply.p50_ms, Some(0));
    assert_eq!(report.time_to_claim, Timing { count: 2, p50_ms: Some(500), p99_ms: Some(1_000), max_ms: Some(1_000) });
    assert_eq!(report.agents[0].owning_now, 1, "b");
}

#[test]
fn nothing_in_the_window_gives_zeros_and_nulls() {
    let report = compute_report(&[], &window(), false);
    assert_eq!(report.queue.len(), 15);
    assert!(report.queue.iter().all(|p| p.waiting == 0));
    assert_eq!(report.time_to_claim, Timing::default());
    assert_eq!(report.outcomes, Outcomes::default());
    assert!(report.agents.is_empty());
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["time_to_claim"]["p50_ms"], serde_json::Value::Null);
    assert_eq!(json["abandon_after_ms"], 300_000);
}
