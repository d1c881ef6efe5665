# The access log through a logconfig_dict file handler (bench/compare.py's hello-logdict
# scenarios): gunicorn's default access format, one FileHandler, the error log as usual.
import os

logconfig_dict = {
    "root": {"level": "WARNING", "handlers": []},
    "loggers": {
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
    },
    "handlers": {
        "access": {
            "class": "logging.FileHandler",
            "filename": os.environ.get("BENCH_ACCESS_LOG", "/tmp/ferrocorn-bench-access.log"),
            "formatter": "plain",
        },
    },
    "formatters": {"plain": {"format": "%(message)s"}},
}
