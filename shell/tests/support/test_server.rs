//! `ferrocorn-test-server`: a real master with real forked workers running the Rust
//! `Hello, World!` body, for the arbiter's end-to-end tests. Flags are gunicorn's, parsed
//! by the settings layer (`-w 2 --timeout 2 -b 127.0.0.1:0 ...`); no application module
//! is needed. `FERROCORN_TEST_BIND_RETRY_MS` shortens the pause between bind attempts;
//! `FERROCORN_TEST_WORKER_EXIT=N` runs workers that exit with N at once;
//! `FERROCORN_TEST_BOOT_HANG=1` runs workers that hang before their first heartbeat.
//! `-k gthread` (or `--threads N` > 1) runs the gthread engine with the Rust hello
//! handler (`ferrocorn::worker::gthread::hello`).

use std::process::ExitCode;

use ferrocorn::arbiter::{ServeOptions, serve_with};
use ferrocorn::settings::resolve::{Loaded, NoPython, load};
use ferrocorn::settings::Env;
use ferrocorn::worker::gthread;
use ferrocorn::worker::hello::HelloBody;
use ferrocorn::worker::{WorkerBody, WorkerContext};

fn main() -> ExitCode {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
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
    let mut opts = ServeOptions::default();
    if let Some(ms) = std::env::var("FERROCORN_TEST_BIND_RETRY_MS").ok().and_then(|v| v.parse().ok()) {
        opts.bind_retry_delay = std::time::Duration::from_millis(ms);
    }
    if let Some(code) = std::env::var("FERROCORN_TEST_WORKER_EXIT").ok().and_then(|v| v.parse().ok()) {
        return ExitCode::from(serve_with(&settings, &ExitAtOnce(code), &opts));
    }
    if std::env::var_os("FERROCORN_TEST_BOOT_HANG").is_some() {
        return ExitCode::from(serve_with(&settings, &HangAtBoot, &opts));
    }
    if settings.worker_class() == "gthread" {
        let proto = ferrocorn_core::ProtoConfig {
            limits: ferrocorn_core::Limits::from_gunicorn(
                settings.int("limit_request_line"),
                settings.int("limit_request_fields"),
                settings.int("limit_request_field_size"),
            ),
            ..ferrocorn_core::ProtoConfig::default()
        };
        let engine = gthread::Options::from_settings(&settings, std::sync::Arc::new(proto));
        let body = gthread::GthreadBody::new(gthread::hello::HelloHandler, engine);
        return ExitCode::from(serve_with(&settings, &body, &opts));
    }
    let body = HelloBody::new(&settings);
    ExitCode::from(serve_with(&settings, &body, &opts))
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
