//! The `switchboard` processes against a broker that requires SASL SCRAM-SHA-512 (and over TLS):
//!
//! - with the right credentials, `record` captures what was produced (SASL over plaintext and
//!   SASL over TLS) and `run` answers a turn end to end;
//! - with a wrong password, an unknown user or no credentials, `record`, `run` and `gateway`
//!   exit non-zero within a bounded time with one stderr line that says why;
//! - the passwords and the gateway's HMAC secret never appear in stdout/stderr (at debug log
//!   level), in `/metrics` or in error lines;
//! - no command-line flag takes a password.
//!
//! Starts the secure brokers with `deploy/dev/secure-up.sh` (idempotent; ports 9094 and 9095)
//! beside the shared plain broker. Needs ClickHouse and the demo models (`deploy/dev/test.sh`).

mod common;

use rdkafka::producer::{FutureProducer, FutureRecord};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings, SaslCredentials};
use switchboard_schemas::*;
use switchboard_sinks::clickhouse::ClickHouseSink;
use switchboard_sources::admin::ensure_topics;

/// A refused client must have given up by then (the access check waits 10 s at most).
const REFUSAL_LIMIT: Duration = Duration::from_secs(30);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn state_dir() -> PathBuf {
    std::env::var_os("SWITCHBOARD_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".switchboard"))
}

/// Where the secure brokers are and how to log in.
struct Secure {
    sasl_brokers: String,
    tls_brokers: String,
    password_file: PathBuf,
    password: String,
    ca_file: PathBuf,
}

impl Secure {
    fn start() -> Secure {
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
        let password_file = dir.join("switchboard.password");
        let password = std::fs::read_to_string(&password_file)
            .expect("password file")
            .trim()
            .to_string();
        assert!(
            password.len() >= 16,
            "the generated password is too short to be distinctive"
        );
        Secure {
            sasl_brokers: "127.0.0.1:9094".into(),
            tls_brokers: "127.0.0.1:9095".into(),
            password_file,
            password,
            ca_file: dir.join("tls/ca.pem"),
        }
    }

    fn settings(&self, tls: bool) -> KafkaSettings {
        KafkaSettings {
            brokers: if tls {
                self.tls_brokers.clone()
            } else {
                self.sasl_brokers.clone()
            },
            sasl: Some(SaslCredentials {
                username: "switchboard".into(),
                password: self.password.clone(),
            }),
            tls_ca_file: tls.then(|| self.ca_file.to_string_lossy().into_owned()),
        }
    }
}

/// A `switchboard` command with no Kafka settings inherited from the test's environment.
fn switchboard(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.args(args);
    for name in [
        "SWITCHBOARD_KAFKA_BROKERS",
        "SWITCHBOARD_KAFKA_USERNAME",
        "SWITCHBOARD_KAFKA_PASSWORD",
        "SWITCHBOARD_KAFKA_PASSWORD_FILE",
        "SWITCHBOARD_KAFKA_CA_FILE",
        "SWITCHBOARD_LOG",
        "RUST_LOG",
    ] {
        command.env_remove(name);
    }
    command
}

async fn produce_turns_async(settings: &KafkaSettings, topic: &str, n: usize) {
    ensure_topics(settings, &[topic], 2)
        .await
        .expect("create the topic on the secure broker");
    let producer: FutureProducer = settings.client_config().create().expect("producer");
    for i in 0..n {
        let event = Event::new(
            format!("sec-{i}"),
            1_764_000_000_000 + i as i64,
            EventBody::UserSaid(UserSaid {
                client_msg_id: format!("m-{i}"),
                user_id: "u".into(),
                locale: Locale::ZhCn,
                text: "我要退货".into(),
            }),
        );
        producer
            .send(
                FutureRecord::to(topic)
                    .key(&event.dialogue_id)
                    .payload(&encode(&event)),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produced with the right credentials");
    }
}

fn produce_turns(settings: &KafkaSettings, topic: &str, n: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(produce_turns_async(settings, topic, n));
}

#[test]
fn record_works_with_the_right_credentials_over_sasl_and_tls() {
    let secure = Secure::start();
    let run_id = common::run_id();
    let work = std::env::temp_dir().join(format!("switchboard-secure-{run_id}"));
    std::fs::create_dir_all(&work).expect("work dir");
    for tls in [false, true] {
        let settings = secure.settings(tls);
        let topic = format!(
            "test.secure.record.{}.{run_id}",
            if tls { "tls" } else { "sasl" }
        );
        produce_turns(&settings, &topic, 3);
        let out_file = work.join(format!("{topic}.ndjson"));
        let mut command = switchboard(&[
            "record",
            "--topic",
            &topic,
            "--from-offset",
            "0:0,1:0",
            "--out",
        ]);
        command
            .arg(&out_file)
            .env("SWITCHBOARD_KAFKA_BROKERS", &settings.brokers)
            .env("SWITCHBOARD_KAFKA_USERNAME", "switchboard")
            .env("SWITCHBOARD_KAFKA_PASSWORD_FILE", &secure.password_file);
        if tls {
            command.env("SWITCHBOARD_KAFKA_CA_FILE", &secure.ca_file);
        }
        let out = command.output().expect("switchboard record");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "record (tls: {tls}) failed: {stderr}");
        let recorded = std::fs::read_to_string(&out_file).expect("recording");
        assert_eq!(
            recorded.lines().count(),
            3,
            "record (tls: {tls}) wrote:\n{recorded}"
        );
        assert!(
            !stderr.contains(&secure.password),
            "the password leaked into record's stderr"
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// `/metrics` from `addr` once it answers 200 (at most 60 s).
async fn wait_for_metrics(addr: &str, who: &str, headers: &[(&str, &str)]) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(body) = http_get(addr, "/metrics", headers) {
            return body;
        }
        assert!(Instant::now() < deadline, "{who} did not serve /metrics at {addr}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A child whose stdout and stderr are read as they come (a debug-level process fills a 64 KiB
/// pipe in moments and would block on its next log line if nobody read it).
struct Drained {
    child: Child,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Drained {
    fn spawn(command: &mut Command) -> Drained {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn switchboard");
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        Drained {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits for the exit (killing it at `limit`); (exit code, stdout, stderr, killed).
    fn finish(mut self, limit: Duration) -> (Option<i32>, String, String, bool) {
        let deadline = Instant::now() + limit;
        let mut killed = false;
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                killed = true;
                break self.child.wait().expect("wait for the killed child");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let stdout = self.stdout.join().unwrap_or_default();
        let stderr = self.stderr.join().unwrap_or_default();
        (status.code(), stdout, stderr, killed)
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs the command to its end (bounded) and returns (exit code, stdout, stderr, seconds).
fn run_bounded(mut command: Command, limit: Duration) -> (Option<i32>, String, String, f64) {
    let started = Instant::now();
    let (code, stdout, stderr, killed) = Drained::spawn(&mut command).finish(limit);
    assert!(
        !killed,
        "still running after {limit:?} (it should have given up); stderr: {stderr}"
    );
    (code, stdout, stderr, started.elapsed().as_secs_f64())
}

#[test]
fn refused_clients_exit_fast_with_one_clear_line() {
    let secure = Secure::start();
    let wrong_password = "Wr0ng-Pa55word-q7Zx-distinctive";
    // (what, the credentials given (user, password), the one line expected)
    type Case<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 3] = [
        (
            "wrong password",
            Some(("switchboard", wrong_password)),
            "Kafka authentication failed for user switchboard at 127.0.0.1:9094",
        ),
        (
            "unknown user",
            Some(("nobody-here", wrong_password)),
            "Kafka authentication failed for user nobody-here at 127.0.0.1:9094",
        ),
        ("no credentials", None, "no credentials are set"),
    ];
    let commands: [&[&str]; 3] = [
        &[
            "record",
            "--topic",
            "user.said",
            "--from-offset",
            "0:0",
            "--out",
            "/dev/null",
        ],
        &["run", "--workers", "1"],
        &["gateway", "--listen", "127.0.0.1:0"],
    ];
    for (case, credentials, expected) in cases {
        for args in commands {
            let mut command = switchboard(args);
            command
                .env("SWITCHBOARD_KAFKA_BROKERS", &secure.sasl_brokers)
                .env("SWITCHBOARD_GATEWAY_ADMIN_LISTEN", "127.0.0.1:0");
            if let Some((user, password)) = credentials {
                command
                    .env("SWITCHBOARD_KAFKA_USERNAME", user)
                    .env("SWITCHBOARD_KAFKA_PASSWORD", password);
            }
            let (code, stdout, stderr, seconds) = run_bounded(command, REFUSAL_LIMIT);
            let what = format!("{case}, `switchboard {}`", args.join(" "));
            assert_eq!(code, Some(1), "{what}: exit status; stderr: {stderr}");
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(
                lines.len(),
                1,
                "{what}: expected one stderr line, got:\n{stderr}"
            );
            assert!(
                lines[0].starts_with("switchboard: ") && lines[0].contains(expected),
                "{what}: {}",
                lines[0]
            );
            assert!(
                !stderr.contains(wrong_password) && !stdout.contains(wrong_password),
                "{what}: the password leaked"
            );
            assert!(
                !stderr.contains(&secure.password),
                "{what}: the real password leaked"
            );
            eprintln!("{what}: exit 1 after {seconds:.1} s: {}", lines[0]);
        }
    }
}

#[test]
fn no_command_line_flag_takes_a_secret() {
    let top = switchboard(&["--help"])
        .output()
        .expect("switchboard --help");
    let help = String::from_utf8_lossy(&top.stdout).into_owned();
    let subcommands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect();
    assert!(
        subcommands.len() >= 10,
        "subcommands found: {subcommands:?}"
    );
    let mut texts = vec![help];
    for sub in &subcommands {
        let out = switchboard(&[sub.as_str(), "--help"])
            .output()
            .expect("sub --help");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for nested in text
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
        {
            let out = switchboard(&[sub.as_str(), nested, "--help"])
                .output()
                .expect("nested --help");
            texts.push(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        texts.push(text);
    }
    for text in texts {
        for line in text.lines().filter(|l| l.trim_start().starts_with('-')) {
            let flag = line.to_lowercase();
            for word in [
                "password",
                "passwd",
                "secret",
                "sasl",
                "credential",
                "token",
            ] {
                assert!(!flag.contains(word), "a flag takes a secret: {line}");
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The whole response to a GET (head and body) when it is a 200.
fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> Option<String> {
    common::admin_http::request(addr, "GET", path, headers, "").and_then(|(status, r)| (status == 200).then_some(r))
}

/// SIGTERM, then SIGKILL after 20 s; everything it wrote to stdout and stderr.
fn stop(process: Drained) -> String {
    let _ = Command::new("kill")
        .args(["-TERM", &process.child.id().to_string()])
        .status();
    let (_, stdout, stderr, _) = process.finish(Duration::from_secs(20));
    format!("{stdout}{stderr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_logs_metrics_or_errors() {
    let secure = Secure::start();
    let settings = secure.settings(false);
    let clickhouse = ClickHouseSettings::from_env().expect("clickhouse settings");
    let run_id = common::run_id();
    let input = format!("test.secrets.user-said.{run_id}");
    let replies = format!("test.secrets.bot-said.{run_id}");
    let dead = format!("test.secrets.dead.{run_id}");
    ensure_topics(&settings, &[&input, &replies, &dead], 2)
        .await
        .expect("topics on the secure broker");
    let database = format!("sbtest_secrets_{}", &run_id[..16]);
    let admin = ClickHouseSink::new(&clickhouse);
    admin
        .create_database(&database)
        .await
        .expect("create database");
    let hmac_secret = format!("hmac-Secret-{run_id}");
    let work = std::env::temp_dir().join(format!("switchboard-secrets-{run_id}"));
    // The access secrets: resume-token keys, the metrics token, an account's password.
    std::fs::create_dir_all(&work).expect("work dir");
    let resume_key = format!("resume-Key-{run_id}-0123456789abcdef");
    let resume_keys = work.join("resume-keys");
    std::fs::write(&resume_keys, format!("k1:{resume_key}\n")).expect("resume keys file");
    let metrics_token = format!("metrics-Token-{run_id}");
    let metrics_token_file = work.join("metrics-token");
    std::fs::write(&metrics_token_file, &metrics_token).expect("metrics token file");
    let users = common::admin_http::users_file(&work);
    let account_password = common::admin_http::PASSWORD.to_string();
    std::fs::create_dir_all(&work).expect("work dir");

    // The topology, password from the environment, everything logged at debug level.
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let config = work.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "input_topic: {input}\nreplies_topic: {replies}\ndead_letter_topic: {dead}\ngroup_id: secrets-{run_id}\n\
             metrics_listen: \"{metrics_addr}\"\n"
        ),
    )
    .expect("config");
    let topology = Drained::spawn(
        switchboard(&["run", "--workers", "1", "--config"])
            .arg(&config)
            .env("SWITCHBOARD_KAFKA_BROKERS", &settings.brokers)
            .env("SWITCHBOARD_KAFKA_USERNAME", "switchboard")
            .env("SWITCHBOARD_KAFKA_PASSWORD", &secure.password)
            .env("SWITCHBOARD_CLICKHOUSE_DATABASE", &database)
            .env("SWITCHBOARD_LOG", "debug")
            .env("RUST_LOG", "debug"),
    );

    // The gateway, password from a file, with an HMAC secret.
    let gateway_addr = format!("127.0.0.1:{}", free_port());
    let admin_addr = format!("127.0.0.1:{}", free_port());
    let gateway = Drained::spawn(
        switchboard(&["gateway", "--listen", &gateway_addr])
            .env("SWITCHBOARD_KAFKA_BROKERS", &settings.brokers)
            .env("SWITCHBOARD_KAFKA_USERNAME", "switchboard")
            .env("SWITCHBOARD_KAFKA_PASSWORD_FILE", &secure.password_file)
            .env("SWITCHBOARD_GATEWAY_USER_SAID_TOPIC", &input)
            .env("SWITCHBOARD_GATEWAY_BOT_SAID_TOPIC", &replies)
            .env("SWITCHBOARD_GATEWAY_HMAC_SECRET", &hmac_secret)
            .env("SWITCHBOARD_GATEWAY_ADMIN_LISTEN", &admin_addr)
            .env("SWITCHBOARD_USERS_FILE", &users)
            .env("SWITCHBOARD_GATEWAY_RESUME_KEYS_FILE", &resume_keys)
            .env("SWITCHBOARD_GATEWAY_METRICS_TOKEN_FILE", &metrics_token_file)
            .env("SWITCHBOARD_LOG", "debug")
            .env("RUST_LOG", "debug"),
    );

    // A turn through the secure broker: it is answered (ClickHouse holds the reply, which the
    // topology writes only after reading the turn and producing its reply on the secure broker).
    produce_turns_async(&settings, &input, 1).await;
    let reader = ClickHouseSink::new(&ClickHouseSettings {
        database: database.clone(),
        ..clickhouse.clone()
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let answered = reader
            .client()
            .query("SELECT count() FROM events FINAL WHERE kind IN ('answer_generated', 'handoff_requested')")
            .fetch_one::<u64>()
            .await
            .unwrap_or(0);
        if answered >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the turn was not answered through the secure broker in time"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let topology_metrics = wait_for_metrics(&metrics_addr, "the topology", &[]).await;
    let bearer = format!("Bearer {metrics_token}");
    let gateway_metrics =
        wait_for_metrics(&admin_addr, "the gateway (with the right credentials)", &[("Authorization", &bearer)]).await;
    let cookie = common::admin_http::login(&admin_addr).expect("a login on the admin listener");
    // The console (page and API) and the chat page, whatever they answer.
    let mut console = String::new();
    for path in [
        "/",
        "/healthz",
        "/console",
        "/console/api/summary",
        "/console/api/dialogues",
    ] {
        let (addr, headers) = if path.starts_with("/console") {
            (&admin_addr, vec![("Cookie", cookie.as_str())])
        } else {
            (&gateway_addr, vec![])
        };
        console.push_str(&http_get(addr, path, &headers).unwrap_or_default());
    }
    let doctor = switchboard(&["doctor"])
        .env("SWITCHBOARD_KAFKA_BROKERS", &settings.brokers)
        .env("SWITCHBOARD_KAFKA_USERNAME", "switchboard")
        .env("SWITCHBOARD_KAFKA_PASSWORD", &secure.password)
        .env("SWITCHBOARD_LOG", "debug")
        .output()
        .expect("switchboard doctor");
    let doctor_output = format!(
        "{}{}",
        String::from_utf8_lossy(&doctor.stdout),
        String::from_utf8_lossy(&doctor.stderr)
    );
    // A refused start at debug level: the wrong password is not in its output either.
    let wrong_password = format!("Wr0ng-{run_id}");
    let mut refused = switchboard(&["run", "--workers", "1", "--config"]);
    refused
        .arg(&config)
        .env("SWITCHBOARD_KAFKA_BROKERS", &settings.brokers)
        .env("SWITCHBOARD_KAFKA_USERNAME", "switchboard")
        .env("SWITCHBOARD_KAFKA_PASSWORD", &wrong_password)
        .env("SWITCHBOARD_LOG", "debug")
        .env("RUST_LOG", "debug");
    let (code, refused_stdout, refused_stderr, _) = run_bounded(refused, REFUSAL_LIMIT);
    assert_eq!(
        code,
        Some(1),
        "a wrong password must fail: {refused_stderr}"
    );
    assert!(
        !refused_stdout.contains(&wrong_password) && !refused_stderr.contains(&wrong_password),
        "the wrong password appears in the refused run's output:\n{refused_stderr}"
    );
    let topology_output = stop(topology);
    let gateway_output = stop(gateway);
    assert!(topology_output.contains("DEBUG"), "the topology did not log at debug level:\n{topology_output}");
    for (name, text) in [
        ("topology stdout/stderr", &topology_output),
        ("gateway stdout/stderr", &gateway_output),
        ("topology /metrics", &topology_metrics),
        ("gateway /metrics", &gateway_metrics),
        ("gateway pages and console API", &console),
        ("doctor output", &doctor_output),
    ] {
        for (secret, what) in [
            (&secure.password, "Kafka password"),
            (&hmac_secret, "HMAC secret"),
            (&resume_key, "resume-token key"),
            (&metrics_token, "metrics token"),
            (&account_password, "account password"),
        ] {
            assert!(!text.contains(secret.as_str()), "the {what} appears in the {name}");
        }
    }
    let _ = admin
        .client()
        .query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await;
    let _ = std::fs::remove_dir_all(&work);
}
