//! The cluster: its description, API versions, features, metadata quorum, raft voters.

use super::AdminClient;
use crate::error::Result;
use crate::metadata::BrokerInfo;
use crate::network::ConnKind;
use crate::protocol;

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

    /// The cluster id, the controller and the live brokers.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let c = self
            .core
            .with_retries("DescribeCluster", self.timeout, || self.core.metadata.refresh_topics(&[]))
            .await?;
        Ok(ClusterDescription {
            cluster_id: c.cluster_id.clone(),
            controller_id: c.controller_id,
            brokers: c.brokers.values().cloned().collect(),
        })
    }
}
