//! The `ferrocorn` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let env = ferrocorn::settings::Env::from_process();
    let out = ferrocorn::run::run(&argv, &env);
    out.emit()
}
