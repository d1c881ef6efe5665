//! The settings table: one [`Setting`] per gunicorn setting, in gunicorn 27's order.
//!
//! The order matters: it is the order of gunicorn's argparse parser, so it decides the
//! order of `--help`, of the "ambiguous option" candidates, and which invalid value is
//! reported first when several are given. The 92 settings of the 23.x reference carry
//! its text; settings added later carry `since` and, unless harmless, `Unsupported`.

use super::env::Env;
use super::setting::{Action, CliType, DefaultSpec, Section, Setting, Support};
use super::validate::Validator;
use super::value::Value;

const BASE: Setting = Setting {
    name: "",
    section: Section::ConfigFile,
    cli: &[],
    meta: None,
    action: Action::Store,
    cli_type: CliType::Str,
    validator: Validator::String,
    default: DefaultSpec::None,
    since: None,
    support: Support::Full,
    help: "",
};

/// Looks a setting up by name.
pub fn lookup(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The index of a setting in [`SETTINGS`].
pub fn index_of(name: &str) -> Option<usize> {
    SETTINGS.iter().position(|s| s.name == name)
}

fn default_bind(env: &Env) -> Result<Value, String> {
    Ok(match env.var("PORT") {
        Some(port) => Value::str_list(&[format!("0.0.0.0:{port}")]),
        None => Value::str_list(&["127.0.0.1:8000"]),
    })
}

fn default_workers(env: &Env) -> Result<Value, String> {
    match env.var("WEB_CONCURRENCY") {
        None => Ok(Value::Int(1)),
        Some(s) => super::validate::parse_int_base10(s).map(Value::Int).ok_or_else(|| {
            format!("invalid literal for int() with base 10: {}", super::value::str_repr(s))
        }),
    }
}

fn default_forwarded_allow_ips(env: &Env) -> Result<Value, String> {
    Ok(Value::str(env.var("FORWARDED_ALLOW_IPS").unwrap_or("127.0.0.1,::1")))
}

fn default_chdir(env: &Env) -> Result<Value, String> {
    Ok(Value::str(env.cwd.to_string_lossy()))
}

fn default_user(env: &Env) -> Result<Value, String> {
    Ok(Value::Int(i64::from(env.euid)))
}

fn default_group(env: &Env) -> Result<Value, String> {
    Ok(Value::Int(i64::from(env.egid)))
}

fn default_syslog_addr(_env: &Env) -> Result<Value, String> {
    let addr = if cfg!(target_os = "macos") {
        "unix:///var/run/syslog"
    } else if cfg!(any(target_os = "freebsd", target_os = "dragonfly")) {
        "unix:///var/run/log"
    } else if cfg!(target_os = "openbsd") {
        "unix:///dev/log"
    } else {
        "udp://localhost:514"
    };
    Ok(Value::str(addr))
}

fn default_control_socket(env: &Env) -> Result<Value, String> {
    if let Some(xdg) = env.var("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        if std::path::Path::new(xdg).is_dir() {
            return Ok(Value::str(format!("{}/gunicorn.ctl", xdg.trim_end_matches('/'))));
        }
    }
    let home = env.var("HOME").unwrap_or("~");
    Ok(Value::str(format!("{}/.gunicorn/gunicorn.ctl", home.trim_end_matches('/'))))
}

/// Every setting gunicorn 27 knows, in gunicorn's order.
pub static SETTINGS: &[Setting] = &[
    // ---- Config File ----
    Setting {
        name: "config",
        section: Section::ConfigFile,
        cli: &["-c", "--config"],
        meta: Some("CONFIG"),
        default: DefaultSpec::Str("./gunicorn.conf.py"),
        help: "The Gunicorn config file.

A string of the form PATH, file:PATH, or python:MODULE_NAME.

Only has an effect when specified on the command line or as part of an application specific configuration.

By default, a file named gunicorn.conf.py will be read from the same directory where gunicorn is being run.

Changed in version 19.4: Loading the config from a Python module requires the python: prefix.",
        ..BASE
    },
    Setting {
        name: "wsgi_app",
        section: Section::ConfigFile,
        meta: Some("STRING"),
        help: "A WSGI application path in pattern $(MODULE_NAME):$(VARIABLE_NAME).

Added in version 20.1.0.",
        ..BASE
    },
    // ---- Server Socket ----
    Setting {
        name: "bind",
        section: Section::ServerSocket,
        cli: &["-b", "--bind"],
        meta: Some("ADDRESS"),
        action: Action::Append,
        validator: Validator::ListString,
        default: DefaultSpec::Computed(default_bind, "['127.0.0.1:8000'], or ['0.0.0.0:$PORT'] when PORT is set"),
        help: "The socket to bind.

A string of the form: HOST, HOST:PORT, unix:PATH, fd://FD. An IP is a valid HOST.

Changed in version 20.0: Support for fd://FD got added.

Multiple addresses can be bound. ex.:

    $ gunicorn -b 127.0.0.1:8000 -b [::1]:8000 test:app

will bind the test:app application on localhost both on ipv6 and ipv4 interfaces.

If the PORT environment variable is defined, the default is ['0.0.0.0:$PORT']. If it is not defined, the default is ['127.0.0.1:8000'].",
        ..BASE
    },
    Setting {
        name: "backlog",
        section: Section::ServerSocket,
        cli: &["--backlog"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(2048),
        help: "The maximum number of pending connections.

This refers to the number of clients that can be waiting to be served. Exceeding this number results in the client getting an error when attempting to connect. It should only affect servers under significant load.

Must be a positive integer. Generally set in the 64-2048 range.",
        ..BASE
    },
    // ---- Worker Processes ----
    Setting {
        name: "workers",
        section: Section::WorkerProcesses,
        cli: &["-w", "--workers"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Computed(default_workers, "1, or $WEB_CONCURRENCY when set"),
        help: "The number of worker processes for handling requests.

A positive integer generally in the 2-4 x $(NUM_CORES) range. You'll want to vary this a bit to find the best for your particular application's work load.

By default, the value of the WEB_CONCURRENCY environment variable, which is set by some Platform-as-a-Service providers such as Heroku. If it is not defined, the default is 1.",
        ..BASE
    },
    Setting {
        name: "worker_class",
        section: Section::WorkerProcesses,
        cli: &["-k", "--worker-class"],
        meta: Some("STRING"),
        validator: Validator::Class,
        default: DefaultSpec::Str("sync"),
        help: "The type of workers to use.

The default class (sync) should handle most \"normal\" types of workloads. You'll want to read Design for information on when you might want to choose one of the other worker classes. Required libraries may be installed using setuptools' extras_require feature.

A string referring to one of the following bundled classes:

- sync

- eventlet - Requires eventlet >= 0.24.1 (or install it via pip install gunicorn[eventlet])

- gevent - Requires gevent >= 1.4 (or install it via pip install gunicorn[gevent])

- tornado - Requires tornado >= 0.2 (or install it via pip install gunicorn[tornado])

- gthread - Python 2 requires the futures package to be installed (or install it via pip install gunicorn[gthread])

Optionally, you can provide your own worker by giving Gunicorn a Python path to a subclass of gunicorn.workers.base.Worker. This alternative syntax will load the gevent class: gunicorn.workers.ggevent.GeventWorker.",
        ..BASE
    },
    Setting {
        name: "threads",
        section: Section::WorkerProcesses,
        cli: &["--threads"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(1),
        help: "The number of worker threads for handling requests.

Run each worker with the specified number of threads.

A positive integer generally in the 2-4 x $(NUM_CORES) range. You'll want to vary this a bit to find the best for your particular application's work load.

If it is not defined, the default is 1.

This setting only affects the Gthread worker type.

**Note:** If you try to use the sync worker type and set the threads setting to more than 1, the gthread worker type will be used instead.",
        ..BASE
    },
    Setting {
        name: "worker_connections",
        section: Section::WorkerProcesses,
        cli: &["--worker-connections"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(1000),
        help: "The maximum number of simultaneous clients.

This setting only affects the gthread, eventlet and gevent worker types.",
        ..BASE
    },
    Setting {
        name: "max_requests",
        section: Section::WorkerProcesses,
        cli: &["--max-requests"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(0),
        help: "The maximum number of requests a worker will process before restarting.

Any value greater than zero will limit the number of requests a worker will process before automatically restarting. This is a simple method to help limit the damage of memory leaks.

If this is set to zero (the default) then the automatic worker restarts are disabled.",
        ..BASE
    },
    Setting {
        name: "max_requests_jitter",
        section: Section::WorkerProcesses,
        cli: &["--max-requests-jitter"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(0),
        help: "The maximum jitter to add to the max_requests setting.

The jitter causes the restart per worker to be randomized by randint(0, max_requests_jitter). This is intended to stagger worker restarts to avoid all workers restarting at the same time.

Added in version 19.2.",
        ..BASE
    },
    Setting {
        name: "timeout",
        section: Section::WorkerProcesses,
        cli: &["-t", "--timeout"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(30),
        help: "Workers silent for more than this many seconds are killed and restarted.

Value is a positive number or 0. Setting it to 0 has the effect of infinite timeouts by disabling timeouts for all workers entirely.

Generally, the default of thirty seconds should suffice. Only set this noticeably higher if you're sure of the repercussions for sync workers. For the non sync workers it just means that the worker process is still communicating and is not tied to the length of time required to handle a single request.",
        ..BASE
    },
    Setting {
        name: "graceful_timeout",
        section: Section::WorkerProcesses,
        cli: &["--graceful-timeout"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(30),
        help: "Timeout for graceful workers restart.

After receiving a restart signal, workers have this much time to finish serving requests. Workers still alive after the timeout (starting from the receipt of the restart signal) are force killed.",
        ..BASE
    },
    Setting {
        name: "keepalive",
        section: Section::WorkerProcesses,
        cli: &["--keep-alive"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(2),
        help: "The number of seconds to wait for requests on a Keep-Alive connection.

Generally set in the 1-5 seconds range for servers with direct connection to the client (e.g. when you don't have separate load balancer). When Gunicorn is deployed behind a load balancer, it often makes sense to set this to a higher value.

**Note:** sync worker does not support persistent connections and will ignore this option.",
        ..BASE
    },
    // ---- Security ----
    Setting {
        name: "limit_request_line",
        section: Section::Security,
        cli: &["--limit-request-line"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(4094),
        help: "The maximum size of HTTP request line in bytes.

This parameter is used to limit the allowed size of a client's HTTP request-line. Since the request-line consists of the HTTP method, URI, and protocol version, this directive places a restriction on the length of a request-URI allowed for a request on the server. A server needs this value to be large enough to hold any of its resource names, including any information that might be passed in the query part of a GET request. Value is a number from 0 (unlimited) to 8190.

This parameter can be used to prevent any DDOS attack.",
        ..BASE
    },
    Setting {
        name: "limit_request_fields",
        section: Section::Security,
        cli: &["--limit-request-fields"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(100),
        help: "Limit the number of HTTP headers fields in a request.

This parameter is used to limit the number of headers in a request to prevent DDOS attack. Used with the limit_request_field_size it allows more safety. By default this value is 100 and can't be larger than 32768.",
        ..BASE
    },
    Setting {
        name: "limit_request_field_size",
        section: Section::Security,
        cli: &["--limit-request-field_size"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(8190),
        help: "Limit the allowed size of an HTTP request header field.

Value is a positive number or 0. Setting it to 0 will allow unlimited header field sizes.

**Warning:** Setting this parameter to a very high or unlimited value can open up for DDOS attacks.",
        ..BASE
    },
    // ---- Debugging ----
    Setting {
        name: "reload",
        section: Section::Debugging,
        cli: &["--reload"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Restart workers when code changes.

This setting is intended for development. It will cause workers to be restarted whenever application code changes.

The reloader is incompatible with application preloading. When using a paste configuration be sure that the server block does not import any application code or the reload will not work as designed.

The default behavior is to attempt inotify with a fallback to file system polling. Generally, inotify should be preferred if available because it consumes less system resources.

**Note:** In order to use the inotify reloader, you must have the inotify package installed.",
        ..BASE
    },
    Setting {
        name: "reload_engine",
        section: Section::Debugging,
        cli: &["--reload-engine"],
        meta: Some("STRING"),
        validator: Validator::ReloadEngine,
        default: DefaultSpec::Str("auto"),
        help: "The implementation that should be used to power reload.

Valid engines are:

- 'auto'

- 'poll'

- 'inotify' (requires inotify)

Added in version 19.7.",
        ..BASE
    },
    Setting {
        name: "reload_extra_files",
        section: Section::Debugging,
        cli: &["--reload-extra-file"],
        meta: Some("FILES"),
        action: Action::Append,
        validator: Validator::ListOfFilesOrPatterns,
        default: DefaultSpec::StrList(&[]),
        help: "Extends reload option to also watch and reload on additional files (e.g., templates, configurations, specifications, etc.).

Added in version 19.8.",
        ..BASE
    },
    Setting {
        name: "spew",
        section: Section::Debugging,
        cli: &["--spew"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Install a trace function that spews every line executed by the server.

This is the nuclear option.",
        ..BASE
    },
    Setting {
        name: "check_config",
        section: Section::Debugging,
        cli: &["--check-config"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Check the configuration and exit. The exit status is 0 if the configuration is correct, and 1 if the configuration is incorrect.",
        ..BASE
    },
    Setting {
        name: "print_config",
        section: Section::Debugging,
        cli: &["--print-config"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        since: Some("20.1.0"),
        help: "Print the configuration settings as fully resolved. Implies check_config.",
        ..BASE
    },
    // ---- Server Mechanics ----
    Setting {
        name: "preload_app",
        section: Section::ServerMechanics,
        cli: &["--preload"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Load application code before the worker processes are forked.

By preloading an application you can save some RAM resources as well as speed up server boot times. Although, if you defer application loading to each worker process, you can reload your application code easily by restarting workers.",
        ..BASE
    },
    Setting {
        name: "sendfile",
        section: Section::ServerMechanics,
        cli: &["--no-sendfile"],
        action: Action::StoreConst(false),
        validator: Validator::Bool,
        help: "Disables the use of sendfile().

If not set, the value of the SENDFILE environment variable is used to enable or disable its usage.

Added in version 19.2.

Changed in version 19.4: Swapped --sendfile with --no-sendfile to actually allow disabling.

Changed in version 19.6: added support for the SENDFILE environment variable",
        ..BASE
    },
    Setting {
        name: "reuse_port",
        section: Section::ServerMechanics,
        cli: &["--reuse-port"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Set the SO_REUSEPORT flag on the listening socket.

Added in version 19.8.",
        ..BASE
    },
    Setting {
        name: "chdir",
        section: Section::ServerMechanics,
        cli: &["--chdir"],
        validator: Validator::Chdir,
        default: DefaultSpec::Computed(default_chdir, "the current directory"),
        help: "Change directory to specified directory before loading apps.",
        ..BASE
    },
    Setting {
        name: "daemon",
        section: Section::ServerMechanics,
        cli: &["-D", "--daemon"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Daemonize the Gunicorn process.

Detaches the server from the controlling terminal and enters the background.",
        ..BASE
    },
    Setting {
        name: "raw_env",
        section: Section::ServerMechanics,
        cli: &["-e", "--env"],
        meta: Some("ENV"),
        action: Action::Append,
        validator: Validator::ListString,
        default: DefaultSpec::StrList(&[]),
        help: "Set environment variables in the execution environment.

Should be a list of strings in the key=value format.

For example on the command line:

    $ gunicorn -b 127.0.0.1:8000 --env FOO=1 test:app

Or in the configuration file:

    raw_env = [\"FOO=1\"]",
        ..BASE
    },
    Setting {
        name: "pidfile",
        section: Section::ServerMechanics,
        cli: &["-p", "--pid"],
        meta: Some("FILE"),
        help: "A filename to use for the PID file.

If not set, no PID file will be written.",
        ..BASE
    },
    Setting {
        name: "worker_tmp_dir",
        support: Support::Inert(
            "the heartbeat lives in shared memory, so there is no heartbeat file to place",
        ),
        section: Section::ServerMechanics,
        cli: &["--worker-tmp-dir"],
        meta: Some("DIR"),
        help: "A directory to use for the worker heartbeat temporary file.

If not set, the default temporary directory will be used.

**Note:** The current heartbeat system involves calling os.fchmod on temporary file handlers and may block a worker for arbitrary time if the directory is on a disk-backed filesystem.

See How do I avoid Gunicorn excessively blocking in os.fchmod? for more detailed information and a solution for avoiding this problem.",
        ..BASE
    },
    Setting {
        name: "user",
        section: Section::ServerMechanics,
        cli: &["-u", "--user"],
        meta: Some("USER"),
        validator: Validator::User,
        default: DefaultSpec::Computed(default_user, "os.geteuid()"),
        help: "Switch worker processes to run as this user.

A valid user id (as an integer) or the name of a user that can be retrieved with a call to pwd.getpwnam(value) or None to not change the worker process user.",
        ..BASE
    },
    Setting {
        name: "group",
        section: Section::ServerMechanics,
        cli: &["-g", "--group"],
        meta: Some("GROUP"),
        validator: Validator::Group,
        default: DefaultSpec::Computed(default_group, "os.getegid()"),
        help: "Switch worker process to run as this group.

A valid group id (as an integer) or the name of a user that can be retrieved with a call to pwd.getgrnam(value) or None to not change the worker processes group.",
        ..BASE
    },
    Setting {
        name: "umask",
        section: Section::ServerMechanics,
        cli: &["-m", "--umask"],
        meta: Some("INT"),
        cli_type: CliType::AutoInt,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(0),
        help: "A bit mask for the file mode on files written by Gunicorn.

Note that this affects unix socket permissions.

A valid value for the os.umask(mode) call or a string compatible with int(value, 0) (0 means Python guesses the base, so values like 0, 0xFF, 0022 are valid for decimal, hex, and octal representations)",
        ..BASE
    },
    Setting {
        name: "initgroups",
        section: Section::ServerMechanics,
        cli: &["--initgroups"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "If true, set the worker process's group access list with all of the groups of which the specified username is a member, plus the specified group id.

Added in version 19.7.",
        ..BASE
    },
    Setting {
        name: "tmp_upload_dir",
        section: Section::ServerMechanics,
        meta: Some("DIR"),
        support: Support::Ferrocorn(
            "when set, the gthread worker reads a request body of 64 KiB to 8 MiB (without `Expect: 100-continue`) without a thread into an unnamed file here, and calls the application once it is all there, so slow uploads cost no thread (unset: such bodies stream to the application, which is called when the head is in, as in gunicorn)",
        ),
        help: "Directory to store temporary request data as they are read.

This may disappear in the near future.

This path should be writable by the process permissions set for Gunicorn workers. If not specified, Gunicorn will choose a system generated temporary directory.",
        ..BASE
    },
    Setting {
        name: "secure_scheme_headers",
        section: Section::ServerMechanics,
        validator: Validator::Dict,
        default: DefaultSpec::Dict(&[("X-FORWARDED-PROTOCOL", "ssl"), ("X-FORWARDED-PROTO", "https"), ("X-FORWARDED-SSL", "on")]),
        help: "A dictionary containing headers and values that the front-end proxy uses to indicate HTTPS requests. If the source IP is permitted by forwarded_allow_ips (below), and at least one request header matches a key-value pair listed in this dictionary, then Gunicorn will set wsgi.url_scheme to https, so your application can tell that the request is secure.

If the other headers listed in this dictionary are not present in the request, they will be ignored, but if the other headers are present and do not match the provided values, then the request will fail to parse. See the note below for more detailed examples of this behaviour.

The dictionary should map upper-case header names to exact string values. The value comparisons are case-sensitive, unlike the header names, so make sure they're exactly what your front-end proxy sends when handling HTTPS requests.

It is important that your front-end proxy configuration ensures that the headers defined here can not be passed directly from the client.",
        ..BASE
    },
    Setting {
        name: "forwarded_allow_ips",
        section: Section::ServerMechanics,
        cli: &["--forwarded-allow-ips"],
        meta: Some("STRING"),
        validator: Validator::StringToAddrList,
        default: DefaultSpec::Computed(default_forwarded_allow_ips, "'127.0.0.1,::1', or $FORWARDED_ALLOW_IPS when set"),
        help: "Front-end's IPs from which allowed to handle set secure headers. (comma separated).

Set to * to disable checking of front-end IPs. This is useful for setups where you don't know in advance the IP address of front-end, but instead have ensured via other means that only your authorized front-ends can access Gunicorn.

By default, the value of the FORWARDED_ALLOW_IPS environment variable. If it is not defined, the default is \"127.0.0.1,::1\".

**Note:** This option does not affect UNIX socket connections. Connections not associated with an IP address are treated as allowed, unconditionally.

**Note:** The interplay between the request headers, the value of forwarded_allow_ips, and the value of secure_scheme_headers is complex. Various scenarios are documented below to further elaborate. In each case, we have a request from the remote address 134.213.44.18, and the default value of secure_scheme_headers:

    secure_scheme_headers = {
        'X-FORWARDED-PROTOCOL': 'ssl',
        'X-FORWARDED-PROTO': 'https',
        'X-FORWARDED-SSL': 'on'
    }

| forwarded-allow-ips | Secure request headers | Result | Explanation |
|---|---|---|---|
| `[\"127.0.0.1\"]` | `X-Forwarded-Proto: https` | `wsgi.url_scheme = \"http\"` | IP address was not allowed |
| `\"*\"` | (none) | `wsgi.url_scheme = \"http\"` | IP address allowed, but no secure headers provided |
| `\"*\"` | `X-Forwarded-Proto: https` | `wsgi.url_scheme = \"https\"` | IP address allowed, one request header matched |
| `[\"134.213.44.18\"]` | `X-Forwarded-Ssl: on`, `X-Forwarded-Proto: http` | `InvalidSchemeHeaders()` raised | IP address allowed, but the two secure headers disagreed on if HTTPS was used |
| `[\"134.213.44.18\"]` | `X-Forwarded-Proto: https` | `wsgi.url_scheme = \"https\"` | IP address allowed, one request header matched |",
        ..BASE
    },
    // ---- Logging ----
    Setting {
        name: "accesslog",
        section: Section::Logging,
        cli: &["--access-logfile"],
        meta: Some("FILE"),
        help: "The Access log file to write to.

'-' means log to stdout.",
        ..BASE
    },
    Setting {
        name: "disable_redirect_access_to_syslog",
        section: Section::Logging,
        cli: &["--disable-redirect-access-to-syslog"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Disable redirect access logs to syslog.

Added in version 19.8.",
        ..BASE
    },
    Setting {
        name: "access_log_format",
        section: Section::Logging,
        cli: &["--access-logformat"],
        meta: Some("STRING"),
        default: DefaultSpec::Str(r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#),
        help: "The access log format.

| Identifier | Description |
|---|---|
| `h` | remote address |
| `l` | '-' |
| `u` | user name (if HTTP Basic auth used) |
| `t` | date of the request |
| `r` | status line (e.g. GET / HTTP/1.1) |
| `m` | request method |
| `U` | URL path without query string |
| `q` | query string |
| `H` | protocol |
| `s` | status |
| `B` | response length |
| `b` | response length or '-' (CLF format) |
| `f` | referrer (note: header is referer) |
| `a` | user agent |
| `T` | request time in seconds |
| `M` | request time in milliseconds |
| `D` | request time in microseconds |
| `L` | request time in decimal seconds |
| `p` | process ID |
| `{header}i` | request header |
| `{header}o` | response header |
| `{variable}e` | environment variable |

Use lowercase for header and environment variable names, and put {...}x names inside %(...)s. For example:

    %({x-forwarded-for}i)s",
        ..BASE
    },
    Setting {
        name: "errorlog",
        section: Section::Logging,
        cli: &["--error-logfile", "--log-file"],
        meta: Some("FILE"),
        default: DefaultSpec::Str("-"),
        help: "The Error log file to write to.

Using '-' for FILE makes gunicorn log to stderr.

Changed in version 19.2: Log to stderr by default.",
        ..BASE
    },
    Setting {
        name: "loglevel",
        section: Section::Logging,
        cli: &["--log-level"],
        meta: Some("LEVEL"),
        default: DefaultSpec::Str("info"),
        help: "The granularity of Error log outputs.

Valid level names are:

- 'debug'

- 'info'

- 'warning'

- 'error'

- 'critical'",
        ..BASE
    },
    Setting {
        name: "capture_output",
        section: Section::Logging,
        cli: &["--capture-output"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Redirect stdout/stderr to specified file in errorlog.

Added in version 19.6.",
        ..BASE
    },
    Setting {
        name: "logger_class",
        section: Section::Logging,
        cli: &["--logger-class"],
        meta: Some("STRING"),
        validator: Validator::Class,
        default: DefaultSpec::Str("gunicorn.glogging.Logger"),
        help: "The logger you want to use to log events in Gunicorn.

The default class (gunicorn.glogging.Logger) handles most normal usages in logging. It provides error and access logging.

You can provide your own logger by giving Gunicorn a Python path to a class that quacks like gunicorn.glogging.Logger.",
        ..BASE
    },
    Setting {
        name: "logconfig",
        section: Section::Logging,
        cli: &["--log-config"],
        meta: Some("FILE"),
        help: "The log config file to use. Gunicorn uses the standard Python logging module's Configuration file format.",
        ..BASE
    },
    Setting {
        name: "logconfig_dict",
        section: Section::Logging,
        validator: Validator::Dict,
        default: DefaultSpec::Dict(&[]),
        help: "The log config dictionary to use, using the standard Python logging module's dictionary configuration format. This option takes precedence over the logconfig and logconfig_json options, which uses the older file configuration format and JSON respectively.

Format: https://docs.python.org/3/library/logging.config.html#logging.config.dictConfig

For more context you can look at the default configuration dictionary for logging, which can be found at gunicorn.glogging.CONFIG_DEFAULTS.

Added in version 19.8.",
        ..BASE
    },
    Setting {
        name: "logconfig_json",
        section: Section::Logging,
        cli: &["--log-config-json"],
        meta: Some("FILE"),
        help: "The log config to read config from a JSON file

Format: https://docs.python.org/3/library/logging.config.html#logging.config.jsonConfig

Added in version 20.0.",
        ..BASE
    },
    Setting {
        name: "syslog_addr",
        section: Section::Logging,
        cli: &["--log-syslog-to"],
        meta: Some("SYSLOG_ADDR"),
        default: DefaultSpec::Computed(default_syslog_addr, "'udp://localhost:514' (Linux); 'unix:///var/run/syslog' (macOS); 'unix:///var/run/log' (FreeBSD, DragonFly); 'unix:///dev/log' (OpenBSD)"),
        help: "Address to send syslog messages.

Address is a string of the form:

- unix://PATH#TYPE : for unix domain socket. TYPE can be stream for the stream driver or dgram for the dgram driver. stream is the default.

- udp://HOST:PORT : for UDP sockets

- tcp://HOST:PORT : for TCP sockets",
        ..BASE
    },
    Setting {
        name: "syslog",
        section: Section::Logging,
        cli: &["--log-syslog"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Send Gunicorn logs to syslog.

Changed in version 19.8: You can now disable sending access logs by using the disable_redirect_access_to_syslog setting.",
        ..BASE
    },
    Setting {
        name: "syslog_prefix",
        section: Section::Logging,
        cli: &["--log-syslog-prefix"],
        meta: Some("SYSLOG_PREFIX"),
        help: "Makes Gunicorn use the parameter as program-name in the syslog entries.

All entries will be prefixed by gunicorn.<prefix>. By default the program name is the name of the process.",
        ..BASE
    },
    Setting {
        name: "syslog_facility",
        section: Section::Logging,
        cli: &["--log-syslog-facility"],
        meta: Some("SYSLOG_FACILITY"),
        default: DefaultSpec::Str("user"),
        help: "Syslog facility name",
        ..BASE
    },
    Setting {
        name: "enable_stdio_inheritance",
        section: Section::Logging,
        cli: &["-R", "--enable-stdio-inheritance"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Enable stdio inheritance.

Enable inheritance for stdio file descriptors in daemon mode.

Note: To disable the Python stdout buffering, you can to set the user environment variable PYTHONUNBUFFERED .",
        ..BASE
    },
    Setting {
        name: "statsd_host",
        section: Section::Logging,
        cli: &["--statsd-host"],
        meta: Some("STATSD_ADDR"),
        validator: Validator::StatsdAddress,
        help: "The address of the StatsD server to log to.

Address is a string of the form:

- unix://PATH : for a unix domain socket.

- HOST:PORT : for a network address

Added in version 19.1.",
        ..BASE
    },
    Setting {
        name: "dogstatsd_tags",
        section: Section::Logging,
        cli: &["--dogstatsd-tags"],
        meta: Some("DOGSTATSD_TAGS"),
        default: DefaultSpec::Str(""),
        help: "A comma-delimited list of datadog statsd (dogstatsd) tags to append to statsd metrics.

Added in version 20.",
        ..BASE
    },
    Setting {
        name: "statsd_prefix",
        section: Section::Logging,
        cli: &["--statsd-prefix"],
        meta: Some("STATSD_PREFIX"),
        default: DefaultSpec::Str(""),
        help: "Prefix to use when emitting statsd metrics (a trailing . is added, if not provided).

Added in version 19.2.",
        ..BASE
    },
    Setting {
        name: "enable_backlog_metric",
        section: Section::Logging,
        cli: &["--enable-backlog-metric"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        since: Some("24.1.0"),
        support: Support::Unsupported,
        help: "Enable socket backlog metric (only supported on Linux).

When enabled, gunicorn 24.1+ emits the `gunicorn.backlog` statsd histogram of pending connections.

Not supported by ferrocorn: accepted so gunicorn 27 config files load, refused at start when enabled.",
        ..BASE
    },
    // ---- Process Naming ----
    Setting {
        name: "proc_name",
        section: Section::ProcessNaming,
        cli: &["-n", "--name"],
        meta: Some("STRING"),
        help: "A base to use with setproctitle for process naming.

This affects things like ps and top. If you're going to be running more than one instance of Gunicorn you'll probably want to set a name to tell them apart. This requires that you install the setproctitle module.

If not set, the default_proc_name setting will be used.",
        ..BASE
    },
    Setting {
        name: "default_proc_name",
        section: Section::ProcessNaming,
        default: DefaultSpec::Str("gunicorn"),
        help: "Internal setting that is adjusted for each type of application.",
        ..BASE
    },
    // ---- Server Mechanics ----
    Setting {
        name: "pythonpath",
        section: Section::ServerMechanics,
        cli: &["--pythonpath"],
        meta: Some("STRING"),
        help: "A comma-separated list of directories to add to the Python path.

e.g. '/home/djangoprojects/myproject,/home/python/mylibrary'.",
        ..BASE
    },
    Setting {
        name: "paste",
        section: Section::ServerMechanics,
        cli: &["--paste", "--paster"],
        meta: Some("STRING"),
        help: "Load a PasteDeploy config file. The argument may contain a # symbol followed by the name of an app section from the config file, e.g. production.ini#admin.

At this time, using alternate server blocks is not supported. Use the command line arguments to control server configuration instead.",
        ..BASE
    },
    // ---- Server Hooks ----
    Setting {
        name: "on_starting",
        section: Section::ServerHooks,
        validator: Validator::Callable(1),
        default: DefaultSpec::Hook("OnStarting.on_starting", 1),
        help: "Called just before the master process is initialized.

The callable needs to accept a single instance variable for the Arbiter.",
        ..BASE
    },
    Setting {
        name: "on_reload",
        section: Section::ServerHooks,
        validator: Validator::Callable(1),
        default: DefaultSpec::Hook("OnReload.on_reload", 1),
        help: "Called to recycle workers during a reload via SIGHUP.

The callable needs to accept a single instance variable for the Arbiter.",
        ..BASE
    },
    Setting {
        name: "when_ready",
        section: Section::ServerHooks,
        validator: Validator::Callable(1),
        default: DefaultSpec::Hook("WhenReady.when_ready", 1),
        help: "Called just after the server is started.

The callable needs to accept a single instance variable for the Arbiter.",
        ..BASE
    },
    Setting {
        name: "pre_fork",
        section: Section::ServerHooks,
        validator: Validator::Callable(2),
        default: DefaultSpec::Hook("Prefork.pre_fork", 2),
        help: "Called just before a worker is forked.

The callable needs to accept two instance variables for the Arbiter and new Worker.",
        ..BASE
    },
    Setting {
        name: "post_fork",
        section: Section::ServerHooks,
        validator: Validator::Callable(2),
        default: DefaultSpec::Hook("Postfork.post_fork", 2),
        help: "Called just after a worker has been forked.

The callable needs to accept two instance variables for the Arbiter and new Worker.",
        ..BASE
    },
    Setting {
        name: "post_worker_init",
        section: Section::ServerHooks,
        validator: Validator::Callable(1),
        default: DefaultSpec::Hook("PostWorkerInit.post_worker_init", 1),
        help: "Called just after a worker has initialized the application.

The callable needs to accept one instance variable for the initialized Worker.",
        ..BASE
    },
    Setting {
        name: "worker_int",
        section: Section::ServerHooks,
        validator: Validator::Callable(1),
        default: DefaultSpec::Hook("WorkerInt.worker_int", 1),
        help: "Called just after a worker exited on SIGINT or SIGQUIT.

The callable needs to accept one instance variable for the initialized Worker.",
        ..BASE
    },
    Setting {
        name: "worker_abort",
        section: Section::ServerHooks,
        validator: Validator::Callable(1),
        default: DefaultSpec::Hook("WorkerAbort.worker_abort", 1),
        help: "Called when a worker received the SIGABRT signal.

This call generally happens on timeout.

The callable needs to accept one instance variable for the initialized Worker.",
        ..BASE
    },
    Setting {
        name: "pre_exec",
        section: Section::ServerHooks,
        validator: Validator::Callable(1),
        default: DefaultSpec::Hook("PreExec.pre_exec", 1),
        help: "Called just before a new master process is forked.

The callable needs to accept a single instance variable for the Arbiter.",
        ..BASE
    },
    Setting {
        name: "pre_request",
        section: Section::ServerHooks,
        validator: Validator::Callable(2),
        default: DefaultSpec::Hook("PreRequest.pre_request", 2),
        help: "Called just before a worker processes the request.

The callable needs to accept two instance variables for the Worker and the Request.",
        ..BASE
    },
    Setting {
        name: "post_request",
        section: Section::ServerHooks,
        validator: Validator::PostRequest,
        default: DefaultSpec::Hook("PostRequest.post_request", 4),
        help: "Called after a worker processes the request.

The callable needs to accept two instance variables for the Worker and the Request.",
        ..BASE
    },
    Setting {
        name: "child_exit",
        section: Section::ServerHooks,
        validator: Validator::Callable(2),
        default: DefaultSpec::Hook("ChildExit.child_exit", 2),
        help: "Called just after a worker has been exited, in the master process.

The callable needs to accept two instance variables for the Arbiter and the just-exited Worker.

Added in version 19.7.",
        ..BASE
    },
    Setting {
        name: "worker_exit",
        section: Section::ServerHooks,
        validator: Validator::Callable(2),
        default: DefaultSpec::Hook("WorkerExit.worker_exit", 2),
        help: "Called just after a worker has been exited, in the worker process.

The callable needs to accept two instance variables for the Arbiter and the just-exited Worker.",
        ..BASE
    },
    Setting {
        name: "nworkers_changed",
        section: Section::ServerHooks,
        validator: Validator::Callable(3),
        default: DefaultSpec::Hook("NumWorkersChanged.nworkers_changed", 3),
        help: "Called just after num_workers has been changed.

The callable needs to accept an instance variable of the Arbiter and two integers of number of workers after and before change.

If the number of workers is set for the first time, old_value would be None.",
        ..BASE
    },
    Setting {
        name: "on_exit",
        section: Section::ServerHooks,
        validator: Validator::Callable(1),
        default: DefaultSpec::Hook("OnExit.on_exit", 1),
        help: "Called just before exiting Gunicorn.

The callable needs to accept a single instance variable for the Arbiter.",
        ..BASE
    },
    Setting {
        name: "ssl_context",
        section: Section::ServerHooks,
        validator: Validator::Callable(2),
        default: DefaultSpec::Hook("NewSSLContext.ssl_context", 2),
        help: "Called when SSLContext is needed.

Allows customizing SSL context.

The callable needs to accept an instance variable for the Config and a factory function that returns default SSLContext which is initialized with certificates, private key, cert_reqs, and ciphers according to config and can be further customized by the callable. The callable needs to return SSLContext object.

Following example shows a configuration file that sets the minimum TLS version to 1.3:

    def ssl_context(conf, default_ssl_context_factory):
        import ssl
        context = default_ssl_context_factory()
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        return context

Added in version 21.0.",
        ..BASE
    },
    // ---- Server Mechanics ----
    Setting {
        name: "proxy_protocol",
        section: Section::ServerMechanics,
        cli: &["--proxy-protocol"],
        meta: Some("MODE"),
        action: Action::StoreOptional("auto"),
        validator: Validator::ProxyProtocol,
        default: DefaultSpec::Str("off"),
        help: "Enable detect PROXY protocol (PROXY mode).

Allow using HTTP and Proxy together. It may be useful for work with stunnel as HTTPS frontend and Gunicorn as HTTP server.

PROXY protocol: http://haproxy.1wt.eu/download/1.5/doc/proxy-protocol.txt

Example for stunnel config:

    [https]
    protocol = proxy
    accept  = 443
    connect = 80
    cert = /etc/ssl/certs/stunnel.pem
    key = /etc/ssl/certs/stunnel.key",
        ..BASE
    },
    Setting {
        name: "proxy_allow_ips",
        section: Section::ServerMechanics,
        cli: &["--proxy-allow-from"],
        validator: Validator::StringToAddrList,
        default: DefaultSpec::Str("127.0.0.1,::1"),
        help: "Front-end's IPs from which allowed accept proxy requests (comma separated).

Set to * to disable checking of front-end IPs. This is useful for setups where you don't know in advance the IP address of front-end, but instead have ensured via other means that only your authorized front-ends can access Gunicorn.

**Note:** This option does not affect UNIX socket connections. Connections not associated with an IP address are treated as allowed, unconditionally.",
        ..BASE
    },
    Setting {
        name: "protocol",
        section: Section::ServerMechanics,
        cli: &["--protocol"],
        meta: Some("STRING"),
        default: DefaultSpec::Str("http"),
        since: Some("24.0.0"),
        support: Support::Unsupported,
        help: "The protocol for incoming connections.

`http` (default) or `uwsgi` (the binary uWSGI protocol, e.g. behind nginx `uwsgi_pass`).

Not supported by ferrocorn: only `http` is served.",
        ..BASE
    },
    Setting {
        name: "uwsgi_allow_ips",
        section: Section::ServerMechanics,
        cli: &["--uwsgi-allow-from"],
        validator: Validator::StringToAddrList,
        default: DefaultSpec::Str("127.0.0.1,::1"),
        since: Some("24.0.0"),
        support: Support::Unsupported,
        help: "IPs allowed to send uWSGI protocol requests (comma separated).

Not supported by ferrocorn (no uWSGI protocol).",
        ..BASE
    },
    // ---- SSL ----
    Setting {
        name: "keyfile",
        section: Section::Ssl,
        cli: &["--keyfile"],
        meta: Some("FILE"),
        help: "SSL key file",
        ..BASE
    },
    Setting {
        name: "certfile",
        section: Section::Ssl,
        cli: &["--certfile"],
        meta: Some("FILE"),
        help: "SSL certificate file",
        ..BASE
    },
    Setting {
        name: "ssl_version",
        section: Section::Ssl,
        cli: &["--ssl-version"],
        validator: Validator::SslVersion,
        default: DefaultSpec::Int(2),
        support: Support::Inert("deprecated since gunicorn 21.0 and ignored by gunicorn too"),
        help: "SSL version to use (see stdlib ssl module's).

Deprecated since version 21.0: The option is deprecated and it is currently ignored. Use ssl_context instead.

| `--ssl-version` | Description |
|---|---|
| `SSLv3` | SSLv3 is not-secure and is strongly discouraged. |
| `SSLv23` | Alias for TLS. Deprecated in Python 3.6, use TLS. |
| `TLS` | Negotiate highest possible version between client/server. Can yield SSL. (Python 3.6+) |
| `TLSv1` | TLS 1.0 |
| `TLSv1_1` | TLS 1.1 (Python 3.4+) |
| `TLSv1_2` | TLS 1.2 (Python 3.4+) |
| `TLS_SERVER` | Auto-negotiate the highest protocol version like TLS, but only support server-side SSLSocket connections. (Python 3.6+) |

Changed in version 19.7: The default value has been changed from ssl.PROTOCOL_TLSv1 to ssl.PROTOCOL_SSLv23.

Changed in version 20.0: This setting now accepts string names based on ssl.PROTOCOL_ constants.

Changed in version 20.0.1: The default value has been changed from ssl.PROTOCOL_SSLv23 to ssl.PROTOCOL_TLS when Python >= 3.6 .",
        ..BASE
    },
    Setting {
        name: "cert_reqs",
        section: Section::Ssl,
        cli: &["--cert-reqs"],
        validator: Validator::PosInt,
        default: DefaultSpec::Int(0),
        help: "Whether client certificate is required (see stdlib ssl module's)

| `--cert-reqs` | Description |
|---|---|
| `0` | no client verification |
| `1` | ssl.CERT_OPTIONAL |
| `2` | ssl.CERT_REQUIRED |",
        ..BASE
    },
    Setting {
        name: "ca_certs",
        section: Section::Ssl,
        cli: &["--ca-certs"],
        meta: Some("FILE"),
        help: "CA certificates file",
        ..BASE
    },
    Setting {
        name: "suppress_ragged_eofs",
        section: Section::Ssl,
        cli: &["--suppress-ragged-eofs"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(true),
        help: "Suppress ragged EOFs (see stdlib ssl module's)",
        ..BASE
    },
    Setting {
        name: "do_handshake_on_connect",
        support: Support::Inert("the TLS handshake is always driven by the connection's first reads, under the request-read deadline, and never holds a worker thread, whichever the value"),
        section: Section::Ssl,
        cli: &["--do-handshake-on-connect"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Whether to perform SSL handshake on socket connect (see stdlib ssl module's)",
        ..BASE
    },
    Setting {
        name: "ciphers",
        section: Section::Ssl,
        cli: &["--ciphers"],
        help: "SSL Cipher suite to use, in the format of an OpenSSL cipher list.

By default we use the default cipher list from Python's ssl module, which contains ciphers considered strong at the time of each Python release.

As a recommended alternative, the Open Web App Security Project (OWASP) offers a vetted set of strong cipher strings rated A+ to C-. OWASP provides details on user-agent compatibility at each security level.

See the OpenSSL Cipher List Format Documentation for details on the format of an OpenSSL cipher list.",
        ..BASE
    },
    // ---- HTTP/2 ----
    Setting {
        name: "http_protocols",
        section: Section::Http2,
        cli: &["--http-protocols"],
        meta: Some("STRING"),
        validator: Validator::HttpProtocols,
        default: DefaultSpec::Str("h1"),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "HTTP protocol versions to support (comma-separated, order = preference).

Valid values are `h1` and `h2`; the order is the ALPN preference.

Not supported by ferrocorn: only `h1` is served.",
        ..BASE
    },
    Setting {
        name: "http2_cleartext",
        section: Section::Http2,
        cli: &["--http2-cleartext"],
        meta: Some("STRING"),
        validator: Validator::Http2Cleartext,
        default: DefaultSpec::Str("off"),
        since: Some("26.2.0"),
        support: Support::Unsupported,
        help: "Accept HTTP/2 over cleartext TCP (h2c), and by which mechanism.

One of `off`, `prior-knowledge`, `upgrade`, `both`; `True` in a config file means `prior-knowledge`.

Not supported by ferrocorn.",
        ..BASE
    },
    Setting {
        name: "http2_max_concurrent_streams",
        section: Section::Http2,
        cli: &["--http2-max-concurrent-streams"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::Http2StreamLimit,
        default: DefaultSpec::Int(100),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "Maximum number of concurrent HTTP/2 streams per connection.

Not supported by ferrocorn.",
        ..BASE
    },
    Setting {
        name: "http2_initial_window_size",
        section: Section::Http2,
        cli: &["--http2-initial-window-size"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::Http2WindowSize,
        default: DefaultSpec::Int(65535),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "Initial HTTP/2 flow control window size in bytes.

At most 2147483647. Not supported by ferrocorn.",
        ..BASE
    },
    Setting {
        name: "http2_max_frame_size",
        section: Section::Http2,
        cli: &["--http2-max-frame-size"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::Http2FrameSize,
        default: DefaultSpec::Int(16384),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "Maximum HTTP/2 frame payload size in bytes.

Between 16384 and 16777215. Not supported by ferrocorn.",
        ..BASE
    },
    Setting {
        name: "http2_max_header_list_size",
        section: Section::Http2,
        cli: &["--http2-max-header-list-size"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(65536),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "Maximum size of HTTP/2 header list in bytes (HPACK protection).

Not supported by ferrocorn.",
        ..BASE
    },
    // ---- Server Mechanics ----
    Setting {
        name: "raw_paste_global_conf",
        section: Section::ServerMechanics,
        cli: &["--paste-global"],
        meta: Some("CONF"),
        action: Action::Append,
        validator: Validator::ListString,
        default: DefaultSpec::StrList(&[]),
        help: "Set a PasteDeploy global config variable in key=value form.

The option can be specified multiple times.

The variables are passed to the PasteDeploy entrypoint. Example:

    $ gunicorn -b 127.0.0.1:8000 --paste development.ini --paste-global FOO=1 --paste-global BAR=2

Added in version 19.7.",
        ..BASE
    },
    Setting {
        name: "permit_obsolete_folding",
        section: Section::ServerMechanics,
        cli: &["--permit-obsolete-folding"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Permit requests employing obsolete HTTP line folding mechanism

The folding mechanism was deprecated by rfc7230 Section 3.2.4 and will not be

employed in HTTP request headers from standards-compliant HTTP clients.

This option is provided to diagnose backwards-incompatible changes. Use with care and only if necessary. Temporary; the precise effect of this option may change in a future version, or it may be removed altogether.

Added in version 23.0.0.",
        ..BASE
    },
    Setting {
        name: "strip_header_spaces",
        section: Section::ServerMechanics,
        cli: &["--strip-header-spaces"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Strip spaces present between the header name and the the :.

This is known to induce vulnerabilities and is not compliant with the HTTP/1.1 standard. See https://portswigger.net/research/http-desync-attacks-request-smuggling-reborn.

Use with care and only if necessary. Deprecated; scheduled for removal in 25.0.0

Added in version 20.0.1.",
        ..BASE
    },
    Setting {
        name: "permit_unconventional_http_method",
        section: Section::ServerMechanics,
        cli: &["--permit-unconventional-http-method"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Permit HTTP methods not matching conventions, such as IANA registration guidelines

This permits request methods of length less than 3 or more than 20, methods with lowercase characters or methods containing the # character. HTTP methods are case sensitive by definition, and merely uppercase by convention.

If unset, Gunicorn will apply nonstandard restrictions and cause 400 response status in cases where otherwise 501 status is expected. While this option does modify that behaviour, it should not be depended upon to guarantee standards-compliant behaviour. Rather, it is provided temporarily, to assist in diagnosing backwards-incompatible changes around the incomplete application of those restrictions.

Use with care and only if necessary. Temporary; scheduled for removal in 24.0.0

Added in version 22.0.0.",
        ..BASE
    },
    Setting {
        name: "permit_unconventional_http_version",
        section: Section::ServerMechanics,
        cli: &["--permit-unconventional-http-version"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Permit HTTP version not matching conventions of 2023

This disables the refusal of likely malformed request lines. It is unusual to specify HTTP 1 versions other than 1.0 and 1.1.

This option is provided to diagnose backwards-incompatible changes. Use with care and only if necessary. Temporary; the precise effect of this option may change in a future version, or it may be removed altogether.

Added in version 22.0.0.

In ferrocorn, `HTTP/1.2` ... `HTTP/1.9` are served as HTTP/1.1 and answered `HTTP/1.1` whatever this setting says (RFC 9110 §2.5); what it permits is a major version other than 1 (`HTTP/0.9`, `HTTP/2.0`, ...), which is otherwise answered `505 HTTP Version Not Supported` (gunicorn 27: 400).",
        ..BASE
    },
    Setting {
        name: "casefold_http_method",
        section: Section::ServerMechanics,
        cli: &["--casefold-http-method"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        help: "Transform received HTTP methods to uppercase

HTTP methods are case sensitive by definition, and merely uppercase by convention.

This option is provided because previous versions of gunicorn defaulted to this behaviour.

Use with care and only if necessary. Deprecated; scheduled for removal in 24.0.0

Added in version 22.0.0.",
        ..BASE
    },
    Setting {
        name: "forwarder_headers",
        section: Section::ServerMechanics,
        cli: &["--forwarder-headers"],
        validator: Validator::StringToList,
        default: DefaultSpec::Str("SCRIPT_NAME,PATH_INFO"),
        help: "A list containing upper-case header field names that the front-end proxy (see forwarded_allow_ips) sets, to be used in WSGI environment.

This option has no effect for headers not present in the request.

This option can be used to transfer SCRIPT_NAME, PATH_INFO and REMOTE_USER.

It is important that your front-end proxy configuration ensures that the headers defined here can not be passed directly from the client.",
        ..BASE
    },
    Setting {
        name: "header_map",
        section: Section::ServerMechanics,
        cli: &["--header-map"],
        validator: Validator::HeaderMap,
        default: DefaultSpec::Str("drop"),
        help: "Configure how header field names are mapped into environ

Headers containing underscores are permitted by RFC9110, but gunicorn joining headers of different names into the same environment variable will dangerously confuse applications as to which is which.

The safe default drop is to silently drop headers that cannot be unambiguously mapped. The value refuse will return an error if a request contains any such header. The value dangerous matches the previous, not advisable, behaviour of mapping different header field names into the same environ name.

If the source is permitted as explained in forwarded_allow_ips, and the header name is present in forwarder_headers, the header is mapped into environment regardless of the state of this setting.

Use with care and only if necessary and after considering if your problem could instead be solved by specifically renaming or rewriting only the intended headers on a proxy in front of Gunicorn.

Added in version 22.0.0.",
        ..BASE
    },
    // ---- Worker Processes ----
    Setting {
        name: "asgi_loop",
        section: Section::WorkerProcesses,
        cli: &["--asgi-loop"],
        meta: Some("STRING"),
        validator: Validator::AsgiLoop,
        default: DefaultSpec::Str("auto"),
        since: Some("24.0.0"),
        support: Support::Unsupported,
        help: "Event loop implementation for ASGI workers.

One of `auto`, `asyncio`, `uvloop`. Not supported by ferrocorn (no ASGI worker).",
        ..BASE
    },
    Setting {
        name: "asgi_lifespan",
        section: Section::WorkerProcesses,
        cli: &["--asgi-lifespan"],
        meta: Some("STRING"),
        validator: Validator::AsgiLifespan,
        default: DefaultSpec::Str("auto"),
        since: Some("24.0.0"),
        support: Support::Unsupported,
        help: "Control ASGI lifespan protocol handling.

One of `auto`, `on`, `off`. Not supported by ferrocorn (no ASGI worker).",
        ..BASE
    },
    Setting {
        name: "asgi_disconnect_grace_period",
        section: Section::WorkerProcesses,
        cli: &["--asgi-disconnect-grace-period"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(3),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "Grace period (seconds) for ASGI apps to handle client disconnects.

Not supported by ferrocorn (no ASGI worker).",
        ..BASE
    },
    Setting {
        name: "websocket_max_message_size",
        section: Section::WorkerProcesses,
        cli: &["--websocket-max-message-size"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(16777216),
        since: Some("27.0.0"),
        support: Support::Unsupported,
        help: "Largest WebSocket message, in bytes, the asgi worker accepts.

Not supported by ferrocorn (no ASGI worker).",
        ..BASE
    },
    Setting {
        name: "http_parser",
        section: Section::WorkerProcesses,
        cli: &["--http-parser"],
        meta: Some("STRING"),
        validator: Validator::HttpParser,
        default: DefaultSpec::Str("auto"),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "HTTP parser implementation.

One of `auto`, `fast` (gunicorn's optional C parser), `python`. ferrocorn always uses its own parser; other values are refused at start.",
        ..BASE
    },
    // ---- Server Mechanics ----
    Setting {
        name: "root_path",
        section: Section::ServerMechanics,
        cli: &["--root-path"],
        meta: Some("STRING"),
        default: DefaultSpec::Str(""),
        since: Some("24.0.0"),
        support: Support::Unsupported,
        help: "The root path for ASGI applications.

Sets `scope[\"root_path\"]` for ASGI apps. Not supported by ferrocorn (no ASGI worker).",
        ..BASE
    },
    // ---- Dirty Arbiters ----
    Setting {
        name: "dirty_apps",
        section: Section::DirtyArbiters,
        cli: &["--dirty-app"],
        meta: Some("STRING"),
        action: Action::Append,
        validator: Validator::ListString,
        default: DefaultSpec::StrList(&[]),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "Dirty applications to load in the dirty worker pool.

Each entry is `module:Class` or `module:Class:N`. The option can be given several times. Not supported by ferrocorn.",
        ..BASE
    },
    Setting {
        name: "dirty_workers",
        section: Section::DirtyArbiters,
        cli: &["--dirty-workers"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(0),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "The number of dirty worker processes.

0 disables the dirty arbiter. Not supported by ferrocorn.",
        ..BASE
    },
    Setting {
        name: "dirty_timeout",
        section: Section::DirtyArbiters,
        cli: &["--dirty-timeout"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(300),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "Timeout for dirty task execution in seconds.

0 disables the timeout. Not supported by ferrocorn.",
        ..BASE
    },
    Setting {
        name: "dirty_threads",
        section: Section::DirtyArbiters,
        cli: &["--dirty-threads"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(1),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "The number of threads per dirty worker.

Not supported by ferrocorn.",
        ..BASE
    },
    Setting {
        name: "dirty_graceful_timeout",
        section: Section::DirtyArbiters,
        cli: &["--dirty-graceful-timeout"],
        meta: Some("INT"),
        cli_type: CliType::Int,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(30),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "Timeout for graceful dirty worker shutdown in seconds.

Not supported by ferrocorn.",
        ..BASE
    },
    // ---- Dirty Arbiter Hooks ----
    Setting {
        name: "on_dirty_starting",
        section: Section::DirtyArbiterHooks,
        validator: Validator::Callable(1),
        default: DefaultSpec::Hook("OnDirtyStarting.on_dirty_starting", 1),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "Called just before the dirty arbiter process is initialized.

The callable needs to accept a single instance variable for the dirty arbiter. Not supported by ferrocorn.",
        ..BASE
    },
    Setting {
        name: "dirty_post_fork",
        section: Section::DirtyArbiterHooks,
        validator: Validator::Callable(2),
        default: DefaultSpec::Hook("DirtyPostFork.dirty_post_fork", 2),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "Called just after a dirty worker has been forked.

The callable needs to accept two instance variables for the dirty arbiter and the new dirty worker. Not supported by ferrocorn.",
        ..BASE
    },
    Setting {
        name: "dirty_worker_init",
        section: Section::DirtyArbiterHooks,
        validator: Validator::Callable(1),
        default: DefaultSpec::Hook("DirtyWorkerInit.dirty_worker_init", 1),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "Called just after a dirty worker has initialized all applications.

The callable needs to accept one instance variable for the dirty worker. Not supported by ferrocorn.",
        ..BASE
    },
    Setting {
        name: "dirty_worker_exit",
        section: Section::DirtyArbiterHooks,
        validator: Validator::Callable(2),
        default: DefaultSpec::Hook("DirtyWorkerExit.dirty_worker_exit", 2),
        since: Some("25.0.0"),
        support: Support::Unsupported,
        help: "Called when a dirty worker has exited.

The callable needs to accept two instance variables for the dirty arbiter and the exiting dirty worker. Not supported by ferrocorn.",
        ..BASE
    },
    // ---- Control ----
    Setting {
        name: "control_socket",
        section: Section::Control,
        cli: &["--control-socket"],
        meta: Some("PATH"),
        default: DefaultSpec::Computed(default_control_socket, "$XDG_RUNTIME_DIR/gunicorn.ctl or $HOME/.gunicorn/gunicorn.ctl"),
        since: Some("25.1.0"),
        support: Support::Unsupported,
        help: "Unix socket path for control interface.

Used by `gunicornc`. Default: `$XDG_RUNTIME_DIR/gunicorn.ctl` if that directory exists, otherwise `$HOME/.gunicorn/gunicorn.ctl`. ferrocorn has no control socket: setting a path is refused at start.",
        ..BASE
    },
    Setting {
        name: "control_socket_mode",
        section: Section::Control,
        cli: &["--control-socket-mode"],
        meta: Some("INT"),
        cli_type: CliType::AutoInt,
        validator: Validator::PosInt,
        default: DefaultSpec::Int(0o600),
        since: Some("25.1.0"),
        support: Support::Unsupported,
        help: "Permission mode for control socket.

Not supported by ferrocorn (no control socket).",
        ..BASE
    },
    Setting {
        name: "control_socket_disable",
        section: Section::Control,
        cli: &["--no-control-socket"],
        action: Action::StoreTrue,
        validator: Validator::Bool,
        default: DefaultSpec::Bool(false),
        since: Some("25.1.0"),
        support: Support::Inert("ferrocorn never opens a control socket"),
        help: "Disable control socket.

ferrocorn never opens a control socket, so this is accepted and has no effect.",
        ..BASE
    },
];
