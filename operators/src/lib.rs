//! The conversation operators: session state, PII masking, intent recognition, retrieval and
//! answer rendering. Operators never talk to Kafka or ClickHouse; sources and sinks do.
