//! End-to-end: the installed `ferrocorn` Python package, in real virtualenvs with real
//! CPython (no mocks). Config files, hooks, precedence, application loading, PasteDeploy,
//! `--check-config` / `--print-config`, and the same smoke test under Debian's static
//! python3.
//!
//! `scripts/install-ferrocorn.sh` (run by `scripts/test.sh`) builds the package and
//! installs it into `.venv` and `target/debian-venv`; `FERROCORN_VENV` and
//! `FERROCORN_DEBIAN_VENV` point elsewhere. Expected texts were recorded from gunicorn
//! 27.0.1 by hand; where ferrocorn names its own exception class
//! (`ferrocorn.errors.AppImportError` for `gunicorn.errors.AppImportError`) the test says
//! so.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{TempDir, debian_venv, venv};

/// A fresh project directory holding `files`.
fn project(tag: &str, files: &[(&str, &str)]) -> TempDir {
    TempDir::with_files(&format!("py-{tag}"), files)
}

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs a program in `dir` with a clean environment plus `env`.
fn exec(dir: &Path, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent-home")
        .env("PWD", dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    Out {
        code: o.status.code().expect("exit code"),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

/// Runs the installed `ferrocorn` console script of the project venv.
fn ferrocorn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    exec(dir, &venv().join("bin/ferrocorn"), args, env)
}

/// The `name = value` line `--print-config` prints for a setting.
fn config_line(out: &str, name: &str) -> String {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in:\n{out}"))
        .split_once(" = ")
        .unwrap()
        .1
        .to_owned()
}

fn print_config(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["--print-config"];
    all.extend_from_slice(args);
    let o = ferrocorn(dir, &all, env);
    assert_eq!(o.code, 0, "{o:?}");
    o.stdout
}

const APP: &str = "\
def application(environ, start_response):
    start_response('200 OK', [])
    return [b'ok']

app = application
";

const VERSION: &str = concat!("ferrocorn (version ", env!("CARGO_PKG_VERSION"), ")\n");

// ---- the installed command ----

#[test]
fn version_from_console_script_and_python_m() {
    let dir = project("version", &[]);
    let o = ferrocorn(&dir, &["--version"], &[]);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, VERSION, ""));
    let o = exec(&dir, &venv().join("bin/python"), &["-m", "ferrocorn", "-v"], &[]);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, VERSION, ""));
    let o = ferrocorn(&dir, &["--help"], &[]);
    assert_eq!(o.code, 0);
    assert!(o.stdout.starts_with("usage: ferrocorn [OPTIONS] [APP_MODULE]\n"));
}

#[test]
fn sys_executable_is_the_venv_interpreter() {
    let conf = "import sys\nprint('exe', sys.executable)\nprint('prefix', sys.prefix)\n";
    let dir = project("exe", &[("c.py", conf), ("myapp.py", APP)]);
    let o = ferrocorn(&dir, &["-c", "c.py", "--check-config", "myapp"], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let v = venv();
    assert_eq!(
        o.stdout,
        format!("exe {}\nprefix {}\n", v.join("bin/python").display(), v.display())
    );
}

#[test]
fn unsupported_settings_refuse_to_serve() {
    let dir = project("serve", &[("myapp.py", APP)]);
    let o = ferrocorn(&dir, &["myapp", "--protocol", "uwsgi"], &[]);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr,
        "\nError: ferrocorn does not support these gunicorn settings yet: protocol (command line) (see docs/settings.md)\n"
    );
    // The same from a config file.
    let dir =
        project("serve-conf", &[("myapp.py", APP), ("gunicorn.conf.py", "protocol = 'uwsgi'\n")]);
    let o = ferrocorn(&dir, &["myapp"], &[]);
    assert!(
        o.stderr.contains("does not support these gunicorn settings yet: protocol (config file "),
        "{o:?}"
    );
}

// ---- config files ----

#[test]
fn config_file_is_real_python() {
    let conf = "\
import multiprocessing
import os
import sys
from helpers import port

workers = multiprocessing.cpu_count() * 2 + 1
bind = [f'127.0.0.1:{port()}', 'unix:' + os.path.join('/tmp', 'x.sock')]
WORKERS = 99          # not a setting name: ignored
threads = len('abcd')
proc_name = __name__
raw_env = ['A=1', 'B=2']
secure_scheme_headers = {'X-PROTO': 'https'}
print('registered', '__config__' in sys.modules)
";
    let dir = project(
        "real",
        &[("c.py", conf), ("helpers.py", "def port():\n    return 8000 + 80\n"), ("myapp.py", APP)],
    );
    let out = print_config(&dir, &["-c", "c.py", "myapp"], &[]);
    let cpus = exec(
        &dir,
        &venv().join("bin/python"),
        &["-c", "import multiprocessing; print(multiprocessing.cpu_count())"],
        &[],
    );
    let cpus: i64 = cpus.stdout.trim().parse().unwrap();
    assert!(out.starts_with("registered True\n"), "{out}");
    assert_eq!(config_line(&out, "workers"), (cpus * 2 + 1).to_string());
    assert_eq!(config_line(&out, "bind"), "['127.0.0.1:8080', 'unix:/tmp/x.sock']");
    assert_eq!(config_line(&out, "threads"), "4");
    assert_eq!(config_line(&out, "proc_name"), "__config__");
    assert_eq!(config_line(&out, "raw_env"), "['A=1', 'B=2']");
    assert_eq!(config_line(&out, "secure_scheme_headers"), "{'X-PROTO': 'https'}");
    assert_eq!(config_line(&out, "config"), "c.py");
}

#[test]
fn default_config_file_and_its_location_forms() {
    let dir = project(
        "forms",
        &[
            ("gunicorn.conf.py", "workers = 2\n"),
            ("other.py", "workers = 3\n"),
            ("confmod.py", "workers = 4\n"),
            ("pkg/__init__.py", ""),
            ("pkg/settings.py", "workers = 5\n"),
            ("myapp.py", APP),
        ],
    );
    let w = |args: &[&str]| config_line(&print_config(&dir, args, &[]), "workers");
    assert_eq!(w(&["myapp"]), "2");
    assert_eq!(w(&["-c", "other.py", "myapp"]), "3");
    assert_eq!(w(&["-c", "file:other.py", "myapp"]), "3");
    assert_eq!(w(&["-c", "python:confmod", "myapp"]), "4");
    assert_eq!(w(&["--config", "python:pkg.settings", "myapp"]), "5");
}

#[test]
fn config_file_errors_as_gunicorn() {
    let dir = project(
        "errors",
        &[
            ("bad.py", "workers = (\n"),
            ("raise.py", "import os\nraise ValueError('boom')\n"),
            ("badvalue.py", "workers = 'many'\n"),
            ("myapp.py", APP),
        ],
    );
    for loc in ["nothere.py", "file:nothere.py"] {
        let o = ferrocorn(&dir, &["-c", loc, "myapp"], &[]);
        assert_eq!(
            (o.code, o.stdout.as_str(), o.stderr.as_str()),
            (1, "", "\nError: 'nothere.py' doesn't exist\n")
        );
    }
    let o = ferrocorn(&dir, &["-c", "python:nomod", "myapp"], &[]);
    assert_eq!((o.code, o.stderr.as_str()), (1, "\nError: No module named 'nomod'\n"));

    let o = ferrocorn(&dir, &["-c", "bad.py", "myapp"], &[]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.starts_with(
            "Failed to read config file: bad.py\nTraceback (most recent call last):\n"
        ),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("bad.py\", line 1\n    workers = (\n"), "{}", o.stderr);
    assert!(o.stderr.ends_with("\nSyntaxError: '(' was never closed\n"), "{}", o.stderr);

    let o = ferrocorn(&dir, &["-c", "file:raise.py", "myapp"], &[]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.starts_with("Failed to read config file: raise.py\nTraceback"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.ends_with(
            "raise.py\", line 2, in <module>\n    raise ValueError('boom')\nValueError: boom\n"
        ),
        "{}",
        o.stderr
    );

    let o = ferrocorn(&dir, &["-c", "badvalue.py", "myapp"], &[]);
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            1,
            "Invalid value for workers: many\n\n\nError: invalid literal for int() with base 0: 'many'\n"
        )
    );
}

#[test]
fn non_py_config_prints_the_banner_and_still_runs() {
    let dir = project("banner", &[("conf.txt", "workers = 3\nprint('ran')\n"), ("myapp.py", APP)]);
    let o = ferrocorn(&dir, &["-c", "conf.txt", "--print-config", "myapp"], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stderr,
        "!!!\n!!! WARNING: configuration file should have a valid Python extension.\n!!!\n\n"
    );
    assert!(o.stdout.starts_with("ran\n"));
    assert_eq!(config_line(&o.stdout, "workers"), "3");
}

// ---- hooks ----

#[test]
fn hooks_are_checked_for_callability_and_arity() {
    let conf = "\
def on_starting(server, *args, key=None, **kw):
    pass
def pre_fork(server, worker=None):
    pass
class Abort:
    def __call__(self, worker):
        pass
worker_abort = Abort()
def post_request(worker, req):
    pass
when_ready = 'os.path.exists'
";
    let dir = project("hooks", &[("c.py", conf), ("myapp.py", APP)]);
    let out = print_config(&dir, &["-c", "c.py", "myapp"], &[]);
    assert_eq!(config_line(&out, "on_starting"), "<on_starting()>");
    assert_eq!(config_line(&out, "pre_fork"), "<pre_fork()>");
    assert_eq!(config_line(&out, "worker_abort"), "<Abort()>");
    assert_eq!(config_line(&out, "when_ready"), "<exists()>");
    // gunicorn wraps a 2- or 3-argument post_request in a lambda and shows that.
    assert_eq!(config_line(&out, "post_request"), "<validate_post_request.<locals>.<lambda>()>");
    assert_eq!(config_line(&out, "post_fork"), "<Postfork.post_fork()>");

    for (arity, ok) in [(1, false), (2, true), (3, true), (4, true), (5, false)] {
        let params: Vec<String> = (0..arity).map(|i| format!("a{i}")).collect();
        let conf = format!("def post_request({}):\n    pass\n", params.join(", "));
        let dir = project("post-request", &[("c.py", &conf), ("myapp.py", APP)]);
        let o = ferrocorn(&dir, &["-c", "c.py", "--print-config", "myapp"], &[]);
        if ok {
            assert_eq!(o.code, 0, "{arity}: {o:?}");
            let want = if arity == 4 {
                "<post_request()>"
            } else {
                "<validate_post_request.<locals>.<lambda>()>"
            };
            assert_eq!(config_line(&o.stdout, "post_request"), want);
        } else {
            assert_eq!(o.code, 1);
            assert!(
                o.stderr
                    .starts_with("Invalid value for post_request: <function post_request at 0x"),
                "{}",
                o.stderr
            );
            assert!(o.stderr.ends_with(">\n\n\nError: Value must have an arity of: 4\n"));
        }
    }

    let bad = [
        (
            "def on_starting(a, b):\n    pass\n",
            "<function on_starting at 0x",
            "Value must have an arity of: 1",
        ),
        ("on_starting = 3\n", "3", "Value is not callable: 3"),
        ("on_starting = 'nosuchmod.func'\n", "nosuchmod.func", "No module named 'nosuchmod'"),
        ("on_starting = 'os.path.nope'\n", "os.path.nope", "Can not load 'nope' from 'os.path'"),
        (
            "on_starting = 'noimportstring'\n",
            "noimportstring",
            "Value 'noimportstring' is not import string. Format: module[.submodules...].object",
        ),
        (
            "def nworkers_changed(server, new):\n    pass\n",
            "<function nworkers_changed at 0x",
            "Value must have an arity of: 3",
        ),
    ];
    for (conf, shown, msg) in bad {
        let dir = project("bad-hook", &[("c.py", conf), ("myapp.py", APP)]);
        let o = ferrocorn(&dir, &["-c", "c.py", "--check-config", "myapp"], &[]);
        assert_eq!(o.code, 1, "{conf}");
        let setting = conf.trim_start_matches("def ").split(['(', ' ']).next().unwrap();
        assert!(
            o.stderr.starts_with(&format!("Invalid value for {setting}: {shown}")),
            "{conf}: {}",
            o.stderr
        );
        assert!(o.stderr.ends_with(&format!("\n\n\nError: {msg}\n")), "{conf}: {}", o.stderr);
    }
}

// ---- precedence and the application from the config ----

#[test]
fn precedence_defaults_config_env_cli() {
    let dir = project(
        "precedence",
        &[
            ("c.py", "workers = 3\nbind = ['127.0.0.1:1']\n"),
            ("env.py", "workers = 4\n"),
            ("myapp.py", APP),
        ],
    );
    let w = |args: &[&str], env: &[(&str, &str)]| {
        let out = print_config(&dir, args, env);
        (config_line(&out, "workers"), config_line(&out, "bind"))
    };
    assert_eq!(w(&["myapp"], &[("WEB_CONCURRENCY", "2")]).0, "2");
    assert_eq!(w(&["-c", "c.py", "myapp"], &[("WEB_CONCURRENCY", "2")]).0, "3");
    assert_eq!(w(&["-c", "c.py", "myapp"], &[("GUNICORN_CMD_ARGS", "--workers 5")]).0, "5");
    assert_eq!(
        w(&["-c", "c.py", "-w", "6", "myapp"], &[("GUNICORN_CMD_ARGS", "--workers 5")]).0,
        "6"
    );
    // `-c` inside GUNICORN_CMD_ARGS is used when the command line has none.
    assert_eq!(w(&["myapp"], &[("GUNICORN_CMD_ARGS", "-c env.py")]).0, "4");
    assert_eq!(w(&["-c", "c.py", "myapp"], &[("GUNICORN_CMD_ARGS", "-c env.py")]).0, "3");
    // An append flag replaces the list from the config file.
    assert_eq!(
        w(&["-c", "c.py", "-b", "127.0.0.1:2", "myapp"], &[("PORT", "9")]).1,
        "['127.0.0.1:2']"
    );
    assert_eq!(w(&["-c", "c.py", "myapp"], &[("PORT", "9")]).1, "['127.0.0.1:1']");
}

#[test]
fn wsgi_app_from_the_config_file() {
    let dir = project(
        "wsgi-app",
        &[
            ("c.py", "wsgi_app = 'myapp:app'\n"),
            ("bad.py", "wsgi_app = 'myapp:nope'\n"),
            ("myapp.py", APP),
        ],
    );
    let o = ferrocorn(&dir, &["-c", "c.py", "--check-config"], &[]);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    let o = ferrocorn(&dir, &["-c", "bad.py", "--check-config"], &[]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.ends_with("AppImportError: Failed to find attribute 'nope' in 'myapp'.\n"));
    // The positional APP wins over wsgi_app.
    let o = ferrocorn(&dir, &["-c", "bad.py", "--check-config", "myapp"], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let dir = project("no-app", &[]);
    let o = ferrocorn(&dir, &["--check-config"], &[]);
    assert_eq!((o.code, o.stderr.as_str()), (1, "\nError: No application module specified.\n"));
}

// ---- application loading ----

const FACTORIES: &str = "\
def application(environ, start_response):
    pass

app = application
notcall = 3
none = None

def create():
    return application

def create_with(name, debug=False, *, extra=None):
    print('factory', repr(name), debug, extra)
    return application

def factory(a, b=2):
    return application

def bad_factory():
    raise TypeError('inside')
";

#[test]
fn every_app_form_loads() {
    let dir = project(
        "forms-app",
        &[("myapp.py", FACTORIES), ("pkg/__init__.py", ""), ("pkg/wsgi.py", APP)],
    );
    for app in
        ["myapp", "myapp:app", "myapp:application", "myapp:create()", "pkg.wsgi", "pkg.wsgi:app"]
    {
        let o = ferrocorn(&dir, &["--check-config", app], &[]);
        assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, "", ""), "{app}");
    }
    let o = ferrocorn(
        &dir,
        &["--check-config", "myapp:create_with('x', debug=True, extra=[1, {'k': (2,)}])"],
        &[],
    );
    assert_eq!((o.code, o.stdout.as_str()), (0, "factory 'x' True [1, {'k': (2,)}]\n"), "{o:?}");
}

const LOAD_ERROR: &str = "\nError while loading the application:\n\n";

/// Runs `--check-config APP` and returns the last line of the traceback.
fn load_error(dir: &Path, app: &str) -> String {
    let o = ferrocorn(dir, &["--check-config", app], &[]);
    assert_eq!(o.code, 1, "{app}: {o:?}");
    assert!(o.stderr.starts_with(LOAD_ERROR), "{app}: {}", o.stderr);
    assert!(o.stderr.ends_with('\n'));
    o.stderr.lines().last().unwrap().to_owned()
}

#[test]
fn every_app_loading_error_as_gunicorn() {
    let dir = project(
        "app-errors",
        &[("myapp.py", FACTORIES), ("broken.py", "raise RuntimeError('import boom')\n")],
    );
    // gunicorn 27 prints `gunicorn.errors.AppImportError: ...`.
    let app_import = [
        ("myapp:nope", "Failed to find attribute 'nope' in 'myapp'."),
        ("myapp:notcall", "Application object must be callable."),
        ("myapp:none", "Failed to find application object: 'none'"),
        ("myapp:factory()", "TypeError: factory() missing 1 required positional argument: 'a'"),
        (
            "myapp:factory(1,2,3)",
            "TypeError: factory() takes from 1 to 2 positional arguments but 3 were given",
        ),
        ("myapp:factory(x)", "Failed to parse arguments as literal values: 'factory(x)'"),
        ("myapp:a.b", "Failed to parse 'a.b' as an attribute name or function call."),
        ("myapp:a+", "Failed to parse 'a+' as an attribute name or function call."),
        ("myapp:factory(1)(2)", "Function reference must be a simple name: 'factory(1)(2)'"),
    ];
    for (app, msg) in app_import {
        assert_eq!(
            load_error(&dir, app),
            format!("ferrocorn.errors.AppImportError: {msg}"),
            "{app}"
        );
    }
    // Not AppImportError: the module does not import, or the factory itself raised.
    let others = [
        ("myapp.py", "ImportError: Failed to find application, did you mean 'myapp:application'?"),
        ("myapp.py:app", "ImportError: Failed to find application, did you mean 'myapp:app'?"),
        ("nosuch", "ModuleNotFoundError: No module named 'nosuch'"),
        ("nosuch:app", "ModuleNotFoundError: No module named 'nosuch'"),
        ("broken", "RuntimeError: import boom"),
        ("myapp:bad_factory()", "TypeError: inside"),
    ];
    for (app, last) in others {
        assert_eq!(load_error(&dir, app), last, "{app}");
    }
    // A traceback through Python frames is printed whole.
    let o = ferrocorn(&dir, &["--check-config", "broken"], &[]);
    assert!(o.stderr.contains("Traceback (most recent call last):\n"), "{}", o.stderr);
    assert!(o.stderr.contains("broken.py\", line 1, in <module>\n"), "{}", o.stderr);
}

#[test]
fn pythonpath_chdir_and_env_apply_before_the_import() {
    let needs_env = "\
import os
if os.environ.get('FOO') != 'bar':
    raise RuntimeError('FOO is %r' % os.environ.get('FOO'))
print('cwd', os.getcwd())
def application(environ, start_response):
    pass
";
    let dir = project(
        "paths",
        &[
            ("extra/inextra.py", APP),
            ("more/inmore.py", APP),
            ("sub/insub.py", needs_env),
            ("envconf.py", "raw_env = ['FOO=bar']\n"),
        ],
    );
    let o = ferrocorn(&dir, &["--check-config", "inextra"], &[]);
    assert_eq!(o.code, 1);
    let o = ferrocorn(&dir, &["--check-config", "--pythonpath", "extra", "inextra"], &[]);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    let o = ferrocorn(&dir, &["--check-config", "--pythonpath", "more,extra", "inmore:app"], &[]);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));

    let sub = dir.join("sub");
    let o = ferrocorn(&dir, &["--check-config", "--chdir", "sub", "insub"], &[]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.ends_with("RuntimeError: FOO is None\n"), "{}", o.stderr);
    let o = ferrocorn(&dir, &["--check-config", "--chdir", "sub", "-e", "FOO=bar", "insub"], &[]);
    assert_eq!((o.code, o.stdout.clone()), (0, format!("cwd {}\n", sub.display())), "{o:?}");
    let o =
        ferrocorn(&dir, &["--check-config", "-c", "envconf.py", "--chdir", "sub", "insub"], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let o = ferrocorn(
        &dir,
        &["--check-config", "--chdir", "sub", "insub"],
        &[("GUNICORN_CMD_ARGS", "--env FOO=bar")],
    );
    assert_eq!(o.code, 0, "{o:?}");
    let o = ferrocorn(&dir, &["--check-config", "-e", "FOO", "inextra"], &[]);
    assert_eq!((o.code, o.stderr.as_str()), (1, "\nError: environment setting 'FOO' invalid\n"));
}

#[test]
fn paste_deploy_applications() {
    let ini = "\
[DEFAULT]
shared = yes

[app:main]
use = call:pasteapp:factory
greeting = hello

[app:other]
use = call:pasteapp:factory
greeting = other
";
    let factory = "\
def app(environ, start_response):
    pass

def factory(global_config, **local_conf):
    g = sorted((k, v) for k, v in global_config.items() if k not in ('__file__', 'here'))
    print('paste', g, sorted(local_conf.items()))
    return app
";
    let dir = project("paste", &[("app.ini", ini), ("pasteapp.py", factory)]);
    let o = ferrocorn(
        &dir,
        &["--check-config", "--paste", "app.ini", "--paste-global", "FOO=bar"],
        &[],
    );
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, "paste [('FOO', 'bar'), ('shared', 'yes')] [('greeting', 'hello')]\n", ""),
    );
    let o = ferrocorn(&dir, &["--check-config", "--paste", "app.ini#other"], &[]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "paste [('shared', 'yes')] [('greeting', 'other')]\n"),
        "{o:?}"
    );
    let out = print_config(&dir, &["--paste", "app.ini"], &[]);
    let ini_path = dir.join("app.ini");
    assert_eq!(config_line(&out, "default_proc_name"), ini_path.display().to_string());
    let o = ferrocorn(&dir, &["--check-config", "--paste", "nothere.ini"], &[]);
    assert_eq!(
        (o.code, o.stderr),
        (1, format!("\nError: '{}' not found\n", dir.join("nothere.ini").display()))
    );
    let o = ferrocorn(&dir, &["--check-config", "--paste", "app.ini#missing"], &[]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.starts_with(LOAD_ERROR), "{}", o.stderr);
    assert!(o.stderr.lines().last().unwrap().starts_with("LookupError: "), "{}", o.stderr);
}

#[test]
fn check_and_print_config_import_the_app() {
    let printing = "print('imported')\ndef application(environ, start_response):\n    pass\n";
    let dir = project("check", &[("myapp.py", printing)]);
    let o = ferrocorn(&dir, &["--check-config", "myapp"], &[]);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, "imported\n", ""));
    // The configuration is printed first, then the application is imported.
    let o = ferrocorn(&dir, &["--print-config", "myapp"], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout.lines().count(), 121);
    assert!(o.stdout.starts_with("access_log_format "));
    assert!(o.stdout.ends_with("\nimported\n"));
    // A failing import: the configuration is still printed, the error follows, exit 1.
    let o = ferrocorn(&dir, &["--print-config", "myapp:nope"], &[]);
    assert_eq!(o.code, 1);
    assert!(o.stdout.contains("\nworkers                            = 1\n"));
    assert!(o.stderr.starts_with(LOAD_ERROR));
}

// ---- other interpreters ----

/// `home` of a venv's pyvenv.cfg: the directory of its base interpreter.
fn base_python(venv: &Path) -> PathBuf {
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).unwrap();
    let home = cfg.lines().find_map(|l| l.strip_prefix("home = ")).expect("home in pyvenv.cfg");
    Path::new(home.trim()).join("python3")
}

fn site_packages(venv: &Path) -> PathBuf {
    let lib = venv.join("lib");
    let py = std::fs::read_dir(&lib)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("python3"))
        .expect("lib/python3.X");
    py.join("site-packages")
}

/// The smoke test every interpreter passes: version, config file, app, check-config,
/// and `sys.executable` is the interpreter that runs the command.
fn smoke(tag: &str, python: &Path, launcher: &[&str], env: &[(&str, &str)]) {
    let conf = "import sys, multiprocessing\nworkers = multiprocessing.cpu_count() + 1\nprint('exe', sys.executable)\n";
    let dir = project(tag, &[("gunicorn.conf.py", conf), ("myapp.py", FACTORIES)]);
    let cmd = |args: &[&str]| {
        let mut all: Vec<&str> = launcher[1..].to_vec();
        all.extend_from_slice(args);
        exec(&dir, Path::new(launcher[0]), &all, env)
    };
    let o = cmd(&["--version"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, VERSION), "{tag}: {o:?}");
    let o = cmd(&["--check-config", "myapp:create()"]);
    assert_eq!(
        (o.code, o.stdout.clone(), o.stderr.as_str()),
        (0, format!("exe {}\n", python.display()), ""),
        "{tag}"
    );
    assert_eq!(
        load_line(&cmd(&["--check-config", "myapp:nope"])),
        "ferrocorn.errors.AppImportError: Failed to find attribute 'nope' in 'myapp'."
    );
}

fn load_line(o: &Out) -> String {
    assert_eq!(o.code, 1, "{o:?}");
    o.stderr.lines().last().unwrap().to_owned()
}

#[test]
fn pyenv_python_inside_and_outside_the_venv() {
    let v = venv();
    let py = v.join("bin/python");
    let script = v.join("bin/ferrocorn");
    // Called by path, no VIRTUAL_ENV (as systemd or a Dockerfile would).
    smoke("pyenv-path", &py, &[script.to_str().unwrap()], &[]);
    // An activated venv.
    let path = format!("{}:/usr/bin:/bin", v.join("bin").display());
    smoke(
        "pyenv-active",
        &py,
        &["/usr/bin/env", "ferrocorn"],
        &[("VIRTUAL_ENV", v.to_str().unwrap()), ("PATH", &path)],
    );
    smoke("pyenv-m", &py, &[py.to_str().unwrap(), "-m", "ferrocorn"], &[]);
    // The base interpreter, outside any venv, importing the package from PYTHONPATH.
    let base = base_python(&v);
    let sp = site_packages(&v);
    smoke(
        "pyenv-base",
        &base,
        &[base.to_str().unwrap(), "-m", "ferrocorn"],
        &[("PYTHONPATH", sp.to_str().unwrap())],
    );
}

#[test]
fn debian_static_python_inside_and_outside_the_venv() {
    let v = debian_venv();
    let py = v.join("bin/python");
    let o = exec(
        &v,
        &py,
        &["-c", "import sysconfig, sys; print(sys.version_info[:2] >= (3, 10))"],
        &[],
    );
    assert_eq!(o.stdout, "True\n");
    let script = v.join("bin/ferrocorn");
    smoke("debian-path", &py, &[script.to_str().unwrap()], &[]);
    smoke("debian-m", &py, &[py.to_str().unwrap(), "-m", "ferrocorn"], &[]);
    let path = format!("{}:/usr/bin:/bin", v.join("bin").display());
    smoke(
        "debian-active",
        &py,
        &["/usr/bin/env", "ferrocorn"],
        &[("VIRTUAL_ENV", v.to_str().unwrap()), ("PATH", &path)],
    );
    let sp = site_packages(&v);
    smoke(
        "debian-base",
        Path::new("/usr/bin/python3"),
        &["/usr/bin/python3", "-m", "ferrocorn"],
        &[("PYTHONPATH", sp.to_str().unwrap())],
    );
}

#[test]
fn system_exit_ends_the_process_as_in_python() {
    // gunicorn catches `Exception` only: sys.exit() in a config file or at import time
    // ends the process with Python's own exit status and message.
    let dir = project(
        "sys-exit",
        &[
            ("exit3.py", "import sys\nsys.exit(3)\n"),
            ("exitapp.py", "import sys\nsys.exit('bye')\n"),
            ("myapp.py", APP),
        ],
    );
    let o = ferrocorn(&dir, &["-c", "exit3.py", "myapp"], &[]);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (3, "", ""));
    let o = ferrocorn(&dir, &["--check-config", "exitapp"], &[]);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (1, "", "bye\n"));
}
