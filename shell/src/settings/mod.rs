//! Settings: one definition per gunicorn setting, resolved in gunicorn's layers.
//!
//! ```text
//!   defs::SETTINGS (the table)  ──►  cli (argparse-compatible parser, --help)
//!            │                  ──►  doc (docs/settings.md)
//!            ▼
//!   defaults(Env) < application < config file < GUNICORN_CMD_ARGS < command line
//!            └──────────── resolve::load / resolve::resolve ────────────┘
//!                                   │
//!                                   ▼
//!                        Settings (value + Origin per setting)
//! ```
//!
//! Every value is a [`Value`] shaped like the Python object gunicorn would hold, and goes
//! through the setting's [`Validator`] exactly where gunicorn calls `Setting.set`. The
//! config file itself is Python: the [`resolve::ConfigSource`] trait is the slot the
//! Python bridge fills with `(name, value)` pairs.

pub mod cli;
pub mod config;
pub mod defs;
pub mod doc;
pub mod env;
pub mod proto;
pub mod resolve;
pub mod validate;
pub mod value;

pub use config::ServerConfig;
pub use defs::{SETTINGS, lookup};
pub use env::Env;
pub use resolve::{ConfigError, ConfigSource, Layer, Origin, Resolved, Settings, WorkerKind};
pub use validate::Validator;
pub use value::{ObjKind, PyObj, Value};

/// A section of gunicorn's settings reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Config File.
    ConfigFile,
    /// Server Socket.
    ServerSocket,
    /// Worker Processes.
    WorkerProcesses,
    /// Security.
    Security,
    /// Debugging.
    Debugging,
    /// Server Mechanics.
    ServerMechanics,
    /// Logging.
    Logging,
    /// Process Naming.
    ProcessNaming,
    /// Server Hooks.
    ServerHooks,
    /// SSL.
    Ssl,
    /// HTTP/2 (gunicorn 25+).
    Http2,
    /// Dirty Arbiters (gunicorn 25+).
    DirtyArbiters,
    /// Dirty Arbiter Hooks (gunicorn 25+).
    DirtyArbiterHooks,
    /// Control (gunicorn 25.1+).
    Control,
}

impl Section {
    /// Every section, in the order of the generated docs.
    pub const ALL: [Section; 14] = [
        Section::ConfigFile,
        Section::Debugging,
        Section::Logging,
        Section::ProcessNaming,
        Section::Ssl,
        Section::Security,
        Section::ServerHooks,
        Section::ServerMechanics,
        Section::ServerSocket,
        Section::WorkerProcesses,
        Section::Http2,
        Section::DirtyArbiters,
        Section::DirtyArbiterHooks,
        Section::Control,
    ];

    /// The section title as gunicorn spells it.
    pub fn title(self) -> &'static str {
        match self {
            Section::ConfigFile => "Config File",
            Section::ServerSocket => "Server Socket",
            Section::WorkerProcesses => "Worker Processes",
            Section::Security => "Security",
            Section::Debugging => "Debugging",
            Section::ServerMechanics => "Server Mechanics",
            Section::Logging => "Logging",
            Section::ProcessNaming => "Process Naming",
            Section::ServerHooks => "Server Hooks",
            Section::Ssl => "SSL",
            Section::Http2 => "HTTP/2",
            Section::DirtyArbiters => "Dirty Arbiters",
            Section::DirtyArbiterHooks => "Dirty Arbiter Hooks",
            Section::Control => "Control",
        }
    }
}

/// The argparse action of a command-line flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `store`: one argument; the last occurrence wins.
    Store,
    /// `store_true`: no argument, sets `True`.
    StoreTrue,
    /// `store_const`: no argument, sets the constant (`--no-sendfile` stores `False`).
    StoreConst(bool),
    /// `append`: one argument per occurrence, collected into a list that replaces the
    /// list from lower layers.
    Append,
    /// `nargs="?"` with a `const`: an optional argument (`--proxy-protocol [MODE]`).
    StoreOptional(&'static str),
}

/// argparse's `type=` conversion for a flag's argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CliType {
    /// Kept as a string (the validator converts).
    Str,
    /// Python `int(s)`; failure is an argparse error (`invalid int value`, exit 2).
    Int,
    /// gunicorn's `auto_int` (`0022` is octal); failure is `invalid auto_int value`.
    AutoInt,
}

/// A setting's default, before validation (gunicorn validates defaults too).
#[derive(Clone, Copy, Debug)]
pub enum DefaultSpec {
    /// `None` (not validated, as in gunicorn).
    None,
    /// A bool.
    Bool(bool),
    /// An int.
    Int(i64),
    /// A string.
    Str(&'static str),
    /// A list of strings.
    StrList(&'static [&'static str]),
    /// A dict of strings.
    Dict(&'static [(&'static str, &'static str)]),
    /// A built-in hook: `(qualname, arity)`.
    Hook(&'static str, usize),
    /// Computed from the environment; the text describes it in the docs.
    Computed(fn(&Env) -> Result<Value, String>, &'static str),
}

impl DefaultSpec {
    /// The raw default value in this environment (gunicorn's class attribute `default`).
    pub fn value(&self, env: &Env) -> Result<Value, String> {
        Ok(match *self {
            DefaultSpec::None => Value::None,
            DefaultSpec::Bool(b) => Value::Bool(b),
            DefaultSpec::Int(i) => Value::Int(i),
            DefaultSpec::Str(s) => Value::str(s),
            DefaultSpec::StrList(l) => Value::str_list(l),
            DefaultSpec::Dict(d) => {
                Value::Dict(d.iter().map(|(k, v)| (Value::str(*k), Value::str(*v))).collect())
            }
            DefaultSpec::Hook(q, arity) => Value::Object(Box::new(PyObj::function(q, arity))),
            DefaultSpec::Computed(f, _) => return f(env),
        })
    }
}

/// Whether ferrocorn implements a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Implemented with gunicorn's meaning.
    Full,
    /// Accepted and validated so gunicorn 27 config files load, but the server refuses
    /// to start when it is set to a non-default value.
    Unsupported,
    /// Accepted and validated, and has no effect (the reason says why that is harmless).
    Inert(&'static str),
    /// A setting gunicorn never reads, given a meaning by ferrocorn (described here).
    Ferrocorn(&'static str),
}

/// One setting: everything the parser, the resolver and the docs need.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// The name used in config files and `--print-config`.
    pub name: &'static str,
    /// The docs section.
    pub section: Section,
    /// Command-line flags, exactly as gunicorn spells them; empty for config-only settings.
    pub cli: &'static [&'static str],
    /// argparse `metavar` (`None`: argparse uses the upper-cased name).
    pub meta: Option<&'static str>,
    /// argparse action.
    pub action: Action,
    /// argparse `type=`.
    pub cli_type: CliType,
    /// The validator gunicorn runs on every value set.
    pub validator: Validator,
    /// The default.
    pub default: DefaultSpec,
    /// The gunicorn version that added it, when newer than the 23.x reference.
    pub since: Option<&'static str>,
    /// Whether ferrocorn implements it.
    pub support: Support,
    /// The documentation: paragraphs separated by blank lines; the first one is the
    /// `--help` text.
    pub help: &'static str,
}

impl Setting {
    /// The first paragraph of the help (shown by `--help`).
    pub fn short_help(&self) -> &'static str {
        self.help.split("\n\n").next().unwrap_or("").trim()
    }

    /// The metavar argparse shows for this flag.
    pub fn metavar(&self) -> String {
        self.meta.map_or_else(|| self.name.to_uppercase(), str::to_owned)
    }

    /// Whether the flag takes no argument.
    pub fn is_switch(&self) -> bool {
        matches!(self.action, Action::StoreTrue | Action::StoreConst(_))
    }
}
