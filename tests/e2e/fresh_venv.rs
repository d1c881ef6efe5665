//! End-to-end: the wheel scripts/install-ferrocorn.sh built (target/wheels/ferrocorn-dev)
//! installed into a FRESH virtualenv under target/, as a user would install it: nothing
//! else in the venv (no gunicorn, no PasteDeploy), then `--version`, `python -m
//! ferrocorn`, a config file through `--print-config`, and `--check-config` that passes
//! and fails.
//!
//! The venv is made with the base interpreter of the project venv (`.venv`, or
//! `FERROCORN_VENV`), without pip; the project venv's pip installs the wheel into it
//! (`pip --python`). `FERROCORN_WHEELS` points at another wheel directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{TempDir, repo_root, venv};

fn run(program: &Path, args: &[&str], dir: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent-home")
        .env("PWD", dir)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The wheel for the project venv's interpreter.
fn wheel(python: &Path) -> PathBuf {
    let dir = std::env::var_os("FERROCORN_WHEELS")
        .map_or_else(|| repo_root().join("target/wheels/ferrocorn-dev"), PathBuf::from);
    let tag = text(
        &run(python, &["-c", "import sys; print('cp%d%d' % sys.version_info[:2])"], Path::new("/"))
            .stdout,
    );
    let tag = format!("-{}-", tag.trim());
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run scripts/install-ferrocorn.sh (scripts/test.sh does)",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("ferrocorn-") && name.contains(&tag) && name.ends_with(".whl")
        })
        .unwrap_or_else(|| panic!("no ferrocorn wheel for {tag} in {}", dir.display()))
}

#[test]
fn wheel_in_a_fresh_venv() {
    let project_python = venv().join("bin/python");
    assert!(
        project_python.exists(),
        "{} is missing: run scripts/setup-python.sh",
        project_python.display()
    );
    let wheel = wheel(&project_python);
    // Under target/, removed when the test ends, passed or failed.
    let scratch = TempDir::new_in(&repo_root().join("target"), "fresh-venv");
    let venv = scratch.0.clone();
    let venv_s = venv.to_string_lossy().into_owned();
    let o = run(&project_python, &["-m", "venv", "--without-pip", &venv_s], &repo_root());
    assert!(o.status.success(), "venv: {}", text(&o.stderr));
    let python = venv.join("bin/python");
    let o = run(
        &project_python,
        &[
            "-m",
            "pip",
            "--python",
            &python.to_string_lossy(),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--no-deps",
            &wheel.to_string_lossy(),
        ],
        &repo_root(),
    );
    assert!(o.status.success(), "pip install: {}", text(&o.stderr));

    let dir = venv.join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("app.py"),
        "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("server.conf.py"),
        "import os\nworkers = 2 + 1\nbind = ['127.0.0.1:%d' % 8123]\nraw_env = ['CWD=' + os.path.basename(os.getcwd())]\n\ndef on_starting(server):\n    pass\n",
    )
    .unwrap();
    let ferrocorn = venv.join("bin/ferrocorn");
    let version = concat!("ferrocorn (version ", env!("CARGO_PKG_VERSION"), ")\n");

    // Nothing but ferrocorn in there: it needs no gunicorn.
    let o = run(&python, &["-c", "import gunicorn"], &dir);
    assert!(!o.status.success(), "the fresh venv has gunicorn");

    let o = run(&ferrocorn, &["--version"], &dir);
    assert_eq!((o.status.code(), text(&o.stdout)), (Some(0), version.to_owned()));
    let o = run(&python, &["-m", "ferrocorn", "--version"], &dir);
    assert_eq!((o.status.code(), text(&o.stdout)), (Some(0), version.to_owned()));
    let o = run(&ferrocorn, &["--help"], &dir);
    assert!(text(&o.stdout).starts_with("usage: ferrocorn [OPTIONS] [APP_MODULE]\n"));

    let o = run(&ferrocorn, &["--print-config", "-c", "server.conf.py", "app:application"], &dir);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for want in [
        "workers                            = 3",
        "bind                               = ['127.0.0.1:8123']",
        "raw_env                            = ['CWD=project']",
        "on_starting                        = <on_starting()>",
        "default_proc_name                  = app:application",
    ] {
        assert!(out.lines().any(|l| l == want), "no {want:?} in:\n{out}");
    }

    let o = run(&ferrocorn, &["--check-config", "-c", "server.conf.py", "app:application"], &dir);
    assert_eq!(
        (o.status.code(), text(&o.stdout), text(&o.stderr)),
        (Some(0), String::new(), String::new())
    );
    let o = run(&ferrocorn, &["--check-config", "app:nosuch"], &dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).ends_with(
            "ferrocorn.errors.AppImportError: Failed to find attribute 'nosuch' in 'app'.\n"
        ),
        "{}",
        text(&o.stderr)
    );
    let o = run(&ferrocorn, &["--check-config", "-w", "-1", "app"], &dir);
    assert_eq!(
        (o.status.code(), text(&o.stderr)),
        (Some(1), "\nError: Value must be positive: -1\n".to_owned())
    );
}
