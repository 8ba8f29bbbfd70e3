//! Offsets of partitions and record deletion: list_offsets, delete_records.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{DeleteRecordsRequest, ListOffsetsRequest};

use super::route::require_version;
use super::topics::topic_name;
use super::AdminClient;
use crate::consumer::{IsolationLevel, TopicPartition};
use crate::error::{Error, Result};
use crate::metadata::validate_topic_name;

/// Which offset of a partition [`AdminClient::list_offsets`] asks for (Java's `OffsetSpec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset (ListOffsets timestamp -2).
    Earliest,
    /// The log end offset: the high watermark, or the last stable offset under
    /// [`IsolationLevel::ReadCommitted`] (timestamp -1).
    Latest,
    /// The offset and timestamp of the record with the largest timestamp (timestamp -3,
    /// KIP-734; ListOffsets v7+).
    MaxTimestamp,
    /// The earliest offset whose timestamp is at or after this many milliseconds since the
    /// epoch; offset -1 when there is none. Must not be negative.
    ForTimestamp(i64),
    /// The first offset in the broker's local log (timestamp -4, KIP-405; ListOffsets v8+):
    /// the earliest offset unless tiered storage moved older segments off the broker.
    EarliestLocal,
    /// The highest offset copied to tiered storage (timestamp -5, KIP-1005; ListOffsets
    /// v9+); offset -1 for a topic without tiered storage.
    LatestTiered,
}

impl OffsetSpec {
    /// The ListOffsets timestamp of this spec.
    fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::ForTimestamp(t) => t,
            OffsetSpec::EarliestLocal => -4,
            OffsetSpec::LatestTiered => -5,
        }
    }

    /// The lowest ListOffsets version that serves this spec, and its name for errors.
    fn min_version(self) -> (i16, &'static str) {
        match self {
            OffsetSpec::MaxTimestamp => (7, "ListOffsets with OffsetSpec::MaxTimestamp"),
            OffsetSpec::EarliestLocal => (8, "ListOffsets with OffsetSpec::EarliestLocal"),
            OffsetSpec::LatestTiered => (9, "ListOffsets with OffsetSpec::LatestTiered"),
            _ => (1, "ListOffsets"),
        }
    }
}

/// Options of [`AdminClient::list_offsets`].
#[derive(Debug, Clone, Default)]
pub struct ListOffsetsOptions {
    /// Which records count: with [`IsolationLevel::ReadCommitted`], [`OffsetSpec::Latest`]
    /// is the last stable offset. Default [`IsolationLevel::ReadUncommitted`].
    pub isolation_level: IsolationLevel,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig::default_api_timeout).
    pub timeout: Option<Duration>,
}

/// One partition's answer to [`AdminClient::list_offsets`] (Java's `ListOffsetsResultInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOffsetsResultInfo {
    /// The offset; -1 when none matches (a timestamp after every record, no tiered data).
    pub offset: i64,
    /// The timestamp of the record at `offset` for [`OffsetSpec::ForTimestamp`] and
    /// [`OffsetSpec::MaxTimestamp`]; -1 otherwise.
    pub timestamp: i64,
    /// The leader epoch of the record at `offset`, when the broker knows it.
    pub leader_epoch: Option<i32>,
}

/// Options of [`AdminClient::delete_records`].
#[derive(Debug, Clone, Default)]
pub struct DeleteRecordsOptions {
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig::default_api_timeout).
    pub timeout: Option<Duration>,
}

/// Groups `(partition, value)` pairs by topic, in order, for a request's topic array.
fn by_topic<T: Copy>(items: &[(TopicPartition, T)]) -> Vec<(&str, Vec<(i32, T)>)> {
    let mut out: Vec<(&str, Vec<(i32, T)>)> = Vec::new();
    for (tp, v) in items {
        match out.iter_mut().find(|(t, _)| *t == tp.topic) {
            Some((_, ps)) => ps.push((tp.partition, *v)),
            None => out.push((tp.topic.as_str(), vec![(tp.partition, *v)])),
        }
    }
    out
}

/// Checks the partitions of a per-partition call: valid topic names, no negative index.
pub(crate) fn validate_partitions<'a>(tps: impl IntoIterator<Item = &'a TopicPartition>) -> Result<()> {
    for tp in tps {
        validate_topic_name(&tp.topic)?;
        if tp.partition < 0 {
            return Err(Error::InvalidArgument(format!("partition {tp}: the partition number is negative")));
        }
    }
    Ok(())
}

impl AdminClient {
    /// The offsets of partitions by [`OffsetSpec`], asked of each partition's leader (all
    /// leaders at once, retried when leadership moves). One result per partition: a
    /// partition whose leader's ListOffsets version lacks its spec has an
    /// [`Error::UnsupportedVersion`] naming the spec; an unknown topic or partition has
    /// `UNKNOWN_TOPIC_OR_PARTITION`. A negative [`OffsetSpec::ForTimestamp`] or partition
    /// number is refused before sending.
    ///
    /// ```no_run
    /// # async fn demo(admin: ferrokafka::admin::AdminClient) -> ferrokafka::Result<()> {
    /// use ferrokafka::admin::{ListOffsetsOptions, OffsetSpec};
    /// use ferrokafka::consumer::TopicPartition;
    ///
    /// let ends = admin
    ///     .list_offsets([(TopicPartition::new("orders", 0), OffsetSpec::Latest)], ListOffsetsOptions::default())
    ///     .await?;
    /// for (tp, r) in ends {
    ///     println!("{tp}: {:?}", r.map(|i| i.offset));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_offsets(
        &self,
        specs: impl IntoIterator<Item = (TopicPartition, OffsetSpec)>,
        options: ListOffsetsOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<ListOffsetsResultInfo>>> {
        let specs: BTreeMap<TopicPartition, OffsetSpec> = specs.into_iter().collect();
        validate_partitions(specs.keys())?;
        if let Some((tp, t)) = specs.iter().find_map(|(tp, s)| match s {
            OffsetSpec::ForTimestamp(t) if *t < 0 => Some((tp, *t)),
            _ => None,
        }) {
            return Err(Error::InvalidArgument(format!(
                "partition {tp}: OffsetSpec::ForTimestamp({t}) is negative (use the other specs for the special offsets)"
            )));
        }
        let timeout = self.call_timeout(options.timeout);
        let partitions: Vec<TopicPartition> = specs.keys().cloned().collect();
        let isolation = options.isolation_level;
        let specs = &specs;
        Ok(self
            .per_leader("ListOffsets", &partitions, timeout, |conn, tps| async move {
                let version = conn.version_for::<ListOffsetsRequest>()?;
                let mut results = Vec::new();
                let mut asked: Vec<(TopicPartition, i64)> = Vec::new();
                for tp in tps {
                    let spec = specs[&tp];
                    let (min, what) = spec.min_version();
                    match require_version::<ListOffsetsRequest>(&conn, version, min, what) {
                        Ok(()) => asked.push((tp, spec.timestamp())),
                        Err(e) => results.push((tp, Err(e))),
                    }
                }
                if asked.is_empty() {
                    return Ok(results);
                }
                let req = ListOffsetsRequest::default()
                    .with_replica_id((-1).into())
                    .with_isolation_level(if version >= 2 { isolation.wire() } else { 0 })
                    .with_timeout_ms(Self::timeout_ms(timeout))
                    .with_topics(
                        by_topic(&asked)
                            .into_iter()
                            .map(|(t, ps)| {
                                ListOffsetsTopic::default().with_name(topic_name(t)).with_partitions(
                                    ps.into_iter()
                                        .map(|(p, ts)| {
                                            ListOffsetsPartition::default()
                                                .with_partition_index(p)
                                                .with_current_leader_epoch(-1)
                                                .with_timestamp(ts)
                                        })
                                        .collect(),
                                )
                            })
                            .collect(),
                    );
                let resp = conn.send_at(&req, version).await?;
                for t in resp.topics {
                    let topic = t.name.0.to_string();
                    for p in t.partitions {
                        let tp = TopicPartition::new(topic.clone(), p.partition_index);
                        if !asked.iter().any(|(a, _)| *a == tp) {
                            continue;
                        }
                        let r = Error::check_code(p.error_code, "ListOffsets", None, Some(&topic), Some(p.partition_index))
                            .map(|()| ListOffsetsResultInfo {
                                offset: p.offset,
                                timestamp: p.timestamp,
                                leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                            });
                        results.push((tp, r));
                    }
                }
                Ok(results)
            })
            .await)
    }

    /// Deletes the records of partitions before an offset (Java's
    /// `RecordsToDelete.beforeOffset`; -1 means the high watermark, deleting everything),
    /// at each partition's leader. One result per partition: the partition's new low
    /// watermark (log start offset), or its error (`OFFSET_OUT_OF_RANGE` for an offset past
    /// the high watermark, `POLICY_VIOLATION` on a compacted topic, ...). An offset below -1
    /// or a negative partition is refused before sending.
    pub async fn delete_records(
        &self,
        before: impl IntoIterator<Item = (TopicPartition, i64)>,
        options: DeleteRecordsOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<i64>>> {
        let before: BTreeMap<TopicPartition, i64> = before.into_iter().collect();
        validate_partitions(before.keys())?;
        if let Some((tp, o)) = before.iter().find(|(_, o)| **o < -1) {
            return Err(Error::InvalidArgument(format!(
                "partition {tp}: cannot delete records before offset {o} (an offset, or -1 for the high watermark)"
            )));
        }
        let timeout = self.call_timeout(options.timeout);
        let partitions: Vec<TopicPartition> = before.keys().cloned().collect();
        let before = &before;
        Ok(self
            .per_leader("DeleteRecords", &partitions, timeout, |conn, tps| async move {
                let version = conn.version_for::<DeleteRecordsRequest>()?;
                let asked: Vec<(TopicPartition, i64)> = tps.iter().map(|tp| (tp.clone(), before[tp])).collect();
                let req = DeleteRecordsRequest::default().with_timeout_ms(Self::timeout_ms(timeout)).with_topics(
                    by_topic(&asked)
                        .into_iter()
                        .map(|(t, ps)| {
                            DeleteRecordsTopic::default().with_name(topic_name(t)).with_partitions(
                                ps.into_iter()
                                    .map(|(p, o)| DeleteRecordsPartition::default().with_partition_index(p).with_offset(o))
                                    .collect(),
                            )
                        })
                        .collect(),
                );
                let resp = conn.send_at(&req, version).await?;
                let mut results = Vec::new();
                for t in resp.topics {
                    let topic = t.name.0.to_string();
                    for p in t.partitions {
                        let tp = TopicPartition::new(topic.clone(), p.partition_index);
                        if !before.contains_key(&tp) {
                            continue;
                        }
                        let r = Error::check_code(p.error_code, "DeleteRecords", None, Some(&topic), Some(p.partition_index))
                            .map(|()| p.low_watermark);
                        results.push((tp, r));
                    }
                }
                Ok(results)
            })
            .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_specs_map_to_the_java_timestamps_and_versions() {
        let want = [
            (OffsetSpec::Earliest, -2, 1),
            (OffsetSpec::Latest, -1, 1),
            (OffsetSpec::MaxTimestamp, -3, 7),
            (OffsetSpec::ForTimestamp(1_700_000_000_000), 1_700_000_000_000, 1),
            (OffsetSpec::EarliestLocal, -4, 8),
            (OffsetSpec::LatestTiered, -5, 9),
        ];
        for (spec, ts, v) in want {
            assert_eq!((spec.timestamp(), spec.min_version().0), (ts, v), "{spec:?}");
        }
        assert!(OffsetSpec::LatestTiered.min_version().1.contains("LatestTiered"));
    }

    #[test]
    fn partitions_are_grouped_by_topic_in_order() {
        let items = vec![
            (TopicPartition::new("a", 1), 5i64),
            (TopicPartition::new("b", 0), 6),
            (TopicPartition::new("a", 0), 7),
        ];
        assert_eq!(by_topic(&items), vec![("a", vec![(1, 5), (0, 7)]), ("b", vec![(0, 6)])]);
        assert!(validate_partitions([&TopicPartition::new("a", -1)]).is_err());
    }
}
