//! Offsets outside the fetch path: ListOffsets (resets, `seek_to_*`, `offsets_for_times`),
//! and the group's committed offsets (FindCoordinator, OffsetCommit, OffsetFetch) for a group
//! id without membership (assign mode: generation -1, member id "").

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::config::IsolationLevel;
use super::{OffsetAndMetadata, TopicPartition};
use crate::client::ClientCore;
use crate::error::{Error, ErrorCode, Result};
use crate::network::ConnKind;

/// ListOffsets timestamp for the log start.
pub(crate) const EARLIEST: i64 = -2;
/// ListOffsets timestamp for the log end (the LSO under read_committed).
pub(crate) const LATEST: i64 = -1;

/// One ListOffsets answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListedOffset {
    /// -1 when no record has a timestamp at or after the one asked for.
    pub offset: i64,
    pub timestamp: i64,
    pub leader_epoch: Option<i32>,
}

fn name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_owned()))
}

/// ListOffsets for each partition at its timestamp, sent to each partition's leader, retried
/// (after a metadata refresh) until `timeout`.
pub(crate) async fn list_offsets(
    core: &ClientCore,
    isolation: IsolationLevel,
    wanted: &[(TopicPartition, i64)],
    timeout: Duration,
) -> Result<HashMap<TopicPartition, ListedOffset>> {
    let done: Mutex<HashMap<TopicPartition, ListedOffset>> = Mutex::new(HashMap::new());
    core.with_retries("ListOffsets", timeout, || async {
        let cluster = core.cluster().await?;
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i64, Option<i32>)>> = BTreeMap::new();
        {
            let have = done.lock().unwrap();
            for (tp, ts) in wanted {
                if have.contains_key(tp) {
                    continue;
                }
                let (leader, epoch) = cluster.leader_for(&tp.topic, tp.partition).ok_or_else(|| {
                    Error::broker(ErrorCode::LeaderNotAvailable, "ListOffsets", None, Some(tp.topic.clone()), Some(tp.partition))
                })?;
                by_leader.entry(leader).or_default().push((tp.clone(), *ts, epoch));
            }
        }
        let mut first_err = None;
        for (leader, parts) in by_leader {
            let attempt = async {
                let conn = core.broker(leader, ConnKind::Default).await?;
                let version = conn.version_for::<ListOffsetsRequest>()?;
                let mut topics: Vec<ListOffsetsTopic> = Vec::new();
                for (tp, ts, epoch) in &parts {
                    let p = ListOffsetsPartition::default()
                        .with_partition_index(tp.partition)
                        .with_timestamp(*ts)
                        .with_current_leader_epoch(if version >= 4 { epoch.unwrap_or(-1) } else { -1 });
                    match topics.last_mut() {
                        Some(t) if t.name.0.as_str() == tp.topic => t.partitions.push(p),
                        _ => topics.push(ListOffsetsTopic::default().with_name(name(&tp.topic)).with_partitions(vec![p])),
                    }
                }
                let req = ListOffsetsRequest::default()
                    .with_replica_id((-1).into())
                    .with_isolation_level(if version >= 2 { isolation.wire() } else { 0 })
                    .with_topics(topics);
                let resp = conn.send_at(&req, version).await?;
                let mut err = None;
                for t in resp.topics {
                    for p in t.partitions {
                        let topic = t.name.0.to_string();
                        if let Err(e) = Error::check_code(p.error_code, "ListOffsets", None, Some(&topic), Some(p.partition_index)) {
                            err.get_or_insert(e);
                            continue;
                        }
                        let tp = TopicPartition::new(topic, p.partition_index);
                        done.lock().unwrap().insert(
                            tp,
                            ListedOffset {
                                offset: p.offset,
                                timestamp: p.timestamp,
                                leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                            },
                        );
                    }
                }
                match err {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            };
            if let Err(e) = attempt.await {
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let have = done.lock().unwrap();
        if let Some((tp, _)) = wanted.iter().find(|(tp, _)| !have.contains_key(tp)) {
            return Err(Error::broker(ErrorCode::UnknownTopicOrPartition, "ListOffsets", Some("no answer for the partition".into()), Some(tp.topic.clone()), Some(tp.partition)));
        }
        Ok(())
    })
    .await?;
    Ok(done.into_inner().unwrap())
}

/// Who commits: a group member's identity, checked by the coordinator.
#[derive(Debug, Clone)]
pub(crate) struct MemberIdentity {
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
}

/// The group coordinator's broker id (or a transactional id's transaction coordinator),
/// cached until a coordinator error.
pub(crate) struct Coordinator {
    group: String,
    /// FindCoordinator key type: 0 group, 1 transaction.
    key_type: i8,
    cached: Mutex<Option<i32>>,
}

impl Coordinator {
    pub(crate) fn new(group: String) -> Coordinator {
        Coordinator { group, key_type: 0, cached: Mutex::new(None) }
    }

    /// The transaction coordinator of `transactional_id` (FindCoordinator key type 1).
    pub(crate) fn for_transactions(transactional_id: String) -> Coordinator {
        Coordinator { group: transactional_id, key_type: 1, cached: Mutex::new(None) }
    }

    pub(crate) fn group(&self) -> &str {
        &self.group
    }

    /// Forgets the cached coordinator (it stopped answering).
    pub(crate) fn forget(&self) {
        *self.cached.lock().unwrap() = None;
    }

    /// Forgets the coordinator after an error that says it moved: NOT_COORDINATOR,
    /// COORDINATOR_NOT_AVAILABLE, a broken connection, or BROKER_NOT_AVAILABLE (its node
    /// dropped out of the cluster metadata: `ClientCore::broker`), so the retry looks it up
    /// again, as the Java client does.
    pub(crate) fn check(&self, e: &Error) {
        if matches!(
            e.code(),
            Some(ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable | ErrorCode::BrokerNotAvailable)
        ) || e.is_connection_level()
        {
            *self.cached.lock().unwrap() = None;
        }
    }

    pub(crate) async fn find(&self, core: &ClientCore) -> Result<i32> {
        if let Some(id) = *self.cached.lock().unwrap() {
            return Ok(id);
        }
        let conn = core.any_broker().await?;
        let version = conn.version_for::<FindCoordinatorRequest>()?;
        let key = StrBytes::from_string(self.group.clone());
        let req = if version >= 4 {
            FindCoordinatorRequest::default().with_key_type(self.key_type).with_coordinator_keys(vec![key])
        } else {
            FindCoordinatorRequest::default().with_key(key).with_key_type(self.key_type)
        };
        let resp = conn.send_at(&req, version).await?;
        let (code, msg, node) = if version >= 4 {
            let c = resp.coordinators.first().ok_or_else(|| Error::Protocol {
                broker: "coordinator lookup".into(),
                detail: "FindCoordinator answer lists no coordinator".into(),
            })?;
            (c.error_code, c.error_message.as_ref().map(|m| m.to_string()), c.node_id.0)
        } else {
            (resp.error_code, resp.error_message.as_ref().map(|m| m.to_string()), resp.node_id.0)
        };
        Error::check_code(code, "FindCoordinator", msg.as_deref(), None, None)?;
        *self.cached.lock().unwrap() = Some(node);
        Ok(node)
    }

    /// Commits `offsets`: as a group member (`member`, checked by the coordinator against
    /// the current generation) or as a simple commit (`None`: generation -1, member "").
    pub(crate) async fn commit(
        &self,
        core: &ClientCore,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
        member: Option<&MemberIdentity>,
        timeout: Duration,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        core.with_retries("OffsetCommit", timeout, || async {
            let r = self.commit_once(core, offsets, member).await;
            if let Err(e) = &r {
                self.check(e);
            }
            r
        })
        .await
    }

    async fn commit_once(
        &self,
        core: &ClientCore,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
        member: Option<&MemberIdentity>,
    ) -> Result<()> {
        let node = self.find(core).await?;
        let conn = core.broker(node, ConnKind::Group).await?;
        let version = conn.version_for::<OffsetCommitRequest>()?;
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (tp, om) in offsets {
            let p = OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(om.offset)
                .with_committed_leader_epoch(if version >= 6 { om.leader_epoch.unwrap_or(-1) } else { -1 })
                .with_committed_metadata(Some(StrBytes::from_string(om.metadata.clone())));
            match topics.last_mut() {
                Some(t) if t.name.0.as_str() == tp.topic => t.partitions.push(p),
                _ => topics.push(OffsetCommitRequestTopic::default().with_name(name(&tp.topic)).with_partitions(vec![p])),
            }
        }
        let mut req = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_generation_id_or_member_epoch(member.map_or(-1, |m| m.generation))
            .with_member_id(StrBytes::from_string(member.map(|m| m.member_id.clone()).unwrap_or_default()))
            .with_topics(topics);
        if version >= 7 {
            req = req.with_group_instance_id(member.and_then(|m| m.instance_id.clone()).map(StrBytes::from_string));
        }
        let resp = conn.send_at(&req, version).await?;
        for t in resp.topics {
            for p in t.partitions {
                Error::check_code(p.error_code, "OffsetCommit", None, Some(t.name.0.as_str()), Some(p.partition_index))?;
            }
        }
        Ok(())
    }

    /// The committed offsets of `tps` (absent: nothing committed).
    pub(crate) async fn fetch(
        &self,
        core: &ClientCore,
        tps: &[TopicPartition],
        timeout: Duration,
    ) -> Result<HashMap<TopicPartition, OffsetAndMetadata>> {
        if tps.is_empty() {
            return Ok(HashMap::new());
        }
        core.with_retries("OffsetFetch", timeout, || async {
            let r = self.fetch_once(core, tps).await;
            if let Err(e) = &r {
                self.check(e);
            }
            r
        })
        .await
    }

    async fn fetch_once(&self, core: &ClientCore, tps: &[TopicPartition]) -> Result<HashMap<TopicPartition, OffsetAndMetadata>> {
        let node = self.find(core).await?;
        let conn = core.broker(node, ConnKind::Group).await?;
        let version = conn.version_for::<OffsetFetchRequest>()?;
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in tps {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        let group = GroupId(StrBytes::from_string(self.group.clone()));
        let mut req = OffsetFetchRequest::default().with_require_stable(version >= 7);
        if version >= 8 {
            let topics = by_topic
                .iter()
                .map(|(t, ps)| OffsetFetchRequestTopics::default().with_name(name(t)).with_partition_indexes(ps.clone()))
                .collect();
            req = req.with_groups(vec![OffsetFetchRequestGroup::default().with_group_id(group).with_topics(Some(topics))]);
        } else {
            let topics = by_topic
                .iter()
                .map(|(t, ps)| OffsetFetchRequestTopic::default().with_name(name(t)).with_partition_indexes(ps.clone()))
                .collect();
            req = req.with_group_id(group).with_topics(Some(topics));
        }
        let resp = conn.send_at(&req, version).await?;
        let mut out = HashMap::new();
        let mut add = |topic: &str, partition: i32, offset: i64, epoch: i32, metadata: Option<&StrBytes>, code: i16| -> Result<()> {
            Error::check_code(code, "OffsetFetch", None, Some(topic), Some(partition))?;
            if offset >= 0 {
                out.insert(
                    TopicPartition::new(topic, partition),
                    OffsetAndMetadata {
                        offset,
                        leader_epoch: (epoch >= 0).then_some(epoch),
                        metadata: metadata.map(|m| m.to_string()).unwrap_or_default(),
                    },
                );
            }
            Ok(())
        };
        if version >= 8 {
            let g = resp.groups.first().ok_or_else(|| Error::Protocol {
                broker: format!("coordinator {node}"),
                detail: "OffsetFetch answer lists no group".into(),
            })?;
            Error::check_code(g.error_code, "OffsetFetch", None, None, None)?;
            for t in &g.topics {
                for p in &t.partitions {
                    add(t.name.0.as_str(), p.partition_index, p.committed_offset, p.committed_leader_epoch, p.metadata.as_ref(), p.error_code)?;
                }
            }
        } else {
            Error::check_code(resp.error_code, "OffsetFetch", None, None, None)?;
            for t in &resp.topics {
                for p in &t.partitions {
                    add(t.name.0.as_str(), p.partition_index, p.committed_offset, p.committed_leader_epoch, p.metadata.as_ref(), p.error_code)?;
                }
            }
        }
        Ok(out)
    }
}
