//! `ferrocorn-test-server`: a real master with real forked workers running the Rust
//! `Hello, World!` body, for the arbiter's end-to-end tests. Flags are gunicorn's, parsed
//! by the settings layer (`-w 2 --timeout 2 -b 127.0.0.1:0 ...`); no application module
//! is needed. `FERROCORN_TEST_BIND_RETRY_MS` shortens the pause between bind attempts;
//! `FERROCORN_TEST_WORKER_EXIT=N` runs workers that exit with N at once;
//! `FERROCORN_TEST_BOOT_HANG=1` runs workers that hang before their first heartbeat.
//! `FERROCORN_TEST_ARGS_FILE=PATH` adds the flags in PATH (one per line), read again on
//! HUP (the test server's [`Reload`]: a bad flag there is a configuration that no longer
//! loads); `FERROCORN_TEST_BOOT_FAIL_FILE=PATH` makes hello workers exit 4 (app failed
//! to load) while PATH exists; `FERROCORN_TEST_HOOKS_LOG=PATH` appends one line per
//! server hook call (`<hook> <args>`) to PATH, from the master and the workers.
//! `-k gthread` (or `--threads N` > 1) runs the gthread engine with the Rust hello
//! handler (`hello_handler.rs`; the blocking body is `hello_body.rs`).

mod hello_body;
mod hello_handler;

use std::process::ExitCode;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use ferrocorn::arbiter::{Reload, ServeOptions, ServerHooks, ServerInfo, WorkerInfo, serve_with};
use ferrocorn::settings::Env;
use ferrocorn::settings::resolve::{Loaded, NoPython, load};
use ferrocorn::settings::{ServerConfig, Settings, WorkerKind};
use ferrocorn::worker::gthread;
use ferrocorn::worker::{WorkerBody, WorkerContext};
use hello_body::HelloBody;

fn main() -> ExitCode {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    let base = argv.clone();
    argv.extend(args_file().unwrap_or_default());
    argv.push("rust:hello".to_owned());
    let env = Env::from_process();
    let settings = match load(&argv, &env, &NoPython) {
        Ok(Loaded::Settings(s)) => s,
        Ok(_) => return ExitCode::SUCCESS,
        Err(e) => {
            eprint!("{}", e.render());
            return ExitCode::from(e.exit_code());
        }
    };
    let config = match ServerConfig::new(&settings) {
        Ok(c) => c,
        Err(why) => {
            eprint!("\nError: {why}\n");
            return ExitCode::from(1);
        }
    };
    let mut opts = ServeOptions::default();
    if let Some(ms) =
        std::env::var("FERROCORN_TEST_BIND_RETRY_MS").ok().and_then(|v| v.parse().ok())
    {
        opts.bind_retry_delay = std::time::Duration::from_millis(ms);
    }
    opts.reload = Some(Arc::new(ReloadArgs { base }));
    if let Some(path) = std::env::var_os("FERROCORN_TEST_HOOKS_LOG") {
        opts.hooks = Arc::new(HooksLog { path: path.into() });
    }
    if let Some(code) =
        std::env::var("FERROCORN_TEST_WORKER_EXIT").ok().and_then(|v| v.parse().ok())
    {
        return ExitCode::from(serve_with(&settings, &config, &ExitAtOnce(code), &opts));
    }
    if std::env::var_os("FERROCORN_TEST_BOOT_HANG").is_some() {
        return ExitCode::from(serve_with(&settings, &config, &HangAtBoot, &opts));
    }
    if config.worker.kind == WorkerKind::Gthread {
        let engine = gthread::Options::from_config(&config);
        let body = gthread::GthreadBody::new(hello_handler::HelloHandler, engine);
        return ExitCode::from(serve_with(&settings, &config, &body, &opts));
    }
    let body = FailWhileFile(HelloBody::new(&config));
    ExitCode::from(serve_with(&settings, &config, &body, &opts))
}

/// A worker that exits with a fixed code at once (`FERROCORN_TEST_WORKER_EXIT`): 3 and 4
/// stand for gunicorn's boot and app-load errors.
struct ExitAtOnce(u8);

impl WorkerBody for ExitAtOnce {
    fn run(&self, ctx: WorkerContext) -> u8 {
        ctx.log.error("Exception in worker process");
        self.0
    }
}

/// A worker that hangs before its first heartbeat (`FERROCORN_TEST_BOOT_HANG`), like an
/// application import that never returns.
struct HangAtBoot;

impl WorkerBody for HangAtBoot {
    fn run(&self, _ctx: WorkerContext) -> u8 {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

/// The flags in `FERROCORN_TEST_ARGS_FILE`, one per line (`Err` when it cannot be read).
fn args_file() -> Result<Vec<String>, String> {
    let Some(path) = std::env::var_os("FERROCORN_TEST_ARGS_FILE") else { return Ok(Vec::new()) };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e}", PathBuf::from(&path).display()))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
}

/// HUP for the test server: the command line again, plus the args file as it is now.
struct ReloadArgs {
    base: Vec<String>,
}

impl Reload for ReloadArgs {
    fn reload(&self) -> Result<(Settings, ServerConfig), String> {
        let mut argv = self.base.clone();
        argv.extend(args_file()?);
        argv.push("rust:hello".to_owned());
        match load(&argv, &Env::from_process(), &NoPython) {
            Ok(Loaded::Settings(s)) => {
                let config = ServerConfig::new(&s)?;
                Ok((*s, config))
            }
            Ok(_) => Err("--help or --version in a reload".to_owned()),
            Err(e) => Err(e.render().trim().to_owned()),
        }
    }
}

/// The hello body, but exits 4 (app failed to load) while `FERROCORN_TEST_BOOT_FAIL_FILE`
/// exists: a broken deploy.
struct FailWhileFile(HelloBody);

impl WorkerBody for FailWhileFile {
    fn run(&self, ctx: WorkerContext) -> u8 {
        if std::env::var_os("FERROCORN_TEST_BOOT_FAIL_FILE")
            .is_some_and(|p| PathBuf::from(p).exists())
        {
            ctx.log.error("Exception in worker process: the application does not import");
            return ferrocorn::worker::APP_LOAD_ERROR;
        }
        self.0.run(ctx)
    }
}

/// Server hooks that append `<hook> <args>` lines to a file (one `write` each, so the
/// master's and the workers' lines never mix).
struct HooksLog {
    path: PathBuf,
}

impl HooksLog {
    fn line(&self, text: String) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .expect("hooks log");
        let _ = f.write_all(format!("{text}\n").as_bytes());
    }
}

fn srv(s: &ServerInfo<'_>) -> String {
    format!("server={} workers={}", s.pid, s.num_workers)
}

fn wrk(w: &WorkerInfo) -> String {
    format!("worker={} age={} ppid={}", w.pid, w.age, w.ppid)
}

impl ServerHooks for HooksLog {
    fn on_starting(&self, s: &ServerInfo<'_>) {
        self.line(format!("on_starting {} name={}", srv(s), s.master_name));
    }
    fn on_reload(&self, s: &ServerInfo<'_>) {
        self.line(format!("on_reload {}", srv(s)));
    }
    fn when_ready(&self, s: &ServerInfo<'_>) {
        self.line(format!("when_ready {} listeners={}", srv(s), s.listeners.join(",")));
    }
    fn pre_fork(&self, s: &ServerInfo<'_>, w: &WorkerInfo) {
        self.line(format!("pre_fork {} {}", srv(s), wrk(w)));
    }
    fn post_fork(&self, s: &ServerInfo<'_>, w: &WorkerInfo) {
        self.line(format!("post_fork {} {}", srv(s), wrk(w)));
    }
    fn post_worker_init(&self, w: &WorkerInfo) {
        self.line(format!("post_worker_init {}", wrk(w)));
    }
    fn worker_int(&self, w: &WorkerInfo) {
        self.line(format!("worker_int {}", wrk(w)));
    }
    fn worker_abort(&self, w: &WorkerInfo) {
        self.line(format!("worker_abort {}", wrk(w)));
    }
    fn pre_exec(&self, s: &ServerInfo<'_>) {
        self.line(format!("pre_exec {}", srv(s)));
    }
    fn child_exit(&self, s: &ServerInfo<'_>, w: &WorkerInfo) {
        self.line(format!("child_exit {} {}", srv(s), wrk(w)));
    }
    fn worker_exit(&self, s: &ServerInfo<'_>, w: &WorkerInfo) {
        self.line(format!("worker_exit {} {}", srv(s), wrk(w)));
    }
    fn nworkers_changed(&self, s: &ServerInfo<'_>, new: usize, old: Option<usize>) {
        let old = old.map_or("None".to_owned(), |o| o.to_string());
        self.line(format!("nworkers_changed server={} new={new} old={old}", s.pid));
    }
    fn on_exit(&self, s: &ServerInfo<'_>) {
        self.line(format!("on_exit {}", srv(s)));
    }
}
