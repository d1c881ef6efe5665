"""`reload`: each worker publishes the source files of the modules it imported, for the
master's one watcher (shell/src/reload.rs). The list is written when the application has
loaded and again whenever the worker imports more, atomically (a rename), one path a line.
"""

import os
import re
import sys
import threading

_COMPILED = re.compile(r"\.py[co]$")


def module_files():
    """The source files of every imported module (compiled names mapped to `.py`)."""
    out = set()
    for module in tuple(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            out.add(_COMPILED.sub(".py", path))
    return out


def _write(path, names):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("\n".join(sorted(names)))
        f.write("\n")
    os.replace(tmp, path)


def publish(path, interval=1.0):
    """Writes the list to `path` now, then checks every `interval` seconds (in a daemon
    thread) whether the worker imported more, and writes it again if so."""
    state = {"count": len(sys.modules), "names": module_files()}
    _write(path, state["names"])

    def watch():
        stop = threading.Event()
        while not stop.wait(interval):
            if len(sys.modules) == state["count"]:
                continue
            state["count"] = len(sys.modules)
            names = module_files()
            if names != state["names"]:
                state["names"] = names
                try:
                    _write(path, names)
                except OSError:
                    pass

    threading.Thread(target=watch, name="ferrocorn-reload-publisher", daemon=True).start()
