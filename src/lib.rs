#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
// No unsafe code in the library; the unit-test binary's counting allocator (hostile_tests)
// is the one exception, allowed there alone.
#![cfg_attr(not(test), forbid(unsafe_code))]
#![cfg_attr(test, deny(unsafe_code))]

pub mod admin;
mod client;
mod config;
pub mod consumer;
pub mod error;
pub mod metrics;
mod error_code;
mod metadata;
mod network;
mod protocol;
pub mod producer;
pub mod txn;
pub(crate) mod record;
pub mod security;
mod wire;
#[cfg(test)]
#[allow(unsafe_code)] // a counting global allocator for the tests
mod hostile_tests;

pub use config::{ClientConfig, Pem, SaslConfig, SecurityProtocol, TlsConfig};
pub use error::{BrokerError, Error, ErrorCode, Result};
