//! Bind forms and bind failures end to end, with the real master.

use crate::support;

use std::net::TcpListener;
use std::os::fd::AsRawFd;

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::Signal;
use support::{Client, Server, TempDir, exchange, get, is_hello};

#[test]
fn port_in_use_is_retried_then_exits_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let mut srv = Server::start_env(
        &["-b", &bind, "--log-level", "debug"],
        &[("FERROCORN_TEST_BIND_RETRY_MS", "20")],
    );
    assert_eq!(srv.wait_exit(10).code(), Some(1));
    let log = srv.log();
    let addr = format!("('127.0.0.1', {port})");
    // The `Current configuration:` dump's setting lines (`  name: value`) aside.
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| !l.starts_with("  "))
        .map(|l| l.split_once("] [").map_or("", |x| x.1))
        .collect();
    let pid = srv.pid();
    let mut want = vec![
        format!("{pid}] [DEBUG] Current configuration:"),
        format!("{pid}] [INFO] Starting ferrocorn 0.1.0"),
    ];
    for _ in 0..5 {
        want.push(format!("{pid}] [ERROR] Connection in use: {addr}"));
        want.push(format!(
            "{pid}] [ERROR] connection to {addr} failed: [Errno 98] Address already in use"
        ));
        want.push(format!("{pid}] [DEBUG] Retrying in 1 second."));
    }
    want.push(format!("{pid}] [ERROR] Can't connect to {addr}"));
    assert_eq!(lines, want, "{log}");
}

#[test]
fn bad_addresses_are_refused_before_starting() {
    for (bind, msg) in [
        ("fd://abc", "'abc' is not a valid file descriptor."),
        ("127.0.0.1:x", "'x' is not a valid port number."),
    ] {
        let mut srv = Server::start(&["-b", bind]);
        assert_eq!(srv.wait_exit(10).code(), Some(1));
        assert_eq!(srv.log(), format!("\nError: {msg}\n\n"));
    }
}

#[test]
fn a_unix_socket_is_served_and_removed_on_exit() {
    let dir = TempDir::new("unix");
    let path = dir.join("app.sock");
    std::fs::write(&path, b"").unwrap();
    std::fs::remove_file(&path).unwrap();
    // A stale socket file from a previous run is replaced.
    let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(stale);
    assert!(path.exists());
    let bind = format!("unix:{}", path.display());
    let mut srv = Server::start(&["-w", "2", "-b", &bind, "--umask", "0o077"]);
    srv.wait_for(&format!("Listening at: unix:{} (", path.display()));
    srv.wait_booted(2);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);
    for _ in 0..3 {
        let r = exchange(&mut Client::connect_unix(&path), "/");
        assert!(is_hello(&r), "{r}");
    }
    srv.signal(Signal::SIGTERM);
    assert_eq!(srv.wait_exit(10).code(), Some(0));
    assert!(!path.exists(), "socket file removed on a clean exit");
}

#[test]
fn a_file_that_is_not_a_socket_is_refused() {
    let dir = TempDir::new("notsock");
    let path = dir.join("file");
    std::fs::write(&path, b"keep me").unwrap();
    let mut srv = Server::start(&["-b", &format!("unix:{}", path.display())]);
    assert_eq!(srv.wait_exit(10).code(), Some(1));
    assert!(
        srv.log().contains(&format!("[ERROR] '{}' is not a socket", path.display())),
        "{}",
        srv.log()
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
}

#[test]
fn an_inherited_fd_is_served() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    // Let the child inherit it (other tests' children may inherit it too: harmless).
    fcntl(&l, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
    let bind = format!("fd://{}", l.as_raw_fd());
    // An address bind next to fd:// is ignored, as gunicorn does.
    let mut srv = Server::start(&["-w", "1", "-b", &bind, "-b", "127.0.0.1:1"]);
    srv.wait_for(&format!("Listening at: http://{addr} ("));
    fcntl(&l, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
    drop(l);
    srv.wait_booted(1);
    assert!(is_hello(&get(addr, "/")));
    srv.signal(Signal::SIGTERM);
    assert_eq!(srv.wait_exit(10).code(), Some(0));
}

#[test]
fn several_binds_and_ipv6() {
    let mut srv = Server::start(&["-w", "1", "-b", "127.0.0.1:0", "-b", "[::1]:0"]);
    let log = srv.wait_for("Using worker");
    let line = log.lines().find(|l| l.contains("Listening at: ")).unwrap();
    let names = line.split("Listening at: ").nth(1).unwrap();
    let (list, _) = names.rsplit_once(' ').unwrap();
    let parts: Vec<&str> = list.split(',').collect();
    assert_eq!(parts.len(), 2, "{line}");
    assert!(
        parts[0].starts_with("http://127.0.0.1:") && parts[1].starts_with("http://[::1]:"),
        "{line}"
    );
    srv.wait_booted(1);
    for p in parts {
        let a: std::net::SocketAddr = p.trim_start_matches("http://").parse().unwrap();
        assert!(is_hello(&get(a, "/")));
    }
    srv.signal(Signal::SIGTERM);
    assert_eq!(srv.wait_exit(10).code(), Some(0));
}
