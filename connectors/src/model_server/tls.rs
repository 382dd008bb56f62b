//! The files of the model server's mutual TLS, all PEM, in one folder (made for tests and
//! development by `deploy/tls/make-test-ca.sh`): `ca.pem` (the CA that signs servers and
//! clients), `server.pem` + `server.key`, `client.pem` + `client.key`.

use super::ModelServerError;
use std::path::Path;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The CA certificate.
pub const CA_FILE: &str = "ca.pem";
/// The server's certificate chain.
pub const SERVER_CERT_FILE: &str = "server.pem";
/// The server's private key.
pub const SERVER_KEY_FILE: &str = "server.key";
/// The client's certificate chain.
pub const CLIENT_CERT_FILE: &str = "client.pem";
/// The client's private key.
pub const CLIENT_KEY_FILE: &str = "client.key";

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, ModelServerError> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|source| ModelServerError::TlsFile { path, source })
}

/// Server side: its identity, and client certificates required, signed by the folder's CA.
pub fn server_config(dir: &Path) -> Result<ServerTlsConfig, ModelServerError> {
    let identity = Identity::from_pem(read(dir, SERVER_CERT_FILE)?, read(dir, SERVER_KEY_FILE)?);
    let ca = Certificate::from_pem(read(dir, CA_FILE)?);
    Ok(ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(ca)
        .client_auth_optional(false))
}

/// Client side: trusts only the folder's CA and presents the folder's client certificate.
pub fn client_config(dir: &Path) -> Result<ClientTlsConfig, ModelServerError> {
    let identity = Identity::from_pem(read(dir, CLIENT_CERT_FILE)?, read(dir, CLIENT_KEY_FILE)?);
    let ca = Certificate::from_pem(read(dir, CA_FILE)?);
    Ok(ClientTlsConfig::new().ca_certificate(ca).identity(identity))
}
