//! The command-line parser, built from the settings table, with argparse's behaviour.
//!
//! gunicorn parses `sys.argv` and `GUNICORN_CMD_ARGS` with Python's `argparse`, and
//! users depend on its quirks: `-w3`, `-w=3`, `--workers=3`, unique prefixes of long
//! options (`--timeo 5`), clustered switches (`-RD`), negative numbers as values
//! (`-w -1` reaches the validator), `--proxy-protocol` taking an optional value (and
//! swallowing a following `app:app`), one run of positional arguments. clap cannot be
//! bent into all of that, so this is a small hand-written parser following argparse's
//! algorithm (Python 3.11), with its error texts.

use super::defs::SETTINGS;
use super::env::Env;
use super::setting::{Action, CliType, Setting};
use super::validate::{parse_auto_int, parse_int_base10};
use super::value::{Value, str_repr};

/// The program name used in usage, errors and `--version`.
pub const PROG: &str = "ferrocorn";

/// The usage line (gunicorn's `%(prog)s [OPTIONS] [APP_MODULE]`).
pub const USAGE: &str = "usage: ferrocorn [OPTIONS] [APP_MODULE]";

/// An argparse error: printed after the usage line as `ferrocorn: error: ...`, exit 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl UsageError {
    /// The exact stderr text argparse prints.
    pub fn render(&self) -> String {
        format!("{USAGE}\n{PROG}: error: {}\n", self.0)
    }
}

/// The result of parsing one argument list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedArgs {
    /// Flags given, as `(index in SETTINGS, value)`, in table order (argparse's namespace
    /// order), one entry per setting; `append` flags carry the list of all occurrences.
    pub values: Vec<(usize, Value)>,
    /// Positional arguments (`APP_MODULE`, ...).
    pub positionals: Vec<String>,
}

impl ParsedArgs {
    /// The value given for a setting, if its flag was used.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(i, _)| SETTINGS[*i].name == name).map(|(_, v)| v)
    }
}

/// What the parser found.
#[derive(Clone, Debug, PartialEq)]
pub enum Parsed {
    /// Arguments to apply.
    Args(ParsedArgs),
    /// `-h/--help` was given: print [`help_text`] and exit 0.
    Help,
    /// `-v/--version` was given: print [`version_text`] and exit 0.
    Version,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Opt {
    Help,
    Version,
    Setting(usize),
}

/// All option strings in argparse's registration order.
fn option_strings() -> Vec<(&'static str, Opt)> {
    let mut v = vec![
        ("-h", Opt::Help),
        ("--help", Opt::Help),
        ("-v", Opt::Version),
        ("--version", Opt::Version),
    ];
    for (i, s) in SETTINGS.iter().enumerate() {
        v.extend(s.cli.iter().map(|f| (*f, Opt::Setting(i))));
    }
    v
}

fn find(opts: &[(&'static str, Opt)], s: &str) -> Option<Opt> {
    opts.iter().find(|(f, _)| *f == s).map(|(_, o)| *o)
}

/// `'-w/--workers'`, the name argparse uses in errors.
fn action_name(opt: Opt) -> String {
    match opt {
        Opt::Help => "-h/--help".to_owned(),
        Opt::Version => "-v/--version".to_owned(),
        Opt::Setting(i) => SETTINGS[i].cli.join("/"),
    }
}

fn takes_arg(opt: Opt) -> ArgCount {
    match opt {
        Opt::Help | Opt::Version => ArgCount::Zero,
        Opt::Setting(i) => match SETTINGS[i].action {
            Action::StoreTrue | Action::StoreConst(_) => ArgCount::Zero,
            Action::Store | Action::Append => ArgCount::One,
            Action::StoreOptional(_) => ArgCount::Optional,
        },
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ArgCount {
    Zero,
    One,
    Optional,
}

/// argparse's classification of one argument string.
#[derive(Clone, Debug)]
enum Class {
    /// A positional argument (or an option's value).
    Arg,
    /// `--`.
    DoubleDash,
    /// An option: the matched action (None: unknown), the option string, an explicit value.
    Opt(Option<Opt>, String, Option<String>),
}

fn is_negative_number(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('-') else {
        return false;
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    all_digits(rest)
        || rest
            .split_once('.')
            .is_some_and(|(a, b)| a.bytes().all(|c| c.is_ascii_digit()) && all_digits(b))
}

fn classify(opts: &[(&'static str, Opt)], arg: &str) -> Result<Class, UsageError> {
    if arg == "--" {
        return Ok(Class::DoubleDash);
    }
    if !arg.starts_with('-') || arg.len() == 1 {
        return Ok(Class::Arg);
    }
    if let Some(o) = find(opts, arg) {
        return Ok(Class::Opt(Some(o), arg.to_owned(), None));
    }
    if let Some((name, value)) = arg.split_once('=') {
        if let Some(o) = find(opts, name) {
            return Ok(Class::Opt(Some(o), name.to_owned(), Some(value.to_owned())));
        }
    }
    // Prefix matches, as argparse's `_get_option_tuples`.
    let mut matches: Vec<(Opt, &str, Option<String>)> = Vec::new();
    if arg.starts_with("--") {
        let (prefix, explicit) = match arg.split_once('=') {
            Some((p, e)) => (p, Some(e.to_owned())),
            None => (arg, None),
        };
        for (f, o) in opts {
            if f.starts_with(prefix) {
                matches.push((*o, f, explicit.clone()));
            }
        }
    } else {
        let short = &arg[..arg.char_indices().nth(2).map_or(arg.len(), |(i, _)| i)];
        let rest = &arg[short.len()..];
        for (f, o) in opts {
            if *f == short {
                matches.push((*o, f, Some(rest.to_owned())));
            } else if f.starts_with(arg) {
                matches.push((*o, f, None));
            }
        }
    }
    if matches.len() > 1 {
        let names: Vec<&str> = matches.iter().map(|(_, f, _)| *f).collect();
        return Err(UsageError(format!(
            "ambiguous option: {arg} could match {}",
            names.join(", ")
        )));
    }
    if let Some((o, f, explicit)) = matches.pop() {
        return Ok(Class::Opt(Some(o), f.to_owned(), explicit));
    }
    if is_negative_number(arg) || arg.contains(' ') {
        return Ok(Class::Arg);
    }
    Ok(Class::Opt(None, arg.to_owned(), None))
}

fn convert(i: usize, raw: &str) -> Result<Value, UsageError> {
    let s = &SETTINGS[i];
    let bad = |ty: &str| {
        UsageError(format!("argument {}: invalid {ty} value: {}", s.cli.join("/"), str_repr(raw)))
    };
    match s.cli_type {
        CliType::Str => Ok(Value::str(raw)),
        CliType::Int => parse_int_base10(raw).map(Value::Int).ok_or_else(|| bad("int")),
        CliType::AutoInt => parse_auto_int(raw).map(Value::Int).ok_or_else(|| bad("auto_int")),
    }
}

/// Parses one argument list (`sys.argv[1:]` or the split `GUNICORN_CMD_ARGS`).
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Parsed, UsageError> {
    let opts = option_strings();
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    // argparse classifies every string up front; after `--` all are positional.
    let mut classes = Vec::with_capacity(args.len());
    let mut after_dd = false;
    for a in &args {
        if after_dd {
            classes.push(Class::Arg);
            continue;
        }
        let c = classify(&opts, a)?;
        if matches!(c, Class::DoubleDash) {
            after_dd = true;
        }
        classes.push(c);
    }

    let mut values: Vec<Option<Value>> = vec![None; SETTINGS.len()];
    let mut positionals: Option<Vec<String>> = None;
    let mut extras: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match &classes[i] {
            Class::Arg | Class::DoubleDash => {
                // A run of positional strings; the first run fills APP_MODULE's `nargs="*"`.
                let start = i;
                while i < args.len() && matches!(classes[i], Class::Arg | Class::DoubleDash) {
                    i += 1;
                }
                let mut run: Vec<String> = Vec::new();
                let mut dd_seen = false;
                for (a, c) in args[start..i].iter().zip(&classes[start..i]) {
                    if matches!(c, Class::DoubleDash) && !dd_seen {
                        dd_seen = true;
                        continue;
                    }
                    run.push((*a).to_owned());
                }
                if positionals.is_none() {
                    positionals = Some(run);
                } else {
                    extras.extend(args[start..i].iter().map(|s| (*s).to_owned()));
                }
            }
            Class::Opt(None, s, _) => {
                extras.push(s.clone());
                i += 1;
            }
            Class::Opt(Some(opt), flag, explicit) => {
                let (mut opt, mut flag, mut explicit) = (*opt, flag.clone(), explicit.clone());
                i += 1;
                loop {
                    let count = takes_arg(opt);
                    let arg: Option<String> = match (&explicit, count) {
                        (Some(e), ArgCount::Zero) if !flag.starts_with("--") && !e.is_empty() => {
                            // `-RD`: a cluster of switches.
                            apply(opt, None, &mut values)?;
                            let first = e.chars().next().unwrap_or('-');
                            let next = format!("-{first}");
                            match find(&opts, &next) {
                                Some(o) => {
                                    let rest = &e[first.len_utf8()..];
                                    explicit =
                                        if rest.is_empty() { None } else { Some(rest.to_owned()) };
                                    opt = o;
                                    flag = next;
                                    continue;
                                }
                                None => {
                                    return Err(UsageError(format!(
                                        "argument {}: ignored explicit argument {}",
                                        action_name(opt),
                                        str_repr(e)
                                    )));
                                }
                            }
                        }
                        (Some(e), ArgCount::Zero) => {
                            return Err(UsageError(format!(
                                "argument {}: ignored explicit argument {}",
                                action_name(opt),
                                str_repr(e)
                            )));
                        }
                        (Some(e), _) => Some(e.clone()),
                        (None, ArgCount::Zero) => None,
                        (None, ArgCount::One) => {
                            if i < args.len() && matches!(classes[i], Class::Arg) {
                                i += 1;
                                Some(args[i - 1].to_owned())
                            } else {
                                return Err(UsageError(format!(
                                    "argument {}: expected one argument",
                                    action_name(opt)
                                )));
                            }
                        }
                        (None, ArgCount::Optional) => {
                            if i < args.len() && matches!(classes[i], Class::Arg) {
                                i += 1;
                                Some(args[i - 1].to_owned())
                            } else {
                                None
                            }
                        }
                    };
                    match opt {
                        Opt::Help => return Ok(Parsed::Help),
                        Opt::Version => return Ok(Parsed::Version),
                        Opt::Setting(_) => apply(opt, arg, &mut values)?,
                    }
                    break;
                }
            }
        }
    }
    if !extras.is_empty() {
        return Err(UsageError(format!("unrecognized arguments: {}", extras.join(" "))));
    }
    Ok(Parsed::Args(ParsedArgs {
        values: values.into_iter().enumerate().filter_map(|(i, v)| v.map(|v| (i, v))).collect(),
        positionals: positionals.unwrap_or_default(),
    }))
}

fn apply(opt: Opt, arg: Option<String>, values: &mut [Option<Value>]) -> Result<(), UsageError> {
    let Opt::Setting(i) = opt else { return Ok(()) };
    let s = &SETTINGS[i];
    let v = match (s.action, arg) {
        (Action::StoreTrue, _) => Value::Bool(true),
        (Action::StoreConst(c), _) => Value::Bool(c),
        (Action::StoreOptional(c), None) => Value::str(c),
        (Action::Append, Some(a)) => {
            let item = convert(i, &a)?;
            let mut list = match values[i].take() {
                Some(Value::List(l)) => l,
                _ => Vec::new(),
            };
            list.push(item);
            Value::List(list)
        }
        (_, Some(a)) => convert(i, &a)?,
        (_, None) => return Ok(()),
    };
    values[i] = Some(v);
    Ok(())
}

/// `ferrocorn (version 0.1.0)`, as gunicorn's `-v/--version` prints it.
pub fn version_text() -> String {
    format!("{PROG} (version {})\n", env!("CARGO_PKG_VERSION"))
}

/// The flags of one setting as argparse shows them (`-w INT, --workers INT`).
fn invocation(s: &Setting) -> String {
    let suffix = match s.action {
        Action::StoreTrue | Action::StoreConst(_) => String::new(),
        Action::StoreOptional(_) => format!(" [{}]", s.metavar()),
        Action::Store | Action::Append => format!(" {}", s.metavar()),
    };
    s.cli.iter().map(|f| format!("{f}{suffix}")).collect::<Vec<_>>().join(", ")
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// The `--help` text: argparse's layout (80 columns), every flag with its help and its
/// default in brackets, as gunicorn formats it (`<help> [<default>]`).
pub fn help_text(env: &Env) -> String {
    const HELP_COL: usize = 24;
    const WIDTH: usize = 78;
    let mut out = format!("{USAGE}\n\noptions:\n");
    let mut entry = |inv: &str, help: &str| {
        let lines = wrap(help, WIDTH - HELP_COL);
        if inv.len() + 2 <= HELP_COL - 2 {
            out.push_str(&format!("  {inv:<width$}", width = HELP_COL - 2));
        } else {
            out.push_str(&format!("  {inv}\n{}", " ".repeat(HELP_COL)));
        }
        for (n, l) in lines.iter().enumerate() {
            if n > 0 {
                out.push_str(&" ".repeat(HELP_COL));
            }
            out.push_str(l);
            out.push('\n');
        }
        if lines.is_empty() {
            out.push('\n');
        }
    };
    entry("-h, --help", "show this help message and exit");
    entry("-v, --version", "show program's version number and exit");
    for s in SETTINGS.iter().filter(|s| !s.cli.is_empty()) {
        let default = s.default.value(env).map(|v| v.py_str()).unwrap_or_default();
        entry(&invocation(s), &format!("{} [{default}]", s.short_help()));
    }
    out
}
