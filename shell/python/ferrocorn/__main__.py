"""The ``ferrocorn`` command: ``ferrocorn [OPTIONS] [APP_MODULE]``.

Both the console script and ``python -m ferrocorn`` land here. Everything after the
program name goes to the Rust entry point, which runs in this very interpreter, so
``sys.executable`` is the Python that started the command.
"""

import sys

from ferrocorn import _ferrocorn


def run():
    """Runs the command with ``sys.argv`` and returns its exit code."""
    return _ferrocorn.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(run())
