//! The master's log lines against gunicorn 27.0.1 (`.venv`, made by
//! `scripts/setup-python.sh`): the same story (start, two workers, one killed from
//! outside and replaced, TERM) must produce the same lines, pids and ports aside.

use crate::support;

use std::path::PathBuf;
use std::process::Command;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{Server, TempDir, get, oracle_venv};

fn gunicorn() -> PathBuf {
    oracle_venv().join("bin/gunicorn")
}

/// Runs the story and returns the log lines as `LEVEL message`, with numbers masked,
/// sorted (workers log concurrently), gunicorn-only lines dropped.
fn story(mut srv: Server) -> Vec<String> {
    let addr = srv.addr();
    let pids = srv.wait_booted(2);
    assert!(get(addr, "/").starts_with("HTTP/1.1 200 OK\r\n"));
    kill(Pid::from_raw(pids[0]), Signal::SIGKILL).unwrap();
    srv.wait_booted(3);
    srv.signal(Signal::SIGTERM);
    assert_eq!(srv.wait_exit(30).code(), Some(0));
    let mut lines: Vec<String> = srv
        .log()
        .lines()
        .filter_map(|l| l.split_once("] [").map(|x| x.1))
        .filter_map(|l| l.split_once("] [").map(|x| x.1.replacen("] ", " ", 1)))
        .filter(|l| !l.contains("Control socket listening at"))
        .map(|l| {
            let l = l.replace("gunicorn 27.0.1", "ferrocorn 0.1.0");
            let mut out = String::new();
            let mut in_num = false;
            for c in l.chars() {
                if c.is_ascii_digit() {
                    if !in_num {
                        out.push('N');
                    }
                    in_num = true;
                } else {
                    in_num = false;
                    out.push(c);
                }
            }
            out
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn master_lines_match_gunicorn() {
    let dir = TempDir::new("oracle");
    std::fs::write(
        dir.join("hello.py"),
        "def app(environ, start_response):\n    start_response('200 OK', [('Content-Length', '13')])\n    return [b'Hello, World!']\n",
    )
    .unwrap();
    let mut g = Command::new(gunicorn());
    g.current_dir(&dir).args([
        "-w",
        "2",
        "-b",
        "127.0.0.1:0",
        "--control-socket",
        dir.join("ctl").to_str().unwrap(),
        "hello:app",
    ]);
    let want = story(Server::start_command(g));
    let got = story(Server::start(&["-w", "2", "-b", "127.0.0.1:0"]));
    assert_eq!(got, want);
    assert!(
        want.iter().any(|l| l == "ERROR Worker (pid:N) was sent SIGKILL! Perhaps out of memory?"),
        "{want:#?}"
    );
}
