//! ferrocorn: a drop-in replacement for gunicorn, written in Rust.
//!
//! This crate is the shell around the sans-IO core: the settings layer ([`settings`]),
//! the command-line entry point ([`run`]), the arbiter and the workers, and, with the
//! `python` feature, the Python bridge (`python`: the `ferrocorn._ferrocorn` extension
//! module, config files in CPython, application loading).

#![warn(missing_docs)]

pub mod arbiter;
pub mod heartbeat;
pub mod lifecycle;
pub mod listen;
pub mod log;
pub mod process;
#[cfg(feature = "python")]
pub mod python;
pub mod reload;
pub mod run;
pub mod settings;
pub mod tls;
pub mod tls_context;
pub mod tls_failure;
pub mod tls_peer;
pub mod transport;
pub mod worker;
