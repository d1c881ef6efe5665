//! gunicorn's validators, one variant per `validate_*` function of `gunicorn/config.py`.
//!
//! A validator takes the value a layer produced (a CLI string, an argparse-converted
//! int, a config-file object) and returns the normalized value or the message of the
//! exception gunicorn would raise (`str(exc)`), which becomes `Error: <message>`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};

use super::env::Env;
use super::value::{ObjKind, PyObj, Value};

/// Imports `module.attr` strings given for hooks; provided by the Python bridge.
pub trait Importer {
    /// Imports the object at a dotted path, or returns the message of the `TypeError`
    /// gunicorn raises (`No module named 'x'`, `Can not load 'a' from 'b'`).
    fn import(&self, module: &str, attr: &str) -> Result<PyObj, String>;

    /// Calls a function without arguments and returns its result (gunicorn's
    /// `validate_class` calls a function given for `worker_class` / `logger_class`).
    /// `None` when this importer cannot run Python.
    fn call0(&self, _function: &PyObj) -> Option<Result<Value, String>> {
        None
    }
}

/// What validators may consult besides the value.
pub struct Ctx<'a> {
    /// The environment (cwd for chdir, user and group databases, euid/egid).
    pub env: &'a Env,
    /// Resolves hook import strings; `None` until the Python runtime exists.
    pub importer: Option<&'a dyn Importer>,
    /// Warnings gunicorn writes to stderr while validating (`ssl_version`, globs).
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("has_importer", &self.importer.is_some()).finish()
    }
}

impl<'a> Ctx<'a> {
    /// A context without a Python importer.
    pub fn new(env: &'a Env) -> Ctx<'a> {
        Ctx { env, importer: None, warnings: Vec::new() }
    }
}

/// The validators of gunicorn's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validator {
    /// `validate_string`: None or a str, stripped.
    String,
    /// `validate_bool`: None, a bool, or the strings `true` / `false` (any case, stripped).
    Bool,
    /// `validate_pos_int`: an int (bools count) or a str parsed as `int(s, 0)`; not negative.
    PosInt,
    /// `validate_dict`: must be a dict.
    Dict,
    /// `validate_list_string`: falsy → `[]`, a bare str is wrapped, items are strings, stripped.
    ListString,
    /// `validate_list_of_files_or_patterns`: literal paths must exist; globs pass.
    ListOfFilesOrPatterns,
    /// `validate_string_to_list`: comma-separated string → stripped items, empties dropped.
    StringToList,
    /// `validate_string_to_addr_list`: like `StringToList`, each item `*` or an IP network
    /// (strict: no host bits set).
    StringToAddrList,
    /// `validate_class`: a function is called, a class is kept, otherwise a string.
    Class,
    /// `validate_callable(arity)`: a callable of exactly this positional arity, or an
    /// importable `module.attr` string.
    Callable(usize),
    /// `validate_post_request`: a callable of arity 2, 3 or 4.
    PostRequest,
    /// `validate_user`: None → euid, an int, a digit string, or a user name.
    User,
    /// `validate_group`: None → egid, an int, a digit string, or a group name.
    Group,
    /// `validate_chdir`: a path (relative to the cwd) that must exist; made absolute.
    Chdir,
    /// `validate_statsd_address`: `host[:port]` (default port 8125), `unix://PATH`, `unix:PORT`.
    StatsdAddress,
    /// `validate_reload_engine`: `auto`, `poll` or `inotify`.
    ReloadEngine,
    /// `validate_proxy_protocol`: off/v1/v2/auto (and true/false/1/0/none, bools).
    ProxyProtocol,
    /// `validate_header_map_behaviour`: drop/refuse/dangerous.
    HeaderMap,
    /// `validate_http_protocols`: comma list of h1/h2, no duplicates.
    HttpProtocols,
    /// `validate_http2_cleartext`: off/prior-knowledge/upgrade/both (bool True → prior-knowledge).
    Http2Cleartext,
    /// `validate_http2_window_size`: positive int up to 2^31-1.
    Http2WindowSize,
    /// `validate_http2_stream_limit`: int ≥ 1.
    Http2StreamLimit,
    /// `validate_http2_frame_size`: 16384..=16777215.
    Http2FrameSize,
    /// `validate_ssl_version`: anything; warns when not the default.
    SslVersion,
    /// `validate_asgi_loop`: auto/asyncio/uvloop.
    AsgiLoop,
    /// `validate_asgi_lifespan`: auto/on/off.
    AsgiLifespan,
    /// `validate_http_parser`: auto/fast/python.
    HttpParser,
}

type VResult = Result<Value, String>;

impl Validator {
    /// Runs the validator.
    pub fn validate(self, v: &Value, ctx: &mut Ctx<'_>) -> VResult {
        use Validator as V;
        match self {
            V::String => string(v),
            V::Bool => boolean(v),
            V::PosInt => pos_int(v).map(Value::Int),
            V::Dict => match v {
                Value::Dict(_) => Ok(v.clone()),
                _ => Err(format!("Value is not a dictionary: {} ", v.py_str())),
            },
            V::ListString => list_string(v),
            V::ListOfFilesOrPatterns => files_or_patterns(v, ctx),
            V::StringToList => string_to_list(v),
            V::StringToAddrList => addr_list(v),
            V::Class => class(v, ctx),
            V::Callable(arity) => callable(v, Some(arity), ctx),
            V::PostRequest => post_request(v, ctx),
            V::User => id_or_name(v, ctx.env.euid, |n| ctx.env.user_id(n), "user"),
            V::Group => id_or_name(v, ctx.env.egid, |n| ctx.env.group_id(n), "group"),
            V::Chdir => chdir(v, ctx.env),
            V::StatsdAddress => statsd_address(v),
            V::ReloadEngine => match v {
                Value::Str(s) if matches!(s.as_str(), "auto" | "poll" | "inotify") => Ok(v.clone()),
                _ => Err(format!("Invalid reload_engine: {}", v.py_repr())),
            },
            V::ProxyProtocol => proxy_protocol(v),
            V::HeaderMap => match v {
                Value::None => Ok(Value::None),
                Value::Str(s) => match s.trim().to_lowercase().as_str() {
                    m @ ("drop" | "refuse" | "dangerous") => Ok(Value::str(m)),
                    _ => Err(format!("Invalid header map behaviour: {s}")),
                },
                other => Err(cast_error(other)),
            },
            V::HttpProtocols => http_protocols(v),
            V::Http2Cleartext => match v {
                Value::None => Ok(Value::str("off")),
                Value::Bool(b) => Ok(Value::str(if *b { "prior-knowledge" } else { "off" })),
                Value::Str(s) => {
                    let s = s.trim().to_lowercase();
                    if matches!(s.as_str(), "off" | "prior-knowledge" | "upgrade" | "both") {
                        Ok(Value::Str(s))
                    } else {
                        Err(format!("Invalid http2_cleartext: {s}"))
                    }
                }
                other => Err(cast_error(other)),
            },
            V::Http2WindowSize => {
                let n = pos_int(v)?;
                if n > i64::from(i32::MAX) {
                    return Err(format!("HTTP/2 window size must be at most 2147483647: {n}"));
                }
                Ok(Value::Int(n))
            }
            V::Http2StreamLimit => {
                let n = pos_int(v)?;
                if n < 1 {
                    return Err(format!("HTTP/2 max concurrent streams must be at least 1: {n}"));
                }
                Ok(Value::Int(n))
            }
            V::Http2FrameSize => {
                let n = any_int(v)?;
                if !(16384..=16_777_215).contains(&n) {
                    return Err(format!(
                        "http2_max_frame_size must be between 16384 and 16777215, got {n}"
                    ));
                }
                Ok(Value::Int(n))
            }
            V::SslVersion => {
                if *v != Value::Int(2) {
                    ctx.warnings.push(
                        "Warning: option `ssl_version` is deprecated and it is ignored. Use ssl_context instead."
                            .to_owned(),
                    );
                }
                Ok(v.clone())
            }
            V::AsgiLoop => choice(v, &["auto", "asyncio", "uvloop"], "Invalid ASGI loop: "),
            V::AsgiLifespan => choice(v, &["auto", "on", "off"], "Invalid ASGI lifespan: "),
            V::HttpParser => match v {
                Value::None => Ok(Value::str("auto")),
                Value::Str(s) => {
                    let s = s.trim().to_lowercase();
                    if matches!(s.as_str(), "auto" | "fast" | "python") {
                        Ok(Value::Str(s))
                    } else {
                        Err("http_parser must be one of: auto, fast, python".to_owned())
                    }
                }
                _ => Err("http_parser must be a string".to_owned()),
            },
        }
    }

    /// A short description for the generated docs.
    pub fn describe(self) -> String {
        use Validator as V;
        match self {
            V::String => "string (stripped)".into(),
            V::Bool => "boolean (`True`/`False`, or the strings `true`/`false`)".into(),
            V::PosInt => "non-negative integer (`int(s, 0)` for strings)".into(),
            V::Dict => "dict".into(),
            V::ListString => "list of strings".into(),
            V::ListOfFilesOrPatterns => "list of existing files or glob patterns".into(),
            V::StringToList => "comma-separated list".into(),
            V::StringToAddrList => "comma-separated IP addresses or networks, or `*`".into(),
            V::Class => "dotted path or name, or a class".into(),
            V::Callable(n) => format!("callable taking {n} positional argument(s)"),
            V::PostRequest => "callable taking 2, 3 or 4 positional arguments".into(),
            V::User => "user id or name".into(),
            V::Group => "group id or name".into(),
            V::Chdir => "existing directory".into(),
            V::StatsdAddress => "`host:port` or `unix://PATH`".into(),
            V::ReloadEngine => "one of `auto`, `poll`, `inotify`".into(),
            V::ProxyProtocol => {
                "one of `off`, `v1`, `v2`, `auto` (`true`/`1` = auto, `false`/`0`/`none` = off)"
                    .into()
            }
            V::HeaderMap => "one of `drop`, `refuse`, `dangerous`".into(),
            V::HttpProtocols => "comma-separated list of `h1`, `h2`".into(),
            V::Http2Cleartext => "one of `off`, `prior-knowledge`, `upgrade`, `both`".into(),
            V::Http2WindowSize => "integer 0..=2147483647".into(),
            V::Http2StreamLimit => "integer ≥ 1".into(),
            V::Http2FrameSize => "integer 16384..=16777215".into(),
            V::SslVersion => "ignored (deprecated)".into(),
            V::AsgiLoop => "one of `auto`, `asyncio`, `uvloop`".into(),
            V::AsgiLifespan => "one of `auto`, `on`, `off`".into(),
            V::HttpParser => "one of `auto`, `fast`, `python`".into(),
        }
    }
}

fn cast_error(v: &Value) -> String {
    format!("Invalid type for casting: {}", v.py_str())
}

fn choice(v: &Value, allowed: &[&str], prefix: &str) -> VResult {
    match v {
        Value::None => Ok(Value::str(allowed[0])),
        Value::Str(s) => {
            let s = s.trim().to_lowercase();
            if allowed.contains(&s.as_str()) {
                Ok(Value::Str(s))
            } else {
                Err(format!("{prefix}{s}"))
            }
        }
        other => Err(cast_error(other)),
    }
}

fn string(v: &Value) -> VResult {
    match v {
        Value::None => Ok(Value::None),
        Value::Str(s) => Ok(Value::str(py_strip(s))),
        other => Err(format!("Not a string: {}", other.py_str())),
    }
}

/// Python's `str.strip()` without arguments.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

fn boolean(v: &Value) -> VResult {
    match v {
        Value::None => Ok(Value::None),
        Value::Bool(_) => Ok(v.clone()),
        Value::Str(s) => match py_strip(s).to_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("Invalid boolean: {s}")),
        },
        other => Err(cast_error(other)),
    }
}

/// `int(val, 0)` for strings, `int(val)` for ints and bools, as `validate_pos_int` does.
fn any_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Str(s) => parse_int_base0(s)
            .ok_or_else(|| format!("invalid literal for int() with base 0: {}", v.py_repr())),
        _ => Err("int() can't convert non-string with explicit base".to_owned()),
    }
}

fn pos_int(v: &Value) -> Result<i64, String> {
    let n = any_int(v)?;
    if n < 0 {
        return Err(format!("Value must be positive: {n}"));
    }
    Ok(n)
}

/// Digits with single underscores between them, in `radix`.
fn digits(s: &str, radix: u32) -> Option<i64> {
    if s.is_empty() || s.starts_with('_') || s.ends_with('_') || s.contains("__") {
        return None;
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    if !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i64::from_str_radix(&clean, radix).ok()
}

fn split_sign(s: &str) -> (bool, &str) {
    if let Some(r) = s.strip_prefix('-') {
        (true, r)
    } else {
        (false, s.strip_prefix('+').unwrap_or(s))
    }
}

/// Python's `int(s)` (base 10): surrounding whitespace, a sign, digits with underscores.
pub fn parse_int_base10(s: &str) -> Option<i64> {
    let (neg, body) = split_sign(py_strip(s));
    digits(body, 10).map(|n| if neg { -n } else { n })
}

/// Python's `int(s, 0)`: prefixes `0x`/`0o`/`0b`; a decimal with a leading zero must be
/// all zeros.
pub fn parse_int_base0(s: &str) -> Option<i64> {
    let (neg, body) = split_sign(py_strip(s));
    let lower = body.to_ascii_lowercase();
    let n = if let Some(rest) =
        ["0x", "0o", "0b"].iter().find_map(|p| lower.strip_prefix(p).map(|r| (p, r)))
    {
        let radix = match rest.0.as_bytes()[1] {
            b'x' => 16,
            b'o' => 8,
            _ => 2,
        };
        digits(rest.1.strip_prefix('_').unwrap_or(rest.1), radix)?
    } else {
        let n = digits(body, 10)?;
        if body.starts_with('0') && n != 0 {
            return None;
        }
        n
    };
    Some(if neg { -n } else { n })
}

/// argparse `type=auto_int` (gunicorn's helper for `--umask`): a leading `0` followed by a
/// digit means octal, otherwise `int(s, 0)`.
pub fn parse_auto_int(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b'0' && b[1].is_ascii_digit() {
        parse_int_base0(&format!("0o{}", &s[1..]))
    } else {
        parse_int_base0(s)
    }
}

fn list_string(v: &Value) -> VResult {
    if !v.is_truthy() {
        return Ok(Value::List(Vec::new()));
    }
    let items: Vec<Value> = match v {
        Value::Str(_) => vec![v.clone()],
        Value::List(items) | Value::Tuple(items) => items.clone(),
        Value::Dict(d) => d.iter().map(|(k, _)| k.clone()).collect(),
        other => return Err(format!("'{}' object is not iterable", other.type_name())),
    };
    items.iter().map(string).collect::<Result<Vec<_>, _>>().map(Value::List)
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn files_or_patterns(v: &Value, ctx: &mut Ctx<'_>) -> VResult {
    let Value::List(items) = list_string(v)? else { unreachable!("list_string returns a list") };
    for item in &items {
        let Value::Str(s) = item else { continue };
        if !is_glob(s) {
            if !ctx.env.cwd.join(s).exists() {
                return Err(format!("File {s} does not exists."));
            }
        } else if !glob_matches_any(&ctx.env.cwd, s) {
            // gunicorn: `warnings.warn(..., RuntimeWarning)`; the pattern is kept, as the
            // reloader expands it again on every cycle.
            ctx.warnings.push(format!("RuntimeWarning: Pattern {s} currently matches no files."));
        }
    }
    Ok(Value::List(items))
}

/// Whether Python's `glob.glob(pattern, recursive=True)`, run in `cwd`, finds anything
/// (see [`glob`]).
pub fn glob_matches_any(cwd: &Path, pattern: &str) -> bool {
    !glob(cwd, pattern).is_empty()
}

/// Whether `s` is a glob pattern (gunicorn's `util.is_glob_pattern`).
pub fn is_glob_pattern(s: &str) -> bool {
    is_glob(s)
}

/// What Python's `glob.glob(pattern, recursive=True)`, run in `cwd`, finds: `*`, `?` and
/// `[...]` within a path component (not matching a leading `.` unless the pattern's
/// component starts with one), `**` for any depth of directories.
pub fn glob(cwd: &Path, pattern: &str) -> Vec<PathBuf> {
    let base = if pattern.starts_with('/') { PathBuf::from("/") } else { cwd.to_path_buf() };
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    let mut current = vec![base];
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        for dir in &current {
            if *part == "**" {
                // Zero or more directories (and, as the last component, files too).
                let mut stack = vec![dir.clone()];
                while let Some(d) = stack.pop() {
                    next.push(d.clone());
                    let Ok(entries) = std::fs::read_dir(&d) else {
                        continue;
                    };
                    for e in entries.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if name.starts_with('.') {
                            continue;
                        }
                        let path = e.path();
                        if path.is_dir() {
                            stack.push(path);
                        } else if last {
                            next.push(path);
                        }
                    }
                }
            } else if !is_glob(part) {
                let p = dir.join(part);
                if p.exists() {
                    next.push(p);
                }
            } else if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') && !part.starts_with('.') {
                        continue;
                    }
                    if fnmatch(part.as_bytes(), name.as_bytes()) && (last || e.path().is_dir()) {
                        next.push(e.path());
                    }
                }
            }
        }
        if next.is_empty() {
            return next;
        }
        current = next;
    }
    current
}

/// Python's `fnmatch.fnmatchcase` for one path component: `*`, `?`, `[seq]`, `[!seq]`
/// (with ranges); a `[` without its `]` is a literal.
fn fnmatch(pat: &[u8], name: &[u8]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some(b'*') => (0..=name.len()).any(|i| fnmatch(&pat[1..], &name[i..])),
        Some(b'?') => !name.is_empty() && fnmatch(&pat[1..], &name[1..]),
        Some(b'[') => {
            let Some(close) = pat.iter().skip(2).position(|&c| c == b']').map(|p| p + 2) else {
                return name.first() == Some(&b'[') && fnmatch(&pat[1..], &name[1..]);
            };
            let Some(&c) = name.first() else { return false };
            let (negate, set) = match pat[1] {
                b'!' => (true, &pat[2..close]),
                _ => (false, &pat[1..close]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != negate && fnmatch(&pat[close + 1..], &name[1..])
        }
        Some(&p) => name.first() == Some(&p) && fnmatch(&pat[1..], &name[1..]),
    }
}

fn string_to_list(v: &Value) -> VResult {
    match string(v)? {
        Value::Str(s) if !s.is_empty() => Ok(Value::List(
            s.split(',').filter(|p| !p.is_empty()).map(|p| Value::str(py_strip(p))).collect(),
        )),
        _ => Ok(Value::List(Vec::new())),
    }
}

fn addr_list(v: &Value) -> VResult {
    let list = string_to_list(v)?;
    for item in list.as_str_list() {
        if item != "*" {
            check_ip_network(item)?;
        }
    }
    Ok(list)
}

/// Checks an address or network as Python's `ipaddress.ip_network(s)` (strict) does.
pub fn check_ip_network(s: &str) -> Result<(), String> {
    let bad =
        || format!("{} does not appear to be an IPv4 or IPv6 network", Value::str(s).py_repr());
    let (addr, mask) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let prefix_digits = |m: &str, max: u32| -> Option<u32> {
        if m.is_empty() || m.len() > 3 || !m.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        m.parse().ok().filter(|&p| p <= max)
    };
    if let Ok(a) = addr.parse::<Ipv4Addr>() {
        let bits = u32::from(a);
        let prefix = match mask {
            None => 32,
            Some(m) => match prefix_digits(m, 32) {
                Some(p) => p,
                None => v4_mask_prefix(m).ok_or_else(bad)?,
            },
        };
        let host = u32::MAX.checked_shr(prefix).unwrap_or(0);
        if bits & host != 0 {
            return Err(format!("{a}/{prefix} has host bits set"));
        }
        return Ok(());
    }
    if let Ok(a) = addr.parse::<Ipv6Addr>() {
        let bits = u128::from(a);
        let prefix = match mask {
            None => 128,
            Some(m) => prefix_digits(m, 128).ok_or_else(bad)?,
        };
        let host = u128::MAX.checked_shr(prefix).unwrap_or(0);
        if bits & host != 0 {
            return Err(format!("{a}/{prefix} has host bits set"));
        }
        return Ok(());
    }
    Err(bad())
}

/// A dotted IPv4 netmask (`255.255.0.0`) or hostmask (`0.0.255.255`) as a prefix length.
fn v4_mask_prefix(m: &str) -> Option<u32> {
    let bits = u32::from(m.parse::<Ipv4Addr>().ok()?);
    let contiguous = |x: u32| x.leading_ones() + x.trailing_zeros() == 32 || x == 0;
    if contiguous(bits) {
        Some(bits.leading_ones())
    } else if contiguous(!bits) {
        Some((!bits).leading_ones())
    } else {
        None
    }
}

fn class(v: &Value, ctx: &mut Ctx<'_>) -> VResult {
    match v {
        // gunicorn calls a function to produce the class, then validates what it returned
        // as it would a value (a class is kept, anything else must be a string).
        Value::Object(o) if o.kind == ObjKind::Function => {
            match ctx.importer.and_then(|i| i.call0(o)) {
                Some(Ok(r @ Value::Object(_))) if matches!(&r, Value::Object(c) if c.kind == ObjKind::Class) => {
                    Ok(r)
                }
                Some(Ok(other)) => string(&other),
                Some(Err(e)) => Err(e),
                // Without Python the function is kept, marked by its kind.
                None => Ok(v.clone()),
            }
        }
        Value::Object(o) if o.kind == ObjKind::Class => Ok(v.clone()),
        other => string(other),
    }
}

fn callable(v: &Value, arity: Option<usize>, ctx: &mut Ctx<'_>) -> VResult {
    let obj = match v {
        Value::Str(s) => {
            let Some((module, attr)) = s.rsplit_once('.') else {
                return Err(format!(
                    "Value '{s}' is not import string. Format: module[.submodules...].object"
                ));
            };
            match ctx.importer {
                Some(imp) => imp.import(module, attr)?,
                None => {
                    return Err(format!(
                        "cannot import '{s}': importing hooks needs the Python runtime, which this binary does not embed (use the `ferrocorn` command of the Python package)"
                    ));
                }
            }
        }
        Value::Object(o) => (**o).clone(),
        other => return Err(format!("Value is not callable: {}", other.py_str())),
    };
    if !obj.is_callable() {
        return Err(format!("Value is not callable: {}", obj.text));
    }
    if let Some(want) = arity {
        if obj.arity != Some(want) {
            return Err(format!("Value must have an arity of: {want}"));
        }
    }
    Ok(Value::Object(Box::new(obj)))
}

/// The `__qualname__` of the wrapper gunicorn's `validate_post_request` puts around a
/// hook of arity 2 or 3 (`--print-config` shows it instead of the hook's own name).
pub const POST_REQUEST_WRAPPER: &str = "validate_post_request.<locals>.<lambda>";

fn post_request(v: &Value, ctx: &mut Ctx<'_>) -> VResult {
    let val = callable(v, None, ctx)?;
    match val {
        Value::Object(o) if o.arity == Some(4) => Ok(Value::Object(o)),
        // gunicorn wraps the hook in a 4-argument lambda; the object keeps its arity so
        // the caller knows how many arguments to pass.
        Value::Object(mut o) if matches!(o.arity, Some(2 | 3)) => {
            o.qualname = POST_REQUEST_WRAPPER.to_owned();
            Ok(Value::Object(o))
        }
        _ => Err("Value must have an arity of: 4".to_owned()),
    }
}

fn id_or_name(
    v: &Value,
    default: u32,
    lookup: impl Fn(&str) -> Option<u32>,
    what: &str,
) -> VResult {
    match v {
        Value::None => Ok(Value::Int(i64::from(default))),
        Value::Int(_) => Ok(v.clone()),
        Value::Bool(b) => Ok(Value::Bool(*b)),
        Value::Str(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) => {
            s.parse::<i64>().map(Value::Int).map_err(|e| e.to_string())
        }
        Value::Str(s) => lookup(s)
            .map(|id| Value::Int(i64::from(id)))
            .ok_or_else(|| format!("No such {what}: '{s}'")),
        other => Err(format!("'{}' object has no attribute 'isdigit'", other.type_name())),
    }
}

/// `os.path.abspath(os.path.normpath(path))` done lexically.
pub fn normalize_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn chdir(v: &Value, env: &Env) -> VResult {
    let s = match string(v)? {
        Value::Str(s) => s,
        _ => return Err("expected str, bytes or os.PathLike object, not NoneType".to_owned()),
    };
    let path = normalize_path(&env.cwd.join(&s));
    if !path.exists() {
        return Err(format!("can't chdir to {}", Value::str(s.as_str()).py_repr()));
    }
    Ok(Value::str(path.to_string_lossy()))
}

fn statsd_address(v: &Value) -> VResult {
    let s = match string(v)? {
        Value::Str(s) => s,
        _ => return Ok(Value::None),
    };
    let bad = || "Value must be one of ('host:port', 'unix://PATH')".to_owned();
    if let Some(port) = s.strip_prefix("unix:") {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            let port = port.parse::<i64>().map_err(|_| bad())?;
            return Ok(Value::Tuple(vec![Value::str("unix"), Value::Int(port)]));
        }
        return Ok(Value::str(port.strip_prefix("//").unwrap_or(port)));
    }
    if let Some(fd) = s.strip_prefix("fd://") {
        return parse_int_base10(fd).map(Value::Int).ok_or_else(bad);
    }
    let netloc = s.strip_prefix("tcp://").unwrap_or(&s);
    let (host, port) = if netloc.contains('[') && netloc.contains(']') {
        let host = netloc.split(']').next().unwrap_or("").get(1..).unwrap_or("");
        let port =
            netloc.split_once("]:").map_or("8125", |(_, p)| p.split("]:").next().unwrap_or(p));
        (host, port)
    } else if netloc.contains(':') {
        let mut parts = netloc.split(':');
        (parts.next().unwrap_or(""), parts.next().unwrap_or("8125"))
    } else if netloc.is_empty() {
        ("0.0.0.0", "8125")
    } else {
        (netloc, "8125")
    };
    let port = parse_int_base10(port).ok_or_else(bad)?;
    Ok(Value::Tuple(vec![Value::str(host.to_lowercase()), Value::Int(port)]))
}

fn proxy_protocol(v: &Value) -> VResult {
    match v {
        Value::None => Ok(Value::str("off")),
        Value::Bool(b) => Ok(Value::str(if *b { "auto" } else { "off" })),
        Value::Str(s) => {
            let mode = match s.trim().to_lowercase().as_str() {
                "false" | "off" | "0" | "none" => "off",
                "true" | "auto" | "1" => "auto",
                "v1" => "v1",
                "v2" => "v2",
                _ => return Err("proxy_protocol must be: off, v1, v2, or auto".to_owned()),
            };
            Ok(Value::str(mode))
        }
        _ => Err("proxy_protocol must be string or bool".to_owned()),
    }
}

fn http_protocols(v: &Value) -> VResult {
    let s = match v {
        Value::None => return Ok(Value::str_list(&["h1"])),
        Value::Str(s) => s.trim(),
        _ => return Err("http_protocols must be a string".to_owned()),
    };
    let protos: Vec<String> =
        s.split(',').map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()).collect();
    if protos.is_empty() {
        return Ok(Value::str_list(&["h1"]));
    }
    for p in &protos {
        if p != "h1" && p != "h2" {
            return Err(format!("Invalid protocol '{p}'. Valid protocols: h1, h2"));
        }
    }
    if protos.len() == 2 && protos[0] == protos[1] || protos.len() > 2 {
        return Err("Duplicate protocols specified".to_owned());
    }
    Ok(Value::str_list(&protos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_as_python() {
        assert!(fnmatch(b"*.py", b"app.py"));
        assert!(!fnmatch(b"*.py", b"app.pyc"));
        assert!(fnmatch(b"a?c", b"abc"));
        assert!(fnmatch(b"[ab]x", b"bx"));
        assert!(!fnmatch(b"[!ab]x", b"bx"));
        assert!(fnmatch(b"[a-c]x", b"cx"));
        assert!(fnmatch(b"[x", b"[x"));
        assert!(fnmatch(b"*", b""));
    }

    #[test]
    fn glob_finds_files_at_any_depth() {
        let dir = std::env::temp_dir().join(format!("ferrocorn-glob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/t.html"), "").unwrap();
        std::fs::write(dir.join(".hidden.py"), "").unwrap();
        assert!(glob_matches_any(&dir, "a/*/t.html"));
        assert!(glob_matches_any(&dir, "**/*.html"));
        assert!(glob_matches_any(&dir, "a/**"));
        assert!(!glob_matches_any(&dir, "*.py"));
        assert!(glob_matches_any(&dir, ".*.py"));
        assert!(!glob_matches_any(&dir, "*/t.html"));
        assert!(glob_matches_any(&dir, &format!("{}/a/b/*", dir.display())));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
