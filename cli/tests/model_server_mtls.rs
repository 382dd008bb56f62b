//! `switchboard model serve --tls-dir DIR` as a child process: a client with a certificate from
//! the server's CA classifies 我要退货 exactly as in-process inference does; a client without a
//! certificate, one with a certificate from another CA, and a plain (TLS-less) client are
//! refused. And the topology can use it: `switchboard test` on every recording, with a config
//! naming the model server, reproduces the golden files made with in-process inference.
//!
//! Needs the demo models and knowledge base (`deploy/dev/prepare.sh`) and openssl
//! (certificates are made by `deploy/tls/make-test-ca.sh` into a temporary folder).

mod common;

use common::recordings;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchboard_operators::intent::IntentModel;
use switchboard_connectors::model_server::proto::model_client::ModelClient;
use switchboard_connectors::model_server::proto::{ClassifyRequest, EmbedRequest};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn state_dir() -> PathBuf {
    std::env::var("SWITCHBOARD_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".switchboard"))
}

/// A test CA with server and client certificates in `dir`, by the deploy script.
fn make_ca(dir: &Path) -> PathBuf {
    let status = Command::new(workspace().join("deploy/tls/make-test-ca.sh"))
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .expect("run deploy/tls/make-test-ca.sh");
    assert!(status.success(), "make-test-ca.sh failed");
    dir.to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `switchboard model serve` on a free port, killed on drop.
struct ServerProcess {
    child: Child,
    port: u16,
}

impl ServerProcess {
    fn start(tls_dir: Option<&Path>) -> ServerProcess {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command.args(["model", "serve", "--listen", &format!("127.0.0.1:{port}")]);
        if let Some(dir) = tls_dir {
            command.arg("--tls-dir").arg(dir);
        }
        if std::env::var_os("SWITCHBOARD_MODELS").is_none() {
            command.env("SWITCHBOARD_MODELS", workspace().join("models"));
        }
        let mut child = command
            .env("SWITCHBOARD_STATE", state_dir())
            .env("SWITCHBOARD_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start switchboard model serve");
        // The server binds after loading the models: wait until it accepts connections.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("model serve exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "model serve did not listen on {port} within 120 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        ServerProcess { child, port }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn read(dir: &std::path::Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
}

fn classify_request(text: &str) -> ClassifyRequest {
    ClassifyRequest {
        locale: "zh-CN".into(),
        texts: vec![text.into()],
        include_embeddings: true,
        model_version: String::new(),
    }
}

/// Connects with `tls` (None: plain HTTP/2) and classifies 我要退货; the error text on refusal.
async fn try_classify(
    port: u16,
    tls: Option<ClientTlsConfig>,
) -> Result<(String, f32, String), String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://localhost:{port}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(20));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(|e| e.to_string())?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let mut client = ModelClient::new(channel);
    let answer = client
        .classify(classify_request("我要退货"))
        .await
        .map_err(|e| format!("classify: {e:?}"))?
        .into_inner();
    let first = answer.results.first().ok_or("no result")?;
    Ok((
        first.label.clone(),
        first.confidence,
        first.model_version.clone(),
    ))
}

#[test]
fn mutual_tls_admits_only_clients_with_a_certificate_from_the_servers_ca() {
    let temp = std::env::temp_dir().join(format!("switchboard-mtls-{}", std::process::id()));
    let good = make_ca(&temp.join("good"));
    let other = make_ca(&temp.join("other"));
    let server = ServerProcess::start(Some(&good));
    let rt = runtime();

    // In-process reference: the same model folder the server loads by default.
    let model = IntentModel::load(state_dir().join("intent/zh"))
        .expect("demo zh model (deploy/dev/prepare.sh)");
    let expected = model.classify_one("我要退货").expect("classify in process");

    // 1. The right client certificate: same label, confidence and version as in process.
    let trusted = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&good, "ca.pem")))
        .identity(Identity::from_pem(
            read(&good, "client.pem"),
            read(&good, "client.key"),
        ));
    let (label, confidence, version) = rt
        .block_on(try_classify(server.port, Some(trusted.clone())))
        .expect("trusted client");
    assert_eq!(label, expected.label);
    assert_eq!(label, "return_goods");
    assert!(
        (confidence - expected.confidence).abs() < 1e-6,
        "{confidence} vs {}",
        expected.confidence
    );
    assert_eq!(version, model.version());

    // The embedding and Embed agree with the in-process encoder.
    rt.block_on(async {
        let channel = Endpoint::from_shared(format!("https://127.0.0.1:{}", server.port))
            .expect("url")
            .tls_config(trusted)
            .expect("tls")
            .connect()
            .await
            .expect("connect by IP (SAN 127.0.0.1)");
        let mut client = ModelClient::new(channel);
        let answer = client
            .classify(classify_request("我要退货"))
            .await
            .expect("classify")
            .into_inner();
        let local = model
            .encoder()
            .embed(&["我要退货"])
            .expect("embed in process");
        assert_eq!(answer.results[0].embedding.len(), local[0].len());
        let max_diff = answer.results[0]
            .embedding
            .iter()
            .zip(&local[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max_diff < 1e-5, "embedding differs by {max_diff}");
        let embedded = client
            .embed(EmbedRequest {
                locale: "zh-CN".into(),
                texts: vec!["我要退货".into(), "快递到哪了".into()],
            })
            .await
            .expect("embed")
            .into_inner();
        assert_eq!(embedded.embeddings.len(), 2);
        assert_eq!(embedded.dim as usize, local[0].len());
        assert_eq!(embedded.model_version, model.version());
        let bad = client
            .classify(ClassifyRequest {
                locale: "fr".into(),
                ..Default::default()
            })
            .await
            .expect_err("unknown locale refused");
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    });

    // 2. No client certificate.
    let anonymous =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&good, "ca.pem")));
    let refused = rt.block_on(try_classify(server.port, Some(anonymous)));
    assert!(
        refused.is_err(),
        "a client without a certificate was served: {refused:?}"
    );

    // 3. A client certificate from another CA.
    let stranger = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&good, "ca.pem")))
        .identity(Identity::from_pem(
            read(&other, "client.pem"),
            read(&other, "client.key"),
        ));
    let refused = rt.block_on(try_classify(server.port, Some(stranger)));
    assert!(
        refused.is_err(),
        "a client with another CA's certificate was served: {refused:?}"
    );

    // 4. Plain HTTP/2 to the TLS port.
    let refused = rt.block_on(try_classify(server.port, None));
    assert!(
        refused.is_err(),
        "a TLS-less client was served: {refused:?}"
    );

    // The server is still healthy after the refusals.
    let trusted = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&good, "ca.pem")))
        .identity(Identity::from_pem(
            read(&good, "client.pem"),
            read(&good, "client.key"),
        ));
    rt.block_on(try_classify(server.port, Some(trusted)))
        .expect("trusted client after refusals");
    drop(server);
    let _ = std::fs::remove_dir_all(&temp);
}

#[test]
fn the_topology_classifies_on_the_model_server_with_the_same_output_as_in_process() {
    let temp =
        std::env::temp_dir().join(format!("switchboard-mtls-topology-{}", std::process::id()));
    let tls = make_ca(&temp.join("tls"));
    let server = ServerProcess::start(Some(&tls));
    let config = temp.join("topology.yaml");
    std::fs::write(
        &config,
        format!(
            "model_server: {{ url: \"https://localhost:{}\", tls_dir: \"{}\" }}\n",
            server.port,
            tls.display()
        ),
    )
    .expect("write config");
    let all = recordings();
    assert!(all.len() >= 4, "{all:?}");
    for (i, recording) in all.iter().enumerate() {
        let golden = recording.with_extension("golden.ndjson");
        // One worker for every recording, and two for the first (concurrent batches).
        let worker_counts: &[usize] = if i == 0 { &[1, 2] } else { &[1] };
        for workers in worker_counts {
            let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
                .arg("test")
                .arg(recording)
                .arg("--golden")
                .arg(&golden)
                .arg("--workers")
                .arg(workers.to_string())
                .arg("--config")
                .arg(&config)
                .env("SWITCHBOARD_STATE", state_dir())
                .env("SWITCHBOARD_LOG", "info")
                .output()
                .expect("run switchboard test");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{} with {workers} workers over the model server:\n{stderr}",
                recording.display()
            );
            assert!(
                stderr.contains("using the model server"),
                "the run did not use the model server:\n{stderr}"
            );
        }
    }

    // Without a client certificate the topology does not start (exit 1, one line naming the server).
    let anonymous = temp.join("anonymous");
    std::fs::create_dir_all(&anonymous).expect("dir");
    std::fs::copy(tls.join("ca.pem"), anonymous.join("ca.pem")).expect("copy ca");
    let other = make_ca(&temp.join("other"));
    for name in ["client.pem", "client.key"] {
        std::fs::copy(other.join(name), anonymous.join(name)).expect("copy other client cert");
    }
    let config = temp.join("stranger.yaml");
    std::fs::write(
        &config,
        format!(
            "model_server: {{ url: \"https://localhost:{}\", tls_dir: \"{}\" }}\n",
            server.port,
            anonymous.display()
        ),
    )
    .expect("write config");
    let recording = &all[0];
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("test")
        .arg(recording)
        .arg("--golden")
        .arg(recording.with_extension("golden.ndjson"))
        .arg("--config")
        .arg(&config)
        .env("SWITCHBOARD_STATE", state_dir())
        .env("SWITCHBOARD_LOG", "warn")
        .output()
        .expect("run switchboard test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("model server"), "{stderr}");
    drop(server);
    let _ = std::fs::remove_dir_all(&temp);
}
