//! A real master (`ferrocorn-test-server`) for end-to-end tests: started with gunicorn
//! flags, its error log collected line by line, waited on with deadlines (never fixed
//! sleeps), and killed on drop (the master and the workers it booted: only our pids).

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub struct Server {
    child: Child,
    log: Arc<Mutex<String>>,
    eof: Arc<AtomicBool>,
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        Server::start_env(args, &[])
    }

    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrocorn-test-server"));
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server::start_command(cmd)
    }

    /// Runs any master (e.g. gunicorn as the oracle) with its stderr collected.
    pub fn start_command(mut cmd: Command) -> Server {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start ferrocorn-test-server");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        let eof = Arc::new(AtomicBool::new(false));
        let done = Arc::clone(&eof);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
            done.store(true, Ordering::SeqCst);
        });
        Server { child, log, eof }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log satisfies `pred`; panics with the log after `secs`.
    pub fn wait_log(&self, secs: u64, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let log = self.log();
            if pred(&log) {
                return log;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}; log:\n{log}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_log(10, needle, |l| l.contains(needle))
    }

    /// The TCP address from `Listening at: http://HOST:PORT (PID)`.
    pub fn addr(&self) -> SocketAddr {
        let log = self.wait_for("Listening at: ");
        let rest = log.split("Listening at: http://").nth(1).expect("a TCP listener");
        rest.split(' ').next().unwrap().parse().unwrap()
    }

    /// Pids from `Booting worker with pid: N`, in order.
    pub fn booted(&self) -> Vec<i32> {
        self.log()
            .lines()
            .filter_map(|l| l.split("Booting worker with pid: ").nth(1))
            .map(|p| p.trim().parse().unwrap())
            .collect()
    }

    pub fn wait_booted(&self, n: usize) -> Vec<i32> {
        self.wait_log(10, &format!("{n} booted workers"), |_| self.booted().len() >= n);
        self.booted()
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits for the master to exit.
    pub fn wait_exit(&mut self, secs: u64) -> ExitStatus {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader thread catch the last lines (EOF once every writer is gone).
                let end = Instant::now() + Duration::from_secs(2);
                while !self.eof.load(Ordering::SeqCst) && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return st;
            }
            assert!(Instant::now() < end, "master did not exit; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for pid in self.booted() {
            // Only the workers this master booted; most are gone already.
            if parent_of(pid) == Some(self.pid()) || parent_of(pid) == Some(1) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// The parent pid of `pid`, from /proc.
pub fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` is alive (and not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, a)| !a.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Sends one request and reads the whole answer (the server closes).
pub fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    exchange(&mut s, path)
}

pub fn exchange<S: Read + Write>(s: &mut S, path: &str) -> String {
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

pub fn is_hello(resp: &str) -> bool {
    resp.starts_with("HTTP/1.1 200 OK\r\n") && resp.contains("\r\nConnection: close\r\n") && resp.ends_with("\r\n\r\nHello, World!")
}
