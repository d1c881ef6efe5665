//! The end-to-end tests: the installed `ferrocorn` command (from `.venv`, built by
//! scripts/install-ferrocorn.sh) and the `ferrocorn-test-server` master serving real
//! applications (`tests/apps`) to real clients, most of them beside gunicorn 27.0.1 as the
//! oracle. One binary with a module per area; nextest runs each test in its own process.
//! The shared helpers (starting a master, the HTTP client, scratch directories, the venv)
//! are in [`support`].

mod support;

mod arbiter;
mod arbiter_ops;
mod arbiter_oracle;
mod cfg_hooks;
mod cfg_object;
mod conformance_wire;
mod early_hints_debug;
mod fresh_venv;
mod gthread_engine;
mod gthread_stream;
mod gthread_wsgi;
mod listen;
mod logging;
mod nginx_gthread;
mod ops_keepalive;
mod pressure_gthread;
mod pressure_sync;
mod protocol;
mod pylogging;
mod python_ops;
mod python_package;
mod quick_stop;
mod reload;
mod rsyslog;
mod setting_probes;
mod statsd_daemon;
mod stdio_inheritance;
mod syslog;
mod tls;
mod tls_context;
mod tls_ops;
mod wsgi;
