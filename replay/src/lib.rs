//! Recording Kafka traffic, backfilling historical offsets, and the deterministic test runner.
