//! The start-up check that the broker can be reached and accepts our credentials.
//!
//! librdkafka retries a refused SASL handshake or a dropped connection forever, so a process
//! with a wrong password would hang instead of failing. Every `switchboard` command that talks
//! to Kafka therefore calls [`check`] first: it fetches the cluster metadata with the
//! configured security settings and fails fast, with one line that names the user and the
//! brokers (never the password), when the broker refuses the credentials or does not answer.

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use crate::Error;
use switchboard_schemas::settings::KafkaSettings;

/// How long [`check`] waits for the broker by default (`SWITCHBOARD_KAFKA_CONNECT_TIMEOUT_MS`
/// overrides it).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Records the errors librdkafka reports in the background (the SASL failure arrives here,
/// not as the result of the metadata request).
#[derive(Default)]
struct RecordingContext {
    errors: Mutex<Vec<(Option<RDKafkaErrorCode>, String)>>,
    /// librdkafka's reports of a connection closed by the broker.
    disconnects: Mutex<Vec<String>>,
}

/// After this many connections closed by the broker the check gives up.
const DISCONNECTS_TO_GIVE_UP: usize = 3;

impl ClientContext for RecordingContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        // The outcome is reported in one line by the caller; librdkafka's own account of each
        // attempt is detail.
        tracing::debug!(?level, facility = fac, "librdkafka: {log_message}");
        if log_message.contains("Disconnected") {
            self.disconnects
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(log_message.to_string());
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(error = %error, reason, "kafka client error during the access check");
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        errors.push((error.rdkafka_error_code(), reason.to_string()));
    }
}

impl ConsumerContext for RecordingContext {}

impl RecordingContext {
    fn authentication_failure(&self) -> Option<String> {
        let errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        errors
            .iter()
            .find(|(code, _)| {
                matches!(
                    code,
                    Some(
                        RDKafkaErrorCode::Authentication
                            | RDKafkaErrorCode::SaslAuthenticationFailed
                    )
                )
            })
            .map(|(_, reason)| reason.clone())
    }

    fn repeated_disconnect(&self) -> Option<String> {
        let disconnects = self.disconnects.lock().unwrap_or_else(|p| p.into_inner());
        (disconnects.len() >= DISCONNECTS_TO_GIVE_UP).then(|| disconnects[0].clone())
    }

    fn last_reason(&self) -> Option<String> {
        let errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        errors.last().map(|(_, reason)| reason.clone())
    }
}

/// The timeout from `SWITCHBOARD_KAFKA_CONNECT_TIMEOUT_MS`, or [`DEFAULT_TIMEOUT`].
pub fn timeout_from_env() -> Duration {
    std::env::var("SWITCHBOARD_KAFKA_CONNECT_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// Fetches the cluster metadata with `settings`, failing fast when the broker refuses the
/// credentials and after `timeout` when it does not answer.
pub fn check(settings: &KafkaSettings, timeout: Duration) -> crate::Result<()> {
    let brokers = settings.brokers.clone();
    let consumer: BaseConsumer<RecordingContext> = settings
        .client_config()
        .set("client.id", "switchboard-access-check")
        // The first refusal is final: do not back off for long between attempts.
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "500")
        .create_with_context(RecordingContext::default())
        .map_err(|e| Error::Client {
            brokers: brokers.clone(),
            reason: e.to_string(),
        })?;
    let started = Instant::now();
    let mut last_error: Option<KafkaError> = None;
    loop {
        // Serves the client's event queue: background errors reach the context only this way.
        let _ = consumer.poll(Duration::ZERO);
        if let Some(reason) = consumer.context().authentication_failure() {
            let user = settings
                .sasl
                .as_ref()
                .map(|s| s.username.clone())
                .unwrap_or_default();
            return Err(Error::Authentication {
                user,
                brokers,
                reason,
            });
        }
        let hint = match (&settings.sasl, &settings.tls_ca_file) {
            (None, _) => {
                " (no credentials are set; if the broker requires SASL, set SWITCHBOARD_KAFKA_USERNAME and \
                 SWITCHBOARD_KAFKA_PASSWORD or SWITCHBOARD_KAFKA_PASSWORD_FILE)"
            }
            (Some(_), None) => " (if the broker expects TLS, set SWITCHBOARD_KAFKA_CA_FILE)",
            (Some(_), Some(_)) => "",
        };
        if let Some(reason) = consumer.context().repeated_disconnect() {
            return Err(Error::Refused {
                brokers,
                hint,
                reason,
            });
        }
        let waited = started.elapsed();
        if waited >= timeout {
            let reason = consumer
                .context()
                .last_reason()
                .or_else(|| last_error.as_ref().map(|e| e.to_string()))
                .unwrap_or_else(|| "no answer".into());
            return Err(Error::Unreachable {
                brokers,
                waited_ms: waited.as_millis(),
                hint,
                reason,
            });
        }
        let step = (timeout - waited).min(Duration::from_millis(250));
        match consumer.fetch_metadata(None, step) {
            Ok(_) => {
                // A SASL failure may arrive just before a metadata answer from another broker;
                // the answer proves access, so it wins.
                tracing::debug!(brokers = %brokers, "kafka access check passed");
                return Ok(());
            }
            Err(e) => last_error = Some(e),
        }
    }
}
