//! The round-robin assignor (Java's `RoundRobinAssignor`, protocol name "roundrobin").

use std::collections::{BTreeMap, BTreeSet};

use crate::consumer::TopicPartition;
use crate::error::Result;

use super::assignor::{Assignment, GroupMember, PartitionAssignor};
use super::common::{check_members, into_result, java_sorted, subscribed_topics};

/// Lays out every partition of every subscribed topic in (topic, partition) order and
/// deals them to the members in Java's member order (static members by
/// `group.instance.id` first, then dynamic members by member id), round robin, skipping
/// members not subscribed to the partition's topic. With equal subscriptions the counts
/// differ by at most one. Eager only.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl RoundRobinAssignor {
    /// The protocol name, "roundrobin".
    pub const NAME: &'static str = "roundrobin";
}

impl PartitionAssignor for RoundRobinAssignor {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[GroupMember],
    ) -> Result<BTreeMap<String, Assignment>> {
        check_members(members)?;
        let sorted = java_sorted(members);
        let subs: Vec<BTreeSet<&str>> =
            sorted.iter().map(|m| m.subscription.topics.iter().map(String::as_str).collect()).collect();
        let mut parts: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        let mut next = 0usize; // the circular iterator's position
        for (topic, n) in subscribed_topics(partitions_per_topic, members) {
            // Some member subscribes to `topic` (subscribed_topics), so the scan ends.
            for p in 0..n {
                while !subs[next].contains(topic) {
                    next = (next + 1) % sorted.len();
                }
                parts.entry(sorted[next].member_id.clone()).or_default().push(TopicPartition::new(topic, p));
                next = (next + 1) % sorted.len();
            }
        }
        Ok(into_result(members, parts))
    }
}
