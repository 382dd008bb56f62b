//! `report.html`: the shadow report for people, one self-contained page (no script, no outside
//! resource). Every text from the traffic (users' words, answers, ids) is HTML-escaped: a
//! user's text is shown, never interpreted.

use super::compare::{TurnDiff, TurnView};
use super::Report;
use html_escape::encode_text as esc;
use std::fmt::Write;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:110em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;vertical-align:top;text-align:left}\
th{background:#f3f3f3}.changed{background:#fff4d6}.fail{color:#b00020;font-weight:bold}.pass{color:#186a1c}\
.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#777}h2{margin-top:1.5em}";

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn share(n: u64, of: u64) -> String {
    if of == 0 {
        "0.00%".into()
    } else {
        pct(n as f64 / of as f64)
    }
}

/// One version's handling of a turn, as a table cell's content.
fn view(v: &TurnView) -> String {
    let mut out = String::new();
    let intent = v.intent.as_deref().unwrap_or("-");
    let confidence = v.confidence.map(|c| format!(" ({c:.2})")).unwrap_or_default();
    let _ = write!(out, "<b>{}</b>{} · {}", esc(v.outcome), esc(&confidence), esc(intent));
    if let Some(entry) = &v.entry {
        let _ = write!(out, " · <span class=muted>{}</span>", esc(entry));
    }
    if let Some(reason) = &v.handoff {
        let _ = write!(out, "<br>handoff: {}", esc(reason));
    }
    if let Some(answer) = &v.answer {
        let _ = write!(out, "<br>{}", esc(answer));
    }
    out
}

fn turn_row(out: &mut String, t: &TurnDiff, with_dialogue: bool) {
    let class = if t.changes.is_empty() { "" } else { " class=changed" };
    let _ = write!(out, "<tr{class}>");
    if with_dialogue {
        let _ = write!(out, "<td>{}<br><span class=muted>{}</span></td>", esc(&t.dialogue_id), esc(&t.client_msg_id));
    }
    let _ = write!(
        out,
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&t.text),
        esc(&t.changes.join(", ")),
        view(&t.current),
        view(&t.candidate)
    );
}

/// Renders the report as a page.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html><html><head><meta charset=utf-8><title>Shadow report</title><style>{STYLE}</style></head><body>\
         <h1>Shadow report</h1><p>{} · {} records · <b>{}</b> user turns compared · {} changed ({})</p>",
        esc(&r.input),
        r.records,
        r.turns,
        r.changed.turns,
        share(r.changed.turns, r.turns)
    );

    o.push_str("<h2>Gates</h2>");
    if r.gates.is_empty() {
        o.push_str("<p class=muted>No gate was given (--fail-if).</p>");
    } else {
        o.push_str("<table><tr><th>gate</th><th>value</th><th>verdict</th></tr>");
        for g in &r.gates {
            let (class, word) = if g.failed { ("fail", "FAILED") } else { ("pass", "passed") };
            let _ = write!(o, "<tr><td>{}</td><td>{}</td><td class={class}>{word}</td></tr>", esc(&g.gate), esc(&g.value));
        }
        o.push_str("</table>");
    }

    o.push_str("<h2>Versions</h2><table><tr><th>component</th><th>current</th><th>candidate</th></tr>");
    let join = |set: Option<&std::collections::BTreeSet<String>>| set.map(|s| s.iter().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default();
    let locales: std::collections::BTreeSet<&String> = r.current.models.keys().chain(r.candidate.models.keys()).collect();
    for locale in locales {
        let _ = write!(
            o,
            "<tr><td>intent model {}</td><td>{}</td><td>{}</td></tr>",
            esc(locale),
            esc(&join(r.current.models.get(locale))),
            esc(&join(r.candidate.models.get(locale)))
        );
    }
    let _ = write!(o, "<tr><td>knowledge base</td><td>{}</td><td>{}</td></tr></table>", esc(&join(Some(&r.current.kb))), esc(&join(Some(&r.candidate.kb))));

    o.push_str("<h2>What changed</h2><table><tr><th>turns whose …</th><th>turns</th><th>share</th></tr>");
    for (what, n) in [
        ("intent changed", r.changed.intents),
        ("answer text changed", r.changed.answers),
        ("retrieved entry changed", r.changed.entries),
        ("handoff decision changed", r.changed.handoffs),
        ("kind of reply changed", r.changed.outcomes),
        ("anything changed", r.changed.turns),
    ] {
        let _ = write!(o, "<tr><td>{what}</td><td class=num>{n}</td><td class=num>{}</td></tr>", share(n, r.turns));
    }
    o.push_str("</table><table><tr><th>rate</th><th>current</th><th>candidate</th><th>delta</th></tr>");
    let rates = &r.rates;
    for (name, a, b) in [
        ("handoff", rates.current.handoff_rate, rates.candidate.handoff_rate),
        ("clarifying question", rates.current.clarify_rate, rates.candidate.clarify_rate),
        ("answered", rates.current.answer_rate, rates.candidate.answer_rate),
    ] {
        let _ = write!(
            o,
            "<tr><td>{name}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{:+.2}pp</td></tr>",
            pct(a),
            pct(b),
            (b - a) * 100.0
        );
    }
    o.push_str("</table>");

    o.push_str("<h2>Intent confusion (current → candidate)</h2>");
    let moved: Vec<_> = r.confusion.iter().filter(|c| c.current != c.candidate).collect();
    let kept: u64 = r.confusion.iter().filter(|c| c.current == c.candidate).map(|c| c.turns).sum();
    let _ = write!(o, "<p>{kept} turns kept their intent; {} moved.</p>", moved.iter().map(|c| c.turns).sum::<u64>());
    if !moved.is_empty() {
        o.push_str("<table><tr><th>current</th><th>candidate</th><th>turns</th></tr>");
        for c in moved {
            let _ = write!(o, "<tr><td>{}</td><td>{}</td><td class=num>{}</td></tr>", esc(&c.current), esc(&c.candidate), c.turns);
        }
        o.push_str("</table>");
    }

    let _ = write!(o, "<h2>Changed dialogues, side by side ({} shown)</h2>", r.sample_dialogues.len());
    for d in &r.sample_dialogues {
        let _ = write!(o, "<h3>{} <span class=muted>({} of {} turns changed)</span></h3>", esc(&d.dialogue_id), d.changed_turns, d.turns.len());
        o.push_str("<table><tr><th>user said</th><th>changed</th><th>current</th><th>candidate</th></tr>");
        for t in &d.turns {
            turn_row(&mut o, t, false);
        }
        o.push_str("</table>");
    }

    let _ = write!(o, "<h2>Every changed turn ({})</h2>", r.changed_turns.len());
    if r.changed_turns_omitted > 0 {
        let _ = write!(o, "<p class=muted>{} more changed turns are counted above but not listed.</p>", r.changed_turns_omitted);
    }
    if !r.changed_turns.is_empty() {
        o.push_str("<table><tr><th>dialogue</th><th>user said</th><th>changed</th><th>current</th><th>candidate</th></tr>");
        for t in &r.changed_turns {
            turn_row(&mut o, t, true);
        }
        o.push_str("</table>");
    }
    o.push_str(
        "<p class=muted>Per-stage times of both versions are measured, so they are in timings.json beside this \
         page rather than here: this page and report.json are the same for the same inputs.</p></body></html>\n",
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::compare::{Changed, Rates, Versions};
    use crate::shadow::RateSummary;

    #[test]
    fn texts_from_the_traffic_are_escaped_not_interpreted() {
        let turn = TurnDiff {
            dialogue_id: "d<1>".into(),
            client_msg_id: "m\"1".into(),
            said_at: 1,
            text: "<script>alert(1)</script> & more".into(),
            changes: vec!["answer"],
            current: TurnView { outcome: "answer", answer: Some("<b>old</b>".into()), ..Default::default() },
            candidate: TurnView { outcome: "answer", answer: Some("<img src=x onerror=alert(2)>".into()), ..Default::default() },
        };
        let report = Report {
            report_format: 1,
            input: "<in>".into(),
            records: 1,
            turns: 1,
            current: Versions::default(),
            candidate: Versions::default(),
            changed: Changed { turns: 1, answers: 1, ..Default::default() },
            rates: RateSummary { current: Rates::default(), candidate: Rates::default(), handoff_rate_delta_pp: 0.0, clarify_rate_delta_pp: 0.0 },
            confusion: Vec::new(),
            sample_dialogues: Vec::new(),
            changed_turns: vec![turn],
            changed_turns_omitted: 0,
            gates: Vec::new(),
        };
        let page = render(&report);
        for raw in ["<script>", "<img", "<b>old", "d<1>", "<in>"] {
            assert!(!page.contains(raw), "{raw} reached the page unescaped");
        }
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"), "{page}");
        assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"));
    }
}
