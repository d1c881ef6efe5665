"""Python logging for ferrocorn, as gunicorn 27's ``gunicorn.glogging`` does it.

ferrocorn writes its error and access logs from Rust. A server started with a logging
configuration (``logconfig``, ``logconfig_dict``, ``logconfig_json``, or the logging
sections of a ``--paste`` ini) or with a ``logger_class`` of its own sends every error
and access record through an instance of the class below (or of the user's class)
instead, so what gunicorn users configure behaves as under gunicorn: the records go to
the Python loggers ``gunicorn.error`` and ``gunicorn.access``, with gunicorn's levels,
the access record's ``msg`` is ``access_log_format`` and its ``args`` the atoms dict.

``Logger`` has the methods of ``gunicorn.glogging.Logger`` (``setup``, ``critical``,
``error``, ``warning``, ``info``, ``debug``, ``exception``, ``log``, ``access``,
``atoms``, ``now``, ``reopen_files``, ``close_on_exec``): it is the base class for a
``logger_class`` written for ferrocorn, and what ``gunicorn.glogging.Logger``,
``simple`` and gunicorn's statsd logger resolve to (ferrocorn sends the StatsD metrics
from Rust). A class that subclasses gunicorn's own ``Logger`` is used as it is.

The Rust side (``shell/src/python/pylog.rs``) calls ``_access`` with the served request
as plain values; ``_Request`` and ``_Response`` give the ``req`` and ``resp`` objects
gunicorn's ``access(resp, req, environ, request_time)`` reads.
"""

import base64
import binascii
import datetime
import http
import importlib
import inspect
import json
import logging
import logging.config
import logging.handlers
import os
import socket
import sys
import threading
import time
import traceback

logging.Logger.manager.emittedNoHandlerWarning = 1

__all__ = ["CONFIG_DEFAULTS", "Logger", "SafeAtoms"]

SYSLOG_FACILITIES = {
    "auth": 4,
    "authpriv": 10,
    "cron": 9,
    "daemon": 3,
    "ftp": 11,
    "kern": 0,
    "lpr": 6,
    "mail": 2,
    "news": 7,
    "security": 4,
    "syslog": 5,
    "user": 1,
    "uucp": 8,
    "local0": 16,
    "local1": 17,
    "local2": 18,
    "local3": 19,
    "local4": 20,
    "local5": 21,
    "local6": 22,
    "local7": 23,
}

# gunicorn's defaults, under which a user's dictionary is merged one level deep
# (``dict.update``): a config that brings its own ``handlers`` replaces gunicorn's, so
# gunicorn's loggers must not be left naming ``console`` or ``error_console``.
CONFIG_DEFAULTS = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {
            "level": "INFO",
            "handlers": ["error_console"],
            "propagate": True,
            "qualname": "gunicorn.error",
        },
        "gunicorn.access": {
            "level": "INFO",
            "handlers": ["console"],
            "propagate": True,
            "qualname": "gunicorn.access",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stdout",
        },
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stderr",
        },
    },
    "formatters": {
        "generic": {
            "format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
            "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
            "class": "logging.Formatter",
        }
    },
}


def loggers():
    """Every logger logging knows of."""
    return [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]


class SafeAtoms(dict):
    """The atoms as the access format reads them: quotes escaped in strings, a missing
    atom is ``-``, ``{header}i``-style keys looked up in lower case."""

    def __init__(self, atoms):
        dict.__init__(self)
        for key, value in atoms.items():
            self[key] = value.replace('"', '\\"') if isinstance(value, str) else value

    def __getitem__(self, k):
        if k.startswith("{"):
            k = k.lower()
        if k in self:
            return super().__getitem__(k)
        return "-"


def _check_is_writable(path):
    try:
        with open(path, "a"):
            pass
    except OSError as e:
        raise RuntimeError("Error: '%s' isn't writable [%r]" % (path, e))


def _close_on_exec(fd):
    os.set_inheritable(fd, False)


def _syslog_address(addr):
    if addr.startswith("unix://"):
        sock_type = None
        parts = addr.split("#", 1)
        if len(parts) == 2:
            addr = parts[0]
            if parts[1] == "dgram":
                sock_type = socket.SOCK_DGRAM
        return sock_type, addr.split("unix://")[1]
    if addr.startswith("udp://"):
        addr, socktype = addr.split("udp://")[1], socket.SOCK_DGRAM
    elif addr.startswith("tcp://"):
        addr, socktype = addr.split("tcp://")[1], socket.SOCK_STREAM
    else:
        raise RuntimeError("invalid syslog address")
    if "[" in addr and "]" in addr:
        host = addr.split("]")[0][1:].lower()
    elif ":" in addr:
        host = addr.split(":")[0].lower()
    elif addr == "":
        host = "localhost"
    else:
        host = addr.lower()
    addr = addr.split("]")[-1]
    port = 514
    if ":" in addr:
        port = addr.split(":", 1)[1]
        if not port.isdigit():
            raise RuntimeError("%r is not a valid port number." % port)
        port = int(port)
    return socktype, (host, port)


class Logger:
    """gunicorn's ``glogging.Logger``: the error log on ``gunicorn.error``, the access
    log on ``gunicorn.access``, then the user's logging configuration over them."""

    LOG_LEVELS = {
        "critical": logging.CRITICAL,
        "error": logging.ERROR,
        "warning": logging.WARNING,
        "info": logging.INFO,
        "debug": logging.DEBUG,
    }
    loglevel = logging.INFO

    error_fmt = r"%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
    datefmt = r"[%Y-%m-%d %H:%M:%S %z]"

    access_fmt = "%(message)s"
    syslog_fmt = "[%(process)d] %(message)s"

    atoms_wrapper_class = SafeAtoms

    def __init__(self, cfg):
        self.error_log = logging.getLogger("gunicorn.error")
        self.error_log.propagate = False
        self.access_log = logging.getLogger("gunicorn.access")
        self.access_log.propagate = False
        self.error_handlers = []
        self.access_handlers = []
        self.logfile = None
        self.lock = threading.Lock()
        self.cfg = cfg
        self.setup(cfg)

    def setup(self, cfg):
        self.cfg = cfg
        self._access_log_enabled = self._compute_access_log_enabled()
        self.loglevel = self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO)
        self.error_log.setLevel(self.loglevel)
        self.access_log.setLevel(logging.INFO)

        # A reload runs setup again: drop the handlers of the previous one.
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                if getattr(handler, "_gunicorn", False):
                    log.removeHandler(handler)

        if cfg.capture_output and cfg.errorlog != "-":
            for stream in sys.stdout, sys.stderr:
                stream.flush()
            self.logfile = open(cfg.errorlog, "a+")
            os.dup2(self.logfile.fileno(), sys.stdout.fileno())
            os.dup2(self.logfile.fileno(), sys.stderr.fileno())

        self._set_handler(self.error_log, cfg.errorlog, logging.Formatter(self.error_fmt, self.datefmt))
        if cfg.accesslog is not None:
            self._set_handler(
                self.access_log, cfg.accesslog, fmt=logging.Formatter(self.access_fmt), stream=sys.stdout
            )
        if cfg.syslog:
            self._set_syslog_handler(self.error_log, cfg, self.syslog_fmt, "error")
            if not cfg.disable_redirect_access_to_syslog:
                self._set_syslog_handler(self.access_log, cfg, self.syslog_fmt, "access")

        if cfg.logconfig_dict:
            config = CONFIG_DEFAULTS.copy()
            config.update(cfg.logconfig_dict)
            try:
                logging.config.dictConfig(config)
            except (AttributeError, ImportError, ValueError, TypeError) as exc:
                raise RuntimeError(str(exc)) from exc
        elif cfg.logconfig_json:
            config = CONFIG_DEFAULTS.copy()
            if os.path.exists(cfg.logconfig_json):
                try:
                    with open(cfg.logconfig_json) as f:
                        config.update(json.load(f))
                    logging.config.dictConfig(config)
                except (json.JSONDecodeError, AttributeError, ImportError, ValueError, TypeError) as exc:
                    raise RuntimeError(str(exc)) from exc
        elif cfg.logconfig:
            if os.path.exists(cfg.logconfig):
                defaults = CONFIG_DEFAULTS.copy()
                defaults["__file__"] = cfg.logconfig
                defaults["here"] = os.path.dirname(cfg.logconfig)
                logging.config.fileConfig(cfg.logconfig, defaults=defaults, disable_existing_loggers=False)
            else:
                raise RuntimeError("Error: log config '%s' not found" % cfg.logconfig)

    def critical(self, msg, *args, **kwargs):
        self.error_log.critical(msg, *args, **kwargs)

    def error(self, msg, *args, **kwargs):
        self.error_log.error(msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs):
        self.error_log.warning(msg, *args, **kwargs)

    def info(self, msg, *args, **kwargs):
        self.error_log.info(msg, *args, **kwargs)

    def debug(self, msg, *args, **kwargs):
        self.error_log.debug(msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs):
        self.error_log.exception(msg, *args, **kwargs)

    def log(self, lvl, msg, *args, **kwargs):
        if isinstance(lvl, str):
            lvl = self.LOG_LEVELS.get(lvl.lower(), logging.INFO)
        self.error_log.log(lvl, msg, *args, **kwargs)

    def atoms(self, resp, req, environ, request_time):
        """The access-log atoms of a request (gunicorn's names)."""
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        secs, micros = request_time.seconds, request_time.microseconds
        atoms = {
            "h": environ.get("REMOTE_ADDR", "-"),
            "l": "-",
            "u": self._get_user(environ) or "-",
            "t": self.now(),
            "r": "%s %s %s" % (environ["REQUEST_METHOD"], environ["RAW_URI"], environ["SERVER_PROTOCOL"]),
            "s": status,
            "m": environ.get("REQUEST_METHOD"),
            "U": environ.get("PATH_INFO"),
            "q": environ.get("QUERY_STRING"),
            "H": environ.get("SERVER_PROTOCOL"),
            "b": sent is not None and str(sent) or "-",
            "B": sent,
            "f": environ.get("HTTP_REFERER", "-"),
            "a": environ.get("HTTP_USER_AGENT", "-"),
            "T": secs,
            "D": secs * 1000000 + micros,
            "M": secs * 1000 + int(micros / 1000),
            "L": "%d.%06d" % (secs, micros),
            "p": "<%s>" % os.getpid(),
        }
        req_headers = req.headers if hasattr(req, "headers") else req
        if hasattr(req_headers, "items"):
            req_headers = req_headers.items()
        atoms.update({"{%s}i" % k.lower(): v for k, v in req_headers})
        resp_headers = resp.headers
        if hasattr(resp_headers, "items"):
            resp_headers = resp_headers.items()
        atoms.update({"{%s}o" % k.lower(): v for k, v in resp_headers})
        atoms.update({"{%s}e" % k.lower(): v for k, v in environ.items()})
        return atoms

    @property
    def access_log_enabled(self):
        try:
            return self._access_log_enabled
        except AttributeError:
            return self._compute_access_log_enabled()

    def _compute_access_log_enabled(self):
        cfg = self.cfg
        return bool(
            cfg.accesslog
            or cfg.logconfig
            or cfg.logconfig_dict
            or cfg.logconfig_json
            or (cfg.syslog and not cfg.disable_redirect_access_to_syslog)
        )

    def access(self, resp, req, environ, request_time):
        """One access record: ``access_log_format`` with the atoms as its args."""
        if not self.access_log_enabled:
            return
        safe_atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        try:
            self.access_log.info(self.cfg.access_log_format, safe_atoms)
        except Exception:
            self.error(traceback.format_exc())

    def now(self):
        """The time in Apache's common log format."""
        return time.strftime("[%d/%b/%Y:%H:%M:%S %z]")

    def reopen_files(self):
        """USR1: the captured output and every file handler opened again."""
        if self.cfg.capture_output and self.cfg.errorlog != "-":
            for stream in sys.stdout, sys.stderr:
                stream.flush()
            with self.lock:
                if self.logfile is not None:
                    self.logfile.close()
                self.logfile = open(self.cfg.errorlog, "a+")
                os.dup2(self.logfile.fileno(), sys.stdout.fileno())
                os.dup2(self.logfile.fileno(), sys.stderr.fileno())
        for log in loggers():
            for handler in log.handlers:
                if isinstance(handler, logging.FileHandler):
                    handler.acquire()
                    try:
                        if handler.stream:
                            handler.close()
                            handler.stream = handler._open()
                    finally:
                        handler.release()

    def close_on_exec(self):
        for log in loggers():
            for handler in log.handlers:
                if isinstance(handler, logging.FileHandler):
                    handler.acquire()
                    try:
                        if handler.stream:
                            _close_on_exec(handler.stream.fileno())
                    finally:
                        handler.release()

    def _get_gunicorn_handler(self, log):
        for h in log.handlers:
            if getattr(h, "_gunicorn", False):
                return h
        return None

    def _set_handler(self, log, output, fmt, stream=None):
        h = self._get_gunicorn_handler(log)
        if h:
            log.handlers.remove(h)
        if output is not None:
            if output == "-":
                h = logging.StreamHandler(stream)
            else:
                _check_is_writable(output)
                h = logging.FileHandler(output)
                try:
                    os.chown(h.baseFilename, self.cfg.user, self.cfg.group)
                except (OSError, TypeError):
                    pass
            h.setFormatter(fmt)
            h._gunicorn = True
            log.addHandler(h)

    def _set_syslog_handler(self, log, cfg, fmt, name):
        prefix = cfg.syslog_prefix or cfg.proc_name.replace(":", ".")
        prefix = "gunicorn.%s.%s" % (prefix, name)
        fmt = logging.Formatter(r"%s: %s" % (prefix, fmt))
        try:
            facility = SYSLOG_FACILITIES[cfg.syslog_facility.lower()]
        except KeyError as exc:
            raise RuntimeError("unknown facility name") from exc
        socktype, addr = _syslog_address(cfg.syslog_addr)
        h = logging.handlers.SysLogHandler(address=addr, facility=facility, socktype=socktype)
        h.setFormatter(fmt)
        h._gunicorn = True
        log.addHandler(h)

    def _get_user(self, environ):
        user = None
        http_auth = environ.get("HTTP_AUTHORIZATION")
        if http_auth and http_auth.lower().startswith("basic"):
            auth = http_auth.split(" ", 1)
            if len(auth) == 2:
                try:
                    auth = base64.b64decode(auth[1].strip().encode("utf-8"))
                    user = auth.split(b":", 1)[0].decode("UTF-8")
                except (TypeError, binascii.Error, UnicodeDecodeError) as exc:
                    self.debug("Couldn't get username: %s", exc)
        return user


# ---- what the Rust side calls -----------------------------------------------------------

# The names that mean gunicorn's own logger: ferrocorn's class above stands for them.
_DEFAULTS = {
    "simple",
    "gunicorn.glogging.Logger",
    "egg:gunicorn#simple",
    "gunicorn.instrument.statsd.Statsd",
    "egg:gunicorn#statsd",
}


def load_class(uri):
    """The class ``logger_class`` names, as gunicorn's ``util.load_class`` finds it;
    gunicorn's own names give this module's ``Logger``."""
    if inspect.isclass(uri):
        return uri
    if uri in _DEFAULTS:
        return Logger
    if uri.startswith("egg:"):
        dist, _, name = uri[4:].rpartition("#")
        try:
            from importlib.metadata import entry_points

            (ep,) = [e for e in entry_points(group="gunicorn.loggers") if e.name == name]
            return ep.load()
        except Exception:
            exc = traceback.format_exc()
            raise RuntimeError("class uri %r invalid or not found: \n\n[%s]" % (uri, exc))
    components = uri.split(".")
    if len(components) == 1:
        raise RuntimeError("class uri %r invalid or not found: \n\n[%s]" % (uri, "no module named"))
    klass = components.pop(-1)
    try:
        mod = importlib.import_module(".".join(components))
    except Exception:
        exc = traceback.format_exc()
        raise RuntimeError("class uri %r invalid or not found: \n\n[%s]" % (uri, exc))
    return getattr(mod, klass)


def make(cls, cfg):
    """The logger: ``cls`` instantiated with the cfg object (gunicorn calls ``install``
    on the class first when it has one). Returns ``(logger, level)``, ``level`` the
    lowest level the Rust side must pass on (``DEBUG`` for a user's class, which decides
    itself; the effective level of ``gunicorn.error`` for ferrocorn's)."""
    if hasattr(cls, "install"):
        cls.install()
    logger = cls(cfg)
    return logger, level_of(logger)


def level_of(logger):
    if type(logger) is Logger:
        return logging.getLogger("gunicorn.error").getEffectiveLevel()
    return logging.DEBUG


class _Request:
    """The ``req`` an access record reads: ``headers`` as gunicorn's list of
    ``(NAME, value)`` pairs (names upper-cased), and the request line."""

    __slots__ = ("headers", "method", "uri", "path", "query", "version")

    def __init__(self, headers, method, uri, path, query, version):
        self.headers = headers
        self.method = method
        self.uri = uri
        self.path = path
        self.query = query
        self.version = version


class _Response:
    """The ``resp`` an access record reads: ``status`` (the status line's text),
    ``status_code``, ``sent`` and ``headers`` as the application gave them."""

    __slots__ = ("status", "status_code", "sent", "headers", "response_length")

    def __init__(self, status, code, sent, headers):
        self.status = status
        self.status_code = code
        self.sent = sent
        self.response_length = sent
        self.headers = headers


def _access(logger, status, code, sent, resp_headers, req_line, req_headers, environ, micros):
    """One served request, from Rust, as ``logger.access(resp, req, environ,
    request_time)``. ``status`` is ``None`` for an error page ferrocorn answered, which
    gunicorn's ``handle_error`` gives its reason phrase."""
    if status is None:
        try:
            status = "%d %s" % (code, http.HTTPStatus(code).phrase)
        except ValueError:
            status = str(code)
    resp = _Response(status, code, sent, resp_headers)
    method, uri, path, query, version = req_line
    req = _Request(req_headers, method, uri, path, query, version)
    logger.access(resp, req, environ, datetime.timedelta(microseconds=micros))


def _exception(logger, msg, exc, tb):
    """``logger.exception(msg)`` for an exception caught in Rust: the exception is given
    as ``exc_info``, so formatters see it as under gunicorn's ``except`` block."""
    logger.exception(msg, exc_info=(type(exc), exc, tb))
