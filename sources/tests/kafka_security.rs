//! The Kafka clients built from `KafkaSettings` against a broker that requires SASL
//! SCRAM-SHA-512: produce and consume with a consumer group (and commit) over SASL on plaintext
//! and over SASL on TLS; a client that does not trust the broker's CA, and one with a wrong
//! password, get no metadata.
//!
//! Starts the secure brokers with `deploy/dev/secure-up.sh` (idempotent; 127.0.0.1:9094 and
//! :9095) beside the shared plain broker.

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use switchboard_schemas::settings::{KafkaSettings, SaslCredentials};
use switchboard_schemas::EventId;
use switchboard_sources::admin::{delete_topics, ensure_topics};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn state_dir() -> PathBuf {
    std::env::var_os("SWITCHBOARD_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".switchboard"))
}

/// Starts secure mode and returns (password, CA file).
fn secure_up() -> (String, PathBuf) {
    let out = Command::new(root().join("deploy/dev/secure-up.sh"))
        .env("SWITCHBOARD_STATE", state_dir())
        .output()
        .expect("run deploy/dev/secure-up.sh");
    assert!(
        out.status.success(),
        "secure-up.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = state_dir().join("kafka-secure");
    let password = std::fs::read_to_string(dir.join("switchboard.password"))
        .expect("password file")
        .trim()
        .to_string();
    (password, dir.join("tls/ca.pem"))
}

fn settings(brokers: &str, password: &str, ca: Option<&Path>) -> KafkaSettings {
    KafkaSettings {
        brokers: brokers.into(),
        sasl: Some(SaslCredentials {
            username: "switchboard".into(),
            password: password.into(),
        }),
        tls_ca_file: ca.map(|p| p.to_string_lossy().into_owned()),
    }
}

async fn produce_and_consume(settings: &KafkaSettings, label: &str) {
    let topic = format!("test.security.{label}.{}", EventId::new_v7());
    ensure_topics(settings, &[&topic], 2)
        .await
        .unwrap_or_else(|e| panic!("{label}: create topic: {e}"));
    let producer: FutureProducer = settings
        .client_config()
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    for i in 0..10 {
        producer
            .send(
                FutureRecord::to(&topic)
                    .key(&format!("k{i}"))
                    .payload(&format!("v{i}")),
                Duration::from_secs(20),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap_or_else(|e| panic!("{label}: produce: {e}"));
    }
    let consumer: StreamConsumer = settings
        .client_config()
        .set(
            "group.id",
            format!("security-{label}-{}", EventId::new_v7()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut values = Vec::new();
    while values.len() < 10 {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{label}: only {} of 10 records consumed in time",
                    values.len()
                )
            })
            .unwrap_or_else(|e| panic!("{label}: consume: {e}"));
        values.push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned());
        consumer
            .commit_message(&message, CommitMode::Sync)
            .unwrap_or_else(|e| panic!("{label}: commit: {e}"));
    }
    values.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    expected.sort();
    assert_eq!(values, expected, "{label}");
    drop((consumer, producer));
    delete_topics(settings, &[&topic])
        .await
        .unwrap_or_else(|e| panic!("{label}: delete the scratch topic: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_over_sasl_and_over_tls() {
    let (password, ca) = secure_up();
    produce_and_consume(&settings("127.0.0.1:9094", &password, None), "sasl").await;
    produce_and_consume(
        &settings("127.0.0.1:9095", &password, Some(&ca)),
        "sasl-ssl",
    )
    .await;
}

fn metadata(settings: &KafkaSettings) -> Result<(), String> {
    let consumer: BaseConsumer = settings
        .client_config()
        .create()
        .map_err(|e| e.to_string())?;
    consumer
        .fetch_metadata(None, Duration::from_secs(5))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn untrusted_broker_and_wrong_password_get_no_metadata() {
    let (password, ca) = secure_up();
    assert!(
        metadata(&settings("127.0.0.1:9095", &password, Some(&ca))).is_ok(),
        "the right settings work"
    );
    // Another CA: the broker's certificate does not verify.
    let other = std::env::temp_dir().join(format!("switchboard-other-ca-{}", EventId::new_v7()));
    let made = Command::new(root().join("deploy/tls/make-test-ca.sh"))
        .arg(&other)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("make certs");
    assert!(made.success());
    let untrusted = metadata(&settings(
        "127.0.0.1:9095",
        &password,
        Some(&other.join("ca.pem")),
    ));
    assert!(
        untrusted.is_err(),
        "a broker certificate from another CA was accepted"
    );
    // Plain SASL against the TLS port, and a wrong password against the SASL port.
    assert!(
        metadata(&settings("127.0.0.1:9095", &password, None)).is_err(),
        "plaintext to the TLS port worked"
    );
    assert!(
        metadata(&settings("127.0.0.1:9094", "not-the-password", None)).is_err(),
        "a wrong password worked"
    );
    let _ = std::fs::remove_dir_all(&other);
}
