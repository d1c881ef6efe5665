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
mod setting;
pub mod tls_plan;
pub mod validate;
pub mod value;

pub use config::ServerConfig;
pub use defs::{SETTINGS, lookup};
pub use env::Env;
pub use resolve::{ConfigError, ConfigSource, Layer, Origin, Resolved, Settings, WorkerKind};
pub use setting::{Action, CliType, DefaultSpec, Section, Setting, Support};
pub use validate::Validator;
pub use value::{ObjKind, PyObj, Value};
