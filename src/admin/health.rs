//! Cluster health: under-replicated, under-min-ISR, offline and leaderless partitions, as
//! `kafka-topics.sh --describe` finds them with `--under-replicated-partitions`,
//! `--under-min-isr-partitions` and `--unavailable-partitions`, from the metadata and the
//! topics' `min.insync.replicas`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::protocol::StrBytes;

use super::route::Target;
use super::AdminClient;
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::{validate_topic_name, PartitionInfo};

/// DescribeConfigs resource type of a topic.
const TOPIC_RESOURCE: i8 = 2;

/// Options of [`AdminClient::cluster_health`].
#[derive(Debug, Clone, Default)]
pub struct ClusterHealthOptions {
    /// The topics to check; `None` checks every topic. Default `None`.
    pub topics: Option<Vec<String>>,
    /// With `topics` `None`, also check internal topics (`__consumer_offsets`,
    /// `__transaction_state`). Default `false`.
    pub include_internal: bool,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig::default_api_timeout).
    pub timeout: Option<Duration>,
}

/// The health of one topic ([`AdminClient::cluster_health`]). Each list holds the
/// partitions (as the metadata describes them) in that state, by partition number.
#[derive(Debug, Clone)]
pub struct TopicHealth {
    /// The topic's effective `min.insync.replicas` (its own or the broker default), or the
    /// error that kept it from being read (then `under_min_isr` is empty).
    pub min_insync_replicas: Result<i32>,
    /// Partitions whose ISR is smaller than their replica set.
    pub under_replicated: Vec<PartitionInfo>,
    /// Partitions whose ISR is smaller than `min_insync_replicas` (producers with
    /// `acks=all` are refused with NOT_ENOUGH_REPLICAS).
    pub under_min_isr: Vec<PartitionInfo>,
    /// Partitions with no live leader or with a replica offline (on a broker that is not
    /// live, or in the broker's offline replicas).
    pub offline: Vec<PartitionInfo>,
    /// Partitions with no live leader (none elected, or the leader is not a live broker):
    /// nobody can produce to or fetch from them.
    pub leaderless: Vec<PartitionInfo>,
}

impl TopicHealth {
    /// Whether no partition is in any of the states above.
    pub fn is_healthy(&self) -> bool {
        self.under_replicated.is_empty()
            && self.under_min_isr.is_empty()
            && self.offline.is_empty()
            && self.leaderless.is_empty()
    }
}

/// The health of the cluster's topics ([`AdminClient::cluster_health`]).
#[derive(Debug, Clone)]
pub struct ClusterHealth {
    /// The live brokers' ids, as the metadata lists them.
    pub live_brokers: Vec<i32>,
    /// Every topic checked, healthy or not; a topic asked for that does not exist is
    /// `UNKNOWN_TOPIC_OR_PARTITION`.
    pub topics: BTreeMap<String, Result<TopicHealth>>,
}

impl ClusterHealth {
    /// The topics that are not healthy (or could not be checked).
    pub fn unhealthy_topics(&self) -> Vec<&str> {
        self.topics
            .iter()
            .filter(|(_, h)| !matches!(h, Ok(h) if h.is_healthy()))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Whether every topic checked is healthy.
    pub fn is_healthy(&self) -> bool {
        self.unhealthy_topics().is_empty()
    }
}

impl AdminClient {
    /// The health of the cluster's topics: per topic its under-replicated, under-min-ISR,
    /// offline and leaderless partitions, from fresh metadata and the topics'
    /// `min.insync.replicas` (DescribeConfigs).
    ///
    /// ```no_run
    /// # async fn demo(admin: ferrokafka::admin::AdminClient) -> ferrokafka::Result<()> {
    /// let health = admin.cluster_health(Default::default()).await?;
    /// for topic in health.unhealthy_topics() {
    ///     println!("{topic}: {:?}", health.topics[topic]);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn cluster_health(&self, options: ClusterHealthOptions) -> Result<ClusterHealth> {
        if let Some(ts) = &options.topics {
            for t in ts {
                validate_topic_name(t)?;
            }
        }
        let timeout = self.call_timeout(options.timeout);
        let cluster = self
            .core
            .with_retries("Metadata", timeout, || async {
                match &options.topics {
                    None => self.core.metadata.refresh_all().await,
                    Some(ts) => self.core.metadata.refresh_topics(ts).await,
                }
            })
            .await?;
        let names: Vec<String> = match &options.topics {
            Some(ts) => {
                let mut ts = ts.clone();
                ts.sort();
                ts.dedup();
                ts
            }
            None => {
                let mut ts: Vec<String> = cluster
                    .topics
                    .values()
                    .filter(|t| options.include_internal || !t.internal)
                    .map(|t| t.name.clone())
                    .collect();
                ts.sort();
                ts
            }
        };
        let known: Vec<String> = names.iter().filter(|n| cluster.topics.contains_key(*n)).cloned().collect();
        let min_isr = self.min_insync_replicas(&known, timeout).await;
        let live: BTreeSet<i32> = cluster.brokers.keys().copied().collect();
        let mut topics = BTreeMap::new();
        for n in names {
            let Some(t) = cluster.topics.get(&n) else {
                let (code, msg) =
                    cluster.topic_errors.get(&n).cloned().unwrap_or((ErrorCode::UnknownTopicOrPartition, None));
                topics.insert(n.clone(), Err(Error::broker(code, "Metadata", msg, Some(n), None)));
                continue;
            };
            let min = match &min_isr {
                Err(e) => Err(e.clone()),
                Ok(m) => m.get(&n).cloned().unwrap_or_else(|| {
                    Err(Error::Protocol {
                        broker: "any".into(),
                        detail: format!("DescribeConfigs response has no min.insync.replicas for topic {n}"),
                    })
                }),
            };
            topics.insert(n, Ok(topic_health(&t.partitions, min, &live)));
        }
        Ok(ClusterHealth { live_brokers: live.into_iter().collect(), topics })
    }

    /// The effective `min.insync.replicas` of topics, one DescribeConfigs request for all.
    async fn min_insync_replicas(&self, topics: &[String], timeout: Duration) -> Result<BTreeMap<String, Result<i32>>> {
        if topics.is_empty() {
            return Ok(BTreeMap::new());
        }
        let resp = self
            .send_to::<DescribeConfigsRequest, _, _>(
                "DescribeConfigs",
                Target::Any,
                timeout,
                |_| {
                    Ok(DescribeConfigsRequest::default().with_resources(
                        topics
                            .iter()
                            .map(|t| {
                                DescribeConfigsResource::default()
                                    .with_resource_type(TOPIC_RESOURCE)
                                    .with_resource_name(StrBytes::from_string(t.clone()))
                                    .with_configuration_keys(Some(vec![StrBytes::from_static_str("min.insync.replicas")]))
                            })
                            .collect(),
                    ))
                },
                |_| Ok(()),
            )
            .await?;
        let mut out = BTreeMap::new();
        for r in resp.results {
            let topic = r.resource_name.to_string();
            let v = Error::check_code(r.error_code, "DescribeConfigs", r.error_message.as_deref(), Some(&topic), None)
                .and_then(|()| {
                    let c = r.configs.iter().find(|c| c.name.as_str() == "min.insync.replicas");
                    c.and_then(|c| c.value.as_ref()).and_then(|v| v.parse::<i32>().ok()).ok_or_else(|| Error::Protocol {
                        broker: "any".into(),
                        detail: format!("DescribeConfigs gave no numeric min.insync.replicas for topic {topic}"),
                    })
                });
            out.insert(topic, v);
        }
        Ok(out)
    }
}

/// Classifies a topic's partitions.
fn topic_health(partitions: &[PartitionInfo], min_isr: Result<i32>, live: &BTreeSet<i32>) -> TopicHealth {
    let mut h = TopicHealth {
        min_insync_replicas: min_isr,
        under_replicated: Vec::new(),
        under_min_isr: Vec::new(),
        offline: Vec::new(),
        leaderless: Vec::new(),
    };
    for p in partitions {
        let leaderless = !matches!(p.leader, Some(l) if l >= 0 && live.contains(&l));
        let replica_offline = !p.offline_replicas.is_empty() || p.replicas.iter().any(|r| !live.contains(r));
        if p.isr.len() < p.replicas.len() {
            h.under_replicated.push(p.clone());
        }
        if let Ok(min) = h.min_insync_replicas {
            if (p.isr.len() as i64) < min as i64 {
                h.under_min_isr.push(p.clone());
            }
        }
        if leaderless || replica_offline {
            h.offline.push(p.clone());
        }
        if leaderless {
            h.leaderless.push(p.clone());
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(partition: i32, leader: Option<i32>, replicas: &[i32], isr: &[i32], offline: &[i32]) -> PartitionInfo {
        PartitionInfo {
            partition,
            leader,
            leader_epoch: Some(1),
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            offline_replicas: offline.to_vec(),
        }
    }

    #[test]
    fn partitions_are_classified_as_kafka_topics_does() {
        let live: BTreeSet<i32> = [1, 2].into_iter().collect();
        let ps = vec![
            part(0, Some(1), &[1, 2], &[1, 2], &[]),
            part(1, Some(1), &[1, 2, 3], &[1, 2], &[3]),
            part(2, Some(1), &[1, 2], &[1], &[]),
            part(3, None, &[3], &[3], &[]),
            part(4, Some(3), &[3, 1], &[3, 1], &[]),
        ];
        let h = topic_health(&ps, Ok(2), &live);
        let ids = |v: &[PartitionInfo]| v.iter().map(|p| p.partition).collect::<Vec<_>>();
        assert_eq!(ids(&h.under_replicated), vec![1, 2]);
        assert_eq!(ids(&h.under_min_isr), vec![2, 3]);
        assert_eq!(ids(&h.offline), vec![1, 3, 4]);
        assert_eq!(ids(&h.leaderless), vec![3, 4]);
        assert!(!h.is_healthy());
        assert!(topic_health(&ps[..1], Ok(2), &live).is_healthy());
        // Without a min.insync.replicas nothing is under it.
        let h = topic_health(&ps, Err(Error::InvalidArgument("x".into())), &live);
        assert!(h.under_min_isr.is_empty());
    }
}
