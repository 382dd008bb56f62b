//! Chat clients that behave like the chat page (`gateway/static/chat.html`) under faults, for
//! `deploy/dev/chaos.sh`: each client opens a dialogue on one of the gateways, says its turns on
//! an open-loop schedule, and when its connection goes away (a gateway killed or draining) it
//! reconnects — to the next gateway, with the page's backoff — resumes its dialogue with the
//! resume token and re-sends every unanswered say with the same `client_msg_id`; an
//! `unavailable` or `rate_limited` error makes it re-send them 2–3 s later.
//!
//! The workload is deterministic for a seed (client `i`'s `k`-th say always has the same text),
//! so a run with faults can be compared say by say with a run without. It writes one JSON line
//! per say to `--out` (client, seq, text, scheduled time, the first reply frame, how many reply
//! frames came and with how many distinct event ids, re-sends) and prints a summary JSON line.
//!
//! ```text
//! target/release/examples/chaos_clients --urls ws://127.0.0.1:8080/ws,ws://127.0.0.1:8090/ws \
//!     --clients 100 --rate 50 --duration 150 --seed 7 --out says.ndjson
//! ```

use anyhow::{anyhow, bail, Context, Result};
use futures::{SinkExt, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use switchboard_cli::loadgen::utterances;
use switchboard_schemas::Locale;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

struct Options {
    urls: Vec<String>,
    clients: usize,
    rate: f64,
    duration: Duration,
    seed: u64,
    out: String,
    /// After the last say, how long replies are waited for.
    grace: Duration,
}

fn options() -> Result<Options> {
    let mut o = Options { urls: Vec::new(), clients: 50, rate: 20.0, duration: Duration::from_secs(60), seed: 1, out: "says.ndjson".into(), grace: Duration::from_secs(60) };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--urls" => o.urls = value.split(',').map(str::to_string).collect(),
            "--clients" => o.clients = value.parse().context("--clients")?,
            "--rate" => o.rate = value.parse().context("--rate")?,
            "--duration" => o.duration = Duration::from_secs_f64(value.parse().context("--duration (seconds)")?),
            "--seed" => o.seed = value.parse().context("--seed")?,
            "--out" => o.out = value,
            "--grace" => o.grace = Duration::from_secs_f64(value.parse().context("--grace (seconds)")?),
            other => bail!("unknown flag {other} (--urls A,B --clients N --rate R --duration S --seed N --out FILE --grace S)"),
        }
    }
    if o.urls.is_empty() || o.clients == 0 || !(o.rate.is_finite() && o.rate > 0.0) {
        bail!("give --urls, and positive --clients and --rate");
    }
    Ok(o)
}

/// Client `client`'s `seq`-th text: Zipf over the built-in utterances, fixed by the seed.
fn text_of(seed: u64, client: usize, seq: usize) -> String {
    let list = utterances(Locale::ZhCn);
    let mut x = seed ^ ((client as u64) << 32) ^ (seq as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    for _ in 0..3 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    let weights: Vec<f64> = (1..=list.len()).map(|r| 1.0 / r as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut u = (x % 1_000_000) as f64 / 1_000_000.0 * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return list[i].to_string();
        }
        u -= w;
    }
    list[0].to_string()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// What happened to one say.
#[derive(Debug, Clone, serde::Serialize)]
struct SayRecord {
    client: usize,
    seq: usize,
    client_msg_id: String,
    text: String,
    /// Scheduled send time, ms since the epoch.
    sent_ms: i64,
    /// The first reply frame: answer, handoff, queued or error (an `error` only when final).
    kind: Option<String>,
    reply_text: Option<String>,
    reason: Option<String>,
    intent: Option<String>,
    latency_ms: Option<i64>,
    /// Reply frames received for it (a resumed dialogue re-delivers replies: same event id).
    replies: usize,
    /// Distinct event ids among its answer frames (2 or more: answered twice differently).
    answer_ids: usize,
    resends: usize,
    dialogue_id: String,
}

struct Client {
    index: usize,
    dialogue: Option<(String, String)>,
    says: BTreeMap<String, SayRecord>,
    answer_ids: BTreeMap<String, BTreeSet<String>>,
    /// Failed connection attempts.
    reconnects: usize,
    /// Connections after the first that resumed the dialogue (or started a new one).
    resumed: usize,
    resume_refused: usize,
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Client {
    /// The says without a reply, in the order they were said (as the page re-sends them).
    fn unanswered(&self) -> Vec<(String, String)> {
        let mut open: Vec<&SayRecord> = self.says.values().filter(|s| s.kind.is_none()).collect();
        open.sort_by_key(|s| s.seq);
        open.into_iter().map(|s| (s.client_msg_id.clone(), s.text.clone())).collect()
    }

    /// Connects to the gateways in turn until one welcomes the dialogue; resends what is open.
    async fn connect(&mut self, urls: &[String], attempt: &mut usize, deadline: Instant) -> Option<Socket> {
        let mut backoff = Duration::from_millis(500);
        loop {
            if Instant::now() >= deadline {
                return None;
            }
            let url = &urls[(self.index + *attempt) % urls.len()];
            *attempt += 1;
            if let Ok(Ok((mut ws, _))) = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(url.as_str())).await {
                let mut hello = serde_json::json!({"type": "hello", "user_id": format!("chaos-u{}", self.index), "locale": "zh-CN"});
                if let Some((dialogue, token)) = &self.dialogue {
                    hello["dialogue_id"] = dialogue.clone().into();
                    hello["resume_token"] = token.clone().into();
                }
                if ws.send(Message::Text(hello.to_string().into())).await.is_ok() {
                    if let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                        if v["type"] == "welcome" {
                            if self.dialogue.is_some() {
                                self.resumed += 1;
                            }
                            let dialogue = v["dialogue_id"].as_str().unwrap_or_default().to_string();
                            let token = v["resume_token"].as_str().unwrap_or_default().to_string();
                            self.dialogue = Some((dialogue, token));
                            let mut ok = true;
                            for (id, text) in self.unanswered() {
                                let say = serde_json::json!({"type": "say", "client_msg_id": id, "text": text});
                                ok &= ws.send(Message::Text(say.to_string().into())).await.is_ok();
                                if let Some(s) = self.says.get_mut(&id) {
                                    s.resends += 1;
                                }
                            }
                            if ok {
                                return Some(ws);
                            }
                        } else if v["type"] == "error" && v["code"] == "unauthorized" && self.dialogue.is_some() {
                            // As the page does: the dialogue cannot be resumed (another
                            // gateway's key, an expired token): start a new one at once.
                            self.resume_refused += 1;
                            self.dialogue = None;
                            continue;
                        }
                    }
                }
            }
            self.reconnects += 1;
            let jitter = 0.75 + (now_ms() % 500) as f64 / 1000.0;
            tokio::time::sleep(backoff.mul_f64(jitter)).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Applies one server frame; true when the connection should be replaced (`reconnect`).
    fn on_frame(&mut self, v: &serde_json::Value, resend_at: &mut Option<Instant>) -> bool {
        let kind = v["type"].as_str().unwrap_or_default();
        match kind {
            "answer" | "handoff" | "queued" => {
                let id = v["in_reply_to"].as_str().unwrap_or_default().to_string();
                if kind == "answer" {
                    if let Some(e) = v["event_id"].as_str() {
                        self.answer_ids.entry(id.clone()).or_default().insert(e.to_string());
                    }
                }
                if let Some(say) = self.says.get_mut(&id) {
                    say.replies += 1;
                    say.answer_ids = self.answer_ids.get(&id).map(BTreeSet::len).unwrap_or(0);
                    if say.kind.is_none() {
                        say.kind = Some(kind.to_string());
                        say.reply_text = v["text"].as_str().map(str::to_string);
                        say.reason = v["reason"].as_str().map(str::to_string);
                        say.intent = v["intent"].as_str().map(str::to_string);
                        say.latency_ms = Some(now_ms() - say.sent_ms);
                    }
                }
                false
            }
            "error" => {
                let code = v["code"].as_str().unwrap_or_default();
                if matches!(code, "unavailable" | "rate_limited" | "server_busy") && resend_at.is_none() {
                    *resend_at = Some(Instant::now() + Duration::from_millis(2000 + (now_ms() % 1000) as u64));
                }
                false
            }
            "reconnect" => true,
            _ => false,
        }
    }
}

async fn run_client(index: usize, urls: Vec<String>, mut schedule: mpsc::Receiver<(usize, String, i64)>, end: Instant) -> Client {
    let mut client = Client { index, dialogue: None, says: BTreeMap::new(), answer_ids: BTreeMap::new(), reconnects: 0, resumed: 0, resume_refused: 0 };
    let mut attempt = 0;
    let mut ws = client.connect(&urls, &mut attempt, end).await;
    let mut resend_at: Option<Instant> = None;
    let mut schedule_open = true;
    while let Some(socket) = ws.as_mut() {
        let done = !schedule_open && client.unanswered().is_empty();
        if done || Instant::now() >= end {
            let _ = socket.close(None).await;
            break;
        }
        let resend_sleep = resend_at.map(tokio::time::sleep_until);
        let mut replace = false;
        tokio::select! {
            next = schedule.recv(), if schedule_open => match next {
                Some((seq, text, sent_ms)) => {
                    let id = format!("c{index}-k{seq}");
                    let dialogue_id = client.dialogue.as_ref().map(|d| d.0.clone()).unwrap_or_default();
                    client.says.insert(id.clone(), SayRecord {
                        client: index, seq, client_msg_id: id.clone(), text: text.clone(), sent_ms, kind: None, reply_text: None,
                        reason: None, intent: None, latency_ms: None, replies: 0, answer_ids: 0, resends: 0, dialogue_id,
                    });
                    let say = serde_json::json!({"type": "say", "client_msg_id": id, "text": text});
                    replace = socket.send(Message::Text(say.to_string().into())).await.is_err();
                }
                None => schedule_open = false,
            },
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                    replace = client.on_frame(&v, &mut resend_at);
                }
                Some(Ok(_)) => {}
                _ => replace = true,
            },
            _ = async { if let Some(s) = resend_sleep { s.await } }, if resend_at.is_some() => {
                resend_at = None;
                for (id, text) in client.unanswered() {
                    let say = serde_json::json!({"type": "say", "client_msg_id": id, "text": text});
                    replace |= socket.send(Message::Text(say.to_string().into())).await.is_err();
                    if let Some(s) = client.says.get_mut(&id) { s.resends += 1; }
                }
            }
            _ = tokio::time::sleep_until(end) => {}
        }
        if replace {
            ws = client.connect(&urls, &mut attempt, end).await;
        }
    }
    // Says scheduled while no connection could be had.
    while let Ok((seq, text, sent_ms)) = schedule.try_recv() {
        let id = format!("c{index}-k{seq}");
        client.says.insert(id.clone(), SayRecord {
            client: index, seq, client_msg_id: id, text, sent_ms, kind: None, reply_text: None, reason: None, intent: None,
            latency_ms: None, replies: 0, answer_ids: 0, resends: 0, dialogue_id: String::new(),
        });
    }
    client
}

fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let o = options()?;
    let start = Instant::now();
    let end = start + o.duration + o.grace;
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..o.clients {
        let (tx, rx) = mpsc::channel(100_000);
        senders.push(tx);
        tasks.push(tokio::spawn(run_client(i, o.urls.clone(), rx, end)));
    }
    // Give the clients a moment to connect before the schedule starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let schedule_start = Instant::now();
    let total = (o.rate * o.duration.as_secs_f64()).floor() as usize;
    let mut per_client = vec![0usize; o.clients];
    for k in 0..total {
        let at = schedule_start + Duration::from_secs_f64(k as f64 / o.rate);
        tokio::time::sleep_until(at).await;
        let client = k % o.clients;
        let seq = per_client[client];
        per_client[client] += 1;
        let _ = senders[client].send((seq, text_of(o.seed, client, seq), now_ms())).await;
    }
    drop(senders);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&o.out).with_context(|| format!("create {}", o.out))?);
    let (mut sent, mut replied, mut twice, mut reconnects, mut refused, mut resent, mut resumed) = (0, 0, 0, 0, 0, 0, 0);
    let mut latencies = Vec::new();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for task in tasks {
        let client = task.await.context("client task")?;
        reconnects += client.reconnects;
        resumed += client.resumed;
        refused += client.resume_refused;
        for say in client.says.values() {
            sent += 1;
            if let Some(kind) = &say.kind {
                replied += 1;
                *kinds.entry(kind.clone()).or_default() += 1;
                latencies.extend(say.latency_ms);
            }
            if say.answer_ids > 1 {
                twice += 1;
            }
            if say.resends > 0 {
                resent += 1;
            }
            serde_json::to_writer(&mut out, say)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    latencies.sort_unstable();
    println!(
        "{}",
        serde_json::json!({
            "sent": sent, "replied": replied, "lost": sent - replied, "answered_twice_differently": twice,
            "kinds": kinds, "says_resent": resent, "failed_connects": reconnects, "resumed": resumed, "resume_refused": refused,
            "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99), "max_ms": latencies.last().copied().unwrap_or(0),
            "seconds": start.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}
