//! Benchmark inputs shared by the benches.
