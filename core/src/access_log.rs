//! Access-log format: gunicorn's atoms parsed once, rendered from a plain record (being written).
