//! StatsD lines as gunicorn's `gunicorn.instrument.statsd.Statsd` writes them:
//! `<prefix><name>:<value>|<type>`, `|@<rate>` after counters, then `|#<dogstatsd_tags>`
//! when tags are set. One line is one datagram; the caller sends it (and, like gunicorn,
//! ignores send failures).
//!
//! Metric names: [`REQUESTS`], [`REQUEST_STATUS_PREFIX`]`<code>`, [`REQUEST_DURATION`] (a
//! timer in milliseconds), [`WORKERS`] (gauge), [`BACKLOG`] (histogram) and `gunicorn.log.<level>`
//! counters ([`LogLevel`]).

use alloc::string::String;
use core::fmt::Write as _;

/// Counter incremented once per request.
pub const REQUESTS: &str = "gunicorn.requests";
/// Counter per status code: `gunicorn.request.status.<code>`.
pub const REQUEST_STATUS_PREFIX: &str = "gunicorn.request.status.";
/// Request duration in milliseconds.
pub const REQUEST_DURATION: &str = "gunicorn.request.duration";
/// Gauge of the worker count, sent by the master when it changes.
pub const WORKERS: &str = "gunicorn.workers";
/// Histogram of the listen backlog, sent by the master when `enable_backlog_metric` is on.
pub const BACKLOG: &str = "gunicorn.backlog";

/// A statsd metric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    /// `c`; written with a sample rate `|@<rate>`.
    Counter,
    /// `g`
    Gauge,
    /// `ms`
    Timer,
    /// `h`
    Histogram,
}

impl MetricType {
    /// The wire suffix (`c`, `g`, `ms`, `h`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "c",
            MetricType::Gauge => "g",
            MetricType::Timer => "ms",
            MetricType::Histogram => "h",
        }
    }

    /// The type named by a log call's `extra={"mtype": ...}`: `gauge`, `counter` or
    /// `histogram`; anything else sends nothing (`None`), as gunicorn.
    ///
    /// `histogram` maps to `|h` as the behaviour reference (gunicorn 26) describes for
    /// `gunicorn.backlog`; gunicorn up to 23.x wrote every histogram as `|ms`.
    pub fn from_mtype(mtype: &str) -> Option<MetricType> {
        match mtype {
            "gauge" => Some(MetricType::Gauge),
            "counter" => Some(MetricType::Counter),
            "histogram" => Some(MetricType::Histogram),
            _ => None,
        }
    }
}

/// A metric value, formatted as Python's `str.format` would.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetricValue<'a> {
    /// An `int`.
    Int(i64),
    /// A `float`, written as Python's `repr` (`12.345`, `1.0`, `1e-05`).
    Float(f64),
    /// Any other value, already converted with `str()` by the caller.
    Text(&'a str),
}

/// The levels that count their log calls (`gunicorn.log.<level>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// `gunicorn.log.critical`
    Critical,
    /// `gunicorn.log.error`
    Error,
    /// `gunicorn.log.warning`
    Warning,
    /// `gunicorn.log.exception`
    Exception,
}

impl LogLevel {
    /// The metric name.
    pub fn metric(self) -> &'static str {
        match self {
            LogLevel::Critical => "gunicorn.log.critical",
            LogLevel::Error => "gunicorn.log.error",
            LogLevel::Warning => "gunicorn.log.warning",
            LogLevel::Exception => "gunicorn.log.exception",
        }
    }
}

/// Appends Python's `repr(float)` of `v`: the shortest digits that round-trip, in
/// positional notation with at least one decimal (`1.0`), switching to `d.ddde±XX` below
/// 1e-4 and from 1e16 on; `inf`, `-inf`, `nan`.
pub fn push_py_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("nan");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v < 0.0 { "-inf" } else { "inf" });
        return;
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = alloc::format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        out.push_str(mantissa);
        out.push('e');
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        out.push(sign);
        if digits.len() < 2 {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let start = out.len();
        let _ = write!(out, "{v}");
        if !out[start..].contains('.') {
            out.push_str(".0");
        }
    }
}

/// gunicorn's request duration in milliseconds:
/// `request_time.seconds * 1000 + float(request_time.microseconds) / 10 ** 3`.
///
/// **Divergence:** `secs` counts whole seconds without dropping days (gunicorn's
/// `timedelta.seconds` wraps after 24 hours).
pub fn duration_ms(secs: u64, micros: u32) -> f64 {
    (secs as f64) * 1000.0 + f64::from(micros) / 1000.0
}

/// The statsd line formatter for one configuration (`statsd_prefix`, `dogstatsd_tags`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statsd {
    prefix: String,
    tags: String,
}

impl Statsd {
    /// A formatter with `statsd_prefix` normalised to end in exactly one `.` (an empty
    /// prefix, or one made only of dots, stays empty) and `dogstatsd_tags` appended
    /// verbatim as `|#<tags>` when non-empty.
    ///
    /// **Divergence:** gunicorn's `re.sub(r"^(.+[^.]+)\.*$", r"\g<1>.", prefix)` leaves a
    /// one-character prefix without its dot (`a` gives `agunicorn.requests`) and an all-dots
    /// prefix as it is; here `a` becomes `a.` and `...` becomes empty.
    pub fn new(prefix: &str, dogstatsd_tags: &str) -> Self {
        let base = prefix.trim_end_matches('.');
        let mut p = String::from(base);
        if !base.is_empty() {
            p.push('.');
        }
        Statsd { prefix: p, tags: String::from(dogstatsd_tags) }
    }

    /// The normalised prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Appends one line: `<prefix><name>:<value>|<type>`, plus `|@<rate>` for counters
    /// (gunicorn always writes a rate, `1.0` by default), plus `|#<tags>`.
    pub fn line(
        &self,
        name: &str,
        value: MetricValue<'_>,
        kind: MetricType,
        rate: f64,
        out: &mut String,
    ) {
        out.push_str(&self.prefix);
        out.push_str(name);
        out.push(':');
        match value {
            MetricValue::Int(n) => {
                let _ = write!(out, "{n}");
            }
            MetricValue::Float(f) => push_py_float(out, f),
            MetricValue::Text(s) => out.push_str(s),
        }
        out.push('|');
        out.push_str(kind.as_str());
        if kind == MetricType::Counter {
            out.push_str("|@");
            push_py_float(out, rate);
        }
        if !self.tags.is_empty() {
            out.push_str("|#");
            out.push_str(&self.tags);
        }
    }

    /// A counter line `<name>:<value>|c|@1.0` (gunicorn's `increment`).
    pub fn increment(&self, name: &str, value: i64, out: &mut String) {
        self.line(name, MetricValue::Int(value), MetricType::Counter, 1.0, out);
    }

    /// A counter line with a negative value `<name>:-<value>|c|@1.0` (gunicorn's
    /// `decrement`).
    pub fn decrement(&self, name: &str, value: i64, out: &mut String) {
        self.line(name, MetricValue::Int(value.saturating_neg()), MetricType::Counter, 1.0, out);
    }

    /// A gauge line `<name>:<value>|g`.
    pub fn gauge(&self, name: &str, value: MetricValue<'_>, out: &mut String) {
        self.line(name, value, MetricType::Gauge, 1.0, out);
    }

    /// A timer line `<name>:<ms>|ms`.
    pub fn timer(&self, name: &str, ms: f64, out: &mut String) {
        self.line(name, MetricValue::Float(ms), MetricType::Timer, 1.0, out);
    }

    /// A histogram line `<name>:<value>|h`.
    pub fn histogram(&self, name: &str, value: MetricValue<'_>, out: &mut String) {
        self.line(name, value, MetricType::Histogram, 1.0, out);
    }

    /// The three lines gunicorn sends per request, in its order: the duration timer, the
    /// request counter and the status counter.
    pub fn access(&self, status: u16, request_time: (u64, u32)) -> [String; 3] {
        let mut duration = String::new();
        self.timer(REQUEST_DURATION, duration_ms(request_time.0, request_time.1), &mut duration);
        let mut requests = String::new();
        self.increment(REQUESTS, 1, &mut requests);
        let mut by_status = String::new();
        let name = alloc::format!("{REQUEST_STATUS_PREFIX}{status}");
        self.increment(&name, 1, &mut by_status);
        [duration, requests, by_status]
    }

    /// The counter line for one log call at `level`.
    pub fn log(&self, level: LogLevel, out: &mut String) {
        self.increment(level.metric(), 1, out);
    }

    /// The `gunicorn.workers` gauge line.
    pub fn workers(&self, count: usize, out: &mut String) {
        self.gauge(WORKERS, MetricValue::Int(i64::try_from(count).unwrap_or(i64::MAX)), out);
    }

    /// The `gunicorn.backlog` histogram line.
    pub fn backlog(&self, pending: u64, out: &mut String) {
        self.histogram(BACKLOG, MetricValue::Int(i64::try_from(pending).unwrap_or(i64::MAX)), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(f: impl FnOnce(&mut String)) -> String {
        let mut s = String::new();
        f(&mut s);
        s
    }

    #[test]
    fn prefix_normalisation() {
        for (given, want) in [
            ("", ""),
            ("app", "app."),
            ("app.", "app."),
            ("app...", "app."),
            ("service.app", "service.app."),
            ("a", "a."),
            ("...", ""),
            (".app", ".app."),
        ] {
            assert_eq!(Statsd::new(given, "").prefix(), want, "{given:?}");
        }
    }

    #[test]
    fn lines() {
        let s = Statsd::new("svc", "");
        assert_eq!(one(|o| s.increment(REQUESTS, 1, o)), "svc.gunicorn.requests:1|c|@1.0");
        assert_eq!(one(|o| s.decrement("x", 3, o)), "svc.x:-3|c|@1.0");
        assert_eq!(one(|o| s.gauge(WORKERS, MetricValue::Int(4), o)), "svc.gunicorn.workers:4|g");
        assert_eq!(one(|o| s.workers(0, o)), "svc.gunicorn.workers:0|g");
        assert_eq!(
            one(|o| s.timer(REQUEST_DURATION, 12.345, o)),
            "svc.gunicorn.request.duration:12.345|ms"
        );
        assert_eq!(one(|o| s.backlog(7, o)), "svc.gunicorn.backlog:7|h");
        assert_eq!(one(|o| s.gauge("g", MetricValue::Text("5"), o)), "svc.g:5|g");
        assert_eq!(
            one(|o| s.line("c", MetricValue::Int(2), MetricType::Counter, 0.5, o)),
            "svc.c:2|c|@0.5"
        );
        assert_eq!(one(|o| s.log(LogLevel::Critical, o)), "svc.gunicorn.log.critical:1|c|@1.0");
        assert_eq!(one(|o| s.log(LogLevel::Error, o)), "svc.gunicorn.log.error:1|c|@1.0");
        assert_eq!(one(|o| s.log(LogLevel::Warning, o)), "svc.gunicorn.log.warning:1|c|@1.0");
        assert_eq!(one(|o| s.log(LogLevel::Exception, o)), "svc.gunicorn.log.exception:1|c|@1.0");
    }

    #[test]
    fn dogstatsd_tags() {
        let s = Statsd::new("", "env:prod,team:web");
        assert_eq!(
            one(|o| s.increment(REQUESTS, 1, o)),
            "gunicorn.requests:1|c|@1.0|#env:prod,team:web"
        );
        assert_eq!(
            one(|o| s.gauge(WORKERS, MetricValue::Int(2), o)),
            "gunicorn.workers:2|g|#env:prod,team:web"
        );
        assert_eq!(
            one(|o| s.timer(REQUEST_DURATION, 1.5, o)),
            "gunicorn.request.duration:1.5|ms|#env:prod,team:web"
        );
    }

    #[test]
    fn access_lines() {
        let s = Statsd::new("p.", "");
        assert_eq!(
            s.access(404, (1, 234_500)),
            [
                "p.gunicorn.request.duration:1234.5|ms",
                "p.gunicorn.requests:1|c|@1.0",
                "p.gunicorn.request.status.404:1|c|@1.0"
            ]
        );
        assert_eq!(s.access(200, (0, 0))[0], "p.gunicorn.request.duration:0.0|ms");
        assert_eq!(s.access(200, (0, 12_345))[0], "p.gunicorn.request.duration:12.345|ms");
        assert_eq!(s.access(200, (0, 1))[0], "p.gunicorn.request.duration:0.001|ms");
        assert_eq!(s.access(200, (3, 0))[0], "p.gunicorn.request.duration:3000.0|ms");
    }

    #[test]
    fn python_float_repr() {
        // Values checked against CPython's repr().
        for (v, want) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (12.345, "12.345"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456789.123, "123456789.123"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e100, "1.2345e+100"),
            (-2.5, "-2.5"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (duration_ms(0, 999), "0.999"),
            (duration_ms(86_399, 999_999), "86399999.999"),
            (duration_ms(1, 100_001), "1100.001"),
        ] {
            assert_eq!(one(|o| push_py_float(o, v)), want, "{v}");
        }
    }

    #[test]
    fn mtypes() {
        assert_eq!(MetricType::from_mtype("gauge"), Some(MetricType::Gauge));
        assert_eq!(MetricType::from_mtype("counter"), Some(MetricType::Counter));
        assert_eq!(MetricType::from_mtype("histogram"), Some(MetricType::Histogram));
        assert_eq!(MetricType::from_mtype("timer"), None);
        assert_eq!(MetricType::Timer.as_str(), "ms");
    }
}
