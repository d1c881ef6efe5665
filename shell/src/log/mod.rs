//! The error log, in gunicorn's format:
//!
//! ```text
//! [2026-11-23 23:43:19 +0000] [17564] [INFO] Starting ferrocorn 0.1.0
//! ```
//!
//! `%(asctime)s [%(process)d] [%(levelname)s] %(message)s` with datefmt
//! `[%Y-%m-%d %H:%M:%S %z]` in local time ([`time`]). `errorlog` is `-` (stderr) or a file
//! opened for appending. Every line is written with one `write(2)`, so the master and the
//! workers, which share the file description after fork, never interleave inside a line.
//!
//! This is the logger for ferrocorn's own lines (master and Rust workers). Users who
//! configure Python `logging` (`logconfig*`, `logger_class`) get a [`Forward`] from the
//! Python bridge (`python/pylog.rs`): set once with [`set_forward`] before the loggers are
//! made, it takes every error-log call (and, through [`access::AccessLog`], every access
//! record) instead of the Rust writer. Without it nothing changes: one branch on a `None`.

pub mod access;
pub mod statsd;
pub mod syslog;
pub mod time;

use std::any::Any;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, RwLock};

/// Where the error log goes instead of the Rust writer when the user configured Python
/// logging (`logconfig`, `logconfig_dict`, `logconfig_json`, `logger_class`): gunicorn's
/// `Logger` object, in Python.
pub trait Forward: Send + Sync + fmt::Debug {
    /// (Re)applies the logging configuration of `settings` (gunicorn's `Logger.setup`,
    /// run again on a reload); nothing when the settings are those it was set up with.
    fn setup(&self, settings: &crate::settings::Settings) -> Result<(), String>;
    /// One record at `level`.
    fn log(&self, level: Level, msg: &str);
    /// An exception record (`log.exception`): `msg` ends with the traceback's text.
    fn exception(&self, msg: &str);
    /// USR1: gunicorn's `reopen_files`.
    fn reopen(&self);
    /// The lowest level worth passing on.
    fn level(&self) -> Level;
    /// Whether the class is the user's own (then gunicorn sends no StatsD metrics of its
    /// own for it).
    fn custom(&self) -> bool;
    /// For the access log's side, which knows the concrete type.
    fn as_any(&self) -> &dyn Any;
}

static FORWARD: RwLock<Option<Arc<dyn Forward>>> = RwLock::new(None);

/// Makes `f` the destination of the loggers made from now on in this process (and its
/// forked workers).
pub fn set_forward(f: Option<Arc<dyn Forward>>) {
    *FORWARD.write().unwrap_or_else(std::sync::PoisonError::into_inner) = f;
}

/// The destination set by [`set_forward`], if any.
pub fn forward() -> Option<Arc<dyn Forward>> {
    FORWARD.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

pub use crate::settings::config::Level;

#[derive(Debug)]
enum Sink {
    Stderr,
    /// Behind a lock so USR1 can swap the file for every clone at once.
    File(std::sync::RwLock<File>),
}

/// The error logger. Cheap to clone; clones share the sink.
#[derive(Clone, Debug)]
pub struct Logger {
    level: Level,
    sink: Arc<Sink>,
    path: Option<Arc<str>>,
    /// `statsd_host`: error-log calls are counted there, and request metrics sent.
    statsd: Option<Arc<statsd::Statsd>>,
    /// `syslog`: every line written is also sent there.
    syslog: Option<Arc<syslog::Syslog>>,
    /// `capture_output`: stdout and stderr are the log file (see `capture_output`).
    capture: bool,
    /// Python logging configured: every call goes there (see [`Forward`]).
    forward: Option<Arc<dyn Forward>>,
}

impl Logger {
    /// A logger writing to stderr at `level`.
    pub fn stderr(level: Level) -> Logger {
        Logger {
            level,
            sink: Arc::new(Sink::Stderr),
            path: None,
            statsd: None,
            syslog: None,
            capture: false,
            forward: None,
        }
    }

    /// A logger for gunicorn's `errorlog` (`-` is stderr, anything else a file path) and
    /// `loglevel`. A file that cannot be opened for appending gives gunicorn's error text.
    pub fn open(errorlog: &str, loglevel: &str) -> Result<Logger, String> {
        Logger::open_level(errorlog, Level::from_setting(loglevel))
    }

    /// [`Logger::open`] with the level already known.
    pub fn open_level(errorlog: &str, level: Level) -> Result<Logger, String> {
        if errorlog == "-" {
            return Ok(Logger::stderr(level));
        }
        Ok(Logger {
            level,
            sink: Arc::new(Sink::File(std::sync::RwLock::new(Logger::open_file(errorlog)?))),
            path: Some(errorlog.into()),
            statsd: None,
            syslog: None,
            capture: false,
            forward: None,
        })
    }

    /// The logger the configuration describes: `errorlog`, `loglevel`, StatsD metrics to
    /// `statsd_host` (with `statsd_prefix` and `dogstatsd_tags`) and `syslog`; with a
    /// Python logging configuration ([`forward`]), the records go to it, set up from
    /// `settings` (gunicorn's `Logger.setup` reads them by name).
    pub fn for_config(
        config: &crate::settings::config::LogConfig,
        settings: &crate::settings::Settings,
    ) -> Result<Logger, String> {
        let log = Logger::open_level(&config.errorlog, config.level)?;
        let mut log = log.with_statsd(match &config.statsd {
            Some(c) => Some(statsd::Statsd::new(c)?),
            None => None,
        });
        log.syslog = match &config.syslog {
            Some(c) => Some(Arc::new(syslog::Syslog::new(c)?)),
            None => None,
        };
        log.capture = config.capture_output && log.path.is_some();
        if let Some(f) = forward() {
            // Python's `Logger.setup` does the syslog handlers and the output capture;
            // a class of the user's own gets no StatsD metrics, as under gunicorn.
            f.setup(settings)?;
            log.syslog = None;
            log.capture = false;
            if f.custom() {
                log.statsd = None;
            }
            log.forward = Some(f);
        }
        log.capture_output()?;
        Ok(log)
    }

    /// `capture_output` (with `errorlog` a file, as in gunicorn): this process's stdout
    /// and stderr are the error log file from now on, so what the application prints
    /// lands there; the workers inherit them. Done again on USR1, after the file moved.
    fn capture_output(&self) -> Result<(), String> {
        let (true, Some(path)) = (self.capture, &self.path) else { return Ok(()) };
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        let f = Logger::open_file(path)?;
        nix::unistd::dup2_stdout(&f)
            .and_then(|()| nix::unistd::dup2_stderr(&f))
            .map_err(|e| format!("Error: cannot capture the output into '{path}': {e}"))
    }

    fn open_file(errorlog: &str) -> Result<File, String> {
        OpenOptions::new().create(true).append(true).open(errorlog).map_err(|e| {
            format!("Error: '{errorlog}' isn't writable [{}]", crate::log::py_os_error(&e))
        })
    }

    /// The log file's path (`None` for stderr).
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Reopens the log file (USR1, after logrotate moved it), for this logger and every
    /// clone of it in this process. Stderr needs nothing.
    pub fn reopen(&self) -> Result<(), String> {
        if let (Some(p), Sink::File(f)) = (&self.path, &*self.sink) {
            let new = Logger::open_file(p)?;
            *f.write().unwrap_or_else(std::sync::PoisonError::into_inner) = new;
        }
        if let Some(f) = &self.forward {
            f.reopen();
        }
        self.capture_output()
    }

    /// The level below which lines are dropped.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Whether a line at `level` would be written.
    pub fn enabled(&self, level: Level) -> bool {
        match &self.forward {
            None => level >= self.level,
            Some(f) => level >= f.level(),
        }
    }

    /// This logger, sending StatsD metrics to `statsd` (gunicorn's `Statsd` logger).
    pub fn with_statsd(mut self, statsd: Option<statsd::Statsd>) -> Logger {
        self.statsd = statsd.map(Arc::new);
        self
    }

    /// The StatsD client, when `statsd_host` is set.
    pub fn statsd(&self) -> Option<&statsd::Statsd> {
        self.statsd.as_deref()
    }

    /// Writes one line at `level` (counted in StatsD at warning and above, as gunicorn's
    /// `Statsd` logger counts its calls).
    pub fn log(&self, level: Level, msg: impl fmt::Display) {
        if let Some(s) = &self.statsd {
            match level {
                Level::Warning => s.log_call(ferrocorn_core::statsd::LogLevel::Warning),
                Level::Error => s.log_call(ferrocorn_core::statsd::LogLevel::Error),
                Level::Critical => s.log_call(ferrocorn_core::statsd::LogLevel::Critical),
                Level::Debug | Level::Info => {}
            }
        }
        self.write(level, msg);
    }

    /// An `ERROR` line for an exception, with its traceback in `msg` (gunicorn's
    /// `log.exception`: counted as `gunicorn.log.exception`, not as an error).
    pub fn exception(&self, msg: impl fmt::Display) {
        if let Some(s) = &self.statsd {
            s.log_call(ferrocorn_core::statsd::LogLevel::Exception);
        }
        if let Some(f) = &self.forward {
            if self.enabled(Level::Error) {
                f.exception(&msg.to_string());
            }
            return;
        }
        self.write(Level::Error, msg);
    }

    fn write(&self, level: Level, msg: impl fmt::Display) {
        if !self.enabled(level) {
            return;
        }
        let msg = msg.to_string();
        if let Some(f) = &self.forward {
            f.log(level, &msg);
            return;
        }
        let pid = std::process::id();
        let line = format!("{} [{pid}] [{}] {msg}\n", time::now_stamp(), level.name());
        // A failing log write (closed stderr, full disk) must never stop the server.
        let _ = match &*self.sink {
            Sink::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
            Sink::File(f) => (&*f.read().unwrap_or_else(std::sync::PoisonError::into_inner))
                .write_all(line.as_bytes()),
        };
        if let Some(syslog) = &self.syslog {
            syslog.send("error", level, pid, &msg);
        }
    }

    /// The syslog destination, when `syslog` is set.
    pub fn syslog(&self) -> Option<&Arc<syslog::Syslog>> {
        self.syslog.as_ref()
    }

    /// A `DEBUG` line.
    pub fn debug(&self, msg: impl fmt::Display) {
        self.log(Level::Debug, msg);
    }

    /// An `INFO` line.
    pub fn info(&self, msg: impl fmt::Display) {
        self.log(Level::Info, msg);
    }

    /// A `WARNING` line.
    pub fn warning(&self, msg: impl fmt::Display) {
        self.log(Level::Warning, msg);
    }

    /// An `ERROR` line.
    pub fn error(&self, msg: impl fmt::Display) {
        self.log(Level::Error, msg);
    }

    /// A `CRITICAL` line.
    pub fn critical(&self, msg: impl fmt::Display) {
        self.log(Level::Critical, msg);
    }
}

/// An OS error as Python's `str(OSError)` shows it: `[Errno 98] Address already in use`.
pub fn py_os_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("[Errno {n}] {}", nix::errno::Errno::from_raw(n).desc()),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(Level::from_setting("DEBUG"), Level::Debug);
        assert_eq!(Level::from_setting("bogus"), Level::Info);
        assert!(Logger::stderr(Level::Warning).enabled(Level::Error));
        assert!(!Logger::stderr(Level::Warning).enabled(Level::Info));
    }

    #[test]
    fn os_error_text() {
        let e = std::io::Error::from_raw_os_error(98);
        assert_eq!(py_os_error(&e), "[Errno 98] Address already in use");
    }

    #[test]
    fn file_lines() {
        let dir = std::env::temp_dir().join(format!("ferrocorn-log-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("error.log");
        let log = Logger::open(path.to_str().unwrap(), "info").unwrap();
        log.info("Starting ferrocorn 0.1.0");
        log.debug("hidden");
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let line = text.lines().next().unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(
            line.ends_with(&format!("] [{}] [INFO] Starting ferrocorn 0.1.0", std::process::id()))
        );
        assert_eq!(&line[..1], "[");
        assert_eq!(&line[26..28], "] ", "{line}");
        assert!(Logger::open("/nonexistent-dir/x.log", "info").unwrap_err().starts_with(
            "Error: '/nonexistent-dir/x.log' isn't writable [[Errno 2] No such file or directory]"
        ));
    }
}
