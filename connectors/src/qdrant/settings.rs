//! Where and how to reach Qdrant.

use std::time::Duration;

use super::error::QdrantError;
use super::names::{
    DEFAULT_COLLECTION_PREFIX, DEFAULT_TIMEOUT, ENV_API_KEY, ENV_COLLECTION_PREFIX, ENV_URL,
};
use super::naming::validate_prefix;

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
