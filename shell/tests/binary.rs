//! End-to-end: the built `ferrocorn` binary, its output and exit codes.

use std::path::Path;
use std::process::{Command, Output};

#[path = "../../tests/e2e/support/scratch.rs"]
mod scratch;
use scratch::TempDir;

/// An empty working directory, so no `gunicorn.conf.py` is picked up by accident.
fn workdir(tag: &str) -> TempDir {
    TempDir::new(&format!("bin-{tag}"))
}

fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrocorn"));
    cmd.args(args).current_dir(dir).env_clear().env("HOME", "/nonexistent-home");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ferrocorn")
}

fn run(tag: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let o = run_in(&workdir(tag), args, env);
    (
        o.status.code().expect("exit code"),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

#[test]
fn version_and_help_exit_0() {
    assert_eq!(
        run("version", &["--version"], &[]),
        (0, "ferrocorn (version 0.1.0)\n".into(), String::new())
    );
    assert_eq!(run("version-short", &["-v"], &[]).1, "ferrocorn (version 0.1.0)\n");
    let (code, out, err) = run("help", &["--help"], &[]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.starts_with("usage: ferrocorn [OPTIONS] [APP_MODULE]\n"));
    assert!(out.contains("--limit-request-field_size INT"));
}

#[test]
fn argparse_errors_exit_2() {
    let usage = "usage: ferrocorn [OPTIONS] [APP_MODULE]\n";
    assert_eq!(
        run("bad-int", &["-w", "x", "app"], &[]),
        (
            2,
            String::new(),
            format!("{usage}ferrocorn: error: argument -w/--workers: invalid int value: 'x'\n")
        )
    );
    assert_eq!(
        run("bad-flag", &["--nope", "app"], &[]),
        (2, String::new(), format!("{usage}ferrocorn: error: unrecognized arguments: --nope\n"))
    );
    assert_eq!(
        run("env-flag", &["app"], &[("GUNICORN_CMD_ARGS", "--nope")]),
        (2, String::new(), format!("{usage}ferrocorn: error: unrecognized arguments: --nope\n"))
    );
}

/// `(argv, environment, expected message)`.
type ErrorCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn validation_errors_exit_1_with_one_error_line() {
    let cases: &[ErrorCase<'_>] = &[
        (&["-w", "-1", "app"], &[], "Value must be positive: -1"),
        (&["--proxy-protocol", "app:app"], &[], "proxy_protocol must be: off, v1, v2, or auto"),
        (&["--header-map", "x", "app"], &[], "Invalid header map behaviour: x"),
        (&["--forwarded-allow-ips", "1.2.3.4/24", "app"], &[], "1.2.3.4/24 has host bits set"),
        (
            &["--chdir", "/nonexistent-ferrocorn", "app"],
            &[],
            "can't chdir to '/nonexistent-ferrocorn'",
        ),
        (&["-u", "no-such-user-ferrocorn", "app"], &[], "No such user: 'no-such-user-ferrocorn'"),
        (&["--reload-engine", "x", "app"], &[], "Invalid reload_engine: 'x'"),
        (&["--cert-reqs", "x", "app"], &[], "invalid literal for int() with base 0: 'x'"),
        (&["-c", "missing.py", "app"], &[], "'missing.py' doesn't exist"),
        (&["-w", "2"], &[], "No application module specified."),
        (&["app"], &[("GUNICORN_CMD_ARGS", "'open")], "No closing quotation"),
        (&["app"], &[("WEB_CONCURRENCY", "-2")], "Value must be positive: -2"),
    ];
    for (i, (args, env, msg)) in cases.iter().enumerate() {
        let got = run(&format!("invalid-{i}"), args, env);
        assert_eq!(got, (1, String::new(), format!("\nError: {msg}\n")), "{args:?} {env:?}");
    }
}

#[test]
fn print_config_exits_0() {
    let (code, out, err) =
        run("print", &["--print-config", "app:app", "-w", "3"], &[("PORT", "9000")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\nbind                               = ['0.0.0.0:9000']\n"));
    assert!(out.contains("\nworkers                            = 3\n"));
    assert!(out.contains("\ndefault_proc_name                  = app:app\n"));
    assert_eq!(out.lines().count(), 120);
    assert!(err.contains("not imported"), "{err}");
}

#[test]
fn config_files_are_refused_until_python_lands() {
    let dir = workdir("conf");
    std::fs::write(dir.join("gunicorn.conf.py"), "workers = 2\n").unwrap();
    let o = run_in(&dir, &["app"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.starts_with("\nError: cannot read config file "), "{err}");
    assert!(err.contains("Python runtime"), "{err}");
}

#[test]
fn serving_needs_the_python_package() {
    assert_eq!(
        run("serve", &["app:app"], &[]),
        (
            1,
            String::new(),
            "\nError: this ferrocorn binary does not embed Python and cannot serve an application; install the ferrocorn Python package (pip install ./shell)\n".into()
        )
    );
    let (code, _, err) =
        run("unsupported", &["app:app", "--dirty-workers", "2", "--asgi-loop", "uvloop"], &[]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "\nError: ferrocorn does not support these gunicorn settings yet: asgi_loop (command line), dirty_workers (command line) (see docs/settings.md)\n"
    );
}
