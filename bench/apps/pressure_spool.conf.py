"""A config for bench/pressure.py: tmp_upload_dir set, which makes ferrocorn's gthread
worker spool request bodies of 64 KiB to 8 MiB in its poller before calling the
application (gunicorn never reads the setting)."""

import tempfile

tmp_upload_dir = tempfile.gettempdir()
