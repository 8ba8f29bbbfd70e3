//! The partition assignor interface of the classic group protocol, and the types carried
//! in JoinGroup / SyncGroup (ConsumerProtocol subscriptions and assignments).
//!
//! The group leader runs the assignor chosen by the coordinator (the first, in the
//! members' preference order, that every member supports) over every member's
//! subscription and sends the result in SyncGroup. Built-in assignors: range,
//! roundrobin, sticky and cooperative-sticky, named as the Java client names them so a
//! group can mix Java and ferrokafka members.

use std::collections::BTreeMap;
use std::fmt::Debug;

use bytes::Bytes;

use crate::consumer::TopicPartition;
use crate::error::Result;

/// How members give up partitions in a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before joining (the classic way).
    Eager,
    /// Members keep their partitions through the rebalance and revoke only those that
    /// move (KIP-429); a moved partition is assigned to its new owner in a follow-up
    /// rebalance.
    Cooperative,
}

/// A member's subscription as carried in JoinGroup (ConsumerProtocol Subscription v0–v3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Assignor-specific data (`None` is encoded as a null byte array).
    pub user_data: Option<Bytes>,
    /// Partitions the member owns now (v1+; empty before v1).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation in which the member got `owned_partitions` (v2+; -1 when unknown).
    pub generation_id: i32,
    /// The member's rack (v3+; `client.rack`).
    pub rack_id: Option<String>,
}

/// A member's assignment as carried in SyncGroup (ConsumerProtocol Assignment).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// Assigned partitions.
    pub partitions: Vec<TopicPartition>,
    /// Assignor-specific data.
    pub user_data: Option<Bytes>,
}

/// One member of the group as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id` (static membership), if any.
    pub group_instance_id: Option<String>,
    /// What it subscribed to.
    pub subscription: Subscription,
}

/// A partition assignor (Java's `ConsumerPartitionAssignor`).
pub trait PartitionAssignor: Send + Sync + Debug + 'static {
    /// The protocol name sent in JoinGroup ("range", "roundrobin", "sticky",
    /// "cooperative-sticky" for the built-in ones).
    fn name(&self) -> &str;

    /// The rebalance protocols this assignor supports. Default: eager only.
    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        vec![RebalanceProtocol::Eager]
    }

    /// User data to send with this member's subscription. `owned` and `generation` are the
    /// member's current assignment and the generation it came from (-1 when none).
    /// Default: none.
    fn subscription_user_data(&self, _topics: &[String], _owned: &[TopicPartition], _generation: i32) -> Option<Bytes> {
        None
    }

    /// Computes every member's assignment. `partitions_per_topic` has the partition count
    /// of every topic some member subscribed to that exists in the cluster. Every member id
    /// of `members` must appear in the result (with an empty assignment when it gets
    /// nothing).
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[GroupMember],
    ) -> Result<BTreeMap<String, Assignment>>;

    /// Called on every member when it receives its assignment for `generation`.
    fn on_assignment(&self, _assignment: &Assignment, _generation: i32) {}
}
