"""The ``cfg`` object hooks see (``server.cfg``, ``worker.cfg``): gunicorn's ``Config``.

gunicorn hands its hooks a ``gunicorn.config.Config``; hook code reads settings as
attributes (``server.cfg.workers``, ``worker.cfg.bind``), uses the derived properties
(``worker_class_str``, ``address``, ``uid``, ``proc_name``, ``is_ssl``, ``env``,
``sendfile``, ...), looks at ``cfg.settings[name].value`` and sometimes calls
``cfg.set(name, value)``. This module is that class, with gunicorn 27's behaviour, filled
by ferrocorn's Rust settings layer (``ferrocorn/_ferrocorn``, ``shell/src/python/config_object.rs``),
which has already resolved and validated every value: the values are plain Python objects
of gunicorn's types, and hooks given in the config file are the very function objects
the config file defined.

Where it differs from gunicorn's class:

- The object is a snapshot: ``cfg.set()`` validates (with ferrocorn's validators) and
  changes what Python code sees afterwards, but the server, written in Rust, keeps the
  values it resolved at start-up, as gunicorn's arbiter keeps most of its own.
- ``cfg.worker_class`` gives a class named as gunicorn's (``SyncWorker``,
  ``ThreadWorker``) that only stands for ferrocorn's Rust worker, or the class the
  setting names when it is an importable Python class; ``cfg.logger_class`` gives the
  logger's dotted path (after gunicorn's ``simple`` and statsd rules) instead of
  importing ``gunicorn.glogging``.
- ``cfg.parser()`` does not exist: ferrocorn's command-line parser is Rust.
"""

import copy
import importlib
import inspect
import ipaddress
import os
import re
import shlex
import sys

__all__ = ["Config", "Setting", "SyncWorker", "ThreadWorker"]


def get_arity(f):
    """gunicorn's ``util.get_arity``: positional parameters, defaults included."""
    sig = inspect.signature(f)
    arity = 0
    for param in sig.parameters.values():
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            arity += 1
    return arity


def validate_post_request(val):
    """gunicorn's wrapping of a 2- or 3-argument ``post_request`` into the 4-argument
    form (the wrapper's ``__qualname__`` is gunicorn's, as ``--print-config`` shows it)."""
    largs = get_arity(val)
    if largs == 4:
        return val
    elif largs == 3:
        return lambda worker, req, env, _r: val(worker, req, env)
    elif largs == 2:
        return lambda worker, req, _e, _r: val(worker, req)
    raise TypeError("Value must have an arity of: 4")


def parse_address(netloc, default_port="8000"):
    """gunicorn's ``util.parse_address``: ``(host, port)``, a unix socket path, or an fd."""
    if re.match(r"unix:(//)?", netloc):
        return re.split(r"unix:(//)?", netloc)[-1]

    if netloc.startswith("fd://"):
        fd = netloc[5:]
        try:
            return int(fd)
        except ValueError:
            raise RuntimeError("%r is not a valid file descriptor." % fd) from None

    if netloc.startswith("tcp://"):
        netloc = netloc.split("tcp://")[1]
    host, port = netloc, default_port

    if "[" in netloc and "]" in netloc:
        host = netloc.split("]")[0][1:]
        port = (netloc.split("]:") + [default_port])[1]
    elif ":" in netloc:
        host, port = (netloc.split(":") + [default_port])[:2]
    elif netloc == "":
        host, port = "0.0.0.0", default_port

    try:
        port = int(port)
    except ValueError:
        raise RuntimeError("%r is not a valid port number." % port)

    return host.lower(), port


def _bytes_to_str(b):
    if isinstance(b, str):
        return b
    return str(b, "latin1")


# ---- gunicorn's built-in hooks, with gunicorn's ``__qualname__`` ----------------------


class OnStarting:
    @staticmethod
    def on_starting(server):
        pass


class OnReload:
    @staticmethod
    def on_reload(server):
        pass


class WhenReady:
    @staticmethod
    def when_ready(server):
        pass


class Prefork:
    @staticmethod
    def pre_fork(server, worker):
        pass


class Postfork:
    @staticmethod
    def post_fork(server, worker):
        pass


class PostWorkerInit:
    @staticmethod
    def post_worker_init(worker):
        pass


class WorkerInt:
    @staticmethod
    def worker_int(worker):
        pass


class WorkerAbort:
    @staticmethod
    def worker_abort(worker):
        pass


class PreExec:
    @staticmethod
    def pre_exec(server):
        pass


class PreRequest:
    @staticmethod
    def pre_request(worker, req):
        worker.log.debug("%s %s", req.method, req.path)


class PostRequest:
    @staticmethod
    def post_request(worker, req, environ, resp):
        pass


class ChildExit:
    @staticmethod
    def child_exit(server, worker):
        pass


class WorkerExit:
    @staticmethod
    def worker_exit(server, worker):
        pass


class NumWorkersChanged:
    @staticmethod
    def nworkers_changed(server, new_value, old_value):
        pass


class OnExit:
    @staticmethod
    def on_exit(server):
        pass


class NewSSLContext:
    @staticmethod
    def ssl_context(config, default_ssl_context_factory):
        return default_ssl_context_factory()


class OnDirtyStarting:
    @staticmethod
    def on_dirty_starting(arbiter):
        pass


class DirtyPostFork:
    @staticmethod
    def dirty_post_fork(arbiter, worker):
        pass


class DirtyWorkerInit:
    @staticmethod
    def dirty_worker_init(worker):
        pass


class DirtyWorkerExit:
    @staticmethod
    def dirty_worker_exit(arbiter, worker):
        pass


#: The built-in hook of each hook setting (what a setting left at its default holds).
DEFAULT_HOOKS = {
    f.__name__: f
    for f in (
        OnStarting.on_starting,
        OnReload.on_reload,
        WhenReady.when_ready,
        Prefork.pre_fork,
        Postfork.post_fork,
        PostWorkerInit.post_worker_init,
        WorkerInt.worker_int,
        WorkerAbort.worker_abort,
        PreExec.pre_exec,
        PreRequest.pre_request,
        PostRequest.post_request,
        ChildExit.child_exit,
        WorkerExit.worker_exit,
        NumWorkersChanged.nworkers_changed,
        OnExit.on_exit,
        NewSSLContext.ssl_context,
        OnDirtyStarting.on_dirty_starting,
        DirtyPostFork.dirty_post_fork,
        DirtyWorkerInit.dirty_worker_init,
        DirtyWorkerExit.dirty_worker_exit,
    )
}


# ---- worker classes ---------------------------------------------------------------------


class SyncWorker:
    """Stands for ferrocorn's sync worker (Rust), named as gunicorn's
    ``gunicorn.workers.sync.SyncWorker``."""


class ThreadWorker:
    """Stands for ferrocorn's gthread worker (Rust), named as gunicorn's
    ``gunicorn.workers.gthread.ThreadWorker``."""


_WORKERS = {
    "sync": SyncWorker,
    "gunicorn.workers.sync.SyncWorker": SyncWorker,
    "egg:gunicorn#sync": SyncWorker,
    "gthread": ThreadWorker,
    "gunicorn.workers.gthread.ThreadWorker": ThreadWorker,
    "egg:gunicorn#gthread": ThreadWorker,
}


# ---- settings and the config ------------------------------------------------------------


class Setting:
    """One setting, shaped as gunicorn's ``Setting`` instances in ``cfg.settings``."""

    def __init__(self, name, section, order, cli, meta, action, default, desc, value,
                 validator):
        self.name = name
        self.section = section
        self.order = order
        self.cli = cli
        self.meta = meta
        self.action = action
        self.default = default
        self.desc = desc
        self.short = desc.splitlines()[0] if desc else ""
        self.value = value
        self.validator = validator

    def copy(self):
        return copy.copy(self)

    def get(self):
        return self.value

    def set(self, val):
        self.value = self.validator(val)

    def __lt__(self, other):
        return self.section == other.section and self.order < other.order

    def __repr__(self):
        return "<%s.%s object at %x with value %r>" % (
            self.__class__.__module__,
            self.__class__.__name__,
            id(self),
            self.value,
        )


class Config:
    """gunicorn's ``Config``: every setting as an attribute, plus its derived properties."""

    def __init__(self, settings, usage=None, prog=None):
        self.settings = settings
        self._forwarded_allow_networks = None
        self._proxy_allow_networks = None
        self.usage = usage
        self.prog = prog or os.path.basename(sys.argv[0])
        self.env_orig = os.environ.copy()

    def __str__(self):
        lines = []
        kmax = max(len(k) for k in self.settings)
        for k in sorted(self.settings):
            v = self.settings[k].value
            if callable(v):
                v = "<{}()>".format(v.__qualname__)
            lines.append("{k:{kmax}} = {v}".format(k=k, v=v, kmax=kmax))
        return "\n".join(lines)

    def __getattr__(self, name):
        if name == "settings":
            raise AttributeError()
        if name not in self.settings:
            raise AttributeError("No configuration setting for: %s" % name)
        return self.settings[name].get()

    def __setattr__(self, name, value):
        if name != "settings" and name in self.settings:
            raise AttributeError("Invalid access!")
        super().__setattr__(name, value)

    def set(self, name, value):
        if name not in self.settings:
            raise AttributeError("No configuration setting for: %s" % name)
        self.settings[name].set(value)

    def validate(self):
        """Cross-setting checks; ferrocorn ran them before building this object."""

    def get_cmd_args_from_env(self):
        if "GUNICORN_CMD_ARGS" in self.env_orig:
            return shlex.split(self.env_orig["GUNICORN_CMD_ARGS"])
        return []

    @property
    def worker_class_str(self):
        uri = self.settings["worker_class"].get()
        if isinstance(uri, str):
            is_sync = uri.endswith("SyncWorker") or uri == "sync"
            if is_sync and self.threads > 1:
                return "gthread"
            return uri
        return uri.__name__

    @property
    def worker_class(self):
        uri = self.settings["worker_class"].get()
        if not isinstance(uri, str):
            return uri
        is_sync = uri.endswith("SyncWorker") or uri == "sync"
        if is_sync and self.threads > 1:
            uri = "gthread"
        if uri in _WORKERS:
            return _WORKERS[uri]
        module, _, name = uri.rpartition(".")
        if not module:
            raise RuntimeError("class uri %r invalid or not found" % uri)
        return getattr(importlib.import_module(module), name)

    @property
    def address(self):
        s = self.settings["bind"].get()
        return [parse_address(_bytes_to_str(bind)) for bind in s]

    @property
    def uid(self):
        return self.settings["user"].get()

    @property
    def gid(self):
        return self.settings["group"].get()

    @property
    def proc_name(self):
        pn = self.settings["proc_name"].get()
        if pn is not None:
            return pn
        return self.settings["default_proc_name"].get()

    @property
    def logger_class(self):
        default = "gunicorn.glogging.Logger"
        uri = self.settings["logger_class"].get()
        if uri == "simple":
            uri = default
        if uri == default and self.settings["statsd_host"].value is not None:
            uri = "gunicorn.instrument.statsd.Statsd"
        return uri

    @property
    def is_ssl(self):
        return self.certfile or self.keyfile

    def forwarded_allow_networks(self):
        """Network objects for forwarded_allow_ips (cached)."""
        if self._forwarded_allow_networks is None:
            self._forwarded_allow_networks = [
                ipaddress.ip_network(addr)
                for addr in self.forwarded_allow_ips
                if addr != "*"
            ]
        return self._forwarded_allow_networks

    def proxy_allow_networks(self):
        """Network objects for proxy_allow_ips (cached)."""
        if self._proxy_allow_networks is None:
            self._proxy_allow_networks = [
                ipaddress.ip_network(addr)
                for addr in self.proxy_allow_ips
                if addr != "*"
            ]
        return self._proxy_allow_networks

    @property
    def ssl_options(self):
        opts = {}
        for name, value in self.settings.items():
            if value.section == "SSL":
                opts[name] = value.get()
        return opts

    @property
    def env(self):
        raw_env = self.settings["raw_env"].get()
        env = {}
        if not raw_env:
            return env
        for e in raw_env:
            s = _bytes_to_str(e)
            try:
                k, v = s.split("=", 1)
            except ValueError:
                raise RuntimeError("environment setting %r invalid" % s)
            env[k] = v
        return env

    @property
    def sendfile(self):
        if self.settings["sendfile"].get() is not None:
            return False
        if "SENDFILE" in os.environ:
            sendfile = os.environ["SENDFILE"].lower()
            return sendfile in ["y", "1", "yes", "true"]
        return True

    @property
    def reuse_port(self):
        return self.settings["reuse_port"].get()

    @property
    def paste_global_conf(self):
        raw_global_conf = self.settings["raw_paste_global_conf"].get()
        if raw_global_conf is None:
            return None
        global_conf = {}
        for e in raw_global_conf:
            s = _bytes_to_str(e)
            try:
                k, v = re.split(r"(?<!\\)=", s, maxsplit=1)
            except ValueError:
                raise RuntimeError("environment setting %r invalid" % s)
            k = k.replace("\\=", "=")
            v = v.replace("\\=", "=")
            global_conf[k] = v
        return global_conf


def _validator(validate, name):
    """The validator of one setting: ferrocorn's own (Rust), which converts and checks
    the value as gunicorn's ``validate_*`` function for that setting does."""

    def validator(val):
        val = validate(name, val)
        if name == "post_request":
            val = validate_post_request(val)
        return val

    validator.__qualname__ = validator.__name__ = "validate_" + name
    return validator


def _ssl_method(val):
    import ssl

    if type(val) is int and val == ssl.PROTOCOL_TLS:
        return ssl.PROTOCOL_TLS
    return val


def build(rows, validate, usage=None, prog=None):
    """Builds the ``Config`` from ferrocorn's resolved settings.

    ``rows`` holds one tuple per setting, in gunicorn's order: ``(name, section, cli,
    meta, action, default, desc, value)``; a hook left at its default has ``value`` None
    and gets gunicorn's built-in function. ``validate(name, value)`` is ferrocorn's
    validator; it returns the validated value or raises.
    """
    settings = {}
    for order, (name, section, cli, meta, action, default, desc, value) in enumerate(rows):
        if name == "ssl_version":
            # gunicorn's default is the enum member ssl.PROTOCOL_TLS (which is 2).
            value = _ssl_method(value)
            default = _ssl_method(default)
        if name in DEFAULT_HOOKS:
            if value is None:
                value = DEFAULT_HOOKS[name]
            if default is None:
                default = DEFAULT_HOOKS[name]
            if name == "post_request":
                value = validate_post_request(value)
        settings[name] = Setting(
            name, section, order, cli, meta, action, default, desc, value,
            _validator(validate, name),
        )
    return Config(settings, usage=usage, prog=prog)
