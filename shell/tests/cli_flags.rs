//! The argparse-compatible parser: every quirky flag, checked against what gunicorn
//! 27.0.1's parser (Python 3.11 argparse) produces for the same argv.

use ferrocorn::settings::cli::{Parsed, ParsedArgs, UsageError, help_text, parse, version_text};
use ferrocorn::settings::{Action, Env, SETTINGS, Value};

fn ok(argv: &str) -> ParsedArgs {
    let words: Vec<&str> = argv.split_whitespace().collect();
    match parse(&words) {
        Ok(Parsed::Args(a)) => a,
        other => panic!("{argv:?}: {other:?}"),
    }
}

fn err(argv: &[&str]) -> String {
    match parse(argv) {
        Err(UsageError(m)) => m,
        other => panic!("{argv:?}: expected an error, got {other:?}"),
    }
}

fn get(a: &ParsedArgs, name: &str) -> Value {
    a.get(name).cloned().unwrap_or(Value::None)
}

#[test]
fn int_option_spellings() {
    for argv in ["-w3", "-w 3", "--workers=3", "--workers 3", "-w=3", "-w 03", "-w 1_0"] {
        let want = if argv.ends_with("1_0") { 10 } else { 3 };
        assert_eq!(get(&ok(argv), "workers"), Value::Int(want), "{argv}");
    }
}

#[test]
fn negative_numbers_are_values() {
    assert_eq!(get(&ok("-w -1"), "workers"), Value::Int(-1));
    assert_eq!(get(&ok("--workers=-1"), "workers"), Value::Int(-1));
}

#[test]
fn int_conversion_errors_are_argparse_errors() {
    assert_eq!(err(&["-w", "x"]), "argument -w/--workers: invalid int value: 'x'");
    assert_eq!(err(&["-wx"]), "argument -w/--workers: invalid int value: 'x'");
    assert_eq!(err(&["-w", "0x10"]), "argument -w/--workers: invalid int value: '0x10'");
    assert_eq!(err(&["-w", ""]), "argument -w/--workers: invalid int value: ''");
    assert_eq!(err(&["-m", "z"]), "argument -m/--umask: invalid auto_int value: 'z'");
    assert_eq!(err(&["-m", "08"]), "argument -m/--umask: invalid auto_int value: '08'");
    assert_eq!(err(&["--workers"]), "argument -w/--workers: expected one argument");
    assert_eq!(err(&["-b", "-x"]), "argument -b/--bind: expected one argument");
}

#[test]
fn abbreviations() {
    assert_eq!(
        err(&["--work", "3"]),
        "ambiguous option: --work could match --workers, --worker-class, --worker-connections, --worker-tmp-dir"
    );
    assert_eq!(
        err(&["--work=3"]),
        "ambiguous option: --work=3 could match --workers, --worker-class, --worker-connections, --worker-tmp-dir"
    );
    assert_eq!(
        err(&["--limit", "5"]),
        "ambiguous option: --limit could match --limit-request-line, --limit-request-fields, --limit-request-field_size"
    );
    assert_eq!(get(&ok("--timeo 5"), "timeout"), Value::Int(5));
    assert_eq!(get(&ok("--no-control"), "control_socket_disable"), Value::Bool(true));
    assert_eq!(get(&ok("--paste x.ini"), "paste"), Value::str("x.ini"));
}

#[test]
fn unknown_and_misplaced_arguments() {
    assert_eq!(err(&["--foo"]), "unrecognized arguments: --foo");
    assert_eq!(err(&["-x"]), "unrecognized arguments: -x");
    assert_eq!(err(&["--foo=1", "a"]), "unrecognized arguments: --foo=1");
    assert_eq!(err(&["a", "-w", "3", "b"]), "unrecognized arguments: b");
    assert_eq!(
        err(&["--limit-request-field-size", "5"]),
        "unrecognized arguments: --limit-request-field-size"
    );
    assert_eq!(err(&["--reload=1"]), "argument --reload: ignored explicit argument '1'");
    assert_eq!(err(&["--preload=yes"]), "argument --preload: ignored explicit argument 'yes'");
    assert_eq!(err(&["-Dx"]), "argument -D/--daemon: ignored explicit argument 'x'");
    assert_eq!(err(&["-D=x"]), "argument -D/--daemon: ignored explicit argument 'x'");
}

#[test]
fn positionals() {
    assert_eq!(ok("a b c").positionals, vec!["a", "b", "c"]);
    assert_eq!(ok("-w 3 app").positionals, vec!["app"]);
    assert_eq!(ok("app -w 3").positionals, vec!["app"]);
    assert_eq!(ok("-- -w").positionals, vec!["-w"]);
    assert_eq!(ok("--reload x").positionals, vec!["x"]);
    assert!(ok("-w 3").positionals.is_empty());
}

#[test]
fn clustered_switches() {
    let a = ok("-RD");
    assert_eq!(get(&a, "daemon"), Value::Bool(true));
    assert_eq!(get(&a, "enable_stdio_inheritance"), Value::Bool(true));
    let a = ok("-Dw3");
    assert_eq!(get(&a, "daemon"), Value::Bool(true));
    assert_eq!(get(&a, "workers"), Value::Int(3));
}

#[test]
fn proxy_protocol_optional_value() {
    assert_eq!(get(&ok("--proxy-protocol"), "proxy_protocol"), Value::str("auto"));
    assert_eq!(get(&ok("--proxy-protocol v1"), "proxy_protocol"), Value::str("v1"));
    // gunicorn's trap: the app name is taken as the mode.
    let a = ok("--proxy-protocol app:app");
    assert_eq!(get(&a, "proxy_protocol"), Value::str("app:app"));
    assert!(a.positionals.is_empty());
    let a = ok("--proxy-protocol=v2 app:app");
    assert_eq!(get(&a, "proxy_protocol"), Value::str("v2"));
    assert_eq!(a.positionals, vec!["app:app"]);
    let a = ok("--proxy-protocol -w 3");
    assert_eq!(get(&a, "proxy_protocol"), Value::str("auto"));
    assert_eq!(get(&a, "workers"), Value::Int(3));
}

#[test]
fn append_options_collect() {
    assert_eq!(get(&ok("--bind=1 --bind 2 -b3"), "bind"), Value::str_list(&["1", "2", "3"]));
    assert_eq!(get(&ok("-e A=1 -e B=2"), "raw_env"), Value::str_list(&["A=1", "B=2"]));
    assert_eq!(
        get(&ok("--paste-global a=1 --paste-global b=2"), "raw_paste_global_conf"),
        Value::str_list(&["a=1", "b=2"])
    );
    assert_eq!(
        get(&ok("--reload-extra-file a --reload-extra-file b"), "reload_extra_files"),
        Value::str_list(&["a", "b"])
    );
    assert_eq!(get(&ok("--dirty-app a"), "dirty_apps"), Value::str_list(&["a"]));
}

#[test]
fn flag_aliases_and_quirks() {
    assert_eq!(get(&ok("--log-file x"), "errorlog"), Value::str("x"));
    assert_eq!(get(&ok("--error-logfile x"), "errorlog"), Value::str("x"));
    assert_eq!(get(&ok("--paster x"), "paste"), Value::str("x"));
    assert_eq!(get(&ok("--limit-request-field_size 5"), "limit_request_field_size"), Value::Int(5));
    assert_eq!(get(&ok("--no-sendfile"), "sendfile"), Value::Bool(false));
    assert_eq!(get(&ok("-m 0022"), "umask"), Value::Int(18));
    assert_eq!(get(&ok("-m 0x1f"), "umask"), Value::Int(31));
    assert_eq!(get(&ok("--control-socket-mode 0660"), "control_socket_mode"), Value::Int(0o660));
    let a = ok("-t 5 -n name -u 1 -g 2 -p f -k gthread -c c.py -D -R");
    assert_eq!(get(&a, "timeout"), Value::Int(5));
    assert_eq!(get(&a, "proc_name"), Value::str("name"));
    assert_eq!(get(&a, "user"), Value::str("1"));
    assert_eq!(get(&a, "group"), Value::str("2"));
    assert_eq!(get(&a, "pidfile"), Value::str("f"));
    assert_eq!(get(&a, "worker_class"), Value::str("gthread"));
    assert_eq!(get(&a, "config"), Value::str("c.py"));
    // --cert-reqs has no argparse type: the validator converts.
    assert_eq!(get(&ok("--cert-reqs x"), "cert_reqs"), Value::str("x"));
    let a = ok("--check-config --print-config --preload --suppress-ragged-eofs");
    for n in ["check_config", "print_config", "preload_app", "suppress_ragged_eofs"] {
        assert_eq!(get(&a, n), Value::Bool(true), "{n}");
    }
}

#[test]
fn help_and_version() {
    assert_eq!(parse(&["-v"]), Ok(Parsed::Version));
    assert_eq!(parse(&["app", "--version"]), Ok(Parsed::Version));
    assert_eq!(parse(&["--foo", "-h"]), Ok(Parsed::Help));
    assert_eq!(version_text(), "ferrocorn (version 0.1.0)\n");
    let help = help_text(&Env::bare("/srv"));
    assert!(help.starts_with("usage: ferrocorn [OPTIONS] [APP_MODULE]\n\noptions:\n"));
    assert!(help.contains("  -w INT, --workers INT\n"));
    assert!(help.contains("  --proxy-protocol [MODE]\n"));
    assert!(help.contains(
        "  --chdir CHDIR         Change directory to specified directory before loading\n"
    ));
    assert!(help.contains("[/srv]"));
    assert!(help.contains("  --no-sendfile         Disables the use of sendfile(). [None]\n"));
    for s in SETTINGS {
        for f in s.cli {
            assert!(help.contains(f), "{f} missing from --help");
        }
    }
}

#[test]
fn table_matches_gunicorn_shape() {
    assert_eq!(SETTINGS.len(), 120);
    let mut names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), SETTINGS.len(), "duplicate setting names");
    let mut flags: Vec<&str> = SETTINGS.iter().flat_map(|s| s.cli.iter().copied()).collect();
    let n = flags.len();
    flags.sort_unstable();
    flags.dedup();
    assert_eq!(flags.len(), n, "duplicate flags");
    for s in SETTINGS {
        assert!(!s.help.is_empty(), "{} has no help", s.name);
        if matches!(s.action, Action::Append) {
            assert!(matches!(
                s.default,
                ferrocorn::settings::DefaultSpec::StrList(_)
                    | ferrocorn::settings::DefaultSpec::Computed(..)
            ));
        }
    }
}
