//! What the CLI layer plugs into the master besides the server hooks
//! ([`crate::lifecycle`]): the configuration reload and the re-exec command.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::settings::{ServerConfig, Settings};

/// Re-resolves the settings on HUP, as at start: for the `ferrocorn` command that means
/// the command line, `GUNICORN_CMD_ARGS` and the config file run again in Python.
/// `Err` carries the text to log (settings that do not load, or that ferrocorn cannot
/// serve: [`ServerConfig::new`]); the master then keeps its configuration.
pub trait Reload {
    /// The settings to run with from now on, and their configuration.
    fn reload(&self) -> Result<(Settings, ServerConfig), String>;
}

/// The program USR2 executes, with the listeners inherited (gunicorn's `START_CTX` and
/// `env_orig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReexecCommand {
    /// The executable (`sys.executable` for the Python package).
    pub program: PathBuf,
    /// `argv[0]` and the arguments (for the Python package: `[sys.executable, "-m",
    /// "ferrocorn", ...original arguments]`).
    pub argv: Vec<OsString>,
    /// The environment as it was when the process started (before `raw_env`);
    /// `GUNICORN_PID`, `GUNICORN_FD` or `LISTEN_PID`/`LISTEN_FDS` are set on top.
    pub env: Vec<(OsString, OsString)>,
    /// The directory to start in (the directory the process started in).
    pub cwd: PathBuf,
}

impl ReexecCommand {
    /// This executable (`/proc/self/exe`) with this process's arguments, environment and
    /// working directory: right for a binary that is its own server (the test server).
    pub fn from_process() -> ReexecCommand {
        ReexecCommand {
            program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
            argv: std::env::args_os().collect(),
            env: std::env::vars_os().collect(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        }
    }
}
