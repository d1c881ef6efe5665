//! `ferrocorn-test-server`: a real master with real forked workers running the Rust
//! `Hello, World!` body, for the arbiter's end-to-end tests. Flags are gunicorn's, parsed
//! by the settings layer (`-w 2 --timeout 2 -b 127.0.0.1:0 ...`); no application module
//! is needed. `FERROCORN_TEST_BIND_RETRY_MS` shortens the pause between bind attempts.

use std::process::ExitCode;

use ferrocorn::arbiter::{ServeOptions, serve_with};
use ferrocorn::settings::resolve::{Loaded, NoPython, load};
use ferrocorn::settings::Env;
use ferrocorn::worker::hello::HelloBody;

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
    let body = HelloBody::new(&settings);
    ExitCode::from(serve_with(&settings, &body, &opts))
}
