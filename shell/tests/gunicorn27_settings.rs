//! Differential test of the settings against gunicorn 27.0.1: the same `--print-config`
//! command run by `.venv/bin/gunicorn` and by the installed `ferrocorn`, in the same
//! directory with the same environment and an importable dummy application.
//!
//! The matrix:
//! - the command line, generated from the settings table ([`SETTINGS`]): every flag of
//!   every setting with valid values and with invalid ones (argparse errors, validator
//!   errors), aliases included, so a new setting is covered as soon as it is in the table;
//! - config files, generated: every setting given a valid value (one file per section)
//!   and, one file per setting, a value of the wrong type; and written by hand: computed
//!   values, imports, hooks (functions, lambdas, import strings, wrong arity), lists,
//!   dicts, ignored names, `python:` modules, files that fail;
//! - `GUNICORN_CMD_ARGS`, and the environment variables gunicorn reads (`PORT`,
//!   `WEB_CONCURRENCY`, `FORWARDED_ALLOW_IPS`, `SENDFILE`, `SCRIPT_NAME`).
//!
//! Compared: stdout line by line (the resolved value of every setting), the exit code,
//! and the last non-empty stderr line (the error, or the last warning). Normalised before
//! comparing, and only these (see [`normalise`]):
//! - N1 program name: argparse prefixes its errors with the program's name
//!   (`gunicorn: error: ...` / `ferrocorn: error: ...`); that is `argv[0]`, not a
//!   behaviour.
//! - N2 exception module: a traceback's last line names the exception class by module;
//!   ferrocorn raises `ferrocorn.errors.AppImportError` where gunicorn raises
//!   `gunicorn.errors.AppImportError` (same message). A package cannot define classes in
//!   another package's namespace.
//! - N3 `--version`: each program prints its own name and version.
//!
//! Every remaining difference is listed, with its reason, in
//! tests/gunicorn27-settings-divergences.toml (and docs/compat.md, "Settings"). The test
//! fails on a difference that is not listed, on a listed case that no longer differs, and
//! on a listed case that is not in the matrix. Cases run in parallel, one process pair per
//! case.

#[path = "../../tests/e2e/support/scratch.rs"]
mod scratch;
#[path = "../../tests/e2e/support/venv.rs"]
mod venv;
use scratch::TempDir;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ferrocorn::settings::{Action, CliType, SETTINGS, Section, Setting, Validator};
use venv::oracle_venv;

// ---- the project every case runs in ----

const APP: &str = "\
def application(environ, start_response):
    start_response('200 OK', [])
    return [b'ok']

app = application

def create_app(name='x'):
    return application
";

const PASTE_INI: &str = "\
[app:main]
paste.app_factory = pasteapp:factory
";

const PASTE_APP: &str = "\
def factory(global_conf, **local):
    from app import application
    return application
";

/// Files every case directory holds (a case adds its own).
const BASE_FILES: &[(&str, &str)] = &[
    ("app.py", APP),
    ("app.ini", PASTE_INI),
    ("pasteapp.py", PASTE_APP),
    ("conf.py", "workers = 3\nbind = ['127.0.0.1:9100']\n"),
    ("mysettings.py", "W = 6\nworkers = 4\ntimeout = 12\n"),
    (
        "hooks.py",
        "def started(server):\n    pass\n\n\ndef two(worker, req):\n    pass\n\n\nvalue = 3\n",
    ),
    ("sub/marker.txt", ""),
    ("other/marker.txt", ""),
];

#[derive(Clone, Debug)]
struct Case {
    id: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    files: Vec<(String, String)>,
}

impl Case {
    fn new(id: impl Into<String>, args: &[&str]) -> Case {
        Case {
            id: id.into(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            env: Vec::new(),
            files: Vec::new(),
        }
    }

    fn env(mut self, k: &str, v: &str) -> Case {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    fn file(mut self, name: &str, text: &str) -> Case {
        self.files.push((name.to_owned(), text.to_owned()));
        self
    }
}

// ---- values for each setting ----

/// Command-line samples for a setting: `(valid, invalid)`, each a list of argument
/// vectors (the flag included). Chosen by name where the setting has a meaning of its
/// own, else by validator and argparse type.
fn cli_samples(s: &Setting) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let flag = s.cli[0];
    let alias = *s.cli.last().unwrap_or(&flag);
    let one = |f: &str, v: &str| vec![f.to_owned(), v.to_owned()];
    let eq = |f: &str, v: &str| vec![format!("{f}={v}")];
    let values = |vs: &[&str]| vs.iter().map(|v| one(flag, v)).collect::<Vec<_>>();
    let bad = |vs: &[&str]| vs.iter().map(|v| one(alias, v)).collect::<Vec<_>>();
    if s.is_switch() {
        let mut valid = vec![vec![flag.to_owned()]];
        if alias != flag {
            valid.push(vec![alias.to_owned()]);
        }
        return (valid, vec![eq(alias, "yes")]);
    }
    // argparse's two ways to refuse an int, taken in turn by the int settings.
    let position = SETTINGS.iter().position(|x| x.name == s.name).unwrap_or(0);
    let not_an_int = if position % 2 == 0 { "abc" } else { "0x10" };
    match s.name {
        "config" => (
            vec![one(flag, "conf.py"), one(alias, "file:conf.py"), one(flag, "python:mysettings")],
            vec![one(flag, "missing.py"), one(flag, "python:nosuchmodule")],
        ),
        "bind" => (
            vec![vec![
                flag.into(),
                "0.0.0.0:9000".into(),
                alias.into(),
                "unix:/tmp/ferrocorn-x.sock".into(),
            ]],
            vec![],
        ),
        "paste" => (vec![one(flag, "app.ini")], vec![one(alias, "missing.ini")]),
        "chdir" => (vec![one(flag, "sub")], vec![one(flag, "missing-dir")]),
        "pythonpath" => (values(&["sub,other"]), vec![]),
        "user" => (values(&["0", "root"]), bad(&["nosuchuser"])),
        "group" => (values(&["0", "root"]), bad(&["nosuchgroup"])),
        "reload_extra_files" => (
            vec![vec![flag.into(), "app.py".into(), flag.into(), "*.nomatch".into()]],
            bad(&["missing.txt"]),
        ),
        "worker_class" => (values(&["gthread", "gevent", "mypkg.MyWorker"]), vec![]),
        "logger_class" => (values(&["simple"]), vec![]),
        "proxy_protocol" => {
            (vec![eq(flag, "v1"), eq(flag, "true"), vec![flag.to_owned()]], vec![eq(flag, "v9")])
        }
        "http_protocols" => (values(&["h1"]), bad(&["h1,h1", "h5", "h2"])),
        "ssl_version" => (values(&["2", "TLSv1_2"]), vec![]),
        "statsd_host" => (
            values(&["localhost:9125", "unix:///tmp/statsd.sock", "unix:9999"]),
            bad(&["localhost:port"]),
        ),
        "umask" | "control_socket_mode" => (values(&["0022", "18"]), bad(&["9z", "-1"])),
        "http2_max_frame_size" => (values(&["32768"]), bad(&["100"])),
        "http2_initial_window_size" => (values(&["1048576"]), bad(&["2147483648"])),
        "http2_max_concurrent_streams" => (values(&["5"]), bad(&["0"])),
        "raw_env" => (vec![vec![flag.into(), "A=1".into(), alias.into(), "B=x=y".into()]], vec![]),
        "raw_paste_global_conf" => (vec![one(flag, "k\\=1=v")], vec![]),
        "dirty_apps" => {
            (vec![vec![flag.into(), "mod:Cls".into(), flag.into(), "mod:Cls:2".into()]], vec![])
        }
        "access_log_format" => (values(&["%(h)s %(r)s 100%"]), vec![]),
        _ => match s.validator {
            Validator::PosInt => (values(&["7"]), bad(&["-3", not_an_int])),
            Validator::StringToAddrList => {
                (values(&["10.0.0.0/8, ::1,*", "127.0.0.1"]), bad(&["192.168.1.1/24", "nope"]))
            }
            Validator::StringToList => (values(&["X_A, X_B,,X_C"]), vec![]),
            Validator::ReloadEngine => (values(&["poll"]), bad(&["bogus"])),
            Validator::HeaderMap => (values(&["refuse", "DANGEROUS"]), bad(&["keep"])),
            Validator::Http2Cleartext => (values(&["both", "Upgrade"]), bad(&["maybe"])),
            Validator::AsgiLoop => (values(&["asyncio"]), bad(&["trio"])),
            Validator::AsgiLifespan => (values(&["on"]), bad(&["maybe"])),
            Validator::HttpParser => (values(&["python", "fast"]), bad(&["c"])),
            Validator::ListString => (values(&["one", " two "]), vec![]),
            _ if s.cli_type == CliType::Int => (values(&["7"]), bad(&["-3", not_an_int])),
            _ => (values(&["some-value", "  padded  "]), vec![]),
        },
    }
}

/// A Python literal holding a valid value of the setting, for a config file.
fn file_value(s: &Setting) -> String {
    let py_str = |v: &str| format!("{v:?}");
    match s.name {
        "config" => return py_str("conf.py"),
        "wsgi_app" => return py_str("app:application"),
        "tmp_upload_dir" => return py_str("/tmp"),
        "default_proc_name" => return py_str("custom-name"),
        "secure_scheme_headers" => return "{'X-SCHEME': 'https', 'X-SSL': 'on'}".into(),
        "logconfig_dict" => return "{'version': 1, 'root': {'level': 'INFO'}}".into(),
        "paste" => return "None".into(),
        "print_config" | "check_config" => return "True".into(),
        "sendfile" => return "False".into(),
        "control_socket_disable" => return "True".into(),
        _ => {}
    }
    match s.validator {
        Validator::Callable(n) => {
            let params: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
            return format!("lambda {}: None", params.join(", "));
        }
        Validator::PostRequest => return "lambda worker, req: None".into(),
        _ => {}
    }
    if s.is_switch() {
        return "True".into();
    }
    let (valid, _) = cli_samples(s);
    let args = &valid[0];
    match s.action {
        Action::Append => {
            let items: Vec<String> = args.iter().skip(1).step_by(2).map(|v| py_str(v)).collect();
            format!("[{}]", items.join(", "))
        }
        _ => {
            let raw = args.last().unwrap();
            let v = raw
                .split_once('=')
                .filter(|_| raw.starts_with("--"))
                .map_or(raw.as_str(), |(_, v)| v);
            if s.cli_type == CliType::Int && v.parse::<i64>().is_ok() {
                v.to_owned()
            } else if v.starts_with("--") {
                "'auto'".to_owned()
            } else {
                py_str(v)
            }
        }
    }
}

// ---- the matrix ----

fn with_app(mut args: Vec<String>) -> Vec<String> {
    let mut all = vec!["--print-config".to_owned(), "app:app".to_owned()];
    all.append(&mut args);
    all
}

fn generated_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for s in SETTINGS {
        if s.cli.is_empty() {
            continue;
        }
        let (valid, invalid) = cli_samples(s);
        for (kind, samples) in [("valid", valid), ("invalid", invalid)] {
            for (i, args) in samples.into_iter().enumerate() {
                let args = if s.name == "paste" {
                    {
                        let mut a = vec!["--print-config".to_owned()];
                        a.extend(args);
                        a
                    }
                } else {
                    with_app(args)
                };
                cases.push(Case {
                    id: format!("cli/{}/{kind}/{i}", s.name),
                    args,
                    env: Vec::new(),
                    files: Vec::new(),
                });
            }
        }
    }
    // Every setting with a valid value in a config file, one file per section.
    for section in Section::ALL {
        let mut text = String::new();
        for s in SETTINGS.iter().filter(|s| s.section == section) {
            text.push_str(&format!("{} = {}\n", s.name, file_value(s)));
        }
        let title = section.title().to_lowercase().replace([' ', '/'], "-");
        cases.push(
            Case::new(
                format!("file/section/{title}"),
                &["--print-config", "app:app", "-c", "section.py"],
            )
            .file("section.py", &text),
        );
    }
    // A value of the wrong type in a config file: for every config-only setting, and for
    // the first setting of each validator (the others share its code path, and their
    // command-line cases already cover them).
    let mut seen = Vec::new();
    for s in SETTINGS {
        let first_of_validator = !seen.contains(&s.validator);
        seen.push(s.validator);
        if !s.cli.is_empty() && !first_of_validator {
            continue;
        }
        cases.push(
            Case::new(
                format!("file/{}/wrong-type", s.name),
                &["--print-config", "app:app", "-c", "wrong.py"],
            )
            .file("wrong.py", &format!("{} = 3.5\n", s.name)),
        );
    }
    cases
}

/// A config-file case: `text` written to `c.py`, read with `-c c.py`.
fn file_case(id: &str, text: &str) -> Case {
    Case::new(format!("file/{id}"), &["--print-config", "app:app", "-c", "c.py"]).file("c.py", text)
}

fn handwritten_cases() -> Vec<Case> {
    let pc = ["--print-config", "app:app"];
    vec![
        file_case(
            "computed",
            "import multiprocessing\nworkers = multiprocessing.cpu_count() * 2 + 1\nbind = ['0.0.0.0:%d' % (8000 + 1)]\ntimeout = 10 * 3\nproc_name = 'x-' + str(workers)\n",
        ),
        file_case(
            "imports",
            "import os\nfrom mysettings import W\nworkers = W\nraw_env = ['HOME_SEEN=' + os.environ.get('HOME', '')]\n",
        ),
        file_case(
            "hooks",
            "def on_starting(server):\n    pass\n\ndef pre_fork(server, worker):\n    pass\n\nclass H:\n    @staticmethod\n    def when_ready(server):\n        pass\n\nwhen_ready = H.when_ready\npost_request = lambda worker, req, environ: None\nworker_exit = 'hooks.two'\nchild_exit = 'hooks.two'\non_exit = 'hooks.started'\n",
        ),
        file_case("hook-bad-arity", "def on_starting(server, extra):\n    pass\n"),
        file_case("hook-not-callable", "on_starting = 3\n"),
        file_case("hook-import-missing-module", "on_starting = 'nosuchmod.f'\n"),
        file_case("hook-import-missing-attr", "on_starting = 'hooks.nosuch'\n"),
        file_case("hook-import-not-callable", "on_starting = 'hooks.value'\n"),
        file_case("hook-not-import-string", "on_starting = 'started'\n"),
        file_case(
            "hook-defaults-and-kwargs",
            "def on_starting(server, x=1, *args, y, **kw):\n    pass\n",
        ),
        file_case(
            "hook-callable-instance",
            "class Hook:\n    def __call__(self, server):\n        pass\n\non_starting = Hook()\n",
        ),
        file_case(
            "post-request-arity-4",
            "def post_request(worker, req, environ, resp):\n    pass\n",
        ),
        file_case("post-request-arity-1", "def post_request(worker):\n    pass\n"),
        file_case(
            "worker-class-as-class",
            "class MyWorker:\n    pass\n\nworker_class = MyWorker\n",
        ),
        file_case(
            "worker-class-as-function",
            "class MyWorker:\n    pass\n\ndef worker_class():\n    return MyWorker\n",
        ),
        file_case("lists-bare-string", "bind = '127.0.0.1:9000'\nraw_env = 'A=1'\n"),
        file_case("lists-tuple", "bind = ('127.0.0.1:9000', ' [::1]:9001 ')\n"),
        file_case("lists-empty", "bind = []\nraw_env = ()\n"),
        file_case("lists-none", "bind = None\n"),
        file_case("lists-non-string-item", "bind = ['127.0.0.1:9000', 9001]\n"),
        file_case("addr-list-as-list", "forwarded_allow_ips = ['10.0.0.1', '10.0.0.2']\n"),
        file_case("addr-list-host-bits", "proxy_allow_ips = '10.0.0.1/8'\n"),
        file_case("string-to-list-as-list", "forwarder_headers = ['X_A', 'X_B']\n"),
        file_case(
            "dicts",
            "secure_scheme_headers = {}\nlogconfig_dict = {'version': 1, 'disable_existing_loggers': False}\n",
        ),
        file_case("dict-non-string-values", "secure_scheme_headers = {'X-A': 1, 'X-B': None}\n"),
        file_case("dict-as-list", "secure_scheme_headers = [('X-A', 'b')]\n"),
        file_case("ignored-names", "WORKERS = 7\nfoo = 1\n_workers = 2\nworkers = 2\n"),
        file_case("pos-int-strings", "workers = '0x10'\ntimeout = ' 12 '\nbacklog = '0o17'\n"),
        file_case("pos-int-leading-zero", "workers = '010'\n"),
        file_case("pos-int-bool", "workers = True\n"),
        file_case("pos-int-negative", "workers = -1\n"),
        file_case("pos-int-float", "workers = 2.0\n"),
        file_case("pos-int-huge", "workers = 10 ** 30\n"),
        file_case("bool-strings", "daemon = 'TRUE '\nreload = 'false'\n"),
        file_case("bool-bad-string", "daemon = 'yes'\n"),
        file_case("bool-int", "daemon = 1\n"),
        file_case("bool-none", "daemon = None\n"),
        file_case("string-stripped", "proc_name = '  spaced  '\n"),
        file_case("string-int", "proc_name = 5\n"),
        file_case("umask-string-octal", "umask = '0o22'\n"),
        file_case("proxy-protocol-bool", "proxy_protocol = True\n"),
        file_case("http2-cleartext-bool", "http2_cleartext = True\n"),
        file_case("print-config-in-file", "print_config = True\nworkers = 2\n"),
        file_case("syntax-error", "workers = (\n"),
        file_case("raises", "raise ValueError('boom')\n"),
        file_case("sys-exit", "import sys\nsys.exit(3)\n"),
        file_case("wsgi-app-and-positional", "wsgi_app = 'app:application'\n"),
        Case::new("file/wsgi-app-only", &["--print-config", "-c", "c.py"])
            .file("c.py", "wsgi_app = 'app:application'\n"),
        Case::new("file/non-py-extension", &["--print-config", "app:app", "-c", "c.conf"])
            .file("c.conf", "workers = 5\n"),
        Case::new("file/default-gunicorn-conf-py", &pc).file("gunicorn.conf.py", "workers = 9\n"),
        Case::new(
            "file/cli-overrides-file",
            &["--print-config", "app:app", "-c", "conf.py", "-w", "5", "-b", "unix:/tmp/y.sock"],
        ),
        Case::new("file/missing", &["--print-config", "app:app", "-c", "nope.py"]),
        Case::new("file/python-module", &["--print-config", "app:app", "-c", "python:mysettings"]),
        Case::new(
            "file/python-module-missing",
            &["--print-config", "app:app", "-c", "python:nosuchmodule"],
        ),
        // The command line itself.
        Case::new("cli/no-app", &["--print-config"]),
        Case::new("cli/check-config", &["--check-config", "app:app"]),
        Case::new("cli/app-missing-module", &["--print-config", "nosuchmod:app"]),
        Case::new("cli/app-missing-attr", &["--print-config", "app:nosuch"]),
        Case::new("cli/app-factory", &["--print-config", "app:create_app('y')"]),
        Case::new("cli/app-module-only", &["--print-config", "app"]),
        Case::new("cli/unknown-flag", &["--print-config", "app:app", "--bogus"]),
        Case::new("cli/abbreviation", &["--print-config", "app:app", "--work", "4"]),
        Case::new("cli/ambiguous-abbreviation", &["--print-config", "app:app", "--log", "x"]),
        Case::new("cli/missing-argument", &["--print-config", "app:app", "--workers"]),
        Case::new("cli/version", &["--version"]),
        Case::new("cli/two-positionals", &["--print-config", "app:app", "other:app"]),
        Case::new(
            "cli/proxy-protocol-swallows-app",
            &["--print-config", "--proxy-protocol", "app:app"],
        ),
        Case::new("cli/threads-make-gthread", &["--print-config", "app:app", "--threads", "4"]),
        // GUNICORN_CMD_ARGS.
        Case::new("cmdargs/workers", &pc).env("GUNICORN_CMD_ARGS", "--workers 5"),
        Case::new(
            "cmdargs/over-file-under-cli",
            &["--print-config", "app:app", "-c", "conf.py", "-b", "127.0.0.1:7"],
        )
        .env("GUNICORN_CMD_ARGS", "-w 6 -b 127.0.0.1:6 --timeout 9"),
        Case::new("cmdargs/config-location", &pc).env("GUNICORN_CMD_ARGS", "-c conf.py"),
        Case::new("cmdargs/quoting", &pc)
            .env("GUNICORN_CMD_ARGS", "--name 'my app' --access-logformat \"%(h)s x\""),
        Case::new("cmdargs/unbalanced-quote", &pc).env("GUNICORN_CMD_ARGS", "--name 'my app"),
        Case::new("cmdargs/unknown-flag", &pc).env("GUNICORN_CMD_ARGS", "--bogus"),
        Case::new("cmdargs/positional-ignored", &pc).env("GUNICORN_CMD_ARGS", "other:app -w 2"),
        Case::new("cmdargs/bad-value", &pc).env("GUNICORN_CMD_ARGS", "--workers -2"),
        Case::new("cmdargs/empty", &pc).env("GUNICORN_CMD_ARGS", ""),
        // Environment variables.
        Case::new("env/PORT", &pc).env("PORT", "9000"),
        Case::new("env/PORT-with-bind", &["--print-config", "app:app", "-b", "127.0.0.1:1"])
            .env("PORT", "9000"),
        Case::new("env/PORT-not-a-number", &pc).env("PORT", "http"),
        Case::new("env/WEB_CONCURRENCY", &pc).env("WEB_CONCURRENCY", "4"),
        Case::new("env/WEB_CONCURRENCY-with-cli", &["--print-config", "app:app", "-w", "2"])
            .env("WEB_CONCURRENCY", "4"),
        Case::new("env/WEB_CONCURRENCY-not-a-number", &pc).env("WEB_CONCURRENCY", "four"),
        Case::new("env/WEB_CONCURRENCY-negative", &pc).env("WEB_CONCURRENCY", "-2"),
        Case::new("env/WEB_CONCURRENCY-empty", &pc).env("WEB_CONCURRENCY", ""),
        Case::new("env/FORWARDED_ALLOW_IPS", &pc)
            .env("FORWARDED_ALLOW_IPS", "10.0.0.1, 10.0.0.0/24"),
        Case::new("env/FORWARDED_ALLOW_IPS-star", &pc).env("FORWARDED_ALLOW_IPS", "*"),
        Case::new("env/FORWARDED_ALLOW_IPS-invalid", &pc).env("FORWARDED_ALLOW_IPS", "10.0.0.1/8"),
        Case::new(
            "env/FORWARDED_ALLOW_IPS-with-cli",
            &["--print-config", "app:app", "--forwarded-allow-ips", "1.2.3.4"],
        )
        .env("FORWARDED_ALLOW_IPS", "bad"),
        Case::new("env/SENDFILE", &pc).env("SENDFILE", "0"),
        Case::new("env/SENDFILE-with-flag", &["--print-config", "app:app", "--no-sendfile"])
            .env("SENDFILE", "1"),
        Case::new("env/SCRIPT_NAME", &pc).env("SCRIPT_NAME", "/prefix"),
        Case::new("env/all", &pc)
            .env("PORT", "8080")
            .env("WEB_CONCURRENCY", "3")
            .env("FORWARDED_ALLOW_IPS", "*")
            .env("SENDFILE", "false")
            .env("SCRIPT_NAME", "/p"),
    ]
}

// ---- running ----

#[derive(Clone, Debug, PartialEq, Eq)]
struct Run {
    code: i32,
    stdout: String,
    last_stderr: String,
}

fn case_dir(root: &Path, i: usize, case: &Case) -> PathBuf {
    let dir = root.join(i.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    for (name, text) in BASE_FILES
        .iter()
        .map(|(n, t)| (*n, *t))
        .chain(case.files.iter().map(|(n, t)| (n.as_str(), t.as_str())))
    {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn run(program: &Path, dir: &Path, case: &Case) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(&case.args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent-home")
        .env("PWD", dir);
    for (k, v) in &case.env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    let stderr = String::from_utf8_lossy(&o.stderr);
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        last_stderr: stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_owned(),
    }
}

/// The normalisations named in the module docs (N1–N3); `program` is the program's name.
fn normalise(mut r: Run, program: &str) -> Run {
    // N1: argparse's `prog: error:` prefix.
    if let Some(rest) = r.last_stderr.strip_prefix(&format!("{program}: ")) {
        r.last_stderr = format!("PROG: {rest}");
    }
    // N2: the module of the exception class in a traceback's last line.
    for m in ["gunicorn.errors.", "ferrocorn.errors."] {
        if let Some(rest) = r.last_stderr.strip_prefix(m) {
            r.last_stderr = format!("ERRORS.{rest}");
        }
    }
    // N3: `--version`.
    if r.stdout.starts_with(&format!("{program} (version ")) && r.stdout.lines().count() == 1 {
        r.stdout = "PROG (version V)\n".to_owned();
    }
    r
}

/// What differs between the two runs, for the failure message (empty when the same).
fn describe(g: &Run, f: &Run) -> String {
    let mut out = String::new();
    if g.code != f.code {
        out.push_str(&format!("  exit code: gunicorn {} ferrocorn {}\n", g.code, f.code));
    }
    if g.last_stderr != f.last_stderr {
        out.push_str(&format!(
            "  last stderr line:\n    gunicorn:  {}\n    ferrocorn: {}\n",
            g.last_stderr, f.last_stderr
        ));
    }
    if g.stdout != f.stdout && (g.stdout.is_empty() || f.stdout.is_empty()) {
        let who = if g.stdout.is_empty() { "gunicorn" } else { "ferrocorn" };
        out.push_str(&format!("  stdout: only {who} printed nothing\n"));
    } else if g.stdout != f.stdout {
        let gl: Vec<&str> = g.stdout.lines().collect();
        let fl: Vec<&str> = f.stdout.lines().collect();
        for i in 0..gl.len().max(fl.len()) {
            let (a, b) = (gl.get(i).copied(), fl.get(i).copied());
            if a != b {
                out.push_str(&format!(
                    "  stdout line {}:\n    gunicorn:  {}\n    ferrocorn: {}\n",
                    i + 1,
                    a.unwrap_or("<none>"),
                    b.unwrap_or("<none>")
                ));
            }
        }
    }
    out
}

fn ledger() -> BTreeMap<String, toml::Table> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gunicorn27-settings-divergences.toml");
    let text = std::fs::read_to_string(&path).expect("read the ledger");
    let table: toml::Table = toml::from_str(&text).expect("the ledger is TOML");
    let mut out = BTreeMap::new();
    if let Some(toml::Value::Array(items)) = table.get("divergence") {
        for item in items {
            let t = item.as_table().expect("each divergence is a table").clone();
            for key in ["case", "gunicorn", "ferrocorn", "why"] {
                assert!(
                    t.get(key).and_then(toml::Value::as_str).is_some_and(|s| !s.trim().is_empty()),
                    "ledger entry {t:?} lacks `{key}`"
                );
            }
            let case = t["case"].as_str().unwrap().to_owned();
            assert!(out.insert(case.clone(), t).is_none(), "ledger lists {case} twice");
        }
    }
    out
}

#[test]
fn print_config_matches_gunicorn_27() {
    let started = Instant::now();
    let venv = oracle_venv();
    let (gunicorn, ferrocorn) = (venv.join("bin/gunicorn"), venv.join("bin/ferrocorn"));
    let mut cases = generated_cases();
    cases.extend(handwritten_cases());
    let mut ids = BTreeSet::new();
    for c in &cases {
        assert!(ids.insert(c.id.clone()), "case {} twice", c.id);
    }
    // Every setting is covered at least once.
    for s in SETTINGS {
        assert!(
            cases.iter().any(|c| c.id.starts_with(&format!("cli/{}/", s.name))
                || c.id.starts_with(&format!("file/{}/", s.name))),
            "{} is not in the matrix",
            s.name
        );
    }

    let root = TempDir::new("g27");
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let dir = case_dir(&root, i, case);
                    let g = normalise(run(&gunicorn, &dir, case), "gunicorn");
                    let f = normalise(run(&ferrocorn, &dir, case), "ferrocorn");
                    let diff = describe(&g, &f);
                    results.lock().unwrap().push((i, diff));
                    let _ = std::fs::remove_dir_all(&dir);
                }
            });
        }
    });
    drop(root);

    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    let ledger = ledger();
    let mut failures = String::new();
    let mut same = 0;
    let mut ledgered = 0;
    for (i, diff) in &results {
        let case = &cases[*i];
        match (diff.is_empty(), ledger.contains_key(&case.id)) {
            (true, false) => same += 1,
            (false, true) => ledgered += 1,
            (false, false) => failures.push_str(&format!(
                "\nUNLISTED DIFFERENCE {}\n  args: {:?}\n  env: {:?}\n{diff}",
                case.id, case.args, case.env
            )),
            (true, true) => failures.push_str(&format!(
                "\nLISTED BUT NO LONGER DIFFERENT {} (remove it from the ledger and docs/compat.md)\n",
                case.id
            )),
        }
    }
    for id in ledger.keys() {
        if !ids.contains(id) {
            failures.push_str(&format!("\nLEDGER CASE NOT IN THE MATRIX {id}\n"));
        }
    }
    eprintln!(
        "{} cases: {same} the same, {ledgered} ledgered differences ({:.1}s)",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{failures}");
}
