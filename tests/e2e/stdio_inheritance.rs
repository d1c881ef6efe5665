//! `enable_stdio_inheritance` through the installed command, beside gunicorn 27: a daemon
//! started with its stdout and stderr sent to files keeps writing there with the flag (the
//! error log on stderr, what the application prints on stdout), and writes nothing there
//! without it (its stdio is `/dev/null` once it detached).

use crate::support;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{KillOnDrop, TempDir, alive, get, oracle_venv, wait_until};

const APP: &str = "\
def app(environ, start_response):
    print('printed by the app', flush=True)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
";

/// Runs `program` as a daemon with stdout and stderr to files, asks one request, stops
/// it; returns (stdout file, stderr file) as the daemon left them.
fn daemon(program: &str, inherit: bool) -> (String, String) {
    let dir = TempDir::new(&format!("stdio-{program}"));
    std::fs::write(dir.path("stdio_app.py"), APP).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let pidfile = dir.path("master.pid");
    let mut args = vec!["stdio_app:app", "--daemon", "-b", &bind, "-w", "1"];
    let pid_arg = pidfile.to_str().unwrap().to_owned();
    args.extend(["--pid", &pid_arg]);
    if inherit {
        args.push("--enable-stdio-inheritance");
    }
    let out = std::fs::File::create(dir.path("stdout.txt")).unwrap();
    let err = std::fs::File::create(dir.path("stderr.txt")).unwrap();
    let status = Command::new(oracle_venv().join("bin").join(program))
        .args(&args)
        .current_dir(&dir.0)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .unwrap();
    // The command returns once it has detached.
    assert!(status.success(), "{program}: {status}");
    let guard = KillOnDrop::default();
    let mut master = 0;
    wait_until(30, "the daemon's pidfile", || {
        master =
            std::fs::read_to_string(&pidfile).ok().and_then(|p| p.trim().parse().ok()).unwrap_or(0);
        master > 0
    });
    guard.add(master);
    let addr: SocketAddr = bind.parse().unwrap();
    wait_until(30, "the daemon's listener", || std::net::TcpStream::connect(addr).is_ok());
    let r = get(addr, "/");
    let read = |f: &str| std::fs::read_to_string(dir.path(f)).unwrap_or_default();
    assert!(
        r.starts_with("HTTP/1.1 200 OK") && r.contains("ok"),
        "{program}: {r:?}\n{}",
        read("stderr.txt")
    );
    if inherit {
        wait_until(20, "the app's print in stdout", || read("stdout.txt").contains("printed by"));
    }
    kill(Pid::from_raw(master), Signal::SIGTERM).unwrap();
    wait_until(30, "the daemon's exit", || !alive(master));
    (read("stdout.txt"), read("stderr.txt"))
}

#[test]
fn stdio_inheritance_keeps_a_daemons_output_files() {
    oracle_venv();
    for program in ["gunicorn", "ferrocorn"] {
        let (out, err) = daemon(program, true);
        assert_eq!(out.matches("printed by the app").count(), 1, "{program}: {out}");
        for line in ["] Listening at: http://127.0.0.1:", "] Booting worker with pid: "] {
            assert!(err.contains(line), "{program}: {err}");
        }
        assert!(err.contains("] Shutting down: Master"), "{program}: {err}");
        let (out, err) = daemon(program, false);
        assert_eq!((out.as_str(), err.as_str()), ("", ""), "{program}");
    }
}
