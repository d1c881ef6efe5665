//! Response framing and head encoding (being written).
