//! The range assignor (Java's `RangeAssignor`, protocol name "range").

use std::collections::BTreeMap;

use crate::consumer::TopicPartition;
use crate::error::Result;

use super::assignor::{Assignment, GroupMember, PartitionAssignor};
use super::common::{check_members, into_result, java_sorted, subscribed_topics};

/// Assigns each topic separately: the members subscribed to the topic, in Java's order
/// (static members by `group.instance.id` first, then dynamic members by member id), get
/// consecutive ranges of `n / m` partitions, the first `n % m` of them one more.
///
/// Like Java's without partition racks (our [`PartitionAssignor::assign`] gets no
/// partition racks, so the rack-aware variant of KIP-881 is not done). Eager only.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl RangeAssignor {
    /// The protocol name, "range".
    pub const NAME: &'static str = "range";
}

impl PartitionAssignor for RangeAssignor {
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
        let mut parts: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        for (topic, n) in subscribed_topics(partitions_per_topic, members) {
            let consumers: Vec<&&GroupMember> =
                sorted.iter().filter(|m| m.subscription.topics.iter().any(|t| t == topic)).collect();
            let m = consumers.len() as i32;
            if m == 0 {
                continue;
            }
            let (per, extra) = (n / m, n % m);
            for (i, c) in consumers.iter().enumerate() {
                let i = i as i32;
                let start = per * i + i.min(extra);
                let len = per + i32::from(i < extra);
                let list = parts.entry(c.member_id.clone()).or_default();
                list.extend((start..start + len).map(|p| TopicPartition::new(topic, p)));
            }
        }
        Ok(into_result(members, parts))
    }
}
