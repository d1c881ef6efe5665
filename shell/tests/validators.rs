//! Table tests for every validator. Expected messages are gunicorn 27.0.1's (`str(exc)`),
//! checked by hand against a real gunicorn.

use ferrocorn::settings::validate::{
    Ctx, Importer, POST_REQUEST_WRAPPER, Validator as V, check_ip_network, parse_auto_int,
    parse_int_base0, parse_int_base10,
};
use ferrocorn::settings::{Env, ObjKind, PyObj, Value};

fn s(x: &str) -> Value {
    Value::str(x)
}

fn env() -> Env {
    let mut e = Env::bare("/tmp");
    e.euid = 1000;
    e.egid = 100;
    e.users = vec![("root".into(), 0), ("www-data".into(), 33)];
    e.groups = vec![("root".into(), 0), ("staff".into(), 50)];
    e
}

fn check(v: V, cases: &[(Value, Result<Value, &str>)]) {
    let env = env();
    for (input, want) in cases {
        let mut ctx = Ctx::new(&env);
        let got = v.validate(input, &mut ctx);
        let want = want.clone().map_err(str::to_owned);
        assert_eq!(got, want, "{v:?} on {input:?}");
    }
}

#[test]
fn string() {
    check(
        V::String,
        &[
            (s("  x "), Ok(s("x"))),
            (Value::None, Ok(Value::None)),
            (Value::Int(5), Err("Not a string: 5")),
            (Value::List(vec![]), Err("Not a string: []")),
        ],
    );
}

#[test]
fn boolean_accepts_only_what_gunicorn_accepts() {
    check(
        V::Bool,
        &[
            (Value::Bool(true), Ok(Value::Bool(true))),
            (s("True"), Ok(Value::Bool(true))),
            (s(" false "), Ok(Value::Bool(false))),
            (s("FALSE"), Ok(Value::Bool(false))),
            (Value::None, Ok(Value::None)),
            (s("yes"), Err("Invalid boolean: yes")),
            (s("1"), Err("Invalid boolean: 1")),
            (s("no"), Err("Invalid boolean: no")),
            (Value::Int(1), Err("Invalid type for casting: 1")),
            (Value::Int(0), Err("Invalid type for casting: 0")),
        ],
    );
}

#[test]
fn pos_int() {
    check(
        V::PosInt,
        &[
            (Value::Int(3), Ok(Value::Int(3))),
            (Value::Bool(true), Ok(Value::Int(1))),
            (s("0x10"), Ok(Value::Int(16))),
            (s(" 12 "), Ok(Value::Int(12))),
            (s("0"), Ok(Value::Int(0))),
            (s("0o17"), Ok(Value::Int(15))),
            (s("1_000"), Ok(Value::Int(1000))),
            (Value::Int(-1), Err("Value must be positive: -1")),
            (s("-5"), Err("Value must be positive: -5")),
            (s("010"), Err("invalid literal for int() with base 0: '010'")),
            (s("x"), Err("invalid literal for int() with base 0: 'x'")),
            (Value::Float(1.5), Err("int() can't convert non-string with explicit base")),
            (Value::None, Err("int() can't convert non-string with explicit base")),
        ],
    );
}

#[test]
fn int_parsers() {
    assert_eq!(parse_int_base10(" -7 "), Some(-7));
    assert_eq!(parse_int_base10("010"), Some(10));
    assert_eq!(parse_int_base10("1__0"), None);
    assert_eq!(parse_int_base10("0x10"), None);
    assert_eq!(parse_int_base10(""), None);
    assert_eq!(parse_int_base0("0X1f"), Some(31));
    assert_eq!(parse_int_base0("0b101"), Some(5));
    assert_eq!(parse_int_base0("0x_1f"), Some(31));
    assert_eq!(parse_int_base0("00"), Some(0));
    assert_eq!(parse_int_base0("08"), None);
    assert_eq!(parse_auto_int("0022"), Some(18));
    assert_eq!(parse_auto_int("022"), Some(18));
    assert_eq!(parse_auto_int("0x1f"), Some(31));
    assert_eq!(parse_auto_int("18"), Some(18));
    assert_eq!(parse_auto_int("08"), None);
    assert_eq!(parse_auto_int("0"), Some(0));
}

#[test]
fn dict() {
    let d = Value::Dict(vec![(s("A"), s("b"))]);
    check(V::Dict, &[(d.clone(), Ok(d)), (s("x"), Err("Value is not a dictionary: x "))]);
}

#[test]
fn list_string() {
    check(
        V::ListString,
        &[
            (s("one"), Ok(Value::str_list(&["one"]))),
            (Value::str_list(&[" a ", "b"]), Ok(Value::str_list(&["a", "b"]))),
            (Value::Tuple(vec![s("a")]), Ok(Value::str_list(&["a"]))),
            (Value::None, Ok(Value::List(vec![]))),
            (s(""), Ok(Value::List(vec![]))),
            (Value::List(vec![Value::Int(1)]), Err("Not a string: 1")),
            (Value::Int(3), Err("'int' object is not iterable")),
        ],
    );
}

#[test]
fn files_or_patterns() {
    check(
        V::ListOfFilesOrPatterns,
        &[
            (Value::str_list(&["/", "/nope/*.py"]), Ok(Value::str_list(&["/", "/nope/*.py"]))),
            (
                Value::str_list(&["/nonexistent-ferrocorn"]),
                Err("File /nonexistent-ferrocorn does not exists."),
            ),
        ],
    );
}

#[test]
fn string_to_list() {
    check(
        V::StringToList,
        &[
            (s("A, B,,C"), Ok(Value::str_list(&["A", "B", "C"]))),
            (s(""), Ok(Value::List(vec![]))),
            (Value::None, Ok(Value::List(vec![]))),
        ],
    );
}

#[test]
fn addr_list() {
    check(
        V::StringToAddrList,
        &[
            (s("127.0.0.1,::1"), Ok(Value::str_list(&["127.0.0.1", "::1"]))),
            (s("*"), Ok(Value::str_list(&["*"]))),
            (s("10.0.0.0/8, fe80::/10"), Ok(Value::str_list(&["10.0.0.0/8", "fe80::/10"]))),
            (s("1.2.3.4/24"), Err("1.2.3.4/24 has host bits set")),
            (s("foo"), Err("'foo' does not appear to be an IPv4 or IPv6 network")),
            (s("1.2.3.0/33"), Err("'1.2.3.0/33' does not appear to be an IPv4 or IPv6 network")),
        ],
    );
    assert_eq!(check_ip_network("10.0.0.0/255.0.0.0"), Ok(()));
    assert_eq!(check_ip_network("10.0.0.0/0.255.255.255"), Ok(()));
    assert_eq!(check_ip_network("10.0.0.1/0.0.0.255"), Err("10.0.0.1/24 has host bits set".into()));
    assert_eq!(check_ip_network("::1/64"), Err("::1/64 has host bits set".into()));
    assert_eq!(check_ip_network("0.0.0.0/0"), Ok(()));
    assert!(check_ip_network("01.2.3.4").is_err());
}

fn func(q: &str, arity: usize) -> Value {
    Value::Object(Box::new(PyObj::function(q, arity)))
}

#[test]
fn class() {
    let k =
        Value::Object(Box::new(PyObj { kind: ObjKind::Class, ..PyObj::function("MyWorker", 0) }));
    check(
        V::Class,
        &[
            (s(" gthread "), Ok(s("gthread"))),
            (k.clone(), Ok(k)),
            (Value::Int(1), Err("Not a string: 1")),
        ],
    );
}

struct FakeImporter;
impl Importer for FakeImporter {
    fn import(&self, module: &str, attr: &str) -> Result<PyObj, String> {
        match (module, attr) {
            ("hooks", "ready") => Ok(PyObj::function("ready", 1)),
            _ => Err(format!("No module named '{module}'")),
        }
    }
}

#[test]
fn callables_check_arity_and_import_strings() {
    check(
        V::Callable(1),
        &[
            (func("f", 1), Ok(func("f", 1))),
            (func("f", 2), Err("Value must have an arity of: 1")),
            (Value::Int(3), Err("Value is not callable: 3")),
            (
                s("noimport"),
                Err("Value 'noimport' is not import string. Format: module[.submodules...].object"),
            ),
        ],
    );
    let not_callable = Value::Object(Box::new(PyObj {
        kind: ObjKind::Other,
        text: "obj".into(),
        ..PyObj::function("o", 0)
    }));
    check(V::Callable(1), &[(not_callable, Err("Value is not callable: obj"))]);
    let env = env();
    let mut ctx = Ctx { env: &env, importer: Some(&FakeImporter), warnings: vec![] };
    assert_eq!(V::Callable(1).validate(&s("hooks.ready"), &mut ctx), Ok(func("ready", 1)));
    assert_eq!(
        V::Callable(1).validate(&s("nope.x"), &mut ctx),
        Err("No module named 'nope'".into())
    );
    let mut ctx = Ctx::new(&env);
    assert!(
        V::Callable(1)
            .validate(&s("hooks.ready"), &mut ctx)
            .unwrap_err()
            .contains("Python runtime")
    );
}

#[test]
fn post_request_accepts_arity_2_to_4() {
    check(
        V::PostRequest,
        &[
            // Arity 2 and 3 are wrapped, as gunicorn wraps them in a 4-argument lambda
            // (whose name `--print-config` shows).
            (func("f", 2), Ok(func(POST_REQUEST_WRAPPER, 2))),
            (func("f", 3), Ok(func(POST_REQUEST_WRAPPER, 3))),
            (func("f", 4), Ok(func("f", 4))),
            (func("f", 1), Err("Value must have an arity of: 4")),
            (func("f", 5), Err("Value must have an arity of: 4")),
        ],
    );
}

#[test]
fn user_and_group() {
    check(
        V::User,
        &[
            (Value::None, Ok(Value::Int(1000))),
            (Value::Int(5), Ok(Value::Int(5))),
            (s("33"), Ok(Value::Int(33))),
            (s("www-data"), Ok(Value::Int(33))),
            (s("nosuch"), Err("No such user: 'nosuch'")),
        ],
    );
    check(
        V::Group,
        &[
            (Value::None, Ok(Value::Int(100))),
            (s("staff"), Ok(Value::Int(50))),
            (s("7"), Ok(Value::Int(7))),
            (s("nosuch"), Err("No such group: 'nosuch'")),
        ],
    );
}

#[test]
fn chdir() {
    check(
        V::Chdir,
        &[
            (s("/"), Ok(s("/"))),
            (s(".."), Ok(s("/"))),
            (s("../tmp/./"), Ok(s("/tmp"))),
            (s("/nonexistent-ferrocorn"), Err("can't chdir to '/nonexistent-ferrocorn'")),
        ],
    );
}

#[test]
fn statsd_address() {
    let t = |h: &str, p: i64| Value::Tuple(vec![s(h), Value::Int(p)]);
    check(
        V::StatsdAddress,
        &[
            (s("Localhost"), Ok(t("localhost", 8125))),
            (s("host:99"), Ok(t("host", 99))),
            (s("[::1]:9"), Ok(t("::1", 9))),
            (s("[::1]"), Ok(t("::1", 8125))),
            (s("unix:12"), Ok(t("unix", 12))),
            (s("unix:///tmp/s"), Ok(s("/tmp/s"))),
            (s("unix:/tmp/s"), Ok(s("/tmp/s"))),
            (s("tcp://h:1"), Ok(t("h", 1))),
            (s("fd://3"), Ok(Value::Int(3))),
            (Value::None, Ok(Value::None)),
            (s("a:b:c"), Err("Value must be one of ('host:port', 'unix://PATH')")),
            (s("fd://x"), Err("Value must be one of ('host:port', 'unix://PATH')")),
        ],
    );
}

#[test]
fn enumerations() {
    check(
        V::ReloadEngine,
        &[
            (s("poll"), Ok(s("poll"))),
            (s("inotify"), Ok(s("inotify"))),
            (s(" poll"), Err("Invalid reload_engine: ' poll'")),
            (s("x"), Err("Invalid reload_engine: 'x'")),
        ],
    );
    check(
        V::HeaderMap,
        &[
            (s(" REFUSE "), Ok(s("refuse"))),
            (s("dangerous"), Ok(s("dangerous"))),
            (s("x"), Err("Invalid header map behaviour: x")),
            (Value::Int(1), Err("Invalid type for casting: 1")),
        ],
    );
    check(V::AsgiLoop, &[(s("UVLOOP"), Ok(s("uvloop"))), (s("x"), Err("Invalid ASGI loop: x"))]);
    check(V::AsgiLifespan, &[(s("on"), Ok(s("on"))), (s("x"), Err("Invalid ASGI lifespan: x"))]);
    check(
        V::HttpParser,
        &[
            (s("Fast"), Ok(s("fast"))),
            (s("x"), Err("http_parser must be one of: auto, fast, python")),
            (Value::Int(1), Err("http_parser must be a string")),
        ],
    );
    check(
        V::Http2Cleartext,
        &[
            (s("BOTH"), Ok(s("both"))),
            (Value::Bool(true), Ok(s("prior-knowledge"))),
            (s("x"), Err("Invalid http2_cleartext: x")),
        ],
    );
}

#[test]
fn proxy_protocol_modes_and_legacy_booleans() {
    check(
        V::ProxyProtocol,
        &[
            (s("v1"), Ok(s("v1"))),
            (s("V2"), Ok(s("v2"))),
            (s("auto"), Ok(s("auto"))),
            (s("TRUE"), Ok(s("auto"))),
            (s("1"), Ok(s("auto"))),
            (s("none"), Ok(s("off"))),
            (s("0"), Ok(s("off"))),
            (Value::Bool(true), Ok(s("auto"))),
            (Value::Bool(false), Ok(s("off"))),
            (Value::None, Ok(s("off"))),
            (s("app:app"), Err("proxy_protocol must be: off, v1, v2, or auto")),
            (Value::Int(1), Err("proxy_protocol must be string or bool")),
        ],
    );
}

#[test]
fn http2_limits() {
    check(
        V::HttpProtocols,
        &[
            (s("h1, H2"), Ok(Value::str_list(&["h1", "h2"]))),
            (s(""), Ok(Value::str_list(&["h1"]))),
            (s("h4"), Err("Invalid protocol 'h4'. Valid protocols: h1, h2")),
            (s("h1,h1"), Err("Duplicate protocols specified")),
        ],
    );
    check(
        V::Http2FrameSize,
        &[
            (Value::Int(16384), Ok(Value::Int(16384))),
            (Value::Int(5), Err("http2_max_frame_size must be between 16384 and 16777215, got 5")),
        ],
    );
    check(
        V::Http2StreamLimit,
        &[(Value::Int(0), Err("HTTP/2 max concurrent streams must be at least 1: 0"))],
    );
    check(
        V::Http2WindowSize,
        &[
            (Value::Int(2_147_483_647), Ok(Value::Int(2_147_483_647))),
            (
                Value::Int(9_999_999_999),
                Err("HTTP/2 window size must be at most 2147483647: 9999999999"),
            ),
        ],
    );
}

#[test]
fn ssl_version_is_kept_and_warns_when_not_default() {
    let env = env();
    let mut ctx = Ctx::new(&env);
    assert_eq!(V::SslVersion.validate(&Value::Int(2), &mut ctx), Ok(Value::Int(2)));
    assert!(ctx.warnings.is_empty());
    assert_eq!(V::SslVersion.validate(&s("TLS"), &mut ctx), Ok(s("TLS")));
    assert_eq!(ctx.warnings, vec!["Warning: option `ssl_version` is deprecated and it is ignored. Use ssl_context instead.".to_owned()]);
}
