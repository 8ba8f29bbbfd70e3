//! Consumer groups: the rebalance listener, the group metadata handed to transactions, and
//! the coordinators of both group protocols.
//!
//! - `coordinator.rs`: the classic protocol (JoinGroup / SyncGroup / Heartbeat /
//!   LeaveGroup) — Java's `ConsumerCoordinator`. Heartbeats run on their own task; joins,
//!   assignments and the listener's callbacks run inside [`Consumer::poll`], as in the Java
//!   client, so a callback never runs while the application is processing records.
//! - `assignor.rs` and the assignors: what the classic group leader runs.
//!
//! [`Consumer::poll`]: crate::consumer::Consumer::poll

pub mod assignor;
mod common;
pub(crate) mod consumer_protocol;
pub(crate) mod coordinator;
mod listener;
pub mod range;
pub mod round_robin;
pub mod sticky;

#[cfg(test)]
mod scripted_tests;
#[cfg(test)]
mod tests;

pub use listener::ConsumerRebalanceListener;
pub(crate) use listener::NoopListener;

/// `group.protocol`: which group protocol a subscribing consumer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupProtocol {
    /// The classic protocol: JoinGroup/SyncGroup with client-side assignment by the group
    /// leader. Works with every broker. The default.
    #[default]
    Classic,
    /// The consumer protocol of KIP-848 (Kafka 4.0+): ConsumerGroupHeartbeat with
    /// server-side assignment. Against a broker without it, subscribing fails with a clear
    /// error.
    Consumer,
}

/// What a consumer's group membership looks like now, for
/// `send_offsets_to_transaction` (KIP-447): the transaction coordinator checks that the
/// member still belongs to the generation the offsets were consumed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// `group.id`.
    pub group_id: String,
    /// The generation (classic) or member epoch (KIP-848); -1 when not in a group.
    pub generation_id: i32,
    /// The member id the coordinator gave this member; "" when not in a group.
    pub member_id: String,
    /// `group.instance.id`, when static membership is on.
    pub group_instance_id: Option<String>,
}

/// The Java client's default `partition.assignment.strategy`: range first, then
/// cooperative-sticky (so a group upgrades to cooperative rebalancing once every member
/// lists cooperative-sticky alone).
pub(crate) fn default_assignors() -> Vec<std::sync::Arc<dyn assignor::PartitionAssignor>> {
    vec![std::sync::Arc::new(range::RangeAssignor), std::sync::Arc::new(sticky::CooperativeStickyAssignor)]
}
