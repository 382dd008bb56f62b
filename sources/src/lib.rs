//! Where events enter the topology: the Kafka source (each timely worker owns a disjoint set of
//! partitions; records carry partition, offset and timestamp) and the recorded-traffic source.
