//! ferrocorn: a drop-in replacement for gunicorn, written in Rust.
//!
//! This crate is the shell around the sans-IO core: today the settings layer
//! ([`settings`]) and the command-line entry point ([`run`]); later the arbiter, the
//! workers and the Python bridge.

#![warn(missing_docs)]

pub mod arbiter;
pub mod heartbeat;
pub mod listen;
pub mod log;
pub mod run;
pub mod settings;
pub mod worker;
