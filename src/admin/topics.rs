//! Topics: create, delete, list, describe, add partitions.

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{CreateTopicsRequest, DeleteTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

use super::AdminClient;
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::{validate_topic_name, TopicDescription};

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
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`].
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

fn topic_name(s: &str) -> TopicName {
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
