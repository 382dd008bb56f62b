//! A [`VectorIndex`] backed by a [Qdrant](https://qdrant.tech) server (feature `qdrant`, on
//! by default).
//!
//! [`QdrantIndex`] keeps the question vectors of a [`Snapshot`] in Qdrant: one collection per
//! (snapshot version, locale), named `{prefix}_{version}_{locale-slug}`
//! ([`collection_name`], e.g. `switchboard_kb_3f2a…_zh-cn`), with cosine distance and the
//! locale's vector width. Point `i` of a collection is row `i` of the locale's vectors
//! ([`point_id`]), with the payload `{entry_index, question_index, intent, locale}` and a
//! keyword payload index on `intent`. Since the version is a content hash, a collection's
//! content never changes: syncing the same snapshot again (from another replica, or after a
//! restart) rewrites the same points.
//!
//! # Contract
//!
//! Searches follow the [`VectorIndex`] contract of [`ExactIndex`](super::ExactIndex): one hit
//! per entry (its best question), best first, ties broken by entry index then question index,
//! and the score is `dot(query, unit question vector)` (Qdrant's cosine times the query's
//! norm, so unit queries get the plain cosine). Qdrant is asked for questions, not entries:
//! [`QdrantIndex`] fetches `k × (most questions of one entry)` questions and asks for more when
//! a score tie at the boundary could change the answer ([`ranking_is_final`]), then ranks them
//! locally ([`rank_entries`]). Results equal those of `ExactIndex` when Qdrant searches exactly:
//! always with [`QdrantSettings::exact`] set, and in practice for small collections (Qdrant
//! scans segments below its indexing threshold, 10 000 vectors by default, without HNSW).
//! A zero query vector returns nothing (its cosine is undefined).
//!
//! [`VectorIndex::search`] is synchronous: the index owns a small Tokio runtime (one worker
//! thread) that runs the gRPC client. Called from inside another Tokio runtime, a search blocks
//! on a short-lived helper thread instead, so it never panics there; it still blocks the calling
//! thread, like any [`VectorIndex`]. A failed search (server down, timeout, missing collection)
//! is logged with `tracing` and returns no hit: the retriever then finds nothing and the bot
//! asks the user to clarify.
//!
//! # Selecting it
//!
//! The topology picks the vector backend from its configuration key `vector_backend`:
//! `exact` (the default) builds [`Retriever::new`](super::Retriever::new) with an in-process
//! [`ExactIndex`](super::ExactIndex); `qdrant` calls [`QdrantIndex::from_env`] once at start-up
//! (failing start-up when it returns `Ok(None)`, i.e. `QDRANT_URL` is unset, or an error), then
//! for each snapshot it serves (the first one and every one a
//! [`SnapshotWatcher`](super::SnapshotWatcher) reports):
//!
//! ```no_run
//! use switchboard_operators::retrieval::qdrant::QdrantIndex;
//! use switchboard_operators::retrieval::{Retriever, RetrieverConfig, Snapshot};
//!
//! # fn serve(snapshot: Snapshot) -> switchboard_operators::Result<()> {
//! let qdrant = QdrantIndex::from_env()?.expect("vector_backend: qdrant needs QDRANT_URL");
//! // A clone shares the connection but has its own snapshot binding, so the retriever of
//! // the previous snapshot keeps searching its own collections until it is dropped.
//! let index = qdrant.clone();
//! index.sync_snapshot(&snapshot)?; // or attach_snapshot where another process syncs
//! let retriever = Retriever::with_index(snapshot, Box::new(index), RetrieverConfig::default());
//! # Ok(()) }
//! ```
//!
//! Environment ([`QdrantSettings::from_env`]):
//!
//! | variable | meaning |
//! | --- | --- |
//! | `QDRANT_URL` | gRPC endpoint, e.g. `http://127.0.0.1:6334`; unset or empty: no Qdrant |
//! | `QDRANT_API_KEY` | API key, optional |
//! | `QDRANT_COLLECTION_PREFIX` | collection name prefix, default `switchboard_kb` |

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use qdrant_client::qdrant::{
    vectors_config, Condition, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    Distance, FieldType, Filter as QdrantFilter, PointStruct, QueryPointsBuilder,
    SearchParamsBuilder, UpsertPointsBuilder, Value, VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant};
use switchboard_schemas::Locale;

use super::index::{Filter, Hit, VectorIndex};
use super::snapshot::{QuestionRef, Snapshot};

/// Environment variable naming the Qdrant gRPC endpoint.
pub const ENV_URL: &str = "QDRANT_URL";
/// Environment variable holding the Qdrant API key (optional).
pub const ENV_API_KEY: &str = "QDRANT_API_KEY";
/// Environment variable holding the collection name prefix (optional).
pub const ENV_COLLECTION_PREFIX: &str = "QDRANT_COLLECTION_PREFIX";
/// The collection name prefix when none is configured.
pub const DEFAULT_COLLECTION_PREFIX: &str = "switchboard_kb";
/// The default timeout of one request to Qdrant.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Payload field holding the entry index.
pub const FIELD_ENTRY_INDEX: &str = "entry_index";
/// Payload field holding the question index.
pub const FIELD_QUESTION_INDEX: &str = "question_index";
/// Payload field holding the entry's intent (keyword-indexed, used by intent filters).
pub const FIELD_INTENT: &str = "intent";
/// Payload field holding the locale's wire name.
pub const FIELD_LOCALE: &str = "locale";

/// Points sent per upsert request.
const UPSERT_BATCH: usize = 256;
/// Longest collection prefix accepted.
const MAX_PREFIX_LEN: usize = 64;
/// Longest snapshot version accepted in a collection name.
const MAX_VERSION_LEN: usize = 64;

/// Why a Qdrant index could not be configured, connected or synced.
#[derive(Debug, thiserror::Error)]
pub enum QdrantError {
    /// The collection prefix is empty, too long or has characters other than ASCII letters,
    /// digits, `_` and `-`.
    #[error(
        "invalid Qdrant collection prefix `{0}` (1 to {MAX_PREFIX_LEN} ASCII letters, digits, `_` or `-`)"
    )]
    BadPrefix(String),
    /// The snapshot version cannot go into a collection name.
    #[error("invalid snapshot version `{0}` for a Qdrant collection name")]
    BadVersion(String),
    /// The URL is empty or the client refused it.
    #[error("invalid Qdrant URL `{url}`: {message}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        message: String,
    },
    /// The client's runtime or helper thread could not be started.
    #[error("cannot start the Qdrant client runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The helper thread running a request panicked.
    #[error("the Qdrant client thread panicked")]
    Panicked,
    /// A request to the server failed.
    #[error("Qdrant {operation}: {source}")]
    Request {
        /// What was being done (e.g. `upsert into kb_…_en`).
        operation: String,
        /// The client's error.
        #[source]
        source: Box<qdrant_client::QdrantError>,
    },
    /// An existing collection holds vectors of another width or distance than the snapshot's.
    #[error("Qdrant collection {collection}: {message}")]
    CollectionMismatch {
        /// The collection.
        collection: String,
        /// What differs.
        message: String,
    },
    /// The snapshot's vector blocks do not match its entries.
    #[error("inconsistent snapshot: {0}")]
    Inconsistent(String),
}

impl QdrantError {
    fn request(operation: impl Into<String>) -> impl FnOnce(qdrant_client::QdrantError) -> Self {
        let operation = operation.into();
        move |source| QdrantError::Request {
            operation,
            source: Box::new(source),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pure helpers (naming, ids, ranking), public so that they can be tested without a server.
// ---------------------------------------------------------------------------------------------

/// The locale's part of a collection name: its wire name in lower case (`zh-cn`, `en`).
pub fn locale_slug(locale: Locale) -> String {
    locale
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn is_name_part(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks a collection prefix: 1 to 64 ASCII letters, digits, `_` or `-`.
pub fn validate_prefix(prefix: &str) -> Result<(), QdrantError> {
    if is_name_part(prefix, MAX_PREFIX_LEN) {
        Ok(())
    } else {
        Err(QdrantError::BadPrefix(prefix.to_owned()))
    }
}

/// Checks that a snapshot version can go into a collection name (1 to 64 ASCII letters,
/// digits, `_` or `-`; snapshot versions are 32 hex digits).
pub fn validate_version(version: &str) -> Result<(), QdrantError> {
    if is_name_part(version, MAX_VERSION_LEN) {
        Ok(())
    } else {
        Err(QdrantError::BadVersion(version.to_owned()))
    }
}

/// The collection holding the vectors of `locale` in snapshot `version`:
/// `{prefix}_{version}_{locale-slug}`. Does not validate its parts ([`validate_prefix`],
/// [`validate_version`]).
pub fn collection_name(prefix: &str, version: &str, locale: Locale) -> String {
    format!("{prefix}_{version}_{}", locale_slug(locale))
}

/// The Qdrant point id of vector row `row` of a locale: the row index itself.
pub fn point_id(row: usize) -> u64 {
    row as u64
}

/// The question of point `id` in a collection whose rows are `rows`, or `None` when the id
/// is not a row index.
pub fn question_of_point(id: u64, rows: &[QuestionRef]) -> Option<QuestionRef> {
    usize::try_from(id).ok().and_then(|i| rows.get(i)).copied()
}

/// How many questions to ask Qdrant for so that the best `k` entries are among them when
/// no entry has more than `max_questions` questions (at least `k`).
pub fn fetch_limit(k: usize, max_questions: usize) -> usize {
    k.saturating_mul(max_questions.max(1))
}

/// Orders hits best first: score descending, then entry index, then question index.
fn hit_order(a: &Hit, b: &Hit) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then(a.entry_index.cmp(&b.entry_index))
        .then(a.question_index.cmp(&b.question_index))
}

/// The best `k` entries among question-level `hits`: one hit per entry (its best question,
/// the lowest question index among equal scores), ordered by score descending, then entry
/// index, then question index — the [`VectorIndex`] contract.
pub fn rank_entries(hits: impl IntoIterator<Item = Hit>, k: usize) -> Vec<Hit> {
    if k == 0 {
        return Vec::new();
    }
    let mut best: HashMap<usize, Hit> = HashMap::new();
    for hit in hits {
        best.entry(hit.entry_index)
            .and_modify(|b| {
                if hit_order(&hit, b).is_lt() {
                    *b = hit;
                }
            })
            .or_insert(hit);
    }
    let mut ranked: Vec<Hit> = best.into_values().collect();
    ranked.sort_by(hit_order);
    ranked.truncate(k);
    ranked
}

/// Whether the best `k` entries ranked from `points` — the best questions of a search, asked
/// for with `limit`, out of `total` questions in the collection — cannot change by fetching
/// more questions.
///
/// True when the server returned fewer than `limit` questions or `limit` reached `total` (all
/// matching questions are there), or when the `k`-th entry scores strictly above the lowest
/// question returned (any question not returned scores at most that, so it can neither beat a
/// kept entry nor tie with it).
pub fn ranking_is_final(points: &[Hit], limit: usize, total: usize, k: usize) -> bool {
    if points.len() < limit || limit >= total {
        return true;
    }
    let ranked = rank_entries(points.iter().copied(), k);
    let lowest = points.iter().map(|h| h.score).min_by(|a, b| a.total_cmp(b));
    match (ranked.len() >= k, ranked.last(), lowest) {
        (true, Some(kth), Some(lowest)) => kth.score > lowest,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// Where and how to reach Qdrant.
#[derive(Clone, PartialEq, Eq)]
pub struct QdrantSettings {
    /// gRPC endpoint, e.g. `http://127.0.0.1:6334`.
    pub url: String,
    /// API key, if the server wants one.
    pub api_key: Option<String>,
    /// Prefix of the collection names (see [`collection_name`]).
    pub collection_prefix: String,
    /// Timeout of one request (and of connecting). Default 5 s.
    pub timeout: Duration,
    /// Ask Qdrant for exact (brute-force) search instead of HNSW. Default false.
    pub exact: bool,
}

impl std::fmt::Debug for QdrantSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantSettings")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("collection_prefix", &self.collection_prefix)
            .field("timeout", &self.timeout)
            .field("exact", &self.exact)
            .finish()
    }
}

impl QdrantSettings {
    /// Settings for `url` with no API key, the default prefix and timeout, HNSW search.
    pub fn new(url: impl Into<String>) -> QdrantSettings {
        QdrantSettings {
            url: url.into(),
            api_key: None,
            collection_prefix: DEFAULT_COLLECTION_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            exact: false,
        }
    }

    /// Settings from variables looked up with `var` (see the module docs for the names):
    /// `Ok(None)` when `QDRANT_URL` is unset or blank. Blank optional variables count as unset.
    pub fn from_lookup(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<QdrantSettings>, QdrantError> {
        let non_blank = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(url) = non_blank(ENV_URL) else {
            return Ok(None);
        };
        let mut settings = QdrantSettings::new(url);
        settings.api_key = non_blank(ENV_API_KEY);
        if let Some(prefix) = non_blank(ENV_COLLECTION_PREFIX) {
            settings.collection_prefix = prefix;
        }
        validate_prefix(&settings.collection_prefix)?;
        Ok(Some(settings))
    }

    /// Settings from the process environment ([`QdrantSettings::from_lookup`]).
    pub fn from_env() -> Result<Option<QdrantSettings>, QdrantError> {
        QdrantSettings::from_lookup(|name| std::env::var(name).ok())
    }
}

// ---------------------------------------------------------------------------------------------
// The index
// ---------------------------------------------------------------------------------------------

/// A Tokio runtime that may be dropped anywhere (also inside another runtime, where dropping a
/// plain `Runtime` panics).
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl OwnedRuntime {
    fn new() -> Result<OwnedRuntime, QdrantError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchboard-qdrant")
            .enable_all()
            .build()
            .map(|rt| OwnedRuntime(Some(rt)))
            .map_err(QdrantError::Runtime)
    }

    /// Runs `future` to completion on this runtime. Inside another Tokio runtime (where
    /// `block_on` would panic), it runs on a short-lived helper thread.
    fn block_on<F>(&self, future: F) -> Result<F::Output, QdrantError>
    where
        F: Future + Send,
        F::Output: Send,
    {
        let Some(rt) = self.0.as_ref() else {
            // Only during drop; kept as an error rather than a panic.
            return Err(QdrantError::Panicked);
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Ok(rt.block_on(future));
        }
        std::thread::scope(|scope| {
            let handle = std::thread::Builder::new()
                .name("switchboard-qdrant-call".into())
                .spawn_scoped(scope, || rt.block_on(future))
                .map_err(QdrantError::Runtime)?;
            handle.join().map_err(|_| QdrantError::Panicked)
        })
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The connection shared by clones of a [`QdrantIndex`].
struct Connection {
    // Field order: the client (and its channels) goes before the runtime that drives them.
    client: Qdrant,
    runtime: OwnedRuntime,
    settings: QdrantSettings,
}

/// One locale of the bound snapshot.
#[derive(Debug)]
struct LocaleBinding {
    collection: String,
    dim: usize,
    rows: Vec<QuestionRef>,
    /// Most questions of one entry of this locale.
    max_questions: usize,
}

/// The snapshot a [`QdrantIndex`] searches.
#[derive(Debug)]
struct Binding {
    version: String,
    locales: HashMap<Locale, LocaleBinding>,
    len: usize,
}

/// A [`VectorIndex`] whose vectors live in Qdrant (see the module docs).
///
/// Cloning is cheap: clones share the connection and runtime, and each has its own snapshot
/// binding (a clone starts with the original's), so one connection can serve a retriever per
/// snapshot.
pub struct QdrantIndex {
    conn: Arc<Connection>,
    binding: RwLock<Option<Arc<Binding>>>,
}

impl Clone for QdrantIndex {
    fn clone(&self) -> Self {
        QdrantIndex {
            conn: Arc::clone(&self.conn),
            binding: RwLock::new(self.bound()),
        }
    }
}

impl std::fmt::Debug for QdrantIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bound = self.bound();
        f.debug_struct("QdrantIndex")
            .field("settings", &self.conn.settings)
            .field("version", &bound.as_ref().map(|b| b.version.as_str()))
            .field("vectors", &bound.as_ref().map_or(0, |b| b.len))
            .finish()
    }
}

impl QdrantIndex {
    /// Connects to the Qdrant server at `url` (gRPC, e.g. `http://127.0.0.1:6334`) and checks
    /// that it answers. Collections are named `{collection_prefix}_{version}_{locale-slug}`.
    pub fn connect(
        url: &str,
        api_key: Option<String>,
        collection_prefix: &str,
    ) -> crate::Result<QdrantIndex> {
        let mut settings = QdrantSettings::new(url);
        settings.api_key = api_key;
        settings.collection_prefix = collection_prefix.to_owned();
        QdrantIndex::connect_with(settings)
    }

    /// Connects with `settings` and checks that the server answers (a health check; a server
    /// whose major version differs from the client's, or whose minor version is more than one
    /// apart, is logged as a warning).
    pub fn connect_with(settings: QdrantSettings) -> crate::Result<QdrantIndex> {
        let index = QdrantIndex::connect_lazy(settings)?;
        let reply = index
            .conn
            .runtime
            .block_on(index.conn.client.health_check())?
            .map_err(QdrantError::request(format!(
                "health check of {}",
                index.conn.settings.url
            )))?;
        tracing::info!(
            url = %index.conn.settings.url,
            server_version = %reply.version,
            "connected to Qdrant"
        );
        if !versions_compatible(qdrant_client_version(), &reply.version) {
            tracing::warn!(
                server_version = %reply.version,
                client_version = qdrant_client_version(),
                "Qdrant server and client versions may be incompatible"
            );
        }
        Ok(index)
    }

    /// An index for `settings` without contacting the server: connections are made on first
    /// use, so an unreachable server shows up as failed syncs and empty searches.
    pub fn connect_lazy(settings: QdrantSettings) -> crate::Result<QdrantIndex> {
        validate_prefix(&settings.collection_prefix)?;
        if settings.url.trim().is_empty() {
            return Err(QdrantError::BadUrl {
                url: settings.url.clone(),
                message: "empty".into(),
            }
            .into());
        }
        let runtime = OwnedRuntime::new()?;
        let mut config = Qdrant::from_url(settings.url.trim())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // The client's own check prints to stdout; connect_with checks instead.
            .skip_compatibility_check();
        if let Some(key) = &settings.api_key {
            config.set_api_key(key);
        }
        let client = config.build().map_err(|e| QdrantError::BadUrl {
            url: settings.url.clone(),
            message: e.to_string(),
        })?;
        Ok(QdrantIndex {
            conn: Arc::new(Connection {
                client,
                runtime,
                settings,
            }),
            binding: RwLock::new(None),
        })
    }

    /// An index from the environment (`QDRANT_URL`, `QDRANT_API_KEY`,
    /// `QDRANT_COLLECTION_PREFIX`), connected with [`QdrantIndex::connect_with`]; `Ok(None)`
    /// when `QDRANT_URL` is unset or blank.
    pub fn from_env() -> crate::Result<Option<QdrantIndex>> {
        match QdrantSettings::from_env()? {
            Some(settings) => QdrantIndex::connect_with(settings).map(Some),
            None => Ok(None),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &QdrantSettings {
        &self.conn.settings
    }

    /// The version of the snapshot searched, if one is bound.
    pub fn version(&self) -> Option<String> {
        self.bound().map(|b| b.version.clone())
    }

    /// The collection names of `snapshot`, one per locale with vectors, in snapshot order.
    pub fn collections(&self, snapshot: &Snapshot) -> Vec<String> {
        snapshot
            .locales
            .iter()
            .map(|l| {
                collection_name(
                    &self.conn.settings.collection_prefix,
                    &snapshot.version,
                    l.locale,
                )
            })
            .collect()
    }

    /// Stores `snapshot` in Qdrant and makes searches use it.
    ///
    /// For each locale: creates the collection (cosine distance, the locale's width) unless it
    /// exists — an existing one must have the same width and distance — creates the keyword
    /// payload index on `intent`, and upserts every question vector (point id = row index,
    /// payload `{entry_index, question_index, intent, locale}`), waiting until Qdrant has
    /// applied each upsert. Safe to repeat and to run from several processes at once. On error
    /// the previously bound snapshot stays bound.
    pub fn sync_snapshot(&self, snapshot: &Snapshot) -> crate::Result<()> {
        let binding = self.binding_of(snapshot)?;
        let conn = &self.conn;
        conn.runtime
            .block_on(sync_collections(&conn.client, snapshot, &binding))??;
        tracing::info!(
            version = %binding.version,
            vectors = binding.len,
            collections = ?binding.locales.values().map(|l| l.collection.as_str()).collect::<Vec<_>>(),
            "knowledge snapshot synced to Qdrant"
        );
        self.bind(binding);
        Ok(())
    }

    /// Makes searches use `snapshot`'s collections without writing to Qdrant (for processes
    /// where another one runs [`QdrantIndex::sync_snapshot`]). Checks the snapshot but does not
    /// contact the server: missing collections show up as failed (empty) searches.
    pub fn attach_snapshot(&self, snapshot: &Snapshot) -> crate::Result<()> {
        let binding = self.binding_of(snapshot)?;
        self.bind(binding);
        Ok(())
    }

    /// Deletes `snapshot`'s collections (those that exist), e.g. an old version no replica
    /// serves any more. Returns how many were deleted. Does not change the bound snapshot.
    pub fn delete_snapshot(&self, snapshot: &Snapshot) -> crate::Result<usize> {
        validate_version(&snapshot.version)?;
        let names = self.collections(snapshot);
        let client = &self.conn.client;
        let deleted = self.conn.runtime.block_on(async {
            let mut deleted = 0;
            for name in &names {
                let exists = client
                    .collection_exists(name.as_str())
                    .await
                    .map_err(QdrantError::request(format!("check collection {name}")))?;
                if exists {
                    client
                        .delete_collection(name.as_str())
                        .await
                        .map_err(QdrantError::request(format!("delete collection {name}")))?;
                    deleted += 1;
                }
            }
            Ok::<usize, QdrantError>(deleted)
        })??;
        Ok(deleted)
    }

    fn bound(&self) -> Option<Arc<Binding>> {
        self.binding
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn bind(&self, binding: Binding) {
        *self.binding.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(binding));
    }

    /// Checks `snapshot` and describes its collections.
    fn binding_of(&self, snapshot: &Snapshot) -> Result<Binding, QdrantError> {
        validate_version(&snapshot.version)?;
        let mut locales = HashMap::new();
        let mut len = 0;
        for block in &snapshot.locales {
            if block.dim == 0 || block.data.len() != block.rows.len().saturating_mul(block.dim) {
                return Err(QdrantError::Inconsistent(format!(
                    "locale {}: {} values for {} rows of width {}",
                    block.locale.as_str(),
                    block.data.len(),
                    block.rows.len(),
                    block.dim
                )));
            }
            if locales.contains_key(&block.locale) {
                return Err(QdrantError::Inconsistent(format!(
                    "two vector blocks for locale {}",
                    block.locale.as_str()
                )));
            }
            let mut per_entry: HashMap<u32, usize> = HashMap::new();
            let mut seen = HashSet::with_capacity(block.rows.len());
            for row in &block.rows {
                let fits = snapshot
                    .entries
                    .get(row.entry_index as usize)
                    .is_some_and(|e| {
                        e.locale == block.locale
                            && (row.question_index as usize) < e.questions.len()
                    });
                if !fits || !seen.insert(*row) {
                    return Err(QdrantError::Inconsistent(format!(
                        "row for entry {} question {}, which is not a (single) {} question",
                        row.entry_index,
                        row.question_index,
                        block.locale.as_str()
                    )));
                }
                *per_entry.entry(row.entry_index).or_default() += 1;
            }
            len += block.rows.len();
            locales.insert(
                block.locale,
                LocaleBinding {
                    collection: collection_name(
                        &self.conn.settings.collection_prefix,
                        &snapshot.version,
                        block.locale,
                    ),
                    dim: block.dim,
                    rows: block.rows.clone(),
                    max_questions: per_entry.values().copied().max().unwrap_or(1),
                },
            );
        }
        Ok(Binding {
            version: snapshot.version.clone(),
            locales,
            len,
        })
    }

    /// The search itself; errors are reported by [`VectorIndex::search`].
    fn try_search(
        &self,
        binding: &Binding,
        query: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<Hit>, QdrantError> {
        let Some(locale) = binding.locales.get(&filter.locale) else {
            return Ok(Vec::new());
        };
        if locale.dim != query.len() || query.iter().any(|x| !x.is_finite()) {
            return Ok(Vec::new());
        }
        let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return Ok(Vec::new());
        }
        let total = locale.rows.len();
        if total == 0 {
            return Ok(Vec::new());
        }
        let exact = self.conn.settings.exact;
        let client = &self.conn.client;
        let mut limit = fetch_limit(k, locale.max_questions).min(total);
        let points = self.conn.runtime.block_on(async {
            loop {
                let mut request = QueryPointsBuilder::new(locale.collection.as_str())
                    .query(query.to_vec())
                    .limit(limit as u64)
                    .with_payload(false)
                    .params(SearchParamsBuilder::default().exact(exact));
                if let Some(intent) = &filter.intent {
                    request = request.filter(QdrantFilter::must([Condition::matches(
                        FIELD_INTENT,
                        intent.clone(),
                    )]));
                }
                let response = client
                    .query(request)
                    .await
                    .map_err(QdrantError::request(format!("query {}", locale.collection)))?;
                let points: Vec<Hit> = response
                    .result
                    .iter()
                    .filter_map(|p| {
                        let id = match p.id.as_ref()?.point_id_options.as_ref()? {
                            qdrant_client::qdrant::point_id::PointIdOptions::Num(n) => *n,
                            qdrant_client::qdrant::point_id::PointIdOptions::Uuid(_) => {
                                return None
                            }
                        };
                        let Some(q) = question_of_point(id, &locale.rows) else {
                            tracing::warn!(
                                collection = %locale.collection,
                                point = id,
                                "Qdrant returned a point that is no row of the snapshot"
                            );
                            return None;
                        };
                        Some(Hit {
                            entry_index: q.entry_index as usize,
                            question_index: q.question_index as usize,
                            score: p.score * norm,
                        })
                    })
                    .collect();
                if ranking_is_final(&points, limit, total, k) {
                    return Ok::<Vec<Hit>, QdrantError>(points);
                }
                limit = limit.saturating_mul(2).min(total);
            }
        })??;
        Ok(rank_entries(points, k))
    }
}

impl VectorIndex for QdrantIndex {
    /// See [`VectorIndex::search`] and the module docs; a failed request is logged and gives
    /// no hit.
    fn search(&self, query: &[f32], filter: &Filter, k: usize) -> Vec<Hit> {
        if k == 0 {
            return Vec::new();
        }
        let Some(binding) = self.bound() else {
            return Vec::new();
        };
        match self.try_search(&binding, query, filter, k) {
            Ok(hits) => hits,
            Err(error) => {
                tracing::error!(
                    %error,
                    version = %binding.version,
                    locale = filter.locale.as_str(),
                    intent = filter.intent.as_deref().unwrap_or(""),
                    "Qdrant search failed; returning no hit"
                );
                Vec::new()
            }
        }
    }

    fn len(&self) -> usize {
        self.bound().map_or(0, |b| b.len)
    }
}

/// Creates (if needed) and fills the collections of `binding`.
async fn sync_collections(
    client: &Qdrant,
    snapshot: &Snapshot,
    binding: &Binding,
) -> Result<(), QdrantError> {
    for block in &snapshot.locales {
        let Some(locale) = binding.locales.get(&block.locale) else {
            continue;
        };
        let name = locale.collection.as_str();
        ensure_collection(client, name, locale.dim).await?;
        client
            .create_field_index(
                CreateFieldIndexCollectionBuilder::new(name, FIELD_INTENT, FieldType::Keyword)
                    .wait(true),
            )
            .await
            .map_err(QdrantError::request(format!("index `intent` of {name}")))?;
        let rows: Vec<(usize, (&QuestionRef, &[f32]))> = block
            .rows
            .iter()
            .zip(block.data.chunks_exact(locale.dim))
            .enumerate()
            .collect();
        for (n, batch) in rows.chunks(UPSERT_BATCH).enumerate() {
            let points: Vec<PointStruct> = batch
                .iter()
                .map(|&(i, (row, vector))| {
                    let intent = snapshot
                        .entries
                        .get(row.entry_index as usize)
                        .map_or("", |e| e.intent.as_str());
                    let payload = Payload::from([
                        (FIELD_ENTRY_INDEX, Value::from(i64::from(row.entry_index))),
                        (
                            FIELD_QUESTION_INDEX,
                            Value::from(i64::from(row.question_index)),
                        ),
                        (FIELD_INTENT, Value::from(intent)),
                        (FIELD_LOCALE, Value::from(block.locale.as_str())),
                    ]);
                    PointStruct::new(point_id(i), vector.to_vec(), payload)
                })
                .collect();
            client
                .upsert_points(UpsertPointsBuilder::new(name, points).wait(true))
                .await
                .map_err(QdrantError::request(format!(
                    "upsert batch {n} into {name}"
                )))?;
        }
    }
    Ok(())
}

/// Creates collection `name` for `dim`-wide cosine vectors unless it exists; an existing one
/// must match.
async fn ensure_collection(client: &Qdrant, name: &str, dim: usize) -> Result<(), QdrantError> {
    let exists = client
        .collection_exists(name)
        .await
        .map_err(QdrantError::request(format!("check collection {name}")))?;
    if !exists {
        let created = client
            .create_collection(
                CreateCollectionBuilder::new(name)
                    .vectors_config(VectorParamsBuilder::new(dim as u64, Distance::Cosine)),
            )
            .await;
        if let Err(e) = created {
            // Another process may have created it in the meantime.
            let exists_now = client.collection_exists(name).await.unwrap_or(false);
            if !exists_now {
                return Err(QdrantError::request(format!("create collection {name}"))(e));
            }
        } else {
            tracing::info!(collection = name, dim, "created Qdrant collection");
            return Ok(());
        }
    }
    let info = client
        .collection_info(name)
        .await
        .map_err(QdrantError::request(format!("read collection {name}")))?;
    let params = info
        .result
        .and_then(|i| i.config)
        .and_then(|c| c.params)
        .and_then(|p| p.vectors_config)
        .and_then(|v| v.config);
    let mismatch = |message: String| QdrantError::CollectionMismatch {
        collection: name.to_owned(),
        message,
    };
    match params {
        Some(vectors_config::Config::Params(p)) => {
            if p.size != dim as u64 {
                return Err(mismatch(format!("vector width {}, expected {dim}", p.size)));
            }
            if p.distance != Distance::Cosine as i32 {
                return Err(mismatch(format!(
                    "distance {:?}, expected cosine",
                    Distance::try_from(p.distance).ok()
                )));
            }
            Ok(())
        }
        _ => Err(mismatch("no single unnamed vector configuration".into())),
    }
}

/// The qdrant-client version this crate was built with (the major.minor it was written for).
fn qdrant_client_version() -> &'static str {
    "1.20"
}

/// Qdrant's compatibility rule: same major version, minor versions at most one apart.
/// Unparsable versions count as compatible (nothing to warn about reliably).
fn versions_compatible(client: &str, server: &str) -> bool {
    fn major_minor(v: &str) -> Option<(u64, u64)> {
        let mut parts = v.trim().trim_start_matches('v').split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }
    match (major_minor(client), major_minor(server)) {
        (Some((cm, cn)), Some((sm, sn))) => cm == sm && cn.abs_diff(sn) <= 1,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rule() {
        assert!(versions_compatible("1.20", "1.21.3"));
        assert!(versions_compatible("1.20", "v1.19.0"));
        assert!(!versions_compatible("1.20", "1.17.0"));
        assert!(!versions_compatible("1.20", "2.20.0"));
        assert!(versions_compatible("1.20", "dev"));
    }
}
