//! Trust decisions for forwarded headers (being written).
