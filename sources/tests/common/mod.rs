//! A scratch nisshi broker for the tests that must restart or configure a broker of their own
//! (its own port and sqlite file, so the shared dev broker is neither restarted nor touched).
//! The gateway's tests include this file too (`#[path]`).
//!
//! Needs the `nisshi` binary (`deploy/dev/up.sh` installs it; `NISSHI` names another one).
#![allow(dead_code)]

use rdkafka::consumer::{BaseConsumer, Consumer};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchboard_schemas::settings::KafkaSettings;

/// The nisshi binary: `NISSHI`, else the first on `PATH`, else `~/.cargo/bin/nisshi`.
pub fn nisshi() -> PathBuf {
    if let Some(path) = std::env::var_os("NISSHI") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("nisshi")).find(|c| c.is_file()));
    on_path.unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cargo/bin/nisshi"))
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// A nisshi broker on its own port with sqlite storage in its own directory, killed when dropped.
pub struct ScratchBroker {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    storage: String,
}

impl ScratchBroker {
    /// Starts a broker on 127.0.0.1:`port` with `storage` (e.g. `sqlite://nisshi.db`, relative
    /// to `dir`), and waits until it answers.
    pub fn start(dir: &Path, port: u16, storage: &str) -> ScratchBroker {
        let mut broker = ScratchBroker { child: None, dir: dir.to_path_buf(), port, storage: storage.to_string() };
        broker.launch();
        broker
    }

    /// Starts the broker (again, after [`stop`](Self::stop)) on the same port and data, and waits
    /// until it answers.
    pub fn launch(&mut self) {
        let binary = nisshi();
        assert!(binary.is_file(), "no nisshi binary at {} (deploy/dev/up.sh installs it)", binary.display());
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("broker.log")).expect("broker log");
        let child = Command::new(binary)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", &self.storage])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nisshi");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Plain (no SASL, no TLS) settings for this broker.
    pub fn settings(&self) -> KafkaSettings {
        KafkaSettings::plain(format!("127.0.0.1:{}", self.port))
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let consumer: BaseConsumer = self.settings().client_config().create().expect("client");
        while consumer.fetch_metadata(None, Duration::from_secs(1)).is_err() {
            assert!(Instant::now() < deadline, "scratch nisshi did not answer within 30 s; see {}/broker.log", self.dir.display());
        }
    }

    /// SIGTERM, and waits (at most 30 s, then SIGKILL) until the process has exited and the
    /// port is free.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !matches!(child.try_wait(), Ok(Some(_))) {
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "port {} still open 15 s after the broker exited", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`stop`](Self::stop), then starts it again on the same port and data, and waits until it
    /// answers.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// SIGKILL (a crash), then starts it again on the same port and data, and waits until it
    /// answers.
    pub fn kill_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.launch();
    }
}

impl Drop for ScratchBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
