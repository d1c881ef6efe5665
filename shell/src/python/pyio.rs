//! I/O errors as the application sees them: an `OSError` with the errno and its text, as
//! Python raises them, and the quick stop's `SystemExit(0)`.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::{PyOSError, PySystemExit};
use pyo3::prelude::*;

use crate::transport::{Stopping, is_stopping};

/// Whether the quick stop's `SystemExit` was raised in this process.
static STOP_RAISED: AtomicBool = AtomicBool::new(false);

/// The exception of a quick stop: `SystemExit(0)` the first time (gunicorn's
/// `handle_quit` ends in `sys.exit(0)`, raised wherever the application is), an
/// `OSError` after that (an application that caught the `SystemExit` and goes on writing
/// is refused, not interrupted twice).
pub fn stop_error() -> PyErr {
    if STOP_RAISED.swap(true, Ordering::SeqCst) {
        PyOSError::new_err(Stopping.to_string())
    } else {
        PySystemExit::new_err(0)
    }
}

/// Raises the quick stop's `SystemExit(0)` unless it was raised already (the sync
/// worker's Python-level INT/QUIT handler).
pub fn raise_stop_once() -> PyResult<()> {
    if STOP_RAISED.swap(true, Ordering::SeqCst) { Ok(()) } else { Err(PySystemExit::new_err(0)) }
}

/// A Python `OSError` for an I/O error (errno and its text, as Python raises them); the
/// quick stop's error is [`stop_error`].
pub fn io_to_py(e: &io::Error) -> PyErr {
    if is_stopping(e) {
        return stop_error();
    }
    match e.raw_os_error() {
        Some(n) => PyOSError::new_err((n, nix::errno::Errno::from_raw(n).desc())),
        None => PyOSError::new_err(e.to_string()),
    }
}
