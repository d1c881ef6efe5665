//! Local wall-clock time for the error log's `[%Y-%m-%d %H:%M:%S %z]` stamp.
//!
//! gunicorn formats with Python's `time.localtime()` on every record, so the offset follows
//! the process's time zone (`TZ`, `/etc/localtime`) and daylight saving changes. We ask the
//! C library the same question with `localtime_r`, reached through `nix::libc` (no new
//! dependency): it is thread-safe, reads the same tz database as Python, and — unlike the
//! `time` crate's local offset — does not refuse to answer once the process has threads
//! (Python workers start theirs after fork). The answer is cached per second.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// A broken-down local time with its UTC offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    /// Year (e.g. 2026).
    pub year: i32,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of the month, 1..=31.
    pub day: u32,
    /// Hour, 0..=23.
    pub hour: u32,
    /// Minute, 0..=59.
    pub minute: u32,
    /// Second, 0..=60.
    pub second: u32,
    /// Offset from UTC in seconds (east positive).
    pub offset_secs: i64,
}

impl LocalTime {
    /// `[%Y-%m-%d %H:%M:%S %z]`, as gunicorn's error log `datefmt`.
    pub fn stamp(&self) -> String {
        let sign = if self.offset_secs < 0 { '-' } else { '+' };
        let off = self.offset_secs.unsigned_abs();
        format!(
            "[{:04}-{:02}-{:02} {:02}:{:02}:{:02} {}{:02}{:02}]",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            sign,
            off / 3600,
            (off % 3600) / 60
        )
    }
}

/// The local time of a Unix timestamp, or UTC when the C library cannot tell.
#[allow(unsafe_code)]
pub fn local_time(unix_secs: i64) -> LocalTime {
    let t: nix::libc::time_t = unix_secs;
    // SAFETY: `localtime_r` only reads `t` and writes the `tm` we own; an all-zero `tm` is
    // a valid value of that plain C struct. It is the re-entrant variant, safe to call from
    // any thread.
    let (ok, tm) = unsafe {
        let mut tm: nix::libc::tm = std::mem::zeroed();
        let r = nix::libc::localtime_r(&t, &mut tm);
        (!r.is_null(), tm)
    };
    if !ok {
        return utc(unix_secs);
    }
    LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        offset_secs: tm.tm_gmtoff,
    }
}

/// The UTC broken-down time of a Unix timestamp.
pub fn utc(unix_secs: i64) -> LocalTime {
    let c = ferrocorn_core::date::CivilTime::from_unix(unix_secs);
    LocalTime {
        year: c.year as i32,
        month: u32::from(c.month),
        day: u32::from(c.day),
        hour: u32::from(c.hour),
        minute: u32::from(c.minute),
        second: u32::from(c.second),
        offset_secs: 0,
    }
}

thread_local! {
    static CACHE: Cell<Option<(i64, LocalTime)>> = const { Cell::new(None) };
}

/// The stamp for now, computed at most once per second per thread.
pub fn now_stamp() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let lt = CACHE.with(|c| match c.get() {
        Some((s, lt)) if s == secs => lt,
        _ => {
            let lt = local_time(secs);
            c.set(Some((secs, lt)));
            lt
        }
    });
    lt.stamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_formats_offset() {
        let mut lt = utc(0);
        assert_eq!(lt.stamp(), "[1970-01-01 00:00:00 +0000]");
        lt.offset_secs = -(5 * 3600 + 30 * 60);
        assert_eq!(lt.stamp(), "[1970-01-01 00:00:00 -0530]");
        lt.offset_secs = 3600;
        assert_eq!(lt.stamp(), "[1970-01-01 00:00:00 +0100]");
    }

    #[test]
    fn local_time_is_sane() {
        let lt = local_time(1_795_478_599);
        assert!(lt.year >= 2026 && lt.offset_secs.abs() <= 14 * 3600);
    }
}
