//! Benchmarks live in `package.rs` (criterion) and `load.sh` (the server under wrk).
