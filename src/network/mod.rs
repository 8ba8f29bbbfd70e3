//! Broker connections: one task per socket ([`connection`]) and the pool that makes and
//! remakes them ([`pool`]).

pub(crate) mod connection;
pub(crate) mod pool;

pub(crate) use connection::BrokerConnection;
pub(crate) use pool::{ConnKind, ConnectionPool};

#[cfg(test)]
pub(crate) mod testing;
