//! The model server: intent classification and embeddings over gRPC (`switchboard model
//! serve`), and the client the topology uses instead of in-process inference when its
//! configuration names a `model_server`: a remote backend of the operators'
//! [`IntentBackend`](switchboard_operators::intent::backend::IntentBackend).
//!
//! - [`proto`]: the messages and the tonic service, generated from
//!   `connectors/proto/switchboard_model.proto` by `build.rs` (protox: no `protoc` needed).
//! - [`server`]: the service; requests from all connections are batched into one encoder pass
//!   per locale, and new model versions are loaded without dropping a connection.
//! - [`client`]: [`client::RemoteIntentBackend`], an
//!   [`IntentBackend`](switchboard_operators::intent::backend::IntentBackend) over gRPC.
//! - [`tls`]: the certificate files of mutual TLS (rustls): with a TLS folder the server asks
//!   every client for a certificate signed by the folder's CA and refuses those without one.

pub mod client;
pub mod server;
pub mod tls;

use serde::Deserialize;
use std::path::PathBuf;

/// Generated from `proto/switchboard_model.proto` (package `switchboard.model.v1`).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("switchboard.model.v1");
}

/// Where `model serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// The `model_server` section of the topology configuration: classify (and embed for
/// retrieval) on this server instead of in process.
///
/// ```yaml
/// model_server: { url: "https://localhost:50051", tls_dir: .switchboard/tls }
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelServerSettings {
    /// `http://HOST:PORT` (plain) or `https://HOST:PORT` (mutual TLS; needs `tls_dir`).
    pub url: String,
    /// Folder with `ca.pem`, `client.pem` and `client.key` (made by
    /// `deploy/tls/make-test-ca.sh`).
    #[serde(default)]
    pub tls_dir: Option<PathBuf>,
    /// Longest wait for one answer, ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    30_000
}

/// What can go wrong setting up the server or the client.
#[derive(Debug, thiserror::Error)]
pub enum ModelServerError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The URL is not usable.
    #[error("model server url `{url}`: {reason}")]
    BadUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Listening, TLS setup or connecting failed.
    #[error("model server transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The client's runtime could not be started.
    #[error("cannot start the model client runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The server answered the first call with an error.
    #[error("model server at {url} refused: {status}")]
    Refused {
        /// The server.
        url: String,
        /// Its answer.
        status: String,
    },
}
