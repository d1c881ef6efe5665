//! Layers and precedence: defaults < application < config file < GUNICORN_CMD_ARGS <
//! command line, each value keeping its origin; environment-computed defaults.

use ferrocorn::settings::cli::{Parsed, parse};
use ferrocorn::settings::resolve::{Loaded, NoPython, config_location, load};
use ferrocorn::settings::{ConfigError, ConfigSource, Env, Origin, PyObj, Settings, Value};

#[path = "../../tests/e2e/support/scratch.rs"]
mod scratch;
use scratch::TempDir;

/// A config file source that returns fixed values, standing in for Python.
struct FakeConfig(Vec<(&'static str, Value)>);

impl ConfigSource for FakeConfig {
    fn load(&self, _location: &str, _env: &Env) -> Result<Vec<(String, Value)>, ConfigError> {
        Ok(self.0.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }
}

/// A directory holding `c.py`, unique per test.
fn dir_with_config(tag: &str) -> TempDir {
    TempDir::with_files(&format!("precedence-{tag}"), &[("c.py", "workers = 3\n")])
}

fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn settings(argv_s: &str, env: &Env, src: &dyn ConfigSource) -> Settings {
    match load(&argv(argv_s), env, src) {
        Ok(Loaded::Settings(s)) => *s,
        other => panic!("{argv_s:?}: {other:?}"),
    }
}

fn load_err(argv_s: &str, env: &Env, src: &dyn ConfigSource) -> ConfigError {
    match load(&argv(argv_s), env, src) {
        Err(e) => e,
        Ok(other) => panic!("{argv_s:?}: expected an error, got {other:?}"),
    }
}

#[test]
fn four_layers_with_origins() {
    let dir = dir_with_config("layers");
    let cfg = FakeConfig(vec![
        ("workers", Value::Int(3)),
        ("timeout", Value::Int(10)),
        ("keepalive", Value::Int(7)),
        ("bind", Value::str_list(&["cfg:1", "cfg:2"])),
        ("WORKERS", Value::Int(99)),
        ("not_a_setting", Value::Int(1)),
    ]);
    let env = Env::bare(&*dir)
        .with_var("GUNICORN_CMD_ARGS", "--workers 5 --timeout 20 -b env:1 ignored_app");
    let s = settings("app:app -w 6 -c c.py", &env, &cfg);

    assert_eq!(s.get("workers"), &Value::Int(6));
    assert_eq!(s.origin("workers"), &Origin::CommandLine);
    assert_eq!(s.get("timeout"), &Value::Int(20));
    assert_eq!(s.origin("timeout"), &Origin::EnvCmdArgs);
    assert_eq!(s.get("keepalive"), &Value::Int(7));
    assert_eq!(s.origin("keepalive"), &Origin::ConfigFile("c.py".into()));
    assert_eq!(s.get("backlog"), &Value::Int(2048));
    assert_eq!(s.origin("backlog"), &Origin::Default);
    assert_eq!(s.get("default_proc_name"), &Value::str("app:app"));
    assert_eq!(s.origin("default_proc_name"), &Origin::Application);
    // An append option from a higher layer replaces the list.
    assert_eq!(s.get("bind"), &Value::str_list(&["env:1"]));
    assert_eq!(s.origin("bind"), &Origin::EnvCmdArgs);
    // Positionals in GUNICORN_CMD_ARGS are ignored.
    assert_eq!(s.app_uri.as_deref(), Some("app:app"));
    assert_eq!(Origin::ConfigFile("c.py".into()).to_string(), "config file c.py");
    assert_eq!(Origin::EnvCmdArgs.to_string(), "env GUNICORN_CMD_ARGS");
}

#[test]
fn cli_append_replaces_config_list() {
    let dir = dir_with_config("append");
    let cfg = FakeConfig(vec![
        ("bind", Value::str_list(&["cfg:1"])),
        ("raw_env", Value::str_list(&["A=1"])),
    ]);
    let s = settings("app -c c.py -b cli:1 -b cli:2", &Env::bare(&*dir), &cfg);
    assert_eq!(s.get("bind"), &Value::str_list(&["cli:1", "cli:2"]));
    assert_eq!(s.get("raw_env"), &Value::str_list(&["A=1"]));
}

#[test]
fn invalid_values_in_lower_layers_still_fail() {
    let dir = dir_with_config("lower");
    let cfg = FakeConfig(vec![("workers", Value::Int(-3))]);
    let e = load_err("app -c c.py -w 2", &Env::bare(&*dir), &cfg);
    assert_eq!(e.exit_code(), 1);
    assert_eq!(
        e.render(),
        "Invalid value for workers: -3\n\n\nError: Value must be positive: -3\n"
    );
    let env = Env::bare(&*dir).with_var("GUNICORN_CMD_ARGS", "-w -1");
    let e = load_err("app -w 2", &env, &NoPython);
    assert_eq!(e.render(), "\nError: Value must be positive: -1\n");
}

#[test]
fn first_invalid_value_in_table_order_is_reported() {
    let e = load_err("app --timeout -5 -w -2", &Env::bare("/"), &NoPython);
    assert_eq!(e.message(), "Value must be positive: -2");
}

#[test]
fn gunicorn_cmd_args_quoting_and_errors() {
    let env = Env::bare("/")
        .with_var("GUNICORN_CMD_ARGS", r#"--access-logformat '%(h)s "%(r)s"' --name "my app""#);
    let s = settings("app", &env, &NoPython);
    assert_eq!(s.get("access_log_format"), &Value::str(r#"%(h)s "%(r)s""#));
    assert_eq!(s.get("proc_name"), &Value::str("my app"));
    assert_eq!(s.proc_name(), "my app");

    let env = Env::bare("/").with_var("GUNICORN_CMD_ARGS", "'unterminated");
    let e = load_err("app", &env, &NoPython);
    assert_eq!((e.render().as_str(), e.exit_code()), ("\nError: No closing quotation\n", 1));

    let env = Env::bare("/").with_var("GUNICORN_CMD_ARGS", "--bogus");
    let e = load_err("app", &env, &NoPython);
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        e.render(),
        "usage: ferrocorn [OPTIONS] [APP_MODULE]\nferrocorn: error: unrecognized arguments: --bogus\n"
    );

    // Command-line argparse errors win over GUNICORN_CMD_ARGS problems.
    let e = load_err("app -w x", &env, &NoPython);
    assert_eq!(e.message(), "argument -w/--workers: invalid int value: 'x'");
}

#[test]
fn environment_defaults() {
    let s = settings("app", &Env::bare("/"), &NoPython);
    assert_eq!(s.get("bind"), &Value::str_list(&["127.0.0.1:8000"]));
    assert_eq!(s.get("workers"), &Value::Int(1));
    assert_eq!(s.get("forwarded_allow_ips"), &Value::str_list(&["127.0.0.1", "::1"]));
    assert_eq!(s.get("chdir"), &Value::str("/"));

    let env = Env::bare("/tmp")
        .with_var("PORT", "5000")
        .with_var("WEB_CONCURRENCY", "4")
        .with_var("FORWARDED_ALLOW_IPS", "10.0.0.0/8,*");
    let s = settings("app", &env, &NoPython);
    assert_eq!(s.get("bind"), &Value::str_list(&["0.0.0.0:5000"]));
    assert_eq!(s.get("workers"), &Value::Int(4));
    assert_eq!(s.get("forwarded_allow_ips"), &Value::str_list(&["10.0.0.0/8", "*"]));
    assert_eq!(s.get("chdir"), &Value::str("/tmp"));
    assert_eq!(s.origin("bind"), &Origin::Default);
    // The command line still wins over PORT.
    let s = settings("app -b x:1", &env, &NoPython);
    assert_eq!(s.get("bind"), &Value::str_list(&["x:1"]));

    let mut env = Env::bare("/");
    env.euid = 33;
    env.egid = 44;
    let s = settings("app", &env, &NoPython);
    assert_eq!((s.get("user"), s.get("group")), (&Value::Int(33), &Value::Int(44)));

    let e = load_err("app", &Env::bare("/").with_var("WEB_CONCURRENCY", "x"), &NoPython);
    assert_eq!(e.message(), "invalid literal for int() with base 10: 'x'");
    let e =
        load_err("app", &Env::bare("/").with_var("FORWARDED_ALLOW_IPS", "1.2.3.4/8"), &NoPython);
    assert_eq!(e.message(), "1.2.3.4/8 has host bits set");

    let env =
        Env::bare("/").with_var("HOME", "/home/u").with_var("XDG_RUNTIME_DIR", "/nonexistent-xdg");
    let s = settings("app", &env, &NoPython);
    assert_eq!(s.get("control_socket"), &Value::str("/home/u/.gunicorn/gunicorn.ctl"));
    let env = Env::bare("/").with_var("XDG_RUNTIME_DIR", "/tmp");
    assert_eq!(
        settings("app", &env, &NoPython).get("control_socket"),
        &Value::str("/tmp/gunicorn.ctl")
    );
}

#[test]
fn sendfile_rules() {
    let base = Env::bare("/");
    let s = settings("app", &base, &NoPython);
    assert!(s.sendfile(&base));
    for (v, want) in [
        ("y", true),
        ("1", true),
        ("YES", true),
        ("true", true),
        ("0", false),
        ("no", false),
        ("", false),
    ] {
        assert_eq!(s.sendfile(&base.clone().with_var("SENDFILE", v)), want, "SENDFILE={v}");
    }
    let s = settings("app --no-sendfile", &base, &NoPython);
    assert!(!s.sendfile(&base.clone().with_var("SENDFILE", "1")));
    // gunicorn quirk: `sendfile = True` in a config file disables it too.
    let dir = dir_with_config("sendfile");
    let s = settings(
        "app -c c.py",
        &Env::bare(&*dir),
        &FakeConfig(vec![("sendfile", Value::Bool(true))]),
    );
    assert!(!s.sendfile(&Env::bare(&*dir)));
}

#[test]
fn worker_class_cross_rule() {
    let env = Env::bare("/");
    assert_eq!(settings("app --threads 4", &env, &NoPython).worker_class(), "gthread");
    assert_eq!(settings("app --threads 1", &env, &NoPython).worker_class(), "sync");
    let s = settings("app -k gunicorn.workers.sync.SyncWorker --threads 2", &env, &NoPython);
    assert_eq!(s.worker_class(), "gthread");
    // --print-config keeps the given value.
    assert_eq!(s.get("worker_class"), &Value::str("gunicorn.workers.sync.SyncWorker"));
    assert_eq!(settings("app -k gevent --threads 2", &env, &NoPython).worker_class(), "gevent");
}

#[test]
fn derived_values() {
    let env = Env::bare("/");
    let s = settings("app --statsd-host localhost", &env, &NoPython);
    assert_eq!(s.logger_class(), "gunicorn.instrument.statsd.Statsd");
    let s = settings("app --logger-class simple", &env, &NoPython);
    assert_eq!(s.logger_class(), "gunicorn.glogging.Logger");
    assert!(!s.is_ssl());
    assert!(settings("app --certfile c.pem", &env, &NoPython).is_ssl());
    let s = settings("app -e A=1 -e B=x=y", &env, &NoPython);
    assert_eq!(s.env_pairs(), Ok(vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]));
    let s = settings("app -e BAD", &env, &NoPython);
    assert_eq!(s.env_pairs(), Err("environment setting 'BAD' invalid".into()));
    let s = settings(r"app --paste-global a\=b=c", &env, &NoPython);
    assert_eq!(s.paste_global_conf(), Ok(vec![("a=b".into(), "c".into())]));
    assert_eq!(settings("app", &env, &NoPython).proc_name(), "app");
}

#[test]
fn unsupported_settings_are_listed_when_not_default() {
    let env = Env::bare("/");
    assert!(settings("app", &env, &NoPython).unsupported().is_empty());
    // Explicitly set to the default: fine.
    assert!(
        settings("app --dirty-workers 0 --http-protocols h1", &env, &NoPython)
            .unsupported()
            .is_empty()
    );
    // Harmless ones are not listed.
    assert!(settings("app --no-control-socket", &env, &NoPython).unsupported().is_empty());
    let s = settings(
        "app --dirty-workers 2 --http-protocols h1,h2 --protocol uwsgi --asgi-loop uvloop",
        &env,
        &NoPython,
    );
    let names: Vec<&str> = s.unsupported().iter().map(|s| s.name).collect();
    assert_eq!(names, vec!["protocol", "http_protocols", "asgi_loop", "dirty_workers"]);

    let dir = dir_with_config("hooks");
    let hook = Value::Object(Box::new(PyObj::function("on_dirty_starting", 1)));
    let s =
        settings("app -c c.py", &Env::bare(&*dir), &FakeConfig(vec![("on_dirty_starting", hook)]));
    let names: Vec<&str> = s.unsupported().iter().map(|s| s.name).collect();
    assert_eq!(names, vec!["on_dirty_starting"]);
}

#[test]
fn config_file_selection() {
    let words = |s: &str| match parse(&s.split_whitespace().collect::<Vec<_>>()) {
        Ok(Parsed::Args(a)) => a,
        other => panic!("{other:?}"),
    };
    let dir = TempDir::new("cfgsel");
    let env = Env::bare(&*dir);
    assert_eq!(
        config_location(&words("-c a.py"), &words("-c b.py"), &env).as_deref(),
        Some("a.py")
    );
    assert_eq!(config_location(&words(""), &words("-c b.py"), &env).as_deref(), Some("b.py"));
    assert_eq!(config_location(&words(""), &words(""), &env), None);
    std::fs::write(dir.join("gunicorn.conf.py"), "").unwrap();
    let want = dir.join("gunicorn.conf.py").to_string_lossy().into_owned();
    assert_eq!(config_location(&words(""), &words(""), &env), Some(want));

    // The existence check happens before Python is needed.
    let e = load_err("app -c missing.py", &Env::bare("/"), &NoPython);
    assert_eq!(e.render(), "\nError: 'missing.py' doesn't exist\n");
    // Without the Python runtime, a config file is refused, never silently skipped.
    let e = load_err("app", &env, &NoPython);
    assert!(e.message().contains("need the Python runtime"), "{}", e.message());
}

#[test]
fn application_module_is_required() {
    let e = load_err("-w 2", &Env::bare("/"), &NoPython);
    assert_eq!(e.render(), "\nError: No application module specified.\n");
    let dir = dir_with_config("wsgi_app");
    let s = settings(
        "-c c.py",
        &Env::bare(&*dir),
        &FakeConfig(vec![("wsgi_app", Value::str("m:app"))]),
    );
    assert_eq!(s.app_uri.as_deref(), Some("m:app"));
}

#[test]
fn paste_sets_the_application_layer() {
    let dir = dir_with_config("paste");
    std::fs::write(dir.join("app.ini"), "[app:main]\nuse = egg:x\n[loggers]\nkeys = root\n")
        .unwrap();
    let s = settings("--paste app.ini#main", &Env::bare(&*dir), &NoPython);
    let file = dir.join("app.ini").to_string_lossy().into_owned();
    assert_eq!(s.get("default_proc_name"), &Value::str(file.as_str()));
    assert_eq!(s.get("logconfig"), &Value::str(file.as_str()));
    assert_eq!(s.origin("logconfig"), &Origin::Application);
    assert_eq!(s.app_uri, Some(format!("{file}#main")));
    let e = load_err("--paste nope.ini", &Env::bare(&*dir), &NoPython);
    assert_eq!(e.message(), format!("'{}' not found", dir.join("nope.ini").display()));
}

#[test]
fn print_config_rendering() {
    let mut env = Env::bare("/srv");
    env.vars.insert("HOME".into(), "/root".into());
    let s = settings("app -w 3 -b x -b y --forwarded-allow-ips=", &env, &NoPython);
    let text = s.print_config();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 120);
    assert_eq!(
        lines[0],
        r#"access_log_format                  = %(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#
    );
    for want in [
        "bind                               = ['x', 'y']",
        "workers                            = 3",
        "forwarded_allow_ips                = []",
        "child_exit                         = <ChildExit.child_exit()>",
        "pre_fork                           = <Prefork.pre_fork()>",
        "secure_scheme_headers              = {'X-FORWARDED-PROTOCOL': 'ssl', 'X-FORWARDED-PROTO': 'https', 'X-FORWARDED-SSL': 'on'}",
        "sendfile                           = None",
        "ssl_version                        = 2",
        "control_socket_mode                = 384",
        "chdir                              = /srv",
        "default_proc_name                  = app",
        "dogstatsd_tags                     = ",
        "wsgi_app                           = None",
    ] {
        assert!(lines.contains(&want), "missing line {want:?}");
    }
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, lines);
}

#[test]
fn config_file_errors_render_like_gunicorn() {
    struct Raises;
    impl ConfigSource for Raises {
        fn load(&self, location: &str, _env: &Env) -> Result<Vec<(String, Value)>, ConfigError> {
            Err(ConfigError::ConfigFileFailed {
                location: location.to_owned(),
                traceback: "Traceback (most recent call last):\nNameError: name 'x' is not defined"
                    .to_owned(),
            })
        }
    }
    let dir = dir_with_config("raises");
    let e = load_err("app -c c.py", &Env::bare(&*dir), &Raises);
    assert_eq!(e.exit_code(), 1);
    assert_eq!(
        e.render(),
        "Failed to read config file: c.py\nTraceback (most recent call last):\nNameError: name 'x' is not defined\n"
    );
    // A hook with the wrong arity from a config file.
    let bad = Value::Object(Box::new(PyObj::function("when_ready", 2)));
    let e = load_err("app -c c.py", &Env::bare(&*dir), &FakeConfig(vec![("when_ready", bad)]));
    assert_eq!(
        e.render(),
        "Invalid value for when_ready: <function when_ready>\n\n\nError: Value must have an arity of: 1\n"
    );
}
