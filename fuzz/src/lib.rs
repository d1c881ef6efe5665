//! Fuzz targets live in `tests/`: each is a bolero `check!` that runs as a test.
