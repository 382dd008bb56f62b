//! The topology's configuration file (`--config FILE`, YAML). Every field has a default, so
//! the file only names what differs.
//!
//! ```yaml
//! intent_models: { zh-CN: .switchboard/intent/zh, en: .switchboard/intent/en }
//! knowledge_base: .switchboard/kb
//! handoff_threshold: 0.75
//! vector_backend: exact        # or qdrant (QDRANT_URL, QDRANT_API_KEY, QDRANT_COLLECTION_PREFIX)
//! idle_timeout_secs: 1800
//! wait_timeout_ms: 120000      # a handoff unclaimed by an agent this long (event time) …
//! on_wait_timeout: back_to_bot # … goes back to the bot with an apology, or stay_queued
//! ```

use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use switchboard_operators::session::SessionConfig;

/// Topology settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopologyConfig {
    /// Trained intent model folder per locale (`zh-CN`, `en`).
    pub intent_models: BTreeMap<String, PathBuf>,
    /// Knowledge-base snapshot root (written by `switchboard kb load`).
    pub knowledge_base: PathBuf,
    /// Below this calibrated confidence the bot hands over. 0.75 keeps the answered turns of
    /// the demo test set ≥ 95 % correct while most out-of-scope turns go to a human.
    pub handoff_threshold: f32,
    /// Below this blended score retrieval returns no answer: one number for every locale, or one
    /// per locale (`{zh-CN: 0.59, en: 0.32}`, the default; the encoders score on different
    /// scales, see `operators::retrieval::Thresholds`).
    pub retrieval_threshold: RetrievalThreshold,
    /// The vector index behind retrieval: `exact` (in process, the default) or `qdrant` (the
    /// server at `QDRANT_URL`; each knowledge-base snapshot is synced to it before it serves).
    pub vector_backend: String,
    /// A dialogue idle this long (event time) closes.
    pub idle_timeout_secs: u64,
    /// Most open dialogues per worker.
    pub max_dialogues: usize,
    /// A dialogue handed off and not claimed by an agent this long (event time, ms) follows
    /// `on_wait_timeout`.
    pub wait_timeout_ms: u64,
    /// `back_to_bot` (the default: the bot answers again, its next answer apologising for the
    /// wait) or `stay_queued` (the user's turns stay queued until an agent claims the dialogue
    /// or it closes idle).
    pub on_wait_timeout: switchboard_operators::ownership::OnWaitTimeout,
    /// Most records per worker and epoch.
    pub batch_max: usize,
    /// Longest a worker waits before it advances its input with nothing to read, ms (timers;
    /// peers in other processes of a cluster).
    pub poll_wait_ms: u64,
    /// Records read and not yet durable, per process, above which reading pauses
    /// (backpressure instead of unbounded memory).
    pub max_in_flight: usize,
    /// A turn met this long (ms) after the gateway received it is expired: it is recorded with
    /// the timeout handoff its user gets from the gateway (`SWITCHBOARD_GATEWAY_ANSWER_TIMEOUT_MS`,
    /// 5 000 by default; keep this below it) instead of going through the model. Only an
    /// overloaded system meets turns this old; expiring them keeps its backlog short, so it
    /// answers what it can in time and is responsive again soon after a burst. 0 turns it off.
    pub expire_turns_after_ms: u64,
    /// ClickHouse group commit: at most one insert per table this often, ms; every epoch's rows
    /// wait at most this long for their insert to start.
    pub clickhouse_insert_interval_ms: u64,
    /// Consumer group of the topology.
    pub group_id: String,
    /// Input topic.
    pub input_topic: String,
    /// Topic for answers and handoffs.
    pub replies_topic: String,
    /// Topic for dead letters.
    pub dead_letter_topic: String,
    /// Where `/metrics` is served (`run`, `submit`); empty to disable.
    pub metrics_listen: String,
    /// Classify (and embed for retrieval) on this model server instead of in process
    /// (`switchboard model serve`); the server loads the models, `intent_models` then only
    /// names the locales.
    pub model_server: Option<switchboard_connectors::model_server::ModelServerSettings>,
}

/// `retrieval_threshold`: a number for all locales or a map by locale name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RetrievalThreshold {
    /// The same for every locale.
    All(f32),
    /// Per locale (`zh-CN`, `en`); a locale not named keeps its default.
    PerLocale(BTreeMap<String, f32>),
}

impl Default for RetrievalThreshold {
    fn default() -> Self {
        let defaults = switchboard_operators::retrieval::Thresholds::default();
        RetrievalThreshold::PerLocale([("zh-CN".to_string(), defaults.zh_cn), ("en".to_string(), defaults.en)].into_iter().collect())
    }
}

impl RetrievalThreshold {
    /// The thresholds, or the name of a locale that does not exist.
    pub fn resolve(&self) -> std::result::Result<switchboard_operators::retrieval::Thresholds, String> {
        let mut thresholds = switchboard_operators::retrieval::Thresholds::default();
        match self {
            RetrievalThreshold::All(value) => thresholds = switchboard_operators::retrieval::Thresholds::all(*value),
            RetrievalThreshold::PerLocale(map) => {
                for (locale, value) in map {
                    match locale.as_str() {
                        "zh-CN" | "zh" => thresholds.zh_cn = *value,
                        "en" => thresholds.en = *value,
                        other => return Err(format!("retrieval_threshold: unknown locale `{other}` (zh-CN or en)")),
                    }
                }
            }
        }
        Ok(thresholds)
    }
}

/// The dev state folder (`SWITCHBOARD_STATE`, default `.switchboard`).
pub fn state_dir() -> PathBuf {
    std::env::var("SWITCHBOARD_STATE").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(".switchboard"))
}

impl Default for TopologyConfig {
    fn default() -> Self {
        let state = state_dir();
        let mut intent_models = BTreeMap::new();
        intent_models.insert("zh-CN".to_string(), state.join("intent/zh"));
        intent_models.insert("en".to_string(), state.join("intent/en"));
        TopologyConfig {
            intent_models,
            knowledge_base: state.join("kb"),
            handoff_threshold: 0.75,
            retrieval_threshold: RetrievalThreshold::default(),
            vector_backend: "exact".into(),
            idle_timeout_secs: 30 * 60,
            max_dialogues: 1_000_000,
            wait_timeout_ms: 120_000,
            on_wait_timeout: Default::default(),
            batch_max: 512,
            poll_wait_ms: 20,
            max_in_flight: 50_000,
            expire_turns_after_ms: 2_000,
            clickhouse_insert_interval_ms: 200,
            group_id: "switchboard-topology".into(),
            input_topic: switchboard_schemas::topics::USER_SAID.into(),
            replies_topic: switchboard_schemas::topics::BOT_SAID.into(),
            dead_letter_topic: switchboard_schemas::topics::DEAD_LETTER.into(),
            metrics_listen: "127.0.0.1:9100".into(),
            model_server: None,
        }
    }
}

impl TopologyConfig {
    /// Reads the file, or the defaults when `path` is None.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else { return Ok(Self::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))?;
        serde_yaml::from_str(&text).with_context(|| format!("bad config {}", path.display()))
    }

    /// The session settings.
    pub fn session(&self) -> SessionConfig {
        SessionConfig {
            handoff_threshold: self.handoff_threshold,
            idle_timeout_ms: i64::try_from(self.idle_timeout_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            max_unresolved: 2,
            max_dialogues: self.max_dialogues,
            wait_timeout_ms: i64::try_from(self.wait_timeout_ms).unwrap_or(i64::MAX),
            on_wait_timeout: self.on_wait_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> TopologyConfig {
        serde_yaml::from_str(yaml).expect("config parses")
    }

    #[test]
    fn retrieval_threshold_is_a_number_or_a_map_by_locale() {
        let all = parse("retrieval_threshold: 0.5\n").retrieval_threshold.resolve().expect("valid");
        assert_eq!((all.zh_cn, all.en), (0.5, 0.5));
        let per = parse("retrieval_threshold: {en: 0.3}\n").retrieval_threshold.resolve().expect("valid");
        assert_eq!((per.zh_cn, per.en), (switchboard_operators::retrieval::Thresholds::default().zh_cn, 0.3));
        let bad = parse("retrieval_threshold: {fr: 0.3}\n").retrieval_threshold.resolve();
        assert!(bad.is_err_and(|e| e.contains("fr")));
        assert_eq!(TopologyConfig::default().retrieval_threshold.resolve(), Ok(Default::default()));
    }

    #[test]
    fn the_wait_for_an_agent_is_configured_by_its_timeout_and_rule() {
        use switchboard_operators::ownership::OnWaitTimeout;
        let defaults = TopologyConfig::default().session();
        assert_eq!((defaults.wait_timeout_ms, defaults.on_wait_timeout), (120_000, OnWaitTimeout::BackToBot));
        let set = parse("wait_timeout_ms: 30000\non_wait_timeout: stay_queued\n").session();
        assert_eq!((set.wait_timeout_ms, set.on_wait_timeout), (30_000, OnWaitTimeout::StayQueued));
        assert!(serde_yaml::from_str::<TopologyConfig>("on_wait_timeout: later\n").is_err());
    }
}
