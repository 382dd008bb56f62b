//! Knowledge retrieval (stub, being written).
