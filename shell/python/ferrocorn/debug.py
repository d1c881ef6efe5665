"""`spew`: every line of Python the server runs, printed as `MODULE:LINE: source`.

The trace function is installed in the master before it forks (the workers inherit it on
their main thread), on every thread started with `threading`, and on each serving thread
of a gthread worker as it first runs Python (`trace_this_thread`).
"""

import inspect
import linecache
import sys
import threading


def _describe(frame):
    """The module name and the source line of the frame's current line."""
    lineno = frame.f_lineno
    g = frame.f_globals
    if "__file__" in g:
        path = g["__file__"] or ""
        if path.endswith((".pyc", ".pyo")):
            path = path[:-1]
        return g.get("__name__", "[unknown]"), lineno, linecache.getline(path, lineno)
    try:
        lines, first = inspect.getsourcelines(frame)
        text = lines[lineno - first]
    except (OSError, TypeError, IndexError):
        text = "Unknown code named [%s].  VM instruction #%d" % (frame.f_code.co_name, frame.f_lasti)
    return "[unknown]", lineno, text


def _trace(frame, event, arg):
    if event == "line":
        name, lineno, text = _describe(frame)
        print("%s:%s: %s" % (name, lineno, text.rstrip()))
    return _trace


def spew():
    """Traces the calling thread and every thread started with `threading` from now on."""
    sys.settrace(_trace)
    threading.settrace(_trace)


def trace_this_thread():
    """Traces the calling thread (a thread the server made, not `threading`)."""
    sys.settrace(_trace)
