//! End-to-end: hook code that reads `worker.cfg` runs unchanged under ferrocorn and sees
//! what it sees under gunicorn 27.0.1.
//!
//! Both servers serve tests/fixtures/cfg_hooks with the same config file; its
//! `pre_request` hook writes `name = repr(value)` for the settings and properties hook code
//! uses (`workers`, `bind`, `address`, `secure_scheme_headers`, `forwarded_allow_ips`,
//! `worker_class_str`, `uid`, `is_ssl`, `ssl_options`, `env`, `sendfile`, ...), plus
//! `cfg.settings[...]`, identity of the hook itself and the `AttributeError`s. One
//! request each; the two files must be equal. `cfg.worker_class` is looked at through its
//! `__name__` only and `cfg.logger_class` not at all: ferrocorn's worker and logger are
//! Rust, so those two properties differ on purpose (docs/compat.md, "Settings").

use crate::support;

use std::path::Path;
use std::process::Command;

use support::{Server, TempDir, get, oracle_venv, wait_until};

/// Serves the fixture with `program`, sends one request, returns what the hook wrote.
fn hook_view(program: &str, dir: &Path) -> String {
    let out = dir.join(format!("{program}.out"));
    let mut cmd = Command::new(oracle_venv().join("bin").join(program));
    cmd.args(["-c", "hooks.conf.py", "app:application"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent-home")
        .env("PWD", dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("CFG_OUT", &out);
    let srv = Server::start_command(cmd);
    let addr = srv.addr();
    srv.wait_booted(1);
    let resp = get(addr, "/");
    assert!(resp.starts_with("HTTP/1.1 200"), "{program}: {resp}\n{}", srv.log());
    wait_until(10, "the hook's output", || out.exists());
    std::fs::read_to_string(&out).unwrap()
}

#[test]
fn hooks_see_the_same_cfg_as_under_gunicorn() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cfg_hooks");
    let dir = TempDir::copy_of("cfg-hooks", &fixture);
    let g = hook_view("gunicorn", &dir);
    let f = hook_view("ferrocorn", &dir);
    assert!(g.lines().count() > 40, "{g}");
    let (gl, fl): (Vec<&str>, Vec<&str>) = (g.lines().collect(), f.lines().collect());
    let diffs: Vec<String> = gl
        .iter()
        .zip(&fl)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("gunicorn:  {a}\nferrocorn: {b}"))
        .collect();
    assert!(
        diffs.is_empty() && gl.len() == fl.len(),
        "hook saw different cfg values:\n{}",
        diffs.join("\n")
    );
}
