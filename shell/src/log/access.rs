//! The access log: gunicorn's `accesslog` (`-` for stdout, else a file opened for
//! appending) with lines rendered by [`ferrocorn_core::access_log::AccessFormat`] from
//! `access_log_format`. As in gunicorn, nothing is written when `accesslog` is unset.
//!
//! Each line is one `write(2)` (the workers share the file description), so lines of
//! different workers never interleave. `%(t)s` is the local time of the write, as
//! gunicorn's `time.strftime('[%d/%b/%Y:%H:%M:%S %z]')`, computed once per second.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use ferrocorn_core::access_log::{AccessFormat, AccessRecord, clf_time};

#[derive(Debug)]
enum Sink {
    Stdout,
    File(File),
    /// No `accesslog`: the lines go to syslog only.
    None,
}

/// An open access log.
#[derive(Debug)]
pub struct AccessLog {
    format: AccessFormat,
    sink: Sink,
    path: Option<String>,
    line: RefCell<String>,
    time: RefCell<(i64, String)>,
    /// `syslog` without `disable_redirect_access_to_syslog`: each line is also sent there.
    syslog: Option<std::sync::Arc<super::syslog::Syslog>>,
    /// Python logging configured ([`super::Forward`]): the records go there instead.
    forward: Option<std::sync::Arc<dyn super::Forward>>,
}

impl AccessLog {
    /// The access log for `accesslog` (`None`: disabled) and `access_log_format`. A file
    /// that cannot be opened gives gunicorn's error text.
    pub fn open(accesslog: Option<&str>, format: &str) -> Result<Option<AccessLog>, String> {
        AccessLog::open_with(accesslog, format, None)
    }

    /// [`AccessLog::open`], with the lines also sent to `syslog` (which enables the access
    /// log without `accesslog`, as in gunicorn).
    pub fn open_with(
        accesslog: Option<&str>,
        format: &str,
        syslog: Option<std::sync::Arc<super::syslog::Syslog>>,
    ) -> Result<Option<AccessLog>, String> {
        // With Python logging, gunicorn calls its logger's `access` for every request;
        // the logger decides (its own handlers do the file, stdout and syslog).
        let forward = super::forward();
        let (accesslog, syslog) = match forward {
            Some(_) => (None, None),
            None => (accesslog, syslog),
        };
        let (sink, path) = match accesslog {
            None if forward.is_some() => (Sink::None, None),
            None if syslog.is_none() => return Ok(None),
            None => (Sink::None, None),
            Some("-") => (Sink::Stdout, None),
            Some(target) => (Sink::File(open_file(target)?), Some(target.to_owned())),
        };
        Ok(Some(AccessLog {
            format: AccessFormat::parse(format),
            sink,
            path,
            line: RefCell::new(String::with_capacity(256)),
            time: RefCell::new((i64::MIN, String::new())),
            syslog,
            forward,
        }))
    }

    /// Opens the file again (USR1, after log rotation); stdout stays as it is.
    pub fn reopen(&mut self) -> Result<(), String> {
        if let Some(p) = &self.path {
            self.sink = Sink::File(open_file(p)?);
        }
        Ok(())
    }

    /// The Python logger the records go to, when Python logging is configured.
    pub fn forward(&self) -> Option<&dyn super::Forward> {
        self.forward.as_deref()
    }

    /// The parsed format (to know which lookups a record needs).
    pub fn format(&self) -> &AccessFormat {
        &self.format
    }

    /// The `%(t)s` text for now: `[06/Nov/1994:08:49:37 +0000]` in local time.
    pub fn now_text(&self) -> String {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let mut t = self.time.borrow_mut();
        if t.0 != secs {
            let offset = crate::log::time::local_time(secs).offset_secs;
            *t = (secs, clf_time(secs, i32::try_from(offset).unwrap_or(0)));
        }
        t.1.clone()
    }

    /// Renders `rec` and writes it as one line.
    pub fn write(&self, rec: &AccessRecord<'_>) {
        let mut line = self.line.borrow_mut();
        line.clear();
        self.format.render(rec, &mut line);
        if let Some(syslog) = &self.syslog {
            syslog.send("access", super::Level::Info, std::process::id(), &line);
        }
        line.push('\n');
        // A failing log write (closed stdout, full disk) must never stop the server.
        let _ = match &self.sink {
            Sink::Stdout => std::io::stdout().lock().write_all(line.as_bytes()),
            Sink::File(f) => (&*f).write_all(line.as_bytes()),
            Sink::None => Ok(()),
        };
    }
}

fn open_file(path: &str) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("Error: '{path}' isn't writable [{}]", crate::log::py_os_error(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_without_accesslog() {
        assert!(AccessLog::open(None, "%(h)s").unwrap().is_none());
    }

    #[test]
    fn writes_rendered_lines_to_a_file() {
        let dir = std::env::temp_dir().join(format!("ferrocorn-access-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("access.log");
        let mut log = AccessLog::open(path.to_str(), "%(m)s %(s)s %(b)s").unwrap().unwrap();
        log.write(&AccessRecord {
            method: b"GET",
            status: 200,
            sent: Some(13),
            ..AccessRecord::default()
        });
        log.write(&AccessRecord {
            method: b"HEAD",
            status: 204,
            sent: None,
            ..AccessRecord::default()
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "GET 200 13\nHEAD 204 -\n");
        // Rotation: the file is moved away, USR1 reopens the configured path.
        std::fs::rename(&path, dir.join("access.log.1")).unwrap();
        log.reopen().unwrap();
        log.write(&AccessRecord {
            method: b"PUT",
            status: 201,
            sent: Some(0),
            ..AccessRecord::default()
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(text, "PUT 201 0\n");
        let t = log.now_text();
        assert!(t.starts_with('[') && t.ends_with(']') && t.len() == 28, "{t}");
    }
}
