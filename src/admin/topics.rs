//! Topics: create, delete (by name or id), list, describe (by name or id, with authorized
//! operations), add partitions.

use kafka_protocol::messages::create_partitions_request::{CreatePartitionsAssignment, CreatePartitionsTopic};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeSet;
use std::time::Duration;

use super::route::require_version;
use super::{AclOperation, AdminClient};
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::{decode_metadata_response, partition_infos, validate_topic_name, TopicDescription, TopicId};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// The topic name.
    pub name: String,
    /// Number of partitions; `None` takes the broker's `num.partitions`.
    pub num_partitions: Option<i32>,
    /// Replication factor; `None` takes the broker's `default.replication.factor`.
    pub replication_factor: Option<i16>,
    /// Topic configs (`retention.ms`, `cleanup.policy`, ...), in order.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with an explicit partition count and replication factor.
    pub fn new(name: impl Into<String>, num_partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: Some(num_partitions),
            replication_factor: Some(replication_factor),
            configs: Vec::new(),
        }
    }

    /// A topic that takes the broker's default partition count and replication factor.
    pub fn with_broker_defaults(name: impl Into<String>) -> NewTopic {
        NewTopic { name: name.into(), num_partitions: None, replication_factor: None, configs: Vec::new() }
    }

    /// Adds a topic config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> NewTopic {
        self.configs.push((key.into(), value.into()));
        self
    }

    fn validate(&self) -> Result<()> {
        validate_topic_name(&self.name)?;
        if matches!(self.num_partitions, Some(n) if n < 1) {
            return Err(Error::InvalidArgument(format!("topic {}: num_partitions must be at least 1", self.name)));
        }
        if matches!(self.replication_factor, Some(n) if n < 1) {
            return Err(Error::InvalidArgument(format!(
                "topic {}: replication_factor must be at least 1",
                self.name
            )));
        }
        Ok(())
    }
}

/// Options of [`AdminClient::create_topics`].
#[derive(Debug, Clone, Default)]
pub struct CreateTopicsOptions {
    /// Only validate the request on the broker; create nothing. Default `false`.
    pub validate_only: bool,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig::default_api_timeout).
    pub timeout: Option<Duration>,
}

/// The outcome of one topic in a multi-topic call ([`AdminClient::create_topics`],
/// [`AdminClient::delete_topics`]). The results come in the order the topics were asked for.
#[derive(Debug)]
pub struct TopicResult {
    /// The topic's name, as asked for.
    pub name: String,
    /// `Ok` when the broker applied the operation to this topic, else the broker's error for
    /// it (with its message), or a protocol error when the answer left the topic out.
    pub result: Result<()>,
}

impl AdminClient {
    /// Creates topics. The outer error is for the call as a whole; each topic has its own
    /// [`TopicResult`] (`TOPIC_ALREADY_EXISTS`, `INVALID_REPLICATION_FACTOR`, `POLICY_VIOLATION`, ...
    /// with the broker's message). Retries when the controller moves.
    pub async fn create_topics(
        &self,
        topics: impl IntoIterator<Item = NewTopic>,
        options: CreateTopicsOptions,
    ) -> Result<Vec<TopicResult>> {
        let topics: Vec<NewTopic> = topics.into_iter().collect();
        for t in &topics {
            t.validate()?;
        }
        let timeout = options.timeout.unwrap_or(self.timeout);
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(timeout.as_millis().min(i32::MAX as u128) as i32)
            .with_validate_only(options.validate_only)
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(topic_name(&t.name))
                            .with_num_partitions(t.num_partitions.unwrap_or(-1))
                            .with_replication_factor(t.replication_factor.unwrap_or(-1))
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(StrBytes::from_string(k.clone()))
                                            .with_value(Some(StrBytes::from_string(v.clone())))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let resp = self
            .core
            .with_retries("CreateTopics", timeout, || async {
                let conn = self.core.controller().await?;
                let resp = conn.send(&req).await?;
                // A moved controller is answered per topic; retry the whole call then.
                if let Some(t) = resp.topics.iter().find(|t| t.error_code == ErrorCode::NotController.code()) {
                    Error::check_code(t.error_code, "CreateTopics", None, None, None)?;
                }
                Ok(resp)
            })
            .await?;
        Ok(per_topic(
            &topics.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
            resp.topics.into_iter().map(|t| {
                (t.name.0.to_string(), t.error_code, t.error_message.map(|m| m.to_string()))
            }),
            "CreateTopics",
        ))
    }

    /// Creates one topic; `Err` if it could not be created (including when it exists).
    pub async fn create_topic(&self, topic: NewTopic) -> Result<()> {
        let mut r = self.create_topics([topic], CreateTopicsOptions::default()).await?;
        r.pop().map(|t| t.result).unwrap_or(Ok(()))
    }

    /// Deletes topics by name; each topic has its own [`TopicResult`] (`UNKNOWN_TOPIC_OR_PARTITION`
    /// when it does not exist).
    pub async fn delete_topics<S: AsRef<str>>(&self, names: impl IntoIterator<Item = S>) -> Result<Vec<TopicResult>> {
        let names: Vec<String> = names.into_iter().map(|s| s.as_ref().to_owned()).collect();
        for n in &names {
            validate_topic_name(n)?;
        }
        let timeout_ms = self.timeout.as_millis().min(i32::MAX as u128) as i32;
        let resp = self
            .core
            .with_retries("DeleteTopics", self.timeout, || async {
                let conn = self.core.controller().await?;
                let version = conn.version_for::<DeleteTopicsRequest>()?;
                // v6 names topics in `topics` (name or id); older versions in `topic_names`.
                let req = if version >= 6 {
                    DeleteTopicsRequest::default().with_topics(
                        names.iter().map(|n| DeleteTopicState::default().with_name(Some(topic_name(n)))).collect(),
                    )
                } else {
                    DeleteTopicsRequest::default().with_topic_names(names.iter().map(|n| topic_name(n)).collect())
                }
                .with_timeout_ms(timeout_ms);
                let resp = conn.send_at(&req, version).await?;
                if let Some(t) = resp.responses.iter().find(|t| t.error_code == ErrorCode::NotController.code()) {
                    Error::check_code(t.error_code, "DeleteTopics", None, None, None)?;
                }
                Ok(resp)
            })
            .await?;
        self.core.metadata.invalidate();
        Ok(per_topic(
            &names,
            resp.responses.into_iter().map(|t| {
                (
                    t.name.map(|n| n.0.to_string()).unwrap_or_default(),
                    t.error_code,
                    t.error_message.map(|m| m.to_string()),
                )
            }),
            "DeleteTopics",
        ))
    }

    /// Deletes one topic.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let mut r = self.delete_topics([name]).await?;
        r.pop().map(|t| t.result).unwrap_or(Ok(()))
    }

    /// The names of all topics, sorted; internal topics only when `include_internal`.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<String>> {
        let cluster = self
            .core
            .with_retries("ListTopics", self.timeout, || self.core.metadata.refresh_all())
            .await?;
        let mut names: Vec<String> = cluster
            .topics
            .values()
            .filter(|t| include_internal || !t.internal)
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Describes topics: partitions, leaders, leader epochs, replicas and ISR. Fails with
    /// `UNKNOWN_TOPIC_OR_PARTITION` naming the topic when one does not exist.
    pub async fn describe_topics<S: AsRef<str>>(&self, names: impl IntoIterator<Item = S>) -> Result<Vec<TopicDescription>> {
        let names: Vec<String> = names.into_iter().map(|s| s.as_ref().to_owned()).collect();
        for n in &names {
            validate_topic_name(n)?;
        }
        let cluster = self
            .core
            .with_retries("DescribeTopics", self.timeout, || async {
                let c = self.core.metadata.refresh_topics(&names).await?;
                // A topic still being created has no leaders yet: that is worth waiting for.
                for n in &names {
                    if let Some((ErrorCode::LeaderNotAvailable, _)) = c.topic_errors.get(n) {
                        Error::check_code(ErrorCode::LeaderNotAvailable.code(), "Metadata", None, Some(n), None)?;
                    }
                }
                Ok(c)
            })
            .await?;
        names
            .iter()
            .map(|n| match cluster.topics.get(n) {
                Some(t) => Ok(t.clone()),
                None => {
                    let code = cluster.topic_errors.get(n).map(|e| e.0).unwrap_or(ErrorCode::UnknownTopicOrPartition);
                    Err(Error::broker(code, "Metadata", None, Some(n.clone()), None))
                }
            })
            .collect()
    }
}

/// A topic name for a request.
pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// Orders per-topic results as the caller asked, and reports topics the broker left out.
fn per_topic(
    asked: &[String],
    answered: impl Iterator<Item = (String, i16, Option<String>)>,
    api: &'static str,
) -> Vec<TopicResult> {
    let mut by_name: std::collections::HashMap<String, (i16, Option<String>)> =
        answered.map(|(n, c, m)| (n, (c, m))).collect();
    asked
        .iter()
        .map(|n| {
            let r = match by_name.remove(n) {
                Some((code, msg)) => Error::check_code(code, api, msg.as_deref(), Some(n), None),
                None => Err(Error::Protocol {
                    broker: "controller".into(),
                    detail: format!("{api} response has no result for topic {n}"),
                }),
            };
            TopicResult { name: n.clone(), result: r }
        })
        .collect()
}

/// Options of [`AdminClient::delete_topics_by_id`].
#[derive(Debug, Clone, Default)]
pub struct DeleteTopicsOptions {
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig::default_api_timeout).
    pub timeout: Option<Duration>,
}

/// The outcome of one topic of [`AdminClient::delete_topics_by_id`], in the order asked for.
#[derive(Debug)]
pub struct TopicIdResult {
    /// The topic id, as asked for.
    pub topic_id: TopicId,
    /// `Ok` when the topic was deleted, else the broker's error for it (`UNKNOWN_TOPIC_ID`
    /// when no topic has this id).
    pub result: Result<()>,
}

/// Options of [`AdminClient::describe_topics_with`] and [`AdminClient::describe_topics_by_id`].
#[derive(Debug, Clone, Default)]
pub struct DescribeTopicsOptions {
    /// Ask the broker which operations the caller may perform on each topic
    /// (Java's `includeAuthorizedOperations`). Default `false`.
    pub include_authorized_operations: bool,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig::default_api_timeout).
    pub timeout: Option<Duration>,
}

/// A topic as [`AdminClient::describe_topics_with`] and [`AdminClient::describe_topics_by_id`]
/// describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedTopic {
    /// Name, id, partitions (leaders, epochs, replicas, ISR, offline replicas).
    pub description: TopicDescription,
    /// The operations the caller may perform on the topic; `None` unless
    /// [`DescribeTopicsOptions::include_authorized_operations`] was set.
    pub authorized_operations: Option<BTreeSet<AclOperation>>,
}

/// A topic and the total partition count it should grow to ([`AdminClient::create_partitions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPartitions {
    /// The topic.
    pub topic: String,
    /// The partition count after the call (Java's `increaseTo`): more than the topic has.
    pub total_count: i32,
    /// The replicas (broker ids, preferred leader first) of each new partition, in order;
    /// `None` lets the controller place them. When given, one entry per new partition.
    pub assignments: Option<Vec<Vec<i32>>>,
}

impl NewPartitions {
    /// Grow `topic` to `total_count` partitions, placed by the controller.
    pub fn increase_to(topic: impl Into<String>, total_count: i32) -> NewPartitions {
        NewPartitions { topic: topic.into(), total_count, assignments: None }
    }

    /// Sets [`NewPartitions::assignments`].
    pub fn assignments(mut self, assignments: Vec<Vec<i32>>) -> NewPartitions {
        self.assignments = Some(assignments);
        self
    }

    fn validate(&self) -> Result<()> {
        validate_topic_name(&self.topic)?;
        if self.total_count < 1 {
            return Err(Error::InvalidArgument(format!(
                "topic {}: the partition count must be positive, not {}",
                self.topic, self.total_count
            )));
        }
        if let Some(a) = &self.assignments {
            if let Some(i) = a.iter().position(|r| r.is_empty()) {
                return Err(Error::InvalidArgument(format!(
                    "topic {}: the assignment of new partition #{i} names no broker",
                    self.topic
                )));
            }
        }
        Ok(())
    }
}

/// Options of [`AdminClient::create_partitions`].
#[derive(Debug, Clone, Default)]
pub struct CreatePartitionsOptions {
    /// Only validate the request on the broker; add nothing. Default `false`.
    pub validate_only: bool,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig::default_api_timeout).
    pub timeout: Option<Duration>,
}

impl AdminClient {
    /// Deletes topics by id (KIP-516, DeleteTopics v6+; an older broker gives
    /// [`Error::UnsupportedVersion`]). One [`TopicIdResult`] per id, in the order asked for;
    /// a nil id is refused before sending.
    pub async fn delete_topics_by_id(
        &self,
        ids: impl IntoIterator<Item = TopicId>,
        options: DeleteTopicsOptions,
    ) -> Result<Vec<TopicIdResult>> {
        let ids: Vec<TopicId> = ids.into_iter().collect();
        if ids.iter().any(|id| id.0 == [0; 16]) {
            return Err(Error::InvalidArgument("the nil topic id names no topic".into()));
        }
        let timeout = self.call_timeout(options.timeout);
        let resp = self
            .send_to_at_least::<DeleteTopicsRequest, _, _>(
                "DeleteTopics",
                super::route::Target::Controller,
                timeout,
                (6, "DeleteTopics by topic id"),
                |_| {
                    Ok(DeleteTopicsRequest::default()
                        .with_topics(
                            ids.iter()
                                .map(|id| DeleteTopicState::default().with_topic_id(uuid::Uuid::from_bytes(id.0)))
                                .collect(),
                        )
                        .with_timeout_ms(Self::timeout_ms(timeout)))
                },
                |resp| match resp.responses.iter().find(|t| t.error_code == ErrorCode::NotController.code()) {
                    Some(t) => Error::check_code(t.error_code, "DeleteTopics", None, None, None),
                    None => Ok(()),
                },
            )
            .await?;
        self.core.metadata.invalidate();
        Ok(ids
            .iter()
            .map(|id| {
                let result = match resp.responses.iter().find(|t| t.topic_id.as_bytes() == &id.0) {
                    Some(t) => Error::check_code(
                        t.error_code,
                        "DeleteTopics",
                        Some(&t.error_message.as_ref().map(|m| format!("topic id {id}: {m}")).unwrap_or_else(|| format!("topic id {id}"))),
                        t.name.as_ref().map(|n| n.0.as_str()),
                        None,
                    ),
                    None => Err(Error::Protocol {
                        broker: "controller".into(),
                        detail: format!("DeleteTopics response has no result for topic id {id}"),
                    }),
                };
                TopicIdResult { topic_id: *id, result }
            })
            .collect())
    }

    /// Describes topics by name, one result per name in the order asked for (a topic that
    /// does not exist is its own `UNKNOWN_TOPIC_OR_PARTITION`), with the operations the
    /// caller may perform on each when [`DescribeTopicsOptions::include_authorized_operations`]
    /// is set.
    pub async fn describe_topics_with<S: AsRef<str>>(
        &self,
        names: impl IntoIterator<Item = S>,
        options: DescribeTopicsOptions,
    ) -> Result<Vec<Result<DescribedTopic>>> {
        let names: Vec<String> = names.into_iter().map(|s| s.as_ref().to_owned()).collect();
        for n in &names {
            validate_topic_name(n)?;
        }
        let topics: Vec<MetadataRequestTopic> =
            names.iter().map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n)))).collect();
        let answers = self.describe_metadata(topics, 4, "Metadata", &options).await?;
        Ok(names
            .iter()
            .map(|n| match answers.iter().find(|a| a.0.as_deref() == Some(n.as_str())) {
                Some((_, _, r)) => r.clone(),
                None => Err(Error::broker(ErrorCode::UnknownTopicOrPartition, "Metadata", None, Some(n.clone()), None)),
            })
            .collect())
    }

    /// Describes topics by id (Metadata v12+, KIP-516; an older broker gives
    /// [`Error::UnsupportedVersion`]), one result per id in the order asked for (an id no
    /// topic has is its own `UNKNOWN_TOPIC_ID`). A nil id is refused before sending.
    pub async fn describe_topics_by_id(
        &self,
        ids: impl IntoIterator<Item = TopicId>,
        options: DescribeTopicsOptions,
    ) -> Result<Vec<Result<DescribedTopic>>> {
        let ids: Vec<TopicId> = ids.into_iter().collect();
        if ids.iter().any(|id| id.0 == [0; 16]) {
            return Err(Error::InvalidArgument("the nil topic id names no topic".into()));
        }
        let topics: Vec<MetadataRequestTopic> = ids
            .iter()
            .map(|id| MetadataRequestTopic::default().with_topic_id(uuid::Uuid::from_bytes(id.0)).with_name(None))
            .collect();
        let answers = self.describe_metadata(topics, 12, "Metadata by topic id", &options).await?;
        Ok(ids
            .iter()
            .map(|id| match answers.iter().find(|a| a.1 == Some(*id)) {
                Some((_, _, r)) => r.clone(),
                None => Err(Error::broker(
                    ErrorCode::UnknownTopicId,
                    "Metadata",
                    Some(format!("topic id {id}")),
                    None,
                    None,
                )),
            })
            .collect())
    }

    /// One Metadata request for `topics` (Metadata `min_version`+, `what` naming the need),
    /// decoded with the bounded decoder: per answered topic its name, id and description
    /// or error. A topic still being created (LEADER_NOT_AVAILABLE) is waited for.
    async fn describe_metadata(
        &self,
        topics: Vec<MetadataRequestTopic>,
        min_version: i16,
        what: &'static str,
        options: &DescribeTopicsOptions,
    ) -> Result<Vec<(Option<String>, Option<TopicId>, Result<DescribedTopic>)>> {
        let timeout = self.call_timeout(options.timeout);
        let req = MetadataRequest::default()
            .with_topics(Some(topics))
            .with_allow_auto_topic_creation(false)
            .with_include_topic_authorized_operations(options.include_authorized_operations);
        self.core
            .with_retries("DescribeTopics", timeout, || async {
                let conn = self.core.any_broker().await?;
                let version = conn.version_for::<MetadataRequest>()?;
                require_version::<MetadataRequest>(&conn, version, min_version.max(if options.include_authorized_operations { 8 } else { 0 }), what)?;
                let resp = decode_metadata_response(conn.send_raw(&req, version).await?, version)?;
                let mut out = Vec::with_capacity(resp.topics.len());
                for t in resp.topics {
                    let name = t.name.map(|n| n.0.to_string());
                    let id = (!t.topic_id.is_nil()).then(|| TopicId(*t.topic_id.as_bytes()));
                    if t.error_code == ErrorCode::LeaderNotAvailable.code() {
                        Error::check_code(t.error_code, "Metadata", None, name.as_deref(), None)?;
                    }
                    let r = match Error::check_code(
                        t.error_code,
                        "Metadata",
                        id.filter(|_| name.is_none()).map(|i| format!("topic id {i}")).as_deref(),
                        name.as_deref(),
                        None,
                    ) {
                        Err(e) => Err(e),
                        Ok(()) => {
                            let partitions = partition_infos(t.partitions);
                            Ok(DescribedTopic {
                                description: TopicDescription {
                                    name: name.clone().unwrap_or_default(),
                                    topic_id: id,
                                    internal: t.is_internal,
                                    partitions,
                                },
                                authorized_operations: if options.include_authorized_operations {
                                    AclOperation::from_bitfield(t.topic_authorized_operations)
                                } else {
                                    None
                                },
                            })
                        }
                    };
                    out.push((name, id, r));
                }
                Ok(out)
            })
            .await
    }

    /// Adds partitions to topics (CreatePartitions, to the controller), one [`TopicResult`]
    /// per topic in the order asked for (`INVALID_PARTITIONS` when the count does not grow,
    /// `INVALID_REPLICA_ASSIGNMENT`, ... with the broker's message). A non-positive count,
    /// an invalid name or an empty replica list is refused before sending.
    pub async fn create_partitions(
        &self,
        topics: impl IntoIterator<Item = NewPartitions>,
        options: CreatePartitionsOptions,
    ) -> Result<Vec<TopicResult>> {
        let topics: Vec<NewPartitions> = topics.into_iter().collect();
        for t in &topics {
            t.validate()?;
        }
        let timeout = self.call_timeout(options.timeout);
        let resp = self
            .send_to::<CreatePartitionsRequest, _, _>(
                "CreatePartitions",
                super::route::Target::Controller,
                timeout,
                |_| {
                    Ok(CreatePartitionsRequest::default()
                        .with_timeout_ms(Self::timeout_ms(timeout))
                        .with_validate_only(options.validate_only)
                        .with_topics(
                            topics
                                .iter()
                                .map(|t| {
                                    CreatePartitionsTopic::default()
                                        .with_name(topic_name(&t.topic))
                                        .with_count(t.total_count)
                                        .with_assignments(t.assignments.as_ref().map(|a| {
                                            a.iter()
                                                .map(|r| {
                                                    CreatePartitionsAssignment::default()
                                                        .with_broker_ids(r.iter().map(|&b| BrokerId(b)).collect())
                                                })
                                                .collect()
                                        }))
                                })
                                .collect(),
                        ))
                },
                |resp| match resp.results.iter().find(|t| t.error_code == ErrorCode::NotController.code()) {
                    Some(t) => Error::check_code(t.error_code, "CreatePartitions", None, None, None),
                    None => Ok(()),
                },
            )
            .await?;
        if !options.validate_only {
            self.core.metadata.invalidate();
        }
        Ok(per_topic(
            &topics.iter().map(|t| t.topic.clone()).collect::<Vec<_>>(),
            resp.results
                .into_iter()
                .map(|t| (t.name.0.to_string(), t.error_code, t.error_message.map(|m| m.to_string()))),
            "CreatePartitions",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;


    #[test]
    fn partition_counts_and_assignments_are_checked_before_sending() {
        assert!(NewPartitions::increase_to("t", 3).validate().is_ok());
        for bad in [
            NewPartitions::increase_to("t", 0),
            NewPartitions::increase_to("t", -1),
            NewPartitions::increase_to("", 3),
            NewPartitions::increase_to("t", 3).assignments(vec![vec![1], vec![]]),
        ] {
            assert!(matches!(bad.validate(), Err(Error::InvalidArgument(_))), "{bad:?}");
        }
    }
}
