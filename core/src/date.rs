//! Calendar arithmetic for the dates the server writes: the IMF-fixdate of the `Date`
//! response header ([`http_date`]) and the calendar fields the access log's `%(t)s`
//! prints ([`CivilTime`]). Pure arithmetic on unix seconds the caller supplies: nothing
//! here reads a clock.

use alloc::vec::Vec;

/// A UTC (or offset-shifted) calendar time, from unix seconds, by pure arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CivilTime {
    /// The year (0..=9999 after [`CivilTime::from_unix`]'s clamping).
    pub year: i64,
    /// 1..=12
    pub month: u8,
    /// 1..=31
    pub day: u8,
    /// 0..=23
    pub hour: u8,
    /// 0..=59
    pub minute: u8,
    /// 0..=59
    pub second: u8,
    /// 0 = Sunday ..= 6 = Saturday
    pub weekday: u8,
}

/// `Sun` ..= `Sat`.
pub const WEEKDAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
/// `Jan` ..= `Dec`.
pub const MONTH_NAMES: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

impl CivilTime {
    /// `0000-01-01T00:00:00Z`, the earliest time [`CivilTime::from_unix`] returns.
    pub const MIN_UNIX: i64 = -62_167_219_200;
    /// `9999-12-31T23:59:59Z`, the latest time [`CivilTime::from_unix`] returns.
    pub const MAX_UNIX: i64 = 253_402_300_799;

    /// The calendar time of `secs` seconds after the unix epoch (proleptic Gregorian),
    /// clamped to years 0000..=9999 so that it always prints in four digits.
    pub fn from_unix(secs: i64) -> CivilTime {
        let secs = secs.clamp(Self::MIN_UNIX, Self::MAX_UNIX);
        let days = secs.div_euclid(86_400);
        let tod = secs.rem_euclid(86_400);
        // Days to civil date (after H. Hinnant's public-domain `civil_from_days`): shift
        // the epoch to 0000-03-01 so leap days fall at the end of a 400-year era.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        CivilTime {
            year,
            month: month as u8,
            day: day as u8,
            hour: (tod / 3600) as u8,
            minute: (tod / 60 % 60) as u8,
            second: (tod % 60) as u8,
            // 1970-01-01 was a Thursday.
            weekday: (days + 4).rem_euclid(7) as u8,
        }
    }

    /// `Jan` ..= `Dec`.
    pub fn month_name(&self) -> &'static str {
        MONTH_NAMES[usize::from(self.month - 1)]
    }

    /// `Sun` ..= `Sat`.
    pub fn weekday_name(&self) -> &'static str {
        WEEKDAY_NAMES[usize::from(self.weekday)]
    }
}

impl CivilTime {
    /// Appends `HH:MM:SS`.
    pub(crate) fn push_hms(&self, out: &mut Vec<u8>) {
        push_2digits(out, self.hour);
        out.push(b':');
        push_2digits(out, self.minute);
        out.push(b':');
        push_2digits(out, self.second);
    }
}

pub(crate) fn push_2digits(out: &mut Vec<u8>, n: u8) {
    out.push(b'0' + n / 10);
    out.push(b'0' + n % 10);
}

pub(crate) fn push_4digits(out: &mut Vec<u8>, n: i64) {
    let n = n.clamp(0, 9999) as u16;
    for d in [n / 1000, n / 100 % 10, n / 10 % 10, n % 10] {
        out.push(b'0' + d as u8);
    }
}

/// The IMF-fixdate (RFC 9110 §5.6.7) of `unix_secs`, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`
/// for 784111777 (as gunicorn's `util.http_date`). Times outside years 0000..=9999 are
/// clamped (see [`CivilTime::from_unix`]).
///
/// ```
/// assert_eq!(&ferrocorn_core::date::http_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
pub fn http_date(unix_secs: i64) -> [u8; 29] {
    let t = CivilTime::from_unix(unix_secs);
    let mut v = Vec::with_capacity(29);
    v.extend_from_slice(t.weekday_name().as_bytes());
    v.extend_from_slice(b", ");
    push_2digits(&mut v, t.day);
    v.push(b' ');
    v.extend_from_slice(t.month_name().as_bytes());
    v.push(b' ');
    push_4digits(&mut v, t.year);
    v.push(b' ');
    t.push_hms(&mut v);
    v.extend_from_slice(b" GMT");
    let mut out = [0u8; 29];
    out.copy_from_slice(&v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8]) -> &str {
        core::str::from_utf8(b).unwrap()
    }

    #[test]
    fn imf_fixdates() {
        let cases: &[(i64, &str)] = &[
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (951_868_799, "Tue, 29 Feb 2000 23:59:59 GMT"),
            (951_868_800, "Wed, 01 Mar 2000 00:00:00 GMT"),
            (1_078_099_200, "Mon, 01 Mar 2004 00:00:00 GMT"),
            (1_078_012_800, "Sun, 29 Feb 2004 00:00:00 GMT"),
            (1_077_926_400, "Sat, 28 Feb 2004 00:00:00 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"), // 2100 is not a leap year
            (4_107_542_399, "Sun, 28 Feb 2100 23:59:59 GMT"),
            (1_709_164_800, "Thu, 29 Feb 2024 00:00:00 GMT"),
            (1_735_689_599, "Tue, 31 Dec 2024 23:59:59 GMT"),
            (1_735_689_600, "Wed, 01 Jan 2025 00:00:00 GMT"),
            (2_147_483_647, "Tue, 19 Jan 2038 03:14:07 GMT"),
            (-2_208_988_800, "Mon, 01 Jan 1900 00:00:00 GMT"),
            (CivilTime::MAX_UNIX, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (i64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (CivilTime::MIN_UNIX, "Sat, 01 Jan 0000 00:00:00 GMT"),
            (i64::MIN, "Sat, 01 Jan 0000 00:00:00 GMT"),
        ];
        for &(t, want) in cases {
            assert_eq!(s(&http_date(t)), want, "{t}");
        }
    }

    #[test]
    fn civil_time_round_trip_every_day() {
        // Every day from 1600 to 2500 follows its predecessor: no gaps, no repeats, and
        // the weekday advances by one.
        let mut prev = CivilTime::from_unix(-11_676_096_000 - 86_400);
        let mut t = -11_676_096_000i64; // 1600-01-01
        while t < 16_725_225_600 {
            let c = CivilTime::from_unix(t);
            let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let mdays =
                [31, if leap(prev.year) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            if prev.day == mdays[usize::from(prev.month - 1)] {
                assert_eq!(c.day, 1);
                if prev.month == 12 {
                    assert_eq!((c.year, c.month), (prev.year + 1, 1));
                } else {
                    assert_eq!((c.year, c.month), (prev.year, prev.month + 1));
                }
            } else {
                assert_eq!((c.year, c.month, c.day), (prev.year, prev.month, prev.day + 1));
            }
            assert_eq!(c.weekday, (prev.weekday + 1) % 7);
            prev = c;
            t += 86_400;
        }
    }
}
