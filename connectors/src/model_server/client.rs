//! The model server's client side: [`RemoteIntentBackend`] classifies (and embeds, for
//! retrieval) over gRPC, behind the same
//! [`IntentBackend`] seam as in-process inference, so
//! [`ModelUnderstanding`](switchboard_operators::understand::ModelUnderstanding) keeps its
//! caches and retrieval unchanged.
//!
//! The timely workers call it from plain threads: each call runs on the backend's own small
//! tokio runtime and the caller waits for the answer (bounded by the configured timeout).

use super::proto::model_client::ModelClient;
use super::proto::ClassifyRequest;
use super::{tls, ModelServerError, ModelServerSettings};
use std::collections::HashMap;
use std::future::Future;
use std::sync::RwLock;
use std::time::Duration;
use switchboard_operators::intent::backend::{BackendError, Classified, IntentBackend};
use switchboard_operators::intent::Prediction;
use switchboard_schemas::Locale;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

/// Opens a channel to the server `settings` names: mutual TLS for `https://` (with the
/// client certificate of `tls_dir`), plain for `http://`.
pub async fn connect_channel(settings: &ModelServerSettings) -> Result<Channel, ModelServerError> {
    let bad = |reason: &str| ModelServerError::BadUrl {
        url: settings.url.clone(),
        reason: reason.to_string(),
    };
    let mut endpoint = Endpoint::from_shared(settings.url.clone())
        .map_err(|e| bad(&e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_millis(settings.timeout_ms.max(1)));
    match (settings.url.starts_with("https://"), &settings.tls_dir) {
        (true, Some(dir)) => endpoint = endpoint.tls_config(tls::client_config(dir)?)?,
        (true, None) => return Err(bad("https needs tls_dir (ca.pem, client.pem, client.key)")),
        (false, Some(_)) => return Err(bad("tls_dir is set but the url is not https://")),
        (false, None) if settings.url.starts_with("http://") => {}
        (false, None) => return Err(bad("expected http://HOST:PORT or https://HOST:PORT")),
    }
    Ok(endpoint.connect().await?)
}

/// Maps a gRPC status to the backend's error.
fn backend_error(locale: Locale, version: Option<&str>, status: tonic::Status) -> BackendError {
    match status.code() {
        Code::NotFound => BackendError::NoModel(locale.as_str()),
        Code::FailedPrecondition => BackendError::VersionGone {
            locale: locale.as_str(),
            version: version.unwrap_or_default().to_string(),
        },
        _ => BackendError::Unavailable(format!("{}: {}", status.code(), status.message())),
    }
}

/// Intent inference on a model server.
pub struct RemoteIntentBackend {
    url: String,
    client: ModelClient<Channel>,
    runtime: Option<tokio::runtime::Runtime>,
    locales: Vec<Locale>,
    newest: RwLock<HashMap<Locale, String>>,
    timeout: Duration,
}

impl RemoteIntentBackend {
    /// Connects and asks the server for the newest model version of each of `locales`; fails
    /// when the server cannot be reached, refuses the client (TLS) or serves none of a locale.
    pub fn connect(
        settings: &ModelServerSettings,
        locales: Vec<Locale>,
    ) -> Result<Self, ModelServerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("model-client")
            .enable_all()
            .build()
            .map_err(ModelServerError::Runtime)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let owned = settings.clone();
        runtime.spawn(async move {
            let _ = tx.send(connect_channel(&owned).await);
        });
        let channel = rx.recv().map_err(|_| ModelServerError::Refused {
            url: settings.url.clone(),
            status: "the client runtime stopped while connecting".into(),
        })??;
        let backend = RemoteIntentBackend {
            url: settings.url.clone(),
            client: ModelClient::new(channel),
            runtime: Some(runtime),
            locales,
            newest: RwLock::new(HashMap::new()),
            timeout: Duration::from_millis(settings.timeout_ms.max(1)),
        };
        for locale in backend.locales.clone() {
            let version = backend
                .probe(locale)
                .map_err(|e| ModelServerError::Refused {
                    url: settings.url.clone(),
                    status: e.to_string(),
                })?;
            if let Ok(mut newest) = backend.newest.write() {
                newest.insert(locale, version);
            }
        }
        tracing::info!(url = %backend.url, versions = ?backend.versions(), "using the model server");
        Ok(backend)
    }

    /// Runs `call` on the backend's runtime and waits for it.
    fn call<T: Send + 'static>(
        &self,
        call: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, BackendError> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| BackendError::Unavailable("client shut down".into()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(call.await);
        });
        rx.recv_timeout(self.timeout + Duration::from_secs(1))
            .map_err(|_| BackendError::Unavailable(format!("no answer from {} in time", self.url)))
    }

    fn request(
        &self,
        request: ClassifyRequest,
    ) -> Result<super::proto::ClassifyResponse, tonic::Status> {
        let mut client = self.client.clone();
        match self.call(async move { client.classify(request).await }) {
            Ok(answer) => answer.map(tonic::Response::into_inner),
            Err(e) => Err(tonic::Status::unavailable(e.to_string())),
        }
    }

    /// The newest version the server holds for `locale` (an empty Classify).
    fn probe(&self, locale: Locale) -> Result<String, BackendError> {
        let request = ClassifyRequest {
            locale: locale.as_str().to_string(),
            ..Default::default()
        };
        let answer = self
            .request(request)
            .map_err(|s| backend_error(locale, None, s))?;
        if answer.model_version.is_empty() {
            return Err(BackendError::BadAnswer(
                "no model version in the answer".into(),
            ));
        }
        Ok(answer.model_version)
    }
}

impl IntentBackend for RemoteIntentBackend {
    fn classify(
        &self,
        locale: Locale,
        texts: &[&str],
        version: Option<&str>,
    ) -> Result<Vec<Classified>, BackendError> {
        let request = ClassifyRequest {
            locale: locale.as_str().to_string(),
            texts: texts.iter().map(|t| t.to_string()).collect(),
            include_embeddings: true,
            model_version: version.unwrap_or_default().to_string(),
        };
        let answer = self
            .request(request)
            .map_err(|s| backend_error(locale, version, s))?;
        if answer.results.len() != texts.len() {
            return Err(BackendError::BadAnswer(format!(
                "{} results for {} texts",
                answer.results.len(),
                texts.len()
            )));
        }
        answer
            .results
            .into_iter()
            .map(|r| {
                if r.model_version.is_empty() {
                    return Err(BackendError::BadAnswer(
                        "a result names no model version".into(),
                    ));
                }
                Ok(Classified {
                    prediction: Prediction {
                        label: r.label,
                        confidence: r.confidence,
                        top: r
                            .top
                            .into_iter()
                            .map(|a| (a.label, a.probability))
                            .collect(),
                        // Not on the wire: the server already applied it to the confidence.
                        in_scope: None,
                    },
                    vector: r.embedding,
                    model_version: r.model_version,
                })
            })
            .collect()
    }

    fn versions(&self) -> Vec<(Locale, String)> {
        let Ok(newest) = self.newest.read() else {
            return Vec::new();
        };
        let mut out: Vec<(Locale, String)> = newest.iter().map(|(l, v)| (*l, v.clone())).collect();
        out.sort_by_key(|(l, _)| l.as_str());
        out
    }

    fn refresh(&self) -> bool {
        let mut changed = false;
        for locale in &self.locales {
            match self.probe(*locale) {
                Ok(version) => {
                    if let Ok(mut newest) = self.newest.write() {
                        if newest.insert(*locale, version.clone()).as_ref() != Some(&version) {
                            tracing::info!(locale = locale.as_str(), %version, "model server has a new intent model version");
                            changed = true;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(locale = locale.as_str(), error = %e, "model server version check failed")
                }
            }
        }
        changed
    }
}

impl Drop for RemoteIntentBackend {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
