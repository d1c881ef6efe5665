//! The command-line entry point: argv and environment in, output and exit code out.
//!
//! Kept free of process globals so tests can call it directly; `main.rs` only feeds it
//! `std::env` and writes the result.

use std::io::Write;
use std::process::ExitCode;

use crate::settings::cli;
use crate::settings::config::RunMode;
use crate::settings::resolve::{self, Loaded, NoPython};
use crate::settings::{ConfigSource, Env, ServerConfig, Settings};

/// What the command prints and how it exits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Text for stdout.
    pub stdout: String,
    /// Text for stderr.
    pub stderr: String,
    /// The exit code.
    pub code: u8,
}

impl Outcome {
    /// Writes the output and returns the exit code.
    pub fn emit(&self) -> ExitCode {
        // Output errors (a closed pipe) must not turn into a panic.
        let _ = std::io::stdout().write_all(self.stdout.as_bytes());
        let _ = std::io::stderr().write_all(self.stderr.as_bytes());
        ExitCode::from(self.code)
    }
}

/// Imports the application when the command needs it before serving: gunicorn's
/// `--check-config` and `--print-config` load the app in the master and report failures.
/// The Python bridge implements it; without it the command says it did not import.
pub trait AppLoader {
    /// Writes what `out` holds so far (so the application's own output follows it, as in
    /// gunicorn, which prints the configuration before importing), clears it, then
    /// imports the application described by `settings`. `Err` carries the text for stderr
    /// (`\nError while loading the application:\n\n` and the traceback).
    fn check_app(&self, settings: &Settings, out: &mut Outcome) -> Result<(), String>;

    /// Serves the application of `settings`, configured as `config`: writes what `out`
    /// holds so far, then runs the master (which forks the workers) until it stops, and
    /// returns the exit code. Whatever is left to print goes into `out`.
    fn serve(&self, settings: &Settings, config: &ServerConfig, out: &mut Outcome) -> u8;
}

/// Runs `ferrocorn` with these arguments (without the program name).
pub fn run(argv: &[String], env: &Env) -> Outcome {
    run_with(argv, env, &NoPython)
}

/// [`run`] with an explicit config-file source and no application loader.
pub fn run_with(argv: &[String], env: &Env, source: &dyn ConfigSource) -> Outcome {
    run_full(argv, env, source, None)
}

/// The whole command: settings from `source`, then `--check-config` / `--print-config`
/// through `loader` (the Python bridge), else the server.
pub fn run_full(
    argv: &[String],
    env: &Env,
    source: &dyn ConfigSource,
    loader: Option<&dyn AppLoader>,
) -> Outcome {
    let mut out = Outcome::default();
    let settings = match resolve::load(argv, env, source) {
        Ok(Loaded::Help) => {
            out.stdout = cli::help_text(env);
            return out;
        }
        Ok(Loaded::Version) => {
            out.stdout = cli::version_text();
            return out;
        }
        Ok(Loaded::Settings(s)) => s,
        Err(e) => {
            out.stderr = e.render();
            out.code = e.exit_code();
            return out;
        }
    };
    for w in &settings.warnings {
        out.stderr.push_str(w);
        out.stderr.push('\n');
    }
    let mode = RunMode::new(&settings);
    if mode.print_config {
        out.stdout = settings.print_config();
    }
    if mode.print_config || mode.check_config {
        match loader {
            Some(loader) => {
                if let Err(text) = loader.check_app(&settings, &mut out) {
                    out.stderr.push_str(&text);
                    out.code = 1;
                }
            }
            // gunicorn would now import the application; that needs the Python runtime.
            None => out.stderr.push_str(
                "ferrocorn: note: the application was not imported (this ferrocorn binary does not embed Python; install the ferrocorn Python package)\n",
            ),
        }
        return out;
    }
    let config = match ServerConfig::new(&settings) {
        Ok(c) => c,
        Err(why) => {
            out.stderr = format!("\nError: {why}\n");
            out.code = 1;
            return out;
        }
    };
    match loader {
        Some(loader) => out.code = loader.serve(&settings, &config, &mut out),
        None => {
            out.stderr.push_str(
                "\nError: this ferrocorn binary does not embed Python and cannot serve an application; install the ferrocorn Python package (pip install ./shell)\n",
            );
            out.code = 1;
        }
    }
    out
}
