//! The WSGI environ as plain Rust data (being written).
