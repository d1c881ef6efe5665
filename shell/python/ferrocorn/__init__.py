"""ferrocorn: gunicorn rebuilt in Rust.

The server itself lives in the ``ferrocorn._ferrocorn`` extension module; this package
only hands it the command line (see ``ferrocorn.__main__``).
"""

from ferrocorn._ferrocorn import __version__

__all__ = ["__version__"]
