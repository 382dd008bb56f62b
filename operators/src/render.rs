//! Answer rendering (stub, being written).
