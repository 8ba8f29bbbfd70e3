//! The admin client: the Java `Admin`'s operations with its semantics, and the
//! operations Kafka's command-line tools do that users script (group lag, offset-reset
//! plans, cluster health).
//!
//! ```no_run
//! # async fn demo() -> ferrokafka::Result<()> {
//! use ferrokafka::admin::{AdminClient, AdminConfig, NewTopic};
//!
//! let admin = AdminClient::new(AdminConfig::new("127.0.0.1:9092")).await?;
//! admin.create_topic(NewTopic::new("orders", 6, 1).config("retention.ms", "3600000")).await?;
//! println!("{:?}", admin.list_topics(false).await?);
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! Each file adds an `impl AdminClient` block for one family of operations; all of them
//! send through `route.rs` (to any broker, the controller, a coordinator, each partition's
//! leader, or every broker), which runs every attempt inside the one retry loop
//! (`ClientCore::with_retries`, whose `on_error` decides and invalidates metadata).
//!
//! | file | operations |
//! |---|---|
//! | `topics.rs` | create / delete / list / describe topics, create_partitions |
//! | `records.rs` | list_offsets, delete_records |
//! | `replicas.rs` | elect_leaders, partition reassignments, log dirs |
//! | `health.rs` | cluster health (under-replicated, under-min-ISR, offline, leaderless) |
//! | `configs.rs` | describe_configs, incremental_alter_configs |
//! | `cluster.rs` | describe_cluster, API versions, features, metadata quorum, unregister_broker, raft voters, config-resource listing (client metrics) |
//! | `groups.rs` | list / describe / delete groups, group offsets, remove members |
//! | `lag.rs` | consumer-group lag (`kafka-consumer-groups.sh --describe`) |
//! | `reset.rs` | offset-reset plans (`kafka-consumer-groups.sh --reset-offsets`) |
//! | `acls.rs` | ACLs |
//! | `credentials.rs` | SCRAM credentials, client quotas, delegation tokens |
//! | `transactions.rs` | transactions, producers, hanging-transaction abort, fencing |

use std::sync::Arc;
use std::time::Duration;

use crate::client::ClientCore;
use crate::config::ClientConfig;
use crate::error::{Error, Result};

mod acls;
mod cluster;
mod configs;
mod credentials;
mod groups;
mod health;
mod lag;
mod records;
mod replicas;
mod reset;
mod route;
#[cfg(test)]
mod route_tests;
mod topics;
mod transactions;

pub use acls::*;
pub use cluster::*;
pub use configs::*;
pub use credentials::*;
pub use groups::*;
pub use health::*;
pub use lag::*;
pub use records::*;
pub use replicas::*;
pub use reset::*;
pub use topics::*;
pub use transactions::*;
pub use crate::metadata::{BrokerInfo, PartitionInfo, TopicDescription, TopicId};

/// Settings of an [`AdminClient`].
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Connection settings shared with the other roles.
    pub client: ClientConfig,
    /// `default.api.timeout.ms`: the time one admin call may take, retries included.
    /// Default 60 s.
    pub default_api_timeout: Duration,
}

impl AdminConfig {
    /// A config for the given bootstrap servers (comma-separated `host:port`), everything
    /// else at its default.
    pub fn new(bootstrap_servers: impl AsRef<str>) -> AdminConfig {
        AdminConfig::from_client(ClientConfig::new(bootstrap_servers))
    }

    /// An admin config around existing connection settings.
    pub fn from_client(client: ClientConfig) -> AdminConfig {
        AdminConfig { client, default_api_timeout: Duration::from_secs(60) }
    }

    /// Sets [`AdminConfig::default_api_timeout`].
    pub fn default_api_timeout(mut self, t: Duration) -> Self {
        self.default_api_timeout = t;
        self
    }

    fn validate(&self) -> Result<()> {
        self.client.validate()?;
        if self.default_api_timeout.is_zero() || self.default_api_timeout.as_millis() > i32::MAX as u128 {
            return Err(Error::Config("default_api_timeout must be between 1 ms and i32::MAX ms".into()));
        }
        Ok(())
    }
}

/// What [`AdminClient::metrics`] returns.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AdminMetrics {
    /// Connections and requests.
    pub network: crate::metrics::NetworkStats,
}

/// An admin client. Cheap to clone; background tasks end when the last clone is dropped.
#[derive(Clone)]
pub struct AdminClient {
    pub(crate) core: Arc<ClientCore>,
    /// `default_api_timeout`.
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient").field("bootstrap", &self.core.config.bootstrap_servers).finish()
    }
}

impl AdminClient {
    /// Validates the config and connects: fails with a clear error when the config is
    /// invalid or no bootstrap server answers within the connect and request timeouts.
    pub async fn new(config: AdminConfig) -> Result<AdminClient> {
        config.validate()?;
        let core = ClientCore::connect(config.client).await?;
        Ok(AdminClient { core, timeout: config.default_api_timeout })
    }

    /// A snapshot of this client's metrics (the same values it records through the
    /// `metrics` facade; see [`crate::metrics`]).
    pub fn metrics(&self) -> AdminMetrics {
        AdminMetrics { network: self.core.pool.metrics().snapshot() }
    }
}
