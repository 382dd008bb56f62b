//! The gRPC service of `switchboard model serve`.
//!
//! Every request becomes a job on one queue; a single inference thread takes all jobs waiting
//! (up to [`MAX_BATCH_TEXTS`] texts), groups them by locale and model version and runs one
//! encoder pass per group, so many small requests from many connections share a batch. The
//! same thread looks for new model versions (every `reload_every`, and before a batch once that
//! time has passed) through the in-process
//! [`LocalIntentBackend`]: a new version is loaded beside the old ones and answers the next
//! batch; connections and requests in flight are not disturbed.

use super::proto::model_server::{Model, ModelServer};
use super::proto::{
    Alternative, Classification, ClassifyRequest, ClassifyResponse, EmbedRequest, EmbedResponse,
    Embedding,
};
use super::{tls, ModelServerError};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_operators::intent::backend::{
    BackendError, Classified, IntentBackend, LocalIntentBackend,
};
use switchboard_operators::intent::normalize_text;
use switchboard_schemas::Locale;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

/// Most texts one inference pass takes from the queue (a single larger request still runs whole).
pub const MAX_BATCH_TEXTS: usize = 64;
/// Most texts in one request.
pub const MAX_REQUEST_TEXTS: usize = 1024;
/// Longest text accepted, in characters (as for a turn).
pub const MAX_TEXT_CHARS: usize = 4096;

/// How `model serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Mutual TLS with the files of this folder ([`tls`]); plain gRPC when None.
    pub tls_dir: Option<PathBuf>,
    /// How often to look for new model versions.
    pub reload_every: Duration,
}

/// The answer of one job: the version that served it and one result per text.
type JobResult = Result<(String, Vec<Classified>), Status>;

struct Job {
    locale: Locale,
    texts: Vec<String>,
    version: Option<String>,
    reply: oneshot::Sender<JobResult>,
}

fn status_of(e: BackendError) -> Status {
    match e {
        BackendError::NoModel(_) => Status::not_found(e.to_string()),
        BackendError::VersionGone { .. } => Status::failed_precondition(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

/// The inference thread: batches waiting jobs, reloads models between batches.
fn inference_loop(
    backend: Arc<LocalIntentBackend>,
    jobs: mpsc::Receiver<Job>,
    reload_every: Duration,
) {
    let mut last_reload = Instant::now();
    loop {
        let first = match jobs.recv_timeout(reload_every) {
            Ok(job) => Some(job),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        if last_reload.elapsed() >= reload_every {
            backend.refresh();
            last_reload = Instant::now();
        }
        let Some(first) = first else { continue };
        let mut taken = first.texts.len();
        let mut batch = vec![first];
        while taken < MAX_BATCH_TEXTS {
            match jobs.try_recv() {
                Ok(job) => {
                    taken += job.texts.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let mut groups: BTreeMap<(&'static str, Option<String>), Vec<Job>> = BTreeMap::new();
        for job in batch {
            groups
                .entry((job.locale.as_str(), job.version.clone()))
                .or_default()
                .push(job);
        }
        for ((_, version), group) in groups {
            run_group(&backend, version.as_deref(), group);
        }
    }
}

/// One encoder pass for jobs of the same locale and version; answers each job its share.
fn run_group(backend: &LocalIntentBackend, version: Option<&str>, group: Vec<Job>) {
    let Some(locale) = group.first().map(|j| j.locale) else {
        return;
    };
    let served = match backend.model(locale, version) {
        Ok(model) => model.version().to_string(),
        Err(e) => {
            let status = status_of(e);
            for job in group {
                let _ = job.reply.send(Err(status.clone()));
            }
            return;
        }
    };
    let texts: Vec<&str> = group
        .iter()
        .flat_map(|j| j.texts.iter().map(String::as_str))
        .collect();
    let results = if texts.is_empty() {
        Ok(Vec::new())
    } else {
        // Pinned to the version resolved above, so the whole group is answered by one version.
        backend.classify(locale, &texts, Some(&served))
    };
    match results {
        Ok(results) => {
            let mut rest = results.into_iter();
            for job in group {
                let mine: Vec<Classified> = rest.by_ref().take(job.texts.len()).collect();
                let _ = job.reply.send(Ok((served.clone(), mine)));
            }
        }
        Err(e) => {
            tracing::error!(locale = locale.as_str(), error = %e, "inference failed");
            let status = status_of(e);
            for job in group {
                let _ = job.reply.send(Err(status.clone()));
            }
        }
    }
}

/// Requests waiting for the inference thread, at most; one more is refused with
/// `RESOURCE_EXHAUSTED` (a client retries it later) instead of queueing without bound.
pub const MAX_QUEUED_REQUESTS: usize = 256;

/// The `Model` gRPC service.
pub struct ModelService {
    jobs: mpsc::SyncSender<Job>,
}

/// Queues `job` for the inference thread, or says why not.
fn enqueue(jobs: &mpsc::SyncSender<Job>, job: Job) -> Result<(), Status> {
    jobs.try_send(job).map_err(|e| match e {
        mpsc::TrySendError::Full(_) => Status::resource_exhausted(format!(
            "the model server has {MAX_QUEUED_REQUESTS} requests waiting; retry later"
        )),
        mpsc::TrySendError::Disconnected(_) => Status::unavailable("the inference thread has stopped"),
    })
}

impl ModelService {
    /// Starts the inference thread over `backend`.
    pub fn start(
        backend: Arc<LocalIntentBackend>,
        reload_every: Duration,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::sync_channel(MAX_QUEUED_REQUESTS);
        std::thread::Builder::new()
            .name("model-inference".into())
            .spawn(move || inference_loop(backend, queue, reload_every))?;
        Ok(ModelService { jobs })
    }

    async fn run(&self, locale: &str, texts: Vec<String>, version: Option<String>) -> JobResult {
        let locale = Locale::parse(locale).ok_or_else(|| {
            Status::invalid_argument(format!("unknown locale `{locale}` (zh-CN or en)"))
        })?;
        if texts.len() > MAX_REQUEST_TEXTS {
            return Err(Status::invalid_argument(format!(
                "{} texts in one request, at most {MAX_REQUEST_TEXTS}",
                texts.len()
            )));
        }
        if let Some(i) = texts
            .iter()
            .position(|t| t.chars().count() > MAX_TEXT_CHARS)
        {
            return Err(Status::invalid_argument(format!(
                "text {i} is longer than {MAX_TEXT_CHARS} characters"
            )));
        }
        let (reply, answer) = oneshot::channel();
        enqueue(
            &self.jobs,
            Job {
                locale,
                texts,
                version,
                reply,
            },
        )?;
        answer
            .await
            .map_err(|_| Status::internal("the inference thread dropped the request"))?
    }
}

#[tonic::async_trait]
impl Model for ModelService {
    async fn classify(
        &self,
        request: Request<ClassifyRequest>,
    ) -> Result<Response<ClassifyResponse>, Status> {
        let request = request.into_inner();
        let texts: Vec<String> = request.texts.iter().map(|t| normalize_text(t)).collect();
        let version = Some(request.model_version).filter(|v| !v.is_empty());
        let (served, results) = self.run(&request.locale, texts, version).await?;
        let results = results
            .into_iter()
            .map(|c| Classification {
                label: c.prediction.label,
                confidence: c.prediction.confidence,
                model_version: c.model_version,
                top: c
                    .prediction
                    .top
                    .into_iter()
                    .map(|(label, probability)| Alternative { label, probability })
                    .collect(),
                embedding: if request.include_embeddings {
                    c.vector
                } else {
                    Vec::new()
                },
            })
            .collect();
        Ok(Response::new(ClassifyResponse {
            results,
            model_version: served,
        }))
    }

    async fn embed(
        &self,
        request: Request<EmbedRequest>,
    ) -> Result<Response<EmbedResponse>, Status> {
        let request = request.into_inner();
        let (served, results) = self.run(&request.locale, request.texts, None).await?;
        let dim = results.first().map(|c| c.vector.len()).unwrap_or(0);
        Ok(Response::new(EmbedResponse {
            embeddings: results
                .into_iter()
                .map(|c| Embedding { values: c.vector })
                .collect(),
            dim: u32::try_from(dim).unwrap_or(u32::MAX),
            model_version: served,
        }))
    }
}

/// Serves `backend` on `options.listen` until `shutdown` completes. Logs the bound address
/// (`model server listening`) once it accepts connections.
pub async fn serve(
    options: ServeOptions,
    backend: Arc<LocalIntentBackend>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ModelServerError> {
    let service = ModelService::start(backend.clone(), options.reload_every)
        .map_err(ModelServerError::Runtime)?;
    let mut builder = tonic::transport::Server::builder();
    if let Some(dir) = &options.tls_dir {
        builder = builder.tls_config(tls::server_config(dir)?)?;
    }
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ModelServerError::Listen {
            addr: options.listen,
            source,
        })?;
    let bound = listener.local_addr().unwrap_or(options.listen);
    tracing::info!(
        addr = %bound,
        tls = options.tls_dir.is_some(),
        models = ?backend.versions(),
        "model server listening"
    );
    builder
        .add_service(ModelServer::new(service))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod queue_tests {
    use super::*;

    fn job() -> Job {
        Job { locale: Locale::ZhCn, texts: vec!["你好".into()], version: None, reply: oneshot::channel().0 }
    }

    #[test]
    fn a_full_queue_refuses_with_resource_exhausted_and_a_stopped_thread_with_unavailable() {
        let (jobs, queue) = mpsc::sync_channel(1);
        assert!(enqueue(&jobs, job()).is_ok());
        let refused = enqueue(&jobs, job()).expect_err("the queue holds one");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused:?}");
        assert!(refused.message().contains("retry later"), "{}", refused.message());
        drop(queue);
        assert_eq!(enqueue(&jobs, job()).expect_err("nobody reads").code(), tonic::Code::Unavailable);
    }
}
