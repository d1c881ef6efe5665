//! Layers, precedence and the resolved [`Settings`].
//!
//! gunicorn's `Application.load_config` order, lowest to highest precedence:
//! defaults (computed from the environment) < the application's own settings (the
//! positional `APP_MODULE` or `--paste` file become `default_proc_name`) < the config
//! file < `GUNICORN_CMD_ARGS` < the command line. Every value goes through its
//! validator when its layer is applied, so an invalid value in a lower layer is an
//! error even if a higher layer overrides it, as in gunicorn.

use std::fmt;
use std::path::{Path, PathBuf};

use super::cli::{self, Parsed, ParsedArgs, UsageError};
use super::defs::{SETTINGS, index_of};
use super::env::{Env, shlex_split};
use super::setting::{Setting, Support};
use super::validate::{Ctx, Importer, normalize_path};
use super::value::Value;

/// The worker implementations ferrocorn has (see [`Settings::worker_kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerKind {
    /// gunicorn's `SyncWorker`: one connection at a time.
    Sync,
    /// gunicorn's `ThreadWorker`: `threads` serving threads over one poller.
    Gthread,
}

/// The refusal of a worker class that is neither of ferrocorn's.
fn custom_worker(class: &str) -> String {
    format!(
        "worker class {class:?} cannot run under ferrocorn: its workers are built in (Rust), \
so custom worker classes cannot be loaded; use 'sync' or 'gthread'"
    )
}

/// Where a resolved value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The setting's default (possibly computed from the environment).
    Default,
    /// Set by the application loader (`default_proc_name` from `APP_MODULE`, `logconfig`
    /// from a paste file with `[loggers]`).
    Application,
    /// A config file (its location as given: a path or `python:module`).
    ConfigFile(String),
    /// The `GUNICORN_CMD_ARGS` environment variable.
    EnvCmdArgs,
    /// The command line.
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::Application => f.write_str("application"),
            Origin::ConfigFile(p) => write!(f, "config file {p}"),
            Origin::EnvCmdArgs => f.write_str("env GUNICORN_CMD_ARGS"),
            Origin::CommandLine => f.write_str("command line"),
        }
    }
}

/// One layer of raw values: `(setting name, value)` pairs applied in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// Where the values come from.
    pub origin: Origin,
    /// The values; names that are not settings are ignored (as gunicorn ignores other
    /// globals of a config file).
    pub values: Vec<(String, Value)>,
}

impl Layer {
    /// A layer from parsed command-line flags.
    pub fn from_args(origin: Origin, args: &ParsedArgs) -> Layer {
        Layer {
            origin,
            values: args
                .values
                .iter()
                .map(|(i, v)| (SETTINGS[*i].name.to_owned(), v.clone()))
                .collect(),
        }
    }
}

/// A configuration error, with gunicorn's output and exit code.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigError {
    /// argparse rejected the arguments (exit 2).
    Usage(UsageError),
    /// A validator rejected a value (exit 1).
    Invalid {
        /// The setting.
        setting: &'static str,
        /// The layer that gave the value.
        origin: Origin,
        /// The value as given.
        value: Value,
        /// `str(exception)`.
        message: String,
    },
    /// The config file raised while executing: gunicorn prints `Failed to read config
    /// file: <path>` and the traceback (no `Error:` line), exit 1.
    ConfigFileFailed {
        /// The file, as gunicorn names it.
        location: String,
        /// The formatted Python traceback.
        traceback: String,
    },
    /// Any other configuration error: `Error: <message>`, exit 1.
    Other(String),
}

impl ConfigError {
    /// The process exit code gunicorn uses.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfigError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// The message after `Error: `, or the argparse message.
    pub fn message(&self) -> &str {
        match self {
            ConfigError::Usage(u) => &u.0,
            ConfigError::Invalid { message, .. } => message,
            ConfigError::ConfigFileFailed { traceback, .. } => traceback,
            ConfigError::Other(m) => m,
        }
    }

    /// Exactly what gunicorn writes to stderr for this error.
    pub fn render(&self) -> String {
        match self {
            ConfigError::Usage(u) => u.render(),
            ConfigError::ConfigFileFailed { location, traceback } => {
                let nl = if traceback.ends_with('\n') { "" } else { "\n" };
                format!("Failed to read config file: {location}\n{traceback}{nl}")
            }
            ConfigError::Invalid { setting, origin: Origin::ConfigFile(_), value, message } => {
                format!("Invalid value for {setting}: {}\n\n\nError: {message}\n", value.py_str())
            }
            ConfigError::Invalid { message, .. } | ConfigError::Other(message) => {
                format!("\nError: {message}\n")
            }
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ConfigError {}

/// Reads a config file into `(name, value)` pairs. The Python bridge implements this by
/// executing the file (or importing `python:MODULE`) and returning its globals.
pub trait ConfigSource {
    /// Loads the config at `location` (`PATH`, `file:PATH` or `python:MODULE`). For
    /// paths, the caller has already checked that the file exists.
    fn load(&self, location: &str, env: &Env) -> Result<Vec<(String, Value)>, ConfigError>;

    /// Resolves hook import strings (`module.func`), when the source can.
    fn importer(&self) -> Option<&dyn Importer> {
        None
    }
}

/// The config source of the plain Rust binary, which embeds no Python: refuses honestly.
/// The Python package's command uses `python::config_file::PythonConfig` instead.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPython;

impl ConfigSource for NoPython {
    fn load(&self, location: &str, _env: &Env) -> Result<Vec<(String, Value)>, ConfigError> {
        Err(ConfigError::Other(format!(
            "cannot read config file {location}: config files are Python and need the Python runtime, which this binary does not embed (use the `ferrocorn` command of the Python package: pip install ./shell)"
        )))
    }
}

/// One resolved setting.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// The validated value.
    pub value: Value,
    /// Where it came from.
    pub origin: Origin,
}

/// The resolved settings: one validated value and origin per entry of [`SETTINGS`].
#[derive(Clone, Debug)]
pub struct Settings {
    values: Vec<Resolved>,
    /// Validated defaults, to tell "set to the default" from "set to something else".
    defaults: Vec<Value>,
    /// The application to load (`APP_MODULE`, the paste URI, or `wsgi_app`), once known.
    pub app_uri: Option<String>,
    /// Warnings gunicorn would write to stderr while validating.
    pub warnings: Vec<String>,
}

impl Settings {
    /// All settings at their (validated) defaults.
    pub fn defaults(env: &Env) -> Result<Settings, ConfigError> {
        let mut ctx = Ctx::new(env);
        let mut values = Vec::with_capacity(SETTINGS.len());
        for s in SETTINGS {
            let raw = s.default.value(env).map_err(ConfigError::Other)?;
            // gunicorn only calls `set(default)` when the default is not None.
            let value = if raw == Value::None {
                raw
            } else {
                s.validator.validate(&raw, &mut ctx).map_err(ConfigError::Other)?
            };
            values.push(Resolved { value, origin: Origin::Default });
        }
        let defaults = values.iter().map(|r| r.value.clone()).collect();
        Ok(Settings { values, defaults, app_uri: None, warnings: ctx.warnings })
    }

    /// Applies one layer, validating each value (gunicorn's `cfg.set(k, v)`).
    pub fn apply(
        &mut self,
        layer: &Layer,
        env: &Env,
        importer: Option<&dyn Importer>,
    ) -> Result<(), ConfigError> {
        let mut ctx = Ctx { env, importer, warnings: Vec::new() };
        for (name, raw) in &layer.values {
            let Some(i) = index_of(name) else { continue };
            let s = &SETTINGS[i];
            let value =
                s.validator.validate(raw, &mut ctx).map_err(|message| ConfigError::Invalid {
                    setting: s.name,
                    origin: layer.origin.clone(),
                    value: raw.clone(),
                    message,
                })?;
            self.values[i] = Resolved { value, origin: layer.origin.clone() };
        }
        self.warnings.append(&mut ctx.warnings);
        Ok(())
    }

    /// The resolved value and origin of a setting. Panics on an unknown name (a bug).
    pub fn resolved(&self, name: &str) -> &Resolved {
        let i = index_of(name).unwrap_or_else(|| panic!("no setting named {name:?}"));
        &self.values[i]
    }

    /// The value of a setting. Panics on an unknown name.
    pub fn get(&self, name: &str) -> &Value {
        &self.resolved(name).value
    }

    /// Where a setting's value came from. Panics on an unknown name.
    pub fn origin(&self, name: &str) -> &Origin {
        &self.resolved(name).origin
    }

    /// An integer setting (0 when it is not an int, which validation prevents).
    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            Value::Int(i) => *i,
            Value::Bool(b) => i64::from(*b),
            _ => 0,
        }
    }

    /// A boolean setting (`None` counts as false).
    pub fn bool(&self, name: &str) -> bool {
        self.get(name).as_bool().unwrap_or(false)
    }

    /// A string setting, `None` when unset.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).as_str()
    }

    /// A list-of-strings setting.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.get(name).as_str_list()
    }

    /// Iterates `(setting, resolved)` in table order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static Setting, &Resolved)> {
        SETTINGS.iter().zip(&self.values)
    }

    /// Which of ferrocorn's workers serves these settings, as gunicorn's
    /// `Config.worker_class` loads it: `sync` and `gthread` by every name gunicorn gives
    /// them (`sync`, `#sync`, `egg:gunicorn#sync`, `gunicorn.workers.sync.SyncWorker`, the
    /// class itself from a config file; the same for `gthread` and `ThreadWorker`), with
    /// gunicorn's rule that the string `sync` or one ending in `SyncWorker` runs the
    /// threaded worker when `threads` > 1. Any other class is refused: gunicorn's other
    /// workers are not built yet, and a user's own class (a Python subclass of a gunicorn
    /// worker) cannot run here, whatever its name.
    pub fn worker_kind(&self) -> Result<WorkerKind, String> {
        let named = |name: &str| match name {
            "gunicorn.workers.sync.SyncWorker" => Some(WorkerKind::Sync),
            "gunicorn.workers.gthread.ThreadWorker" => Some(WorkerKind::Gthread),
            _ => None,
        };
        match self.get("worker_class") {
            Value::Str(uri) => {
                // gunicorn loads `ThreadWorker` in place of any such string, even a
                // user's class whose name ends in `SyncWorker`.
                if (uri == "sync" || uri.ends_with("SyncWorker")) && self.int("threads") > 1 {
                    return Ok(WorkerKind::Gthread);
                }
                // `util.load_class`: `egg:DIST#NAME` is an entry point of DIST; a name
                // without dots, after its leading `#`s, is one of gunicorn's own.
                let short = match uri.strip_prefix("egg:gunicorn#") {
                    Some(name) => Some(name),
                    None if !uri.contains('.') && !uri.starts_with("egg:") => {
                        Some(uri.trim_start_matches('#'))
                    }
                    None => None,
                };
                match short {
                    Some("sync") => Ok(WorkerKind::Sync),
                    Some("gthread") => Ok(WorkerKind::Gthread),
                    Some(
                        name @ ("eventlet" | "gevent" | "gevent_wsgi" | "gevent_pywsgi" | "tornado"
                        | "asgi"),
                    ) => Err(format!(
                        "worker class {:?} is not supported by ferrocorn yet: only 'sync' and \
'gthread' serve today",
                        name
                    )),
                    _ => named(uri).ok_or_else(|| custom_worker(uri)),
                }
            }
            Value::Object(o) => {
                let path = o.text.strip_prefix("<class '").and_then(|t| t.strip_suffix("'>"));
                path.and_then(named).ok_or_else(|| custom_worker(&o.text))
            }
            other => Err(custom_worker(&other.py_str())),
        }
    }

    /// Why ferrocorn cannot serve these settings, as the one line after `Error: `:
    /// settings it does not support yet set to something other than their default, or a
    /// worker class it does not have. Checked at start and on every HUP reload.
    pub fn check_servable(&self) -> Result<WorkerKind, String> {
        let unsupported: Vec<String> = self
            .unsupported()
            .iter()
            .map(|s| format!("{} ({})", s.name, self.origin(s.name)))
            .collect();
        if !unsupported.is_empty() {
            return Err(format!(
                "ferrocorn does not support these gunicorn settings yet: {} (see docs/settings.md)",
                unsupported.join(", ")
            ));
        }
        self.worker_kind()
    }

    /// The worker class to run, after gunicorn's cross-setting rule: `sync` (or a
    /// `...SyncWorker` path) with `threads > 1` means `gthread`. The `worker_class`
    /// setting itself keeps the value given, as `--print-config` shows it.
    pub fn worker_class(&self) -> String {
        match self.get("worker_class") {
            Value::Str(uri) => {
                let is_sync = uri == "sync" || uri.ends_with("SyncWorker");
                if is_sync && self.int("threads") > 1 { "gthread".to_owned() } else { uri.clone() }
            }
            Value::Object(o) => o.qualname.clone(),
            other => other.py_str(),
        }
    }

    /// Whether to use `sendfile()`: gunicorn's `Config.sendfile`. Any value of the
    /// setting other than None disables it (even `sendfile = True`, a gunicorn quirk);
    /// otherwise the `SENDFILE` environment variable decides (`y`, `1`, `yes`, `true`);
    /// otherwise it is on.
    pub fn sendfile(&self, env: &Env) -> bool {
        if *self.get("sendfile") != Value::None {
            return false;
        }
        match env.var("SENDFILE") {
            Some(v) => matches!(v.to_lowercase().as_str(), "y" | "1" | "yes" | "true"),
            None => true,
        }
    }

    /// The process name: `proc_name`, else `default_proc_name`.
    pub fn proc_name(&self) -> String {
        self.str("proc_name").or(self.str("default_proc_name")).unwrap_or("gunicorn").to_owned()
    }

    /// Whether TLS is on (`certfile` or `keyfile` set).
    pub fn is_ssl(&self) -> bool {
        self.get("certfile").is_truthy() || self.get("keyfile").is_truthy()
    }

    /// The logger class to use: `simple` means the default; the default switches to the
    /// statsd logger when `statsd_host` is set (gunicorn's `Config.logger_class`).
    pub fn logger_class(&self) -> String {
        const DEFAULT: &str = "gunicorn.glogging.Logger";
        let uri = match self.get("logger_class") {
            Value::Str(s) if s == "simple" => DEFAULT.to_owned(),
            Value::Object(o) => return o.qualname.clone(),
            other => other.py_str(),
        };
        if uri == DEFAULT && *self.get("statsd_host") != Value::None {
            return "gunicorn.instrument.statsd.Statsd".to_owned();
        }
        uri
    }

    /// `raw_env` as `(key, value)` pairs; an item without `=` is gunicorn's
    /// `RuntimeError("environment setting %r invalid")`.
    pub fn env_pairs(&self) -> Result<Vec<(String, String)>, String> {
        self.list("raw_env")
            .into_iter()
            .map(|e| {
                e.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| {
                    format!("environment setting {} invalid", Value::str(e).py_repr())
                })
            })
            .collect()
    }

    /// `raw_paste_global_conf` as `(key, value)` pairs; `\=` escapes a `=`.
    pub fn paste_global_conf(&self) -> Result<Vec<(String, String)>, String> {
        self.list("raw_paste_global_conf")
            .into_iter()
            .map(|e| {
                let b = e.as_bytes();
                let split = (0..b.len()).find(|&i| b[i] == b'=' && (i == 0 || b[i - 1] != b'\\'));
                let Some(at) = split else {
                    return Err(format!("environment setting {} invalid", Value::str(e).py_repr()));
                };
                Ok((e[..at].replace("\\=", "="), e[at + 1..].replace("\\=", "=")))
            })
            .collect()
    }

    /// Settings that ferrocorn does not implement yet and that are set to something other
    /// than their default: the server refuses to start (or to reload) while this is not
    /// empty.
    pub fn unsupported(&self) -> Vec<&'static Setting> {
        SETTINGS
            .iter()
            .zip(self.values.iter().zip(&self.defaults))
            .filter(|(s, (r, d))| {
                s.support == Support::Unsupported && r.origin != Origin::Default && r.value != **d
            })
            .map(|(s, _)| s)
            .collect()
    }

    /// The `Current configuration:` text gunicorn's arbiter logs at debug level when it
    /// starts: every setting in definition order, `  name: value` with values as
    /// Python's `str()` (so a function shows as `<function Qualname ...>`).
    pub fn current_configuration(&self) -> String {
        let mut out = String::from("Current configuration:");
        for (s, r) in self.iter() {
            out.push_str(&format!("\n  {}: {}", s.name, r.value.py_str()));
        }
        out
    }

    /// The `--print-config` text: `name = value` lines sorted by name, names padded to
    /// the longest, values as Python's `str()`, callables as `<Qualname()>`.
    pub fn print_config(&self) -> String {
        let width = SETTINGS.iter().map(|s| s.name.len()).max().unwrap_or(0);
        let mut rows: Vec<(&str, String)> = self
            .iter()
            .map(|(s, r)| {
                let v = match &r.value {
                    Value::Object(o) if o.is_callable() => format!("<{}()>", o.qualname),
                    v => v.py_str(),
                };
                (s.name, v)
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = String::new();
        for (name, v) in rows {
            out.push_str(&format!("{name:<width$} = {v}\n"));
        }
        out
    }
}

/// Which config file gunicorn reads: `-c` on the command line, else `-c` in
/// `GUNICORN_CMD_ARGS`, else `gunicorn.conf.py` in the working directory if it exists.
pub fn config_location(cli_args: &ParsedArgs, env_args: &ParsedArgs, env: &Env) -> Option<String> {
    let given = |a: &ParsedArgs| {
        a.get("config").and_then(Value::as_str).map(str::to_owned).filter(|s| !s.is_empty())
    };
    given(cli_args).or_else(|| given(env_args)).or_else(|| {
        let p = env.cwd.join("gunicorn.conf.py");
        p.exists().then(|| p.to_string_lossy().into_owned())
    })
}

/// What [`load`] found.
#[derive(Debug)]
pub enum Loaded {
    /// `--help` was given.
    Help,
    /// `--version` was given.
    Version,
    /// Resolved settings (with `app_uri` set).
    Settings(Box<Settings>),
}

fn parse_layer(args: &[String]) -> Result<Result<ParsedArgs, Loaded>, ConfigError> {
    match cli::parse(args).map_err(ConfigError::Usage)? {
        Parsed::Args(a) => Ok(Ok(a)),
        Parsed::Help => Ok(Err(Loaded::Help)),
        Parsed::Version => Ok(Err(Loaded::Version)),
    }
}

fn has_loggers_section(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.lines().any(|l| l.trim() == "[loggers]"))
}

/// Loads the configuration as gunicorn's `WSGIApplication` does: defaults, the
/// application layer, the config file (through `source`), `GUNICORN_CMD_ARGS`, then
/// the command line (`argv` without the program name).
pub fn load(argv: &[String], env: &Env, source: &dyn ConfigSource) -> Result<Loaded, ConfigError> {
    let mut settings = Settings::defaults(env)?;
    let cli_args = match parse_layer(argv)? {
        Ok(a) => a,
        Err(early) => return Ok(early),
    };

    // The application's own settings (`WSGIApplication.init`).
    let mut app_layer = Layer { origin: Origin::Application, values: Vec::new() };
    let mut app_uri = None;
    if let Some(paste) = cli_args.get("paste").and_then(Value::as_str) {
        let uri = normalize_path(&env.cwd.join(paste.trim()));
        let uri = uri.to_string_lossy().into_owned();
        let file = uri.split('#').next().unwrap_or("").to_owned();
        if !Path::new(&file).exists() {
            return Err(ConfigError::Other(format!(
                "{} not found",
                Value::str(file.as_str()).py_repr()
            )));
        }
        app_layer.values.push(("default_proc_name".to_owned(), Value::str(file.as_str())));
        if has_loggers_section(Path::new(&file)) {
            app_layer.values.push(("logconfig".to_owned(), Value::str(file.as_str())));
        }
        app_uri = Some(uri);
    } else if let Some(first) = cli_args.positionals.first() {
        app_layer.values.push(("default_proc_name".to_owned(), Value::str(first.as_str())));
        app_uri = Some(first.clone());
    }
    settings.apply(&app_layer, env, None)?;

    let env_words = match env.var("GUNICORN_CMD_ARGS") {
        Some(s) => shlex_split(s).map_err(|e| ConfigError::Other(e.0.to_owned()))?,
        None => Vec::new(),
    };
    let env_args = match parse_layer(&env_words)? {
        Ok(a) => a,
        Err(early) => return Ok(early),
    };

    if let Some(location) = config_location(&cli_args, &env_args, env) {
        let values = load_config_file(&location, env, source)?;
        settings.apply(
            &Layer { origin: Origin::ConfigFile(location), values },
            env,
            source.importer(),
        )?;
    }
    settings.apply(&Layer::from_args(Origin::EnvCmdArgs, &env_args), env, source.importer())?;
    settings.apply(&Layer::from_args(Origin::CommandLine, &cli_args), env, source.importer())?;

    settings.app_uri = match app_uri {
        Some(u) => Some(u),
        None => match settings.str("wsgi_app") {
            Some(w) => Some(w.to_owned()),
            None => {
                return Err(ConfigError::Other("No application module specified.".to_owned()));
            }
        },
    };
    Ok(Loaded::Settings(Box::new(settings)))
}

/// Checks the location and hands it to the source (gunicorn's
/// `load_config_from_module_name_or_filename`).
fn load_config_file(
    location: &str,
    env: &Env,
    source: &dyn ConfigSource,
) -> Result<Vec<(String, Value)>, ConfigError> {
    if !location.starts_with("python:") {
        let file = location.strip_prefix("file:").unwrap_or(location);
        let path: PathBuf = env.cwd.join(file);
        if !path.exists() {
            return Err(ConfigError::Other(format!(
                "{} doesn't exist",
                Value::str(file).py_repr()
            )));
        }
    }
    source.load(location, env)
}
