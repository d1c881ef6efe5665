//! Snapshots (insta, tests/snapshots/) of what people read: `ferrocorn --help`, and
//! `ferrocorn --print-config` for a config file with the shapes real ones have
//! (tests/fixtures/print_config: computed values, imports, hooks as functions and import
//! strings, lists, dicts, an ignored upper-case name).
//!
//! `--help` comes from the entry point in a fixed environment (no variables, cwd `/`),
//! so it is the same on every machine. `--print-config` runs the installed
//! command (`.venv`, or `FERROCORN_VENV`; scripts/install-ferrocorn.sh) in a temporary
//! copy of the fixture; the copy's path and the uid/gid of whoever runs the test are
//! replaced by `[PROJECT]`, `[UID]` and `[GID]`.
//!
//! A change of wording or value shows up as a snapshot diff: review it with
//! `cargo insta review` (or `INSTA_UPDATE=always cargo test -p ferrocorn --test
//! cli_snapshots`) and commit the new snapshot with the change.

use std::path::Path;
use std::process::Command;

use ferrocorn::settings::Env;

#[path = "../../tests/e2e/support/venv.rs"]
mod venv;
use venv::venv;
#[path = "../../tests/e2e/support/scratch.rs"]
mod scratch;
use scratch::TempDir;

#[test]
fn help() {
    let out = ferrocorn::run::run(&["--help".to_owned()], &Env::bare("/"));
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    insta::assert_snapshot!("help", out.stdout);
}

fn status_id(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_owned()
}

#[test]
fn print_config_of_a_real_config_file() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/print_config");
    let dir = TempDir::copy_of("snap", &fixture);
    let o = Command::new(venv().join("bin/ferrocorn"))
        .arg("--print-config")
        .current_dir(&dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent-home")
        .env("PWD", &dir.0)
        .output()
        .expect("run ferrocorn");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(stderr, "");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let (uid, gid) = (status_id(&status, "Uid:"), status_id(&status, "Gid:"));
    let text: String = String::from_utf8(o.stdout)
        .unwrap()
        .replace(&dir.to_string_lossy().into_owned(), "[PROJECT]")
        .lines()
        .map(|l| match l.split_once(" = ") {
            Some((name, v)) if name.trim() == "user" && v == uid => format!("{name} = [UID]\n"),
            Some((name, v)) if name.trim() == "group" && v == gid => format!("{name} = [GID]\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    insta::assert_snapshot!("print_config", text);
}
