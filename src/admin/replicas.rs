//! Replicas: leader elections, partition reassignments, log directories.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::alter_replica_log_dirs_request::{AlterReplicaLogDir, AlterReplicaLogDirTopic};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterReplicaLogDirsRequest, BrokerId, DescribeLogDirsRequest,
    DescribeLogDirsResponse, ElectLeadersRequest, ListPartitionReassignmentsRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::records::validate_partitions;
use super::route::Target;
use super::topics::topic_name;
use super::AdminClient;
use crate::consumer::TopicPartition;
use crate::error::{Error, ErrorCode, Result};

/// Which leader [`AdminClient::elect_leaders`] elects (Java's `ElectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// The preferred replica (the first of the replica list), if it is in the ISR.
    Preferred,
    /// Any live replica, also one outside the ISR, when the partition has no leader
    /// (may lose committed records; ElectLeaders v1+).
    Unclean,
}

/// Options of the calls of this module that have only a timeout.
#[derive(Debug, Clone, Default)]
pub struct ReplicaOptions {
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig::default_api_timeout).
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::alter_partition_reassignments`].
#[derive(Debug, Clone)]
pub struct AlterPartitionReassignmentsOptions {
    /// Whether a reassignment may change a partition's replication factor (KIP-860).
    /// `false` needs AlterPartitionReassignments v1 (Kafka 4.0+); an older broker gives
    /// [`Error::UnsupportedVersion`]. Default `true`, as Java.
    pub allow_replication_factor_change: bool,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig::default_api_timeout).
    pub timeout: Option<Duration>,
}

impl Default for AlterPartitionReassignmentsOptions {
    fn default() -> Self {
        AlterPartitionReassignmentsOptions { allow_replication_factor_change: true, timeout: None }
    }
}

/// A reassignment in progress ([`AdminClient::list_partition_reassignments`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReassignment {
    /// The partition's current replica set (old and new replicas while moving).
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding_replicas: Vec<i32>,
    /// Replicas being removed.
    pub removing_replicas: Vec<i32>,
}

/// One replica's data in a log directory ([`AdminClient::describe_log_dirs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaInfo {
    /// The replica's size on disk, in bytes.
    pub size: i64,
    /// How far the replica is behind: for a current replica, the high watermark minus its
    /// log end offset; for a future replica, the current replica's log end minus its own.
    pub offset_lag: i64,
    /// Whether this is a future replica (being moved into this directory by
    /// [`AdminClient::alter_replica_log_dirs`]).
    pub is_future: bool,
}

/// One log directory of a broker ([`AdminClient::describe_log_dirs`], Java's
/// `LogDirDescription`).
#[derive(Debug, Clone)]
pub struct LogDirDescription {
    /// `None` when the directory is healthy; `KAFKA_STORAGE_ERROR` when it is offline.
    pub error: Option<Error>,
    /// The replicas in the directory.
    pub replicas: BTreeMap<TopicPartition, ReplicaInfo>,
    /// The directory's volume size in bytes (DescribeLogDirs v4+; `None` before).
    pub total_bytes: Option<i64>,
    /// The bytes still free on the volume (v4+; `None` before).
    pub usable_bytes: Option<i64>,
}

/// A replica: a partition on one broker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartitionReplica {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The broker holding the replica.
    pub broker_id: i32,
}

impl TopicPartitionReplica {
    /// Partition `partition` of `topic` on broker `broker_id`.
    pub fn new(topic: impl Into<String>, partition: i32, broker_id: i32) -> TopicPartitionReplica {
        TopicPartitionReplica { topic: topic.into(), partition, broker_id }
    }
}

/// Where a replica lives ([`AdminClient::describe_replica_log_dirs`], Java's
/// `ReplicaLogDirInfo`). All `None`/-1 when the broker has no such replica.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaLogDirInfo {
    /// The directory of the current replica.
    pub current_replica_log_dir: Option<String>,
    /// The current replica's lag behind the high watermark; -1 when unknown.
    pub current_replica_offset_lag: i64,
    /// The directory a future replica is being moved into, if any.
    pub future_replica_log_dir: Option<String>,
    /// The future replica's lag behind the current one; -1 when unknown.
    pub future_replica_offset_lag: i64,
}

/// Partitions grouped by topic, partitions sorted.
fn group_by_topic<'a>(tps: impl IntoIterator<Item = &'a TopicPartition>) -> BTreeMap<&'a str, Vec<i32>> {
    let mut m: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        m.entry(tp.topic.as_str()).or_default().push(tp.partition);
    }
    for ps in m.values_mut() {
        ps.sort_unstable();
        ps.dedup();
    }
    m
}

/// The per-partition results of an answer, and for every asked partition the answer left
/// out, an error saying so.
fn fill_missing<T>(
    mut got: BTreeMap<TopicPartition, Result<T>>,
    asked: &[TopicPartition],
    api: &'static str,
) -> BTreeMap<TopicPartition, Result<T>> {
    for tp in asked {
        got.entry(tp.clone()).or_insert_with(|| {
            Err(Error::Protocol {
                broker: "controller".into(),
                detail: format!("{api} response has no result for {tp}"),
            })
        });
    }
    got
}

impl AdminClient {
    /// Elects leaders (ElectLeaders, to the controller): `partitions` `None` means every
    /// partition that needs one. One result per partition the controller answered for
    /// (and each asked partition); as in Java, a partition whose leader is already the one
    /// asked for has `ELECTION_NOT_NEEDED` (see [`election_not_needed`]), and one whose
    /// preferred replica is not in the ISR `PREFERRED_LEADER_NOT_AVAILABLE`. A top-level
    /// error fails the call. [`ElectionType::Unclean`] needs ElectLeaders v1.
    pub async fn elect_leaders(
        &self,
        election_type: ElectionType,
        partitions: Option<&[TopicPartition]>,
        options: ReplicaOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<()>>> {
        if let Some(p) = partitions {
            validate_partitions(p)?;
        }
        let timeout = self.call_timeout(options.timeout);
        // Without the type field, v0 elects the preferred replica only.
        let need = match election_type {
            ElectionType::Unclean => (1, "ElectLeaders with ElectionType::Unclean"),
            ElectionType::Preferred => (0, "ElectLeaders"),
        };
        let resp = self
            .send_to_at_least::<ElectLeadersRequest, _, _>(
                "ElectLeaders",
                Target::Controller,
                timeout,
                need,
                |_| {
                    Ok(ElectLeadersRequest::default()
                        .with_election_type(if election_type == ElectionType::Unclean { 1 } else { 0 })
                        .with_timeout_ms(Self::timeout_ms(timeout))
                        .with_topic_partitions(partitions.map(|p| {
                            group_by_topic(p)
                                .into_iter()
                                .map(|(t, ps)| TopicPartitions::default().with_topic(topic_name(t)).with_partitions(ps))
                                .collect()
                        })))
                },
                |resp| Error::check_code(resp.error_code, "ElectLeaders", None, None, None),
            )
            .await?;
        let mut got = BTreeMap::new();
        for t in resp.replica_election_results {
            let topic = t.topic.0.to_string();
            for p in t.partition_result {
                let r = Error::check_code(
                    p.error_code,
                    "ElectLeaders",
                    p.error_message.as_deref(),
                    Some(&topic),
                    Some(p.partition_id),
                );
                got.insert(TopicPartition::new(topic.clone(), p.partition_id), r);
            }
        }
        self.core.metadata.invalidate();
        Ok(fill_missing(got, partitions.unwrap_or(&[]), "ElectLeaders"))
    }

    /// Starts (`Some(target replicas)`) or cancels (`None`) partition reassignments
    /// (AlterPartitionReassignments, to the controller). One result per partition, in the
    /// order of the partitions (`NO_REASSIGNMENT_IN_PROGRESS` for cancelling none,
    /// `INVALID_REPLICA_ASSIGNMENT`, `UNKNOWN_TOPIC_OR_PARTITION`, ... with the broker's
    /// message); a top-level error fails the call. An empty target list, an invalid name or
    /// a negative partition is refused before sending.
    pub async fn alter_partition_reassignments(
        &self,
        reassignments: impl IntoIterator<Item = (TopicPartition, Option<Vec<i32>>)>,
        options: AlterPartitionReassignmentsOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<()>>> {
        let wanted: BTreeMap<TopicPartition, Option<Vec<i32>>> = reassignments.into_iter().collect();
        validate_partitions(wanted.keys())?;
        if let Some((tp, _)) = wanted.iter().find(|(_, r)| matches!(r, Some(r) if r.is_empty())) {
            return Err(Error::InvalidArgument(format!(
                "partition {tp}: the target replica list is empty (use None to cancel a reassignment)"
            )));
        }
        let timeout = self.call_timeout(options.timeout);
        let mut topics: Vec<ReassignableTopic> = Vec::new();
        for (tp, r) in &wanted {
            let p = ReassignablePartition::default()
                .with_partition_index(tp.partition)
                .with_replicas(r.as_ref().map(|r| r.iter().map(|&b| BrokerId(b)).collect()));
            match topics.last_mut() {
                Some(t) if t.name.0.as_str() == tp.topic => t.partitions.push(p),
                _ => topics.push(ReassignableTopic::default().with_name(topic_name(&tp.topic)).with_partitions(vec![p])),
            }
        }
        // Before v1 the controller may always change the replication factor.
        let need = match options.allow_replication_factor_change {
            true => (0, "AlterPartitionReassignments"),
            false => (1, "AlterPartitionReassignments with allow_replication_factor_change false"),
        };
        let resp = self
            .send_to_at_least::<AlterPartitionReassignmentsRequest, _, _>(
                "AlterPartitionReassignments",
                Target::Controller,
                timeout,
                need,
                |_| {
                    Ok(AlterPartitionReassignmentsRequest::default()
                        .with_timeout_ms(Self::timeout_ms(timeout))
                        .with_allow_replication_factor_change(options.allow_replication_factor_change)
                        .with_topics(topics.clone()))
                },
                |resp| {
                    Error::check_code(
                        resp.error_code,
                        "AlterPartitionReassignments",
                        resp.error_message.as_deref(),
                        None,
                        None,
                    )
                },
            )
            .await?;
        let mut got = BTreeMap::new();
        for t in resp.responses {
            let topic = t.name.0.to_string();
            for p in t.partitions {
                let tp = TopicPartition::new(topic.clone(), p.partition_index);
                if wanted.contains_key(&tp) {
                    let r = Error::check_code(
                        p.error_code,
                        "AlterPartitionReassignments",
                        p.error_message.as_deref(),
                        Some(&topic),
                        Some(p.partition_index),
                    );
                    got.insert(tp, r);
                }
            }
        }
        self.core.metadata.invalidate();
        Ok(fill_missing(got, &wanted.into_keys().collect::<Vec<_>>(), "AlterPartitionReassignments"))
    }

    /// The reassignments in progress (ListPartitionReassignments, to the controller), of
    /// the given partitions or (`None`) of all; a partition with none is absent. All or
    /// nothing, as in Java: the answer has only a top-level error.
    pub async fn list_partition_reassignments(
        &self,
        partitions: Option<&[TopicPartition]>,
        options: ReplicaOptions,
    ) -> Result<BTreeMap<TopicPartition, PartitionReassignment>> {
        if let Some(p) = partitions {
            validate_partitions(p)?;
        }
        let timeout = self.call_timeout(options.timeout);
        let resp = self
            .send_to::<ListPartitionReassignmentsRequest, _, _>(
                "ListPartitionReassignments",
                Target::Controller,
                timeout,
                |_| {
                    Ok(ListPartitionReassignmentsRequest::default().with_timeout_ms(Self::timeout_ms(timeout)).with_topics(
                        partitions.map(|p| {
                            group_by_topic(p)
                                .into_iter()
                                .map(|(t, ps)| {
                                    ListPartitionReassignmentsTopics::default()
                                        .with_name(topic_name(t))
                                        .with_partition_indexes(ps)
                                })
                                .collect()
                        }),
                    ))
                },
                |resp| {
                    Error::check_code(resp.error_code, "ListPartitionReassignments", resp.error_message.as_deref(), None, None)
                },
            )
            .await?;
        let ids = |v: Vec<BrokerId>| v.into_iter().map(|b| b.0).collect::<Vec<i32>>();
        let mut out = BTreeMap::new();
        for t in resp.topics {
            let topic = t.name.0.to_string();
            for p in t.partitions {
                out.insert(
                    TopicPartition::new(topic.clone(), p.partition_index),
                    PartitionReassignment {
                        replicas: ids(p.replicas),
                        adding_replicas: ids(p.adding_replicas),
                        removing_replicas: ids(p.removing_replicas),
                    },
                );
            }
        }
        Ok(out)
    }

    /// The log directories of brokers and the replicas in each (DescribeLogDirs, to each
    /// broker): `brokers` `None` asks every live broker. One result per broker (an
    /// unreachable broker is its own error): directory path to [`LogDirDescription`].
    pub async fn describe_log_dirs(
        &self,
        brokers: Option<&[i32]>,
        options: ReplicaOptions,
    ) -> Result<BTreeMap<i32, Result<BTreeMap<String, LogDirDescription>>>> {
        let timeout = self.call_timeout(options.timeout);
        let build = |_| Ok(DescribeLogDirsRequest::default().with_topics(None));
        let check = |r: &DescribeLogDirsResponse| Error::check_code(r.error_code, "DescribeLogDirs", None, None, None);
        let answers: Vec<(i32, Result<DescribeLogDirsResponse>)> = match brokers {
            None => self.send_to_all::<DescribeLogDirsRequest, _, _>("DescribeLogDirs", timeout, build, check).await?,
            Some(ids) => {
                let ids: BTreeSet<i32> = ids.iter().copied().collect();
                futures::future::join_all(ids.into_iter().map(|id| async move {
                    (id, self.send_to::<DescribeLogDirsRequest, _, _>("DescribeLogDirs", Target::Broker(id), timeout, build, check).await)
                }))
                .await
            }
        };
        Ok(answers.into_iter().map(|(id, r)| (id, r.map(log_dirs))).collect())
    }

    /// Where replicas live (DescribeLogDirs for their partitions, to each broker): one
    /// result per replica, in the order asked for. A replica the broker does not hold has
    /// an all-`None` [`ReplicaLogDirInfo`] (as in Java); an unreachable broker fails its
    /// replicas.
    pub async fn describe_replica_log_dirs(
        &self,
        replicas: impl IntoIterator<Item = TopicPartitionReplica>,
        options: ReplicaOptions,
    ) -> Result<BTreeMap<TopicPartitionReplica, Result<ReplicaLogDirInfo>>> {
        let replicas: BTreeSet<TopicPartitionReplica> = replicas.into_iter().collect();
        for r in &replicas {
            validate_partitions([&TopicPartition::new(r.topic.clone(), r.partition)])?;
        }
        let timeout = self.call_timeout(options.timeout);
        let mut by_broker: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        for r in &replicas {
            by_broker.entry(r.broker_id).or_default().push(TopicPartition::new(r.topic.clone(), r.partition));
        }
        let answers = futures::future::join_all(by_broker.into_iter().map(|(id, tps)| async move {
            let r = self
                .send_to::<DescribeLogDirsRequest, _, _>(
                    "DescribeLogDirs",
                    Target::Broker(id),
                    timeout,
                    |_| {
                        Ok(DescribeLogDirsRequest::default().with_topics(Some(
                            group_by_topic(&tps)
                                .into_iter()
                                .map(|(t, ps)| DescribableLogDirTopic::default().with_topic(topic_name(t)).with_partitions(ps))
                                .collect(),
                        )))
                    },
                    |r| Error::check_code(r.error_code, "DescribeLogDirs", None, None, None),
                )
                .await;
            (id, tps, r.map(log_dirs))
        }))
        .await;
        let mut out = BTreeMap::new();
        for (id, tps, r) in answers {
            match r {
                Err(e) => {
                    for tp in tps {
                        out.insert(TopicPartitionReplica::new(tp.topic, tp.partition, id), Err(e.clone()));
                    }
                }
                Ok(dirs) => {
                    for tp in tps {
                        let mut info = ReplicaLogDirInfo {
                            current_replica_offset_lag: -1,
                            future_replica_offset_lag: -1,
                            ..Default::default()
                        };
                        // An offline directory reports no replicas (Java skips it too).
                        for (path, d) in dirs.iter().filter(|(_, d)| d.error.is_none()) {
                            if let Some(ri) = d.replicas.get(&tp) {
                                if ri.is_future {
                                    info.future_replica_log_dir = Some(path.clone());
                                    info.future_replica_offset_lag = ri.offset_lag;
                                } else {
                                    info.current_replica_log_dir = Some(path.clone());
                                    info.current_replica_offset_lag = ri.offset_lag;
                                }
                            }
                        }
                        out.insert(TopicPartitionReplica::new(tp.topic, tp.partition, id), Ok(info));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Moves replicas to other log directories of their brokers (AlterReplicaLogDirs, to
    /// each replica's broker; the path must be one of the broker's `log.dirs`). One result
    /// per replica: `LOG_DIR_NOT_FOUND` for a directory the broker does not have,
    /// `REPLICA_NOT_AVAILABLE` for a replica it does not hold, `KAFKA_STORAGE_ERROR` for an
    /// offline directory. An empty path is refused before sending.
    pub async fn alter_replica_log_dirs(
        &self,
        moves: impl IntoIterator<Item = (TopicPartitionReplica, String)>,
        options: ReplicaOptions,
    ) -> Result<BTreeMap<TopicPartitionReplica, Result<()>>> {
        let moves: BTreeMap<TopicPartitionReplica, String> = moves.into_iter().collect();
        for (r, path) in &moves {
            validate_partitions([&TopicPartition::new(r.topic.clone(), r.partition)])?;
            if path.is_empty() {
                return Err(Error::InvalidArgument(format!("replica {}-{} on broker {}: the log dir path is empty", r.topic, r.partition, r.broker_id)));
            }
        }
        let timeout = self.call_timeout(options.timeout);
        // Per broker: path -> topic -> partitions.
        let mut by_broker: BTreeMap<i32, BTreeMap<&str, BTreeMap<&str, Vec<i32>>>> = BTreeMap::new();
        for (r, path) in &moves {
            by_broker
                .entry(r.broker_id)
                .or_default()
                .entry(path.as_str())
                .or_default()
                .entry(r.topic.as_str())
                .or_default()
                .push(r.partition);
        }
        let answers = futures::future::join_all(by_broker.into_iter().map(|(id, dirs)| async move {
            let r = self
                .send_to::<AlterReplicaLogDirsRequest, _, _>(
                    "AlterReplicaLogDirs",
                    Target::Broker(id),
                    timeout,
                    |_| {
                        Ok(AlterReplicaLogDirsRequest::default().with_dirs(
                            dirs.iter()
                                .map(|(path, topics)| {
                                    AlterReplicaLogDir::default().with_path(StrBytes::from_string((*path).to_owned())).with_topics(
                                        topics
                                            .iter()
                                            .map(|(t, ps)| {
                                                AlterReplicaLogDirTopic::default().with_name(topic_name(t)).with_partitions(ps.clone())
                                            })
                                            .collect(),
                                    )
                                })
                                .collect(),
                        ))
                    },
                    |_| Ok(()),
                )
                .await;
            (id, r)
        }))
        .await;
        let mut out = BTreeMap::new();
        for (id, r) in answers {
            match r {
                Err(e) => {
                    for k in moves.keys().filter(|k| k.broker_id == id) {
                        out.insert(k.clone(), Err(e.clone()));
                    }
                }
                Ok(resp) => {
                    for t in resp.results {
                        let topic = t.topic_name.0.to_string();
                        for p in t.partitions {
                            let k = TopicPartitionReplica::new(topic.clone(), p.partition_index, id);
                            if moves.contains_key(&k) {
                                let r = Error::check_code(p.error_code, "AlterReplicaLogDirs", None, Some(&topic), Some(p.partition_index));
                                out.insert(k, r);
                            }
                        }
                    }
                }
            }
        }
        for k in moves.keys() {
            out.entry(k.clone()).or_insert_with(|| {
                Err(Error::Protocol {
                    broker: format!("broker {}", k.broker_id),
                    detail: format!("AlterReplicaLogDirs response has no result for {}-{}", k.topic, k.partition),
                })
            });
        }
        Ok(out)
    }
}

/// Whether a result of [`AdminClient::elect_leaders`] is `ELECTION_NOT_NEEDED`: the
/// partition already has the leader asked for (Java's `ElectionNotNeededException`, which
/// `kafka-leader-election.sh` reports as a valid replica already elected).
pub fn election_not_needed(r: &Result<()>) -> bool {
    matches!(r, Err(e) if e.code() == Some(ErrorCode::ElectionNotNeeded))
}

/// The directories of a DescribeLogDirs answer.
fn log_dirs(resp: DescribeLogDirsResponse) -> BTreeMap<String, LogDirDescription> {
    resp.results
        .into_iter()
        .map(|d| {
            let path = d.log_dir.to_string();
            let error = Error::check_code(d.error_code, "DescribeLogDirs", Some(&path), None, None).err();
            let mut replicas = BTreeMap::new();
            for t in d.topics {
                let topic = t.name.0.to_string();
                for p in t.partitions {
                    replicas.insert(
                        TopicPartition::new(topic.clone(), p.partition_index),
                        ReplicaInfo { size: p.partition_size, offset_lag: p.offset_lag, is_future: p.is_future_key },
                    );
                }
            }
            let known = |v: i64| (v >= 0).then_some(v);
            (path, LogDirDescription { error, replicas, total_bytes: known(d.total_bytes), usable_bytes: known(d.usable_bytes) })
        })
        .collect()
}
