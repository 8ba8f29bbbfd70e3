//! The cluster: its description, API versions, features, metadata quorum, broker
//! registrations, raft voters, and the listing of config resources (KIP-714 client-metrics
//! subscriptions).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::{
    AddRaftVoterRequest, ApiVersionsRequest, BrokerId, DescribeClusterRequest, DescribeQuorumRequest,
    ListConfigResourcesRequest, RemoveRaftVoterRequest, TopicName, UnregisterBrokerRequest, UpdateFeaturesRequest,
};
use kafka_protocol::protocol::{Request, StrBytes};

use super::route::{needs_version, Target};
use super::{AclOperation, AdminClient, ConfigResource, ConfigResourceType};
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::BrokerInfo;
use crate::network::ConnKind;
use crate::protocol;

/// A log directory's id (a UUID's 16 bytes, as Kafka's `Uuid`; all zero for none).
pub type DirectoryId = [u8; 16];

/// The cluster as [`AdminClient::describe_cluster`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id.
    pub cluster_id: Option<String>,
    /// The broker id the cluster reports as controller (in KRaft, a broker that forwards
    /// to the active controller).
    pub controller_id: Option<i32>,
    /// The live brokers, sorted by id.
    pub brokers: Vec<BrokerInfo>,
    /// What this client may do on the cluster (Java's `AclOperation` names: `ALTER`,
    /// `DESCRIBE`, `CLUSTER_ACTION`, ...), when
    /// [`DescribeClusterOptions::include_authorized_operations`] was set; `None` otherwise.
    pub authorized_operations: Option<std::collections::BTreeSet<AclOperation>>,
    /// The brokers registered but fenced, sorted by id, when
    /// [`DescribeClusterOptions::include_fenced_brokers`] was set (DescribeCluster v2+,
    /// Kafka 4.0+); empty otherwise.
    pub fenced_brokers: Vec<BrokerInfo>,
    /// The kind of endpoints the answer lists (DescribeCluster v1+); `None` when the broker
    /// answered an older version or the description came from Metadata.
    pub endpoint_type: Option<EndpointType>,
}

/// The kind of endpoints a [`ClusterDescription`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointType {
    /// Broker endpoints (wire 1).
    Broker,
    /// Controller endpoints (wire 2).
    Controller,
    /// A code this client does not know.
    Unknown(i8),
}

/// Options of [`AdminClient::describe_cluster_with`].
#[derive(Debug, Clone, Default)]
pub struct DescribeClusterOptions {
    /// Ask for [`ClusterDescription::authorized_operations`]. Default `false`.
    pub include_authorized_operations: bool,
    /// Ask for [`ClusterDescription::fenced_brokers`]; a broker before Kafka 4.0
    /// (DescribeCluster below v2) cannot answer it: `Error::UnsupportedVersion` (with the
    /// broker's highest version as the top of its range). Default `false`.
    pub include_fenced_brokers: bool,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// One API a broker supports, from its ApiVersions answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSupport {
    /// The API key number.
    pub api_key: i16,
    /// The API's name (`Produce`, `Metadata`, ...), or `OtherApi` for one this client
    /// does not name.
    pub name: &'static str,
    /// The broker's lowest supported version.
    pub broker_min: i16,
    /// The broker's highest supported version.
    pub broker_max: i16,
    /// The version this client uses for the API with this broker; `None` when the client
    /// does not speak the API or no version is common to both.
    pub client_version: Option<i16>,
}

/// The cluster's feature levels, from [`AdminClient::describe_features`] (Java's
/// `FeatureMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureMetadata {
    /// The finalized (cluster-wide) level range of each feature, by name.
    pub finalized_features: BTreeMap<String, FinalizedVersionRange>,
    /// The epoch of the finalized features, when the broker reported one.
    pub finalized_features_epoch: Option<i64>,
    /// The level range the answering broker supports for each feature, by name.
    pub supported_features: BTreeMap<String, SupportedVersionRange>,
}

/// The finalized level range of a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalizedVersionRange {
    /// The lowest finalized level.
    pub min_version_level: i16,
    /// The highest finalized level: the feature's level in force.
    pub max_version_level: i16,
}

/// The level range a broker supports for a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedVersionRange {
    /// The lowest supported level.
    pub min_version: i16,
    /// The highest supported level.
    pub max_version: i16,
}

/// Options of [`AdminClient::describe_features`].
#[derive(Debug, Clone, Default)]
pub struct DescribeFeaturesOptions {
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// How [`FeatureUpdate`] may change a feature's level (Java's `FeatureUpdate.UpgradeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureUpgradeType {
    /// Raise the level (wire 1).
    Upgrade,
    /// Lower it, only where no metadata is lost (wire 2).
    SafeDowngrade,
    /// Lower it even where metadata may be lost (wire 3; UpdateFeatures v1+).
    UnsafeDowngrade,
}

impl FeatureUpgradeType {
    fn code(self) -> i8 {
        match self {
            FeatureUpgradeType::Upgrade => 1,
            FeatureUpgradeType::SafeDowngrade => 2,
            FeatureUpgradeType::UnsafeDowngrade => 3,
        }
    }
}

/// A new level for one feature (Java's `FeatureUpdate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureUpdate {
    /// The new highest level; 0 removes the finalized feature (a downgrade only).
    pub max_version_level: i16,
    /// Upgrade, safe or unsafe downgrade.
    pub upgrade_type: FeatureUpgradeType,
}

impl FeatureUpdate {
    /// Raises the feature to `level`.
    pub fn upgrade(level: i16) -> FeatureUpdate {
        FeatureUpdate { max_version_level: level, upgrade_type: FeatureUpgradeType::Upgrade }
    }

    /// Lowers the feature to `level` where that loses no metadata.
    pub fn safe_downgrade(level: i16) -> FeatureUpdate {
        FeatureUpdate { max_version_level: level, upgrade_type: FeatureUpgradeType::SafeDowngrade }
    }

    /// Lowers the feature to `level` even if metadata is lost.
    pub fn unsafe_downgrade(level: i16) -> FeatureUpdate {
        FeatureUpdate { max_version_level: level, upgrade_type: FeatureUpgradeType::UnsafeDowngrade }
    }
}

/// Options of [`AdminClient::update_features`].
#[derive(Debug, Clone, Default)]
pub struct UpdateFeaturesOptions {
    /// Only validate the updates on the controller; change nothing. Default `false`.
    pub validate_only: bool,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// The outcome of one feature of [`AdminClient::update_features`].
#[derive(Debug, Clone)]
pub struct FeatureUpdateResult {
    /// The feature's name, as asked for.
    pub feature: String,
    /// `Ok` when the controller applied (or, with `validate_only`, accepted) the update,
    /// else its error (`INVALID_UPDATE_VERSION` with the controller's reason, ...).
    pub result: Result<()>,
}

/// The KRaft metadata quorum, from [`AdminClient::describe_metadata_quorum`] (Java's
/// `QuorumInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumInfo {
    /// The id of the quorum's leader (the active controller).
    pub leader_id: i32,
    /// The leader's epoch.
    pub leader_epoch: i32,
    /// The high watermark of the metadata log.
    pub high_watermark: i64,
    /// The voters.
    pub voters: Vec<ReplicaState>,
    /// The observers (brokers that replicate the metadata log without voting).
    pub observers: Vec<ReplicaState>,
    /// The voters' endpoints (DescribeQuorum v2+, Kafka 3.9+), sorted by id; empty before.
    pub nodes: Vec<QuorumNode>,
}

/// One replica of the metadata log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    /// The replica's node id.
    pub replica_id: i32,
    /// The replica's directory id (DescribeQuorum v2+; all zero before).
    pub replica_directory_id: DirectoryId,
    /// The replica's log end offset.
    pub log_end_offset: i64,
    /// When the leader last received a fetch from it (ms since the epoch), if known.
    pub last_fetch_timestamp: Option<i64>,
    /// When it was last caught up with the leader (ms since the epoch), if known.
    pub last_caught_up_timestamp: Option<i64>,
}

/// A voter's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumNode {
    /// The node id.
    pub node_id: i32,
    /// Its listeners.
    pub endpoints: Vec<RaftVoterEndpoint>,
}

/// A listener of a raft voter (Java's `RaftVoterEndpoint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftVoterEndpoint {
    /// The listener's name (`CONTROLLER`).
    pub name: String,
    /// The host.
    pub host: String,
    /// The port.
    pub port: u16,
}

/// Options of [`AdminClient::describe_metadata_quorum`].
#[derive(Debug, Clone, Default)]
pub struct DescribeMetadataQuorumOptions {
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::unregister_broker`].
#[derive(Debug, Clone, Default)]
pub struct UnregisterBrokerOptions {
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::add_raft_voter`] and [`AdminClient::remove_raft_voter`].
#[derive(Debug, Clone, Default)]
pub struct RaftVoterOptions {
    /// The cluster id the quorum must have, or `None` to not check it. Default `None`.
    pub cluster_id: Option<String>,
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}

/// Options of [`AdminClient::list_config_resources`] and
/// [`AdminClient::list_client_metrics_resources`].
#[derive(Debug, Clone, Default)]
pub struct ListConfigResourcesOptions {
    /// The call's timeout; `None` uses [`AdminConfig::default_api_timeout`](super::AdminConfig).
    pub timeout: Option<Duration>,
}


/// `-1` (none) as `None`.
fn known(v: i64) -> Option<i64> {
    (v != -1).then_some(v)
}

impl AdminClient {
    /// The APIs broker `broker_id` supports and the version this client negotiated for each
    /// (what `kafka-broker-api-versions.sh` shows).
    pub async fn broker_api_versions(&self, broker_id: i32) -> Result<Vec<ApiSupport>> {
        let conn = self
            .core
            .with_retries("ApiVersions", self.timeout, || self.core.broker(broker_id, ConnKind::Default))
            .await?;
        Ok(conn
            .api_versions()
            .all()
            .into_iter()
            .map(|(key, min, max)| {
                let client_version = protocol::client_range(key).and_then(|(cmin, cmax)| {
                    let v = cmax.min(max);
                    (v >= cmin.max(min)).then_some(v)
                });
                ApiSupport {
                    api_key: key,
                    name: protocol::api_name(key),
                    broker_min: min,
                    broker_max: max,
                    client_version,
                }
            })
            .collect())
    }

    /// The cluster id, the controller and the live brokers, with the default
    /// [`DescribeClusterOptions`].
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        self.describe_cluster_with(DescribeClusterOptions::default()).await
    }

    /// The cluster id, the controller, the live brokers (with their racks) and, when asked,
    /// the operations this client may do on the cluster and the fenced brokers. Uses the
    /// DescribeCluster API (Kafka 2.8+), and Metadata on a broker without it (as the Java
    /// client does).
    pub async fn describe_cluster_with(&self, options: DescribeClusterOptions) -> Result<ClusterDescription> {
        let timeout = self.call_timeout(options.timeout);
        // The version of the answer: v0 has no endpoint type.
        let sent_version = std::sync::atomic::AtomicI16::new(0);
        let resp = self
            .send_to::<DescribeClusterRequest, _, _>(
                "DescribeCluster",
                Target::Any,
                timeout,
                |version| {
                    sent_version.store(version, std::sync::atomic::Ordering::Relaxed);
                    let mut req = DescribeClusterRequest::default()
                        .with_include_cluster_authorized_operations(options.include_authorized_operations);
                    if version >= 1 {
                        req = req.with_endpoint_type(1);
                    }
                    if options.include_fenced_brokers {
                        if version < 2 {
                            // Java: "Including fenced broker endpoints is not supported".
                            return Err(needs_version::<DescribeClusterRequest>("DescribeCluster", 2));
                        }
                        req = req.with_include_fenced_brokers(true);
                    }
                    Ok(req)
                },
                |resp| {
                    Error::check_code(resp.error_code, "DescribeCluster", resp.error_message.as_deref(), None, None)
                },
            )
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(Error::UnsupportedVersion { api: "DescribeCluster", .. }) if !options.include_fenced_brokers => {
                let c = self.core.with_retries("Metadata", timeout, || self.core.metadata.refresh_topics(&[])).await?;
                return Ok(ClusterDescription {
                    cluster_id: c.cluster_id.clone(),
                    controller_id: c.controller_id,
                    brokers: c.brokers.values().cloned().collect(),
                    authorized_operations: None,
                    fenced_brokers: Vec::new(),
                    endpoint_type: None,
                });
            }
            Err(e) => return Err(e),
        };
        let mut brokers = Vec::new();
        let mut fenced_brokers = Vec::new();
        for b in resp.brokers {
            let info = BrokerInfo {
                id: b.broker_id.0,
                host: b.host.to_string(),
                port: u16::try_from(b.port).unwrap_or(0),
                rack: b.rack.map(|r| r.to_string()),
            };
            if b.is_fenced {
                fenced_brokers.push(info);
            } else {
                brokers.push(info);
            }
        }
        brokers.sort_by_key(|b| b.id);
        fenced_brokers.sort_by_key(|b| b.id);
        Ok(ClusterDescription {
            cluster_id: Some(resp.cluster_id.to_string()),
            controller_id: (resp.controller_id.0 >= 0).then_some(resp.controller_id.0),
            brokers,
            authorized_operations: if options.include_authorized_operations {
                AclOperation::from_bitfield(resp.cluster_authorized_operations)
            } else {
                None
            },
            fenced_brokers,
            endpoint_type: (sent_version.into_inner() >= 1).then_some(match resp.endpoint_type {
                1 => EndpointType::Broker,
                2 => EndpointType::Controller,
                c => EndpointType::Unknown(c),
            }),
        })
    }

    /// The cluster's finalized feature levels (with their epoch) and the levels the
    /// answering broker supports, from a fresh ApiVersions answer (as the Java client).
    pub async fn describe_features(&self, options: DescribeFeaturesOptions) -> Result<FeatureMetadata> {
        let timeout = self.call_timeout(options.timeout);
        let resp = self
            .core
            .with_retries("DescribeFeatures", timeout, || async {
                let conn = self.connect_to(Target::Any).await?;
                // v4 (Kafka 3.9+) also lists the supported features whose lowest level is 0,
                // which a broker leaves out of older versions (KAFKA-17011).
                let version = conn.api_versions().range(ApiVersionsRequest::KEY).map(|(_, max)| max.min(4)).unwrap_or(0);
                let req = ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("ferrokafka"))
                    .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
                let frame = conn.send_raw(&req, version).await?;
                let resp = protocol::decode_api_versions_response(frame, version, conn.addr())?;
                Error::check_code(resp.error_code, "ApiVersions", None, None, None)?;
                Ok(resp)
            })
            .await?;
        Ok(FeatureMetadata {
            finalized_features: resp
                .finalized_features
                .iter()
                .map(|f| {
                    (
                        f.name.to_string(),
                        FinalizedVersionRange {
                            min_version_level: f.min_version_level,
                            max_version_level: f.max_version_level,
                        },
                    )
                })
                .collect(),
            finalized_features_epoch: (resp.finalized_features_epoch >= 0).then_some(resp.finalized_features_epoch),
            supported_features: resp
                .supported_features
                .iter()
                .map(|f| {
                    (f.name.to_string(), SupportedVersionRange { min_version: f.min_version, max_version: f.max_version })
                })
                .collect(),
        })
    }

    /// Changes the finalized levels of features (upgrade, safe or unsafe downgrade), or with
    /// [`UpdateFeaturesOptions::validate_only`] only checks the changes; per feature its
    /// result. Sent to the controller. Refused before sending, as the Java client: no
    /// updates, an empty feature name, a feature given twice, a negative level, level 0 as an
    /// upgrade.
    pub async fn update_features(
        &self,
        updates: impl IntoIterator<Item = (String, FeatureUpdate)>,
        options: UpdateFeaturesOptions,
    ) -> Result<Vec<FeatureUpdateResult>> {
        let updates: Vec<(String, FeatureUpdate)> = updates.into_iter().collect();
        if updates.is_empty() {
            return Err(Error::InvalidArgument("update_features needs at least one feature update".into()));
        }
        let mut seen = HashSet::new();
        for (name, u) in &updates {
            if name.trim().is_empty() {
                return Err(Error::InvalidArgument("a feature name is empty".into()));
            }
            if !seen.insert(name) {
                return Err(Error::InvalidArgument(format!("feature {name} is given twice")));
            }
            if u.max_version_level < 0 {
                return Err(Error::InvalidArgument(format!("feature {name}: the level cannot be negative")));
            }
            if u.max_version_level == 0 && u.upgrade_type == FeatureUpgradeType::Upgrade {
                return Err(Error::InvalidArgument(format!(
                    "feature {name}: level 0 removes the feature and needs a safe or unsafe downgrade"
                )));
            }
        }
        let timeout = self.call_timeout(options.timeout);
        let resp = self
            .send_to::<UpdateFeaturesRequest, _, _>(
                "UpdateFeatures",
                Target::Controller,
                timeout,
                |version| {
                    if version < 1 {
                        if options.validate_only {
                            return Err(Error::InvalidArgument(
                                "validate_only needs UpdateFeatures v1 (Kafka 3.3+)".into(),
                            ));
                        }
                        if let Some((n, _)) =
                            updates.iter().find(|(_, u)| u.upgrade_type == FeatureUpgradeType::UnsafeDowngrade)
                        {
                            return Err(Error::InvalidArgument(format!(
                                "feature {n}: an unsafe downgrade needs UpdateFeatures v1 (Kafka 3.3+)"
                            )));
                        }
                    }
                    let keys = updates
                        .iter()
                        .map(|(name, u)| {
                            let k = FeatureUpdateKey::default()
                                .with_feature(StrBytes::from_string(name.clone()))
                                .with_max_version_level(u.max_version_level);
                            if version >= 1 {
                                k.with_upgrade_type(u.upgrade_type.code())
                            } else {
                                k.with_allow_downgrade(u.upgrade_type != FeatureUpgradeType::Upgrade)
                            }
                        })
                        .collect();
                    let req = UpdateFeaturesRequest::default()
                        .with_timeout_ms(Self::timeout_ms(timeout))
                        .with_feature_updates(keys);
                    Ok(if version >= 1 { req.with_validate_only(options.validate_only) } else { req })
                },
                |resp| {
                    // A moved controller, or another retriable top-level answer: try again.
                    match Error::check_code(resp.error_code, "UpdateFeatures", resp.error_message.as_deref(), None, None) {
                        Err(e) if e.is_retriable() || e.code() == Some(ErrorCode::NotController) => Err(e),
                        _ => Ok(()),
                    }
                },
            )
            .await?;
        let top = Error::check_code(resp.error_code, "UpdateFeatures", resp.error_message.as_deref(), None, None);
        let mut per: BTreeMap<String, (i16, Option<String>)> = resp
            .results
            .into_iter()
            .map(|r| (r.feature.to_string(), (r.error_code, r.error_message.map(|m| m.to_string()))))
            .collect();
        // v2+ answers a success with no per-feature results.
        let all_ok = top.is_ok() && per.is_empty();
        Ok(updates
            .into_iter()
            .map(|(feature, _)| {
                let result = match (&top, per.remove(&feature)) {
                    (Err(e), _) => Err(annotate_feature(e.clone(), &feature)),
                    (Ok(()), Some((code, msg))) => Error::check_code(code, "UpdateFeatures", msg.as_deref(), None, None)
                        .map_err(|e| annotate_feature(e, &feature)),
                    (Ok(()), None) if all_ok => Ok(()),
                    (Ok(()), None) => Err(Error::Protocol {
                        broker: "controller".into(),
                        detail: format!("UpdateFeatures response has no result for feature {feature}"),
                    }),
                };
                FeatureUpdateResult { feature, result }
            })
            .collect())
    }

    /// The KRaft metadata quorum: leader, epoch, high watermark, voters and observers with
    /// their log end offsets and last fetch and caught-up times, and (Kafka 3.9+) the voters'
    /// endpoints.
    pub async fn describe_metadata_quorum(&self, options: DescribeMetadataQuorumOptions) -> Result<QuorumInfo> {
        const TOPIC: &str = "__cluster_metadata";
        let timeout = self.call_timeout(options.timeout);
        let resp = self
            .send_to::<DescribeQuorumRequest, _, _>(
                "DescribeQuorum",
                Target::Any,
                timeout,
                |_| {
                    Ok(DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
                        .with_topic_name(TopicName(StrBytes::from_static_str(TOPIC)))
                        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]))
                },
                |resp| Error::check_code(resp.error_code, "DescribeQuorum", resp.error_message.as_deref(), None, None),
            )
            .await?;
        let bad = |detail: String| Error::Protocol { broker: "broker".into(), detail: format!("DescribeQuorum response: {detail}") };
        let [topic] = <[_; 1]>::try_from(resp.topics).map_err(|t| bad(format!("{} topics, 1 expected", t.len())))?;
        if topic.topic_name.0.as_str() != TOPIC {
            return Err(bad(format!("topic {}, {TOPIC} expected", topic.topic_name.0.as_str())));
        }
        let [p] = <[_; 1]>::try_from(topic.partitions).map_err(|p| bad(format!("{} partitions, 1 expected", p.len())))?;
        if p.partition_index != 0 {
            return Err(bad(format!("partition {}, 0 expected", p.partition_index)));
        }
        Error::check_code(p.error_code, "DescribeQuorum", p.error_message.as_deref(), Some(TOPIC), Some(0))?;
        let replica = |r: kafka_protocol::messages::describe_quorum_response::ReplicaState| ReplicaState {
            replica_id: r.replica_id.0,
            replica_directory_id: *r.replica_directory_id.as_bytes(),
            log_end_offset: r.log_end_offset,
            last_fetch_timestamp: known(r.last_fetch_timestamp),
            last_caught_up_timestamp: known(r.last_caught_up_timestamp),
        };
        let mut nodes: Vec<QuorumNode> = resp
            .nodes
            .into_iter()
            .map(|n| QuorumNode {
                node_id: n.node_id.0,
                endpoints: n
                    .listeners
                    .into_iter()
                    .map(|l| RaftVoterEndpoint { name: l.name.to_string(), host: l.host.to_string(), port: l.port })
                    .collect(),
            })
            .collect();
        nodes.sort_by_key(|n| n.node_id);
        Ok(QuorumInfo {
            leader_id: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            high_watermark: p.high_watermark,
            voters: p.current_voters.into_iter().map(replica).collect(),
            observers: p.observers.into_iter().map(replica).collect(),
            nodes,
        })
    }

    /// Removes a broker's registration from the cluster metadata (a broker decommissioned
    /// for good). An id that is not registered is the broker's `BROKER_ID_NOT_REGISTERED`.
    pub async fn unregister_broker(&self, broker_id: i32, options: UnregisterBrokerOptions) -> Result<()> {
        let timeout = self.call_timeout(options.timeout);
        self.send_answered_by_code::<UnregisterBrokerRequest, _, _>(
            "UnregisterBroker",
            &format!("broker {broker_id}"),
            timeout,
            |_| Ok(UnregisterBrokerRequest::default().with_broker_id(BrokerId(broker_id))),
            |resp| (resp.error_code, resp.error_message.as_deref()),
        )
        .await
    }

    /// Adds a voter to the KRaft quorum (KIP-853; a quorum whose `kraft.version` is 1, that
    /// is one formatted with dynamic voters). A quorum of static voters
    /// (`controller.quorum.voters`) refuses it with the broker's error.
    pub async fn add_raft_voter(
        &self,
        voter_id: i32,
        voter_directory_id: DirectoryId,
        endpoints: Vec<RaftVoterEndpoint>,
        options: RaftVoterOptions,
    ) -> Result<()> {
        use kafka_protocol::messages::add_raft_voter_request::Listener;
        if let Some(e) = endpoints.iter().find(|e| e.name.is_empty() || e.host.is_empty()) {
            return Err(Error::InvalidArgument(format!("voter {voter_id}: endpoint {e:?} needs a name and a host")));
        }
        let timeout = self.call_timeout(options.timeout);
        self.send_answered_by_code::<AddRaftVoterRequest, _, _>(
            "AddRaftVoter",
            &format!("voter {voter_id}"),
            timeout,
            |_| {
                Ok(AddRaftVoterRequest::default()
                    .with_cluster_id(options.cluster_id.clone().map(StrBytes::from_string))
                    .with_timeout_ms(Self::timeout_ms(timeout))
                    .with_voter_id(voter_id)
                    .with_voter_directory_id(uuid::Uuid::from_bytes(voter_directory_id))
                    .with_listeners(
                        endpoints
                            .iter()
                            .map(|e| {
                                Listener::default()
                                    .with_name(StrBytes::from_string(e.name.clone()))
                                    .with_host(StrBytes::from_string(e.host.clone()))
                                    .with_port(e.port)
                            })
                            .collect(),
                    ))
            },
            |resp| (resp.error_code, resp.error_message.as_deref()),
        )
        .await
    }

    /// Removes a voter from the KRaft quorum (KIP-853; see [`AdminClient::add_raft_voter`]).
    pub async fn remove_raft_voter(
        &self,
        voter_id: i32,
        voter_directory_id: DirectoryId,
        options: RaftVoterOptions,
    ) -> Result<()> {
        let timeout = self.call_timeout(options.timeout);
        self.send_answered_by_code::<RemoveRaftVoterRequest, _, _>(
            "RemoveRaftVoter",
            &format!("voter {voter_id}"),
            timeout,
            |_| {
                Ok(RemoveRaftVoterRequest::default()
                    .with_cluster_id(options.cluster_id.clone().map(StrBytes::from_string))
                    .with_voter_id(voter_id)
                    .with_voter_directory_id(uuid::Uuid::from_bytes(voter_directory_id)))
            },
            |resp| (resp.error_code, resp.error_message.as_deref()),
        )
        .await
    }

    /// The config resources of the given types that have configs set (ListConfigResources,
    /// API 74, Kafka 4.1+; an empty `types` lists every type the broker lists). A broker
    /// before 4.1 speaks only v0 of the API (ListClientMetricsResources, Kafka 3.7+), which
    /// lists client-metrics resources only: asking it for another type is
    /// `Error::UnsupportedVersion`.
    pub async fn list_config_resources(
        &self,
        types: &[ConfigResourceType],
        options: ListConfigResourcesOptions,
    ) -> Result<Vec<ConfigResource>> {
        let timeout = self.call_timeout(options.timeout);
        let only_client_metrics = !types.is_empty() && types.iter().all(|t| *t == ConfigResourceType::ClientMetrics);
        let resp = self
            .send_to::<ListConfigResourcesRequest, _, _>(
                "ListConfigResources",
                Target::Any,
                timeout,
                |version| {
                    if version >= 1 {
                        Ok(ListConfigResourcesRequest::default().with_resource_types(types.iter().map(|t| t.code()).collect()))
                    } else if only_client_metrics {
                        Ok(ListConfigResourcesRequest::default())
                    } else {
                        Err(needs_version::<ListConfigResourcesRequest>("ListConfigResources", 1))
                    }
                },
                |resp| Error::check_code(resp.error_code, "ListConfigResources", None, None, None),
            )
            .await?;
        let mut v: Vec<ConfigResource> = resp
            .config_resources
            .into_iter()
            .map(|r| {
                // v0 has no type: it lists client-metrics resources.
                let t = if r.resource_type == 0 || r.resource_type == -1 {
                    ConfigResourceType::ClientMetrics
                } else {
                    ConfigResourceType::from_code(r.resource_type)
                };
                ConfigResource::new(t, r.resource_name.to_string())
            })
            .collect();
        v.sort();
        Ok(v)
    }

    /// The names of the client-metrics subscriptions (KIP-714) that have configs, sorted
    /// (Java's `listClientMetricsResources`). Create, change and delete them with
    /// [`AdminClient::incremental_alter_configs`] on [`ConfigResource::client_metrics`].
    pub async fn list_client_metrics_resources(&self, options: ListConfigResourcesOptions) -> Result<Vec<String>> {
        Ok(self
            .list_config_resources(&[ConfigResourceType::ClientMetrics], options)
            .await?
            .into_iter()
            .filter(|r| r.resource_type == ConfigResourceType::ClientMetrics)
            .map(|r| r.name)
            .collect())
    }

    /// Sends to any broker a request whose answer is a top-level error code and message
    /// (`code` reads them), retrying retriable codes until `timeout`; an error names `what`.
    async fn send_answered_by_code<R, B, C>(
        &self,
        api: &'static str,
        what: &str,
        timeout: Duration,
        build: B,
        code: C,
    ) -> Result<()>
    where
        R: Request,
        B: Fn(i16) -> Result<R>,
        C: Fn(&R::Response) -> (i16, Option<&str>),
    {
        self.send_to::<R, _, _>(api, Target::Any, timeout, build, |resp| {
            let (c, m) = code(resp);
            Error::check_code(c, api, m, None, None).map_err(|e| annotate_message(e, what))
        })
        .await
        .map(|_| ())
    }
}

/// Adds `what` at the start of a broker error's message.
fn annotate_message(e: Error, what: &str) -> Error {
    match e {
        Error::Broker(mut b) => {
            b.message = Some(match b.message.take() {
                Some(m) if !m.is_empty() => format!("{what}: {m}"),
                _ => format!("{what}: {}", b.code.description()),
            });
            Error::Broker(b)
        }
        other => other,
    }
}

/// A feature's error, naming the feature.
fn annotate_feature(e: Error, feature: &str) -> Error {
    annotate_message(e, &format!("feature {feature}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::testing::{api_versions, encode_response, single_node_metadata, TcpBroker, TcpReply};
    use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
    use kafka_protocol::messages::{DescribeClusterResponse, MetadataRequest, UpdateFeaturesResponse};

    /// A one-node broker advertising `ranges`, answering ApiVersions and Metadata (cluster
    /// id `meta-id`); DescribeCluster and UpdateFeatures answered by `other`.
    async fn broker(
        ranges: &'static [(i16, i16, i16)],
        other: impl Fn(i16, i16, i32) -> TcpReply + Send + Sync + 'static,
    ) -> (TcpBroker, AdminClient) {
        let b = TcpBroker::start(move |req, host, port| {
            let (corr, version) = (req.header.correlation_id, req.header.request_api_version);
            match req.header.request_api_key {
                18 => TcpReply::Frame(encode_response::<ApiVersionsRequest>(corr, version, &api_versions(ranges))),
                3 => {
                    let resp = single_node_metadata(host, port, "t", 1).with_cluster_id(Some(StrBytes::from_static_str("meta-id")));
                    TcpReply::Frame(encode_response::<MetadataRequest>(corr, version, &resp))
                }
                key => other(key, version, corr),
            }
        })
        .await;
        let admin = AdminClient::new(
            super::super::AdminConfig::new(b.addr()).default_api_timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap();
        (b, admin)
    }

    #[tokio::test]
    async fn describe_cluster_falls_back_to_metadata_without_the_api() {
        let (_b, admin) = broker(&[(18, 0, 3), (3, 0, 12)], |_, _, _| TcpReply::Close).await;
        let c = admin.describe_cluster().await.unwrap();
        assert_eq!(c.cluster_id.as_deref(), Some("meta-id"));
        assert_eq!((c.controller_id, c.brokers.len(), c.endpoint_type), (Some(0), 1, None));
        // Fenced brokers cannot be asked of it.
        let e = admin
            .describe_cluster_with(DescribeClusterOptions { include_fenced_brokers: true, ..Default::default() })
            .await
            .unwrap_err();
        assert!(matches!(e, Error::UnsupportedVersion { api: "DescribeCluster", .. }), "{e}");
    }

    #[tokio::test]
    async fn describe_cluster_v0_has_no_endpoint_type_and_fenced_brokers_need_v2() {
        let (_b, admin) = broker(&[(18, 0, 3), (3, 0, 12), (60, 0, 0)], |key, version, corr| {
            assert_eq!(key, 60);
            let resp = DescribeClusterResponse::default()
                .with_cluster_id(StrBytes::from_static_str("dc-id"))
                .with_controller_id(BrokerId(-1))
                .with_cluster_authorized_operations(i32::MIN);
            TcpReply::Frame(encode_response::<DescribeClusterRequest>(corr, version, &resp))
        })
        .await;
        let c = admin
            .describe_cluster_with(DescribeClusterOptions { include_authorized_operations: true, ..Default::default() })
            .await
            .unwrap();
        assert_eq!((c.cluster_id.as_deref(), c.controller_id, c.endpoint_type), (Some("dc-id"), None, None));
        assert_eq!(c.authorized_operations, None);
        let e = admin
            .describe_cluster_with(DescribeClusterOptions { include_fenced_brokers: true, ..Default::default() })
            .await
            .unwrap_err();
        assert!(matches!(e, Error::UnsupportedVersion { api: "DescribeCluster", broker_range: Some((0, 0)), .. }), "{e}");
    }

    #[tokio::test]
    async fn update_features_results_per_feature() {
        // v1 answers per feature; a top-level error is every feature's.
        let (_b, admin) = broker(&[(18, 0, 3), (3, 0, 12), (57, 0, 1)], |key, version, corr| {
            assert_eq!(key, 57);
            let resp = UpdateFeaturesResponse::default().with_results(vec![
                UpdatableFeatureResult::default().with_feature(StrBytes::from_static_str("a")),
                UpdatableFeatureResult::default()
                    .with_feature(StrBytes::from_static_str("b"))
                    .with_error_code(ErrorCode::InvalidUpdateVersion.code())
                    .with_error_message(Some(StrBytes::from_static_str("too high"))),
            ]);
            TcpReply::Frame(encode_response::<UpdateFeaturesRequest>(corr, version, &resp))
        })
        .await;
        let r = admin
            .update_features(
                [("a".to_owned(), FeatureUpdate::upgrade(1)), ("b".to_owned(), FeatureUpdate::upgrade(9)), ("c".to_owned(), FeatureUpdate::upgrade(1))],
                Default::default(),
            )
            .await
            .unwrap();
        assert!(r[0].result.is_ok());
        let e = r[1].result.as_ref().unwrap_err();
        assert!(e.code() == Some(ErrorCode::InvalidUpdateVersion) && e.to_string().contains("feature b: too high"), "{e}");
        assert!(matches!(r[2].result, Err(Error::Protocol { .. })), "{:?}", r[2]);

        // v2 answers a success with no per-feature results.
        let (_b, admin) = broker(&[(18, 0, 3), (3, 0, 12), (57, 0, 2)], |_, version, corr| {
            assert_eq!(version, 2);
            TcpReply::Frame(encode_response::<UpdateFeaturesRequest>(corr, version, &UpdateFeaturesResponse::default()))
        })
        .await;
        let r = admin
            .update_features([("a".to_owned(), FeatureUpdate::upgrade(1)), ("b".to_owned(), FeatureUpdate::unsafe_downgrade(1))], Default::default())
            .await
            .unwrap();
        assert!(r.iter().all(|f| f.result.is_ok()), "{r:?}");
    }


    #[test]
    fn broker_errors_name_what_they_are_about() {
        let e = annotate_feature(Error::broker(ErrorCode::InvalidUpdateVersion, "UpdateFeatures", None, None, None), "x");
        assert!(e.to_string().contains("feature x: "), "{e}");
    }
}
