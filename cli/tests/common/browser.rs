//! The browser-test harness shared by the page tests (`browser_e2e.rs`,
//! `agent_handoff_browser.rs`): child processes stopped with the test, HTTP readiness waits, a
//! test database with the project's migrations, and a headless Chromium session through
//! chromedriver with screenshots. Included with `#[path]`; not every test uses every item.
#![allow(dead_code)]

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchboard_sinks::clickhouse::ClickHouseSink;

pub const STEP_WAIT: Duration = Duration::from_secs(20);
pub const POLL: Duration = Duration::from_millis(200);

pub fn root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

/// `$SWITCHBOARD_STATE`, or the repository's `.switchboard/` (where deploy/dev puts the trained
/// models and the knowledge base).
pub fn state_dir() -> PathBuf {
    std::env::var_os("SWITCHBOARD_STATE").map(PathBuf::from).unwrap_or_else(|| root().join(".switchboard"))
}

/// `$SWITCHBOARD_MODELS`, or the repository's `models/`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("SWITCHBOARD_MODELS").map(PathBuf::from).unwrap_or_else(|| root().join("models"))
}

/// The first executable called one of `names` on `PATH`.
pub fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file())
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Child processes, each in its own process group, stopped (the whole group: chromedriver's
/// browser too) when the test ends, also by a panic.
#[derive(Default)]
pub struct Processes(Vec<(&'static str, Child)>);

impl Processes {
    pub fn spawn(&mut self, name: &'static str, command: &mut Command, log: &Path) {
        let log = File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let err = log.try_clone().expect("log handle");
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.0.push((name, child));
    }

    /// Panics if one of them has exited.
    pub fn check_alive(&mut self, logs: &Path) {
        for (name, child) in &mut self.0 {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{name} exited ({status}); see its log in {}", logs.display());
            }
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in self.0.iter_mut().rev() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).stderr(Stdio::null()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
            // Without a `kill` command at least the child itself goes.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `url` over plain HTTP until it answers 200, or panics after `limit`.
pub async fn wait_http_ok(what: &str, url: &str, limit: Duration, processes: &mut Processes, logs: &Path) {
    let (host, path) = url.trim_start_matches("http://").split_once('/').expect("http://HOST/PATH");
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(host).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            // The status line is enough (chromedriver keeps the connection open).
            let mut reply = [0u8; 12];
            if stream.write_all(request.as_bytes()).await.is_ok()
                && matches!(
                    tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut reply)).await,
                    Ok(Ok(_))
                )
                && &reply == b"HTTP/1.1 200"
            {
                return;
            }
        }
        processes.check_alive(logs);
        assert!(Instant::now() < deadline, "{what} did not answer {url} within {limit:?}; logs in {}", logs.display());
        tokio::time::sleep(POLL).await;
    }
}

/// Creates `database` with the project's migrations (the SQL deploy/dev/up.sh applies).
pub async fn create_database(sink: &ClickHouseSink, database: &str) {
    let client = sink.client().clone().with_setting("allow_experimental_low_cardinality_type", "1");
    client.query(&format!("CREATE DATABASE IF NOT EXISTS {database}")).execute().await.expect("create database");
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/clickhouse/migrations"))
        .expect("migrations folder")
        .map(|e| e.expect("migration entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    for file in files {
        let sql = std::fs::read_to_string(&file).expect("migration");
        let body: Vec<&str> = sql.lines().filter(|l| !l.starts_with("--")).collect();
        for statement in body.join("\n").split("\n;") {
            if !statement.trim().is_empty() {
                let statement = statement.replace("switchboard.", &format!("{database}."));
                client.query(&statement).execute().await.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            }
        }
    }
}

/// The browser session and where its screenshots go.
pub struct Browser {
    pub client: Client,
    pub shots: PathBuf,
}

impl Browser {
    /// Saves a screenshot of the viewport as `name`.png and prints its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        println!("screenshot: {}", path.display());
        path
    }

    /// Runs `script` (a function body; `args` are its `arguments`) in the page and returns its
    /// value.
    pub async fn js(&self, script: &str, args: &[Value]) -> Value {
        self.client.execute(script, args.to_vec()).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Evaluates `script` until it returns something other than `null`/`false`, or panics after
    /// `limit` with `what` (and leaves a `failed-…` screenshot).
    pub async fn wait_for(&self, what: &str, limit: Duration, script: &str, args: &[Value]) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.js(script, args).await;
            if !matches!(value, Value::Null | Value::Bool(false)) {
                return value;
            }
            if Instant::now() >= deadline {
                let slug: String = what.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
                let shot = self.screenshot(&format!("failed-{slug}")).await;
                panic!("waited {limit:?} for {what}; the page is in {}", shot.display());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }
}

/// The chromedriver and Chromium executables; fails (never skips) when either is missing.
pub fn find_browser() -> (PathBuf, PathBuf) {
    let driver = on_path(&["chromedriver"]).unwrap_or_else(|| {
        panic!(
            "chromedriver is not installed: this test drives Debian's chromium through chromium-driver. \
             Install them with `source deploy/dev/lib.sh && install_chromium` (deploy/dev/test.sh does it)"
        )
    });
    let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"]).unwrap_or_else(|| {
        panic!(
            "chromium is not installed: install Debian's chromium and chromium-driver with \
             `source deploy/dev/lib.sh && install_chromium` (deploy/dev/test.sh does it)"
        )
    });
    (driver, chromium)
}

/// Starts chromedriver on a free port and a headless Chromium session with its own profile.
pub async fn start_browser(
    (driver, chromium): (PathBuf, PathBuf),
    processes: &mut Processes,
    work: &Path,
    shots: PathBuf,
) -> Browser {
    let port = free_port();
    processes.spawn(
        "chromedriver",
        Command::new(&driver).args([format!("--port={port}"), "--log-level=WARNING".into()]),
        &work.join("chromedriver.log"),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_http_ok("chromedriver", &format!("{url}/status"), STEP_WAIT, processes, work).await;

    let profile = work.join(format!("chromium-profile-{port}"));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--lang=zh-CN", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else { unreachable!("an object literal") };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("no Chromium session from chromedriver at {url}: {e}; log in {}", work.display()));
    Browser { client, shots }
}


/// Startup of the debug-build topology (models and knowledge base) plus the first turn.
pub const FIRST_ANSWER_WAIT: Duration = Duration::from_secs(90);

/// The whole system on a test's own topics and ClickHouse database: `switchboard run` (one
/// worker, the real models) and `switchboard gateway` (public and admin listeners on free
/// ports, the given accounts), against the dev broker and ClickHouse.
pub struct System {
    /// The children (stopped with the test).
    pub processes: Processes,
    /// The test's scratch folder (logs, users file, browser profiles).
    pub work: PathBuf,
    /// Where screenshots go.
    pub shots: PathBuf,
    /// The public listener (`/`, `/ws`).
    pub public: String,
    /// The admin listener (`/login`, `/console`, `/agent`).
    pub admin: String,
    /// The test's database and a client with the rights to drop it.
    pub database: String,
    pub clickhouse: ClickHouseSink,
}

impl System {
    /// Starts it; `name` names the topics, database, folder and screenshot folder.
    pub async fn start(name: &str, run_id: &str, accounts: &[(&str, switchboard_gateway::accounts::Role, &str)]) -> System {
        use switchboard_schemas::settings::{ClickHouseSettings, KafkaSettings};
        let work = std::env::temp_dir().join(format!("switchboard-{name}-{run_id}"));
        std::fs::create_dir_all(&work).expect("work dir");
        let shots = state_dir().join("artifacts").join(name);
        std::fs::create_dir_all(&shots).unwrap_or_else(|e| panic!("{}: {e}", shots.display()));
        let mut processes = Processes::default();
        let kafka = KafkaSettings::from_env().expect("kafka settings");
        let user_said = format!("test.{name}.user-said.{run_id}");
        let bot_said = format!("test.{name}.bot-said.{run_id}");
        let dead_letter = format!("test.{name}.dead.{run_id}");
        switchboard_sources::admin::ensure_topics(&kafka, &[&user_said, &bot_said, &dead_letter], 2)
            .await
            .unwrap_or_else(|e| panic!("creating topics: {e} (is the broker up? deploy/dev/up.sh)"));
        let settings = ClickHouseSettings::from_env().expect("clickhouse settings");
        let clickhouse = ClickHouseSink::new(&settings);
        clickhouse.ping().await.unwrap_or_else(|e| panic!("{e} (is ClickHouse up? deploy/dev/up.sh)"));
        let database = format!("sbtest_{}_{}", name.replace('-', "_"), &run_id[..16]);
        create_database(&clickhouse, &database).await;

        let config = work.join("topology.yaml");
        std::fs::write(
            &config,
            format!(
                "input_topic: {user_said}\nreplies_topic: {bot_said}\ndead_letter_topic: {dead_letter}\n\
                 group_id: {name}-{run_id}\nmetrics_listen: \"\"\n"
            ),
        )
        .expect("config");
        let switchboard = env!("CARGO_BIN_EXE_switchboard");
        processes.spawn(
            "switchboard run",
            Command::new(switchboard)
                .args(["run", "--workers", "1", "--config"])
                .arg(&config)
                .env("SWITCHBOARD_CLICKHOUSE_DATABASE", &database)
                .env("SWITCHBOARD_STATE", state_dir())
                .env("SWITCHBOARD_MODELS", models_dir())
                .env("SWITCHBOARD_LOG", "warn"),
            &work.join("topology.log"),
        );
        let public = format!("127.0.0.1:{}", free_port());
        let admin = format!("127.0.0.1:{}", free_port());
        let users = work.join("users.json");
        let mut file = switchboard_gateway::accounts::Accounts::load(&users).expect("users file");
        for (user, role, password) in accounts {
            file.upsert(user, *role, password).expect("an account");
        }
        processes.spawn(
            "switchboard gateway",
            Command::new(switchboard)
                .args(["gateway", "--listen", &public, "--admin-listen", &admin])
                .env("SWITCHBOARD_USERS_FILE", &users)
                .env("SWITCHBOARD_GATEWAY_USER_SAID_TOPIC", &user_said)
                .env("SWITCHBOARD_GATEWAY_BOT_SAID_TOPIC", &bot_said)
                .env("SWITCHBOARD_CLICKHOUSE_DATABASE", &database)
                // The first turn waits for the debug-build topology to load its models.
                .env("SWITCHBOARD_GATEWAY_ANSWER_TIMEOUT_MS", FIRST_ANSWER_WAIT.as_millis().to_string())
                .env("SWITCHBOARD_LOG", "warn"),
            &work.join("gateway.log"),
        );
        wait_http_ok("the gateway", &format!("http://{public}/healthz"), STEP_WAIT, &mut processes, &work).await;
        System { processes, work, shots, public, admin, database, clickhouse }
    }

    /// A headless Chromium session of its own.
    pub async fn browser(&mut self) -> Browser {
        start_browser(find_browser(), &mut self.processes, &self.work, self.shots.clone()).await
    }

    /// Checks that every child still runs, stops them and drops the database.
    pub async fn finish(mut self) {
        self.processes.check_alive(&self.work);
        drop(std::mem::take(&mut self.processes));
        let _ = self.clickhouse.client().query(&format!("DROP DATABASE IF EXISTS {}", self.database)).execute().await;
        let _ = std::fs::remove_dir_all(&self.work);
    }
}
