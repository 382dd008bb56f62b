//! Names and limits: environment variables, defaults, payload fields, collection-name limits.

use std::time::Duration;

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
pub(crate) const UPSERT_BATCH: usize = 256;
/// Longest collection prefix accepted.
pub(crate) const MAX_PREFIX_LEN: usize = 64;
/// Longest snapshot version accepted in a collection name.
pub(crate) const MAX_VERSION_LEN: usize = 64;
