"""The ``ssl_context`` hook, run as gunicorn 27 runs it, with what it does to contexts watched.

ferrocorn serves TLS with rustls, so the ``ssl.SSLContext`` the hook returns is translated
(by ``python/ssl_context.rs``). A context tells its properties (``verify_mode``,
``minimum_version``, ``options``, ``sni_callback``, ...) but not what was loaded into it,
so while the config file runs and while the hook runs, the methods that load things are
wrapped: each call goes through to the real method first (its checks and errors are
Python's own: a wrong password raises ``ssl.SSLError`` as under gunicorn), then is noted
on the context. Nothing stays wrapped afterwards.
"""

import os
import sys
import weakref

# Loaded things a context cannot tell afterwards: noted, then translated.
_NOTED = ("load_cert_chain", "load_verify_locations", "set_ciphers", "set_alpn_protocols",
          "set_ecdh_curve")
# Calls that have no rustls counterpart on a server: noted, and refused if they matter.
_OTHER = ("load_default_certs", "set_default_verify_paths", "load_dh_params",
          "set_npn_protocols")

_depth = 0
# Bumped each time a config file runs: contexts of an older run are an sni_callback's
# candidates too (a module the config imports keeps its contexts across HUP), but one
# whose files cannot be read again no longer stops a reload.
_generation = 0
_inside = []
_real = {}
_finder = None
# Every context made or touched while watched (the ones an sni_callback may choose).
_seen = weakref.WeakSet()


def _notes(ctx):
    notes = ctx.__dict__.get("_ferrocorn_notes")
    if notes is None:
        notes = {"chains": [], "capaths": [], "ciphers": None, "alpn": None,
                 "ecdh_curve": None, "other": [], "generation": _generation}
        ctx.__dict__["_ferrocorn_notes"] = notes
        _seen.add(ctx)
    return notes


def _no_password():
    raise ValueError("the private key is encrypted and load_cert_chain got no password "
                     "(ferrocorn does not ask for it on the terminal)")


def _as_bytes(password):
    if isinstance(password, str):
        return password.encode("utf-8")
    return bytes(password)


def _wrap(ssl):
    cls = ssl.SSLContext
    for name in ("__new__",) + _NOTED + _OTHER:
        # (the real method or descriptor, whether ssl.SSLContext itself defines it)
        _real[name] = (cls.__dict__.get(name, getattr(cls, name)), name in cls.__dict__)
    real = {name: r[0] for name, r in _real.items()}

    real_new = real["__new__"]

    def __new__(cls, *args, **kwargs):
        self = real_new(cls, *args, **kwargs)
        _notes(self)
        return self

    def load_cert_chain(self, certfile, keyfile=None, password=None):
        given = []
        if password is None:
            pw = _no_password
        elif callable(password):
            def pw():
                value = password()
                given.append(value)
                return value
        else:
            pw = password
        real["load_cert_chain"](self, certfile, keyfile, pw)
        if password is not None and not callable(password):
            given.append(password)
        path = lambda p: None if p is None else os.path.abspath(os.fsdecode(p))
        _notes(self)["chains"].append(
            (path(certfile), path(keyfile), _as_bytes(given[0]) if given else None))

    def load_verify_locations(self, cafile=None, capath=None, cadata=None):
        real["load_verify_locations"](self, cafile, capath, cadata)
        if capath is not None:
            _notes(self)["capaths"].append(os.path.abspath(os.fsdecode(capath)))
        else:
            _notes(self)

    def set_ciphers(self, spec):
        real["set_ciphers"](self, spec)
        _notes(self)["ciphers"] = spec

    def set_alpn_protocols(self, alpn_protocols):
        real["set_alpn_protocols"](self, alpn_protocols)
        _notes(self)["alpn"] = [p.encode("ascii") for p in alpn_protocols]

    def set_ecdh_curve(self, name):
        real["set_ecdh_curve"](self, name)
        _notes(self)["ecdh_curve"] = os.fsdecode(name)

    def other(name):
        real_method = real[name]

        def method(self, *args, **kwargs):
            # (load_default_certs calls set_default_verify_paths: the outer call is noted)
            outer = not _inside
            _inside.append(name)
            try:
                result = real_method(self, *args, **kwargs)
            finally:
                _inside.pop()
            if outer:
                _notes(self)["other"].append(name)
            return result
        method.__name__ = name
        return method

    cls.__new__ = staticmethod(__new__)
    for f in (load_cert_chain, load_verify_locations, set_ciphers, set_alpn_protocols,
              set_ecdh_curve):
        setattr(cls, f.__name__, f)
    for name in _OTHER:
        setattr(cls, name, other(name))


def _unwrap():
    cls = sys.modules["ssl"].SSLContext
    for name, (real, own) in _real.items():
        if own:
            setattr(cls, name, real)
        else:
            delattr(cls, name)
    _real.clear()


class _SslFinder:
    """Wraps the ``ssl`` module's methods as soon as it is imported (a config file that
    never imports it costs nothing)."""

    def find_spec(self, name, path=None, target=None):
        if name != "ssl":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                exec_module = spec.loader.exec_module

                def exec_and_wrap(module):
                    exec_module(module)
                    if _depth and not _real:
                        _wrap(module)
                spec.loader = _Loader(spec.loader, exec_and_wrap)
                return spec
        return None


class _Loader:
    def __init__(self, loader, exec_module):
        self._loader = loader
        self.exec_module = exec_module

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def __getattr__(self, name):
        return getattr(self._loader, name)


def watch(config=False):
    """Starts watching (nested calls count); ``config``: a config file runs."""
    global _depth, _finder, _generation
    if config and not _depth:
        _generation += 1
    _depth += 1
    if _depth > 1:
        return
    if "ssl" in sys.modules:
        _wrap(sys.modules["ssl"])
    else:
        _finder = _SslFinder()
        sys.meta_path.insert(0, _finder)


def unwatch():
    global _depth, _finder
    _depth -= 1
    if _depth:
        return
    if _finder is not None:
        try:
            sys.meta_path.remove(_finder)
        except ValueError:
            pass
        _finder = None
    if _real:
        _unwrap()


def run(hook, cfg):
    """Calls ``hook(cfg, default_ssl_context_factory)`` as gunicorn 27's
    ``sock.ssl_context`` does, watched; returns the context and what ferrocorn needs of it."""
    import ssl

    def default_ssl_context_factory():
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=cfg.ca_certs)
        context.load_cert_chain(certfile=cfg.certfile, keyfile=cfg.keyfile)
        context.verify_mode = cfg.cert_reqs
        if cfg.ciphers:
            context.set_ciphers(cfg.ciphers)
        return context

    watch()
    try:
        ctx = hook(cfg, default_ssl_context_factory)
    finally:
        unwatch()
    if not isinstance(ctx, ssl.SSLContext):
        raise TypeError("ssl_context returned %r, not an ssl.SSLContext" % (ctx,))
    return describe(ctx)


def describe(ctx):
    notes = ctx.__dict__.get("_ferrocorn_notes")
    desc = {
        "watched": notes is not None,
        "protocol": int(ctx.protocol),
        "verify_mode": int(ctx.verify_mode),
        "minimum_version": int(ctx.minimum_version),
        "maximum_version": int(ctx.maximum_version),
        "options": int(ctx.options),
        "verify_flags": int(ctx.verify_flags),
        "check_hostname": bool(ctx.check_hostname),
        "post_handshake_auth": bool(getattr(ctx, "post_handshake_auth", False)),
        "keylog_filename": (None if getattr(ctx, "keylog_filename", None) is None
                            else os.path.abspath(os.fsdecode(ctx.keylog_filename))),
        "num_tickets": int(getattr(ctx, "num_tickets", 2)),
        "sni_callback": ctx.sni_callback,
        "ca_der": ctx.get_ca_certs(binary_form=True),
        "context": ctx,
    }
    desc.update(notes or {"chains": [], "capaths": [], "ciphers": None, "alpn": None,
                          "ecdh_curve": None, "other": [], "generation": 0})
    if desc["sni_callback"] is not None:
        desc["candidates"] = [
            (c, n["chains"][-1], n["generation"] == _generation)
            for c, n in ((c, c.__dict__["_ferrocorn_notes"]) for c in list(_seen))
            if c is not ctx and n["chains"]
        ]
    return desc


class SNIObject:
    """What an ``sni_callback`` gets as its first argument under ferrocorn: a stand-in for
    the ``ssl.SSLObject`` of the handshake, whose ``context`` the callback may set."""

    server_side = True
    server_hostname = None

    def __init__(self, context):
        self._context = context

    @property
    def context(self):
        return self._context

    @context.setter
    def context(self, ctx):
        import ssl
        if not isinstance(ctx, ssl.SSLContext):
            raise TypeError("The value must be a SSLContext")
        self._context = ctx


def choose(callback, ctx, candidates, server_name):
    """One handshake's call of ``sni_callback``: ``None`` for the context's own
    certificate, an index into ``candidates``, or -1 for an alert the callback
    returned."""
    obj = SNIObject(ctx)
    result = callback(obj, server_name, ctx)
    if result is not None:
        if not isinstance(result, int):
            raise TypeError("servername callback must return None or an integer")
        return -1
    chosen = obj.context
    if chosen is ctx:
        return None
    for i, c in enumerate(candidates):
        if c is chosen:
            return i
    raise ValueError("sni_callback chose a context whose certificate ferrocorn did not read "
                     "(loaded by load_cert_chain while the config file or the hook ran, and "
                     "readable when they last ran)")
