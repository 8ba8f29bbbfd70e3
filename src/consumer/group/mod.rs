//! Consumer groups: the classic protocol's coordinator, assignors and wire encodings.

pub mod assignor;
mod common;
pub mod consumer_protocol;
pub mod range;
pub mod round_robin;
pub mod sticky;

#[cfg(test)]
mod tests;
