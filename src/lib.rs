#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod admin;
mod client;
mod config;
pub mod consumer;
pub mod error;
mod error_code;
mod metadata;
mod network;
mod protocol;
pub mod producer;
pub mod txn;
pub(crate) mod record;
pub mod security;
mod wire;

pub use config::{ClientConfig, Pem, SaslConfig, SecurityProtocol, TlsConfig};
pub use error::{BrokerError, Error, ErrorCode, Result};
