//! Process settings: daemon, pidfile, user/group, process titles, and the two systemd
//! protocols (socket activation and `sd_notify`).
//!
//! | setting | here | as gunicorn 27 |
//! |---|---|---|
//! | `daemon` | [`daemonize`]: fork, `setsid`, fork, `umask(0o22)`, stdio to `/dev/null` (only stdin with `enable_stdio_inheritance`, see below) | `util.daemonize`; skipped when `GUNICORN_FD` is set |
//! | `pidfile` | [`Pidfile`]: written through a temp file and `rename`, mode 0644, `"<pid>\n"`; refused when it names another live process; removed on exit only if it still holds our pid; `<pidfile>.2` for a master re-executed by USR2 until it is promoted | `gunicorn/pidfile.py` |
//! | `user`, `group`, `initgroups` | [`set_owner_process`] in each worker after `post_fork`; unix sockets and log files are chowned in the master | `util.set_owner_process`, `util.chown` |
//! | `proc_name` | [`ProcTitle`]: `ferrocorn: master [name]` / `ferrocorn: worker [name]` | `util._setproctitle` (only when the `setproctitle` package is installed) |
//! | `umask` | applied around unix socket binds ([`crate::listen`]) | same |
//!
//! **`enable_stdio_inheritance`:** gunicorn keeps stdout/stderr only when they are TTYs
//! and otherwise sends them to `/dev/null`; ferrocorn keeps them whatever they are (a
//! file or a pipe the operator redirected to is the point of the flag).
//!
//! **Process titles:** `ps -o args` shows the argv memory of the process. Rewriting it
//! (what the C `setproctitle` does) means writing through raw pointers into memory the
//! Rust runtime also reads (`std::env::args`), which cannot be made sound from safe
//! Rust. The default [`ProcTitle`] sets the kernel's `comm` name with
//! `prctl(PR_SET_NAME)` (shown by `ps -o comm`, `top`, `pgrep`; 15 bytes, so
//! `master [name]` / `worker [name]`, cut to fit). The Python package supplies its own
//! [`ProcTitle`] that calls the `setproctitle` package when it is importable, exactly
//! as gunicorn does, so `ps -o args` then shows `ferrocorn: master [name]`.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Sets the process title (`ferrocorn: master [name]`, `ferrocorn: worker [name]`).
pub trait ProcTitle: Send + Sync {
    /// Sets the title of the calling process.
    fn set(&self, title: &str);
}

/// The default [`ProcTitle`]: the kernel's `comm` name (`prctl(PR_SET_NAME)`), without
/// the `ferrocorn: ` prefix so the role fits in 15 bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct CommTitle;

impl ProcTitle for CommTitle {
    fn set(&self, title: &str) {
        set_comm(title.strip_prefix("ferrocorn: ").unwrap_or(title));
    }
}

/// Sets the calling thread's `comm` name (the main thread's is the process's): at most
/// 15 bytes, cut at a character boundary.
pub fn set_comm(name: &str) {
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    if let Ok(c) = CString::new(&name[..end]) {
        let _ = nix::sys::prctl::set_name(&c);
    }
}

/// The kernel's `comm` name of the calling process.
pub fn comm() -> String {
    fs::read_to_string("/proc/self/comm").map(|s| s.trim_end().to_owned()).unwrap_or_default()
}

/// A pidfile, as gunicorn's `Pidfile`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pidfile {
    path: PathBuf,
    pid: i32,
}

impl Pidfile {
    /// Writes `pid` to `path`. Refuses when the file names another live process
    /// (`Already running on PID N (or pid file 'P' is stale)`, gunicorn's text; a pid we
    /// may not signal counts as alive, unreadable content is ignored) or when its
    /// directory does not exist (`D doesn't exist. Can't create pidfile.`).
    pub fn create(path: impl Into<PathBuf>, pid: i32) -> Result<Pidfile, String> {
        let path = path.into();
        if let Some(old) = Pidfile::validate(&path) {
            if old == nix::unistd::getpid().as_raw() {
                return Ok(Pidfile { path, pid });
            }
            return Err(format!(
                "Already running on PID {old} (or pid file '{}' is stale)",
                path.display()
            ));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(format!("{} doesn't exist. Can't create pidfile.", dir.display()));
        }
        let tmp = dir.join(format!(
            ".{}.{pid}.tmp",
            path.file_name().and_then(OsStr::to_str).unwrap_or("pid")
        ));
        let write = || -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(format!("{pid}\n").as_bytes())?;
            f.set_permissions(fs::Permissions::from_mode(0o644))?;
            fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(format!(
                "Can't create pidfile '{}': {}",
                path.display(),
                crate::log::py_os_error(&e)
            ));
        }
        Ok(Pidfile { path, pid })
    }

    /// The pid a pidfile names, if that process is alive (gunicorn's `validate`).
    pub fn validate(path: &Path) -> Option<i32> {
        let text = fs::read_to_string(path).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        if pid <= 0 {
            return None;
        }
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
            Ok(()) | Err(nix::errno::Errno::EPERM) => Some(pid),
            Err(_) => None,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it still holds our pid.
    pub fn unlink(&self) {
        let ours = fs::read_to_string(&self.path).ok().and_then(|t| t.trim().parse::<i32>().ok())
            == Some(self.pid);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }

    /// Moves to `path` (unlink, then create there), as after a promotion.
    pub fn rename(&mut self, path: impl Into<PathBuf>) -> Result<(), String> {
        self.unlink();
        *self = Pidfile::create(path, self.pid)?;
        Ok(())
    }
}

/// Detaches from the terminal: fork (the parent exits 0), `setsid`, fork again,
/// `umask(0o22)`, stdin to `/dev/null`, and stdout/stderr too unless
/// `enable_stdio_inheritance`. Must be called while the process has one thread.
pub fn daemonize(enable_stdio_inheritance: bool) -> io::Result<()> {
    fork_and_exit_parent()?;
    nix::unistd::setsid()?;
    fork_and_exit_parent()?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let null = fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    if !enable_stdio_inheritance {
        nix::unistd::dup2_stdout(&null)?;
        nix::unistd::dup2_stderr(&null)?;
    }
    Ok(())
}

#[allow(unsafe_code)]
fn fork_and_exit_parent() -> io::Result<()> {
    // SAFETY: called while the process has a single thread (before the master starts
    // anything), so the child inherits no lock held by another thread. The parent
    // leaves with `_exit`, which runs no atexit handler or destructor that could touch
    // state the child still uses.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { .. } => unsafe { nix::libc::_exit(0) },
        nix::unistd::ForkResult::Child => Ok(()),
    }
}

/// gunicorn's `set_owner_process(uid, gid, initgroups)`, in a worker: with a non-zero
/// `gid`, `initgroups(user, gid)` when asked (and the user exists) else `setgid` when it
/// differs; then `setuid` when `uid` is non-zero and differs.
pub fn set_owner_process(uid: u32, gid: u32, initgroups: bool) -> io::Result<()> {
    use nix::unistd::{Gid, Uid, User};
    if gid != 0 {
        let user = if uid != 0 { User::from_uid(Uid::from_raw(uid)).ok().flatten() } else { None };
        match (initgroups, user) {
            (true, Some(u)) => {
                let name = CString::new(u.name).map_err(io::Error::other)?;
                nix::unistd::initgroups(&name, Gid::from_raw(gid))?;
            }
            _ if gid != nix::unistd::getgid().as_raw() => nix::unistd::setgid(Gid::from_raw(gid))?,
            _ => {}
        }
    }
    if uid != 0 && uid != nix::unistd::getuid().as_raw() {
        nix::unistd::setuid(Uid::from_raw(uid))?;
    }
    Ok(())
}

/// `chown(path, uid, gid)` when it would change something and we may (root); errors
/// are returned for the caller to log.
pub fn chown_if_needed(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path)?;
    if m.uid() == uid && m.gid() == gid {
        return Ok(());
    }
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

/// Sends `state` to systemd's `NOTIFY_SOCKET` (a unix datagram socket; a leading `@`
/// names an abstract socket). Without `NOTIFY_SOCKET` it does nothing; failures are
/// returned for a debug line, as gunicorn logs them.
pub fn sd_notify(notify_socket: Option<&str>, state: &str) -> io::Result<()> {
    let Some(addr) = notify_socket.filter(|a| !a.is_empty()) else { return Ok(()) };
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    if let Some(name) = addr.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let a = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(state.as_bytes(), &a)?;
    } else {
        sock.send_to(state.as_bytes(), addr)?;
    }
    Ok(())
}

/// The file descriptors systemd passed (`LISTEN_FDS` from fd 3), if `LISTEN_PID` is this
/// process; `None` otherwise.
pub fn systemd_listen_fds(listen_pid: Option<&str>, listen_fds: Option<&str>) -> Option<Vec<i32>> {
    let pid: i32 = listen_pid?.trim().parse().ok()?;
    if pid != nix::unistd::getpid().as_raw() {
        return None;
    }
    let n: i32 = listen_fds?.trim().parse().ok()?;
    (n > 0).then(|| (3..3 + n).collect())
}

/// The file descriptors in `GUNICORN_FD` (`3,4`), as a re-executed master gets them.
pub fn gunicorn_fds(value: &str) -> Result<Vec<i32>, String> {
    value
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<i32>()
                .map_err(|_| format!("GUNICORN_FD: {s:?} is not a file descriptor"))
        })
        .collect()
}

/// Removes variables from the process environment (`LISTEN_PID`, `LISTEN_FDS`,
/// `GUNICORN_FD` once consumed, so workers and applications do not see them). Must be
/// called while the process has one thread.
#[allow(unsafe_code)]
pub fn unset_env(names: &[&str]) {
    for n in names {
        if std::env::var_os(n).is_some() {
            // SAFETY: the master calls this at start, before it forks or starts any
            // thread (`serve` checks `/proc/self/task`), so no other thread can read the
            // environment concurrently.
            unsafe { std::env::remove_var(n) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfile_lifecycle() {
        let dir = std::env::temp_dir().join(format!("ferrocorn-pid-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("app.pid");
        let me = nix::unistd::getpid().as_raw();
        let pf = Pidfile::create(&p, me).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), format!("{me}\n"));
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
        // Our own pid in the file: accepted again.
        Pidfile::create(&p, me).unwrap();
        // Another live pid (our parent): refused with gunicorn's text.
        let parent = nix::unistd::getppid().as_raw();
        fs::write(&p, format!("{parent}\n")).unwrap();
        assert_eq!(
            Pidfile::create(&p, me).unwrap_err(),
            format!("Already running on PID {parent} (or pid file '{}' is stale)", p.display())
        );
        // Not ours: unlink leaves it.
        pf.unlink();
        assert!(p.exists());
        // Stale or garbage: overwritten.
        fs::write(&p, "999999999\n").unwrap();
        let mut pf = Pidfile::create(&p, me).unwrap();
        fs::write(&p, "garbage").unwrap();
        let pf2 = Pidfile::create(&p, me).unwrap();
        let p2 = dir.join("app.pid.2");
        pf.rename(&p2).unwrap();
        assert!(!p.exists() && p2.exists());
        pf.unlink();
        assert!(!p2.exists());
        drop(pf2);
        assert_eq!(
            Pidfile::create(dir.join("nope/x.pid"), me).unwrap_err(),
            format!("{} doesn't exist. Can't create pidfile.", dir.join("nope").display())
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn fd_lists() {
        assert_eq!(gunicorn_fds("3,4"), Ok(vec![3, 4]));
        assert_eq!(gunicorn_fds(""), Ok(vec![]));
        assert!(gunicorn_fds("x").is_err());
        let me = nix::unistd::getpid().as_raw().to_string();
        assert_eq!(systemd_listen_fds(Some(&me), Some("2")), Some(vec![3, 4]));
        assert_eq!(systemd_listen_fds(Some("1"), Some("2")), None);
        assert_eq!(systemd_listen_fds(None, Some("2")), None);
    }

    #[test]
    fn notify_reaches_a_datagram_socket() {
        let dir = std::env::temp_dir().join(format!("ferrocorn-notify-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        sd_notify(path.to_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        sd_notify(None, "READY=1").unwrap();
        let _ = fs::remove_dir_all(&dir);
    }
}
