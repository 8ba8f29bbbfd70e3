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
mod wire;

pub use config::ClientConfig;
pub use error::{BrokerError, Error, ErrorCode, Result};
