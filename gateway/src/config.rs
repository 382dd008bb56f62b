//! The gateway's configuration, with defaults and `SWITCHBOARD_GATEWAY_*` environment overrides.

use crate::admin::AdminConfig;
use crate::tokens::{IdTokenVerifier, ResumeKeys};
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings, SettingsError};
use switchboard_schemas::topics;

/// Everything the gateway needs to run. Build it with [`GatewayConfig::from_env`] (the
/// `switchboard gateway` subcommand) or start from [`GatewayConfig::new`] and set fields
/// (tests, embedding).
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Address to listen on (`SWITCHBOARD_GATEWAY_LISTEN`, default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// How to reach Kafka (the shared `SWITCHBOARD_KAFKA_*` settings).
    pub kafka: KafkaSettings,
    /// The topic user turns are produced to (`SWITCHBOARD_GATEWAY_USER_SAID_TOPIC`,
    /// default `user.said`).
    pub user_said_topic: String,
    /// The topic answers and handoffs are read from (`SWITCHBOARD_GATEWAY_BOT_SAID_TOPIC`,
    /// default `bot.said`).
    pub bot_said_topic: String,
    /// This instance's name, used in logs and Kafka client ids (`SWITCHBOARD_GATEWAY_INSTANCE_ID`,
    /// default `gw-` and a fresh UUIDv7).
    pub instance_id: String,
    /// Per-connection and per-message limits.
    pub limits: Limits,
    /// How long to wait for an answer after the broker acknowledged a say before the client gets
    /// a `handoff` with reason `timeout` (`SWITCHBOARD_GATEWAY_ANSWER_TIMEOUT_MS`, default 5 s).
    pub answer_timeout: Duration,
    /// How long the broker may take to acknowledge a say before the client gets an
    /// `unavailable` error (`SWITCHBOARD_GATEWAY_PRODUCE_TIMEOUT_MS`, default 5 s).
    pub produce_timeout: Duration,
    /// Whether the `user.said` producer is idempotent (`enable.idempotence`): on by default like
    /// every producer of the project, off with `SWITCHBOARD_KAFKA_IDEMPOTENCE=false` (for a
    /// broker without idempotent produce). An idempotent producer keeps producing across a
    /// broker restart (`sources/tests/idempotent_producer_restart.rs`). Either way a say is
    /// accepted only after `acks=all`, retried says are deduplicated by the gateway and a record
    /// written twice by a client-library retry keeps its event id.
    pub idempotent_producer: bool,
    /// How long a disconnected dialogue's state (pending says, unsent answers, the dedup window
    /// of client message ids) is kept for a resume (`SWITCHBOARD_GATEWAY_RESUME_WINDOW_SECS`,
    /// default 600 s).
    pub resume_window: Duration,
    /// The `after_ms` hint in the `reconnect` frame sent while draining
    /// (`SWITCHBOARD_GATEWAY_RECONNECT_AFTER_MS`, default 1000).
    pub reconnect_after_ms: u64,
    /// The secret hello tokens are checked with, if any (`SWITCHBOARD_GATEWAY_HMAC_SECRET` or the
    /// file named by `SWITCHBOARD_GATEWAY_HMAC_SECRET_FILE`). When set, a hello must carry
    /// `token` = hex(HMAC-SHA256(secret, user_id)).
    pub hmac_secret: Option<Secret>,
    /// Where the operations console (`/console`, see [`crate::console`]) reads
    /// `switchboard.events` from: the shared `SWITCHBOARD_CLICKHOUSE_*` settings. `None` (the
    /// default of [`GatewayConfig::new`]) serves no console; [`GatewayConfig::from_env`] always
    /// sets it. A ClickHouse that is down only makes the console's API answer 503.
    pub clickhouse: Option<ClickHouseSettings>,
    /// The admin listener: console, agent page, `/metrics`, logins ([`AdminConfig`]).
    pub admin: AdminConfig,
    /// The keys that sign and verify resume tokens ([`ResumeKeys`]); [`GatewayConfig::new`] makes
    /// a random one (resumes then work on this instance only).
    pub resume_keys: ResumeKeys,
    /// How the host site's id tokens are checked, if it sends any ([`IdTokenVerifier`]).
    pub id_tokens: Option<IdTokenVerifier>,
    /// A header set by a trusted proxy that carries the client's address
    /// (`SWITCHBOARD_GATEWAY_CLIENT_IP_HEADER`, e.g. `X-Forwarded-For`; the last entry counts).
    /// Unset (the default), the TCP peer's address counts. Set it only behind a proxy that
    /// overwrites the header, or clients can pick their address.
    pub client_ip_header: Option<String>,
}

/// Limits that protect the gateway from misbehaving clients.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest client frame answered normally; a larger one gets `too_large` and the connection
    /// stays open (`SWITCHBOARD_GATEWAY_MAX_FRAME_BYTES`, default 16 KiB).
    pub max_frame_bytes: usize,
    /// A frame larger than this gets `too_large` and the connection is closed (default 64 KiB).
    pub close_frame_bytes: usize,
    /// The WebSocket layer refuses messages larger than this outright (default 2 MiB); the
    /// gateway still tries to send `too_large` before closing.
    pub max_message_bytes: usize,
    /// Longest `say` text in characters (`SWITCHBOARD_GATEWAY_MAX_TEXT_CHARS`, default 2000).
    pub max_text_chars: usize,
    /// Token-bucket refill rate, frames per second per connection
    /// (`SWITCHBOARD_GATEWAY_RATE_PER_SEC`, default 5).
    pub rate_per_sec: f64,
    /// Token-bucket size (`SWITCHBOARD_GATEWAY_RATE_BURST`, default 10).
    pub rate_burst: u32,
    /// Most concurrent WebSocket connections (`SWITCHBOARD_GATEWAY_MAX_CONNECTIONS`, default
    /// 10 000); one more gets `server_busy` and is closed.
    pub max_connections: usize,
    /// Most concurrent connections from one client address
    /// (`SWITCHBOARD_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS`, default 256).
    pub max_connections_per_address: usize,
    /// Hellos per second one client address may send (`SWITCHBOARD_GATEWAY_HELLO_RATE_PER_ADDRESS`,
    /// default 10, in bursts of up to 5 × that).
    pub hello_rate_per_address: f64,
    /// Most dialogues held for one client address (`SWITCHBOARD_GATEWAY_MAX_DIALOGUES_PER_ADDRESS`,
    /// default 1 024): one address cannot fill the dialogue cap.
    pub max_dialogues_per_address: usize,
    /// Most dialogues held (connected or waiting for a resume); default 4 × `max_connections`.
    pub max_dialogues: usize,
    /// A connection that sends nothing for this long is closed
    /// (`SWITCHBOARD_GATEWAY_IDLE_TIMEOUT_SECS`, default 300 s).
    pub idle_timeout: Duration,
    /// Admission control: most says of this instance handed to the broker and not yet replied
    /// to (`SWITCHBOARD_GATEWAY_MAX_PENDING_SAYS`, default 2 000); a say beyond it gets
    /// `server_busy` at once instead of joining a queue it would time out in. Size it to about
    /// what the topology answers in half a second, divided among the gateways.
    pub max_pending_says: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 16 * 1024,
            close_frame_bytes: 64 * 1024,
            max_message_bytes: 2 * 1024 * 1024,
            max_text_chars: 2000,
            rate_per_sec: 5.0,
            rate_burst: 10,
            max_connections: 10_000,
            max_dialogues: 40_000,
            max_connections_per_address: 256,
            hello_rate_per_address: 10.0,
            max_dialogues_per_address: 1024,
            idle_timeout: Duration::from_secs(300),
            max_pending_says: 2_000,
        }
    }
}

/// A secret value whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A configuration value could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An environment variable holds a value that does not parse or is out of range.
    #[error("invalid {variable}: {reason}")]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// What is wrong with it (never the value of a secret).
        reason: String,
    },
    /// A secret file could not be read.
    #[error("cannot read {variable} file {path}: {source}")]
    SecretFile {
        /// The variable naming the file.
        variable: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The shared Kafka settings could not be read.
    #[error(transparent)]
    Kafka(#[from] SettingsError),
    /// The shared ClickHouse settings (for the console) could not be read.
    #[error("clickhouse settings: {0}")]
    ClickHouse(#[source] SettingsError),
}

impl GatewayConfig {
    /// The defaults, with the given Kafka settings.
    pub fn new(kafka: KafkaSettings) -> Self {
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            kafka,
            user_said_topic: topics::USER_SAID.to_string(),
            bot_said_topic: topics::BOT_SAID.to_string(),
            instance_id: format!("gw-{}", uuid::Uuid::now_v7().simple()),
            limits: Limits::default(),
            answer_timeout: Duration::from_secs(5),
            produce_timeout: Duration::from_secs(5),
            idempotent_producer: true,
            resume_window: Duration::from_secs(600),
            reconnect_after_ms: 1000,
            hmac_secret: None,
            clickhouse: None,
            admin: AdminConfig::default(),
            resume_keys: ResumeKeys::ephemeral(Duration::from_secs(86_400)),
            id_tokens: None,
            client_ip_header: None,
        }
    }

    /// Reads the configuration from the environment: the shared `SWITCHBOARD_KAFKA_*` and
    /// `SWITCHBOARD_CLICKHOUSE_*` settings and the `SWITCHBOARD_GATEWAY_*` variables documented
    /// on each field. Unset or empty variables keep the defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut config = Self::from_lookup(KafkaSettings::from_env()?, |name| std::env::var(name).ok())?;
        config.clickhouse = Some(ClickHouseSettings::from_env().map_err(ConfigError::ClickHouse)?);
        config.admin.users_file = Some(crate::accounts::users_file());
        Ok(config)
    }

    /// Like [`GatewayConfig::from_env`] with a custom variable lookup (for tests and embedding);
    /// leaves [`GatewayConfig::clickhouse`] unset.
    pub fn from_lookup(kafka: KafkaSettings, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut config = GatewayConfig::new(kafka);
        if let Some(v) = get("SWITCHBOARD_GATEWAY_LISTEN") {
            config.listen = parse("SWITCHBOARD_GATEWAY_LISTEN", &v)?;
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_INSTANCE_ID") {
            if v.len() > 100 || !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(ConfigError::Invalid {
                    variable: "SWITCHBOARD_GATEWAY_INSTANCE_ID",
                    reason: "use at most 100 characters of A-Z a-z 0-9 - _ .".into(),
                });
            }
            config.instance_id = v;
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_USER_SAID_TOPIC") {
            config.user_said_topic = v;
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_BOT_SAID_TOPIC") {
            config.bot_said_topic = v;
        }
        let limits = &mut config.limits;
        if let Some(v) = get("SWITCHBOARD_GATEWAY_MAX_FRAME_BYTES") {
            limits.max_frame_bytes = positive("SWITCHBOARD_GATEWAY_MAX_FRAME_BYTES", &v)?;
            limits.close_frame_bytes = limits.close_frame_bytes.max(limits.max_frame_bytes);
            limits.max_message_bytes = limits.max_message_bytes.max(limits.close_frame_bytes);
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_MAX_TEXT_CHARS") {
            limits.max_text_chars = positive("SWITCHBOARD_GATEWAY_MAX_TEXT_CHARS", &v)?;
            if limits.max_text_chars > switchboard_schemas::MAX_TEXT_CHARS {
                return Err(ConfigError::Invalid {
                    variable: "SWITCHBOARD_GATEWAY_MAX_TEXT_CHARS",
                    reason: format!("at most {} (the event schema's limit)", switchboard_schemas::MAX_TEXT_CHARS),
                });
            }
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_RATE_PER_SEC") {
            let rate: f64 = parse("SWITCHBOARD_GATEWAY_RATE_PER_SEC", &v)?;
            if !(rate.is_finite() && rate > 0.0) {
                return Err(ConfigError::Invalid {
                    variable: "SWITCHBOARD_GATEWAY_RATE_PER_SEC",
                    reason: "must be a positive number".into(),
                });
            }
            limits.rate_per_sec = rate;
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_RATE_BURST") {
            let burst: usize = positive("SWITCHBOARD_GATEWAY_RATE_BURST", &v)?;
            limits.rate_burst = u32::try_from(burst).unwrap_or(u32::MAX);
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_MAX_CONNECTIONS") {
            limits.max_connections = positive("SWITCHBOARD_GATEWAY_MAX_CONNECTIONS", &v)?;
            limits.max_dialogues = limits.max_connections.saturating_mul(4);
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS") {
            limits.max_connections_per_address = positive("SWITCHBOARD_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", &v)?;
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_MAX_PENDING_SAYS") {
            limits.max_pending_says = positive("SWITCHBOARD_GATEWAY_MAX_PENDING_SAYS", &v)?;
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_MAX_DIALOGUES_PER_ADDRESS") {
            limits.max_dialogues_per_address = positive("SWITCHBOARD_GATEWAY_MAX_DIALOGUES_PER_ADDRESS", &v)?;
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_HELLO_RATE_PER_ADDRESS") {
            let rate: f64 = parse("SWITCHBOARD_GATEWAY_HELLO_RATE_PER_ADDRESS", &v)?;
            if !(rate.is_finite() && rate > 0.0) {
                return Err(ConfigError::Invalid {
                    variable: "SWITCHBOARD_GATEWAY_HELLO_RATE_PER_ADDRESS",
                    reason: "must be a positive number".into(),
                });
            }
            limits.hello_rate_per_address = rate;
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_IDLE_TIMEOUT_SECS") {
            limits.idle_timeout = Duration::from_secs(positive("SWITCHBOARD_GATEWAY_IDLE_TIMEOUT_SECS", &v)? as u64);
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_ANSWER_TIMEOUT_MS") {
            config.answer_timeout =
                Duration::from_millis(positive("SWITCHBOARD_GATEWAY_ANSWER_TIMEOUT_MS", &v)? as u64);
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_PRODUCE_TIMEOUT_MS") {
            config.produce_timeout =
                Duration::from_millis(positive("SWITCHBOARD_GATEWAY_PRODUCE_TIMEOUT_MS", &v)? as u64);
        }
        if let Some(v) = get("SWITCHBOARD_KAFKA_IDEMPOTENCE") {
            config.idempotent_producer = match v.trim() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(ConfigError::Invalid {
                        variable: "SWITCHBOARD_KAFKA_IDEMPOTENCE",
                        reason: format!("{other:?}: expected true or false"),
                    })
                }
            };
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_RESUME_WINDOW_SECS") {
            config.resume_window = Duration::from_secs(positive("SWITCHBOARD_GATEWAY_RESUME_WINDOW_SECS", &v)? as u64);
        }
        if let Some(v) = get("SWITCHBOARD_GATEWAY_RECONNECT_AFTER_MS") {
            config.reconnect_after_ms = parse("SWITCHBOARD_GATEWAY_RECONNECT_AFTER_MS", &v)?;
        }
        config.admin = AdminConfig::from_lookup(&get)?;
        if let Some(keys) = ResumeKeys::from_lookup(&get)? {
            config.resume_keys = keys;
        }
        config.id_tokens = IdTokenVerifier::from_lookup(&get)?;
        config.client_ip_header = get("SWITCHBOARD_GATEWAY_CLIENT_IP_HEADER").map(|h| h.trim().to_ascii_lowercase());
        config.hmac_secret = match get("SWITCHBOARD_GATEWAY_HMAC_SECRET") {
            Some(v) => Some(Secret::new(v.into_bytes())),
            None => match get("SWITCHBOARD_GATEWAY_HMAC_SECRET_FILE") {
                None => None,
                Some(path) => {
                    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
                        variable: "SWITCHBOARD_GATEWAY_HMAC_SECRET_FILE",
                        path: path.clone(),
                        source,
                    })?;
                    let secret = text.trim_end_matches(['\n', '\r']);
                    if secret.is_empty() {
                        return Err(ConfigError::Invalid {
                            variable: "SWITCHBOARD_GATEWAY_HMAC_SECRET_FILE",
                            reason: format!("{path} is empty"),
                        });
                    }
                    Some(Secret::new(secret.as_bytes().to_vec()))
                }
            },
        };
        Ok(config)
    }

    /// How long a drain may take at most: every say in flight is answered, timed out or refused
    /// within the produce timeout plus the answer timeout; one more second for the last frames.
    pub fn drain_timeout(&self) -> Duration {
        self.produce_timeout + self.answer_timeout + Duration::from_secs(1)
    }
}

fn parse<T: std::str::FromStr>(variable: &'static str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|e: T::Err| ConfigError::Invalid { variable, reason: format!("{value:?}: {e}") })
}

fn positive(variable: &'static str, value: &str) -> Result<usize, ConfigError> {
    match parse::<usize>(variable, value)? {
        0 => Err(ConfigError::Invalid { variable, reason: "must be greater than 0".into() }),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = GatewayConfig::from_lookup(KafkaSettings::plain("b:1"), lookup(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.user_said_topic, "user.said");
        assert_eq!(c.bot_said_topic, "bot.said");
        assert_eq!(c.limits.max_frame_bytes, 16 * 1024);
        assert_eq!(c.limits.max_text_chars, 2000);
        assert_eq!(c.limits.max_connections, 10_000);
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(300));
        assert_eq!(c.answer_timeout, Duration::from_secs(5));
        assert!(c.hmac_secret.is_none());
        assert!(c.idempotent_producer);
        assert!(c.instance_id.starts_with("gw-"));
    }

    #[test]
    fn environment_overrides_and_validates() {
        let c = GatewayConfig::from_lookup(
            KafkaSettings::plain("b:1"),
            lookup(&[
                ("SWITCHBOARD_GATEWAY_LISTEN", "0.0.0.0:9000"),
                ("SWITCHBOARD_GATEWAY_ANSWER_TIMEOUT_MS", "1500"),
                ("SWITCHBOARD_GATEWAY_RATE_BURST", "3"),
                ("SWITCHBOARD_GATEWAY_HMAC_SECRET", "s3cret-value"),
                ("SWITCHBOARD_GATEWAY_INSTANCE_ID", "gw-a"),
                ("SWITCHBOARD_KAFKA_IDEMPOTENCE", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.answer_timeout, Duration::from_millis(1500));
        assert_eq!(c.limits.rate_burst, 3);
        assert_eq!(c.instance_id, "gw-a");
        assert!(!c.idempotent_producer);
        assert_eq!(c.hmac_secret.as_ref().map(Secret::expose), Some(&b"s3cret-value"[..]));
        assert!(!format!("{c:?}").contains("s3cret"));

        let err = GatewayConfig::from_lookup(
            KafkaSettings::plain("b:1"),
            lookup(&[("SWITCHBOARD_GATEWAY_MAX_CONNECTIONS", "0")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("SWITCHBOARD_GATEWAY_MAX_CONNECTIONS"), "{err}");
        let err = GatewayConfig::from_lookup(
            KafkaSettings::plain("b:1"),
            lookup(&[("SWITCHBOARD_GATEWAY_LISTEN", "nowhere")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("SWITCHBOARD_GATEWAY_LISTEN"), "{err}");
    }

    #[test]
    fn secret_file_is_read_and_trimmed() {
        let path = std::env::temp_dir().join(format!("gw-secret-{}", uuid::Uuid::now_v7()));
        std::fs::write(&path, "from-file\n").unwrap();
        let c = GatewayConfig::from_lookup(
            KafkaSettings::plain("b:1"),
            lookup(&[("SWITCHBOARD_GATEWAY_HMAC_SECRET_FILE", path.to_str().unwrap())]),
        )
        .unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(c.hmac_secret.unwrap().expose(), b"from-file");
        let err = GatewayConfig::from_lookup(
            KafkaSettings::plain("b:1"),
            lookup(&[("SWITCHBOARD_GATEWAY_HMAC_SECRET_FILE", "/nonexistent/secret")]),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::SecretFile { .. }));
    }
}
