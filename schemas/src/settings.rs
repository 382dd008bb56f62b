//! Connection settings shared by every part that talks to Kafka or ClickHouse, read from the
//! environment. Secrets come from the environment or from files, never from the command line.

use std::env;

/// How to reach the Kafka-protocol broker.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `host:port[,host:port…]` (`SWITCHBOARD_KAFKA_BROKERS`, default `127.0.0.1:9092`).
    pub brokers: String,
    /// SASL SCRAM-SHA-512 credentials, when set.
    pub sasl: Option<SaslCredentials>,
    /// CA file for TLS, when set (`SWITCHBOARD_KAFKA_CA_FILE`).
    pub tls_ca_file: Option<String>,
}

/// SCRAM-SHA-512 user and password. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    /// User name (`SWITCHBOARD_KAFKA_USERNAME`).
    pub username: String,
    /// Password (`SWITCHBOARD_KAFKA_PASSWORD` or the file named by `SWITCHBOARD_KAFKA_PASSWORD_FILE`).
    pub password: String,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("sasl", &self.sasl)
            .field("tls_ca_file", &self.tls_ca_file)
            .finish()
    }
}

/// A setting could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A secret file named in the environment could not be read.
    #[error("cannot read {variable} file {path}: {source}")]
    SecretFile {
        /// The variable naming the file.
        variable: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}

fn secret(name: &'static str) -> Result<Option<String>, SettingsError> {
    if let Some(v) = var(name) {
        return Ok(Some(v));
    }
    let file_var: &'static str = match name {
        "SWITCHBOARD_KAFKA_PASSWORD" => "SWITCHBOARD_KAFKA_PASSWORD_FILE",
        "SWITCHBOARD_CLICKHOUSE_PASSWORD" => "SWITCHBOARD_CLICKHOUSE_PASSWORD_FILE",
        _ => return Ok(None),
    };
    match var(file_var) {
        None => Ok(None),
        Some(path) => std::fs::read_to_string(&path)
            .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_string()))
            .map_err(|source| SettingsError::SecretFile { variable: file_var, path, source }),
    }
}

impl KafkaSettings {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        let sasl = match (var("SWITCHBOARD_KAFKA_USERNAME"), secret("SWITCHBOARD_KAFKA_PASSWORD")?) {
            (Some(username), Some(password)) => Some(SaslCredentials { username, password }),
            _ => None,
        };
        Ok(KafkaSettings {
            brokers: var("SWITCHBOARD_KAFKA_BROKERS").unwrap_or_else(|| "127.0.0.1:9092".into()),
            sasl,
            tls_ca_file: var("SWITCHBOARD_KAFKA_CA_FILE"),
        })
    }

    /// How long a consumer's fetch may wait at the broker for data
    /// (`SWITCHBOARD_KAFKA_FETCH_WAIT_MS`, default 100). nisshi 0.8.1 does not wake a waiting
    /// fetch when a record arrives: it reads the partitions again after half the remaining wait,
    /// then half of what is left, and so on. So this trades latency against idle broker CPU
    /// (README, "The live path"): measured here, a record waits about 19 ms at 100 (p50), 60 ms
    /// at 250, 116 ms at 500, and an idle system costs the broker 38 %, 12 % of a core at 100, 500.
    pub fn fetch_wait_ms() -> u64 {
        var("SWITCHBOARD_KAFKA_FETCH_WAIT_MS").and_then(|v| v.parse().ok()).unwrap_or(100)
    }

    /// A plain local broker at `brokers`.
    pub fn plain(brokers: impl Into<String>) -> Self {
        KafkaSettings { brokers: brokers.into(), sasl: None, tls_ca_file: None }
    }

    /// An rdkafka client configuration with the connection and security settings applied.
    #[cfg(feature = "kafka")]
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        let protocol = match (&self.sasl, &self.tls_ca_file) {
            (None, None) => "plaintext",
            (None, Some(_)) => "ssl",
            (Some(_), None) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        };
        config.set("security.protocol", protocol);
        if let Some(sasl) = &self.sasl {
            config
                .set("sasl.mechanisms", "SCRAM-SHA-512")
                .set("sasl.username", &sasl.username)
                .set("sasl.password", &sasl.password);
        }
        if let Some(ca) = &self.tls_ca_file {
            config.set("ssl.ca.location", ca);
        }
        config
    }
}

/// How to reach ClickHouse.
#[derive(Clone, PartialEq, Eq)]
pub struct ClickHouseSettings {
    /// HTTP URL (`SWITCHBOARD_CLICKHOUSE_URL`, default `http://127.0.0.1:8123`).
    pub url: String,
    /// Database (`SWITCHBOARD_CLICKHOUSE_DATABASE`, default `switchboard`).
    pub database: String,
    /// User (`SWITCHBOARD_CLICKHOUSE_USER`, default `default`).
    pub user: String,
    /// Password (`SWITCHBOARD_CLICKHOUSE_PASSWORD` or `…_PASSWORD_FILE`), if any.
    pub password: Option<String>,
}

impl std::fmt::Debug for ClickHouseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseSettings")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ClickHouseSettings {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Ok(ClickHouseSettings {
            url: var("SWITCHBOARD_CLICKHOUSE_URL").unwrap_or_else(|| "http://127.0.0.1:8123".into()),
            database: var("SWITCHBOARD_CLICKHOUSE_DATABASE").unwrap_or_else(|| "switchboard".into()),
            user: var("SWITCHBOARD_CLICKHOUSE_USER").unwrap_or_else(|| "default".into()),
            password: secret("SWITCHBOARD_CLICKHOUSE_PASSWORD")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_passwords() {
        let k = KafkaSettings {
            brokers: "b:1".into(),
            sasl: Some(SaslCredentials { username: "u".into(), password: "hunter2-secret".into() }),
            tls_ca_file: None,
        };
        let c = ClickHouseSettings {
            url: "http://x".into(),
            database: "d".into(),
            user: "u".into(),
            password: Some("hunter2-secret".into()),
        };
        assert!(!format!("{k:?}{c:?}").contains("hunter2"));
    }
}
