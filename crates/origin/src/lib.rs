//! The sealcast origin: configuration, HTTP routes and caches around the pure packaging
//! crates. `main.rs` is a thin CLI over this library so tests can run the server in-process.

pub mod access;
pub mod alloc;
pub mod access_log;
pub mod admin;
pub mod ams;
pub mod assets;
pub mod body;
pub mod catalog;
mod cbc_batch;
pub mod config;
pub mod error;
pub mod ingest;
pub mod inspect;
pub mod keys;
pub mod listen;
pub mod metrics;
pub mod protection;
pub mod route;
pub mod decide;
pub mod handlers;
pub mod h1;
pub mod respond;
pub mod server;
pub mod sidecar;
pub mod tls;
