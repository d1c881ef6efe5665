//! The process environment the settings depend on, captured once.
//!
//! gunicorn computes several defaults when `gunicorn.config` is imported: `PORT` → bind,
//! `WEB_CONCURRENCY` → workers, `FORWARDED_ALLOW_IPS`, the working directory → chdir,
//! the effective uid/gid → user/group, `XDG_RUNTIME_DIR`/`HOME` → control_socket. Here
//! all of that lives in one [`Env`] value that is passed in, so tests can build any
//! environment without touching the real one (and run in parallel).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A snapshot of everything outside the command line that settings read.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// Environment variables.
    pub vars: BTreeMap<String, String>,
    /// The working directory, as gunicorn's `util.getcwd()` sees it (`$PWD` when it names
    /// the same directory as the real cwd, so symlinked paths are kept).
    pub cwd: PathBuf,
    /// Effective user id (`os.geteuid()`).
    pub euid: u32,
    /// Effective group id (`os.getegid()`).
    pub egid: u32,
    /// User names and ids (from `/etc/passwd`), for `-u NAME`.
    pub users: Vec<(String, u32)>,
    /// Group names and ids (from `/etc/group`), for `-g NAME`.
    pub groups: Vec<(String, u32)>,
}

impl Env {
    /// Reads the real process environment. Uses only safe std APIs: ids come from
    /// `/proc/self/status`, names from `/etc/passwd` and `/etc/group`.
    pub fn from_process() -> Env {
        let vars: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let real = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let cwd = match vars.get("PWD") {
            Some(pwd) if same_file(Path::new(pwd), &real) => PathBuf::from(pwd),
            _ => real,
        };
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let (euid, egid) = effective_ids(&status);
        Env {
            vars,
            cwd,
            euid,
            egid,
            users: parse_id_db(&std::fs::read_to_string("/etc/passwd").unwrap_or_default()),
            groups: parse_id_db(&std::fs::read_to_string("/etc/group").unwrap_or_default()),
        }
    }

    /// An environment with no variables, the given cwd and uid/gid 0; a base for tests.
    pub fn bare(cwd: impl Into<PathBuf>) -> Env {
        Env { cwd: cwd.into(), ..Env::default() }
    }

    /// Returns `self` with one more variable set.
    pub fn with_var(mut self, key: &str, value: &str) -> Env {
        self.vars.insert(key.to_owned(), value.to_owned());
        self
    }

    /// One environment variable.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// Looks a user name up (`pwd.getpwnam`).
    pub fn user_id(&self, name: &str) -> Option<u32> {
        self.users.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }

    /// Looks a group name up (`grp.getgrnam`).
    pub fn group_id(&self, name: &str) -> Option<u32> {
        self.groups.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Effective uid and gid from the text of `/proc/self/status` (`Uid:` / `Gid:` lines
/// list real, effective, saved and filesystem ids).
fn effective_ids(status: &str) -> (u32, u32) {
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    (field("Uid:"), field("Gid:"))
}

/// `name:x:id:...` lines of `/etc/passwd` or `/etc/group`.
fn parse_id_db(text: &str) -> Vec<(String, u32)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split(':');
            let name = parts.next()?;
            let id = parts.nth(1)?.parse().ok()?;
            Some((name.to_owned(), id))
        })
        .collect()
}

/// The error of [`shlex_split`], with Python's `shlex` messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShlexError(pub &'static str);

/// Splits a string as Python's `shlex.split(s)` does (POSIX mode, no comments): used for
/// `GUNICORN_CMD_ARGS`.
pub fn shlex_split(s: &str) -> Result<Vec<String>, ShlexError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => return Err(ShlexError("No escaped character")),
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err(ShlexError("No closing quotation")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\')) => cur.push(n),
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => return Err(ShlexError("No closing quotation")),
                        },
                        Some(n) => cur.push(n),
                        None => return Err(ShlexError("No closing quotation")),
                    }
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shlex_matches_python() {
        // Expected values checked against Python 3.11 `shlex.split`.
        let ok: &[(&str, &[&str])] = &[
            ("--bind=127.0.0.1 --workers=3", &["--bind=127.0.0.1", "--workers=3"]),
            ("  -w   3  ", &["-w", "3"]),
            ("'a b' c", &["a b", "c"]),
            ("\"a b\"c", &["a bc"]),
            ("a\\ b", &["a b"]),
            ("\"x\\\"y\"", &["x\"y"]),
            ("\"x\\ny\"", &["x\\ny"]),
            ("'x\\y'", &["x\\y"]),
            ("''", &[""]),
            ("--access-logformat '%(h)s \"%(r)s\"'", &["--access-logformat", "%(h)s \"%(r)s\""]),
            ("a#b #c", &["a#b", "#c"]),
            ("", &[]),
        ];
        for (input, want) in ok {
            let got = shlex_split(input).unwrap();
            assert_eq!(got, want.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{input:?}");
        }
        assert_eq!(shlex_split("'open"), Err(ShlexError("No closing quotation")));
        assert_eq!(shlex_split("\"open"), Err(ShlexError("No closing quotation")));
        assert_eq!(shlex_split("end\\"), Err(ShlexError("No escaped character")));
    }

    #[test]
    fn ids_from_proc_status() {
        let status = "Name:\tx\nUid:\t1000\t1001\t1002\t1003\nGid:\t50\t51\t52\t53\n";
        assert_eq!(effective_ids(status), (1001, 51));
    }

    #[test]
    fn id_db() {
        let db = parse_id_db(
            "root:x:0:0:root:/root:/bin/sh\n# c\nwww-data:x:33:33::/:/bin/false\nbad\n",
        );
        assert_eq!(db, vec![("root".to_owned(), 0), ("www-data".to_owned(), 33)]);
    }
}
