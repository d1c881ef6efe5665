//! What the engine takes from the settings ([`Options`]).

use std::sync::Arc;
use std::time::Duration;

use ferrocorn_core::ProtoConfig;

use crate::settings::ServerConfig;
use crate::transport::TlsAcceptor;

/// The largest body spooled to a file before the handler is called (8 MiB).
pub const SPOOL_LIMIT: u64 = 8 * 1024 * 1024;

/// What the engine takes from the settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// `threads`: the serving threads.
    pub threads: usize,
    /// `worker_connections`: open connections at most.
    pub worker_connections: usize,
    /// `keepalive`: how long an idle connection is kept (0: no keep-alive).
    pub keepalive: Duration,
    /// Bodies up to this size are read whole into memory before the handler is called.
    pub buffer_body: usize,
    /// `Content-Length` bodies larger than `buffer_body` and up to this size (without
    /// `Expect: 100-continue`) are spooled to a file before the handler is called; larger
    /// ones stream. [`SPOOL_LIMIT`] when `tmp_upload_dir` is set, else 0 (every body over
    /// `buffer_body` streams).
    pub spool_limit: u64,
    /// `tmp_upload_dir`: where bodies are spooled (`None`: the system's temporary
    /// directory).
    pub spool_dir: Option<std::path::PathBuf>,
    /// The `Server` header value.
    pub server: Vec<u8>,
    /// The parser's limits and policies.
    pub proto: Arc<ProtoConfig>,
    /// TLS (`certfile`, `keyfile`): every accepted socket is wrapped.
    pub tls: Option<TlsAcceptor>,
}

impl Options {
    /// The options of `config`.
    pub fn from_config(config: &ServerConfig) -> Options {
        let w = &config.worker;
        Options {
            threads: w.threads,
            worker_connections: w.worker_connections,
            keepalive: w.keepalive,
            buffer_body: 64 * 1024,
            // Spooling is asked for by setting `tmp_upload_dir`: without it the
            // application is called when the head is in, as in gunicorn.
            spool_limit: if w.tmp_upload_dir.is_some() { SPOOL_LIMIT } else { 0 },
            spool_dir: w.tmp_upload_dir.clone(),
            server: b"ferrocorn".to_vec(),
            proto: Arc::clone(&config.proto),
            tls: None,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: 1,
            worker_connections: 1000,
            keepalive: Duration::from_secs(2),
            buffer_body: 64 * 1024,
            spool_limit: 0,
            spool_dir: None,
            server: b"ferrocorn".to_vec(),
            proto: Arc::new(ProtoConfig::default()),
            tls: None,
        }
    }
}
