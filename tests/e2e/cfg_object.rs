//! The `cfg` object hooks see (`server.cfg`, `worker.cfg`) against gunicorn 27.0.1's own
//! `Config`, built from the same command line in the same interpreter.
//!
//! tests/fixtures/cfg/compare.py builds both (gunicorn's through `WSGIApplication`,
//! ferrocorn's through `ferrocorn._ferrocorn._cfg_for_argv`, the code behind
//! `python::config_object::cfg_object`) and prints every difference hook code could see: every
//! setting as an attribute and in `cfg.settings`, the derived properties, `str(cfg)`,
//! the `AttributeError`s, `cfg.set()` with good and bad values. Runs in the project venv
//! (`.venv`, or `FERROCORN_VENV`), which holds gunicorn 27.0.1 and the installed ferrocorn
//! package (scripts/install-ferrocorn.sh).

use crate::support;

use std::path::Path;
use std::process::Command;
use support::{TempDir, oracle_venv};

/// The differences ferrocorn keeps on purpose (docs/compat.md, "Settings"): gunicorn's
/// `cfg.logger_class` imports and returns `gunicorn.glogging.Logger`; ferrocorn's logger
/// is Rust, so the property gives the dotted path it stands for. It shows twice: as the
/// attribute named after the setting and in the list of properties.
/// `logger` is the class gunicorn picks (the statsd logger when `statsd_host` is set).
fn expected(logger: &str) -> String {
    let one =
        format!("DIFF logger_class\n  gunicorn:  <class '{logger}'>\n  ferrocorn: '{logger}'\n");
    format!("{one}{one}2 differences\n")
}

const LOGGER: &str = "gunicorn.glogging.Logger";

fn compare(tag: &str, args: &[&str], env: &[(&str, &str)], logger: &str) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cfg");
    let dir = TempDir::copy_of(&format!("cfg-{tag}"), &fixtures);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let mut cmd = Command::new(oracle_venv().join("bin/python"));
    cmd.arg("compare.py")
        .args(args)
        .current_dir(&dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent-home")
        .env("PWD", &dir.0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run python");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{tag}: compare.py failed:\n{stdout}\n{stderr}");
    assert_eq!(stdout, expected(logger), "{tag}: unexpected differences (stderr: {stderr})");
}

#[test]
fn defaults() {
    compare("defaults", &["app:app"], &[], LOGGER);
}

#[test]
fn config_file_with_hooks_lists_dicts_and_computed_values() {
    compare("hooks", &["app:app", "-c", "hooks_conf.py"], &[], LOGGER);
}

#[test]
fn command_line_and_environment() {
    compare(
        "cli",
        &[
            "app:app",
            "-w",
            "3",
            "-b",
            "unix:///tmp/a.sock",
            "-b",
            "[::1]",
            "-k",
            "gthread",
            "--threads",
            "8",
            "--keyfile",
            "k.pem",
            "--paste-global",
            "a=b",
            "--reuse-port",
            "--no-sendfile",
            "--forwarded-allow-ips",
            "*",
            "--proxy-protocol=v2",
            "-e",
            "X=1",
            "--chdir",
            "sub",
            "-u",
            "0",
        ],
        &[("GUNICORN_CMD_ARGS", "--timeout 7 --statsd-host localhost"), ("SENDFILE", "no")],
        "gunicorn.instrument.statsd.Statsd",
    );
    compare(
        "env",
        &["app:app"],
        &[
            ("PORT", "9999"),
            ("WEB_CONCURRENCY", "5"),
            ("FORWARDED_ALLOW_IPS", "10.1.0.0/16,::1"),
            ("SENDFILE", "yes"),
        ],
        LOGGER,
    );
}
