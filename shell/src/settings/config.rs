//! The typed server configuration: what the master, the workers and the loggers read,
//! built once from the resolved [`Settings`] (at start, and again when a HUP reload
//! resolves them again), as ripgrep turns its parsed arguments into `HiArgs`.
//!
//! ```text
//!   Settings (by name, value + origin)  ──  ServerConfig::new  ──►  ServerConfig (fields)
//!        │                                   (refuses what ferrocorn cannot serve)
//!        └─► by name only where that is the point: the Python `cfg` object and the
//!            hooks it holds, --print-config, the `Current configuration:` dump, the docs
//! ```
//!
//! Every field is converted from the value its setting's validator produces, so no value
//! that passed validation is unknown here: a choice is an enum, matched against exactly
//! the spellings the validator leaves (a value outside them is an error naming the
//! setting, never a silent default, and the test over the settings table shows it cannot
//! be reached). [`ServerConfig::new`] refuses only what ferrocorn cannot serve at all
//! (an unsupported setting or worker class, as [`Settings::check_servable`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferrocorn_core::ProtoConfig;

use super::resolve::{Settings, WorkerKind};
use super::value::Value;

/// A log level, as Python's `logging` names them (the `loglevel` setting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `DEBUG`
    Debug,
    /// `INFO`
    Info,
    /// `WARNING`
    Warning,
    /// `ERROR`
    Error,
    /// `CRITICAL`
    Critical,
}

impl Level {
    /// The level name written in the log line.
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    /// gunicorn's `loglevel` setting: `debug`, `info`, `warning`, `error`, `critical`
    /// (any case); unknown names mean `info`, as in gunicorn.
    pub fn from_setting(s: &str) -> Level {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Level::Debug,
            "warning" => Level::Warning,
            "error" => Level::Error,
            "critical" => Level::Critical,
            _ => Level::Info,
        }
    }
}

/// `reload_engine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadEngine {
    /// `auto`: inotify (always available on Linux).
    Auto,
    /// `poll`: modification times compared each second.
    Poll,
    /// `inotify`.
    Inotify,
}

/// Where `statsd_host` sends metrics, as its validator leaves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsdHost {
    /// `unix://PATH` (or `unix:PATH`): a unix datagram socket.
    Unix(String),
    /// `host[:port]` (port 8125 by default): UDP. The port is as given, not yet checked
    /// to fit 16 bits (gunicorn finds that out when it connects, and so does ferrocorn).
    Udp {
        /// The host, lower-cased.
        host: String,
        /// The port.
        port: i64,
    },
    /// `fd://N`: an inherited descriptor (which ferrocorn refuses when the logger starts).
    Fd(i64),
}

/// The worker processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Which worker serves (`worker_class`, with `threads` > 1 turning `sync` into
    /// `gthread`).
    pub kind: WorkerKind,
    /// The worker class as the `Using worker:` line names it ([`Settings::worker_class`]).
    pub class_name: String,
    /// `workers`, at least 1.
    pub workers: usize,
    /// `threads`, at least 1.
    pub threads: usize,
    /// `worker_connections`, at least 1.
    pub worker_connections: usize,
    /// `timeout` (zero: disabled).
    pub timeout: Duration,
    /// `graceful_timeout`.
    pub graceful_timeout: Duration,
    /// `keepalive`.
    pub keepalive: Duration,
    /// `max_requests` (0: no limit).
    pub max_requests: u64,
    /// `max_requests_jitter`.
    pub max_requests_jitter: u64,
    /// `tmp_upload_dir`: where the gthread engine spools request bodies (`None`: no
    /// spooling).
    pub tmp_upload_dir: Option<PathBuf>,
}

/// The listening sockets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenConfig {
    /// `bind`, each address as given (parsed by the listener code, whose errors are
    /// gunicorn's).
    pub bind: Vec<String>,
    /// `backlog` (a value beyond `int` is `i32::MAX`).
    pub backlog: i32,
    /// `reuse_port`.
    pub reuse_port: bool,
    /// `umask` (for unix socket files).
    pub umask: u32,
    /// Whether TLS is on (`certfile` or `keyfile` set).
    pub is_ssl: bool,
    /// The TLS files and choices, when TLS is on (the files are read when the listeners'
    /// acceptor is built, after `chdir`: see `crate::tls::acceptor`).
    pub tls: Option<TlsConfig>,
}

/// gunicorn's TLS settings, as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// `certfile`.
    pub certfile: Option<String>,
    /// `keyfile`.
    pub keyfile: Option<String>,
    /// `ca_certs`.
    pub ca_certs: Option<String>,
    /// `cert_reqs`: 0 none, 1 optional, 2 required (`ssl.CERT_*`).
    pub cert_reqs: i64,
    /// `ciphers`: an OpenSSL cipher string.
    pub ciphers: Option<String>,
    /// `suppress_ragged_eofs`.
    pub suppress_ragged_eofs: bool,
    /// Whether `ssl_context` is set (the hook's context then decides, through `context`).
    pub hook: bool,
    /// What the `ssl_context` hook's context asks for, once the Python bridge ran it
    /// (in the master, at start and on HUP).
    pub context: Option<super::tls_plan::TlsContextPlan>,
}

/// The master process and the workers' identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessConfig {
    /// `daemon`.
    pub daemon: bool,
    /// `enable_stdio_inheritance`.
    pub enable_stdio_inheritance: bool,
    /// `pidfile`.
    pub pidfile: Option<String>,
    /// `user` as a uid (`None` when the id does not fit one: the workers keep ours).
    pub uid: Option<u32>,
    /// `group` as a gid (`None` when the id does not fit one).
    pub gid: Option<u32>,
    /// `initgroups`.
    pub initgroups: bool,
    /// The process name: `proc_name`, else `default_proc_name`.
    pub proc_name: String,
}

/// `syslog` and its address, facility and prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogConfig {
    /// `syslog_addr` (`udp://localhost:514` when unset).
    pub addr: String,
    /// `syslog_facility` by name (`user` when unset; an unknown name is refused when the
    /// logger starts, as gunicorn's handler set-up fails).
    pub facility: String,
    /// `syslog_prefix`, else the process name with `:` as `.`.
    pub prefix: String,
}

/// StatsD metrics (`statsd_host` set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsdConfig {
    /// `statsd_host`.
    pub host: StatsdHost,
    /// `statsd_prefix`.
    pub prefix: String,
    /// `dogstatsd_tags`.
    pub tags: String,
}

/// The error log, the access log and where they also go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `errorlog`: `-` is stderr, anything else a file.
    pub errorlog: String,
    /// `loglevel`.
    pub level: Level,
    /// `capture_output`.
    pub capture_output: bool,
    /// `accesslog` (`None`: no access log, unless syslog takes it).
    pub accesslog: Option<String>,
    /// `access_log_format`.
    pub access_log_format: String,
    /// `disable_redirect_access_to_syslog`.
    pub disable_redirect_access_to_syslog: bool,
    /// `syslog` (`None` when off).
    pub syslog: Option<SyslogConfig>,
    /// `statsd_host` (`None` when unset).
    pub statsd: Option<StatsdConfig>,
}

/// `reload`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadConfig {
    /// `reload`.
    pub enabled: bool,
    /// `reload_engine`.
    pub engine: ReloadEngine,
    /// `reload_extra_files` (paths and globs).
    pub extra_files: Vec<String>,
}

/// How the application is found and run in Python.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppConfig {
    /// `chdir`.
    pub chdir: Option<String>,
    /// `pythonpath`, split at commas (empty when unset or empty).
    pub pythonpath: Vec<String>,
    /// Whether `paste` is set (the application is a PasteDeploy one).
    pub paste: bool,
    /// `preload_app`.
    pub preload_app: bool,
    /// `spew`.
    pub spew: bool,
}

impl AppConfig {
    /// The application part of `settings`, which `--check-config` needs before the
    /// settings are known to be servable.
    pub fn new(settings: &Settings) -> AppConfig {
        AppConfig {
            chdir: settings.str("chdir").map(str::to_owned),
            pythonpath: settings
                .str("pythonpath")
                .filter(|p| !p.is_empty())
                .map(|p| p.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            paste: *settings.get("paste") != Value::None,
            preload_app: settings.bool("preload_app"),
            spew: settings.bool("spew"),
        }
    }
}

/// What the command does with the settings: print them, check them, or serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunMode {
    /// `--print-config`.
    pub print_config: bool,
    /// `--check-config`.
    pub check_config: bool,
}

impl RunMode {
    /// The mode `settings` ask for.
    pub fn new(settings: &Settings) -> RunMode {
        RunMode {
            print_config: settings.bool("print_config"),
            check_config: settings.bool("check_config"),
        }
    }
}

/// The typed configuration of a server, built once from its resolved [`Settings`].
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The worker processes.
    pub worker: WorkerConfig,
    /// The listening sockets.
    pub listen: ListenConfig,
    /// The master process and the workers' identity.
    pub process: ProcessConfig,
    /// Logging.
    pub log: LogConfig,
    /// `reload`.
    pub reload: ReloadConfig,
    /// The application.
    pub app: AppConfig,
    /// The parser policy ([`super::proto::proto_config`]).
    pub proto: Arc<ProtoConfig>,
}

impl ServerConfig {
    /// The configuration of `settings`, or why ferrocorn cannot serve them (the one line
    /// after `Error: `): settings it does not support set to something other than their
    /// default, or a worker class it does not have.
    pub fn new(settings: &Settings) -> Result<ServerConfig, String> {
        let kind = settings.check_servable()?;
        let secs = |name: &str| Duration::from_secs(non_negative(settings, name));
        let at_least_one = |name: &str| usize::try_from(settings.int(name)).unwrap_or(1).max(1);
        let worker = WorkerConfig {
            kind,
            class_name: settings.worker_class(),
            workers: at_least_one("workers"),
            threads: at_least_one("threads"),
            worker_connections: at_least_one("worker_connections"),
            timeout: secs("timeout"),
            graceful_timeout: secs("graceful_timeout"),
            keepalive: secs("keepalive"),
            max_requests: non_negative(settings, "max_requests"),
            max_requests_jitter: non_negative(settings, "max_requests_jitter"),
            tmp_upload_dir: settings.str("tmp_upload_dir").map(PathBuf::from),
        };
        let listen = ListenConfig {
            bind: settings.list("bind").into_iter().map(str::to_owned).collect(),
            backlog: i32::try_from(settings.int("backlog")).unwrap_or(i32::MAX),
            reuse_port: settings.bool("reuse_port"),
            umask: u32::try_from(settings.int("umask")).unwrap_or(0),
            is_ssl: settings.is_ssl(),
            tls: settings.is_ssl().then(|| TlsConfig {
                certfile: settings.str("certfile").map(str::to_owned),
                keyfile: settings.str("keyfile").map(str::to_owned),
                ca_certs: settings.str("ca_certs").map(str::to_owned),
                cert_reqs: settings.int("cert_reqs"),
                ciphers: settings.str("ciphers").map(str::to_owned),
                suppress_ragged_eofs: settings.bool("suppress_ragged_eofs"),
                hook: !matches!(settings.origin("ssl_context"), super::resolve::Origin::Default),
                context: None,
            }),
        };
        let process = ProcessConfig {
            daemon: settings.bool("daemon"),
            enable_stdio_inheritance: settings.bool("enable_stdio_inheritance"),
            pidfile: settings.str("pidfile").map(str::to_owned),
            uid: u32::try_from(settings.int("user")).ok(),
            gid: u32::try_from(settings.int("group")).ok(),
            initgroups: settings.bool("initgroups"),
            proc_name: settings.proc_name(),
        };
        let log = LogConfig {
            errorlog: settings.str("errorlog").unwrap_or("-").to_owned(),
            level: Level::from_setting(settings.str("loglevel").unwrap_or("info")),
            capture_output: settings.bool("capture_output"),
            accesslog: settings.str("accesslog").map(str::to_owned),
            access_log_format: settings
                .str("access_log_format")
                .unwrap_or(ferrocorn_core::access_log::DEFAULT_FORMAT)
                .to_owned(),
            disable_redirect_access_to_syslog: settings.bool("disable_redirect_access_to_syslog"),
            syslog: settings.bool("syslog").then(|| SyslogConfig {
                addr: settings.str("syslog_addr").unwrap_or("udp://localhost:514").to_owned(),
                facility: settings.str("syslog_facility").unwrap_or("user").to_owned(),
                prefix: match settings.str("syslog_prefix") {
                    Some(p) if !p.is_empty() => p.to_owned(),
                    _ => settings.proc_name().replace(':', "."),
                },
            }),
            statsd: statsd_host(settings.get("statsd_host"))?.map(|host| StatsdConfig {
                host,
                prefix: settings.str("statsd_prefix").unwrap_or("").to_owned(),
                tags: settings.str("dogstatsd_tags").unwrap_or("").to_owned(),
            }),
        };
        let reload = ReloadConfig {
            enabled: settings.bool("reload"),
            engine: reload_engine(settings.get("reload_engine"))?,
            extra_files: settings
                .list("reload_extra_files")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        };
        Ok(ServerConfig {
            worker,
            listen,
            process,
            log,
            reload,
            app: AppConfig::new(settings),
            proto: Arc::new(super::proto::proto_config(settings)?),
        })
    }
}

/// An int setting the validator keeps non-negative (`validate_pos_int`), as a `u64`.
fn non_negative(settings: &Settings, name: &str) -> u64 {
    u64::try_from(settings.int(name)).unwrap_or(0)
}

/// `reload_engine` as its validator leaves it: `auto`, `poll` or `inotify`.
pub fn reload_engine(v: &Value) -> Result<ReloadEngine, String> {
    match v.as_str() {
        Some("auto") => Ok(ReloadEngine::Auto),
        Some("poll") => Ok(ReloadEngine::Poll),
        Some("inotify") => Ok(ReloadEngine::Inotify),
        _ => Err(format!("reload_engine: unknown value {} (auto, poll or inotify)", v.py_repr())),
    }
}

/// `statsd_host` as its validator leaves it: `None`, a unix socket path, `(host, port)`
/// or an fd number.
pub fn statsd_host(v: &Value) -> Result<Option<StatsdHost>, String> {
    match v {
        Value::None => Ok(None),
        Value::Str(path) => Ok(Some(StatsdHost::Unix(path.clone()))),
        Value::Tuple(parts) => match parts.as_slice() {
            [Value::Str(host), Value::Int(port)] => {
                Ok(Some(StatsdHost::Udp { host: host.clone(), port: *port }))
            }
            _ => Err(format!("statsd_host: unknown value {}", v.py_repr())),
        },
        Value::Int(fd) => Ok(Some(StatsdHost::Fd(*fd))),
        other => Err(format!("statsd_host: unknown value {}", other.py_repr())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Env, Layer, Origin, PyObj, SETTINGS, Setting, Support, Validator};

    fn env() -> Env {
        Env { cwd: PathBuf::from("/"), ..Env::default() }
    }

    /// The defaults with `name = value` from a config file (validated), or the validator's
    /// refusal.
    fn with(name: &str, value: Value) -> Result<Settings, String> {
        let env = env();
        let mut s = Settings::defaults(&env).map_err(|e| e.to_string())?;
        let layer = Layer {
            origin: Origin::ConfigFile("c.py".to_owned()),
            values: vec![(name.to_owned(), value)],
        };
        s.apply(&layer, &env, None).map_err(|e| e.to_string())?;
        Ok(s)
    }

    fn strs(v: &[&str]) -> Vec<Value> {
        v.iter().map(|s| Value::str(*s)).collect()
    }

    /// Values to try for a setting: valid ones of every shape its validator takes (the
    /// validator decides; a refused sample is skipped), with every spelling of a choice.
    fn samples(s: &Setting) -> Vec<Value> {
        let function = |arity| Value::Object(Box::new(PyObj::function("hook", arity)));
        let mut v = vec![Value::None];
        v.extend(match s.validator {
            Validator::String => {
                strs(&["x", "  padded  ", "-", "debug", "INFO", "warning", "Error", "critical"])
            }
            Validator::Bool => {
                vec![Value::Bool(true), Value::Bool(false), Value::str("True"), Value::str("false")]
            }
            Validator::PosInt
            | Validator::Http2WindowSize
            | Validator::Http2StreamLimit
            | Validator::Http2FrameSize => vec![
                Value::Int(0),
                Value::Int(1),
                Value::Int(7),
                Value::Int(16_384),
                Value::Int(i64::from(i32::MAX) + 1),
                Value::Int(i64::MAX),
                Value::Bool(true),
                Value::str("0x10"),
            ],
            Validator::Dict => vec![
                Value::Dict(Vec::new()),
                Value::Dict(vec![(Value::str("X-Scheme"), Value::str("https"))]),
            ],
            Validator::ListString => vec![
                Value::List(Vec::new()),
                Value::str("127.0.0.1:0"),
                Value::List(strs(&["127.0.0.1:0", "unix:/tmp/x.sock"])),
            ],
            Validator::ListOfFilesOrPatterns => {
                vec![Value::List(Vec::new()), Value::List(strs(&["/", "*.nomatch"]))]
            }
            Validator::StringToList => strs(&["", "X_A, X_B,,X_C", "*"]),
            Validator::StringToAddrList => strs(&["", "*", "10.0.0.0/8, ::1", "127.0.0.1"]),
            Validator::Class => strs(&[
                "sync",
                "gthread",
                "#gthread",
                "egg:gunicorn#gthread",
                "gunicorn.workers.sync.SyncWorker",
                "gunicorn.workers.gthread.ThreadWorker",
                "simple",
                "gevent",
                "mypkg.MyWorker",
            ]),
            Validator::Callable(arity) => vec![function(arity)],
            Validator::PostRequest => vec![function(2), function(3), function(4)],
            Validator::User | Validator::Group => vec![
                Value::Int(0),
                Value::Int(1000),
                Value::Int(-1),
                Value::Int(i64::MAX),
                Value::str("0"),
                Value::Bool(true),
            ],
            Validator::Chdir => strs(&["/", "/tmp"]),
            Validator::StatsdAddress => strs(&[
                "localhost:9125",
                "localhost",
                "[::1]:8125",
                "tcp://stats:70000",
                "unix:///tmp/statsd.sock",
                "unix:9999",
                "fd://3",
                "",
            ]),
            Validator::ReloadEngine => strs(&["auto", "poll", "inotify"]),
            Validator::ProxyProtocol => {
                let mut v = strs(&["off", "v1", "V2", "auto", "true", "false", "1", "0", "none"]);
                v.extend([Value::Bool(true), Value::Bool(false)]);
                v
            }
            Validator::HeaderMap => strs(&["drop", "Refuse", " DANGEROUS "]),
            Validator::HttpProtocols => strs(&["h1", "h2", "h1,h2"]),
            Validator::Http2Cleartext => {
                let mut v = strs(&["off", "prior-knowledge", "upgrade", "both"]);
                v.push(Value::Bool(true));
                v
            }
            Validator::SslVersion => vec![Value::Int(2), Value::str("TLSv1_2")],
            Validator::AsgiLoop => strs(&["auto", "asyncio", "uvloop"]),
            Validator::AsgiLifespan => strs(&["auto", "on", "off"]),
            Validator::HttpParser => strs(&["auto", "fast", "python"]),
        });
        v
    }

    #[test]
    fn the_defaults_build_a_config() {
        let s = Settings::defaults(&env()).unwrap();
        let c = ServerConfig::new(&s).unwrap();
        assert_eq!(c.worker.kind, WorkerKind::Sync);
        assert_eq!(c.worker.class_name, "sync");
        assert_eq!((c.worker.workers, c.worker.threads, c.worker.worker_connections), (1, 1, 1000));
        assert_eq!(c.worker.timeout, Duration::from_secs(30));
        assert_eq!(c.worker.keepalive, Duration::from_secs(2));
        assert_eq!(c.listen.bind, vec!["127.0.0.1:8000".to_owned()]);
        assert_eq!(c.listen.backlog, 2048);
        assert_eq!(c.log.errorlog, "-");
        assert_eq!(c.log.level, Level::Info);
        assert_eq!(c.log.access_log_format, ferrocorn_core::access_log::DEFAULT_FORMAT);
        assert_eq!((&c.log.syslog, &c.log.statsd), (&None, &None));
        assert_eq!(c.reload.engine, ReloadEngine::Auto);
        assert_eq!(c.process.proc_name, "gunicorn");
    }

    /// Every setting, with every sample its validator accepts, builds a config; the only
    /// refusals are ferrocorn's own: an unsupported setting given another value, a worker
    /// class it does not have.
    #[test]
    fn every_validated_value_of_every_setting_builds_a_config() {
        let defaults = Settings::defaults(&env()).unwrap();
        let mut built = 0;
        for s in SETTINGS {
            let mut accepted = 0;
            for raw in samples(s) {
                let Ok(settings) = with(s.name, raw.clone()) else { continue };
                accepted += 1;
                let changed = settings.get(s.name) != defaults.get(s.name);
                match ServerConfig::new(&settings) {
                    Ok(_) => {
                        assert!(
                            !(s.support == Support::Unsupported && changed),
                            "{} = {raw:?} is unsupported but was configured",
                            s.name
                        );
                        built += 1;
                    }
                    Err(e) if s.support == Support::Unsupported && changed => {
                        assert!(e.contains("does not support these gunicorn settings"), "{e}");
                    }
                    Err(e) if s.name == "worker_class" => {
                        assert!(e.contains("worker class"), "{e}");
                    }
                    Err(e) => panic!("{} = {raw:?} passed validation but: {e}", s.name),
                }
            }
            assert!(accepted > 0, "no sample of {} passes its validator", s.name);
        }
        assert!(built > 2 * SETTINGS.len(), "only {built} configs built");
    }

    #[test]
    fn choices_are_enums() {
        let level = |v: &str| ServerConfig::new(&with("loglevel", Value::str(v)).unwrap());
        for (v, want) in [
            ("debug", Level::Debug),
            ("INFO", Level::Info),
            ("Warning", Level::Warning),
            ("error", Level::Error),
            ("CRITICAL", Level::Critical),
            ("verbose", Level::Info),
        ] {
            assert_eq!(level(v).unwrap().log.level, want, "{v}");
        }
        for (v, want) in [
            ("auto", ReloadEngine::Auto),
            ("poll", ReloadEngine::Poll),
            ("inotify", ReloadEngine::Inotify),
        ] {
            let c = ServerConfig::new(&with("reload_engine", Value::str(v)).unwrap()).unwrap();
            assert_eq!(c.reload.engine, want);
        }
        for (v, want) in [
            ("localhost:9125", StatsdHost::Udp { host: "localhost".into(), port: 9125 }),
            ("unix:///tmp/s.sock", StatsdHost::Unix("/tmp/s.sock".into())),
            ("fd://3", StatsdHost::Fd(3)),
        ] {
            let c = ServerConfig::new(&with("statsd_host", Value::str(v)).unwrap()).unwrap();
            assert_eq!(c.log.statsd.map(|s| s.host), Some(want), "{v}");
        }
        for (class, threads, want) in [
            ("sync", 1, WorkerKind::Sync),
            ("sync", 4, WorkerKind::Gthread),
            ("egg:gunicorn#gthread", 1, WorkerKind::Gthread),
        ] {
            let mut s = with("worker_class", Value::str(class)).unwrap();
            let layer = Layer {
                origin: Origin::CommandLine,
                values: vec![("threads".to_owned(), Value::Int(threads))],
            };
            s.apply(&layer, &env(), None).unwrap();
            assert_eq!(ServerConfig::new(&s).unwrap().worker.kind, want, "{class} {threads}");
        }
        // A value the validator never leaves is an error naming the setting, not a default.
        assert!(reload_engine(&Value::str("fsevents")).unwrap_err().starts_with("reload_engine"));
        assert!(statsd_host(&Value::Bool(true)).unwrap_err().starts_with("statsd_host"));
    }

    #[test]
    fn syslog_and_ids() {
        let s = with("syslog", Value::Bool(true)).unwrap();
        let c = ServerConfig::new(&s).unwrap();
        let syslog = c.log.syslog.unwrap();
        assert_eq!(
            (syslog.addr.as_str(), syslog.facility.as_str(), syslog.prefix.as_str()),
            ("udp://localhost:514", "user", "gunicorn")
        );
        let c = ServerConfig::new(&with("user", Value::Int(-1)).unwrap()).unwrap();
        assert_eq!(c.process.uid, None);
        let c = ServerConfig::new(&with("user", Value::Int(33)).unwrap()).unwrap();
        assert_eq!(c.process.uid, Some(33));
    }
}
