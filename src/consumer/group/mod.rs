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
mod kip848;
pub mod range;
pub mod round_robin;
pub mod sticky;

#[cfg(test)]
mod scripted_tests;
#[cfg(test)]
mod tests;

use futures::future::BoxFuture;

use crate::consumer::{Consumer, TopicPartition};

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

/// Callbacks around changes of a subscribing consumer's assignment (Java's
/// `ConsumerRebalanceListener`).
///
/// They run inside [`Consumer::poll`] (or `recv` / the stream), on the application's task,
/// never concurrently with each other, and may call the consumer back — typically
/// [`Consumer::commit`] in `on_partitions_revoked` to commit what was processed. A poll
/// that runs a callback returns only after it completes. Calls that would wait for that
/// poll (`poll`, `recv`, `subscribe`, `subscribe_pattern`, `unsubscribe`, `close`) fail with
/// [`Error::InvalidArgument`](crate::error::Error::InvalidArgument) from inside a callback.
/// Every method has an empty default (`on_partitions_lost` defaults to
/// `on_partitions_revoked`, as in Java).
///
/// ```
/// use futures::future::BoxFuture;
/// use ferrokafka::consumer::{Consumer, ConsumerRebalanceListener, TopicPartition};
///
/// struct CommitOnRevoke;
/// impl ConsumerRebalanceListener for CommitOnRevoke {
///     fn on_partitions_revoked<'a>(&'a self, consumer: &'a Consumer, _revoked: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
///         Box::pin(async move {
///             if let Err(e) = consumer.commit(None).await {
///                 eprintln!("commit on revoke failed: {e}");
///             }
///         })
///     }
/// }
/// ```
pub trait ConsumerRebalanceListener: Send + Sync + 'static {
    /// Partitions this member stops owning in an orderly rebalance (eager: all of them
    /// before every rebalance; cooperative: only those that move). Called while they are
    /// still assigned, so their positions can still be committed.
    fn on_partitions_revoked<'a>(&'a self, _consumer: &'a Consumer, _partitions: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Partitions newly assigned to this member (eager: the whole assignment; cooperative:
    /// the added ones, possibly none). Called after they are assigned and before any of
    /// their records is returned.
    fn on_partitions_assigned<'a>(&'a self, _consumer: &'a Consumer, _partitions: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Partitions this member lost without an orderly revocation (its session expired, it
    /// was fenced, or it stopped polling for `max_poll_interval`): other members may own
    /// them already, so committing their offsets fails. Default: `on_partitions_revoked`.
    fn on_partitions_lost<'a>(&'a self, consumer: &'a Consumer, partitions: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        self.on_partitions_revoked(consumer, partitions)
    }
}

/// The listener used when none is set: does nothing.
pub(crate) struct NoopListener;
impl ConsumerRebalanceListener for NoopListener {}

/// The Java client's default `partition.assignment.strategy`: range first, then
/// cooperative-sticky (so a group upgrades to cooperative rebalancing once every member
/// lists cooperative-sticky alone).
pub(crate) fn default_assignors() -> Vec<std::sync::Arc<dyn assignor::PartitionAssignor>> {
    vec![std::sync::Arc::new(range::RangeAssignor), std::sync::Arc::new(sticky::CooperativeStickyAssignor)]
}
