//! Remote backends of the operators' traits: the Qdrant vector index and the gRPC model
//! server with its client.
//!
//! * [`qdrant`]: [`QdrantIndex`](qdrant::QdrantIndex), a
//!   [`VectorIndex`](switchboard_operators::retrieval::VectorIndex) and
//!   [`VectorStore`](switchboard_operators::retrieval::VectorStore) on a Qdrant server
//!   (configuration `vector_backend: qdrant`).
//! * [`model_server`]: `switchboard model serve` (intent classification and embeddings over
//!   gRPC, optionally with mutual TLS) and
//!   [`RemoteIntentBackend`](model_server::client::RemoteIntentBackend), an
//!   [`IntentBackend`](switchboard_operators::intent::backend::IntentBackend) that uses it.

#![deny(missing_docs)]

pub mod model_server;
pub mod qdrant;
