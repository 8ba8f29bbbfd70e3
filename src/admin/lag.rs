//! Consumer-group lag, as `kafka-consumer-groups.sh --describe` prints it.
//!
//! ```no_run
//! # async fn demo(admin: ferrokafka::admin::AdminClient) -> ferrokafka::Result<()> {
//! use ferrokafka::admin::ConsumerGroupLagOptions;
//!
//! let lag = admin.consumer_group_lag("orders-app", ConsumerGroupLagOptions::default()).await?;
//! for p in &lag.partitions {
//!     println!("{} {} {:?} {:?} {:?} {}", p.topic, p.partition, p.current_offset, p.log_end_offset, p.lag,
//!              p.consumer_id.as_deref().unwrap_or("-"));
//! }
//! println!("total lag {}", lag.total_lag);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::{AdminClient, ConsumerGroupDescription, DescribeGroupsOptions, GroupState, GroupType, ListConsumerGroupOffsetsOptions, ListConsumerGroupOffsetsSpec};
use crate::consumer::offsets::{list_offsets, LATEST};
use crate::consumer::{IsolationLevel, TopicPartition};
use crate::error::{Error, Result};
use crate::metadata::BrokerInfo;

/// Options of [`AdminClient::consumer_group_lag`].
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroupLagOptions {
    /// How the log end is read: `ReadUncommitted` (the default, what the Java tool does)
    /// uses the high watermark; `ReadCommitted` uses the last stable offset, so records of
    /// open transactions do not count as lag.
    pub isolation_level: IsolationLevel,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// One row of `kafka-consumer-groups.sh --describe`: a partition the group owns or has an
/// offset for. `None` is the tool's "-".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset (`CURRENT-OFFSET`); `None` when nothing is committed.
    pub current_offset: Option<i64>,
    /// The partition's log end (`LOG-END-OFFSET`): the high watermark, or the last stable
    /// offset under read_committed.
    pub log_end_offset: Option<i64>,
    /// `LOG-END-OFFSET - CURRENT-OFFSET`; `None` without a committed offset.
    pub lag: Option<i64>,
    /// The member that owns the partition (`CONSUMER-ID`); `None` when no active member does.
    pub consumer_id: Option<String>,
    /// That member's host (`HOST`).
    pub host: Option<String>,
    /// That member's client id (`CLIENT-ID`).
    pub client_id: Option<String>,
}

/// The lag of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupLag {
    /// The group id.
    pub group_id: String,
    /// The group's state (`Empty` when it has no active member: every row then has no
    /// consumer).
    pub state: GroupState,
    /// Classic or Consumer (KIP-848).
    pub group_type: GroupType,
    /// The group's coordinator.
    pub coordinator: BrokerInfo,
    /// The rows, as the Java tool orders them: the partitions of each member with an
    /// assignment (members with the most partitions first, each member's partitions by
    /// topic and partition), then the partitions with an offset but no owner.
    pub partitions: Vec<PartitionLag>,
    /// The lag per topic: the sum of the rows' lags that are known.
    pub topic_lag: BTreeMap<String, i64>,
    /// The group's lag: the sum of all rows' lags that are known.
    pub total_lag: i64,
}

impl AdminClient {
    /// What `kafka-consumer-groups.sh --describe --group <group>` prints, for a classic or
    /// KIP-848 group with or without active members: per partition the committed offset,
    /// the log end, the lag and the owning member; plus totals per topic and for the group.
    /// A group that does not exist is GROUP_ID_NOT_FOUND (where the broker's describe answers
    /// `Dead`, that is mapped to the same error).
    pub async fn consumer_group_lag(&self, group: &str, options: ConsumerGroupLagOptions) -> Result<ConsumerGroupLag> {
        if group.is_empty() {
            return Err(Error::InvalidArgument("a group id must not be empty".into()));
        }
        let timeout = self.call_timeout(options.timeout);
        let deadline = Instant::now() + timeout;
        let left = || Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
        let (described, committed) = futures::future::join(
            self.describe_consumer_groups([group], DescribeGroupsOptions { include_authorized_operations: false, timeout: left() }),
            self.list_consumer_group_offsets(
                [(group.to_owned(), ListConsumerGroupOffsetsSpec::default())],
                ListConsumerGroupOffsetsOptions { require_stable: false, timeout: left() },
            ),
        )
        .await;
        let d: ConsumerGroupDescription = one(described?)?;
        if d.state == GroupState::Dead {
            return Err(Error::broker(
                crate::error::ErrorCode::GroupIdNotFound,
                "DescribeGroups",
                Some(format!("group {group} does not exist")),
                None,
                None,
            ));
        }
        let committed: BTreeMap<TopicPartition, i64> =
            one(committed?)?.into_iter().filter_map(|(tp, o)| o.map(|o| (tp, o.offset))).collect();
        let rows = rows(&d, &committed);
        let wanted: Vec<TopicPartition> = rows.iter().map(|(tp, _)| tp.clone()).collect();
        let ends = self.log_offsets(&wanted, LATEST, options.isolation_level, left().unwrap()).await?;
        let partitions: Vec<PartitionLag> = rows
            .into_iter()
            .map(|(tp, owner)| {
                let current_offset = committed.get(&tp).copied();
                let log_end_offset = ends.get(&tp).copied().filter(|o| *o >= 0);
                PartitionLag {
                    lag: match (current_offset, log_end_offset) {
                        (Some(c), Some(e)) if c != -1 => Some(e - c),
                        _ => None,
                    },
                    current_offset,
                    log_end_offset,
                    consumer_id: owner.map(|m| m.0.to_owned()),
                    host: owner.map(|m| m.1.to_owned()),
                    client_id: owner.map(|m| m.2.to_owned()),
                    topic: tp.topic,
                    partition: tp.partition,
                }
            })
            .collect();
        let mut topic_lag: BTreeMap<String, i64> = BTreeMap::new();
        for p in &partitions {
            let t = topic_lag.entry(p.topic.clone()).or_insert(0);
            *t = t.saturating_add(p.lag.unwrap_or(0));
        }
        let total_lag = topic_lag.values().fold(0i64, |a, b| a.saturating_add(*b));
        Ok(ConsumerGroupLag {
            group_id: d.group_id,
            state: d.state,
            group_type: d.group_type,
            coordinator: d.coordinator,
            partitions,
            topic_lag,
            total_lag,
        })
    }
}

impl AdminClient {
    /// ListOffsets at `timestamp` (`LATEST`, `EARLIEST` or a time) for each partition, at
    /// its leader; a partition the cluster does not have (a deleted topic the group still
    /// has an offset for) is left out, as the Java tool's "unknown" log offset.
    pub(crate) async fn log_offsets(
        &self,
        tps: &[TopicPartition],
        timestamp: i64,
        isolation: IsolationLevel,
        timeout: Duration,
    ) -> Result<HashMap<TopicPartition, i64>> {
        if tps.is_empty() {
            return Ok(HashMap::new());
        }
        let mut topics: Vec<String> = tps.iter().map(|tp| tp.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        let cluster = self.core.with_retries("Metadata", timeout, || self.core.metadata.refresh_topics(&topics)).await?;
        let wanted: Vec<(TopicPartition, i64)> = tps
            .iter()
            .filter(|tp| cluster.topics.get(&tp.topic).is_some_and(|t| t.partitions.iter().any(|p| p.partition == tp.partition)))
            .map(|tp| (tp.clone(), timestamp))
            .collect();
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(list_offsets(&self.core, isolation, &wanted, timeout).await?.into_iter().map(|(tp, o)| (tp, o.offset)).collect())
    }
}

/// The one result of a call about one group.
pub(crate) fn one<T>(mut r: Vec<super::GroupResult<T>>) -> Result<T> {
    r.pop().map(|g| g.result).unwrap_or_else(|| Err(Error::InvalidArgument("no group asked for".into())))
}

/// The member fields of a row: (consumer id, host, client id).
type Owner<'a> = (&'a str, &'a str, &'a str);

/// The rows of the Java tool's describe, in its order: members with an assignment, most
/// partitions first (a stable sort: ties keep the coordinator's order); then the
/// partitions with a committed offset that no member owns.
fn rows<'a>(d: &'a ConsumerGroupDescription, committed: &BTreeMap<TopicPartition, i64>) -> Vec<(TopicPartition, Option<Owner<'a>>)> {
    let mut members: Vec<_> = d.members.iter().filter(|m| !m.assignment.is_empty()).collect();
    members.sort_by_key(|m| std::cmp::Reverse(m.assignment.len()));
    let mut out = Vec::new();
    let mut owned = BTreeSet::new();
    for m in members {
        for tp in &m.assignment {
            if owned.insert(tp.clone()) {
                out.push((tp.clone(), Some((m.consumer_id.as_str(), m.host.as_str(), m.client_id.as_str()))));
            }
        }
    }
    for tp in committed.keys() {
        if !owned.contains(tp) {
            out.push((tp.clone(), None));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::MemberDescription;

    fn member(id: &str, tps: &[(&str, i32)]) -> MemberDescription {
        MemberDescription {
            consumer_id: id.into(),
            group_instance_id: None,
            client_id: format!("c-{id}"),
            host: "/h".into(),
            assignment: tps.iter().map(|(t, p)| TopicPartition::new(*t, *p)).collect(),
            target_assignment: None,
            member_epoch: None,
        }
    }

    #[test]
    fn rows_put_bigger_members_first_then_unowned_committed_partitions() {
        let d = ConsumerGroupDescription {
            group_id: "g".into(),
            is_simple_consumer_group: false,
            members: vec![member("a", &[("t", 0)]), member("b", &[("t", 1), ("t", 2)]), member("idle", &[])],
            partition_assignor: "range".into(),
            group_type: GroupType::Classic,
            state: GroupState::Stable,
            coordinator: BrokerInfo { id: 1, host: "h".into(), port: 1, rack: None },
            authorized_operations: None,
            group_epoch: None,
            target_assignment_epoch: None,
        };
        let committed = BTreeMap::from([(TopicPartition::new("t", 1), 4), (TopicPartition::new("u", 0), 9)]);
        let r = rows(&d, &committed);
        let got: Vec<(String, i32, Option<&str>)> = r.iter().map(|(tp, o)| (tp.topic.clone(), tp.partition, o.map(|o| o.0))).collect();
        assert_eq!(
            got,
            [("t".into(), 1, Some("b")), ("t".into(), 2, Some("b")), ("t".into(), 0, Some("a")), ("u".into(), 0, None)]
        );
    }
}
