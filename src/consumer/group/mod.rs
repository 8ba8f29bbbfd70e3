//! Consumer groups: the classic protocol's coordinator, assignors and wire encodings.

pub mod assignor;
pub mod consumer_protocol;
